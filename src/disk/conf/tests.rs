use super::*;
use proptest::prelude::*;

/// Seed 002's `/etc/drbd.conf` (lines 143-199, verbatim: U+00A0 blanks,
/// comments). The page lost the resource's closing `}`; [`SEED_002_FULL`]
/// adds it.
const SEED_002: &str = "global {

    # You might disable one of drbdadm's sanity check.

    # disable-ip-verification;

 

    usage-count no;

}

 

common {

  syncer { rate 10M; }

}

 

resource r0 {

  protocol        C;

 

  startup { wfc-timeout        0; degr-wfc-timeout        120; }

  disk { on-io-error detach; }

  meta-disk        internal;

  syncer {

  }

  on l0 {

    device        /dev/drbd0;

    disk        /dev/sda7;

    address        192.168.1.2:7791;

  }

  on l1 {

    device        /dev/drbd0;

    disk        /dev/sda7;

    address        192.168.1.3:7791;

  }
";

fn seed_full() -> String {
    format!("{SEED_002}}}\n")
}

fn run(text: &str) -> (DrbdConf, Vec<String>, Vec<String>) {
    let (c, e, w) = parse(Path::new("drbd.conf"), text);
    (
        c,
        e.iter().map(|e| e.to_string()).collect(),
        w.iter().map(|w| w.to_string()).collect(),
    )
}

fn errs(text: &str) -> Vec<String> {
    run(text).1
}

fn loc(line: usize) -> Location {
    Location {
        file: PathBuf::from("drbd.conf"),
        line,
    }
}

/// A valid resource wrapped around `body` (hosts on lines 3-4 of the body).
fn res(extra: &str) -> String {
    format!(
            "resource r0 {{\n{extra}\n on a {{ device /dev/drbd0; disk /dev/sda7; address 10.0.0.1:7789; }}\n on b {{ device /dev/drbd0; disk /dev/sda7; address 10.0.0.2:7789; }}\n}}\n"
        )
}

#[test]
fn seed_002_verbatim() {
    let (c, e, w) = run(&seed_full());
    assert_eq!(e, Vec::<String>::new());
    assert_eq!(
        w,
        vec!["drbd.conf:9: usage-count: accepted, no effect in hbd".to_string()]
    );
    let host = |name: &str, ip: [u8; 4], line| HostConf {
        name: name.into(),
        device: "/dev/drbd0".into(),
        minor: None,
        disk: "/dev/sda7".into(),
        address: SocketAddrV4::new(ip.into(), 7791),
        meta_disk: MetaDisk::Internal,
        at: loc(line),
    };
    let want = ResourceConf {
        name: "r0".into(),
        protocol: Protocol::C,
        resync_rate: Some(10 << 20),
        wfc_timeout: Some(Duration::ZERO),
        degr_wfc_timeout: Some(Duration::from_secs(120)),
        on_io_error: OnIoError::Detach,
        timeout: DEFAULT_TIMEOUT,
        ko_count: DEFAULT_KO_COUNT,
        fencing: Fencing::DontCare,
        after_sb_0pri: AfterSb0::Disconnect,
        after_sb_1pri: AfterSb1::Disconnect,
        after_sb_2pri: AfterSb2::Disconnect,
        shared_secret: None,
        tls: true,
        shared_secret_at: None,
        handlers: BTreeMap::new(),
        hosts: vec![
            host("l0", [192, 168, 1, 2], 39),
            host("l1", [192, 168, 1, 3], 49),
        ],
        at: loc(23),
    };
    assert_eq!(
        c,
        DrbdConf {
            resources: vec![want]
        }
    );
    let r = c.resource("r0").unwrap();
    assert_eq!(
        r.host("l0").unwrap().address.to_string(),
        "192.168.1.2:7791"
    );
    assert_eq!(r.peer("l0").unwrap().name, "l1");
    assert_eq!(r.peer("l1").unwrap().name, "l0");
    assert!(r.peer("l2").is_none());
    assert!(c.resource("r1").is_none());
}

#[test]
fn seed_002_as_published_lacks_the_closing_brace() {
    let (c, e, _) = run(SEED_002);
    assert_eq!(
        e,
        vec!["drbd.conf:23: resource: `{` is never closed: missing `}`".to_string()]
    );
    assert_eq!(c.resources[0].hosts.len(), 2);
}

const DRBD84: &str = r#"# 8.4 style
global { usage-count no; disable-ip-verification; minor-count 8; }
common {
  net { protocol C; after-sb-0pri discard-zero-changes; after-sb-1pri discard-secondary;
        after-sb-2pri disconnect; cram-hmac-alg sha1; shared-secret "se cr\"et"; }
  disk { resync-rate 40M; fencing resource-only; }
  handlers { split-brain "/usr/lib/drbd/notify-split-brain.sh root"; fence-peer "/bin/fence"; }
  options { }
}
resource data {
  disk { on-io-error call-local-io-error; }
  startup { wfc-timeout 30; }
  handlers { fence-peer "/bin/other-fence"; }
  meta-disk internal;
  on alpha {
    device /dev/drbd1 minor 1;
    disk /dev/vg/data;
    address ipv4 10.1.1.1:7789;
    meta-disk internal;
  }
  on beta {
    device minor 1;
    disk "/dev/vg/data";
    address 10.1.1.2:7789;
  }
}
"#;

#[test]
fn drbd_84_style_and_inheritance() {
    let (c, e, w) = run(DRBD84);
    assert_eq!(e, Vec::<String>::new());
    assert_eq!(
        w,
        vec![
            "drbd.conf:2: usage-count: accepted, no effect in hbd".to_string(),
            "drbd.conf:2: disable-ip-verification: accepted, no effect in hbd".to_string(),
            "drbd.conf:2: minor-count: accepted, no effect in hbd".to_string(),
            "drbd.conf:5: cram-hmac-alg: accepted, no effect in hbd".to_string(),
        ]
    );
    let r = c.resource("data").unwrap();
    assert_eq!(r.protocol, Protocol::C);
    assert_eq!(r.resync_rate, Some(40 << 20));
    assert_eq!(r.fencing, Fencing::ResourceOnly);
    assert_eq!(r.on_io_error, OnIoError::CallLocalIoError);
    assert_eq!(r.after_sb_0pri, AfterSb0::DiscardZeroChanges);
    assert_eq!(r.after_sb_1pri, AfterSb1::DiscardSecondary);
    assert_eq!(r.after_sb_2pri, AfterSb2::Disconnect);
    assert_eq!(r.shared_secret.as_deref(), Some("se cr\"et"));
    assert_eq!(r.wfc_timeout, Some(Duration::from_secs(30)));
    assert_eq!(r.degr_wfc_timeout, None);
    assert_eq!(
        r.handlers,
        BTreeMap::from([
            ("fence-peer".to_string(), "/bin/other-fence".to_string()),
            (
                "split-brain".to_string(),
                "/usr/lib/drbd/notify-split-brain.sh root".to_string()
            ),
        ])
    );
    let a = r.host("alpha").unwrap();
    assert_eq!(
        (a.device.as_path(), a.minor),
        (Path::new("/dev/drbd1"), Some(1))
    );
    assert_eq!(a.address.to_string(), "10.1.1.1:7789");
    assert_eq!(a.at, loc(15));
    let b = r.host("beta").unwrap();
    assert_eq!(
        (b.device.as_path(), b.minor),
        (Path::new("/dev/drbd1"), Some(1))
    );
    assert_eq!(b.disk, PathBuf::from("/dev/vg/data"));
    assert_eq!(b.meta_disk, MetaDisk::Internal);
}

#[test]
fn resource_overrides_common_and_hosts_inherit_resource() {
    let text =
        "common { protocol C; syncer { rate 1M; } net { after-sb-0pri discard-older-primary; } }\n\
            resource r { syncer { rate 2M; } device /dev/drbd3; disk /dev/sdb1;\n\
            on a { address 10.0.0.1:7000; }\n\
            on b { address 10.0.0.2:7000; disk /dev/sdc1; }\n}\n\
            resource s { on a { device /dev/drbd4; disk /dev/sdb2; address 10.0.0.1:7001; }\n\
            on b { device /dev/drbd4; disk /dev/sdb2; address 10.0.0.2:7001; } }\n";
    let (c, e, _) = run(text);
    assert_eq!(e, Vec::<String>::new());
    let r = c.resource("r").unwrap();
    assert_eq!(r.resync_rate, Some(2 << 20));
    assert_eq!(r.after_sb_0pri, AfterSb0::DiscardOlderPrimary);
    assert_eq!(r.host("a").unwrap().device, PathBuf::from("/dev/drbd3"));
    assert_eq!(r.host("a").unwrap().disk, PathBuf::from("/dev/sdb1"));
    assert_eq!(r.host("b").unwrap().disk, PathBuf::from("/dev/sdc1"));
    let s = c.resource("s").unwrap();
    assert_eq!(s.resync_rate, Some(1 << 20));
    assert_eq!(s.after_sb_0pri, AfterSb0::DiscardOlderPrimary);
}

#[test]
fn rate_units() {
    assert_eq!(parse_rate("100"), Ok(100 * 1024));
    assert_eq!(parse_rate("100K"), Ok(100 * 1024));
    assert_eq!(parse_rate("100k"), Ok(100 * 1024));
    assert_eq!(parse_rate("10M"), Ok(10 * 1024 * 1024));
    assert_eq!(parse_rate("10m"), Ok(10 * 1024 * 1024));
    assert_eq!(parse_rate("1G"), Ok(1 << 30));
    assert!(parse_rate("10MB").is_err());
    assert!(parse_rate("0").is_err());
    assert!(parse_rate("").is_err());
    assert!(parse_rate("M").is_err());
    assert!(parse_rate("-1M").is_err());
    assert!(parse_rate("99999999999999999999G").is_err());
    let (c, e, _) = run(&res("syncer { rate 100; }"));
    assert!(e.is_empty(), "{e:?}");
    assert_eq!(c.resources[0].resync_rate, Some(102_400));
}

#[test]
fn valid_template_is_valid() {
    let (c, e, w) = run(&res(""));
    assert!(e.is_empty() && w.is_empty(), "{e:?} {w:?}");
    assert_eq!(c.resources[0].hosts.len(), 2);
}

fn one(text: &str, want: &str) {
    let e = errs(text);
    assert!(
        e.iter().any(|e| e.starts_with(want)),
        "want `{want}...` in {e:#?}"
    );
}

#[test]
fn error_cases() {
    // unknown option and section, everywhere
    one(&res("become-primary-on a;"), "drbd.conf:2: become-primary-on: `become-primary-on`: not supported by hbd's replicated device");
    one(
        &res("startup { become-primary-on a; }"),
        "drbd.conf:2: become-primary-on: `become-primary-on`: not supported",
    );
    one(
        &res("net { allow-two-primaries; }"),
        "drbd.conf:2: allow-two-primaries: `yes`: not supported",
    );
    one(
        &res("net { allow-two-primaries yes; }"),
        "drbd.conf:2: allow-two-primaries: `yes`: not supported",
    );
    one(
        &res("net { rr-conflict violently; }"),
        "drbd.conf:2: rr-conflict: `violently`: not supported by hbd's replicated device; only DRBD's default `rr-conflict disconnect;`",
    );
    one(
        &res("disk { c-plan-ahead fast; }"),
        "drbd.conf:2: c-plan-ahead: `fast`: expected a number",
    );
    one(
        &res("disk { disk-flushes maybe; }"),
        "drbd.conf:2: disk-flushes: `maybe`: expected yes or no",
    );
    one(
        &res("disk { no-disk-flushes yes; }"),
        "drbd.conf:2: no-disk-flushes: unexpected `yes`: expected `;`",
    );
    one(
        &res("handlers { bogus \"x\"; }"),
        "drbd.conf:2: bogus: `bogus`: not supported",
    );
    one(
        "include \"/etc/drbd.d/r0.res\";\n",
        "drbd.conf:1: include: cannot read `/etc/drbd.d/r0.res`",
    );
    one(
        "include drbd.d/*.res drbd.d/*.conf;\n",
        "drbd.conf:1: include: expected `include \"PATTERN\";`",
    );
    one(
        "common { device /dev/drbd0; }\n",
        "drbd.conf:1: device: `device` belongs inside an `on HOST { }` section",
    );
    one(
        &res("address 10.0.0.1:7789;"),
        "drbd.conf:2: address: `address` belongs inside an `on HOST { }` section",
    );
    one(
        "global { disable-ip-verification x { } }\n",
        "drbd.conf:1: disable-ip-verification: missing `;` after `disable-ip-verification`",
    );
    one(
        "common { on a { } }\n",
        "drbd.conf:1: on: `on`: not supported",
    );
    // syntax
    one(
        &res("protocol C\nstartup { wfc-timeout 1; }"),
        "drbd.conf:2: protocol: missing `;` after `C`",
    );
    one(
        &res("syncer { rate 10M }"),
        "drbd.conf:2: rate: missing `;` after `10M`",
    );
    one(
        "global { usage-count no;\n",
        "drbd.conf:1: global: `{` is never closed: missing `}`",
    );
    one(
        &format!("{}}}\n", res("")),
        "drbd.conf:6: }: `}` without a matching `{`",
    );
    one(
        &res("protocol C C;"),
        "drbd.conf:2: protocol: unexpected `C`: expected `;`",
    );
    one(&res("{ }"), "drbd.conf:2: {: unexpected `{`");
    one(&res(";"), "drbd.conf:2: ;: unexpected `;`");
    one(
        &res("net { shared-secret \"abc; }"),
        "drbd.conf:2: \": string not closed on this line",
    );
    one(
        &res("syncer;"),
        "drbd.conf:2: syncer: `syncer` is a section: expected `{`",
    );
    one(
        &res("protocol { }"),
        "drbd.conf:2: protocol: `protocol` takes a value and `;`, not a `{ }` section",
    );
    one(
        "resource { }\n",
        "drbd.conf:1: resource: missing name before `{`",
    );
    one(&res("syncer { rate; }"), "drbd.conf:2: rate: missing value");
    one(
        "resource\n",
        "drbd.conf:1: resource: missing `;` after `resource`",
    );
    // bad values
    one(
        &res("syncer { rate 10X; }"),
        "drbd.conf:2: rate: `10X`: expected a rate",
    );
    one(
        &res("disk { resync-rate 0; }"),
        "drbd.conf:2: resync-rate: `0`: a resync rate must be more than zero",
    );
    one(
        &res("startup { wfc-timeout 1.5; }"),
        "drbd.conf:2: wfc-timeout: `1.5`: expected whole seconds",
    );
    one(
        &res("startup { degr-wfc-timeout -1; }"),
        "drbd.conf:2: degr-wfc-timeout: `-1`: expected whole seconds",
    );
    one(&res("disk { on-io-error panic; }"), "drbd.conf:2: on-io-error: `panic`: not supported by hbd; expected `detach`, `pass_on`, `call-local-io-error`");
    one(
        &res("disk { fencing stonith; }"),
        "drbd.conf:2: fencing: `stonith`",
    );
    one(
        &res("net { after-sb-0pri discard-node-a; }"),
        "drbd.conf:2: after-sb-0pri: `discard-node-a`",
    );
    one(
        &res("net { after-sb-1pri call-pri-lost-after-sb; }"),
        "drbd.conf:2: after-sb-1pri: `call-pri-lost-after-sb`",
    );
    one(
        &res("net { after-sb-2pri violently-as0p; }"),
        "drbd.conf:2: after-sb-2pri: `violently-as0p`",
    );
    one(
        &res("net { shared-secret \"\"; }"),
        "drbd.conf:2: shared-secret: must be 1 to 64 bytes",
    );
    one(
        "global { usage-count maybe; }\n",
        "drbd.conf:1: usage-count: `maybe`",
    );
    one(
        "global { minor-count lots; }\n",
        "drbd.conf:1: minor-count: `lots`: not a number",
    );
    let host = |body: &str| {
        format!("resource r {{ on a {{ {body} }}\n on b {{ device /dev/drbd0; disk /dev/sda7; address 10.0.0.2:7789; }} }}\n")
    };
    one(
        &host("device /dev/drbd0; disk /dev/sda7; address 10.0.0.1;"),
        "drbd.conf:1: address: `10.0.0.1`: expected IPv4ADDRESS:PORT",
    );
    one(
        &host("device /dev/drbd0; disk /dev/sda7; address node1:7789;"),
        "drbd.conf:1: address: `node1:7789`: expected IPv4ADDRESS:PORT",
    );
    one(
        &host("device /dev/drbd0; disk /dev/sda7; address 10.0.0.1:0;"),
        "drbd.conf:1: address: `10.0.0.1:0`: needs a real address and a non-zero port",
    );
    one(
        &host("device /dev/drbd0; disk /dev/sda7; address ipv6 [fd00::1]:7789;"),
        "drbd.conf:1: address: `ipv6`: only ipv4 addresses are supported",
    );
    one(
        &host("device /dev/drbd0 minor x; disk /dev/sda7; address 10.0.0.1:7789;"),
        "drbd.conf:1: device: `x`: not a device minor number",
    );
    one(
        &host("device drbd0; disk /dev/sda7; address 10.0.0.1:7789;"),
        "drbd.conf:1: device: `drbd0`: expected an absolute device path",
    );
    one(
        &host("device /dev/drbd0 major 1; disk /dev/sda7; address 10.0.0.1:7789;"),
        "drbd.conf:1: device: expected `device /dev/drbdN;`",
    );
    one(
        &host("device /dev/drbd0; disk none; address 10.0.0.1:7789;"),
        "drbd.conf:1: disk: `none`: diskless nodes are not supported",
    );
    one(
        &host("device /dev/drbd0; disk sda7; address 10.0.0.1:7789;"),
        "drbd.conf:1: disk: `sda7`: expected an absolute path",
    );
    // protocol A/B
    one(
        &res("protocol A;"),
        "drbd.conf:2: protocol: only protocol C: a write completes when both nodes have it",
    );
    one(
        &res("net { protocol B; }"),
        "drbd.conf:2: protocol: only protocol C: a write completes when both nodes have it",
    );
    one(
        "common { protocol A; }\n",
        "drbd.conf:1: protocol: only protocol C",
    );
    one(
        &res("protocol D;"),
        "drbd.conf:2: protocol: `D`: expected C",
    );
    // duplicates within a resource
    one(
        &res("protocol C;\nnet { protocol C; }"),
        "drbd.conf:3: protocol: given twice (first on line 2)",
    );
    one(
        &res("handlers { split-brain a; split-brain b; }"),
        "drbd.conf:2: split-brain: given twice (first on line 2)",
    );
    one(
        "global { }\nglobal { }\n",
        "drbd.conf:2: global: given twice (first on line 1)",
    );
    // hosts
    one(
        "resource r {\n on a { device /dev/drbd0; disk /dev/sda7; address 10.0.0.1:7789; }\n}\n",
        "drbd.conf:1: resource: resource `r` needs exactly two `on` hosts, found 1",
    );
    one(
        &res("on c { device /dev/drbd0; disk /dev/sda7; address 10.0.0.3:7789; }"),
        "drbd.conf:1: resource: resource `r0` needs exactly two `on` hosts, found 3",
    );
    one(
        &res("on a { device /dev/drbd0; disk /dev/sda7; address 10.0.0.3:7789; }"),
        "drbd.conf:3: on: host `a` given twice (first on line 2)",
    );
    one(
        &host("disk /dev/sda7;"),
        "drbd.conf:1: on: host `a` has no device, address",
    );
    one(
        "resource r { on { } on b c { } }\n",
        "drbd.conf:1: on: missing name before `{`",
    );
    // resources
    let two = format!("{}{}", res(""), res(""));
    one(
        &two,
        "drbd.conf:6: resource: resource `r0` defined twice (first on line 1)",
    );
    let same_dev = format!(
        "{}{}",
        res(""),
        res("").replace("r0", "r1").replace(":7789", ":7790")
    );
    one(
        &same_dev,
        "drbd.conf:8: device: `/dev/drbd0` is already used by resource `r0` (line 3)",
    );
    one(
        &same_dev,
        "drbd.conf:8: disk: `/dev/sda7` is already used by resource `r0` (line 3)",
    );
    let same_port = format!(
        "{}{}",
        res(""),
        res("")
            .replace("r0", "r1")
            .replace("drbd0", "drbd1")
            .replace("sda7", "sda8")
    );
    one(
        &same_port,
        "drbd.conf:8: address: `10.0.0.1:7789` is already used by resource `r0` (line 3)",
    );
    one(
        &same_port,
        "drbd.conf:9: address: `10.0.0.2:7789` is already used by resource `r0` (line 4)",
    );
    // volume, meta-disk
    one(
        &res("volume 0 { device /dev/drbd1; disk /dev/sdb; meta-disk internal; }"),
        "drbd.conf:2: volume: `volume`: not supported by hbd's replicated device",
    );
    one(
        &host("volume 0 { } device /dev/drbd0; disk /dev/sda7; address 10.0.0.1:7789;"),
        "drbd.conf:1: volume: `volume`: not supported",
    );
    one(&res("meta-disk /dev/sdb1 0;"), "drbd.conf:2: meta-disk: `/dev/sdb1`: external meta-data is not supported; use `meta-disk internal;`");
    one(
        &res("meta-disk /dev/sdb1[0];"),
        "drbd.conf:2: meta-disk: `/dev/sdb1[0]`: external meta-data is not supported",
    );
    one(
        &res("flexible-meta-disk /dev/sdb1;"),
        "drbd.conf:2: flexible-meta-disk: flexible (external) meta-data is not supported",
    );
}

#[test]
fn all_errors_at_once_in_file_order_of_discovery() {
    let e = errs(&res("protocol A;\nsyncer { rate x; }\nbogus;"));
    assert_eq!(e.len(), 3, "{e:#?}");
}

#[test]
fn timeout_and_ko_count() {
    // DRBD 8.4: timeout in tenths of a second (1..=600, default 60 =
    // 6 s), ko-count 0..=200 (default 7, 0 = never drop the peer).
    let (c, e, w) = run(&res("net { timeout 5; ko-count 2; }"));
    assert!(e.is_empty() && w.is_empty(), "{e:?} {w:?}");
    assert_eq!(c.resources[0].timeout, Duration::from_millis(500));
    assert_eq!(c.resources[0].ko_count, 2);
    let (c, _, _) = run(&res(""));
    assert_eq!(c.resources[0].timeout, Duration::from_secs(6));
    assert_eq!(c.resources[0].ko_count, 7);
    let (c, _, _) = run(&format!("common {{ net {{ ko-count 0; }} }}\n{}", res("")));
    assert_eq!(c.resources[0].ko_count, 0);
    assert_eq!(
        errs(&res("net { timeout 0; }")),
        vec!["drbd.conf:2: timeout: `0`: expected tenths of a second, 1 to 600"]
    );
    assert_eq!(
        errs(&res("net { ko-count 201; }")),
        vec!["drbd.conf:2: ko-count: `201`: expected a count, 0 to 200"]
    );
    assert_eq!(errs(&res("disk { timeout 5; }")).len(), 1);
}

/// DRBD 9.2's `tls`: hbd seals the link unless both say `tls no`.
#[test]
fn tls_is_on_unless_turned_off() {
    let (c, e, w) = run(&res(""));
    assert!(e.is_empty() && w.is_empty(), "{e:?} {w:?}");
    assert!(c.resources[0].tls);
    let (c, e, _) = run(&format!("common {{ net {{ tls no; }} }}\n{}", res("")));
    assert!(e.is_empty(), "{e:?}");
    assert!(!c.resources[0].tls);
    let (c, _, _) = run(&format!(
        "common {{ net {{ tls no; }} }}\n{}",
        res("net { tls yes; }")
    ));
    assert!(c.resources[0].tls);
    assert_eq!(
        errs(&res("net { tls maybe; }")),
        vec!["drbd.conf:2: tls: `maybe`: not supported by hbd; expected `yes`, `no`"]
    );
    let (_, e, w) = run(&res("net { tls-privkey /etc/k; tls-certificate /etc/c; }"));
    assert!(e.is_empty(), "{e:?}");
    assert_eq!(w.len(), 2, "{w:?}");
}

#[test]
fn knobs_are_warnings() {
    let (_, e, w) = run(&res(
            "startup { outdated-wfc-timeout 1; degr-wfc-timeout 60; }\n\
             net { sndbuf-size 0; rcvbuf-size 0; max-buffers 8000; max-epoch-size 8000; connect-int 10; ping-int 10; ping-timeout 5; }\n\
             disk { al-extents 257; }\nsyncer { al-extents 257; }",
        ));
    assert!(e.is_empty(), "{e:?}");
    assert_eq!(w.len(), 10, "{w:#?}");
    assert!(w[0].starts_with("drbd.conf:2: outdated-wfc-timeout: accepted, no effect in hbd"));
    assert!(w
        .iter()
        .all(|w| w.ends_with(": accepted, no effect in hbd")));
}

#[test]
fn tokenizer_blanks_comments_strings() {
    let text = "resource\u{a0}r0\u{feff}{#c { ;\n on a { device /dev/drbd0;disk \"/dev/s\\\\d#a\"; address 10.0.0.1:7789; }\r\n on b { device /dev/drbd0; disk /dev/sda; address 10.0.0.2:7789; }}";
    let (c, e, _) = run(text);
    assert!(e.is_empty(), "{e:?}");
    let r = c.resource("r0").unwrap();
    assert_eq!(r.host("a").unwrap().disk, PathBuf::from("/dev/s\\d#a"));
    assert_eq!(r.host("b").unwrap().at, loc(3));
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let text = "a {".repeat(100_000);
    let e = errs(&text);
    assert!(e.iter().any(|e| e.contains("nested too deep")), "{e:?}");
}

proptest! {
    #[test]
    fn garbage_never_panics(s in "\\PC{0,300}") {
        let _ = parse(Path::new("x"), &s);
    }

    #[test]
    fn token_soup_never_panics(toks in prop::collection::vec(prop::sample::select(vec![
        "{", "}", ";", "\"", "#", "\n", "\u{a0}", " ", "resource", "r0", "on", "a", "b",
        "device", "/dev/drbd0", "minor", "0", "disk", "/dev/sda", "address", "ipv4",
        "10.0.0.1:7789", "net", "protocol", "C", "A", "syncer", "rate", "10M", "common",
        "global", "startup", "wfc-timeout", "handlers", "split-brain", "meta-disk",
        "internal", "volume", "options",
    ]), 0..120)) {
        let text: String = toks.join(" ");
        let (_, errors, _) = parse(Path::new("x"), &text);
        for e in errors {
            prop_assert!(e.to_string().starts_with("x:"));
        }
    }
}

/// drbd-utils' stock files as Debian installs them (written here from
/// drbd.conf(5), not copied): /etc/drbd.conf only includes.
const STOCK_DRBD_CONF: &str =
    "# You can find an example in  /usr/share/doc/drbd.../drbd.conf.example\n\n\
include \"drbd.d/global_common.conf\";\ninclude \"drbd.d/*.res\";\n";

const STOCK_GLOBAL_COMMON: &str = "global {\n\
\tusage-count yes;\n\
\tudev-always-use-vnr; # implicit volumes like explicit ones\n\
\t# minor-count dialog-refresh disable-ip-verification\n\
}\n\
common {\n\
\thandlers {\n\
\t\t# fence-peer \"/usr/lib/drbd/crm-fence-peer.sh\";\n\
\t\t# split-brain \"/usr/lib/drbd/notify-split-brain.sh root\";\n\
\t}\n\
\tstartup {\n\t\t# wfc-timeout degr-wfc-timeout outdated-wfc-timeout wait-after-sb\n\t}\n\
\toptions {\n\t\t# cpu-mask on-no-data-accessible\n\t}\n\
\tdisk {\n\t\t# size on-io-error fencing disk-barrier disk-flushes\n\t}\n\
\tnet {\n\t\t# protocol timeout max-epoch-size max-buffers\n\t}\n\
}\n";

fn res_file(name: &str, minor: u32, port: u16) -> String {
    format!(
        "resource {name} {{\n  net {{ protocol C; }}\n  on Node-A {{\n    device /dev/drbd{minor};\n    disk /dev/vg/{name};\n    address 192.0.2.1:{port};\n    meta-disk internal;\n  }}\n  on node-b {{\n    device /dev/drbd{minor};\n    disk /dev/vg/{name};\n    address 192.0.2.2:{port};\n    meta-disk internal;\n  }}\n}}\n"
    )
}

#[test]
fn debian_stock_layout_with_includes() {
    let d = tempfile::tempdir().unwrap();
    let dd = d.path().join("drbd.d");
    std::fs::create_dir(&dd).unwrap();
    let main = d.path().join("drbd.conf");
    std::fs::write(&main, STOCK_DRBD_CONF).unwrap();
    std::fs::write(dd.join("global_common.conf"), STOCK_GLOBAL_COMMON).unwrap();
    std::fs::write(dd.join("r1.res"), res_file("r1", 1, 7790)).unwrap();
    // Latin-1 in a comment of an included file.
    let mut r0 = b"# Donn\xe9es\n".to_vec();
    r0.extend_from_slice(res_file("r0", 0, 7789).as_bytes());
    std::fs::write(dd.join("r0.res"), r0).unwrap();
    std::fs::write(dd.join("r0.res.orig"), "garbage").unwrap();
    let (c, e, w) = parse_files(&main, STOCK_DRBD_CONF, &mut FsFiles);
    assert!(e.is_empty(), "{e:#?}");
    let names: Vec<&str> = c.resources.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["r0", "r1"]);
    let r0 = c.resource("r0").unwrap();
    assert_eq!(r0.at.file, dd.join("r0.res"));
    assert_eq!(r0.at.line, 2);
    // Host names compare ignoring case, as heartbeat's node names.
    assert!(r0.host("node-a").is_some() && r0.host("NODE-B").is_some());
    assert_eq!(r0.peer("node-a").unwrap().name, "node-b");
    let gc = dd.join("global_common.conf").display().to_string();
    let w: Vec<String> = w.iter().map(|w| w.to_string()).collect();
    assert_eq!(
        w,
        [
            format!("{gc}:2: usage-count: accepted, no effect in hbd"),
            format!("{gc}:3: udev-always-use-vnr: accepted, no effect in hbd"),
        ]
    );

    // Errors name the included file and its line.
    std::fs::write(
        dd.join("r1.res"),
        res_file("r1", 1, 7790).replace("protocol C", "protocol A"),
    )
    .unwrap();
    let (_, e, _) = parse_files(&main, STOCK_DRBD_CONF, &mut FsFiles);
    let r1 = dd.join("r1.res").display().to_string();
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].to_string()
            .starts_with(&format!("{r1}:2: protocol: only protocol C")),
        "{e:?}"
    );

    // A plain name that is not there is an error; a glob matching nothing is not.
    let text = "include \"drbd.d/none/*.res\";\ninclude \"gone.conf\";\n";
    let (_, e, _) = parse_files(&main, text, &mut FsFiles);
    let e: Vec<String> = e.iter().map(|e| e.to_string()).collect();
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with(&format!("{}:2: include: cannot read", main.display())),
        "{e:?}"
    );

    // A file including itself is read once.
    let text = "include \"drbd.conf\";\ninclude \"drbd.d/r0.res\";\n";
    let (c, e, _) = parse_files(&main, text, &mut FsFiles);
    assert!(e.is_empty(), "{e:?}");
    assert_eq!(c.resources.len(), 1);
}

