//! Service checks of the built-in mon: the monitors of mon.cf and keepalived's
//! `vrrp_script`, each answering "is the service up?" within a timeout.
//!
//! | kind      | up when                                                              |
//! |-----------|----------------------------------------------------------------------|
//! | `tcp`     | a TCP connect to host:port succeeds                                  |
//! | `http`    | an HTTP/1.1 GET answers with the expected status                     |
//! | `process` | a pid file names a live process and/or a process has the name (pidof)|
//! | `exec`    | `/bin/sh -c command` exits 0 (vrrp_script, mon's `*.monitor`)        |
//! | `mysql`   | MySQL/MariaDB authenticates and answers a trivial query              |
//!
//! [`run`] never panics and is bounded everywhere: the timeout covers the whole
//! check (a command is killed with its process group when it runs out), reads
//! are capped in size and in number of packets, and `/proc` and file reads run
//! on the blocking pool. Failures are short reasons meant for one log line.
//!
//! The HTTP and MySQL clients are written here, small on purpose: a check only
//! needs a status line, or a handshake, an authentication and one result.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// One check's target, as configured (cluster.toml `[[check]]`, parsed elsewhere).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckKind {
    /// TCP connect to host:port succeeds.
    Tcp { host: String, port: u16 },
    /// HTTP/1.1 GET of `url` (http:// only; host, port, path) answers with status `expect`.
    Http { url: String, expect: u16 },
    /// A process is alive: by pid file (pid alive and not a zombie) and/or by name
    /// (comm or argv[0] basename as pidof matches), read from /proc — never fork pidof.
    /// With both, the pid file's process must also have the name (a reused pid
    /// does not count).
    Process {
        pidfile: Option<PathBuf>,
        name: Option<String>,
    },
    /// `/bin/sh -c command` exits 0 (keepalived vrrp_script, `pidof mysqld`, `killall -0 httpd`);
    /// run as `user` when given; killed with its whole process group at the timeout.
    Exec {
        command: String,
        user: Option<String>,
    },
    /// MySQL/MariaDB: protocol handshake (v10), authentication, and a trivial query
    /// (`query`, default "SELECT 1") answered without error. Over TCP (host, port) or a unix
    /// socket. Credentials from user/password, or from a MySQL option file ([client] section:
    /// user, password, host, port, socket) when `option_file` is set.
    ///
    /// The socket wins over host when both are set. The check's own values win
    /// over the option file's; the file's host, port and socket are used only
    /// when the check names neither host nor socket. Without a user anywhere,
    /// the user hbd runs as is used, as the mysql client does.
    Mysql {
        host: Option<String>,
        port: u16,
        socket: Option<PathBuf>,
        user: Option<String>,
        password: Option<String>,
        option_file: Option<PathBuf>,
        query: String,
    },
}

/// Bytes read from an HTTP server before its status line must have ended.
const HTTP_MAX_STATUS_LINE: usize = 8192;
/// Addresses tried for one host name.
const MAX_ADDRS: usize = 16;
/// Bytes kept of a command's last output line.
const MAX_LINE: usize = 300;
/// Reads of a command's output after it exited (what it wrote is in the pipe).
const MAX_DRAIN_READS: usize = 64;
/// Bytes read of a pid file, a `/proc/PID/stat`, a `/proc/PID/cmdline`.
const MAX_SMALL_FILE: u64 = 4096;
/// Bytes read of a MySQL option file.
const MAX_OPTION_FILE: u64 = 64 * 1024;
/// Largest MySQL packet accepted (the protocol allows 16 MiB - 1 per packet).
const MYSQL_MAX_PACKET: usize = 1 << 20;
/// Columns, and rows, of a check query's result read before giving up.
const MYSQL_MAX_COLUMNS: u64 = 4096;
const MYSQL_MAX_ROWS: usize = 10_000;
/// Packets exchanged during authentication (switch, more data, OK).
const MYSQL_MAX_AUTH_ROUNDS: usize = 4;

/// Runs one check; `Err` carries a short, clear reason ("connect 127.0.0.1:3306: connection refused",
/// "HTTP 503 (expected 200)", "no process named mariadbd", "exit code 1: <last output line>",
/// "mysql: Access denied for user ...", "timed out after 2s"). Never panics, never blocks the
/// runtime thread (blocking /proc reads go through spawn_blocking; everything is bounded:
/// response sizes, line lengths, number of packets read).
pub async fn run(kind: &CheckKind, timeout: Duration) -> Result<(), String> {
    // Dropping the check's future at the timeout closes its sockets and
    // KILLs a command's process group (ExecGuard).
    match tokio::time::timeout(timeout, run_unbounded(kind)).await {
        Ok(r) => r,
        Err(_) => Err(format!(
            "timed out after {}",
            crate::config::format_duration(timeout)
        )),
    }
}

async fn run_unbounded(kind: &CheckKind) -> Result<(), String> {
    match kind {
        CheckKind::Tcp { host, port } => connect_tcp(host, *port).await.map(drop),
        CheckKind::Http { url, expect } => check_http(url, *expect).await,
        CheckKind::Process { pidfile, name } => {
            let (pidfile, name) = (pidfile.clone(), name.clone());
            blocking(move || check_process(pidfile.as_deref(), name.as_deref())).await?
        }
        CheckKind::Exec { command, user } => check_exec(command, user.as_deref()).await,
        CheckKind::Mysql { .. } => check_mysql(kind).await,
    }
}

