//! Load balancers: an application (HTTP) or network (TCP) load balancer in a VPC, attached to
//! one subnet per availability zone it serves, with its security groups, attributes and tags.
//! Names are unique per region (a name key guarded by its absence). A load balancer is
//! `active` from its creation: nothing needs provisioning, since its listeners are served by
//! the installation's data plane on the shared listener address as soon as they exist.
//!
//! Deleting one deletes its listeners and their rules (and frees their ports); deletion
//! protection refuses it.

use berth_store::{Compare, Op, Txn};
use serde::{Deserialize, Serialize};

use super::arns::{self, ArnKind, LbRef, LbType, Resource};
use super::attributes::{self, Attributed, Attributes, Owner};
use super::limits::{LOAD_BALANCERS, SECURITY_GROUPS};
use super::listeners::ListenerRecord;
use super::tags::{self, Tag};
use super::{ElbError, Limit, Named, insert_named};
use crate::Region;
use crate::error::ControlResult;
use crate::store::retry;
use crate::vpc::{self, Stored, read, read_all};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Scheme {
    #[serde(rename = "internet-facing")]
    InternetFacing,
    #[serde(rename = "internal")]
    Internal,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::InternetFacing => "internet-facing",
            Scheme::Internal => "internal",
        }
    }
}

/// ELB's load balancer states. Berth's are active from creation (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LbState {
    Active,
}

impl LbState {
    pub fn as_str(self) -> &'static str {
        match self {
            LbState::Active => "active",
        }
    }
}

