//! Target groups: CreateTargetGroup, DescribeTargetGroups, ModifyTargetGroup (health
//! checks), DeleteTargetGroup and their attributes. `instance` and `ip` targets over HTTP/1.1
//! or TCP, IPv4; Lambda and ALB targets, other protocols and protocol versions are refused
//! by name.

use berth_control::elb::ElbError;
use berth_control::elb::attributes::{self, Attributed};
use berth_control::elb::load_balancers;
use berth_control::elb::refs::Refs;
use berth_control::elb::target_groups::{
    self, HealthCheckInput, NewTargetGroup, Protocol, TargetGroupRecord, TargetType,
};
use serde_json::{Value, json};

use super::{attributes_in, attributes_out, elb, page, refuse, required, tags_in, u16_of, u32_of, validation};
use crate::ecs::{Ctx, Obj, strings, text};
use crate::error::ApiResult;

fn output(tg: &TargetGroupRecord, refs: &Refs) -> Value {
    let hc = &tg.health_check;
    let mut out = json!({
        "TargetGroupArn": tg.arn,
        "TargetGroupName": tg.name,
        "Protocol": tg.protocol.as_str(),
        "Port": tg.port,
        "VpcId": tg.vpc_id,
        "HealthCheckProtocol": hc.protocol.as_str(),
        "HealthCheckPort": hc.port.map_or_else(|| "traffic-port".to_string(), |p| p.to_string()),
        "HealthCheckEnabled": hc.enabled,
        "HealthCheckIntervalSeconds": hc.interval,
        "HealthCheckTimeoutSeconds": hc.timeout,
        "HealthyThresholdCount": hc.healthy_threshold,
        "UnhealthyThresholdCount": hc.unhealthy_threshold,
        "LoadBalancerArns": refs.load_balancers_of(&tg.arn).into_iter().collect::<Vec<_>>(),
        "TargetType": tg.target_type.as_str(),
        "IpAddressType": "ipv4",
    });
    if let Some(path) = &hc.path {
        out["HealthCheckPath"] = json!(path);
    }
    if let Some(matcher) = &hc.matcher {
        out["Matcher"] = json!({"HttpCode": matcher});
    }
    if tg.protocol == Protocol::Http {
        out["ProtocolVersion"] = json!("HTTP1");
    }
    out
}

fn health_check_in(input: &Obj) -> HealthCheckInput {
    let matcher = input.get("Matcher");
    HealthCheckInput {
        enabled: input.get("HealthCheckEnabled").and_then(Value::as_bool),
        protocol: text(input, "HealthCheckProtocol").map(str::to_string),
        port: text(input, "HealthCheckPort").map(str::to_string),
        path: text(input, "HealthCheckPath").map(str::to_string),
        interval: u32_of(input.get("HealthCheckIntervalSeconds")),
        timeout: u32_of(input.get("HealthCheckTimeoutSeconds")),
        healthy_threshold: u32_of(input.get("HealthyThresholdCount")),
        unhealthy_threshold: u32_of(input.get("UnhealthyThresholdCount")),
        matcher: matcher.and_then(|m| m.get("HttpCode")).and_then(Value::as_str).map(str::to_string),
        grpc_code: matcher.and_then(|m| m.get("GrpcCode")).and_then(Value::as_str).map(str::to_string),
    }
}

fn unsupported(message: String) -> crate::error::ApiError {
    elb(ElbError::unsupported(message))
}

