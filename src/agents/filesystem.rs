//! Built-in `Filesystem::DEVICE::DIRECTORY[::FSTYPE[::OPTIONS]]`: mount(2)
//! with optional fsck, and an unmount that first ends the processes holding
//! the mount (heartbeat's `Filesystem` resource script, without the shell).
//!
//! - **DEVICE** is a block device path, `LABEL=x` or `UUID=x` (resolved at
//!   each call through `/dev/disk/by-label`, `/dev/disk/by-uuid`, then
//!   `blkid`, as `findfs` does). A source that is not a path (`tmpfs`,
//!   `host:/export`) is accepted when FSTYPE is given and names a `nodev`
//!   filesystem or one with a `mount.FSTYPE` helper (nfs, cifs), which is then
//!   run as mount(8) would.
//! - **FSTYPE** missing: the superblock is read (ext2/3/4, xfs, btrfs, vfat);
//!   when it is none of those, each block filesystem of `/proc/filesystems`
//!   is tried in turn, as mount(8) does.
//! - **OPTIONS** are mount(8)'s `-o`: the generic ones (`ro`, `noatime`,
//!   `nodev`...) become [`MsFlags`], the rest is the filesystem's data string.
//!   `remount`, `bind`, `move`, propagation flags and `loop` are refused: a
//!   resource mounts one device on one directory.
//! - **fsck** ([`Fsck`]): `auto` is heartbeat's rule, only filesystems without
//!   a journal (ext2, vfat, msdos, minix; ext3/ext4 whose superblock has no
//!   journal); `force` always; `never` never. `fsck -a -T -t FSTYPE DEVICE`:
//!   exit 0-3 is fine, 4 and above fails the start with fsck's output.
//! - **stop** finds every process using the filesystem as `fuser -m` does
//!   (cwd, root, exe, open files and mappings whose device is the mount's),
//!   sends TERM, waits [`Options::kill_grace`], sends KILL to the rest, then
//!   unmounts, retrying while the kernel says EBUSY.
//! - **status** is `Running` iff DIRECTORY is a mount point in
//!   `/proc/self/mountinfo` mounted from DEVICE (same major:minor, or the same
//!   source path).
//!
//! Everything that blocks (syscalls on devices, `/proc` scans) runs on
//! tokio's blocking pool; fsck and mount helpers are `tokio::process`.

use super::{AgentError, ArgsError, Fsck, Options, Refusal, Running};
use nix::errno::Errno;
use nix::mount::MsFlags;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

mod fsck;
mod holders;
use fsck::{fsck_needed, read_superblock, run_fsck};
use holders::{holders, signal_all, wait_released, Holder};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsArgs {
    pub device: PathBuf,
    pub dir: PathBuf,
    pub fstype: Option<String>,
    /// `-o` options as written (`rw,noatime`).
    pub options: Option<String>,
}

/// What mount(2) gets from OPTIONS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOptions {
    pub flags: MsFlags,
    /// The filesystem-specific rest (`errors=remount-ro,data=ordered`).
    pub data: String,
}

