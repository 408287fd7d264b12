//! systemd's readiness protocol (sd_notify(3)) for `hbd` and `hbd-disk`
//! under `Type=notify`: `READY=1` once the configuration is read and the
//! sockets are open, `STOPPING=1` when leaving begins, `WATCHDOG=1` from the
//! main loop every half of `WATCHDOG_USEC` (so a hung loop stops the pings
//! and systemd's `WatchdogSec=` restarts it), `STATUS=` a one-line summary.
//!
//! Each message is one datagram to `$NOTIFY_SOCKET` (a path, or an abstract
//! name written with a leading `@`). Without `NOTIFY_SOCKET` every call does
//! nothing. [`init_from_env`] reads the variables once and removes them from
//! the environment, so that the programs hbd starts (agents, device
//! processes) do not notify in its name.

use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::OnceLock;
use std::time::Duration;

struct Notifier {
    socket: UnixDatagram,
    addr: SocketAddr,
}

static NOTIFIER: OnceLock<Option<Notifier>> = OnceLock::new();
static WATCHDOG: OnceLock<Option<Duration>> = OnceLock::new();

/// `NOTIFY_SOCKET`'s address: a path, or `@name` for an abstract socket.
pub fn socket_addr(v: &str) -> std::io::Result<SocketAddr> {
    match v.strip_prefix('@') {
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            SocketAddr::from_abstract_name(name.as_bytes())
        }
        None => SocketAddr::from_pathname(v),
    }
}

/// How often to send `WATCHDOG=1`: half of `WATCHDOG_USEC` (as
/// sd_watchdog_enabled(3) advises), when `WATCHDOG_PID` is unset or names
/// `pid`.
pub fn watchdog_interval(
    usec: Option<&str>,
    watchdog_pid: Option<&str>,
    pid: u32,
) -> Option<Duration> {
    if let Some(p) = watchdog_pid {
        if p.trim().parse::<u32>().ok() != Some(pid) {
            return None;
        }
    }
    let us: u64 = usec?.trim().parse().ok().filter(|&u| u > 0)?;
    Some(Duration::from_micros(us) / 2)
}

/// Reads `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID` and removes them
/// from the environment. Call once, while the process is single-threaded
/// (before the tokio runtime starts). A socket that cannot be used is
/// reported on stderr and notification stays off.
pub fn init_from_env() {
    let socket = std::env::var("NOTIFY_SOCKET").ok();
    let usec = std::env::var("WATCHDOG_USEC").ok();
    let wpid = std::env::var("WATCHDOG_PID").ok();
    for v in ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"] {
        // No other thread runs yet: nothing reads the environment meanwhile.
        std::env::remove_var(v);
    }
    let notifier = socket.and_then(|s| {
        match socket_addr(&s).and_then(|addr| Ok((UnixDatagram::unbound()?, addr))) {
            Ok((socket, addr)) => Some(Notifier { socket, addr }),
            Err(e) => {
                eprintln!("NOTIFY_SOCKET={s}: {e}: not notifying systemd");
                None
            }
        }
    });
    let interval = notifier
        .as_ref()
        .and_then(|_| watchdog_interval(usec.as_deref(), wpid.as_deref(), std::process::id()));
    let _ = NOTIFIER.set(notifier);
    let _ = WATCHDOG.set(interval);
}

/// Sends `state` (newline-separated `KEY=VALUE` lines). Errors are ignored
/// as sd_notify's callers do: systemd may simply not be listening.
pub fn notify(state: &str) {
    if let Some(Some(n)) = NOTIFIER.get() {
        if let Err(e) = n.socket.send_to_addr(state.as_bytes(), &n.addr) {
            tracing::debug!(error = %e, "sd_notify not sent");
        }
    }
}

/// `READY=1` with a status line.
pub fn ready(status: &str) {
    notify(&format!("READY=1\nSTATUS={}", one_line(status)));
}

/// `STOPPING=1` with a status line.
pub fn stopping(status: &str) {
    notify(&format!("STOPPING=1\nSTATUS={}", one_line(status)));
}

/// `STATUS=` alone.
pub fn status(status: &str) {
    notify(&format!("STATUS={}", one_line(status)));
}

/// How often the main loop must call [`watchdog`]; `None`: no watchdog.
pub fn watchdog_every() -> Option<Duration> {
    WATCHDOG.get().copied().flatten()
}

/// `WATCHDOG=1`.
pub fn watchdog() {
    notify("WATCHDOG=1");
}

fn one_line(s: &str) -> String {
    s.replace('\n', " ")
}

/// Paces [`watchdog`] from a loop: [`WatchdogPacer::due`] says when the next
/// ping is due, [`WatchdogPacer::tick`] pings when it is.
#[derive(Debug)]
pub struct WatchdogPacer {
    every: Option<Duration>,
    next: Option<tokio::time::Instant>,
}

impl WatchdogPacer {
    pub fn new() -> WatchdogPacer {
        let every = watchdog_every();
        WatchdogPacer {
            every,
            next: every.map(|_| tokio::time::Instant::now()),
        }
    }

    /// When the loop must wake for the next ping (`None`: never).
    pub fn due(&self) -> Option<tokio::time::Instant> {
        self.next
    }

    /// Pings if due; returns whether it did.
    pub fn tick(&mut self) -> bool {
        let (Some(every), Some(next)) = (self.every, self.next) else {
            return false;
        };
        let now = tokio::time::Instant::now();
        if now < next {
            return false;
        }
        watchdog();
        self.next = Some(now + every);
        true
    }
}

impl Default for WatchdogPacer {
    fn default() -> Self {
        WatchdogPacer::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watchdog_is_half_of_watchdog_usec_for_this_pid() {
        assert_eq!(
            watchdog_interval(Some("20000000"), None, 7),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            watchdog_interval(Some("20000000"), Some("7"), 7),
            Some(Duration::from_secs(10))
        );
        assert_eq!(watchdog_interval(Some("20000000"), Some("8"), 7), None);
        assert_eq!(watchdog_interval(None, None, 7), None);
        assert_eq!(watchdog_interval(Some("0"), None, 7), None);
        assert_eq!(watchdog_interval(Some("x"), None, 7), None);
    }

    #[test]
    fn notify_socket_path_or_abstract_name() {
        use std::os::linux::net::SocketAddrExt;
        let a = socket_addr("@hbd/notify").unwrap();
        assert_eq!(a.as_abstract_name(), Some(&b"hbd/notify"[..]));
        let p = socket_addr("/run/systemd/notify").unwrap();
        assert_eq!(
            p.as_pathname(),
            Some(std::path::Path::new("/run/systemd/notify"))
        );
    }

    #[test]
    fn a_datagram_per_message() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let rx = UnixDatagram::bind(&path).unwrap();
        let n = Notifier {
            socket: UnixDatagram::unbound().unwrap(),
            addr: socket_addr(path.to_str().unwrap()).unwrap(),
        };
        n.socket.send_to_addr(b"READY=1", &n.addr).unwrap();
        let mut buf = [0u8; 64];
        let len = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"READY=1");
    }
}
