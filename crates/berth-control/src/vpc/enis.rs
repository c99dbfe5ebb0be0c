//! The network interfaces (ENIs) of awsvpc tasks. The task side allocates one in the same
//! transaction that places the task ([`allocate_eni_ops`] gives the compares and writes) and
//! releases it in the one that stops it ([`release_eni_ops`]). An interface holds one private
//! address of its subnet under a key of its own, created with a compare on its absence: two
//! interfaces never hold one address, whoever races for it.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use berth_store::{CmpOp, Compare, Op};
use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use super::groups;
use super::subnets::{self, SubnetRecord};
use super::tags::Tag;
use super::vpcs;
use super::{IdKind, Stored, VpcError, check_id, cidr, keys_under, read};
use crate::Region;
use crate::error::ControlResult;
use crate::store::encode;

/// What a task asks of the network (ECS `awsvpcConfiguration`).
pub struct EniRequest<'a> {
    /// Subnet ids; at least one, all in one VPC.
    pub subnets: &'a [String],
    /// Group ids; empty = the VPC's default group.
    pub security_groups: &'a [String],
    pub assign_public_ip: bool,
    /// The public addresses of the instance the task is placed on (its agent's
    /// `--public-cidr`): with `assign_public_ip`, the interface gets one of them.
    pub public_pool: Option<Ipv4Net>,
    pub task_arn: &'a str,
}

/// A task's network interface as allocated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Eni {
    /// `eni-` and 17 hex digits.
    pub id: String,
    pub subnet_id: String,
    pub vpc_id: String,
    /// The subnet's block, e.g. `172.31.0.0/20`.
    pub subnet_cidr: String,
    /// The subnet's first host address (`.1`): the bridge's address.
    pub gateway: Ipv4Addr,
    pub private_ip: Ipv4Addr,
    /// `0a:xx:xx:xx:xx:xx`, locally administered.
    pub mac: String,
    /// `ip-172-31-0-5.ec2.internal` (`REGION.compute.internal` outside us-east-1).
    pub private_dns_name: String,
    /// With `assignPublicIp: ENABLED`, an address of the host's public block (1:1 NAT to
    /// `private_ip` on that host: see `docs/networking.md`).
    pub public_ip: Option<Ipv4Addr>,
    pub security_groups: Vec<String>,
}

/// An interface as the store keeps it: the [`Eni`] and what EC2 reports about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EniRecord {
    pub eni: Eni,
    pub zone: String,
    /// The task it is attached to (from allocation to release).
    pub task_arn: String,
    pub attachment_id: String,
    /// Seconds since the epoch.
    pub attached_at: f64,
    /// What the task asked for (`assignPublicIp`).
    pub assign_public_ip: bool,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

impl EniRecord {
    pub fn description(&self) -> String {
        format!("Berth awsvpc interface of {}", self.task_arn)
    }
}

/// An interface by id: `InvalidNetworkInterfaceID.NotFound` when there is none.
pub fn get(region: &Region<'_>, id: &str) -> ControlResult<Stored<EniRecord>> {
    check_id(IdKind::NetworkInterface, id)?;
    read(region, &region.keys.network_interface(id))?
        .ok_or_else(|| VpcError::NetworkInterfaceNotFound(id.to_string()).into())
}

/// Every interface of the region, by id.
pub fn list(region: &Region<'_>) -> ControlResult<Vec<EniRecord>> {
    Ok(super::read_all(region, &region.keys.network_interfaces())?.1.into_iter().map(|s| s.record).collect())
}

/// A locally administered MAC address from the interface id's last ten hex digits.
fn mac_of(id: &str) -> String {
    let hex = id.rsplit('-').next().unwrap_or_default();
    let tail = &hex[hex.len().saturating_sub(10)..];
    let padded = format!("{tail:0>10}");
    let octets: Vec<&str> = (0..5).map(|i| &padded[i * 2..i * 2 + 2]).collect();
    format!("0a:{}", octets.join(":"))
}

