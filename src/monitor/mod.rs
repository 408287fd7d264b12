//! Built-in monitoring (mon): service checks (`checks`) and the sans-IO
//! scheduler that runs them and decides what a failure does (`scheduler`).

pub mod checks;
pub mod scheduler;
