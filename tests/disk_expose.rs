//! The replicated device's exposure: a FUSE file behind a loop device, with
//! ext4 on it. Needs root, /dev/fuse and loop devices. The FUSE mount lives
//! in a temporary directory and is always unmounted (Exposed's Drop, also on
//! panic); ext4 is only ever mounted inside `unshare --mount` children, so the
//! root mount namespace never sees it.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hbd::disk::expose::{expose, harden_process, BlockStore, FileStore, DEVICE_FILE};

const MIB: u64 = 1 << 20;

/// A FileStore that counts flushes.
struct Counting {
    inner: FileStore,
    flushes: AtomicU64,
}

impl BlockStore for Counting {
    fn size(&self) -> u64 {
        self.inner.size()
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        self.inner.read_at(buf, offset)
    }
    fn write_at(&self, data: &[u8], offset: u64) -> std::io::Result<()> {
        self.inner.write_at(data, offset)
    }
    fn flush(&self) -> std::io::Result<()> {
        self.flushes.fetch_add(1, Ordering::SeqCst);
        self.inner.flush()
    }
}

/// Kills and reaps a child process on drop.
struct Reap(Child);
impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn backing(dir: &Path, data: u64, meta: u64) -> PathBuf {
    let path = dir.join("backing.img");
    let f = File::create(&path).unwrap();
    f.set_len(data + meta).unwrap();
    // Metadata region past the data: a pattern that must survive.
    f.write_all_at(&vec![0xAB; meta as usize], data).unwrap();
    path
}

