use super::*;

/// A corosync.conf with `nodes` (name, nodeid, ring0) and extra text for
/// totem and quorum.
fn conf(totem: &str, nodes: &[(&str, u32, &str)], quorum: &str) -> String {
    let mut s =
        format!("totem {{\n    version: 2\n    cluster_name: lab\n{totem}}}\n\nnodelist {{\n");
    for (name, id, addr) in nodes {
        s += &format!(
            "    node {{\n        name: {name}\n        nodeid: {id}\n        ring0_addr: {addr}\n    }}\n"
        );
    }
    s += &format!("}}\n\nquorum {{\n    provider: corosync_votequorum\n{quorum}}}\n");
    s
}

const TWO: &[(&str, u32, &str)] = &[("n1", 1, "198.51.100.1"), ("n2", 2, "198.51.100.2")];

fn good(text: &str) -> CorosyncConf {
    match CorosyncConf::parse(Path::new("corosync.conf"), text.as_bytes()) {
        Ok(c) => c,
        Err(e) => panic!("refused:\n{e}\n--- text:\n{text}"),
    }
}

/// The errors as `corosync.conf:LINE: KEY: message` lines.
fn bad(text: &str) -> Vec<String> {
    match CorosyncConf::parse(Path::new("corosync.conf"), text.as_bytes()) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
    }
}

fn warnings(text: &str) -> Vec<String> {
    let (_, e, w) = parse_full(Path::new("corosync.conf"), text.as_bytes());
    assert!(e.is_empty(), "{e:?}");
    w.iter().map(ToString::to_string).collect()
}

fn has(errors: &[String], start: &str, part: &str) {
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with(start) && e.contains(part)),
        "no error starting {start:?} containing {part:?} in {errors:#?}"
    );
}

#[test]
fn defaults() {
    let c = good(&conf("", TWO, "    two_node: 1\n"));
    assert_eq!(c.path, Path::new("corosync.conf"));
    assert_eq!(c.cluster_name.as_deref(), Some("lab"));
    assert_eq!(c.token, Duration::from_millis(3000));
    assert_eq!(c.token_coefficient, Duration::from_millis(650));
    assert_eq!(c.consensus, None);
    assert_eq!(c.transport, "knet");
    assert_eq!(c.effective_token(), Duration::from_millis(3000));
    assert_eq!(c.effective_consensus(), Duration::from_millis(3600));
    assert_eq!(c.nodes.len(), 2);
    assert_eq!(
        c.nodes[0],
        CorosyncNode {
            name: Some("n1".into()),
            nodeid: Some(1),
            addrs: vec![(0, "198.51.100.1".into())],
            line: 7,
        }
    );
    assert_eq!(
        c.quorum,
        CorosyncQuorum {
            provider: Some("corosync_votequorum".into()),
            two_node: true,
            // votequorum: wait_for_all follows two_node unless set.
            wait_for_all: true,
            expected_votes: None,
            device: None,
            line: 19,
        }
    );
    let c = good(&conf("", TWO, "    two_node: 1\n    wait_for_all: 0\n"));
    assert!(c.quorum.two_node && !c.quorum.wait_for_all);
    let c = good(&conf("", TWO, ""));
    assert!(!c.quorum.two_node && !c.quorum.wait_for_all);
    // No quorum section at all.
    let text = "totem {\n version: 2\n}\nnodelist {\n node {\n  nodeid: 1\n  ring0_addr: 198.51.100.1\n }\n}\n";
    let c = good(text);
    assert_eq!(c.quorum, CorosyncQuorum::default());
    assert_eq!(c.cluster_name, None);
    assert_eq!(c.nodes[0].name, None);
}

