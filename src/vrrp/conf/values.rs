//! keepalived.conf's values: the methods of [`KeepalivedParser`] that read a statement's
//! words (counts, seconds, addresses, interface names, users, commands,
//! notify scripts, tracked names, VIPs, list blocks), and the value parsers
//! [`parse_seconds`] and [`split_command`].

use super::{Command, Notify, ScriptUser, Vip, MAX_WEIGHT};
use crate::config::syntax::{Parser, Stmt, Word};
use std::net::Ipv4Addr;
use std::time::Duration;

const MAX_IFNAME: usize = 15;

/// Marks [`Parser`]'s methods for keepalived.conf: its values and lists.
pub(super) struct Keepalived;

pub(super) type KeepalivedParser = Parser<Keepalived>;

impl KeepalivedParser {
    pub(super) fn unsupported(&mut self, w: &Word, within: &str) {
        let msg = format!("`{}`: not supported by hbd (in `{within}`)", w.text);
        self.err(w.line, &w.text, msg);
    }

    /// A template's `<placeholder>` among `words`: an error, true.
    fn placeholder(&mut self, key: &Word, words: &[Word]) -> bool {
        let Some(start) = words
            .iter()
            .position(|w| !w.quoted && w.text.starts_with('<'))
        else {
            return false;
        };
        let end = words[start..]
            .iter()
            .position(|w| w.text.ends_with('>'))
            .map_or(words.len(), |e| start + e + 1);
        let text: Vec<&str> = words[start..end].iter().map(|w| w.text.as_str()).collect();
        let msg = format!(
            "`{}` is a template placeholder: put the real value here",
            text.join(" ")
        );
        self.err(words[start].line, &key.text, msg);
        true
    }

