//! The byte layout of the embedded backend's records: a value with its revision header.

use crate::{KeyValue, StoreError};

const HEADER: usize = 24;

/// `create_revision | mod_revision | version | value`, integers little-endian.
pub fn encode_value(create: u64, modified: u64, version: u64, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + value.len());
    out.extend_from_slice(&create.to_le_bytes());
    out.extend_from_slice(&modified.to_le_bytes());
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(value);
    out
}

pub fn decode_value(key: &str, raw: &[u8]) -> Result<KeyValue, StoreError> {
    if raw.len() < HEADER {
        return Err(StoreError::Corrupt(format!("value of {key} is {} bytes", raw.len())));
    }
    let word = |i: usize| u64::from_le_bytes(raw[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
    Ok(KeyValue {
        key: key.to_string(),
        create_revision: word(0),
        mod_revision: word(1),
        version: word(2),
        value: raw[HEADER..].to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_and_short_ones_are_corrupt_not_panics() {
        let kv = decode_value("a/b", &encode_value(3, 7, 2, b"xyz")).unwrap();
        assert_eq!((kv.key.as_str(), kv.create_revision, kv.mod_revision, kv.version), ("a/b", 3, 7, 2));
        assert_eq!(kv.value, b"xyz");
        assert!(decode_value("k", &[0; 23]).is_err());
        assert_eq!(decode_value("k", &[0; 24]).unwrap().value, Vec::<u8>::new());
    }
}
