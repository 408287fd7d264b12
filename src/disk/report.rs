//! How `hbctl disk` shows a device's state (pure formatting, no I/O):
//!
//! - [`proc_lines`]: `/proc/drbd` as DRBD 8.4 prints it (`drbd_proc.c`), for
//!   people and scripts used to it;
//! - [`status_text`]: `drbdadm status`-like lines (role, disk, peer,
//!   replication, out of sync, resync progress, split brain);
//! - [`split_brain_text`]: what each side changed since a split brain.

use super::ctl::{DiskStatus, SplitBrainStatus, SyncStatus};
use super::state::{ConnState, DiskState};
use std::fmt::Write;
use std::path::Path;

/// The first line of `/proc/drbd`.
pub const PROC_VERSION: &str = "version: 8.4.11-hbd (api:1/proto:86-101)";

/// The minor number of a device: N of `/dev/drbdN`, else `index`.
pub fn minor_of(device: &Path, index: u32) -> u32 {
    device
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("drbd"))
        .and_then(|n| n.parse().ok())
        .unwrap_or(index)
}

/// `/proc/drbd` for these devices; each one's minor from its device path
/// (`/dev/drbdN`), else its place in the slice.
pub fn proc_lines(statuses: &[DiskStatus]) -> String {
    let with: Vec<(u32, Option<&DiskStatus>)> = statuses
        .iter()
        .enumerate()
        .map(|(i, s)| (minor_of(&s.device, i as u32), Some(s)))
        .collect();
    proc_lines_with_minors(&with)
}

/// `/proc/drbd` with explicit minors; `None` is a configured resource whose
/// device is not up (`cs:Unconfigured`).
pub fn proc_lines_with_minors(devices: &[(u32, Option<&DiskStatus>)]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{PROC_VERSION}");
    for (minor, s) in devices {
        match s {
            None => {
                let _ = writeln!(out, "{minor:2}: cs:Unconfigured");
            }
            Some(s) => proc_device(&mut out, *minor, s),
        }
    }
    out
}

fn proc_device(out: &mut String, minor: u32, s: &DiskStatus) {
    let user_paused = s.sync.as_ref().is_some_and(|y| y.paused);
    let _ = writeln!(
        out,
        // r (running), then aftr_isp, peer_isp, user_isp, susp_fen, susp_nod.
        "{minor:2}: cs:{} ro:{}/{} ds:{}/{} C {}--{}{}-",
        s.connection,
        s.role,
        s.peer_role,
        s.disk,
        s.peer_disk,
        if s.suspended { 's' } else { 'r' },
        if user_paused { 'u' } else { '-' },
        if s.suspended { 'f' } else { '-' },
    );
    let c = &s.counters;
    let _ = writeln!(
        out,
        "    ns:{} nr:{} dw:{} dr:{} al:{} bm:{} lo:0 pe:{} ua:0 ap:{} ep:{} wo:f oos:{}",
        c.ns,
        c.nr,
        c.dw,
        c.dr,
        c.al,
        c.bm,
        c.pe,
        c.ap,
        c.ep,
        s.out_of_sync_bytes / 1024
    );
    if let Some(y) = &s.sync {
        if is_syncing(s.connection) {
            out.push_str(&progress_lines(y, s.connection == ConnState::SyncTarget));
        }
    }
}

fn is_syncing(c: ConnState) -> bool {
    matches!(
        c,
        ConnState::SyncSource
            | ConnState::SyncTarget
            | ConnState::PausedSyncS
            | ConnState::PausedSyncT
    )
}

/// Permille done, as drbd_proc.c computes it from what is left.
fn permille(y: &SyncStatus) -> u64 {
    if y.total_bytes == 0 {
        return 1000;
    }
    let left = y.total_bytes.saturating_sub(y.done_bytes) / 1024;
    let total = y.total_bytes / 1024;
    1000 - (left * 1000) / (total + 1)
}

