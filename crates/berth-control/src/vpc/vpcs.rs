//! VPCs: an IPv4 block (/16 to /28) its subnets are carved from, and the `default` security
//! group every VPC has from its creation to its deletion. One VPC per region is the default
//! VPC (`defaults.rs`).

use berth_store::{Compare, Op, Txn};
use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use super::groups::{self, SecurityGroupRecord};
use super::tags::{self, Tag};
use super::{Stored, VpcError, cidr, read, read_all};
use crate::Region;
use crate::error::ControlResult;
use crate::store::{encode, retry};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VpcRecord {
    pub id: String,
    pub cidr: Ipv4Net,
    /// The id of the association of the VPC's (one) IPv4 block.
    pub cidr_association_id: String,
    pub is_default: bool,
    pub default_group_id: String,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

/// A VPC by id: `InvalidVpcID.NotFound` when there is none.
pub fn get(region: &Region<'_>, id: &str) -> ControlResult<Stored<VpcRecord>> {
    super::check_id(super::IdKind::Vpc, id)?;
    read(region, &region.keys.vpc(id))?.ok_or_else(|| VpcError::VpcNotFound(id.to_string()).into())
}

/// Every VPC of the region, by id.
pub fn list(region: &Region<'_>) -> ControlResult<Vec<VpcRecord>> {
    Ok(read_all(region, &region.keys.vpcs())?.1.into_iter().map(|s| s.record).collect())
}

/// Whether a block may be a VPC's.
pub fn check_cidr(net: &Ipv4Net) -> Result<(), VpcError> {
    if !(cidr::SHORTEST_PREFIX..=cidr::LONGEST_PREFIX).contains(&net.prefix_len()) {
        return Err(VpcError::VpcRange(net.to_string()));
    }
    Ok(())
}

/// A new VPC with its default security group, and the compares and writes that create them.
pub(crate) fn new_vpc(
    region: &Region<'_>,
    net: Ipv4Net,
    is_default: bool,
    tags: Vec<Tag>,
) -> (VpcRecord, SecurityGroupRecord, Vec<Compare>, Vec<Op>) {
    let ids = &region.control.ids;
    let id = ids.ec2_id("vpc");
    let group = groups::default_group(region, &id);
    let vpc = VpcRecord {
        id: id.clone(),
        cidr: net,
        cidr_association_id: ids.ec2_id("vpc-cidr-assoc"),
        is_default,
        default_group_id: group.id.clone(),
        tags,
    };
    let key = region.keys.vpc(&id);
    let (mut compares, mut ops) = groups::insert_ops(region, &group);
    compares.push(Compare::absent(&key));
    ops.push(Op::put(&key, encode(&vpc)));
    (vpc, group, compares, ops)
}

/// CreateVpc: a VPC of `net` with its default security group.
pub async fn create(region: &Region<'_>, net: Ipv4Net, new_tags: Vec<Tag>) -> ControlResult<VpcRecord> {
    check_cidr(&net)?;
    let mut checked = Vec::new();
    tags::set(&mut checked, &new_tags)?;
    retry(|| async {
        let (vpc, _, compares, ops) = new_vpc(region, net, false, checked.clone());
        let done = region.store().txn(Txn::new().when(compares).and_then(ops)).await?.succeeded;
        Ok(done.then_some(vpc))
    })
    .await
}

/// DeleteVpc: only a VPC without subnets and without security groups of its own (its
/// default group goes with it). The region's default VPC may be deleted too; it is not made
/// again.
pub async fn delete(region: &Region<'_>, id: &str) -> ControlResult<()> {
    retry(|| async {
        let vpc = get(region, id)?;
        let (subnets_at, subnets) = read_all::<super::subnets::SubnetRecord>(region, &region.keys.subnets())?;
        let (groups_at, groups) = read_all::<SecurityGroupRecord>(region, &region.keys.security_groups())?;
        let in_use = subnets.iter().any(|s| s.record.vpc_id == id)
            || groups.iter().any(|g| g.record.vpc_id == id && g.record.id != vpc.record.default_group_id);
        if in_use {
            return Err(VpcError::VpcInUse(id.to_string()).into());
        }
        let mut ops = vec![Op::delete(&vpc.kv.key)];
        if let Some(default) = groups.iter().find(|g| g.record.id == vpc.record.default_group_id) {
            ops.push(Op::delete(&default.kv.key));
            ops.push(Op::delete(&region.keys.group_name(id, &default.record.name)));
        }
        let compares = vec![
            Compare::unchanged(&vpc.kv.key, vpc.kv.mod_revision),
            Compare::prefix_unchanged_since(&region.keys.subnets(), subnets_at),
            Compare::prefix_unchanged_since(&region.keys.security_groups(), groups_at),
        ];
        let done = region.store().txn(Txn::new().when(compares).and_then(ops)).await?.succeeded;
        Ok(done.then_some(()))
    })
    .await
}
