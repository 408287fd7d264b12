//! Unit tests of the checks (every client against scripted peers).
use super::*;

#[test]
fn status_lines() {
    assert_eq!(parse_status_line(b"HTTP/1.1 200 OK\r").unwrap(), 200);
    assert_eq!(parse_status_line(b"HTTP/1.0 404 Not Found").unwrap(), 404);
    assert_eq!(parse_status_line(b"HTTP/1.1 503").unwrap(), 503);
    assert_eq!(parse_status_line(b"HTTP/2 204 \r").unwrap(), 204);
    for bad in [
        &b""[..],
        b"HTTP/1.1",
        b"HTTP/1.1 20",
        b"HTTP/1.1 2000 OK",
        b"HTTP/1.1 OK 200",
        b"SSH-2.0-OpenSSH_9.2",
        b"http/1.1 200 OK",
    ] {
        assert!(
            matches!(
                parse_status_line(bad),
                Err(CheckError::HttpBadStatusLine(_))
            ),
            "{bad:?}"
        );
    }
    assert_eq!(
        parse_status_line(b"SSH-2.0-OpenSSH_9.2\r")
            .unwrap_err()
            .to_string(),
        "http: not an HTTP status line: \"SSH-2.0-OpenSSH_9.2\""
    );
}

#[test]
fn urls() {
    let t = parse_url("http://127.0.0.1:8080/health?x=1#frag").unwrap();
    assert_eq!(
        t,
        HttpTarget {
            tls: false,
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
    // https: TLS, port 443 by default (and then not in the Host header).
    let t = parse_url("HTTPS://db.example.org/ping").unwrap();
    assert_eq!((t.tls, t.port, t.path.as_str()), (true, 443, "/ping"));
    assert_eq!(t.host_header(), "db.example.org");
    let t = parse_url("https://h:8443").unwrap();
    assert_eq!((t.tls, t.host_header()), (true, "h:8443".into()));
    assert_eq!(parse_url("https://h:80/").unwrap().host_header(), "h:80");
    for bad in [
        "ftp://x/",
        "https:/x",
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
        assert!(
            matches!(parse_url(bad), Err(CheckError::BadUrl { .. })),
            "{bad}"
        );
    }
    assert_eq!(
        parse_url("http://h:x/").unwrap_err().to_string(),
        "\"http://h:x/\": bad port \"x\""
    );
}

#[test]
fn validation_names_the_key() {
    let ok = |k: CheckKind| validate(&k).unwrap();
    let err = |k: CheckKind| {
        let e = validate(&k).unwrap_err();
        assert!(matches!(e, CheckError::Invalid { .. }), "{e:?}");
        e.to_string()
    };
    ok(CheckKind::Tcp {
        host: "db".into(),
        port: 3306,
    });
    assert!(err(CheckKind::Tcp {
        host: "db".into(),
        port: 0
    })
    .starts_with("port"));
    let http = |url: &str, expect, tls| CheckKind::Http {
        url: url.into(),
        expect,
        tls,
    };
    let none = HttpTls::default;
    assert!(err(http("ftp://x", 200, none()))
        .starts_with("url: \"ftp://x\": only http:// and https:// URLs are supported"));
    assert!(err(http("http://x", 42, none())).starts_with("expect"));
    ok(http("https://x", 200, none()));
    let skip = HttpTls {
        ca_file: None,
        insecure_skip_verify: true,
    };
    ok(http("https://x", 200, skip.clone()));
    assert!(err(http("http://x", 200, skip)).contains("for https:// URLs"));
    let t = tempfile::tempdir().unwrap();
    let ca = |p: &Path| HttpTls {
        ca_file: Some(p.to_path_buf()),
        insecure_skip_verify: false,
    };
    let missing = t.path().join("missing.pem");
    let e = err(http("https://x", 200, ca(&missing)));
    assert!(
        e.starts_with("ca_file: ") && e.contains("missing.pem"),
        "{e}"
    );
    let empty = t.path().join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    let e = err(http("https://x", 200, ca(&empty)));
    assert!(e.contains("no CA certificate"), "{e}");
    assert!(err(http("https://x", 200, ca(Path::new("rel.pem")))).contains("absolute"));
    let both = HttpTls {
        ca_file: Some(empty),
        insecure_skip_verify: true,
    };
    assert!(err(http("https://x", 200, both)).contains("choose one"));
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
    assert_eq!(e.to_string(), "line 2: port: not a port: \"http\"");
    assert!(matches!(e, OptionFileError::BadPort { line: 2, .. }));
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
        0x14, 0xe6, 0x55, 0x67, 0xab, 0xdb, 0x51, 0x35, 0xd0, 0xcf, 0xd9, 0xa7, 0x0b, 0x30, 0x32,
        0xc1, 0x79, 0xa4, 0x9e, 0xe7,
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
        auth_response(NATIVE_PASSWORD, b"", scramble, false).unwrap(),
        Vec::<u8>::new()
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
    assert!(decode_handshake(&v9)
        .unwrap_err()
        .to_string()
        .contains("version 9"));
    // An ERR instead of a handshake (no SQL state before authentication).
    let mut err = vec![0xff];
    err.extend_from_slice(&1040u16.to_le_bytes());
    err.extend_from_slice(b"Too many connections");
    let e = decode_handshake(&err).unwrap_err();
    assert_eq!(e.to_string(), "mysql: Too many connections (error 1040)");
    assert!(matches!(e, MysqlError::Server { code: 1040, .. }), "{e:?}");
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
    p.extend_from_slice(b"#28000Access denied for user 'mon'@'localhost' (using password: YES)");
    assert_eq!(
        decode_err(&p).to_string(),
        "mysql: Access denied for user 'mon'@'localhost' (using password: YES) (error 1045)"
    );
    assert_eq!(
        decode_err(&[0xff]).to_string(),
        "mysql: malformed error packet"
    );
    assert!(is_eof(&[0xfe, 0, 0, 2, 0]));
    assert!(!is_eof(&[0xfe, 1, 2, 3, 4, 5, 6, 7, 8]));
    assert!(!is_eof(&[0x01]));
    assert_eq!(
        PacketReader {
            b: &[0xfc, 0x10, 0x27]
        }
        .lenenc(),
        Some(10_000)
    );
    assert_eq!(
        PacketReader {
            b: &[0xfd, 1, 0, 0]
        }
        .lenenc(),
        Some(1)
    );
    assert_eq!(PacketReader { b: &[0xfb] }.lenenc(), None);
    assert_eq!(PacketReader { b: &[0xfe, 1] }.lenenc(), None);
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
    // As the message, what a log line shows.
    let r = mysql_session(client, &login)
        .await
        .map_err(|e| e.to_string());
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
        let _ = PacketReader { b: &p }.lenenc();
        let _ = parse_stat(&String::from_utf8_lossy(&p));
        let _ = parse_option_file(&String::from_utf8_lossy(&p));
    }
}
