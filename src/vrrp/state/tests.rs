//! Unit tests of `vrrp/state.rs`.

use super::*;

const A: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const B: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const Z: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 0);
const SEC: Duration = Duration::from_secs(1);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn cfg(priority: u8) -> InstanceConfig {
    InstanceConfig::new("VI_1", Version::V2, 51, priority, SEC, A, "eth0")
}

fn script(name: &str, weight: i32, rise: u32, fall: u32, init_fail: bool) -> TrackScript {
    TrackScript {
        name: name.to_string(),
        weight,
        rise,
        fall,
        init_fail,
    }
}

fn started(cfg: InstanceConfig) -> Instance {
    let mut i = Instance::new(cfg);
    i.handle(Duration::ZERO, Input::Start);
    i.take_outputs();
    i
}

fn adv(from: Ipv4Addr, priority: u8) -> Input {
    Input::Advert {
        from,
        priority,
        interval: SEC,
    }
}

fn result(name: &str, ok: bool) -> Input {
    Input::ScriptResult {
        name: name.to_string(),
        ok,
    }
}

/// Adverts from `from` every second in [from_s, to_s), ticking between.
fn feed(i: &mut Instance, from: Ipv4Addr, priority: u8, from_s: u64, to_s: u64) {
    for t in from_s..to_s {
        i.handle(Duration::from_secs(t), adv(from, priority));
    }
}

/// Run ticks until `until`.
fn run(i: &mut Instance, until: Duration) {
    while let Some(d) = i.next_deadline() {
        if d > until {
            break;
        }
        i.handle(d, Input::Tick);
    }
    i.handle(until, Input::Tick);
}

fn master_now(i: &mut Instance, now: Duration) {
    run(i, now);
    assert_eq!(i.state(), State::Master);
    i.take_outputs();
}

#[test]
fn master_down_interval_and_skew_v2() {
    let mut i = started(cfg(100));
    assert_eq!(i.state(), State::Backup);
    assert_eq!(i.skew(), Duration::from_micros(609_375));
    let mdi = Duration::from_micros(3_609_375);
    assert_eq!(i.master_down_interval(), mdi);
    assert_eq!(i.next_deadline(), Some(mdi));
    i.handle(mdi - ms(1), Input::Tick);
    assert_eq!(i.state(), State::Backup);
    i.handle(mdi, Input::Tick);
    assert_eq!(
        i.take_outputs(),
        vec![
            Output::StateChanged {
                from: State::Backup,
                to: State::Master,
                why: "master down"
            },
            Output::AddVips,
            Output::SendAdvert { priority: 100 },
            Output::SendGarps { repeat: 5 },
            Output::Notify {
                state: State::Master,
                priority: 100
            },
        ]
    );
    assert_eq!(i.status().master, Some(A));
    assert!(i.status().vips_held);
    // Adverts every interval.
    i.handle(mdi + SEC, Input::Tick);
    assert_eq!(i.take_outputs(), vec![Output::SendAdvert { priority: 100 }]);
}

#[test]
fn v3_skew_uses_the_masters_interval() {
    let mut c = cfg(200);
    c.version = Version::V3;
    c.advert_interval = ms(100);
    let mut i = started(c);
    // 3 × 100 ms + 56 × 100 ms / 256
    assert_eq!(i.master_down_interval(), Duration::from_micros(321_875));
    i.handle(
        ms(10),
        Input::Advert {
            from: B,
            priority: 250,
            interval: SEC,
        },
    );
    assert_eq!(i.skew(), Duration::from_micros(218_750));
    assert_eq!(
        i.next_deadline(),
        Some(ms(10) + Duration::from_micros(3_218_750))
    );
    assert_eq!(i.status().master, Some(B));
}

#[test]
fn v2_interval_mismatch_is_ignored() {
    let mut i = started(cfg(100));
    i.handle(
        ms(500),
        Input::Advert {
            from: B,
            priority: 200,
            interval: 2 * SEC,
        },
    );
    assert_eq!(i.status().master, None);
    assert_eq!(i.next_deadline(), Some(Duration::from_micros(3_609_375)));
}

#[test]
fn backup_never_preempts_an_equal_priority() {
    let mut i = started(cfg(100));
    feed(&mut i, B, 100, 0, 30);
    assert_eq!(i.state(), State::Backup);
    assert_eq!(i.status().master, Some(B));
    // Even from a lower IP.
    let mut i = started(cfg(100));
    feed(&mut i, Z, 100, 0, 30);
    assert_eq!(i.state(), State::Backup);
}

