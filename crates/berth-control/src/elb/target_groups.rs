//! Target groups: where a listener's rules send traffic — `instance` or `ip` targets of one
//! VPC, spoken to over HTTP (application load balancers) or TCP (network load balancers) on
//! a default port — with their health check settings, attributes and tags. Names are unique
//! per region (a name key guarded by its absence). A group serves one load balancer at most
//! (ELB's quota), and one that a listener or rule forwards to cannot be deleted.
//!
//! Health checks have ELB's defaults and limits: an HTTP group checks `GET /` every 30 s with
//! a 5 s timeout, 5 successes to become healthy and 2 failures to become unhealthy, success
//! being status 200; a TCP group connects every 30 s with a 10 s timeout (5 and 2), or, told
//! to check over HTTP, gets `/`, a 6 s timeout and success on 200-399. Checks cannot be
//! turned off for `instance` and `ip` groups, as in ELB.

use berth_store::{Compare, Op, Txn};
use serde::{Deserialize, Serialize};

use super::arns::{self, ArnKind, Resource};
use super::attributes::{self, Attributed, Attributes, Owner};
use super::limits::TARGET_GROUPS;
use super::refs::Refs;
use super::tags::{self, Tag};
use super::{ElbError, Limit, Named, insert_named};
use crate::Region;
use crate::error::ControlResult;
use crate::store::retry;
use crate::vpc::{self, Stored, read, read_all};

/// The protocols Berth's load balancers speak (to clients, targets and health checks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Protocol {
    #[serde(rename = "HTTP")]
    Http,
    #[serde(rename = "TCP")]
    Tcp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Http => "HTTP",
            Protocol::Tcp => "TCP",
        }
    }

    /// A protocol name of ELB's: Berth's two, an error naming what Berth lacks, or (a name
    /// ELB does not know) a `ValidationError`. `what` names the member in messages.
    pub fn parse(what: &str, text: &str) -> Result<Protocol, ElbError> {
        match text {
            "HTTP" => Ok(Protocol::Http),
            "TCP" => Ok(Protocol::Tcp),
            "HTTPS" | "TLS" | "UDP" | "TCP_UDP" | "GENEVE" | "QUIC" | "TCP_QUIC" => Err(ElbError::unsupported(
                format!("Berth does not support the {what} '{text}': its load balancers speak HTTP and TCP"),
            )),
            _ => Err(ElbError::validation(format!("'{text}' is not a valid {what}"))),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetType {
    Instance,
    Ip,
}

impl TargetType {
    pub fn as_str(self) -> &'static str {
        match self {
            TargetType::Instance => "instance",
            TargetType::Ip => "ip",
        }
    }
}

/// How a group's targets are checked, ELB's defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheck {
    pub enabled: bool,
    pub protocol: Protocol,
    /// None: the target's own port (`traffic-port`).
    pub port: Option<u16>,
    /// HTTP checks: the path to GET.
    pub path: Option<String>,
    pub interval: u32,
    pub timeout: u32,
    pub healthy_threshold: u32,
    pub unhealthy_threshold: u32,
    /// HTTP checks: the codes that count as success (`200`, `200,202`, `200-299`).
    pub matcher: Option<String>,
}

/// Health check settings as a request gives them (any may be absent).
#[derive(Debug, Clone, Default)]
pub struct HealthCheckInput {
    pub enabled: Option<bool>,
    pub protocol: Option<String>,
    pub port: Option<String>,
    pub path: Option<String>,
    pub interval: Option<u32>,
    pub timeout: Option<u32>,
    pub healthy_threshold: Option<u32>,
    pub unhealthy_threshold: Option<u32>,
    pub matcher: Option<String>,
    pub grpc_code: Option<String>,
}

impl HealthCheckInput {
    pub fn is_empty(&self) -> bool {
        self.enabled.is_none()
            && self.protocol.is_none()
            && self.port.is_none()
            && self.path.is_none()
            && self.interval.is_none()
            && self.timeout.is_none()
            && self.healthy_threshold.is_none()
            && self.unhealthy_threshold.is_none()
            && self.matcher.is_none()
            && self.grpc_code.is_none()
    }
}

