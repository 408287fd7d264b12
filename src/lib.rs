//! hbd: a failover cluster manager for two (and a handful of) Linux nodes that
//! reads heartbeat's `/etc/ha.d` as it is.
//!
//! # Layout
//!
//! The logic lives in state machines that take inputs and return actions
//! (no sockets, clocks or files: `membership`, `groups`, `monitor`'s
//! scheduler, `jobs`, `vrrp::state`/`vrrp::sync`, `disk::state`,
//! `disk::resync`, `disk::datapath`, `disk::uuid`), each with a seeded
//! simulation. The I/O happens in three processes' edges: the daemon's
//! `runtime/` (heartbeat mode), `vrrp::runtime` (VRRP mode, in the same
//! `hbd` process), and the device process `hbd-disk` (`disk::device`,
//! `disk::packet`, `disk::expose`); every program any of them runs (agents,
//! checks, jobs, hooks, fence agents, VRRP scripts, helpers) goes through
//! `process`.
//!
//! | folder        | what it holds                                                       |
//! |---------------|---------------------------------------------------------------------|
//! | `config/`     | `ha.cf`, `authkeys`, `haresources`, `cluster.toml`: parsed exactly, errors as `file:line: key: message` |
//! | `wire/`       | the datagram layout, bincode body, authkeys MACs; decode never panics |
//! | `membership/` | the heartbeat membership state machine (no I/O): datagrams and ticks in, datagrams and events out |
//! | `groups/`     | resource-group ownership (no I/O): membership events and peers' reports in; reports, start/stop work and events out |
//! | `agents/`     | resource agents: lookup as heartbeat, built-in IPaddr/IPaddr2/Filesystem/mon/drbddisk, script agents (heartbeat, LSB, OCF) |
//! | `monitor/`    | service checks (tcp, http, process, exec, mysql) and their scheduler (no I/O): fall/rise, restart, move |
//! | `disk/`       | the replicated disk (DRBD 8.4 style): drbd.conf, UUIDs, states, resync and write-path decisions (no I/O), metadata, the link, the device process, FUSE + loop exposure, `admin` (what `hbctl disk` does) |
//! | `vrrp/`       | keepalived-compatible VRRP: keepalived.conf, VRRPv2/v3 packets, the instance and sync-group machines (no I/O), its runtime |
//! | `fence/`      | STONITH: `stonith_host` lines as fence-agents devices (heartbeat plugin names translated), running an agent |
//! | `export/`    | `hbctl export pacemaker`: the configuration as a Pacemaker model (no I/O), rendered as a CIB, a pcs script or crmsh text |
//! | `jobs/`       | cron schedules and the job scheduler (no I/O): jobs run where their group runs, once per scheduled time |
//! | `ctl/`        | the control-socket protocol shared by `hbd` and `hbctl`, the status document and its text (`render`) |
//! | `process/`    | the one process runner: clean start, timeout and group kill, bounded output lines; account lookups off the loop |
//! | `notify.rs`   | the `[notify] command` hook, run by the daemon and by the device process |
//! | `events.rs`   | the state-change event stream (`hbctl events`): a bounded broadcast bus the daemon publishes on |
//! | `metrics.rs`  | Prometheus metrics (`[metrics] listen`, `hbctl metrics`): families kept by the daemon, the scrape built from the status document |
//! | `runtime/`    | the heartbeat-mode daemon's I/O: media sockets, timers, control server, signals, logging, state dir |
//! | `sd_notify.rs` | systemd's sd_notify(3): READY, STOPPING, WATCHDOG, STATUS for `hbd` and `hbd-disk` under `Type=notify` |
//! | `manual.rs`   | the installed manual: man pages and completions from the clap definitions, `hbd-config(5)` from docs/CONFIG.md |
//! | `rng.rs`      | splitmix64: the simulations' seeded fault schedules, fresh generation identifiers |
//! | `bin/`        | `hbd` (daemon), `hbd-disk` (one replicated device) and `hbctl` (operator CLI) |
//!
//! Data flow (heartbeat mode): `runtime::network` receives a datagram on a medium and hands the bytes to
//! [`membership::Membership`]; the machine verifies and decodes them with [`wire`],
//! updates node and link state and queues [`membership::Output`]s (datagrams to
//! send on every medium, events to log). The runtime drains those outputs, sends
//! and logs, and answers `hbctl` from the machine's status snapshot.

pub mod agents;
pub mod config;
pub mod ctl;
pub mod disk;
pub mod events;
pub mod export;
pub mod fence;
#[doc(hidden)]
pub mod fuzzing;
pub mod groups;
pub mod jobs;
pub mod manual;
pub mod membership;
pub mod metrics;
pub mod monitor;
pub mod notify;
pub mod process;
pub mod rng;
pub mod runtime;
pub mod sd_notify;
pub mod vrrp;
pub mod wire;

/// Every exit code of `hbd`, `hbd-disk` and `hbctl` (LSB/keepalived style;
/// `hbctl disk` as drbdsetup): the one place they are defined.
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// A runtime failure: a socket could not be opened, the daemon is unreachable...
    pub const FAILURE: u8 = 1;
    /// The configuration (or the command line) is invalid; nothing was started.
    pub const CONFIG: u8 = 2;
    /// The daemon answered, but the request could not be carried out (unknown node...).
    pub const REFUSED: u8 = 3;
    /// The caller may not use the control socket.
    pub const PERMISSION: u8 = 4;
    /// `hbctl disk`: the device refused a state change (drbdsetup's "State
    /// change failed", exit code 11).
    pub const DISK_REFUSED: u8 = 11;
}
