//! The checks of a `vrrp_instance` once the whole file is read: required
//! settings, and keepalived's pitfalls (strict mode, state and priority,
//! preemption, authentication, the advertisement interval).

use super::values::{fmt_secs, KeepalivedParser};
use super::{GlobalDefs, InitialState, KeepalivedConf, VrrpInstance, AUTH_PASS_LEN, PRIO_OWNER};
use crate::config::{ConfigError, Location};
use std::time::Duration;

/// Lines of an instance kept for the checks after parsing.
#[derive(Default)]
pub(super) struct InstanceLines {
    pub(super) state: Option<usize>,
    pub(super) priority: Option<usize>,
    pub(super) vrid: Option<usize>,
    pub(super) nopreempt: Option<usize>,
    pub(super) preempt_delay: Option<usize>,
    pub(super) auth: Option<usize>,
    pub(super) auth_pass: Option<(usize, usize)>,
    pub(super) advert_int: Option<usize>,
    pub(super) unicast_src_ip: Option<usize>,
    pub(super) unicast_peer: Option<usize>,
    pub(super) no_accept: Option<usize>,
    pub(super) vip_errors: bool,
}

/// Checks of one instance after the file is read: required settings and
/// keepalived's pitfalls.
pub(super) fn check_instance(
    p: &mut KeepalivedParser,
    i: &VrrpInstance,
    ln: &InstanceLines,
    g: &GlobalDefs,
) {
    let line = i.at.line;
    if i.interface.is_empty() {
        let msg = format!("vrrp_instance `{}` has no `interface`", i.name);
        p.err(line, "vrrp_instance", msg);
    }
    if ln.vrid.is_none() {
        let msg = format!("vrrp_instance `{}` has no `virtual_router_id`", i.name);
        p.err(line, "vrrp_instance", msg);
    }
    let strict = i.strict(g);
    let version = i.effective_version(g);
    let prio = i.base_priority();
    if i.vips.is_empty() && !ln.vip_errors {
        if strict || version == 3 {
            let msg = format!(
                "vrrp_instance `{}` has no `virtual_ipaddress` (keepalived refuses it in strict mode and with VRRPv3)",
                i.name
            );
            p.err(line, "vrrp_instance", msg);
        } else {
            let msg = format!("vrrp_instance `{}` has no `virtual_ipaddress`", i.name);
            p.warn(line, "vrrp_instance", msg);
        }
    }
    if strict && !i.unicast_peers.is_empty() {
        p.err(
            ln.unicast_peer.unwrap_or(line),
            "unicast_peer",
            "unicast peers are not allowed in strict mode (keepalived refuses the instance)".into(),
        );
    }
    if let Some(l) = ln.unicast_src_ip {
        if i.unicast_peers.is_empty() {
            let msg = "`unicast_src_ip` without unicast peers: adverts go to multicast; list the peers in `unicast_peer { }`".to_string();
            p.warn(ln.unicast_peer.unwrap_or(l), "unicast_peer", msg);
        }
    }
    // State and priority.
    if strict && i.state == Some(InitialState::Master) && prio != PRIO_OWNER {
        let msg = format!(
            "`state MASTER` with priority {prio} in strict mode: keepalived starts as BACKUP (MASTER requires priority 255); so does hbd"
        );
        p.warn(ln.state.unwrap_or(line), "state", msg);
    }
    if strict && i.state == Some(InitialState::Backup) && prio == PRIO_OWNER {
        let msg = "`state BACKUP` with priority 255 in strict mode: keepalived starts the address owner as MASTER; so does hbd".to_string();
        p.warn(ln.state.unwrap_or(line), "state", msg);
    }
    if strict && prio < PRIO_OWNER && i.accept != Some(false) {
        let msg = format!(
            "`vrrp_strict` with priority {prio} < 255: keepalived 2.2.7 installs no_accept firewall rules and the VIP stops answering; hbd keeps the VIP reachable unless `no_accept` is set explicitly"
        );
        p.warn(ln.priority.unwrap_or(line), "priority", msg);
    }
    if let Some(l) = ln.nopreempt {
        if prio == PRIO_OWNER {
            let msg = "`nopreempt` has no effect with priority 255 (keepalived clears it)".into();
            p.warn(l, "nopreempt", msg);
        } else if i.state == Some(InitialState::Master) {
            let msg = if i.initial_state(g) == InitialState::Backup {
                "`nopreempt` with `state MASTER`: keepalived ignores nopreempt unless the instance starts as BACKUP; here strict mode starts it as BACKUP, so nopreempt holds: write `state BACKUP` to say so".to_string()
            } else {
                "`nopreempt` with `state MASTER`: keepalived ignores nopreempt unless `state BACKUP`, so this node preempts; write `state BACKUP` on both nodes".to_string()
            };
            p.warn(l, "nopreempt", msg);
        }
    }
    if let Some(l) = ln.preempt_delay {
        if !i.preempt_delay.is_zero() && i.effective_preempt_delay(g).is_zero() {
            let msg = "`preempt_delay` has no effect with `state MASTER`, `nopreempt` or strict mode (keepalived resets it)".into();
            p.warn(l, "preempt_delay", msg);
        }
    }
    // Authentication.
    if i.auth.is_some() {
        let l = ln.auth.unwrap_or(line);
        if strict {
            p.warn(l, "authentication", "keepalived ignores authentication in strict mode: adverts carry none, and neither do hbd's".into());
        } else if version == 3 {
            p.warn(
                l,
                "authentication",
                "VRRPv3 has no authentication: keepalived ignores it, and so does hbd".into(),
            );
        }
    }
    if let Some((l, len)) = ln.auth_pass {
        if len > AUTH_PASS_LEN {
            let msg = format!("the password is {len} bytes: keepalived (and hbd) use only the first {AUTH_PASS_LEN}");
            p.warn(l, "auth_pass", msg);
        }
    }
    // Advertisement interval.
    let l = ln.advert_int.unwrap_or(line);
    let rounded = i.advert_interval(g);
    if version == 2 && i.advert_int >= Duration::from_secs(256) {
        p.err(
            l,
            "advert_int",
            "VRRPv2 advert_int must be less than 256 seconds".into(),
        );
    } else if version == 3 && i.advert_int >= Duration::from_millis(40_960) {
        p.err(
            l,
            "advert_int",
            "VRRPv3 advert_int must be less than 40.96 seconds".into(),
        );
    } else if rounded != i.advert_int {
        let unit = if version == 2 {
            "whole seconds"
        } else {
            "units of 10 ms"
        };
        let msg = format!(
            "VRRPv{version} carries {unit}: {} s is rounded to {} s (as keepalived)",
            fmt_secs(i.advert_int),
            fmt_secs(rounded)
        );
        p.warn(l, "advert_int", msg);
    }
}

