//! The mounts a device process keeps in its own mount namespace.
//!
//! `hbd-disk` unshares its mount namespace with private propagation so that
//! a filesystem mounted on its own device never enters it (see
//! `src/bin/hbd-disk.rs`). The new namespace starts as a copy of the
//! caller's, though, and a private copy keeps every filesystem that was
//! mounted at that moment: unmounting it on the host no longer reaches the
//! copy, so it stays mounted (and writes its journal and superblock) for as
//! long as the device runs. That pinned another node's ext4 in the lab, and
//! on one machine pins a second resource's filesystem (its demotion then
//! waits for a holder nobody can see) or a USB backup disk.
//!
//! So right after unsharing, the device detaches every inherited mount it
//! does not need: it keeps the mounts on the way to the paths it uses (its
//! configuration, run directory, backing disk, device link), the system
//! directories the notify hook's `/bin/sh` needs ([`SYSTEM_DIRS`]) and
//! `/dev`, `/proc`, `/sys` with everything below them ([`KERNEL_TREES`]).
//! Every other mount is detached (`MNT_DETACH`, in its namespace only).
//!
//! [`plan`] decides from the text of `/proc/self/mountinfo` (no I/O);
//! [`detach_unneeded`] reads, detaches and repeats until nothing is left
//! (a mount hidden under a detached one becomes visible only then).

use std::collections::{HashMap, HashSet};
use std::path::{Component, Path, PathBuf};

use super::device::DeviceConfig;

/// Kept, with the mounts on the way to them (not what is mounted below
/// them): what `/bin/sh` and a notify hook need to run.
pub const SYSTEM_DIRS: &[&str] = &[
    "/etc", "/usr", "/bin", "/sbin", "/lib", "/lib64", "/var", "/tmp", "/run",
];

/// Kept with everything mounted below them: the device needs /dev/fuse,
/// /dev/loop*, /proc (holders of its loop device) and /sys (loop backing
/// files); none of them holds a disk's filesystem.
pub const KERNEL_TREES: &[&str] = &["/dev", "/proc", "/sys"];

/// How many read–detach rounds [`detach_unneeded`] makes at most.
const MAX_ROUNDS: usize = 16;

/// One line of `/proc/PID/mountinfo` (proc(5)): the fields used here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    pub id: u32,
    pub parent: u32,
    /// `major:minor` of the filesystem's device.
    pub dev: String,
    pub mount_point: PathBuf,
}

/// Parses mountinfo text; malformed lines are skipped.
pub fn parse_mountinfo(text: &str) -> Vec<MountEntry> {
    text.lines()
        .filter_map(|line| {
            let mut f = line.split(' ');
            let id = f.next()?.parse().ok()?;
            let parent = f.next()?.parse().ok()?;
            let dev = f.next()?.to_string();
            let _root = f.next()?;
            let mount_point = unescape(f.next()?);
            Some(MountEntry {
                id,
                parent,
                dev,
                mount_point,
            })
        })
        .collect()
}

/// mountinfo writes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    PathBuf::from(std::ffi::OsString::from_vec(unescape_octal(s)))
}

