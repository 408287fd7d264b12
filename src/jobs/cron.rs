//! Cron schedules as Vixie cron (crontab(5)) reads them, and civil time.
//!
//! A [`Schedule`] is five fields (minute hour day-of-month month day-of-week)
//! or one of the `@` names. The search for the next (or latest) scheduled time
//! works on *civil* time given by a function `unix seconds -> Civil`, so the
//! same code serves UTC ([`utc_civil`]), the machine's zone ([`local_civil`])
//! and the tests' fake zones with daylight-saving jumps.
//!
//! # Daylight saving (Vixie cron's rules)
//! - Clocks go forward: a *fixed-time* job (minute and hour fields do not
//!   start with `*`) scheduled in the skipped wall-clock time runs at the first
//!   minute after the jump; a wildcard job does not run for the skipped time.
//! - Clocks go back: a fixed-time job runs once per wall-clock time (not again
//!   in the repeated hour); a wildcard job runs by real time (again).
//!
//! The search skips whole months, days and hours that cannot match, moving in
//! civil minutes; when the UTC offset changes over a skip, the skip is halved
//! until it does not, so no existing wall-clock minute is jumped over.

use std::fmt;

/// Search no further than this from the starting point (Feb 29 comes back within 4
/// years except around non-leap centuries).
const SEARCH_SECS: i64 = 5 * 366 * 86_400;
/// A bound on the search loop, far above what a 5-year search takes (~2,000
/// iterations for a day-by-day walk).
const MAX_STEPS: usize = 100_000;
/// The largest daylight-saving shift looked for by the "clocks went back" rule.
const MAX_DST_SHIFT_SECS: i64 = 3 * 3600;

/// Why [`Schedule::parse`] refuses a schedule: short, naming the field (the
/// config loader puts it after the file, line and schedule).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// An `@` name that is not one of cron's.
    #[error("unknown name {0:?}")]
    UnknownSchedule(String),
    #[error("expected 5 fields, got {0}")]
    FieldCount(usize),
    /// `1,,2`: `list` is the whole field.
    #[error("{field}: empty list item in {list:?}")]
    EmptyItem { field: &'static str, list: String },
    #[error("{field}: bad step {step:?}")]
    BadStep { field: &'static str, step: String },
    #[error("{field}: step {step} is out of range 1-{max}")]
    StepOutOfRange {
        field: &'static str,
        step: u32,
        max: u32,
    },
    #[error("{field}: range {range} is backwards")]
    Backwards { field: &'static str, range: String },
    /// `5/10` (Vixie cron rejects it).
    #[error("{field}: a step needs a range or *: {item:?}")]
    StepWithoutRange { field: &'static str, item: String },
    /// A number outside the field's range (`value` as written).
    #[error("{field}: {value} is out of range {min}-{max}")]
    OutOfRange {
        field: &'static str,
        value: String,
        min: u32,
        max: u32,
    },
    /// Not a number, in a field that has no names.
    #[error("{field}: {value:?} is not a number")]
    NotANumber { field: &'static str, value: String },
    /// Not a number nor one of the field's names.
    #[error("{field}: unknown name {value:?}")]
    UnknownName { field: &'static str, value: String },
}

/// Wall-clock time: what cron's fields are matched against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    pub year: i32,
    /// 1-12.
    pub month: u8,
    /// 1-31.
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    /// 0 = Sunday.
    pub weekday: u8,
}

impl fmt::Display for Civil {
    /// `2026-11-22 10:05`, as log lines show scheduled times.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02} {:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute
        )
    }
}

/// A parsed cron schedule; keeps the text as written for status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    text: String,
    spec: Spec,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Spec {
    /// `@reboot`: here, "when the group starts on a node".
    Reboot,
    Fields(Fields),
}

/// The five fields as bit sets (bit n = value n).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fields {
    minute: u64,
    hour: u64,
    dom: u64,
    month: u64,
    /// Bits 0-6; 7 is folded into 0 (Sunday).
    dow: u64,
    /// Vixie cron: the field *starts with* `*` (so `*/2` counts as `*`).
    dom_star: bool,
    dow_star: bool,
    /// Vixie cron's "wildcard job": the minute or hour field starts with `*`.
    /// Decides the daylight-saving behaviour (see the module doc).
    wildcard: bool,
}

struct FieldSpec {
    name: &'static str,
    min: u32,
    max: u32,
    /// Names for `min + index`.
    names: &'static [&'static str],
}

