//! heartbeat's `authkeys`.
