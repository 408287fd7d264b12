//! The replicated block device (DRBD 8.4 style), in progress (issue 5):
//! `conf` (drbd.conf), `uuid` (generation UUIDs and the connect-time
//! decision), `state` (the connection state machine), `meta` (on-disk
//! metadata, `meta-disk internal`), `expose` (a FUSE file behind a loop
//! device).

pub mod client;
pub mod conf;
pub mod ctl;
pub mod expose;
pub mod meta;
pub mod replicate;
pub mod report;
pub mod state;
pub mod uuid;