    /// The values of a `key v1 .. vn` line (`min..=max` of them), or an error.
    pub(super) fn values<'a>(
        &mut self,
        st: &'a Stmt,
        min: usize,
        max: usize,
    ) -> Option<&'a [Word]> {
        let key = st.key();
        let vals = &st.words[1..];
        if st.block.is_some() {
            let msg = format!("`{}` takes values, not a `{{ }}` block", key.text);
            self.err(key.line, &key.text, msg);
            return None;
        }
        if self.placeholder(key, vals) {
            return None;
        }
        if self.too_few(st, min) {
            return None;
        }
        if vals.len() > max {
            let msg = format!("unexpected `{}`", vals[max].text);
            self.err(vals[max].line, &key.text, msg);
            return None;
        }
        Some(vals)
    }

    pub(super) fn value<'a>(&mut self, st: &'a Stmt) -> Option<&'a Word> {
        self.values(st, 1, 1).map(|v| &v[0])
    }

    /// A keyword without values.
    pub(super) fn flag(&mut self, st: &Stmt) -> bool {
        self.values(st, 0, 0).is_some()
    }

    /// The lines of a list block (`virtual_ipaddress { }`...): nested blocks
    /// are errors.
    pub(super) fn list<'a>(&mut self, st: &'a Stmt) -> Vec<&'a Stmt> {
        let Some((_, block)) = self.section(st, 0) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for s in block {
            if s.block.is_some() {
                let msg = format!("unexpected block in `{}`", st.key().text);
                self.err(s.key().line, &s.key().text, msg);
            } else if !self.placeholder(st.key(), &s.words) {
                out.push(s);
            }
        }
        out
    }

    pub(super) fn int(&mut self, key: &str, w: &Word, min: i64, max: i64) -> Option<i64> {
        match w.text.parse::<i64>() {
            Ok(n) if (min..=max).contains(&n) => Some(n),
            _ => {
                let msg = format!("`{}`: expected a whole number from {min} to {max}", w.text);
                self.err(w.line, key, msg);
                None
            }
        }
    }

    /// `key N` with `min..=max`.
    pub(super) fn int_value(&mut self, st: &Stmt, min: i64, max: i64) -> Option<i64> {
        let v = self.value(st)?;
        self.int(&st.key().text, v, min, max)
    }

    /// `key N` in whole seconds within `min..=max` (keepalived reads these
    /// as integers).
    pub(super) fn whole_secs(&mut self, st: &Stmt, min: i64, max: i64) -> Option<Duration> {
        self.int_value(st, min, max)
            .map(|n| Duration::from_secs(n as u64))
    }

    /// `key SECONDS` (fractions allowed) within `min..=max` seconds.
    pub(super) fn secs_value(
        &mut self,
        st: &Stmt,
        min: Duration,
        max: Duration,
    ) -> Option<Duration> {
        let v = self.value(st)?;
        match parse_seconds(&v.text) {
            Ok(d) if d >= min && d <= max => Some(d),
            Ok(_) => {
                let msg = format!(
                    "`{}`: must be from {} to {} seconds",
                    v.text,
                    fmt_secs(min),
                    fmt_secs(max)
                );
                self.err(v.line, &st.key().text, msg);
                None
            }
            Err(m) => {
                self.err(v.line, &st.key().text, format!("`{}`: {m}", v.text));
                None
            }
        }
    }

    pub(super) fn ipv4(&mut self, key: &str, w: &Word) -> Option<Ipv4Addr> {
        match w.text.parse::<Ipv4Addr>() {
            Ok(a) => Some(a),
            Err(_) => {
                let msg = if w.text.contains(':') {
                    format!("`{}`: IPv6 is not supported by hbd: IPv4 only", w.text)
                } else {
                    format!("`{}`: expected an IPv4 address", w.text)
                };
                self.err(w.line, key, msg);
                None
            }
        }
    }

    pub(super) fn ifname(&mut self, key: &str, w: &Word) -> Option<String> {
        let t = &w.text;
        if t.is_empty() || t.len() > MAX_IFNAME || t.contains(['/', ' ']) {
            let msg = format!("`{t}`: not an interface name (1 to {MAX_IFNAME} bytes, no `/`)");
            self.err(w.line, key, msg);
            None
        } else {
            Some(t.clone())
        }
    }

    /// `USER [GROUP]`.
    pub(super) fn user(&mut self, st: &Stmt) -> Option<ScriptUser> {
        let v = self.values(st, 1, 2)?;
        Some(ScriptUser {
            user: v[0].text.clone(),
            group: v.get(1).map(|g| g.text.clone()),
        })
    }

    pub(super) fn command(&mut self, key: &str, w: &Word) -> Option<Command> {
        match split_command(&w.text) {
            Ok(argv) => Some(Command {
                text: w.text.clone(),
                argv,
            }),
            Err(m) => {
                self.err(w.line, key, m.to_string());
                None
            }
        }
    }

    /// `notify* "COMMAND ARGS" [USER [GROUP]]`.
    pub(super) fn notify(&mut self, st: &Stmt, slot: &mut Option<Notify>) {
        let key = st.key();
        let Some(v) = self.values(st, 1, 3) else {
            return;
        };
        let Some(command) = self.command(&key.text, &v[0]) else {
            return;
        };
        if v.len() > 1 && !v[0].quoted {
            let msg = format!(
                "`{}` is the user the script runs as (keepalived's syntax: COMMAND [USER [GROUP]]); to pass arguments, quote the command",
                v[1].text
            );
            self.warn(v[1].line, &key.text, msg);
        }
        let user = v.get(1).map(|u| ScriptUser {
            user: u.text.clone(),
            group: v.get(2).map(|g| g.text.clone()),
        });
        if let Some(first) = slot {
            let msg = format!("given twice (first on line {})", first.at.line);
            self.err(key.line, &key.text, msg);
            return;
        }
        *slot = Some(Notify {
            command,
            user,
            at: self.at(key.line),
        });
    }

    /// `NAME [weight W [reverse]]` of track_script / track_interface.
    pub(super) fn tracked(&mut self, key: &str, st: &Stmt) -> Option<(Option<i32>, bool)> {
        let w = &st.words[1..];
        match w {
            [] => Some((None, false)),
            [kw, n] | [kw, n, _] if kw.text == "weight" => {
                let reverse = match w.get(2) {
                    None => false,
                    Some(r) if r.text == "reverse" => true,
                    Some(r) => {
                        let msg = format!("unexpected `{}`: expected `reverse`", r.text);
                        self.err(r.line, key, msg);
                        return None;
                    }
                };
                let n = self.int(key, n, -(MAX_WEIGHT as i64), MAX_WEIGHT as i64)?;
                Some((Some(n as i32), reverse))
            }
            _ => {
                let msg = format!("unexpected `{}`: expected `weight W`", w[0].text);
                self.err(w[0].line, key, msg);
                None
            }
        }
    }

    pub(super) fn vip(&mut self, st: &Stmt) -> Option<Vip> {
        let key = "virtual_ipaddress";
        let a = st.key();
        let (addr, prefix) = match a.text.split_once('/') {
            Some((ad, pf)) => (ad, Some(pf)),
            None => (a.text.as_str(), None),
        };
        let w = Word {
            text: addr.to_string(),
            ..a.clone()
        };
        let addr = self.ipv4(key, &w);
        let prefix = match prefix {
            None => Some(32),
            Some(pf) => match pf.parse::<u8>() {
                Ok(n) if n <= 32 => Some(n),
                _ => {
                    let msg = format!("`{}`: the prefix length must be 0 to 32", a.text);
                    self.err(a.line, key, msg);
                    None
                }
            },
        };
        let mut vip = Vip {
            addr: addr?,
            prefix: prefix?,
            brd: None,
            dev: None,
            scope: None,
            label: None,
            at: self.at(a.line),
        };
        let mut rest = st.words[1..].iter();
        let mut ok = true;
        while let Some(opt) = rest.next() {
            let o = opt.text.as_str();
            if !matches!(o, "brd" | "dev" | "scope" | "label") {
                let msg = format!(
                    "`{o}`: not supported by hbd; expected `brd`, `dev`, `scope` or `label`"
                );
                self.err(opt.line, key, msg);
                ok = false;
                break;
            }
            let Some(val) = rest.next() else {
                self.err(opt.line, key, format!("`{o}` needs a value"));
                ok = false;
                break;
            };
            match o {
                "brd" => vip.brd = self.ipv4(key, val),
                "dev" => vip.dev = self.ifname(key, val),
                "scope" => {
                    const SCOPES: &[&str] = &["global", "site", "link", "host", "nowhere"];
                    if SCOPES.contains(&val.text.as_str()) || val.text.parse::<u8>().is_ok() {
                        vip.scope = Some(val.text.clone());
                    } else {
                        let msg = format!(
                            "`{}`: expected global, site, link, host, nowhere or 0..255",
                            val.text
                        );
                        self.err(val.line, key, msg);
                    }
                }
                _ => {
                    if val.text.len() > MAX_IFNAME {
                        let msg = format!("`{}`: a label is at most {MAX_IFNAME} bytes", val.text);
                        self.err(val.line, key, msg);
                    } else {
                        vip.label = Some(val.text.clone());
                    }
                }
            }
        }
        ok.then_some(vip)
    }
}

