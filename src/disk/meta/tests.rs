//! Unit tests of `disk/meta.rs`.

use super::*;
use std::process::Command;

const MIB: u64 = 1 << 20;

fn temp_dev(size: u64) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("backing");
    let f = File::create(&p).unwrap();
    f.set_len(size).unwrap();
    (dir, p)
}

#[test]
fn layout_sizes() {
    for size in [
        MIB + AL_SIZE + 2 * BLOCK,
        2 * MIB,
        64 * MIB,
        64 * MIB + 1234,
        128 * MIB,
        128 * MIB + AL_SIZE + 2 * BLOCK,
        1 << 30,
        10 << 30,
        (1u64 << 40) + 4095,
        16 << 40,
    ] {
        let l = Layout::for_device(size).unwrap();
        assert_eq!(l.data_size % BLOCK, 0, "{size}");
        assert_eq!(l.al_offset, l.data_size);
        assert_eq!(l.bm_offset, l.al_offset + AL_SIZE);
        assert_eq!(l.sb_offset, l.bm_offset + l.bm_pages * BLOCK);
        assert_eq!(l.sb_offset + BLOCK, size / BLOCK * BLOCK);
        assert_eq!(l.bm_bits, l.data_size / BM_BLOCK);
        // Enough bitmap pages, and not one too many.
        assert!(l.bm_pages * BM_BITS_PER_PAGE >= l.bm_bits);
        assert!((l.bm_pages - 1) * BM_BITS_PER_PAGE < l.bm_bits + BM_BITS_PER_PAGE);
        // Overhead is small: AL + superblock + ~1/32768 of the device.
        let overhead = size - l.data_size;
        assert!(
            overhead <= AL_SIZE + 2 * BLOCK + size / 32768 + BLOCK,
            "{size}"
        );
    }
    // Exact values for a 64 MiB device: 1 bitmap page.
    let l = Layout::for_device(64 * MIB).unwrap();
    assert_eq!(l.bm_pages, 1);
    assert_eq!(l.data_size, 64 * MIB - AL_SIZE - 2 * BLOCK);
    // 1 GiB: 8 pages (each page 128 MiB of data).
    let l = Layout::for_device(1 << 30).unwrap();
    assert_eq!(l.bm_pages, 8);
    assert_eq!(l.data_size, (1 << 30) - AL_SIZE - 9 * BLOCK);
    assert!(matches!(
        Layout::for_device(MIB),
        Err(MetaError::TooSmall { .. })
    ));
    assert!(matches!(
        Layout::for_device(0),
        Err(MetaError::TooSmall { .. })
    ));
}

#[test]
fn create_open_round_trip() {
    let (_d, p) = temp_dev(64 * MIB);
    let m = create(&p, false).unwrap();
    assert_eq!(m.uuids.current, UUID_JUST_CREATED);
    assert_eq!(m.flags, Flags::default());
    let (mut m2, f) = open(&p).unwrap();
    assert_eq!(m, m2);
    m2.uuids = Uuids {
        current: 0x1234,
        bitmap: 0x55,
        history: [7, 9],
    };
    m2.flags.consistent = true;
    m2.flags.crashed_primary = true;
    m2.al_seq = 42;
    write_superblock(&f, &m2).unwrap();
    drop(f);
    let (m3, _) = open(&p).unwrap();
    assert_eq!(m3, m2);
    assert_eq!(
        m3.flags,
        Flags {
            consistent: true,
            crashed_primary: true,
            ..Flags::default()
        }
    );
    let bm = read_bitmap(&open(&p).unwrap().1, &m3.layout).unwrap();
    assert_eq!(bm.count(), 0);
}

