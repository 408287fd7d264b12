//! keepalived.conf's sections, statement by statement into the model:
//! `global_defs`, `vrrp_script`, `vrrp_instance` (with its
//! `authentication`) and `vrrp_sync_group`.

use super::check::InstanceLines;
use super::values::{bool_word, KeepalivedParser};
use super::{
    Auth, Command, GlobalDefs, InitialState, Notifies, ScriptUser, SyncGroup, TrackInterface,
    TrackScript, VrrpInstance, VrrpScript, AUTH_PASS_LEN, DEFAULT_ADVERT_INT,
    DEFAULT_SCRIPT_INTERVAL, MAX_WEIGHT,
};
use crate::config::syntax::{Opt, Stmt, Word};
use std::net::Ipv4Addr;
use std::time::Duration;

const NO_EFFECT: &str = "accepted, no effect in hbd";
const NO_MAIL: &str = "accepted, no effect: hbd sends no mail";
const NO_FIREWALL: &str = "accepted, no effect: hbd installs no firewall rules";
/// Longest vrrp_script interval or timeout, in seconds.
const MAX_SCRIPT_SECS: i64 = 86_400;

/// Global tuning knobs hbd accepts with a warning.
const GLOBAL_KNOBS: &[&str] = &[
    "smtp_helo_name",
    "smtp_alert",
    "smtp_alert_vrrp",
    "smtp_alert_checker",
    "vrrp_garp_lower_prio_delay",
    "vrrp_garp_lower_prio_repeat",
    "vrrp_garp_extra_if",
    "vrrp_priority",
    "vrrp_no_swap",
    "vrrp_rt_priority",
    "vrrp_rlimit_rttime",
    "vrrp_cpu_affinity",
    "checker_priority",
    "checker_no_swap",
    "checker_rt_priority",
    "checker_rlimit_rttime",
    "checker_cpu_affinity",
    "bfd_priority",
    "bfd_no_swap",
    "bfd_rt_priority",
    "bfd_rlimit_rttime",
    "bfd_cpu_affinity",
    "max_auto_priority",
    "min_auto_priority_delay",
    "lvs_id",
    "lvs_timeouts",
    "lvs_flush",
    "lvs_flush_on_stop",
    "lvs_sync_daemon",
    "vrrp_netlink_cmd_rcv_bufs",
    "vrrp_netlink_cmd_rcv_bufs_force",
    "vrrp_netlink_monitor_rcv_bufs",
    "vrrp_netlink_monitor_rcv_bufs_force",
    "vrrp_rx_bufs_policy",
    "vrrp_rx_bufs_multiplier",
    "process_names",
    "process_name",
    "vrrp_process_name",
    "checker_process_name",
    "bfd_process_name",
    "enable_traps",
    "enable_snmp_vrrp",
    "enable_snmp_keepalived",
    "enable_snmp_rfcv2",
    "enable_snmp_rfcv3",
    "enable_snmp_checker",
    "enable_dbus",
    "snmp_socket",
    "default_interface",
    "dynamic_interfaces",
    "vrrp_startup_delay",
    "vrrp_log_unknown_vrids",
    "vrrp_notify_priority_changes",
    "random_seed",
    "reload_time_file",
    "reload_repeat",
    "reload_file",
    "use_pid_dir",
    "vrrp_min_garp",
    "vmac_prefix",
    "vmac_addr_prefix",
];

/// Global firewall settings (hbd installs none).
const GLOBAL_FIREWALL: &[&str] = &[
    "vrrp_iptables",
    "vrrp_ipsets",
    "nftables",
    "nftables_priority",
    "nftables_ifindex",
    "nftables_counters",
];

/// Instance tuning knobs hbd accepts with a warning.
const INSTANCE_KNOBS: &[&str] = &[
    "garp_lower_prio_delay",
    "garp_lower_prio_repeat",
    "smtp_alert",
    "debug",
    "kernel_rx_buf_size",
    "notify_priority_changes",
    "linkbeat_use_polling",
    "promote_secondaries",
];