/// Why a value is not what its keyword takes (the message goes after the
/// value in a `file:line` diagnostic).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("expected seconds like `1` or `0.5`")]
    NotSeconds,
    /// A command whose quote is not closed (the command as written).
    #[error("`{0}`: quote not closed")]
    QuoteNotClosed(String),
    #[error("empty command")]
    EmptyCommand,
}

/// A keepalived TIMER: seconds with an optional fraction (to microseconds).
pub fn parse_seconds(s: &str) -> Result<Duration, ValueError> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty() && frac.is_empty()
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || frac.len() > 6
        || int.len() > 9
    {
        return Err(ValueError::NotSeconds);
    }
    let secs: u64 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| ValueError::NotSeconds)?
    };
    let micros: u32 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<6}")
            .parse()
            .map_err(|_| ValueError::NotSeconds)?
    };
    Ok(Duration::from_secs(secs) + Duration::from_micros(micros.into()))
}

pub(super) fn fmt_secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    format!("{s}")
}

/// Splits a command as keepalived does (no shell): blanks separate words;
/// single or double quotes group; a backslash escapes the next character.
pub fn split_command(s: &str) -> Result<Vec<String>, ValueError> {
    let mut argv = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut it = s.chars();
    while let Some(c) = it.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (_, '\\') => {
                if let Some(e) = it.next() {
                    cur.push(e);
                }
                in_word = true;
            }
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    argv.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err(ValueError::QuoteNotClosed(s.to_string()));
    }
    if in_word {
        argv.push(cur);
    }
    if argv.is_empty() || argv[0].is_empty() {
        return Err(ValueError::EmptyCommand);
    }
    Ok(argv)
}

pub(super) fn bool_word(w: &str) -> Option<bool> {
    match w {
        "on" | "true" | "yes" => Some(true),
        "off" | "false" | "no" => Some(false),
        _ => None,
    }
}
