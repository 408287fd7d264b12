//! Exposing the replicated device to the local machine: a FUSE file behind a
//! loop device.
//!
//! The kernel here has FUSE and loop but no drbd/nbd/ublk, so the device an
//! application mounts (`/dev/drbd0`, a symlink) is a loop device whose backing
//! file is the one regular file `device` of a FUSE filesystem this process
//! serves. Every block read or written on the loop device becomes a FUSE
//! request answered from a [`BlockStore`] (the replication layer later, a
//! [`FileStore`] for now).
//!
//! # What arrives from the loop driver
//!
//! The FUSE file is opened with `FOPEN_DIRECT_IO`, so the page cache never
//! holds device data a second time (once above the loop device is enough) and
//! every request reaches this process. Observed (trace log of every op) on
//! Linux 6.18, where `LOOP_CONFIGURE` accepts `LO_FLAGS_DIRECT_IO` on the
//! FUSE file; the loop queue then shows `write_cache = write back`, `fua = 0`:
//!
//! * `READ` / `WRITE`: the block I/O. A 1 MiB `O_DIRECT` write to the loop
//!   device arrives as two 512 KiB `WRITE`s, reads as ~512 KiB `READ`s; never
//!   more than [`MAX_REQUEST`] (the `max_write` negotiated at init, and reads
//!   are capped to it too). Several are in flight at once and are served by
//!   [`SERVER_THREADS`] threads. `FUSE_ASYNC_DIO` is asked for, so the
//!   loop driver's direct I/O (an async kiocb) stays asynchronous and the
//!   application's queue depth reaches this process (without it the kernel
//!   sends each request synchronously: queue depth 1). A server killed with
//!   requests in flight exits (`tests/disk_expose.rs`).
//! * `FSYNC` (datasync = false) for every cache flush: `REQ_PREFLUSH` (ext4
//!   journal commits, `fsync(2)` on files of the mounted filesystem, `fsync`
//!   of the loop device) and `REQ_FUA` writes, which the block layer emulates
//!   because the loop device has no FUA: an `O_DIRECT|O_DSYNC` 4 KiB write
//!   arrives as one `WRITE` and two `FSYNC`s. Answered by
//!   [`BlockStore::flush`]. There is no FUA bit on a FUSE `WRITE`; durability
//!   of a single write is always signalled by a following `FSYNC`.
//! * `FLUSH` (the `close(2)` hook) never comes: the file is opened with
//!   `FOPEN_NOFLUSH`. It would come only when a process that opened the FUSE
//!   file itself closes it, and the kernel waits for its answer
//!   uninterruptibly: a server killed while it held its own file open hung
//!   forever in its exit. (The same holds for every request the server
//!   makes to itself, such as the `FSYNC` of `LOOP_CONFIGURE`: the loop
//!   device is attached from a forked child, see `attach_loop`.) Durability never
//!   depended on it (`close(2)` promises none); if one arrives anyway it is
//!   answered by [`BlockStore::flush`].
//! * `LOOKUP`, `GETATTR`, `OPEN`, `RELEASE`, `GETXATTR` (answered `ENODATA`)
//!   around attaching and detaching.
//!
//! Without direct I/O on the loop device (older kernels) the loop driver
//! writes through `vfs_iter_write`, which the `FOPEN_DIRECT_IO` file still
//! turns into synchronous `WRITE`s, and flushes with `vfs_fsync` (`FSYNC`).
//!
//! The serving threads never touch the filesystem mounted on the device (that
//! would deadlock); the process should also call [`harden_process`].

use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

mod loopdev;

pub use loopdev::detach_stale_loop;
use loopdev::{attach_loop, backing_file, holders, ioctl_val, loop_detached, LOOP_CLR_FD};

use fuser::{
    Config, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, INodeNo, KernelConfig,
    LockOwner, MountOption, OpenFlags, ReplyAttr, ReplyData, ReplyDirectory, ReplyEmpty,
    ReplyEntry, ReplyOpen, ReplyWrite, ReplyXattr, Request, WriteFlags,
};

