//! A replicated-disk lab: a netns [`Lab`] with drbd.conf, backing files and
//! one `hbd-disk` process per node, each started under `ip netns exec` (so
//! its FUSE mount lives in a mount namespace of its own and dies with it).
//! Everything is removed in `Drop`, also after a panic: the device
//! processes are killed and every loop device backed by this lab's files is
//! detached.
#![allow(dead_code)]

use super::*;
use hbd::disk::ctl::{DiskRequest, DiskResponse, DiskStatus};

pub const RES: &str = "r0";
pub const MIB: u64 = 1 << 20;

pub struct DiskLab {
    pub lab: Lab,
    pub size: u64,
}

impl DiskLab {
    /// Two nodes with a `size`-byte backing file each and metadata created.
    pub fn new(size: u64, extra_conf: &str) -> DiskLab {
        DiskLab::with(size, extra_conf, false)
    }

    /// `shared_device`: both nodes' drbd.conf name the same device path
    /// (as with /dev/drbd0 on two machines), so one haresources line fits
    /// both; only one node is ever Primary.
    pub fn with(size: u64, extra_conf: &str, shared_device: bool) -> DiskLab {
        let lab = Lab::new(2, 1);
        lab.configure(&ha_cf(2, "bcast eth0", "1", "3"), KEY);
        let mut hosts = String::new();
        for i in 1..=2 {
            hosts.push_str(&format!(
                "  on n{i} {{ device {dev}; disk {disk}; address 192.0.2.{a}:7788; meta-disk internal; }}\n",
                dev = if shared_device {
                    lab.dir.path().join("drbd0")
                } else {
                    lab.node_dir(i).join("drbd0")
                }
                .display(),
                disk = lab.node_dir(i).join("backing.img").display(),
                a = 10 + i
            ));
        }
        let rate = if extra_conf.contains("rate") {
            ""
        } else {
            "  syncer { rate 200M; }\n"
        };
        let conf = format!("resource {RES} {{\n  protocol C;\n{rate}{extra_conf}{hosts}}}\n");
        for i in 1..=2 {
            lab.write(i, "haresources", "");
            lab.write(i, "drbd.conf", &conf);
            let f = fs::File::create(lab.node_dir(i).join("backing.img")).unwrap();
            f.set_len(size).unwrap();
        }
        let d = DiskLab { lab, size };
        for i in 1..=2 {
            let out = d.hbctl_disk(i, &["create-md", RES]);
            assert!(out.status.success(), "create-md: {out:?}");
        }
        d
    }

    pub fn backing(&self, i: usize) -> PathBuf {
        self.lab.node_dir(i).join("backing.img")
    }

    pub fn device(&self, i: usize) -> PathBuf {
        let shared = self.lab.dir.path().join("drbd0");
        let conf = fs::read_to_string(self.lab.config_dir(i).join("drbd.conf")).unwrap();
        if conf.contains(&format!("device {};", shared.display())) {
            shared
        } else {
            self.lab.node_dir(i).join("drbd0")
        }
    }

    /// The device's log (`hbctl disk up` appends to it).
    pub fn device_log(&self, i: usize) -> PathBuf {
        hbd::disk::ctl::log_path(&self.lab.run_dir(i), RES)
    }

    pub fn log(&self, i: usize) -> String {
        fs::read_to_string(self.device_log(i)).unwrap_or_default()
    }

    /// `hbctl disk --config .. --node nI --run-dir .. ARGS`, outside the netns.
    pub fn hbctl_disk(&self, i: usize, args: &[&str]) -> Output {
        Command::new(HBCTL)
            .args(self.disk_args(i))
            .args(args)
            .output()
            .expect("run hbctl")
    }