/// Translates mount(8) `-o` options into mount(2) flags and data, as
/// util-linux does for the generic options.
pub fn mount_options(options: Option<&str>) -> Result<MountOptions, ArgsError> {
    let mut flags = MsFlags::empty();
    let mut data: Vec<&str> = Vec::new();
    let nosymfollow = MsFlags::from_bits_retain(libc::MS_NOSYMFOLLOW);
    for opt in options.unwrap_or("").split(',').filter(|o| !o.is_empty()) {
        let refused = |why| {
            Err(ArgsError::FsOptionRefused {
                option: opt.to_string(),
                why,
            })
        };
        let (set, clear) = match opt {
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
            "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty()),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
            "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "nostrictatime" => (MsFlags::empty(), MsFlags::MS_STRICTATIME),
            "lazytime" => (MsFlags::MS_LAZYTIME, MsFlags::empty()),
            "nolazytime" => (MsFlags::empty(), MsFlags::MS_LAZYTIME),
            "iversion" => (MsFlags::MS_I_VERSION, MsFlags::empty()),
            "noiversion" => (MsFlags::empty(), MsFlags::MS_I_VERSION),
            "mand" => (MsFlags::MS_MANDLOCK, MsFlags::empty()),
            "nomand" => (MsFlags::empty(), MsFlags::MS_MANDLOCK),
            "silent" => (MsFlags::MS_SILENT, MsFlags::empty()),
            "loud" => (MsFlags::empty(), MsFlags::MS_SILENT),
            "nosymfollow" => (nosymfollow, MsFlags::empty()),
            // fstab-only options: they mean nothing to mount(2).
            "defaults" | "auto" | "noauto" | "user" | "nouser" | "users" | "owner" | "group"
            | "nofail" | "_netdev" => continue,
            o if o.starts_with("x-") || o.starts_with("comment=") => continue,
            "remount" => return refused(Refusal::Remount),
            "bind" | "rbind" | "move" => return refused(Refusal::Bind),
            "shared" | "rshared" | "slave" | "rslave" | "private" | "rprivate" | "unbindable"
            | "runbindable" => return refused(Refusal::Propagation),
            o if o.starts_with("make-") => return refused(Refusal::Propagation),
            o if o == "loop" || o.starts_with("loop=") => return refused(Refusal::Loop),
            o => {
                data.push(o);
                continue;
            }
        };
        flags.insert(set);
        flags.remove(clear);
    }
    Ok(MountOptions {
        flags,
        data: data.join(","),
    })
}

/// Parses `DEVICE::DIRECTORY[::FSTYPE[::OPTIONS]]`. An empty or `auto`
/// FSTYPE means "find it".
pub fn parse_args(args: &[&str]) -> Result<FsArgs, ArgsError> {
    if args.len() < 2 || args.len() > 4 {
        return Err(ArgsError::FsUsage);
    }
    let fstype = match args.get(2).copied() {
        None | Some("") | Some("auto") => None,
        Some(t) => {
            if !t
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
            {
                return Err(ArgsError::FsType(t.into()));
            }
            Some(t.to_string())
        }
    };
    let device = args[0];
    if device.is_empty() {
        return Err(ArgsError::FsEmptyDevice);
    }
    if let Some(v) = device
        .strip_prefix("LABEL=")
        .or_else(|| device.strip_prefix("UUID="))
    {
        if v.is_empty() || v.contains('/') {
            return Err(ArgsError::FsTag(device.into()));
        }
    } else if !device.starts_with('/') && fstype.is_none() {
        return Err(ArgsError::FsDeviceNotAbsolute(device.into()));
    }
    let dir = Path::new(args[1]);
    if !dir.is_absolute() {
        return Err(ArgsError::FsDirNotAbsolute(dir.into()));
    }
    if dir.components().any(|c| c == Component::ParentDir) {
        return Err(ArgsError::FsDirParent(dir.into()));
    }
    let dir: PathBuf = dir.components().collect();
    if dir == Path::new("/") {
        return Err(ArgsError::FsDirRoot);
    }
    let options = match args.get(3).copied() {
        None | Some("") => None,
        Some(o) => {
            mount_options(Some(o))?;
            Some(o.to_string())
        }
    };
    Ok(FsArgs {
        device: PathBuf::from(device),
        dir,
        fstype,
        options,
    })
}

fn failed(a: &FsArgs, msg: impl std::fmt::Display) -> AgentError {
    AgentError::Failed(format!(
        "Filesystem {} on {}: {msg}",
        a.device.display(),
        a.dir.display()
    ))
}

/// Runs `f` on the blocking pool.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(v) => v,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

// ---------------------------------------------------------------------------
// Device resolution