/// The progress bar and the finish/speed lines (`drbd_syncer_progress`).
fn progress_lines(y: &SyncStatus, target: bool) -> String {
    let res = permille(y);
    let x = (res / 50) as usize;
    let mut bar = String::from("\t[");
    for _ in 1..x.max(1) {
        bar.push('=');
    }
    bar.push('>');
    for _ in 0..20usize.saturating_sub(x) {
        bar.push('.');
    }
    // Beyond 4 GiB, drbd_proc.c counts in MiB.
    let (unit, shift) = if y.total_bytes > 4 << 30 {
        ('M', 20)
    } else {
        ('K', 10)
    };
    let left = y.total_bytes.saturating_sub(y.done_bytes) >> shift;
    let total = y.total_bytes >> shift;
    let _ = write!(
        bar,
        "] sync'ed:{:3}.{}% ({left}/{total}){unit}\n\t",
        res / 10,
        res % 10
    );
    let rt = y.eta_secs.unwrap_or(0);
    let speed = thousands(y.rate_bytes_per_sec / 1024);
    let _ = write!(
        bar,
        "finish: {}:{:02}:{:02} speed: {speed} ({speed})",
        rt / 3600,
        (rt % 3600) / 60,
        rt % 60
    );
    if target {
        let _ = write!(bar, " want: {}", thousands(y.limit_bytes_per_sec / 1024));
    }
    bar.push_str(" K/sec");
    if y.paused {
        bar.push_str(" (stalled)");
    }
    bar.push('\n');
    bar
}

/// 32108 -> "32,108" (`seq_printf_with_thousands_grouping`).
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// Seconds as H:MM:SS.
pub fn hms(secs: u64) -> String {
    format!("{}:{:02}:{:02}", secs / 3600, (secs % 3600) / 60, secs % 60)
}

/// Bytes for people: 512B, 4.0KiB, 1.5MiB, 2.0GiB.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n}B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1}{}", UNITS[unit])
}

/// A unix time in ms as local civil time (seconds precision).
pub fn when_ms(ms: u64) -> String {
    crate::jobs::cron::local_civil((ms / 1000) as i64).to_string()
}

/// `drbdadm status`-like text for one device:
///
/// ```text
/// r0 role:Primary
///   disk:UpToDate
///   b role:Secondary
///     replication:SyncSource peer-disk:Inconsistent done:31.40 eta:0:00:28 out-of-sync:702464KiB
/// ```
pub fn status_text(s: &DiskStatus) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{} role:{}", s.name, s.role);
    let mut disk = format!("  disk:{}", s.disk);
    if let Some(l) = &s.loop_device {
        let _ = write!(disk, " device:{} loop:{}", s.device.display(), l.display());
    }
    let _ = writeln!(out, "{disk}");
    let peer = if s.peer.is_empty() { "peer" } else { &s.peer };
    if s.connection < ConnState::Connected {
        let mut line = format!("  {peer} connection:{}", s.connection);
        // A peer known Outdated (or Inconsistent) while disconnected: the
        // fence-peer handler outdated it, promotion needs no handler.
        if matches!(s.peer_disk, DiskState::Outdated | DiskState::Inconsistent) {
            let _ = write!(line, " peer-disk:{}", s.peer_disk);
        }
        let _ = writeln!(out, "{line}");
    } else {
        let _ = writeln!(out, "  {peer} role:{}", s.peer_role);
        let mut line = format!(
            "    replication:{} peer-disk:{}",
            replication(s.connection),
            s.peer_disk
        );
        if let Some(y) = &s.sync {
            let _ = write!(line, " done:{:.2}", y.percent);
            if let Some(eta) = y.eta_secs {
                let _ = write!(line, " eta:{}", hms(eta));
            }
            if y.rate_bytes_per_sec > 0 {
                let _ = write!(line, " rate:{}/s", bytes(y.rate_bytes_per_sec));
            }
            if y.full {
                line.push_str(" full-sync");
            }
        }
        if s.out_of_sync_bytes > 0 {
            let _ = write!(line, " out-of-sync:{}KiB", s.out_of_sync_bytes / 1024);
        }
        let _ = writeln!(out, "{line}");
    }
    if s.connection < ConnState::Connected && s.out_of_sync_bytes > 0 {
        let _ = writeln!(
            out,
            "    out-of-sync:{}KiB (resynced when connected)",
            s.out_of_sync_bytes / 1024
        );
    }
    if let Some(v) = &s.verify {
        let pct = if v.total_bytes == 0 {
            100.0
        } else {
            v.done_bytes as f64 * 100.0 / v.total_bytes as f64
        };
        let _ = writeln!(
            out,
            "    verify:{} done:{pct:.2} mismatched:{}",
            if v.running { "running" } else { "finished" },
            bytes(v.mismatched_bytes)
        );
    }
    if let Some(sb) = &s.split_brain {
        let _ = writeln!(
            out,
            "  SPLIT BRAIN detected {} with {}: not merged (hbctl split-brain resolve {} --survivor NODE)",
            when_ms(sb.detected_unix_ms),
            sb.peer,
            s.name
        );
    }
    if s.suspended {
        let _ = writeln!(
            out,
            "  I/O SUSPENDED (fencing resource-and-stonith): writes are held until the peer \
             is fenced or the link is back (hbctl disk resume-io {} thaws by hand)",
            s.name
        );
    }
    if let Some(f) = &s.fence_peer {
        let _ = writeln!(out, "  fence-peer: {f}");
    }
    if let Some(e) = &s.last_error {
        let _ = writeln!(out, "  last error: {e}");
    }
    out
}

