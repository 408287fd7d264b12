//! The `mysql` check: a MySQL/MariaDB client small on purpose (handshake,
//! authentication, one query and its result).

use super::*;

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

pub(super) const CLIENT_LONG_PASSWORD: u32 = 1;
pub(super) const CLIENT_LONG_FLAG: u32 = 1 << 2;
pub(super) const CLIENT_PROTOCOL_41: u32 = 1 << 9;
pub(super) const CLIENT_TRANSACTIONS: u32 = 1 << 13;
pub(super) const CLIENT_SECURE_CONNECTION: u32 = 1 << 15;
pub(super) const CLIENT_PLUGIN_AUTH: u32 = 1 << 19;
/// utf8_general_ci: every server since 4.1 has it.
pub(super) const CHARSET_UTF8: u8 = 33;

pub(super) const NATIVE_PASSWORD: &str = "mysql_native_password";
pub(super) const CACHING_SHA2: &str = "caching_sha2_password";

/// Protocol::HandshakeV10, the parts a client needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Handshake {
    pub(super) server_version: String,
    pub(super) capabilities: u32,
    /// auth-plugin-data part 1 and 2, without the trailing NUL (20 bytes).
    pub(super) scramble: Vec<u8>,
    /// Empty when the server does not speak CLIENT_PLUGIN_AUTH.
    pub(super) plugin: String,
}

/// A cursor over one packet's payload; every read is bounds-checked.
pub(super) struct PacketReader<'a> {
    pub(super) b: &'a [u8],
}