#[test]
fn values_and_syntax() {
    // Tabs, no space before `{`, a `:` before `{`, CRLF, comments, no final
    // newline, a key repeated (the last wins), token 0 = default.
    let text = "# corosync.conf\r\ntotem{\r\n\tversion:2\r\n\ttoken: 1000\r\n   # indented comment\r\n\ttoken: 5000\r\n\ttoken_coefficient: 0\r\n\tconsensus: 9000\r\n\ttransport: udpu\r\n}\r\nnodelist: {\r\nnode {\r\nring0_addr: 198.51.100.1\r\nring1_addr: 192.0.2.1\r\nname: a\r\nnodeid: +7\r\n}\r\n}\r\nquorum {\r\nexpected_votes: 3\r\n}";
    let c = good(text);
    assert_eq!(c.token, Duration::from_millis(5000));
    assert_eq!(c.token_coefficient, Duration::ZERO);
    assert_eq!(c.consensus, Some(Duration::from_millis(9000)));
    assert_eq!(c.effective_consensus(), Duration::from_millis(9000));
    assert_eq!(c.transport, "udpu");
    assert_eq!(c.nodes[0].nodeid, Some(7));
    assert_eq!(
        c.nodes[0].addrs,
        vec![(0, "198.51.100.1".into()), (1, "192.0.2.1".into())]
    );
    assert_eq!(c.nodes[0].addr(1), Some("192.0.2.1"));
    assert_eq!(c.quorum.expected_votes, Some(3));
    assert_eq!(c.quorum.provider, None);
    assert_eq!(good(&conf("    token: 0\n", TWO, "")).token, DEFAULT_TOKEN);
    // A `#` after a value is part of the value, as corosync reads it.
    has(
        &bad(&conf("    token: 3000 # ms\n", TWO, "")),
        "corosync.conf:4: totem.token: `3000 # ms`: expected an integer",
        "(0..4294967295)",
    );
}

#[test]
fn syntax_errors() {
    let ok = "totem {\n version: 2\n}\nnodelist {\n node {\n  nodeid: 1\n  ring0_addr: 198.51.100.1\n }\n}\n";
    good(ok);
    let cases: &[(&str, &str)] = &[
        (
            "totem { version: 2\n}\n",
            "corosync.conf:1: totem: Extra characters after opening bracket",
        ),
        (
            "totem {}\n",
            "corosync.conf:1: totem: Extra characters after opening bracket",
        ),
        (" {\n}\n", "corosync.conf:1: {: Missing section name"),
        (
            "totem {\n version: 2\n} x\n",
            "corosync.conf:3: }: Extra characters before or after closing bracket",
        ),
        ("}\n", "corosync.conf:1: }: Unexpected closing brace"),
        (
            "totem {\n version: 2\n",
            "corosync.conf:1: totem: Missing closing brace",
        ),
        (
            "totem {\n version 2\n}\n",
            "corosync.conf:2: version: Line is not opening or closing section or key value",
        ),
    ];
    for (text, expect) in cases {
        let e = bad(text);
        assert_eq!(e.len(), 1, "{text:?}: {e:?}");
        assert!(e[0].starts_with(expect), "{text:?}: {e:?}");
    }
    let long = format!("{}# {}\n", ok, "x".repeat(509));
    assert!(bad(&long)[0].starts_with("corosync.conf:10: corosync.conf: Line too long"));
    let fits = format!("{}# {}\n", ok, "x".repeat(508));
    good(&fits);
    // Key names are cmap names.
    has(
        &bad(&conf("    foo bar: 1\n", TWO, "")),
        "corosync.conf:4: totem.foo bar: not a valid corosync key name",
        "",
    );
    has(
        &bad(&format!("{ok}x: 1\n")),
        "corosync.conf:10: x: not a valid",
        "",
    );
}

#[test]
fn non_utf8_comment_is_read() {
    let mut bytes = b"# Serveur de donn\xe9es\n".to_vec();
    bytes.extend_from_slice(conf("", TWO, "").as_bytes());
    assert!(CorosyncConf::parse(Path::new("c"), &bytes).is_ok());
    let mut bytes = conf("", TWO, "").into_bytes();
    bytes.extend_from_slice(b"logging {\n to_syslog: y\xe9s\n}\n");
    let e = CorosyncConf::parse(Path::new("c"), &bytes).unwrap_err();
    assert!(e.0[0].to_string().contains("not UTF-8"), "{e}");
}