/// Where writes go: the replication layer implements this later; for now a plain file.
pub trait BlockStore: Send + Sync + 'static {
    fn size(&self) -> u64;
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
    /// Must return only when the write is as durable as the store promises (protocol C: on both nodes).
    fn write_at(&self, data: &[u8], offset: u64) -> io::Result<()>;
    /// A flush/FSYNC from the loop device: returns when everything written before is on stable storage.
    fn flush(&self) -> io::Result<()>;
}

/// A local file or block device as a [`BlockStore`]: `pread`/`pwrite` on the
/// first `data_size` bytes (DRBD's internal metadata lives past them),
/// `fdatasync` on flush. Like a disk with a volatile cache, a write is durable
/// only after the next flush.
#[derive(Debug)]
pub struct FileStore {
    file: File,
    data_size: u64,
}

impl FileStore {
    pub fn open(path: &Path, data_size: u64) -> io::Result<FileStore> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        let meta = file.metadata()?;
        let len = if meta.file_type().is_block_device() {
            let mut size: u64 = 0;
            // BLKGETSIZE64
            let r = unsafe { libc::ioctl(file.as_raw_fd(), 0x8008_1272, &mut size) };
            if r < 0 {
                return Err(io::Error::last_os_error());
            }
            size
        } else {
            meta.len()
        };
        if data_size > len {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{}: data size {data_size} exceeds its size {len}",
                    path.display()
                ),
            ));
        }
        Ok(FileStore { file, data_size })
    }

    fn check(&self, len: usize, offset: u64) -> io::Result<()> {
        match offset.checked_add(len as u64) {
            Some(end) if end <= self.data_size => Ok(()),
            _ => Err(io::Error::from_raw_os_error(libc::ENOSPC)),
        }
    }
}

impl BlockStore for FileStore {
    fn size(&self) -> u64 {
        self.data_size
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.check(buf.len(), offset)?;
        self.file.read_exact_at(buf, offset)
    }
    fn write_at(&self, data: &[u8], offset: u64) -> io::Result<()> {
        self.check(data.len(), offset)?;
        self.file.write_all_at(data, offset)
    }
    fn flush(&self) -> io::Result<()> {
        self.file.sync_data()
    }
}

/// Threads serving FUSE requests. A replicated write holds its thread
/// until the peer acknowledged it, so the threads bound the writes in
/// flight between the nodes (issue 15: 4 kept the link nearly idle).
pub const SERVER_THREADS: usize = 16;
/// Asynchronous requests (the loop driver's direct I/O) the kernel keeps
/// queued for this process at most (fuser's default is 16).
pub const MAX_BACKGROUND: u16 = 64;
/// Largest READ/WRITE request accepted from the kernel.
pub const MAX_REQUEST: u32 = 1 << 20;
/// Name of the file served in the mount directory.
pub const DEVICE_FILE: &str = "device";

const ROOT: INodeNo = INodeNo(1);
const FILE: INodeNo = INodeNo(2);
const TTL: Duration = Duration::from_secs(1);

/// How many FUSE requests of each kind the server answered.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct OpCounts {
    pub read: u64,
    pub write: u64,
    pub fsync: u64,
    pub flush: u64,
}

#[derive(Default)]
struct Counters {
    read: AtomicU64,
    write: AtomicU64,
    fsync: AtomicU64,
    flush: AtomicU64,
}

struct DeviceFs {
    store: Arc<dyn BlockStore>,
    counts: Arc<Counters>,
    uid: u32,
    gid: u32,
    started: SystemTime,
}

fn errno_of(e: &io::Error) -> Errno {
    Errno::from_i32(e.raw_os_error().unwrap_or(libc::EIO))
}

impl DeviceFs {
    fn attr(&self, ino: INodeNo) -> FileAttr {
        let (kind, perm, size, nlink) = if ino == ROOT {
            (FileType::Directory, 0o700, 0, 2)
        } else {
            (FileType::RegularFile, 0o600, self.store.size(), 1)
        };
        FileAttr {
            ino,
            size,
            blocks: size.div_ceil(512),
            atime: self.started,
            mtime: self.started,
            ctime: self.started,
            crtime: self.started,
            kind,
            perm,
            nlink,
            uid: self.uid,
            gid: self.gid,
            rdev: 0,
            blksize: 4096,
            flags: 0,
        }
    }