pub async fn create(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    refuse(&input, "CreateTargetGroup", &["TargetControlPort"])?;
    let target_type = match text(&input, "TargetType").unwrap_or("instance") {
        "instance" => TargetType::Instance,
        "ip" => TargetType::Ip,
        other => {
            return Err(unsupported(format!("Berth does not support targets of type '{other}': instance and ip only")));
        }
    };
    if let Some(t) = text(&input, "IpAddressType").filter(|t| *t != "ipv4") {
        return Err(unsupported(format!(
            "Berth does not support the IP address type '{t}': its target groups are IPv4"
        )));
    }
    let protocol = Protocol::parse("protocol", required(&input, "Protocol")?)?;
    match text(&input, "ProtocolVersion") {
        None => {}
        Some("HTTP1") if protocol == Protocol::Http => {}
        Some(v) if protocol == Protocol::Http => {
            return Err(unsupported(format!(
                "Berth does not support the protocol version '{v}': it speaks HTTP1 to targets"
            )));
        }
        Some(_) => return Err(validation("A protocol version can be specified for HTTP target groups only")),
    }
    let port = u16_of(input.get("Port")).ok_or_else(|| validation("A port must be specified"))?;
    let vpc_id = required(&input, "VpcId")?.to_string();
    crate::ec2::ready(ctx).await?;
    if berth_control::vpc::vpcs::get(&ctx.region, &vpc_id).is_err() {
        return Err(validation(format!("The VPC ID '{vpc_id}' is not found")));
    }
    let new = NewTargetGroup {
        name: required(&input, "Name")?.to_string(),
        protocol,
        port,
        vpc_id,
        target_type,
        health_check: health_check_in(&input),
        tags: tags_in(input.get("Tags")),
    };
    let tg = target_groups::create(&ctx.region, new).await?;
    let refs = Refs::read(&ctx.region)?;
    Ok(json!({ "TargetGroups": [output(&tg, &refs)] }))
}

pub fn describe(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let names = strings(&input, "Names");
    let arns = strings(&input, "TargetGroupArns");
    let lb_arn = text(&input, "LoadBalancerArn");
    if [!names.is_empty(), !arns.is_empty(), lb_arn.is_some()].iter().filter(|b| **b).count() > 1 {
        return Err(validation("You can specify only one of LoadBalancerArn, TargetGroupArns and Names"));
    }
    let refs = Refs::read(&ctx.region)?;
    let mut found = Vec::new();
    for arn in &arns {
        found.push(target_groups::get(&ctx.region, arn)?.record);
    }
    let mut missing = Vec::new();
    for name in &names {
        match target_groups::by_name(&ctx.region, name)? {
            Some(tg) => found.push(tg.record),
            None => missing.push(name.as_str()),
        }
    }
    if !missing.is_empty() {
        return Err(elb(ElbError::TargetGroupNotFound(format!("Target groups '[{}]' not found", missing.join(", ")))));
    }
    if arns.is_empty() && names.is_empty() {
        found = target_groups::list(&ctx.region)?;
        if let Some(lb_arn) = lb_arn {
            load_balancers::get(&ctx.region, lb_arn)?;
            found.retain(|tg| refs.load_balancers_of(&tg.arn).contains(lb_arn));
        }
    }
    let items = found.iter().map(|tg| (tg.name.clone(), output(tg, &refs))).collect();
    page(&input, items, "TargetGroups")
}

pub async fn modify(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let tg = target_groups::modify(&ctx.region, required(&input, "TargetGroupArn")?, &health_check_in(&input)).await?;
    let refs = Refs::read(&ctx.region)?;
    Ok(json!({ "TargetGroups": [output(&tg, &refs)] }))
}

pub async fn delete(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    target_groups::delete(&ctx.region, required(&input, "TargetGroupArn")?).await?;
    Ok(json!({}))
}

pub fn describe_attributes(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let tg = target_groups::get(&ctx.region, required(&input, "TargetGroupArn")?)?.record;
    Ok(attributes_out(attributes::describe(tg.owner(), &tg.attributes)))
}

pub async fn modify_attributes(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let arn = required(&input, "TargetGroupArn")?;
    let tg = target_groups::modify_attributes(&ctx.region, arn, &attributes_in(&input)).await?;
    Ok(attributes_out(attributes::describe(tg.owner(), &tg.attributes)))
}
