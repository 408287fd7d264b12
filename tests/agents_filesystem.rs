//! The built-in `Filesystem` agent on real loop devices, through
//! `hbctl resource`.
//!
//! Safety: nothing is ever mounted in the test process's mount namespace.
//! Each test runs one shell script under `unshare --mount --propagation
//! private`, and every start/status/stop of that test happens inside it; the
//! mounts die with the namespace. Loop devices are detached in `Drop`, also
//! after a panic.

mod common;

use common::{require_root, HBCTL};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A loop device over a file; detached on drop.
struct LoopDev {
    dev: String,
}

impl Drop for LoopDev {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["-d", &self.dev]).status();
    }
}

/// A filesystem on a loop device, a mount point and a config dir.
struct Fs {
    // Dropped first: the loop device before its backing file's directory.
    dev: LoopDev,
    dir: tempfile::TempDir,
}

impl Fs {
    /// `mkfs` (e.g. `["mkfs.ext4", "-q"]`) on a fresh 32 MiB loop device;
    /// `cluster_toml` goes to `CFG/cluster.toml`.
    fn new(mkfs: &[&str], cluster_toml: &str) -> Fs {
        require_root();
        let dir = tempfile::Builder::new()
            .prefix("hbd-fs-")
            .tempdir()
            .unwrap();
        let img = dir.path().join("img");
        std::fs::File::create(&img)
            .unwrap()
            .set_len(32 << 20)
            .unwrap();
        let out = Command::new(mkfs[0])
            .args(&mkfs[1..])
            .arg(&img)
            .output()
            .unwrap();
        assert!(out.status.success(), "{mkfs:?}: {out:?}");
        let out = Command::new("losetup")
            .args(["--find", "--show"])
            .arg(&img)
            .output()
            .unwrap();
        assert!(out.status.success(), "losetup: {out:?}");
        let dev = LoopDev {
            dev: String::from_utf8_lossy(&out.stdout).trim().to_string(),
        };
        std::fs::create_dir(dir.path().join("cfg")).unwrap();
        std::fs::write(dir.path().join("cfg/cluster.toml"), cluster_toml).unwrap();
        Fs { dev, dir }
    }

    fn mnt(&self) -> PathBuf {
        self.dir.path().join("mnt")
    }

    /// Runs `script` with `sh` in a private mount namespace. It sees
    /// `$HBCTL`, `$DEV`, `$MNT`, `$CFG` and the helpers `res SPEC ACTION`
    /// (hbctl resource, stderr appended to `$LOG`) and `holder` (waits until
    /// pid `$1` runs `sleep` with its cwd at `$MNT`).
    fn run(&self, script: &str) -> Ran {
        let log = self.dir.path().join("log");
        let _ = std::fs::remove_file(&log);
        let prelude = r#"
set -u
res() { "$HBCTL" resource --config "$CFG" "$1" "$2" 2>>"$LOG"; }
holder() {
    n=0
    until [ "$(cat /proc/$1/comm 2>/dev/null)" = sleep ] && [ "$(readlink /proc/$1/cwd)" = "$MNT" ]; do
        n=$((n + 1)); [ $n -lt 600 ] || { echo "holder $1 never ready"; return 1; }
        sleep 0.05
    done
}
# Nothing of ours may outlive the namespace's script.
trap 'for p in $(jobs -p); do kill -9 $p 2>/dev/null; done' EXIT
"#;
        let out = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg(format!("{prelude}\n{script}"))
            .env("HBCTL", HBCTL)
            .env("DEV", &self.dev.dev)
            .env("MNT", self.mnt())
            .env("CFG", self.dir.path().join("cfg"))
            .env("LOG", &log)
            .env("HBD_LOG", "debug")
            .env("NO_COLOR", "1")
            .output()
            .expect("run unshare");
        Ran {
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            log: std::fs::read_to_string(&log).unwrap_or_default(),
            code: out.status.code(),
            script: script.to_string(),
        }
    }
}

/// What a namespace script printed: `key=value` lines on stdout, the agents'
/// stderr in `log`.
struct Ran {
    stdout: String,
    log: String,
    code: Option<i32>,
    script: String,
}

impl Ran {
    fn get(&self, key: &str) -> String {
        let prefix = format!("{key}=");
        self.stdout
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no `{key}=` line\n{self}"))
            .to_string()
    }

    fn expect(&self, key: &str, want: &str) {
        assert_eq!(self.get(key), want, "{key}\n{self}");
    }

