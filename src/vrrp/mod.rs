//! VRRP master-master VIP mode, keepalived-compatible (keepalived.conf read
//! as keepalived 2.2 reads it; VRRPv2 and v3 on the wire, tested against
//! keepalived 2.2.7 as a peer): `conf` (keepalived.conf), `packet` (VRRPv2/v3 wire format), `instance`
//! (the per-instance state machine, no I/O), `runtime` (sockets, VIPs,
//! scripts: the daemon side), `sync` (`vrrp_sync_group`, no I/O).

pub mod conf;
pub mod packet;
pub mod runtime;
#[cfg(test)]
mod sim;
pub mod state;
pub mod sync;
