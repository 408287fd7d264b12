//! Running the fence-peer handler ([`super::super::fence`]): hbd's built-in
//! outdater over hbd's control socket, or a command with DRBD's
//! environment; its exit code goes back to the machine as
//! [`Input::FencePeerDone`].

use super::super::fence::{self, FenceHandler};
use super::*;

/// How long a fence-peer command may run (DRBD waits for ever; a hung
/// handler must not hold a promotion or frozen I/O that long).
pub const HANDLER_TIMEOUT: Duration = Duration::from_secs(120);

impl Device {
    /// [`Output::FencePeer`]: run the handler in the background, then feed
    /// its exit code to the machine.
    pub(super) fn fence_peer_async(&self) {
        let dev = self.me();
        self.rt.spawn(async move {
            let code = dev.run_fence_handler().await;
            {
                let mut c = dev.core();
                let _ = dev.input(&mut c, Input::FencePeerDone { code });
            }
            dev.flush_notices();
        });
    }

    /// Run the resource's fence-peer handler; `None`: it could not run or
    /// gave no usable code.
    pub(super) async fn run_fence_handler(&self) -> Option<u8> {
        let cfg = self.cfg();
        let h = fence::handler(
            cfg.res.handlers.get("fence-peer").map(String::as_str),
            cfg.dopd,
        );
        let res = cfg.name.as_str();
        match h {
            FenceHandler::BuiltIn { timeout, why } => {
                tracing::info!(resource = %res, why, peer = %cfg.peer, "fence-peer: hbd's built-in outdater (heartbeat's dopd is built into hbd)");
                let req = crate::ctl::Request::OutdatePeer {
                    resource: cfg.name.clone(),
                    timeout_ms: timeout.as_millis() as u64,
                };
                let sock = crate::ctl::socket_path(&cfg.run_dir);
                let call = crate::ctl::call(&sock, req);
                match tokio::time::timeout(timeout + Duration::from_secs(5), call).await {
                    Ok(Ok(crate::ctl::Response::Outdate { code, message })) => {
                        tracing::info!(resource = %res, code, %message, "built-in outdater answered");
                        Some(code)
                    }
                    Ok(Ok(other)) => {
                        tracing::error!(resource = %res, answer = ?other, "built-in outdater: unexpected answer from hbd");
                        None
                    }
                    Ok(Err(e)) => {
                        tracing::error!(resource = %res, error = %e, socket = %sock.display(), "built-in outdater: cannot ask the local hbd");
                        None
                    }
                    Err(_) => {
                        tracing::error!(resource = %res, "built-in outdater: the local hbd did not answer in time");
                        None
                    }
                }
            }
            FenceHandler::Command(cmd) => {
                let env = cfg.handler_env();
                tracing::info!(resource = %res, command = %cmd, "helper command: fence-peer");
                match crate::process::run_shell(&cmd, None, &env, HANDLER_TIMEOUT).await {
                    Ok(code) => {
                        tracing::info!(resource = %res, code, "fence-peer handler exited");
                        fence::exit_code(code)
                    }
                    Err(e) => {
                        tracing::error!(resource = %res, error = %e, "fence-peer handler could not run");
                        None
                    }
                }
            }
            FenceHandler::Missing => {
                tracing::error!(resource = %res, "fencing is on but there is no fence-peer handler: add `handlers {{ fence-peer \"/usr/lib/heartbeat/drbd-peer-outdater -t 5\"; }}` (hbd's built-in outdater) to drbd.conf");
                None
            }
        }
    }
}
