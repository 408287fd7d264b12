//! Logging as `ha.cf` asks: `logfile` gets info and above, `debugfile` debug
//! and above, `logfacility` (or `use_logd yes`, as facility `daemon`) sends
//! info and above to syslog; stderr always gets info, debug with `debug N`
//! above 0, or what `HBD_LOG` (an `EnvFilter` string) says.
//!
//! When stderr is the journal (systemd sets `JOURNAL_STREAM=DEV:INODE` and
//! fd 2 is that stream), events go to journald as native records with
//! their fields (`runtime::journal`); if its socket cannot be reached, each
//! stderr line starts with its syslog priority as sd-daemon(3) `<N>` and
//! carries no timestamp: journald stores the priority and stamps the
//! record itself ([`StderrStyle`]).
//!
//! `logfile` and `debugfile` are reopened by [`reopen`] (SIGHUP and SIGUSR2
//! in `hbd`, the same in `hbd-disk` for its `--log-file`): logrotate
//! renames the file, sends the signal, and new lines go to a new file at
//! the configured path; no `copytruncate` needed.

use crate::config::HaCf;
use std::fs::{File, OpenOptions};
use std::io::{self, IsTerminal, Write};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use tracing::{Level, Metadata};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::prelude::*;
use tracing_subscriber::EnvFilter;

fn open_append(path: &Path) -> io::Result<File> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    OpenOptions::new().create(true).append(true).open(path)
}

/// How stderr lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StderrStyle {
    /// `TIMESTAMP LEVEL target: message fields` (a terminal, a file).
    Plain,
    /// `<N>target: message fields`: stderr is the journal, which reads the
    /// sd-daemon(3) priority prefix and adds its own timestamp.
    Journal,
}

/// `JOURNAL_STREAM`'s `DEV:INODE` (decimal, as systemd writes it).
pub fn parse_journal_stream(v: &str) -> Option<(u64, u64)> {
    let (dev, ino) = v.trim().split_once(':')?;
    Some((dev.parse().ok()?, ino.parse().ok()?))
}

/// The style for stderr: [`StderrStyle::Journal`] when `JOURNAL_STREAM`
/// names the file that stderr is (`stderr_id`: fd 2's device and inode).
/// Only then: a child of a systemd service inherits the variable with its
/// stderr redirected elsewhere (hbd-disk's log file), and must write plain
/// lines there (systemd.exec(5), `$JOURNAL_STREAM`).
pub fn stderr_style(journal_stream: Option<&str>, stderr_id: Option<(u64, u64)>) -> StderrStyle {
    match (journal_stream.and_then(parse_journal_stream), stderr_id) {
        (Some(j), Some(e)) if j == e => StderrStyle::Journal,
        _ => StderrStyle::Plain,
    }
}

/// This process's stderr style, from its environment and fd 2.
pub fn detect_stderr_style() -> StderrStyle {
    let id = nix::sys::stat::fstat(std::io::stderr())
        .ok()
        .map(|st| (st.st_dev, st.st_ino));
    stderr_style(std::env::var("JOURNAL_STREAM").ok().as_deref(), id)
}

/// sd-daemon(3)'s priority of a level (syslog severities).
pub fn syslog_severity(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        Level::DEBUG | Level::TRACE => 7,
    }
}

/// The stderr layer in `style`, keeping what `filter` lets through; in
/// journal style, native records to journald as `identifier` when its
/// socket answers.
fn stderr_layer<S>(
    style: StderrStyle,
    filter: EnvFilter,
    identifier: &'static str,
) -> Box<dyn tracing_subscriber::Layer<S> + Send + Sync>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    match style {
        StderrStyle::Plain => tracing_subscriber::fmt::layer()
            .with_ansi(io::stderr().is_terminal())
            .with_writer(io::stderr)
            .with_filter(filter)
            .boxed(),
        StderrStyle::Journal => {
            let path = super::journal::socket_path();
            match super::journal::JournalLayer::connect(&path, identifier) {
                Ok(j) => j.with_filter(filter).boxed(),
                Err(e) => {
                    eprintln!(
                        "<4>{identifier}: journald at {}: {e}: logging <N> lines to stderr",
                        path.display()
                    );
                    tracing_subscriber::fmt::layer()
                        .with_ansi(false)
                        .without_time()
                        .with_level(false)
                        .with_writer(JournalStderr)
                        .with_filter(filter)
                        .boxed()
                }
            }
        }
    }
}

