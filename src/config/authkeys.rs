//! heartbeat's `authkeys`.
//!
//! ```text
//! auth 1
//! 1 sha256 0f3c...
//! 2 sha1 old-secret
//! ```
//!
//! `auth N` names the key that signs; every listed key is accepted on
//! receive. Secrets never appear in errors or warnings.

use super::{ConfigError, ConfigWarning};
use crate::wire::{AuthKey, AuthKeys, AuthMethod};
use std::collections::HashMap;
use std::path::Path;

/// Highest key number: heartbeat keeps `MAXAUTH` (16) keys, numbered 0 to 15.
pub const MAX_KEY_ID: u8 = 15;

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
                result = Some(AuthKeys { active, keys });
            } else {
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