/// The private DNS name EC2 gives an address in `region`.
pub fn private_dns_name(region: &str, ip: Ipv4Addr) -> String {
    let host = format!("ip-{}", ip.to_string().replace('.', "-"));
    if region == "us-east-1" { format!("{host}.ec2.internal") } else { format!("{host}.{region}.compute.internal") }
}

/// The subnets of a request, checked to exist and to share one VPC.
fn request_subnets(region: &Region<'_>, ids: &[String]) -> ControlResult<Vec<Stored<SubnetRecord>>> {
    if ids.is_empty() {
        return Err(VpcError::invalid("At least one subnet must be given.").into());
    }
    let subnets = ids.iter().map(|id| subnets::get(region, id)).collect::<ControlResult<Vec<_>>>()?;
    if let Some(other) = subnets.iter().find(|s| s.record.vpc_id != subnets[0].record.vpc_id) {
        return Err(VpcError::InvalidParameter(format!(
            "The subnets {} and {} belong to different VPCs.",
            subnets[0].record.id, other.record.id
        ))
        .into());
    }
    Ok(subnets)
}

/// The groups of a request (the VPC's default group when none), checked to exist in the
/// subnets' VPC; with the compares that keep them existing.
fn request_groups(
    region: &Region<'_>,
    subnet: &SubnetRecord,
    ids: &[String],
) -> ControlResult<(Vec<String>, Vec<Compare>)> {
    let ids =
        if ids.is_empty() { vec![vpcs::get(region, &subnet.vpc_id)?.record.default_group_id] } else { ids.to_vec() };
    let mut guards = Vec::new();
    for id in &ids {
        let group = groups::get(region, id)?;
        if group.record.vpc_id != subnet.vpc_id {
            return Err(VpcError::InvalidParameter(format!(
                "Security group {id} and subnet {} belong to different networks.",
                subnet.id
            ))
            .into());
        }
        guards.push(Compare::CreateRevision(group.kv.key, CmpOp::Equal, group.kv.create_revision));
    }
    Ok((ids, guards))
}

/// A free address of `subnet`, not one of `pending`: picked at random among the free ones,
/// so concurrent allocations rarely race for the same.
fn free_address(region: &Region<'_>, subnet: &SubnetRecord, pending: &[Eni]) -> ControlResult<Option<Ipv4Addr>> {
    let prefix = region.keys.addresses(&subnet.id);
    let (_, used) = keys_under(region, &prefix)?;
    let mut taken: HashSet<Ipv4Addr> = used.iter().filter_map(|kv| kv.key[prefix.len()..].parse().ok()).collect();
    taken.extend(pending.iter().filter(|e| e.subnet_id == subnet.id).map(|e| e.private_ip));
    let free: Vec<Ipv4Addr> = cidr::hosts(&subnet.cidr).filter(|a| !taken.contains(a)).collect();
    if free.is_empty() {
        return Ok(None);
    }
    Ok(Some(free[(region.control.ids.seed() % free.len() as u64) as usize]))
}

/// A free public address of `pool` (every address of the block but its first and last), not
/// one of `pending`'s; at random among the free ones, as private ones are.
fn free_public_address(region: &Region<'_>, pool: &Ipv4Net, pending: &[Eni]) -> ControlResult<Ipv4Addr> {
    let prefix = region.keys.public_addresses();
    let (_, used) = keys_under(region, &prefix)?;
    let mut taken: HashSet<Ipv4Addr> = used.iter().filter_map(|kv| kv.key[prefix.len()..].parse().ok()).collect();
    taken.extend(pending.iter().filter_map(|e| e.public_ip));
    let free: Vec<Ipv4Addr> = pool.hosts().filter(|a| !taken.contains(a)).collect();
    if free.is_empty() {
        return Err(VpcError::NoFreePublicAddress(pool.to_string()).into());
    }
    Ok(free[(region.control.ids.seed() % free.len() as u64) as usize])
}

