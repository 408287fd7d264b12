//! The Debian package (issue 17): `scripts/package` builds it from the
//! binaries this test run built, and dpkg installs it into a clean root,
//! where the installed binaries run from their installed paths with nothing
//! of the build tree.
//!
//! The root is this machine's `/` under a copy-on-write overlay, in a mount
//! namespace of its own (`unshare --mount`, a child process): the source
//! tree is hidden under an empty tmpfs and hbd's own paths are emptied
//! first, so an agent or binary found there can only come from the package.
//! `dpkg -i` there resolves the package's Depends and Conflicts against the
//! real system and runs its maintainer scripts; `dpkg --purge` removes it
//! again. Nothing reaches the real root: the namespace and its mounts end
//! with the child, also when the test panics (the child dies with it).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn show(what: &str, out: &Output) -> String {
    format!(
        "{what}: {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The directory cargo built this test's binaries in (target/debug).
fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_hbd"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// What runs inside the mount namespace: $1 the .deb, $2 a scratch
/// directory, $3 the source tree to hide. Each check says what it checks;
/// the first failure ends the script (set -e) with its message.
const IN_ROOT: &str = r#"
set -eu
deb=$1 w=$2 src=$3
fail() { echo "FAILED: $*" >&2; exit 1; }
mount -t tmpfs -o mode=0755 hbd-pkg "$w"
mkdir "$w/upper" "$w/work" "$w/root"
mount -t overlay overlay -o "lowerdir=/,upperdir=$w/upper,workdir=$w/work" "$w/root"
r=$w/root
mount --rbind /dev "$r/dev"
mount -t proc proc "$r/proc"
mount -t tmpfs tmpfs "$r/run"
mount -t tmpfs tmpfs "$r/tmp"
# The build tree and anything of hbd's already on this machine: gone.
[ -d "$r$src" ] && mount -t tmpfs -o ro tmpfs "$r$src"
rm -rf "$r/usr/lib/hbd" "$r/etc/ha.d" "$r/usr/sbin/hbd" "$r/usr/sbin/hbctl" "$r/usr/sbin/hbd-disk"
[ ! -e "$r$src/Cargo.toml" ] || fail "the source tree is visible in the root"
cp "$deb" "$r/tmp/hbd.deb"
in_root() { chroot "$r" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "$@"; }

echo "== dpkg -i"
in_root dpkg -i /tmp/hbd.deb
in_root dpkg -s hbd | grep -qx 'Status: install ok installed' || fail "dpkg -s hbd"

echo "== hbd --version"
v=$(in_root /usr/sbin/hbd --version)
echo "$v"
case $v in "hbd "[0-9]*) ;; *) fail "hbd --version printed '$v'" ;; esac
in_root /usr/sbin/hbd-disk --version

echo "== hbctl check on the packaged example"
in_root cp -R /usr/share/doc/hbd/examples/ha.d /etc/ha.d
printf 'auth 1\n1 sha256 %s\n' 0123456789abcdef0123456789abcdef01234567 >"$r/etc/ha.d/authkeys"
chmod 600 "$r/etc/ha.d/authkeys"
in_root /usr/sbin/hbctl check --node n1 || fail "hbctl check"

echo "== agents from /usr/lib/hbd/resources"
# haresources' daemon agent exists only in the package now: status of a
# program that is not running is "stopped", exit 3.
set +e
out=$(in_root /usr/sbin/hbctl resource --node n1 daemon::/tmp/none.pid::/bin/sleep::1000 status)
rc=$?
set -e
echo "$out"
[ "$rc" = 3 ] && [ "$out" = stopped ] || fail "hbctl resource daemon::... status: exit $rc"

echo "== OCF provider hbd"
for a in mysqld daemon; do
  in_root env OCF_ROOT=/usr/lib/ocf /usr/lib/ocf/resource.d/hbd/$a meta-data | grep -q "<resource-agent name=\"$a\"" ||
    fail "ocf:hbd:$a meta-data"
done

echo "== compatibility commands"
set +e
out=$(in_root /usr/bin/cl_status hbstatus); rc=$?
set -e
echo "$out"
[ "$rc" = 1 ] && [ "$out" = "Heartbeat is stopped on this machine." ] || fail "cl_status hbstatus: exit $rc"
set +e
out=$(in_root /usr/share/heartbeat/hb_standby all 2>&1); rc=$?
set -e
echo "$out"
# hb_standby ran the installed hbctl, which found no daemon.
[ "$rc" = 1 ] && case $out in *"/run/hbd/hbd.sock"*) true ;; *) false ;; esac ||
  fail "hb_standby: exit $rc"