/// Why DEVICE, or what is mounted at DIRECTORY, cannot be found out.
#[derive(Debug, thiserror::Error)]
enum LookupError {
    /// `LABEL=`/`UUID=` without a udev link, and blkid did not run.
    #[error("no /dev/disk/{dir}/{value}, and blkid failed: {source}")]
    Blkid {
        dir: &'static str,
        value: String,
        source: io::Error,
    },
    /// Neither udev nor blkid knows the label or UUID `device`.
    #[error("no device has {device} (/dev/disk/{dir}, blkid)")]
    NoDevice { device: String, dir: &'static str },
    #[error("cannot read /proc/self/mountinfo: {0}")]
    Mountinfo(#[source] io::Error),
}

/// Where the mount comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    /// A block device, symlinks resolved.
    Block(PathBuf),
    /// `tmpfs`, `host:/export`...: compared as a string.
    Other(String),
}

impl Source {
    fn display(&self) -> String {
        match self {
            Source::Block(p) => p.display().to_string(),
            Source::Other(s) => s.clone(),
        }
    }
}

/// Filesystem types listed in `/proc/filesystems`: (name, needs a device).
fn proc_filesystems() -> Vec<(String, bool)> {
    let text = std::fs::read_to_string("/proc/filesystems").unwrap_or_default();
    parse_proc_filesystems(&text)
}

fn parse_proc_filesystems(text: &str) -> Vec<(String, bool)> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            match (f.next(), f.next()) {
                (Some("nodev"), Some(t)) => Some((t.to_string(), false)),
                (Some(t), None) => Some((t.to_string(), true)),
                _ => None,
            }
        })
        .collect()
}

/// `/sbin/mount.TYPE`, as mount(8) looks for it.
fn mount_helper(fstype: &str) -> Option<PathBuf> {
    ["/sbin", "/usr/sbin", "/usr/local/sbin"]
        .iter()
        .map(|d| Path::new(d).join(format!("mount.{fstype}")))
        .find(|p| p.is_file())
}

/// Resolves DEVICE (blocking: may run `blkid`). A path is returned even if it
/// does not exist; `start` checks.
fn resolve_source(a: &FsArgs) -> Result<Source, LookupError> {
    let dev = a.device.to_string_lossy().into_owned();
    let tagged = [("LABEL=", "by-label"), ("UUID=", "by-uuid")]
        .into_iter()
        .find_map(|(tag, dir)| dev.strip_prefix(tag).map(|v| (tag, dir, v)));
    if let Some((tag, dir, value)) = tagged {
        let link = Path::new("/dev/disk").join(dir).join(value);
        if let Ok(p) = std::fs::canonicalize(&link) {
            return Ok(Source::Block(p));
        }
        // No udev links (containers, early boot): ask libblkid, as findfs.
        let out = std::process::Command::new(find_tool("blkid"))
            .args(["-l", "-o", "device", "-t", &format!("{tag}{value}")])
            .output()
            .map_err(|source| LookupError::Blkid {
                dir,
                value: value.into(),
                source,
            })?;
        let found = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !out.status.success() || found.is_empty() {
            return Err(LookupError::NoDevice { device: dev, dir });
        }
        let p = PathBuf::from(found);
        return Ok(Source::Block(std::fs::canonicalize(&p).unwrap_or(p)));
    }
    if !dev.starts_with('/') {
        return Ok(Source::Other(dev));
    }
    // A path with a nodev or helper type (tmpfs mounted "from" /x) is a name.
    if let Some(t) = &a.fstype {
        let table = proc_filesystems();
        if table.iter().any(|(n, blk)| n == t && !blk) || mount_helper(t).is_some() {
            return Ok(Source::Other(dev));
        }
    }
    Ok(Source::Block(
        std::fs::canonicalize(&a.device).unwrap_or_else(|_| a.device.clone()),
    ))
}

fn find_tool(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(name))
}

/// DIRECTORY as the kernel writes it in mountinfo (symlinks resolved).
fn canonical_dir(dir: &Path) -> PathBuf {
    std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf())
}