const MINUTE: FieldSpec = FieldSpec {
    name: "minute",
    min: 0,
    max: 59,
    names: &[],
};
const HOUR: FieldSpec = FieldSpec {
    name: "hour",
    min: 0,
    max: 23,
    names: &[],
};
const DOM: FieldSpec = FieldSpec {
    name: "day-of-month",
    min: 1,
    max: 31,
    names: &[],
};
const MONTH: FieldSpec = FieldSpec {
    name: "month",
    min: 1,
    max: 12,
    names: &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ],
};
const DOW: FieldSpec = FieldSpec {
    name: "day-of-week",
    min: 0,
    max: 7,
    names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
};

impl Schedule {
    /// Parses 5 fields (minute hour day-of-month month day-of-week) with `*`,
    /// numbers, ranges `a-b`, steps `*/n` and `a-b/n`, lists `a,b,c`; month
    /// names jan..dec and day names sun..sat (case-insensitive); day-of-week 0
    /// and 7 are Sunday. When both day-of-month and day-of-week are restricted
    /// (do not start with `*`), a day matches if either matches (Vixie cron).
    /// Names: `@yearly`/`@annually`, `@monthly`, `@weekly`, `@daily`/`@midnight`,
    /// `@hourly`, `@reboot`. Errors are short and name the field.
    pub fn parse(s: &str) -> Result<Schedule, ScheduleError> {
        let text = s.trim();
        let expanded = match text.to_ascii_lowercase().as_str() {
            "@reboot" => {
                return Ok(Schedule {
                    text: text.to_string(),
                    spec: Spec::Reboot,
                })
            }
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            other if other.starts_with('@') => {
                return Err(ScheduleError::UnknownSchedule(text.to_string()))
            }
            _ => text,
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(ScheduleError::FieldCount(fields.len()));
        }
        let mut dow = parse_field(&DOW, fields[4])?;
        if dow & (1 << 7) != 0 {
            dow = (dow & !(1 << 7)) | 1;
        }
        Ok(Schedule {
            text: text.to_string(),
            spec: Spec::Fields(Fields {
                minute: parse_field(&MINUTE, fields[0])?,
                hour: parse_field(&HOUR, fields[1])?,
                dom: parse_field(&DOM, fields[2])?,
                month: parse_field(&MONTH, fields[3])?,
                dow,
                dom_star: fields[2].starts_with('*'),
                dow_star: fields[4].starts_with('*'),
                wildcard: fields[0].starts_with('*') || fields[1].starts_with('*'),
            }),
        })
    }

    /// The schedule as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn is_reboot(&self) -> bool {
        self.spec == Spec::Reboot
    }

    /// The first scheduled time strictly after `after` (unix seconds), at a
    /// whole minute of unix time. None for `@reboot` or when nothing matches
    /// within 5 years (e.g. Feb 30).
    pub fn next_after(&self, after: i64, civil: &dyn Fn(i64) -> Civil) -> Option<i64> {
        let Spec::Fields(f) = &self.spec else {
            return None;
        };
        let start = after.div_euclid(60).checked_add(1)?.checked_mul(60)?;
        f.search(start, true, after.saturating_add(SEARCH_SECS), civil)
    }

    /// The latest scheduled time `<= at` and `> since` (to catch up a missed
    /// run). None for `@reboot`, or when there is none (searching back at most
    /// 5 years).
    pub fn latest_in(&self, since: i64, at: i64, civil: &dyn Fn(i64) -> Civil) -> Option<i64> {
        let Spec::Fields(f) = &self.spec else {
            return None;
        };
        if at <= since {
            return None;
        }
        let start = at.div_euclid(60).checked_mul(60)?;
        let floor = since.max(at.saturating_sub(SEARCH_SECS));
        f.search(start, false, floor, civil).filter(|&t| t > since)
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn parse_field(spec: &FieldSpec, s: &str) -> Result<u64, ScheduleError> {
    let field = spec.name;
    let mut bits = 0u64;
    for item in s.split(',') {
        if item.is_empty() {
            return Err(ScheduleError::EmptyItem {
                field,
                list: s.to_string(),
            });
        }
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => {
                let n: u32 = step.parse().map_err(|_| ScheduleError::BadStep {
                    field,
                    step: step.to_string(),
                })?;
                if n == 0 || n > spec.max {
                    return Err(ScheduleError::StepOutOfRange {
                        field,
                        step: n,
                        max: spec.max,
                    });
                }
                (range, Some(n))
            }
            None => (item, None),
        };
        let (lo, hi) = if range == "*" {
            (spec.min, spec.max)
        } else if let Some((a, b)) = range.split_once('-') {
            let (a, b) = (value(spec, a)?, value(spec, b)?);
            if a > b {
                return Err(ScheduleError::Backwards {
                    field,
                    range: range.to_string(),
                });
            }
            (a, b)
        } else {
            let v = value(spec, range)?;
            if step.is_some() {
                // Vixie cron rejects `5/10`; cronie reads it as `5-max/10`.
                return Err(ScheduleError::StepWithoutRange {
                    field,
                    item: item.to_string(),
                });
            }
            (v, v)
        };
        for v in (lo..=hi).step_by(step.unwrap_or(1) as usize) {
            bits |= 1 << v;
        }
    }
    Ok(bits)
}

