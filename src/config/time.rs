//! heartbeat's time values: seconds with optional decimals (`1`, `0.5`), or
//! `ms`/`us` suffixes (`500ms`). hbd also takes an `s` suffix.

use std::time::Duration;

/// Parses a heartbeat time value; the error is a message for a [`super::ConfigError`].
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    todo!("config helper")
}