// ---------------------------------------------------------------------------
// mountinfo

/// One line of `/proc/self/mountinfo` (proc(5)).
#[derive(Debug, Clone, PartialEq, Eq)]
struct MountEntry {
    id: u64,
    parent: u64,
    dev: (u64, u64),
    mount_point: PathBuf,
    /// Per-mount options (`rw,noatime`).
    options: String,
    fstype: String,
    source: String,
}

/// Undoes the kernel's octal escapes of space, tab, newline and backslash.
fn unescape(s: &str) -> String {
    String::from_utf8_lossy(&crate::disk::mounts::unescape_octal(s)).into_owned()
}

fn parse_mountinfo(text: &str) -> Vec<MountEntry> {
    text.lines()
        .filter_map(|line| {
            // id parent major:minor root mount_point options [optional...] - fstype source super
            let (left, right) = line.split_once(" - ")?;
            let l: Vec<&str> = left.split(' ').collect();
            let r: Vec<&str> = right.split(' ').collect();
            if l.len() < 6 || r.len() < 2 {
                return None;
            }
            let (maj, min) = l[2].split_once(':')?;
            Some(MountEntry {
                id: l[0].parse().ok()?,
                parent: l[1].parse().ok()?,
                dev: (maj.parse().ok()?, min.parse().ok()?),
                mount_point: PathBuf::from(unescape(l[4])),
                options: l[5].to_string(),
                fstype: unescape(r[0]),
                source: unescape(r[1]),
            })
        })
        .collect()
}

fn mountinfo() -> Result<Vec<MountEntry>, LookupError> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .map(|t| parse_mountinfo(&t))
        .map_err(LookupError::Mountinfo)
}

/// The mount visible at `dir`: the last one listed there (it covers the
/// others).
fn mounted_at<'a>(table: &'a [MountEntry], dir: &Path) -> Option<&'a MountEntry> {
    table.iter().rev().find(|e| e.mount_point == dir)
}

/// Mount points of the mounts whose parent is mount `id`.
fn submounts(table: &[MountEntry], id: u64) -> Vec<PathBuf> {
    table
        .iter()
        .filter(|e| e.parent == id && e.id != id)
        .map(|e| e.mount_point.clone())
        .collect()
}

fn rdev(p: &Path) -> Option<(u64, u64)> {
    let m = std::fs::metadata(p).ok()?;
    m.file_type().is_block_device().then(|| {
        (
            nix::sys::stat::major(m.rdev()),
            nix::sys::stat::minor(m.rdev()),
        )
    })
}

/// Whether `e` is a mount of `source`. btrfs reports an anonymous
/// major:minor, hence the comparison of source paths as well.
fn is_from(e: &MountEntry, source: &Source) -> bool {
    match source {
        Source::Block(p) => {
            rdev(p).is_some_and(|d| d == e.dev)
                || Path::new(&e.source) == p
                || std::fs::canonicalize(&e.source).is_ok_and(|s| s == *p)
        }
        Source::Other(s) => e.source == *s,
    }
}

/// What is at DIRECTORY: (canonical dir, source, the mount there if any).
fn lookup(a: &FsArgs) -> Result<(PathBuf, Source, Option<MountEntry>), LookupError> {
    let source = resolve_source(a)?;
    let dir = canonical_dir(&a.dir);
    let table = mountinfo()?;
    let entry = mounted_at(&table, &dir).cloned();
    Ok((dir, source, entry))
}

// ---------------------------------------------------------------------------
// start