/// Validates a kind at configuration time (url parses, port != 0, process has pidfile or name,
/// command not empty, mysql has socket or host...). The message names what is wrong.
pub fn validate(kind: &CheckKind) -> Result<(), String> {
    match kind {
        CheckKind::Tcp { host, port } => {
            if host.trim().is_empty() {
                return Err("host: empty".into());
            }
            if *port == 0 {
                return Err("port: must not be 0".into());
            }
        }
        CheckKind::Http { url, expect } => {
            parse_url(url).map_err(|e| format!("url: {e}"))?;
            if !(100..=599).contains(expect) {
                return Err(format!("expect: {expect} is not an HTTP status (100-599)"));
            }
        }
        CheckKind::Process { pidfile, name } => {
            if pidfile.is_none() && name.is_none() {
                return Err("process: needs a pidfile or a name (or both)".into());
            }
            if let Some(p) = pidfile {
                if !p.is_absolute() {
                    return Err(format!(
                        "pidfile: must be an absolute path: {}",
                        p.display()
                    ));
                }
            }
            if let Some(n) = name {
                if n.is_empty() || n.contains('\0') {
                    return Err("name: empty".into());
                }
            }
        }
        CheckKind::Exec { command, user } => {
            if command.trim().is_empty() {
                return Err("command: empty".into());
            }
            if command.contains('\0') {
                return Err("command: contains a NUL byte".into());
            }
            if let Some(u) = user {
                if u.is_empty() || u.contains(['\0', ':', '/']) {
                    return Err(format!("user: not a user name: {u:?}"));
                }
            }
        }
        CheckKind::Mysql {
            host,
            port,
            socket,
            user,
            option_file,
            query,
            ..
        } => {
            if host.is_none() && socket.is_none() && option_file.is_none() {
                return Err(
                    "mysql: needs a socket or a host (or an option_file that names one)".into(),
                );
            }
            if host.as_ref().is_some_and(|h| h.trim().is_empty()) {
                return Err("host: empty".into());
            }
            if *port == 0 {
                return Err("port: must not be 0".into());
            }
            for (key, p) in [("socket", socket), ("option_file", option_file)] {
                if let Some(p) = p {
                    if !p.is_absolute() {
                        return Err(format!("{key}: must be an absolute path: {}", p.display()));
                    }
                }
            }
            if user.as_ref().is_some_and(|u| u.contains('\0')) {
                return Err("user: contains a NUL byte".into());
            }
            if query.trim().is_empty() {
                return Err("query: empty".into());
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Shared helpers

/// An OS error as the C library words it, lower-cased: "connection refused".
fn io_reason(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => lower_first(nix::errno::Errno::from_raw(code).desc()),
        None => e.to_string(),
    }
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Text from a peer or a program, made safe for one log line and bounded.
fn printable(b: &[u8], max: usize) -> String {
    let s = String::from_utf8_lossy(b);
    let mut out: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(max)
        .collect();
    if s.chars().count() > max {
        out.push('…');
    }
    out.trim().to_string()
}

/// Runs `f` on the blocking pool.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, String> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| format!("internal error: {e}"))
}

/// Connects to the first address of `host` that accepts.
async fn connect_tcp(host: &str, port: u16) -> Result<TcpStream, String> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| format!("resolve {host}: {}", io_reason(&e)))?
        .take(MAX_ADDRS)
        .collect();
    let mut last = format!("resolve {host}: no address");
    for a in addrs {
        match TcpStream::connect(a).await {
            Ok(s) => return Ok(s),
            Err(e) => last = format!("connect {a}: {}", io_reason(&e)),
        }
    }
    Err(last)
}

// ---------------------------------------------------------------------------
// HTTP

/// The parts of an `http://` URL a GET needs.
#[derive(Debug, Clone, PartialEq, Eq)]
struct HttpTarget {
    /// As written, without IPv6 brackets.
    host: String,
    port: u16,
    /// Path and query, starting with `/`; the fragment is dropped.
    path: String,
}

impl HttpTarget {
    /// The Host header (RFC 9112 §3.2): the port only when not the default.
    fn host_header(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == 80 {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

fn parse_url(url: &str) -> Result<HttpTarget, String> {
    let rest = match url.get(..7) {
        Some(s) if s.eq_ignore_ascii_case("http://") => &url[7..],
        _ => return Err(format!("{url:?}: only http:// URLs are supported")),
    };
    let (authority, path) = match rest.find(['/', '?', '#']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let path = path.split('#').next().unwrap_or("");
    let path = match path {
        "" => "/".to_string(),
        p if p.starts_with('?') => format!("/{p}"),
        p => p.to_string(),
    };
    if path.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(format!(
            "{url:?}: the path has spaces or control characters"
        ));
    }
    if authority.contains('@') {
        return Err(format!("{url:?}: user information is not supported"));
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("{url:?}: no ']' after an IPv6 address"))?;
        match after {
            "" => (h, None),
            p => (
                h,
                Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| format!("{url:?}: junk after ']'"))?,
                ),
            ),
        }
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(format!("{url:?}: no host"));
    }
    if host.contains(':') && !authority.starts_with('[') {
        return Err(format!("{url:?}: write an IPv6 address in brackets"));
    }
    let port = match port {
        None | Some("") => 80,
        Some(p) => match p.parse::<u16>() {
            Ok(0) | Err(_) => return Err(format!("{url:?}: bad port {p:?}")),
            Ok(n) => n,
        },
    };
    Ok(HttpTarget {
        host: host.to_string(),
        port,
        path,
    })
}

/// The status code of a status line (RFC 9112 §4): `HTTP/1.1 200 OK`.
fn parse_status_line(line: &[u8]) -> Result<u16, String> {
    let bad = || format!("http: not an HTTP status line: {:?}", printable(line, 80));
    let rest = line.strip_prefix(b"HTTP/").ok_or_else(bad)?;
    let sp = rest.iter().position(|&b| b == b' ').ok_or_else(bad)?;
    let rest = &rest[sp + 1..];
    let code = rest.get(..3).ok_or_else(bad)?;
    if !code.iter().all(u8::is_ascii_digit) || !matches!(rest.get(3), None | Some(b' ' | b'\r')) {
        return Err(bad());
    }
    Ok(code.iter().fold(0u16, |n, &d| n * 10 + u16::from(d - b'0')))
}

async fn check_http(url: &str, expect: u16) -> Result<(), String> {
    let t = parse_url(url)?;
    let mut s = connect_tcp(&t.host, t.port).await?;
    let req = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: hbd-check\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        t.path,
        t.host_header()
    );
    s.write_all(req.as_bytes())
        .await
        .map_err(|e| format!("http: send: {}", io_reason(&e)))?;
    let mut buf = Vec::with_capacity(512);
    let line = loop {
        if let Some(i) = buf.iter().position(|&b| b == b'\n') {
            break &buf[..i];
        }
        if buf.len() >= HTTP_MAX_STATUS_LINE {
            return Err(format!(
                "http: no status line in the first {HTTP_MAX_STATUS_LINE} bytes"
            ));
        }
        let mut chunk = [0u8; 1024];
        let want = chunk.len().min(HTTP_MAX_STATUS_LINE - buf.len());
        match s.read(&mut chunk[..want]).await {
            Ok(0) => return Err("http: connection closed before a status line".into()),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => return Err(format!("http: read: {}", io_reason(&e))),
        }
    };
    let code = parse_status_line(line)?;
    if code == expect {
        Ok(())
    } else {
        Err(format!("HTTP {code} (expected {expect})"))
    }
}

// ---------------------------------------------------------------------------
// Processes, from /proc

/// What a check needs to know of one process.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ProcInfo {
    /// `/proc/PID/stat` field 2, without the parentheses (15 bytes at most).
    comm: String,
    /// `/proc/PID/stat` field 3: R, S, D, Z (zombie), X (dead)...
    state: char,
}

impl ProcInfo {
    fn alive(&self) -> bool {
        !matches!(self.state, 'Z' | 'X' | 'x')
    }
}

/// Parses `/proc/PID/stat`: `pid (comm) state ...`; comm may hold spaces and
/// parentheses, so it ends at the *last* `)` (proc(5)).
fn parse_stat(stat: &str) -> Option<ProcInfo> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?.to_string();
    let state = stat.get(close + 1..)?.trim_start().chars().next()?;
    Some(ProcInfo { comm, state })
}

fn read_bounded(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut v = Vec::new();
    std::fs::File::open(path)?.take(max).read_to_end(&mut v)?;
    Ok(v)
}

fn proc_info(pid: i32) -> Option<ProcInfo> {
    let stat = read_bounded(Path::new(&format!("/proc/{pid}/stat")), MAX_SMALL_FILE).ok()?;
    parse_stat(&String::from_utf8_lossy(&stat))
}

/// argv[0] of a process (empty for kernel threads and zombies).
fn proc_argv0(pid: i32) -> Vec<u8> {
    let cmd = read_bounded(Path::new(&format!("/proc/{pid}/cmdline")), MAX_SMALL_FILE)
        .unwrap_or_default();
    cmd.split(|&b| b == 0).next().unwrap_or_default().to_vec()
}

fn basename(b: &[u8]) -> &[u8] {
    b.rsplit(|&c| c == b'/').next().unwrap_or(b)
}

/// Whether a process is `name` as pidof(8) sees it: argv[0] or its basename,
/// the executable or its basename, or the command name (comm, which the kernel
/// cuts to 15 bytes). A name given as a path matches by its basename too.
fn name_matches(name: &str, comm: &str, argv0: &[u8], exe: Option<&Path>) -> bool {
    let name_b = name.as_bytes();
    let base = basename(name_b);
    if !argv0.is_empty() && (argv0 == name_b || basename(argv0) == base) {
        return true;
    }
    if let Some(exe) = exe {
        use std::os::unix::ffi::OsStrExt;
        let exe = exe.as_os_str().as_bytes();
        // A replaced executable reads "/usr/sbin/x (deleted)".
        let exe = exe.strip_suffix(b" (deleted)").unwrap_or(exe);
        if exe == name_b || basename(exe) == base {
            return true;
        }
    }
    base.len() <= 15 && comm.as_bytes() == base
}

/// Whether process `pid` (known to exist) is `name`; reads what it needs.
fn proc_is(pid: i32, info: &ProcInfo, name: &str) -> bool {
    let argv0 = proc_argv0(pid);
    name_matches(name, &info.comm, &argv0, None)
        || std::fs::read_link(format!("/proc/{pid}/exe"))
            .is_ok_and(|exe| name_matches(name, &info.comm, &argv0, Some(&exe)))
}