#[test]
fn defaults_tuning_and_83_names() {
    let (c, e, w) = run(&res(
        "net { rr-conflict disconnect; allow-two-primaries no; always-asbp no; on-congestion block;\n\
         verify-alg sha1; csums-alg md5; use-rle; max-buffers 8000; max-epoch-size 8000; sndbuf-size 512k;\n\
         rcvbuf-size 0; unplug-watermark 16; ko-count 4; data-integrity-alg crc32c; tcp-cork no; }\n\
         disk { c-plan-ahead 20; c-fill-target 10M; c-min-rate 250; c-max-rate 100M; c-delay-target 10;\n\
         disk-barrier no; disk-flushes no; md-flushes no; disk-drain yes; al-extents 3389; on-io-error detach; }\n\
         syncer { rate 33M; verify-alg crc32c; al-extents 257; cpu-mask 3; after r9; }\n\
         disk { no-disk-barrier; no-disk-flushes; no-md-flushes; no-disk-drain; }\n\
         options { cpu-mask ff; on-no-data-accessible io-error; }\n\
         handlers { outdate-peer \"/usr/lib/heartbeat/drbd-peer-outdater -t 5\"; }\n\
         startup { wfc-timeout 15; wait-after-sb; }\n\
         net { after-sb-0pri Discard-Zero-Changes; }",
    ));
    assert!(e.is_empty(), "{e:#?}");
    // One warning per tuning option; none for the defaults.
    assert!(
        w.iter()
            .all(|w| w.ends_with(": accepted, no effect in hbd")),
        "{w:#?}"
    );
    for k in [
        "verify-alg",
        "use-rle",
        "c-plan-ahead",
        "no-md-flushes",
        "cpu-mask",
        "wait-after-sb",
    ] {
        assert!(
            w.iter().any(|w| w.contains(&format!(": {k}: "))),
            "{k}: {w:#?}"
        );
    }
    assert!(!w
        .iter()
        .any(|w| w.contains("rr-conflict") || w.contains("on-congestion")));
    assert_eq!(w.len(), 30, "{w:#?}");
    let r = c.resource("r0").unwrap();
    assert_eq!(r.ko_count, 4);
    assert_eq!(r.resync_rate, Some(33 << 20));
    assert_eq!(r.after_sb_0pri, AfterSb0::DiscardZeroChanges);
    assert_eq!(
        r.handlers.get("fence-peer").map(String::as_str),
        Some("/usr/lib/heartbeat/drbd-peer-outdater -t 5")
    );
    one(
        &res("handlers { fence-peer \"a\"; outdate-peer \"b\"; }"),
        "drbd.conf:2: outdate-peer: given twice (first on line 2)",
    );
}