/// Allocates an ENI and a free address in the first of the subnets with room: the compares
/// and writes to commit in the same transaction as the task's own write (a lost race retries
/// the whole). Errors: unknown subnet/group (EC2's names in the message), subnets of
/// different VPCs, no free address.
pub fn allocate_eni_ops(region: &Region<'_>, req: &EniRequest<'_>) -> ControlResult<(Eni, Vec<Compare>, Vec<Op>)> {
    allocate_eni_ops_avoiding(region, req, &[])
}

/// [`allocate_eni_ops`] for one of several interfaces committed in one transaction: the
/// addresses of `pending` (allocated for the same transaction, not yet written) are not
/// given out again.
pub fn allocate_eni_ops_avoiding(
    region: &Region<'_>,
    req: &EniRequest<'_>,
    pending: &[Eni],
) -> ControlResult<(Eni, Vec<Compare>, Vec<Op>)> {
    let subnets = request_subnets(region, req.subnets)?;
    let (security_groups, mut compares) = request_groups(region, &subnets[0].record, req.security_groups)?;
    let public_ip = match (req.assign_public_ip, &req.public_pool) {
        (true, Some(pool)) => Some(free_public_address(region, pool, pending)?),
        _ => None,
    };
    for subnet in &subnets {
        let Some(ip) = free_address(region, &subnet.record, pending)? else { continue };
        let s = &subnet.record;
        let id = region.control.ids.ec2_id("eni");
        let eni = Eni {
            mac: mac_of(&id),
            id,
            subnet_id: s.id.clone(),
            vpc_id: s.vpc_id.clone(),
            subnet_cidr: s.cidr.to_string(),
            gateway: cidr::gateway(&s.cidr),
            private_ip: ip,
            private_dns_name: private_dns_name(&region.name, ip),
            public_ip,
            security_groups,
        };
        let record = EniRecord {
            eni: eni.clone(),
            zone: s.zone.clone(),
            task_arn: req.task_arn.to_string(),
            attachment_id: region.control.ids.ec2_id("eni-attach"),
            attached_at: region.timestamp(),
            assign_public_ip: req.assign_public_ip,
            tags: Vec::new(),
        };
        let (eni_key, address_key) = (region.keys.network_interface(&eni.id), region.keys.address(&s.id, ip));
        compares.push(Compare::CreateRevision(subnet.kv.key.clone(), CmpOp::Equal, subnet.kv.create_revision));
        compares.push(Compare::absent(&address_key));
        compares.push(Compare::absent(&eni_key));
        let mut ops = vec![Op::put(&address_key, eni.id.clone().into_bytes()), Op::put(&eni_key, encode(&record))];
        if let Some(public) = public_ip {
            let key = region.keys.public_address(public);
            compares.push(Compare::absent(&key));
            ops.push(Op::put(&key, eni.id.clone().into_bytes()));
        }
        return Ok((eni, compares, ops));
    }
    Err(VpcError::NoFreeAddress.into())
}