#[test]
fn numbers_and_words() {
    let cases: &[(&str, &str, &str)] = &[
        ("    token: soon\n", "", "corosync.conf:4: totem.token: `soon`: expected an integer in range (0..4294967295)"),
        ("    token: -1\n", "", "corosync.conf:4: totem.token: `-1`"),
        ("    token:\n", "", "corosync.conf:4: totem.token: ``"),
        ("    token: 4294967296\n", "", "corosync.conf:4: totem.token: `4294967296`"),
        ("", "    two_node: yes\n", "corosync.conf:21: quorum.two_node: `yes`: expected an integer in range (0..255)"),
        ("", "    two_node: 256\n", "corosync.conf:21: quorum.two_node: `256`"),
        ("", "    expected_votes: x\n", "corosync.conf:21: quorum.expected_votes: `x`"),
        ("    ip_version: ipv5\n", "", "corosync.conf:4: totem.ip_version: `ipv5`: expected ipv4, ipv6, ipv6-4, ipv4-6"),
        ("    crypto_cipher: des\n", "", "corosync.conf:4: totem.crypto_cipher: `des`"),
        ("    crypto_cipher: aes256\n", "", "corosync.conf:4: totem.crypto_cipher: crypto_cipher requires crypto_hash"),
        ("    transport: udpu\n    crypto_hash: sha1\n", "", "corosync.conf:5: totem.crypto_cipher: crypto_cipher & crypto_hash are only valid for the Knet transport"),
        ("    transport: tcp\n", "", "corosync.conf:4: totem.transport: `tcp`: invalid transport type"),
        ("    link_mode: fast\n", "", "corosync.conf:4: totem.link_mode: `fast`"),
        ("    version: 3\n", "", "corosync.conf:4: totem.version: `3`: this corosync parses only version 2"),
        ("    token_warning: 101\n", "", "corosync.conf:4: totem.token_warning: 101%"),
    ];
    for (totem, quorum, expect) in cases {
        has(&bad(&conf(totem, TWO, quorum)), expect, "");
    }
    // +N is a number for corosync (strtoll); two_node: 2 is true.
    assert_eq!(
        good(&conf("    token: +4000\n", TWO, "")).token,
        Duration::from_millis(4000)
    );
    assert!(good(&conf("", TWO, "    two_node: 2\n")).quorum.two_node);
    // version is required.
    let text = conf("", TWO, "").replace("    version: 2\n", "");
    has(
        &bad(&text),
        "corosync.conf:1: totem.version: missing",
        "version: 2",
    );
    // crypto with knet and both set is fine; secauth: on means aes256/sha256.
    good(&conf(
        "    crypto_cipher: aes256\n    crypto_hash: sha256\n",
        TWO,
        "",
    ));
    has(
        &bad(&conf("    transport: udpu\n    secauth: on\n", TWO, "")),
        "corosync.conf:5: totem.crypto_cipher: crypto_cipher & crypto_hash are only valid",
        "",
    );
    // Sections and their items.
    has(
        &bad(&format!(
            "{}uidgid {{\n    user: x\n}}\n",
            conf("", TWO, "")
        )),
        "corosync.conf:23: uidgid.user: uidgid: only uid and gid",
        "",
    );
    has(
        &bad(&format!(
            "{}logging {{\n    logger_subsys {{\n        debug: on\n    }}\n}}\n",
            conf("", TWO, "")
        )),
        "corosync.conf:23: logging.logger_subsys: No subsys key",
        "",
    );
}

