//! ha.cf `realtime on` (heartbeat's default) and `rtprio N`: the keepalive
//! path runs at a realtime policy, as heartbeat's `cl_make_realtime` does
//! (SCHED_RR at the lowest priority unless `rtprio` says otherwise, memory
//! locked with `mlockall(MCL_CURRENT|MCL_FUTURE)`).
//!
//! ```text
//!   main thread (SCHED_RR) ─ daemon loop: membership deadlines, keepalive
//!                            sends, group/agent/monitor bookkeeping (all
//!                            non-blocking)
//!   hbd-rt-net (SCHED_RR)  ─ the media's receive tasks: each datagram is
//!                            stamped on arrival (network::Received::at)
//!   blocking pool, reload, ─ SCHED_OTHER: NSS lookups, disk and /proc I/O,
//!   every child process      configuration loads, agents, checks, hooks
//! ```
//!
//! Both realtime threads run with `SCHED_RESET_ON_FORK`: every thread or
//! process they create starts at SCHED_OTHER (the kernel resets the policy
//! on clone), so nothing blocking or external inherits the priority. The
//! tokio blocking pool resets itself again when a thread starts, and
//! `process::clean_command` resets children before exec.
//!
//! The death decision uses the arrival stamps taken on `hbd-rt-net`, and
//! the loop takes every datagram waiting in the inbox before it checks a
//! deadline: a keepalive that came in time but was processed late never
//! makes a death.
//!
//! Failing to get a realtime policy or to lock memory (EPERM, RLIMIT_RTPRIO,
//! a container) is one warning; hbd goes on at SCHED_OTHER.

use crate::config::Config;
use std::io;
use std::sync::OnceLock;

/// What `realtime`/`rtprio` ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    pub on: bool,
    /// SCHED_RR priority (1 = heartbeat's default, the lowest).
    pub priority: i32,
}

impl Settings {
    /// From ha.cf. VRRP mode (no ha.cf) stays at SCHED_OTHER: keepalived
    /// does not switch to realtime by default either.
    pub fn of(c: &Config) -> Settings {
        let priority = c.ha.rtprio.map_or(1, |p| p.clamp(1, 99) as i32);
        Settings {
            on: c.ha.realtime && !c.vrrp_only,
            priority,
        }
    }

    pub const OFF: Settings = Settings {
        on: false,
        priority: 1,
    };
}

/// The policy of the calling thread, without the reset-on-fork flag.
pub fn thread_policy() -> i32 {
    // SAFETY: plain syscall; 0 is the calling thread.
    let p = unsafe { libc::sched_getscheduler(0) };
    p & !libc::SCHED_RESET_ON_FORK
}

/// Whether the calling thread runs at a realtime policy.
pub fn thread_is_realtime() -> bool {
    matches!(thread_policy(), libc::SCHED_RR | libc::SCHED_FIFO)
}