impl<'a> PacketReader<'a> {
    pub(super) fn u8(&mut self) -> Option<u8> {
        let (&v, rest) = self.b.split_first()?;
        self.b = rest;
        Some(v)
    }
    pub(super) fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.b.len() {
            return None;
        }
        let (v, rest) = self.b.split_at(n);
        self.b = rest;
        Some(v)
    }
    pub(super) fn u16(&mut self) -> Option<u16> {
        self.bytes(2).map(|v| u16::from_le_bytes([v[0], v[1]]))
    }
    pub(super) fn u32(&mut self) -> Option<u32> {
        self.bytes(4)
            .map(|v| u32::from_le_bytes([v[0], v[1], v[2], v[3]]))
    }
    /// string<NUL>; the rest of the packet when the NUL is missing (servers
    /// that end the packet with the plugin name).
    pub(super) fn nul_str(&mut self) -> &'a [u8] {
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
    pub(super) fn lenenc(&mut self) -> Option<u64> {
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

pub(super) fn decode_handshake(p: &[u8]) -> Result<Handshake, MysqlError> {
    if p.first() == Some(&0xff) {
        // "Too many connections", "Host ... is not allowed to connect".
        return Err(decode_err(p));
    }
    let malformed = || MysqlError::Malformed("handshake packet");
    let mut r = PacketReader { b: p };
    let version = r.u8().ok_or_else(malformed)?;
    if version != 10 {
        return Err(MysqlError::ProtocolVersion(version));
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
        return Err(MysqlError::TooOld { server_version });
    }
    Ok(Handshake {
        server_version,
        capabilities,
        scramble,
        plugin,
    })
}

/// ERR_Packet: 0xff, error code, `#` and SQL state (4.1 protocol), message.
pub(super) fn decode_err(p: &[u8]) -> MysqlError {
    let mut r = PacketReader {
        b: p.get(1..).unwrap_or_default(),
    };
    let code = r.u16();
    if r.b.first() == Some(&b'#') {
        r.bytes(6);
    }
    match code {
        Some(code) => MysqlError::Server {
            code,
            message: printable(r.b, 300),
        },
        None => MysqlError::MalformedErr,
    }
}

/// EOF_Packet: 0xfe and at most 8 more bytes (a row may start with 0xfe too,
/// as the prefix of an 8-byte length, but is then longer).
pub(super) fn is_eof(p: &[u8]) -> bool {
    p.first() == Some(&0xfe) && p.len() < 9
}

pub(super) fn sha1(parts: &[&[u8]]) -> [u8; 20] {
    use sha1::Digest;
    let mut h = sha1::Sha1::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

pub(super) fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// mysql_native_password: SHA1(password) XOR SHA1(scramble + SHA1(SHA1(password))).
/// The server stores SHA1(SHA1(password)) (`PASSWORD()` without the `*`).
pub(super) fn native_password(password: &[u8], scramble: &[u8]) -> [u8; 20] {
    let stage1 = sha1(&[password]);
    let stage2 = sha1(&[&stage1]);
    let mix = sha1(&[scramble, &stage2]);
    std::array::from_fn(|i| stage1[i] ^ mix[i])
}

/// caching_sha2_password fast path: SHA256(password) XOR
/// SHA256(SHA256(SHA256(password)) + nonce).
pub(super) fn caching_sha2(password: &[u8], nonce: &[u8]) -> [u8; 32] {
    let stage1 = sha256(&[password]);
    let stage2 = sha256(&[&stage1]);
    let mix = sha256(&[&stage2, nonce]);
    std::array::from_fn(|i| stage1[i] ^ mix[i])
}

/// The auth response for `plugin` given its data (the scramble).
pub(super) fn auth_response(
    plugin: &str,
    password: &[u8],
    data: &[u8],
    unix: bool,
) -> Result<Vec<u8>, MysqlError> {
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
        other => Err(MysqlError::UnsupportedPlugin {
            plugin: other.to_string(),
        }),
    }
}

/// Protocol::HandshakeResponse41 (no database, no connect attributes).
pub(super) fn handshake_response(caps: u32, user: &str, auth: &[u8], plugin: &str) -> Vec<u8> {
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
pub(super) struct Conn<S> {
    pub(super) s: S,
    /// The sequence id of the next packet, either way; 0 at each command.
    pub(super) seq: u8,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    pub(super) async fn read(&mut self) -> Result<Vec<u8>, MysqlError> {
        let eof = |source: std::io::Error| {
            if source.kind() == std::io::ErrorKind::UnexpectedEof {
                MysqlError::Closed
            } else {
                MysqlError::Io { op: "read", source }
            }
        };
        let mut h = [0u8; 4];
        self.s.read_exact(&mut h).await.map_err(eof)?;
        let len = usize::from(h[0]) | usize::from(h[1]) << 8 | usize::from(h[2]) << 16;
        if h[3] != self.seq {
            return Err(MysqlError::OutOfOrder {
                got: h[3],
                expected: self.seq,
            });
        }
        // Also refuses 0xffffff, the first part of a split packet.
        if len > MYSQL_MAX_PACKET {
            return Err(MysqlError::TooLarge { len });
        }
        self.seq = self.seq.wrapping_add(1);
        let mut p = vec![0; len];
        self.s.read_exact(&mut p).await.map_err(eof)?;
        Ok(p)
    }

    pub(super) async fn write(&mut self, payload: &[u8]) -> Result<(), MysqlError> {
        let len = payload.len().min(0xff_ffff) as u32;
        let mut v = Vec::with_capacity(4 + payload.len());
        v.extend_from_slice(&len.to_le_bytes()[..3]);
        v.push(self.seq);
        v.extend_from_slice(&payload[..len as usize]);
        self.seq = self.seq.wrapping_add(1);
        self.s
            .write_all(&v)
            .await
            .map_err(|source| MysqlError::Io { op: "send", source })
    }
}

/// Credentials and query of one session.
pub(super) struct Login<'a> {
    pub(super) user: &'a str,
    pub(super) password: &'a [u8],
    pub(super) query: &'a str,
    /// Over a unix socket: the password may go in clear if a plugin wants it.
    pub(super) unix: bool,
}

/// Connection phase, then COM_QUERY and its whole response, then COM_QUIT.
pub(super) async fn mysql_session<S: AsyncRead + AsyncWrite + Unpin>(
    s: S,
    login: &Login<'_>,
) -> Result<(), MysqlError> {
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
                    return Err(MysqlError::OldPassword);
                }
                let mut r = PacketReader { b: &p[1..] };
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
                    return Err(MysqlError::FullAuthentication);
                }
                _ => return Err(MysqlError::Unexpected("caching_sha2_password data".into())),
            },
            _ => {
                return Err(MysqlError::Unexpected(format!(
                    "packet during authentication ({plugin})"
                )))
            }
        }
    }
    if !authenticated {
        return Err(MysqlError::AuthUnfinished);
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
pub(super) async fn read_query_response<S: AsyncRead + AsyncWrite + Unpin>(
    c: &mut Conn<S>,
) -> Result<(), MysqlError> {
    let first = c.read().await?;
    let columns = match first.first() {
        Some(0x00) => return Ok(()),
        Some(0xff) => return Err(decode_err(&first)),
        Some(0xfb) => return Err(MysqlError::LocalInfile),
        _ => PacketReader { b: &first }
            .lenenc()
            .filter(|&n| n > 0 && n <= MYSQL_MAX_COLUMNS)
            .ok_or(MysqlError::Malformed("query response"))?,
    };
    for _ in 0..columns {
        let p = c.read().await?;
        if p.first() == Some(&0xff) {
            return Err(decode_err(&p));
        }
    }
    if !is_eof(&c.read().await?) {
        return Err(MysqlError::Malformed(
            "result set (no EOF after the columns)",
        ));
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
    Err(MysqlError::TooManyRows)
}

/// The `[client]` options of a MySQL option file (my.cnf, debian.cnf).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct ClientOptions {
    pub(super) user: Option<String>,
    pub(super) password: Option<String>,
    pub(super) host: Option<String>,
    pub(super) port: Option<u16>,
    pub(super) socket: Option<PathBuf>,
}

/// Reads the `[client]`, `[client-server]` and `[client-mariadb]` groups;
/// a later setting overrides an earlier one, as the mysql client does.
/// `!include` lines are ignored; quoted values may use `\` escapes.
pub(super) fn parse_option_file(text: &str) -> Result<ClientOptions, OptionFileError> {
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
                        .ok_or_else(|| OptionFileError::BadPort {
                            line: i + 1,
                            value: value.clone(),
                        })?,
                )
            }
            _ => {}
        }
    }
    Ok(o)
}

