//! On-disk metadata of hbd's replicated device, `meta-disk internal`.
//!
//! As DRBD 8.4's internal meta data, everything lives at the END of the
//! backing store (a file or a block device): the data area starts at offset
//! 0, so in an emergency the backing store can be mounted directly, without
//! hbd.
//!
//! ```text
//!  0                      al_offset         bm_offset              sb_offset   device_size
//!  |                       |                 |                      |           |
//!  +-----------------------+-----------------+----------------------+-----------+~~~~+
//!  |  data area            | activity log    | bitmap               | superblock|tail|
//!  |  (data_size bytes,    | AL_TRANSACTIONS | bm_pages x 4 KiB     | 4 KiB     |<4K |
//!  |   multiple of 4 KiB)  | x 4 KiB ring    | 1 bit per 4 KiB data |           |    |
//!  +-----------------------+-----------------+----------------------+-----------+~~~~+
//!                          ^ data_size == al_offset
//! ```
//!
//! * All offsets are absolute and multiples of 4 KiB. `sb_offset` is the last
//!   whole 4 KiB block of the device (a tail of less than 4 KiB, if the
//!   device size is not a multiple of 4 KiB, is unused).
//! * The **superblock** (little endian): magic `b"hbd-meta"`, format version,
//!   flags, device size at create-md time, data size, generation UUIDs
//!   (current, bitmap, history\[2\]), device uuid, activity-log geometry
//!   (offset, transaction count, extent size), bitmap geometry (offset,
//!   block size, pages, bits), the last AL sequence number seen, its own
//!   offset, and a CRC32 over bytes `0..4092` stored at `4092..4096`. It is
//!   always written as one whole 4 KiB block followed by `fdatasync`.
//! * The **bitmap**: bit `i` set = 4 KiB block `i` of the data area may
//!   differ from the peer (out of sync). Stored as little-endian `u64`
//!   words, 4 KiB pages; one page covers 128 MiB of data. Bits past the end
//!   of the data area are zero.
//! * The **activity log**: a ring of [`AL_TRANSACTIONS`] 4 KiB blocks.
//!   Transaction with sequence number `s` goes to slot `s % AL_TRANSACTIONS`.
//!   Unlike DRBD (which writes deltas), each transaction is a full snapshot
//!   of the hot set (up to [`AL_MAX_EXTENTS`] 4 MiB extents), so recovery is
//!   "the valid transaction with the highest sequence number". A torn write
//!   of the newest transaction fails its CRC and the previous snapshot — a
//!   superset of what was durable-hot before — is used instead; no write to
//!   a newly hot extent is allowed before the transaction naming it is
//!   durable ([`AlMark::transaction_needed`]).
//!
//! Compared with DRBD 8.4 (`struct meta_data_on_disk`, `md_offset`,
//! `al_offset`, `bm_offset`): same idea (superblock last, bitmap and AL
//! before it, data from 0), but DRBD puts the 32 KiB AL directly before the
//! superblock and the bitmap before the AL; here the order is
//! data | AL | bitmap | superblock, and the format is our own.
//!
//! Size changes: the superblock records the device size it was created
//! for. If the device has been truncated or grown since, the superblock is
//! not at the expected place; [`open`] then looks back over the last
//! [`SCAN_WINDOW`] bytes for a superblock or an AL block (which also records
//! the device size) and reports [`MetaError::SizeChanged`]. Metadata that
//! cannot be found at all is [`MetaError::NoMetadata`].

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{FileExt, FileTypeExt};
use std::path::Path;

mod al;
use al::AlTransaction;
pub use al::{ActivityLog, AlMark, AlRecovery};

/// Bitmap granularity: one bit per 4 KiB of data area.
pub const BM_BLOCK: u64 = 4096;
/// Activity-log extent size.
pub const AL_EXTENT: u64 = 4 << 20;
/// Size of the superblock, one AL transaction and one bitmap page.
pub const BLOCK: u64 = 4096;
/// Bits per bitmap page.
pub const BM_BITS_PER_PAGE: u64 = BLOCK * 8;
/// Number of transaction slots in the AL ring.
pub const AL_TRANSACTIONS: u64 = 8;
/// Size of the activity log on disk (32 KiB, as DRBD's).
pub const AL_SIZE: u64 = AL_TRANSACTIONS * BLOCK;
/// Most extents one AL transaction (and so the AL) can name.
pub const AL_MAX_EXTENTS: usize = 1000;
/// Smallest data area accepted.
pub const MIN_DATA: u64 = 1 << 20;
/// How far before the expected superblock [`open`]/[`create`] look for
/// metadata of a device whose size changed.
pub const SCAN_WINDOW: u64 = 64 << 20;
/// Current generation UUID of freshly created metadata.
pub const UUID_JUST_CREATED: u64 = 4;
/// On-disk format version.
pub const VERSION: u32 = 1;

