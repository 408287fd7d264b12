//! heartbeat's time values: seconds with optional decimals (`1`, `0.5`), or
//! `ms`/`us` suffixes (`500ms`). hbd also takes `s`, `m` (minutes) and `h`
//! suffixes.
//!
//! heartbeat's `get_msec()` also accepts `msec` and `usec` and ignores case;
//! so does hbd. heartbeat rounds every value to whole milliseconds; hbd keeps
//! the exact value (to the nanosecond).

use std::time::Duration;

const HINT: &str =
    "expected seconds (`2`, `0.5`) or a value with a unit (`500ms`, `200000us`, `2s`, `10m`, `1h`)";

/// Why [`parse_duration`] refuses a value: a message for a
/// [`super::ConfigError`] (`t` is the value, trimmed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("empty time value; {HINT}")]
    Empty,
    #[error("`{0}`: negative time; {HINT}")]
    Negative(String),
    /// Not a number with a known unit.
    #[error("`{0}`: not a time; {HINT}")]
    NotATime(String),
    /// More than `u64::MAX` nanoseconds.
    #[error("`{0}`: too large")]
    TooLarge(String),
}

/// Parses a heartbeat time value.
///
/// Zero is accepted here (`0`, `0ms`); callers reject it where it makes no sense.
pub fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    let t = s.trim();
    if t.is_empty() {
        return Err(DurationError::Empty);
    }
    if t.starts_with('-') {
        return Err(DurationError::Negative(t.to_string()));
    }
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = (&t[..split], &t[split..]);
    let nanos_per_unit: u128 = match unit.to_ascii_lowercase().as_str() {
        "" | "s" => 1_000_000_000,
        "m" | "min" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        "ms" | "msec" => 1_000_000,
        "us" | "usec" => 1_000,
        _ => return Err(DurationError::NotATime(t.to_string())),
    };
    let (int, frac) = match num.split_once('.') {
        Some((i, f)) => (i, f),
        None => (num, ""),
    };
    if (int.is_empty() && frac.is_empty()) || frac.contains('.') {
        return Err(DurationError::NotATime(t.to_string()));
    }
    let too_large = || DurationError::TooLarge(t.to_string());
    // Integer part: exact, with overflow detection.
    let mut total: u128 = 0;
    for d in int.bytes() {
        total = total
            .checked_mul(10)
            .and_then(|v| v.checked_add(u128::from(d - b'0')))
            .ok_or_else(too_large)?;
        if total > u128::from(u64::MAX) {
            return Err(too_large());
        }
    }
    let mut nanos = total.checked_mul(nanos_per_unit).ok_or_else(too_large)?;
    // Fraction: digits past the 20th are far below a nanosecond; ignore them.
    let frac = &frac[..frac.len().min(20)];
    if !frac.is_empty() {
        let mut f: u128 = 0;
        for d in frac.bytes() {
            f = f * 10 + u128::from(d - b'0');
        }
        let scale = 10u128.pow(frac.len() as u32);
        // Round to the nearest nanosecond.
        let frac_nanos = (f * nanos_per_unit + scale / 2) / scale;
        nanos = nanos.checked_add(frac_nanos).ok_or_else(too_large)?;
    }
    let nanos = u64::try_from(nanos).map_err(|_| too_large())?;
    Ok(Duration::from_nanos(nanos))
}

/// Formats a duration the way an operator would write it in ha.cf: `3s`,
/// `1.5s`, `200ms`, `250us`.
pub(crate) fn fmt_duration(d: Duration) -> String {
    let n = d.as_nanos();
    if n == 0 {
        "0s".to_string()
    } else if n.is_multiple_of(1_000_000_000) {
        format!("{}s", n / 1_000_000_000)
    } else if n.is_multiple_of(1_000_000) {
        let ms = n / 1_000_000;
        if ms > 1000 && ms.is_multiple_of(100) {
            format!("{}s", d.as_secs_f64())
        } else {
            format!("{ms}ms")
        }
    } else if n.is_multiple_of(1_000) {
        format!("{}us", n / 1_000)
    } else {
        format!("{n}ns")
    }
}

/// `2s`, `200ms`: a spelling [`parse_duration`] reads back (to the millisecond).
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        "0s".into()
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_values() {
        let ms = Duration::from_millis;
        let table: &[(&str, Duration)] = &[
            ("1", ms(1000)),
            ("0.5", ms(500)),
            ("2.25", ms(2250)),
            (".5", ms(500)),
            ("3.", ms(3000)),
            ("30", ms(30_000)),
            ("500ms", ms(500)),
            ("500MS", ms(500)),
            ("500msec", ms(500)),
            ("1.5ms", Duration::from_micros(1500)),
            ("200000us", ms(200)),
            ("200000usec", ms(200)),
            ("250us", Duration::from_micros(250)),
            ("1s", ms(1000)),
            ("0.2s", ms(200)),
            ("0", Duration::ZERO),
            ("0ms", Duration::ZERO),
            ("  2  ", ms(2000)),
            ("0.0000000004", Duration::ZERO),
            ("0.0000000006", Duration::from_nanos(1)),
        ];
        for (text, want) in table {
            assert_eq!(parse_duration(text), Ok(*want), "{text}");
        }
    }

    #[test]
    fn rejected_values() {
        let table: &[(&str, &str)] = &[
            ("", "empty time value"),
            ("   ", "empty time value"),
            ("-1", "`-1`: negative time"),
            ("-0.5ms", "`-0.5ms`: negative time"),
            ("abc", "`abc`: not a time"),
            ("1d", "`1d`: not a time"),
            ("1hr", "`1hr`: not a time"),
            ("ms", "`ms`: not a time"),
            (".", "`.`: not a time"),
            ("1.2.3", "`1.2.3`: not a time"),
            ("1 ms", "`1 ms`: not a time"),
            ("+1", "`+1`: not a time"),
            ("1e3", "`1e3`: not a time"),
            ("0x10", "`0x10`: not a time"),
            ("99999999999999999999999", "too large"),
            ("18446744074", "too large"),
            ("18446744073709551616us", "too large"),
        ];
        for (text, want) in table {
            let err = parse_duration(text).unwrap_err().to_string();
            assert!(err.contains(want), "{text}: {err}");
        }
    }

    #[test]
    fn formatting() {
        assert_eq!(fmt_duration(Duration::from_secs(3)), "3s");
        assert_eq!(fmt_duration(Duration::from_millis(200)), "200ms");
        assert_eq!(fmt_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(fmt_duration(Duration::from_micros(250)), "250us");
        assert_eq!(fmt_duration(Duration::ZERO), "0s");
    }
}
