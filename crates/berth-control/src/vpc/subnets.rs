//! Subnets: a block of a VPC (/16 to /28) in one availability zone, overlapping no other
//! subnet of the VPC. Its addresses are given out one store key each (`enis.rs`); AWS keeps
//! the first four and the last back, and so does Berth. A subnet with interfaces in it cannot
//! be deleted.

use std::collections::HashMap;

use berth_store::{CmpOp, Compare, Op, Txn};
use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use super::tags::{self, Tag};
use super::vpcs::{self, VpcRecord};
use super::{IdKind, Stored, VpcError, check_id, cidr, keys_under, read, read_all};
use crate::Region;
use crate::error::ControlResult;
use crate::store::{encode, retry};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubnetRecord {
    /// `subnet-` and 17 hex digits.
    pub id: String,
    pub vpc_id: String,
    pub cidr: Ipv4Net,
    pub zone: String,
    /// The default subnet of its zone (made with the default VPC or when the zone appeared).
    pub default_for_az: bool,
    /// Default subnets give their interfaces a public address, as on AWS.
    pub map_public_ip_on_launch: bool,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

impl SubnetRecord {
    /// How many more addresses the subnet can give out, `used` being given out.
    pub fn available(&self, used: usize) -> u32 {
        cidr::capacity(&self.cidr).saturating_sub(used as u32)
    }
}

/// Where a new subnet's block comes from.
#[derive(Debug, Clone, Copy)]
pub enum Block {
    /// As the request names it.
    Given(Ipv4Net),
    /// The first free block four bits longer than the VPC's (a /20 of a /16), at most /28.
    Carve,
}

/// A subnet by id: `InvalidSubnetID.NotFound` when there is none.
pub fn get(region: &Region<'_>, id: &str) -> ControlResult<Stored<SubnetRecord>> {
    check_id(IdKind::Subnet, id)?;
    read(region, &region.keys.subnet(id))?.ok_or_else(|| VpcError::SubnetNotFound(id.to_string()).into())
}

/// Every subnet of the region, by id.
pub fn list(region: &Region<'_>) -> ControlResult<Vec<SubnetRecord>> {
    Ok(read_all(region, &region.keys.subnets())?.1.into_iter().map(|s| s.record).collect())
}

/// How many addresses each subnet of the region has given out.
pub fn used_counts(region: &Region<'_>) -> ControlResult<HashMap<String, usize>> {
    let prefix = region.keys.all_addresses();
    let mut counts = HashMap::new();
    for kv in keys_under(region, &prefix)?.1 {
        let subnet = kv.key[prefix.len()..].split('/').next().unwrap_or_default().to_string();
        *counts.entry(subnet).or_insert(0) += 1;
    }
    Ok(counts)
}

/// The block a new subnet of `vpc` gets, given the blocks its subnets have.
fn choose(vpc: &VpcRecord, block: Block, taken: &[Ipv4Net]) -> Result<Option<Ipv4Net>, VpcError> {
    match block {
        Block::Given(net) => {
            let fits =
                (cidr::SHORTEST_PREFIX..=cidr::LONGEST_PREFIX).contains(&net.prefix_len()) && vpc.cidr.contains(&net);
            if !fits {
                return Err(VpcError::SubnetRange(net.to_string()));
            }
            if taken.iter().any(|t| cidr::overlaps(t, &net)) {
                return Err(VpcError::SubnetConflict(net.to_string()));
            }
            Ok(Some(net))
        }
        Block::Carve => {
            let prefix = (vpc.cidr.prefix_len() + 4).min(cidr::LONGEST_PREFIX);
            Ok(cidr::carve(&vpc.cidr, prefix, taken))
        }
    }
}

/// What a new subnet is.
pub struct NewSubnet<'a> {
    pub vpc_id: &'a str,
    pub block: Block,
    pub zone: &'a str,
    pub default_for_az: bool,
    pub tags: Vec<Tag>,
    /// A key that must not exist and is written with the subnet (its id as value): a
    /// zone's default-subnet marker.
    pub marker: Option<String>,
}