const SB_MAGIC: &[u8; 8] = b"hbd-meta";
const AL_MAGIC: &[u8; 8] = b"hbd-altr";
const CRC_AT: usize = BLOCK as usize - 4;
const AL_HDR: usize = 48;

const F_CONSISTENT: u32 = 1;
const F_WAS_UP_TO_DATE: u32 = 2;
const F_CRASHED_PRIMARY: u32 = 4;
const F_PEER_OUTDATED: u32 = 8;
const F_AL_DISABLED: u32 = 16;
/// DRBD's MDF_CONNECTED_IND and MDF_PRIMARY_IND (bits that older hbd left 0
/// and ignores: metadata written by either version reads in the other).
const F_CONNECTED_IND: u32 = 32;
const F_PRIMARY_IND: u32 = 64;

/// Errors of the metadata layer.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    #[error("meta data I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("device of {size} bytes is too small for meta-disk internal (need at least {min})")]
    TooSmall { size: u64, min: u64 },
    #[error("no hbd meta data found (run create-md first)")]
    NoMetadata,
    #[error("valid meta data already exists (use force to overwrite)")]
    Exists,
    #[error("meta data corrupt: {0}")]
    Corrupt(String),
    #[error("device size changed from {recorded} to {actual} bytes since create-md")]
    SizeChanged { recorded: u64, actual: u64 },
    #[error("activity log full: all {0} extents are in use")]
    AlFull(usize),
    #[error("bad argument: {0}")]
    Invalid(String),
}

/// Generation UUIDs as stored in the superblock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Uuids {
    pub current: u64,
    pub bitmap: u64,
    pub history: [u64; 2],
}

/// Superblock flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Flags {
    pub consistent: bool,
    pub was_up_to_date: bool,
    pub crashed_primary: bool,
    pub peer_outdated: bool,
    pub al_disabled: bool,
    /// MDF_CONNECTED_IND: the device was connected to its peer (past the
    /// handshake) when the superblock was last written.
    pub connected_ind: bool,
    /// MDF_PRIMARY_IND: the device was Primary when the superblock was
    /// last written. Set with `connected_ind` clear at attach, the node
    /// went down as the Primary of a degraded cluster: DRBD then waits
    /// `degr-wfc-timeout` instead of `wfc-timeout` (`drbd_adm_attach`,
    /// USE_DEGR_WFC_T).
    pub primary_ind: bool,
}

impl Flags {
    fn to_bits(self) -> u32 {
        let mut b = 0;
        for (on, bit) in [
            (self.consistent, F_CONSISTENT),
            (self.was_up_to_date, F_WAS_UP_TO_DATE),
            (self.crashed_primary, F_CRASHED_PRIMARY),
            (self.peer_outdated, F_PEER_OUTDATED),
            (self.al_disabled, F_AL_DISABLED),
            (self.connected_ind, F_CONNECTED_IND),
            (self.primary_ind, F_PRIMARY_IND),
        ] {
            if on {
                b |= bit;
            }
        }
        b
    }
    fn from_bits(b: u32) -> Flags {
        Flags {
            consistent: b & F_CONSISTENT != 0,
            was_up_to_date: b & F_WAS_UP_TO_DATE != 0,
            crashed_primary: b & F_CRASHED_PRIMARY != 0,
            peer_outdated: b & F_PEER_OUTDATED != 0,
            al_disabled: b & F_AL_DISABLED != 0,
            connected_ind: b & F_CONNECTED_IND != 0,
            primary_ind: b & F_PRIMARY_IND != 0,
        }
    }
}

/// Where everything is, for a device of a given size. All offsets absolute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub device_size: u64,
    /// Usable data area `[0, data_size)`; a multiple of 4 KiB; == `al_offset`.
    pub data_size: u64,
    pub al_offset: u64,
    pub bm_offset: u64,
    pub sb_offset: u64,
    /// Bitmap pages (4 KiB each) between `bm_offset` and `sb_offset`.
    pub bm_pages: u64,
    /// Bits in the bitmap: `data_size / BM_BLOCK`.
    pub bm_bits: u64,
}

