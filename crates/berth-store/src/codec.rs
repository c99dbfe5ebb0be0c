//! Byte layouts of the embedded backend's records: a value with its revision header, and the
//! list of events a revision produced (the watch history).

use crate::{Event, EventKind, KeyValue, StoreError};

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

/// Events as `kind u8 | key_len u32 | key | record_len u32 | record` repeated.
pub fn encode_events(events: &[Event]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in events {
        out.push(match e.kind {
            EventKind::Put => 0,
            EventKind::Delete => 1,
        });
        let record = encode_value(e.kv.create_revision, e.kv.mod_revision, e.kv.version, &e.kv.value);
        out.extend_from_slice(&(e.kv.key.len() as u32).to_le_bytes());
        out.extend_from_slice(e.kv.key.as_bytes());
        out.extend_from_slice(&(record.len() as u32).to_le_bytes());
        out.extend_from_slice(&record);
    }
    out
}

pub fn decode_events(mut raw: &[u8]) -> Result<Vec<Event>, StoreError> {
    let corrupt = || StoreError::Corrupt("event log entry".into());
    let take = |raw: &mut &[u8], n: usize| -> Result<Vec<u8>, StoreError> {
        if raw.len() < n {
            return Err(corrupt());
        }
        let (head, tail) = raw.split_at(n);
        *raw = tail;
        Ok(head.to_vec())
    };
    let mut events = Vec::new();
    while !raw.is_empty() {
        let kind = match take(&mut raw, 1)?[0] {
            0 => EventKind::Put,
            1 => EventKind::Delete,
            _ => return Err(corrupt()),
        };
        let len = u32::from_le_bytes(take(&mut raw, 4)?.try_into().expect("4")) as usize;
        let key = String::from_utf8(take(&mut raw, len)?).map_err(|_| corrupt())?;
        let len = u32::from_le_bytes(take(&mut raw, 4)?.try_into().expect("4")) as usize;
        let kv = decode_value(&key, &take(&mut raw, len)?)?;
        events.push(Event { kind, kv });
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip() {
        let events = vec![
            Event {
                kind: EventKind::Put,
                kv: KeyValue {
                    key: "a/b".into(),
                    value: b"xyz".to_vec(),
                    create_revision: 3,
                    mod_revision: 7,
                    version: 2,
                },
            },
            Event {
                kind: EventKind::Delete,
                kv: KeyValue { key: "c".into(), value: vec![], create_revision: 0, mod_revision: 8, version: 0 },
            },
        ];
        assert_eq!(decode_events(&encode_events(&events)).unwrap(), events);
    }

    #[test]
    fn truncated_records_are_corrupt_not_panics() {
        let raw = encode_events(&[Event {
            kind: EventKind::Put,
            kv: KeyValue { key: "k".into(), value: b"v".to_vec(), create_revision: 1, mod_revision: 1, version: 1 },
        }]);
        for cut in 0..raw.len() {
            if cut == 0 {
                continue;
            }
            assert!(decode_events(&raw[..cut]).is_err(), "cut at {cut}");
        }
        assert!(decode_value("k", &[0; 23]).is_err());
    }
}
