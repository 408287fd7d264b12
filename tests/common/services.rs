//! Helpers for scenario 2 (seed 000, master-master): a real MariaDB server
//! per node (own datadir, started in the node's network namespace as a
//! child of the test), Debian's memcached per node, and the application
//! server (tests/fixtures/app.py) in the client namespace. Every process is killed
//! by its pid in `Drop`, also after a panic, and dies with the test process
//! (PR_SET_PDEATHSIG).
#![allow(dead_code)]

use super::*;
use std::collections::{BTreeMap, BTreeSet};

/// MariaDB's first start, crash recovery, replication catching up: generous.
pub const LONG: Duration = Duration::from_secs(300);

/// Spawns `args` in network namespace `ns` (`ip netns exec` execs it, so the
/// child's pid is the program's), output into `log`, killed with the test.
pub fn spawn_in(ns: &str, args: &[String], log: &Path) -> Child {
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", ns])
        .args(args)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    super::die_with_test(&mut cmd);
    cmd.spawn()
        .unwrap_or_else(|e| panic!("spawn {args:?} in {ns}: {e}"))
}

fn kill_child(c: &mut Option<Child>) {
    if let Some(mut c) = c.take() {
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// One node's MariaDB server: seed 000's my.cnf as options (server-id,
/// log-bin, row format, listening on every address of the namespace so the
/// VIP reaches it) plus auto_increment_increment 2 / offset = server-id.
pub struct MariaNode {
    pub ns: String,
    pub server_id: u32,
    pub dir: PathBuf,
    child: Option<Child>,
}

impl MariaNode {
    /// Initializes `dir/data` (mariadb-install-db, root by unix socket).
    pub fn new(ns: String, server_id: u32, dir: PathBuf) -> MariaNode {
        let data = dir.join("data");
        fs::create_dir_all(&data).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        let mysql = nix::unistd::User::from_name("mysql")
            .unwrap()
            .expect("user mysql (mariadb-server)");
        for d in [&dir, &data] {
            nix::unistd::chown(d.as_path(), Some(mysql.uid), Some(mysql.gid)).unwrap();
        }
        let out = Command::new("/usr/bin/mariadb-install-db")
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .args([
                "--user=mysql",
                "--auth-root-authentication-method=socket",
                "--skip-test-db",
                "--skip-name-resolve",
                "--disable-log-bin",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mariadb-install-db {}: {}{}",
            data.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        MariaNode {
            ns,
            server_id,
            dir,
            child: None,
        }
    }

    pub fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.join("mysqld.sock")
    }

    /// mariadbd writes its own pid here: the node's process check reads it.
    pub fn pidfile(&self) -> PathBuf {
        self.dir.join("mysqld.pid")
    }

    pub fn error_log(&self) -> String {
        fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }

    pub fn start(&mut self) {
        let d = self.dir.display();
        let args: Vec<String> = vec![
            "/usr/sbin/mariadbd".into(),
            "--no-defaults".into(),
            format!("--datadir={}", self.data().display()),
            format!("--socket={}", self.socket().display()),
            format!("--pid-file={}", self.pidfile().display()),
            format!("--log-error={d}/error.log"),
            "--user=mysql".into(),
            "--port=3306".into(),
            "--bind-address=0.0.0.0".into(),
            "--skip-name-resolve".into(),
            "--sysdate-is-now".into(),
            format!("--server-id={}", self.server_id),
            format!("--log-bin={}/master-tx-log-bin", self.data().display()),
            format!(
                "--log-bin-index={}/master-tx-log-bin-index",
                self.data().display()
            ),
            format!("--relay-log={}/relay-bin", self.data().display()),
            "--expire-logs-days=10".into(),
            "--max-binlog-size=100M".into(),
            "--binlog-format=row".into(),
            "--auto-increment-increment=2".into(),
            format!("--auto-increment-offset={}", self.server_id),
            // Small, for a shared test machine (the seed's performance_schema
            // is left off for the same reason).
            "--innodb-buffer-pool-size=32M".into(),
            "--performance-schema=OFF".into(),
        ];
        self.child = Some(spawn_in(&self.ns, &args, &self.dir.join("stdout.log")));
    }

    /// Waits until the server answers on its socket.
    pub fn wait_ready(&mut self) {
        let start = Instant::now();
        while start.elapsed() < LONG {
            if let Some(c) = self.child.as_mut() {
                if let Some(st) = c.try_wait().unwrap() {
                    panic!("mariadbd exited: {st}\n{}", self.error_log());
                }
            }
            if self.try_sql("SELECT 1").is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!(
            "mariadbd in {} did not answer within {LONG:?}\n{}",
            self.ns,
            self.error_log()
        );
    }

    pub fn pid(&self) -> Option<i32> {
        self.child.as_ref().map(|c| c.id() as i32)
    }

    /// SIGKILL, as a crash (the pid file stays behind with a dead pid).
    pub fn kill(&mut self) {
        kill_child(&mut self.child);
    }

    pub fn try_sql(&self, q: &str) -> Result<String, String> {
        let out = Command::new("/usr/bin/mariadb")
            .arg("--no-defaults")
            .arg(format!("--socket={}", self.socket().display()))
            .args(["--connect-timeout=5", "--batch", "--skip-column-names"])
            .args(["-e", q])
            .output()
            .unwrap();
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    pub fn sql(&self, q: &str) -> String {
        self.try_sql(q)
            .unwrap_or_else(|e| panic!("{}: mariadb -e {q:?}: {e}", self.ns))
    }

    /// `SHOW MASTER STATUS`: (file, position).
    pub fn master_status(&self) -> (String, u64) {
        let out = self.sql("SHOW MASTER STATUS");
        let f: Vec<&str> = out.split('\t').collect();
        assert!(f.len() >= 2, "SHOW MASTER STATUS: {out:?}");
        (f[0].to_string(), f[1].trim().parse().unwrap())
    }

    /// `SHOW SLAVE STATUS\G` as field → value (empty without a master).
    pub fn slave_status(&self) -> BTreeMap<String, String> {
        let out = Command::new("/usr/bin/mariadb")
            .arg("--no-defaults")
            .arg(format!("--socket={}", self.socket().display()))
            .args(["--connect-timeout=5", "-e", "SHOW SLAVE STATUS\\G"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_once(": "))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect()
    }

    /// Replication from the other node caught up, as the gate sees it.
    pub fn caught_up(&self) -> bool {
        let s = self.slave_status();
        s.get("Slave_IO_Running").map(String::as_str) == Some("Yes")
            && s.get("Slave_SQL_Running").map(String::as_str) == Some("Yes")
            && s.get("Seconds_Behind_Master").map(String::as_str) == Some("0")
    }

    /// The ids in app.rows (empty while the table does not exist).
    pub fn ids(&self) -> BTreeSet<u64> {
        self.try_sql("SELECT id FROM app.rows")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// The failback gate's script for this node: replication from the peer
    /// caught up (`Seconds_Behind_Master: 0`, both threads running), read
    /// from this node's own server through its socket.
    pub fn gate_script(&self) -> PathBuf {
        let path = self.dir.join("replication-caught-up.sh");
        fs::write(
            &path,
            format!(
                "#!/bin/sh\n\
                 s=$(/usr/bin/mariadb --no-defaults --socket={} --connect-timeout=3 -e 'SHOW SLAVE STATUS\\G') || exit 1\n\
                 echo \"$s\" | grep -q 'Slave_IO_Running: Yes' || exit 1\n\
                 echo \"$s\" | grep -q 'Slave_SQL_Running: Yes' || exit 1\n\
                 echo \"$s\" | grep -q 'Seconds_Behind_Master: 0$'\n",
                self.socket().display()
            ),
        )
        .unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        path
    }
}

impl Drop for MariaNode {
    fn drop(&mut self) {
        self.kill();
        // A server this guard did not start (none expected): by datadir.
        for pid in pids_with_arg(&format!("--datadir={}", self.data().display())) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
            wait_gone(pid);
        }
    }
}

/// Seed 000's replication, as the seed sets it up: a replication user on
/// each server, `SHOW MASTER STATUS` of one, `CHANGE MASTER TO` it on the
/// other, `START SLAVE`, both ways. `addrs` are the nodes' own addresses.
/// (Fresh servers: nothing to dump and copy, so no read lock is needed.)
pub fn master_master(a: &MariaNode, b: &MariaNode, addrs: [&str; 2]) {
    let mut status = Vec::new();
    for m in [a, b] {
        m.sql(
            "CREATE USER repl_user IDENTIFIED BY 'replpass'; \
             GRANT REPLICATION SLAVE ON *.* TO 'repl_user'@'%'; FLUSH PRIVILEGES",
        );
        status.push(m.master_status());
    }
    for (i, m) in [a, b].into_iter().enumerate() {
        let (file, pos) = &status[1 - i];
        m.sql(&format!(
            "CHANGE MASTER TO MASTER_HOST='{}', MASTER_USER='repl_user', \
             MASTER_PASSWORD='replpass', MASTER_LOG_FILE='{file}', \
             MASTER_LOG_POS={pos}, MASTER_CONNECT_RETRY=1",
            addrs[1 - i]
        ));
        m.sql("START SLAVE");
    }
    for m in [a, b] {
        let start = Instant::now();
        while !m.caught_up() {
            assert!(
                start.elapsed() < LONG,
                "{}: replication does not run: {:?}\n{}",
                m.ns,
                m.slave_status(),
                m.error_log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// Debian's memcached in a node's namespace on every address (the VIP
/// included), its pid in `pidfile` for the node's process check.
pub struct Memcached {
    pub pidfile: PathBuf,
    child: Option<Child>,
}

impl Memcached {
    pub fn start(ns: &str, dir: &Path) -> Memcached {
        let args: Vec<String> = [
            "/usr/bin/memcached",
            "-u",
            "nobody",
            "-l",
            "0.0.0.0",
            "-p",
            "11211",
            "-U",
            "0",
            "-m",
            "16",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let child = spawn_in(ns, &args, &dir.join("memcached.log"));
        let pidfile = dir.join("memcached.pid");
        fs::write(&pidfile, format!("{}\n", child.id())).unwrap();
        Memcached {
            pidfile,
            child: Some(child),
        }
    }

    pub fn kill(&mut self) {
        kill_child(&mut self.child);
    }
}

impl Drop for Memcached {
    fn drop(&mut self) {
        self.kill();
    }
}

/// memcached answers `version` at `addr:11211` from the lab's `host`.
pub fn memcached_answers(lab: &Lab, host: &str, addr: &str) -> bool {
    let py = format!(
        "import socket,sys\ns=socket.create_connection(('{addr}',11211),timeout=2)\n\
         s.sendall(b'version\\r\\n')\nsys.exit(0 if s.recv(100).startswith(b'VERSION') else 1)\n"
    );
    lab.exec(host, &["python3", "-c", &py]).status.success()
}

/// tests/fixtures/app.py in the client namespace on 127.0.0.1:`port`, its database
/// at `db_host` (the DB VIP), one connection per request.
pub struct App {
    child: Option<Child>,
}

impl App {
    pub fn start(lab: &Lab, db_host: &str, port: u16) -> App {
        let log = lab.dir.path().join("app.log");
        let args: Vec<String> = vec![
            "/usr/bin/python3".into(),
            repo().join("tests/fixtures/app.py").display().to_string(),
            "--bind".into(),
            "127.0.0.1".into(),
            "--port".into(),
            port.to_string(),
            "--host".into(),
            db_host.into(),
            "--user".into(),
            "app".into(),
            "--password".into(),
            "apppass".into(),
            "--database".into(),
            "app".into(),
        ];
        App {
            child: Some(spawn_in(&lab.ns("c"), &args, &log)),
        }
    }
}

impl Drop for App {
    fn drop(&mut self) {
        kill_child(&mut self.child);
    }
}

/// The last `failback gate open|closed` line of an hbd log: Some(open).
pub fn last_gate(log: &str) -> Option<bool> {
    log.lines().rev().find_map(|l| {
        if l.contains("failback gate open") {
            Some(true)
        } else if l.contains("failback gate closed") {
            Some(false)
        } else {
            None
        }
    })
}
