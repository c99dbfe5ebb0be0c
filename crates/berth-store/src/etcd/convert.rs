//! Translation between the store's vocabulary and etcd's: keys gain and lose the namespace
//! prefix, ranges become etcd's `[key, range_end)`, transactions and their responses map
//! operation for operation.

use etcd_client::{
    Compare as EtcdCompare, CompareOp, DeleteOptions, EventType, GetOptions, PutOptions, SortOrder, SortTarget,
    Txn as EtcdTxn, TxnOp, TxnOpResponse,
};

use crate::{CmpOp, Compare, Event, EventKind, KeyRange, KeyValue, Op, OpResponse, StoreError, Txn, TxnResponse};

/// The etcd key of a store key.
fn key(namespace: &str, key: &str) -> Vec<u8> {
    format!("{namespace}{key}").into_bytes()
}

/// etcd's exclusive range end for a store range end (`""`: the end of the namespace).
pub fn namespaced_end(namespace: &str, end: &str) -> Vec<u8> {
    if end.is_empty() {
        let end = crate::prefix_end(namespace);
        // A namespace of only 0x7f bytes has no bound: etcd's "\0" means every key after.
        if end.is_empty() { vec![0] } else { end.into_bytes() }
    } else {
        key(namespace, end)
    }
}

/// The store record of an etcd key-value.
pub fn from_etcd(namespace: &str, kv: &etcd_client::KeyValue) -> Result<KeyValue, StoreError> {
    let full = std::str::from_utf8(kv.key()).map_err(|_| StoreError::Corrupt("a key is not UTF-8".into()))?;
    let key = full
        .strip_prefix(namespace)
        .ok_or_else(|| StoreError::Corrupt(format!("key {full} is outside the namespace {namespace}")))?;
    Ok(KeyValue {
        key: key.to_string(),
        value: kv.value().to_vec(),
        create_revision: kv.create_revision() as u64,
        mod_revision: kv.mod_revision() as u64,
        version: kv.version() as u64,
    })
}

/// A watch event; a delete carries the deleting revision, like the embedded store's.
pub fn event(namespace: &str, e: &etcd_client::Event) -> Result<Event, StoreError> {
    let kv = e.kv().ok_or_else(|| StoreError::Corrupt("a watch event without a key".into()))?;
    let mut kv = from_etcd(namespace, kv)?;
    let kind = match e.event_type() {
        EventType::Put => EventKind::Put,
        EventType::Delete => {
            kv.value.clear();
            (kv.create_revision, kv.version) = (0, 0);
            EventKind::Delete
        }
    };
    Ok(Event { kind, kv })
}

fn op(cmp: CmpOp) -> CompareOp {
    match cmp {
        CmpOp::Equal => CompareOp::Equal,
        CmpOp::NotEqual => CompareOp::NotEqual,
        CmpOp::Less => CompareOp::Less,
        CmpOp::Greater => CompareOp::Greater,
    }
}

fn compare(namespace: &str, c: &Compare) -> EtcdCompare {
    let k = key(namespace, c.key());
    match c {
        Compare::Version(_, cmp, v) => EtcdCompare::version(k, op(*cmp), *v as i64),
        Compare::CreateRevision(_, cmp, v) => EtcdCompare::create_revision(k, op(*cmp), *v as i64),
        Compare::ModRevision(_, cmp, v) => EtcdCompare::mod_revision(k, op(*cmp), *v as i64),
        Compare::Value(_, cmp, v) => EtcdCompare::value(k, op(*cmp), v.clone()),
        Compare::PrefixModRevision(prefix, cmp, v) => EtcdCompare::mod_revision(k, op(*cmp), *v as i64)
            .with_range(namespaced_end(namespace, &crate::prefix_end(prefix))),
    }
}

/// The etcd range end of a store range, or `None` for a single key.
fn range_end(namespace: &str, range: &KeyRange) -> Option<Vec<u8>> {
    range.end.as_ref().map(|end| namespaced_end(namespace, end))
}