impl Layout {
    /// The layout for a device of `device_size` bytes: superblock in the
    /// last whole 4 KiB block, the bitmap before it, the AL before that, and
    /// the data area is what is left (a multiple of 4 KiB).
    pub fn for_device(device_size: u64) -> Result<Layout, MetaError> {
        let min = MIN_DATA + AL_SIZE + 2 * BLOCK;
        let avail = device_size / BLOCK * BLOCK;
        if avail < min {
            return Err(MetaError::TooSmall {
                size: device_size,
                min,
            });
        }
        let sb_offset = avail - BLOCK;
        // Room for data + bitmap; each bitmap page costs 4 KiB and covers
        // 128 MiB. Smallest page count p with p * 128 MiB >= rest - p * 4 KiB.
        let rest = sb_offset - AL_SIZE;
        let per_page = BM_BITS_PER_PAGE * BM_BLOCK;
        let bm_pages = rest.div_ceil(per_page + BLOCK);
        let data_size = rest - bm_pages * BLOCK;
        debug_assert!(data_size <= bm_pages * per_page);
        let bm_offset = sb_offset - bm_pages * BLOCK;
        let al_offset = bm_offset - AL_SIZE;
        debug_assert_eq!(al_offset, data_size);
        Ok(Layout {
            device_size,
            data_size,
            al_offset,
            bm_offset,
            sb_offset,
            bm_pages,
            bm_bits: data_size / BM_BLOCK,
        })
    }

    /// Offset of the bitmap page holding bit `page`.
    pub fn bm_page_offset(&self, page: u64) -> u64 {
        self.bm_offset + page * BLOCK
    }

    /// Offset of AL ring slot `slot`.
    pub fn al_slot_offset(&self, slot: u64) -> u64 {
        self.al_offset + (slot % AL_TRANSACTIONS) * BLOCK
    }

    /// Number of 4 MiB AL extents of the data area.
    pub fn al_extents(&self) -> u64 {
        self.data_size.div_ceil(AL_EXTENT)
    }

    /// Bitmap page(s) holding the bits of AL extent `ext` (always one: an
    /// extent is 1024 bits, a page 32768; extents never straddle pages).
    pub fn bm_pages_for_extent(&self, ext: u64) -> Vec<u64> {
        vec![ext * (AL_EXTENT / BM_BLOCK) / BM_BITS_PER_PAGE]
    }

    /// Whether `[offset, offset+len)` lies entirely in the data area.
    pub fn in_data_area(&self, offset: u64, len: u64) -> bool {
        offset
            .checked_add(len)
            .is_some_and(|end| end <= self.data_size)
    }
}

/// The superblock contents in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    pub layout: Layout,
    pub uuids: Uuids,
    pub flags: Flags,
    pub device_uuid: u64,
    /// Sequence number of the last AL transaction known when the superblock
    /// was last written (informational; recovery reads the ring itself).
    pub al_seq: u64,
    /// Unix ms of the last application write known at the last superblock
    /// write (0: unknown), for split-brain reports across restarts.
    pub last_write_ms: u64,
}

impl Meta {
    fn encode(&self) -> Vec<u8> {
        let l = &self.layout;
        let mut b = vec![0u8; BLOCK as usize];
        b[0..8].copy_from_slice(SB_MAGIC);
        put32(&mut b, 8, VERSION);
        put32(&mut b, 12, self.flags.to_bits());
        put64(&mut b, 16, l.device_size);
        put64(&mut b, 24, l.data_size);
        put64(&mut b, 32, self.uuids.current);
        put64(&mut b, 40, self.uuids.bitmap);
        put64(&mut b, 48, self.uuids.history[0]);
        put64(&mut b, 56, self.uuids.history[1]);
        put64(&mut b, 64, self.device_uuid);
        put64(&mut b, 72, l.al_offset);
        put32(&mut b, 80, AL_TRANSACTIONS as u32);
        put32(&mut b, 84, AL_EXTENT as u32);
        put64(&mut b, 88, l.bm_offset);
        put32(&mut b, 96, BM_BLOCK as u32);
        put32(&mut b, 100, l.bm_pages as u32);
        put64(&mut b, 104, l.bm_bits);
        put64(&mut b, 112, self.al_seq);
        put64(&mut b, 128, self.last_write_ms);
        put64(&mut b, 120, l.sb_offset);
        let crc = crc32fast::hash(&b[..CRC_AT]);
        put32(&mut b, CRC_AT, crc);
        b
    }

