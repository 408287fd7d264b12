//! Helpers for the seed scenarios: whole nodes killed by network namespace,
//! a client that keeps writing rows through the VIP and records what was
//! acknowledged, and a guard that kills every process left in the lab's
//! namespaces (servers started by agents outlive hbd), also after a panic.
#![allow(dead_code)]

use super::*;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

/// The pids of every process in network namespace `ns` (`ip netns pids`).
pub fn netns_pids(ns: &str) -> Vec<i32> {
    let out = Command::new("ip")
        .args(["netns", "pids", ns])
        .output()
        .expect("ip netns pids");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .filter(|&p| p != std::process::id() as i32)
        .collect()
}

/// SIGKILLs every process in `ns` (these are all the lab's: hbd, the device
/// process, and what the agents started) and waits until they are gone.
/// Repeats while new ones appear (an agent forking as it dies).
///
/// The device processes (`hbd-disk`) die first: one that hbd started shares
/// hbd's mount namespace, and if it were the last process to leave it, its
/// exit would unmount the ext4 on its own loop device and wait forever for
/// the FUSE requests only it could answer (a D-state process and a loop
/// device that never go away). Killed first, and waited for until its last
/// thread is gone, it leaves the unmount to the others, by when its FUSE
/// connection is closed and I/O fails at once.
pub fn kill_netns(ns: &str) {
    for _ in 0..10 {
        let pids = netns_pids(ns);
        if pids.is_empty() {
            return;
        }
        let (devices, others): (Vec<i32>, Vec<i32>) = pids.into_iter().partition(|p| {
            fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == "hbd-disk")
        });
        for batch in [devices, others] {
            for &p in &batch {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(p),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            for &p in &batch {
                wait_all_threads_gone(p);
            }
        }
    }
}

/// Waits (up to 2 minutes) until every thread of `pid` has exited: a
/// zombie leader is not enough, its other threads may still be exiting
/// (and holding its namespaces).
pub fn wait_all_threads_gone(pid: i32) {
    let deadline = Instant::now() + TIMEOUT * 4;
    while Instant::now() < deadline {
        let threads = fs::read_dir(format!("/proc/{pid}/task")).map_or(0, |d| d.count());
        if threads == 0 || (threads == 1 && !alive(pid)) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Processes in `ns` whose command name (`/proc/PID/comm`) is `comm`.
pub fn netns_pids_named(ns: &str, comm: &str) -> Vec<i32> {
    netns_pids(ns)
        .into_iter()
        .filter(|p| fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == comm))
        .collect()
}

/// Kills every process in the named namespaces when dropped. Declare it
/// after the lab so it runs first (before the namespaces are removed).
pub struct Reaper(pub Vec<String>);

impl Drop for Reaper {
    fn drop(&mut self) {
        for ns in &self.0 {
            kill_netns(ns);
        }
    }
}

/// What the client saw: every acknowledged id with when, and the failures.
#[derive(Default)]
pub struct Record {
    pub acked: Vec<(u64, Instant)>,
    pub failed: u64,
}

/// A client in the lab's client namespace posting `POST /rows?id=N` to
/// `url` (ids 1, 2, 3... each tried once) until stopped; an id counts as
/// acknowledged only when the answer is 200.
pub struct Client {
    stop: Arc<AtomicBool>,
    pub record: Arc<Mutex<Record>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Client {
    pub fn start(ns: String, url: String) -> Client {
        let stop = Arc::new(AtomicBool::new(false));
        let record = Arc::new(Mutex::new(Record::default()));
        let (s, r) = (stop.clone(), record.clone());
        let thread = std::thread::spawn(move || {
            let mut id = 0u64;
            while !s.load(Ordering::SeqCst) {
                id += 1;
                let code = curl(&ns, &["-X", "POST", &format!("{url}/rows?id={id}")], 3)
                    .map(|o| o.0)
                    .unwrap_or(0);
                let mut rec = r.lock().unwrap();
                if code == 200 {
                    rec.acked.push((id, Instant::now()));
                } else {
                    rec.failed += 1;
                    drop(rec);
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        });
        Client {
            stop,
            record,
            thread: Some(thread),
        }
    }

    pub fn acked(&self) -> usize {
        self.record.lock().unwrap().acked.len()
    }

    /// Waits until `n` more ids than now are acknowledged.
    pub fn wait_more(&self, n: usize, timeout: Duration) -> bool {
        let want = self.acked() + n;
        let start = Instant::now();
        while start.elapsed() < timeout {
            if self.acked() >= want {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// Stops the client and returns the acknowledged ids in order.
    pub fn finish(mut self) -> Vec<(u64, Instant)> {
        self.halt();
        std::mem::take(&mut self.record.lock().unwrap().acked)
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.halt();
    }
}

/// `curl ARGS` in namespace `ns` with a `max_secs` limit: (status, body).
pub fn curl(ns: &str, args: &[&str], max_secs: u32) -> Option<(u16, String)> {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "curl", "-s", "--connect-timeout", "1"])
        .args(["-m", &max_secs.to_string(), "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n')?;
    Some((code.trim().parse().ok()?, body.to_string()))
}

/// The longest time between two consecutive acknowledgements: the
/// service's unavailability as the client saw it.
pub fn longest_gap(acked: &[(u64, Instant)]) -> Duration {
    acked
        .windows(2)
        .map(|w| w[1].1 - w[0].1)
        .max()
        .unwrap_or_default()
}