pub(super) fn global_defs(p: &mut KeepalivedParser, block: &[Stmt], g: &mut GlobalDefs) {
    let mut router_id: Opt<String> = None;
    let mut version: Opt<u8> = None;
    let mut script_user: Opt<ScriptUser> = None;
    for st in block {
        let key = st.key();
        let k = key.text.as_str();
        match k {
            "router_id" => {
                let v = p.value(st).map(|w| w.text.clone());
                p.set(&mut router_id, key, v);
            }
            "notification_email" => {
                let lines = p.list(st);
                for l in lines {
                    g.notification_email
                        .extend(l.words.iter().map(|w| w.text.clone()));
                }
                if !g.notification_email.is_empty() {
                    p.warn(key.line, k, NO_MAIL.into());
                }
            }
            "notification_email_from" => {
                if let Some(v) = p.value(st) {
                    g.notification_email_from = Some(v.text.clone());
                    p.warn(key.line, k, NO_MAIL.into());
                }
            }
            "smtp_server" => {
                if let Some(v) = p.values(st, 1, 2) {
                    let t: Vec<&str> = v.iter().map(|w| w.text.as_str()).collect();
                    g.smtp_server = Some(t.join(" "));
                    p.warn(key.line, k, NO_MAIL.into());
                }
            }
            "smtp_connect_timeout" => {
                if let Some(d) = p.secs_value(st, Duration::ZERO, Duration::from_secs(86_400)) {
                    g.smtp_connect_timeout = Some(d);
                    p.warn(key.line, k, NO_MAIL.into());
                }
            }
            "vrrp_skip_check_adv_addr" => g.vrrp_skip_check_adv_addr |= p.flag(st),
            "vrrp_strict" => g.vrrp_strict |= p.flag(st),
            "enable_script_security" => g.enable_script_security |= p.flag(st),
            "vrrp_garp_interval" | "vrrp_gna_interval" => {
                if let Some(d) = p.secs_value(st, Duration::ZERO, Duration::from_secs(3600)) {
                    if k == "vrrp_garp_interval" {
                        g.vrrp_garp_interval = d;
                    } else {
                        g.vrrp_gna_interval = d;
                    }
                }
            }
            "vrrp_garp_master_delay" => {
                if let Some(d) = p.whole_secs(st, 0, 3600) {
                    g.vrrp_garp_master_delay = d;
                }
            }
            "vrrp_garp_master_refresh" => {
                if let Some(d) = p.whole_secs(st, 0, 86_400) {
                    g.vrrp_garp_master_refresh = d;
                }
            }
            "vrrp_garp_master_repeat" => {
                if let Some(n) = p.int_value(st, 0, 1000) {
                    g.vrrp_garp_master_repeat = n as u32;
                }
            }
            "vrrp_garp_master_refresh_repeat" => {
                if let Some(n) = p.int_value(st, 0, 1000) {
                    g.vrrp_garp_master_refresh_repeat = n as u32;
                }
            }
            "vrrp_mcast_group4" => {
                if let Some(v) = p.value(st) {
                    match p.ipv4(k, v) {
                        Some(a) if a.is_multicast() => g.vrrp_mcast_group4 = a,
                        Some(_) => {
                            let msg = format!("`{}`: not a multicast address", v.text);
                            p.err(v.line, k, msg);
                        }
                        None => {}
                    }
                }
            }
            "script_user" => {
                let u = p.user(st);
                p.set(&mut script_user, key, u);
            }
            "vrrp_version" => {
                let v = p.int_value(st, 2, 3).map(|n| n as u8);
                p.set(&mut version, key, v);
            }
            knob if GLOBAL_KNOBS.contains(&knob) => p.warn(key.line, k, NO_EFFECT.into()),
            fw if GLOBAL_FIREWALL.contains(&fw) => p.warn(key.line, k, NO_FIREWALL.into()),
            _ => p.unsupported(key, "global_defs"),
        }
    }
    g.router_id = router_id.map(|v| v.0);
    g.script_user = script_user.map(|v| v.0);
    if let Some((v, _)) = version {
        g.vrrp_version = v;
    }
}

