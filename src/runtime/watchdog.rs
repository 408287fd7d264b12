//! Self-fencing: ha.cf `watchdog DEVICE` (heartbeat's directive; softdog
//! where the machine has no hardware watchdog).
//!
//! The kernel resets the machine when nobody writes to the device for its
//! timeout (Documentation/watchdog/watchdog-api.rst). hbd sets that timeout
//! to deadtime + 1 s and feeds the device from a thread of its own, but only
//! while the daemon loop proves progress: the loop bumps a counter on every
//! iteration ([`Watchdog::alive`]) and the feeder stops for good once the
//! counter has not moved for deadtime. A hung hbd (stopped, stuck in the
//! kernel, spinning in a task) therefore resets its machine at most
//! 2 × deadtime + 1 s after it hung, however the hang looks to the async
//! runtime. Feeding never resumes after a stall: by then the peers have
//! declared the node dead and may run its groups.
//!
//! An orderly shutdown writes `V` (the magic close) so that closing the
//! device disarms it; an exit on an error or a crash leaves it armed.
//!
//! ```text
//!   daemon loop ── alive(): counter += 1 ──▶ AtomicU64
//!                                               │ read every interval
//!   feeder thread ── "." to DEVICE while the counter moved within deadtime
//!                 ── "V" and close on Watchdog::close
//! ```

use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// `WDIOC_SETTIMEOUT`: `_IOWR('W', 6, int)` (linux/watchdog.h).
const WDIOC_SETTIMEOUT: u64 = (3 << 30) | (4 << 16) | ((b'W' as u64) << 8) | 6;

#[derive(Debug, thiserror::Error)]
pub enum WatchdogError {
    #[error("watchdog {}: {source}", device.display())]
    Open {
        device: PathBuf,
        source: std::io::Error,
    },
    #[error("watchdog: cannot start the feeder thread: {0}")]
    Thread(std::io::Error),
}

/// The armed device and its feeder thread.
pub struct Watchdog {
    progress: Arc<AtomicU64>,
    /// Set by the feeder when it stopped feeding for good.
    stalled: Arc<AtomicBool>,
    /// Sends the magic close; dropped without sending: stop, leave it armed.
    stop: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// How often the feeder looks (the loop wakes at least this often).
    pub interval: Duration,
}

impl Watchdog {
    /// Opens `device` (after `modprobe softdog` when it is missing), sets
    /// its timeout to `timeout` where the driver supports it, and feeds it
    /// while [`Watchdog::alive`] is called at least every `stall`.
    pub fn open(
        device: &Path,
        timeout: Duration,
        stall: Duration,
    ) -> Result<Watchdog, WatchdogError> {
        let file = open_device(device).map_err(|source| WatchdogError::Open {
            device: device.to_path_buf(),
            source,
        })?;
        let secs = timeout.as_secs() + u64::from(timeout.subsec_nanos() > 0);
        let mut arg: libc::c_int = secs.clamp(1, i32::MAX as u64) as libc::c_int;
        // SAFETY: WDIOC_SETTIMEOUT reads and writes one int through the
        // pointer, which lives across the call.
        let r = unsafe { libc::ioctl(file.as_raw_fd(), WDIOC_SETTIMEOUT as _, &mut arg) };
        if r == 0 {
            tracing::info!(device = %device.display(), timeout_s = arg, "watchdog armed");
        } else {
            let e = std::io::Error::last_os_error();
            tracing::warn!(
                device = %device.display(),
                error = %e,
                "watchdog: cannot set the timeout; the driver's own timeout applies"
            );
        }
        let interval = (stall / 4).clamp(Duration::from_millis(50), Duration::from_secs(1));
        let progress = Arc::new(AtomicU64::new(0));
        let (tx, rx) = mpsc::channel();
        let stalled = Arc::new(AtomicBool::new(false));
        let (p, st, dev) = (progress.clone(), stalled.clone(), device.to_path_buf());
        let thread = std::thread::Builder::new()
            .name("hbd-watchdog".into())
            .spawn(move || feed(file, &dev, &p, &st, &rx, interval, stall))
            .map_err(WatchdogError::Thread)?;
        Ok(Watchdog {
            progress,
            stalled,
            stop: Some(tx),
            thread: Some(thread),
            interval,
        })
    }

    /// The daemon loop made progress.
    pub fn alive(&self) {
        self.progress.fetch_add(1, Ordering::Relaxed);
    }