/// The filter of stderr: `HBD_LOG`, else `default`.
fn stderr_filter(default: &str) -> EnvFilter {
    EnvFilter::try_from_env("HBD_LOG").unwrap_or_else(|_| EnvFilter::new(default))
}

/// Installs the global subscriber. Errors name the file that cannot be opened.
pub fn init(ha: &HaCf) -> io::Result<()> {
    let stderr = stderr_layer(
        detect_stderr_style(),
        stderr_filter(if ha.debug > 0 { "debug" } else { "info" }),
        "hbd",
    );

    let logfile = file_layer(&ha.logfile, LevelFilter::INFO)?;
    let debugfile = file_layer(&ha.debugfile, LevelFilter::DEBUG)?;
    // heartbeat's logd wrote to syslog; hbd has no logd, so `use_logd yes`
    // without a facility means syslog's `daemon` facility.
    let facility = ha
        .logfacility
        .as_deref()
        .or(ha.use_logd.then_some("daemon"));
    let syslog = facility
        .and_then(crate::config::syslog_facility_code)
        .map(|f| {
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .without_time()
                .with_level(false)
                .with_target(false)
                .with_writer(Syslog {
                    facility: f,
                    socket: Arc::new(
                        std::env::var_os("HBD_SYSLOG_SOCKET")
                            .map(Into::into)
                            .unwrap_or_else(|| "/dev/log".into()),
                    ),
                })
                .with_filter(LevelFilter::INFO)
        });

    tracing_subscriber::registry()
        .with(stderr)
        .with(logfile)
        .with(debugfile)
        .with(syslog)
        .try_init()
        .map_err(|e| io::Error::other(e.to_string()))
}

/// The layer of `logfile` or `debugfile`: they differ only in the level they keep.
fn file_layer<S>(
    path: &Option<std::path::PathBuf>,
    level: LevelFilter,
) -> io::Result<Option<impl tracing_subscriber::Layer<S>>>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    path.as_deref()
        .map(|p| {
            open_append(p).map_err(|e| annotate(p, e)).map(|f| {
                let file = Arc::new(LogFile {
                    path: p.to_path_buf(),
                    file: RwLock::new(Arc::new(f)),
                });
                register(Reopen::File(file.clone()));
                tracing_subscriber::fmt::layer()
                    .with_ansi(false)
                    .with_writer(Shared(file))
                    .with_filter(level)
            })
        })
        .transpose()
}

/// The subscriber of `hbd-disk`: stderr only (the journal under systemd,
/// or the file `--log-file` put on fd 2, see [`redirect_stderr`]), info
/// and above unless `HBD_LOG` says otherwise.
pub fn init_stderr() -> io::Result<()> {
    tracing_subscriber::registry()
        .with(stderr_layer(
            detect_stderr_style(),
            stderr_filter("info"),
            "hbd-disk",
        ))
        .try_init()
        .map_err(|e| io::Error::other(e.to_string()))
}

/// Puts `path` (appended to, created with its directory) on fd 1 and 2, so
/// that log lines, early errors and panics all go there, and registers it
/// for [`reopen`].
pub fn redirect_stderr(path: &Path) -> io::Result<()> {
    dup_onto_stdio(path)?;
    register(Reopen::Stdio(path.to_path_buf()));
    Ok(())
}