fn read_pidfile(path: &Path) -> Result<i32, String> {
    let text = read_bounded(path, MAX_SMALL_FILE)
        .map_err(|e| format!("pid file {}: {}", path.display(), io_reason(&e)))?;
    String::from_utf8_lossy(&text)
        .split_whitespace()
        .next()
        .and_then(|s| s.parse::<i32>().ok())
        .filter(|&p| p > 0)
        .ok_or_else(|| format!("pid file {}: no pid in it", path.display()))
}

fn check_process(pidfile: Option<&Path>, name: Option<&str>) -> Result<(), String> {
    if let Some(path) = pidfile {
        let pid = read_pidfile(path)?;
        let from = path.display();
        let info =
            proc_info(pid).ok_or_else(|| format!("pid {pid} (from {from}) is not running"))?;
        if !info.alive() {
            return Err(format!("pid {pid} (from {from}) is not running (zombie)"));
        }
        if let Some(name) = name {
            if !proc_is(pid, &info, name) {
                return Err(format!(
                    "pid {pid} (from {from}) is {}, not {name}",
                    info.comm
                ));
            }
        }
        return Ok(());
    }
    let Some(name) = name else {
        return Err("process: neither pidfile nor name".into());
    };
    let pids = crate::agents::other_pids().map_err(|e| format!("/proc: {}", io_reason(&e)))?;
    for pid in pids {
        if let Some(info) = proc_info(pid) {
            if info.alive() && proc_is(pid, &info, name) {
                return Ok(());
            }
        }
    }
    Err(format!("no process named {name}"))
}

// ---------------------------------------------------------------------------
// Commands

/// KILLs the command's process group when the check ends before the shell
/// exited (the timeout dropped the future). Once the shell exited, what is
/// left in its group is not the check's to kill.
struct ExecGuard(Option<Pid>);

impl Drop for ExecGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.0.take() {
            let _ = killpg(pgid, Signal::SIGKILL);
        }
    }
}

/// Keeps the last non-empty line of a stream, bounded.
#[derive(Default)]
struct LastLine {
    cur: Vec<u8>,
    cut: bool,
    last: Option<String>,
}

impl LastLine {
    fn push(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if b == b'\n' {
                self.end_line();
            } else if self.cur.len() < MAX_LINE {
                self.cur.push(b);
            } else {
                self.cut = true;
            }
        }
    }

    fn end_line(&mut self) {
        let line = printable(&self.cur, MAX_LINE);
        if !line.is_empty() {
            self.last = Some(if self.cut { line + "…" } else { line });
        }
        self.cur.clear();
        self.cut = false;
    }

    fn finish(mut self) -> Option<String> {
        self.end_line();
        self.last
    }
}

const EXEC_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

async fn check_exec(command: &str, user: Option<&str>) -> Result<(), String> {
    let account = match user {
        Some(u) => {
            let name = u.to_string();
            // NSS, off the loop (the blocking pool), within the check's timeout.
            let found = blocking(move || nix::unistd::User::from_name(&name))
                .await?
                .map_err(|e| format!("user {u}: {}", lower_first(e.desc())))?;
            Some(found.ok_or_else(|| format!("user {u}: no such user"))?)
        }
        None => None,
    };
    // stdout and stderr share one pipe, so the last line is the last written.
    let (rx, tx) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| format!("pipe: {}", lower_first(e.desc())))?;
    let tx2 = tx
        .try_clone()
        .map_err(|e| format!("pipe: {}", io_reason(&e)))?;
    let mut rx = tokio::net::unix::pipe::Receiver::from_owned_fd(rx)
        .map_err(|e| format!("pipe: {}", io_reason(&e)))?;
    let mut cmd = tokio::process::Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(command)
        .env_clear()
        .env("PATH", EXEC_PATH)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::from(tx))
        .stderr(std::process::Stdio::from(tx2))
        .process_group(0);
    if let Some(a) = &account {
        cmd.uid(a.uid.as_raw())
            .gid(a.gid.as_raw())
            .env("HOME", &a.dir)
            .env("USER", &a.name)
            .env("LOGNAME", &a.name)
            .current_dir("/");
    }
    let spawned = cmd.spawn();
    // The Command holds the pipe's write ends: only the child may keep them,
    // or the read end never sees EOF.
    drop(cmd);
    let mut child = spawned.map_err(|e| match user {
        Some(u) => format!("/bin/sh as {u}: {}", io_reason(&e)),
        None => format!("/bin/sh: {}", io_reason(&e)),
    })?;
    let mut guard = ExecGuard(child.id().map(|id| Pid::from_raw(id as i32)));
    let mut out = LastLine::default();
    let mut buf = [0u8; 4096];
    let mut open = true;
    let status = loop {
        tokio::select! {
            st = child.wait() => break st.map_err(|e| format!("wait: {}", io_reason(&e)))?,
            r = rx.read(&mut buf), if open => match r {
                Ok(0) | Err(_) => open = false,
                Ok(n) => out.push(&buf[..n]),
            },
        }
    };
    guard.0 = None;
    // What the shell wrote is in the pipe already; a background child that
    // still holds the pipe must not make the check wait.
    for _ in 0..MAX_DRAIN_READS {
        match rx.try_read(&mut buf) {
            Ok(n) if n > 0 => out.push(&buf[..n]),
            _ => break,
        }
    }
    if status.success() {
        return Ok(());
    }
    let what = match status.code() {
        Some(c) => format!("exit code {c}"),
        None => {
            use std::os::unix::process::ExitStatusExt;
            let sig = status.signal().unwrap_or(0);
            match Signal::try_from(sig) {
                Ok(s) => format!("killed by {}", s.as_str()),
                Err(_) => format!("killed by signal {sig}"),
            }
        }
    };
    Err(match out.finish() {
        Some(line) => format!("{what}: {line}"),
        None => what,
    })
}

// ---------------------------------------------------------------------------
// MySQL / MariaDB client protocol
//
// Sources: MySQL Source Code Documentation, "Client/Server Protocol"
// (dev.mysql.com/doc/dev/mysql-server/latest/PAGE_PROTOCOL.html):
// page_protocol_basic_packets (3-byte length, sequence id),
// page_protocol_connection_phase_packets_protocol_handshake_v10,
// ..._protocol_handshake_response (HandshakeResponse41),
// ..._protocol_auth_switch_request, page_protocol_connection_phase_authentication_methods
// (native password, caching_sha2_password), page_protocol_com_query_response;
// and the MariaDB Knowledge Base, "Connection" (mariadb.com/kb/en/connection/):
// the same handshake, where the last 4 reserved bytes carry MariaDB's extended
// capabilities unless the client sets CLIENT_MYSQL (= CLIENT_LONG_PASSWORD).

const CLIENT_LONG_PASSWORD: u32 = 1;
const CLIENT_LONG_FLAG: u32 = 1 << 2;
const CLIENT_PROTOCOL_41: u32 = 1 << 9;
const CLIENT_TRANSACTIONS: u32 = 1 << 13;
const CLIENT_SECURE_CONNECTION: u32 = 1 << 15;
const CLIENT_PLUGIN_AUTH: u32 = 1 << 19;
/// utf8_general_ci: every server since 4.1 has it.
const CHARSET_UTF8: u8 = 33;

const NATIVE_PASSWORD: &str = "mysql_native_password";
const CACHING_SHA2: &str = "caching_sha2_password";

/// Protocol::HandshakeV10, the parts a client needs.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Handshake {
    server_version: String,
    capabilities: u32,
    /// auth-plugin-data part 1 and 2, without the trailing NUL (20 bytes).
    scramble: Vec<u8>,
    /// Empty when the server does not speak CLIENT_PLUGIN_AUTH.
    plugin: String,
}

/// A cursor over one packet's payload; every read is bounds-checked.
struct Rd<'a> {
    b: &'a [u8],
}

