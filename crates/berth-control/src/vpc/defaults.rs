//! What an AWS account finds in every region: a default VPC (its block set by `--vpc-cidr`,
//! 172.31.0.0/16 unless told otherwise), its `default` security group, and one default
//! subnet per availability zone (the first free /20 of a /16, in the order zones appear).
//!
//! `berth up` and `berth server` make them for the installation's region at start; any other
//! region gets them on first use of its EC2 API, and a zone that appears later (an agent
//! registering in it) gets its default subnet on the next EC2 request of its region. All of
//! it is idempotent: markers written in the same transactions (`Keys::default_vpc`,
//! `Keys::default_subnet`) say what was made, so a restart, or two servers at once, make
//! nothing twice — and a default VPC or subnet the user deleted is not made again, as on AWS.

use berth_store::{Compare, Op, StoreExt, Txn};
use ipnet::Ipv4Net;

use super::subnets::{self, Block, NewSubnet};
use super::vpcs::{self, VpcRecord};
use super::{VpcError, cidr, read, zones};
use crate::error::ControlResult;
use crate::keys::DEFAULT_VPC_CIDR;
use crate::store::retry;
use crate::{Control, Region};

/// The default VPC's block unless `--vpc-cidr` says otherwise (AWS's).
pub const DEFAULT_CIDR: &str = "172.31.0.0/16";

fn fallback() -> Ipv4Net {
    cidr::parse(DEFAULT_CIDR).expect("the default block parses")
}

/// The block default VPCs get: as configured at start, else [`DEFAULT_CIDR`].
pub fn configured_cidr(control: &Control) -> ControlResult<Ipv4Net> {
    let Some(kv) = control.store.get(DEFAULT_VPC_CIDR)? else { return Ok(fallback()) };
    let text = String::from_utf8_lossy(&kv.value);
    cidr::parse(&text)
        .ok_or_else(|| crate::ControlError::Corrupt { key: kv.key.clone(), reason: format!("not a block: {text}") })
}

/// Records the block default VPCs get from now on (`--vpc-cidr`), if one was given.
pub async fn configure(control: &Control, net: Option<Ipv4Net>) -> ControlResult<Ipv4Net> {
    let Some(net) = net else { return configured_cidr(control) };
    vpcs::check_cidr(&net)?;
    if configured_cidr(control)? != net || control.store.get(DEFAULT_VPC_CIDR)?.is_none() {
        control.store.put(DEFAULT_VPC_CIDR, net.to_string().into_bytes()).await?;
    }
    Ok(net)
}

/// The region's default VPC, if it has one (made and not deleted).
pub fn default_vpc(region: &Region<'_>) -> ControlResult<Option<VpcRecord>> {
    let Some(marker) = region.store().get(&region.keys.default_vpc())? else { return Ok(None) };
    let id = String::from_utf8_lossy(&marker.value).into_owned();
    Ok(read::<VpcRecord>(region, &region.keys.vpc(&id))?.map(|s| s.record))
}

/// Makes the region's default VPC and its default group unless they were made before.
async fn ensure_vpc(region: &Region<'_>) -> ControlResult<Option<VpcRecord>> {
    let net = configured_cidr(region.control)?;
    retry(|| async {
        if region.store().get(&region.keys.default_vpc())?.is_some() {
            return Ok(Some(default_vpc(region)?));
        }
        let (vpc, _, mut compares, mut ops) = vpcs::new_vpc(region, net, true, Vec::new());
        let marker = region.keys.default_vpc();
        compares.push(Compare::absent(&marker));
        ops.push(Op::put(&marker, vpc.id.clone().into_bytes()));
        let done = region.store().txn(Txn::new().when(compares).and_then(ops)).await?.succeeded;
        if done {
            tracing::info!(region = %region.name, vpc = %vpc.id, cidr = %vpc.cidr, "made the default VPC");
        }
        Ok(done.then_some(Some(vpc)))
    })
    .await
}