    fn log_has(&self, s: &str) -> bool {
        self.log.contains(s)
    }
}

impl std::fmt::Display for Ran {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "--- script (exit {:?})\n{}\n--- stdout\n{}--- agent stderr\n{}",
            self.code, self.script, self.stdout, self.log
        )
    }
}

fn spec(fs: &Fs, rest: &str) -> String {
    format!("Filesystem::{}::{}{rest}", fs.dev.dev, fs.mnt().display())
}

/// The mountinfo line of `mnt` as the script printed it (`info=` key).
fn options_of(info: &str) -> Vec<&str> {
    // id parent maj:min root mount_point OPTIONS ...
    info.split(' ').nth(5).unwrap_or("").split(',').collect()
}

#[test]
fn start_status_stop_round_trip_is_idempotent() {
    let fs = Fs::new(&["mkfs.ext4", "-q"], "");
    let s = spec(&fs, "::ext4");
    let r = fs.run(&format!(
        r#"
S='{s}'
res "$S" status >/dev/null; echo before=$?
res "$S" start; echo start=$?
res "$S" start; echo again=$?
res "$S" status; echo status=$?
echo "mounted=$(grep -c " $MNT " /proc/self/mountinfo)"
echo hello > "$MNT/file"; echo write=$?
res "$S" stop; echo stop=$?
res "$S" status >/dev/null; echo after=$?
echo "mounted_after=$(grep -c " $MNT " /proc/self/mountinfo)"
res "$S" stop; echo stop_again=$?
res "$S" start; echo restart=$?
echo "content=$(cat "$MNT/file")"
res "$S" stop; echo stop3=$?
"#
    ));
    r.expect("before", "3");
    r.expect("start", "0");
    r.expect("again", "0");
    r.expect("status", "0");
    assert!(r.stdout.contains("running\n"), "{r}");
    r.expect("mounted", "1");
    r.expect("write", "0");
    r.expect("stop", "0");
    r.expect("after", "3");
    r.expect("mounted_after", "0");
    r.expect("stop_again", "0");
    r.expect("restart", "0");
    r.expect("content", "hello");
    r.expect("stop3", "0");
    assert!(r.log_has("already mounted"), "{r}");
}

#[test]
fn options_ro_noatime_are_applied() {
    let fs = Fs::new(&["mkfs.ext4", "-q"], "");
    // No FSTYPE: read from the superblock.
    let s = spec(&fs, "::::ro,noatime,nodev");
    let r = fs.run(&format!(
        r#"
S='{s}'
res "$S" start; echo start=$?
echo "info=$(grep " $MNT " /proc/self/mountinfo)"
touch "$MNT/x" 2>/dev/null; echo touch=$?
res "$S" stop; echo stop=$?
"#
    ));
    r.expect("start", "0");
    let info = r.get("info");
    let opts = options_of(&info);
    for o in ["ro", "noatime", "nodev"] {
        assert!(opts.contains(&o), "{o} missing in {info}\n{r}");
    }
    assert!(info.contains(" - ext4 "), "{info}");
    assert_ne!(r.get("touch"), "0", "wrote on a ro mount\n{r}");
    r.expect("stop", "0");
}

#[test]
fn fsck_auto_checks_ext2_but_not_ext4() {
    let ext2 = Fs::new(&["mkfs.ext2", "-q"], "");
    let r = ext2.run(&format!(
        "res '{}' start; echo start=$?\nres '{0}' stop; echo stop=$?",
        spec(&ext2, "::ext2")
    ));
    r.expect("start", "0");
    r.expect("stop", "0");
    assert!(r.log_has("fsck before mount"), "{r}");
    // e2fsck's own report, logged at debug.
    assert!(r.log_has("clean"), "{r}");

    let ext4 = Fs::new(&["mkfs.ext4", "-q"], "");
    let r = ext4.run(&format!(
        "res '{}' start; echo start=$?\nres '{0}' stop; echo stop=$?",
        spec(&ext4, "::ext4")
    ));
    r.expect("start", "0");
    r.expect("stop", "0");
    assert!(!r.log_has("fsck before mount"), "{r}");
    assert!(r.log_has("fsck skipped"), "{r}");
}