fn sh(script: &str) -> String {
    let out = Command::new("sh").arg("-c").arg(script).output().unwrap();
    assert!(
        out.status.success(),
        "{script}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs `script` in a private mount namespace (ext4 mounts stay there).
fn in_private_ns(script: &str) -> String {
    sh(&format!(
        "unshare --mount --propagation private sh -ec '{}'",
        script.replace('\'', "'\\''")
    ))
}

/// `dev` serves this test's FUSE file `fuse_dir/device`. (Not just "is
/// bound": the tests of this binary run in parallel, and one of them may
/// take the loop device another just freed. That made
/// `close_waits_for_a_mount_in_another_namespace` fail once in 40 runs.)
fn serves(dev: &Path, fuse_dir: &Path) -> bool {
    let name = dev.file_name().unwrap().to_string_lossy();
    let backing =
        std::fs::read_to_string(format!("/sys/block/{name}/loop/backing_file")).unwrap_or_default();
    let own = fuse_dir
        .canonicalize()
        .unwrap_or_else(|_| fuse_dir.to_path_buf());
    Path::new(backing.trim_end()) == own.join(DEVICE_FILE)
}

fn mounted(dir: &Path) -> bool {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    std::fs::read_to_string("/proc/mounts")
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(1) == Some(dir.to_str().unwrap()))
}

fn read_all(path: &Path, len: u64) -> Vec<u8> {
    let mut buf = vec![0u8; len as usize];
    File::open(path).unwrap().read_exact(&mut buf).unwrap();
    buf
}

#[test]
fn ext4_on_the_exposed_device_reaches_the_store() {
    let tmp = tempfile::tempdir().unwrap();
    let data = 64 * MIB;
    let img = backing(tmp.path(), data, MIB);
    let fuse_dir = tmp.path().join("fuse");
    let ext4_dir = tmp.path().join("ext4");
    std::fs::create_dir(&fuse_dir).unwrap();
    std::fs::create_dir(&ext4_dir).unwrap();
    let link = tmp.path().join("drbd0");

    let store = Arc::new(Counting {
        inner: FileStore::open(&img, data).unwrap(),
        flushes: AtomicU64::new(0),
    });
    let mut exposed = expose(store.clone(), &fuse_dir, Some(&link)).unwrap();
    let dev = exposed.loop_dev.clone();
    eprintln!(
        "exposed on {} (direct_io {})",
        dev.display(),
        exposed.direct_io
    );
    assert_eq!(std::fs::read_link(&link).unwrap(), dev);
    assert!(mounted(&fuse_dir));
    let listing = sh("losetup -a");
    assert!(
        listing.contains(&format!("{}/{DEVICE_FILE}", fuse_dir.display())),
        "{listing}"
    );
    assert_eq!(
        sh(&format!("blockdev --getsize64 {}", dev.display())).trim(),
        data.to_string()
    );

    sh(&format!("mkfs.ext4 -q -F {}", link.display()));
    let flushes_before = store.flushes.load(Ordering::SeqCst);
    let written = in_private_ns(&format!(
        "mount {dev} {dir}
         dd if=/dev/urandom of={dir}/f bs=1M count=8 conv=fsync status=none
         sha256sum < {dir}/f
         umount {dir}",
        dev = link.display(),
        dir = ext4_dir.display()
    ));
    assert!(
        store.flushes.load(Ordering::SeqCst) > flushes_before,
        "fsync on ext4 did not reach BlockStore::flush"
    );
    let ops = exposed.op_counts();
    eprintln!("ops: {ops:?}");
    assert!(ops.fsync > 0 && ops.write > 0 && ops.read > 0, "{ops:?}");

    // Remounted elsewhere, the file reads back the same.
    let reread = in_private_ns(&format!(
        "mount -o ro {dev} {dir}
         sha256sum < {dir}/f
         umount {dir}",
        dev = dev.display(),
        dir = ext4_dir.display()
    ));
    assert_eq!(written, reread);

    // The backing file's data region is exactly the device's content; the
    // metadata region past it is untouched.
    let through_loop = read_all(&dev, data);
    let mut in_file = vec![0u8; data as usize];
    File::open(&img)
        .unwrap()
        .read_exact_at(&mut in_file, 0)
        .unwrap();
    assert!(through_loop == in_file, "backing file differs from device");
    let mut meta = vec![0u8; MIB as usize];
    File::open(&img)
        .unwrap()
        .read_exact_at(&mut meta, data)
        .unwrap();
    assert!(meta.iter().all(|&b| b == 0xAB), "metadata region written");

    exposed.close(Duration::from_secs(30)).unwrap();
    assert!(!serves(&dev, &fuse_dir), "{dev:?} still attached");
    assert!(!mounted(&fuse_dir), "FUSE still mounted");
    assert!(
        std::fs::symlink_metadata(&link).is_err(),
        "link left behind"
    );
    // Closing again is a no-op.
    exposed.close(Duration::from_secs(1)).unwrap();
}

#[test]
fn close_waits_for_and_names_holders() {
    let tmp = tempfile::tempdir().unwrap();
    let data = 16 * MIB;
    let img = backing(tmp.path(), data, MIB);
    let fuse_dir = tmp.path().join("fuse");
    std::fs::create_dir(&fuse_dir).unwrap();
    let store = Arc::new(FileStore::open(&img, data).unwrap());
    let mut exposed = expose(store, &fuse_dir, None).unwrap();
    let dev = exposed.loop_dev.clone();

    // Another process holds it open: close refuses and names it, and the
    // device stays attached and usable.
    let holder = Reap(
        Command::new("sh")
            .arg("-c")
            .arg(format!("exec sleep 600 < {}", dev.display()))
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let pid = holder.0.id();
    // Wait until the child has it open (no timing assumptions).
    while !std::fs::read_link(format!("/proc/{pid}/fd/0")).is_ok_and(|p| p == dev) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let err = exposed.close(Duration::from_millis(300)).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(&format!("pid {pid} (sleep)")), "{msg}");
    assert!(serves(&dev, &fuse_dir));
    assert!(mounted(&fuse_dir));
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&dev)
        .unwrap();
    f.write_all_at(b"still here", 4096).unwrap();
    f.sync_all().unwrap();
    drop(holder);

    // This process holds it: close waits until it lets go.
    let mut buf = [0u8; 10];
    f.read_exact_at(&mut buf, 4096).unwrap();
    assert_eq!(&buf, b"still here");
    let releaser = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        drop(f);
    });
    exposed.close(Duration::from_secs(60)).unwrap();
    releaser.join().unwrap();
    assert!(!serves(&dev, &fuse_dir));
    assert!(!mounted(&fuse_dir));
    let mut in_file = [0u8; 10];
    File::open(&img)
        .unwrap()
        .read_exact_at(&mut in_file, 4096)
        .unwrap();
    assert_eq!(&in_file, b"still here");
}