in_root /usr/bin/hb_takeover --help >/dev/null 2>&1 && fail "hb_takeover --help accepted"

echo "== man pages and completions"
for p in man8/hbd.8 man8/hbctl.8 man8/hbd-disk.8 man8/hbctl-disk-up.8 man5/hbd-config.5; do
  [ -s "$r/usr/share/man/$p.gz" ] || fail "missing /usr/share/man/$p.gz"
done
if [ -x "$r/usr/bin/man" ]; then
  in_root man -P cat hbctl 2>/dev/null | grep -q 'hbctl-standby' || fail "man hbctl"
  in_root man -P cat 5 hbd-config 2>/dev/null | grep -q 'haresources' || fail "man 5 hbd-config"
fi
for f in /usr/share/bash-completion/completions/hbctl /usr/share/zsh/vendor-completions/_hbctl \
         /usr/share/fish/vendor_completions.d/hbctl.fish /usr/share/bash-completion/completions/hbd; do
  [ -s "$r$f" ] || fail "missing $f"
done
grep -q 'standby' "$r/usr/share/bash-completion/completions/hbctl" || fail "bash completion lacks standby"

echo "== systemd units"
grep -qx 'KillMode=process' "$r/lib/systemd/system/hbd.service" || fail "hbd.service KillMode"
if [ -x "$r/usr/bin/systemd-analyze" ]; then
  in_root systemd-analyze verify /lib/systemd/system/hbd.service \
    /lib/systemd/system/hbd-disk@.service >"$w/verify" 2>&1 || { cat "$w/verify"; fail "systemd-analyze verify"; }
  cat "$w/verify"
  [ ! -s "$w/verify" ] || fail "systemd-analyze verify has remarks"
else
  echo "systemd-analyze not installed: units not verified"
fi
in_root logrotate -d /etc/logrotate.d/hbd >/dev/null 2>&1 || [ ! -x "$r/usr/sbin/logrotate" ] ||
  fail "logrotate -d /etc/logrotate.d/hbd"

echo "== dpkg --purge"
in_root dpkg --purge hbd
for f in /usr/sbin/hbd /usr/sbin/hbctl /usr/sbin/hbd-disk /usr/lib/hbd /usr/bin/cl_status \
         /usr/lib/ocf/resource.d/hbd \
         /lib/systemd/system/hbd.service /etc/logrotate.d/hbd /etc/default/hbd \
         /usr/share/man/man8/hbctl.8.gz /var/lib/hbd; do
  [ ! -e "$r$f" ] && [ ! -L "$r$f" ] || fail "$f left after purge"
done
echo "== ok"
"#;

#[test]
fn the_package_installs_runs_from_its_paths_and_purges() {
    common::require_root();
    if Command::new("dpkg-deb").arg("--version").output().is_err() {
        eprintln!(
            "SKIPPED: dpkg-deb is not installed (Debian's dpkg): the package cannot be built"
        );
        return;
    }
    let repo = common::repo();
    let scratch = tempfile::Builder::new()
        .prefix("hbd-package-")
        .tempdir()
        .unwrap();
    let out_dir = scratch.path().join("out");
    let built = Command::new(repo.join("scripts/package"))
        .arg("--bin-dir")
        .arg(bin_dir())
        .arg("--out")
        .arg(&out_dir)
        .arg("--fast")
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "{}",
        show("scripts/package", &built)
    );
    let deb = PathBuf::from(
        String::from_utf8_lossy(&built.stdout)
            .lines()
            .last()
            .unwrap_or_default()
            .trim(),
    );
    assert!(deb.is_file(), "{}", show("scripts/package", &built));

    // The control fields.
    let field = |f: &str| {
        let o = Command::new("dpkg-deb")
            .arg("-f")
            .arg(&deb)
            .arg(f)
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    assert_eq!(field("Package"), "hbd");
    assert_eq!(field("Conflicts"), "heartbeat");
    assert!(field("Depends").contains("libc6"), "{}", field("Depends"));

    let ns_dir = scratch.path().join("ns");
    std::fs::create_dir(&ns_dir).unwrap();
    let mut cmd = Command::new("unshare");
    cmd.args([
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        IN_ROOT,
        "sh",
    ])
    .arg(&deb)
    .arg(&ns_dir)
    .arg(&repo)
    .stdin(Stdio::null());
    common::die_with_test(&mut cmd);
    let out = cmd.output().expect("run unshare");
    let text = show("install in a clean root", &out);
    eprintln!("{text}");
    assert!(out.status.success(), "{text}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("== ok"),
        "{text}"
    );
}
