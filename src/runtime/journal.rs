//! journald's native protocol (systemd.journal-fields(7), "Native Journal
//! Protocol"): when stderr is the journal, each event becomes one record,
//! one datagram to `/run/systemd/journal/socket`, with `PRIORITY`,
//! `SYSLOG_IDENTIFIER`, `MESSAGE`, `TARGET`, `CODE_FILE`, `CODE_LINE` and
//! every field of the event and of its spans as a field of its own:
//! `journalctl -u hbd PEER=n2`, `journalctl -u hbd -p warning`.
//!
//! `MESSAGE` is the line stderr would carry (spans, message, `key=value`
//! fields), so that `journalctl`'s default view loses nothing. A field whose
//! upper-cased name is one the journal defines itself (`PRIORITY`, a VRRP
//! instance's priority...) is written `HBD_PRIORITY`. A record that cannot
//! be sent (journald gone, a datagram too large) goes to stderr as a
//! `<N>` line instead.

use std::fmt::Write as _;
use std::io::{self, Write as _};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

/// journald's socket; `HBD_JOURNAL_SOCKET` names another (tests).
pub fn socket_path() -> PathBuf {
    std::env::var_os("HBD_JOURNAL_SOCKET")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/run/systemd/journal/socket".into())
}

/// Sends each event as a journal record.
pub struct JournalLayer {
    socket: UnixDatagram,
    identifier: &'static str,
}

impl JournalLayer {
    /// Fails when nothing listens at `path` (no journald): the caller
    /// falls back to `<N>` lines on stderr.
    pub fn connect(path: &Path, identifier: &'static str) -> io::Result<JournalLayer> {
        let socket = UnixDatagram::unbound()?;
        socket.connect(path)?;
        Ok(JournalLayer { socket, identifier })
    }
}

