//! Built-in `IPaddr` / `IPaddr2`: an IPv4 alias address added and removed
//! through rtnetlink, announced with gratuitous ARPs.
//!
//! STUB: filled in by the ipaddr work item.

use super::{AgentError, Options, Running};
use std::net::Ipv4Addr;

/// `IP[/BITS[/IFACE[/BROADCAST]]]`, heartbeat's IPaddr argument; IFACE may
/// carry a label (`eth1:0`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpAddrArgs {
    pub addr: Ipv4Addr,
    pub prefix: Option<u8>,
    /// The interface (without the label).
    pub iface: Option<String>,
    /// The full label, `eth1:0`, when one was given.
    pub label: Option<String>,
    pub broadcast: Option<Ipv4Addr>,
}

/// Parses the `::` arguments of `IPaddr`/`IPaddr2` (or a bare address).
pub fn parse_args(args: &[&str]) -> Result<IpAddrArgs, String> {
    let first = args
        .first()
        .ok_or("IPaddr needs an address: IPaddr::IP[/BITS[/IFACE[/BROADCAST]]]")?;
    let addr = first
        .split('/')
        .next()
        .unwrap_or("")
        .parse()
        .map_err(|_| format!("`{first}` is not an IPv4 address"))?;
    Ok(IpAddrArgs {
        addr,
        prefix: None,
        iface: None,
        label: None,
        broadcast: None,
    })
}

pub async fn start(_a: &IpAddrArgs, _o: &Options) -> Result<(), AgentError> {
    Err(AgentError::Failed("IPaddr: not implemented yet".into()))
}

pub async fn stop(_a: &IpAddrArgs, _o: &Options) -> Result<(), AgentError> {
    Err(AgentError::Failed("IPaddr: not implemented yet".into()))
}

pub async fn status(_a: &IpAddrArgs) -> Result<Running, AgentError> {
    Ok(Running::Stopped)
}
