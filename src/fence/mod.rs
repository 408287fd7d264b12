//! STONITH: ha.cf's `stonith_host` lines as fence-agents devices (no I/O
//! here; [`run`] runs an agent, `runtime::fence` schedules the calls).
//!
//! hbd speaks the fence-agents calling convention (Debian's `fence-agents`
//! package, ClusterLabs/fence-agents `lib/fencing.py`): the agent is run with
//! no arguments and reads `key=value` lines on stdin, `action=` among them
//! (`reboot`, `off`, `on`, `status`, `monitor`, `metadata`); exit 0 means the
//! action was carried out (for `status`: the target is on; 2: it is off).
//!
//! heartbeat wrote `stonith_host FROM TYPE PARAMS...` with its own plugins
//! (cluster-glue `lib/plugins/stonith`), whose parameters are positional in
//! the order of the plugin's configuration names. [`parse_stonith_host`]
//! turns the plugins that have a fence-agents equivalent into that agent
//! with named options, and refuses the rest with the reason and the
//! replacement.

pub mod run;

use std::time::Duration;

/// What fencing does to a node: cluster.toml `[fencing] action` (reboot,
/// Pacemaker's default, or off).
pub use crate::config::FenceAction;

/// cluster.toml `[fencing]` (parsed with the rest of cluster.toml; these are
/// the defaults when the section is absent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FencingSettings {
    pub action: FenceAction,
    /// Longest run of one agent; it is killed (and the fencing failed) after.
    pub timeout: Duration,
}

/// Pacemaker's `stonith-timeout` default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

impl Default for FencingSettings {
    fn default() -> Self {
        FencingSettings {
            action: FenceAction::Reboot,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// One node a device can fence, and the `plug=` that names it to the device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub node: String,
    /// `None`: the device controls this one machine, no `plug=` is passed
    /// (an IPMI board).
    pub plug: Option<String>,
}

/// One fence device: a `stonith_host` line after translation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FenceDevice {
    /// The node that runs the agent; `None` for `*` (every node).
    pub from: Option<String>,
    /// The fence-agents program: `fence_ipmilan`, or an absolute path.
    pub agent: String,
    /// The type as written (`external/ipmi`, `fence_ipmilan`), for messages.
    pub written: String,
    /// Options passed on stdin besides `action` and `plug`, in order.
    pub options: Vec<(String, String)>,
    /// The nodes it fences; empty: any node, named by `plug=<node name>`.
    pub targets: Vec<Target>,
}

impl FenceDevice {
    /// Whether the agent runs on `node`.
    pub fn runs_on(&self, node: &str) -> bool {
        self.from.as_deref().is_none_or(|f| f == node)
    }

    /// How this device names `node`: `None` when it cannot fence it,
    /// `Some(None)` when it fences it without a plug.
    pub fn plug_for(&self, node: &str) -> Option<Option<String>> {
        if self.targets.is_empty() {
            return Some(Some(node.to_string()));
        }
        self.targets
            .iter()
            .find(|t| t.node == node)
            .map(|t| t.plug.clone())
    }

    /// The stdin of one call (fence-agents' `key=value` lines).
    pub fn stdin(&self, node: &str, action: &str) -> String {
        let mut s = format!("action={action}\n");
        if let Some(Some(plug)) = self.plug_for(node) {
            s.push_str(&format!("plug={plug}\n"));
        }
        for (k, v) in &self.options {
            s.push_str(&format!("{k}={v}\n"));
        }
        s
    }
}

/// The devices that `me` may use to fence `node`, in file order: the agent
/// runs here and the device controls that node. A node never fences itself
/// (that is the watchdog's job).
pub fn devices_for<'a>(devices: &'a [FenceDevice], me: &str, node: &str) -> Vec<&'a FenceDevice> {
    if me == node {
        return Vec::new();
    }
    devices
        .iter()
        .filter(|d| d.runs_on(me) && d.plug_for(node).is_some())
        .collect()
}

