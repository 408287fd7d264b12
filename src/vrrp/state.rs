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
mod tests;