pub(super) fn vrrp_script(
    p: &mut KeepalivedParser,
    name: &Word,
    block: &[Stmt],
) -> Option<VrrpScript> {
    let mut command: Opt<Command> = None;
    let mut interval: Opt<Duration> = None;
    let mut timeout: Opt<Duration> = None;
    let mut weight: Opt<(i32, bool)> = None;
    let mut rise: Opt<u32> = None;
    let mut fall: Opt<u32> = None;
    let mut user: Opt<ScriptUser> = None;
    let mut init_fail = false;
    for st in block {
        let key = st.key();
        let k = key.text.as_str();
        match k {
            "script" => {
                let words = &st.words[1..];
                let c = if words.len() > 1 && !words[0].quoted && st.block.is_none() {
                    let msg = format!(
                        "unexpected `{}`: quote the whole command, e.g. `script \"{} {}\"` (keepalived would run `{}` alone)",
                        words[1].text, words[0].text, words[1].text, words[0].text
                    );
                    p.err(words[1].line, k, msg);
                    None
                } else {
                    match p.values(st, 1, 1) {
                        Some(v) => p.command(k, &v[0]),
                        None => None,
                    }
                };
                p.set(&mut command, key, c);
            }
            "interval" => {
                let d = p.whole_secs(st, 1, MAX_SCRIPT_SECS);
                p.set(&mut interval, key, d);
            }
            "timeout" => {
                let d = p.whole_secs(st, 1, MAX_SCRIPT_SECS);
                p.set(&mut timeout, key, d);
            }
            "weight" => {
                let w = p.values(st, 1, 2).and_then(|v| {
                    let reverse = match v.get(1) {
                        None => false,
                        Some(r) if r.text == "reverse" => true,
                        Some(r) => {
                            let msg = format!("unexpected `{}`: expected `reverse`", r.text);
                            p.err(r.line, k, msg);
                            return None;
                        }
                    };
                    let n = p.int(k, &v[0], -(MAX_WEIGHT as i64), MAX_WEIGHT as i64)?;
                    Some((n as i32, reverse))
                });
                p.set(&mut weight, key, w);
            }
            "rise" => {
                let n = p.int_value(st, 1, 1_000_000).map(|n| n as u32);
                p.set(&mut rise, key, n);
            }
            "fall" => {
                let n = p.int_value(st, 1, 1_000_000).map(|n| n as u32);
                p.set(&mut fall, key, n);
            }
            "init_fail" => init_fail |= p.flag(st),
            "user" => {
                let u = p.user(st);
                p.set(&mut user, key, u);
            }
            _ => p.unsupported(key, "vrrp_script"),
        }
    }
    let Some((command, _)) = command else {
        let msg = format!("vrrp_script `{}` has no `script`", name.text);
        p.err(name.line, "vrrp_script", msg);
        return None;
    };
    let (weight, weight_reverse) = weight.map(|w| w.0).unwrap_or((0, false));
    Some(VrrpScript {
        name: name.text.clone(),
        command,
        interval: interval.map_or(DEFAULT_SCRIPT_INTERVAL, |v| v.0),
        timeout: timeout.map(|v| v.0),
        weight,
        weight_reverse,
        rise: rise.map_or(1, |v| v.0),
        fall: fall.map_or(1, |v| v.0),
        init_fail,
        user: user.map(|v| v.0),
        at: p.at(name.line),
    })
}