/// The connected and primary indicators round-trip through the
/// superblock in spare bits; the older bits keep their values, so
/// metadata written before them reads as "neither" (wfc-timeout, the
/// cautious wait) and an older hbd ignores them.
#[test]
fn indicator_flags_round_trip_in_spare_bits() {
    let all = Flags {
        consistent: true,
        was_up_to_date: true,
        crashed_primary: true,
        peer_outdated: true,
        al_disabled: true,
        connected_ind: true,
        primary_ind: true,
    };
    assert_eq!(all.to_bits(), 0x7f);
    assert_eq!(Flags::from_bits(0x7f), all);
    let old = Flags::from_bits(F_CONSISTENT | F_WAS_UP_TO_DATE | F_CRASHED_PRIMARY);
    assert!(old.consistent && old.was_up_to_date && old.crashed_primary);
    assert!(!old.connected_ind && !old.primary_ind);
    let (_d, p) = temp_dev(8 * MIB);
    create(&p, false).unwrap();
    let (mut m, f) = open(&p).unwrap();
    for (connected_ind, primary_ind) in [(true, false), (false, true), (true, true)] {
        m.flags = Flags {
            consistent: true,
            connected_ind,
            primary_ind,
            ..Flags::default()
        };
        write_superblock(&f, &m).unwrap();
        let (m2, _) = open(&p).unwrap();
        assert_eq!(m2.flags, m.flags);
    }
}

#[test]
fn second_create_refused_without_force() {
    let (_d, p) = temp_dev(8 * MIB);
    let m1 = create(&p, false).unwrap();
    assert!(matches!(create(&p, false), Err(MetaError::Exists)));
    let m2 = create(&p, true).unwrap();
    assert_ne!(m1.device_uuid, m2.device_uuid);
    assert_eq!(open(&p).unwrap().0, m2);
}

#[test]
fn corrupt_superblock_detected() {
    let (_d, p) = temp_dev(8 * MIB);
    let m = create(&p, false).unwrap();
    for at in [0u64, 8, 40, 100, 2000, 4095] {
        let f = open_rw(&p).unwrap();
        let mut b = [0u8; 1];
        f.read_exact_at(&mut b, m.layout.sb_offset + at).unwrap();
        f.write_all_at(&[b[0] ^ 0x10], m.layout.sb_offset + at)
            .unwrap();
        assert!(
            matches!(open(&p), Err(MetaError::Corrupt(_))),
            "flip at {at}"
        );
        // Never used, and create-md needs force to overwrite it.
        assert!(matches!(create(&p, false), Err(MetaError::Corrupt(_))));
        f.write_all_at(&b, m.layout.sb_offset + at).unwrap();
        assert_eq!(open(&p).unwrap().0, m);
    }
}

#[test]
fn impossible_geometry_is_corrupt() {
    let (_d, p) = temp_dev(8 * MIB);
    let mut m = create(&p, false).unwrap();
    let f = open_rw(&p).unwrap();
    let mut b = m.encode();
    put64(&mut b, 24, m.layout.data_size + BLOCK); // data size lies
    let crc = crc32fast::hash(&b[..CRC_AT]);
    put32(&mut b, CRC_AT, crc);
    f.write_all_at(&b, m.layout.sb_offset).unwrap();
    assert!(matches!(open(&p), Err(MetaError::Corrupt(_))));
    m.layout.device_size = 1; // recorded size impossible
    let mut b = m.encode();
    let crc = crc32fast::hash(&b[..CRC_AT]);
    put32(&mut b, CRC_AT, crc);
    f.write_all_at(&b, m.layout.sb_offset).unwrap();
    assert!(matches!(open(&p), Err(MetaError::Corrupt(_))));
}

#[test]
fn no_metadata() {
    let (_d, p) = temp_dev(8 * MIB);
    assert!(matches!(open(&p), Err(MetaError::NoMetadata)));
    let (_d2, small) = temp_dev(MIB);
    assert!(matches!(open(&small), Err(MetaError::TooSmall { .. })));
    assert!(matches!(
        create(&small, false),
        Err(MetaError::TooSmall { .. })
    ));
}

