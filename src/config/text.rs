//! Reading configuration files as the original daemons do: bytes, not
//! UTF-8 text. heartbeat, drbdadm and keepalived read `char`s, so a Latin-1
//! or GBK comment (`# Serveur de données`) is nothing to them; hbd reads
//! such a file too. [`decode`] keeps every valid line as it is, replaces the
//! bytes that are not UTF-8 (U+FFFD), and reports them as an error naming
//! `file:line` and the line's key only when they stand before the line's
//! comment, in a value that matters.
//!
//! [`glob`]: drbd.conf's `include "drbd.d/*.res";` as drbdadm expands it
//! (glob(3): `*`, `?`, `[...]`, sorted, a leading `.` matched only by a `.`).

use super::ConfigError;
use std::path::{Path, PathBuf};

/// Where a line's comment starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Comments {
    /// `#` anywhere (ha.cf, haresources, authkeys, cluster.toml, drbd.conf).
    Hash,
    /// `#` or `!` where a word starts (keepalived.conf).
    HashOrBang,
}

/// `bytes` as text: invalid UTF-8 replaced by U+FFFD, with an error for
/// each line whose invalid bytes stand before its comment.
pub(crate) fn decode(path: &Path, bytes: &[u8], comments: Comments) -> (String, Vec<ConfigError>) {
    if let Ok(s) = std::str::from_utf8(bytes) {
        return (s.to_string(), Vec::new());
    }
    let mut text = String::with_capacity(bytes.len());
    let mut errors = Vec::new();
    for (idx, line) in bytes.split_inclusive(|&b| b == b'\n').enumerate() {
        if let Ok(s) = std::str::from_utf8(line) {
            text.push_str(s);
            continue;
        }
        // Every byte of a multi-byte UTF-8, Latin-1 or GBK character is
        // >= 0x40 or >= 0x80: a `#`, `!` or blank byte is always itself.
        let end = comment_start(line, comments);
        if std::str::from_utf8(&line[..end]).is_err() {
            let lossy = String::from_utf8_lossy(&line[..end]);
            let key = lossy.split_whitespace().next().unwrap_or("").to_string();
            errors.push(ConfigError::Line {
                file: path.to_path_buf(),
                line: idx + 1,
                key,
                message: "bytes that are not UTF-8 outside a comment: hbd reads values as \
                          UTF-8 (comments may be in any encoding); convert the file, e.g. \
                          `iconv -f latin1 -t utf-8`"
                    .into(),
            });
        }
        text.push_str(&String::from_utf8_lossy(line));
    }
    (text, errors)
}

/// The byte offset where `line`'s comment starts (its length without one).
fn comment_start(line: &[u8], comments: Comments) -> usize {
    let mut prev_blank = true;
    for (i, &b) in line.iter().enumerate() {
        match (b, comments) {
            (b'#', Comments::Hash) => return i,
            (b'#' | b'!', Comments::HashOrBang) if prev_blank => return i,
            _ => {}
        }
        prev_blank = b.is_ascii_whitespace();
    }
    line.len()
}

/// The files `pattern` names, sorted, as glob(3) without flags finds them.
/// A pattern without `*`, `?` or `[` names its path, existing or not.
pub(crate) fn glob(pattern: &Path) -> Vec<PathBuf> {
    if !has_wildcards(&pattern.to_string_lossy()) {
        return vec![pattern.to_path_buf()];
    }
    let mut found = vec![PathBuf::new()];
    for comp in pattern.components() {
        let part = comp.as_os_str().to_string_lossy();
        let mut next = Vec::new();
        for base in &found {
            if !has_wildcards(&part) {
                let p = base.join(comp.as_os_str());
                if base.as_os_str().is_empty() || p.exists() {
                    next.push(p);
                }
                continue;
            }
            let dir = if base.as_os_str().is_empty() {
                Path::new(".")
            } else {
                base.as_path()
            };
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            let mut names: Vec<String> = entries
                .filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| matches(&part, n))
                .collect();
            names.sort();
            next.extend(names.into_iter().map(|n| base.join(n)));
        }
        found = next;
    }
    found
}