    fn in_range(&self, len: u64, offset: u64) -> bool {
        offset
            .checked_add(len)
            .is_some_and(|end| end <= self.store.size())
    }
}

impl Filesystem for DeviceFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> io::Result<()> {
        if let Err(nearest) = config.set_max_write(MAX_REQUEST) {
            let _ = config.set_max_write(nearest);
        }
        let _ = config.set_max_background(MAX_BACKGROUND);
        // FUSE_ASYNC_DIO: the loop driver's direct I/O (async kiocbs) stays
        // asynchronous, so the loop device keeps many requests in flight
        // (2.7× the replicated random writes). Without it the kernel sends
        // them one at a time. (Withdrawn once: the failures it exposed were
        // a device killed while attaching its loop device and a link reader
        // that declared a talking peer silent; both fixed, docs/BENCHMARKS.md.)
        if config
            .add_capabilities(fuser::InitFlags::FUSE_ASYNC_DIO)
            .is_err()
        {
            tracing::info!("the kernel does not offer FUSE_ASYNC_DIO: one request at a time");
        }
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        if parent == ROOT && name.as_bytes() == DEVICE_FILE.as_bytes() {
            reply.entry(&TTL, &self.attr(FILE), fuser::Generation(0));
        } else {
            reply.error(Errno::ENOENT);
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        if ino == ROOT || ino == FILE {
            reply.attr(&TTL, &self.attr(ino));
        } else {
            reply.error(Errno::ENOENT);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<fuser::TimeOrNow>,
        _mtime: Option<fuser::TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        // The device has a fixed size and owner; O_TRUNC to the same size and
        // time updates are accepted and ignored.
        if ino != FILE {
            return reply.error(Errno::EPERM);
        }
        if mode.is_some() || uid.is_some() || gid.is_some() {
            return reply.error(Errno::EPERM);
        }
        if size.is_some_and(|s| s != self.store.size()) {
            return reply.error(Errno::EPERM);
        }
        reply.attr(&TTL, &self.attr(FILE));
    }

    fn open(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        if ino == FILE {
            // FOPEN_NOFLUSH: no FLUSH on close. The kernel waits for a
            // FLUSH's answer uninterruptibly, and the only process that
            // opens the file is this server itself: killed with the file
            // open (while `expose` attaches the loop device), it hung
            // forever in its own exit (issue 13 campaign).
            reply.opened(
                FileHandle(0),
                FopenFlags::FOPEN_DIRECT_IO | FopenFlags::FOPEN_NOFLUSH,
            );
        } else {
            reply.error(Errno::EISDIR);
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        self.counts.read.fetch_add(1, Ordering::Relaxed);
        tracing::trace!(offset, size, "FUSE READ");
        if ino != FILE {
            return reply.error(Errno::EISDIR);
        }
        let dev_size = self.store.size();
        if offset >= dev_size {
            return reply.data(&[]);
        }
        let len = u64::from(size.min(MAX_REQUEST)).min(dev_size - offset) as usize;
        let mut buf = vec![0u8; len];
        match self.store.read_at(&mut buf, offset) {
            Ok(()) => reply.data(&buf),
            Err(e) => {
                tracing::warn!(offset, len, error = %e, "device read failed");
                reply.error(errno_of(&e))
            }
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        self.counts.write.fetch_add(1, Ordering::Relaxed);
        tracing::trace!(offset, len = data.len(), "FUSE WRITE");
        if ino != FILE {
            return reply.error(Errno::EISDIR);
        }
        if data.len() > MAX_REQUEST as usize {
            return reply.error(Errno::EINVAL);
        }
        if !self.in_range(data.len() as u64, offset) {
            return reply.error(Errno::ENOSPC);
        }
        match self.store.write_at(data, offset) {
            Ok(()) => reply.written(data.len() as u32),
            Err(e) => {
                tracing::warn!(offset, len = data.len(), error = %e, "device write failed");
                reply.error(errno_of(&e))
            }
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        self.counts.flush.fetch_add(1, Ordering::Relaxed);
        tracing::debug!("FUSE FLUSH");
        match self.store.flush() {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno_of(&e)),
        }
    }

    fn fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        self.counts.fsync.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(datasync, "FUSE FSYNC");
        match self.store.flush() {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno_of(&e)),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        if ino != ROOT {
            return reply.error(Errno::ENOTDIR);
        }
        let entries = [
            (ROOT, FileType::Directory, "."),
            (ROOT, FileType::Directory, ".."),
            (FILE, FileType::RegularFile, DEVICE_FILE),
        ];
        for (i, (ino, kind, name)) in entries.iter().enumerate().skip(offset as usize) {
            if reply.add(*ino, (i + 1) as u64, *kind, name) {
                break;
            }
        }
        reply.ok();
    }

    fn getxattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _name: &OsStr,
        _size: u32,
        reply: ReplyXattr,
    ) {
        reply.error(Errno::ENODATA);
    }

    fn listxattr(&self, _req: &Request, _ino: INodeNo, _size: u32, reply: ReplyXattr) {
        reply.size(0);
    }

    fn access(&self, _req: &Request, _ino: INodeNo, _mask: fuser::AccessFlags, reply: ReplyEmpty) {
        reply.ok();
    }
}

/// The device: a FUSE file served by this process behind a loop device.
pub struct Exposed {
    pub loop_dev: PathBuf,
    /// Whether the loop device accepted `LO_FLAGS_DIRECT_IO`.
    pub direct_io: bool,
    rdev: u64,
    /// The FUSE file as sysfs names the loop device's backing file: the
    /// loop device is ours only while it serves this.
    backing: String,
    mount_dir: PathBuf,
    link: Option<PathBuf>,
    session: Option<fuser::BackgroundSession>,
    counts: Arc<Counters>,
    closed: bool,
}

impl std::fmt::Debug for Exposed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exposed")
            .field("loop_dev", &self.loop_dev)
            .field("direct_io", &self.direct_io)
            .field("mount_dir", &self.mount_dir)
            .field("link", &self.link)
            .field("closed", &self.closed)
            .finish()
    }
}