pub(super) fn vrrp_instance(
    p: &mut KeepalivedParser,
    name: &Word,
    block: &[Stmt],
) -> (VrrpInstance, InstanceLines) {
    let mut ln = InstanceLines::default();
    let mut state: Opt<InitialState> = None;
    let mut interface: Opt<String> = None;
    let mut vrid: Opt<u8> = None;
    let mut priority: Opt<u8> = None;
    let mut advert: Opt<Duration> = None;
    let mut preempt_delay: Opt<Duration> = None;
    let mut version: Opt<u8> = None;
    let mut src: Opt<Ipv4Addr> = None;
    // Which of its two names set `src`.
    let mut src_key = "";
    let mut accept: Opt<bool> = None;
    let mut strict: Opt<bool> = None;
    let mut garp_delay: Opt<Duration> = None;
    let mut garp_repeat: Opt<u32> = None;
    let mut garp_refresh: Opt<Duration> = None;
    let mut garp_refresh_repeat: Opt<u32> = None;
    let mut auth: Opt<Auth> = None;
    let mut vips_seen: Opt<()> = None;
    let mut evips_seen: Opt<()> = None;
    let mut inst = VrrpInstance {
        name: name.text.clone(),
        state: None,
        interface: String::new(),
        vrid: 0,
        priority: None,
        advert_int: DEFAULT_ADVERT_INT,
        nopreempt: false,
        preempt_delay: Duration::ZERO,
        vips: Vec::new(),
        excluded_vips: Vec::new(),
        track_scripts: Vec::new(),
        track_interfaces: Vec::new(),
        auth: None,
        notify: Notifies::default(),
        unicast_src_ip: None,
        unicast_peers: Vec::new(),
        garp_master_delay: None,
        garp_master_repeat: None,
        garp_master_refresh: None,
        garp_master_refresh_repeat: None,
        use_vmac: false,
        vmac_name: None,
        vmac_xmit_base: false,
        version: None,
        dont_track_primary: false,
        accept: None,
        strict_mode: None,
        skip_check_adv_addr: None,
        at: p.at(name.line),
    };
    for st in block {
        let key = st.key();
        let k = key.text.as_str();
        match k {
            "state" => {
                let s = p.value(st).and_then(|v| match v.text.as_str() {
                    "MASTER" => Some(InitialState::Master),
                    "BACKUP" => Some(InitialState::Backup),
                    t => {
                        let msg = format!("`{t}`: expected MASTER or BACKUP");
                        p.err(v.line, k, msg);
                        None
                    }
                });
                p.set(&mut state, key, s);
            }
            "interface" => {
                let i = p.value(st).and_then(|v| p.ifname(k, v));
                p.set(&mut interface, key, i);
            }
            "virtual_router_id" => {
                let n = p.int_value(st, 1, 255).map(|n| n as u8);
                p.set(&mut vrid, key, n);
            }
            "priority" => {
                let n = p.int_value(st, 1, 255).map(|n| n as u8);
                p.set(&mut priority, key, n);
            }
            "advert_int" => {
                let d = p.secs_value(st, Duration::from_millis(1), Duration::from_secs(255));
                p.set(&mut advert, key, d);
            }
            "nopreempt" => {
                if p.flag(st) {
                    inst.nopreempt = true;
                    ln.nopreempt.get_or_insert(key.line);
                }
            }
            "preempt" => {
                if p.flag(st) {
                    inst.nopreempt = false;
                    ln.nopreempt = None;
                }
            }
            "preempt_delay" => {
                let d = p.secs_value(st, Duration::ZERO, Duration::from_secs(1000));
                p.set(&mut preempt_delay, key, d);
            }
            "virtual_ipaddress" | "virtual_ipaddress_excluded" => {
                let seen = if k == "virtual_ipaddress" {
                    &mut vips_seen
                } else {
                    &mut evips_seen
                };
                p.set(seen, key, Some(()));
                let before = p.errors.len();
                for l in p.list(st) {
                    if let Some(v) = p.vip(l) {
                        // keepalived (vrrp_data.c, vip_is_duplicate): an
                        // address already a VIP of this instance (an excluded
                        // one: on the same interface), or already an excluded
                        // VIP on the same interface, is ignored with a warning,
                        // whatever its label.
                        let excluded = k != "virtual_ipaddress";
                        let dup = inst
                            .vips
                            .iter()
                            .filter(|o| !excluded || o.dev == v.dev)
                            .chain(inst.excluded_vips.iter().filter(|o| o.dev == v.dev))
                            .find(|o| o.addr == v.addr);
                        if let Some(first) = dup {
                            let msg = format!(
                                "`{}` duplicates the VIP of line {}: ignored, as keepalived does",
                                v.addr, first.at.line
                            );
                            p.warn(v.at.line, k, msg);
                        } else if excluded {
                            inst.excluded_vips.push(v);
                        } else {
                            inst.vips.push(v);
                        }
                    }
                }
                ln.vip_errors |= k == "virtual_ipaddress" && p.errors.len() > before;
            }
            "track_script" => {
                for l in p.list(st) {
                    if let Some((weight, reverse)) = p.tracked(k, l) {
                        inst.track_scripts.push(TrackScript {
                            name: l.key().text.clone(),
                            weight,
                            reverse,
                            at: p.at(l.key().line),
                        });
                    }
                }
            }
            "track_interface" => {
                for l in p.list(st) {
                    let Some(ifname) = p.ifname(k, l.key()) else {
                        continue;
                    };
                    if let Some((weight, reverse)) = p.tracked(k, l) {
                        inst.track_interfaces.push(TrackInterface {
                            name: ifname,
                            weight: weight.unwrap_or(0),
                            reverse,
                            at: p.at(l.key().line),
                        });
                    }
                }
            }
            "authentication" => {
                let a = authentication(p, st, &mut ln);
                if a.is_some() {
                    ln.auth = Some(key.line);
                }
                p.set(&mut auth, key, a);
            }
            "notify" => p.notify(st, &mut inst.notify.notify),
            "notify_master" => p.notify(st, &mut inst.notify.master),
            "notify_backup" => p.notify(st, &mut inst.notify.backup),
            "notify_fault" => p.notify(st, &mut inst.notify.fault),
            "notify_stop" => p.notify(st, &mut inst.notify.stop),
            "unicast_src_ip" | "mcast_src_ip" => {
                let a = p.value(st).and_then(|v| p.ipv4(k, v));
                if a.is_some() && k == "unicast_src_ip" {
                    ln.unicast_src_ip = Some(key.line);
                }
                // One setting under two names (vrrp_parser.c: both set
                // vrrp->saddr): the last wins. The same name twice stays an
                // error (a slip); the other name is how configurations
                // converted between multicast and unicast read.
                match (&src, a) {
                    (Some((old, first)), Some(new)) if src_key != k => {
                        if *old != new {
                            let msg = format!(
                                "replaces `{src_key} {old}` (line {first}): keepalived keeps \
                                 the last source address given"
                            );
                            p.warn(key.line, k, msg);
                        }
                        src = Some((new, key.line));
                    }
                    _ => p.set(&mut src, key, a),
                }
                if src.is_some_and(|(_, l)| l == key.line) {
                    src_key = if k == "mcast_src_ip" {
                        "mcast_src_ip"
                    } else {
                        "unicast_src_ip"
                    };
                }
            }
            "unicast_peer" => {
                ln.unicast_peer = Some(key.line);
                for l in p.list(st) {
                    if let Some(extra) = l.words.get(1) {
                        let msg = format!(
                            "`{}`: not supported by hbd: one address per line",
                            extra.text
                        );
                        p.err(extra.line, k, msg);
                        continue;
                    }
                    if let Some(a) = p.ipv4(k, l.key()) {
                        if inst.unicast_peers.contains(&a) {
                            p.err(l.key().line, k, format!("`{a}` listed twice"));
                        } else {
                            inst.unicast_peers.push(a);
                        }
                    }
                }
            }
            "garp_master_delay" => {
                let d = p.whole_secs(st, 0, 3600);
                p.set(&mut garp_delay, key, d);
            }
            "garp_master_refresh" => {
                let d = p.whole_secs(st, 0, 86_400);
                p.set(&mut garp_refresh, key, d);
            }
            "garp_master_repeat" => {
                let n = p.int_value(st, 0, 1000).map(|n| n as u32);
                p.set(&mut garp_repeat, key, n);
            }
            "garp_master_refresh_repeat" => {
                let n = p.int_value(st, 0, 1000).map(|n| n as u32);
                p.set(&mut garp_refresh_repeat, key, n);
            }
            "use_vmac" => {
                if let Some(v) = p.values(st, 0, 1) {
                    inst.use_vmac = true;
                    inst.vmac_name = match v.first() {
                        Some(w) => p.ifname(k, w),
                        None => None,
                    };
                }
            }
            "vmac_xmit_base" => inst.vmac_xmit_base |= p.flag(st),
            "version" => {
                let v = p.int_value(st, 2, 3).map(|n| n as u8);
                p.set(&mut version, key, v);
            }
            "vrrp_version" => {
                let msg = "inside `vrrp_instance` the keyword is `version` (keepalived ignores `vrrp_version` here)";
                p.err(key.line, k, msg.into());
            }
            "dont_track_primary" => inst.dont_track_primary |= p.flag(st),
            "accept" | "no_accept" => {
                if p.flag(st) {
                    if k == "no_accept" {
                        ln.no_accept = Some(key.line);
                    }
                    p.set(&mut accept, key, Some(k == "accept"));
                }
            }
            "strict_mode" | "skip_check_adv_addr" => {
                let b = p.values(st, 0, 1).and_then(|v| match v.first() {
                    None => Some(true),
                    Some(w) => bool_word(&w.text).or_else(|| {
                        let msg = format!("`{}`: expected on/off, true/false or yes/no", w.text);
                        p.err(w.line, k, msg);
                        None
                    }),
                });
                if k == "strict_mode" {
                    p.set(&mut strict, key, b);
                } else if let Some(b) = b {
                    inst.skip_check_adv_addr = Some(b);
                }
            }
            knob if INSTANCE_KNOBS.contains(&knob) => p.warn(key.line, k, NO_EFFECT.into()),
            _ => p.unsupported(key, "vrrp_instance"),
        }
    }
    ln.state = state.as_ref().map(|v| v.1);
    ln.priority = priority.as_ref().map(|v| v.1);
    ln.vrid = vrid.as_ref().map(|v| v.1);
    ln.preempt_delay = preempt_delay.as_ref().map(|v| v.1);
    ln.advert_int = advert.as_ref().map(|v| v.1);
    inst.state = state.map(|v| v.0);
    inst.interface = interface.map(|v| v.0).unwrap_or_default();
    inst.vrid = vrid.map_or(0, |v| v.0);
    inst.priority = priority.map(|v| v.0);
    inst.advert_int = advert.map_or(DEFAULT_ADVERT_INT, |v| v.0);
    inst.preempt_delay = preempt_delay.map_or(Duration::ZERO, |v| v.0);
    inst.version = version.map(|v| v.0);
    inst.unicast_src_ip = src.map(|v| v.0);
    inst.accept = accept.map(|v| v.0);
    inst.strict_mode = strict.map(|v| v.0);
    inst.garp_master_delay = garp_delay.map(|v| v.0);
    inst.garp_master_repeat = garp_repeat.map(|v| v.0);
    inst.garp_master_refresh = garp_refresh.map(|v| v.0);
    inst.garp_master_refresh_repeat = garp_refresh_repeat.map(|v| v.0);
    inst.auth = auth.map(|v| v.0);
    (inst, ln)
}