fn value(spec: &FieldSpec, s: &str) -> Result<u32, ScheduleError> {
    let field = spec.name;
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        let out_of_range = || ScheduleError::OutOfRange {
            field,
            value: s.to_string(),
            min: spec.min,
            max: spec.max,
        };
        let v: u32 = s.parse().map_err(|_| out_of_range())?;
        if v < spec.min || v > spec.max {
            return Err(out_of_range());
        }
        return Ok(v);
    }
    let lower = s.to_ascii_lowercase();
    let value = s.to_string();
    match spec.names.iter().position(|n| *n == lower) {
        Some(i) => Ok(spec.min + i as u32),
        None if spec.names.is_empty() => Err(ScheduleError::NotANumber { field, value }),
        None => Err(ScheduleError::UnknownName { field, value }),
    }
}

fn bit(set: u64, v: u8) -> bool {
    set & (1 << v) != 0
}

impl Fields {
    fn day_matches(&self, c: &Civil) -> bool {
        let dom = bit(self.dom, c.day);
        let dow = bit(self.dow, c.weekday);
        // Vixie cron: restricted day-of-month and day-of-week are ORed.
        if self.dom_star || self.dow_star {
            dom && dow
        } else {
            dom || dow
        }
    }

    fn matches(&self, c: &Civil) -> bool {
        bit(self.month, c.month)
            && self.day_matches(c)
            && bit(self.hour, c.hour)
            && bit(self.minute, c.minute)
    }

    /// Civil minutes from `c` to the next minute that may match (0: `c` matches).
    fn skip_forward(&self, c: &Civil) -> i64 {
        let (h, m) = (i64::from(c.hour), i64::from(c.minute));
        let in_day = h * 60 + m;
        if !bit(self.month, c.month) {
            let left = i64::from(days_in_month(c.year, c.month)) - i64::from(c.day) + 1;
            return left * 1440 - in_day;
        }
        if !self.day_matches(c) {
            return 1440 - in_day;
        }
        if !bit(self.hour, c.hour) {
            return match (c.hour + 1..24).find(|&x| bit(self.hour, x)) {
                Some(next) => (i64::from(next) - h) * 60 - m,
                None => 1440 - in_day,
            };
        }
        if !bit(self.minute, c.minute) {
            return match (c.minute + 1..60).find(|&x| bit(self.minute, x)) {
                Some(next) => i64::from(next) - m,
                None => 60 - m,
            };
        }
        0
    }

    /// Civil minutes from `c` back to the previous minute that may match (0: `c` matches).
    fn skip_back(&self, c: &Civil) -> i64 {
        let (h, m) = (i64::from(c.hour), i64::from(c.minute));
        let in_day = h * 60 + m;
        if !bit(self.month, c.month) {
            return (i64::from(c.day) - 1) * 1440 + in_day + 1;
        }
        if !self.day_matches(c) {
            return in_day + 1;
        }
        if !bit(self.hour, c.hour) {
            return match (0..c.hour).rev().find(|&x| bit(self.hour, x)) {
                Some(prev) => (h - i64::from(prev) - 1) * 60 + m + 1,
                None => in_day + 1,
            };
        }
        if !bit(self.minute, c.minute) {
            return match (0..c.minute).rev().find(|&x| bit(self.minute, x)) {
                Some(prev) => m - i64::from(prev),
                None => m + 1,
            };
        }
        0
    }

    /// Whether `t` (civil `c`, which matches) repeats a wall-clock minute that
    /// already occurred because clocks went back.
    fn repeats(&self, t: i64, c: &Civil, civil: &dyn Fn(i64) -> Civil) -> bool {
        let probe = t - MAX_DST_SHIFT_SECS;
        let back = offset(probe, &civil(probe)) - offset(t, c);
        if back <= 0 {
            return false;
        }
        let p = t - back * 60;
        civil_minutes(&civil(p)) == civil_minutes(c)
    }

