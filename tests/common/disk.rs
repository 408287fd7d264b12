//! A replicated-disk lab: a netns [`Lab`] with drbd.conf, backing files and
//! one `hbd-disk` process per node, each started under `ip netns exec` (so
//! its FUSE mount lives in a mount namespace of its own and dies with it).
//! Everything is removed in `Drop`, also after a panic: the device
//! processes are killed and every loop device backed by this lab's files is
//! detached.
#![allow(dead_code)]

use super::*;
use hbd::disk::ctl::{DiskRequest, DiskResponse, DiskStatus};

pub const HBD_DISK: &str = env!("CARGO_BIN_EXE_hbd-disk");
pub const RES: &str = "r0";
pub const MIB: u64 = 1 << 20;

pub struct DiskLab {
    pub lab: Lab,
    pub size: u64,
    devices: Vec<Option<Child>>,
    starts: Vec<usize>,
}

impl DiskLab {
    /// Two nodes with a `size`-byte backing file each and metadata created.
    pub fn new(size: u64, extra_conf: &str) -> DiskLab {
        let lab = Lab::new(2, 1);
        lab.configure(&ha_cf(2, "bcast eth0", "1", "3"), KEY);
        let mut hosts = String::new();
        for i in 1..=2 {
            hosts.push_str(&format!(
                "  on n{i} {{ device {dev}; disk {disk}; address 192.0.2.{a}:7788; meta-disk internal; }}\n",
                dev = lab.node_dir(i).join("drbd0").display(),
                disk = lab.node_dir(i).join("backing.img").display(),
                a = 10 + i
            ));
        }
        let conf = format!(
            "resource {RES} {{\n  protocol C;\n  syncer {{ rate 200M; }}\n{extra_conf}{hosts}}}\n"
        );
        for i in 1..=2 {
            lab.write(i, "haresources", "");
            lab.write(i, "drbd.conf", &conf);
            let f = fs::File::create(lab.node_dir(i).join("backing.img")).unwrap();
            f.set_len(size).unwrap();
        }
        let d = DiskLab {
            lab,
            size,
            devices: vec![None, None],
            starts: vec![0, 0],
        };
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
        self.lab.node_dir(i).join("drbd0")
    }

    pub fn device_log(&self, i: usize) -> PathBuf {
        self.lab
            .node_dir(i)
            .join(format!("disk{}.log", self.starts[i - 1]))
    }

    pub fn log(&self, i: usize) -> String {
        fs::read_to_string(self.device_log(i)).unwrap_or_default()
    }

    /// `hbctl disk --config .. --node nI --run-dir .. ARGS` (outside the netns).
    pub fn hbctl_disk(&self, i: usize, args: &[&str]) -> Output {
        Command::new(HBCTL)
            .arg("disk")
            .arg("--config")
            .arg(self.lab.config_dir(i))
            .arg("--node")
            .arg(format!("n{i}"))
            .args(args)
            .output()
            .expect("run hbctl")
    }

    /// Start node i's device process in its namespace.
    pub fn start(&mut self, i: usize) {
        self.starts[i - 1] += 1;
        fs::create_dir_all(self.lab.run_dir(i)).unwrap();
        let log = fs::File::create(self.device_log(i)).unwrap();
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.lab.ns(&format!("n{i}")), HBD_DISK])
            .arg("--config")
            .arg(self.lab.config_dir(i))
            .arg("--node")
            .arg(format!("n{i}"))
            .arg("--run-dir")
            .arg(self.lab.run_dir(i))
            .arg(RES)
            .env("HBD_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        self.devices[i - 1] = Some(cmd.spawn().expect("spawn hbd-disk"));
        let what = format!("n{i}'s device answering");
        self.wait_for(&what, |d| d.try_status(i).is_some() || d.exited(i));
    }

    /// Whether node i's device process has exited (reaps it).
    pub fn exited(&mut self, i: usize) -> bool {
        match self.devices[i - 1].as_mut() {
            None => true,
            Some(c) => c.try_wait().unwrap().is_some(),
        }
    }

    pub fn exit_code(&mut self, i: usize) -> Option<i32> {
        let c = self.devices[i - 1].as_mut()?;
        wait_child(c, TIMEOUT).and_then(|s| s.code())
    }

    /// SIGKILL the device process (a crash), and detach the loop device it
    /// left behind.
    pub fn crash(&mut self, i: usize) {
        let dev = self.try_status(i).and_then(|s| s.loop_device);
        if let Some(mut c) = self.devices[i - 1].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Some(dev) = dev {
            detach_loop(&dev);
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
            other => panic!("n{i} {req:?}: expected a refusal, got {other:?}"),
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
            "timed out waiting for {what}\n--- n1 ---\n{}\n--- n2 ---\n{}",
            self.log(1),
            self.log(2)
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
                detach_loop(Path::new(dev.trim()));
            }
        }
    }
}

/// Detach loop device `dev` if it still serves a (dead) hbd device file.
pub fn detach_loop(dev: &Path) {
    if let Err(e) = hbd::disk::expose::detach_stale_loop(dev) {
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
