//! The replicated block device (DRBD 8.4 style): `conf` (drbd.conf), `uuid`
//! (generation UUIDs and the connect-time decision), `state` (the
//! connection state machine), `datapath` (write-path decisions: on-io-error,
//! ko-count, activity-log retirement, metadata fail-stop), `resync` (resync
//! and online-verify decisions), `meta` (on-disk metadata, `meta-disk
//! internal`), `expose` (a FUSE file behind a loop device), `link` (the
//! connection between the two device processes), `mounts` (what the device
//! process's mount namespace keeps), `device` (the device process,
//! `hbd-disk`: only I/O, in files by purpose), `ctl` (its control protocol), `client` (starting and asking
//! devices: `hbctl disk`, the `drbddisk` agent, hbd's status), `admin` (the
//! operator's workflows: drbdadm's verbs, split-brain listing and resolution,
//! the resync watch), `report`
//! (/proc/drbd-style and status text) and `sim` (the seeded simulation of
//! two nodes with faults, in tests).

pub mod admin;
pub mod client;
pub mod conf;
pub mod ctl;
pub mod datapath;
pub mod device;
pub mod expose;
pub mod fence;
pub mod meta;
pub mod mounts;
pub mod packet;
pub mod report;
pub mod resync;
#[cfg(test)]
mod sim;
pub mod state;
pub mod uuid;