#[test]
fn size_changed_detected() {
    for (from, to) in [
        (16 * MIB, 16 * MIB - BLOCK),     // sb cut off
        (16 * MIB, 16 * MIB - 100),       // sb partly cut
        (16 * MIB, 16 * MIB - 6 * BLOCK), // only part of AL left
        (16 * MIB, 16 * MIB + 100),       // grown by < 4 KiB
        (16 * MIB, 16 * MIB + BLOCK),
        (16 * MIB, 32 * MIB),
        (16 * MIB + 100, 16 * MIB + 200),
    ] {
        let (_d, p) = temp_dev(from);
        create(&p, false).unwrap();
        let f = open_rw(&p).unwrap();
        f.set_len(to).unwrap();
        match open(&p) {
            Err(MetaError::SizeChanged { recorded, actual }) => {
                assert_eq!((recorded, actual), (from, to))
            }
            other => panic!("{from}->{to}: {other:?}"),
        }
        // create-md without force refuses to destroy it.
        assert!(matches!(create(&p, false), Err(MetaError::Exists)));
        create(&p, true).unwrap();
        assert_eq!(open(&p).unwrap().0.layout.device_size, to);
    }
}

#[test]
fn bitmap_ops() {
    let mut bm = Bitmap::new(100_000);
    assert_eq!(bm.set_range(0, 1), 1);
    assert_eq!(bm.set_range(4095, 2), 1); // blocks 0 and 1; 0 already set
    assert_eq!(bm.count(), 2);
    assert_eq!(bm.set_range(10 * BM_BLOCK, 100 * BM_BLOCK), 100);
    assert_eq!(bm.count(), 102);
    // Clear only clears fully covered blocks.
    assert_eq!(bm.clear_range(10 * BM_BLOCK + 1, 2 * BM_BLOCK), 1);
    assert!(bm.get(10) && !bm.get(11) && bm.get(12));
    let ranges: Vec<_> = bm.iter_set_ranges().collect();
    assert_eq!(
        ranges,
        vec![
            (0, 2 * BM_BLOCK),
            (10 * BM_BLOCK, BM_BLOCK),
            (12 * BM_BLOCK, 98 * BM_BLOCK)
        ]
    );
    // Tail: last bit, beyond the end is ignored.
    assert_eq!(bm.set_range(99_999 * BM_BLOCK, 10 * BM_BLOCK), 1);
    assert_eq!(
        bm.iter_set_ranges().last(),
        Some((99_999 * BM_BLOCK, BM_BLOCK))
    );
    let mut other = Bitmap::new(100_000);
    other.set_range(50 * BM_BLOCK, 200 * BM_BLOCK);
    let before = bm.count();
    let added = bm.merge(&other).unwrap();
    assert_eq!(bm.count(), before + added);
    assert_eq!(added, 250 - 110);
    assert!(bm.merge(&Bitmap::new(5)).is_err());
    // Pages: 100_000 bits = 4 pages; round trip.
    assert_eq!(bm.pages(), 4);
    let pages = bm.to_pages();
    assert_eq!(pages.len() as u64, 4 * BLOCK);
    let back = Bitmap::from_pages(100_000, &pages).unwrap();
    assert_eq!(back.words, bm.words);
    assert_eq!(back.count(), bm.count());
    // Dirty page tracking.
    let mut bm = Bitmap::new(100_000);
    bm.set_range(0, 1);
    bm.set_range(BM_BITS_PER_PAGE * 2 * BM_BLOCK, 1);
    assert_eq!(bm.take_dirty_pages(), vec![0, 2]);
    assert!(bm.take_dirty_pages().is_empty());
    bm.set_all();
    assert_eq!(bm.count(), 100_000);
    bm.clear_range(0, u64::MAX);
    assert_eq!(bm.count(), 0);
}

#[test]
fn bitmap_disk_round_trip() {
    let (_d, p) = temp_dev(300 * MIB);
    let m = create(&p, false).unwrap();
    let (_, f) = open(&p).unwrap();
    let l = m.layout;
    assert_eq!(l.bm_pages, 3);
    let mut bm = read_bitmap(&f, &l).unwrap();
    bm.set_range(0, 3 * BM_BLOCK);
    bm.set_range(200 * MIB, MIB);
    let dirty = bm.take_dirty_pages();
    assert_eq!(dirty, vec![0, 1]);
    write_bitmap_pages(&f, &l, &bm, &dirty).unwrap();
    let back = read_bitmap(&f, &l).unwrap();
    assert_eq!(back.count(), 3 + 256);
    assert_eq!(back.words, bm.words);
    assert!(write_bitmap_pages(&f, &l, &bm, &[3]).is_err());
    write_bitmap(&f, &l, &Bitmap::for_layout(&l)).unwrap();
    assert_eq!(read_bitmap(&f, &l).unwrap().count(), 0);
}