/// Undoes the kernel's `\ooo` escapes in a /proc/self/mountinfo field
/// (also used by the Filesystem agent).
pub fn unescape_octal(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            let oct = &b[i + 1..i + 4];
            if oct.iter().all(|c| (b'0'..=b'7').contains(c)) {
                let v = oct.iter().fold(0u32, |v, c| v * 8 + u32::from(c - b'0'));
                if let Ok(v) = u8::try_from(v) {
                    out.push(v);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// What a device process needs from the file system tree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Needs {
    /// Kept with the mounts on the way to them.
    pub paths: Vec<PathBuf>,
    /// Kept with everything mounted below them, too.
    pub trees: Vec<PathBuf>,
}

impl Needs {
    /// The paths device `cfg` uses (as configured, not yet resolved), the
    /// system directories and the kernel trees.
    pub fn of(cfg: &DeviceConfig) -> Needs {
        let mut paths = vec![
            cfg.config_dir.clone(),
            cfg.run_dir.clone(),
            cfg.res.at.file.clone(),
            cfg.host.disk.clone(),
            cfg.host.device.clone(),
        ];
        paths.extend(SYSTEM_DIRS.iter().map(PathBuf::from));
        Needs {
            paths,
            trees: KERNEL_TREES.iter().map(PathBuf::from).collect(),
        }
    }
}

struct Tree<'a> {
    mounts: &'a [MountEntry],
    by_id: HashMap<u32, usize>,
    children: HashMap<u32, Vec<usize>>,
    roots: Vec<usize>,
}

impl<'a> Tree<'a> {
    fn new(mounts: &'a [MountEntry]) -> Tree<'a> {
        let by_id: HashMap<u32, usize> =
            mounts.iter().enumerate().map(|(i, m)| (m.id, i)).collect();
        let mut children: HashMap<u32, Vec<usize>> = HashMap::new();
        let mut roots = Vec::new();
        for (i, m) in mounts.iter().enumerate() {
            if m.parent == m.id || !by_id.contains_key(&m.parent) {
                roots.push(i);
            } else {
                children.entry(m.parent).or_default().push(i);
            }
        }
        Tree {
            mounts,
            by_id,
            children,
            roots,
        }
    }

    /// The mounts a lookup of absolute `path` passes through, the one that
    /// holds it last. Below a mount, the child on the shortest prefix of the
    /// path is the one seen: a longer one beside it was mounted first and is
    /// hidden under it (mounted later it would be its child); a mount
    /// stacked on the same point is a child of the one it covers.
    fn chain(&self, path: &Path) -> Vec<usize> {
        let Some(&root) = self
            .roots
            .iter()
            .find(|&&i| self.mounts[i].mount_point == Path::new("/"))
        else {
            return Vec::new();
        };
        let mut chain = vec![root];
        let mut seen = HashSet::from([root]);
        loop {
            let cur = self.mounts[*chain.last().unwrap_or(&root)].id;
            let next = self
                .children
                .get(&cur)
                .into_iter()
                .flatten()
                .filter(|&&c| path.starts_with(&self.mounts[c].mount_point))
                .min_by_key(|&&c| {
                    (
                        self.mounts[c].mount_point.components().count(),
                        std::cmp::Reverse(self.mounts[c].id),
                    )
                });
            match next {
                Some(&c) if seen.insert(c) => chain.push(c),
                _ => return chain,
            }
        }
    }

    fn subtree(&self, top: usize, out: &mut HashSet<usize>) {
        let mut stack = vec![top];
        let mut seen = HashSet::new();
        while let Some(i) = stack.pop() {
            if seen.insert(i) {
                out.insert(i);
                if let Some(c) = self.children.get(&self.mounts[i].id) {
                    stack.extend(c);
                }
            }
        }
    }
}

/// The mounts to detach now: those no path of `needs` passes through that
/// are visible at their mount point (so that a path names them), less those
/// below another one of them (a detach takes what is mounted below with
/// it). `needs` must hold resolved absolute paths. Every mount on the way
/// to a kept one is kept, so a detach never takes a kept mount with it.
/// Sorted by mount point.
pub fn plan(mounts: &[MountEntry], needs: &Needs) -> Vec<MountEntry> {
    let tree = Tree::new(mounts);
    let mut keep: HashSet<usize> = tree.roots.iter().copied().collect();
    for p in &needs.paths {
        keep.extend(tree.chain(p));
    }
    for p in &needs.trees {
        let chain = tree.chain(p);
        if let Some(&last) = chain.last() {
            // Only when the tree's own mount point is mounted: below "/" the
            // kernel tree would be everything.
            if mounts[last].mount_point == *p {
                tree.subtree(last, &mut keep);
            }
        }
        keep.extend(chain);
    }
    let candidates: HashSet<usize> = (0..mounts.len())
        .filter(|i| !keep.contains(i) && tree.chain(&mounts[*i].mount_point).last() == Some(i))
        .collect();
    let below_another = |i: usize| {
        let mut seen = HashSet::from([i]);
        let mut cur = i;
        while let Some(&p) = tree.by_id.get(&mounts[cur].parent) {
            if !seen.insert(p) {
                return false;
            }
            if candidates.contains(&p) {
                return true;
            }
            cur = p;
        }
        false
    };
    let mut out: Vec<MountEntry> = candidates
        .iter()
        .filter(|&&i| !below_another(i))
        .map(|&i| mounts[i].clone())
        .collect();
    out.sort_by(|a, b| (&a.mount_point, a.id).cmp(&(&b.mount_point, b.id)));
    out
}

/// `path` made absolute with symbolic links resolved as far as it exists
/// (the rest appended as written).
pub fn resolve(path: &Path) -> PathBuf {
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut head = abs.as_path();
    let mut tail = Vec::new();
    loop {
        if let Ok(c) = head.canonicalize() {
            let mut out = c;
            for part in tail.iter().rev() {
                out.push(part);
            }
            return out;
        }
        match (head.parent(), head.components().next_back()) {
            (Some(parent), Some(Component::Normal(name))) => {
                tail.push(name.to_os_string());
                head = parent;
            }
            _ => return abs,
        }
    }
}

/// For each path its resolved location and that of the directory holding
/// it (a symbolic link such as the device link lives there, its target
/// elsewhere).
fn resolved(needs: &Needs) -> Needs {
    let mut paths = Vec::new();
    for p in &needs.paths {
        paths.push(resolve(p));
        if let (Some(dir), Some(name)) = (p.parent(), p.file_name()) {
            paths.push(resolve(dir).join(name));
        }
    }
    Needs {
        paths,
        trees: needs.trees.iter().map(|p| resolve(p)).collect(),
    }
}

/// Detaches (`MNT_DETACH`) every mount of this process's mount namespace
/// that `needs` does not keep. Call only in a mount namespace of its own
/// with private propagation, or the detaches reach the namespace it was
/// copied from. Returns each mount point tried and the result.
pub fn detach_unneeded(needs: &Needs) -> Vec<(PathBuf, nix::Result<()>)> {
    use nix::mount::{umount2, MntFlags};
    let needs = resolved(needs);
    let mut done = Vec::new();
    // Mount ids: two mounts stacked on one point are two detaches of the
    // same path, in two rounds.
    let mut tried = HashSet::new();
    for _ in 0..MAX_ROUNDS {
        let Ok(text) = std::fs::read_to_string("/proc/self/mountinfo") else {
            break;
        };
        let todo: Vec<MountEntry> = plan(&parse_mountinfo(&text), &needs)
            .into_iter()
            .filter(|m| tried.insert(m.id))
            .collect();
        if todo.is_empty() {
            break;
        }
        for m in todo {
            let r = umount2(
                &m.mount_point,
                MntFlags::MNT_DETACH | MntFlags::UMOUNT_NOFOLLOW,
            );
            done.push((m.mount_point, r));
        }
    }
    done
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
23 27 0:22 / /sys rw,relatime - sysfs sysfs rw
24 27 0:6 / /dev rw,relatime - devtmpfs devtmpfs rw
25 24 0:23 / /dev/shm rw,relatime - tmpfs tmpfs rw
26 24 0:24 / /dev/pts rw,relatime - devpts devpts rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
29 26 0:26 / /dev/pts rw,relatime - devpts devpts rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw
40 27 0:40 / /run rw - tmpfs tmpfs rw
41 40 0:41 / /run/user/0 rw - tmpfs tmpfs rw
42 40 0:4 net:[4026532] /run/netns/a rw - nsfs nsfs rw
50 27 7:1 / /tmp/lab/mnt rw - ext4 /dev/loop1 rw
51 27 8:17 / /media/usb\\040backup rw - vfat /dev/sdb1 rw
52 51 8:18 / /media/usb\\040backup/inner rw - ext4 /dev/sdb2 rw
60 27 253:1 / /var rw - ext4 /dev/dm-1 rw
61 60 253:2 / /var/backups rw - ext4 /dev/dm-2 rw
";

    fn needs() -> Needs {
        Needs {
            paths: [
                "/tmp/lab/n1/ha.d",
                "/tmp/lab/n1/run",
                "/tmp/lab/n1/backing.img",
                "/etc",
                "/var",
                "/run",
            ]
            .iter()
            .map(PathBuf::from)
            .collect(),
            trees: KERNEL_TREES.iter().map(PathBuf::from).collect(),
        }
    }

    #[test]
    fn parses_and_unescapes() {
        let m = parse_mountinfo(INFO);
        assert_eq!(m.len(), 16);
        let usb = m.iter().find(|m| m.id == 51).unwrap();
        assert_eq!(usb.mount_point, Path::new("/media/usb backup"));
        assert_eq!(usb.dev, "8:17");
        assert_eq!(usb.parent, 27);
        assert!(parse_mountinfo("garbage\n1 x\n\n").is_empty());
        assert_eq!(unescape("a\\134b\\0"), Path::new("a\\b\\0"));
        // An escape that ends the field (the old copy missed it).
        assert_eq!(unescape("/mnt/a\\040"), Path::new("/mnt/a "));
    }

    fn points(p: Vec<MountEntry>) -> Vec<PathBuf> {
        p.into_iter().map(|m| m.mount_point).collect()
    }

    #[test]
    fn keeps_what_the_device_uses_and_detaches_the_rest() {
        let p = points(plan(&parse_mountinfo(INFO), &needs()));
        // /media/usb backup/inner goes with /media/usb backup.
        assert_eq!(
            p,
            [
                "/media/usb backup",
                "/run/netns/a",
                "/run/user/0",
                "/tmp/lab/mnt",
                "/var/backups"
            ]
            .map(PathBuf::from)
        );
    }

    #[test]
    fn a_filesystem_holding_a_needed_path_stays() {
        let mut n = needs();
        n.paths.push("/tmp/lab/mnt/backing.img".into());
        let p = points(plan(&parse_mountinfo(INFO), &n));
        assert!(!p.contains(&PathBuf::from("/tmp/lab/mnt")), "{p:?}");
        assert!(p.contains(&PathBuf::from("/var/backups")), "{p:?}");
    }

    #[test]
    fn hidden_and_stacked_mounts_go_one_round_after_what_covers_them() {
        // 71 (/srv/a/b) was mounted first, then 70 (/srv/a) over its
        // parent directory; 73 is stacked on 72 (/srv/c).
        let info = "\
27 1 254:0 / / rw - ext4 /dev/vda rw
71 27 7:2 / /srv/a/b rw - ext4 /dev/loop2 rw
70 27 7:3 / /srv/a rw - ext4 /dev/loop3 rw
72 27 7:4 / /srv/c rw - ext4 /dev/loop4 rw
73 72 7:5 / /srv/c rw - ext4 /dev/loop5 rw
";
        let m = parse_mountinfo(info);
        let first = plan(&m, &Needs::default());
        assert_eq!(
            first.iter().map(|m| m.id).collect::<Vec<_>>(),
            [70, 73],
            "{first:?}"
        );
        // Round two, once 70 and 73 are gone: what they covered.
        let rest: Vec<MountEntry> = m
            .iter()
            .filter(|m| ![70, 73].contains(&m.id))
            .cloned()
            .collect();
        assert_eq!(
            plan(&rest, &Needs::default())
                .iter()
                .map(|m| m.id)
                .collect::<Vec<_>>(),
            [71, 72]
        );
        // A path through a covered mount point resolves to what covers it;
        // the covered mount cannot be named by a path and stays.
        let n = Needs {
            paths: vec!["/srv/a/b/x".into(), "/srv/c/y".into()],
            trees: vec![],
        };
        assert!(plan(&m, &n).is_empty());
    }

    #[test]
    fn kernel_trees_are_kept_whole_only_when_mounted() {
        let info = "\
27 1 254:0 / / rw - ext4 /dev/vda rw
30 27 7:1 / /mnt rw - ext4 /dev/loop1 rw
";
        // No /dev mount: "/dev" resolves to "/", which must not keep /mnt.
        assert_eq!(
            points(plan(&parse_mountinfo(info), &needs())),
            [PathBuf::from("/mnt")]
        );
    }

    #[test]
    fn resolve_follows_links_and_keeps_the_missing_rest() {
        let d = tempfile::tempdir().unwrap();
        let real = d.path().canonicalize().unwrap();
        std::fs::create_dir(real.join("x")).unwrap();
        std::os::unix::fs::symlink(real.join("x"), real.join("l")).unwrap();
        assert_eq!(resolve(&real.join("l/not/yet")), real.join("x/not/yet"));
        assert_eq!(resolve(&real.join("x")), real.join("x"));
    }
}