/// Serves `store` as one regular file `mount_dir/device` through FUSE
/// (direct_io, so the page cache never holds device data twice), attaches a
/// loop device to it (LOOP_CONFIGURE with LO_FLAGS_DIRECT_IO if accepted,
/// else plain; LOOP_SET_FD on old kernels), and links `link` (e.g.
/// /dev/drbd0) to the loop device, replacing an existing symlink there.
pub fn expose(
    store: Arc<dyn BlockStore>,
    mount_dir: &Path,
    link: Option<&Path>,
) -> io::Result<Exposed> {
    let counts = Arc::new(Counters::default());
    let fs = DeviceFs {
        store,
        counts: counts.clone(),
        uid: nix::unistd::geteuid().as_raw(),
        gid: nix::unistd::getegid().as_raw(),
        started: SystemTime::now(),
    };
    let mut config = Config::default();
    config.mount_options = vec![
        MountOption::FSName("hbd".into()),
        MountOption::Subtype("hbd".into()),
        MountOption::RW,
        MountOption::NoDev,
        MountOption::NoSuid,
        MountOption::NoExec,
        MountOption::NoAtime,
    ];
    config.n_threads = Some(SERVER_THREADS);
    let session = fuser::Session::new(fs, mount_dir, &config)?.spawn()?;
    let mut exposed = Exposed {
        loop_dev: PathBuf::new(),
        direct_io: false,
        rdev: 0,
        backing: String::new(),
        mount_dir: mount_dir.to_path_buf(),
        link: None,
        session: Some(session),
        counts,
        closed: false,
    };
    // From here on, Drop undoes what was done if a step fails.
    let (loop_dev, direct_io) = attach_loop(&mount_dir.join(DEVICE_FILE))?;
    exposed.rdev = std::fs::metadata(&loop_dev)?.rdev();
    exposed.loop_dev = loop_dev;
    exposed.backing = backing_file(&exposed.loop_dev).ok_or_else(|| {
        io::Error::other(format!(
            "{} was detached right after attaching",
            exposed.loop_dev.display()
        ))
    })?;
    exposed.direct_io = direct_io;
    tracing::info!(loop_dev = %exposed.loop_dev.display(), direct_io, "device exposed");
    if let Some(link) = link {
        match std::fs::symlink_metadata(link) {
            Ok(m) if m.file_type().is_symlink() => std::fs::remove_file(link)?,
            Ok(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{} exists and is not a symlink", link.display()),
                ))
            }
            Err(_) => {}
        }
        std::os::unix::fs::symlink(&exposed.loop_dev, link)?;
        exposed.link = Some(link.to_path_buf());
    }
    Ok(exposed)
}

