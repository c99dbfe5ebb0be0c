//! Reading and writing records: JSON encoding, decoding with the key in the error, and the
//! one retry loop every compare-and-swap change uses.

use berth_store::KeyValue;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::Region;
use crate::error::{ControlError, ControlResult};

pub type Obj = Map<String, Value>;

/// How many times a change re-reads and retries when a compare-and-swap loses a race.
pub const MAX_ATTEMPTS: usize = 20;

/// A list member, or an empty list when it is absent.
pub fn array(input: &Obj, key: &str) -> Vec<Value> {
    input.get(key).and_then(Value::as_array).cloned().unwrap_or_default()
}

pub fn decode<T: DeserializeOwned>(kv: &KeyValue) -> ControlResult<T> {
    serde_json::from_slice(&kv.value).map_err(|e| ControlError::Corrupt { key: kv.key.clone(), reason: e.to_string() })
}

pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("records serialise")
}

/// Runs `attempt` until it returns `Some` (done) or an error, at most [`MAX_ATTEMPTS`] times:
/// each attempt reads what it needs and writes with a compare-and-swap, returning `None` when
/// the swap lost a race. Losing every time is [`ControlError::Contention`].
///
/// Call it as `retry(move || async move { ... })` with the closure capturing references: each
/// attempt's future owns copies of them, so the whole stays `Send`.
pub async fn retry<T, E, F, Fut>(mut attempt: F) -> Result<T, E>
where
    E: From<ControlError>,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, E>>,
{
    for _ in 0..MAX_ATTEMPTS {
        if let Some(done) = attempt().await? {
            return Ok(done);
        }
    }
    Err(ControlError::Contention.into())
}

/// An ACTIVE cluster's record, or [`ControlError::ClusterNotFound`].
pub fn active_cluster(region: &Region<'_>, name: &str) -> ControlResult<(KeyValue, Obj)> {
    let kv = region.store().get(&region.keys.cluster(name))?.ok_or(ControlError::ClusterNotFound)?;
    let cluster: Obj = decode(&kv)?;
    if cluster.get("status").and_then(Value::as_str) != Some("ACTIVE") {
        return Err(ControlError::ClusterNotFound);
    }
    Ok((kv, cluster))
}