/// The success codes a matcher lists, as inclusive ranges, each within `lo..=hi`.
pub fn parse_matcher(text: &str, lo: u16, hi: u16) -> Option<Vec<(u16, u16)>> {
    let code = |s: &str| s.trim().parse::<u16>().ok().filter(|c| (lo..=hi).contains(c));
    text.split(',')
        .map(|part| match part.split_once('-') {
            Some((a, b)) => Some((code(a)?, code(b)?)).filter(|(a, b)| a <= b),
            None => code(part).map(|c| (c, c)),
        })
        .collect()
}

impl HealthCheck {
    /// The defaults of a group of `protocol` checked over `check`.
    fn defaults(group: Protocol, check: Protocol) -> HealthCheck {
        let http = check == Protocol::Http;
        HealthCheck {
            enabled: true,
            protocol: check,
            port: None,
            path: http.then(|| "/".to_string()),
            interval: 30,
            timeout: match (group, check) {
                (Protocol::Http, _) => 5,
                (Protocol::Tcp, Protocol::Http) => 6,
                (Protocol::Tcp, Protocol::Tcp) => 10,
            },
            healthy_threshold: 5,
            unhealthy_threshold: 2,
            matcher: http.then(|| if group == Protocol::Http { "200" } else { "200-399" }.to_string()),
        }
    }

    /// The success codes HTTP checks of a group of `group` may name.
    pub fn matcher_bounds(group: Protocol) -> (u16, u16) {
        if group == Protocol::Http { (200, 499) } else { (200, 599) }
    }