#[test]
fn backup_preempts_a_lower_priority() {
    let mut i = started(cfg(100));
    feed(&mut i, B, 50, 0, 30);
    assert_eq!(i.state(), State::Master);
    // The down timer of the start ran out: the lower adverts were discarded.
    let mut i = started(cfg(100));
    feed(&mut i, B, 50, 0, 3);
    run(&mut i, Duration::from_micros(3_609_375));
    assert_eq!(i.state(), State::Master);
}

#[test]
fn nopreempt_keeps_a_lower_master_but_takes_over_a_dead_one() {
    let mut c = cfg(100);
    c.nopreempt = true;
    let mut i = started(c);
    feed(&mut i, B, 50, 0, 30);
    assert_eq!(i.state(), State::Backup);
    run(
        &mut i,
        Duration::from_secs(29) + Duration::from_micros(3_609_374),
    );
    assert_eq!(i.state(), State::Backup);
    run(
        &mut i,
        Duration::from_secs(29) + Duration::from_micros(3_609_375),
    );
    assert_eq!(i.state(), State::Master);
}

#[test]
fn preempt_delay() {
    let mut c = cfg(100);
    c.preempt_delay = Duration::from_secs(5);
    let mut i = started(c);
    // Heard the lower master first at 0: adverts accepted until 5 s.
    feed(&mut i, B, 50, 0, 30);
    assert_eq!(i.state(), State::Master);
    let mut i = started({
        let mut c = cfg(100);
        c.preempt_delay = Duration::from_secs(5);
        c
    });
    feed(&mut i, B, 50, 0, 8);
    // Last accepted advert at 4 s (5 s is discarded).
    assert_eq!(i.state(), State::Backup);
    assert_eq!(
        i.next_deadline(),
        Some(Duration::from_secs(4) + Duration::from_micros(3_609_375))
    );
    // A higher priority resets the delay.
    i.handle(Duration::from_secs(8), adv(B, 150));
    feed(&mut i, B, 50, 9, 13);
    assert_eq!(i.state(), State::Backup);
    // The delay counts from start-up: a lower master first heard at 3 s
    // is no longer accepted at 5 s (not 8 s).
    let mut c = cfg(100);
    c.preempt_delay = Duration::from_secs(5);
    let mut i = started(c.clone());
    feed(&mut i, B, 50, 3, 5);
    assert_eq!(
        i.next_deadline(),
        Some(Duration::from_secs(4) + Duration::from_micros(3_609_375))
    );
    feed(&mut i, B, 50, 5, 6);
    assert_eq!(
        i.next_deadline(),
        Some(Duration::from_secs(4) + Duration::from_micros(3_609_375))
    );
    // And from leaving FAULT.
    c.track_interfaces = vec!["eth1".to_string()];
    let mut i = started(c);
    i.handle(Duration::from_secs(10), Input::InterfaceDown("eth1".into()));
    i.handle(Duration::from_secs(20), Input::InterfaceUp("eth1".into()));
    feed(&mut i, B, 50, 21, 25);
    assert_eq!(i.state(), State::Backup);
    assert_eq!(
        i.next_deadline(),
        Some(Duration::from_secs(24) + Duration::from_micros(3_609_375))
    );
    feed(&mut i, B, 50, 25, 40);
    assert_eq!(i.state(), State::Master);
}

#[test]
fn master_yields_to_a_higher_priority_or_an_equal_one_from_a_higher_ip() {
    let mut i = started(cfg(100));
    master_now(&mut i, Duration::from_secs(4));
    i.handle(Duration::from_secs(5), adv(B, 101));
    assert_eq!(i.state(), State::Backup);
    let out = i.take_outputs();
    assert!(out.contains(&Output::RemoveVips));
    assert!(out.contains(&Output::Notify {
        state: State::Backup,
        priority: 100
    }));
    assert!(!i.status().vips_held);
    assert_eq!(i.status().master, Some(B));

    let mut i = started(cfg(100));
    master_now(&mut i, Duration::from_secs(4));
    i.handle(Duration::from_secs(5), adv(B, 100));
    assert_eq!(i.state(), State::Backup);

    // Equal priority from a lower IP: stay and advertise at once.
    let mut i = started(cfg(100));
    master_now(&mut i, Duration::from_secs(4));
    i.handle(ms(4500), adv(Z, 100));
    assert_eq!(i.state(), State::Master);
    assert_eq!(i.take_outputs(), vec![Output::SendAdvert { priority: 100 }]);
    assert_eq!(i.next_deadline(), Some(ms(5500)));
}