pub async fn start(a: &FsArgs, o: &Options) -> Result<(), AgentError> {
    let args = a.clone();
    let (dir, source, entry) = blocking(move || lookup(&args))
        .await
        .map_err(|e| failed(a, e))?;
    if let Some(e) = entry {
        if is_from(&e, &source) {
            tracing::info!(dir = %dir.display(), "already mounted");
            return Ok(());
        }
        return Err(failed(
            a,
            format!(
                "{} is already mounted from {} ({})",
                dir.display(),
                e.source,
                e.fstype
            ),
        ));
    }
    let opts = mount_options(a.options.as_deref()).map_err(|e| failed(a, e))?;
    match source {
        Source::Other(src) => mount_other(a, &dir, &src, &opts).await,
        Source::Block(dev) => mount_block(a, o, &dir, &dev, opts).await,
    }
}

async fn mount_block(
    a: &FsArgs,
    o: &Options,
    dir: &Path,
    dev: &Path,
    opts: MountOptions,
) -> Result<(), AgentError> {
    let d = dev.to_path_buf();
    let (meta, probe) = blocking(move || {
        let meta = std::fs::metadata(&d);
        let probe = match &meta {
            Ok(m) if m.file_type().is_block_device() => Some(read_superblock(&d)),
            _ => None,
        };
        (meta, probe)
    })
    .await;
    match meta {
        Err(e) => return Err(failed(a, format!("{}: {e}", dev.display()))),
        Ok(m) if !m.file_type().is_block_device() => {
            return Err(failed(
                a,
                format!(
                    "{} is not a block device (a file needs a loop device: losetup)",
                    dev.display()
                ),
            ))
        }
        Ok(_) => {}
    }
    let probe = match probe {
        Some(Ok(p)) => p,
        Some(Err(e)) if a.fstype.is_none() => {
            return Err(failed(a, format!("cannot read {}: {e}", dev.display())))
        }
        Some(Err(e)) => {
            tracing::warn!(device = %dev.display(), error = %e, "cannot read the superblock");
            None
        }
        None => None,
    };
    let fstype: Option<String> = a
        .fstype
        .clone()
        .or_else(|| probe.as_ref().map(|p| p.fstype.to_string()));
    let journal = probe.as_ref().and_then(|p| p.journal);
    if fsck_needed(o.fsck, fstype.as_deref(), journal) {
        run_fsck(a, dev, fstype.as_deref()).await?;
    } else {
        tracing::debug!(
            fstype = fstype.as_deref().unwrap_or("?"),
            mode = ?o.fsck,
            "fsck skipped: journaled or unknown filesystem, or fsck = never"
        );
    }
    // Without a type, try each block filesystem the kernel knows, as mount(8).
    let candidates: Vec<String> = match &fstype {
        Some(t) => vec![t.clone()],
        None => proc_filesystems()
            .into_iter()
            .filter(|(n, blk)| *blk && n != "fuseblk")
            .map(|(n, _)| n)
            .collect(),
    };
    let d = dir.to_path_buf();
    blocking(move || std::fs::create_dir_all(&d))
        .await
        .map_err(|e| failed(a, format!("cannot create {}: {e}", dir.display())))?;
    let tried = candidates.join(", ");
    let (dev2, dir2) = (dev.to_path_buf(), dir.to_path_buf());
    let result = blocking(move || -> Result<String, (String, Errno)> {
        let mut last = (String::new(), Errno::ENODEV);
        for t in &candidates {
            match nix::mount::mount(
                Some(&dev2),
                &dir2,
                Some(t.as_str()),
                opts.flags,
                Some(opts.data.as_str()),
            ) {
                Ok(()) => return Ok(t.clone()),
                // Not this type: try the next one.
                Err(e @ (Errno::EINVAL | Errno::ENODEV)) if candidates.len() > 1 => {
                    last = (t.clone(), e)
                }
                Err(e) => return Err((t.clone(), e)),
            }
        }
        Err(last)
    })
    .await;
    match result {
        Ok(t) => {
            tracing::info!(device = %dev.display(), dir = %dir.display(), fstype = %t, options = a.options.as_deref().unwrap_or(""), "mounted");
            Ok(())
        }
        Err((t, e)) => {
            let hint = match e {
                _ if t.is_empty() => "no block filesystem in /proc/filesystems".into(),
                Errno::EINVAL => {
                    let mut h = "wrong fstype, bad option or bad superblock; see dmesg".to_string();
                    if let Some(p) = probe.as_ref().filter(|p| p.fstype != t) {
                        h.push_str(&format!("; the superblock says {}", p.fstype));
                    }
                    h
                }
                Errno::ENODEV => {
                    format!("the kernel does not know filesystem type {t} (/proc/filesystems)")
                }
                Errno::EACCES | Errno::EROFS => "the device is read-only; add ro to OPTIONS".into(),
                Errno::EBUSY => "the device is busy (in use by md, dm or another mount?)".into(),
                _ => String::new(),
            };
            let what = if a.fstype.is_some() || probe.is_some() {
                format!("mount as {t}")
            } else {
                format!("mount: no filesystem type of /proc/filesystems fits (tried {tried})")
            };
            Err(failed(
                a,
                format!(
                    "{what}: {}{}",
                    e.desc(),
                    if hint.is_empty() {
                        String::new()
                    } else {
                        format!(" ({hint})")
                    }
                ),
            ))
        }
    }
}