/// Makes a default subnet of `vpc` for every zone of the region that has none yet.
async fn ensure_subnets(region: &Region<'_>, vpc: &VpcRecord) -> ControlResult<()> {
    let made = region.store().list(&region.keys.default_subnet(&vpc.id, ""))?;
    for zone in zones::zone_names(region)? {
        let marker = region.keys.default_subnet(&vpc.id, &zone);
        if made.iter().any(|kv| kv.key == marker) {
            continue;
        }
        let new = NewSubnet {
            vpc_id: &vpc.id,
            block: Block::Carve,
            zone: &zone,
            default_for_az: true,
            tags: Vec::new(),
            marker: Some(marker.clone()),
        };
        match subnets::insert(region, new).await {
            Ok(Some(subnet)) => {
                tracing::info!(zone = %zone, subnet = %subnet.id, cidr = %subnet.cidr, "made a default subnet")
            }
            Ok(None) => tracing::warn!(zone = %zone, vpc = %vpc.id, "no free block left for the zone's default subnet"),
            // Another server made it meanwhile.
            Err(_) if region.store().get(&marker)?.is_some() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The region's default VPC, group and per-zone subnets, made where missing. Returns the
/// default VPC (`None` once the user deleted it).
pub async fn ensure(region: &Region<'_>) -> ControlResult<Option<VpcRecord>> {
    let vpc = ensure_vpc(region).await?;
    if let Some(vpc) = &vpc {
        ensure_subnets(region, vpc).await?;
    }
    Ok(vpc)
}

/// The default VPC for a request that names none: `VPCIdNotSpecified` when the region has none.
pub fn require_default_vpc(region: &Region<'_>) -> ControlResult<VpcRecord> {
    default_vpc(region)?.ok_or_else(|| VpcError::NoDefaultVpc.into())
}

#[cfg(test)]
mod tests {
    use super::super::testing::TestRegion;
    use super::super::{groups, subnets};
    use super::*;

    #[tokio::test]
    async fn the_default_vpc_is_made_once() {
        let t = TestRegion::new();
        let r = t.region();
        let (a, b) = tokio::join!(ensure(&r), ensure(&r));
        let (a, b) = (a.unwrap().unwrap(), b.unwrap().unwrap());
        assert_eq!(a, b);
        assert_eq!((a.cidr.to_string().as_str(), a.is_default), ("172.31.0.0/16", true));
        assert_eq!(ensure(&r).await.unwrap().unwrap(), a);
        assert_eq!(vpcs::list(&r).unwrap().len(), 1);
        let groups = groups::list(&r).unwrap();
        assert_eq!(groups.len(), 1);
        assert_eq!((groups[0].id.as_str(), groups[0].name.as_str()), (a.default_group_id.as_str(), "default"));
        let subnets = subnets::list(&r).unwrap();
        assert_eq!(subnets.len(), 1, "one zone: the local agent's");
        let s = &subnets[0];
        assert_eq!(
            (s.zone.as_str(), s.cidr.to_string().as_str(), s.default_for_az),
            ("us-east-1a", "172.31.0.0/20", true)
        );
    }

    #[tokio::test]
    async fn the_configured_block_is_used_and_deleted_defaults_stay_deleted() {
        let t = TestRegion::new();
        let net = cidr::parse("10.20.0.0/16").unwrap();
        assert_eq!(configure(&t.control, Some(net)).await.unwrap(), net);
        assert!(configure(&t.control, Some(cidr::parse("10.0.0.0/8").unwrap())).await.is_err());
        let other = t.control.region("eu-west-1");
        let vpc = ensure(&other).await.unwrap().unwrap();
        assert_eq!(vpc.cidr, net);
        let subnet = subnets::list(&other).unwrap().remove(0);
        assert_eq!((subnet.zone.as_str(), subnet.cidr.to_string().as_str()), ("eu-west-1a", "10.20.0.0/20"));
        subnets::delete(&other, &subnet.id).await.unwrap();
        ensure(&other).await.unwrap();
        assert!(subnets::list(&other).unwrap().is_empty(), "a deleted default subnet is not made again");
        vpcs::delete(&other, &vpc.id).await.unwrap();
        assert_eq!(ensure(&other).await.unwrap(), None);
        assert!(vpcs::list(&other).unwrap().is_empty() && groups::list(&other).unwrap().is_empty());
    }
}
