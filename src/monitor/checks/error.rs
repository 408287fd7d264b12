//! Why a check failed: [`CheckError`], and [`MysqlError`] for the MySQL
//! client. Each message is one short log line (`hbctl status` shows the last
//! one); OS errors are worded as the C library does, lower-cased
//! ("connection refused"), and the `io::Error` is kept as the source.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::Signal;

use super::{io_reason, lower_first, HTTP_MAX_STATUS_LINE, MYSQL_MAX_PACKET, MYSQL_MAX_ROWS};
use crate::process::{LookupError, RunError};

/// Why a check run (or a check's configuration) is not good.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    // Reaching the service.
    /// The host name did not resolve.
    #[error("resolve {host}: {}", io_reason(source))]
    Resolve { host: String, source: io::Error },
    /// The host name resolved to no address.
    #[error("resolve {host}: no address")]
    NoAddress { host: String },
    /// No address (or unix socket) accepted: refused, unreachable...
    /// `target` is `address:port` or the socket's path.
    #[error("connect {target}: {}", io_reason(source))]
    Connect { target: String, source: io::Error },
    /// The whole check did not finish within its timeout (a command is
    /// killed with its process group).
    #[error("timed out after {}", crate::config::format_duration(*timeout))]
    TimedOut { timeout: Duration },

    // http
    /// Sending the request or reading the answer failed (`op`: "send", "read").
    #[error("http: {op}: {}", io_reason(source))]
    HttpIo { op: &'static str, source: io::Error },
    /// The server closed the connection before a whole status line.
    #[error("http: connection closed before a status line")]
    HttpClosed,
    /// No line end in the first bytes of the answer.
    #[error("http: no status line in the first {HTTP_MAX_STATUS_LINE} bytes")]
    HttpNoStatusLine,
    /// The answer does not start with an HTTP status line (shown printable, cut).
    #[error("http: not an HTTP status line: {0:?}")]
    HttpBadStatusLine(String),
    /// The service said no: a status other than the expected one.
    #[error("HTTP {code} (expected {expect})")]
    HttpStatus { code: u16, expect: u16 },
    /// The TLS handshake of an `https://` check failed (a certificate not
    /// trusted, another name, no common protocol...).
    #[error("https: TLS handshake: {}", io_reason(source))]
    TlsHandshake { source: io::Error },
    /// The check's TLS settings cannot be used (a `ca_file` that cannot be
    /// read or holds no certificate, no system CAs).
    #[error("https: {0}")]
    TlsConfig(String),

    // mysql
    #[error(transparent)]
    Mysql(#[from] MysqlError),

    // process
    /// The pid file cannot be read.
    #[error("pid file {}: {}", path.display(), io_reason(source))]
    PidFile { path: PathBuf, source: io::Error },
    /// The pid file holds no pid.
    #[error("pid file {}: no pid in it", path.display())]
    NoPid { path: PathBuf },
    /// The pid file's process does not exist.
    #[error("pid {pid} (from {}) is not running", pidfile.display())]
    NotRunning { pid: i32, pidfile: PathBuf },
    /// The pid file's process is a zombie (or dead).
    #[error("pid {pid} (from {}) is not running (zombie)", pidfile.display())]
    Zombie { pid: i32, pidfile: PathBuf },
    /// The pid file's process is another program (a reused pid).
    #[error("pid {pid} (from {}) is {comm}, not {name}", pidfile.display())]
    OtherProcess {
        pid: i32,
        pidfile: PathBuf,
        comm: String,
        name: String,
    },
    /// No live process has the name.
    #[error("no process named {name}")]
    NoProcess { name: String },
    /// `/proc` cannot be listed.
    #[error("/proc: {}", io_reason(.0))]
    Proc(#[source] io::Error),

    // exec
    /// The account to run the command as does not exist.
    #[error("user {user}: no such user")]
    NoSuchUser { user: String },
    /// Looking the account up failed (NSS).
    #[error("user {user}: {}", lower_first(errno.desc()))]
    UserLookup { user: String, errno: Errno },
    /// The lookup did not answer (stalled NSS, no thread).
    #[error(transparent)]
    Lookup(#[from] LookupError),
    /// `/bin/sh` could not be started (as `user`).
    #[error("/bin/sh{}: {}", user.as_ref().map(|u| format!(" as {u}")).unwrap_or_default(), io_reason(source))]
    Shell {
        user: Option<String>,
        source: io::Error,
    },
    /// The command did not run to its end for another reason.
    #[error(transparent)]
    Run(#[from] RunError),
    /// The command exited with a code other than 0; `output` is its last
    /// line (printable, cut), if it wrote one.
    #[error("exit code {code}{}", colon(output))]
    Exit { code: i32, output: Option<String> },
    /// The command was killed by a signal (not by hbd's timeout).
    #[error("killed by {}{}", signal_name(*signal), colon(output))]
    Killed { signal: i32, output: Option<String> },

    // configuration ([`validate`](super::validate))
    /// The check's configuration key `key` is wrong.
    #[error("{key}: {reason}")]
    Invalid { key: &'static str, reason: String },
    /// An http check's URL is not one it can GET.
    #[error("{url:?}: {reason}")]
    BadUrl { url: String, reason: String },

    /// A bug of hbd's (a task panicked).
    #[error("internal error: {0}")]
    Internal(String),
}

impl CheckError {
    pub(super) fn invalid(key: &'static str, reason: impl Into<String>) -> CheckError {
        CheckError::Invalid {
            key,
            reason: reason.into(),
        }
    }
}

/// Why the MySQL client did not get its answer.
#[derive(Debug, thiserror::Error)]
pub enum MysqlError {
    /// The service said no: an ERR packet ("Access denied for user ...",
    /// "Too many connections", "Table 'x.y' doesn't exist").
    #[error("mysql: {message} (error {code})")]
    Server { code: u16, message: String },
    /// An ERR packet too short to hold an error code.
    #[error("mysql: malformed error packet")]
    MalformedErr,
    /// The connection ended in the middle of a packet.
    #[error("mysql: the server closed the connection")]
    Closed,
    /// Reading or sending failed (`op`: "read", "send").
    #[error("mysql: {op}: {}", io_reason(source))]
    Io { op: &'static str, source: io::Error },
    #[error("mysql: packet out of order (sequence id {got}, expected {expected})")]
    OutOfOrder { got: u8, expected: u8 },
    #[error("mysql: a packet of {len} bytes is larger than the {MYSQL_MAX_PACKET} allowed")]
    TooLarge { len: usize },
    /// A packet that does not parse as `what` ("handshake packet", "query response",
    /// "result set (no EOF after the columns)").
    #[error("mysql: malformed {0}")]
    Malformed(&'static str),
    /// A packet the client did not expect here.
    #[error("mysql: unexpected {0}")]
    Unexpected(String),
    #[error("mysql: handshake protocol version {0} is not supported (need 10)")]
    ProtocolVersion(u8),
    #[error("mysql: server {server_version} is too old (no 4.1 protocol)")]
    TooOld { server_version: String },
    /// An authentication plugin this client does not speak (or not over TCP:
    /// `mysql_clear_password`).
    #[error(
        "mysql: the server asks for authentication plugin {plugin:?}, which hbd does not support{}",
        if plugin == "mysql_clear_password" { " over TCP" } else { "" }
    )]
    UnsupportedPlugin { plugin: String },
    #[error("mysql: the server asks for the pre-4.1 password scheme, which hbd does not support")]
    OldPassword,
    #[error("mysql: caching_sha2_password wants full authentication, which needs TLS or RSA (not supported by hbd): use the unix socket or a mysql_native_password account")]
    FullAuthentication,
    #[error("mysql: authentication did not finish")]
    AuthUnfinished,
    #[error("mysql: the query asks for a local file (LOAD DATA LOCAL): refused")]
    LocalInfile,
    #[error("mysql: the query returned more than {MYSQL_MAX_ROWS} rows")]
    TooManyRows,
    #[error("mysql: no user (none configured, and hbd's own has no name)")]
    NoUser,
    #[error("mysql: no socket and no host (neither in the check nor in the option file)")]
    NoTarget,
    #[error("option file {}: {error}", path.display())]
    OptionFile {
        path: PathBuf,
        #[source]
        error: OptionFileError,
    },
}

/// Why a MySQL option file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum OptionFileError {
    #[error("{}", io_reason(.0))]
    Read(#[source] io::Error),
    /// `port` is not a port number (1-65535); `line` counts from 1.
    #[error("line {line}: port: not a port: {value:?}")]
    BadPort { line: usize, value: String },
}

/// ": line", or nothing.
fn colon(line: &Option<String>) -> String {
    line.as_ref().map(|l| format!(": {l}")).unwrap_or_default()
}

/// "SIGTERM", or "signal 77" for a number that is not one.
fn signal_name(sig: i32) -> String {
    match Signal::try_from(sig) {
        Ok(s) => s.as_str().to_string(),
        Err(_) => format!("signal {sig}"),
    }
}
