//! Logging as `ha.cf` asks: `logfile` gets info and above, `debugfile` debug
//! and above, `logfacility` (or `use_logd yes`, as facility `daemon`) sends
//! info and above to syslog; stderr always gets info, debug with `debug N`
//! above 0, or what `HBD_LOG` (an `EnvFilter` string) says.

use crate::config::HaCf;
use std::fs::{File, OpenOptions};
use std::io::{self, IsTerminal};
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::sync::Arc;
use tracing::{Level, Metadata};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::prelude::*;
use tracing_subscriber::EnvFilter;

fn open_append(path: &Path) -> io::Result<Arc<File>> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    Ok(Arc::new(
        OpenOptions::new().create(true).append(true).open(path)?,
    ))
}

/// Installs the global subscriber. Errors name the file that cannot be opened.
pub fn init(ha: &HaCf) -> io::Result<()> {
    let stderr_filter = EnvFilter::try_from_env("HBD_LOG")
        .unwrap_or_else(|_| EnvFilter::new(if ha.debug > 0 { "debug" } else { "info" }));
    let stderr = tracing_subscriber::fmt::layer()
        .with_ansi(io::stderr().is_terminal())
        .with_writer(io::stderr)
        .with_filter(stderr_filter);

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
            open_append(p).map_err(|e| annotate(p, e)).map(|w| {
                tracing_subscriber::fmt::layer()
                    .with_ansi(false)
                    .with_writer(w)
                    .with_filter(level)
            })
        })
        .transpose()
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
        let severity = match *meta.level() {
            Level::ERROR => 3,
            Level::WARN => 4,
            Level::INFO => 6,
            Level::DEBUG | Level::TRACE => 7,
        };
        SyslogLine {
            pri: self.facility * 8 + severity,
            buf: Vec::new(),
            socket: self.socket.clone(),
        }
    }
}