#[test]
fn master_readvertises_on_a_lower_priority_and_on_priority_0() {
    let mut i = started(cfg(100));
    master_now(&mut i, Duration::from_secs(4));
    i.handle(ms(4200), adv(B, 99));
    assert_eq!(i.take_outputs(), vec![Output::SendAdvert { priority: 100 }]);
    i.handle(ms(4300), adv(B, 0));
    assert_eq!(i.take_outputs(), vec![Output::SendAdvert { priority: 100 }]);
    assert_eq!(i.state(), State::Master);
}

#[test]
fn priority_0_cuts_the_backup_wait_to_the_skew() {
    let mut i = started(cfg(100));
    feed(&mut i, B, 200, 0, 5);
    i.handle(ms(5000), adv(B, 0));
    assert_eq!(i.status().master, None);
    assert_eq!(
        i.next_deadline(),
        Some(ms(5000) + Duration::from_micros(609_375))
    );
    run(&mut i, ms(5610));
    assert_eq!(i.state(), State::Master);
}

#[test]
fn shutdown_of_a_master_sends_priority_0() {
    let mut i = started(cfg(100));
    master_now(&mut i, Duration::from_secs(4));
    i.handle(ms(4500), Input::Shutdown);
    assert_eq!(
        i.take_outputs(),
        vec![
            Output::SendAdvert { priority: 0 },
            Output::RemoveVips,
            Output::StateChanged {
                from: State::Master,
                to: State::Stop,
                why: "shutdown"
            },
            Output::Notify {
                state: State::Stop,
                priority: 100
            },
        ]
    );
    assert_eq!(i.next_deadline(), None);
    // Silent once stopped; a start begins again.
    i.handle(Duration::from_secs(6), adv(B, 50));
    assert!(i.take_outputs().is_empty());
    i.handle(Duration::from_secs(7), Input::Start);
    assert_eq!(i.state(), State::Backup);
}

#[test]
fn owner_is_master_at_once_and_keeps_255() {
    let mut c = cfg(255);
    c.scripts = vec![script("w", -50, 1, 1, true)];
    let i = started(c);
    assert_eq!(i.state(), State::Master);
    assert_eq!(i.effective_priority(), 255);
}

#[test]
fn script_counting() {
    let mut s = ScriptState::new(3, 2, false);
    assert_eq!(s.status(), ScriptStatus::Init);
    assert!(s.report(true));
    assert_eq!(s.status(), ScriptStatus::Up);
    assert!(!s.report(false));
    assert!(s.report(false));
    assert_eq!(s.status(), ScriptStatus::Failed);
    assert!(!s.report(true));
    assert!(!s.report(true));
    assert!(!s.report(false));
    assert!(!s.report(true));
    assert!(!s.report(true));
    assert!(s.report(true));
    assert_eq!(s.status(), ScriptStatus::Up);
    // A success in the middle of a fall restarts the fall.
    assert!(!s.report(false));
    assert!(!s.report(true));
    assert!(!s.report(false));
    assert_eq!(s.status(), ScriptStatus::Up);
    // From init, a first failure fails.
    let mut s = ScriptState::new(3, 2, false);
    assert!(s.report(false));
    assert_eq!(s.status(), ScriptStatus::Failed);
    // init_fail: failed at once, rise successes needed.
    let mut s = ScriptState::new(2, 2, true);
    assert_eq!(s.status(), ScriptStatus::Failed);
    assert!(!s.report(true));
    assert!(s.report(true));
}

#[test]
fn unweighted_script_fault_is_silent_until_reported() {
    let mut c = cfg(100);
    c.scripts = vec![script("chk", 0, 1, 2, false)];
    let mut i = Instance::new(c);
    i.handle(Duration::ZERO, Input::Start);
    assert_eq!(i.state(), State::Fault);
    let out = i.take_outputs();
    assert!(out.contains(&Output::Notify {
        state: State::Fault,
        priority: 100
    }));
    assert!(!out.iter().any(|o| matches!(o, Output::SendAdvert { .. })));
    assert_eq!(i.next_deadline(), None);
    i.handle(ms(2000), adv(B, 50));
    assert!(i.take_outputs().is_empty());
    i.handle(ms(2500), result("chk", true));
    assert_eq!(i.state(), State::Backup);
    master_now(&mut i, ms(7000));
    // fall 2
    i.handle(ms(7010), result("chk", false));
    assert_eq!(i.state(), State::Master);
    i.handle(ms(7020), result("chk", false));
    assert_eq!(i.state(), State::Fault);
    let out = i.take_outputs();
    assert_eq!(out[0], Output::SendAdvert { priority: 0 });
    assert_eq!(out[1], Output::RemoveVips);
    assert!(!i.status().vips_held);
    assert_eq!(i.status().master, None);
    i.handle(ms(7300), result("chk", true));
    assert_eq!(i.state(), State::Backup);
}

