//! The service checks of the built-in mon against real servers and processes:
//! TCP listeners, python3's http.server and canned HTTP answers, processes
//! found through /proc, shell commands with timeouts, and the real MariaDB
//! from Debian started with `resources/mysqld`. Everything listens on
//! 127.0.0.1 on ports picked free; every process a test starts is killed by
//! pid in `Drop`, also after a panic. Timings are never asserted.

mod common;
use common::{alive, read_pid, repo, require_root, wait_gone};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hbd::monitor::checks::{self, validate, CheckError, CheckKind, MysqlError};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Generous: a loaded CI machine must stay green.
const TIMEOUT: Duration = Duration::from_secs(60);
/// For checks that are meant to time out.
const SHORT: Duration = Duration::from_secs(1);
/// MariaDB initializes its data directory on first start.
const MARIADB_WAIT: Duration = Duration::from_secs(900);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// KILLs and reaps, in `Drop`, a child this test started.
struct Proc(Child);

impl Proc {
    fn spawn(cmd: &mut Command) -> Proc {
        Proc(
            cmd.stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        )
    }
    fn pid(&self) -> i32 {
        self.0.id() as i32
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// KILLs, in `Drop`, the processes whose pids the named files hold.
struct KillPids(Vec<PathBuf>);

impl Drop for KillPids {
    fn drop(&mut self) {
        for f in &self.0 {
            if let Some(pid) = read_pid(f) {
                if alive(pid) {
                    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                }
            }
        }
    }
}

async fn wait_for_port(port: u16) {
    let deadline = Instant::now() + TIMEOUT;
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs a check; a failure as its message (what `hbctl status` shows).
async fn run(kind: &CheckKind, timeout: Duration) -> Result<(), String> {
    checks::run(kind, timeout).await.map_err(|e| e.to_string())
}

fn tcp(port: u16) -> CheckKind {
    CheckKind::Tcp {
        host: "127.0.0.1".into(),
        port,
    }
}

fn http(url: String, expect: u16) -> CheckKind {
    let k = CheckKind::Http {
        url,
        expect,
        tls: Default::default(),
    };
    validate(&k).unwrap();
    k
}

fn exec(command: &str) -> CheckKind {
    CheckKind::Exec {
        command: command.into(),
        user: None,
    }
}

#[tokio::test]
async fn tcp_up_and_down() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    assert_eq!(run(&tcp(port), TIMEOUT).await, Ok(()));
    drop(listener);
    let err = run(&tcp(port), TIMEOUT).await.unwrap_err();
    assert_eq!(err, format!("connect 127.0.0.1:{port}: connection refused"));
    match checks::run(&tcp(port), TIMEOUT).await {
        Err(CheckError::Connect { source, .. }) => {
            assert_eq!(source.kind(), std::io::ErrorKind::ConnectionRefused)
        }
        other => panic!("{other:?}"),
    }
    // A name is resolved.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let by_name = CheckKind::Tcp {
        host: "localhost".into(),
        port,
    };
    // localhost may resolve to ::1 first: the check tries every address.
    assert_eq!(run(&by_name, TIMEOUT).await, Ok(()));
}

#[tokio::test]
async fn http_status_from_python_http_server() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("health"), "ok").unwrap();
    let port = free_port();
    let _server = Proc::spawn(
        Command::new("python3")
            .args(["-m", "http.server", "--bind", "127.0.0.1", "--directory"])
            .arg(dir.path())
            .arg(port.to_string()),
    );
    wait_for_port(port).await;
    let base = format!("http://127.0.0.1:{port}");
    assert_eq!(
        run(&http(format!("{base}/health"), 200), TIMEOUT).await,
        Ok(())
    );
    assert_eq!(
        run(&http(format!("{base}/missing"), 200), TIMEOUT).await,
        Err("HTTP 404 (expected 200)".into())
    );
    assert_eq!(
        run(&http(format!("{base}/missing"), 404), TIMEOUT).await,
        Ok(())
    );
}

