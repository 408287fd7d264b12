//! One VRRP instance as a state machine without I/O, as keepalived 2.2.7 and
//! RFC 3768/5798 run it.
//!
//! The runtime feeds [`Input`]s with the time (a [`Duration`] since any fixed
//! epoch, as `groups` and `membership` do), drains [`Output`]s with
//! [`Instance::take_outputs`] and calls [`Instance::handle`] with
//! [`Input::Tick`] at [`Instance::next_deadline`]. Adverts arrive already
//! decoded and checked against the configuration by the runtime
//! ([`super::packet::Packet::decode`], [`super::packet::Advert::check`]);
//! the v2 interval check is repeated here. Adverts from this node's own
//! address are the runtime's to drop.
//! Timers due at `now` run before the input, so the order of a late tick and an
//! advert does not matter.
//!
//! # Rules
//! - `Master_Down_Interval` = 3 × `Master_Adver_Interval` + skew; skew =
//!   (256 − priority)/256 s for v2 and (256 − priority) × `Master_Adver_Interval`
//!   /256 for v3, where v3's `Master_Adver_Interval` is learned from the
//!   master's adverts (v2 discards adverts with another interval, as keepalived).
//! - Start: priority 255 (the address owner) becomes MASTER at once; anything
//!   else is BACKUP and waits `Master_Down_Interval` (keepalived 2.2.7 does the
//!   same with `state MASTER`, observed in the captures).
//! - BACKUP: an advert with priority 0 sets the down timer to the skew; an
//!   advert from a lower priority is discarded (so the down timer expires and
//!   this node preempts) only when this node preempts: not `nopreempt`, not in
//!   standby, failback gate open, and `preempt_delay` elapsed (counted from
//!   start-up, from leaving FAULT, or from the first lower priority advert
//!   after one of equal or higher priority, as keepalived 2.2 does); anything
//!   else, equal priority included, resets the down timer. Down timer expiry
//!   → MASTER, whatever nopreempt, standby or the gate say: they hold back
//!   preemption, never a takeover from a dead master (so a node in standby
//!   that hears nobody becomes MASTER again after `Master_Down_Interval`).
//! - MASTER: a higher priority, or an equal one from a higher primary IP →
//!   BACKUP; a lower priority (or 0) → advertise again at once.
//! - FAULT (silent) while the interface or a tracked interface is down, or a
//!   weight-0 script is not up, including one that has not reported yet;
//!   entered from MASTER with a priority 0 advert and the VIPs removed; left
//!   for BACKUP (MASTER for the owner).
//! - Effective priority: base + Σ weight of the up scripts with weight > 0 +
//!   Σ weight of the failed scripts with weight < 0 (scripts that have not
//!   reported count for nothing), clamped to 1..=254; 255 never changes.
//! - Standby: a MASTER advertises priority 0, removes its VIPs and goes
//!   BACKUP; the instance does not preempt until Takeover (standby and the
//!   gate survive Shutdown/Start of the same [`Instance`]). Takeover lifts
//!   standby and, when the current master's last advertised priority is lower
//!   than this instance's, preempts it at once, overriding nopreempt and
//!   preempt_delay (the operator asked) but not a closed failback gate. A
//!   lower priority instance cannot take over: the master would win it back.
//! - Failback gate (when configured, closed until reported open): while
//!   closed the instance does not preempt; it still takes over when the
//!   master dies, and a MASTER is never demoted by it.
//! - Shutdown: a MASTER advertises priority 0 and removes its VIPs; STOP.
//! - On MASTER: VIPs added, advert, a gratuitous ARP burst of
//!   `garp_master_repeat` at once, a second burst after `garp_master_delay`
//!   (none when 0), and bursts of `garp_master_refresh_repeat` every
//!   `garp_master_refresh` when set.

use super::packet::Version;
use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::time::Duration;

/// The state of an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum State {
    /// Not started yet.
    Init,
    Backup,
    Master,
    Fault,
    /// Shut down.
    Stop,
}

impl State {
    /// The word keepalived passes to notify scripts.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Init => "INIT",
            State::Backup => "BACKUP",
            State::Master => "MASTER",
            State::Fault => "FAULT",
            State::Stop => "STOP",
        }
    }
}