#[test]
fn close_waits_for_a_mount_in_another_namespace() {
    let tmp = tempfile::tempdir().unwrap();
    let data = 32 * MIB;
    let img = backing(tmp.path(), data, MIB);
    let fuse_dir = tmp.path().join("fuse");
    let ext4_dir = tmp.path().join("ext4");
    std::fs::create_dir(&fuse_dir).unwrap();
    std::fs::create_dir(&ext4_dir).unwrap();
    let store = Arc::new(FileStore::open(&img, data).unwrap());
    let mut exposed = expose(store, &fuse_dir, None).unwrap();
    let dev = exposed.loop_dev.clone();
    sh(&format!("mkfs.ext4 -q -F {}", dev.display()));

    // A mounted filesystem (in a child's namespace) holds it exclusively.
    let ready = tmp.path().join("ready");
    let holder = Reap(
        Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-ec"])
            .arg(format!(
                "mount {} {}; touch {}; exec sleep 600",
                dev.display(),
                ext4_dir.display(),
                ready.display()
            ))
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    while !ready.exists() {
        std::thread::sleep(Duration::from_millis(10));
    }
    let msg = exposed
        .close(Duration::from_millis(300))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("mounted on"), "{msg}");
    assert!(serves(&dev, &fuse_dir));
    drop(holder); // the namespace goes away, and with it the mount
    exposed.close(Duration::from_secs(60)).unwrap();
    assert!(!serves(&dev, &fuse_dir));
    assert!(!mounted(&fuse_dir));
}

/// Another process opening and reading the device while it is closed (as
/// udev's blkid does after a change): close still succeeds. When that
/// opener is the last to close, the kernel clears the loop device in its
/// close, and until the clear is done an open of the device fails with
/// ENXIO, which close took as an error (`close_waits_for_and_names_holders`
/// failed so once in 40 runs, with udev as the opener).
#[test]
fn close_succeeds_while_another_process_probes_the_device() {
    let tmp = tempfile::tempdir().unwrap();
    let data = 16 * MIB;
    let img = backing(tmp.path(), data, MIB);
    for round in 0..40 {
        let fuse_dir = tmp.path().join(format!("fuse{round}"));
        std::fs::create_dir(&fuse_dir).unwrap();
        let store = Arc::new(FileStore::open(&img, data).unwrap());
        let mut exposed = expose(store, &fuse_dir, None).unwrap();
        let dev = exposed.loop_dev.clone();
        let prober = Reap(
            Command::new("sh")
                .arg("-c")
                .arg(format!(
                    "while :; do dd if={0} of=/dev/null bs=4k count=1 2>/dev/null; \
                     exec 3<{0}; exec 3<&-; done",
                    dev.display()
                ))
                .stdin(Stdio::null())
                .spawn()
                .unwrap(),
        );
        std::thread::sleep(Duration::from_millis(20));
        let closed = exposed.close(Duration::from_secs(60));
        drop(prober);
        closed.unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert!(!serves(&dev, &fuse_dir), "round {round}");
        assert!(!mounted(&fuse_dir));
    }
}

/// The loop device was detached behind the device's back and the kernel
/// gave its number to someone else (another resource's device, `losetup`):
/// closing (or dropping) the device must leave that binding alone. Close
/// took any binding of the number for its own, and the stress test below
/// once made another test's `mkfs.ext4` fail with "in use by the system"
/// (close held the reused device exclusively; next it would have detached it).
#[test]
fn close_leaves_a_reused_loop_number_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let data = 16 * MIB;
    let img = backing(tmp.path(), data, MIB);
    let other = tmp.path().join("other.img");
    File::create(&other).unwrap().set_len(MIB).unwrap();
    for closing in [true, false] {
        let fuse_dir = tmp.path().join(format!("fuse-{closing}"));
        std::fs::create_dir(&fuse_dir).unwrap();
        let store = Arc::new(FileStore::open(&img, data).unwrap());
        let mut exposed = expose(store, &fuse_dir, None).unwrap();
        let dev = exposed.loop_dev.clone();
        sh(&format!("losetup -d {}", dev.display()));
        // The clear runs at the last close, maybe a little later (udev).
        let mut tries = 0;
        while let Err(e) = Command::new("losetup")
            .arg(&dev)
            .arg(&other)
            .output()
            .map_err(|e| e.to_string())
            .and_then(|o| {
                o.status
                    .success()
                    .then_some(())
                    .ok_or_else(|| String::from_utf8_lossy(&o.stderr).into_owned())
            })
        {
            tries += 1;
            assert!(tries < 500, "losetup {}: {e}", dev.display());
            std::thread::sleep(Duration::from_millis(10));
        }
        struct Detach(PathBuf);
        impl Drop for Detach {
            fn drop(&mut self) {
                let _ = Command::new("losetup").arg("-d").arg(&self.0).status();
            }
        }
        let _detach = Detach(dev.clone());
        if closing {
            exposed.close(Duration::from_secs(60)).unwrap();
        } else {
            drop(exposed);
        }
        let name = dev.file_name().unwrap().to_string_lossy();
        let backing = std::fs::read_to_string(format!("/sys/block/{name}/loop/backing_file"))
            .unwrap_or_default();
        assert_eq!(
            Path::new(backing.trim_end()),
            other,
            "closing={closing}: {} no longer serves the other file",
            dev.display()
        );
    }
}

