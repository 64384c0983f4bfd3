//! Encoding of typed keys and values: keys with the order-preserving [`crate::keycodec`],
//! values with `postcard` (compact, maintained, serde-based).

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Error, Result, keycodec};

/// Encodes a key so that byte order follows the key type's order.
pub fn encode_key<K: Serialize + ?Sized>(key: &K) -> Result<Vec<u8>> {
    keycodec::encode(key).map_err(|e| Error::Encode {
        what: "key",
        reason: e.to_string(),
    })
}

/// Encodes a key as a byte prefix (a string prefix matches longer strings).
pub fn encode_key_prefix<K: Serialize + ?Sized>(key: &K) -> Result<Vec<u8>> {
    keycodec::encode_prefix(key).map_err(|e| Error::Encode {
        what: "key",
        reason: e.to_string(),
    })
}

/// Decodes a key; a key of another type is [`Error::Decode`].
pub fn decode_key<K: DeserializeOwned>(bytes: &[u8]) -> Result<K> {
    keycodec::decode(bytes).map_err(|e| Error::Decode {
        what: "key",
        type_name: std::any::type_name::<K>(),
        reason: e.to_string(),
    })
}

/// Encodes a value.
pub fn encode_value<V: Serialize + ?Sized>(value: &V) -> Result<Vec<u8>> {
    postcard::to_allocvec(value).map_err(|e| Error::Encode {
        what: "value",
        reason: e.to_string(),
    })
}

/// Decodes a value. Bytes left over mean the value was written as another type: that is an
/// [`Error::Decode`] too, not a silent partial read.
pub fn decode_value<V: DeserializeOwned>(bytes: &[u8]) -> Result<V> {
    let err = |reason: String| Error::Decode {
        what: "value",
        type_name: std::any::type_name::<V>(),
        reason,
    };
    match postcard::take_from_bytes::<V>(bytes) {
        Ok((v, [])) => Ok(v),
        Ok((_, rest)) => Err(err(format!("{} bytes left over", rest.len()))),
        Err(e) => Err(err(e.to_string())),
    }
}
