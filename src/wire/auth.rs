//! heartbeat's authkeys methods: `crc` (CRC32, no secret), `md5` and `sha1`
//! (HMAC, as heartbeat computes them), and hbd's `sha256` (HMAC-SHA256, recommended).

use hmac::{EagerHash, Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuthMethod {
    Crc,
    Md5,
    Sha1,
    Sha256,
}

impl AuthMethod {
    /// The method byte in the datagram header.
    pub fn wire_id(self) -> u8 {
        match self {
            AuthMethod::Crc => 1,
            AuthMethod::Md5 => 2,
            AuthMethod::Sha1 => 3,
            AuthMethod::Sha256 => 4,
        }
    }

    /// Bytes of MAC this method appends.
    pub fn mac_len(self) -> usize {
        match self {
            AuthMethod::Crc => 4,
            AuthMethod::Md5 => 16,
            AuthMethod::Sha1 => 20,
            AuthMethod::Sha256 => 32,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::Crc => "crc",
            AuthMethod::Md5 => "md5",
            AuthMethod::Sha1 => "sha1",
            AuthMethod::Sha256 => "sha256",
        }
    }
}

#[derive(Clone, PartialEq, Eq)]
pub struct AuthKey {
    /// The number in authkeys (`auth N`, `N method key`).
    pub id: u8,
    pub method: AuthMethod,
    /// The secret; empty for `crc`.
    pub secret: Vec<u8>,
}

impl std::fmt::Debug for AuthKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        f.debug_struct("AuthKey")
            .field("id", &self.id)
            .field("method", &self.method)
            .finish_non_exhaustive()
    }
}

/// The parsed authkeys file: every key is accepted on receive (rollover), the
/// `auth N` key signs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthKeys {
    pub active: u8,
    pub keys: Vec<AuthKey>,
}

impl AuthKeys {
    /// A single-key set, handy for tests and tools.
    pub fn single(id: u8, method: AuthMethod, secret: &[u8]) -> Self {
        AuthKeys {
            active: id,
            keys: vec![AuthKey {
                id,
                method,
                secret: secret.to_vec(),
            }],
        }
    }

    pub fn get(&self, id: u8) -> Option<&AuthKey> {
        self.keys.iter().find(|k| k.id == id)
    }

    /// The signing key. Config validation guarantees it exists.
    pub fn signing(&self) -> Option<&AuthKey> {
        self.get(self.active)
    }
}

/// MAC of `data` under `key`: `method.mac_len()` bytes.
///
/// `crc` is the CRC32 of `data`, big-endian, without the secret: it only
/// catches corruption. The others are HMACs keyed with the secret.
pub fn mac(key: &AuthKey, data: &[u8]) -> Vec<u8> {
    match key.method {
        AuthMethod::Crc => crc32fast::hash(data).to_be_bytes().to_vec(),
        AuthMethod::Md5 => hmac_tag::<md5::Md5>(&key.secret, data),
        AuthMethod::Sha1 => hmac_tag::<sha1::Sha1>(&key.secret, data),
        AuthMethod::Sha256 => hmac_tag::<sha2::Sha256>(&key.secret, data),
    }
}

/// Constant-time check of `tag` against the MAC of `data` under `key`.
pub fn verify(key: &AuthKey, data: &[u8], tag: &[u8]) -> bool {
    match key.method {
        AuthMethod::Crc => {
            // No secret, so nothing to leak through timing; compare anyway
            // without an early exit.
            let want = crc32fast::hash(data).to_be_bytes();
            tag.len() == want.len()
                && want.iter().zip(tag).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
        }
        AuthMethod::Md5 => hmac_verify::<md5::Md5>(&key.secret, data, tag),
        AuthMethod::Sha1 => hmac_verify::<sha1::Sha1>(&key.secret, data, tag),
        AuthMethod::Sha256 => hmac_verify::<sha2::Sha256>(&key.secret, data, tag),
    }
}

fn hmac_new<D: EagerHash>(secret: &[u8]) -> Hmac<D> {
    // HMAC takes keys of any length (long ones are hashed), so this cannot fail.
    <Hmac<D> as KeyInit>::new_from_slice(secret).expect("HMAC accepts any key length")
}

fn hmac_tag<D: EagerHash>(secret: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = hmac_new::<D>(secret);
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

fn hmac_verify<D: EagerHash>(secret: &[u8], data: &[u8], tag: &[u8]) -> bool {
    let mut m = hmac_new::<D>(secret);
    m.update(data);
    m.verify_slice(tag).is_ok()
}
