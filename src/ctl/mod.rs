//! Control protocol (filled in by the runtime work).