impl<'a> Rd<'a> {
    fn u8(&mut self) -> Option<u8> {
        let (&v, rest) = self.b.split_first()?;
        self.b = rest;
        Some(v)
    }
    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.b.len() {
            return None;
        }
        let (v, rest) = self.b.split_at(n);
        self.b = rest;
        Some(v)
    }
    fn u16(&mut self) -> Option<u16> {
        self.bytes(2).map(|v| u16::from_le_bytes([v[0], v[1]]))
    }
    fn u32(&mut self) -> Option<u32> {
        self.bytes(4)
            .map(|v| u32::from_le_bytes([v[0], v[1], v[2], v[3]]))
    }
    /// string<NUL>; the rest of the packet when the NUL is missing (servers
    /// that end the packet with the plugin name).
    fn nul_str(&mut self) -> &'a [u8] {
        match self.b.iter().position(|&c| c == 0) {
            Some(i) => {
                let v = &self.b[..i];
                self.b = &self.b[i + 1..];
                v
            }
            None => std::mem::take(&mut self.b),
        }
    }
    /// int<lenenc> (page_protocol_basic_dt_integers).
    fn lenenc(&mut self) -> Option<u64> {
        match self.u8()? {
            v @ 0..=0xfa => Some(u64::from(v)),
            0xfc => self.u16().map(u64::from),
            0xfd => self
                .bytes(3)
                .map(|v| u64::from_le_bytes([v[0], v[1], v[2], 0, 0, 0, 0, 0])),
            0xfe => self.bytes(8).map(|v| {
                let mut a = [0u8; 8];
                a.copy_from_slice(v);
                u64::from_le_bytes(a)
            }),
            _ => None,
        }
    }
}

fn decode_handshake(p: &[u8]) -> Result<Handshake, String> {
    if p.first() == Some(&0xff) {
        // "Too many connections", "Host ... is not allowed to connect".
        return Err(decode_err(p));
    }
    let malformed = || "mysql: malformed handshake packet".to_string();
    let mut r = Rd { b: p };
    let version = r.u8().ok_or_else(malformed)?;
    if version != 10 {
        return Err(format!(
            "mysql: handshake protocol version {version} is not supported (need 10)"
        ));
    }
    let server_version = printable(r.nul_str(), 100);
    r.u32().ok_or_else(malformed)?; // thread id
    let part1 = r.bytes(8).ok_or_else(malformed)?;
    r.u8().ok_or_else(malformed)?; // filler
    let mut capabilities = u32::from(r.u16().ok_or_else(malformed)?);
    let mut scramble = part1.to_vec();
    let mut plugin = String::new();
    if !r.b.is_empty() {
        r.u8().ok_or_else(malformed)?; // character set
        r.u16().ok_or_else(malformed)?; // status flags
        capabilities |= u32::from(r.u16().ok_or_else(malformed)?) << 16;
        let auth_len = r.u8().ok_or_else(malformed)?;
        r.bytes(10).ok_or_else(malformed)?; // reserved (MariaDB: extended capabilities)
        if capabilities & CLIENT_SECURE_CONNECTION != 0 {
            let n = 13
                .max(usize::from(auth_len).saturating_sub(8))
                .min(r.b.len());
            let part2 = r.bytes(n).ok_or_else(malformed)?;
            let part2 = part2.strip_suffix(&[0]).unwrap_or(part2);
            scramble.extend_from_slice(part2);
        }
        if capabilities & CLIENT_PLUGIN_AUTH != 0 {
            plugin = printable(r.nul_str(), 64);
        }
    }
    if capabilities & CLIENT_PROTOCOL_41 == 0 || capabilities & CLIENT_SECURE_CONNECTION == 0 {
        return Err(format!(
            "mysql: server {server_version} is too old (no 4.1 protocol)"
        ));
    }
    Ok(Handshake {
        server_version,
        capabilities,
        scramble,
        plugin,
    })
}

/// ERR_Packet: 0xff, error code, `#` and SQL state (4.1 protocol), message.
fn decode_err(p: &[u8]) -> String {
    let mut r = Rd {
        b: p.get(1..).unwrap_or_default(),
    };
    let code = r.u16();
    if r.b.first() == Some(&b'#') {
        r.bytes(6);
    }
    let msg = printable(r.b, 300);
    match code {
        Some(code) => format!("mysql: {msg} (error {code})"),
        None => "mysql: malformed error packet".into(),
    }
}

/// EOF_Packet: 0xfe and at most 8 more bytes (a row may start with 0xfe too,
/// as the prefix of an 8-byte length, but is then longer).
fn is_eof(p: &[u8]) -> bool {
    p.first() == Some(&0xfe) && p.len() < 9
}

fn sha1(parts: &[&[u8]]) -> [u8; 20] {
    use sha1::Digest;
    let mut h = sha1::Sha1::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// mysql_native_password: SHA1(password) XOR SHA1(scramble + SHA1(SHA1(password))).
/// The server stores SHA1(SHA1(password)) (`PASSWORD()` without the `*`).
fn native_password(password: &[u8], scramble: &[u8]) -> [u8; 20] {
    let stage1 = sha1(&[password]);
    let stage2 = sha1(&[&stage1]);
    let mix = sha1(&[scramble, &stage2]);
    std::array::from_fn(|i| stage1[i] ^ mix[i])
}

/// caching_sha2_password fast path: SHA256(password) XOR
/// SHA256(SHA256(SHA256(password)) + nonce).
fn caching_sha2(password: &[u8], nonce: &[u8]) -> [u8; 32] {
    let stage1 = sha256(&[password]);
    let stage2 = sha256(&[&stage1]);
    let mix = sha256(&[&stage2, nonce]);
    std::array::from_fn(|i| stage1[i] ^ mix[i])
}

/// The auth response for `plugin` given its data (the scramble).
fn auth_response(
    plugin: &str,
    password: &[u8],
    data: &[u8],
    unix: bool,
) -> Result<Vec<u8>, String> {
    // The scramble of an auth switch ends with a NUL that is not part of it.
    let data = data.strip_suffix(&[0]).unwrap_or(data);
    match plugin {
        // An empty password is sent as an empty response, not a hash.
        NATIVE_PASSWORD | CACHING_SHA2 if password.is_empty() => Ok(Vec::new()),
        NATIVE_PASSWORD => Ok(native_password(password, data.get(..20).unwrap_or(data)).to_vec()),
        CACHING_SHA2 => Ok(caching_sha2(password, data.get(..20).unwrap_or(data)).to_vec()),
        // MariaDB's unix_socket (and MySQL's auth_socket): the server trusts
        // the peer credentials of the socket; the client sends nothing.
        "unix_socket" | "auth_socket" => Ok(Vec::new()),
        // The password in clear: only where it does not cross a network.
        "mysql_clear_password" if unix => {
            let mut v = password.to_vec();
            v.push(0);
            Ok(v)
        }
        other => Err(format!(
            "mysql: the server asks for authentication plugin {other:?}, which hbd does not support{}",
            if other == "mysql_clear_password" { " over TCP" } else { "" }
        )),
    }
}

/// Protocol::HandshakeResponse41 (no database, no connect attributes).
fn handshake_response(caps: u32, user: &str, auth: &[u8], plugin: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(64 + user.len());
    v.extend_from_slice(&caps.to_le_bytes());
    v.extend_from_slice(&(MYSQL_MAX_PACKET as u32).to_le_bytes());
    v.push(CHARSET_UTF8);
    v.extend_from_slice(&[0; 23]);
    v.extend_from_slice(user.as_bytes());
    v.push(0);
    // CLIENT_SECURE_CONNECTION: int<1> length, then the response. Every
    // response built here is at most 32 bytes, or a password for a socket.
    let auth = &auth[..auth.len().min(255)];
    v.push(auth.len() as u8);
    v.extend_from_slice(auth);
    if caps & CLIENT_PLUGIN_AUTH != 0 {
        v.extend_from_slice(plugin.as_bytes());
        v.push(0);
    }
    v
}

/// Packets with 3-byte lengths and sequence ids (page_protocol_basic_packets).
struct Conn<S> {
    s: S,
    /// The sequence id of the next packet, either way; 0 at each command.
    seq: u8,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    async fn read(&mut self) -> Result<Vec<u8>, String> {
        let eof = |e: std::io::Error| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                "mysql: the server closed the connection".to_string()
            } else {
                format!("mysql: read: {}", io_reason(&e))
            }
        };
        let mut h = [0u8; 4];
        self.s.read_exact(&mut h).await.map_err(eof)?;
        let len = usize::from(h[0]) | usize::from(h[1]) << 8 | usize::from(h[2]) << 16;
        if h[3] != self.seq {
            return Err(format!(
                "mysql: packet out of order (sequence id {}, expected {})",
                h[3], self.seq
            ));
        }
        // Also refuses 0xffffff, the first part of a split packet.
        if len > MYSQL_MAX_PACKET {
            return Err(format!(
                "mysql: a packet of {len} bytes is larger than the {MYSQL_MAX_PACKET} allowed"
            ));
        }
        self.seq = self.seq.wrapping_add(1);
        let mut p = vec![0; len];
        self.s.read_exact(&mut p).await.map_err(eof)?;
        Ok(p)
    }

    async fn write(&mut self, payload: &[u8]) -> Result<(), String> {
        let len = payload.len().min(0xff_ffff) as u32;
        let mut v = Vec::with_capacity(4 + payload.len());
        v.extend_from_slice(&len.to_le_bytes()[..3]);
        v.push(self.seq);
        v.extend_from_slice(&payload[..len as usize]);
        self.seq = self.seq.wrapping_add(1);
        self.s
            .write_all(&v)
            .await
            .map_err(|e| format!("mysql: send: {}", io_reason(&e)))
    }
}