/// The calling thread to SCHED_RR at `priority`, its children reset to
/// SCHED_OTHER.
pub fn make_thread_realtime(priority: i32) -> io::Result<()> {
    let param = libc::sched_param {
        sched_priority: priority,
    };
    // SAFETY: plain syscall on the calling thread (pid 0) with a valid param.
    let r =
        unsafe { libc::sched_setscheduler(0, libc::SCHED_RR | libc::SCHED_RESET_ON_FORK, &param) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The calling thread back to SCHED_OTHER if it runs at a realtime policy.
/// Async-signal-safe (for `pre_exec`).
pub fn make_thread_normal() -> io::Result<()> {
    // SAFETY: plain syscalls on the calling thread (pid 0).
    unsafe {
        let p = libc::sched_getscheduler(0);
        if p < 0 {
            return Err(io::Error::last_os_error());
        }
        let p = p & !libc::SCHED_RESET_ON_FORK;
        if p != libc::SCHED_RR && p != libc::SCHED_FIFO {
            return Ok(());
        }
        let param = libc::sched_param { sched_priority: 0 };
        if libc::sched_setscheduler(0, libc::SCHED_OTHER, &param) == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }
}

/// For the runtimes' `on_thread_start`: tokio's blocking threads (NSS
/// lookups, disk and /proc I/O, configuration loads) never run realtime.
pub fn blocking_thread_start() {
    let _ = make_thread_normal();
}

static SETTINGS: OnceLock<Settings> = OnceLock::new();
static NET: OnceLock<tokio::runtime::Handle> = OnceLock::new();

/// What [`enter`] applied (`OFF` before it ran).
pub fn settings() -> Settings {
    SETTINGS.get().copied().unwrap_or(Settings::OFF)
}

/// At start, on the thread that will run the daemon loop, before the
/// runtime exists: locks memory and makes this thread realtime (with
/// `settings.on`), and starts the `hbd-rt-net` thread the receive tasks
/// run on (realtime too). Logs one warning when the policy or the lock
/// cannot be had.
pub fn enter(settings: Settings) {
    let _ = SETTINGS.set(settings);
    if settings.on {
        let mut failed = Vec::new();
        // SAFETY: plain syscall.
        if unsafe { libc::mlockall(libc::MCL_CURRENT | libc::MCL_FUTURE) } != 0 {
            failed.push(format!("mlockall: {}", io::Error::last_os_error()));
        }
        if let Err(e) = make_thread_realtime(settings.priority) {
            failed.push(format!("SCHED_RR priority {}: {e}", settings.priority));
        }
        if failed.is_empty() {
            tracing::info!(
                priority = settings.priority,
                "realtime: keepalive path at SCHED_RR, memory locked"
            );
        } else {
            tracing::warn!(
                errors = %failed.join("; "),
                "realtime on, but not granted: the keepalive path runs at normal priority \
                 (a container, RLIMIT_RTPRIO or RLIMIT_MEMLOCK?)"
            );
        }
    }
    if let Err(e) = start_net(settings) {
        tracing::warn!(error = %e, "cannot start the receive thread: datagrams are received on the daemon's loop");
    }
}

fn start_net(settings: Settings) -> io::Result<()> {
    if NET.get().is_some() {
        return Ok(());
    }
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("hbd-rt-net".into())
        .spawn(move || {
            if settings.on {
                // Already warned about on the main thread if refused.
                let _ = make_thread_realtime(settings.priority);
            }
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .on_thread_start(blocking_thread_start)
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            };
            let _ = tx.send(Ok(rt.handle().clone()));
            rt.block_on(std::future::pending::<()>());
        })?;
    let handle = rx
        .recv()
        .map_err(|_| io::Error::other("the receive thread ended"))??;
    let _ = NET.set(handle);
    Ok(())
}

/// The runtime the media's receive tasks run on: `hbd-rt-net` once
/// [`enter`] started it, else the caller's (tests, tools).
pub fn net_handle() -> tokio::runtime::Handle {
    NET.get()
        .cloned()
        .unwrap_or_else(tokio::runtime::Handle::current)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_thread_stays_normal() {
        std::thread::spawn(|| {
            make_thread_normal().unwrap();
            assert!(!thread_is_realtime());
        })
        .join()
        .unwrap();
    }

    #[test]
    fn realtime_thread_children_start_normal() {
        // Needs CAP_SYS_NICE (or RLIMIT_RTPRIO); skipped where refused.
        std::thread::spawn(|| {
            if make_thread_realtime(1).is_err() {
                eprintln!("SCHED_RR refused here: skipped");
                return;
            }
            assert!(thread_is_realtime());
            let child = std::thread::spawn(thread_is_realtime).join().unwrap();
            assert!(!child, "a thread created by a realtime thread inherited it");
            make_thread_normal().unwrap();
            assert!(!thread_is_realtime());
        })
        .join()
        .unwrap();
    }
}