#[test]
fn timings_as_corosync_checks_them() {
    // token / (4 + 0.2) must be at least 30 ms: 126 ms is the least token.
    good(&conf("    token: 126\n", TWO, ""));
    has(
        &bad(&conf("    token: 125\n", TWO, "")),
        "corosync.conf:4: totem.token: 125 ms is too small",
        "29 ms, may not be less than 30 ms",
    );
    has(
        &bad(&conf("    token: 10\n", TWO, "")),
        "corosync.conf:4: totem.token: 10 ms: may not be less than 30 ms",
        "",
    );
    good(&conf("    consensus: 50\n", TWO, ""));
    has(
        &bad(&conf("    consensus: 49\n", TWO, "")),
        "corosync.conf:4: totem.consensus: 49 ms: may not be less than join (50 ms)",
        "",
    );
    has(
        &bad(&conf("    join: 29\n", TWO, "")),
        "corosync.conf:4: totem.join: 29 ms",
        "",
    );
    has(
        &bad(&conf("    merge: 5\n", TWO, "")),
        "corosync.conf:4: totem.merge: 5 ms",
        "",
    );
}

#[test]
fn effective_token_follows_the_node_count() {
    let nodes: Vec<(String, u32, String)> = (1..=5)
        .map(|i| (format!("n{i}"), i, format!("198.51.100.{i}")))
        .collect();
    let of = |k: usize, totem: &str| {
        let n: Vec<(&str, u32, &str)> = nodes[..k]
            .iter()
            .map(|(a, b, c)| (a.as_str(), *b, c.as_str()))
            .collect();
        good(&conf(totem, &n, ""))
    };
    // totemconfig.c: token + (members - 2) * token_coefficient above 2.
    assert_eq!(of(2, "").effective_token(), Duration::from_millis(3000));
    assert_eq!(of(3, "").effective_token(), Duration::from_millis(3650));
    assert_eq!(of(5, "").effective_token(), Duration::from_millis(4950));
    assert_eq!(of(5, "").effective_consensus(), Duration::from_millis(5940));
    let tuned = of(5, "    token: 1000\n    token_coefficient: 100\n");
    assert_eq!(tuned.effective_token(), Duration::from_millis(1300));
    assert_eq!(tuned.effective_consensus(), Duration::from_millis(1560));
    assert_eq!(of(1, "").effective_token(), Duration::from_millis(3000));
    // The token's minimum is checked on the effective token.
    good(&conf(
        "    token: 100\n    token_coefficient: 13\n",
        &[
            ("a", 1, "198.51.100.1"),
            ("b", 2, "198.51.100.2"),
            ("c", 3, "198.51.100.3"),
            ("d", 4, "198.51.100.4"),
        ],
        "",
    ));
}

#[test]
fn node_names_and_ids() {
    let c = good(&conf(
        "",
        &[("Alpha", 10, "198.51.100.1"), ("beta", 20, "198.51.100.2")],
        "",
    ));
    assert_eq!(c.node_name(10), Some("Alpha"));
    assert_eq!(c.node_name(20), Some("beta"));
    assert_eq!(c.node_name(30), None);
    assert_eq!(c.nodeid("alpha"), Some(10));
    assert_eq!(c.nodeid("ALPHA"), Some(10));
    assert_eq!(c.nodeid("BETA"), Some(20));
    assert_eq!(c.nodeid("gamma"), None);
    assert_eq!(c.node_by_name("alpha").map(|n| n.line), Some(7));
}