#[test]
fn weights_change_the_effective_priority() {
    let mut c = cfg(100);
    c.scripts = vec![
        script("up", 20, 1, 1, false),
        script("down", -30, 1, 1, false),
        script("big", 250, 1, 1, false),
    ];
    let mut i = started(c);
    // Not reported: no effect.
    assert_eq!(i.effective_priority(), 100);
    i.handle(ms(1), result("up", true));
    assert_eq!(i.effective_priority(), 120);
    i.handle(ms(2), result("down", true));
    assert_eq!(i.effective_priority(), 120);
    i.handle(ms(3), result("down", false));
    assert_eq!(i.effective_priority(), 90);
    i.handle(ms(4), result("up", false));
    assert_eq!(i.effective_priority(), 70);
    i.handle(ms(5), result("big", true));
    assert_eq!(i.effective_priority(), 254);
    assert_eq!(i.status().priority, 100);
    // Clamped to 1.
    let mut c = cfg(10);
    c.scripts = vec![script("down", -30, 1, 1, true)];
    let i = started(c);
    assert_eq!(i.effective_priority(), 1);
    // Weighted scripts never cause a fault.
    assert_eq!(i.state(), State::Backup);
}

#[test]
fn a_lowered_priority_lets_the_backup_preempt() {
    let mut c = cfg(100);
    c.scripts = vec![script("w", 50, 1, 1, false)];
    let mut i = started(c);
    i.handle(Duration::ZERO, result("w", true));
    feed(&mut i, B, 120, 0, 10);
    assert_eq!(i.state(), State::Master);
}

#[test]
fn track_interface_down_is_a_fault() {
    let mut c = cfg(100);
    c.track_interfaces = vec!["eth1".to_string()];
    let mut i = started(c);
    i.handle(ms(1), Input::InterfaceDown("eth9".to_string()));
    assert_eq!(i.state(), State::Backup);
    i.handle(ms(2), Input::InterfaceDown("eth1".to_string()));
    assert_eq!(i.state(), State::Fault);
    i.handle(ms(3), Input::InterfaceDown("eth0".to_string()));
    i.handle(ms(4), Input::InterfaceUp("eth1".to_string()));
    assert_eq!(i.state(), State::Fault);
    i.handle(ms(5), Input::InterfaceUp("eth0".to_string()));
    assert_eq!(i.state(), State::Backup);
    assert_eq!(
        i.next_deadline(),
        Some(ms(5) + Duration::from_micros(3_609_375))
    );
}

#[test]
fn sync_group_inputs() {
    // Another member's fault holds this one in FAULT (priority 0 advert,
    // VIPs removed), and not as its own fault.
    let mut i = started(cfg(200));
    master_now(&mut i, ms(3300));
    i.handle(ms(3400), Input::SyncFault(true));
    let out = i.take_outputs();
    assert_eq!(out[0], Output::SendAdvert { priority: 0 });
    assert!(out.contains(&Output::RemoveVips));
    assert_eq!(i.state(), State::Fault);
    assert!(!i.status().own_fault);
    i.handle(ms(3500), Input::SyncFault(false));
    assert_eq!(i.state(), State::Backup);
    // A member became MASTER: this BACKUP follows at once, even below
    // the master it hears.
    feed(&mut i, B, 250, 4, 6);
    i.take_outputs();
    i.handle(ms(6100), Input::SyncMaster);
    assert_eq!(i.state(), State::Master);
    assert!(i.take_outputs().contains(&Output::AddVips));
    // A member went BACKUP: this MASTER follows.
    i.handle(ms(6200), Input::SyncBackup);
    assert_eq!(i.state(), State::Backup);
    let out = i.take_outputs();
    assert_eq!(out[0], Output::SendAdvert { priority: 0 });
    assert!(out.contains(&Output::RemoveVips));
    // Not past standby or a closed failback gate.
    i.handle(ms(6300), Input::Standby);
    i.handle(ms(6400), Input::SyncMaster);
    assert_eq!(i.state(), State::Backup);
    let mut c = cfg(200);
    c.failback_gate = true;
    let mut i = started(c);
    i.handle(ms(100), Input::SyncMaster);
    assert_eq!(i.state(), State::Backup);
    // Its own fault is reported as such.
    let mut c = cfg(200);
    c.track_interfaces = vec!["eth1".into()];
    let mut i = started(c);
    i.handle(ms(100), Input::InterfaceDown("eth1".into()));
    assert!(i.status().own_fault);
}