/// Credentials and query of one session.
struct Login<'a> {
    user: &'a str,
    password: &'a [u8],
    query: &'a str,
    /// Over a unix socket: the password may go in clear if a plugin wants it.
    unix: bool,
}

/// Connection phase, then COM_QUERY and its whole response, then COM_QUIT.
async fn mysql_session<S: AsyncRead + AsyncWrite + Unpin>(
    s: S,
    login: &Login<'_>,
) -> Result<(), String> {
    let mut c = Conn { s, seq: 0 };
    let hs = decode_handshake(&c.read().await?)?;
    let caps = (CLIENT_LONG_PASSWORD
        | CLIENT_LONG_FLAG
        | CLIENT_PROTOCOL_41
        | CLIENT_TRANSACTIONS
        | CLIENT_SECURE_CONNECTION
        | CLIENT_PLUGIN_AUTH)
        & hs.capabilities;
    // Answer with the server's default plugin when we know it; otherwise
    // with native password, and the server switches us to the account's.
    let mut plugin = match hs.plugin.as_str() {
        NATIVE_PASSWORD | CACHING_SHA2 => hs.plugin.clone(),
        _ => NATIVE_PASSWORD.to_string(),
    };
    let auth = auth_response(&plugin, login.password, &hs.scramble, login.unix)?;
    c.write(&handshake_response(caps, login.user, &auth, &plugin))
        .await?;

    let mut authenticated = false;
    for _ in 0..MYSQL_MAX_AUTH_ROUNDS {
        let p = c.read().await?;
        match p.first() {
            Some(0x00) => {
                authenticated = true;
                break;
            }
            Some(0xff) => return Err(decode_err(&p)),
            // Protocol::AuthSwitchRequest: 0xfe, plugin name, plugin data.
            Some(0xfe) => {
                if p.len() == 1 {
                    return Err("mysql: the server asks for the pre-4.1 password scheme, which hbd does not support".into());
                }
                let mut r = Rd { b: &p[1..] };
                let name = printable(r.nul_str(), 64);
                tracing::debug!(from = %plugin, to = %name, "mysql auth switch");
                let resp = auth_response(&name, login.password, r.b, login.unix)?;
                c.write(&resp).await?;
                plugin = name;
            }
            // AuthMoreData of caching_sha2_password: 3 fast auth done (OK
            // follows), 4 full authentication wanted.
            Some(0x01) if plugin == CACHING_SHA2 => match p.get(1) {
                Some(3) => {}
                Some(4) if login.unix => {
                    let mut v = login.password.to_vec();
                    v.push(0);
                    c.write(&v).await?;
                }
                Some(4) => {
                    return Err("mysql: caching_sha2_password wants full authentication, which needs TLS or RSA (not supported by hbd): use the unix socket or a mysql_native_password account".into());
                }
                _ => return Err("mysql: unexpected caching_sha2_password data".into()),
            },
            _ => {
                return Err(format!(
                    "mysql: unexpected packet during authentication ({plugin})"
                ))
            }
        }
    }
    if !authenticated {
        return Err("mysql: authentication did not finish".into());
    }

    // COM_QUERY (page_protocol_com_query / com_query_response).
    c.seq = 0;
    let mut q = Vec::with_capacity(1 + login.query.len());
    q.push(0x03);
    q.extend_from_slice(login.query.as_bytes());
    c.write(&q).await?;
    read_query_response(&mut c).await?;
    c.seq = 0;
    let _ = c.write(&[0x01]).await; // COM_QUIT; the server just closes.
    Ok(())
}

/// OK, ERR, or a text result set: column count, column definitions, EOF,
/// rows, EOF (no CLIENT_DEPRECATE_EOF); an ERR may end the rows instead.
async fn read_query_response<S: AsyncRead + AsyncWrite + Unpin>(
    c: &mut Conn<S>,
) -> Result<(), String> {
    let first = c.read().await?;
    let columns = match first.first() {
        Some(0x00) => return Ok(()),
        Some(0xff) => return Err(decode_err(&first)),
        Some(0xfb) => {
            return Err("mysql: the query asks for a local file (LOAD DATA LOCAL): refused".into())
        }
        _ => Rd { b: &first }
            .lenenc()
            .filter(|&n| n > 0 && n <= MYSQL_MAX_COLUMNS)
            .ok_or("mysql: malformed query response")?,
    };
    for _ in 0..columns {
        let p = c.read().await?;
        if p.first() == Some(&0xff) {
            return Err(decode_err(&p));
        }
    }
    if !is_eof(&c.read().await?) {
        return Err("mysql: malformed result set (no EOF after the columns)".into());
    }
    for _ in 0..=MYSQL_MAX_ROWS {
        let p = c.read().await?;
        if is_eof(&p) {
            return Ok(());
        }
        if p.first() == Some(&0xff) {
            return Err(decode_err(&p));
        }
    }
    Err(format!(
        "mysql: the query returned more than {MYSQL_MAX_ROWS} rows"
    ))
}

/// The `[client]` options of a MySQL option file (my.cnf, debian.cnf).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct ClientOptions {
    user: Option<String>,
    password: Option<String>,
    host: Option<String>,
    port: Option<u16>,
    socket: Option<PathBuf>,
}

/// Reads the `[client]`, `[client-server]` and `[client-mariadb]` groups;
/// a later setting overrides an earlier one, as the mysql client does.
/// `!include` lines are ignored; quoted values may use `\` escapes.
fn parse_option_file(text: &str) -> Result<ClientOptions, String> {
    let mut o = ClientOptions::default();
    let mut in_client = false;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with(['#', ';', '!']) {
            continue;
        }
        if let Some(group) = line.strip_prefix('[') {
            let group = group
                .split(']')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase();
            in_client = matches!(
                group.as_str(),
                "client" | "client-server" | "client-mariadb"
            );
            continue;
        }
        if !in_client {
            continue;
        }
        let (key, value) = match line.split_once('=') {
            Some((k, v)) => (k.trim(), option_value(v.trim())),
            None => (line, String::new()),
        };
        let key = key.to_ascii_lowercase().replace('-', "_");
        match key.as_str() {
            "user" => o.user = Some(value),
            "password" => o.password = Some(value),
            "host" => o.host = Some(value),
            "socket" => o.socket = Some(PathBuf::from(value)),
            "port" => {
                o.port = Some(
                    value
                        .parse::<u16>()
                        .ok()
                        .filter(|&p| p != 0)
                        .ok_or_else(|| format!("line {}: port: not a port: {value:?}", i + 1))?,
                )
            }
            _ => {}
        }
    }
    Ok(o)
}

