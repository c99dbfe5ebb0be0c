//! The store's vocabulary: key-values, ranges, transactions, events and errors.

use thiserror::Error;

/// A key with its value and revision bookkeeping, as etcd keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: Vec<u8>,
    /// Revision of the transaction that created the key (since its last deletion).
    pub create_revision: u64,
    /// Revision of the last transaction that changed the key.
    pub mod_revision: u64,
    /// How many times the key has been written since creation (1 after the first put).
    pub version: u64,
}

/// A half-open key interval with an optional limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRange {
    pub start: String,
    /// Exclusive end; `None` means just the key `start`.
    pub end: Option<String>,
    /// 0 means no limit.
    pub limit: usize,
}

impl KeyRange {
    /// Every key that begins with `prefix`.
    pub fn prefix(prefix: &str) -> Self {
        KeyRange { start: prefix.to_string(), end: Some(prefix_end(prefix)), limit: 0 }
    }

    /// Keys under `prefix` strictly after `after`, for paging.
    pub fn prefix_after(prefix: &str, after: &str, limit: usize) -> Self {
        let mut start = after.to_string();
        start.push('\0');
        let start = if start.as_str() < prefix { prefix.to_string() } else { start };
        KeyRange { start, end: Some(prefix_end(prefix)), limit }
    }

    pub fn with_limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    pub fn contains(&self, key: &str) -> bool {
        match &self.end {
            None => key == self.start,
            Some(end) => key >= self.start.as_str() && (end.is_empty() || key < end.as_str()),
        }
    }
}

/// The smallest key greater than every key with this prefix ("" means no upper bound).
pub fn prefix_end(prefix: &str) -> String {
    let mut bytes = prefix.as_bytes().to_vec();
    while let Some(last) = bytes.pop() {
        if last < 0x7f {
            bytes.push(last + 1);
            return String::from_utf8(bytes).expect("ascii increment stays utf-8");
        }
    }
    String::new()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeResult {
    pub kvs: Vec<KeyValue>,
    /// True when `limit` cut the result short.
    pub more: bool,
    /// The revision the read was served at.
    pub revision: u64,
}

/// How a compare relates the key's current field to the given value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Equal,
    NotEqual,
    Less,
    Greater,
}

impl CmpOp {
    pub fn holds<T: Ord>(self, actual: T, expected: T) -> bool {
        match self {
            CmpOp::Equal => actual == expected,
            CmpOp::NotEqual => actual != expected,
            CmpOp::Less => actual < expected,
            CmpOp::Greater => actual > expected,
        }
    }
}

/// A guard on one key. A missing key has version, create and mod revision 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Compare {
    Version(String, CmpOp, u64),
    CreateRevision(String, CmpOp, u64),
    ModRevision(String, CmpOp, u64),
    Value(String, CmpOp, Vec<u8>),
    /// Holds when every key under the prefix has a mod revision related to the value by the
    /// operator; with no keys under it, as if one key had mod revision 0 (etcd's compare with
    /// a range end).
    PrefixModRevision(String, CmpOp, u64),
}

impl Compare {
    /// Holds when the key does not exist.
    pub fn absent(key: &str) -> Self {
        Compare::Version(key.to_string(), CmpOp::Equal, 0)
    }

    /// Holds when nothing under `prefix` was written after `revision`.
    pub fn prefix_unchanged_since(prefix: &str, revision: u64) -> Self {
        Compare::PrefixModRevision(prefix.to_string(), CmpOp::Less, revision + 1)
    }

    /// Holds when the key was last written at exactly `revision` (0: does not exist).
    pub fn unchanged(key: &str, revision: u64) -> Self {
        Compare::ModRevision(key.to_string(), CmpOp::Equal, revision)
    }