/// Answers every connection with `answer` after reading the request head;
/// sends each request head on `heads`.
async fn canned_server(
    answer: &'static [u8],
) -> (u16, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.ends_with(b"\r\n\r\n") && head.len() < 65536 {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = tx.send(String::from_utf8_lossy(&head).into_owned());
                let _ = s.write_all(answer).await;
            });
        }
    });
    (port, rx)
}

#[tokio::test]
async fn http_503_and_the_request_sent() {
    let (port, mut heads) = canned_server(
        b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    .await;
    let check = http(format!("http://127.0.0.1:{port}/status?full"), 200);
    assert_eq!(
        run(&check, TIMEOUT).await,
        Err("HTTP 503 (expected 200)".into())
    );
    let head = heads.recv().await.unwrap();
    assert!(
        head.starts_with(&format!(
            "GET /status?full HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        )),
        "{head}"
    );
    assert!(head.contains("\r\nConnection: close\r\n"), "{head}");
}

#[tokio::test]
async fn http_garbage_and_endless_answers_are_errors() {
    let (port, _) = canned_server(b"SSH-2.0-OpenSSH_9.2p1\r\n").await;
    let err = run(&http(format!("http://127.0.0.1:{port}/"), 200), TIMEOUT)
        .await
        .unwrap_err();
    assert!(err.contains("not an HTTP status line"), "{err}");
    // A status line that never ends: the read is bounded.
    static ENDLESS: [u8; 20000] = [b'H'; 20000];
    let (port, _) = canned_server(&ENDLESS).await;
    let err = run(&http(format!("http://127.0.0.1:{port}/"), 200), TIMEOUT)
        .await
        .unwrap_err();
    assert!(err.contains("no status line"), "{err}");
    let (port, _) = canned_server(b"").await;
    let err = run(&http(format!("http://127.0.0.1:{port}/"), 200), TIMEOUT)
        .await
        .unwrap_err();
    assert!(err.contains("closed before a status line"), "{err}");
}

#[tokio::test]
async fn http_server_that_never_answers_times_out() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    // Accepts and holds every connection, answers nothing.
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    let err = run(&http(format!("http://127.0.0.1:{port}/"), 200), SHORT)
        .await
        .unwrap_err();
    assert_eq!(err, "timed out after 1s");
    holder.abort();
}

/// A copy of `sleep` under a name no other process has.
fn unique_sleep(dir: &Path) -> (PathBuf, String) {
    let name = format!("hbdchk{}", std::process::id());
    let path = dir.join(&name);
    fs::copy("/bin/sleep", &path).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    (path, name)
}

fn process(pidfile: Option<&Path>, name: Option<&str>) -> CheckKind {
    let k = CheckKind::Process {
        pidfile: pidfile.map(Path::to_path_buf),
        name: name.map(str::to_string),
    };
    validate(&k).unwrap();
    k
}

#[tokio::test]
async fn process_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let (path, name) = unique_sleep(dir.path());
    let check = process(None, Some(&name));
    assert_eq!(
        run(&check, TIMEOUT).await,
        Err(format!("no process named {name}"))
    );
    let mut p = Proc::spawn(Command::new(&path).arg("1000"));
    assert_eq!(run(&check, TIMEOUT).await, Ok(()));
    // By full path, as pidof takes it.
    let by_path = process(None, Some(path.to_str().unwrap()));
    assert_eq!(run(&by_path, TIMEOUT).await, Ok(()));
    // A zombie is down: killed, not yet reaped.
    p.0.kill().unwrap();
    while alive(p.pid()) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        Path::new(&format!("/proc/{}", p.pid())).exists(),
        "reaped too early"
    );
    assert_eq!(
        run(&check, TIMEOUT).await,
        Err(format!("no process named {name}"))
    );
    p.0.wait().unwrap();
    assert_eq!(
        run(&check, TIMEOUT).await,
        Err(format!("no process named {name}"))
    );
}

