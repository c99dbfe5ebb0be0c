//! `CreatorRequestId` and `UpdaterRequestId`: a request retried with the same id changes nothing
//! again and answers what the first one did; the id reused for a different request is
//! `DuplicateRequest`. What an id produced is a key of its own (per kind of request), created
//! with a compare on its absence in the transaction of the change, and removed with the
//! operation it names (or, for a service, with the service).

use berth_store::{Compare, Op};
use serde::{Deserialize, Serialize};

use super::DiscoveryError;
use crate::Region;
use crate::error::ControlResult;
use crate::store::{decode, encode};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestRecord {
    /// The request's parameters, as [`fingerprint`] wrote them.
    pub fingerprint: String,
    /// The operation it started, if any.
    #[serde(default)]
    pub operation_id: Option<String>,
    /// The resource it made or changed.
    pub target: String,
}

/// The parameters of a request, for comparing a retry with the first request.
pub fn fingerprint<T: Serialize>(parameters: &T) -> String {
    serde_json::to_string(parameters).expect("request parameters serialise")
}

/// A token's key, and what it produced before: `None` when it is new. The same token with
/// other parameters is [`DiscoveryError::DuplicateRequest`].
pub fn replay(
    region: &Region<'_>,
    kind: &str,
    token: &str,
    fingerprint: &str,
) -> ControlResult<(String, Option<RequestRecord>)> {
    let key = region.keys.sd_request(kind, token);
    let Some(kv) = region.store().get(&key)? else { return Ok((key, None)) };
    let record: RequestRecord = decode(&kv)?;
    if record.fingerprint != fingerprint {
        let operation_id = record.operation_id.clone().unwrap_or_else(|| record.target.clone());
        return Err(DiscoveryError::DuplicateRequest { token: token.to_string(), operation_id }.into());
    }
    Ok((key, Some(record)))
}

/// The compare and write that record a token's first use.
pub fn record_ops(key: &str, record: &RequestRecord) -> (Compare, Op) {
    (Compare::absent(key), Op::put(key, encode(record)))
}