/// Whether a glob pattern has a wildcard.
pub(crate) fn has_wildcards(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// fnmatch(3) of one path component: `*`, `?`, `[abc]`, `[a-z]`, `[!a]`;
/// a leading `.` only by a literal `.`.
fn matches(pattern: &str, name: &str) -> bool {
    if name.starts_with('.') && !pattern.starts_with('.') {
        return false;
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    match_at(&p, &n)
}

fn match_at(p: &[char], n: &[char]) -> bool {
    match p.first() {
        None => n.is_empty(),
        Some('*') => (0..=n.len()).any(|i| match_at(&p[1..], &n[i..])),
        Some('?') => !n.is_empty() && match_at(&p[1..], &n[1..]),
        Some('[') => {
            let Some(&c) = n.first() else { return false };
            match class(&p[1..], c) {
                Some((ok, rest)) => ok && match_at(rest, &n[1..]),
                // No closing `]`: a literal `[`.
                None => c == '[' && match_at(&p[1..], &n[1..]),
            }
        }
        Some(&l) => n.first() == Some(&l) && match_at(&p[1..], &n[1..]),
    }
}

/// A `[...]` class after its `[`: whether `c` is in it, and the pattern after `]`.
fn class(p: &[char], c: char) -> Option<(bool, &[char])> {
    let (negate, mut i) = match p.first() {
        Some('!' | '^') => (true, 1),
        _ => (false, 0),
    };
    let mut hit = false;
    let mut first = true;
    while i < p.len() {
        if p[i] == ']' && !first {
            return Some((hit != negate, &p[i + 1..]));
        }
        first = false;
        if i + 2 < p.len() && p[i + 1] == '-' && p[i + 2] != ']' {
            hit |= (p[i]..=p[i + 2]).contains(&c);
            i += 3;
        } else {
            hit |= p[i] == c;
            i += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latin1_and_gbk_comments_are_read_values_are_not() {
        // Latin-1 "données", GBK "节点" in comments; Latin-1 in a value.
        let mut b = b"# Serveur de donn\xe9es\nnode a # \xbd\xda\xb5\xe3\n".to_vec();
        b.extend_from_slice(b"logfile /var/log/h\xe9.log\n");
        let (t, e) = decode(Path::new("ha.cf"), &b, Comments::Hash);
        assert!(
            t.lines().nth(1).unwrap().starts_with("node a # \u{fffd}"),
            "{t}"
        );
        let e: Vec<String> = e.iter().map(|e| e.to_string()).collect();
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with("ha.cf:3: logfile: bytes that are not UTF-8"),
            "{e:?}"
        );
        // keepalived: `!` starts a comment only where a word starts.
        let b = b"auth_pass s3cr!\xe9t\n  ! commentaire \xe9\n";
        let (_, e) = decode(Path::new("k"), b, Comments::HashOrBang);
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].line(), 1);
        let (t, e) = decode(Path::new("k"), "ok é\n".as_bytes(), Comments::Hash);
        assert_eq!((t.as_str(), e.len()), ("ok é\n", 0));
    }

    #[test]
    fn fnmatch() {
        for (p, n, want) in [
            ("*.res", "r0.res", true),
            ("*.res", "r0.res~", false),
            ("*.res", ".hidden.res", false),
            (".*.res", ".hidden.res", true),
            ("r?.res", "r1.res", true),
            ("r[0-2].res", "r2.res", true),
            ("r[!0-2].res", "r2.res", false),
            ("r[!0-2].res", "r3.res", true),
            ("global_common.conf", "global_common.conf", true),
            ("a[b", "a[b", true),
        ] {
            assert_eq!(matches(p, n), want, "{p} {n}");
        }
    }

    #[test]
    fn glob_sorted_in_directories() {
        let d = tempfile::tempdir().unwrap();
        let dd = d.path().join("drbd.d");
        std::fs::create_dir(&dd).unwrap();
        for f in ["r1.res", "r0.res", "x.conf", ".r2.res"] {
            std::fs::write(dd.join(f), "").unwrap();
        }
        let got = glob(&dd.join("*.res"));
        assert_eq!(got, vec![dd.join("r0.res"), dd.join("r1.res")]);
        let got = glob(&d.path().join("*/r?.res"));
        assert_eq!(got, vec![dd.join("r0.res"), dd.join("r1.res")]);
        assert!(glob(&d.path().join("none/*.res")).is_empty());
        assert_eq!(glob(&dd.join("gone.conf")), vec![dd.join("gone.conf")]);
    }
}
