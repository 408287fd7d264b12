//! The loop device in front of the FUSE file (linux/loop.h): attaching it
//! from a forked child (`LOOP_CONFIGURE`, with direct I/O where the kernel
//! takes it), telling whether it is still attached, detaching a stale one
//! left by a killed process, and who holds it open.

use super::*;

const LOOP_SET_FD: libc::c_ulong = 0x4C00;
pub(super) const LOOP_CLR_FD: libc::c_ulong = 0x4C01;
const LOOP_GET_STATUS64: libc::c_ulong = 0x4C05;
const LOOP_SET_DIRECT_IO: libc::c_ulong = 0x4C08;
const LOOP_CONFIGURE: libc::c_ulong = 0x4C0A;
const LOOP_CTL_GET_FREE: libc::c_ulong = 0x4C82;
const LO_FLAGS_DIRECT_IO: u32 = 16;

#[repr(C)]
#[derive(Clone, Copy)]
struct LoopInfo64 {
    lo_device: u64,
    lo_inode: u64,
    lo_rdevice: u64,
    lo_offset: u64,
    lo_sizelimit: u64,
    lo_number: u32,
    lo_encrypt_type: u32,
    lo_encrypt_key_size: u32,
    lo_flags: u32,
    lo_file_name: [u8; 64],
    lo_crypt_name: [u8; 64],
    lo_encrypt_key: [u8; 32],
    lo_init: [u64; 2],
}

#[repr(C)]
struct LoopConfig {
    fd: u32,
    block_size: u32,
    info: LoopInfo64,
    reserved: [u64; 8],
}

pub(super) fn ioctl_val(
    fd: &File,
    req: libc::c_ulong,
    arg: libc::c_ulong,
) -> io::Result<libc::c_int> {
    // SAFETY: integer-argument ioctl.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), req as _, arg) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// Attaches the FUSE file `file` to a free loop device; returns its path and
/// whether direct I/O is on.
///
/// The work runs in a forked child that holds no `/dev/fuse` descriptor.
/// Opening the file and `LOOP_CONFIGURE` (which flushes the file: an `FSYNC`
/// to this process's own server) are requests to ourselves, and the kernel
/// waits for a request already read by the server uninterruptibly. Made
/// from a thread of this process, a kill at that moment left the process
/// unable to exit (its own descriptor kept the connection alive) and the
/// half-configured loop device blocking every later `open` of it. In the
/// child, the kill closes the last `/dev/fuse` descriptor, the kernel aborts
/// the connection and fails the request, and the child, finding its parent
/// gone, detaches what it attached.
pub(super) fn attach_loop(file: &Path) -> io::Result<(PathBuf, bool)> {
    use std::os::fd::{FromRawFd, OwnedFd};
    let path = std::ffi::CString::new(file.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in path"))?;
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both were just created and are owned here only.
    let (rd, wr) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: the child only makes async-signal-safe system calls (no
    // allocation, no locks) on memory prepared before the fork, and ends in
    // `_exit`.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => {
            let code = unsafe { attach_child(&path, wr.as_raw_fd(), parent) };
            // SAFETY: ends the child without running anything of the parent's.
            unsafe { libc::_exit(code) }
        }
        child => {
            drop(wr);
            let mut answer = [0u8; 12];
            let read = io::Read::read_exact(&mut File::from(rd), &mut answer);
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(child), None);
            match read {
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    return Err(io::Error::other(
                        "the loop attach helper ended without answering",
                    ))
                }
                r => r?,
            }
            let word = |i: usize| i32::from_ne_bytes(answer[i * 4..i * 4 + 4].try_into().unwrap());
            match (word(0), word(1)) {
                (0, n) if n >= 0 => Ok((PathBuf::from(format!("/dev/loop{n}")), word(2) != 0)),
                (0, _) => Err(io::Error::other("no free loop device")),
                (errno, _) => Err(io::Error::from_raw_os_error(errno)),
            }
        }
    }
}