    /// Decode a superblock block. `Ok(None)` when there is no magic.
    fn decode(b: &[u8]) -> Result<Option<Meta>, MetaError> {
        if &b[0..8] != SB_MAGIC {
            return Ok(None);
        }
        let crc = crc32fast::hash(&b[..CRC_AT]);
        if crc != get32(b, CRC_AT) {
            return Err(MetaError::Corrupt("superblock CRC mismatch".into()));
        }
        let version = get32(b, 8);
        if version != VERSION {
            return Err(MetaError::Corrupt(format!(
                "unsupported format version {version}"
            )));
        }
        let device_size = get64(b, 16);
        let layout = Layout::for_device(device_size).map_err(|_| {
            MetaError::Corrupt(format!("impossible recorded device size {device_size}"))
        })?;
        let recorded = (
            get64(b, 24),
            get64(b, 72),
            get32(b, 80) as u64,
            get32(b, 84) as u64,
            get64(b, 88),
            get32(b, 96) as u64,
            get32(b, 100) as u64,
            get64(b, 104),
            get64(b, 120),
        );
        let expected = (
            layout.data_size,
            layout.al_offset,
            AL_TRANSACTIONS,
            AL_EXTENT,
            layout.bm_offset,
            BM_BLOCK,
            layout.bm_pages,
            layout.bm_bits,
            layout.sb_offset,
        );
        if recorded != expected {
            return Err(MetaError::Corrupt(format!(
                "impossible geometry: recorded {recorded:?}, expected {expected:?}"
            )));
        }
        Ok(Some(Meta {
            layout,
            uuids: Uuids {
                current: get64(b, 32),
                bitmap: get64(b, 40),
                history: [get64(b, 48), get64(b, 56)],
            },
            flags: Flags::from_bits(get32(b, 12)),
            device_uuid: get64(b, 64),
            al_seq: get64(b, 112),
            last_write_ms: get64(b, 128),
        }))
    }
}

fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
fn put64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}
fn get32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}
fn get64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// Size of a backing store: `BLKGETSIZE64` for a block device, else the
/// file length.
pub fn device_size(f: &File) -> Result<u64, MetaError> {
    let md = f.metadata()?;
    if md.file_type().is_block_device() {
        use std::os::fd::AsRawFd;
        // _IOR(0x12, 114, size_t)
        const BLKGETSIZE64: u32 = 0x8008_1272;
        let mut size: u64 = 0;
        // SAFETY: BLKGETSIZE64 writes one u64 to the pointer we pass.
        let r = unsafe {
            libc::ioctl(
                f.as_raw_fd(),
                BLKGETSIZE64 as libc::Ioctl,
                &mut size as *mut u64,
            )
        };
        if r != 0 {
            return Err(std::io::Error::last_os_error().into());
        }
        Ok(size)
    } else {
        Ok(md.len())
    }
}

fn open_rw(path: &Path) -> Result<File, MetaError> {
    Ok(OpenOptions::new().read(true).write(true).open(path)?)
}

fn read_block(f: &File, off: u64) -> Result<Vec<u8>, MetaError> {
    let mut b = vec![0u8; BLOCK as usize];
    f.read_exact_at(&mut b, off)?;
    Ok(b)
}

fn write_sync(f: &File, off: u64, buf: &[u8]) -> Result<(), MetaError> {
    f.write_all_at(buf, off)?;
    f.sync_data()?;
    Ok(())
}

pub fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    if File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .is_err()
    {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        b = (t ^ ((std::process::id() as u64) << 32)).to_le_bytes();
    }
    u64::from_le_bytes(b) | 1
}

/// What is at the expected superblock place of a device.
enum Found {
    Valid(Meta),
    Nothing,
}