#[test]
fn nodelist_errors() {
    // knet needs a nodeid.
    let text = conf("", TWO, "").replace("        nodeid: 2\n", "");
    has(
        &bad(&text),
        "corosync.conf:12: nodelist.node.nodeid: node `n2`: knet requires an explicit nodeid",
        "",
    );
    // ... not 0, below 65536.
    has(
        &bad(&conf(
            "",
            &[("n1", 1, "198.51.100.1"), ("n2", 0, "198.51.100.2")],
            "",
        )),
        "corosync.conf:14: nodelist.node.nodeid: node `n2`: knet requires an explicit nodeid",
        "",
    );
    has(
        &bad(&conf(
            "",
            &[("n1", 1, "198.51.100.1"), ("n2", 65536, "198.51.100.2")],
            "",
        )),
        "corosync.conf:14: nodelist.node.nodeid: 65536: knet requires a nodeid less than 65536",
        "",
    );
    // udpu makes nodeids from addresses: none needed.
    let text = conf("    transport: udpu\n", TWO, "").replace("        nodeid: 2\n", "");
    assert_eq!(good(&text).nodes[1].nodeid, None);
    // Duplicates.
    has(
        &bad(&conf(
            "",
            &[("n1", 1, "198.51.100.1"), ("n2", 1, "198.51.100.2")],
            "",
        )),
        "corosync.conf:12: nodelist.node.nodeid: nodeid 1 is also the nodeid of the node at line 7",
        "",
    );
    has(
        &bad(&conf(
            "",
            &[("n1", 1, "198.51.100.1"), ("N1", 2, "198.51.100.2")],
            "",
        )),
        "corosync.conf:12: nodelist.node.name: `N1` is also the name of the node at line 7",
        "",
    );
    has(
        &bad(&conf("", &[("n1", 1, "198.51.100.1"), ("n2", 2, "198.51.100.1")], "")),
        "corosync.conf:12: nodelist.node.ring0_addr: 198.51.100.1 is also ring0_addr of the node at line 7",
        "",
    );
    // ring0_addr.
    let text = conf("", TWO, "").replace(
        "        ring0_addr: 198.51.100.2\n",
        "        ring1_addr: 198.51.100.2\n",
    );
    has(
        &bad(&text),
        "corosync.conf:12: nodelist.node.ring0_addr: node `n2` has no ring0_addr",
        "",
    );
    let text = conf("", TWO, "").replace(
        "        ring0_addr: 198.51.100.2\n",
        "        ring8_addr: 198.51.100.2\n",
    );
    has(&bad(&text), "corosync.conf:15: nodelist.node.ring8_addr: ring number 8 is bigger than the allowed maximum 7", "");
    // Addresses.
    has(
        &bad(&conf(
            "",
            &[("n1", 1, "198.51.100.1"), ("n2", 2, "2001:db8::2")],
            "",
        )),
        "corosync.conf:12: nodelist.node.ring0_addr: nodes for link 0 have different IP families",
        "",
    );
    has(
        &bad(&conf("    ip_version: ipv4\n", &[("n1", 1, "198.51.100.1"), ("n2", 2, "2001:db8::2")], "")),
        "corosync.conf:16: nodelist.node.ring0_addr: `2001:db8::2`: an IPv6 address, but totem.ip_version is ipv4",
        "",
    );
    has(
        &bad(&conf(
            "",
            &[("n1", 1, "198.51.100.1"), ("n2", 2, "a b")],
            "",
        )),
        "corosync.conf:15: nodelist.node.ring0_addr: `a b`: not an IP address or a host name",
        "",
    );
    good(&conf(
        "",
        &[("n1", 1, "n1.example.org"), ("n2", 2, "n2.example.org")],
        "",
    ));
    // Multi-link: every node named and on every link.
    let text = conf("", TWO, "").replace(
        "        ring0_addr: 198.51.100.1\n",
        "        ring0_addr: 198.51.100.1\n        ring1_addr: 192.0.2.1\n",
    );
    has(
        &bad(&text),
        "corosync.conf:13: nodelist.node.ring1_addr: not all nodes have the same number of links",
        "",
    );
    // No nodelist, an empty one, two.
    let text = "totem {\n version: 2\n}\n";
    has(&bad(text), "corosync.conf: no nodelist", "");
    has(
        &bad(&format!("{text}nodelist {{\n}}\n")),
        "corosync.conf:4: nodelist: no node { } sections",
        "",
    );
    let text = format!(
        "{}nodelist {{\n  node {{\n    nodeid: 3\n    ring0_addr: 198.51.100.3\n  }}\n}}\n",
        conf("", TWO, "")
    );
    has(
        &bad(&text),
        "corosync.conf:22: nodelist: a second nodelist section (the first is at line 6)",
        "",
    );
}