impl Exposed {
    /// Demotion: waits until nobody holds the loop device (no exclusive
    /// holder such as a mount in any namespace, which `umount` can leave
    /// behind for a while; no process with it open), detaches it, removes the
    /// link and unmounts FUSE. If it cannot within `timeout`, the device stays
    /// as it is (still served, still usable) and the error names the holders;
    /// `close` can be called again. Calling it after success does nothing.
    pub fn close(&mut self, timeout: Duration) -> io::Result<()> {
        if self.closed {
            return Ok(());
        }
        let deadline = Instant::now() + timeout;
        let mut delay = Duration::from_millis(5);
        loop {
            match self.try_detach()? {
                None => break,
                Some(why) => {
                    if Instant::now() >= deadline {
                        let mut who = holders(self.rdev);
                        if who.is_empty() {
                            who.push(why);
                        }
                        return Err(io::Error::new(
                            io::ErrorKind::ResourceBusy,
                            format!(
                                "{} still in use after {timeout:?}: {}",
                                self.loop_dev.display(),
                                who.join(", ")
                            ),
                        ));
                    }
                    std::thread::sleep(
                        delay.min(deadline.saturating_duration_since(Instant::now())),
                    );
                    delay = (delay * 2).min(Duration::from_millis(100));
                }
            }
        }
        self.remove_link();
        if let Some(session) = self.session.take() {
            if let Err(e) = session.umount_and_join() {
                tracing::warn!(error = %e, dir = %self.mount_dir.display(), "FUSE unmount failed, detaching");
                let _ = nix::mount::umount2(&self.mount_dir, nix::mount::MntFlags::MNT_DETACH);
            }
        }
        self.closed = true;
        tracing::info!(loop_dev = %self.loop_dev.display(), "device closed");
        Ok(())
    }

    /// One attempt: `Ok(None)` when the loop device is detached,
    /// `Ok(Some(reason))` when it is still held.
    fn try_detach(&self) -> io::Result<Option<String>> {
        if self.loop_dev.as_os_str().is_empty() || loop_detached(&self.loop_dev, &self.backing) {
            return Ok(None);
        }
        // An exclusive open fails while a filesystem (in any mount namespace,
        // also one lazily unmounted but still busy) or another exclusive
        // holder has it, and keeps new ones out while we detach.
        let dev = match OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_EXCL | libc::O_CLOEXEC)
            .open(&self.loop_dev)
        {
            Ok(f) => f,
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                return Ok(Some("held exclusively (mounted?)".into()))
            }
            // The kernel refuses opens while it clears the device (at the
            // last close of another opener, e.g. udev probing it, after an
            // earlier LOOP_CLR_FD only set autoclear): wait for the clear.
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) => {
                return Ok(Some("being cleared".into()))
            }
            Err(e) => return Err(e),
        };
        // While this descriptor is open the binding can only end by a
        // LOOP_CLR_FD: check it is still ours before clearing it.
        if loop_detached(&self.loop_dev, &self.backing) {
            return Ok(None);
        }
        // Plain opens by processes: LOOP_CLR_FD would only set autoclear.
        let me = format!("pid {} ", std::process::id());
        let others: Vec<String> = holders(self.rdev)
            .into_iter()
            .filter(|h| !(h.starts_with(&me) && h.contains(" fd ")))
            .collect();
        let own_fds = holders_in_self(self.rdev);
        if !others.is_empty() || own_fds > 1 {
            return Ok(Some("open by a process".into()));
        }
        match ioctl_val(&dev, LOOP_CLR_FD, 0) {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) => return Ok(None),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                return Ok(Some("busy".into()));
            }
            Err(e) => return Err(e),
        }
        drop(dev);
        // If someone opened it in between, the kernel only set autoclear;
        // it detaches on their last close.
        if loop_detached(&self.loop_dev, &self.backing) {
            Ok(None)
        } else {
            Ok(Some("opened during detach".into()))
        }
    }

    fn remove_link(&mut self) {
        if let Some(link) = self.link.take() {
            if std::fs::read_link(&link).ok().as_deref() == Some(self.loop_dev.as_path()) {
                let _ = std::fs::remove_file(&link);
            }
        }
    }

    /// How many READ/WRITE/FSYNC/FLUSH requests the FUSE server answered.
    pub fn op_counts(&self) -> OpCounts {
        OpCounts {
            read: self.counts.read.load(Ordering::Relaxed),
            write: self.counts.write.load(Ordering::Relaxed),
            fsync: self.counts.fsync.load(Ordering::Relaxed),
            flush: self.counts.flush.load(Ordering::Relaxed),
        }
    }

    /// The FUSE mount directory (the backing file is `DEVICE_FILE` in it).
    pub fn mount_dir(&self) -> &Path {
        &self.mount_dir
    }
}

