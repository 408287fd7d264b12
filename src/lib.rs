//! hbd: a failover cluster manager for two (and a handful of) Linux nodes that
//! reads heartbeat's `/etc/ha.d` as it is.
//!
//! # Layout
//!
//! The logic lives in state machines that take inputs and return actions; the
//! runtime is the only place that touches sockets, clocks and files.
//!
//! | folder        | what it holds                                                       |
//! |---------------|---------------------------------------------------------------------|
//! | `config/`     | `ha.cf`, `authkeys`, `haresources`, `cluster.toml`: parsed exactly, errors as `file:line: key: message` |
//! | `wire/`       | the datagram layout, bincode body, authkeys MACs; decode never panics |
//! | `membership/` | the heartbeat membership state machine (no I/O): datagrams and ticks in, datagrams and events out |
//! | `groups/`     | resource-group ownership (no I/O): membership events and peers' reports in; reports, start/stop work and events out |
//! | `agents/`     | resource agents: lookup as heartbeat, built-in IPaddr/IPaddr2/Filesystem/mon, script agents (heartbeat, LSB, OCF) |
//! | `monitor/`    | service checks (tcp, http, process, exec, mysql) and their scheduler (no I/O): fall/rise, restart, move |
//! | `disk/`       | the replicated disk in progress: drbd.conf, DRBD 8.4 UUIDs and states (no I/O), metadata, protocol C replication, FUSE + loop exposure |
//! | `fence/`      | STONITH: `stonith_host` lines as fence-agents devices (heartbeat plugin names translated), running an agent |
//! | `jobs/`       | cron schedules and the job scheduler (no I/O): jobs run where their group runs, once per scheduled time |
//! | `ctl/`        | the control-socket protocol shared by `hbd` and `hbctl`, and the status document |
//! | `runtime/`    | the daemon's I/O: media sockets, timers, control server, signals, logging, state dir |
//! | `bin/`        | `hbd` (daemon) and `hbctl` (operator CLI)                           |
//!
//! Data flow: `runtime::net` receives a datagram on a medium and hands the bytes to
//! [`membership::Membership`]; the machine verifies and decodes them with [`wire`],
//! updates node and link state and queues [`membership::Output`]s (datagrams to
//! send on every medium, events to log). The runtime drains those outputs, sends
//! and logs, and answers `hbctl` from the machine's status snapshot.

pub mod agents;
pub mod config;
pub mod ctl;
pub mod disk;
pub mod fence;
#[doc(hidden)]
pub mod fuzzing;
pub mod groups;
pub mod jobs;
pub mod membership;
pub mod monitor;
pub mod rng;
pub mod runtime;
pub mod vrrp;
pub mod wire;

/// Exit codes shared by `hbd` and `hbctl` (LSB/keepalived style).
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
}
