//! heartbeat's `authkeys`.
//!
//! ```text
//! auth 1
//! 1 sha256 0f3c...
//! 2 sha1 old-secret
//! ```
//!
//! `auth N` names the key that signs; every listed key at least as strong
//! as the signing key's method is accepted on receive (crc < md5 < sha1 <
//! sha256), weaker ones only with cluster.toml's `[cluster]
//! accept_weaker_keys` (see [`receive_keys`]). Secrets never appear in
//! errors or warnings.

use super::{ConfigError, ConfigWarning};
use crate::wire::{AuthKey, AuthKeys, AuthMethod};
use std::collections::HashMap;
use std::path::Path;

/// Highest key number: heartbeat keeps `MAXAUTH` (16) keys, numbered 0 to 15.
pub const MAX_KEY_ID: u8 = 15;

/// The placeholder secret of the example authkeys (etc/ha.d/authkeys):
/// refused, so the example cannot be deployed with a published secret.
pub const PLACEHOLDER_SECRET: &str = "REPLACE-WITH-THE-OUTPUT-OF-openssl-rand-hex-32";

/// Secrets shorter than this get a warning.
const SHORT_SECRET: usize = 16;

const METHODS: &str = "crc, md5, sha1 or sha256";

fn method_from(s: &str) -> Option<AuthMethod> {
    match s.to_ascii_lowercase().as_str() {
        "crc" => Some(AuthMethod::Crc),
        "md5" => Some(AuthMethod::Md5),
        "sha1" => Some(AuthMethod::Sha1),
        "sha256" => Some(AuthMethod::Sha256),
        _ => None,
    }
}

/// How much a method protects: crc (nothing: anyone can compute it) < md5
/// < sha1 < sha256.
pub fn strength(method: AuthMethod) -> u8 {
    match method {
        AuthMethod::Crc => 0,
        AuthMethod::Md5 => 1,
        AuthMethod::Sha1 => 2,
        AuthMethod::Sha256 => 3,
    }
}

/// The keys whose datagrams are accepted on receive: those at least as
/// strong as the signing key's method, or every key with `accept_weaker`
/// (cluster.toml `[cluster] accept_weaker_keys`, for a rollover to a
/// stronger method one node at a time). Without the rule, a listed `crc`
/// key let anyone forge datagrams to a node that signs with sha256 (issue
/// 14, finding 8). The signing key itself is always in the set.
pub fn receive_keys(keys: &AuthKeys, accept_weaker: bool) -> AuthKeys {
    let floor = keys.signing().map_or(0, |k| strength(k.method));
    AuthKeys {
        active: keys.active,
        keys: keys
            .keys
            .iter()
            .filter(|k| accept_weaker || strength(k.method) >= floor)
            .cloned()
            .collect(),
    }
}

/// The listed keys weaker than the signing key's method: their datagrams
/// are dropped unless `[cluster] accept_weaker_keys` is set.
pub fn weaker_keys(keys: &AuthKeys) -> Vec<&AuthKey> {
    let floor = keys.signing().map_or(0, |k| strength(k.method));
    keys.keys
        .iter()
        .filter(|k| strength(k.method) < floor)
        .collect()
}