#[test]
fn harden_process_succeeds_as_root() {
    // mlockall(MCL_FUTURE) would pin this whole test process: run it in a
    // child copy of the test binary.
    if std::env::var_os("HBD_HARDEN_CHILD").is_some() {
        if let Err(e) = harden_process() {
            // PR_SET_IO_FLUSHER needs CAP_SYS_RESOURCE, which some containers
            // drop even for root; only then may it fail.
            let status = std::fs::read_to_string("/proc/self/status").unwrap();
            let eff = status
                .lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .map(|v| u64::from_str_radix(v.trim(), 16).unwrap())
                .unwrap();
            const CAP_SYS_RESOURCE: u32 = 24;
            assert!(
                eff & (1 << CAP_SYS_RESOURCE) == 0 && e.to_string().contains("PR_SET_IO_FLUSHER"),
                "{e}"
            );
        }
        // mlockall was done regardless.
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let locked_kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmLck:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap();
        assert!(locked_kb > 0, "{status}");
        return;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "harden_process_succeeds_as_root", "--nocapture"])
        .env("HBD_HARDEN_CHILD", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn drop_cleans_up_also_on_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let data = 8 * MIB;
    let img = backing(tmp.path(), data, MIB);
    let fuse_dir = tmp.path().join("fuse");
    std::fs::create_dir(&fuse_dir).unwrap();
    let link = tmp.path().join("drbd9");
    let dev = std::sync::Mutex::new(PathBuf::new());
    let result = std::panic::catch_unwind(|| {
        let store = Arc::new(FileStore::open(&img, data).unwrap());
        let exposed = expose(store, &fuse_dir, Some(&link)).unwrap();
        *dev.lock().unwrap() = exposed.loop_dev.clone();
        panic!("test panic while exposed");
    });
    assert!(result.is_err());
    let dev = dev.into_inner().unwrap();
    assert!(!dev.as_os_str().is_empty());
    assert!(!serves(&dev, &fuse_dir), "{dev:?} still attached");
    assert!(!mounted(&fuse_dir), "FUSE still mounted");
    assert!(
        std::fs::symlink_metadata(&link).is_err(),
        "link left behind"
    );
}

/// A store whose writes never finish while `hold` is set (a hung peer, a
/// stuck disk), counting the writes that arrived.
struct Stuck {
    inner: FileStore,
    arrived: AtomicU64,
    /// Flushes never finish either (a peer that never acknowledges).
    hang_flush: bool,
    flushes: AtomicU64,
}

impl BlockStore for Stuck {
    fn size(&self) -> u64 {
        self.inner.size()
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        self.inner.read_at(buf, offset)
    }
    fn write_at(&self, data: &[u8], offset: u64) -> std::io::Result<()> {
        self.arrived.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(Duration::from_secs(600));
        self.inner.write_at(data, offset)
    }
    fn flush(&self) -> std::io::Result<()> {
        if self.hang_flush {
            self.flushes.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(Duration::from_secs(600));
        }
        self.inner.flush()
    }
}