/// Keys hbd sets itself on stdin.
const RESERVED: &[&str] = &["action", "option", "nodename"];

/// Why a `stonith_host` line is refused: the message after
/// `file:line: stonith_host: `.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FenceConfigError {
    /// Fewer than FROM and TYPE.
    #[error(
        "missing value: expected `stonith_host FROM TYPE [PARAMS...]` \
         (FROM: `*` or the node that runs the agent)"
    )]
    MissingValue,
    /// A heartbeat plugin without a fence-agents equivalent: why, and what
    /// to use.
    #[error("`{kind}`: {why}")]
    Refused { kind: String, why: &'static str },
    /// Neither a heartbeat plugin hbd translates nor a `fence_*` program.
    #[error(
        "`{0}`: unknown stonith type; write a fence-agents program \
         (`stonith_host * fence_ipmilan ip=... username=... password=...`); \
         heartbeat plugins hbd translates: external/ipmi, ipmilan, apcmaster, \
         apcmastersnmp, external/rackpdu, wti_nps, external/libvirt, external/drac5, \
         external/riloe"
    )]
    UnknownType(String),
    /// A plugin's `name=value` parameters lack a required one.
    #[error("{kind}: missing parameter `{name}`")]
    MissingParameter { kind: String, name: String },
    /// A plugin's positional parameters are too few or too many (`syntax`:
    /// the names it takes).
    #[error("{kind} takes {syntax} (heartbeat's order), got {got} value(s)")]
    ParameterCount {
        kind: String,
        syntax: String,
        got: usize,
    },
    /// external/ipmi's `interface` is neither lan nor lanplus.
    #[error("external/ipmi: interface `{0}`: expected lan or lanplus")]
    IpmiInterface(String),
    /// external/libvirt's `hypervisor_uri` is not reached over ssh.
    #[error(
        "external/libvirt: hypervisor_uri `{0}`: fence_virsh reaches the host over ssh; \
         write it as qemu+ssh://[user@]host/system"
    )]
    LibvirtNotSsh(String),
    /// external/libvirt's `hypervisor_uri` names no host.
    #[error("external/libvirt: hypervisor_uri `{0}`: no host")]
    LibvirtNoHost(String),
    /// A `fence_*` parameter without `=`.
    #[error("`{0}`: fence-agents options are key=value (as on the agent's stdin)")]
    NotKeyValue(String),
    /// A `fence_*` option whose name is not `[A-Za-z0-9_]+`.
    #[error("`{param}`: `{key}` is not an option name")]
    BadOptionName { param: String, key: String },
    /// A `fence_*` option hbd sets itself.
    #[error(
        "`{param}`: hbd sets `{key}` itself (the action comes from cluster.toml \
         [fencing] action)"
    )]
    ReservedOption { param: String, key: String },
    /// `plug=` without `nodes=`.
    #[error("{0}: a fixed plug= needs nodes=NODE to say which node it fences")]
    PlugWithoutNodes(String),
    #[error("{0}: nodes= is empty")]
    EmptyNodes(String),
    /// `plug=` with several `nodes=`.
    #[error("{0}: a fixed plug= fences one node; nodes= lists several")]
    PlugForSeveralNodes(String),
}

/// Parses the arguments of `stonith_host FROM TYPE PARAMS...` (after the
/// key). Node names are lowercased as heartbeat does. The error is the
/// message for `file:line: stonith_host: `.
pub fn parse_stonith_host(args: &[&str]) -> Result<FenceDevice, FenceConfigError> {
    let [from, kind, params @ ..] = args else {
        return Err(FenceConfigError::MissingValue);
    };
    let from = match *from {
        "*" => None,
        n => Some(n.to_lowercase()),
    };
    let written = kind.to_string();
    let (agent, options, targets) = translate(kind, params)?;
    Ok(FenceDevice {
        from,
        agent,
        written,
        options,
        targets,
    })
}

type Translated = (String, Vec<(String, String)>, Vec<Target>);

