//! heartbeat's authkeys methods: `crc` (CRC32, no secret), `md5` and `sha1`
//! (HMAC, as heartbeat computes them), and hbd's `sha256` (HMAC-SHA256, recommended).

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
pub fn mac(key: &AuthKey, data: &[u8]) -> Vec<u8> {
    todo!("wire helper")
}

/// Constant-time check of `tag` against the MAC of `data` under `key`.
pub fn verify(key: &AuthKey, data: &[u8], tag: &[u8]) -> bool {
    todo!("wire helper")
}
