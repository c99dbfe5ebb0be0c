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

/// [`berth_store::retry`] with [`MAX_ATTEMPTS`]: the loop every change of the domain and the
/// handlers runs in.
pub async fn retry<T, E, F, Fut>(attempt: F) -> Result<T, E>
where
    E: From<berth_store::Contention>,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, E>>,
{
    berth_store::retry(MAX_ATTEMPTS, attempt).await
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