/// A source that is not a block device: a `mount.TYPE` helper when there is
/// one (nfs, cifs), else mount(2) with the source as written (tmpfs).
async fn mount_other(
    a: &FsArgs,
    dir: &Path,
    src: &str,
    opts: &MountOptions,
) -> Result<(), AgentError> {
    let Some(fstype) = a.fstype.clone() else {
        return Err(failed(a, "a source that is not a device needs an FSTYPE"));
    };
    let d = dir.to_path_buf();
    blocking(move || std::fs::create_dir_all(&d))
        .await
        .map_err(|e| failed(a, format!("cannot create {}: {e}", dir.display())))?;
    if let Some(helper) = mount_helper(&fstype) {
        use crate::process::{self, Output};
        let mut c = process::Command::new(&helper).arg(src).arg(dir);
        if let Some(o) = &a.options {
            c = c.args(["-o", o]);
        }
        // No timeout of its own: the start's timeout drops the call, which
        // KILLs the helper's process group.
        let out = process::run(&c.output(Output::Capture))
            .await
            .map_err(|e| failed(a, format!("cannot run {e}")))?;
        if !out.success() {
            return Err(failed(
                a,
                format!(
                    "{} failed ({}): {}",
                    helper.display(),
                    match out.signal {
                        Some(s) => format!("killed by signal {s}"),
                        None => format!("exit status: {}", out.code),
                    },
                    out.stderr().trim()
                ),
            ));
        }
    } else {
        let (s, d, t, flags, data) = (
            src.to_string(),
            dir.to_path_buf(),
            fstype.clone(),
            opts.flags,
            opts.data.clone(),
        );
        blocking(move || {
            nix::mount::mount(
                Some(s.as_str()),
                &d,
                Some(t.as_str()),
                flags,
                Some(data.as_str()),
            )
        })
        .await
        .map_err(|e| failed(a, format!("mount as {fstype}: {}", e.desc())))?;
    }
    tracing::info!(source = src, dir = %dir.display(), fstype = %fstype, "mounted");
    Ok(())
}

// ---------------------------------------------------------------------------
// stop

/// How many times umount(2) is tried while the kernel says EBUSY.
const UMOUNT_TRIES: u32 = 5;