/// A subnet the load balancer is attached to, and its zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LbZone {
    pub subnet_id: String,
    pub zone: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancerRecord {
    pub arn: String,
    /// The id in its ARN: 16 hex digits.
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub lb_type: LbType,
    pub scheme: Scheme,
    pub vpc_id: String,
    pub zones: Vec<LbZone>,
    pub security_groups: Vec<String>,
    pub state: LbState,
    /// Seconds since the epoch.
    pub created: f64,
    pub dns_name: String,
    /// The attributes set (defaults are not stored; see `attributes.rs`).
    #[serde(default)]
    pub attributes: Attributes,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

impl Attributed for LoadBalancerRecord {
    fn owner(&self) -> Owner {
        Owner::LoadBalancer(self.lb_type)
    }

    fn attributes_mut(&mut self) -> &mut Attributes {
        &mut self.attributes
    }
}

impl LoadBalancerRecord {
    pub fn lb_ref(&self) -> LbRef {
        LbRef { lb_type: self.lb_type, name: self.name.clone(), id: self.id.clone() }
    }

    pub fn deletion_protected(&self) -> bool {
        attributes::flag(self.owner(), &self.attributes, "deletion_protection.enabled")
    }

    pub fn hosted_zone_id(&self, region: &str) -> String {
        arns::hosted_zone_id(region, self.lb_type)
    }
}

/// What CreateLoadBalancer asks for.
#[derive(Debug, Clone)]
pub struct NewLoadBalancer {
    pub name: String,
    pub lb_type: LbType,
    pub scheme: Scheme,
    pub subnets: Vec<String>,
    /// None: an application load balancer gets its VPC's default group, a network one none.
    pub security_groups: Option<Vec<String>>,
    pub tags: Vec<Tag>,
}

/// A load balancer by ARN: `ValidationError` for a malformed ARN, `LoadBalancerNotFound`
/// when there is none.
pub fn get(region: &Region<'_>, arn: &str) -> ControlResult<Stored<LoadBalancerRecord>> {
    find(region, arn)?.ok_or_else(|| ElbError::load_balancers_not_found().into())
}

/// A load balancer by ARN, if it exists (a malformed ARN is still an error).
pub fn find(region: &Region<'_>, arn: &str) -> ControlResult<Option<Stored<LoadBalancerRecord>>> {
    let Some(Resource::LoadBalancer(lb)) = arns::expect(region, ArnKind::LoadBalancer, arn)? else {
        return Ok(None);
    };
    let found = read::<LoadBalancerRecord>(region, &region.keys.load_balancer(&lb.id))?;
    Ok(found.filter(|s| s.record.arn == arn))
}

/// Every load balancer of the region, by id.
pub fn list(region: &Region<'_>) -> ControlResult<Vec<LoadBalancerRecord>> {
    Ok(read_all(region, &region.keys.load_balancers())?.1.into_iter().map(|s| s.record).collect())
}

/// A load balancer by name, if there is one.
pub fn by_name(region: &Region<'_>, name: &str) -> ControlResult<Option<Stored<LoadBalancerRecord>>> {
    let Some(id) = region.store().get(&region.keys.load_balancer_name(name))? else { return Ok(None) };
    read(region, &region.keys.load_balancer(&String::from_utf8_lossy(&id.value)))
}

/// The subnets a load balancer attaches to: each exists, all in one VPC, one per zone.
/// Returns the VPC and the zones.
fn resolve_subnets(region: &Region<'_>, ids: &[String]) -> ControlResult<(String, Vec<LbZone>)> {
    if ids.is_empty() {
        return Err(ElbError::validation("At least one subnet must be specified").into());
    }
    let mut zones: Vec<LbZone> = Vec::new();
    let mut vpc_id: Option<String> = None;
    for id in ids {
        let subnet = vpc::check_id(vpc::IdKind::Subnet, id)
            .ok()
            .and_then(|_| read::<vpc::subnets::SubnetRecord>(region, &region.keys.subnet(id)).transpose())
            .transpose()?
            .ok_or_else(|| ElbError::SubnetNotFound(format!("The subnet ID '{id}' is not valid")))?
            .record;
        match &vpc_id {
            Some(v) if *v != subnet.vpc_id => {
                return Err(ElbError::InvalidConfigurationRequest(format!(
                    "The subnets must all be in one VPC: '{id}' is in '{}', not '{v}'",
                    subnet.vpc_id
                ))
                .into());
            }
            _ => vpc_id = Some(subnet.vpc_id.clone()),
        }
        if zones.iter().any(|z| z.zone == subnet.zone) {
            return Err(ElbError::InvalidConfigurationRequest(format!(
                "A load balancer cannot be attached to multiple subnets in the same Availability Zone ('{}')",
                subnet.zone
            ))
            .into());
        }
        zones.push(LbZone { subnet_id: subnet.id, zone: subnet.zone });
    }
    Ok((vpc_id.unwrap_or_default(), zones))
}

/// The security groups of a load balancer in `vpc_id`: each exists there, at most five.
fn resolve_groups(region: &Region<'_>, vpc_id: &str, ids: &[String]) -> ControlResult<Vec<String>> {
    if ids.len() > SECURITY_GROUPS {
        return Err(ElbError::validation(format!(
            "A load balancer can have at most {SECURITY_GROUPS} security groups"
        ))
        .into());
    }
    let mut out: Vec<String> = Vec::new();
    for id in ids {
        let group = vpc::check_id(vpc::IdKind::SecurityGroup, id)
            .ok()
            .and_then(|_| read::<vpc::groups::SecurityGroupRecord>(region, &region.keys.security_group(id)).transpose())
            .transpose()?
            .ok_or_else(|| ElbError::InvalidSecurityGroup(format!("Security group '{id}' does not exist")))?;
        if group.record.vpc_id != vpc_id {
            return Err(ElbError::InvalidSecurityGroup(format!(
                "Security group '{id}' is not in the load balancer's VPC '{vpc_id}'"
            ))
            .into());
        }
        if !out.contains(id) {
            out.push(id.clone());
        }
    }
    Ok(out)
}

/// The record `new` describes, with a fresh id (settings resolved against the VPC model).
fn build(region: &Region<'_>, new: &NewLoadBalancer) -> ControlResult<LoadBalancerRecord> {
    let (vpc_id, zones) = resolve_subnets(region, &new.subnets)?;
    let security_groups = match (&new.security_groups, new.lb_type) {
        (Some(ids), _) => resolve_groups(region, &vpc_id, ids)?,
        (None, LbType::Application) => vec![vpc::vpcs::get(region, &vpc_id)?.record.default_group_id],
        (None, LbType::Network) => Vec::new(),
    };
    let id = arns::new_id(region);
    let lb = LbRef { lb_type: new.lb_type, name: new.name.clone(), id: id.clone() };
    Ok(LoadBalancerRecord {
        arn: lb.arn(region),
        dns_name: arns::dns_name(&region.name, &new.name, &id, new.scheme == Scheme::Internal),
        id,
        name: new.name.clone(),
        lb_type: new.lb_type,
        scheme: new.scheme,
        vpc_id,
        zones,
        security_groups,
        state: LbState::Active,
        created: region.timestamp(),
        attributes: Attributes::new(),
        tags: new.tags.clone(),
    })
}

/// Whether an existing load balancer is what `new` would make (CreateLoadBalancer with the
/// same name and settings answers the existing one, as ELB does).
fn same_settings(existing: &LoadBalancerRecord, wanted: &LoadBalancerRecord) -> bool {
    existing.lb_type == wanted.lb_type
        && existing.scheme == wanted.scheme
        && existing.zones == wanted.zones
        && existing.security_groups == wanted.security_groups
        && existing.tags == wanted.tags
}

/// CreateLoadBalancer.
pub async fn create(region: &Region<'_>, new: NewLoadBalancer) -> ControlResult<LoadBalancerRecord> {
    arns::check_name("Load balancer", &new.name)?;
    if new.name.to_ascii_lowercase().starts_with("internal-") {
        return Err(
            ElbError::validation(format!("Load balancer name '{}' cannot begin with 'internal-'", new.name)).into()
        );
    }
    tags::check_new(&new.tags)?;
    retry(|| async {
        let wanted = build(region, &new)?;
        if let Some(existing) = by_name(region, &new.name)? {
            if same_settings(&existing.record, &wanted) {
                return Ok(Some(existing.record));
            }
            return Err(ElbError::DuplicateLoadBalancerName(new.name.clone()).into());
        }
        let (at, all) = read_all::<LoadBalancerRecord>(region, &region.keys.load_balancers())?;
        if all.iter().filter(|s| s.record.lb_type == new.lb_type).count() >= LOAD_BALANCERS {
            return Err(ElbError::too_many(
                Limit::LoadBalancers,
                format!("You have reached the maximum of {LOAD_BALANCERS} {}s", new.lb_type.title()),
            )
            .into());
        }
        let vpc = vpc::vpcs::get(region, &wanted.vpc_id)?;
        let named = Named {
            key: region.keys.load_balancer(&wanted.id),
            name_key: region.keys.load_balancer_name(&wanted.name),
            id: &wanted.id,
            prefix: region.keys.load_balancers(),
            at,
        };
        Ok(insert_named(region, named, &vpc.kv, &wanted).await?.then_some(wanted))
    })
    .await
}

/// Reads a load balancer, changes it with `change`, writes it back (guarded by its revision).
pub async fn update(
    region: &Region<'_>,
    arn: &str,
    change: impl FnMut(&mut LoadBalancerRecord) -> ControlResult<()>,
) -> ControlResult<LoadBalancerRecord> {
    super::update(region, || get(region, arn), change).await
}

/// SetSubnets: the subnets (and so zones) the load balancer serves, in its VPC.
pub async fn set_subnets(region: &Region<'_>, arn: &str, subnets: &[String]) -> ControlResult<LoadBalancerRecord> {
    update(region, arn, |lb| {
        let (vpc_id, zones) = resolve_subnets(region, subnets)?;
        if vpc_id != lb.vpc_id {
            return Err(ElbError::InvalidSubnet(format!(
                "The subnets must be in the load balancer's VPC '{}'",
                lb.vpc_id
            ))
            .into());
        }
        lb.zones = zones;
        Ok(())
    })
    .await
}

/// SetSecurityGroups. A network load balancer created without security groups cannot get
/// any, and one created with them cannot lose them all, as in ELB.
pub async fn set_security_groups(
    region: &Region<'_>,
    arn: &str,
    groups: &[String],
) -> ControlResult<LoadBalancerRecord> {
    update(region, arn, |lb| {
        let resolved = resolve_groups(region, &lb.vpc_id, groups)?;
        if lb.lb_type == LbType::Network && lb.security_groups.is_empty() != resolved.is_empty() {
            return Err(ElbError::InvalidConfigurationRequest(
                "A Network Load Balancer created without security groups cannot get any, and one created with them must keep at least one".into(),
            )
            .into());
        }
        if lb.lb_type == LbType::Application && resolved.is_empty() {
            return Err(ElbError::validation("An Application Load Balancer must have at least one security group").into());
        }
        lb.security_groups = resolved;
        Ok(())
    })
    .await
}

/// ModifyLoadBalancerAttributes: the attributes after the change.
pub async fn modify_attributes(
    region: &Region<'_>,
    arn: &str,
    changes: &[(String, String)],
) -> ControlResult<LoadBalancerRecord> {
    update(region, arn, |lb| attributes::change(lb, changes)).await
}

/// DeleteLoadBalancer: the load balancer, its listeners and their rules, and the ports they
/// held. A load balancer that does not exist is already deleted (ELB answers success);
/// deletion protection refuses.
pub async fn delete(region: &Region<'_>, arn: &str) -> ControlResult<()> {
    retry(|| async {
        let Some(lb) = find(region, arn)? else { return Ok(Some(())) };
        if lb.record.deletion_protected() {
            return Err(ElbError::OperationNotPermitted(format!(
                "Load balancer '{arn}' cannot be deleted because deletion protection is enabled"
            ))
            .into());
        }
        let prefix = region.keys.listeners(&lb.record.id);
        let (at, listeners) = read_all::<ListenerRecord>(region, &prefix)?;
        let compares =
            vec![Compare::unchanged(&lb.kv.key, lb.kv.mod_revision), Compare::prefix_unchanged_since(&prefix, at)];
        let mut ops = vec![
            Op::delete(&lb.kv.key),
            Op::delete(&region.keys.load_balancer_name(&lb.record.name)),
            Op::delete_prefix(&prefix),
        ];
        for listener in &listeners {
            ops.extend(super::listeners::release_ops(region, &listener.record));
        }
        let done = region.store().txn(Txn::new().when(compares).and_then(ops)).await?.succeeded;
        Ok(done.then_some(()))
    })
    .await
}
