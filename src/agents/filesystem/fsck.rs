//! What is on the device before a mount: the superblock probe (ext2/3/4,
//! xfs, btrfs, vfat, and whether an ext* has a journal), heartbeat's rule
//! for `fsck = "auto"`, and the fsck run itself.

use super::*;
use std::io::Read;

/// What the superblock says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Probe {
    pub(super) fstype: &'static str,
    /// ext*: whether the filesystem has a journal (`has_journal`).
    pub(super) journal: Option<bool>,
}

/// Recognises the filesystems a cluster mounts most, from the first 64 KiB
/// (offsets as in libblkid).
pub(super) fn probe_superblock(buf: &[u8]) -> Option<Probe> {
    let le16 = |o: usize| buf.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let le32 = |o: usize| {
        buf.get(o..o + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    // ext2/3/4: s_magic 0xEF53 at 1024 + 0x38.
    if le16(0x438) == Some(0xEF53) {
        let compat = le32(0x45C).unwrap_or(0);
        let incompat = le32(0x460).unwrap_or(0);
        let ro_compat = le32(0x464).unwrap_or(0);
        let journal = compat & 0x4 != 0; // COMPAT_HAS_JOURNAL
                                         // Features ext3 lacks: extents, 64bit, flex_bg, huge_file, gdt_csum,
                                         // dir_nlink, extra_isize, metadata_csum.
        let ext4 = incompat & (0x40 | 0x80 | 0x200) != 0
            || ro_compat & (0x8 | 0x10 | 0x20 | 0x40 | 0x400) != 0;
        let fstype = if ext4 {
            "ext4"
        } else if journal {
            "ext3"
        } else {
            "ext2"
        };
        return Some(Probe {
            fstype,
            journal: Some(journal),
        });
    }
    if buf.starts_with(b"XFSB") {
        return Some(Probe {
            fstype: "xfs",
            journal: None,
        });
    }
    if buf.get(0x10040..0x10048) == Some(b"_BHRfS_M") {
        return Some(Probe {
            fstype: "btrfs",
            journal: None,
        });
    }
    if buf.get(510..512) == Some(&[0x55, 0xAA])
        && (buf.get(0x36..0x39) == Some(b"FAT") || buf.get(0x52..0x57) == Some(b"FAT32"))
    {
        return Some(Probe {
            fstype: "vfat",
            journal: None,
        });
    }
    None
}

pub(super) fn read_superblock(dev: &Path) -> std::io::Result<Option<Probe>> {
    let mut buf = Vec::with_capacity(0x10100);
    std::fs::File::open(dev)?
        .take(0x10100)
        .read_to_end(&mut buf)?;
    Ok(probe_superblock(&buf))
}

/// heartbeat's rule for `fsck = "auto"`: check only what has no journal to
/// replay. ext3/ext4 count by their superblock (an ext4 made without a
/// journal is checked); unknown types are left alone.
pub(super) fn fsck_needed(mode: Fsck, fstype: Option<&str>, journal: Option<bool>) -> bool {
    match mode {
        Fsck::Force => true,
        Fsck::Never => false,
        Fsck::Auto => match fstype {
            Some("ext2" | "ext" | "vfat" | "msdos" | "fat" | "umsdos" | "minix") => true,
            Some("ext3" | "ext4" | "ext4dev") => journal == Some(false),
            _ => false,
        },
    }
}

/// `fsck -a -T [-t TYPE] DEVICE`. Exit codes (fsck(8)): 0 clean, 1 errors
/// corrected, 2 corrected and reboot advised (only meaningful for `/`),
/// 4 and above: errors left, operational error, cancelled.
pub(super) async fn run_fsck(
    a: &FsArgs,
    dev: &Path,
    fstype: Option<&str>,
) -> Result<(), AgentError> {
    use crate::process::{self, Output};
    let fsck = find_tool("fsck");
    let mut c = process::Command::new(&fsck).args(["-a", "-T"]);
    if let Some(t) = fstype {
        c = c.args(["-t", t]);
    }
    // No timeout of its own: on a start timeout the call is dropped, and the
    // fsck's process group is KILLed with it, so that it does not go on
    // behind our back while the group fails over and the other node mounts
    // the device.
    let c = c.arg(dev).output(Output::Merged);
    tracing::info!(device = %dev.display(), fstype = fstype.unwrap_or("?"), "fsck before mount");
    let out = process::run(&c)
        .await
        .map_err(|e| failed(a, format!("cannot run {e}")))?;
    let code = (out.signal.is_none()).then_some(out.code);
    match code {
        Some(0) => Ok(()),
        Some(c @ 1..=3) => {
            tracing::warn!(device = %dev.display(), code = c, "fsck corrected errors");
            Ok(())
        }
        code => {
            let tail: Vec<&str> = out.tail.iter().map(|(_, l)| l.as_str()).collect();
            Err(failed(
                a,
                format!(
                    "fsck failed ({}): {}",
                    code.map_or("killed by a signal".to_string(), |c| format!("exit {c}")),
                    tail.join("\n").trim()
                ),
            ))
        }
    }
}
