//! Issue 15: many replicated writes in flight. Several threads write
//! overlapping ranges of the Primary's device at once (O_DIRECT, so every
//! write reaches the device process and several are in flight between the
//! nodes, applied concurrently on the Secondary); afterwards, with no
//! resync in between, both backing files hold exactly the same bytes:
//! overlapping writes landed in the same order on both nodes. Needs root,
//! /dev/fuse and loop devices.

mod common;

use common::disk::*;
use hbd::disk::ctl::DiskRequest;
use std::fs::OpenOptions;
use std::os::unix::fs::{FileExt, OpenOptionsExt};

/// A 4 KiB-aligned buffer (O_DIRECT).
struct Aligned {
    ptr: *mut u8,
    layout: std::alloc::Layout,
}

impl Aligned {
    fn new(len: usize) -> Aligned {
        let layout = std::alloc::Layout::from_size_align(len, 4096).unwrap();
        // SAFETY: non-zero size.
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
        assert!(!ptr.is_null());
        Aligned { ptr, layout }
    }
    fn buf(&mut self) -> &mut [u8] {
        // SAFETY: `ptr` owns `layout.size()` initialized bytes.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.layout.size()) }
    }
}

impl Drop for Aligned {
    fn drop(&mut self) {
        // SAFETY: allocated with this layout.
        unsafe { std::alloc::dealloc(self.ptr, self.layout) }
    }
}

/// splitmix64: reproducible contents and ranges per thread.
fn mix(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[test]
fn concurrent_overlapping_writes_leave_both_replicas_identical() {
    let mut d = DiskLab::new(32 * MIB, "");
    d.start(1);
    d.start(2);
    d.wait_connected();
    d.ok(1, DiskRequest::Primary { force: true });
    d.wait_in_sync();
    let resyncs_before = (resyncs(&d.log(1)).len(), resyncs(&d.log(2)).len());

    // 8 writers over the same 1 MiB window (and a few beyond): 4 KiB to
    // 256 KiB each, so most writes overlap others in flight.
    const THREADS: u64 = 8;
    const WRITES: u64 = 120;
    const WINDOW: u64 = MIB;
    let dev = d.device(1);
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let dev = dev.clone();
            s.spawn(move || {
                let f = OpenOptions::new()
                    .write(true)
                    .custom_flags(libc::O_DIRECT)
                    .open(&dev)
                    .unwrap();
                let mut seed = t * 7919 + 1;
                let mut buf = Aligned::new(256 * 1024);
                for w in 0..WRITES {
                    let blocks = 1 + mix(&mut seed) % 64;
                    let len = (blocks * 4096) as usize;
                    let base = if w % 10 == 9 { 8 * MIB } else { 0 };
                    let off = base + (mix(&mut seed) % (WINDOW / 4096)) * 4096;
                    let fill = mix(&mut seed);
                    for (k, chunk) in buf.buf()[..len].chunks_mut(8).enumerate() {
                        chunk.copy_from_slice(&(fill ^ k as u64).to_le_bytes());
                    }
                    f.write_all_at(&buf.buf()[..len], off).unwrap();
                }
                f.sync_all().unwrap();
            });
        }
    });

    // Every write completed on both backing files (protocol C); no bit set,
    // no resync ran.
    let s1 = d.status(1);
    assert_eq!(s1.connection.as_str(), "Connected", "{s1:?}");
    assert_eq!(s1.out_of_sync_bytes, 0, "{s1:?}");
    d.ok(1, DiskRequest::Disconnect);
    d.wait_for("n2 sees the disconnect", |d| {
        d.try_status(2)
            .is_some_and(|s| s.connection.as_str() != "Connected")
    });
    assert_eq!(
        resyncs_before,
        (resyncs(&d.log(1)).len(), resyncs(&d.log(2)).len()),
        "a resync ran"
    );
    let (a, b) = (d.data_digest(1), d.data_digest(2));
    assert_eq!(
        a, b,
        "the replicas differ after concurrent overlapping writes"
    );
    // Not all zeros: the writes did land.
    let mut probe = vec![0u8; 4096];
    let f = OpenOptions::new().read(true).open(d.backing(2)).unwrap();
    let any = (0..WINDOW / 4096).any(|k| {
        f.read_exact_at(&mut probe, k * 4096).unwrap();
        probe.iter().any(|&x| x != 0)
    });
    assert!(any, "nothing was written");
}