fn dup_onto_stdio(path: &Path) -> io::Result<()> {
    let f = open_append(path).map_err(|e| annotate(path, e))?;
    nix::unistd::dup2_stdout(&f).map_err(|e| annotate(path, e.into()))?;
    nix::unistd::dup2_stderr(&f).map_err(|e| annotate(path, e.into()))?;
    Ok(())
}

/// A log file that [`reopen`] can replace under the writers.
struct LogFile {
    path: PathBuf,
    file: RwLock<Arc<File>>,
}

impl LogFile {
    /// Opens the file at `path` again; later events go there. Writers made
    /// before keep the old file until their event is written.
    fn reopen(&self) -> io::Result<()> {
        let new = Arc::new(open_append(&self.path).map_err(|e| annotate(&self.path, e))?);
        *self.file.write().unwrap_or_else(|p| p.into_inner()) = new;
        Ok(())
    }
}

/// One event's writer: the file that was current when the event began.
pub struct LogFileWriter(Arc<File>);

impl Write for LogFileWriter {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        (&*self.0).write(b)
    }
    fn flush(&mut self) -> io::Result<()> {
        (&*self.0).flush()
    }
}

impl<'a> MakeWriter<'a> for LogFile {
    type Writer = LogFileWriter;
    fn make_writer(&'a self) -> LogFileWriter {
        let f = match self.file.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        };
        LogFileWriter(f)
    }
}

/// The layers' handle on a [`LogFile`] that [`reopen`] also holds.
struct Shared(Arc<LogFile>);

impl<'a> MakeWriter<'a> for Shared {
    type Writer = LogFileWriter;
    fn make_writer(&'a self) -> LogFileWriter {
        self.0.make_writer()
    }
}

/// What [`reopen`] opens again.
enum Reopen {
    File(Arc<LogFile>),
    /// fd 1 and 2 redirected to this path.
    Stdio(PathBuf),
}

static REOPEN: Mutex<Vec<Reopen>> = Mutex::new(Vec::new());

fn register(r: Reopen) {
    REOPEN.lock().unwrap_or_else(|p| p.into_inner()).push(r);
}

/// Opens every log file again at its configured path (after logrotate
/// renamed it): new lines go to the new file. Returns the paths reopened;
/// a file that cannot be opened keeps the old one and is logged.
pub fn reopen() -> Vec<PathBuf> {
    let list = REOPEN.lock().unwrap_or_else(|p| p.into_inner());
    let mut done = Vec::new();
    for r in list.iter() {
        let (path, result) = match r {
            Reopen::File(f) => (&f.path, f.reopen()),
            Reopen::Stdio(p) => (p, dup_onto_stdio(p)),
        };
        match result {
            Ok(()) => done.push(path.clone()),
            Err(e) => {
                tracing::error!(path = %path.display(), error = %e, "cannot reopen the log file: still writing to the old one")
            }
        }
    }
    done
}

/// stderr when it is the journal: each line of an event gets its
/// `<N>` priority (sd-daemon(3)); the event is written in one `write`.
struct JournalStderr;

pub struct JournalLine {
    severity: u8,
    buf: Vec<u8>,
}

impl Write for JournalLine {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// `text` with every line prefixed by `<severity>` (journald gives each
/// line of a stream its own record).
pub fn journal_lines(severity: u8, text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + 4);
    for line in text.split_inclusive(|&b| b == b'\n') {
        out.extend_from_slice(format!("<{severity}>").as_bytes());
        out.extend_from_slice(line);
    }
    if !out.ends_with(b"\n") {
        out.push(b'\n');
    }
    out
}

impl Drop for JournalLine {
    fn drop(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let _ = io::stderr()
            .lock()
            .write_all(&journal_lines(self.severity, &self.buf));
    }
}

impl<'a> MakeWriter<'a> for JournalStderr {
    type Writer = JournalLine;
    fn make_writer(&'a self) -> JournalLine {
        JournalLine {
            severity: 6,
            buf: Vec::new(),
        }
    }
    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> JournalLine {
        JournalLine {
            severity: syslog_severity(meta.level()),
            buf: Vec::new(),
        }
    }
}