#[test]
fn al_mark_crash_recover() {
    let (_d, p) = temp_dev(256 * MIB);
    let m = create(&p, false).unwrap();
    let (_, f) = open(&p).unwrap();
    let l = m.layout;
    let r = ActivityLog::recover(&f, &l).unwrap();
    assert_eq!(
        r,
        AlRecovery {
            seq: 1,
            extents: vec![]
        }
    );
    let mut al = ActivityLog::new(4, r.seq + 1).unwrap();
    let mk = al.mark(0, 4096).unwrap();
    assert!(mk.transaction_needed && mk.evicted.is_empty());
    // Same extent before the transaction is durable: still needed.
    assert!(al.mark(100, 10).unwrap().transaction_needed);
    al.write_transaction(&f, &l).unwrap();
    assert!(!al.mark(AL_EXTENT - 1, 1).unwrap().transaction_needed);
    // A write straddling extents 0 and 1.
    assert!(al.mark(AL_EXTENT - 1, 2).unwrap().transaction_needed);
    al.mark(10 * AL_EXTENT, 1).unwrap();
    al.mark(20 * AL_EXTENT, 1).unwrap();
    al.write_transaction(&f, &l).unwrap();
    assert_eq!(al.hot_extents(), vec![0, 1, 10, 20]);
    // Full, and every extent has writes in flight.
    assert!(matches!(
        al.mark(30 * AL_EXTENT, 1),
        Err(MetaError::AlFull(4))
    ));
    // Complete the writes in extent 10: evictable.
    al.complete(10 * AL_EXTENT, 1);
    let mk = al.mark(30 * AL_EXTENT, 1).unwrap();
    assert_eq!(mk.evicted, vec![10]);
    assert!(mk.transaction_needed);
    assert_eq!(l.bm_pages_for_extent(10), vec![0]);
    assert_eq!(l.bm_pages_for_extent(32), vec![1]);
    // Many transactions: wrap the ring.
    for _ in 0..(AL_TRANSACTIONS * 2 + 3) {
        al.write_transaction(&f, &l).unwrap();
    }
    let hot = al.hot_extents();
    assert_eq!(hot, vec![0, 1, 20, 30]);
    // Not yet durable: a mark whose transaction is not written is not
    // in the recovered set.
    al.complete(20 * AL_EXTENT, 1);
    let mk = al.mark(40 * AL_EXTENT, 1).unwrap();
    assert_eq!(mk.evicted, vec![20]);
    // Crash: drop without close.
    let seq = al.next_seq() - 1;
    drop(al);
    drop(f);
    let (_, f) = open(&p).unwrap();
    let r = ActivityLog::recover(&f, &l).unwrap();
    assert_eq!(r, AlRecovery { seq, extents: hot });
    // A torn newest slot falls back to the previous transaction.
    let f2 = open_rw(&p).unwrap();
    f2.write_all_at(&[0xff; 16], l.al_slot_offset(seq) + 100)
        .unwrap();
    let r2 = ActivityLog::recover(&f, &l).unwrap();
    assert_eq!(r2.seq, seq - 1);
    assert_eq!(r2.extents, vec![0, 1, 20, 30]);
    // Clean close: nothing to resync.
    let mut al = ActivityLog::new(4, r.seq + 1).unwrap();
    al.mark(0, 1).unwrap();
    al.write_transaction(&f, &l).unwrap();
    al.complete(0, 1);
    al.close(&f, &l).unwrap();
    assert_eq!(
        ActivityLog::recover(&f, &l).unwrap().extents,
        Vec::<u64>::new()
    );
    assert!(ActivityLog::new(0, 1).is_err());
    assert!(ActivityLog::new(AL_MAX_EXTENTS + 1, 1).is_err());
}

