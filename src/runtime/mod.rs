//! Daemon I/O (filled in by the runtime work).
