//! What a FUSE request pays to reach the device's state, side by side in one
//! run: `cargo bench --bench handoff`.
//!
//! The device process (`disk/device/`) keeps its sans-IO machines in one
//! `Mutex<Core>`; the FUSE server threads (blocking) lock it for each
//! request. The daemon's shape is instead one loop that owns all state, fed
//! over channels. For the device that would put a round trip from the FUSE
//! thread to the loop task and back on every application write and flush.
//! This measures both ways of doing the same small state update (mark a
//! range in a bitmap and read a state), with one FUSE thread and with four
//! at once (the device's server has four), in nanoseconds per request:
//! medians of 15 rounds, and the ratio channel ÷ mutex.

use std::hint::black_box;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};

const ROUNDS: usize = 15;
const ITERS: u32 = 20_000;
const THREADS: usize = 4;

/// Stands for the device's core: a bitmap and a state.
#[derive(Default)]
struct Core {
    bits: Vec<u64>,
    frozen: bool,
}

impl Core {
    fn new() -> Core {
        Core {
            bits: vec![0; 4096],
            frozen: false,
        }
    }
    /// What a write does under the lock: check the state, mark its range.
    fn on_write(&mut self, offset: u64) -> bool {
        let bit = (offset / 4096) as usize % (self.bits.len() * 64);
        self.bits[bit / 64] |= 1 << (bit % 64);
        !self.frozen
    }
}

type Request = (u64, oneshot::Sender<bool>);

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(|a, b| a.total_cmp(b));
    samples[samples.len() / 2]
}

/// ns per request, `threads` FUSE threads each doing `ITERS` requests.
fn with_mutex(threads: usize) -> f64 {
    let core = Arc::new(Mutex::new(Core::new()));
    median(
        (0..ROUNDS)
            .map(|_| {
                let t = Instant::now();
                std::thread::scope(|s| {
                    for n in 0..threads {
                        let core = core.clone();
                        s.spawn(move || {
                            for i in 0..ITERS {
                                let off = u64::from(i) * 4096 + n as u64;
                                black_box(core.lock().unwrap().on_write(off));
                            }
                        });
                    }
                });
                t.elapsed().as_nanos() as f64 / f64::from(ITERS * threads as u32)
            })
            .collect(),
    )
}

fn with_channel(threads: usize) -> f64 {
    // The device's runtime: a small multi-threaded tokio runtime.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel::<Request>();
    rt.spawn(async move {
        let mut core = Core::new();
        while let Some((off, reply)) = rx.recv().await {
            let _ = reply.send(core.on_write(off));
        }
    });
    let r = median(
        (0..ROUNDS)
            .map(|_| {
                let t = Instant::now();
                std::thread::scope(|s| {
                    for n in 0..threads {
                        let tx = tx.clone();
                        s.spawn(move || {
                            for i in 0..ITERS {
                                let off = u64::from(i) * 4096 + n as u64;
                                let (rtx, rrx) = oneshot::channel();
                                tx.send((off, rtx)).unwrap();
                                black_box(rrx.blocking_recv().unwrap());
                            }
                        });
                    }
                });
                t.elapsed().as_nanos() as f64 / f64::from(ITERS * threads as u32)
            })
            .collect(),
    );
    drop(tx);
    rt.shutdown_background();
    r
}

fn main() {
    println!("ns per request (median of {ROUNDS} rounds of {ITERS} per thread)");
    println!(
        "{:<28} {:>10} {:>10} {:>8}",
        "", "mutex", "channel", "ratio"
    );
    for threads in [1, THREADS] {
        let m = with_mutex(threads);
        let c = with_channel(threads);
        println!(
            "{:<28} {:>10.0} {:>10.0} {:>7.1}x",
            format!("{threads} FUSE thread(s)"),
            m,
            c,
            c / m
        );
    }
}