    /// The same inside node i's network namespace (`up` starts the device
    /// there, as `drbdadm up` on that machine).
    pub fn hbctl_disk_ns(&self, i: usize, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.lab.ns(&format!("n{i}")), HBCTL])
            .args(self.disk_args(i))
            .args(args)
            .output()
            .expect("run hbctl")
    }

    fn disk_args(&self, i: usize) -> Vec<String> {
        vec![
            "disk".into(),
            "--config".into(),
            self.lab.config_dir(i).display().to_string(),
            "--node".into(),
            format!("n{i}"),
            "--run-dir".into(),
            self.lab.run_dir(i).display().to_string(),
        ]
    }

    /// `hbctl disk up r0` in node i's namespace; must succeed.
    pub fn start(&mut self, i: usize) {
        let out = self.try_start(i);
        assert!(
            out.status.success(),
            "hbctl disk up on n{i}: {}: {}\n{}\n--- log ---\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log(i)
        );
    }

    pub fn try_start(&mut self, i: usize) -> Output {
        fs::create_dir_all(self.lab.run_dir(i)).unwrap();
        self.hbctl_disk_ns(i, &["up", RES])
    }

    /// The device process's pid, from its pid file.
    pub fn pid(&self, i: usize) -> Option<i32> {
        read_pid(&hbd::disk::ctl::pid_path(&self.lab.run_dir(i), RES))
    }

    /// Wait until node i's device process is gone.
    pub fn wait_exit(&mut self, i: usize) {
        if let Some(p) = self.pid(i) {
            assert!(wait_gone(p), "n{i}'s device did not exit");
        }
    }

    /// SIGKILL the device process (a crash), and detach the loop device it
    /// left behind.
    pub fn crash(&mut self, i: usize) {
        let dev = self.try_status(i).and_then(|s| s.loop_device);
        if let Some(p) = self.pid(i) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(p),
                nix::sys::signal::Signal::SIGKILL,
            );
            wait_gone(p);
        }
        if let Some(dev) = dev {
            detach_loop(&dev, &self.lab.run_dir(i));
        }
    }

    pub fn request(&self, i: usize, req: DiskRequest) -> Option<DiskResponse> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let run = self.lab.run_dir(i);
        rt.block_on(async {
            tokio::time::timeout(TIMEOUT, hbd::disk::ctl::call(&run, RES, req))
                .await
                .ok()?
                .ok()
        })
    }

    /// The request must be carried out.
    pub fn ok(&self, i: usize, req: DiskRequest) -> DiskStatus {
        match self.request(i, req.clone()) {
            Some(DiskResponse::Done { status, .. }) => *status,
            other => panic!(
                "n{i} {req:?}: {other:?}\n--- n1 ---\n{}\n--- n2 ---\n{}",
                self.log(1),
                self.log(2)
            ),
        }
    }

    /// The request must be refused; returns the message.
    pub fn refused(&self, i: usize, req: DiskRequest) -> String {
        match self.request(i, req.clone()) {
            Some(DiskResponse::Refused { message, .. }) => message,
            other => panic!(
                "n{i} {req:?}: expected a refusal, got {other:?}\n--- n1 ---\n{}\n--- n2 ---\n{}",
                self.log(1),
                self.log(2)
            ),
        }
    }

    pub fn try_status(&self, i: usize) -> Option<DiskStatus> {
        match self.request(i, DiskRequest::Status)? {
            DiskResponse::Done { status, .. } => Some(*status),
            _ => None,
        }
    }

    pub fn status(&self, i: usize) -> DiskStatus {
        self.try_status(i).expect("device answers")
    }

    pub fn wait_for(&mut self, what: &str, mut f: impl FnMut(&mut DiskLab) -> bool) {
        let start = Instant::now();
        while start.elapsed() < TIMEOUT * 4 {
            if f(self) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "timed out waiting for {what}\n--- n1 ---\n{}\n--- n2 ---\n{}\n--- hbd n1 ---\n{}\n--- hbd n2 ---\n{}",
            self.log(1),
            self.log(2),
            self.lab.log(1),
            self.lab.log(2)
        );
    }

    /// Wait until both nodes are Connected (no resync running).
    pub fn wait_connected(&mut self) {
        self.wait_for("both Connected", |d| {
            (1..=2).all(|i| {
                d.try_status(i)
                    .is_some_and(|s| s.connection.as_str() == "Connected")
            })
        });
    }

    /// Wait until both are Connected and UpToDate.
    pub fn wait_in_sync(&mut self) {
        self.wait_for("both Connected and UpToDate", |d| {
            (1..=2).all(|i| {
                d.try_status(i).is_some_and(|s| {
                    s.connection.as_str() == "Connected"
                        && s.disk.as_str() == "UpToDate"
                        && s.peer_disk.as_str() == "UpToDate"
                })
            })
        });
    }

    /// The first `size` bytes of both data areas are equal.
    pub fn data_digest(&self, i: usize) -> String {
        let size = self.status(i).size_bytes;
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "head -c {size} {} | sha256sum",
                self.backing(i).display()
            ))
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    }
}

