//! Built-in monitoring (mon, keepalived's vrrp_script): service checks.
pub mod checks;