/// Parses the text of an `authkeys` file (`path` is only used in messages).
/// The keys are `Some` when an `auth N` line names a listed key; they are
/// meaningful only when the error list is empty. File permissions are
/// checked by [`super::load`].
pub fn parse(path: &Path, text: &str) -> (Option<AuthKeys>, Vec<ConfigError>, Vec<ConfigWarning>) {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let err = |errors: &mut Vec<ConfigError>, line: usize, key: &str, message: String| {
        errors.push(ConfigError::Line {
            file: path.to_path_buf(),
            line,
            key: key.to_string(),
            message,
        })
    };
    let warn = |warnings: &mut Vec<ConfigWarning>, line: usize, key: &str, message: &str| {
        warnings.push(ConfigWarning {
            file: path.to_path_buf(),
            line,
            key: key.to_string(),
            message: message.to_string(),
        })
    };

    let mut auth: Option<(Option<u8>, usize)> = None;
    let mut keys: Vec<AuthKey> = Vec::new();
    let mut key_lines: HashMap<u8, usize> = HashMap::new();
    // Key numbers on any line, even a wrong one: `auth N` naming one of
    // those is not reported as unlisted on top of the line's own error.
    let mut mentioned: Vec<u32> = Vec::new();

    for (idx, raw) in text.lines().enumerate() {
        let line = idx + 1;
        let content = raw.trim();
        // Only whole-line comments: a secret may contain `#`.
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        let (first, rest) = split_token(content);
        if first == "auth" {
            if let Some((_, l)) = auth {
                err(
                    &mut errors,
                    line,
                    "auth",
                    format!("given twice (first at line {l}); it takes one key number"),
                );
                continue;
            }
            // `auth 2 # the new key`: heartbeat reads the number and
            // ignores the rest (this line holds no secret).
            let rest = rest.split('#').next().unwrap_or("");
            let args: Vec<&str> = rest.split_whitespace().collect();
            let id = match args[..] {
                [] => {
                    err(
                        &mut errors,
                        line,
                        "auth",
                        "missing value: expected `auth N`".into(),
                    );
                    None
                }
                [n] => match n.parse::<u8>() {
                    Ok(id) if id <= MAX_KEY_ID => Some(id),
                    _ => {
                        err(
                            &mut errors,
                            line,
                            "auth",
                            format!("`{n}`: expected a key number from 0 to {MAX_KEY_ID}"),
                        );
                        None
                    }
                },
                _ => {
                    err(
                        &mut errors,
                        line,
                        "auth",
                        format!("takes one value, got {}: expected `auth N`", args.len()),
                    );
                    None
                }
            };
            auth = Some((id, line));
            continue;
        }

        // `N METHOD [SECRET]`. Nothing of the line is echoed unless it is
        // known not to be the secret.
        let Ok(id) = first.parse::<u32>() else {
            err(
                &mut errors,
                line,
                "syntax",
                "expected `auth N` or `N METHOD SECRET` (the line is not shown: it may hold a \
                 secret)"
                    .into(),
            );
            continue;
        };
        mentioned.push(id);
        let key = format!("key {id}");
        let id = match u8::try_from(id) {
            Ok(id) if id <= MAX_KEY_ID => id,
            _ => {
                err(
                    &mut errors,
                    line,
                    &key,
                    format!("key numbers go from 0 to {MAX_KEY_ID}"),
                );
                continue;
            }
        };
        let (method_text, secret) = split_token(rest);
        if method_text.is_empty() {
            err(
                &mut errors,
                line,
                &key,
                format!("missing method: expected {METHODS}"),
            );
            continue;
        }
        let Some(method) = method_from(method_text) else {
            err(
                &mut errors,
                line,
                &key,
                format!(
                    "unknown method: expected {METHODS} (the text is not shown: it may be a \
                     secret)"
                ),
            );
            continue;
        };
        let secret = secret.trim();
        if let Some(first) = key_lines.get(&id) {
            err(
                &mut errors,
                line,
                &key,
                format!("given twice (first at line {first})"),
            );
            continue;
        }
        match method {
            AuthMethod::Crc => {
                if !secret.is_empty() {
                    err(
                        &mut errors,
                        line,
                        &key,
                        "crc takes no secret (heartbeat refuses one too); remove it, or better \
                         use sha256 with it"
                            .into(),
                    );
                    continue;
                }
                warn(
                    &mut warnings,
                    line,
                    &key,
                    "crc authenticates nothing: anyone on the network can forge heartbeats; \
                     use sha256",
                );
            }
            m => {
                if secret.is_empty() {
                    err(
                        &mut errors,
                        line,
                        &key,
                        format!(
                            "{} needs a secret: `{id} {} SECRET`",
                            m.as_str(),
                            m.as_str()
                        ),
                    );
                    continue;
                }
                if secret == PLACEHOLDER_SECRET {
                    err(
                        &mut errors,
                        line,
                        &key,
                        "the example's placeholder secret: generate one with \
                         `openssl rand -hex 32`"
                            .into(),
                    );
                    continue;
                }
                if m != AuthMethod::Sha256 {
                    warn(
                        &mut warnings,
                        line,
                        &key,
                        &format!("{} is a legacy method; sha256 is recommended", m.as_str()),
                    );
                }
                if secret.chars().any(char::is_whitespace) {
                    warn(
                        &mut warnings,
                        line,
                        &key,
                        "the secret contains white space: hbd uses the whole rest of the \
                         line, heartbeat used only its first word",
                    );
                }
                if secret.len() < SHORT_SECRET {
                    warn(
                        &mut warnings,
                        line,
                        &key,
                        "the secret is short; use a random one (`openssl rand -hex 32`)",
                    );
                }
            }
        }
        key_lines.insert(id, line);
        keys.push(AuthKey {
            id,
            method,
            secret: secret.as_bytes().to_vec(),
        });
    }

    let mut result = None;
    match auth {
        None => errors.push(ConfigError::File {
            file: path.to_path_buf(),
            message: "no `auth N` line: name the key that signs (e.g. `auth 1`)".into(),
        }),
        Some((None, _)) => {}
        Some((Some(active), line)) => {
            if key_lines.contains_key(&active) {
                let keys = AuthKeys { active, keys };
                let signing = keys.signing().map_or(AuthMethod::Sha256, |k| k.method);
                for k in weaker_keys(&keys) {
                    warn(
                        &mut warnings,
                        key_lines[&k.id],
                        &format!("key {}", k.id),
                        &format!(
                            "{} is weaker than the signing key's {}: datagrams signed with it \
                             are dropped unless cluster.toml has `[cluster] accept_weaker_keys \
                             = true`",
                            k.method.as_str(),
                            signing.as_str()
                        ),
                    );
                }
                result = Some(keys);
            } else if !mentioned.contains(&u32::from(active)) {
                let listed: Vec<String> = keys.iter().map(|k| k.id.to_string()).collect();
                let listed = if listed.is_empty() {
                    "none".to_string()
                } else {
                    listed.join(", ")
                };
                err(
                    &mut errors,
                    line,
                    "auth",
                    format!("key {active} is not listed in this file (keys: {listed})"),
                );
            }
        }
    }
    errors.sort_by_key(|e| e.line());
    (result, errors, warnings)
}