/// What the runtime does not do yet, as `file:line` errors (for `hbctl
/// check` too): an error rather than a silently different behaviour.
pub fn unsupported(conf: &KeepalivedConf) -> Vec<ConfigError> {
    let err = |at: &Location, key: &str, message: String| ConfigError::Line {
        file: at.file.clone(),
        line: at.line,
        key: key.to_string(),
        message,
    };
    let mut problems = Vec::new();
    for i in &conf.instances {
        if i.use_vmac {
            problems.push(err(
                &i.at,
                "use_vmac",
                format!("vrrp_instance `{}`: use_vmac is not supported yet", i.name),
            ));
        }
        for v in i.vips.iter().chain(&i.excluded_vips) {
            if let Some(scope) = v.scope.as_deref().filter(|s| *s != "global") {
                problems.push(err(
                    &v.at,
                    "scope",
                    format!(
                        "{}: scope {scope} is not supported yet (VIPs are added with scope global)",
                        v.addr
                    ),
                ));
            }
        }
        for t in &i.track_interfaces {
            if t.weight != 0 || t.reverse {
                problems.push(err(
                    &t.at,
                    "track_interface",
                    format!(
                        "`{}`: weights are not supported yet (without one, the interface down means FAULT)",
                        t.name
                    ),
                ));
            }
        }
        for t in &i.track_scripts {
            if t.reverse || conf.script(&t.name).is_some_and(|s| s.weight_reverse) {
                problems.push(err(
                    &t.at,
                    "track_script",
                    format!("`{}`: `reverse` weights are not supported yet", t.name),
                ));
            }
        }
    }
    problems
}