/// Frees an ENI and its address (idempotent): to commit with the task's move to STOPPED.
pub fn release_eni_ops(region: &Region<'_>, eni_id: &str) -> ControlResult<(Vec<Compare>, Vec<Op>)> {
    let Some(stored) = read::<EniRecord>(region, &region.keys.network_interface(eni_id))? else {
        return Ok((Vec::new(), Vec::new()));
    };
    let mut compares = vec![Compare::unchanged(&stored.kv.key, stored.kv.mod_revision)];
    let mut ops = vec![Op::delete(&stored.kv.key)];
    let eni = &stored.record.eni;
    let address_key = region.keys.address(&eni.subnet_id, eni.private_ip);
    if let Some(address) = region.store().get(&address_key)?
        && address.value == eni.id.as_bytes()
    {
        compares.push(Compare::unchanged(&address_key, address.mod_revision));
        ops.push(Op::delete(&address_key));
    }
    if let Some(public) = eni.public_ip {
        let key = region.keys.public_address(public);
        if let Some(address) = region.store().get(&key)?
            && address.value == eni.id.as_bytes()
        {
            compares.push(Compare::unchanged(&key, address.mod_revision));
            ops.push(Op::delete(&key));
        }
    }
    Ok((compares, ops))
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use berth_store::Txn;

    use super::super::testing::TestRegion;
    use super::super::{defaults, subnets::Block, subnets::NewSubnet};
    use super::*;
    use crate::ControlError;

    async fn commit(region: &Region<'_>, compares: Vec<Compare>, ops: Vec<Op>) -> bool {
        region.store().txn(Txn::new().when(compares).and_then(ops)).await.unwrap().succeeded
    }

    /// A /28 subnet (11 addresses) of a new VPC.
    async fn small_subnet(region: &Region<'_>) -> SubnetRecord {
        let vpc = vpcs::create(region, cidr::parse("10.9.0.0/24").unwrap(), vec![]).await.unwrap();
        let block = Block::Given(cidr::parse("10.9.0.16/28").unwrap());
        let new =
            NewSubnet { vpc_id: &vpc.id, block, zone: "us-east-1a", default_for_az: false, tags: vec![], marker: None };
        subnets::insert(region, new).await.unwrap().unwrap()
    }

    fn request<'a>(subnets: &'a [String], task: &'a str) -> EniRequest<'a> {
        EniRequest { subnets, security_groups: &[], assign_public_ip: false, public_pool: None, task_arn: task }
    }

    #[tokio::test]
    async fn addresses_are_given_once_never_reserved_and_run_out() {
        let t = TestRegion::new();
        let r = t.region();
        let subnet = small_subnet(&r).await;
        let ids = [subnet.id.clone()];
        let mut seen = HashSet::new();
        for n in 0..11 {
            let (eni, compares, ops) = allocate_eni_ops(&r, &request(&ids, &format!("task/{n}"))).unwrap();
            assert!(commit(&r, compares, ops).await);
            assert!(seen.insert(eni.private_ip), "{} given twice", eni.private_ip);
            let last = u32::from(eni.private_ip) & 0xff;
            assert!((20..=30).contains(&last), "{} is reserved", eni.private_ip);
            assert_eq!(eni.gateway, Ipv4Addr::new(10, 9, 0, 17));
            assert_eq!(eni.subnet_cidr, "10.9.0.16/28");
            assert!(eni.mac.starts_with("0a:") && eni.mac.len() == 17);
            assert_eq!(eni.security_groups.len(), 1, "the VPC's default group");
        }
        let e = allocate_eni_ops(&r, &request(&ids, "task/12")).unwrap_err();
        assert!(matches!(e, ControlError::Vpc(VpcError::NoFreeAddress)), "{e}");
        // Releasing one frees exactly its address, once.
        let eni = list(&r).unwrap().remove(0).eni;
        let (compares, ops) = release_eni_ops(&r, &eni.id).unwrap();
        assert!(commit(&r, compares, ops).await);
        assert_eq!(release_eni_ops(&r, &eni.id).unwrap(), (vec![], vec![]));
        let (again, compares, ops) = allocate_eni_ops(&r, &request(&ids, "task/13")).unwrap();
        assert!(commit(&r, compares, ops).await);
        assert_eq!(again.private_ip, eni.private_ip);
    }

    #[tokio::test]
    async fn two_writers_never_share_an_address() {
        let t = TestRegion::new();
        let r = t.region();
        let subnet = small_subnet(&r).await;
        let ids = [subnet.id.clone()];
        // Fill all but one address.
        for n in 0..10 {
            let (_, c, o) = allocate_eni_ops(&r, &request(&ids, &format!("task/{n}"))).unwrap();
            assert!(commit(&r, c, o).await);
        }
        // Both read the same last free address; only one commit can win it.
        let (a, ca, oa) = allocate_eni_ops(&r, &request(&ids, "task/a")).unwrap();
        let (b, cb, ob) = allocate_eni_ops(&r, &request(&ids, "task/b")).unwrap();
        assert_eq!(a.private_ip, b.private_ip);
        let (won_a, won_b) = tokio::join!(commit(&r, ca, oa), commit(&r, cb, ob));
        assert!(won_a ^ won_b, "exactly one wins");
        assert_eq!(list(&r).unwrap().len(), 11);
        let full = allocate_eni_ops(&r, &request(&ids, "task/c"));
        assert!(matches!(full, Err(ControlError::Vpc(VpcError::NoFreeAddress))));
    }

    /// Many placements at once, each retrying its whole allocation when it loses a race (as
    /// the task side does): every address goes to exactly one of them, and the rest learn
    /// the subnet is full.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_placements_get_distinct_addresses() {
        let t = TestRegion::new();
        let subnet = small_subnet(&t.region()).await;
        let control = t.control.clone();
        let placements: Vec<_> = (0..24)
            .map(|n| {
                let (control, subnet) = (control.clone(), subnet.id.clone());
                tokio::spawn(async move {
                    let r = control.region("us-east-1");
                    let ids = [subnet];
                    let task = format!("task/{n}");
                    crate::store::retry(|| async {
                        let (eni, c, o) = allocate_eni_ops(&r, &request(&ids, &task))?;
                        Ok::<_, ControlError>(commit(&r, c, o).await.then_some(eni))
                    })
                    .await
                })
            })
            .collect();
        let mut results = Vec::new();
        for placement in placements {
            results.push(placement.await.unwrap());
        }
        let won: Vec<Eni> = results.iter().filter_map(|r| r.as_ref().ok().cloned()).collect();
        assert_eq!(won.len(), 11, "the /28 has 11 addresses");
        let distinct: HashSet<_> = won.iter().map(|e| e.private_ip).collect();
        assert_eq!(distinct.len(), 11);
        for lost in results.iter().filter_map(|r| r.as_ref().err()) {
            assert!(matches!(lost, ControlError::Vpc(VpcError::NoFreeAddress)), "{lost}");
        }
        let held = keys_under(&t.region(), &t.region().keys.addresses(&subnet.id)).unwrap().1;
        assert_eq!(held.len(), 11);
    }

    #[tokio::test]
    async fn pending_interfaces_of_one_transaction_get_different_addresses() {
        let t = TestRegion::new();
        let r = t.region();
        let subnet = small_subnet(&r).await;
        let ids = [subnet.id.clone()];
        let mut pending = Vec::new();
        let (mut compares, mut ops) = (Vec::new(), Vec::new());
        for n in 0..11 {
            let (eni, c, o) = allocate_eni_ops_avoiding(&r, &request(&ids, &format!("task/{n}")), &pending).unwrap();
            pending.push(eni);
            compares.extend(c);
            ops.extend(o);
        }
        assert!(allocate_eni_ops_avoiding(&r, &request(&ids, "task/x"), &pending).is_err());
        let distinct: HashSet<_> = pending.iter().map(|e| e.private_ip).collect();
        assert_eq!(distinct.len(), 11);
        assert!(commit(&r, compares, ops).await);
    }

    /// A public address comes from the pool given, once each (none for a task not asking),
    /// and goes back to it with the interface.
    #[tokio::test]
    async fn public_addresses_come_from_the_pool_once_each() {
        let t = TestRegion::new();
        let r = t.region();
        let subnet = small_subnet(&r).await;
        let ids = [subnet.id.clone()];
        let pool: Ipv4Net = "203.0.113.0/30".parse().unwrap();
        let public = |task: &'static str| EniRequest {
            subnets: &ids,
            security_groups: &[],
            assign_public_ip: true,
            public_pool: Some(pool),
            task_arn: task,
        };
        let quiet = EniRequest { assign_public_ip: false, ..public("task/q") };
        let (eni, c, o) = allocate_eni_ops(&r, &quiet).unwrap();
        assert!(commit(&r, c, o).await);
        assert_eq!(eni.public_ip, None, "a task not asking gets none");
        let (a, c, o) = allocate_eni_ops(&r, &public("task/a")).unwrap();
        assert!(commit(&r, c, o).await);
        // In one transaction, the pending interface's address is not given again.
        let (b, _, _) = allocate_eni_ops_avoiding(&r, &public("task/b"), std::slice::from_ref(&a)).unwrap();
        let (b2, c, o) = allocate_eni_ops(&r, &public("task/b")).unwrap();
        assert!(commit(&r, c, o).await);
        let (a, b, b2) = (a.public_ip.unwrap(), b.public_ip.unwrap(), b2.public_ip.unwrap());
        assert_ne!(a, b);
        assert_eq!(b, b2);
        let mut both = [a, b];
        both.sort();
        assert_eq!(both, [Ipv4Addr::new(203, 0, 113, 1), Ipv4Addr::new(203, 0, 113, 2)], "never the block's ends");
        match allocate_eni_ops(&r, &public("task/c")) {
            Err(ControlError::Vpc(e)) => {
                assert_eq!(e.code(), "AddressLimitExceeded");
                assert!(e.to_string().contains("203.0.113.0/30"), "{e}");
            }
            other => panic!("{other:?}"),
        }
        let held = list(&r).unwrap().into_iter().find(|rec| rec.eni.public_ip == Some(a)).unwrap();
        let (c, o) = release_eni_ops(&r, &held.eni.id).unwrap();
        assert!(commit(&r, c, o).await);
        let (again, c, o) = allocate_eni_ops(&r, &public("task/d")).unwrap();
        assert!(commit(&r, c, o).await);
        assert_eq!(again.public_ip, Some(a), "released with its interface");
    }

    #[tokio::test]
    async fn requests_are_checked() {
        let t = TestRegion::new();
        let r = t.region();
        let default = defaults::ensure(&r).await.unwrap().unwrap();
        let subnet = small_subnet(&r).await;
        let default_subnet = subnets::list(&r).unwrap().into_iter().find(|s| s.vpc_id == default.id).unwrap();
        let err = |subnets: &[String], groups: &[String]| {
            let req = EniRequest {
                subnets,
                security_groups: groups,
                assign_public_ip: true,
                public_pool: None,
                task_arn: "t",
            };
            match allocate_eni_ops(&r, &req) {
                Err(ControlError::Vpc(e)) => (e.code(), e.to_string()),
                other => panic!("{other:?}"),
            }
        };
        let ghost = "subnet-0000000000000dead".to_string();
        assert_eq!(
            err(std::slice::from_ref(&ghost), &[]),
            ("InvalidSubnetID.NotFound", format!("The subnet ID '{ghost}' does not exist"))
        );
        assert_eq!(err(&["nope".into()], &[]).0, "InvalidSubnetID.Malformed");
        assert_eq!(err(&[subnet.id.clone(), default_subnet.id.clone()], &[]).0, "InvalidParameter");
        let sg = "sg-0000000000000dead".to_string();
        assert_eq!(
            err(std::slice::from_ref(&subnet.id), std::slice::from_ref(&sg)),
            ("InvalidGroup.NotFound", format!("The security group '{sg}' does not exist"))
        );
        assert_eq!(
            err(std::slice::from_ref(&subnet.id), std::slice::from_ref(&default.default_group_id)).0,
            "InvalidParameter"
        );
        assert_eq!(err(&[], &[]).0, "InvalidParameterValue");
    }

    #[test]
    fn macs_and_dns_names() {
        assert_eq!(mac_of("eni-0123456789abcdef0"), "0a:78:9a:bc:de:f0");
        assert_eq!(mac_of("eni-00000000000000005"), "0a:00:00:00:00:05");
        assert_eq!(private_dns_name("us-east-1", Ipv4Addr::new(172, 31, 0, 5)), "ip-172-31-0-5.ec2.internal");
        assert_eq!(private_dns_name("eu-west-1", Ipv4Addr::new(10, 0, 1, 9)), "ip-10-0-1-9.eu-west-1.compute.internal");
    }
}
