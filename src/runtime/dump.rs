//! SIGUSR1: the state, as `hbctl status` prints it (nodes and links, ping
//! nodes, quorum, groups with their resources, checks and jobs, VRRP
//! instances, replicated disks, dropped datagrams), written to the log at
//! info, one log line per line. keepalived writes its data file on SIGUSR1;
//! hbd writes its log, which is already where the admin looks (logfile,
//! syslog, the journal). The daemon goes on.

use super::*;

/// Logs the status document `s` as text.
pub(super) fn log_status(s: &Status) {
    tracing::info!(signal = "SIGUSR1", "state dump begins");
    for line in crate::ctl::render::status(s)
        .lines()
        .filter(|l| !l.trim().is_empty())
    {
        tracing::info!("{line}");
    }
    tracing::info!("state dump ends");
}

impl Daemon {
    /// SIGUSR1. The replicated disks answer on their own sockets: asked off
    /// the loop, as for `hbctl status`, and the dump is logged when they have.
    pub(super) fn dump_state(&self) {
        let mut status = self.status();
        let names = self.disk_names();
        if names.is_empty() {
            log_status(&status);
            return;
        }
        let run_dir = self.paths.run_dir.clone();
        tokio::spawn(async move {
            status.disks =
                crate::disk::client::summaries(&run_dir, &names, calls::DISK_STATUS_TIMEOUT).await;
            log_status(&status);
        });
    }
}