/// A tracked `vrrp_script` as this instance sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackScript {
    pub name: String,
    /// 0: failing sends the instance to FAULT. > 0: added while up.
    /// < 0: added while failed.
    pub weight: i32,
    pub rise: u32,
    pub fall: u32,
    pub init_fail: bool,
}

/// What the state machine needs of a `vrrp_instance`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceConfig {
    pub name: String,
    pub version: Version,
    pub vrid: u8,
    /// Base priority, 1..=255 (255: address owner).
    pub priority: u8,
    /// `advert_int`.
    pub advert_interval: Duration,
    /// This node's primary address on the interface (the adverts' source),
    /// which breaks ties between two masters of equal priority.
    pub primary_ip: Ipv4Addr,
    pub interface: String,
    pub track_interfaces: Vec<String>,
    pub scripts: Vec<TrackScript>,
    pub nopreempt: bool,
    pub preempt_delay: Duration,
    pub garp_master_delay: Duration,
    pub garp_master_repeat: u32,
    pub garp_master_refresh: Option<Duration>,
    pub garp_master_refresh_repeat: u32,
    /// A failback gate is configured: closed until `FailbackGate(true)`.
    pub failback_gate: bool,
}

impl InstanceConfig {
    /// An instance with keepalived's defaults for everything else
    /// (garp_master_delay 5 s, garp_master_repeat 5, refresh off).
    pub fn new(
        name: &str,
        version: Version,
        vrid: u8,
        priority: u8,
        advert_interval: Duration,
        primary_ip: Ipv4Addr,
        interface: &str,
    ) -> InstanceConfig {
        InstanceConfig {
            name: name.to_string(),
            version,
            vrid,
            priority,
            advert_interval,
            primary_ip,
            interface: interface.to_string(),
            track_interfaces: Vec::new(),
            scripts: Vec::new(),
            nopreempt: false,
            preempt_delay: Duration::ZERO,
            garp_master_delay: Duration::from_secs(5),
            garp_master_repeat: 5,
            garp_master_refresh: None,
            garp_master_refresh_repeat: 1,
            failback_gate: false,
        }
    }
}

/// What happens to an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Start,
    /// Only time passes.
    Tick,
    /// An advertisement for this instance, already validated by the runtime.
    /// `interval` is the advertised one ([`super::packet::Advert::interval`]).
    Advert {
        from: Ipv4Addr,
        priority: u8,
        interval: Duration,
    },
    /// A `vrrp_script` run ended: `ok` when it exited 0 in time.
    ScriptResult {
        name: String,
        ok: bool,
    },
    InterfaceUp(String),
    InterfaceDown(String),
    /// `hbctl standby`.
    Standby,
    /// `hbctl takeover`.
    Takeover,
    Shutdown,
    /// The failback gate's check result.
    FailbackGate(bool),
    /// `vrrp_sync_group`: another member is (true) or is no longer (false)
    /// in FAULT for its own reasons: this one is in FAULT too while it is.
    SyncFault(bool),
    /// `vrrp_sync_group`: another member became MASTER; a BACKUP follows.
    SyncMaster,
    /// `vrrp_sync_group`: another member left MASTER for BACKUP; a MASTER
    /// follows (priority 0 advert, VIPs removed).
    SyncBackup,
}

/// Work for the runtime, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    SendAdvert {
        priority: u8,
    },
    AddVips,
    RemoveVips,
    /// A burst of `repeat` gratuitous ARPs (spaced by vrrp_garp_interval).
    SendGarps {
        repeat: u32,
    },
    /// Run the notify scripts (`state` is MASTER, BACKUP, FAULT or STOP).
    Notify {
        state: State,
        priority: u8,
    },
    /// For the log.
    StateChanged {
        from: State,
        to: State,
        why: &'static str,
    },
}

/// A snapshot for `hbctl status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub state: State,
    pub priority: u8,
    pub effective_priority: u8,
    /// This node when MASTER, else the master last heard (None after a
    /// priority 0 advert or when it timed out).
    pub master: Option<Ipv4Addr>,
    pub vips_held: bool,
    pub standby: bool,
    pub gate_open: bool,
    /// In FAULT for its own reasons (scripts, interfaces), not only because
    /// of its sync group.
    pub own_fault: bool,
}