/// Read and validate the superblock for the current device size; when it
/// is missing, look back for metadata of another size (SizeChanged).
fn probe(f: &File) -> Result<(Found, Layout), MetaError> {
    let size = device_size(f)?;
    let layout = Layout::for_device(size)?;
    let b = read_block(f, layout.sb_offset)?;
    match Meta::decode(&b)? {
        Some(m) => {
            if m.layout.device_size != size {
                // The right place, but recorded for another size (changed
                // by less than 4 KiB).
                return Err(MetaError::SizeChanged {
                    recorded: m.layout.device_size,
                    actual: size,
                });
            }
            Ok((Found::Valid(m), layout))
        }
        None => {
            if let Some(recorded) = scan_for_other_size(f, &layout)? {
                if recorded == size {
                    return Err(MetaError::Corrupt(
                        "superblock magic missing, but this device's activity log is there".into(),
                    ));
                }
                return Err(MetaError::SizeChanged {
                    recorded,
                    actual: size,
                });
            }
            Ok((Found::Nothing, layout))
        }
    }
}

/// Scan 4 KiB-aligned blocks before `l.sb_offset` (up to SCAN_WINDOW) for a
/// valid superblock or AL transaction; returns the device size it records.
fn scan_for_other_size(f: &File, l: &Layout) -> Result<Option<u64>, MetaError> {
    const CHUNK: u64 = 1 << 20;
    let lowest = l.sb_offset.saturating_sub(SCAN_WINDOW);
    let mut end = l.sb_offset; // exclusive
    let mut buf = vec![0u8; CHUNK as usize];
    while end > lowest {
        let start = end.saturating_sub(CHUNK).max(lowest);
        let n = (end - start) as usize;
        f.read_exact_at(&mut buf[..n], start)?;
        for i in (0..n / BLOCK as usize).rev() {
            let blk = &buf[i * BLOCK as usize..(i + 1) * BLOCK as usize];
            if let Ok(Some(m)) = Meta::decode(blk) {
                return Ok(Some(m.layout.device_size));
            }
            if let Some(tr) = AlTransaction::decode(blk) {
                return Ok(Some(tr.device_size));
            }
        }
        end = start;
    }
    Ok(None)
}

/// create-md: writes a fresh superblock (current uuid =
/// [`UUID_JUST_CREATED`]), a clear bitmap and an empty AL. Refuses with
/// [`MetaError::Exists`] when valid metadata is already there (or metadata
/// for another device size is found) unless `force`.
pub fn create(path: &Path, force: bool) -> Result<Meta, MetaError> {
    let f = open_rw(path)?;
    let layout = match probe(&f) {
        Ok((Found::Nothing, l)) => l,
        Ok((Found::Valid(_), l)) if force => l,
        Ok((Found::Valid(_), _)) => return Err(MetaError::Exists),
        Err(MetaError::SizeChanged { .. } | MetaError::Corrupt(_)) if force => {
            Layout::for_device(device_size(&f)?)?
        }
        Err(MetaError::SizeChanged { .. }) => return Err(MetaError::Exists),
        Err(e) => return Err(e),
    };
    // AL: one empty transaction with seq 1, other slots zeroed.
    let mut al = vec![0u8; AL_SIZE as usize];
    let tr = AlTransaction {
        seq: 1,
        device_size: layout.device_size,
        extents: vec![],
    }
    .encode();
    al[..BLOCK as usize].copy_from_slice(&tr);
    f.write_all_at(&al, layout.al_offset)?;
    // Clear bitmap, in 1 MiB writes.
    let zero = vec![0u8; 1 << 20];
    let mut off = layout.bm_offset;
    while off < layout.sb_offset {
        let n = ((layout.sb_offset - off) as usize).min(zero.len());
        f.write_all_at(&zero[..n], off)?;
        off += n as u64;
    }
    f.sync_data()?;
    let m = Meta {
        layout,
        uuids: Uuids {
            current: UUID_JUST_CREATED,
            ..Uuids::default()
        },
        flags: Flags::default(),
        device_uuid: random_u64(),
        al_seq: 1,
        last_write_ms: 0,
    };
    write_superblock(&f, &m)?;
    Ok(m)
}

/// Open the backing store read-write and read its metadata; validates
/// magic, CRC and geometry against the current device size.
pub fn open(path: &Path) -> Result<(Meta, File), MetaError> {
    let f = open_rw(path)?;
    match probe(&f)? {
        (Found::Valid(m), _) => Ok((m, f)),
        (Found::Nothing, _) => Err(MetaError::NoMetadata),
    }
}

/// Write the superblock: one 4 KiB pwrite, then fdatasync.
pub fn write_superblock(f: &File, m: &Meta) -> Result<(), MetaError> {
    write_sync(f, m.layout.sb_offset, &m.encode())
}