#[test]
fn quorum_device() {
    let text = conf("", TWO, "    device {\n        model: net\n        votes: 1\n        net {\n            host: 192.0.2.50\n            algorithm: ffsplit\n        }\n    }\n");
    let c = good(&text);
    assert_eq!(
        c.quorum.device,
        Some(CorosyncDevice {
            model: "net".into(),
            host: Some("192.0.2.50".into()),
            algorithm: Some("ffsplit".into()),
            line: 21,
        })
    );
    assert!(!c.quorum.two_node);
    // votequorum refuses two_node with a device, and a device with
    // last_man_standing.
    let text = conf("", TWO, "    two_node: 1\n    device {\n        model: net\n        net {\n            host: q\n        }\n    }\n");
    has(&bad(&text), "corosync.conf:21: quorum.two_node: two_node and quorum device (line 22) cannot be configured", "");
    let text = conf("", TWO, "    last_man_standing: 1\n    device {\n        model: net\n        net {\n            host: q\n        }\n    }\n");
    has(
        &bad(&text),
        "corosync.conf:21: quorum.last_man_standing: quorum.device is not compatible",
        "",
    );
    let text = conf("", TWO, "    device {\n        votes: 1\n    }\n");
    has(
        &bad(&text),
        "corosync.conf:21: quorum.device.model: missing",
        "",
    );
    let text = conf("", TWO, "    device {\n        model: net\n    }\n");
    has(
        &bad(&text),
        "corosync.conf:21: quorum.device.net.host: missing",
        "",
    );
    let text = conf("", TWO, "    device {\n        model: net\n        timeout: soon\n        net {\n            host: q\n        }\n    }\n");
    has(
        &bad(&text),
        "corosync.conf:23: quorum.device.timeout: `soon`",
        "",
    );
}

#[test]
fn unknown_sections_are_warnings() {
    let text = format!("{}frob {{\n    x: 1\n}}\nstray: 1\n", conf("", TWO, ""));
    let w = warnings(&text);
    assert_eq!(w.len(), 2, "{w:?}");
    assert!(
        w[0].starts_with("corosync.conf:22: frob: unknown section: corosync ignores it"),
        "{w:?}"
    );
    assert!(
        w[1].starts_with("corosync.conf:25: stray: outside any section"),
        "{w:?}"
    );
    // The documented sections are known.
    let text = format!("{}logging {{\n    to_syslog: yes\n}}\nsystem {{\n    sched_rr: no\n}}\nresources {{\n}}\nnozzle {{\n}}\n", conf("", TWO, ""));
    assert!(warnings(&text).is_empty());
    has(
        &bad(&format!(
            "{}system {{\n    sched_rr: maybe\n}}\n",
            conf("", TWO, "")
        )),
        "corosync.conf:23: system.sched_rr: `maybe`: expected yes, no",
        "",
    );
}

#[test]
fn load_names_a_missing_file() {
    let e = CorosyncConf::load(Path::new("/nonexistent/corosync.conf")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "/nonexistent/corosync.conf: missing: the Corosync backend reads the nodelist and quorum from it"
    );
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("corosync.conf");
    std::fs::write(&p, conf("", TWO, "")).unwrap();
    assert_eq!(CorosyncConf::load(&p).unwrap().nodes.len(), 2);
}