/// The child of [`attach_loop`]: writes `[errno, loop number, direct I/O]`
/// (native-endian `i32`s; errno 0 on success) to `out` and returns the exit
/// code.
///
/// # Safety
/// Runs between `fork` and `_exit` in a child of a multi-threaded process:
/// system calls only, on memory that exists already.
unsafe fn attach_child(path: &std::ffi::CStr, out: libc::c_int, parent: libc::pid_t) -> i32 {
    let errno = || *libc::__errno_location();
    let answer = |e: i32, n: i32, dio: i32| {
        let mut buf = [0u8; 12];
        buf[..4].copy_from_slice(&e.to_ne_bytes());
        buf[4..8].copy_from_slice(&n.to_ne_bytes());
        buf[8..].copy_from_slice(&dio.to_ne_bytes());
        libc::write(out, buf.as_ptr().cast(), buf.len()) == buf.len() as isize
    };
    // Every descriptor but stdio and `out` closed: above all `/dev/fuse`,
    // whose last close (the parent's death) must abort the connection.
    if out > 3 {
        libc::syscall(libc::SYS_close_range, 3u32, (out - 1) as u32, 0u32);
    }
    libc::syscall(libc::SYS_close_range, (out + 1) as u32, u32::MAX, 0u32);
    libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    let file = libc::open(path.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC);
    if file < 0 {
        answer(errno(), -1, 0);
        return 1;
    }
    let ctl = libc::open(
        c"/dev/loop-control".as_ptr(),
        libc::O_RDWR | libc::O_CLOEXEC,
    );
    if ctl < 0 {
        answer(errno(), -1, 0);
        return 1;
    }
    let mut last = 0;
    for _ in 0..16 {
        let n = libc::ioctl(ctl, LOOP_CTL_GET_FREE as _, 0);
        if n < 0 {
            answer(errno(), -1, 0);
            return 1;
        }
        let mut name = [0u8; 32];
        let len = loop_name(&mut name, n as u32);
        let dev = libc::open(
            name[..len + 1].as_ptr().cast(),
            libc::O_RDWR | libc::O_CLOEXEC,
        );
        if dev < 0 {
            answer(errno(), -1, 0);
            return 1;
        }
        let mut cfg: LoopConfig = std::mem::zeroed();
        cfg.fd = file as u32;
        cfg.info.lo_flags = LO_FLAGS_DIRECT_IO;
        let mut r = libc::ioctl(dev, LOOP_CONFIGURE as _, &mut cfg as *mut LoopConfig);
        if r < 0 && errno() == libc::EINVAL {
            // Direct I/O refused (or LOOP_CONFIGURE unknown): plain.
            cfg.info.lo_flags = 0;
            r = libc::ioctl(dev, LOOP_CONFIGURE as _, &mut cfg as *mut LoopConfig);
        }
        if r < 0 {
            let e = errno();
            if e == libc::EBUSY {
                // Someone else took this one between GET_FREE and CONFIGURE.
                last = e;
                libc::close(dev);
                continue;
            }
            if e != libc::ENOTTY && e != libc::EINVAL {
                answer(e, -1, 0);
                return 1;
            }
            // Kernels before 5.8: LOOP_SET_FD, then direct I/O if accepted.
            if libc::ioctl(dev, LOOP_SET_FD as _, file as libc::c_ulong) < 0 {
                let e = errno();
                if e == libc::EBUSY {
                    last = e;
                    libc::close(dev);
                    continue;
                }
                answer(e, -1, 0);
                return 1;
            }
            libc::ioctl(dev, LOOP_SET_DIRECT_IO as _, 1 as libc::c_ulong);
        }
        let mut info: LoopInfo64 = std::mem::zeroed();
        let dio = libc::ioctl(dev, LOOP_GET_STATUS64 as _, &mut info as *mut LoopInfo64) == 0
            && info.lo_flags & LO_FLAGS_DIRECT_IO != 0;
        if libc::getppid() != parent || !answer(0, n, i32::from(dio)) {
            // The device process died meanwhile: nobody serves this loop
            // device any more and nobody will detach it.
            libc::ioctl(dev, LOOP_CLR_FD as _, 0 as libc::c_ulong);
            return 1;
        }
        return 0;
    }
    answer(if last == 0 { libc::ENOSPC } else { last }, -1, 0);
    1
}