fn authentication(p: &mut KeepalivedParser, st: &Stmt, ln: &mut InstanceLines) -> Option<Auth> {
    let (_, block) = p.section(st, 0)?;
    let mut kind: Opt<()> = None;
    let mut pass: Opt<String> = None;
    let mut ok = true;
    for s in block {
        let key = s.key();
        match key.text.as_str() {
            "auth_type" => {
                let t = p.value(s).and_then(|v| match v.text.as_str() {
                    "PASS" => Some(()),
                    "AH" => {
                        p.err(v.line, "auth_type", "`AH`: IPsec AH authentication is not supported by hbd; use `PASS` or none".into());
                        None
                    }
                    t => {
                        p.err(v.line, "auth_type", format!("`{t}`: expected PASS"));
                        None
                    }
                });
                if t.is_none() {
                    ok = false;
                }
                p.set(&mut kind, key, t);
            }
            "auth_pass" => {
                let v = p.value(s).map(|v| v.text.clone());
                match &v {
                    Some(t) if t.is_empty() => {
                        p.err(key.line, "auth_pass", "empty password".into());
                        ok = false;
                        continue;
                    }
                    None => ok = false,
                    Some(t) => ln.auth_pass = Some((key.line, t.len())),
                }
                p.set(&mut pass, key, v);
            }
            _ => {
                p.unsupported(key, "authentication");
                ok = false;
            }
        }
    }
    if !ok {
        return None;
    }
    match (kind, pass) {
        (Some(_), Some((pw, _))) => {
            let mut end = pw.len().min(AUTH_PASS_LEN);
            while !pw.is_char_boundary(end) {
                end -= 1;
            }
            Some(Auth::Pass(pw[..end].to_string()))
        }
        (Some(_), None) => {
            p.err(
                st.key().line,
                "authentication",
                "`auth_type PASS` without `auth_pass`".into(),
            );
            None
        }
        (None, Some(_)) => {
            p.err(
                st.key().line,
                "authentication",
                "`auth_pass` without `auth_type PASS`".into(),
            );
            None
        }
        (None, None) => None,
    }
}