/// Creates a subnet; `None` when `Block::Carve` finds no free block.
pub async fn insert(region: &Region<'_>, new: NewSubnet<'_>) -> ControlResult<Option<SubnetRecord>> {
    let mut checked = Vec::new();
    tags::set(&mut checked, &new.tags)?;
    retry(|| async {
        let vpc = vpcs::get(region, new.vpc_id)?;
        let (at, subnets) = read_all::<SubnetRecord>(region, &region.keys.subnets())?;
        let taken: Vec<Ipv4Net> =
            subnets.iter().filter(|s| s.record.vpc_id == new.vpc_id).map(|s| s.record.cidr).collect();
        let Some(net) = choose(&vpc.record, new.block, &taken)? else {
            return Ok(Some(None));
        };
        let subnet = SubnetRecord {
            id: region.control.ids.ec2_id("subnet"),
            vpc_id: new.vpc_id.to_string(),
            cidr: net,
            zone: new.zone.to_string(),
            default_for_az: new.default_for_az,
            map_public_ip_on_launch: new.default_for_az,
            tags: checked.clone(),
        };
        let key = region.keys.subnet(&subnet.id);
        let mut compares = vec![
            Compare::absent(&key),
            Compare::CreateRevision(vpc.kv.key.clone(), CmpOp::Equal, vpc.kv.create_revision),
            Compare::prefix_unchanged_since(&region.keys.subnets(), at),
        ];
        let mut ops = vec![Op::put(&key, encode(&subnet))];
        if let Some(marker) = &new.marker {
            compares.push(Compare::absent(marker));
            ops.push(Op::put(marker, subnet.id.clone().into_bytes()));
        }
        let done = region.store().txn(Txn::new().when(compares).and_then(ops)).await?.succeeded;
        Ok(done.then_some(Some(subnet)))
    })
    .await
}

/// DeleteSubnet: only a subnet no interface holds an address of.
pub async fn delete(region: &Region<'_>, id: &str) -> ControlResult<()> {
    retry(|| async {
        let subnet = get(region, id)?;
        let (at, used) = keys_under(region, &region.keys.addresses(id))?;
        if !used.is_empty() {
            return Err(VpcError::SubnetInUse(id.to_string()).into());
        }
        let compares = vec![
            Compare::unchanged(&subnet.kv.key, subnet.kv.mod_revision),
            Compare::prefix_unchanged_since(&region.keys.addresses(id), at),
        ];
        let txn = Txn::new().when(compares).and_then(vec![Op::delete(&subnet.kv.key)]);
        Ok(region.store().txn(txn).await?.succeeded.then_some(()))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::super::testing::TestRegion;
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        cidr::parse(s).unwrap()
    }

    #[tokio::test]
    async fn subnets_stay_inside_their_vpc_and_apart() {
        let t = TestRegion::new();
        let r = t.region();
        let vpc = vpcs::create(&r, net("10.0.0.0/16"), vec![]).await.unwrap();
        let new = |block| NewSubnet {
            vpc_id: &vpc.id,
            block,
            zone: "us-east-1a",
            default_for_az: false,
            tags: vec![],
            marker: None,
        };
        let a = insert(&r, new(Block::Given(net("10.0.1.0/24")))).await.unwrap().unwrap();
        assert_eq!(a.cidr, net("10.0.1.0/24"));
        let e = insert(&r, new(Block::Given(net("10.0.0.0/20")))).await.unwrap_err();
        assert_eq!(e.to_string(), "The CIDR '10.0.0.0/20' conflicts with another subnet");
        for outside in ["10.1.0.0/24", "10.0.0.0/29", "10.0.0.0/15"] {
            let e = insert(&r, new(Block::Given(net(outside)))).await.unwrap_err();
            assert_eq!(e.to_string(), format!("The CIDR '{outside}' is invalid."));
        }
        // Carving skips the /20 the /24 sits in.
        let b = insert(&r, new(Block::Carve)).await.unwrap().unwrap();
        assert_eq!(b.cidr, net("10.0.16.0/20"));
        assert_eq!(list(&r).unwrap().len(), 2);
        delete(&r, &a.id).await.unwrap();
        assert!(matches!(get(&r, &a.id), Err(crate::ControlError::Vpc(VpcError::SubnetNotFound(_)))));
    }
}