/// Writes `/dev/loop{n}` and a NUL into `buf`; returns the length without
/// the NUL. No allocation (async-signal-safe).
fn loop_name(buf: &mut [u8; 32], n: u32) -> usize {
    const PREFIX: &[u8] = b"/dev/loop";
    buf[..PREFIX.len()].copy_from_slice(PREFIX);
    let mut digits = [0u8; 10];
    let mut k = 0;
    let mut v = n;
    loop {
        digits[k] = b'0' + (v % 10) as u8;
        k += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    for i in 0..k {
        buf[PREFIX.len() + i] = digits[k - 1 - i];
    }
    buf[PREFIX.len() + k] = 0;
    PREFIX.len() + k
}

/// The backing file a loop device serves, as sysfs prints its path; `None`
/// while the loop device is free. Read from sysfs rather than with
/// LOOP_GET_STATUS64, which stats the file: for the FUSE file that is a
/// request to this process's own server, and a thread waiting on its own
/// server when the process is killed keeps the process from exiting (see
/// [`attach_loop`]).
pub(super) fn backing_file(dev: &Path) -> Option<String> {
    let name = dev.file_name()?.to_string_lossy();
    let text = std::fs::read_to_string(format!("/sys/block/{name}/loop/backing_file")).ok()?;
    Some(text.trim_end().to_string())
}

/// True once the loop device no longer serves the file `ours`: it is free,
/// or its number was given to another file since (another device process,
/// `losetup`), which is not ours to touch.
pub(super) fn loop_detached(dev: &Path, ours: &str) -> bool {
    backing_file(dev).as_deref() != Some(ours)
}

/// Detach a loop device left behind by a device process that died while
/// Primary: its backing file is the dead FUSE file, `mount_dir/device`, or
/// just `/device` once the mount namespace it lived in is gone. A live
/// device's loop (in another mount namespace its path is whole) is never
/// touched. Returns `Ok(false)` when the loop device serves something else
/// or is already free. If it is still mounted somewhere the kernel detaches
/// it at the last unmount (autoclear).
pub fn detach_stale_loop(path: &Path, mount_dir: &Path) -> io::Result<bool> {
    // Right after the crash the kernel may still be failing the dead FUSE
    // connection's requests (ENOTCONN): try for a while.
    let mut last = None;
    for _ in 0..50 {
        match try_detach_stale(path, mount_dir) {
            Ok(done) => return Ok(done),
            Err(e) => last = Some(e),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(last.unwrap_or_else(|| io::Error::other("cannot detach")))
}

fn try_detach_stale(path: &Path, mount_dir: &Path) -> io::Result<bool> {
    // (Not LOOP_GET_STATUS64: it stats the backing file, which fails on the
    // dead FUSE file.)
    let backing = backing_file(path).unwrap_or_default();
    let backing = backing.as_str();
    let own = mount_dir.join(DEVICE_FILE);
    if backing != format!("/{DEVICE_FILE}") && Path::new(backing) != own {
        return Ok(false);
    }
    let dev = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)?;
    match ioctl_val(&dev, LOOP_CLR_FD, 0) {
        Ok(_) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::ENXIO) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Processes with an open file descriptor on block device `rdev`, and
/// processes whose mount namespace has it mounted, as "pid N (comm) fd" /
/// "pid N (comm) mount M" strings.
pub(super) fn holders(rdev: u64) -> Vec<String> {
    let maj_min = format!("{}:{}", libc::major(rdev), libc::minor(rdev));
    let mut out = Vec::new();
    let mut mount_ns_seen = std::collections::HashSet::new();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return out;
    };
    for p in procs.flatten() {
        let name = p.file_name();
        let Some(pid) = name.to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        if let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
            for fd in fds.flatten() {
                if let Ok(m) = std::fs::metadata(fd.path()) {
                    if m.file_type().is_block_device() && m.rdev() == rdev {
                        out.push(format!(
                            "pid {pid} ({comm}) fd {}",
                            fd.file_name().to_string_lossy()
                        ));
                    }
                }
            }
        }
        let ns = std::fs::read_link(format!("/proc/{pid}/ns/mnt")).ok();
        if ns.is_some() && !mount_ns_seen.insert(ns) {
            continue;
        }
        if let Ok(mi) = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")) {
            for line in mi.lines() {
                let f: Vec<&str> = line.split(' ').collect();
                if f.get(2) == Some(&maj_min.as_str()) {
                    out.push(format!(
                        "pid {pid} ({comm}) mount namespace has it mounted on {}",
                        f.get(4).unwrap_or(&"?")
                    ));
                }
            }
        }
    }
    out
}