/// Where a script stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScriptStatus {
    /// Not reported yet (and no init_fail).
    Init,
    Up,
    Failed,
}

/// rise/fall counting of one script, as keepalived does it: from init one
/// success is enough (`init_fail`: `rise` are needed), `fall` consecutive
/// failures take it down, `rise` consecutive successes bring it up.
#[derive(Debug, Clone)]
pub struct ScriptState {
    rise: u32,
    fall: u32,
    /// keepalived's counter: up iff `result >= rise`, in 0..rise+fall.
    result: u32,
    status: ScriptStatus,
}

impl ScriptState {
    pub fn new(rise: u32, fall: u32, init_fail: bool) -> ScriptState {
        let rise = rise.max(1);
        let fall = fall.max(1);
        ScriptState {
            rise,
            fall,
            result: if init_fail { 0 } else { rise - 1 },
            status: if init_fail {
                ScriptStatus::Failed
            } else {
                ScriptStatus::Init
            },
        }
    }

    pub fn status(&self) -> ScriptStatus {
        self.status
    }

    /// Count one result; true when the status changed.
    pub fn report(&mut self, ok: bool) -> bool {
        let before = self.status;
        let top = self.rise + self.fall - 1;
        if ok {
            if self.result + 1 < self.rise {
                self.result += 1;
            } else {
                self.result = top;
            }
        } else if self.result > self.rise {
            self.result -= 1;
        } else {
            self.result = 0;
        }
        self.status = if self.result >= self.rise {
            ScriptStatus::Up
        } else {
            ScriptStatus::Failed
        };
        self.status != before
    }
}

/// One VRRP instance.
#[derive(Debug)]
pub struct Instance {
    cfg: InstanceConfig,
    state: State,
    scripts: Vec<ScriptState>,
    ifaces_down: BTreeSet<String>,
    standby: bool,
    gate_open: bool,
    /// Another member of the sync group is in FAULT.
    sync_fault: bool,
    master: Option<Ipv4Addr>,
    /// The master's priority when last heard (BACKUP).
    master_priority: Option<u8>,
    /// v3: learned from the master's adverts.
    master_adver_int: Duration,
    down_at: Option<Duration>,
    advert_at: Option<Duration>,
    garp_at: Option<Duration>,
    refresh_at: Option<Duration>,
    /// When preemption of a lower priority master is allowed (preempt_delay).
    preempt_at: Option<Duration>,
    vips_held: bool,
    outputs: Vec<Output>,
}

/// `a` + `b`, saturating.
fn after(a: Duration, b: Duration) -> Duration {
    a.saturating_add(b)
}

impl Instance {
    pub fn new(cfg: InstanceConfig) -> Instance {
        let scripts = cfg
            .scripts
            .iter()
            .map(|s| ScriptState::new(s.rise, s.fall, s.init_fail))
            .collect();
        Instance {
            gate_open: !cfg.failback_gate,
            master_adver_int: cfg.advert_interval,
            cfg,
            state: State::Init,
            scripts,
            ifaces_down: BTreeSet::new(),
            standby: false,
            sync_fault: false,
            master: None,
            master_priority: None,
            down_at: None,
            advert_at: None,
            garp_at: None,
            refresh_at: None,
            preempt_at: None,
            vips_held: false,
            outputs: Vec::new(),
        }
    }