    /// Whether the clocks jumped forward between `t - 60` and `t` over a
    /// wall-clock minute that matches (a fixed-time job then runs at `t`).
    fn skipped_match(&self, before: &Civil, after: &Civil) -> bool {
        let (a, b) = (civil_minutes(before), civil_minutes(after));
        // Bounded by the shift (an hour or two): the caller saw the offset change.
        (a + 1..b)
            .take((MAX_DST_SHIFT_SECS / 60) as usize)
            .any(|cm| self.matches(&utc_civil(cm * 60)))
    }

    /// Whether `t` is a scheduled time, by the match and the clocks-back rule.
    fn scheduled(&self, t: i64, c: &Civil, civil: &dyn Fn(i64) -> Civil) -> bool {
        self.matches(c) && (self.wildcard || !self.repeats(t, c, civil))
    }

    /// Walks from `start` (a whole minute) forward to `limit` (inclusive) or
    /// back to `limit` (exclusive) and returns the first scheduled time met.
    fn search(
        &self,
        start: i64,
        forward: bool,
        limit: i64,
        civil: &dyn Fn(i64) -> Civil,
    ) -> Option<i64> {
        let dir = if forward { 1 } else { -1 };
        let mut t = start;
        let mut c = civil(t);
        for _ in 0..MAX_STEPS {
            if (forward && t > limit) || (!forward && t <= limit) {
                return None;
            }
            let mut skip = if forward {
                self.skip_forward(&c)
            } else {
                self.skip_back(&c)
            };
            if skip == 0 {
                if self.scheduled(t, &c, civil) {
                    return Some(t);
                }
                skip = 1;
            }
            // Move `skip` civil minutes. If the UTC offset differs at the far end
            // (daylight saving), halve until it does not: the minutes in between
            // are then exactly the civil minutes skipped, none of which matches.
            let off = offset(t, &c);
            let mut k = skip;
            loop {
                let nt = t.checked_add(dir * k * 60)?;
                let nc = civil(nt);
                let noff = offset(nt, &nc);
                if noff == off {
                    (t, c) = (nt, nc);
                    break;
                }
                if k == 1 {
                    // One real minute across a jump. Clocks forward: a fixed-time
                    // job due in the skipped wall-clock time runs at the minute
                    // after the jump (the later of the two).
                    let (later, before, after) = if forward { (nt, &c, &nc) } else { (t, &nc, &c) };
                    let jumped = offset(later, after) > if forward { off } else { noff };
                    if jumped && !self.wildcard && self.skipped_match(before, after) {
                        let in_bounds = if forward {
                            later <= limit
                        } else {
                            later > limit
                        };
                        return in_bounds.then_some(later);
                    }
                    (t, c) = (nt, nc);
                    break;
                }
                k /= 2;
            }
        }
        None
    }
}

/// Minutes since 1970-01-01 00:00 of the wall clock.
fn civil_minutes(c: &Civil) -> i64 {
    days_from_civil(i64::from(c.year), c.month, c.day) * 1440
        + i64::from(c.hour) * 60
        + i64::from(c.minute)
}

/// The wall clock's offset from UTC at `t`, in minutes.
fn offset(t: i64, c: &Civil) -> i64 {
    civil_minutes(c) - t.div_euclid(60)
}

