//! Unit tests of `agents/filesystem.rs`.

use super::fsck::probe_superblock;
use super::*;

fn parse(s: &str) -> Result<FsArgs, ArgsError> {
    let parts: Vec<&str> = s.split("::").collect();
    parse_args(&parts)
}

#[test]
fn args() {
    let a = parse("/dev/drbd0::/mnt/drbd/::ext3::rw,noatime").unwrap();
    assert_eq!(a.device, PathBuf::from("/dev/drbd0"));
    assert_eq!(a.dir, PathBuf::from("/mnt/drbd"));
    assert_eq!(a.fstype.as_deref(), Some("ext3"));
    assert_eq!(a.options.as_deref(), Some("rw,noatime"));
    let a = parse("LABEL=data::/srv").unwrap();
    assert_eq!((a.fstype, a.options), (None, None));
    assert!(parse("UUID=0b1c-22::/srv::auto").unwrap().fstype.is_none());
    assert!(parse("tmpfs::/run/x::tmpfs::size=1m").is_ok());
    assert!(parse("fs1:/export::/mnt/nfs::nfs").is_ok());
    for (bad, why) in [
        ("/dev/sdb1", "DEVICE::DIRECTORY"),
        ("/dev/sdb1::/a::ext4::ro::x", "DEVICE::DIRECTORY"),
        ("sdb1::/mnt", "absolute path, LABEL"),
        ("::/mnt", "empty"),
        ("LABEL=::/mnt", "label or UUID is empty"),
        ("/dev/sdb1::mnt", "must be an absolute path"),
        ("/dev/sdb1::/mnt/../etc", "`..`"),
        ("/dev/sdb1::/", "may not be /"),
        ("/dev/sdb1::/mnt::ext4 -o", "not a filesystem type"),
        ("/dev/sdb1::/mnt::ext4::remount,ro", "remount"),
        ("/dev/sdb1::/mnt::ext4::bind", "bind"),
        ("/dev/sdb1::/mnt::ext4::make-shared", "propagation"),
        ("/srv/img::/mnt::ext4::loop", "losetup"),
    ] {
        let e = parse(bad).unwrap_err().to_string();
        assert!(e.contains(why), "{bad}: {e}");
    }
}

#[test]
fn options_become_flags_and_data() {
    let o = mount_options(Some(
        "ro,noatime,nodiratime,nodev,nosuid,noexec,sync,dirsync,errors=remount-ro,data=ordered,defaults,_netdev",
    ))
    .unwrap();
    assert_eq!(
        o.flags,
        MsFlags::MS_RDONLY
            | MsFlags::MS_NOATIME
            | MsFlags::MS_NODIRATIME
            | MsFlags::MS_NODEV
            | MsFlags::MS_NOSUID
            | MsFlags::MS_NOEXEC
            | MsFlags::MS_SYNCHRONOUS
            | MsFlags::MS_DIRSYNC
    );
    assert_eq!(o.data, "errors=remount-ro,data=ordered");
    // Later options win, as in mount(8).
    let o = mount_options(Some("ro,rw,relatime,strictatime,noexec,exec")).unwrap();
    assert_eq!(o.flags, MsFlags::MS_RELATIME | MsFlags::MS_STRICTATIME);
    assert_eq!(o.data, "");
    assert_eq!(mount_options(None).unwrap().flags, MsFlags::empty());
}