pub(super) fn sync_group(p: &mut KeepalivedParser, name: &Word, block: &[Stmt]) -> SyncGroup {
    let mut g = SyncGroup {
        name: name.text.clone(),
        instances: Vec::new(),
        notify: Notifies::default(),
        at: p.at(name.line),
    };
    let mut group_seen: Opt<()> = None;
    for st in block {
        let key = st.key();
        match key.text.as_str() {
            "group" => {
                p.set(&mut group_seen, key, Some(()));
                for l in p.list(st) {
                    for w in &l.words {
                        if g.instances.contains(&w.text) {
                            p.err(w.line, "group", format!("`{}` listed twice", w.text));
                        } else {
                            g.instances.push(w.text.clone());
                        }
                    }
                }
            }
            "notify" => p.notify(st, &mut g.notify.notify),
            "notify_master" => p.notify(st, &mut g.notify.master),
            "notify_backup" => p.notify(st, &mut g.notify.backup),
            "notify_fault" => p.notify(st, &mut g.notify.fault),
            "notify_stop" => p.notify(st, &mut g.notify.stop),
            "smtp_alert" | "notify_priority_changes" => {
                p.warn(key.line, &key.text, NO_EFFECT.into())
            }
            _ => p.unsupported(key, "vrrp_sync_group"),
        }
    }
    if group_seen.is_none() {
        let msg = format!("vrrp_sync_group `{}` has no `group {{ }}`", name.text);
        p.err(name.line, "vrrp_sync_group", msg);
    }
    g
}
