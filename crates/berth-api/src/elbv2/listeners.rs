//! Listeners: CreateListener, DescribeListeners, ModifyListener, DeleteListener, their
//! attributes and DescribeListenerCertificates. HTTP and TCP listeners, so no certificates,
//! SSL policies, ALPN or mutual TLS: those are refused by name.

use berth_control::elb::attributes::{self, Attributed};
use berth_control::elb::listeners::{self, ListenerChange, ListenerRecord, NewListener};
use berth_control::elb::load_balancers;
use serde_json::{Value, json};

use super::actions::{actions_in, actions_out};
use super::{attributes_in, attributes_out, page, refuse, required, tags_in, u16_of, validation};
use crate::ecs::{Ctx, Obj, strings, text};
use crate::error::ApiResult;

/// What HTTPS and TLS listeners have, which Berth's do not.
const TLS_MEMBERS: &[&str] = &["Certificates", "SslPolicy", "AlpnPolicy", "MutualAuthentication"];

pub(crate) fn output(l: &ListenerRecord) -> Value {
    json!({
        "ListenerArn": l.arn,
        "LoadBalancerArn": l.load_balancer_arn,
        "Port": l.port,
        "Protocol": l.protocol.as_str(),
        "DefaultActions": actions_out(&l.default_actions),
    })
}

pub async fn create(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    refuse(&input, "CreateListener", TLS_MEMBERS)?;
    let new = NewListener {
        protocol: text(&input, "Protocol").map(str::to_string),
        port: u16_of(input.get("Port")),
        default_actions: actions_in(&input, "DefaultActions"),
        tags: tags_in(input.get("Tags")),
    };
    let listener = listeners::create(&ctx.region, required(&input, "LoadBalancerArn")?, new).await?;
    Ok(json!({ "Listeners": [output(&listener)] }))
}

pub fn describe(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let arns = strings(&input, "ListenerArns");
    let found = match (text(&input, "LoadBalancerArn"), arns.is_empty()) {
        (Some(_), false) => {
            return Err(validation("Listener ARNs and a load balancer ARN cannot be specified at the same time"));
        }
        (None, true) => return Err(validation("You must specify either listener ARNs or a load balancer ARN")),
        (Some(lb), true) => {
            let lb = load_balancers::get(&ctx.region, lb)?.record;
            listeners::of_load_balancer(&ctx.region, &lb.id)?
        }
        (None, false) => arns.iter().map(|a| Ok(listeners::get(&ctx.region, a)?.record)).collect::<ApiResult<_>>()?,
    };
    let items = found.iter().map(|l| (format!("{:05}{}", l.port, l.arn), output(l))).collect();
    page(&input, items, "Listeners")
}

pub async fn modify(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    refuse(&input, "ModifyListener", TLS_MEMBERS)?;
    let change = ListenerChange {
        protocol: text(&input, "Protocol").map(str::to_string),
        port: u16_of(input.get("Port")),
        default_actions: input.contains_key("DefaultActions").then(|| actions_in(&input, "DefaultActions")),
    };
    let listener = listeners::modify(&ctx.region, required(&input, "ListenerArn")?, &change).await?;
    Ok(json!({ "Listeners": [output(&listener)] }))
}

pub async fn delete(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    listeners::delete(&ctx.region, required(&input, "ListenerArn")?).await?;
    Ok(json!({}))
}

pub fn describe_attributes(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let l = listeners::get(&ctx.region, required(&input, "ListenerArn")?)?.record;
    Ok(attributes_out(attributes::describe(l.owner(), &l.attributes)))
}

pub async fn modify_attributes(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let arn = required(&input, "ListenerArn")?;
    let l = listeners::modify_attributes(&ctx.region, arn, &attributes_in(&input)).await?;
    Ok(attributes_out(attributes::describe(l.owner(), &l.attributes)))
}

/// HTTP and TCP listeners have no certificates.
pub fn certificates(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    listeners::get(&ctx.region, required(&input, "ListenerArn")?)?;
    page(&input, Vec::new(), "Certificates")
}