fn opts(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Positional heartbeat parameters: exactly the plugin's required names
/// (`optional` more may follow).
fn positional<'a>(
    kind: &str,
    params: &[&'a str],
    names: &[&str],
    optional: &[&str],
) -> Result<Vec<&'a str>, FenceConfigError> {
    // heartbeat also took `name=value` for external plugins; accept both.
    if params.iter().all(|p| p.contains('=')) && !params.is_empty() {
        let mut out = Vec::new();
        for n in names.iter().chain(optional) {
            out.push(
                params
                    .iter()
                    .find_map(|p| p.strip_prefix(&format!("{n}=")[..]))
                    .unwrap_or(""),
            );
        }
        if let Some(missing) = names.iter().zip(&out).find(|(_, v)| v.is_empty()) {
            return Err(FenceConfigError::MissingParameter {
                kind: kind.to_string(),
                name: missing.0.to_string(),
            });
        }
        return Ok(out);
    }
    if params.len() < names.len() || params.len() > names.len() + optional.len() {
        let mut syntax = names.join(" ");
        for o in optional {
            syntax.push_str(&format!(" [{o}]"));
        }
        return Err(FenceConfigError::ParameterCount {
            kind: kind.to_string(),
            syntax,
            got: params.len(),
        });
    }
    let mut out: Vec<&str> = params.to_vec();
    out.resize(names.len() + optional.len(), "");
    Ok(out)
}

/// heartbeat's `hostlist`: names separated by commas or spaces; external/libvirt
/// writes `node:domain` where the VM's name differs.
fn hostlist(list: &str) -> Vec<Target> {
    list.split([',', ' '])
        .filter(|s| !s.is_empty())
        .map(|h| match h.split_once(':') {
            Some((n, plug)) => Target {
                node: n.to_lowercase(),
                plug: Some(plug.to_string()),
            },
            None => Target {
                node: h.to_lowercase(),
                plug: Some(h.to_string()),
            },
        })
        .collect()
}

fn single(host: &str) -> Vec<Target> {
    vec![Target {
        node: host.to_lowercase(),
        plug: None,
    }]
}

/// heartbeat plugins refused, with why and what to use.
const REFUSED: &[(&str, &str)] = &[
    (
        "ssh",
        "ssh is not fencing: a hung or cut-off node does not answer ssh, which is exactly \
         when fencing is needed; use a power or management-board agent (fence_ipmilan, \
         fence_apc_snmp, fence_virsh...) or the `watchdog` directive",
    ),
    (
        "external/ssh",
        "ssh is not fencing: a hung or cut-off node does not answer ssh, which is exactly \
         when fencing is needed; use a power or management-board agent (fence_ipmilan, \
         fence_apc_snmp, fence_virsh...) or the `watchdog` directive",
    ),
    (
        "meatware",
        "meatware waits for an operator to confirm a manual reset; hbd does not start a \
         group on a person's word; use a power or management-board agent (fence_ipmilan, \
         fence_apc_snmp...), or leave fencing out and `hbctl clear` after checking by hand",
    ),
    (
        "null",
        "null reports success without fencing anything, so a group would start while the \
         node may still run it; drop the line (no fencing) or use a real agent",
    ),
    (
        "external/null",
        "null reports success without fencing anything, so a group would start while the \
         node may still run it; drop the line (no fencing) or use a real agent",
    ),
    (
        "suicide",
        "a node that must be fenced is one that cannot be trusted to kill itself; use the \
         `watchdog` directive for self-fencing",
    ),
    (
        "external/sbd",
        "hbd has no shared-disk fencing (sbd); use the `watchdog` directive for \
         self-fencing, or a power agent",
    ),
    (
        "apcsmart",
        "apcsmart drives a serial APC Smart-UPS, which fence-agents cannot; use a \
         network-managed PDU with fence_apc (telnet/ssh) or fence_apc_snmp",
    ),
    (
        "baytech",
        "fence-agents has no Baytech RPC agent; use a network PDU agent (fence_apc_snmp, \
         fence_eaton_snmp...) or fence_ipmilan",
    ),
    (
        "rps10",
        "the WTI RPS-10 is a serial switch, which fence-agents cannot drive; use fence_wti \
         with a network power switch, or fence_ipmilan",
    ),
    (
        "nw_rpc100s",
        "the Night/Ware RPC100S is a serial switch, which fence-agents cannot drive; use a \
         network PDU agent (fence_apc_snmp...) or fence_ipmilan",
    ),
    (
        "wti_mpc",
        "fence-agents has no SNMP agent for WTI MPC; use fence_wti (telnet/ssh) for the \
         same switch",
    ),
    (
        "cyclades",
        "fence-agents has no Cyclades AlterPath agent; use a network PDU agent \
         (fence_apc_snmp...) or fence_ipmilan",
    ),
    (
        "external/kdumpcheck",
        "kdumpcheck only delays fencing while a crash dump is taken; drop the line",
    ),
];