fn annotate(p: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", p.display()))
}

/// Sends each event as one datagram to `/dev/log` (RFC 3164 framing as
/// syslog(3) does); silently drops it when no syslog daemon listens.
/// `HBD_SYSLOG_SOCKET` names another socket (tests use it).
struct Syslog {
    facility: u8,
    socket: Arc<std::path::PathBuf>,
}

struct SyslogLine {
    pri: u8,
    buf: Vec<u8>,
    socket: Arc<std::path::PathBuf>,
}

impl io::Write for SyslogLine {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for SyslogLine {
    fn drop(&mut self) {
        let msg = String::from_utf8_lossy(&self.buf);
        let line = format!(
            "<{}>hbd[{}]: {}",
            self.pri,
            std::process::id(),
            msg.trim_end()
        );
        if let Ok(s) = UnixDatagram::unbound() {
            let _ = s.send_to(line.as_bytes(), self.socket.as_path());
        }
    }
}

impl<'a> MakeWriter<'a> for Syslog {
    type Writer = SyslogLine;

    fn make_writer(&'a self) -> SyslogLine {
        SyslogLine {
            pri: self.facility * 8 + 6,
            buf: Vec::new(),
            socket: self.socket.clone(),
        }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> SyslogLine {
        SyslogLine {
            pri: self.facility * 8 + syslog_severity(meta.level()),
            buf: Vec::new(),
            socket: self.socket.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_stream_is_dev_colon_inode() {
        assert_eq!(parse_journal_stream("8:12345"), Some((8, 12345)));
        assert_eq!(parse_journal_stream("8:12345\n"), Some((8, 12345)));
        assert_eq!(parse_journal_stream("8"), None);
        assert_eq!(parse_journal_stream("a:1"), None);
        assert_eq!(parse_journal_stream(""), None);
    }

    #[test]
    fn journal_style_only_when_stderr_is_that_stream() {
        assert_eq!(
            stderr_style(Some("8:12345"), Some((8, 12345))),
            StderrStyle::Journal
        );
        // Inherited by a child whose stderr went elsewhere.
        assert_eq!(
            stderr_style(Some("8:12345"), Some((8, 999))),
            StderrStyle::Plain
        );
        assert_eq!(stderr_style(None, Some((8, 12345))), StderrStyle::Plain);
        assert_eq!(
            stderr_style(Some("junk"), Some((8, 12345))),
            StderrStyle::Plain
        );
        assert_eq!(stderr_style(Some("8:12345"), None), StderrStyle::Plain);
    }

    #[test]
    fn journal_lines_carry_the_priority_on_every_line() {
        assert_eq!(
            journal_lines(6, b"hbd: started x=1\n"),
            b"<6>hbd: started x=1\n"
        );
        assert_eq!(journal_lines(3, b"a\nb\n"), b"<3>a\n<3>b\n");
        assert_eq!(journal_lines(4, b"no newline"), b"<4>no newline\n");
        assert_eq!(syslog_severity(&Level::ERROR), 3);
        assert_eq!(syslog_severity(&Level::WARN), 4);
        assert_eq!(syslog_severity(&Level::INFO), 6);
        assert_eq!(syslog_severity(&Level::DEBUG), 7);
    }

    #[test]
    fn a_log_file_reopens_at_its_path_after_a_rename() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ha-log");
        let f = LogFile {
            path: path.clone(),
            file: RwLock::new(Arc::new(open_append(&path).unwrap())),
        };
        f.make_writer().write_all(b"before\n").unwrap();
        let rotated = dir.path().join("ha-log.1");
        std::fs::rename(&path, &rotated).unwrap();
        f.make_writer().write_all(b"still old\n").unwrap();
        f.reopen().unwrap();
        f.make_writer().write_all(b"after\n").unwrap();
        assert_eq!(
            std::fs::read_to_string(&rotated).unwrap(),
            "before\nstill old\n"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "after\n");
    }
}