#[tokio::test]
async fn process_by_pidfile() {
    let dir = tempfile::tempdir().unwrap();
    let (path, name) = unique_sleep(dir.path());
    let pidfile = dir.path().join("x.pid");
    let check = process(Some(&pidfile), None);
    let err = run(&check, TIMEOUT).await.unwrap_err();
    assert!(err.contains("no such file or directory"), "{err}");
    fs::write(&pidfile, "garbage\n").unwrap();
    let err = run(&check, TIMEOUT).await.unwrap_err();
    assert!(err.contains("no pid in it"), "{err}");

    let mut p = Proc::spawn(Command::new(&path).arg("1000"));
    fs::write(&pidfile, format!("{}\n", p.pid())).unwrap();
    assert_eq!(run(&check, TIMEOUT).await, Ok(()));
    assert_eq!(
        run(&process(Some(&pidfile), Some(&name)), TIMEOUT).await,
        Ok(())
    );
    // The pid is alive but is another program (a reused pid).
    let err = run(&process(Some(&pidfile), Some("mariadbd")), TIMEOUT)
        .await
        .unwrap_err();
    assert!(err.contains("not mariadbd"), "{err}");

    // A zombie is down.
    p.0.kill().unwrap();
    while alive(p.pid()) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let err = run(&check, TIMEOUT).await.unwrap_err();
    assert!(err.contains("zombie"), "{err}");
    // A dead pid is down.
    p.0.wait().unwrap();
    let err = run(&check, TIMEOUT).await.unwrap_err();
    assert_eq!(
        err,
        format!(
            "pid {} (from {}) is not running",
            p.pid(),
            pidfile.display()
        )
    );
}

#[tokio::test]
async fn exec_exit_codes_and_last_line() {
    assert_eq!(run(&exec("true"), TIMEOUT).await, Ok(()));
    assert_eq!(
        run(&exec("pidof init >/dev/null; exit 0"), TIMEOUT).await,
        Ok(())
    );
    assert_eq!(
        run(
            &exec("echo starting; echo 'no pid file' >&2; exit 1"),
            TIMEOUT
        )
        .await,
        Err("exit code 1: no pid file".into())
    );
    assert_eq!(
        run(&exec("exit 3"), TIMEOUT).await,
        Err("exit code 3".into())
    );
    assert!(matches!(
        checks::run(&exec("exit 3"), TIMEOUT).await,
        Err(CheckError::Exit {
            code: 3,
            output: None
        })
    ));
    assert_eq!(
        run(&exec("kill -TERM $$"), TIMEOUT).await,
        Err("killed by SIGTERM".into())
    );
    // A background child keeping the output open does not make the check
    // wait: the shell's exit decides.
    let dir = tempfile::tempdir().unwrap();
    let bg = dir.path().join("bg.pid");
    let _kill = KillPids(vec![bg.clone()]);
    assert_eq!(
        run(
            &exec(&format!("sleep 1000 & echo $! > {}; exit 0", bg.display())),
            TIMEOUT
        )
        .await,
        Ok(())
    );
}

/// The command starts as every program hbd runs starts
/// (`process::clean_command`): no descriptor of hbd's reaches it, even one
/// hbd inherited without close-on-exec. It failed before the exec check
/// went through `process::run` ("fd N is open": its shell was spawned
/// without the clean start).
#[tokio::test]
async fn exec_command_gets_no_descriptor_of_hbds() {
    use std::os::fd::AsRawFd;
    let f = fs::File::open("/dev/null").unwrap();
    nix::fcntl::fcntl(
        &f,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
    )
    .unwrap();
    let fd = f.as_raw_fd();
    assert_eq!(
        run(
            &exec(&format!(
                "if [ -e /proc/$$/fd/{fd} ]; then echo 'fd {fd} is open'; exit 1; fi"
            )),
            TIMEOUT
        )
        .await,
        Ok(())
    );
    drop(f);
}

