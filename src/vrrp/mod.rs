//! VRRP master-master VIP mode, keepalived-compatible (issue 6), in progress:
//! `conf` (keepalived.conf), `packet` (VRRPv2/v3 wire format), `instance`
//! (the per-instance state machine, no I/O), `runtime` (sockets, VIPs,
//! scripts: the daemon side), `sync` (`vrrp_sync_group`, no I/O).

pub mod conf;
pub mod instance;
pub mod packet;
pub mod runtime;
#[cfg(test)]
mod sim;
pub mod sync;
