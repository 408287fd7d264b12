//! Why an agent cannot be found, its arguments are wrong, or a call failed:
//! [`ResolveError`], [`ArgsError`], [`PlanError`] and [`AgentError`]. The
//! argument and lookup messages become `file:line` diagnostics of
//! haresources in config checking (`hbctl check`); the others are log lines
//! and the resource's error in `hbctl status`.

use super::{ipaddr, Action, BUILTIN};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

/// Why an agent call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AgentError {
    #[error("{action} timed out after {}", crate::config::format_duration(*timeout))]
    Timeout { action: Action, timeout: Duration },
    /// A script exited with a failure code.
    #[error("{action} exited with code {code}{}", if message.is_empty() { String::new() } else { format!(": {message}") })]
    Exit {
        action: Action,
        code: i32,
        message: String,
    },
    /// IPaddr: where the address goes cannot be decided.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// A script could not be run, or a built-in agent failed.
    #[error("{0}")]
    Failed(String),
}

/// Why [`resolve`](super::resolve) found no agent for a resource.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error("empty resource name")]
    EmptyName,
    /// The agent is found, its arguments are wrong.
    #[error(transparent)]
    Args(#[from] ArgsError),
    /// `ocf:...` that is not `ocf:PROVIDER:TYPE`.
    #[error("`{name}`: an OCF agent is written ocf:PROVIDER:TYPE (e.g. ocf:heartbeat:Dummy)")]
    OcfSyntax { name: String },
    /// `ocf:PROVIDER:TYPE` whose file is not there (or not executable).
    #[error("unknown resource agent {name}: {} is not an executable file", path.display())]
    NotExecutable { name: String, path: PathBuf },
    #[error("`{name}`: an agent name may not contain `/`")]
    BadName { name: String },
    /// Neither built in nor an executable in any of `searched`.
    #[error(
        "unknown resource agent {name}: not built in ({}) and not found in {}",
        BUILTIN.join(", "),
        searched.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    NotFound {
        name: String,
        searched: Vec<PathBuf>,
    },
}

/// Why a resource's `::` arguments do not suit its agent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgsError {
    #[error("a bare address takes no `::` arguments")]
    BareAddressArgs,
    #[error("mon takes no arguments: its checks are [[check]] tables in cluster.toml")]
    MonArgs,
    #[error("{name} is an LSB init script ({}): it takes no `::` arguments", path.display())]
    LsbArgs { name: String, path: PathBuf },
    /// OCF parameters are `key=value`.
    #[error("OCF agent {provider}:{kind}: argument `{arg}` is not key=value (it becomes OCF_RESKEY_key)")]
    OcfNotKeyValue {
        provider: String,
        kind: String,
        arg: String,
    },
    #[error("OCF agent {provider}:{kind}: `{key}` is not a valid parameter name")]
    OcfParamName {
        provider: String,
        kind: String,
        key: String,
    },

    // IPaddr
    #[error("no address given: {usage}", usage = ipaddr::USAGE)]
    IpNoAddress,
    #[error("{0} arguments given: {usage}", usage = ipaddr::USAGE)]
    IpArgCount(usize),
    /// `arg` has `.fields` `/` fields (more than 4).
    #[error("`{arg}` has {fields} `/` fields: {usage}", usage = ipaddr::USAGE)]
    IpFields { arg: String, fields: usize },
    #[error("`{0}` is not an IPv4 address: {usage}", usage = ipaddr::USAGE)]
    IpNotIpv4(String),
    #[error("{0} cannot be a service address (unspecified, broadcast, multicast or loopback)")]
    IpNotService(Ipv4Addr),
    #[error("prefix length `{0}` is not in 1..=32")]
    IpPrefixRange(String),
    #[error("netmask `{0}` is not contiguous")]
    IpNetmask(String),
    #[error("`{0}` is neither a prefix length (1..=32) nor a netmask")]
    IpNotPrefix(String),
    #[error("label `{0}` has nothing after `:`")]
    IpEmptyLabel(String),
    #[error("`{0}` is not an interface name (1 to {max} bytes, no `/`, `:` or spaces)", max = ipaddr::IFNAMSIZ_MAX)]
    IpIface(String),
    #[error("label `{0}` is not valid (at most {max} bytes, no `/` or spaces)", max = ipaddr::IFNAMSIZ_MAX)]
    IpLabel(String),
    #[error("broadcast `{0}` is not an IPv4 address")]
    IpBroadcast(String),
    #[error("broadcast {0} is the address itself")]
    IpBroadcastIsAddress(Ipv4Addr),

    // Filesystem
    #[error("Filesystem takes DEVICE::DIRECTORY[::FSTYPE[::OPTIONS]]")]
    FsUsage,
    #[error("FSTYPE `{0}` is not a filesystem type name")]
    FsType(String),
    #[error("Filesystem: DEVICE is empty")]
    FsEmptyDevice,
    /// `LABEL=`/`UUID=` with an empty value or a `/`.
    #[error("DEVICE `{0}`: the label or UUID is empty or has a `/`")]
    FsTag(String),
    #[error(
        "DEVICE `{0}` must be an absolute path, LABEL=... or UUID=... \
         (another source, such as tmpfs or host:/export, needs an FSTYPE)"
    )]
    FsDeviceNotAbsolute(String),
    #[error("DIRECTORY `{}` must be an absolute path", .0.display())]
    FsDirNotAbsolute(PathBuf),
    #[error("DIRECTORY `{}` may not contain `..`", .0.display())]
    FsDirParent(PathBuf),
    #[error("DIRECTORY may not be /")]
    FsDirRoot,
    /// A mount(8) option a resource may not use.
    #[error("option `{option}` is refused: {}", why.reason())]
    FsOptionRefused { option: String, why: Refusal },

    // drbddisk
    #[error("drbddisk: `{0}` is not a resource name (drbddisk::r0)")]
    DrbdResource(String),
    #[error("drbddisk needs the resource: drbddisk::r0")]
    DrbdNoResource,
    #[error("drbddisk takes one argument, the resource: drbddisk::r0")]
    DrbdArgCount,
}