/// A heartbeat plugin name or a fence-agents program to an agent and its
/// options (see the module docs).
fn translate(kind: &str, params: &[&str]) -> Result<Translated, FenceConfigError> {
    let base = kind.rsplit('/').next().unwrap_or(kind);
    if base.starts_with("fence_") && (kind == base || kind.starts_with('/')) {
        return fence_agent(kind, params);
    }
    if let Some((_, why)) = REFUSED.iter().find(|(n, _)| *n == kind) {
        return Err(FenceConfigError::Refused {
            kind: kind.to_string(),
            why,
        });
    }
    let t = match kind {
        // cluster-glue external/ipmi: hostname ipaddr userid passwd interface.
        "external/ipmi" => {
            let v = positional(
                kind,
                params,
                &["hostname", "ipaddr", "userid", "passwd"],
                &["interface"],
            )?;
            let lanplus = match v[4] {
                "" | "lan" => "",
                "lanplus" => "1",
                other => return Err(FenceConfigError::IpmiInterface(other.to_string())),
            };
            (
                "fence_ipmilan".into(),
                opts(&[
                    ("ip", v[1]),
                    ("username", v[2]),
                    ("password", v[3]),
                    ("lanplus", lanplus),
                ]),
                single(v[0]),
            )
        }
        // cluster-glue ipmilan: hostname ipaddr port auth priv login password.
        "ipmilan" => {
            let v = positional(
                kind,
                params,
                &[
                    "hostname", "ipaddr", "port", "auth", "priv", "login", "password",
                ],
                &["reset_method"],
            )?;
            (
                "fence_ipmilan".into(),
                opts(&[
                    ("ip", v[1]),
                    ("ipport", v[2]),
                    ("auth", v[3]),
                    ("privlvl", v[4]),
                    ("username", v[5]),
                    ("password", v[6]),
                ]),
                single(v[0]),
            )
        }
        // apcmaster: ipaddr login password; outlets named after the hosts.
        "apcmaster" => {
            let v = positional(kind, params, &["ipaddr", "login", "password"], &[])?;
            (
                "fence_apc".into(),
                opts(&[("ip", v[0]), ("username", v[1]), ("password", v[2])]),
                Vec::new(),
            )
        }
        // apcmastersnmp: ipaddr port community.
        "apcmastersnmp" => {
            let v = positional(kind, params, &["ipaddr", "port", "community"], &[])?;
            (
                "fence_apc_snmp".into(),
                opts(&[("ip", v[0]), ("udpport", v[1]), ("community", v[2])]),
                Vec::new(),
            )
        }
        // external/rackpdu: hostlist pduip community.
        "external/rackpdu" => {
            let v = positional(kind, params, &["hostlist", "pduip", "community"], &[])?;
            let targets = if v[0].eq_ignore_ascii_case("auto") {
                Vec::new()
            } else {
                hostlist(v[0])
            };
            (
                "fence_apc_snmp".into(),
                opts(&[("ip", v[1]), ("community", v[2])]),
                targets,
            )
        }
        // wti_nps: ipaddr password; outlets named after the hosts.
        "wti_nps" => {
            let v = positional(kind, params, &["ipaddr", "password"], &[])?;
            (
                "fence_wti".into(),
                opts(&[("ip", v[0]), ("password", v[1])]),
                Vec::new(),
            )
        }
        // external/libvirt: hostlist hypervisor_uri (qemu+ssh://[user@]host/system).
        "external/libvirt" => {
            let v = positional(
                kind,
                params,
                &["hostlist", "hypervisor_uri"],
                &["reset_method"],
            )?;
            let (user, host) = libvirt_ssh_host(v[1])?;
            (
                "fence_virsh".into(),
                opts(&[("ip", host), ("username", user)]),
                hostlist(v[0]),
            )
        }
        // external/drac5: hostname ipaddr userid passwd.
        "external/drac5" => {
            let v = positional(
                kind,
                params,
                &["hostname", "ipaddr", "userid", "passwd"],
                &[],
            )?;
            (
                "fence_drac5".into(),
                opts(&[("ip", v[1]), ("username", v[2]), ("password", v[3])]),
                single(v[0]),
            )
        }
        // external/riloe: hostlist ilo_hostname ilo_user ilo_password.
        "external/riloe" => {
            let v = positional(
                kind,
                params,
                &["hostlist", "ilo_hostname", "ilo_user", "ilo_password"],
                &["ilo_can_reset", "ilo_protocol", "ilo_powerdown_method"],
            )?;
            let targets = hostlist(v[0])
                .into_iter()
                .map(|t| Target { plug: None, ..t })
                .collect();
            (
                "fence_ilo".into(),
                opts(&[("ip", v[1]), ("username", v[2]), ("password", v[3])]),
                targets,
            )
        }
        _ => return Err(FenceConfigError::UnknownType(kind.to_string())),
    };
    Ok(t)
}