/// File descriptors of this process on block device `rdev`.
fn holders_in_self(rdev: u64) -> usize {
    let Ok(fds) = std::fs::read_dir("/proc/self/fd") else {
        return 0;
    };
    fds.flatten()
        .filter(|fd| {
            std::fs::metadata(fd.path())
                .is_ok_and(|m| m.file_type().is_block_device() && m.rdev() == rdev)
        })
        .count()
}

impl Drop for Exposed {
    /// Without a successful [`Exposed::close`]: best effort, never blocks. The
    /// loop device is detached (or set to autoclear on its last close if
    /// still held) and FUSE lazily unmounted; a held device keeps being served
    /// by the detached server threads until released.
    fn drop(&mut self) {
        if self.closed {
            return;
        }
        self.remove_link();
        if !self.loop_dev.as_os_str().is_empty() {
            if let Ok(dev) = File::open(&self.loop_dev) {
                if !loop_detached(&self.loop_dev, &self.backing) {
                    let _ = ioctl_val(&dev, LOOP_CLR_FD, 0);
                }
            }
        }
        let _ = nix::mount::umount2(&self.mount_dir, nix::mount::MntFlags::MNT_DETACH);
        if let Some(session) = self.session.take() {
            // Dropping the handle detaches the server threads; they exit when
            // the FUSE connection goes away.
            drop(session);
        }
    }
}

/// The serving process protects itself from memory-reclaim deadlock:
/// `prctl(PR_SET_IO_FLUSHER)` (its allocations do not recurse into I/O) and
/// `mlockall(MCL_CURRENT|MCL_FUTURE)` (it is never paged out). Both are
/// attempted; the first error is returned for the caller to log.
pub fn harden_process() -> io::Result<()> {
    const PR_SET_IO_FLUSHER: libc::c_int = 57;
    // SAFETY: plain syscalls with integer arguments.
    let r1 = unsafe { libc::prctl(PR_SET_IO_FLUSHER, 1 as libc::c_ulong, 0, 0, 0) };
    let e1 = (r1 < 0).then(io::Error::last_os_error);
    let r2 = unsafe { libc::mlockall(libc::MCL_CURRENT | libc::MCL_FUTURE) };
    let e2 = (r2 < 0).then(io::Error::last_os_error);
    match (e1, e2) {
        (Some(e), _) => Err(io::Error::new(
            e.kind(),
            format!("prctl(PR_SET_IO_FLUSHER): {e}"),
        )),
        (None, Some(e)) => Err(io::Error::new(e.kind(), format!("mlockall: {e}"))),
        (None, None) => Ok(()),
    }
}