    /// The settings `input` gives a group of `group` and `target_type`, starting from `base`
    /// (a new group: None, ELB's defaults).
    pub fn resolve(
        group: Protocol,
        target_type: TargetType,
        base: Option<&HealthCheck>,
        input: &HealthCheckInput,
    ) -> Result<HealthCheck, ElbError> {
        if input.grpc_code.is_some() {
            return Err(ElbError::unsupported("Berth does not support gRPC health checks (Matcher.GrpcCode)"));
        }
        let check = match &input.protocol {
            Some(p) => Protocol::parse("health check protocol", p)?,
            None => base.map_or(group, |b| b.protocol),
        };
        if group == Protocol::Http && check == Protocol::Tcp {
            return Err(ElbError::validation(
                "Health check protocol 'TCP' is not supported for target groups with the HTTP protocol",
            ));
        }
        let mut hc = match base {
            Some(b) if b.protocol == check => b.clone(),
            Some(b) => HealthCheck { port: b.port, interval: b.interval, ..HealthCheck::defaults(group, check) },
            None => HealthCheck::defaults(group, check),
        };
        if input.enabled == Some(false) {
            return Err(ElbError::validation(format!(
                "Health checks cannot be disabled for target groups with target type '{}'",
                target_type.as_str()
            )));
        }
        if let Some(port) = &input.port {
            hc.port = match port.as_str() {
                "traffic-port" => None,
                p => Some(p.parse::<u16>().ok().filter(|n| *n > 0).ok_or_else(|| {
                    ElbError::validation(format!(
                        "Health check port '{p}' must be 'traffic-port' or a port from 1 to 65535"
                    ))
                })?),
            };
        }
        hc.interval = input.interval.unwrap_or(hc.interval);
        hc.timeout = input.timeout.unwrap_or(hc.timeout);
        hc.healthy_threshold = input.healthy_threshold.unwrap_or(hc.healthy_threshold);
        hc.unhealthy_threshold = input.unhealthy_threshold.unwrap_or(hc.unhealthy_threshold);
        match check {
            Protocol::Http => {
                if let Some(path) = &input.path {
                    if !path.starts_with('/') {
                        return Err(ElbError::validation(format!(
                            "Health check path '{path}' must begin with a '/' character"
                        )));
                    }
                    hc.path = Some(path.clone());
                }
                if let Some(matcher) = &input.matcher {
                    let (lo, hi) = HealthCheck::matcher_bounds(group);
                    if parse_matcher(matcher, lo, hi).is_none() {
                        return Err(ElbError::validation(format!(
                            "Health check matcher HTTP code '{matcher}' must be a code from {lo} to {hi}, a list of them (200,202) or a range (200-299)"
                        )));
                    }
                    hc.matcher = Some(matcher.clone());
                }
            }
            Protocol::Tcp => {
                if input.path.is_some() {
                    return Err(ElbError::validation("A health check path cannot be set for TCP health checks"));
                }
                if input.matcher.is_some() {
                    return Err(ElbError::validation("A health check matcher cannot be set for TCP health checks"));
                }
            }
        }
        if hc.timeout >= hc.interval {
            return Err(ElbError::validation(format!(
                "Health check timeout ({}) must be smaller than the interval ({})",
                hc.timeout, hc.interval
            )));
        }
        Ok(hc)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetGroupRecord {
    pub arn: String,
    /// The id in its ARN: 16 hex digits.
    pub id: String,
    pub name: String,
    pub protocol: Protocol,
    /// The port targets are registered on unless they name their own.
    pub port: u16,
    pub vpc_id: String,
    pub target_type: TargetType,
    pub health_check: HealthCheck,
    pub created: f64,
    #[serde(default)]
    pub attributes: Attributes,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

impl Attributed for TargetGroupRecord {
    fn owner(&self) -> Owner {
        Owner::TargetGroup(self.protocol, self.target_type)
    }

    fn attributes_mut(&mut self) -> &mut Attributes {
        &mut self.attributes
    }
}

impl TargetGroupRecord {
    /// `deregistration_delay.timeout_seconds`.
    pub fn deregistration_delay(&self) -> u64 {
        attributes::number(self.owner(), &self.attributes, "deregistration_delay.timeout_seconds")
    }

    pub fn attribute(&self, key: &str) -> &str {
        attributes::get(self.owner(), &self.attributes, key)
    }
}

/// What CreateTargetGroup asks for.
#[derive(Debug, Clone)]
pub struct NewTargetGroup {
    pub name: String,
    pub protocol: Protocol,
    pub port: u16,
    pub vpc_id: String,
    pub target_type: TargetType,
    pub health_check: HealthCheckInput,
    pub tags: Vec<Tag>,
}

/// A target group and the load balancers whose listeners or rules forward to it.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetGroupInfo {
    pub record: TargetGroupRecord,
    pub load_balancer_arns: Vec<String>,
}

/// A target group by ARN, if it exists (a malformed ARN is a `ValidationError`).
pub fn find(region: &Region<'_>, arn: &str) -> ControlResult<Option<Stored<TargetGroupRecord>>> {
    let Some(Resource::TargetGroup { id, .. }) = arns::expect(region, ArnKind::TargetGroup, arn)? else {
        return Ok(None);
    };
    Ok(read::<TargetGroupRecord>(region, &region.keys.target_group(&id))?.filter(|s| s.record.arn == arn))
}

/// A target group by ARN: `TargetGroupNotFound` when there is none.
pub fn get(region: &Region<'_>, arn: &str) -> ControlResult<Stored<TargetGroupRecord>> {
    find(region, arn)?.ok_or_else(|| ElbError::target_groups_not_found().into())
}

/// For the ECS service integration: a target group by ARN (`TargetGroupNotFound` when there
/// is none) with the load balancers using it.
pub fn get_target_group(region: &Region<'_>, arn: &str) -> ControlResult<TargetGroupInfo> {
    let record = get(region, arn)?.record;
    let load_balancer_arns = Refs::read(region)?.load_balancers_of(&record.arn).into_iter().collect();
    Ok(TargetGroupInfo { record, load_balancer_arns })
}

/// Every target group of the region, by id.
pub fn list(region: &Region<'_>) -> ControlResult<Vec<TargetGroupRecord>> {
    Ok(read_all(region, &region.keys.target_groups())?.1.into_iter().map(|s| s.record).collect())
}

pub fn by_name(region: &Region<'_>, name: &str) -> ControlResult<Option<Stored<TargetGroupRecord>>> {
    let Some(id) = region.store().get(&region.keys.target_group_name(name))? else { return Ok(None) };
    read(region, &region.keys.target_group(&String::from_utf8_lossy(&id.value)))
}

/// Whether an existing group is the one `wanted` describes (same settings: CreateTargetGroup
/// answers it, as ELB does).
fn same_settings(existing: &TargetGroupRecord, wanted: &TargetGroupRecord) -> bool {
    existing.protocol == wanted.protocol
        && existing.port == wanted.port
        && existing.vpc_id == wanted.vpc_id
        && existing.target_type == wanted.target_type
        && existing.health_check == wanted.health_check
        && existing.tags == wanted.tags
}

/// CreateTargetGroup.
pub async fn create(region: &Region<'_>, new: NewTargetGroup) -> ControlResult<TargetGroupRecord> {
    arns::check_name("Target group", &new.name)?;
    tags::check_new(&new.tags)?;
    let health_check = HealthCheck::resolve(new.protocol, new.target_type, None, &new.health_check)?;
    retry(|| async {
        let vpc = vpc::vpcs::get(region, &new.vpc_id)?;
        let id = arns::new_id(region);
        let wanted = TargetGroupRecord {
            arn: arns::target_group_arn(region, &new.name, &id),
            id,
            name: new.name.clone(),
            protocol: new.protocol,
            port: new.port,
            vpc_id: new.vpc_id.clone(),
            target_type: new.target_type,
            health_check: health_check.clone(),
            created: region.timestamp(),
            attributes: Attributes::new(),
            tags: new.tags.clone(),
        };
        if let Some(existing) = by_name(region, &new.name)? {
            if same_settings(&existing.record, &wanted) {
                return Ok(Some(existing.record));
            }
            return Err(ElbError::DuplicateTargetGroupName(new.name.clone()).into());
        }
        let (at, all) = read_all::<TargetGroupRecord>(region, &region.keys.target_groups())?;
        if all.len() >= TARGET_GROUPS {
            let message = format!("You have reached the maximum of {TARGET_GROUPS} target groups");
            return Err(ElbError::too_many(Limit::TargetGroups, message).into());
        }
        let named = Named {
            key: region.keys.target_group(&wanted.id),
            name_key: region.keys.target_group_name(&wanted.name),
            id: &wanted.id,
            prefix: region.keys.target_groups(),
            at,
        };
        Ok(insert_named(region, named, &vpc.kv, &wanted).await?.then_some(wanted))
    })
    .await
}

/// Reads a target group, changes it with `change`, writes it back (guarded by its revision).
async fn update(
    region: &Region<'_>,
    arn: &str,
    change: impl FnMut(&mut TargetGroupRecord) -> ControlResult<()>,
) -> ControlResult<TargetGroupRecord> {
    super::update(region, || get(region, arn), change).await
}

/// ModifyTargetGroup: new health check settings.
pub async fn modify(region: &Region<'_>, arn: &str, input: &HealthCheckInput) -> ControlResult<TargetGroupRecord> {
    update(region, arn, |tg| {
        tg.health_check = HealthCheck::resolve(tg.protocol, tg.target_type, Some(&tg.health_check), input)?;
        Ok(())
    })
    .await
}

/// ModifyTargetGroupAttributes.
pub async fn modify_attributes(
    region: &Region<'_>,
    arn: &str,
    changes: &[(String, String)],
) -> ControlResult<TargetGroupRecord> {
    update(region, arn, |tg| attributes::change(tg, changes)).await
}

/// DeleteTargetGroup: with its targets and their health. One that a listener or rule
/// forwards to is `ResourceInUse`; one that does not exist is already deleted.
pub async fn delete(region: &Region<'_>, arn: &str) -> ControlResult<()> {
    retry(|| async {
        let Some(tg) = find(region, arn)? else { return Ok(Some(())) };
        let refs = Refs::read(region)?;
        if refs.uses(arn) {
            return Err(ElbError::ResourceInUse(format!(
                "Target group '{arn}' is currently in use by a listener or a rule"
            ))
            .into());
        }
        let mut compares = refs.guards(region);
        compares.push(Compare::unchanged(&tg.kv.key, tg.kv.mod_revision));
        let ops = vec![
            Op::delete(&tg.kv.key),
            Op::delete(&region.keys.target_group_name(&tg.record.name)),
            Op::delete_prefix(&region.keys.targets(&tg.record.id)),
            Op::delete_prefix(&region.keys.target_healths(&tg.record.id)),
        ];
        Ok(region.store().txn(Txn::new().when(compares).and_then(ops)).await?.succeeded.then_some(()))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> HealthCheckInput {
        HealthCheckInput::default()
    }

    #[test]
    fn health_check_defaults_follow_elb() {
        let http = HealthCheck::resolve(Protocol::Http, TargetType::Ip, None, &input()).unwrap();
        assert_eq!((http.interval, http.timeout, http.healthy_threshold, http.unhealthy_threshold), (30, 5, 5, 2));
        assert_eq!((http.path.as_deref(), http.matcher.as_deref(), http.port), (Some("/"), Some("200"), None));
        let tcp = HealthCheck::resolve(Protocol::Tcp, TargetType::Instance, None, &input()).unwrap();
        assert_eq!((tcp.protocol, tcp.timeout, tcp.path.clone(), tcp.matcher.clone()), (Protocol::Tcp, 10, None, None));
        let over_http = HealthCheckInput { protocol: Some("HTTP".into()), ..input() };
        let h = HealthCheck::resolve(Protocol::Tcp, TargetType::Ip, Some(&tcp), &over_http).unwrap();
        assert_eq!((h.timeout, h.matcher.as_deref(), h.path.as_deref()), (6, Some("200-399"), Some("/")));
        let back = HealthCheckInput { protocol: Some("TCP".into()), ..input() };
        assert_eq!(HealthCheck::resolve(Protocol::Tcp, TargetType::Ip, Some(&h), &back).unwrap().path, None);
    }

    #[test]
    fn health_check_limits_are_checked() {
        let bad = [
            HealthCheckInput { enabled: Some(false), ..input() },
            HealthCheckInput { protocol: Some("TCP".into()), ..input() },
            HealthCheckInput { protocol: Some("HTTPS".into()), ..input() },
            HealthCheckInput { port: Some("0".into()), ..input() },
            HealthCheckInput { port: Some("web".into()), ..input() },
            HealthCheckInput { path: Some("health".into()), ..input() },
            HealthCheckInput { matcher: Some("600".into()), ..input() },
            HealthCheckInput { matcher: Some("299-200".into()), ..input() },
            HealthCheckInput { interval: Some(5), timeout: Some(5), ..input() },
            HealthCheckInput { grpc_code: Some("12".into()), ..input() },
        ];
        for b in bad {
            assert!(HealthCheck::resolve(Protocol::Http, TargetType::Ip, None, &b).is_err(), "{b:?}");
        }
        let tcp_path = HealthCheckInput { path: Some("/".into()), ..input() };
        assert!(HealthCheck::resolve(Protocol::Tcp, TargetType::Ip, None, &tcp_path).is_err());
        let ok = HealthCheckInput { matcher: Some("200,202-204".into()), port: Some("8080".into()), ..input() };
        let hc = HealthCheck::resolve(Protocol::Http, TargetType::Ip, None, &ok).unwrap();
        assert_eq!(hc.port, Some(8080));
        assert_eq!(parse_matcher("200,202-204", 200, 499), Some(vec![(200, 200), (202, 204)]));
        assert_eq!(parse_matcher("", 200, 499), None);
    }
}