pub async fn stop(a: &FsArgs, o: &Options) -> Result<(), AgentError> {
    use nix::sys::signal::Signal;
    let args = a.clone();
    let (dir, source, entry, submounts) = blocking(move || {
        let (dir, source, entry) = lookup(&args)?;
        // Mounts on top of ours (children by parent id; their own children
        // need them, so the direct ones are enough to name).
        let subs: Vec<PathBuf> = match &entry {
            Some(e) => submounts(&mountinfo()?, e.id),
            None => Vec::new(),
        };
        Ok::<_, LookupError>((dir, source, entry, subs))
    })
    .await
    .map_err(|e| failed(a, e))?;
    let Some(entry) = entry else {
        tracing::info!(dir = %dir.display(), "not mounted");
        return Ok(());
    };
    if !is_from(&entry, &source) {
        // Not ours: stopping this resource must not unmount someone else's.
        tracing::warn!(dir = %dir.display(), source = %entry.source, device = %source.display(), "mounted from another device: left alone");
        return Ok(());
    }
    if !submounts.is_empty() {
        return Err(failed(
            a,
            format!(
                "{} has mounts below it, unmount them first: {}",
                dir.display(),
                submounts
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    let dev = entry.dev;
    let held = blocking(move || holders(dev)).await;
    if !held.is_empty() {
        signal_all(&held, Signal::SIGTERM, &dir);
        let left = wait_released(dev, o.kill_grace).await;
        if !left.is_empty() {
            signal_all(&left, Signal::SIGKILL, &dir);
            // A killed process lets go of its files when it exits.
            wait_released(dev, Duration::from_secs(2)).await;
        }
    }
    let mut tries = 0;
    loop {
        tries += 1;
        let d = dir.clone();
        match blocking(move || nix::mount::umount(&d)).await {
            Ok(()) => {
                tracing::info!(dir = %dir.display(), "unmounted");
                return Ok(());
            }
            // Not a mount point any more: someone else unmounted it.
            Err(Errno::EINVAL) => {
                let d = dir.clone();
                let table = blocking(mountinfo).await.map_err(|e| failed(a, e))?;
                if mounted_at(&table, &d).is_none() {
                    return Ok(());
                }
                return Err(failed(
                    a,
                    format!("umount {}: {}", dir.display(), Errno::EINVAL.desc()),
                ));
            }
            Err(Errno::EBUSY) if tries < UMOUNT_TRIES => {
                // Someone opened it after the scan: KILL this time.
                let late = blocking(move || holders(dev)).await;
                signal_all(&late, Signal::SIGKILL, &dir);
                // Until they are gone (KILLed processes release the mount
                // as they exit), at most 500 ms as before.
                wait_released(dev, Duration::from_millis(500)).await;
            }
            Err(Errno::EBUSY) => {
                let left = blocking(move || holders(dev)).await;
                let who = if left.is_empty() {
                    "no process holds it (swap, a loop device, an NFS export or a bind mount elsewhere?)".to_string()
                } else {
                    format!(
                        "held by {}",
                        left.iter()
                            .map(Holder::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                };
                return Err(failed(
                    a,
                    format!("umount {}: busy after {tries} tries: {who}", dir.display()),
                ));
            }
            Err(e) => return Err(failed(a, format!("umount {}: {}", dir.display(), e.desc()))),
        }
    }
}

// ---------------------------------------------------------------------------
// status

pub async fn status(a: &FsArgs) -> Result<Running, AgentError> {
    let args = a.clone();
    let (dir, source, entry) = match blocking(move || lookup(&args)).await {
        Ok(v) => v,
        // LABEL=/UUID= not found: that device is mounted nowhere here.
        Err(e) if resolve_fails_only(a) => {
            tracing::debug!(error = %e, "device not found");
            return Ok(Running::Stopped);
        }
        Err(e) => return Err(failed(a, e)),
    };
    Ok(match entry {
        Some(e) if is_from(&e, &source) => Running::Running,
        Some(e) => {
            // Debug only: status is polled, and start says it loud and clear.
            tracing::debug!(dir = %dir.display(), source = %e.source, device = %source.display(), "mounted from another device");
            Running::Stopped
        }
        None => Running::Stopped,
    })
}

/// Whether a `lookup` failure can only come from resolving DEVICE.
fn resolve_fails_only(a: &FsArgs) -> bool {
    let d = a.device.to_string_lossy();
    d.starts_with("LABEL=") || d.starts_with("UUID=")
}

#[cfg(test)]
mod tests;