/// `qemu+ssh://[user@]host[:port]/system` → (user, host).
fn libvirt_ssh_host(uri: &str) -> Result<(&str, &str), FenceConfigError> {
    let rest = uri
        .split_once("+ssh://")
        .map(|(_, r)| r)
        .ok_or_else(|| FenceConfigError::LibvirtNotSsh(uri.to_string()))?;
    let authority = rest.split('/').next().unwrap_or("");
    let (user, host) = match authority.split_once('@') {
        Some((u, h)) => (u, h),
        None => ("root", authority),
    };
    let host = host.split(':').next().unwrap_or("");
    if host.is_empty() {
        return Err(FenceConfigError::LibvirtNoHost(uri.to_string()));
    }
    Ok((user, host))
}

/// `fence_*` with `key=value` parameters. hbd's own key `nodes=a,b` names
/// the nodes the device fences (Pacemaker's `pcmk_host_list`); a fixed
/// `plug=`/`port=` needs it.
fn fence_agent(kind: &str, params: &[&str]) -> Result<Translated, FenceConfigError> {
    let mut options = Vec::new();
    let mut nodes: Option<Vec<String>> = None;
    let mut plug: Option<String> = None;
    for p in params {
        let Some((k, v)) = p.split_once('=') else {
            return Err(FenceConfigError::NotKeyValue(p.to_string()));
        };
        if k.is_empty() || !k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(FenceConfigError::BadOptionName {
                param: p.to_string(),
                key: k.to_string(),
            });
        }
        if RESERVED.contains(&k) {
            return Err(FenceConfigError::ReservedOption {
                param: p.to_string(),
                key: k.to_string(),
            });
        }
        match k {
            "nodes" => {
                nodes = Some(
                    v.split(',')
                        .filter(|s| !s.is_empty())
                        .map(str::to_lowercase)
                        .collect(),
                )
            }
            "plug" | "port" => plug = Some(v.to_string()),
            _ => options.push((k.to_string(), v.to_string())),
        }
    }
    let targets = match (nodes, plug) {
        (None, None) => Vec::new(),
        (None, Some(_)) => return Err(FenceConfigError::PlugWithoutNodes(kind.to_string())),
        (Some(n), _) if n.is_empty() => return Err(FenceConfigError::EmptyNodes(kind.to_string())),
        (Some(n), Some(p)) if n.len() == 1 => vec![Target {
            node: n[0].clone(),
            plug: Some(p),
        }],
        (Some(_), Some(_)) => return Err(FenceConfigError::PlugForSeveralNodes(kind.to_string())),
        (Some(n), None) => n
            .into_iter()
            .map(|node| Target {
                plug: Some(node.clone()),
                node,
            })
            .collect(),
    };
    Ok((kind.to_string(), options, targets))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<FenceDevice, FenceConfigError> {
        let args: Vec<&str> = line.split_whitespace().collect();
        parse_stonith_host(&args)
    }

    fn o(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        opts(pairs)
    }

    #[test]
    fn fence_agent_line() {
        let d = parse("* fence_hbd_lab lab=x1").unwrap();
        assert_eq!(d.from, None);
        assert_eq!(d.agent, "fence_hbd_lab");
        assert_eq!(d.options, o(&[("lab", "x1")]));
        assert!(d.targets.is_empty());
        assert_eq!(d.stdin("n2", "off"), "action=off\nplug=n2\nlab=x1\n");
        assert!(d.runs_on("n1") && d.runs_on("n2"));

        let d =
            parse("N1 fence_ipmilan ip=10.0.0.2 username=a password=b lanplus=1 nodes=N2").unwrap();
        assert_eq!(d.from.as_deref(), Some("n1"));
        assert!(d.runs_on("n1") && !d.runs_on("n2"));
        assert_eq!(d.plug_for("n2"), Some(Some("n2".into())));
        assert_eq!(d.plug_for("n3"), None);

        let d = parse("* fence_virsh ip=h plug=vm-2 nodes=n2").unwrap();
        assert_eq!(d.stdin("n2", "reboot"), "action=reboot\nplug=vm-2\nip=h\n");

        let d = parse("* /opt/x/fence_custom a=b").unwrap();
        assert_eq!(d.agent, "/opt/x/fence_custom");
    }

    #[test]
    fn fence_agent_errors() {
        assert!(parse("*")
            .unwrap_err()
            .to_string()
            .starts_with("missing value"));
        assert!(parse("* fence_x oops")
            .unwrap_err()
            .to_string()
            .contains("fence-agents options are key=value"));
        assert!(parse("* fence_x action=off")
            .unwrap_err()
            .to_string()
            .contains("hbd sets `action` itself"));
        assert!(parse("* fence_x plug=3")
            .unwrap_err()
            .to_string()
            .contains("needs nodes=NODE"));
        assert!(parse("* fence_x plug=3 nodes=a,b")
            .unwrap_err()
            .to_string()
            .contains("fences one node"));
    }

    #[test]
    fn external_ipmi() {
        let d = parse("n1 external/ipmi n2 10.0.0.12 admin secret lanplus").unwrap();
        assert_eq!(d.agent, "fence_ipmilan");
        assert_eq!(d.written, "external/ipmi");
        assert_eq!(
            d.options,
            o(&[
                ("ip", "10.0.0.12"),
                ("username", "admin"),
                ("password", "secret"),
                ("lanplus", "1")
            ])
        );
        // One board, one machine: no plug.
        assert_eq!(d.plug_for("n2"), Some(None));
        assert_eq!(d.plug_for("n1"), None);
        assert_eq!(
            d.stdin("n2", "off"),
            "action=off\nip=10.0.0.12\nusername=admin\npassword=secret\nlanplus=1\n"
        );
        let d = parse("n1 external/ipmi n2 10.0.0.12 admin secret").unwrap();
        assert!(!d.options.iter().any(|(k, _)| k == "lanplus"));
        // name=value form.
        let d = parse("n1 external/ipmi hostname=n2 ipaddr=1.2.3.4 userid=u passwd=p").unwrap();
        assert_eq!(d.options[0], ("ip".into(), "1.2.3.4".into()));
        assert!(parse("n1 external/ipmi n2 10.0.0.12 admin")
            .unwrap_err()
            .to_string()
            .contains("takes hostname ipaddr userid passwd [interface]"));
        assert!(parse("n1 external/ipmi n2 1.2.3.4 a b serial")
            .unwrap_err()
            .to_string()
            .contains("expected lan or lanplus"));
    }

    #[test]
    fn ipmilan() {
        let d = parse("* ipmilan n2 10.0.0.12 623 md5 admin root pw").unwrap();
        assert_eq!(d.agent, "fence_ipmilan");
        assert_eq!(
            d.options,
            o(&[
                ("ip", "10.0.0.12"),
                ("ipport", "623"),
                ("auth", "md5"),
                ("privlvl", "admin"),
                ("username", "root"),
                ("password", "pw")
            ])
        );
        assert_eq!(d.plug_for("n2"), Some(None));
    }

    #[test]
    fn pdus() {
        let d = parse("* apcmaster 10.0.0.5 apc apc").unwrap();
        assert_eq!(d.agent, "fence_apc");
        assert_eq!(d.plug_for("n2"), Some(Some("n2".into())));
        let d = parse("* apcmastersnmp 10.0.0.5 161 private").unwrap();
        assert_eq!(d.agent, "fence_apc_snmp");
        assert_eq!(d.options[1], ("udpport".into(), "161".into()));
        let d = parse("* external/rackpdu n1,n2 10.0.0.5 private").unwrap();
        assert_eq!(d.agent, "fence_apc_snmp");
        assert_eq!(d.plug_for("n2"), Some(Some("n2".into())));
        assert_eq!(d.plug_for("n3"), None);
        let d = parse("* external/rackpdu AUTO 10.0.0.5 private").unwrap();
        assert!(d.targets.is_empty());
        let d = parse("* wti_nps 10.0.0.6 pw").unwrap();
        assert_eq!(d.agent, "fence_wti");
        assert_eq!(d.options, o(&[("ip", "10.0.0.6"), ("password", "pw")]));
    }

    #[test]
    fn libvirt_drac_ilo() {
        let d = parse("* external/libvirt n1:vm1,n2:vm2 qemu+ssh://virt@kvm1/system").unwrap();
        assert_eq!(d.agent, "fence_virsh");
        assert_eq!(d.options, o(&[("ip", "kvm1"), ("username", "virt")]));
        assert_eq!(d.plug_for("n2"), Some(Some("vm2".into())));
        let d = parse("* external/libvirt n1 qemu+ssh://kvm1:22/system").unwrap();
        assert_eq!(d.options, o(&[("ip", "kvm1"), ("username", "root")]));
        assert!(parse("* external/libvirt n1 qemu:///system")
            .unwrap_err()
            .to_string()
            .contains("over ssh"));
        let d = parse("n1 external/drac5 n2 10.0.0.9 root calvin").unwrap();
        assert_eq!(d.agent, "fence_drac5");
        assert_eq!(d.plug_for("n2"), Some(None));
        let d = parse("n1 external/riloe n2 ilo2 admin pw").unwrap();
        assert_eq!(d.agent, "fence_ilo");
        assert_eq!(d.plug_for("n2"), Some(None));
    }

    #[test]
    fn refusals_say_why() {
        for (kind, want) in [
            ("external/ssh", "ssh is not fencing"),
            ("ssh", "ssh is not fencing"),
            ("meatware", "operator"),
            ("null", "reports success without fencing"),
            ("suicide", "watchdog"),
            ("apcsmart", "fence_apc"),
            ("baytech", "fence_apc_snmp"),
            ("rps10", "fence_wti"),
        ] {
            let e = parse(&format!("* {kind} n1 n2")).unwrap_err().to_string();
            assert!(e.starts_with(&format!("`{kind}`: ")), "{e}");
            assert!(e.contains(want), "{kind}: {e}");
        }
        let e = parse("* frobnicator a b").unwrap_err().to_string();
        assert!(e.contains("unknown stonith type"), "{e}");
        assert!(e.contains("fence_ipmilan"), "{e}");
    }

    /// Issue 16: the texts are the ones hbd printed before they were typed.
    #[test]
    fn errors_say_what_they_always_said() {
        let e = |line: &str| parse(line).unwrap_err();
        assert_eq!(e("*"), FenceConfigError::MissingValue);
        assert_eq!(
            e("*").to_string(),
            "missing value: expected `stonith_host FROM TYPE [PARAMS...]` \
             (FROM: `*` or the node that runs the agent)"
        );
        assert_eq!(
            e("* null").to_string(),
            "`null`: null reports success without fencing anything, so a group would start \
             while the node may still run it; drop the line (no fencing) or use a real agent"
        );
        assert_eq!(
            e("* frobnicator").to_string(),
            "`frobnicator`: unknown stonith type; write a fence-agents program \
             (`stonith_host * fence_ipmilan ip=... username=... password=...`); \
             heartbeat plugins hbd translates: external/ipmi, ipmilan, apcmaster, \
             apcmastersnmp, external/rackpdu, wti_nps, external/libvirt, external/drac5, \
             external/riloe"
        );
        assert_eq!(
            e("* wti_nps ipaddr=x").to_string(),
            "wti_nps: missing parameter `password`"
        );
        assert_eq!(
            e("* wti_nps a b c").to_string(),
            "wti_nps takes ipaddr password (heartbeat's order), got 3 value(s)"
        );
        assert_eq!(
            e("* external/ipmi n2 1.2.3.4 a b serial").to_string(),
            "external/ipmi: interface `serial`: expected lan or lanplus"
        );
        assert_eq!(
            e("* external/libvirt n1 qemu:///system").to_string(),
            "external/libvirt: hypervisor_uri `qemu:///system`: fence_virsh reaches the host \
             over ssh; write it as qemu+ssh://[user@]host/system"
        );
        assert_eq!(
            e("* external/libvirt n1 qemu+ssh:///system").to_string(),
            "external/libvirt: hypervisor_uri `qemu+ssh:///system`: no host"
        );
        assert_eq!(
            e("* fence_x oops").to_string(),
            "`oops`: fence-agents options are key=value (as on the agent's stdin)"
        );
        assert_eq!(
            e("* fence_x a-b=1").to_string(),
            "`a-b=1`: `a-b` is not an option name"
        );
        assert_eq!(
            e("* fence_x nodename=n1").to_string(),
            "`nodename=n1`: hbd sets `nodename` itself (the action comes from cluster.toml \
             [fencing] action)"
        );
        assert_eq!(
            e("* fence_x plug=3").to_string(),
            "fence_x: a fixed plug= needs nodes=NODE to say which node it fences"
        );
        assert_eq!(
            e("* fence_x nodes=,").to_string(),
            "fence_x: nodes= is empty"
        );
        assert_eq!(
            e("* fence_x plug=3 nodes=a,b").to_string(),
            "fence_x: a fixed plug= fences one node; nodes= lists several"
        );
    }

    #[test]
    fn devices_for_a_node() {
        let devs = vec![
            parse("n1 external/ipmi n2 10.0.0.12 a b").unwrap(),
            parse("n2 external/ipmi n1 10.0.0.11 a b").unwrap(),
            parse("* fence_hbd_lab lab=x").unwrap(),
        ];
        let d = devices_for(&devs, "n1", "n2");
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].agent, "fence_ipmilan");
        assert_eq!(d[1].agent, "fence_hbd_lab");
        assert!(devices_for(&devs, "n1", "n1").is_empty());
        assert_eq!(devices_for(&devs, "n2", "n1").len(), 2);
    }
}