/// The child half of the killed-server tests: exposes a store, prints the
/// loop device and waits to be killed. `HBD_TEST_FUSE_MODE`: `own-file`
/// opens the FUSE file itself (as `expose` does while it attaches the loop
/// device); `stuck` serves writes that never finish and prints `ARRIVED n`
/// as they come; `flush-hangs` never answers a flush, so attaching the loop
/// device (whose `LOOP_CONFIGURE` flushes the file) never ends, and prints
/// `FLUSHED n` as flushes come.
#[test]
#[ignore = "run by the killed-server tests as their child"]
fn child_fuse_server() {
    let Ok(dir) = std::env::var("HBD_TEST_FUSE_CHILD") else {
        return;
    };
    let mode = std::env::var("HBD_TEST_FUSE_MODE").unwrap_or_default();
    let dir = PathBuf::from(dir);
    let data = 8 * MIB;
    let inner = FileStore::open(&dir.join("backing.img"), data).unwrap();
    use std::io::Write;
    if mode == "flush-hangs" {
        let store = Arc::new(Stuck {
            inner,
            arrived: AtomicU64::new(0),
            hang_flush: true,
            flushes: AtomicU64::new(0),
        });
        let fuse = dir.join("fuse");
        let s = store.clone();
        std::thread::spawn(move || {
            let exposed = expose(s, &fuse, None).unwrap();
            println!("LOOP {}", exposed.loop_dev.display());
            std::io::stdout().flush().unwrap();
            std::thread::sleep(Duration::from_secs(600));
        });
        loop {
            let n = store.flushes.load(Ordering::SeqCst);
            if n > 0 {
                println!("FLUSHED {n}");
                std::io::stdout().flush().unwrap();
                std::thread::sleep(Duration::from_secs(600));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    if mode == "stuck" {
        let store = Arc::new(Stuck {
            inner,
            arrived: AtomicU64::new(0),
            hang_flush: false,
            flushes: AtomicU64::new(0),
        });
        let exposed = expose(store.clone(), &dir.join("fuse"), None).unwrap();
        println!("LOOP {}", exposed.loop_dev.display());
        std::io::stdout().flush().unwrap();
        let mut seen = 0;
        loop {
            let n = store.arrived.load(Ordering::SeqCst);
            if n != seen {
                seen = n;
                println!("ARRIVED {n}");
                std::io::stdout().flush().unwrap();
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let exposed = expose(Arc::new(inner), &dir.join("fuse"), None).unwrap();
    let own = OpenOptions::new()
        .read(true)
        .write(true)
        .open(dir.join("fuse").join(DEVICE_FILE))
        .unwrap();
    println!("LOOP {}", exposed.loop_dev.display());
    std::io::stdout().flush().unwrap();
    std::thread::sleep(Duration::from_secs(600));
    drop(own);
}

/// A child FUSE server (`child_fuse_server` in `mode`) and its loop device.
struct ChildServer {
    child: Reap,
    out: std::process::ChildStdout,
    seen: String,
    loop_dev: PathBuf,
    fuse_dir: PathBuf,
}

impl ChildServer {
    fn start(dir: &Path, mode: &str) -> ChildServer {
        let mut s = ChildServer::spawn(dir, mode);
        let line = s.wait_line("LOOP ");
        s.loop_dev = PathBuf::from(line.trim());
        s
    }

    /// The child, before its loop device is known.
    fn spawn(dir: &Path, mode: &str) -> ChildServer {
        let fuse_dir = dir.join("fuse");
        std::fs::create_dir(&fuse_dir).unwrap();
        let mut child = Reap(
            Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "child_fuse_server",
                    "--ignored",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env("HBD_TEST_FUSE_CHILD", dir)
                .env("HBD_TEST_FUSE_MODE", mode)
                .stdout(Stdio::piped())
                .spawn()
                .unwrap(),
        );
        let out = child.0.stdout.take().unwrap();
        ChildServer {
            child,
            out,
            seen: String::new(),
            loop_dev: PathBuf::new(),
            fuse_dir,
        }
    }

    /// Reads the child's output until a line starting with `prefix`
    /// arrives (after what was consumed); returns the rest of that line.
    fn wait_line(&mut self, prefix: &str) -> String {
        let mut buf = [0u8; 256];
        loop {
            if let Some(i) = self.seen.find(prefix) {
                if let Some(end) = self.seen[i..].find('\n') {
                    let line = self.seen[i + prefix.len()..i + end].to_string();
                    self.seen.drain(..i + end + 1);
                    return line;
                }
            }
            let n = self.out.read(&mut buf).unwrap();
            assert!(n > 0, "child ended early: {}", self.seen);
            self.seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    }

    /// SIGKILL; whether the process was gone within 30 s, and the kernel
    /// stacks of its threads if not. Cleans up whatever happened: aborts a
    /// hung connection, unmounts, detaches the loop device.
    fn kill(mut self) -> (bool, String) {
        let pid = self.child.0.id();
        self.child.0.kill().unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let mut exited = false;
        while std::time::Instant::now() < deadline {
            if self.child.0.try_wait().unwrap().is_some() {
                exited = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let stack: String = std::fs::read_dir(format!("/proc/{pid}/task"))
            .map(|d| {
                d.flatten()
                    .filter_map(|t| std::fs::read_to_string(t.path().join("stack")).ok())
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .unwrap_or_default();
        if !exited {
            abort_connection(&self.fuse_dir);
            let _ = self.child.0.wait();
        }
        let _ = Command::new("umount")
            .arg("-l")
            .arg(&self.fuse_dir)
            .status();
        if !self.loop_dev.as_os_str().is_empty() {
            let _ = Command::new("losetup")
                .arg("-d")
                .arg(&self.loop_dev)
                .status();
        }
        (exited, stack)
    }
}

/// Aborts the FUSE connection mounted at `dir` through fusectl (mounted only
/// for this and unmounted again): ends every request waiting on it.
fn abort_connection(dir: &Path) {
    let ctl = "/sys/fs/fuse/connections";
    let had_ctl = std::fs::read_to_string("/proc/self/mountinfo")
        .is_ok_and(|m| m.lines().any(|l| l.split(' ').nth(4) == Some(ctl)));
    if !had_ctl {
        let _ = Command::new("mount")
            .args(["-t", "fusectl", "none", ctl])
            .status();
    }
    // Never stat the mount (that would hang on the dead server too): its
    // connection number is the minor in mountinfo.
    if let Some(minor) = fuse_minor(dir) {
        let _ = std::fs::write(format!("{ctl}/{minor}/abort"), "1");
    }
    if !had_ctl {
        let _ = Command::new("umount").arg(ctl).status();
    }
}

/// Campaign finding (issue 13): a device process killed while it held its
/// own FUSE file open hung forever in its exit (D state, `fuse_flush`: the
/// kernel's FLUSH on close waits uninterruptibly for the server, which is
/// the dying process itself). The file is opened without FLUSH, so the
/// kill always ends the process.
#[test]
fn a_killed_server_holding_its_own_file_exits() {
    let tmp = tempfile::tempdir().unwrap();
    backing(tmp.path(), 8 * MIB, MIB);
    let server = ChildServer::start(tmp.path(), "own-file");
    let (exited, stack) = server.kill();
    assert!(
        exited,
        "the killed FUSE server did not exit in 30 s: {stack}"
    );
}

/// Issue 15 (FUSE_ASYNC_DIO trials): a device process killed while it was
/// attaching its loop device never exited (D state in `loop_configure`,
/// waiting for the answer to the FSYNC that `LOOP_CONFIGURE` sends to the
/// FUSE file, a request to the dying process itself), and the loop device
/// it was configuring blocked every later `open` of it: the next device
/// that was handed the same free loop number hung in its promotion. The
/// attach runs in a child process that does not hold `/dev/fuse`, so the
/// kill aborts the connection, the child's request fails, and the child
/// detaches what it attached.
#[test]
fn a_server_killed_while_attaching_its_loop_device_exits() {
    let tmp = tempfile::tempdir().unwrap();
    backing(tmp.path(), 8 * MIB, MIB);
    let mut server = ChildServer::spawn(tmp.path(), "flush-hangs");
    server.wait_line("FLUSHED ");
    let fuse_dir = server.fuse_dir.clone();
    let (exited, stack) = server.kill();
    assert!(
        exited,
        "the FUSE server killed while attaching did not exit in 30 s: {stack}"
    );
    // No loop device is left bound to the dead file.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let bound = || -> Vec<String> {
        std::fs::read_dir("/sys/block")
            .unwrap()
            .flatten()
            .filter_map(|e| {
                let b = std::fs::read_to_string(e.path().join("loop/backing_file")).ok()?;
                b.starts_with(&*fuse_dir.to_string_lossy())
                    .then(|| e.file_name().to_string_lossy().into_owned())
            })
            .collect()
    };
    while !bound().is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let left = bound();
    for l in &left {
        let _ = Command::new("losetup")
            .arg("-d")
            .arg(format!("/dev/{l}"))
            .status();
    }
    assert!(
        left.is_empty(),
        "loop devices left bound to the dead file: {left:?}"
    );
}

/// Issue 15 (FUSE_ASYNC_DIO): a device process killed while the loop device
/// has writes queued on it that the store never finishes (a hung peer) must
/// exit, and the writers must get an error rather than hang: the kernel
/// aborts the connection when the last `/dev/fuse` descriptor closes, which
/// fails every request in flight, background (async direct I/O) ones too.
#[test]
fn a_killed_server_with_writes_in_flight_exits() {
    let tmp = tempfile::tempdir().unwrap();
    backing(tmp.path(), 8 * MIB, MIB);
    let mut server = ChildServer::start(tmp.path(), "stuck");
    let dev = server.loop_dev.display().to_string();
    let mut writers = Reap(
        Command::new("sh")
            .arg("-c")
            .arg(format!(
                "for i in 0 1 2 3 4 5 6 7; do \
                   dd if=/dev/zero of={dev} bs=4k count=1 seek=$((i * 16)) oflag=direct conv=notrunc status=none & \
                 done; wait"
            ))
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    server.wait_line("ARRIVED ");
    // Let the rest of the queue reach the server.
    std::thread::sleep(Duration::from_millis(300));
    let (exited, stack) = server.kill();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut writers_done = false;
    while std::time::Instant::now() < deadline {
        if writers.0.try_wait().unwrap().is_some() {
            writers_done = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        exited,
        "the killed FUSE server did not exit in 30 s: {stack}"
    );
    assert!(
        writers_done,
        "writers on the loop device still hang 30 s after the server died"
    );
}

/// The minor device number of the FUSE mount at `dir` (its fusectl
/// connection), read from mountinfo without touching the mount.
fn fuse_minor(dir: &Path) -> Option<u32> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let want = dir.to_str()?;
    info.lines().find_map(|l| {
        let f: Vec<&str> = l.split(' ').collect();
        (f.get(4) == Some(&want)).then(|| f[2].split(':').nth(1)?.parse().ok())?
    })
}

/// A store whose writes wait (at most 2 s) until `want` of them are in
/// flight at once, recording the most it saw.
struct Gathering {
    inner: FileStore,
    state: std::sync::Mutex<(usize, usize)>,
    more: std::sync::Condvar,
    want: usize,
}

impl BlockStore for Gathering {
    fn size(&self) -> u64 {
        self.inner.size()
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        self.inner.read_at(buf, offset)
    }
    fn write_at(&self, data: &[u8], offset: u64) -> std::io::Result<()> {
        let mut s = self.state.lock().unwrap();
        s.0 += 1;
        s.1 = s.1.max(s.0);
        self.more.notify_all();
        let (mut s, _) = self
            .more
            .wait_timeout_while(s, Duration::from_secs(2), |s| s.1 < self.want)
            .unwrap();
        s.0 -= 1;
        drop(s);
        self.inner.write_at(data, offset)
    }
    fn flush(&self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Writes queued on the loop device reach the store many at once (issue
/// 15: FUSE_ASYNC_DIO). Without it the loop driver's worker sends each
/// direct-I/O request synchronously and waits for its answer: one write
/// at a time whatever the application queued (fio's iodepth 16 is 1).
/// Passes with FUSE_ASYNC_DIO asked for in `DeviceFs::init`; fails
/// without (at most 1).
#[test]
fn queued_writes_reach_the_store_concurrently() {
    let tmp = tempfile::tempdir().unwrap();
    let data = 8 * MIB;
    let img = backing(tmp.path(), data, MIB);
    let fuse_dir = tmp.path().join("fuse");
    std::fs::create_dir(&fuse_dir).unwrap();
    let store = Arc::new(Gathering {
        inner: FileStore::open(&img, data).unwrap(),
        state: std::sync::Mutex::new((0, 0)),
        more: std::sync::Condvar::new(),
        want: 4,
    });
    let exposed = expose(store.clone(), &fuse_dir, None).unwrap();
    let dev = exposed.loop_dev.display().to_string();
    sh(&format!(
        "for i in 0 1 2 3 4 5 6 7; do \
           dd if=/dev/zero of={dev} bs=4k count=1 seek=$((i * 16)) oflag=direct conv=notrunc status=none & \
         done; wait"
    ));
    let most = store.state.lock().unwrap().1;
    drop(exposed);
    assert!(
        most >= 2,
        "at most {most} write(s) reached the store at once: the loop device waits for each"
    );
}
