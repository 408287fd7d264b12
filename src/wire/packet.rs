//! Encoding and decoding of the datagram drawn in the module docs.

use super::auth::{mac, verify, Purpose};
use super::{AuthKeys, Message, WireError, HEADER_LEN, MAGIC, MAX_DATAGRAM, MAX_NAME, VERSION};
use bincode::Options;

/// The one bincode configuration of the body, for both directions: varint
/// integers, little endian, trailing bytes rejected, and nothing larger than a
/// datagram ever read or allocated.
fn body_options() -> impl Options {
    bincode::DefaultOptions::new().with_limit(MAX_DATAGRAM as u64)
}

fn check_names(msg: &Message) -> Result<(), WireError> {
    if msg.cluster.len() > MAX_NAME || msg.from.len() > MAX_NAME {
        return Err(WireError::NameTooLong);
    }
    Ok(())
}

/// Encodes and signs `msg` with the `auth N` key.
pub fn encode(msg: &Message, keys: &AuthKeys) -> Result<Vec<u8>, WireError> {
    check_names(msg)?;
    let key = keys.signing().ok_or(WireError::UnknownKey(keys.active))?;
    let body = body_options().serialize(msg).map_err(|e| match *e {
        bincode::ErrorKind::SizeLimit => WireError::Oversize {
            len: MAX_DATAGRAM + 1,
            max: MAX_DATAGRAM,
        },
        other => WireError::Body(other.to_string()),
    })?;
    let len = HEADER_LEN + body.len() + key.method.mac_len();
    if len > MAX_DATAGRAM {
        return Err(WireError::Oversize {
            len,
            max: MAX_DATAGRAM,
        });
    }
    // body.len() < MAX_DATAGRAM < u16::MAX, checked just above.
    let body_len = body.len() as u16;
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    out.push(key.id);
    out.push(key.method.wire_id());
    out.extend_from_slice(&body_len.to_be_bytes());
    out.extend_from_slice(&body);
    let tag = mac(key, Purpose::Datagram, &out);
    out.extend_from_slice(&tag);
    debug_assert_eq!(out.len(), len);
    Ok(out)
}

/// Checks and decodes one datagram. Never panics, never allocates more than
/// [`super::MAX_DATAGRAM`] for any input.
pub fn decode(bytes: &[u8], keys: &AuthKeys) -> Result<Message, WireError> {
    if bytes.len() > MAX_DATAGRAM {
        return Err(WireError::Oversize {
            len: bytes.len(),
            max: MAX_DATAGRAM,
        });
    }
    if bytes.len() < HEADER_LEN {
        return Err(WireError::Malformed("shorter than the header"));
    }
    if bytes[0..3] != MAGIC {
        return Err(WireError::Malformed("bad magic"));
    }
    if bytes[3] != VERSION {
        return Err(WireError::Malformed("unsupported version"));
    }
    let key_id = bytes[4];
    let key = keys.get(key_id).ok_or(WireError::UnknownKey(key_id))?;
    let method = bytes[5];
    if method != key.method.wire_id() {
        return Err(WireError::MethodMismatch {
            id: key_id,
            expected: key.method,
            got: method,
        });
    }
    let body_len = u16::from_be_bytes([bytes[6], bytes[7]]) as usize;
    let mac_len = key.method.mac_len();
    if bytes.len() != HEADER_LEN + body_len + mac_len {
        return Err(WireError::Malformed("length does not match the header"));
    }
    let (signed, tag) = bytes.split_at(HEADER_LEN + body_len);
    if !verify(key, Purpose::Datagram, signed, tag) {
        return Err(WireError::BadMac);
    }
    let msg: Message = body_options()
        .deserialize(&signed[HEADER_LEN..])
        .map_err(|e| WireError::Body(e.to_string()))?;
    check_names(&msg)?;
    Ok(msg)
}