impl Drop for DiskLab {
    fn drop(&mut self) {
        for i in 1..=2 {
            self.crash(i);
            // A device that died earlier recorded its loop device.
            let record = hbd::disk::ctl::loop_record_path(&self.lab.run_dir(i), RES);
            if let Ok(dev) = fs::read_to_string(record) {
                detach_loop(Path::new(dev.trim()), &self.lab.run_dir(i));
            }
        }
    }
}

/// Detach loop device `dev` if it still serves this run dir's (dead) hbd
/// device file.
pub fn detach_loop(dev: &Path, run_dir: &Path) {
    let fuse = hbd::disk::ctl::fuse_dir(run_dir, RES);
    if let Err(e) = hbd::disk::expose::detach_stale_loop(dev, &fuse) {
        eprintln!("detaching {}: {e}", dev.display());
    }
}

/// Runs `script` with `sh -e` in a private mount namespace (mounts stay there).
pub fn in_private_ns(script: &str) -> String {
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-ec", script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The resyncs a device log shows this node receiving: (full, bytes).
pub fn resyncs(log: &str) -> Vec<(bool, u64)> {
    log.lines()
        .filter(|l| l.contains("resync started") && l.contains("source=false"))
        .map(|l| {
            let field = |k: &str| {
                l.split_whitespace()
                    .find_map(|w| w.strip_prefix(k))
                    .unwrap_or_default()
                    .to_string()
            };
            (
                field("full=") == "true",
                field("bytes=").parse().unwrap_or(u64::MAX),
            )
        })
        .collect()
}

/// A filesystem mounted in the test process's own mount namespace (the
/// host's, as an admin's `mount`); lazily unmounted in `Drop` if the test
/// did not unmount it.
pub struct HostMount {
    pub dir: PathBuf,
    mounted: bool,
}

impl HostMount {
    pub fn new(dev: &Path, dir: &Path) -> HostMount {
        fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount").arg(dev).arg(dir).output().unwrap();
        assert!(out.status.success(), "mount {}: {out:?}", dev.display());
        HostMount {
            dir: dir.to_path_buf(),
            mounted: true,
        }
    }

    /// A plain `umount` (not lazy); must succeed.
    pub fn umount(&mut self) {
        let out = Command::new("umount").arg(&self.dir).output().unwrap();
        assert!(out.status.success(), "umount: {out:?}");
        self.mounted = false;
    }
}

impl Drop for HostMount {
    fn drop(&mut self) {
        if self.mounted {
            lazy_umount(&self.dir);
        }
    }
}

/// `umount -l dir`, waiting at most [`TIMEOUT`] (the last unmount of a
/// filesystem on a dead device fails its writes; it must not hang a test).
pub fn lazy_umount(dir: &Path) {
    let started = Command::new("umount").arg("-l").arg(dir).spawn();
    if let Ok(mut c) = started {
        if wait_child(&mut c, TIMEOUT).is_none() {
            eprintln!("umount -l {} did not finish", dir.display());
        }
    }
}

/// `dir` bind-mounted onto itself with shared propagation in the test's
/// mount namespace (as / is on a systemd host): what is mounted below it
/// later propagates to every copy made since that is not private.
pub struct SharedBind(PathBuf);

impl SharedBind {
    pub fn new(dir: &Path) -> SharedBind {
        let out = Command::new("sh")
            .arg("-ec")
            .arg(format!(
                "mount --bind {d} {d}; mount --make-shared {d}",
                d = dir.display()
            ))
            .output()
            .unwrap();
        let bind = SharedBind(dir.to_path_buf());
        assert!(out.status.success(), "shared bind: {out:?}");
        bind
    }
}

impl Drop for SharedBind {
    fn drop(&mut self) {
        lazy_umount(&self.0);
    }
}

/// The lines of `/proc/PID/mountinfo` that mount something on `dir` or the
/// block device `dev`.
pub fn mounted_in(pid: i32, dir: &Path, dev: &Path) -> Vec<String> {
    use std::os::unix::fs::MetadataExt;
    let rdev = fs::metadata(dev).map(|m| m.rdev()).unwrap_or(u64::MAX);
    let maj_min = format!("{}:{}", libc::major(rdev), libc::minor(rdev));
    let dir = dir.display().to_string();
    fs::read_to_string(format!("/proc/{pid}/mountinfo"))
        .unwrap_or_default()
        .lines()
        .filter(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            f.get(2) == Some(&maj_min.as_str()) || f.get(4) == Some(&dir.as_str())
        })
        .map(String::from)
        .collect()
}