#[tokio::test]
async fn exec_as_another_user() {
    require_root();
    let check = CheckKind::Exec {
        command: "test \"$(id -un)\" = nobody && test \"$USER\" = nobody".into(),
        user: Some("nobody".into()),
    };
    assert_eq!(run(&check, TIMEOUT).await, Ok(()));
    let check = CheckKind::Exec {
        command: "true".into(),
        user: Some("no-such-user-hbd".into()),
    };
    assert_eq!(
        run(&check, TIMEOUT).await,
        Err("user no-such-user-hbd: no such user".into())
    );
}

#[tokio::test]
async fn exec_hanging_command_is_killed_with_its_children() {
    let dir = tempfile::tempdir().unwrap();
    let shell = dir.path().join("sh.pid");
    let child = dir.path().join("child.pid");
    let _kill = KillPids(vec![shell.clone(), child.clone()]);
    let cmd = format!(
        "echo $$ > {}; sleep 1000 & echo $! > {}; wait",
        shell.display(),
        child.display()
    );
    assert_eq!(
        run(&exec(&cmd), SHORT).await,
        Err("timed out after 1s".into())
    );
    let (sh, ch) = (read_pid(&shell).unwrap(), read_pid(&child).unwrap());
    assert!(wait_gone(sh), "the shell {sh} still runs");
    assert!(wait_gone(ch), "the shell's child {ch} still runs");
}

// ---------------------------------------------------------------------------
// MySQL against the real MariaDB

/// A private MariaDB in a temporary directory, started with the project's
/// `resources/mysqld` agent; stopped by the agent in `Drop`, and KILLed by pid
/// (found by its `--datadir=` argument) if that did not work.
struct MariaDb {
    dir: tempfile::TempDir,
    port: u16,
}

impl MariaDb {
    fn datadir(&self) -> PathBuf {
        self.dir.path().join("data")
    }
    fn socket(&self) -> PathBuf {
        // In the data directory: the server (user mysql) creates it.
        self.datadir().join("mysqld.sock")
    }