#[test]
fn standby_and_takeover() {
    let mut i = started(cfg(200));
    master_now(&mut i, ms(3300));
    i.handle(ms(3400), Input::Standby);
    let out = i.take_outputs();
    assert_eq!(out[0], Output::SendAdvert { priority: 0 });
    assert!(out.contains(&Output::RemoveVips));
    assert_eq!(i.state(), State::Backup);
    assert!(i.status().standby);
    // The lower peer takes over and is not preempted.
    feed(&mut i, B, 100, 5, 30);
    assert_eq!(i.state(), State::Backup);
    i.handle(ms(30_500), Input::Takeover);
    assert_eq!(i.state(), State::Master);
    assert!(!i.status().standby);

    // Takeover overrides nopreempt, not a closed gate.
    let mut c = cfg(200);
    c.nopreempt = true;
    c.failback_gate = true;
    let mut i = started(c);
    feed(&mut i, B, 100, 0, 5);
    i.handle(ms(5100), Input::Takeover);
    assert_eq!(i.state(), State::Backup);
    i.handle(ms(5200), Input::FailbackGate(true));
    feed(&mut i, B, 100, 6, 20);
    assert_eq!(i.state(), State::Backup);
    i.handle(ms(20_100), Input::Takeover);
    assert_eq!(i.state(), State::Master);
    // Not from a higher priority master.
    let mut i = started(cfg(100));
    feed(&mut i, B, 150, 0, 5);
    i.handle(ms(5100), Input::Takeover);
    assert_eq!(i.state(), State::Backup);

    // Standby does not stop a takeover from a dead master.
    let mut i = started(cfg(200));
    i.handle(ms(100), Input::Standby);
    feed(&mut i, B, 100, 1, 10);
    run(&mut i, Duration::from_secs(13));
    assert_eq!(i.state(), State::Master);
}

#[test]
fn failback_gate() {
    let mut c = cfg(200);
    c.failback_gate = true;
    let mut i = started(c);
    assert!(!i.status().gate_open);
    feed(&mut i, B, 100, 0, 20);
    assert_eq!(i.state(), State::Backup);
    i.handle(Duration::from_secs(20), Input::FailbackGate(true));
    feed(&mut i, B, 100, 21, 30);
    assert_eq!(i.state(), State::Master);
    // A closed gate never demotes a master.
    i.handle(Duration::from_secs(30), Input::FailbackGate(false));
    assert_eq!(i.state(), State::Master);
    // Without a gate configured, reports do not matter.
    let mut i = started(cfg(200));
    i.handle(Duration::ZERO, Input::FailbackGate(false));
    assert!(i.preempts());
}

#[test]
fn garp_bursts() {
    let mut c = cfg(100);
    c.advert_interval = Duration::from_secs(10);
    c.garp_master_delay = Duration::from_secs(5);
    c.garp_master_repeat = 3;
    c.garp_master_refresh = Some(Duration::from_secs(7));
    c.garp_master_refresh_repeat = 2;
    let mut i = started(c);
    let down = i.master_down_interval();
    run(&mut i, down);
    assert!(i.take_outputs().contains(&Output::SendGarps { repeat: 3 }));
    run(&mut i, down + Duration::from_secs(5));
    assert_eq!(i.take_outputs(), vec![Output::SendGarps { repeat: 3 }]);
    run(&mut i, down + Duration::from_secs(7));
    assert_eq!(i.take_outputs(), vec![Output::SendGarps { repeat: 2 }]);
    run(&mut i, down + Duration::from_secs(14));
    let out = i.take_outputs();
    assert_eq!(
        out,
        vec![
            Output::SendAdvert { priority: 100 },
            Output::SendGarps { repeat: 2 }
        ]
    );
    // No second burst with garp_master_delay 0.
    let mut c = cfg(100);
    c.garp_master_delay = Duration::ZERO;
    let mut i = started(c);
    run(&mut i, Duration::from_secs(4));
    i.take_outputs();
    run(&mut i, Duration::from_secs(20));
    assert!(!i
        .take_outputs()
        .iter()
        .any(|o| matches!(o, Output::SendGarps { .. })));
}