/// `mkfs.ext4` on `dev`; must succeed.
pub fn mkfs_ext4(dev: &Path) {
    let out = Command::new("mkfs.ext4")
        .args(["-q", "-F"])
        .arg(dev)
        .output()
        .unwrap();
    assert!(out.status.success(), "mkfs: {out:?}");
}

/// A second resource on a [`DiskLab`]'s nodes (see
/// [`DiskLab::add_resource`]). Its device processes are killed and their
/// loop devices detached in `Drop`: declare it after the `DiskLab`, so that
/// it goes first.
pub struct ExtraResource {
    pub name: String,
    run_dirs: Vec<PathBuf>,
}

impl DiskLab {
    /// Appends `resource NAME` to both nodes' drbd.conf (own backing files
    /// `backing-NAME.img`, device links `drbd-NAME`, replication `port`)
    /// and creates its metadata.
    pub fn add_resource(&self, name: &str, port: u16) -> ExtraResource {
        let mut hosts = String::new();
        for i in 1..=2 {
            hosts.push_str(&format!(
                "  on n{i} {{ device {dev}; disk {disk}; address 192.0.2.{a}:{port}; meta-disk internal; }}\n",
                dev = self.extra_device(i, name).display(),
                disk = self.lab.node_dir(i).join(format!("backing-{name}.img")).display(),
                a = 10 + i
            ));
        }
        let section =
            format!("resource {name} {{\n  protocol C;\n  syncer {{ rate 200M; }}\n{hosts}}}\n");
        for i in 1..=2 {
            let conf = fs::read_to_string(self.lab.config_dir(i).join("drbd.conf")).unwrap();
            self.lab.write(i, "drbd.conf", &format!("{conf}{section}"));
            let f =
                fs::File::create(self.lab.node_dir(i).join(format!("backing-{name}.img"))).unwrap();
            f.set_len(self.size).unwrap();
            let out = self.hbctl_disk(i, &["create-md", name]);
            assert!(out.status.success(), "create-md {name}: {out:?}");
        }
        ExtraResource {
            name: name.to_string(),
            run_dirs: (1..=2).map(|i| self.lab.run_dir(i)).collect(),
        }
    }

    /// The device link of a resource made by [`DiskLab::add_resource`].
    pub fn extra_device(&self, i: usize, name: &str) -> PathBuf {
        self.lab.node_dir(i).join(format!("drbd-{name}"))
    }

    /// The pid of node i's device process of resource `res`.
    pub fn res_pid(&self, i: usize, res: &str) -> Option<i32> {
        read_pid(&hbd::disk::ctl::pid_path(&self.lab.run_dir(i), res))
    }
}

impl Drop for ExtraResource {
    fn drop(&mut self) {
        for run in &self.run_dirs {
            let dev = hbd::disk::client::status(run, &self.name, TIMEOUT)
                .ok()
                .and_then(|s| s.loop_device);
            if let Some(p) = read_pid(&hbd::disk::ctl::pid_path(run, &self.name)) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(p),
                    nix::sys::signal::Signal::SIGKILL,
                );
                wait_gone(p);
            }
            let fuse = hbd::disk::ctl::fuse_dir(run, &self.name);
            let record = hbd::disk::ctl::loop_record_path(run, &self.name);
            let recorded = fs::read_to_string(record)
                .ok()
                .map(|s| PathBuf::from(s.trim()));
            for dev in dev.into_iter().chain(recorded) {
                if let Err(e) = hbd::disk::expose::detach_stale_loop(&dev, &fuse) {
                    eprintln!("detaching {}: {e}", dev.display());
                }
            }
        }
    }
}

