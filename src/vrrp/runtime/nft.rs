//! `no_accept` through nftables: the table [`NFT_TABLE`] that drops
//! traffic to the VIPs a `no_accept` MASTER holds.

use super::*;

/// The nftables table of `no_accept` (as keepalived's firewall rules):
/// `table inet hbd_vrrp` whose input chain drops every datagram to a VIP
/// held by a `no_accept` MASTER of this daemon (its network namespace). The
/// table is rewritten in one transaction on each change and deleted when no
/// VIP is held.
pub const NFT_TABLE: &str = "hbd_vrrp";

pub(super) struct Firewall {
    pub(super) nft: std::path::PathBuf,
    /// Instance → the VIPs it holds.
    pub(super) held: tokio::sync::Mutex<BTreeMap<String, Vec<Ipv4Addr>>>,
}

impl Firewall {
    pub(super) fn new(nft: std::path::PathBuf) -> Firewall {
        Firewall {
            nft,
            held: tokio::sync::Mutex::new(BTreeMap::new()),
        }
    }

    pub(super) async fn set(&self, instance: &str, vips: Vec<Ipv4Addr>) -> Result<(), NftError> {
        let mut held = self.held.lock().await;
        if vips.is_empty() {
            held.remove(instance);
        } else {
            held.insert(instance.to_string(), vips);
        }
        let all: BTreeSet<Ipv4Addr> = held.values().flatten().copied().collect();
        let script = nft_script(&all);
        use crate::process::{self, Output, RunError};
        let c = process::Command::new(&self.nft)
            .args(["-f", "-"])
            .input(script)
            .output(Output::Capture)
            .timeout(Duration::from_secs(10));
        let out = match process::run(&c).await {
            Ok(out) => out,
            Err(RunError::TimedOut { .. }) => return Err(NftError::TimedOut),
            Err(e) => return Err(NftError::Run(e)),
        };
        if !out.success() {
            return Err(NftError::Failed {
                stderr: out.stderr().trim().to_string(),
            });
        }
        Ok(())
    }
}

/// The `nft -f` input that makes the table drop `vips` (none: no table).
pub(super) fn nft_script(vips: &BTreeSet<Ipv4Addr>) -> String {
    // Declaring the table first makes the delete succeed when it is absent.
    let mut s = format!("table inet {NFT_TABLE} {{}}\ndelete table inet {NFT_TABLE}\n");
    if !vips.is_empty() {
        let list: Vec<String> = vips.iter().map(|v| v.to_string()).collect();
        s.push_str(&format!(
            "table inet {NFT_TABLE} {{\n  chain input {{\n    type filter hook input priority 0; policy accept;\n    ip daddr {{ {} }} drop\n  }}\n}}\n",
            list.join(", ")
        ));
    }
    s
}

pub(super) fn find_nft() -> Option<std::path::PathBuf> {
    PATH.split(':')
        .map(|d| std::path::Path::new(d).join("nft"))
        .find(|p| p.is_file())
}