/// A value: quoted ('...' or "...", with escapes) or bare up to a ` #` comment.
pub(super) fn option_value(v: &str) -> String {
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

pub(super) async fn check_mysql(kind: &CheckKind) -> Result<(), CheckError> {
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
        return Err(CheckError::Internal("not a mysql check".into()));
    };
    let file = option_file.clone();
    let (opts, me) = blocking(move || {
        let opts = match &file {
            Some(f) => read_bounded(f, MAX_OPTION_FILE)
                .map_err(OptionFileError::Read)
                .and_then(|text| parse_option_file(&String::from_utf8_lossy(&text)))
                .map_err(|error| MysqlError::OptionFile {
                    path: f.clone(),
                    error,
                })?,
            None => ClientOptions::default(),
        };
        // NSS, off the loop: this closure runs on the blocking pool.
        let me = nix::unistd::User::from_uid(nix::unistd::geteuid())
            .ok()
            .flatten()
            .map(|u| u.name);
        Ok::<_, MysqlError>((opts, me))
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
        .ok_or(MysqlError::NoUser)?;
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
            .map_err(|source| CheckError::Connect {
                target: path.display().to_string(),
                source,
            })?;
        login.unix = true;
        Ok(mysql_session(s, &login).await?)
    } else if let Some(host) = host {
        let s = connect_tcp(&host, port).await?;
        Ok(mysql_session(s, &login).await?)
    } else {
        Err(MysqlError::NoTarget.into())
    }
}
