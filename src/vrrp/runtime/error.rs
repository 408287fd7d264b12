//! Why the VRRP runtime said no: [`StartError`] from [`super::VrrpRuntime::start`],
//! [`NoSuchInstance`] from the [`super::VrrpHandle`] commands,
//! [`ScriptError`] from [`super::run_command`], and [`NftError`] from the
//! `no_accept` firewall. Each message is one line (logged, or sent to
//! `hbctl` as a string).

use crate::agents::AgentError;
use crate::config::ConfigError;
use crate::process::{LookupError, RunError};
use nix::errno::Errno;

/// Why [`super::VrrpRuntime::start`] started nothing.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration uses something the runtime does not do yet (each
    /// problem, joined by `; `).
    #[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
    Unsupported(Vec<ConfigError>),
    /// An instance has `no_accept` and there is no `nft` in the PATH.
    #[error("no_accept needs nftables' `nft` (apt-get install nftables), or remove `no_accept`")]
    NoNft,
    /// The interfaces and addresses could not be read.
    #[error(transparent)]
    Snapshot(#[from] AgentError),
    /// An instance's interface (or a VIP's `dev`) does not exist.
    #[error("interface {name} not found")]
    NoInterface { name: String },
    /// The interface's VRRP socket could not be opened.
    #[error("VRRP socket on {interface}: {source}")]
    Socket {
        interface: String,
        source: std::io::Error,
    },
    /// No `unicast_src_ip` and the interface has no IPv4 address (other than
    /// a VIP) to send the adverts from.
    #[error("vrrp_instance {instance}: interface {interface} has no IPv4 address to send from")]
    NoSourceAddress { instance: String, interface: String },
    /// A failback gate check names no `vrrp_instance`.
    #[error("failback gate for `{instance}`: no such vrrp_instance")]
    NoGateInstance { instance: String },
}

/// A command named an instance that is not in `keepalived.conf`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no vrrp_instance `{name}` (instances: {})", .instances.join(", "))]
pub struct NoSuchInstance {
    pub name: String,
    /// Every instance, in configuration order.
    pub instances: Vec<String>,
}

/// Why a script (notify, `vrrp_script`, failback gate) gave no exit code.
#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    #[error("empty command")]
    Empty,
    /// The user to run it as: no answer, no such user, NSS failed.
    #[error(transparent)]
    Lookup(#[from] LookupError),
    #[error("no group `{0}`")]
    NoGroup(String),
    #[error("cannot look up group `{name}`: {errno}")]
    GroupLookup { name: String, errno: Errno },
    /// Killed with its process group at its timeout.
    #[error("{program}: {source}")]
    TimedOut { program: String, source: RunError },
    /// It could not be started (or waited for).
    #[error(transparent)]
    Run(RunError),
    /// It died of a signal it was not sent at the timeout.
    #[error("{program}: killed by signal {signal}")]
    Killed { program: String, signal: i32 },
}

/// Why the `no_accept` nftables table could not be written.
#[derive(Debug, thiserror::Error)]
pub enum NftError {
    #[error("nft: timed out")]
    TimedOut,
    /// `nft` could not be started (or waited for).
    #[error(transparent)]
    Run(RunError),
    /// `nft` refused the table (its stderr, trimmed).
    #[error("nft: {stderr}")]
    Failed { stderr: String },
}