/// The fields of an event or a span, in order.
#[derive(Debug, Default)]
pub struct Fields {
    message: Option<String>,
    /// name, value for the journal field, value as stderr writes it.
    pairs: Vec<(&'static str, String, String)>,
}

impl Fields {
    /// ` k=v k=v` as tracing-subscriber's fmt writes them.
    fn text(&self) -> String {
        let mut s = String::new();
        for (k, _, v) in &self.pairs {
            let _ = write!(s, " {k}={v}");
        }
        s
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = Some(value.to_string());
        } else {
            self.pairs
                .push((field.name(), value.to_string(), format!("{value:?}")));
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        let v = value.to_string();
        self.pairs.push((field.name(), v.clone(), v));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let v = format!("{value:?}");
        if field.name() == "message" {
            self.message = Some(v);
        } else {
            self.pairs.push((field.name(), v.clone(), v));
        }
    }
}

/// Fields the journal defines: an event field of that name is written
/// with `HBD_` before it.
const RESERVED: &[&str] = &[
    "MESSAGE",
    "MESSAGE_ID",
    "PRIORITY",
    "CODE_FILE",
    "CODE_LINE",
    "CODE_FUNC",
    "ERRNO",
    "INVOCATION_ID",
    "USER_INVOCATION_ID",
    "SYSLOG_FACILITY",
    "SYSLOG_IDENTIFIER",
    "SYSLOG_PID",
    "SYSLOG_TIMESTAMP",
    "SYSLOG_RAW",
    "DOCUMENTATION",
    "TID",
    "TARGET",
    "UNIT",
    "USER_UNIT",
];

/// A journal field name for `name`: upper case, `A-Z0-9_`, not starting
/// with `_` (trusted fields) or a digit, at most 64 bytes.
pub fn field_name(name: &str) -> String {
    let mut n: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect::<String>()
        .trim_start_matches('_')
        .to_string();
    if n.is_empty() || n.starts_with(|c: char| c.is_ascii_digit()) || RESERVED.contains(&n.as_str())
    {
        n = format!("HBD_{n}");
    }
    n.truncate(64);
    n
}

/// Appends one field in the native protocol's framing: `NAME=value\n`, or
/// for a value with a newline `NAME\n`, its length (u64 little endian),
/// the value, `\n`.
pub fn put_field(buf: &mut Vec<u8>, name: &str, value: &str) {
    buf.extend_from_slice(name.as_bytes());
    if value.contains('\n') {
        buf.push(b'\n');
        buf.extend_from_slice(&(value.len() as u64).to_le_bytes());
    } else {
        buf.push(b'=');
    }
    buf.extend_from_slice(value.as_bytes());
    buf.push(b'\n');
}

impl<S> tracing_subscriber::Layer<S> for JournalLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut f = Fields::default();
        attrs.record(&mut f);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(f);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            let mut ext = span.extensions_mut();
            if let Some(f) = ext.get_mut::<Fields>() {
                values.record(f);
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let meta = event.metadata();
        let severity = super::logging::syslog_severity(meta.level());
        let mut ev = Fields::default();
        event.record(&mut ev);
        let mut text = String::new();
        let mut span_fields = Vec::new();
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                let ext = span.extensions();
                let f = ext.get::<Fields>();
                let inner = f.map(|f| f.text()).unwrap_or_default();
                let _ = write!(text, "{}{{{}}}: ", span.name(), inner.trim_start());
                if let Some(f) = f {
                    span_fields.extend(f.pairs.iter().map(|(k, v, _)| (*k, v.clone())));
                }
            }
        }
        text.push_str(ev.message.as_deref().unwrap_or(""));
        text.push_str(&ev.text());
        let mut buf = Vec::with_capacity(256);
        put_field(&mut buf, "PRIORITY", &severity.to_string());
        put_field(&mut buf, "SYSLOG_IDENTIFIER", self.identifier);
        put_field(&mut buf, "MESSAGE", &text);
        put_field(&mut buf, "TARGET", meta.target());
        if let Some(file) = meta.file() {
            put_field(&mut buf, "CODE_FILE", file);
        }
        if let Some(line) = meta.line() {
            put_field(&mut buf, "CODE_LINE", &line.to_string());
        }
        for (k, v) in span_fields
            .into_iter()
            .chain(ev.pairs.iter().map(|(k, v, _)| (*k, v.clone())))
        {
            put_field(&mut buf, &field_name(k), &v);
        }
        if self.socket.send(&buf).is_err() {
            let line = super::logging::journal_lines(
                severity,
                format!("{}: {text}", meta.target()).as_bytes(),
            );
            let _ = io::stderr().lock().write_all(&line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_for_the_journal() {
        assert_eq!(field_name("peer"), "PEER");
        assert_eq!(field_name("silence_ms"), "SILENCE_MS");
        assert_eq!(field_name("loop.dev"), "LOOP_DEV");
        assert_eq!(field_name("priority"), "HBD_PRIORITY");
        assert_eq!(field_name("message_id"), "HBD_MESSAGE_ID");
        assert_eq!(field_name("_uid"), "UID");
        assert_eq!(field_name("1st"), "HBD_1ST");
        assert_eq!(field_name(&"x".repeat(80)).len(), 64);
    }

    #[test]
    fn native_framing_plain_and_binary() {
        let mut b = Vec::new();
        put_field(&mut b, "MESSAGE", "node dead peer=n2");
        assert_eq!(b, b"MESSAGE=node dead peer=n2\n");
        let mut b = Vec::new();
        put_field(&mut b, "MESSAGE", "a\nb");
        let mut want = b"MESSAGE\n".to_vec();
        want.extend_from_slice(&3u64.to_le_bytes());
        want.extend_from_slice(b"a\nb\n");
        assert_eq!(b, want);
    }

    #[test]
    fn an_event_with_its_span_is_one_record() {
        use tracing_subscriber::prelude::*;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal");
        let rx = UnixDatagram::bind(&path).unwrap();
        let layer = JournalLayer::connect(&path, "hbd").unwrap();
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("job", job = "backup");
            let _g = span.enter();
            tracing::warn!(peer = "n2", priority = 100u32, "node dead");
        });
        let mut buf = vec![0u8; 4096];
        let n = rx.recv(&mut buf).unwrap();
        let rec = String::from_utf8_lossy(&buf[..n]);
        let lines: Vec<&str> = rec.lines().collect();
        assert!(lines.contains(&"PRIORITY=4"), "{rec}");
        assert!(lines.contains(&"SYSLOG_IDENTIFIER=hbd"), "{rec}");
        assert!(
            lines.contains(&"MESSAGE=job{job=\"backup\"}: node dead peer=\"n2\" priority=100"),
            "{rec}"
        );
        assert!(lines.contains(&"JOB=backup"), "{rec}");
        assert!(lines.contains(&"PEER=n2"), "{rec}");
        assert!(lines.contains(&"HBD_PRIORITY=100"), "{rec}");
        assert!(lines.iter().any(|l| l.starts_with("CODE_LINE=")), "{rec}");
    }
}