/// The in-memory bitmap: one bit per 4 KiB block of the data area.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bitmap {
    bits: u64,
    words: Vec<u64>,
    dirty: BTreeSet<u64>,
}

const WORDS_PER_PAGE: usize = (BLOCK / 8) as usize;

impl Bitmap {
    /// An all-clear bitmap of `bits` bits.
    pub fn new(bits: u64) -> Bitmap {
        Bitmap {
            bits,
            words: vec![0; bits.div_ceil(64) as usize],
            dirty: BTreeSet::new(),
        }
    }

    /// An all-clear bitmap for a layout.
    pub fn for_layout(l: &Layout) -> Bitmap {
        Bitmap::new(l.bm_bits)
    }

    pub fn bits(&self) -> u64 {
        self.bits
    }

    /// Number of 4 KiB pages the bitmap takes on disk.
    pub fn pages(&self) -> u64 {
        self.bits.div_ceil(BM_BITS_PER_PAGE)
    }

    pub fn get(&self, bit: u64) -> bool {
        bit < self.bits && self.words[(bit / 64) as usize] & (1 << (bit % 64)) != 0
    }

    fn set_bits(&mut self, from: u64, to: u64, on: bool) -> u64 {
        let mut changed = 0;
        let to = to.min(self.bits);
        let mut bit = from;
        while bit < to {
            let w = (bit / 64) as usize;
            let lo = bit % 64;
            let hi = (to - (bit - lo)).min(64);
            let mask = if hi - lo == 64 {
                u64::MAX
            } else {
                ((1u64 << (hi - lo)) - 1) << lo
            };
            let old = self.words[w];
            let new = if on { old | mask } else { old & !mask };
            if new != old {
                changed += (old ^ new).count_ones() as u64;
                self.dirty.insert(bit / BM_BITS_PER_PAGE);
            }
            self.words[w] = new;
            bit = bit - lo + 64;
        }
        changed
    }

    /// Mark the data bytes `[offset, offset+len)` out of sync: every block
    /// touched, even partially. Returns how many bits became set.
    pub fn set_range(&mut self, offset: u64, len: u64) -> u64 {
        if len == 0 {
            return 0;
        }
        let from = offset / BM_BLOCK;
        let to = (offset.saturating_add(len)).div_ceil(BM_BLOCK);
        self.set_bits(from, to, true)
    }

    /// Mark `[offset, offset+len)` in sync: only blocks covered entirely.
    /// Returns how many bits became clear.
    pub fn clear_range(&mut self, offset: u64, len: u64) -> u64 {
        let from = offset.div_ceil(BM_BLOCK);
        let to = offset.saturating_add(len) / BM_BLOCK;
        if to <= from {
            return 0;
        }
        self.set_bits(from, to, false)
    }

    /// Set every bit (full sync needed).
    pub fn set_all(&mut self) -> u64 {
        self.set_bits(0, self.bits, true)
    }

    /// Number of set bits.
    pub fn count(&self) -> u64 {
        self.words.iter().map(|w| w.count_ones() as u64).sum()
    }

    /// Bytes out of sync (`count() * BM_BLOCK`).
    pub fn out_of_sync_bytes(&self) -> u64 {
        self.count() * BM_BLOCK
    }

    /// Maximal runs of set bits as `(offset, len)` in data-area bytes.
    pub fn iter_set_ranges(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        let mut bit = 0u64;
        std::iter::from_fn(move || {
            let start = self.next_bit(bit, true)?;
            let end = self.next_bit(start, false).unwrap_or(self.bits);
            bit = end;
            Some((start * BM_BLOCK, (end - start) * BM_BLOCK))
        })
    }

    /// First bit >= `from` whose value is `on`.
    /// The first run of set bits at or after bit `from`, at most `max_bits`
    /// long, as a byte range `(offset, len)`.
    pub fn next_set_range(&self, from: u64, max_bits: u64) -> Option<(u64, u64)> {
        let start = self.next_bit(from, true)?;
        let end = self
            .next_bit(start, false)
            .unwrap_or(self.bits)
            .min(start + max_bits.max(1));
        Some((start * BM_BLOCK, (end - start) * BM_BLOCK))
    }