    pub fn config(&self) -> &InstanceConfig {
        &self.cfg
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn status(&self) -> Status {
        Status {
            state: self.state,
            priority: self.cfg.priority,
            effective_priority: self.effective_priority(),
            master: self.master,
            vips_held: self.vips_held,
            standby: self.standby,
            gate_open: self.gate_open,
            own_fault: self.state == State::Fault && self.own_fault_reason().is_some(),
        }
    }

    /// The status of each tracked script, in configuration order.
    pub fn script_status(&self) -> Vec<(&str, ScriptStatus)> {
        self.cfg
            .scripts
            .iter()
            .zip(&self.scripts)
            .map(|(c, s)| (c.name.as_str(), s.status()))
            .collect()
    }

    pub fn take_outputs(&mut self) -> Vec<Output> {
        std::mem::take(&mut self.outputs)
    }

    /// When to call `handle(_, Input::Tick)` next; None: only inputs matter.
    pub fn next_deadline(&self) -> Option<Duration> {
        match self.state {
            State::Backup => self.down_at,
            State::Master => [self.advert_at, self.garp_at, self.refresh_at]
                .into_iter()
                .flatten()
                .min(),
            _ => None,
        }
    }

    /// Base priority plus script weights, clamped to 1..=254; 255 stays.
    pub fn effective_priority(&self) -> u8 {
        if self.cfg.priority == 255 {
            return 255;
        }
        let mut p = i64::from(self.cfg.priority);
        for (c, s) in self.cfg.scripts.iter().zip(&self.scripts) {
            match s.status() {
                ScriptStatus::Up if c.weight > 0 => p += i64::from(c.weight),
                ScriptStatus::Failed if c.weight < 0 => p += i64::from(c.weight),
                _ => {}
            }
        }
        p.clamp(1, 254) as u8
    }

    /// Whether this instance would preempt a lower priority master now
    /// (preempt_delay aside).
    pub fn preempts(&self) -> bool {
        !self.cfg.nopreempt && !self.standby && self.gate_open
    }

    /// The skew time for this instance's effective priority.
    pub fn skew(&self) -> Duration {
        let p = 256 - u64::from(self.effective_priority());
        match self.cfg.version {
            Version::V2 => Duration::from_micros(p * 1_000_000 / 256),
            Version::V3 => Duration::from_nanos(
                (p as u128 * self.master_adver_int.as_nanos() / 256).min(u64::MAX as u128) as u64,
            ),
        }
    }

    pub fn master_down_interval(&self) -> Duration {
        let int = match self.cfg.version {
            Version::V2 => self.cfg.advert_interval,
            Version::V3 => self.master_adver_int,
        };
        int.saturating_mul(3).saturating_add(self.skew())
    }

    fn fault_reason(&self) -> Option<&'static str> {
        self.own_fault_reason()
            .or_else(|| self.sync_fault.then_some("sync group member in FAULT"))
    }

