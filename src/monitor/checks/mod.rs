//! Service checks of the built-in mon: the monitors of mon.cf and keepalived's
//! `vrrp_script`, each answering "is the service up?" within a timeout.
//!
//! | kind      | up when                                                              |
//! |-----------|----------------------------------------------------------------------|
//! | `tcp`     | a TCP connect to host:port succeeds                                  |
//! | `http`    | an HTTP/1.1 GET (https: over TLS) answers with the expected status   |
//! | `process` | a pid file names a live process and/or a process has the name (pidof)|
//! | `exec`    | `/bin/sh -c command` exits 0 (vrrp_script, mon's `*.monitor`)        |
//! | `mysql`   | MySQL/MariaDB authenticates and answers a trivial query              |
//!
//! [`run`] never panics and is bounded everywhere: the timeout covers the whole
//! check (a command is killed with its process group when it runs out), reads
//! are capped in size and in number of packets, and `/proc` and file reads run
//! on the blocking pool. Failures are [`CheckError`]s, whose messages are
//! short reasons meant for one log line.
//!
//! One file per kind: `http.rs` and `mysql.rs` (clients written here, small
//! on purpose: a check only needs a status line, or a handshake, an
//! authentication and one result), `process.rs`, `exec.rs`; `tcp` is
//! [`connect_tcp`] below; `tls.rs` the TLS of `https://` URLs (rustls).
//! This file holds the kinds, [`run`], [`validate`] and the helpers they
//! share; `error.rs` the errors; `tests.rs` the unit tests.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

mod error;
mod exec;
mod http;
mod mysql;
mod process;
#[cfg(test)]
mod tests;
mod tls;

use exec::*;
use http::*;
use mysql::*;
use process::*;

pub use error::{CheckError, MysqlError, OptionFileError};
pub use tls::HttpTls;

/// One check's target, as configured (cluster.toml `[[check]]`, parsed elsewhere).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckKind {
    /// TCP connect to host:port succeeds.
    Tcp { host: String, port: u16 },
    /// HTTP/1.1 GET of `url` (http:// or https://; host, port, path) answers with status
    /// `expect`; `tls`: how an https:// server is trusted.
    Http {
        url: String,
        expect: u16,
        tls: HttpTls,
    },
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

/// Runs one check; `Err` says why, in a short, clear reason ("connect 127.0.0.1:3306: connection refused",
/// "HTTP 503 (expected 200)", "no process named mariadbd", "exit code 1: <last output line>",
/// "mysql: Access denied for user ...", "timed out after 2s"). Never panics, never blocks the
/// runtime thread (blocking /proc reads go through spawn_blocking; everything is bounded:
/// response sizes, line lengths, number of packets read).
pub async fn run(kind: &CheckKind, timeout: Duration) -> Result<(), CheckError> {
    // Dropping the check's future at the timeout closes its sockets and
    // KILLs a command's process group (`process::run`).
    match tokio::time::timeout(timeout, run_unbounded(kind, timeout)).await {
        Ok(r) => r,
        Err(_) => Err(CheckError::TimedOut { timeout }),
    }
}

async fn run_unbounded(kind: &CheckKind, timeout: Duration) -> Result<(), CheckError> {
    match kind {
        CheckKind::Tcp { host, port } => connect_tcp(host, *port).await.map(drop),
        CheckKind::Http { url, expect, tls } => check_http(url, *expect, tls).await,
        CheckKind::Process { pidfile, name } => {
            let (pidfile, name) = (pidfile.clone(), name.clone());
            blocking(move || check_process(pidfile.as_deref(), name.as_deref())).await?
        }
        CheckKind::Exec { command, user } => check_exec(command, user.as_deref(), timeout).await,
        CheckKind::Mysql { .. } => check_mysql(kind).await,
    }
}

