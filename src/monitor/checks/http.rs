//! The `http` check: an HTTP/1.1 GET and its status line (the client is
//! small on purpose: a check needs only the status), over TLS for
//! `https://` URLs (`tls.rs`).

use super::*;

// HTTP

/// The parts of an `http://` or `https://` URL a GET needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct HttpTarget {
    /// `https://`: over TLS, default port 443.
    pub(super) tls: bool,
    /// As written, without IPv6 brackets.
    pub(super) host: String,
    pub(super) port: u16,
    /// Path and query, starting with `/`; the fragment is dropped.
    pub(super) path: String,
}

impl HttpTarget {
    /// The Host header (RFC 9112 §3.2): the port only when not the default.
    pub(super) fn default_port(&self) -> u16 {
        if self.tls {
            443
        } else {
            80
        }
    }

    pub(super) fn host_header(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == self.default_port() {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

pub(super) fn parse_url(url: &str) -> Result<HttpTarget, CheckError> {
    let bad = |reason: &str| CheckError::BadUrl {
        url: url.to_string(),
        reason: reason.to_string(),
    };
    let (tls, rest) = if url
        .get(..7)
        .is_some_and(|s| s.eq_ignore_ascii_case("http://"))
    {
        (false, &url[7..])
    } else if url
        .get(..8)
        .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
    {
        (true, &url[8..])
    } else {
        return Err(bad("only http:// and https:// URLs are supported"));
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
        return Err(bad("the path has spaces or control characters"));
    }
    if authority.contains('@') {
        return Err(bad("user information is not supported"));
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or_else(|| bad("no ']' after an IPv6 address"))?;
        match after {
            "" => (h, None),
            p => (
                h,
                Some(p.strip_prefix(':').ok_or_else(|| bad("junk after ']'"))?),
            ),
        }
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    if host.contains(':') && !authority.starts_with('[') {
        return Err(bad("write an IPv6 address in brackets"));
    }
    let port = match port {
        None | Some("") => {
            if tls {
                443
            } else {
                80
            }
        }
        Some(p) => match p.parse::<u16>() {
            Ok(0) | Err(_) => return Err(bad(&format!("bad port {p:?}"))),
            Ok(n) => n,
        },
    };
    Ok(HttpTarget {
        tls,
        host: host.to_string(),
        port,
        path,
    })
}

/// The status code of a status line (RFC 9112 §4): `HTTP/1.1 200 OK`.
pub(super) fn parse_status_line(line: &[u8]) -> Result<u16, CheckError> {
    let bad = || CheckError::HttpBadStatusLine(printable(line, 80));
    let rest = line.strip_prefix(b"HTTP/").ok_or_else(bad)?;
    let sp = rest.iter().position(|&b| b == b' ').ok_or_else(bad)?;
    let rest = &rest[sp + 1..];
    let code = rest.get(..3).ok_or_else(bad)?;
    if !code.iter().all(u8::is_ascii_digit) || !matches!(rest.get(3), None | Some(b' ' | b'\r')) {
        return Err(bad());
    }
    Ok(code.iter().fold(0u16, |n, &d| n * 10 + u16::from(d - b'0')))
}

pub(super) async fn check_http(url: &str, expect: u16, tls: &HttpTls) -> Result<(), CheckError> {
    let t = parse_url(url)?;
    let s = connect_tcp(&t.host, t.port).await?;
    if t.tls {
        let s = super::tls::connect(s, &t.host, tls).await?;
        exchange(s, &t, expect).await
    } else {
        exchange(s, &t, expect).await
    }
}

/// The GET and its status line, over a TCP or TLS stream.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    t: &HttpTarget,
    expect: u16,
) -> Result<(), CheckError> {
    let req = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: hbd-check\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        t.path,
        t.host_header()
    );
    s.write_all(req.as_bytes())
        .await
        .map_err(|source| CheckError::HttpIo { op: "send", source })?;
    s.flush()
        .await
        .map_err(|source| CheckError::HttpIo { op: "send", source })?;
    let mut buf = Vec::with_capacity(512);
    let line = loop {
        if let Some(i) = buf.iter().position(|&b| b == b'\n') {
            break &buf[..i];
        }
        if buf.len() >= HTTP_MAX_STATUS_LINE {
            return Err(CheckError::HttpNoStatusLine);
        }
        let mut chunk = [0u8; 1024];
        let want = chunk.len().min(HTTP_MAX_STATUS_LINE - buf.len());
        match s.read(&mut chunk[..want]).await {
            Ok(0) => return Err(CheckError::HttpClosed),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(source) => return Err(CheckError::HttpIo { op: "read", source }),
        }
    };
    let code = parse_status_line(line)?;
    if code == expect {
        Ok(())
    } else {
        Err(CheckError::HttpStatus { code, expect })
    }
}
