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

/// What a key protects. Each purpose has its own key, derived from the
/// configured secret with HKDF-SHA256 and the purpose's label, and its
/// label first in every MAC input: a tag made for one protocol (a disk
/// handshake answer to a stranger's nonce, say) never verifies in another
/// (as a heartbeat datagram), whatever bytes an attacker chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// The cluster datagram (keepalives, group reports, outdate requests).
    Datagram,
    /// The challenge–response of the replication link (`disk::packet`).
    DiskHandshake,
    /// The base of the replication link's per-connection session keys.
    DiskSession,
}

impl Purpose {
    /// The fixed label: the HKDF `info` of the purpose's key and the first
    /// bytes of every MAC input. NUL-terminated, so no label is a prefix
    /// of another.
    pub fn label(self) -> &'static [u8] {
        match self {
            Purpose::Datagram => b"hbd v3 datagram\0",
            Purpose::DiskHandshake => b"hbd v3 disk handshake\0",
            Purpose::DiskSession => b"hbd v3 disk session\0",
        }
    }
}

/// HKDF salt of every derived key: fixed, so one secret gives the same keys
/// on every node.
const KDF_SALT: &[u8] = b"hbd key derivation";

/// The 32-byte key of `purpose`, derived from the configured secret
/// (HKDF-SHA256: extract with a fixed salt, expand with the purpose's label).
///
/// Remembered per thread for the last few secrets: a datagram's MAC then
/// costs one HMAC, not three.
pub fn derive(key: &AuthKey, purpose: Purpose) -> [u8; 32] {
    use std::cell::RefCell;
    /// (purpose, secret, key) of the last secrets used on this thread.
    type Cache = Vec<(Purpose, Vec<u8>, [u8; 32])>;
    const CACHED: usize = 8;
    thread_local! {
        static DERIVED: RefCell<Cache> = const { RefCell::new(Vec::new()) };
    }
    DERIVED.with(|c| {
        let mut c = c.borrow_mut();
        // Our own configured secrets compared with our own copies: no
        // attacker-chosen bytes, so no timing to protect.
        if let Some((_, _, k)) = c.iter().find(|(p, s, _)| *p == purpose && *s == key.secret) {
            return *k;
        }
        let mut okm = [0u8; 32];
        hkdf::Hkdf::<sha2::Sha256>::new(Some(KDF_SALT), &key.secret)
            .expand(purpose.label(), &mut okm)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        if c.len() == CACHED {
            c.remove(0);
        }
        c.push((purpose, key.secret.clone(), okm));
        okm
    })
}

/// MAC of `data` for `purpose` under `key`: `method.mac_len()` bytes over
/// `label(purpose) || data`, with the purpose's derived key.
///
/// `crc` is the CRC32 of the same input, big-endian, without the secret: it
/// only catches corruption. The others are HMACs.
pub fn mac(key: &AuthKey, purpose: Purpose, data: &[u8]) -> Vec<u8> {
    let k = derive(key, purpose);
    let parts = [purpose.label(), data];
    match key.method {
        AuthMethod::Crc => crc(&parts).to_be_bytes().to_vec(),
        AuthMethod::Md5 => hmac_tag::<md5::Md5>(&k, &parts),
        AuthMethod::Sha1 => hmac_tag::<sha1::Sha1>(&k, &parts),
        AuthMethod::Sha256 => hmac_tag::<sha2::Sha256>(&k, &parts),
    }
}

/// Constant-time check of `tag` against [`mac`] of `data` for `purpose`.
pub fn verify(key: &AuthKey, purpose: Purpose, data: &[u8], tag: &[u8]) -> bool {
    let k = derive(key, purpose);
    let parts = [purpose.label(), data];
    match key.method {
        AuthMethod::Crc => {
            // No secret, so nothing to leak through timing; compare anyway
            // without an early exit.
            let want = crc(&parts).to_be_bytes();
            tag.len() == want.len()
                && want.iter().zip(tag).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
        }
        AuthMethod::Md5 => hmac_verify::<md5::Md5>(&k, &parts, tag),
        AuthMethod::Sha1 => hmac_verify::<sha1::Sha1>(&k, &parts, tag),
        AuthMethod::Sha256 => hmac_verify::<sha2::Sha256>(&k, &parts, tag),
    }
}

fn crc(parts: &[&[u8]]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    for p in parts {
        h.update(p);
    }
    h.finalize()
}

fn hmac_new<D: EagerHash>(secret: &[u8]) -> Hmac<D> {
    // HMAC takes keys of any length (long ones are hashed), so this cannot fail.
    <Hmac<D> as KeyInit>::new_from_slice(secret).expect("HMAC accepts any key length")
}

fn hmac_tag<D: EagerHash>(secret: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut m = hmac_new::<D>(secret);
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().to_vec()
}

fn hmac_verify<D: EagerHash>(secret: &[u8], parts: &[&[u8]], tag: &[u8]) -> bool {
    let mut m = hmac_new::<D>(secret);
    for p in parts {
        m.update(p);
    }
    m.verify_slice(tag).is_ok()
}