    fn agent(&self, action: &str) -> std::process::Output {
        Command::new(repo().join("resources/mysqld"))
            .arg(self.datadir())
            .arg(self.socket())
            .arg(self.datadir().join("mysqld.pid"))
            .arg(self.port.to_string())
            .arg("bind_address=127.0.0.1")
            .arg(action)
            .env("HBD_START_WAIT", MARIADB_WAIT.as_secs().to_string())
            .env("HBD_STOP_GRACE", "60")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn start() -> MariaDb {
        let dir = tempfile::tempdir().unwrap();
        // MariaDB runs as mysql: it must reach the data directory inside.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let db = MariaDb {
            dir,
            port: free_port(),
        };
        fs::create_dir_all(db.datadir()).unwrap();
        let mysql = nix::unistd::User::from_name("mysql").unwrap().unwrap();
        nix::unistd::chown(&db.datadir(), Some(mysql.uid), None).unwrap();
        let out = db.agent("start");
        assert!(
            out.status.success(),
            "resources/mysqld start: {:?}\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        db
    }

    fn stop(&self) {
        let out = self.agent("stop");
        assert!(
            out.status.success(),
            "resources/mysqld stop: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn sql(&self, q: &str) {
        let out = Command::new("mariadb")
            .arg(format!("--socket={}", self.socket().display()))
            .args(["--batch", "-e", q])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mariadb -e {q:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn pids(&self) -> Vec<i32> {
        common::pids_with_arg(&format!("--datadir={}", self.datadir().display()))
    }

    fn tcp(&self, user: &str, password: &str) -> CheckKind {
        CheckKind::Mysql {
            host: Some("127.0.0.1".into()),
            port: self.port,
            socket: None,
            user: Some(user.into()),
            password: Some(password.into()),
            option_file: None,
            query: "SELECT 1".into(),
        }
    }

    fn unix(&self, user: Option<&str>) -> CheckKind {
        CheckKind::Mysql {
            host: None,
            port: 3306,
            socket: Some(self.socket()),
            user: user.map(str::to_string),
            password: None,
            option_file: None,
            query: "SELECT 1".into(),
        }
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        if !self.pids().is_empty() {
            let _ = self.agent("stop");
        }
        for pid in self.pids() {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            wait_gone(pid);
        }
    }
}

fn with_query(mut kind: CheckKind, q: &str) -> CheckKind {
    if let CheckKind::Mysql { query, .. } = &mut kind {
        *query = q.into();
    }
    kind
}

fn mariadb_installed() -> bool {
    ["/usr/sbin/mariadbd", "/usr/bin/mariadb"]
        .iter()
        .all(|p| Path::new(p).exists())
}

#[tokio::test(flavor = "multi_thread")]
async fn mysql_against_real_mariadb() {
    require_root();
    assert!(
        mariadb_installed(),
        "MariaDB is not installed: run scripts/setup (Debian packages mariadb-server, mariadb-client)"
    );
    let db = tokio::task::block_in_place(MariaDb::start);

    // Debian's root: unix_socket authentication, no password.
    let root = db.unix(Some("root"));
    validate(&root).unwrap();
    assert_eq!(run(&root, TIMEOUT).await, Ok(()));
    // Without a user: the one the check runs as (root), as the mysql client.
    assert_eq!(run(&db.unix(None), TIMEOUT).await, Ok(()));
    // A query with a larger result set is read to its end.
    let big = with_query(
        db.unix(Some("root")),
        "SELECT * FROM information_schema.COLLATIONS",
    );
    assert_eq!(run(&big, TIMEOUT).await, Ok(()));
    // A failing query is down.
    let bad = with_query(db.unix(Some("root")), "SELECT * FROM nosuch.t");
    let err = run(&bad, TIMEOUT).await.unwrap_err();
    assert!(
        err.starts_with("mysql: ") && err.contains("nosuch"),
        "{err}"
    );

    // A user with a password, over TCP.
    db.sql(
        "CREATE USER 'mon'@'127.0.0.1' IDENTIFIED BY 'secret'; \
         CREATE USER 'nopw'@'127.0.0.1'; \
         GRANT USAGE ON *.* TO 'mon'@'127.0.0.1'",
    );
    assert_eq!(run(&db.tcp("mon", "secret"), TIMEOUT).await, Ok(()));
    assert_eq!(run(&db.tcp("nopw", ""), TIMEOUT).await, Ok(()));
    let err = run(&db.tcp("mon", "wrong"), TIMEOUT).await.unwrap_err();
    assert!(
        err.starts_with("mysql: Access denied for user 'mon'@'"),
        "{err}"
    );
    let err = run(&db.tcp("nobody-here", "x"), TIMEOUT).await.unwrap_err();
    assert!(err.contains("Access denied"), "{err}");
    match checks::run(&db.tcp("mon", "wrong"), TIMEOUT).await {
        Err(CheckError::Mysql(MysqlError::Server { code: 1045, .. })) => {}
        other => panic!("{other:?}"),
    }

    // Credentials and address from an option file.
    let cnf = db.dir.path().join("monitor.cnf");
    fs::write(
        &cnf,
        format!(
            "[mysqld]\nuser = mysql\n\n[client]\nhost = 127.0.0.1\nport = {}\nuser = mon\npassword = \"secret\"\n",
            db.port
        ),
    )
    .unwrap();
    let from_file = CheckKind::Mysql {
        host: None,
        port: 3306,
        socket: None,
        user: None,
        password: None,
        option_file: Some(cnf.clone()),
        query: "SELECT 1".into(),
    };
    validate(&from_file).unwrap();
    assert_eq!(run(&from_file, TIMEOUT).await, Ok(()));
    // The check's own password wins over the file's.
    let mut override_pw = from_file.clone();
    if let CheckKind::Mysql { password, .. } = &mut override_pw {
        *password = Some("wrong".into());
    }
    let err = run(&override_pw, TIMEOUT).await.unwrap_err();
    assert!(err.contains("Access denied"), "{err}");

    // A stopped server: connect errors, on both paths.
    tokio::task::block_in_place(|| db.stop());
    assert!(db.pids().is_empty(), "the server still runs after stop");
    assert_eq!(
        run(&db.tcp("mon", "secret"), TIMEOUT).await,
        Err(format!("connect 127.0.0.1:{}: connection refused", db.port))
    );
    let err = run(&root, TIMEOUT).await.unwrap_err();
    assert!(
        err.starts_with(&format!("connect {}: ", db.socket().display())),
        "{err}"
    );
}

/// A CA and a server certificate for `localhost` only (no IP address in
/// it), made with openssl in `dir`: (ca.pem, server.pem, server.key).
fn make_certs(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let sh = |script: &str| {
        let out = Command::new("sh")
            .arg("-ec")
            .arg(script)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{script}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    sh(
        "openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 \
        -subj '/CN=hbd test CA' -addext basicConstraints=critical,CA:TRUE \
        -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null",
    );
    sh(
        "openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr \
        -subj '/CN=localhost' 2>/dev/null",
    );
    fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    sh(
        "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
        -out server.pem -days 2 -extfile ext.cnf 2>/dev/null",
    );
    (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    )
}

fn https(url: String, expect: u16, ca_file: Option<&Path>, skip: bool) -> CheckKind {
    let k = CheckKind::Http {
        url,
        expect,
        tls: checks::HttpTls {
            ca_file: ca_file.map(Path::to_path_buf),
            insecure_skip_verify: skip,
        },
    };
    validate(&k).unwrap();
    k
}

/// https:// against python3's http.server wrapped in TLS (ssl module) on
/// loopback, with a CA the test makes: verified against the check's
/// ca_file, refused against the system's roots and for a name the
/// certificate does not hold, accepted by insecure_skip_verify.
#[tokio::test]
async fn https_against_a_real_tls_server() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = make_certs(dir.path());
    let www = dir.path().join("www");
    fs::create_dir_all(&www).unwrap();
    fs::write(www.join("health"), "ok").unwrap();
    let port = free_port();
    let _server = Proc::spawn(
        Command::new("python3")
            .arg("-c")
            .arg(
                "import http.server, ssl, sys, os\n\
                 port, cert, key, d = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]\n\
                 os.chdir(d)\n\
                 srv = http.server.ThreadingHTTPServer(('127.0.0.1', port), http.server.SimpleHTTPRequestHandler)\n\
                 ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n\
                 ctx.load_cert_chain(cert, key)\n\
                 srv.socket = ctx.wrap_socket(srv.socket, server_side=True)\n\
                 srv.serve_forever()\n",
            )
            .arg(port.to_string())
            .arg(&cert)
            .arg(&key)
            .arg(&www),
    );
    wait_for_port(port).await;
    let url = |host: &str, path: &str| format!("https://{host}:{port}{path}");
    // Verified against the test's CA; the status is read over TLS.
    assert_eq!(
        run(
            &https(url("localhost", "/health"), 200, Some(&ca), false),
            TIMEOUT
        )
        .await,
        Ok(())
    );
    assert_eq!(
        run(
            &https(url("localhost", "/missing"), 200, Some(&ca), false),
            TIMEOUT
        )
        .await,
        Err("HTTP 404 (expected 200)".into())
    );
    // The system's roots do not know the test's CA.
    let err = run(
        &https(url("localhost", "/health"), 200, None, false),
        TIMEOUT,
    )
    .await
    .unwrap_err();
    assert!(
        err.starts_with("https: TLS handshake: ") && err.contains("invalid peer certificate"),
        "{err}"
    );
    // Another CA's file: refused too.
    let other = dir.path().join("other");
    fs::create_dir_all(&other).unwrap();
    let (other_ca, _, _) = make_certs(&other);
    let err = run(
        &https(url("localhost", "/health"), 200, Some(&other_ca), false),
        TIMEOUT,
    )
    .await
    .unwrap_err();
    assert!(
        err.starts_with("https: TLS handshake: ") && err.contains("invalid peer certificate"),
        "{err}"
    );
    // 127.0.0.1 is not a name of the certificate.
    let err = run(
        &https(url("127.0.0.1", "/health"), 200, Some(&ca), false),
        TIMEOUT,
    )
    .await
    .unwrap_err();
    assert!(
        err.starts_with("https: TLS handshake: ") && err.contains("not valid for name"),
        "{err}"
    );
    // insecure_skip_verify accepts it all.
    assert_eq!(
        run(
            &https(url("127.0.0.1", "/health"), 200, None, true),
            TIMEOUT
        )
        .await,
        Ok(())
    );
    // An http:// URL on the TLS port gets no HTTP answer.
    assert!(run(
        &http(format!("http://127.0.0.1:{port}/health"), 200),
        TIMEOUT
    )
    .await
    .is_err());
}

/// The documented route for MySQL over TLS (docs/CONFIG.md, "MySQL 8 and
/// TLS"): an `exec` check running `mariadb-admin --defaults-file=FILE
/// status` against the real MariaDB, started by `resources/mysqld` with TLS
/// required (a CA and a certificate for 127.0.0.1 made with openssl). Up
/// with the right CA and password; down with a wrong password, a CA that
/// did not sign the server's certificate, and a stopped server. `ping`
/// passes even when the login is refused, as the docs warn.
#[tokio::test(flavor = "multi_thread")]
async fn exec_mariadb_admin_over_tls() {
    require_root();
    assert!(
        mariadb_installed() && Path::new("/usr/bin/mariadb-admin").exists(),
        "MariaDB is not installed: run scripts/setup (Debian packages mariadb-server, mariadb-client)"
    );
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::set_permissions(d, fs::Permissions::from_mode(0o755)).unwrap();
    let sh = |script: &str| {
        let out = Command::new("sh")
            .arg("-ec")
            .arg(script)
            .current_dir(d)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{script}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    sh("openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 \
        -subj '/CN=hbd test CA' -addext basicConstraints=critical,CA:TRUE \
        -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
        openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr \
        -subj '/CN=127.0.0.1' 2>/dev/null
        printf 'subjectAltName=IP:127.0.0.1\\nbasicConstraints=CA:FALSE\\nextendedKeyUsage=serverAuth\\n' > ext.cnf
        openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
        -out server.pem -days 2 -extfile ext.cnf 2>/dev/null
        chmod 644 server.key
        mkdir data && chown mysql: data");
    let p = |n: &str| d.join(n).display().to_string();
    fs::write(
        d.join("my.cnf"),
        format!(
            "[mysqld]\nssl-ca={}\nssl-cert={}\nssl-key={}\nrequire-secure-transport=ON\n",
            p("ca.pem"),
            p("server.pem"),
            p("server.key")
        ),
    )
    .unwrap();
    let port = free_port();
    let datadir = d.join("data");
    let agent = |action: &str| {
        Command::new(repo().join("resources/mysqld"))
            .arg(&datadir)
            .arg(format!("port={port}"))
            .arg("bind_address=127.0.0.1")
            .arg(format!("defaults_file={}", p("my.cnf")))
            .arg(action)
            .env("HBD_START_WAIT", MARIADB_WAIT.as_secs().to_string())
            .env("HBD_STOP_GRACE", "60")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    // KILLs the server in Drop, also after a panic.
    struct Server(String);
    impl Drop for Server {
        fn drop(&mut self) {
            for pid in common::pids_with_arg(&self.0) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                wait_gone(pid);
            }
        }
    }
    let _server = Server(format!("--datadir={}", datadir.display()));
    let out = tokio::task::block_in_place(|| agent("start"));
    assert!(
        out.status.success(),
        "resources/mysqld start: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let sql = Command::new("mariadb")
        .arg(format!("--socket={}", datadir.join("mysqld.sock").display()))
        .args(["-e", "CREATE USER 'mon'@'127.0.0.1' IDENTIFIED BY 'secret'; CREATE USER 'mon'@'localhost' IDENTIFIED BY 'secret'"])
        .output()
        .unwrap();
    assert!(
        sql.status.success(),
        "{}",
        String::from_utf8_lossy(&sql.stderr)
    );

    let cnf = |name: &str, password: &str, ca: &str| {
        let path = d.join(name);
        fs::write(
            &path,
            format!(
                "[client]\nhost = 127.0.0.1\nport = {port}\nuser = mon\npassword = {password}\n\
                 ssl-ca = {ca}\nssl-verify-server-cert\n"
            ),
        )
        .unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        path.display().to_string()
    };
    let good = cnf("good.cnf", "secret", &p("ca.pem"));
    let wrong_pw = cnf("wrong.cnf", "wrong", &p("ca.pem"));
    let other_ca = cnf("other.cnf", "secret", "/etc/ssl/certs/ca-certificates.crt");
    let check = |file: &str, verb: &str| {
        let k = exec(&format!("mariadb-admin --defaults-file={file} {verb}"));
        validate(&k).unwrap();
        k
    };
    assert_eq!(run(&check(&good, "status"), TIMEOUT).await, Ok(()));
    assert_eq!(run(&check(&good, "ping"), TIMEOUT).await, Ok(()));
    let err = run(&check(&wrong_pw, "status"), TIMEOUT).await.unwrap_err();
    assert!(err.contains("Access denied"), "{err}");
    // ping: 0 although the login is refused (why the docs say status).
    assert_eq!(run(&check(&wrong_pw, "ping"), TIMEOUT).await, Ok(()));
    let err = run(&check(&other_ca, "status"), TIMEOUT).await.unwrap_err();
    assert!(err.contains("TLS/SSL error"), "{err}");

    let out = tokio::task::block_in_place(|| agent("stop"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = run(&check(&good, "status"), TIMEOUT).await.unwrap_err();
    assert!(err.starts_with("exit code 1"), "{err}");
}

/// cluster.toml's `ca_file` and `insecure_skip_verify` through `hbctl
/// check`: accepted for an https:// URL, refused with file:line and the key
/// for an http:// one or a CA file that holds no certificate.
#[test]
fn https_check_settings_in_cluster_toml() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, _, _) = make_certs(dir.path());
    let write = |name: &str, text: &str, mode: u32| {
        let p = dir.path().join(name);
        fs::write(&p, text).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
    };
    write(
        "ha.cf",
        "keepalive 200ms\ndeadtime 1\nbcast eth0\nnode n1 n2\nauto_failback on\n",
        0o644,
    );
    write("authkeys", common::KEY, 0o600);
    write("haresources", "n1 192.0.2.10 mon\n", 0o644);
    let check = |toml: &str| {
        write("cluster.toml", toml, 0o644);
        let out = Command::new(common::HBCTL)
            .args(["check", "--node", "n1", "--config"])
            .arg(dir.path())
            .output()
            .unwrap();
        (
            out.status.code(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let (code, text) = check(&format!(
        "[[check]]\ntype = \"http\"\nurl = \"https://localhost:8443/health\"\nca_file = {:?}\n\n\
         [[check]]\ntype = \"http\"\nurl = \"https://192.0.2.10/\"\ninsecure_skip_verify = true\n",
        ca.display()
    ));
    assert_eq!(code, Some(0), "{text}");
    let toml = dir.path().join("cluster.toml");
    let (code, text) = check(
        "[[check]]\ntype = \"http\"\nurl = \"http://localhost/\"\ninsecure_skip_verify = true\n",
    );
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains(&format!("{}:2: check.type: url: ", toml.display()))
            && text.contains("for https:// URLs"),
        "{text}"
    );
    let (code, text) = check(&format!(
        "[[check]]\ntype = \"http\"\nurl = \"https://localhost/\"\nca_file = {:?}\n",
        dir.path().join("ext.cnf").display()
    ));
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains("check.type: ca_file: ") && text.contains("no CA certificate"),
        "{text}"
    );
}