/// A value: quoted ('...' or "...", with escapes) or bare up to a ` #` comment.
fn option_value(v: &str) -> String {
    let mut chars = v.chars();
    match chars.next() {
        Some(q @ ('\'' | '"')) => {
            let mut out = String::new();
            while let Some(c) = chars.next() {
                match c {
                    c if c == q => break,
                    '\\' => match chars.next() {
                        Some('n') => out.push('\n'),
                        Some('t') => out.push('\t'),
                        Some('r') => out.push('\r'),
                        Some('b') => out.push('\u{8}'),
                        Some('s') => out.push(' '),
                        Some(o) => out.push(o),
                        None => out.push('\\'),
                    },
                    c => out.push(c),
                }
            }
            out
        }
        _ => {
            let end = v
                .char_indices()
                .find(|&(i, c)| c == '#' && i > 0 && v[..i].ends_with(char::is_whitespace))
                .map_or(v.len(), |(i, _)| i);
            v[..end].trim_end().to_string()
        }
    }
}

async fn check_mysql(kind: &CheckKind) -> Result<(), String> {
    let CheckKind::Mysql {
        host,
        port,
        socket,
        user,
        password,
        option_file,
        query,
    } = kind
    else {
        return Err("internal error: not a mysql check".into());
    };
    let file = option_file.clone();
    let (opts, me) = blocking(move || {
        let opts = match &file {
            Some(f) => {
                let text = read_bounded(f, MAX_OPTION_FILE)
                    .map_err(|e| format!("option file {}: {}", f.display(), io_reason(&e)))?;
                parse_option_file(&String::from_utf8_lossy(&text))
                    .map_err(|e| format!("option file {}: {e}", f.display()))?
            }
            None => ClientOptions::default(),
        };
        // NSS, off the loop: this closure runs on the blocking pool.
        let me = nix::unistd::User::from_uid(nix::unistd::geteuid())
            .ok()
            .flatten()
            .map(|u| u.name);
        Ok::<_, String>((opts, me))
    })
    .await??;
    let (host, port, socket) = if host.is_some() || socket.is_some() {
        (host.clone(), *port, socket.clone())
    } else {
        (opts.host, opts.port.unwrap_or(*port), opts.socket)
    };
    let user = user
        .clone()
        .or(opts.user)
        .or(me)
        .ok_or("mysql: no user (none configured, and hbd's own has no name)")?;
    let password = password.clone().or(opts.password).unwrap_or_default();
    let mut login = Login {
        user: &user,
        password: password.as_bytes(),
        query,
        unix: false,
    };
    if let Some(path) = socket {
        let s = tokio::net::UnixStream::connect(&path)
            .await
            .map_err(|e| format!("connect {}: {}", path.display(), io_reason(&e)))?;
        login.unix = true;
        mysql_session(s, &login).await
    } else if let Some(host) = host {
        let s = connect_tcp(&host, port).await?;
        mysql_session(s, &login).await
    } else {
        Err("mysql: no socket and no host (neither in the check nor in the option file)".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        assert_eq!(parse_status_line(b"HTTP/1.1 200 OK\r"), Ok(200));
        assert_eq!(parse_status_line(b"HTTP/1.0 404 Not Found"), Ok(404));
        assert_eq!(parse_status_line(b"HTTP/1.1 503"), Ok(503));
        assert_eq!(parse_status_line(b"HTTP/2 204 \r"), Ok(204));
        for bad in [
            &b""[..],
            b"HTTP/1.1",
            b"HTTP/1.1 20",
            b"HTTP/1.1 2000 OK",
            b"HTTP/1.1 OK 200",
            b"SSH-2.0-OpenSSH_9.2",
            b"http/1.1 200 OK",
        ] {
            assert!(parse_status_line(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn urls() {
        let t = parse_url("http://127.0.0.1:8080/health?x=1#frag").unwrap();
        assert_eq!(
            t,
            HttpTarget {
                host: "127.0.0.1".into(),
                port: 8080,
                path: "/health?x=1".into()
            }
        );
        assert_eq!(t.host_header(), "127.0.0.1:8080");
        let t = parse_url("HTTP://www.example.org").unwrap();
        assert_eq!((t.port, t.path.as_str()), (80, "/"));
        assert_eq!(t.host_header(), "www.example.org");
        let t = parse_url("http://[::1]:81/").unwrap();
        assert_eq!(
            (t.host.as_str(), t.host_header()),
            ("::1", "[::1]:81".into())
        );
        assert_eq!(parse_url("http://h?q").unwrap().path, "/?q");
        for bad in [
            "https://x/",
            "x/",
            "http:///path",
            "http://h:0/",
            "http://h:99999/",
            "http://h:x/",
            "http://u:p@h/",
            "http://::1/",
            "http://h/a b",
            "http://h/a\r\nX: y",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn validation_names_the_key() {
        let ok = |k: CheckKind| validate(&k).unwrap();
        let err = |k: CheckKind| validate(&k).unwrap_err();
        ok(CheckKind::Tcp {
            host: "db".into(),
            port: 3306,
        });
        assert!(err(CheckKind::Tcp {
            host: "db".into(),
            port: 0
        })
        .starts_with("port"));
        assert!(err(CheckKind::Http {
            url: "ftp://x".into(),
            expect: 200
        })
        .starts_with("url"));
        assert!(err(CheckKind::Http {
            url: "http://x".into(),
            expect: 42
        })
        .starts_with("expect"));
        assert!(err(CheckKind::Process {
            pidfile: None,
            name: None
        })
        .contains("pidfile or a name"));
        assert!(err(CheckKind::Process {
            pidfile: Some("run/x.pid".into()),
            name: None
        })
        .starts_with("pidfile"));
        assert!(err(CheckKind::Exec {
            command: "  ".into(),
            user: None
        })
        .starts_with("command"));
        let mysql = CheckKind::Mysql {
            host: None,
            port: 3306,
            socket: None,
            user: None,
            password: None,
            option_file: None,
            query: "SELECT 1".into(),
        };
        assert!(err(mysql.clone()).contains("socket or a host"));
        let with = |f: &dyn Fn(&mut CheckKind)| {
            let mut k = mysql.clone();
            f(&mut k);
            k
        };
        ok(with(&|k| {
            if let CheckKind::Mysql { socket, .. } = k {
                *socket = Some("/run/mysqld/mysqld.sock".into());
            }
        }));
        assert!(err(with(&|k| {
            if let CheckKind::Mysql { socket, query, .. } = k {
                *socket = Some("/s".into());
                query.clear();
            }
        }))
        .starts_with("query"));
        assert!(err(with(&|k| {
            if let CheckKind::Mysql { option_file, .. } = k {
                *option_file = Some("my.cnf".into());
            }
        }))
        .starts_with("option_file"));
    }

    #[test]
    fn proc_stat_and_names() {
        let p = parse_stat("1234 (my (weird) prog) S 1 1234 1234 0 -1 4194560").unwrap();
        assert_eq!(p.comm, "my (weird) prog");
        assert_eq!(p.state, 'S');
        assert!(p.alive());
        assert!(!parse_stat("9 (x) Z 1 9").unwrap().alive());
        assert!(!parse_stat("9 (x) X 1 9").unwrap().alive());
        assert!(parse_stat("9 x").is_none());
        assert!(parse_stat("9 (x)").is_none());

        let exe = Path::new("/usr/sbin/mariadbd");
        assert!(name_matches(
            "mariadbd",
            "mariadbd",
            b"/usr/sbin/mariadbd",
            Some(exe)
        ));
        assert!(name_matches(
            "mariadbd",
            "mysqld",
            b"/usr/sbin/mariadbd",
            None
        ));
        assert!(name_matches(
            "/usr/sbin/mariadbd",
            "x",
            b"/usr/sbin/mariadbd",
            None
        ));
        assert!(name_matches("mariadbd", "x", b"", Some(exe)));
        assert!(name_matches(
            "mariadbd",
            "x",
            b"",
            Some(Path::new("/usr/sbin/mariadbd (deleted)"))
        ));
        // comm is enough (kernel threads, programs that rewrite argv).
        assert!(name_matches("kworker", "kworker", b"", None));
        assert!(!name_matches(
            "mysqld",
            "mariadbd",
            b"/usr/sbin/mariadbd",
            Some(exe)
        ));
        // A script run by its interpreter is the interpreter (pidof without -x).
        assert!(!name_matches("monitor.py", "python3", b"python3", None));
        // comm is cut to 15 bytes: a longer name never matches it alone.
        assert!(!name_matches(
            "a-very-long-program",
            "a-very-long-pro",
            b"",
            None
        ));
        assert!(name_matches(
            "a-very-long-program",
            "a-very-long-pro",
            b"./a-very-long-program",
            None
        ));
    }

    #[test]
    fn last_line_is_bounded() {
        let mut l = LastLine::default();
        l.push(b"first\nsecond\n\n  ");
        assert_eq!(l.finish().as_deref(), Some("second"));
        let mut l = LastLine::default();
        l.push(b"no newline");
        assert_eq!(l.finish().as_deref(), Some("no newline"));
        let mut l = LastLine::default();
        l.push(&vec![b'x'; 10_000]);
        let s = l.finish().unwrap();
        assert_eq!(s.chars().count(), MAX_LINE + 1);
        assert!(s.ends_with('…'));
        assert_eq!(LastLine::default().finish(), None);
    }

    #[test]
    fn option_files() {
        let text = "\
# Automatically generated for Debian scripts. DO NOT TOUCH!
[mysqld]
user = mysql
port = 1

[client]
host     = localhost
user     = debian-sys-maint
password = \"p#ss w\\\"rd\"
socket   = /run/mysqld/mysqld.sock
!includedir /etc/mysql/conf.d/
[client-mariadb]
port = 3307  # a comment
[mysql_upgrade]
user = nobody
";
        assert_eq!(
            parse_option_file(text).unwrap(),
            ClientOptions {
                user: Some("debian-sys-maint".into()),
                password: Some("p#ss w\"rd".into()),
                host: Some("localhost".into()),
                port: Some(3307),
                socket: Some("/run/mysqld/mysqld.sock".into()),
            }
        );
        assert_eq!(option_value("'a\\tb' tail"), "a\tb");
        assert_eq!(option_value("pa#ss"), "pa#ss");
        assert_eq!(option_value(""), "");
        let e = parse_option_file("[client]\nport=http\n").unwrap_err();
        assert!(e.starts_with("line 2: port"), "{e}");
        assert_eq!(
            parse_option_file("user=x\n").unwrap(),
            ClientOptions::default()
        );
    }

    /// `SELECT PASSWORD('secret')` is `*14E65567ABDB5135D0CFD9A70B3032C179A49EE7`
    /// on every MySQL/MariaDB: the server's check must accept our response.
    #[test]
    fn native_password_scramble_passes_the_servers_check() {
        let stored: [u8; 20] = [
            0x14, 0xe6, 0x55, 0x67, 0xab, 0xdb, 0x51, 0x35, 0xd0, 0xcf, 0xd9, 0xa7, 0x0b, 0x30,
            0x32, 0xc1, 0x79, 0xa4, 0x9e, 0xe7,
        ];
        let scramble = b"0123456789abcdefghij";
        let resp = native_password(b"secret", scramble);
        // Server side (check_scramble): SHA1(resp XOR SHA1(scramble + stored)) == stored.
        let mix = sha1(&[scramble, &stored]);
        let stage1: [u8; 20] = std::array::from_fn(|i| resp[i] ^ mix[i]);
        assert_eq!(sha1(&[&stage1]), stored);
        // Golden bytes, so a change of the formula cannot pass unnoticed.
        assert_eq!(
            resp,
            [
                0xf5, 0xca, 0xc3, 0xf3, 0xb3, 0xdf, 0x21, 0x33, 0xfe, 0xb5, 0x7d, 0xb6, 0x82, 0xc7,
                0x1e, 0x6e, 0xd4, 0x33, 0xa9, 0x88
            ]
        );
        assert_eq!(
            auth_response(NATIVE_PASSWORD, b"", scramble, false),
            Ok(vec![])
        );
        // The trailing NUL of an auth switch's data is not part of the scramble.
        let mut with_nul = scramble.to_vec();
        with_nul.push(0);
        assert_eq!(
            auth_response(NATIVE_PASSWORD, b"secret", &with_nul, false).unwrap(),
            resp.to_vec()
        );
    }

    #[test]
    fn caching_sha2_scramble_unmasks_to_the_password_hash() {
        let nonce = b"abcdefghij0123456789";
        let resp = caching_sha2(b"secret", nonce);
        let stage2 = sha256(&[&sha256(&[b"secret"])]);
        let mix = sha256(&[&stage2, nonce]);
        let stage1: [u8; 32] = std::array::from_fn(|i| resp[i] ^ mix[i]);
        assert_eq!(stage1, sha256(&[b"secret"]));
    }

    /// A MariaDB 10.11 initial handshake, as captured (scramble replaced).
    fn mariadb_handshake() -> Vec<u8> {
        let mut p = vec![10];
        p.extend_from_slice(b"5.5.5-10.11.6-MariaDB-0+deb12u1\0");
        p.extend_from_slice(&7u32.to_le_bytes());
        p.extend_from_slice(b"ABCDEFGH");
        p.push(0);
        p.extend_from_slice(&0xf7feu16.to_le_bytes());
        p.push(45);
        p.extend_from_slice(&2u16.to_le_bytes());
        p.extend_from_slice(&0x81ffu16.to_le_bytes());
        p.push(21);
        p.extend_from_slice(&[0; 6]);
        p.extend_from_slice(&[0x1d, 0, 0, 0]);
        p.extend_from_slice(b"IJKLMNOPQRST\0");
        p.extend_from_slice(b"mysql_native_password\0");
        p
    }

    #[test]
    fn handshake_v10() {
        let hs = decode_handshake(&mariadb_handshake()).unwrap();
        assert_eq!(hs.server_version, "5.5.5-10.11.6-MariaDB-0+deb12u1");
        assert_eq!(hs.scramble, b"ABCDEFGHIJKLMNOPQRST");
        assert_eq!(hs.plugin, NATIVE_PASSWORD);
        assert_eq!(hs.capabilities, 0x81ff_f7fe);
        // Cut anywhere: an error, never a panic.
        let full = mariadb_handshake();
        for n in 0..full.len() {
            let _ = decode_handshake(&full[..n]);
        }
        let mut v9 = full.clone();
        v9[0] = 9;
        assert!(decode_handshake(&v9).unwrap_err().contains("version 9"));
        // An ERR instead of a handshake (no SQL state before authentication).
        let mut err = vec![0xff];
        err.extend_from_slice(&1040u16.to_le_bytes());
        err.extend_from_slice(b"Too many connections");
        assert_eq!(
            decode_handshake(&err).unwrap_err(),
            "mysql: Too many connections (error 1040)"
        );
    }

    #[test]
    fn handshake_response_41_layout() {
        let caps = CLIENT_PROTOCOL_41 | CLIENT_SECURE_CONNECTION | CLIENT_PLUGIN_AUTH;
        let v = handshake_response(caps, "mon", &[1, 2, 3], NATIVE_PASSWORD);
        let mut want = caps.to_le_bytes().to_vec();
        want.extend_from_slice(&(1u32 << 20).to_le_bytes());
        want.push(33);
        want.extend_from_slice(&[0; 23]);
        want.extend_from_slice(b"mon\0");
        want.extend_from_slice(&[3, 1, 2, 3]);
        want.extend_from_slice(b"mysql_native_password\0");
        assert_eq!(v, want);
    }

    #[test]
    fn err_and_eof_packets() {
        let mut p = vec![0xff];
        p.extend_from_slice(&1045u16.to_le_bytes());
        p.extend_from_slice(
            b"#28000Access denied for user 'mon'@'localhost' (using password: YES)",
        );
        assert_eq!(
            decode_err(&p),
            "mysql: Access denied for user 'mon'@'localhost' (using password: YES) (error 1045)"
        );
        assert_eq!(decode_err(&[0xff]), "mysql: malformed error packet");
        assert!(is_eof(&[0xfe, 0, 0, 2, 0]));
        assert!(!is_eof(&[0xfe, 1, 2, 3, 4, 5, 6, 7, 8]));
        assert!(!is_eof(&[0x01]));
        assert_eq!(
            Rd {
                b: &[0xfc, 0x10, 0x27]
            }
            .lenenc(),
            Some(10_000)
        );
        assert_eq!(
            Rd {
                b: &[0xfd, 1, 0, 0]
            }
            .lenenc(),
            Some(1)
        );
        assert_eq!(Rd { b: &[0xfb] }.lenenc(), None);
        assert_eq!(Rd { b: &[0xfe, 1] }.lenenc(), None);
    }

    /// A scripted server on the other end of an in-memory pipe: reads the
    /// client's packets and sends canned ones, checking sequence ids.
    struct FakeServer {
        s: tokio::io::DuplexStream,
    }

    impl FakeServer {
        async fn send(&mut self, seq: u8, p: &[u8]) {
            let mut v = (p.len() as u32).to_le_bytes()[..3].to_vec();
            v.push(seq);
            v.extend_from_slice(p);
            self.s.write_all(&v).await.unwrap();
        }
        async fn recv(&mut self, seq: u8) -> Vec<u8> {
            let mut h = [0u8; 4];
            self.s.read_exact(&mut h).await.unwrap();
            assert_eq!(h[3], seq, "client sequence id");
            let mut p = vec![0; u32::from_le_bytes([h[0], h[1], h[2], 0]) as usize];
            self.s.read_exact(&mut p).await.unwrap();
            p
        }
        /// Column count 1, one column definition, EOF, one row "1", EOF.
        async fn select_1(&mut self) {
            assert_eq!(self.recv(0).await, b"\x03SELECT 1");
            self.send(1, &[1]).await;
            self.send(
                2,
                b"\x03def\0\0\0\x011\0\x0c\x3f\0\x01\0\0\0\x08\x81\0\0\0\0",
            )
            .await;
            self.send(3, &[0xfe, 0, 0, 2, 0]).await;
            self.send(4, b"\x011").await;
            self.send(5, &[0xfe, 0, 0, 2, 0]).await;
            assert_eq!(self.recv(0).await, [0x01]);
        }
    }

    const OK: &[u8] = &[0, 0, 0, 2, 0, 0, 0];

    async fn session(
        login: Login<'static>,
        server: impl FnOnce(FakeServer) -> futures::future::BoxFuture<'static, ()>,
    ) -> Result<(), String> {
        let (client, srv) = tokio::io::duplex(4096);
        let srv = tokio::spawn(server(FakeServer { s: srv }));
        let r = mysql_session(client, &login).await;
        srv.await.unwrap();
        r
    }

    fn login(user: &'static str, password: &'static [u8], unix: bool) -> Login<'static> {
        Login {
            user,
            password,
            query: "SELECT 1",
            unix,
        }
    }

    #[tokio::test]
    async fn native_password_login_and_select() {
        let r = session(login("mon", b"secret", false), |mut s| {
            Box::pin(async move {
                s.send(0, &mariadb_handshake()).await;
                let resp = s.recv(1).await;
                let scramble = native_password(b"secret", b"ABCDEFGHIJKLMNOPQRST");
                let mut want = b"mon\0\x14".to_vec();
                want.extend_from_slice(&scramble);
                want.extend_from_slice(b"mysql_native_password\0");
                assert_eq!(&resp[32..], &want[..]);
                s.send(2, OK).await;
                s.select_1().await;
            })
        })
        .await;
        assert_eq!(r, Ok(()));
    }

    #[tokio::test]
    async fn auth_switch_to_unix_socket_sends_an_empty_response() {
        let r = session(login("root", b"", true), |mut s| {
            Box::pin(async move {
                s.send(0, &mariadb_handshake()).await;
                let resp = s.recv(1).await;
                assert!(resp[32..].starts_with(b"root\0\0"));
                s.send(2, b"\xfeunix_socket\0").await;
                assert_eq!(s.recv(3).await, b"");
                s.send(4, OK).await;
                s.select_1().await;
            })
        })
        .await;
        assert_eq!(r, Ok(()));
    }

    #[tokio::test]
    async fn auth_switch_to_native_password_uses_the_new_scramble() {
        let r = session(login("mon", b"secret", false), |mut s| {
            Box::pin(async move {
                let mut hs = mariadb_handshake();
                let n = hs.len();
                hs.truncate(n - NATIVE_PASSWORD.len() - 1);
                hs.extend_from_slice(b"client_ed25519\0");
                s.send(0, &hs).await;
                s.recv(1).await;
                s.send(2, b"\xfemysql_native_password\0zyxwvutsrqponmlkjihg\0")
                    .await;
                assert_eq!(
                    s.recv(3).await,
                    native_password(b"secret", b"zyxwvutsrqponmlkjihg")
                );
                let mut err = vec![0xff];
                err.extend_from_slice(&1045u16.to_le_bytes());
                err.extend_from_slice(b"#28000Access denied for user 'mon'@'localhost'");
                s.send(4, &err).await;
            })
        })
        .await;
        assert_eq!(
            r,
            Err("mysql: Access denied for user 'mon'@'localhost' (error 1045)".into())
        );
    }

    #[tokio::test]
    async fn unsupported_plugin_and_bad_sequence_are_clear_errors() {
        let r = session(login("mon", b"x", false), |mut s| {
            Box::pin(async move {
                s.send(0, &mariadb_handshake()).await;
                s.recv(1).await;
                s.send(2, b"\xfeclient_ed25519\0nonce").await;
            })
        })
        .await;
        assert!(r.unwrap_err().contains("\"client_ed25519\""));
        let r = session(login("mon", b"x", false), |mut s| {
            Box::pin(async move {
                s.send(0, &mariadb_handshake()).await;
                s.recv(1).await;
                s.send(7, OK).await;
            })
        })
        .await;
        assert!(r.unwrap_err().contains("out of order"));
        let r = session(login("mon", b"x", false), |mut s| {
            Box::pin(async move {
                s.send(0, &mariadb_handshake()).await;
                s.recv(1).await;
                // A 16 MiB packet header: refused before allocating.
                s.s.write_all(&[0xff, 0xff, 0xff, 2]).await.unwrap();
            })
        })
        .await;
        assert!(r.unwrap_err().contains("larger than"));
    }

    #[tokio::test]
    async fn query_error_is_reported() {
        let r = session(login("mon", b"", false), |mut s| {
            Box::pin(async move {
                s.send(0, &mariadb_handshake()).await;
                s.recv(1).await;
                s.send(2, OK).await;
                s.recv(0).await;
                let mut err = vec![0xff];
                err.extend_from_slice(&1146u16.to_le_bytes());
                err.extend_from_slice(b"#42S02Table 'x.y' doesn't exist");
                s.send(1, &err).await;
            })
        })
        .await;
        assert_eq!(
            r,
            Err("mysql: Table 'x.y' doesn't exist (error 1146)".into())
        );
    }

    proptest::proptest! {
        #[test]
        fn garbage_never_panics(p in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let _ = decode_handshake(&p);
            let _ = decode_err(&p);
            let _ = parse_status_line(&p);
            let _ = Rd { b: &p }.lenenc();
            let _ = parse_stat(&String::from_utf8_lossy(&p));
            let _ = parse_option_file(&String::from_utf8_lossy(&p));
        }
    }
}
