//! A program's output as hbd reads it: bytes split into bounded lines, each
//! logged or kept as the run's [`Output`](super::Output) mode says, the last
//! [`TAIL_LINES`] kept to explain a failure.

use super::Output;
use std::collections::VecDeque;
use tokio::io::{AsyncRead, AsyncReadExt};

/// Longest output line logged or kept; the rest of a longer line is
/// dropped, marked with `…`.
pub const MAX_LINE: usize = 4096;
/// Output lines kept for error messages.
pub const TAIL_LINES: usize = 10;
/// stdout kept (heartbeat judges an agent's status by it; drbdadm's answer).
const MAX_STDOUT: usize = 64 * 1024;

pub(super) type Reader = Box<dyn AsyncRead + Unpin + Send>;

/// One stream of the program: bytes split into bounded lines.
pub(super) struct Stream {
    pub(super) reader: Option<Reader>,
    lines: LineSplitter,
    stderr: bool,
}

impl Stream {
    pub(super) fn new(reader: Option<Reader>, stderr: bool) -> Self {
        Stream {
            reader,
            lines: LineSplitter::default(),
            stderr,
        }
    }
}

/// Reads from whichever stream has data; logs and records complete lines.
/// `None` once both streams are at EOF.
pub(super) async fn read_some(out: &mut Stream, err: &mut Stream, sink: &mut Sink) -> Option<()> {
    let mut b1 = [0u8; 4096];
    let mut b2 = [0u8; 4096];
    let (n, is_err) = tokio::select! {
        n = read_from(&mut out.reader, &mut b1), if out.reader.is_some() => (n, false),
        n = read_from(&mut err.reader, &mut b2), if err.reader.is_some() => (n, true),
        else => return None,
    };
    if is_err {
        feed(err, &b2[..n], sink);
    } else {
        feed(out, &b1[..n], sink);
    }
    Some(())
}

/// One read; 0 at EOF or on an error (the stream is done either way).
async fn read_from(reader: &mut Option<Reader>, buf: &mut [u8]) -> usize {
    match reader {
        Some(r) => r.read(buf).await.unwrap_or(0),
        None => std::future::pending().await,
    }
}

fn feed(s: &mut Stream, bytes: &[u8], sink: &mut Sink) {
    if bytes.is_empty() {
        s.reader = None;
        if let Some(line) = s.lines.finish() {
            sink.line(&line, s.stderr);
        }
        return;
    }
    for line in s.lines.push(bytes) {
        sink.line(&line, s.stderr);
    }
}

/// Where output lines go: the log, the tail, and (stdout) the kept text.
pub(super) struct Sink {
    mode: Output,
    /// (from stderr, line)
    pub(super) tail: VecDeque<(bool, String)>,
    pub(super) stdout: String,
    /// After the call returned: a started daemon's leftovers, logged only.
    detached: bool,
}

impl Sink {
    pub(super) fn new(mode: Output) -> Self {
        Sink {
            mode,
            tail: VecDeque::new(),
            stdout: String::new(),
            detached: false,
        }
    }

    pub(super) fn detached(mode: Output) -> Self {
        Sink {
            detached: true,
            ..Sink::new(mode)
        }
    }

    fn line(&mut self, line: &str, stderr: bool) {
        match (self.mode, stderr) {
            (Output::Log, true) => tracing::warn!(line, "agent stderr"),
            (Output::Log, false) => tracing::info!(line, "agent output"),
            _ => tracing::debug!(line, stderr, "output"),
        }
        if self.detached {
            return;
        }
        if !stderr && self.stdout.len() + line.len() < MAX_STDOUT {
            self.stdout.push_str(line);
            self.stdout.push('\n');
        }
        if !line.trim().is_empty() {
            if self.tail.len() == TAIL_LINES {
                // stdout and stderr are two pipes, read in no reliable order:
                // the stderr lines, the likelier explanation, go last.
                let i = self.tail.iter().position(|(e, _)| !e).unwrap_or(0);
                self.tail.remove(i);
            }
            self.tail.push_back((stderr, line.trim_end().to_string()));
        }
    }
}

/// Splits bytes into lines of at most [`MAX_LINE`] bytes (lossy UTF-8); the
/// excess of a longer line is dropped, marked with `…`.
#[derive(Default)]
pub(super) struct LineSplitter {
    cur: Vec<u8>,
    cut: bool,
}

impl LineSplitter {
    pub(super) fn push(&mut self, mut bytes: &[u8]) -> Vec<String> {
        let mut lines = Vec::new();
        while !bytes.is_empty() {
            let (part, rest, end) = match bytes.iter().position(|&b| b == b'\n') {
                Some(i) => (&bytes[..i], &bytes[i + 1..], true),
                None => (bytes, &[][..], false),
            };
            let room = MAX_LINE - self.cur.len();
            if part.len() > room {
                self.cur.extend_from_slice(&part[..room]);
                self.cut = true;
            } else {
                self.cur.extend_from_slice(part);
            }
            if end {
                lines.push(self.take());
            }
            bytes = rest;
        }
        lines
    }

    pub(super) fn finish(&mut self) -> Option<String> {
        (!self.cur.is_empty() || self.cut).then(|| self.take())
    }

    fn take(&mut self) -> String {
        let mut s = String::from_utf8_lossy(&self.cur).into_owned();
        if self.cut {
            s.push('…');
        }
        self.cur.clear();
        self.cut = false;
        s
    }
}