/// Why `Filesystem` refuses a mount option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `remount`.
    Remount,
    /// `bind`, `rbind`, `move`.
    Bind,
    /// `shared`, `make-private`...
    Propagation,
    /// `loop`, `loop=...`.
    Loop,
}

impl Refusal {
    fn reason(self) -> &'static str {
        match self {
            Refusal::Remount => "a resource mounts, it does not change a mount",
            Refusal::Bind => "Filesystem mounts a device, not a directory",
            Refusal::Propagation => "propagation is not a mount option of a resource",
            Refusal::Loop => "set up the loop device first (losetup) and give it as DEVICE",
        }
    }
}

/// Why IPaddr cannot decide the interface and prefix of its address
/// ([`plan_start`](super::ipaddr::plan_start)).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("interface {iface} not found (for {ip})")]
    NoInterface { ip: Ipv4Addr, iface: String },
    /// The address is on interface `on`, not on the one given.
    #[error("{ip} is already on {on}, not on {iface}")]
    Elsewhere {
        ip: Ipv4Addr,
        on: String,
        iface: String,
    },
    #[error("no prefix given for {ip} and no address of {iface} has a subnet containing it: write {ip}/BITS/{iface}")]
    NoPrefix { ip: Ipv4Addr, iface: String },
    #[error("no interface has an IPv4 subnet containing {ip}: name one, e.g. {ip}/24/eth0")]
    NoSubnet { ip: Ipv4Addr },
    /// The interface of the address `subnet` whose subnet holds `ip` is
    /// not among the links.
    #[error("the interface of {ip}'s subnet ({subnet}) has vanished")]
    Vanished { ip: Ipv4Addr, subnet: Ipv4Addr },
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The messages are those of the strings they replace, byte for byte
    /// (haresources diagnostics, docs and tests match on them).
    #[test]
    fn messages_are_unchanged() {
        let ip = Ipv4Addr::new(192, 0, 2, 100);
        let usage = "IPaddr takes one argument: IP[/BITS[/IFACE[/BROADCAST]]], e.g. IPaddr2::192.0.2.100/24/eth0:0";
        let cases: Vec<(String, String)> = vec![
            (ResolveError::EmptyName.to_string(), "empty resource name".into()),
            (
                ResolveError::OcfSyntax { name: "ocf:x".into() }.to_string(),
                "`ocf:x`: an OCF agent is written ocf:PROVIDER:TYPE (e.g. ocf:heartbeat:Dummy)".into(),
            ),
            (
                ResolveError::NotExecutable {
                    name: "ocf:a:b".into(),
                    path: "/usr/lib/ocf/resource.d/a/b".into(),
                }
                .to_string(),
                "unknown resource agent ocf:a:b: /usr/lib/ocf/resource.d/a/b is not an executable file".into(),
            ),
            (
                ResolveError::BadName { name: "../x".into() }.to_string(),
                "`../x`: an agent name may not contain `/`".into(),
            ),
            (
                ResolveError::NotFound {
                    name: "nope".into(),
                    searched: vec!["/etc/ha.d/resource.d".into(), "/usr/lib/ocf/resource.d/*".into()],
                }
                .to_string(),
                "unknown resource agent nope: not built in (IPaddr, IPaddr2, Filesystem, drbddisk, mon) and not found in /etc/ha.d/resource.d, /usr/lib/ocf/resource.d/*".into(),
            ),
            (
                ResolveError::from(ArgsError::MonArgs).to_string(),
                "mon takes no arguments: its checks are [[check]] tables in cluster.toml".into(),
            ),
            (
                ArgsError::LsbArgs {
                    name: "svc".into(),
                    path: "/etc/init.d/svc".into(),
                }
                .to_string(),
                "svc is an LSB init script (/etc/init.d/svc): it takes no `::` arguments".into(),
            ),
            (
                ArgsError::OcfNotKeyValue {
                    provider: "heartbeat".into(),
                    kind: "Dummy".into(),
                    arg: "x".into(),
                }
                .to_string(),
                "OCF agent heartbeat:Dummy: argument `x` is not key=value (it becomes OCF_RESKEY_key)".into(),
            ),
            (
                ArgsError::OcfParamName {
                    provider: "heartbeat".into(),
                    kind: "Dummy".into(),
                    key: "a-b".into(),
                }
                .to_string(),
                "OCF agent heartbeat:Dummy: `a-b` is not a valid parameter name".into(),
            ),
            (ArgsError::IpNoAddress.to_string(), format!("no address given: {usage}")),
            (ArgsError::IpArgCount(2).to_string(), format!("2 arguments given: {usage}")),
            (
                ArgsError::IpFields { arg: "a/b/c/d/e".into(), fields: 5 }.to_string(),
                format!("`a/b/c/d/e` has 5 `/` fields: {usage}"),
            ),
            (ArgsError::IpNotIpv4("eth0".into()).to_string(), format!("`eth0` is not an IPv4 address: {usage}")),
            (
                ArgsError::IpIface("eth 0".into()).to_string(),
                "`eth 0` is not an interface name (1 to 15 bytes, no `/`, `:` or spaces)".into(),
            ),
            (
                ArgsError::IpLabel("eth0123456:01234".into()).to_string(),
                "label `eth0123456:01234` is not valid (at most 15 bytes, no `/` or spaces)".into(),
            ),
            (
                ArgsError::FsDeviceNotAbsolute("sdb1".into()).to_string(),
                "DEVICE `sdb1` must be an absolute path, LABEL=... or UUID=... (another source, such as tmpfs or host:/export, needs an FSTYPE)".into(),
            ),
            (
                ArgsError::FsDirParent("/mnt/../etc".into()).to_string(),
                "DIRECTORY `/mnt/../etc` may not contain `..`".into(),
            ),
            (
                ArgsError::FsOptionRefused { option: "remount".into(), why: Refusal::Remount }.to_string(),
                "option `remount` is refused: a resource mounts, it does not change a mount".into(),
            ),
            (
                ArgsError::FsOptionRefused { option: "loop=/dev/loop0".into(), why: Refusal::Loop }.to_string(),
                "option `loop=/dev/loop0` is refused: set up the loop device first (losetup) and give it as DEVICE".into(),
            ),
            (
                ArgsError::DrbdResource("all".into()).to_string(),
                "drbddisk: `all` is not a resource name (drbddisk::r0)".into(),
            ),
            (
                PlanError::NoPrefix { ip, iface: "eth0".into() }.to_string(),
                "no prefix given for 192.0.2.100 and no address of eth0 has a subnet containing it: write 192.0.2.100/BITS/eth0".into(),
            ),
            (
                AgentError::from(PlanError::NoSubnet { ip }).to_string(),
                "no interface has an IPv4 subnet containing 192.0.2.100: name one, e.g. 192.0.2.100/24/eth0".into(),
            ),
            (
                PlanError::Vanished { ip, subnet: Ipv4Addr::new(192, 0, 2, 1) }.to_string(),
                "the interface of 192.0.2.100's subnet (192.0.2.1) has vanished".into(),
            ),
            (
                PlanError::Elsewhere { ip, on: "eth0".into(), iface: "eth1".into() }.to_string(),
                "192.0.2.100 is already on eth0, not on eth1".into(),
            ),
        ];
        for (got, want) in cases {
            assert_eq!(got, want);
        }
    }
}