/// The files corosync 3.1 (`corosync -t -c FILE`) and this reader judge:
/// (what, text, accepted by corosync, accepted by hbd). Every file has the
/// node `n1`: the test runs corosync as host n1 (a private UTS namespace),
/// so corosync finds its local node.
fn judged() -> Vec<(&'static str, String, bool, bool)> {
    let two = |totem: &str, quorum: &str| conf(totem, TWO, quorum);
    let three = &[
        ("n1", 1, "198.51.100.1"),
        ("n2", 2, "198.51.100.2"),
        ("n3", 3, "198.51.100.3"),
    ];
    let ok = |what, text| (what, text, true, true);
    let refused = |what, text| (what, text, false, false);
    vec![
        ok("two nodes", two("", "    two_node: 1\n")),
        ok("three nodes", conf("", three, "")),
        ok("tuned token", two("    token: 1000\n    token_coefficient: 100\n    consensus: 1200\n", "")),
        ok("least token", two("    token: 126\n", "")),
        ok("token +4000", two("    token: +4000\n", "")),
        ok("token 0 is the default", two("    token: 0\n", "")),
        ok("two_node: 2", two("", "    two_node: 2\n")),
        ok("udpu without nodeids", two("    transport: udpu\n", "").replace("        nodeid: 2\n", "")),
        ok("crypto", two("    crypto_cipher: aes256\n    crypto_hash: sha256\n", "").replace("totem {", "totem {\n    keyfile: KEYFILE")),
        ok("two links", two("", "").replace("        ring0_addr: 198.51.100.1\n", "        ring0_addr: 198.51.100.1\n        ring1_addr: 192.0.2.1\n").replace("        ring0_addr: 198.51.100.2\n", "        ring0_addr: 198.51.100.2\n        ring1_addr: 192.0.2.2\n")),
        ok("CRLF, tabs, comments", two("", "").replace('\n', "\r\n").replace("    ", "\t") + "# end\r\n"),
        ok("no space before {", two("", "").replace("totem {", "totem{")),
        ok("unknown section (a warning)", two("", "") + "frob {\n    x: 1\n}\n"),
        ok("a key outside sections (a warning)", two("", "") + "stray: 1\n"),
        ok("longest line", two("", "") + &format!("# {}\n", "x".repeat(508))),
        ok("logging and system", two("", "") + "logging {\n    to_syslog: yes\n    logger_subsys {\n        subsys: QUORUM\n        debug: off\n    }\n}\nsystem {\n    sched_rr: no\n}\n"),
        refused("no version", two("", "").replace("    version: 2\n", "")),
        refused("version 3", two("    version: 3\n", "")),
        refused("text after {", two("", "").replace("quorum {\n", "quorum { provider: corosync_votequorum\n")),
        refused("text before }", two("", "") + "logging {\n    to_syslog: yes }\n"),
        refused("missing }", two("", "") + "logging {\n"),
        refused("extra }", two("", "") + "}\n"),
        refused("no colon", two("    token 3000\n", "")),
        refused("comment after a number", two("    token: 3000 # ms\n", "")),
        refused("token -1", two("    token: -1\n", "")),
        refused("token too small", two("    token: 125\n", "")),
        refused("consensus below join", two("    consensus: 49\n", "")),
        refused("two_node yes", two("", "    two_node: yes\n")),
        refused("bad key name", two("    foo bar: 1\n", "")),
        refused("bad transport", two("    transport: tcp\n", "")),
        refused("cipher without hash", two("    crypto_cipher: aes256\n", "")),
        refused("knet without nodeid", two("", "").replace("        nodeid: 2\n", "")),
        refused("nodeid 0", conf("", &[("n1", 1, "198.51.100.1"), ("n2", 0, "198.51.100.2")], "")),
        refused("nodeid 65536", conf("", &[("n1", 1, "198.51.100.1"), ("n2", 65536, "198.51.100.2")], "")),
        refused("duplicate nodeid", conf("", &[("n1", 1, "198.51.100.1"), ("n2", 1, "198.51.100.2")], "")),
        refused("ring8_addr", two("", "").replace("        ring0_addr: 198.51.100.2\n", "        ring0_addr: 198.51.100.2\n        ring8_addr: 192.0.2.2\n")),
        refused("mixed families", conf("", &[("n1", 1, "198.51.100.1"), ("n2", 2, "2001:db8::2")], "")),
        refused("links differ", two("", "").replace("        ring0_addr: 198.51.100.1\n", "        ring0_addr: 198.51.100.1\n        ring1_addr: 192.0.2.1\n")),
        refused("no nodelist", "totem {\n    version: 2\n}\n".to_string()),
        refused("short key outside sections", two("", "") + "x: 1\n"),
        refused("logger_subsys without subsys", two("", "") + "logging {\n    logger_subsys {\n        debug: on\n    }\n}\n"),
        refused("bad system word", two("", "") + "system {\n    sched_rr: maybe\n}\n"),
        refused("line too long", two("", "") + &format!("# {}\n", "x".repeat(509))),
        // hbd is stricter where its own use needs it; corosync -t starts.
        ("non-local node without ring0_addr", two("", "").replace("        ring0_addr: 198.51.100.2\n", ""), true, false),
        ("duplicate name", conf("", &[("n1", 1, "198.51.100.1"), ("n1", 2, "198.51.100.2")], ""), true, false),
        ("duplicate address", conf("", &[("n1", 1, "198.51.100.1"), ("n2", 2, "198.51.100.1")], ""), true, false),
        // votequorum refuses these when it starts, after `-t`'s checks.
        ("two_node with a quorum device", two("", "    two_node: 1\n    device {\n        model: net\n        net {\n            host: 192.0.2.50\n        }\n    }\n"), true, false),
    ]
}

