//! Listeners: a port of a load balancer, HTTP for an application load balancer and TCP for a
//! network one, with its default rule (actions only, evaluated last), attributes and tags.
//! The default rule has an ARN of its own (DescribeRules shows it); its actions change
//! through ModifyListener (or ModifyRule), and it goes only with its listener.
//!
//! Every load balancer of an installation listens on the one listener address (`--lb-address`,
//! the loopback address by default), so a port serves one listener across all load balancers
//! and regions: a key per port, created with a compare on its absence, holds the listener's
//! ARN. A second listener on a port of the same load balancer is `DuplicateListener`; on a port
//! another load balancer uses, `InvalidConfigurationRequest`.

use berth_store::{CmpOp, Compare, Op, Txn};
use serde::{Deserialize, Serialize};

use super::actions::{self, Action, ActionInput};
use super::arns::{self, ArnKind, LbType, Resource};
use super::attributes::{self, Attributed, Attributes, Owner};
use super::limits::LISTENERS;
use super::load_balancers::{self, LoadBalancerRecord};
use super::refs::{Forwarder, Refs};
use super::tags::{self, Tag};
use super::target_groups::{self, Protocol};
use super::{ElbError, Limit};
use crate::Region;
use crate::error::ControlResult;
use crate::keys::listener_port;
use crate::store::{encode, retry};
use crate::vpc::{Stored, read, read_all};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListenerRecord {
    pub arn: String,
    /// The id in its ARN: 16 hex digits.
    pub id: String,
    pub load_balancer_arn: String,
    pub lb_id: String,
    pub port: u16,
    pub protocol: Protocol,
    /// The default rule's actions.
    pub default_actions: Vec<Action>,
    pub default_rule_arn: String,
    #[serde(default)]
    pub default_rule_tags: Vec<Tag>,
    #[serde(default)]
    pub attributes: Attributes,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

impl Attributed for ListenerRecord {
    fn owner(&self) -> Owner {
        Owner::Listener(self.protocol)
    }

    fn attributes_mut(&mut self) -> &mut Attributes {
        &mut self.attributes
    }
}

impl ListenerRecord {}

/// What CreateListener asks for.
#[derive(Debug, Clone, Default)]
pub struct NewListener {
    pub protocol: Option<String>,
    pub port: Option<u16>,
    pub default_actions: Vec<ActionInput>,
    pub tags: Vec<Tag>,
}

/// What ModifyListener changes (absent: unchanged).
#[derive(Debug, Clone, Default)]
pub struct ListenerChange {
    pub protocol: Option<String>,
    pub port: Option<u16>,
    pub default_actions: Option<Vec<ActionInput>>,
}

/// A listener by ARN, if it exists (a malformed ARN is a `ValidationError`).
pub fn find(region: &Region<'_>, arn: &str) -> ControlResult<Option<Stored<ListenerRecord>>> {
    let Some(Resource::Listener { lb, id }) = arns::expect(region, ArnKind::Listener, arn)? else {
        return Ok(None);
    };
    Ok(read::<ListenerRecord>(region, &region.keys.listener(&lb.id, &id))?.filter(|s| s.record.arn == arn))
}

/// A listener by ARN: `ListenerNotFound` when there is none.
pub fn get(region: &Region<'_>, arn: &str) -> ControlResult<Stored<ListenerRecord>> {
    find(region, arn)?.ok_or_else(|| ElbError::listeners_not_found().into())
}

/// The listeners of a load balancer, by id.
pub fn of_load_balancer(region: &Region<'_>, lb_id: &str) -> ControlResult<Vec<ListenerRecord>> {
    Ok(read_all(region, &region.keys.listeners(lb_id))?.1.into_iter().map(|s| s.record).collect())
}

/// The protocol of a listener of a load balancer of `lb_type`: as given (ELB's choices for
/// the type, of which Berth speaks HTTP and TCP), else the type's own.
fn protocol_for(lb_type: LbType, given: Option<&str>) -> Result<Protocol, ElbError> {
    let Some(given) = given else {
        return Ok(if lb_type == LbType::Application { Protocol::Http } else { Protocol::Tcp });
    };
    let elb_allows: &[&str] = match lb_type {
        LbType::Application => &["HTTPS", "HTTP"],
        LbType::Network => &["TCP_QUIC", "QUIC", "UDP", "TCP", "TLS", "TCP_UDP"],
    };
    if !elb_allows.contains(&given) {
        return Err(ElbError::validation(format!(
            "Listener protocol '{given}' must be one of '{}'",
            elb_allows.join(", ")
        )));
    }
    Protocol::parse("listener protocol", given)
}

/// Checks that every target group `actions` forward to exists, speaks `protocol`, is in the
/// load balancer's VPC and serves no other load balancer (forwarders other than `except`);
/// returns the compares that keep those groups there until the change commits.
pub(crate) fn check_forwards(
    region: &Region<'_>,
    lb: &LoadBalancerRecord,
    protocol: Protocol,
    actions: &[Action],
    refs: &Refs,
    except: Option<Forwarder<'_>>,
) -> ControlResult<Vec<Compare>> {
    let mut compares = Vec::new();
    for arn in actions.iter().flat_map(Action::target_groups) {
        let tg = target_groups::find(region, arn)?.ok_or_else(|| ElbError::target_group_not_found(arn))?;
        if tg.record.protocol != protocol {
            return Err(ElbError::IncompatibleProtocols(format!(
                "Listener protocol '{}' is not compatible with protocol '{}' of target group '{arn}'",
                protocol.as_str(),
                tg.record.protocol.as_str()
            ))
            .into());
        }
        if tg.record.vpc_id != lb.vpc_id {
            return Err(ElbError::InvalidConfigurationRequest(format!(
                "Target group '{arn}' is in VPC '{}', not in the load balancer's VPC '{}'",
                tg.record.vpc_id, lb.vpc_id
            ))
            .into());
        }
        let others = refs.load_balancer_ids(arn, except);
        if others.iter().any(|id| *id != lb.id) {
            return Err(ElbError::TargetGroupAssociationLimit(format!(
                "The following target groups cannot be associated with more than one load balancer: {arn}"
            ))
            .into());
        }
        compares.push(Compare::CreateRevision(tg.kv.key.clone(), CmpOp::Equal, tg.kv.create_revision));
    }
    Ok(compares)
}

/// Who holds `port`: nobody, or the listener whose ARN its key holds (and that key).
fn port_holder(region: &Region<'_>, port: u16) -> ControlResult<Option<String>> {
    Ok(region.store().get(&listener_port(port))?.map(|kv| String::from_utf8_lossy(&kv.value).into_owned()))
}

/// The error for a port already held by `holder`, for a listener of `lb`.
fn port_taken(lb: &LoadBalancerRecord, port: u16, holder: &str) -> ElbError {
    let same_lb = matches!(arns::parse(holder), Some(a) if matches!(&a.resource, Resource::Listener { lb: l, .. } if l.id == lb.id));
    if same_lb {
        ElbError::DuplicateListener { port, load_balancer: lb.arn.clone() }
    } else {
        ElbError::InvalidConfigurationRequest(format!(
            "Port {port} is used by listener '{holder}': every Berth load balancer listens on the same address, so a port serves one listener"
        ))
    }
}

/// CreateListener. The same listener asked for again (same port, protocol, actions and
/// tags) is answered as it is, as ELB does.
pub async fn create(region: &Region<'_>, lb_arn: &str, new: NewListener) -> ControlResult<ListenerRecord> {
    tags::check_new(&new.tags)?;
    let port = new.port.ok_or_else(|| ElbError::validation("A listener port must be specified"))?;
    retry(|| async {
        let lb = load_balancers::get(region, lb_arn)?;
        let protocol = protocol_for(lb.record.lb_type, new.protocol.as_deref())?;
        let default_actions = actions::check(lb.record.lb_type, &new.default_actions)?;
        if let Some(holder) = port_holder(region, port)? {
            if let Some(existing) = find(region, &holder)? {
                let e = &existing.record;
                let same = e.lb_id == lb.record.id
                    && e.protocol == protocol
                    && e.default_actions == default_actions
                    && e.tags == new.tags;
                if same {
                    return Ok(Some(existing.record));
                }
            }
            return Err(port_taken(&lb.record, port, &holder).into());
        }
        let refs = Refs::read(region)?;
        if refs.listeners.iter().filter(|l| l.record.lb_id == lb.record.id).count() >= LISTENERS {
            let message = format!("A load balancer can have at most {LISTENERS} listeners");
            return Err(ElbError::too_many(Limit::Listeners, message).into());
        }
        let mut compares = check_forwards(region, &lb.record, protocol, &default_actions, &refs, None)?;
        let lb_ref = lb.record.lb_ref();
        let id = arns::new_id(region);
        let listener = ListenerRecord {
            arn: lb_ref.listener_arn(region, &id),
            default_rule_arn: lb_ref.rule_arn(region, &id, &arns::new_id(region)),
            id,
            load_balancer_arn: lb.record.arn.clone(),
            lb_id: lb.record.id.clone(),
            port,
            protocol,
            default_actions,
            default_rule_tags: Vec::new(),
            attributes: Attributes::new(),
            tags: new.tags.clone(),
        };
        let key = region.keys.listener(&listener.lb_id, &listener.id);
        compares.extend(refs.guards(region));
        compares.extend([
            Compare::absent(&key),
            Compare::absent(&listener_port(port)),
            Compare::CreateRevision(lb.kv.key.clone(), CmpOp::Equal, lb.kv.create_revision),
        ]);
        let ops =
            vec![Op::put(&key, encode(&listener)), Op::put(&listener_port(port), listener.arn.clone().into_bytes())];
        let done = region.store().txn(Txn::new().when(compares).and_then(ops)).await?.succeeded;
        Ok(done.then_some(listener))
    })
    .await
}

/// ModifyListener: its port, protocol or default actions.
pub async fn modify(region: &Region<'_>, arn: &str, change: &ListenerChange) -> ControlResult<ListenerRecord> {
    retry(|| async {
        let current = get(region, arn)?;
        let lb = load_balancers::get(region, &current.record.load_balancer_arn)?;
        let mut listener = current.record.clone();
        if let Some(p) = &change.protocol {
            listener.protocol = protocol_for(lb.record.lb_type, Some(p))?;
        }
        let mut compares = vec![Compare::unchanged(&current.kv.key, current.kv.mod_revision)];
        let mut ops = Vec::new();
        if let Some(port) = change.port.filter(|p| *p != listener.port) {
            if let Some(holder) = port_holder(region, port)? {
                return Err(port_taken(&lb.record, port, &holder).into());
            }
            compares.push(Compare::absent(&listener_port(port)));
            ops.push(Op::delete(&listener_port(listener.port)));
            ops.push(Op::put(&listener_port(port), listener.arn.clone().into_bytes()));
            listener.port = port;
        }
        if let Some(inputs) = &change.default_actions {
            listener.default_actions = actions::check(lb.record.lb_type, inputs)?;
        }
        if change.default_actions.is_some() || listener.protocol != current.record.protocol {
            let refs = Refs::read(region)?;
            let except = Some(Forwarder::Listener(arn));
            compares.extend(check_forwards(
                region,
                &lb.record,
                listener.protocol,
                &listener.default_actions,
                &refs,
                except,
            )?);
            compares.extend(refs.guards(region));
        }
        ops.push(Op::put(&current.kv.key, encode(&listener)));
        let done = region.store().txn(Txn::new().when(compares).and_then(ops)).await?.succeeded;
        Ok(done.then_some(listener))
    })
    .await
}

/// The writes that go with removing `listener`: its rules and its port.
pub(crate) fn release_ops(region: &Region<'_>, listener: &ListenerRecord) -> Vec<Op> {
    vec![Op::delete_prefix(&region.keys.rules(&listener.id)), Op::delete(&listener_port(listener.port))]
}

/// DeleteListener: with its rules.
pub async fn delete(region: &Region<'_>, arn: &str) -> ControlResult<()> {
    retry(|| async {
        let listener = get(region, arn)?;
        let mut ops = vec![Op::delete(&listener.kv.key)];
        ops.extend(release_ops(region, &listener.record));
        let txn = Txn::new().when(vec![Compare::unchanged(&listener.kv.key, listener.kv.mod_revision)]).and_then(ops);
        Ok(region.store().txn(txn).await?.succeeded.then_some(()))
    })
    .await
}

/// Reads a listener, changes it, writes it back (guarded by its revision).
async fn update(
    region: &Region<'_>,
    arn: &str,
    change: impl FnMut(&mut ListenerRecord) -> ControlResult<()>,
) -> ControlResult<ListenerRecord> {
    super::update(region, || get(region, arn), change).await
}

/// ModifyListenerAttributes.
pub async fn modify_attributes(
    region: &Region<'_>,
    arn: &str,
    changes: &[(String, String)],
) -> ControlResult<ListenerRecord> {
    update(region, arn, |l| attributes::change(l, changes)).await
}