    /// Feeding stopped after a stall: the machine resets at the timeout.
    pub fn stalled(&self) -> bool {
        self.stalled.load(Ordering::Relaxed)
    }

    /// Orderly shutdown: the magic close disarms the device (unless feeding
    /// already stopped after a stall: then the reset stays due).
    pub fn close(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        // Without close(): the sender goes, the feeder stops without `V`.
        self.stop.take();
    }
}

fn open_device(device: &Path) -> std::io::Result<File> {
    let open = || std::fs::OpenOptions::new().write(true).open(device);
    match open() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && device.starts_with("/dev") => {
            tracing::warn!(device = %device.display(), "watchdog device missing: loading softdog");
            match std::process::Command::new("modprobe")
                .arg("softdog")
                .status()
            {
                Ok(s) if s.success() => {}
                Ok(s) => tracing::warn!(status = %s, "modprobe softdog failed"),
                Err(e) => tracing::warn!(error = %e, "cannot run modprobe"),
            }
            // udev creates the node shortly after the module loads.
            let end = Instant::now() + Duration::from_secs(3);
            loop {
                match open() {
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound && Instant::now() < end => {
                        std::thread::sleep(Duration::from_millis(100))
                    }
                    r => return r,
                }
            }
        }
        r => r,
    }
}

/// The feeder thread.
fn feed(
    mut file: File,
    device: &Path,
    progress: &AtomicU64,
    stalled_flag: &AtomicBool,
    stop: &mpsc::Receiver<()>,
    interval: Duration,
    stall: Duration,
) {
    let mut seen = progress.load(Ordering::Relaxed);
    let mut moved = Instant::now();
    let mut stalled = false;
    let mut last_error: Option<Instant> = None;
    loop {
        match stop.recv_timeout(interval) {
            Ok(()) => {
                if stalled {
                    tracing::error!("watchdog left armed: the daemon loop had stalled");
                } else if let Err(e) = file.write_all(b"V") {
                    tracing::error!(error = %e, "watchdog: magic close failed: the machine may reset");
                } else {
                    tracing::info!(device = %device.display(), "watchdog disarmed (magic close)");
                }
                return;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        if stalled {
            continue;
        }
        let now = Instant::now();
        let p = progress.load(Ordering::Relaxed);
        if p != seen {
            (seen, moved) = (p, now);
        } else if now.duration_since(moved) > stall {
            stalled = true;
            stalled_flag.store(true, Ordering::Relaxed);
            tracing::error!(
                stalled_ms = now.duration_since(moved).as_millis() as u64,
                "DAEMON LOOP STALLED longer than deadtime: watchdog no longer fed, the machine will reset"
            );
            continue;
        }
        if let Err(e) = file.write_all(b".") {
            if last_error.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                last_error = Some(now);
                tracing::error!(error = %e, "watchdog: feeding failed (logged at most every 10 s)");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ioctl_number() {
        // linux/watchdog.h on x86/arm: _IOWR('W', 6, int).
        assert_eq!(WDIOC_SETTIMEOUT, 0xC004_5706);
    }

    fn wait(what: &str, mut f: impl FnMut() -> bool) {
        let end = Instant::now() + Duration::from_secs(30);
        while !f() {
            assert!(Instant::now() < end, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn feeds_while_alive_stops_after_a_stall_and_closes_with_v() {
        let dir = tempfile::tempdir().unwrap();
        let dev = dir.path().join("wd");
        std::fs::write(&dev, "").unwrap();
        let read = || std::fs::read_to_string(&dev).unwrap();
        let stall = Duration::from_millis(400);
        let w = Watchdog::open(&dev, Duration::from_secs(2), stall).unwrap();
        let end = Instant::now() + Duration::from_secs(30);
        while read().len() < 3 {
            w.alive();
            assert!(Instant::now() < end, "no feeds");
            std::thread::sleep(Duration::from_millis(20));
        }
        w.close();
        let s = read();
        assert!(
            s.ends_with('V') && s[..s.len() - 1].chars().all(|c| c == '.'),
            "{s:?}"
        );

        // No progress: feeding stops for good, and close leaves it armed.
        std::fs::write(&dev, "").unwrap();
        let w = Watchdog::open(&dev, Duration::from_secs(2), stall).unwrap();
        w.alive();
        wait("the stall", || w.stalled());
        let last = read();
        w.alive(); // too late: it does not resume
        std::thread::sleep(stall);
        assert_eq!(read(), last);
        w.close();
        assert_eq!(read(), last, "no magic close after a stall");
        assert!(!last.contains('V'));
    }
}