fn txn_op(namespace: &str, o: &Op) -> TxnOp {
    match o {
        Op::Put { key: k, value } => {
            TxnOp::put(key(namespace, k), value.clone(), Some(PutOptions::new().with_prev_key()))
        }
        Op::Delete { range } => {
            let mut options = DeleteOptions::new().with_prev_key();
            if let Some(end) = range_end(namespace, range) {
                options = options.with_range(end);
            }
            TxnOp::delete(key(namespace, &range.start), Some(options))
        }
        Op::Get { range } => {
            let mut options = GetOptions::new().with_limit(range.limit as i64);
            if let Some(end) = range_end(namespace, range) {
                options = options.with_range(end);
            }
            TxnOp::get(key(namespace, &range.start), Some(options))
        }
    }
}

/// The etcd transaction of a store transaction. Its failure branch ends with one read per
/// compare (the key's revisions, or the newest revision under a prefix): when the compares
/// fail, those tell how far the mirror must catch up before a retry can read what won.
pub fn to_etcd_txn(namespace: &str, txn: &Txn) -> EtcdTxn {
    let ops = |ops: &[Op]| ops.iter().map(|o| txn_op(namespace, o)).collect::<Vec<_>>();
    let mut failure = ops(&txn.failure);
    failure.extend(txn.compares.iter().map(|c| probe(namespace, c)));
    EtcdTxn::new()
        .when(txn.compares.iter().map(|c| compare(namespace, c)).collect::<Vec<_>>())
        .and_then(ops(&txn.success))
        .or_else(failure)
}

fn probe(namespace: &str, c: &Compare) -> TxnOp {
    let options = GetOptions::new().with_keys_only();
    let options = match c {
        Compare::PrefixModRevision(prefix, ..) => options
            .with_range(namespaced_end(namespace, &crate::prefix_end(prefix)))
            .with_sort(SortTarget::Mod, SortOrder::Descend)
            .with_limit(1),
        _ => options,
    };
    TxnOp::get(key(namespace, c.key()), Some(options))
}

/// What the probes of a failed transaction found: the mirror is current enough for a retry
/// once it has applied `newest` and forgotten each of `absent` (or seen it made again after
/// `at`).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Probed {
    pub newest: u64,
    pub absent: Vec<String>,
    pub at: u64,
}

/// The store response of an etcd transaction made by [`to_etcd_txn`] from `txn`, and, when its
/// compares failed, what the probes found.
pub fn txn_response(
    namespace: &str,
    txn: &Txn,
    response: &etcd_client::TxnResponse,
) -> Result<(TxnResponse, Probed), StoreError> {
    let all = |kvs: &[etcd_client::KeyValue]| -> Result<Vec<KeyValue>, StoreError> {
        kvs.iter().map(|kv| from_etcd(namespace, kv)).collect()
    };
    let responses = response
        .op_responses()
        .iter()
        .map(|r| {
            Ok(match r {
                TxnOpResponse::Put(p) => {
                    OpResponse::Put { prev: p.prev_key().map(|kv| from_etcd(namespace, kv)).transpose()? }
                }
                TxnOpResponse::Delete(d) => OpResponse::Delete { deleted: all(d.prev_kvs())? },
                TxnOpResponse::Get(g) => OpResponse::Get { kvs: all(g.kvs())? },
                TxnOpResponse::Txn(_) => return Err(StoreError::Corrupt("a nested transaction response".into())),
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    let revision = response.header().map_or(0, |h| h.revision() as u64);
    let mut responses = responses;
    let mut probed = Probed { at: revision, ..Probed::default() };
    if !response.succeeded() {
        let probes = responses.split_off(txn.failure.len().min(responses.len()));
        for (c, found) in txn.compares.iter().zip(probes) {
            let OpResponse::Get { kvs } = found else { continue };
            match (c, kvs.first()) {
                (_, Some(kv)) => probed.newest = probed.newest.max(kv.mod_revision),
                (Compare::PrefixModRevision(..), None) => {}
                (_, None) => probed.absent.push(c.key().to_string()),
            }
        }
    }
    Ok((TxnResponse { succeeded: response.succeeded(), revision, responses }, probed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_stay_inside_the_namespace() {
        assert_eq!(namespaced_end("berth/", ""), b"berth0".to_vec());
        assert_eq!(namespaced_end("berth/", "tasks0"), b"berth/tasks0".to_vec());
        let all = KeyRange::prefix("");
        assert_eq!(range_end("b/", &all), Some(b"b0".to_vec()));
        assert_eq!(range_end("b/", &KeyRange { start: "k".into(), end: None, limit: 0 }), None);
    }
}