fn is_leap(y: i32) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i32, m: u8) -> u8 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`).
pub(crate) fn days_from_civil(y: i64, m: u8, d: u8) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// UTC civil time (H. Hinnant's `civil_from_days`).
pub fn utc_civil(t: i64) -> Civil {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    Civil {
        year: year as i32,
        month: month as u8,
        day: day as u8,
        hour: (secs / 3600) as u8,
        minute: (secs % 3600 / 60) as u8,
        // 1970-01-01 was a Thursday.
        weekday: (days + 4).rem_euclid(7) as u8,
    }
}

/// Local civil time through `localtime_r(3)`: the machine's timezone, as cron
/// uses. Falls back to UTC if the time cannot be represented.
pub fn local_civil(t: i64) -> Civil {
    // time_t is 64 bits on every target hbd supports.
    let time = t as libc::time_t;
    // SAFETY: `tm` is plain data for which all-zero is a valid value, and
    // localtime_r only writes into the buffer we pass.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::localtime_r(&time, &mut tm) };
    if r.is_null() {
        return utc_civil(t);
    }
    Civil {
        year: tm.tm_year + 1900,
        month: (tm.tm_mon + 1) as u8,
        day: tm.tm_mday as u8,
        hour: tm.tm_hour as u8,
        minute: tm.tm_min as u8,
        weekday: tm.tm_wday as u8,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unix seconds of a UTC wall-clock time.
    fn at(y: i64, mo: u8, d: u8, h: i64, mi: i64) -> i64 {
        days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60
    }

    fn next(s: &str, after: i64) -> Option<i64> {
        Schedule::parse(s).unwrap().next_after(after, &utc_civil)
    }

    fn err(s: &str) -> String {
        Schedule::parse(s).unwrap_err().to_string()
    }

    fn fields(s: &str) -> Fields {
        match Schedule::parse(s).unwrap().spec {
            Spec::Fields(f) => f,
            Spec::Reboot => panic!("reboot"),
        }
    }

    fn set(bits: u64) -> Vec<u32> {
        (0..64).filter(|&i| bits & (1 << i) != 0).collect()
    }

    #[test]
    fn utc_civil_matches_known_dates() {
        assert_eq!(
            utc_civil(0),
            Civil {
                year: 1970,
                month: 1,
                day: 1,
                hour: 0,
                minute: 0,
                weekday: 4
            }
        );
        // 2000-02-29 12:34 UTC, a Tuesday.
        assert_eq!(
            utc_civil(951_827_640),
            Civil {
                year: 2000,
                month: 2,
                day: 29,
                hour: 12,
                minute: 34,
                weekday: 2
            }
        );
        // Before 1970: 1969-12-31 23:59, a Wednesday.
        assert_eq!(
            utc_civil(-60),
            Civil {
                year: 1969,
                month: 12,
                day: 31,
                hour: 23,
                minute: 59,
                weekday: 3
            }
        );
        for t in (-5_000_000_000i64..5_000_000_000).step_by(7_777_777) {
            let c = utc_civil(t);
            assert_eq!(civil_minutes(&c), t.div_euclid(60), "{t}");
        }
        assert_eq!(
            utc_civil(at(2026, 11, 22, 10, 5)).to_string(),
            "2026-11-22 10:05"
        );
    }

    #[test]
    fn local_civil_agrees_with_utc_up_to_an_offset() {
        let t = at(2026, 11, 22, 10, 5);
        let off = offset(t, &local_civil(t));
        assert_eq!(off % 15, 0, "offset {off}");
        assert!(off.abs() <= 14 * 60);
    }

    #[test]
    fn parses_every_form() {
        let f = fields("*/15 1-5 1,15,31 jan-MAR Mon-fri");
        assert_eq!(set(f.minute), vec![0, 15, 30, 45]);
        assert_eq!(set(f.hour), vec![1, 2, 3, 4, 5]);
        assert_eq!(set(f.dom), vec![1, 15, 31]);
        assert_eq!(set(f.month), vec![1, 2, 3]);
        assert_eq!(set(f.dow), vec![1, 2, 3, 4, 5]);
        assert!(!f.dom_star && !f.dow_star && f.wildcard);

        let f = fields("10-50/20 0-23/6 */10 */3 *");
        assert_eq!(set(f.minute), vec![10, 30, 50]);
        assert_eq!(set(f.hour), vec![0, 6, 12, 18]);
        assert_eq!(set(f.dom), vec![1, 11, 21, 31]);
        assert_eq!(set(f.month), vec![1, 4, 7, 10]);
        assert!(f.dom_star && f.dow_star && !f.wildcard);

        // Day-of-week 7 and 0 are Sunday; ranges may run to 7.
        assert_eq!(set(fields("0 0 * * 7").dow), vec![0]);
        assert_eq!(set(fields("0 0 * * 5-7").dow), vec![0, 5, 6]);
        assert_eq!(set(fields("0 0 * * sun,SAT").dow), vec![0, 6]);
        assert_eq!(set(fields("0 0 * Dec,feb *").month), vec![2, 12]);
        assert_eq!(
            set(fields("5,7-9,30-40/5 * * * *").minute),
            vec![5, 7, 8, 9, 30, 35, 40]
        );
        // The text is kept as written (trimmed) for status.
        let s = Schedule::parse("  */5 * * * *\t").unwrap();
        assert_eq!(s.as_str(), "*/5 * * * *");
        assert_eq!(s.to_string(), "*/5 * * * *");
    }

    #[test]
    fn parses_names() {
        for (name, same) in [
            ("@yearly", "0 0 1 1 *"),
            ("@annually", "0 0 1 1 *"),
            ("@monthly", "0 0 1 * *"),
            ("@weekly", "0 0 * * 0"),
            ("@daily", "0 0 * * *"),
            ("@midnight", "0 0 * * *"),
            ("@HOURLY", "0 * * * *"),
        ] {
            let s = Schedule::parse(name).unwrap();
            assert_eq!(s.spec, Schedule::parse(same).unwrap().spec, "{name}");
            assert_eq!(s.as_str(), name);
            assert!(!s.is_reboot());
        }
        let r = Schedule::parse("@reboot").unwrap();
        assert!(r.is_reboot());
        assert_eq!(r.next_after(0, &utc_civil), None);
        assert_eq!(r.latest_in(0, 1_000_000, &utc_civil), None);
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(err("61 * * * *"), "minute: 61 is out of range 0-59");
        assert_eq!(err("* 24 * * *"), "hour: 24 is out of range 0-23");
        assert_eq!(err("* * 0 * *"), "day-of-month: 0 is out of range 1-31");
        assert_eq!(err("* * * 13 *"), "month: 13 is out of range 1-12");
        assert_eq!(err("* * * * 8"), "day-of-week: 8 is out of range 0-7");
        assert_eq!(
            err("99999999999 * * * *"),
            "minute: 99999999999 is out of range 0-59"
        );
        assert_eq!(err("* * * *"), "expected 5 fields, got 4");
        assert_eq!(err("* * * * * *"), "expected 5 fields, got 6");
        assert_eq!(err(""), "expected 5 fields, got 0");
        assert_eq!(err("*/0 * * * *"), "minute: step 0 is out of range 1-59");
        assert_eq!(err("*/x * * * *"), "minute: bad step \"x\"");
        assert_eq!(err("* */25 * * *"), "hour: step 25 is out of range 1-23");
        assert_eq!(
            err("5/10 * * * *"),
            "minute: a step needs a range or *: \"5/10\""
        );
        assert_eq!(err("* 5-3 * * *"), "hour: range 5-3 is backwards");
        assert_eq!(err("* * * foo *"), "month: unknown name \"foo\"");
        assert_eq!(
            err("* * * * funday"),
            "day-of-week: unknown name \"funday\""
        );
        assert_eq!(err("* * mon * *"), "day-of-month: \"mon\" is not a number");
        assert_eq!(err("1,,2 * * * *"), "minute: empty list item in \"1,,2\"");
        assert_eq!(err("1- * * * *"), "minute: \"\" is not a number");
        assert_eq!(err("@fortnightly"), "unknown name \"@fortnightly\"");
    }

    #[test]
    fn vixie_dom_dow_or_rule() {
        // 2026-11-01 is a Sunday. "1st of the month OR Monday".
        let s = "0 12 1 * mon";
        let t = next(s, at(2026, 10, 31, 0, 0)).unwrap();
        assert_eq!(t, at(2026, 11, 1, 12, 0));
        assert_eq!(next(s, t), Some(at(2026, 11, 2, 12, 0)));
        assert_eq!(
            next(s, at(2026, 11, 2, 12, 0)),
            Some(at(2026, 11, 9, 12, 0))
        );
        // A `*`-led day-of-week (even `*/2`) makes it AND, as Vixie cron.
        let s = "0 12 1 * */2"; // the 1st if it is Sun, Tue, Thu or Sat
        assert_eq!(
            next(s, at(2026, 10, 31, 0, 0)),
            Some(at(2026, 11, 1, 12, 0))
        );
        // Dec 1 is a Tuesday; Jan, Feb and Mar 1 2027 are not in the set.
        assert_eq!(
            next(s, at(2026, 11, 1, 12, 0)),
            Some(at(2026, 12, 1, 12, 0))
        );
        assert_eq!(next(s, at(2026, 12, 1, 12, 0)), Some(at(2027, 4, 1, 12, 0)));
        // Only one restricted: AND with `*` means just that one.
        assert_eq!(
            next("0 0 * * fri", at(2026, 11, 22, 0, 0)),
            Some(at(2026, 11, 27, 0, 0))
        );
        assert_eq!(
            next("0 0 13 * *", at(2026, 11, 22, 0, 0)),
            Some(at(2026, 12, 13, 0, 0))
        );
    }

    #[test]
    fn next_after_basics() {
        let t = at(2026, 11, 22, 10, 0);
        assert_eq!(next("* * * * *", t), Some(t + 60));
        assert_eq!(next("* * * * *", t + 1), Some(t + 60));
        assert_eq!(next("* * * * *", t - 1), Some(t));
        assert_eq!(next("*/5 * * * *", t), Some(t + 300));
        assert_eq!(next("*/5 * * * *", t + 299), Some(t + 300));
        assert_eq!(next("30 9 * * *", t), Some(at(2026, 11, 23, 9, 30)));
        assert_eq!(next("@hourly", t), Some(at(2026, 11, 22, 11, 0)));
        assert_eq!(next("@daily", t), Some(at(2026, 11, 23, 0, 0)));
        assert_eq!(next("@weekly", t), Some(at(2026, 11, 29, 0, 0))); // 22nd is a Sunday
        assert_eq!(next("@monthly", t), Some(at(2026, 12, 1, 0, 0)));
        assert_eq!(next("@yearly", t), Some(at(2027, 1, 1, 0, 0)));
        assert_eq!(next("15 3,22 * * *", t), Some(at(2026, 11, 22, 22, 15)));
        // Negative unix times work too.
        assert_eq!(next("0 0 1 1 *", -100), Some(0));
    }

    #[test]
    fn next_after_crosses_month_and_year_ends_and_leap_years() {
        assert_eq!(
            next("0 0 31 * *", at(2026, 1, 31, 0, 0)),
            Some(at(2026, 3, 31, 0, 0))
        );
        assert_eq!(
            next("59 23 31 12 *", at(2026, 6, 1, 0, 0)),
            Some(at(2026, 12, 31, 23, 59))
        );
        assert_eq!(
            next("0 0 * * *", at(2026, 12, 31, 23, 59)),
            Some(at(2027, 1, 1, 0, 0))
        );
        assert_eq!(
            next("0 0 29 2 *", at(2026, 1, 1, 0, 0)),
            Some(at(2028, 2, 29, 0, 0))
        );
        assert_eq!(
            next("0 0 29 2 *", at(2028, 2, 29, 0, 0)),
            Some(at(2032, 2, 29, 0, 0))
        );
        // 2100 is not a leap year: 2096 -> 2104 is more than 5 years.
        assert_eq!(next("0 0 29 2 *", at(2096, 2, 29, 0, 0)), None);
        assert_eq!(
            next("0 0 29 2 *", at(2399, 1, 1, 0, 0)),
            Some(at(2400, 2, 29, 0, 0))
        );
        assert_eq!(
            next("0 0 28 2 *", at(2028, 2, 28, 0, 0)),
            Some(at(2029, 2, 28, 0, 0))
        );
        assert_eq!(
            next("0 0 1 3 *", at(2028, 2, 28, 0, 0)),
            Some(at(2028, 3, 1, 0, 0))
        );
        // Feb 30 and Nov 31 never come.
        assert_eq!(next("0 0 30 2 *", 0), None);
        assert_eq!(next("0 0 31 11 *", 0), None);
    }

    #[test]
    fn sparse_schedules_are_found_in_few_steps() {
        use std::cell::Cell;
        for (s, bound) in [
            ("0 0 29 2 *", 2_000),
            ("0 0 30 2 *", 2_000),
            ("59 23 31 dec fri", 2_000),
            ("0 0 13 * fri", 5_000),
        ] {
            let calls = Cell::new(0u32);
            let counting = |t: i64| {
                calls.set(calls.get() + 1);
                utc_civil(t)
            };
            let sched = Schedule::parse(s).unwrap();
            let _ = sched.next_after(at(2026, 3, 1, 0, 0), &counting);
            assert!(calls.get() < bound, "{s}: {} civil() calls", calls.get());
            calls.set(0);
            let _ = sched.latest_in(0, at(2026, 3, 1, 0, 0), &counting);
            assert!(
                calls.get() < bound,
                "{s} back: {} civil() calls",
                calls.get()
            );
        }
    }

    #[test]
    fn latest_in_finds_the_latest_missed_time() {
        let s = Schedule::parse("*/5 * * * *").unwrap();
        let t = at(2026, 11, 22, 10, 0);
        let l = |since, at| s.latest_in(since, at, &utc_civil);
        assert_eq!(l(t, t + 7 * 60), Some(t + 300));
        assert_eq!(l(t, t + 300), Some(t + 300)); // <= at
        assert_eq!(l(t, t + 299), None); // > since
        assert_eq!(l(t - 1, t + 299), Some(t));
        assert_eq!(l(t, t), None);
        assert_eq!(l(t + 10, t), None);
        let d = Schedule::parse("0 0 29 2 *").unwrap();
        assert_eq!(
            d.latest_in(0, at(2026, 11, 22, 0, 0), &utc_civil),
            Some(at(2024, 2, 29, 0, 0))
        );
        assert_eq!(
            d.latest_in(at(2024, 2, 29, 0, 0), at(2026, 11, 22, 0, 0), &utc_civil),
            None
        );
        // next_after and latest_in agree on a random walk of schedules.
        for s in [
            "*/7 */3 * * *",
            "0 12 1 * mon",
            "15 3 * 2 sun",
            "0 0 29 2 *",
            "* * * * *",
        ] {
            let sched = Schedule::parse(s).unwrap();
            let mut t = at(2026, 1, 1, 0, 0);
            for _ in 0..12 {
                let n = sched.next_after(t, &utc_civil).unwrap();
                assert_eq!(sched.latest_in(t, n, &utc_civil), Some(n), "{s}");
                assert_eq!(sched.latest_in(t, n - 1, &utc_civil), None, "{s}");
                t = n;
            }
        }
    }

    /// A wall clock one hour ahead of UTC before `jump` and two hours ahead after
    /// (clocks forward at 02:00 local) or the reverse (clocks back at 03:00).
    fn zone(jump: i64, forward: bool) -> impl Fn(i64) -> Civil {
        move |t| {
            let (before, after) = if forward { (3600, 7200) } else { (7200, 3600) };
            utc_civil(t + if t < jump { before } else { after })
        }
    }

    #[test]
    fn clocks_forward_runs_fixed_jobs_after_the_jump() {
        // Local 02:00 (+1) = 01:00 UTC jumps to 03:00 (+2).
        let jump = at(2026, 3, 29, 1, 0);
        let z = zone(jump, true);
        let fixed = Schedule::parse("30 2 * * *").unwrap();
        assert_eq!(fixed.next_after(jump - 3600, &z), Some(jump));
        assert_eq!(fixed.latest_in(jump - 3600, jump + 600, &z), Some(jump));
        assert_eq!(fixed.next_after(jump, &z), Some(at(2026, 3, 30, 0, 30)));
        // A wildcard job does not run for the skipped hour.
        let wild = Schedule::parse("*/15 * * * *").unwrap();
        assert_eq!(wild.next_after(jump - 120, &z), Some(jump));
        assert_eq!(z(jump).hour, 3);
        let hourly_at_2 = Schedule::parse("* 2 * * *").unwrap();
        assert_eq!(
            hourly_at_2.next_after(jump - 3600, &z),
            Some(jump - 3600 + 86_400)
        );
        // Daily jobs either side are exact.
        let s = Schedule::parse("0 4 * * *").unwrap();
        assert_eq!(s.next_after(jump - 7200, &z), Some(at(2026, 3, 29, 2, 0)));
    }

    #[test]
    fn clocks_back_runs_fixed_jobs_once() {
        // Local 03:00 (+2) = 01:00 UTC goes back to 02:00 (+1): 02:00-02:59 twice.
        let jump = at(2026, 10, 25, 1, 0);
        let z = zone(jump, false);
        let fixed = Schedule::parse("30 2 * * *").unwrap();
        let first = fixed.next_after(jump - 7200, &z).unwrap();
        assert_eq!(first, jump - 1800);
        assert_eq!(fixed.next_after(first, &z), Some(at(2026, 10, 26, 1, 30)));
        assert_eq!(fixed.latest_in(jump - 7200, jump + 3600, &z), Some(first));
        // A wildcard job runs by real time: the repeated 02:30 too.
        let wild = Schedule::parse("30 * * * *").unwrap();
        assert_eq!(wild.next_after(first, &z), Some(first + 3600));
        assert_eq!(wild.latest_in(first, jump + 3600, &z), Some(first + 3600));
        // Skips over the change are exact.
        let s = Schedule::parse("0 12 * * *").unwrap();
        assert_eq!(
            s.next_after(jump - 86_400, &z),
            Some(at(2026, 10, 24, 10, 0))
        );
        assert_eq!(s.next_after(jump, &z), Some(at(2026, 10, 25, 11, 0)));
        assert_eq!(
            s.latest_in(0, jump + 86_400, &z),
            Some(at(2026, 10, 25, 11, 0))
        );
    }
}