#[test]
fn fsck_force_checks_ext4_and_never_skips_ext2() {
    let ext4 = Fs::new(
        &["mkfs.ext4", "-q"],
        "[resource_defaults]\nfsck = \"force\"\n",
    );
    let r = ext4.run(&format!(
        "res '{}' start; echo start=$?\nres '{0}' stop; echo stop=$?",
        spec(&ext4, "")
    ));
    r.expect("start", "0");
    r.expect("stop", "0");
    assert!(r.log_has("fsck before mount"), "{r}");

    let ext2 = Fs::new(
        &["mkfs.ext2", "-q"],
        "[resource_defaults]\nfsck = \"never\"\n",
    );
    let r = ext2.run(&format!(
        "res '{}' start; echo start=$?\nres '{0}' stop; echo stop=$?",
        spec(&ext2, "::ext2")
    ));
    r.expect("start", "0");
    r.expect("stop", "0");
    assert!(!r.log_has("fsck before mount"), "{r}");
}

#[test]
fn fsck_finding_damage_fails_the_start() {
    let fs = Fs::new(&["mkfs.ext2", "-q"], "");
    // Clear the root inode and mark the filesystem unclean: e2fsck -p gives
    // up with exit 4 (UNEXPECTED INCONSISTENCY).
    for req in ["clri <2>", "ssv state 0"] {
        let out = Command::new("debugfs")
            .args(["-w", "-R", req, &fs.dev.dev])
            .output()
            .unwrap();
        assert!(out.status.success(), "debugfs {req}: {out:?}");
    }
    let r = fs.run(&format!(
        "res '{}' start; echo start=$?\nres '{0}' status >/dev/null; echo status=$?",
        spec(&fs, "::ext2")
    ));
    r.expect("start", "1");
    r.expect("status", "3");
    assert!(r.log_has("fsck failed (exit 4)"), "{r}");
    assert!(r.log_has("UNEXPECTED INCONSISTENCY"), "{r}");
}

#[test]
fn a_holder_gets_term_and_the_unmount_succeeds() {
    let fs = Fs::new(
        &["mkfs.ext4", "-q"],
        "[resource_defaults]\nkill_grace = \"30s\"\n",
    );
    let s = spec(&fs, "::ext4");
    let r = fs.run(&format!(
        r#"
S='{s}'
res "$S" start; echo start=$?
(cd "$MNT" && exec sleep 300) &
pid=$!
holder $pid
res "$S" stop; echo stop=$?
wait $pid; echo holder=$?
res "$S" status >/dev/null; echo status=$?
"#
    ));
    r.expect("start", "0");
    r.expect("stop", "0");
    // 128 + SIGTERM.
    r.expect("holder", "143");
    r.expect("status", "3");
    assert!(r.log_has("signalling a process holding the mount"), "{r}");
    assert!(r.log_has("SIGTERM") && r.log_has("comm=sleep"), "{r}");
    assert!(!r.log_has("SIGKILL"), "{r}");
}

#[test]
fn a_holder_ignoring_term_is_killed_after_kill_grace() {
    let fs = Fs::new(
        &["mkfs.ext4", "-q"],
        "[resource_defaults]\nkill_grace = \"1s\"\n",
    );
    let s = spec(&fs, "::ext4");
    let r = fs.run(&format!(
        r#"
S='{s}'
res "$S" start; echo start=$?
# An ignored signal stays ignored across exec.
(cd "$MNT" && trap '' TERM && exec sleep 300) &
pid=$!
holder $pid
# And one holding an open file rather than its cwd.
(exec sleep 300 3<"$MNT/lost+found") &
fdpid=$!
until [ -e /proc/$fdpid/fd/3 ]; do sleep 0.05; done
res "$S" stop; echo stop=$?
wait $pid; echo holder=$?
wait $fdpid; echo fdholder=$?
echo "mounted=$(grep -c " $MNT " /proc/self/mountinfo)"
"#
    ));
    r.expect("start", "0");
    r.expect("stop", "0");
    // 128 + SIGKILL, 128 + SIGTERM.
    r.expect("holder", "137");
    r.expect("fdholder", "143");
    r.expect("mounted", "0");
    assert!(r.log_has("SIGTERM") && r.log_has("SIGKILL"), "{r}");
    assert!(r.log_has("holds=fd 3"), "{r}");
}