    fn own_fault_reason(&self) -> Option<&'static str> {
        if !self.ifaces_down.is_empty() {
            return Some("interface down");
        }
        let script_down = self
            .cfg
            .scripts
            .iter()
            .zip(&self.scripts)
            .any(|(c, s)| c.weight == 0 && s.status() != ScriptStatus::Up);
        script_down.then_some("tracked script down")
    }

    pub fn handle(&mut self, now: Duration, input: Input) {
        self.run_timers(now);
        match input {
            Input::Start => self.start(now),
            Input::Tick => {}
            Input::Advert {
                from,
                priority,
                interval,
            } => self.on_advert(now, from, priority, interval),
            Input::ScriptResult { name, ok } => {
                for (c, s) in self.cfg.scripts.iter().zip(self.scripts.iter_mut()) {
                    if c.name == name {
                        s.report(ok);
                    }
                }
                self.reevaluate(now);
            }
            Input::InterfaceUp(name) => {
                self.ifaces_down.remove(&name);
                self.reevaluate(now);
            }
            Input::InterfaceDown(name) => {
                if name == self.cfg.interface || self.cfg.track_interfaces.contains(&name) {
                    self.ifaces_down.insert(name);
                }
                self.reevaluate(now);
            }
            Input::Standby => {
                self.standby = true;
                self.preempt_at = None;
                if self.state == State::Master {
                    self.push(Output::SendAdvert { priority: 0 });
                    self.master = None;
                    self.become_backup(now, "standby");
                }
            }
            Input::Takeover => {
                self.standby = false;
                self.try_preempt_now(now, "takeover");
            }
            Input::FailbackGate(open) => {
                self.gate_open = open || !self.cfg.failback_gate;
            }
            Input::Shutdown => self.stop(),
            Input::SyncFault(on) => {
                self.sync_fault = on;
                self.reevaluate(now);
            }
            Input::SyncMaster => {
                // Not past standby or a closed failback gate.
                if self.state == State::Backup && !self.standby && self.gate_open {
                    self.master = None;
                    self.master_priority = None;
                    self.become_master(now, "sync group");
                }
            }
            Input::SyncBackup => {
                if self.state == State::Master {
                    self.push(Output::SendAdvert { priority: 0 });
                    self.master = None;
                    self.become_backup(now, "sync group");
                }
            }
        }
    }

    fn push(&mut self, o: Output) {
        match o {
            Output::AddVips => self.vips_held = true,
            Output::RemoveVips => self.vips_held = false,
            _ => {}
        }
        self.outputs.push(o);
    }

    fn set_state(&mut self, to: State, why: &'static str) {
        let from = self.state;
        self.state = to;
        self.push(Output::StateChanged { from, to, why });
    }

    fn notify(&mut self) {
        let priority = self.effective_priority();
        self.push(Output::Notify {
            state: self.state,
            priority,
        });
    }

    fn run_timers(&mut self, now: Duration) {
        match self.state {
            State::Backup if self.down_at.is_some_and(|t| t <= now) => {
                self.master = None;
                self.master_priority = None;
                self.become_master(now, "master down");
            }
            State::Master => {
                if self.advert_at.is_some_and(|t| t <= now) {
                    self.advertise(now);
                }
                if self.garp_at.is_some_and(|t| t <= now) {
                    self.garp_at = None;
                    let repeat = self.cfg.garp_master_repeat;
                    self.push(Output::SendGarps { repeat });
                }
                if let (Some(t), Some(every)) = (self.refresh_at, self.cfg.garp_master_refresh) {
                    if t <= now {
                        self.refresh_at = Some(after(now, every.max(Duration::from_millis(1))));
                        let repeat = self.cfg.garp_master_refresh_repeat;
                        self.push(Output::SendGarps { repeat });
                    }
                }
            }
            _ => {}
        }
    }

    fn advertise(&mut self, now: Duration) {
        let priority = self.effective_priority();
        self.push(Output::SendAdvert { priority });
        let interval = self.cfg.advert_interval.max(Duration::from_millis(1));
        // From the previous deadline, not from `now`: a late wake-up must not
        // stretch every later period (at 10 ms adverts that ate into the
        // backup's Master_Down margin). More than one period behind (a stall,
        // or the first advert): start again from now.
        let next = match self.advert_at {
            Some(due) if due <= now && now < after(due, interval) => after(due, interval),
            _ => after(now, interval),
        };
        self.advert_at = Some(next);
    }

    fn clear_timers(&mut self) {
        self.down_at = None;
        self.advert_at = None;
        self.garp_at = None;
        self.refresh_at = None;
        self.preempt_at = None;
    }

    fn start(&mut self, now: Duration) {
        if !matches!(self.state, State::Init | State::Stop) {
            return;
        }
        self.clear_timers();
        self.master = None;
        self.master_priority = None;
        self.master_adver_int = self.cfg.advert_interval;
        // Whatever a previous run left on the interface goes (keepalived's
        // "removing VIPs" at start).
        self.push(Output::RemoveVips);
        if let Some(why) = self.fault_reason() {
            self.enter_fault(why);
        } else if self.effective_priority() == 255 {
            self.become_master(now, "address owner");
        } else {
            self.become_backup(now, "start");
            self.start_preempt_delay(now);
        }
    }

    fn stop(&mut self) {
        match self.state {
            State::Init | State::Stop => {
                self.state = State::Stop;
                return;
            }
            State::Master => {
                self.push(Output::SendAdvert { priority: 0 });
                self.push(Output::RemoveVips);
            }
            _ => {}
        }
        self.clear_timers();
        self.master = None;
        self.master_priority = None;
        self.set_state(State::Stop, "shutdown");
        self.notify();
    }

    fn become_master(&mut self, now: Duration, why: &'static str) {
        self.clear_timers();
        self.set_state(State::Master, why);
        self.master = Some(self.cfg.primary_ip);
        self.master_priority = None;
        self.push(Output::AddVips);
        self.advertise(now);
        let repeat = self.cfg.garp_master_repeat;
        self.push(Output::SendGarps { repeat });
        if !self.cfg.garp_master_delay.is_zero() {
            self.garp_at = Some(after(now, self.cfg.garp_master_delay));
        }
        self.refresh_at = self.cfg.garp_master_refresh.map(|r| after(now, r));
        self.notify();
    }

    fn become_backup(&mut self, now: Duration, why: &'static str) {
        let was_master = self.state == State::Master;
        self.clear_timers();
        if was_master || self.vips_held {
            self.push(Output::RemoveVips);
        }
        self.set_state(State::Backup, why);
        self.down_at = Some(after(now, self.master_down_interval()));
        self.notify();
    }

    fn enter_fault(&mut self, why: &'static str) {
        if self.state == State::Master {
            self.push(Output::SendAdvert { priority: 0 });
        }
        if self.state == State::Master || self.vips_held {
            self.push(Output::RemoveVips);
        }
        self.clear_timers();
        self.master = None;
        self.master_priority = None;
        self.set_state(State::Fault, why);
        self.notify();
    }

    /// keepalived counts preempt_delay from start-up and from leaving FAULT
    /// too, not only from the first lower priority advert.
    fn start_preempt_delay(&mut self, now: Duration) {
        if !self.cfg.preempt_delay.is_zero() {
            self.preempt_at = Some(after(now, self.cfg.preempt_delay));
        }
    }

    /// After a script, interface or priority change.
    fn reevaluate(&mut self, now: Duration) {
        let fault = self.fault_reason();
        match (self.state, fault) {
            (State::Master | State::Backup, Some(why)) => self.enter_fault(why),
            (State::Fault, None) => {
                if self.effective_priority() == 255 {
                    self.become_master(now, "fault cleared, address owner");
                } else {
                    self.become_backup(now, "fault cleared");
                    self.start_preempt_delay(now);
                }
            }
            _ => {}
        }
    }

    /// Takeover: preempt at once a master known to have a lower priority,
    /// whatever nopreempt and preempt_delay say (the operator asked), but not
    /// past a closed failback gate.
    fn try_preempt_now(&mut self, now: Duration, why: &'static str) {
        if self.state == State::Backup
            && !self.standby
            && self.gate_open
            && self
                .master_priority
                .is_some_and(|p| p < self.effective_priority())
        {
            self.master = None;
            self.master_priority = None;
            self.become_master(now, why);
        }
    }

    fn on_advert(&mut self, now: Duration, from: Ipv4Addr, priority: u8, interval: Duration) {
        if self.cfg.version == Version::V2 && interval != self.cfg.advert_interval {
            // keepalived: "advertisement interval mismatch", discarded.
            return;
        }
        let ours = self.effective_priority();
        match self.state {
            State::Backup => {
                if priority == 0 {
                    self.master = None;
                    self.master_priority = None;
                    self.down_at = Some(after(now, self.skew()));
                    return;
                }
                if priority < ours && self.preempts() {
                    let at = *self
                        .preempt_at
                        .get_or_insert(after(now, self.cfg.preempt_delay));
                    if now >= at {
                        // Discarded: the down timer runs out and this node
                        // preempts. The master is still recorded (status).
                        self.master = Some(from);
                        self.master_priority = Some(priority);
                        return;
                    }
                } else if priority >= ours {
                    self.preempt_at = None;
                }
                self.master = Some(from);
                self.master_priority = Some(priority);
                if self.cfg.version == Version::V3 && !interval.is_zero() {
                    self.master_adver_int = interval;
                }
                self.down_at = Some(after(now, self.master_down_interval()));
            }
            State::Master => {
                if priority > ours || (priority == ours && from > self.cfg.primary_ip) {
                    self.master = Some(from);
                    self.master_priority = Some(priority);
                    if self.cfg.version == Version::V3 && !interval.is_zero() {
                        self.master_adver_int = interval;
                    }
                    self.become_backup(now, "higher priority advert");
                } else {
                    // A lower priority (or 0): assert ourselves at once.
                    self.advertise(now);
                }
            }
            State::Init | State::Fault | State::Stop => {}
        }
    }
}

#[cfg(test)]
mod tests {
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
}
