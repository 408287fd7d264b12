//! Built-in monitoring (mon): service checks and their scheduler.

pub mod checks;
pub mod scheduler;