#[test]
fn wrong_fstype_or_missing_device_fails_clearly() {
    let fs = Fs::new(&["mkfs.ext4", "-q"], "");
    let missing = format!(
        "Filesystem::{}::{}::ext4",
        fs.dir.path().join("no-such-device").display(),
        fs.mnt().display()
    );
    let file = format!(
        "Filesystem::{}::{}::ext4",
        fs.dir.path().join("img").display(),
        fs.mnt().display()
    );
    let r = fs.run(&format!(
        r#"
res '{wrong}' start; echo wrong=$?
res '{missing}' start; echo missing=$?
res '{file}' start; echo file=$?
res '{wrong}' status >/dev/null; echo status=$?
res 'Filesystem::sdb1::/mnt' start; echo bad_spec=$?
"#,
        wrong = spec(&fs, "::xfs"),
    ));
    r.expect("wrong", "1");
    r.expect("missing", "1");
    r.expect("file", "1");
    r.expect("status", "3");
    // A spec error is a configuration error (hbctl exit 2).
    r.expect("bad_spec", "2");
    assert!(r.log_has("mount as xfs"), "{r}");
    assert!(r.log_has("the superblock says ext4"), "{r}");
    assert!(r.log_has("No such file or directory"), "{r}");
    assert!(r.log_has("is not a block device"), "{r}");
    assert!(r.log_has("must be an absolute path, LABEL"), "{r}");
}

#[test]
fn something_else_mounted_there_is_an_error_and_left_alone() {
    let fs = Fs::new(&["mkfs.ext4", "-q"], "");
    let s = spec(&fs, "::ext4");
    let r = fs.run(&format!(
        r#"
S='{s}'
mkdir -p "$MNT" && mount -t tmpfs hbdtest "$MNT"; echo tmpfs=$?
res "$S" start; echo start=$?
res "$S" status >/dev/null; echo status=$?
res "$S" stop; echo stop=$?
echo "source=$(grep " $MNT " /proc/self/mountinfo | sed 's/.* - //')"
"#
    ));
    r.expect("tmpfs", "0");
    r.expect("start", "1");
    r.expect("status", "3");
    r.expect("stop", "0");
    assert!(r.get("source").starts_with("tmpfs hbdtest"), "{r}");
    assert!(r.log_has("is already mounted from hbdtest (tmpfs)"), "{r}");
}

#[test]
fn label_and_tmpfs_sources() {
    let label = format!("hbd{}", std::process::id() % 1_000_000);
    let fs = Fs::new(&["mkfs.ext4", "-q", "-L", &label], "");
    let by_label = format!("Filesystem::LABEL={label}::{}", fs.mnt().display());
    let tmp: &Path = &fs.dir.path().join("tmp");
    let tmpfs = format!(
        "Filesystem::hbdtmp::{}::tmpfs::size=1m,mode=0700",
        tmp.display()
    );
    let r = fs.run(&format!(
        r#"
res '{by_label}' start; echo start=$?
res '{by_label}' status >/dev/null; echo status=$?
echo "source=$(grep " $MNT " /proc/self/mountinfo | sed 's/.* - //')"
res '{by_label}' stop; echo stop=$?
res '{tmpfs}' start; echo tmpfs_start=$?
res '{tmpfs}' status >/dev/null; echo tmpfs_status=$?
res '{tmpfs}' stop; echo tmpfs_stop=$?
res '{tmpfs}' status >/dev/null; echo tmpfs_after=$?
"#
    ));
    r.expect("start", "0");
    r.expect("status", "0");
    assert!(
        r.get("source")
            .starts_with(&format!("ext4 {} ", fs.dev.dev)),
        "{r}"
    );
    r.expect("stop", "0");
    r.expect("tmpfs_start", "0");
    r.expect("tmpfs_status", "0");
    r.expect("tmpfs_stop", "0");
    r.expect("tmpfs_after", "3");
}

#[test]
fn a_mount_below_refuses_the_stop_until_it_is_gone() {
    let fs = Fs::new(&["mkfs.ext4", "-q"], "");
    let s = spec(&fs, "::ext4");
    let r = fs.run(&format!(
        r#"
S='{s}'
res "$S" start; echo start=$?
mkdir "$MNT/sub" && mount -t tmpfs hbdsub "$MNT/sub"; echo sub=$?
res "$S" stop; echo stop=$?
res "$S" status >/dev/null; echo status=$?
umount "$MNT/sub"
res "$S" stop; echo stop2=$?
"#
    ));
    r.expect("start", "0");
    r.expect("sub", "0");
    r.expect("stop", "1");
    r.expect("status", "0");
    r.expect("stop2", "0");
    assert!(r.log_has("has mounts below it"), "{r}");
}