    /// Evaluates the compare given the key's current record (`current`) or, for a prefix
    /// compare, every record under the prefix (`under_prefix`).
    pub fn holds(&self, current: Option<&KeyValue>, under_prefix: &[KeyValue]) -> bool {
        let field = |f: fn(&KeyValue) -> u64| current.map(f).unwrap_or(0);
        match self {
            Compare::Version(_, op, want) => op.holds(field(|kv| kv.version), *want),
            Compare::CreateRevision(_, op, want) => op.holds(field(|kv| kv.create_revision), *want),
            Compare::ModRevision(_, op, want) => op.holds(field(|kv| kv.mod_revision), *want),
            // A value compare on a missing key fails whatever the operator, as in etcd.
            Compare::Value(_, op, want) => current.is_some_and(|kv| op.holds(kv.value.as_slice(), want.as_slice())),
            Compare::PrefixModRevision(_, op, want) if under_prefix.is_empty() => op.holds(0, *want),
            Compare::PrefixModRevision(_, op, want) => under_prefix.iter().all(|kv| op.holds(kv.mod_revision, *want)),
        }
    }

    pub fn key(&self) -> &str {
        match self {
            Compare::Version(k, ..)
            | Compare::CreateRevision(k, ..)
            | Compare::ModRevision(k, ..)
            | Compare::Value(k, ..)
            | Compare::PrefixModRevision(k, ..) => k,
        }
    }
}

/// One operation inside a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Put { key: String, value: Vec<u8> },
    Delete { range: KeyRange },
    Get { range: KeyRange },
}

impl Op {
    pub fn put(key: &str, value: Vec<u8>) -> Self {
        Op::Put { key: key.to_string(), value }
    }

    pub fn delete(key: &str) -> Self {
        Op::Delete { range: KeyRange { start: key.to_string(), end: None, limit: 0 } }
    }

    pub fn delete_prefix(prefix: &str) -> Self {
        Op::Delete { range: KeyRange::prefix(prefix) }
    }

    pub fn get(key: &str) -> Self {
        Op::Get { range: KeyRange { start: key.to_string(), end: None, limit: 0 } }
    }
}

/// If every compare holds, run `success`, else `failure`; atomically, at one new revision.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Txn {
    pub compares: Vec<Compare>,
    pub success: Vec<Op>,
    pub failure: Vec<Op>,
}

impl Txn {
    pub fn new() -> Self {
        Txn::default()
    }

    pub fn when(mut self, compares: Vec<Compare>) -> Self {
        self.compares = compares;
        self
    }

    pub fn and_then(mut self, ops: Vec<Op>) -> Self {
        self.success = ops;
        self
    }

    pub fn or_else(mut self, ops: Vec<Op>) -> Self {
        self.failure = ops;
        self
    }

    fn writes(ops: &[Op]) -> bool {
        ops.iter().any(|op| !matches!(op, Op::Get { .. }))
    }

    /// Whether any branch writes (a read-only transaction needs no fsync).
    pub fn is_read_only(&self) -> bool {
        !Self::writes(&self.success) && !Self::writes(&self.failure)
    }
}

/// What one operation of a transaction produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpResponse {
    Put { prev: Option<KeyValue> },
    Delete { deleted: Vec<KeyValue> },
    Get { kvs: Vec<KeyValue> },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnResponse {
    pub succeeded: bool,
    /// The store revision after the transaction (unchanged if it wrote nothing).
    pub revision: u64,
    pub responses: Vec<OpResponse>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Put,
    Delete,
}

/// One change seen by a watch. For a delete, `kv` holds the key and the deleting revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    pub kv: KeyValue,
}

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("storage engine: {0}")]
    Engine(String),
    #[error("stored record is corrupt: {0}")]
    Corrupt(String),
    #[error("revision {requested} has been compacted (oldest retained is {oldest})")]
    Compacted { requested: u64, oldest: u64 },
    #[error("store is shutting down")]
    Closed,
}

impl StoreError {
    /// Whether retrying the same call may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Engine(_))
    }
}
