//! The VPC model of a region, as an AWS account has it: VPCs, their subnets, security groups
//! with their rules, and the network interfaces (ENIs) of awsvpc tasks, each a typed record
//! under its own store key (`keys.rs`), plus one key per address given out in a subnet, so two
//! interfaces never hold one address.
//!
//! The EC2 handlers (`berth-api/src/ec2/`) read and change these records through the functions
//! here; the task side allocates and releases interfaces with [`allocate_eni_ops`] and
//! [`release_eni_ops`] inside its own transactions, and reads the rules to enforce with
//! [`effective_rules`]. A region gets its default VPC, one default subnet per availability
//! zone and the VPC's `default` security group from [`defaults`].

pub mod cidr;
pub mod defaults;
pub mod enis;
pub mod error;
pub mod groups;
pub mod permissions;
pub mod rules;
pub mod subnets;
pub mod tagged;
pub mod tags;
pub mod vpcs;
pub mod zones;

pub use enis::{Eni, EniRecord, EniRequest, allocate_eni_ops, allocate_eni_ops_avoiding, release_eni_ops};
pub use error::{IdKind, VpcError};
pub use rules::{EffectiveRules, Rule, effective_rules};

use berth_store::{KeyRange, KeyValue};
use serde::de::DeserializeOwned;

use crate::Region;
use crate::error::ControlResult;
use crate::store::decode;

/// A record and the key-value it was read from (its revisions guard the change).
#[derive(Debug, Clone)]
pub struct Stored<T> {
    pub kv: KeyValue,
    pub record: T,
}

/// The record at `key`, if any.
pub(crate) fn read<T: DeserializeOwned>(region: &Region<'_>, key: &str) -> ControlResult<Option<Stored<T>>> {
    match region.store().get(key)? {
        Some(kv) => Ok(Some(Stored { record: decode(&kv)?, kv })),
        None => Ok(None),
    }
}

/// Every record under `prefix`, and the store revision they were read at (for
/// [`berth_store::Compare::prefix_unchanged_since`]).
pub(crate) fn read_all<T: DeserializeOwned>(region: &Region<'_>, prefix: &str) -> ControlResult<(u64, Vec<Stored<T>>)> {
    let result = region.store().range(&KeyRange::prefix(prefix))?;
    let records =
        result.kvs.into_iter().map(|kv| Ok(Stored { record: decode(&kv)?, kv })).collect::<ControlResult<_>>()?;
    Ok((result.revision, records))
}

/// The keys under `prefix` and the revision they were read at.
pub(crate) fn keys_under(region: &Region<'_>, prefix: &str) -> ControlResult<(u64, Vec<KeyValue>)> {
    let result = region.store().range(&KeyRange::prefix(prefix))?;
    Ok((result.revision, result.kvs))
}

/// Whether `id` is shaped like an id of `kind`: its prefix, a dash, and 8 or 17 lowercase
/// hex digits (EC2's short and long ids).
pub fn check_id(kind: IdKind, id: &str) -> Result<(), VpcError> {
    let well_formed = id
        .strip_prefix(kind.prefix())
        .and_then(|rest| rest.strip_prefix('-'))
        .is_some_and(|hex| matches!(hex.len(), 8 | 17) && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
    if well_formed { Ok(()) } else { Err(VpcError::Malformed { kind, id: id.to_string() }) }
}

/// The kind of resource an id names, by its prefix.
pub fn kind_of(id: &str) -> Option<IdKind> {
    let prefix = id.split_once('-')?.0;
    [IdKind::Vpc, IdKind::Subnet, IdKind::SecurityGroup, IdKind::NetworkInterface, IdKind::SecurityGroupRule]
        .into_iter()
        .find(|k| k.prefix() == prefix)
}

#[cfg(test)]
pub(crate) mod testing;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked_by_shape() {
        assert!(check_id(IdKind::Subnet, "subnet-0123456789abcdef0").is_ok());
        assert!(check_id(IdKind::Subnet, "subnet-0123abcd").is_ok());
        for bad in ["subnet-xyz", "sg-0123456789abcdef0", "subnet-0123456789ABCDEF0", "subnet-", "subnet0123abcd"] {
            assert!(check_id(IdKind::Subnet, bad).is_err(), "{bad}");
        }
        assert_eq!(kind_of("sgr-0123456789abcdef0"), Some(IdKind::SecurityGroupRule));
        assert_eq!(kind_of("sg-0123456789abcdef0"), Some(IdKind::SecurityGroup));
        assert_eq!(kind_of("i-0123456789abcdef0"), None);
    }
}