/// The replication state as `drbdadm status` names it (Established for
/// Connected, as DRBD 9 does, would confuse 8.4 users: kept as is).
fn replication(c: ConnState) -> &'static str {
    c.as_str()
}

/// What each side changed since the split brain of `s` (`hbctl split-brain`).
pub fn split_brain_text(s: &DiskStatus, sb: &SplitBrainStatus) -> String {
    let mut out = String::new();
    let last = |t: Option<u64>| t.map(when_ms).unwrap_or_else(|| "unknown".to_string());
    let _ = writeln!(
        out,
        "{}: split brain between {} and {} (detected {}); connection {}",
        s.name,
        s.node,
        sb.peer,
        when_ms(sb.detected_unix_ms),
        s.connection
    );
    let _ = writeln!(
        out,
        "  {:12} changed {} ({} bytes), last write {}; role {}",
        s.node,
        bytes(sb.my_changes_bytes),
        sb.my_changes_bytes,
        last(sb.my_last_write_unix_ms),
        s.role
    );
    let _ = writeln!(
        out,
        "  {:12} changed {} ({} bytes), last write {}",
        sb.peer,
        bytes(sb.peer_changes_bytes),
        sb.peer_changes_bytes,
        last(sb.peer_last_write_unix_ms)
    );
    // The side that served clients wrote more since the split (its
    // bitmap); on a tie, the side that wrote last.
    let mine = (sb.my_changes_bytes, sb.my_last_write_unix_ms.unwrap_or(0));
    let theirs = (
        sb.peer_changes_bytes,
        sb.peer_last_write_unix_ms.unwrap_or(0),
    );
    let (served, victim, victim_bytes) = if mine >= theirs {
        (&s.node, &sb.peer, sb.peer_changes_bytes)
    } else {
        (&sb.peer, &s.node, sb.my_changes_bytes)
    };
    if mine == (0, 0) && theirs == (0, 0) {
        let _ = writeln!(out, "  served clients: neither side wrote since the split");
    } else {
        let _ = writeln!(
            out,
            "  served clients: {served} (it changed more since the split{})",
            if sb.my_changes_bytes == sb.peer_changes_bytes {
                " or wrote last"
            } else {
                ""
            }
        );
    }
    let _ = writeln!(
        out,
        "  resolve: hbctl split-brain resolve {} --survivor {served} (discards {victim}'s {} ({victim_bytes} bytes, {} blocks of 4KiB) of changes)",
        s.name,
        bytes(victim_bytes),
        victim_bytes.div_ceil(4096),
    );
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::disk::ctl::Counters;
    use crate::disk::state::Role;
    use std::path::PathBuf;

    pub(crate) fn status() -> DiskStatus {
        DiskStatus {
            name: "r0".into(),
            node: "a".into(),
            peer: "b".into(),
            pid: 42,
            role: Role::Primary,
            peer_role: Role::Secondary,
            disk: DiskState::UpToDate,
            peer_disk: DiskState::UpToDate,
            connection: ConnState::Connected,
            device: PathBuf::from("/dev/drbd0"),
            loop_device: None,
            backing: PathBuf::from("/dev/loop7"),
            size_bytes: 1 << 30,
            out_of_sync_bytes: 0,
            sync: None,
            verify: None,
            split_brain: None,
            uuids: Default::default(),
            local_address: "192.0.2.1:7788".into(),
            peer_address: "192.0.2.2:7788".into(),
            counters: Counters {
                ns: 1024,
                nr: 0,
                dw: 2048,
                dr: 512,
                al: 3,
                bm: 1,
                pe: 0,
                ap: 0,
                ep: 1,
            },
            last_write_unix_ms: None,
            last_error: None,
            ever_connected: true,
            degr_wfc: false,
            suspended: false,
            fence_peer: None,
            latency: None,
        }
    }

    #[test]
    fn proc_connected() {
        let s = status();
        assert_eq!(
            proc_lines(&[s]),
            "version: 8.4.11-hbd (api:1/proto:86-101)\n \
             0: cs:Connected ro:Primary/Secondary ds:UpToDate/UpToDate C r-----\n    \
             ns:1024 nr:0 dw:2048 dr:512 al:3 bm:1 lo:0 pe:0 ua:0 ap:0 ep:1 wo:f oos:0\n"
        );
    }

    #[test]
    fn proc_minors() {
        assert_eq!(minor_of(Path::new("/dev/drbd3"), 0), 3);
        assert_eq!(minor_of(Path::new("/dev/mapper/x"), 5), 5);
        assert_eq!(minor_of(Path::new("/dev/drbdx"), 1), 1);
        let s = status();
        let text = proc_lines_with_minors(&[(0, Some(&s)), (1, None)]);
        assert!(text.ends_with(" 1: cs:Unconfigured\n"), "{text}");
    }

    #[test]
    fn proc_resync_matches_drbd() {
        let mut s = status();
        s.connection = ConnState::SyncSource;
        s.peer_disk = DiskState::Inconsistent;
        s.out_of_sync_bytes = 702464 * 1024;
        s.sync = Some(SyncStatus {
            source: true,
            full: false,
            paused: false,
            total_bytes: 1023932 * 1024,
            done_bytes: (1023932 - 702464) * 1024,
            percent: 31.4,
            rate_bytes_per_sec: 32108 * 1024,
            limit_bytes_per_sec: 40 << 20,
            eta_secs: Some(21),
        });
        let text = proc_lines(&[s.clone()]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[1],
            " 0: cs:SyncSource ro:Primary/Secondary ds:UpToDate/Inconsistent C r-----"
        );
        assert!(lines[2].ends_with("oos:702464"), "{}", lines[2]);
        assert_eq!(
            lines[3],
            "\t[=====>..............] sync'ed: 31.4% (702464/1023932)K"
        );
        assert_eq!(lines[4], "\tfinish: 0:00:21 speed: 32,108 (32,108) K/sec");
        // The target also says what it wants.
        s.connection = ConnState::SyncTarget;
        let text = proc_lines(&[s]);
        assert!(
            text.contains("speed: 32,108 (32,108) want: 40,960 K/sec"),
            "{text}"
        );
    }

    #[test]
    fn progress_bar_ends() {
        let mut y = SyncStatus {
            source: true,
            full: true,
            paused: true,
            total_bytes: 1 << 20,
            done_bytes: 0,
            percent: 0.0,
            rate_bytes_per_sec: 0,
            limit_bytes_per_sec: 0,
            eta_secs: None,
        };
        let t = progress_lines(&y, false);
        assert!(
            t.starts_with("\t[>....................] sync'ed:  0.1% (1024/1024)K"),
            "{t}"
        );
        assert!(t.ends_with("K/sec (stalled)\n"), "{t}");
        y.done_bytes = 1 << 20;
        let t = progress_lines(&y, false);
        assert!(
            t.starts_with("\t[===================>] sync'ed:100.0% (0/1024)K"),
            "{t}"
        );
        y.total_bytes = 10 << 30;
        y.done_bytes = 1 << 30;
        let t = progress_lines(&y, false);
        assert!(t.contains("sync'ed: 10.1% (9216/10240)M\n\tfinish:"), "{t}");
    }

    #[test]
    fn thousands_and_bytes() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(bytes(512), "512B");
        assert_eq!(bytes(4096), "4.0KiB");
        assert_eq!(bytes(3 << 29), "1.5GiB");
        assert_eq!(hms(3725), "1:02:05");
    }

    #[test]
    fn status_text_shapes() {
        let s = status();
        assert_eq!(
            status_text(&s),
            "r0 role:Primary\n  disk:UpToDate\n  b role:Secondary\n    \
             replication:Connected peer-disk:UpToDate\n"
        );
        let mut s = status();
        s.connection = ConnState::SyncTarget;
        s.role = Role::Secondary;
        s.disk = DiskState::Inconsistent;
        s.out_of_sync_bytes = 8 << 20;
        s.sync = Some(SyncStatus {
            source: false,
            full: false,
            paused: false,
            total_bytes: 16 << 20,
            done_bytes: 8 << 20,
            percent: 50.0,
            rate_bytes_per_sec: 1 << 20,
            limit_bytes_per_sec: 0,
            eta_secs: Some(8),
        });
        let t = status_text(&s);
        assert!(
            t.contains(
                "replication:SyncTarget peer-disk:UpToDate done:50.00 eta:0:00:08 \
                 rate:1.0MiB/s out-of-sync:8192KiB"
            ),
            "{t}"
        );
        let mut s = status();
        s.connection = ConnState::StandAlone;
        s.peer_role = Role::Unknown;
        s.peer_disk = DiskState::DUnknown;
        s.out_of_sync_bytes = 4096;
        s.split_brain = Some(SplitBrainStatus {
            detected_unix_ms: 0,
            peer: "b".into(),
            my_changes_bytes: 4096,
            peer_changes_bytes: 8192,
            my_last_write_unix_ms: Some(1000),
            peer_last_write_unix_ms: None,
        });
        let t = status_text(&s);
        assert!(t.contains("  b connection:StandAlone\n"), "{t}");
        assert!(
            t.contains("out-of-sync:4KiB (resynced when connected)"),
            "{t}"
        );
        assert!(t.contains("SPLIT BRAIN detected"), "{t}");
        assert!(!t.contains("SUSPENDED"), "{t}");
        let mut f = s.clone();
        f.peer_disk = DiskState::Outdated;
        f.suspended = true;
        f.fence_peer = Some("peer was fenced (outdated) (exit code 4)".into());
        let t = status_text(&f);
        assert!(
            t.contains("  b connection:StandAlone peer-disk:Outdated\n"),
            "{t}"
        );
        assert!(
            t.contains("I/O SUSPENDED") && t.contains("resume-io r0"),
            "{t}"
        );
        assert!(
            t.contains("fence-peer: peer was fenced (outdated) (exit code 4)"),
            "{t}"
        );
        assert!(proc_lines(&[f]).contains(" C s---f-\n"));
        assert!(t.contains("resolve r0 --survivor NODE"), "{t}");
        let sb = s.split_brain.clone().unwrap();
        let t = split_brain_text(&s, &sb);
        assert!(t.contains("changed 4.0KiB (4096 bytes)"), "{t}");
        assert!(
            t.contains("changed 8.0KiB (8192 bytes), last write unknown"),
            "{t}"
        );
        // The side that wrote more served the clients: it is recommended,
        // and what the other side loses is named.
        assert!(t.contains("served clients: b"), "{t}");
        assert!(
            t.contains("--survivor b (discards a's 4.0KiB (4096 bytes, 1 blocks of 4KiB)"),
            "{t}"
        );
    }
}