/// Switches of a [`FaultyStore`]: writes that fail with EIO at chosen
/// offsets, and data writes that hang until released.
#[derive(Default)]
pub struct Faults {
    state: std::sync::Mutex<FaultState>,
    changed: std::sync::Condvar,
}

#[derive(Default)]
struct FaultState {
    /// Writes overlapping `[start, end)` fail with EIO.
    eio: Vec<(u64, u64)>,
    /// Writes starting below this offset hang while it is set.
    hang_below: Option<u64>,
    /// Writes hanging now.
    hung: usize,
    /// Flushes hang while set.
    hang_flushes: bool,
    /// A volatile write cache: writes stay here until a flush (or
    /// [`Faults::stop_volatile`]); [`Faults::power_cut`] loses them.
    volatile: bool,
    cache: Vec<(u64, Vec<u8>)>,
    /// The backing file, to write the cache out.
    file: Option<fs::File>,
}

impl FaultState {
    fn write_out(&mut self) -> std::io::Result<()> {
        use std::os::unix::fs::FileExt;
        let cache = std::mem::take(&mut self.cache);
        if let Some(f) = &self.file {
            for (o, d) in cache {
                f.write_all_at(&d, o)?;
            }
        }
        Ok(())
    }
}

impl Faults {
    pub fn fail_writes(&self, start: u64, end: u64) {
        self.state.lock().unwrap().eio.push((start, end));
    }

    /// Hang every write that starts below `limit` (the data area: metadata
    /// writes go on, so the device stays answerable).
    pub fn hang_writes_below(&self, limit: u64) {
        self.state.lock().unwrap().hang_below = Some(limit);
    }

    pub fn hang_flushes(&self) {
        self.state.lock().unwrap().hang_flushes = true;
    }

    /// From now on writes stay in a volatile cache until the next flush.
    pub fn start_volatile(&self) {
        self.state.lock().unwrap().volatile = true;
    }

    /// Write the cache out and stop caching.
    pub fn stop_volatile(&self) {
        let mut s = self.state.lock().unwrap();
        s.volatile = false;
        s.write_out().expect("writing the cache out");
    }

    /// Power loss: what the volatile cache holds is gone.
    pub fn power_cut(&self) {
        self.state.lock().unwrap().cache.clear();
    }

    pub fn hung(&self) -> usize {
        self.state.lock().unwrap().hung
    }

    /// Clear every fault and let hung writes go on.
    pub fn release(&self) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.eio.clear();
        s.hang_below = None;
        s.hang_flushes = false;
        drop(s);
        self.changed.notify_all();
    }
}

/// A plain file as a [`hbd::disk::expose::BlockStore`] with [`Faults`].
pub struct FaultyStore {
    file: fs::File,
    size: u64,
    pub faults: std::sync::Arc<Faults>,
}

impl hbd::disk::expose::BlockStore for FaultyStore {
    fn size(&self) -> u64 {
        self.size
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        use std::os::unix::fs::FileExt;
        let s = self.faults.state.lock().unwrap_or_else(|p| p.into_inner());
        self.file.read_exact_at(buf, offset)?;
        let end = offset + buf.len() as u64;
        for (o, d) in &s.cache {
            let (a, b) = ((*o).max(offset), (o + d.len() as u64).min(end));
            if a < b {
                buf[(a - offset) as usize..(b - offset) as usize]
                    .copy_from_slice(&d[(a - o) as usize..(b - o) as usize]);
            }
        }
        Ok(())
    }
    fn write_at(&self, data: &[u8], offset: u64) -> std::io::Result<()> {
        use std::os::unix::fs::FileExt;
        let end = offset + data.len() as u64;
        let mut s = self.faults.state.lock().unwrap_or_else(|p| p.into_inner());
        if s.eio.iter().any(|&(a, b)| offset < b && a < end) {
            return Err(std::io::Error::from_raw_os_error(libc::EIO));
        }
        if s.hang_below.is_some_and(|l| offset < l) {
            s.hung += 1;
            while s.hang_below.is_some_and(|l| offset < l) {
                s = self
                    .faults
                    .changed
                    .wait(s)
                    .unwrap_or_else(|p| p.into_inner());
            }
            s.hung -= 1;
        }
        if s.volatile {
            s.cache.push((offset, data.to_vec()));
            return Ok(());
        }
        drop(s);
        self.file.write_all_at(data, offset)
    }
    fn flush(&self) -> std::io::Result<()> {
        let mut s = self.faults.state.lock().unwrap_or_else(|p| p.into_inner());
        while s.hang_flushes {
            s = self
                .faults
                .changed
                .wait(s)
                .unwrap_or_else(|p| p.into_inner());
        }
        s.write_out()?;
        drop(s);
        self.file.sync_data()
    }
}

