//! Encoding and decoding of the datagram drawn in the module docs.

use super::{AuthKeys, Message, WireError};

/// Encodes and signs `msg` with the `auth N` key.
pub fn encode(msg: &Message, keys: &AuthKeys) -> Result<Vec<u8>, WireError> {
    todo!("wire helper")
}

/// Checks and decodes one datagram. Never panics, never allocates more than
/// [`super::MAX_DATAGRAM`] for any input.
pub fn decode(bytes: &[u8], keys: &AuthKeys) -> Result<Message, WireError> {
    todo!("wire helper")
}