/// Validates a kind at configuration time (url parses, port != 0, process has pidfile or name,
/// command not empty, mysql has socket or host...): a [`CheckError::Invalid`]
/// naming the key that is wrong.
pub fn validate(kind: &CheckKind) -> Result<(), CheckError> {
    use CheckError as E;
    match kind {
        CheckKind::Tcp { host, port } => {
            if host.trim().is_empty() {
                return Err(E::invalid("host", "empty"));
            }
            if *port == 0 {
                return Err(E::invalid("port", "must not be 0"));
            }
        }
        CheckKind::Http { url, expect, tls } => {
            let t = parse_url(url).map_err(|e| E::invalid("url", e.to_string()))?;
            if !t.tls && (tls.ca_file.is_some() || tls.insecure_skip_verify) {
                return Err(E::invalid(
                    "url",
                    "ca_file and insecure_skip_verify are for https:// URLs",
                ));
            }
            if tls.ca_file.is_some() && tls.insecure_skip_verify {
                return Err(E::invalid(
                    "insecure_skip_verify",
                    "verifies nothing, so a ca_file is of no use: choose one",
                ));
            }
            if let Some(p) = &tls.ca_file {
                if !p.is_absolute() {
                    return Err(E::invalid(
                        "ca_file",
                        format!("must be an absolute path: {}", p.display()),
                    ));
                }
                tls::load_ca_file(p).map_err(|e| match e {
                    E::TlsConfig(m) => E::invalid("ca_file", m),
                    e => E::invalid("ca_file", e.to_string()),
                })?;
            }
            if !(100..=599).contains(expect) {
                return Err(E::invalid(
                    "expect",
                    format!("{expect} is not an HTTP status (100-599)"),
                ));
            }
        }
        CheckKind::Process { pidfile, name } => {
            if pidfile.is_none() && name.is_none() {
                return Err(E::invalid("process", "needs a pidfile or a name (or both)"));
            }
            if let Some(p) = pidfile {
                if !p.is_absolute() {
                    return Err(E::invalid(
                        "pidfile",
                        format!("must be an absolute path: {}", p.display()),
                    ));
                }
            }
            if let Some(n) = name {
                if n.is_empty() || n.contains('\0') {
                    return Err(E::invalid("name", "empty"));
                }
            }
        }
        CheckKind::Exec { command, user } => {
            if command.trim().is_empty() {
                return Err(E::invalid("command", "empty"));
            }
            if command.contains('\0') {
                return Err(E::invalid("command", "contains a NUL byte"));
            }
            if let Some(u) = user {
                if u.is_empty() || u.contains(['\0', ':', '/']) {
                    return Err(E::invalid("user", format!("not a user name: {u:?}")));
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
                return Err(E::invalid(
                    "mysql",
                    "needs a socket or a host (or an option_file that names one)",
                ));
            }
            if host.as_ref().is_some_and(|h| h.trim().is_empty()) {
                return Err(E::invalid("host", "empty"));
            }
            if *port == 0 {
                return Err(E::invalid("port", "must not be 0"));
            }
            for (key, p) in [("socket", socket), ("option_file", option_file)] {
                if let Some(p) = p {
                    if !p.is_absolute() {
                        return Err(E::invalid(
                            key,
                            format!("must be an absolute path: {}", p.display()),
                        ));
                    }
                }
            }
            if user.as_ref().is_some_and(|u| u.contains('\0')) {
                return Err(E::invalid("user", "contains a NUL byte"));
            }
            if query.trim().is_empty() {
                return Err(E::invalid("query", "empty"));
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
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, CheckError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| CheckError::Internal(e.to_string()))
}

/// Connects to the first address of `host` that accepts.
async fn connect_tcp(host: &str, port: u16) -> Result<TcpStream, CheckError> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|source| CheckError::Resolve {
            host: host.to_string(),
            source,
        })?
        .take(MAX_ADDRS)
        .collect();
    let mut last = CheckError::NoAddress {
        host: host.to_string(),
    };
    for a in addrs {
        match TcpStream::connect(a).await {
            Ok(s) => return Ok(s),
            Err(source) => {
                last = CheckError::Connect {
                    target: a.to_string(),
                    source,
                }
            }
        }
    }
    Err(last)
}