/// Node `node`'s backing disk served as a FUSE file by this test process
/// (`expose`, which also puts a loop device on it), over a plain file, with
/// [`Faults`]. drbd.conf names the FUSE file itself rather than the loop
/// device: a block device's page cache would report a failed write only at
/// the next fsync, and hold a hung one back from `hbd-disk` altogether.
pub struct FaultyDisk {
    pub node: usize,
    pub path: PathBuf,
    pub faults: std::sync::Arc<Faults>,
    exposed: Option<hbd::disk::expose::Exposed>,
}

/// A [`DiskLab`] whose node `FaultyDisk::node` has a faulty backing disk.
/// Dropping it releases hung writes, kills the device processes, unmounts
/// the FUSE file (detaching its loop device), then removes the lab.
pub struct FaultLab {
    pub d: DiskLab,
    pub disk: FaultyDisk,
}

impl FaultLab {
    /// As [`DiskLab::new`], with node `node`'s backing disk faulty.
    pub fn new(size: u64, extra_conf: &str, node: usize) -> FaultLab {
        let lab = Lab::new(2, 1);
        lab.configure(&ha_cf(2, "bcast eth0", "1", "3"), KEY);
        for i in 1..=2 {
            fs::create_dir_all(lab.node_dir(i)).unwrap();
            let f = fs::File::create(lab.node_dir(i).join("backing.img")).unwrap();
            f.set_len(size).unwrap();
        }
        let faults = std::sync::Arc::new(Faults::default());
        let file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(lab.node_dir(node).join("backing.img"))
            .unwrap();
        faults.state.lock().unwrap().file = Some(file.try_clone().unwrap());
        let store = FaultyStore {
            file,
            size,
            faults: faults.clone(),
        };
        let mnt = lab.node_dir(node).join("faulty");
        fs::create_dir_all(&mnt).unwrap();
        let exposed =
            hbd::disk::expose::expose(std::sync::Arc::new(store), &mnt, None).expect("expose");
        let path = mnt.join(hbd::disk::expose::DEVICE_FILE);
        let mut hosts = String::new();
        for i in 1..=2 {
            let disk = if i == node {
                path.clone()
            } else {
                lab.node_dir(i).join("backing.img")
            };
            hosts.push_str(&format!(
                "  on n{i} {{ device {dev}; disk {disk}; address 192.0.2.{a}:7788; meta-disk internal; }}\n",
                dev = lab.node_dir(i).join("drbd0").display(),
                disk = disk.display(),
                a = 10 + i
            ));
        }
        let conf = format!(
            "resource {RES} {{\n  protocol C;\n  syncer {{ rate 200M; }}\n{extra_conf}{hosts}}}\n"
        );
        for i in 1..=2 {
            lab.write(i, "haresources", "");
            lab.write(i, "drbd.conf", &conf);
        }
        let fl = FaultLab {
            d: DiskLab { lab, size },
            disk: FaultyDisk {
                node,
                path,
                faults,
                exposed: Some(exposed),
            },
        };
        for i in 1..=2 {
            let out = fl.d.hbctl_disk(i, &["create-md", RES]);
            assert!(out.status.success(), "create-md: {out:?}");
        }
        fl
    }
}

impl Drop for FaultLab {
    fn drop(&mut self) {
        self.disk.faults.release();
        for i in 1..=2 {
            self.d.crash(i);
            // Not killed twice (a stale pid may be reused by then).
            let _ = fs::remove_file(hbd::disk::ctl::pid_path(&self.d.lab.run_dir(i), RES));
        }
        if let Some(mut e) = self.disk.exposed.take() {
            if let Err(err) = e.close(Duration::from_secs(10)) {
                eprintln!("closing the faulty disk: {err}");
            }
        }
    }
}