/// The first whitespace-separated token of `s` and the rest (untrimmed).
fn split_token(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    match s.find(char::is_whitespace) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, ""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "S3cr3tS3cr3tS3cr3t";

    fn run(text: &str) -> (Option<AuthKeys>, Vec<String>, Vec<String>) {
        let (k, e, w) = parse(Path::new("authkeys"), text);
        (
            k,
            e.iter().map(ToString::to_string).collect(),
            w.iter().map(ToString::to_string).collect(),
        )
    }

    fn one_err(text: &str) -> String {
        let (_, e, _) = run(text);
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(!e[0].contains(SECRET), "secret printed: {e:?}");
        e[0].clone()
    }

    #[test]
    fn sha256_with_rollover_key() {
        let text =
            format!("# comment\n\nauth 2\n1 sha1 {SECRET}\n2 sha256 {SECRET}x   \n  # another\n");
        let (k, e, w) = run(&text);
        assert!(e.is_empty(), "{e:?}");
        let k = k.unwrap();
        assert_eq!(k.active, 2);
        assert_eq!(k.keys.len(), 2);
        assert_eq!(k.keys[0].id, 1);
        assert_eq!(k.keys[0].method, AuthMethod::Sha1);
        assert_eq!(k.keys[0].secret, SECRET.as_bytes());
        assert_eq!(k.keys[1].method, AuthMethod::Sha256);
        assert_eq!(k.keys[1].secret, format!("{SECRET}x").as_bytes());
        assert_eq!(k.signing().unwrap().id, 2);
        assert_eq!(
            w,
            vec![
                "authkeys:4: key 1: sha1 is a legacy method; sha256 is recommended",
                "authkeys:4: key 1: sha1 is weaker than the signing key's sha256: datagrams \
                 signed with it are dropped unless cluster.toml has `[cluster] \
                 accept_weaker_keys = true`"
            ]
        );
    }

    #[test]
    fn auth_line_with_a_trailing_comment() {
        let text = format!("auth 2 # rolled over in May\n1 sha1 {SECRET}\n2 sha256 {SECRET}\n");
        let (k, e, _) = run(&text);
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(k.unwrap().active, 2);
        assert_eq!(
            one_err("auth # none\n"),
            "authkeys:1: auth: missing value: expected `auth N`"
        );
    }

    #[test]
    fn methods_and_warnings() {
        let (k, e, w) = run("auth 1\n1 crc\n");
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(k.unwrap().keys[0].secret, b"");
        assert_eq!(
            w,
            vec!["authkeys:2: key 1: crc authenticates nothing: anyone on the network can forge heartbeats; use sha256"]
        );
        let (_, e, w) = run(&format!("auth 1\n1 MD5 {SECRET}\n"));
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(
            w,
            vec!["authkeys:2: key 1: md5 is a legacy method; sha256 is recommended"]
        );
        let (_, _, w) = run("auth 1\n1 sha256 short\n");
        assert_eq!(
            w,
            vec![
                "authkeys:2: key 1: the secret is short; use a random one (`openssl rand -hex 32`)"
            ]
        );
        // A secret is the rest of the line, `#` and spaces included.
        let (k, e, w) = run(&format!("auth 1\n1 sha256 {SECRET} #x\n"));
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(k.unwrap().keys[0].secret, format!("{SECRET} #x").as_bytes());
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("white space"), "{w:?}");
        assert!(!w[0].contains(SECRET));
        // Key 0 and 15 are heartbeat's bounds.
        assert!(
            run(&format!("auth 0\n0 sha256 {SECRET}\n15 sha256 {SECRET}\n"))
                .1
                .is_empty()
        );
    }

    #[test]
    fn errors() {
        assert_eq!(
            one_err(&format!("1 sha256 {SECRET}\n")),
            "authkeys: no `auth N` line: name the key that signs (e.g. `auth 1`)"
        );
        assert_eq!(
            one_err(&format!("auth 3\n1 sha256 {SECRET}\n")),
            "authkeys:1: auth: key 3 is not listed in this file (keys: 1)"
        );
        assert_eq!(
            one_err("auth 1\n"),
            "authkeys:1: auth: key 1 is not listed in this file (keys: none)"
        );
        assert_eq!(
            one_err(&format!("auth 1\n1 sha256 {SECRET}\n1 sha256 {SECRET}\n")),
            "authkeys:3: key 1: given twice (first at line 2)"
        );
        assert_eq!(
            one_err(&format!("auth 1\nauth 1\n1 sha256 {SECRET}\n")),
            "authkeys:2: auth: given twice (first at line 1); it takes one key number"
        );
        assert_eq!(
            one_err(&format!("auth 1\n1 sha512 {SECRET}\n2 sha256 {SECRET}\n")),
            "authkeys:2: key 1: unknown method: expected crc, md5, sha1 or sha256 (the text is not shown: it may be a secret)"
        );
        assert_eq!(
            one_err(&format!("auth 1\n1 {SECRET}\n")),
            "authkeys:2: key 1: unknown method: expected crc, md5, sha1 or sha256 (the text is not shown: it may be a secret)"
        );
        assert_eq!(
            one_err("auth 1\n1 sha256\n"),
            "authkeys:2: key 1: sha256 needs a secret: `1 sha256 SECRET`"
        );
        assert_eq!(
            one_err("auth 1\n1\n"),
            "authkeys:2: key 1: missing method: expected crc, md5, sha1 or sha256"
        );
        assert_eq!(
            one_err(&format!("auth 1\n1 crc {SECRET}\n")),
            "authkeys:2: key 1: crc takes no secret (heartbeat refuses one too); remove it, or better use sha256 with it"
        );
        assert_eq!(
            run(&format!("auth 16\n16 sha256 {SECRET}\n")).1,
            vec![
                "authkeys:1: auth: `16`: expected a key number from 0 to 15",
                "authkeys:2: key 16: key numbers go from 0 to 15",
            ]
        );
        let (_, e, _) = run(&format!("auth 1\n1 sha256 {SECRET}\n16 sha256 {SECRET}\n"));
        assert_eq!(e, vec!["authkeys:3: key 16: key numbers go from 0 to 15"]);
        assert_eq!(
            one_err(&format!("auth\n1 sha256 {SECRET}\n")),
            "authkeys:1: auth: missing value: expected `auth N`"
        );
        assert_eq!(
            one_err(&format!("auth 1\n1 sha256 {SECRET}\n{SECRET}\n")),
            "authkeys:3: syntax: expected `auth N` or `N METHOD SECRET` (the line is not shown: it may hold a secret)"
        );
    }

    #[test]
    fn placeholder_refused() {
        assert_eq!(
            one_err(&format!("auth 1\n1 sha256 {PLACEHOLDER_SECRET}\n")),
            "authkeys:2: key 1: the example's placeholder secret: generate one with `openssl rand -hex 32`"
        );
    }

    #[test]
    fn secrets_never_printed() {
        let broken = [
            format!("{SECRET}\n"),
            format!("auth 1\n1 {SECRET}\n"),
            format!("auth 1\n1 crc {SECRET}\n"),
            format!("auth 1\n1 sha1 {SECRET}\n1 sha1 {SECRET}\n"),
            format!("auth 2\n1 md5 {SECRET} {SECRET}\n"),
            format!("auth x\n-1 sha1 {SECRET}\nsha1 {SECRET}\n"),
        ];
        for text in &broken {
            let (k, e, w) = run(text);
            for m in e.iter().chain(&w) {
                assert!(!m.contains(SECRET), "{m}");
            }
            assert!(!format!("{k:?}").contains(SECRET));
        }
    }

    /// Issue 14, finding 8: the receive set follows the signing key's
    /// strength; weaker keys are listed in a warning at their line.
    #[test]
    fn weaker_keys_are_not_accepted_unless_asked() {
        let text = format!("auth 1\n1 sha256 {SECRET}\n2 crc\n3 md5 {SECRET}\n4 sha1 {SECRET}\n");
        let (k, e, w) = run(&text);
        assert!(e.is_empty(), "{e:?}");
        let k = k.unwrap();
        let ids = |s: &AuthKeys| s.keys.iter().map(|k| k.id).collect::<Vec<_>>();
        assert_eq!(ids(&receive_keys(&k, false)), [1]);
        assert_eq!(ids(&receive_keys(&k, true)), [1, 2, 3, 4]);
        for (line, m) in [(3, "crc"), (4, "md5"), (5, "sha1")] {
            let want = format!(
                "authkeys:{line}: key {}: {m} is weaker than the signing key's sha256",
                line - 1
            );
            assert!(w.iter().any(|w| w.starts_with(&want)), "{want}: {w:?}");
        }
        // Signing with sha1: sha1 and sha256 are accepted.
        let text = format!("auth 4\n1 sha256 {SECRET}\n2 crc\n3 md5 {SECRET}\n4 sha1 {SECRET}\n");
        let (k, _, _) = run(&text);
        assert_eq!(ids(&receive_keys(&k.unwrap(), false)), [1, 4]);
        // Signing with crc: everything (and the crc warning says why not).
        let (k, _, w) = run("auth 2\n2 crc\n");
        assert_eq!(ids(&receive_keys(&k.unwrap(), false)), [2]);
        assert!(
            w.iter().any(|w| w.contains("crc authenticates nothing")),
            "{w:?}"
        );
    }
}