fn corosync_accepts(text: &str) -> Option<bool> {
    let dir = tempfile::tempdir().ok()?;
    let path = dir.path().join("corosync.conf");
    // A key for the crypto case (corosync -t reads it).
    let key = dir.path().join("authkey");
    std::fs::write(&key, [7u8; 128]).ok()?;
    let text = text.replace("KEYFILE", &key.to_string_lossy());
    std::fs::write(&path, text).ok()?;
    // A private UTS namespace named n1 and an empty network namespace: the
    // local node is found by name, nothing is sent anywhere.
    let out = std::process::Command::new("unshare")
        .args([
            "--uts",
            "--net",
            "sh",
            "-c",
            "hostname n1 && exec corosync -t -c \"$0\"",
        ])
        .arg(&path)
        .output()
        .ok()?;
    Some(out.status.success())
}

/// corosync 3.1 and hbd judge the same files the same way (but for the
/// cases listed where hbd is stricter).
#[test]
fn judged_as_corosync_judges() {
    let present = Path::new("/usr/sbin/corosync").exists();
    // Root, and namespaces allowed (not so in every container).
    let root = nix::unistd::geteuid().is_root()
        && std::process::Command::new("unshare")
            .args(["--uts", "--net", "true"])
            .status()
            .is_ok_and(|s| s.success());
    let mut differ = Vec::new();
    for (what, text, corosync_ok, hbd_ok) in judged() {
        let (c, e, _) = parse_full(Path::new("corosync.conf"), text.as_bytes());
        let ours = c.is_some() && e.is_empty();
        assert_eq!(
            ours, hbd_ok,
            "{what}: hbd's judgement; errors: {e:?}\n{text}"
        );
        if !(present && root) {
            continue;
        }
        match corosync_accepts(&text) {
            Some(theirs) if theirs != corosync_ok => differ.push(format!(
                "{what}: corosync -t {}",
                if theirs { "accepts" } else { "refuses" }
            )),
            Some(_) => {}
            None => panic!("{what}: cannot run corosync -t"),
        }
    }
    if !(present && root) {
        eprintln!(
            "skipping the comparison with corosync -t: needs /usr/sbin/corosync, root and unshare"
        );
    }
    assert!(differ.is_empty(), "{differ:#?}");
}