#[test]
fn al_full_capacity_fits_one_block() {
    let (_d, p) = temp_dev(5 << 30);
    let m = create(&p, false).unwrap();
    let (_, f) = open(&p).unwrap();
    let mut al = ActivityLog::new(AL_MAX_EXTENTS, 2).unwrap();
    for e in 0..AL_MAX_EXTENTS as u64 {
        al.mark(e * AL_EXTENT, 1).unwrap();
    }
    al.write_transaction(&f, &m.layout).unwrap();
    let r = ActivityLog::recover(&f, &m.layout).unwrap();
    assert_eq!(r.extents, (0..AL_MAX_EXTENTS as u64).collect::<Vec<_>>());
}

#[test]
fn data_writes_never_touch_metadata() {
    let (_d, p) = temp_dev(32 * MIB);
    let m = create(&p, false).unwrap();
    let l = m.layout;
    assert!(l.in_data_area(0, l.data_size));
    assert!(!l.in_data_area(0, l.data_size + 1));
    assert!(!l.in_data_area(l.al_offset, 1));
    assert!(!l.in_data_area(u64::MAX, 2));
    // Fill the whole data area, as the device would.
    let f = open_rw(&p).unwrap();
    let chunk = vec![0xa5u8; MIB as usize];
    let mut off = 0;
    while off < l.data_size {
        let n = (l.data_size - off).min(MIB);
        assert!(l.in_data_area(off, n));
        f.write_all_at(&chunk[..n as usize], off).unwrap();
        off += n;
    }
    assert_eq!(off, l.al_offset);
    drop(f);
    let (m2, f) = open(&p).unwrap();
    assert_eq!(m2, m);
    assert_eq!(read_bitmap(&f, &l).unwrap().count(), 0);
    assert_eq!(ActivityLog::recover(&f, &l).unwrap().seq, 1);
    // Extents of the data area all fit u32 and end before the AL.
    assert!(l.al_extents() * AL_EXTENT >= l.data_size);
    assert!((l.al_extents() - 1) * AL_EXTENT < l.data_size);
}

/// A loop device detached on drop, also when the test panics.
struct Loop(String);
impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(&self.0).status();
    }
}

#[test]
fn loop_device_blkgetsize64() {
    let can = nix::unistd::geteuid().is_root()
        && Path::new("/dev/loop-control").exists()
        && Command::new("losetup").arg("--version").output().is_ok();
    if !can {
        eprintln!("skipping: needs root, losetup and /dev/loop-control");
        return;
    }
    let size = 40 * MIB + 3 * BLOCK;
    let (_d, p) = temp_dev(size);
    let out = Command::new("losetup")
        .args(["--find", "--show"])
        .arg(&p)
        .output()
        .unwrap();
    assert!(out.status.success(), "losetup: {out:?}");
    let dev = Loop(String::from_utf8(out.stdout).unwrap().trim().to_string());
    let devp = Path::new(&dev.0);
    let f = File::open(devp).unwrap();
    assert!(f.metadata().unwrap().file_type().is_block_device());
    assert_eq!(device_size(&f).unwrap(), size);
    assert!(matches!(open(devp), Err(MetaError::NoMetadata)));
    let m = create(devp, false).unwrap();
    assert_eq!(m.layout, Layout::for_device(size).unwrap());
    let (m2, bf) = open(devp).unwrap();
    assert_eq!(m2, m);
    let mut bm = read_bitmap(&bf, &m.layout).unwrap();
    bm.set_range(MIB, MIB);
    write_bitmap_pages(&bf, &m.layout, &bm, &bm.clone().take_dirty_pages()).unwrap();
    drop(bf);
    // Seen through the backing file too: superblock at the file's end.
    let (mf, ff) = open(&p).unwrap();
    assert_eq!(mf, m);
    assert_eq!(read_bitmap(&ff, &mf.layout).unwrap().count(), 256);
}