#[test]
fn mountinfo_lines() {
    let text = "22 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw\n\
                95 22 7:3 / /tmp/a\\040b/mnt ro,noatime - ext4 /dev/loop3 ro\n\
                96 22 0:55 / /run/x rw,nosuid shared:7 master:2 - tmpfs tmp\\134fs rw,size=1024k\n\
                garbage line\n";
    let t = parse_mountinfo(text);
    assert_eq!(t.len(), 3);
    assert_eq!(t[1].mount_point, PathBuf::from("/tmp/a b/mnt"));
    assert_eq!(t[1].dev, (7, 3));
    assert_eq!(t[1].options, "ro,noatime");
    assert_eq!(
        (t[1].fstype.as_str(), t[1].source.as_str()),
        ("ext4", "/dev/loop3")
    );
    assert_eq!(t[2].source, "tmp\\fs");
    assert_eq!(mounted_at(&t, Path::new("/run/x")).unwrap().dev, (0, 55));
    assert!(mounted_at(&t, Path::new("/run")).is_none());
    assert_eq!((t[2].id, t[2].parent), (96, 22));
    assert_eq!(
        submounts(&t, 22),
        vec![PathBuf::from("/tmp/a b/mnt"), PathBuf::from("/run/x")]
    );
    assert!(submounts(&t, 95).is_empty());
    assert!(is_from(&t[2], &Source::Other("tmp\\fs".into())));
    assert!(is_from(&t[1], &Source::Block("/dev/loop3".into())));
    assert_eq!(unescape("a\\011b\\"), "a\tb\\");
}

#[test]
fn proc_filesystems_lines() {
    let t = parse_proc_filesystems("nodev\tsysfs\n\text4\nnodev\ttmpfs\n\txfs\n");
    assert_eq!(
        t,
        vec![
            ("sysfs".to_string(), false),
            ("ext4".to_string(), true),
            ("tmpfs".to_string(), false),
            ("xfs".to_string(), true)
        ]
    );
}

fn ext(compat: u32, incompat: u32, ro_compat: u32) -> Vec<u8> {
    let mut b = vec![0u8; 0x10100];
    b[0x438..0x43A].copy_from_slice(&0xEF53u16.to_le_bytes());
    b[0x45C..0x460].copy_from_slice(&compat.to_le_bytes());
    b[0x460..0x464].copy_from_slice(&incompat.to_le_bytes());
    b[0x464..0x468].copy_from_slice(&ro_compat.to_le_bytes());
    b
}

#[test]
fn superblocks() {
    let p = |b: &[u8]| probe_superblock(b).map(|p| (p.fstype, p.journal));
    assert_eq!(p(&ext(0x38, 0x2, 0x3)), Some(("ext2", Some(false))));
    assert_eq!(p(&ext(0x3c, 0x2, 0x3)), Some(("ext3", Some(true))));
    assert_eq!(p(&ext(0x3c, 0x2c2, 0x46b)), Some(("ext4", Some(true))));
    assert_eq!(p(&ext(0x38, 0x2c2, 0x46b)), Some(("ext4", Some(false))));
    let mut x = vec![0u8; 4096];
    x[..4].copy_from_slice(b"XFSB");
    assert_eq!(p(&x), Some(("xfs", None)));
    let mut b = vec![0u8; 0x10100];
    b[0x10040..0x10048].copy_from_slice(b"_BHRfS_M");
    assert_eq!(p(&b), Some(("btrfs", None)));
    let mut v = vec![0u8; 4096];
    v[0x52..0x57].copy_from_slice(b"FAT32");
    v[510] = 0x55;
    v[511] = 0xAA;
    assert_eq!(p(&v), Some(("vfat", None)));
    assert_eq!(p(&[0u8; 100]), None);
    assert_eq!(p(&[]), None);
}

#[test]
fn fsck_rule_is_heartbeats() {
    use Fsck::*;
    assert!(fsck_needed(Auto, Some("ext2"), Some(false)));
    assert!(fsck_needed(Auto, Some("vfat"), None));
    assert!(fsck_needed(Auto, Some("ext2"), Some(true)));
    assert!(!fsck_needed(Auto, Some("ext4"), Some(true)));
    assert!(!fsck_needed(Auto, Some("ext3"), Some(true)));
    assert!(fsck_needed(Auto, Some("ext4"), Some(false)));
    assert!(!fsck_needed(Auto, Some("xfs"), None));
    assert!(!fsck_needed(Auto, Some("btrfs"), None));
    assert!(!fsck_needed(Auto, None, None));
    assert!(fsck_needed(Force, Some("xfs"), None));
    assert!(!fsck_needed(Never, Some("ext2"), Some(false)));
}