    fn next_bit(&self, from: u64, on: bool) -> Option<u64> {
        let mut bit = from;
        while bit < self.bits {
            let w = (bit / 64) as usize;
            let word = if on { self.words[w] } else { !self.words[w] };
            let word = word & (u64::MAX << (bit % 64));
            if word != 0 {
                let b = (w as u64) * 64 + word.trailing_zeros() as u64;
                return (b < self.bits).then_some(b);
            }
            bit = (w as u64 + 1) * 64;
        }
        None
    }

    /// OR `other` into `self` (e.g. the peer's bitmap at connect time).
    pub fn merge(&mut self, other: &Bitmap) -> Result<u64, MetaError> {
        if other.bits != self.bits {
            return Err(MetaError::Invalid(format!(
                "bitmap size mismatch: {} vs {} bits",
                self.bits, other.bits
            )));
        }
        let mut changed = 0;
        for (i, (a, b)) in self.words.iter_mut().zip(&other.words).enumerate() {
            let new = *a | *b;
            if new != *a {
                changed += (new ^ *a).count_ones() as u64;
                self.dirty.insert(i as u64 * 64 / BM_BITS_PER_PAGE);
                *a = new;
            }
        }
        Ok(changed)
    }

    /// Pages changed since the last `take_dirty_pages`.
    pub fn take_dirty_pages(&mut self) -> Vec<u64> {
        std::mem::take(&mut self.dirty).into_iter().collect()
    }

    /// Pages whose write failed: dirty again, so the next writeback retries
    /// them (a failed bitmap write must not lose its bits).
    pub fn redirty_pages(&mut self, pages: &[u64]) {
        let n = self.pages();
        self.dirty.extend(pages.iter().copied().filter(|&p| p < n));
    }

    /// Page `page` in on-disk form (4 KiB, little-endian u64 words).
    pub fn page(&self, page: u64) -> Vec<u8> {
        let mut b = vec![0u8; BLOCK as usize];
        let first = page as usize * WORDS_PER_PAGE;
        for (i, w) in self
            .words
            .iter()
            .skip(first)
            .take(WORDS_PER_PAGE)
            .enumerate()
        {
            put64(&mut b, i * 8, *w);
        }
        b
    }

    /// All pages, concatenated.
    pub fn to_pages(&self) -> Vec<u8> {
        (0..self.pages()).flat_map(|p| self.page(p)).collect()
    }

    /// Rebuild from on-disk pages; bits past `bits` are ignored (cleared).
    pub fn from_pages(bits: u64, pages: &[u8]) -> Result<Bitmap, MetaError> {
        let mut bm = Bitmap::new(bits);
        if (pages.len() as u64) < bm.pages() * BLOCK {
            return Err(MetaError::Corrupt(format!(
                "bitmap needs {} pages, got {} bytes",
                bm.pages(),
                pages.len()
            )));
        }
        for (i, w) in bm.words.iter_mut().enumerate() {
            *w = get64(pages, i * 8);
        }
        if !bits.is_multiple_of(64) {
            if let Some(last) = bm.words.last_mut() {
                *last &= (1u64 << (bits % 64)) - 1;
            }
        }
        Ok(bm)
    }
}

/// Read the whole bitmap.
pub fn read_bitmap(f: &File, l: &Layout) -> Result<Bitmap, MetaError> {
    let mut buf = vec![0u8; (l.bm_pages * BLOCK) as usize];
    f.read_exact_at(&mut buf, l.bm_offset)?;
    Bitmap::from_pages(l.bm_bits, &buf)
}

/// Write the given bitmap pages (each one 4 KiB pwrite), then fdatasync.
pub fn write_bitmap_pages(
    f: &File,
    l: &Layout,
    bm: &Bitmap,
    dirty_pages: &[u64],
) -> Result<(), MetaError> {
    if bm.bits() != l.bm_bits {
        return Err(MetaError::Invalid("bitmap does not match layout".into()));
    }
    for &p in dirty_pages {
        if p >= l.bm_pages {
            return Err(MetaError::Invalid(format!("bitmap page {p} out of range")));
        }
        f.write_all_at(&bm.page(p), l.bm_page_offset(p))?;
    }
    f.sync_data()?;
    Ok(())
}

/// Write every bitmap page.
pub fn write_bitmap(f: &File, l: &Layout, bm: &Bitmap) -> Result<(), MetaError> {
    let all: Vec<u64> = (0..l.bm_pages).collect();
    write_bitmap_pages(f, l, bm, &all)
}

#[cfg(test)]
mod tests;
