//! Container instances: RegisterContainerInstance (as an agent calls it),
//! DescribeContainerInstances, ListContainerInstances, DeregisterContainerInstance,
//! UpdateContainerInstancesState, and the attribute operations PutAttributes,
//! ListAttributes, DeleteAttributes.
//!
//! An instance's `remainingResources` is kept true by the task operations, which update it
//! in the same transaction that places or releases a task.

use std::collections::HashMap;

use berth_model::arn::scoped_id;
use berth_model::resources::{RESERVED_PORTS, Resources};
use berth_store::{Compare, KeyValue, Op, StoreExt, Txn};
use serde_json::{Value, json};

use super::{
    Ctx, Obj, active_cluster, check_tags, cluster_arg, decode, encode, max_results, page, strings, text, with_token,
};
use super::{array, missing};
use crate::error::{ApiError, ApiResult};
use berth_control::fargate;
use berth_control::records::{Host, InstanceRecord, InstanceStatus, TaskRecord};
use berth_control::store::retry;

/// Running and pending task counts per instance id.
fn task_counts(ctx: &Ctx<'_>, cluster: &str) -> ApiResult<HashMap<String, (usize, usize)>> {
    let mut counts: HashMap<String, (usize, usize)> = HashMap::new();
    for kv in ctx.store().list(&ctx.keys.tasks(cluster))? {
        let rec: TaskRecord = decode(&kv)?;
        let Some(id) = rec.instance_id() else {
            continue;
        };
        let status = rec.last_status;
        let entry = counts.entry(id.to_string()).or_default();
        if status.is_running() {
            entry.0 += 1;
        } else if status.is_pending() {
            entry.1 += 1;
        }
    }
    Ok(counts)
}

fn render(
    ctx: &Ctx<'_>,
    kv: &KeyValue,
    rec: &InstanceRecord,
    counts: &HashMap<String, (usize, usize)>,
    with_tags: bool,
) -> Value {
    let mut out = rec.ecs();
    let id = kv.key.rsplit('/').next().unwrap_or_default();
    let (running, pending) = counts.get(id).copied().unwrap_or_default();
    let timeout = ctx.config().agent_timeout.as_secs_f64();
    out.insert("agentConnected".into(), json!(rec.connected(ctx.timestamp(), timeout)));
    out.insert("runningTasksCount".into(), json!(running));
    out.insert("pendingTasksCount".into(), json!(pending));
    out.insert("version".into(), json!(kv.version));
    if !with_tags {
        out.remove("tags");
    }
    Value::Object(out)
}

/// The instance id named by an id or ARN, if it belongs to `cluster`.
fn instance_id<'a>(cluster: &str, given: &'a str) -> Option<&'a str> {
    match scoped_id(given, "container-instance")? {
        (Some(c), id) if c == cluster => Some(id),
        (None, id) => Some(id),
        _ => None,
    }
}

pub async fn register(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let cluster = cluster_arg(&input)?;
    let tags = array(&input, "tags");
    check_tags(&tags)?;
    check_attributes(input.get("attributes").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default())?;
    let total_list = array(&input, "totalResources");
    let mut registered = Resources::from_ecs(&total_list);
    if !total_list.iter().any(|r| r.get("name").and_then(Value::as_str) == Some("PORTS")) {
        registered.tcp_ports.extend(RESERVED_PORTS);
    }
    if registered.cpu < 0 || registered.memory < 0 {
        return Err(ApiError::invalid("CPU and MEMORY resources must not be negative."));
    }
    let identity: Obj =
        text(&input, "instanceIdentityDocument").and_then(|d| serde_json::from_str(d).ok()).unwrap_or_default();
    let reuse = match text(&input, "containerInstanceArn") {
        Some(given) => Some(
            instance_id(&cluster, given).ok_or_else(|| ApiError::invalid("Invalid containerInstanceArn."))?.to_string(),
        ),
        None => None,
    };
    let (cluster, identity, input, registered, reuse, tags) = (&cluster, &identity, &input, &registered, &reuse, &tags);
    retry(move || async move {
        let (cluster_kv, _) = active_cluster(ctx, cluster)?;
        let id = reuse.clone().unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
        let key = ctx.keys.instance(cluster, &id);
        let previous = ctx.store().get(&key)?;
        let mut remaining = registered.clone();
        let mut instance = Obj::new();
        if let Some(kv) = &previous {
            // Re-registration: keep identity and what running tasks hold.
            let old: InstanceRecord = decode(kv)?;
            instance = old.instance;
            for tkv in ctx.store().list(&ctx.keys.tasks(cluster))? {
                let task: TaskRecord = decode(&tkv)?;
                if task.instance_id() == Some(id.as_str()) && task.last_status != berth_model::task::TaskStatus::Stopped
                {
                    remaining.reserve(&task.requirements);
                }
            }
            // And the FARGATE tasks it hosts, of any cluster.
            let host = Host { cluster: cluster.clone(), id: id.clone() };
            for tkv in fargate::hosted_records(ctx, &host)? {
                let task: TaskRecord = decode(&tkv)?;
                if task.live() {
                    remaining.reserve(&task.requirements);
                }
            }
        }
        instance.insert("containerInstanceArn".into(), json!(ctx.arns.container_instance(cluster, &id)));
        // The identity document's instance id; an instance without one (a Berth agent) gets
        // an id of EC2's shape once and keeps it: load balancers name instance targets by it.
        if let Some(ec2) = identity.get("instanceId") {
            instance.insert("ec2InstanceId".into(), ec2.clone());
        }
        if !instance.contains_key("ec2InstanceId") {
            instance.insert("ec2InstanceId".into(), json!(ctx.control.ids.ec2_id("i")));
        }
        instance.insert("versionInfo".into(), input.get("versionInfo").cloned().unwrap_or(json!({})));
        instance.insert("registeredResources".into(), registered.to_ecs());
        instance.insert("remainingResources".into(), remaining.to_ecs());
        instance.insert("agentConnected".into(), json!(true));
        let mut attributes = array(input, "attributes");
        for (attr, field) in [("ecs.availability-zone", "availabilityZone"), ("ecs.instance-type", "instanceType")] {
            if let Some(v) = identity.get(field)
                && !attributes.iter().any(|a| a.get("name").and_then(Value::as_str) == Some(attr))
            {
                attributes.push(json!({"name": attr, "value": v}));
            }
        }
        instance.insert("attributes".into(), Value::Array(attributes));
        instance.entry("registeredAt").or_insert(json!(ctx.timestamp()));
        instance.entry("attachments").or_insert(json!([]));
        instance.insert("tags".into(), Value::Array(tags.clone()));
        if let Some(devices) = input.get("platformDevices") {
            instance.insert("platformDevices".into(), devices.clone());
        }
        let lends = fargate::lends(instance["attributes"].as_array().map(Vec::as_slice).unwrap_or_default());
        let rec = InstanceRecord { instance, status: InstanceStatus::Active, heartbeat: ctx.timestamp() };
        let index = ctx.keys.fargate_host(cluster, &id);
        let txn = Txn::new()
            .when(vec![
                Compare::unchanged(&cluster_kv.key, cluster_kv.mod_revision),
                Compare::unchanged(&key, previous.map(|kv| kv.mod_revision).unwrap_or(0)),
            ])
            .and_then(vec![
                Op::put(&key, encode(&rec)),
                if lends { Op::put(&index, b"{}".to_vec()) } else { Op::delete(&index) },
            ]);
        if ctx.store().txn(txn).await?.succeeded {
            let kv = ctx.store().get(&key)?.ok_or_else(|| ApiError::server("instance vanished"))?;
            let counts = task_counts(ctx, cluster)?;
            // ECS answers `tags` only when the registration had some.
            return Ok(Some(json!({"containerInstance": render(ctx, &kv, &rec, &counts, !tags.is_empty())})));
        }
        Ok(None)
    })
    .await
}

pub fn describe(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let cluster = cluster_arg(&input)?;
    active_cluster(ctx, &cluster)?;
    let wanted = strings(&input, "containerInstances");
    if wanted.is_empty() {
        return Err(ApiError::invalid("Container instances cannot be empty."));
    }
    if wanted.len() > 100 {
        return Err(ApiError::invalid("At most 100 container instances can be described at once."));
    }
    let with_tags = strings(&input, "include").iter().any(|i| i == "TAGS");
    let counts = task_counts(ctx, &cluster)?;
    let (mut found, mut failures) = (Vec::new(), Vec::new());
    for given in wanted {
        let kv = match instance_id(&cluster, &given) {
            Some(id) => ctx.store().get(&ctx.keys.instance(&cluster, id))?,
            None => None,
        };
        match kv {
            Some(kv) => found.push(render(ctx, &kv, &decode(&kv)?, &counts, with_tags)),
            None => failures.push(missing(&given, |id| ctx.arns.container_instance(&cluster, id))),
        }
    }
    Ok(json!({"containerInstances": found, "failures": failures}))
}

pub async fn list(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let cluster = cluster_arg(&input)?;
    active_cluster(ctx, &cluster)?;
    let limit = max_results(&input, 100)?;
    let filter = text(&input, "filter").map(super::placement::expression).transpose()?;
    let status = text(&input, "status");
    let mut items = Vec::new();
    if status == Some("INACTIVE") {
        for kv in ctx.store().list(&ctx.keys.instances(&cluster))? {
            let rec: InstanceRecord = decode(&kv)?;
            if rec.status == InstanceStatus::Inactive {
                items.push((kv.key.clone(), rec.instance["containerInstanceArn"].clone()));
            }
        }
    } else {
        for c in super::placement::candidates(ctx, &cluster).await? {
            let keep = status.is_none_or(|s| c.record.status.as_str() == s)
                && filter.as_ref().is_none_or(|f| berth_placement::matches(&c.view, f));
            if keep {
                items.push((c.kv.key.clone(), c.record.instance["containerInstanceArn"].clone()));
            }
        }
    }
    let (arns, next) = page(&input, items, limit)?;
    let mut out = Obj::new();
    out.insert("containerInstanceArns".into(), Value::Array(arns));
    Ok(with_token(out, next))
}

pub async fn deregister(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let cluster = cluster_arg(&input)?;
    let given = text(&input, "containerInstance").unwrap_or_default();
    let id = instance_id(&cluster, given)
        .ok_or_else(|| ApiError::invalid("Invalid containerInstance identifier."))?
        .to_string();
    let force = input.get("force").and_then(Value::as_bool).unwrap_or(false);
    let key = ctx.keys.instance(&cluster, &id);
    let (cluster, id, key) = (&cluster, &id, &key);
    retry(move || async move {
        active_cluster(ctx, cluster)?;
        let kv = ctx
            .store()
            .get(key)?
            .ok_or_else(|| ApiError::invalid("The referenced container instance was not found."))?;
        let mut rec: InstanceRecord = decode(&kv)?;
        let counts = task_counts(ctx, cluster)?;
        let (running, pending) = counts.get(id).copied().unwrap_or_default();
        if running + pending > 0 && !force {
            return Err(ApiError::invalid("Found running tasks on the instance."));
        }
        rec.status = InstanceStatus::Inactive;
        rec.instance.insert("agentConnected".into(), json!(false));
        let ops = vec![Op::put(key, encode(&rec)), Op::delete(&ctx.keys.fargate_host(cluster, id))];
        let txn = Txn::new().when(vec![Compare::unchanged(key, kv.mod_revision)]).and_then(ops);
        if ctx.store().txn(txn).await?.succeeded {
            let kv = ctx.store().get(key)?.ok_or_else(|| ApiError::server("instance vanished"))?;
            return Ok(Some(json!({"containerInstance": render(ctx, &kv, &rec, &counts, false)})));
        }
        Ok(None)
    })
    .await
}

/// Applies `change` to each named instance of `cluster` in one transaction; instances that do
/// not exist become `MISSING` failures and instances `change` refuses become its failure.
async fn update_each(
    ctx: &Ctx<'_>,
    cluster: &str,
    wanted: &[String],
    change: impl Fn(&mut InstanceRecord) -> Result<(), String>,
) -> ApiResult<(Vec<(KeyValue, InstanceRecord)>, Vec<Value>)> {
    let change = &change;
    retry(move || async move {
        active_cluster(ctx, cluster)?;
        let (mut changed, mut failures, mut compares, mut ops) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for given in wanted {
            let kv = match instance_id(cluster, given) {
                Some(id) => ctx.store().get(&ctx.keys.instance(cluster, id))?,
                None => None,
            };
            let arn =
                if given.starts_with("arn:") { given.clone() } else { ctx.arns.container_instance(cluster, given) };
            let Some(kv) = kv else {
                failures.push(json!({"arn": arn, "reason": "MISSING"}));
                continue;
            };
            let mut rec: InstanceRecord = decode(&kv)?;
            if let Err(reason) = change(&mut rec) {
                failures.push(json!({"arn": arn, "reason": reason}));
                continue;
            }
            compares.push(Compare::unchanged(&kv.key, kv.mod_revision));
            ops.push(Op::put(&kv.key, encode(&rec)));
            changed.push((kv, rec));
        }
        if ops.is_empty() || ctx.store().txn(Txn::new().when(compares).and_then(ops)).await?.succeeded {
            let mut fresh = Vec::with_capacity(changed.len());
            for (kv, rec) in changed {
                let kv = ctx.store().get(&kv.key)?.unwrap_or(kv);
                fresh.push((kv, rec));
            }
            return Ok(Some((fresh, failures)));
        }
        Ok(None)
    })
    .await
}

pub async fn update_state(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let cluster = cluster_arg(&input)?;
    let status = text(&input, "status").unwrap_or_default().to_string();
    let wanted_status = match InstanceStatus::parse(&status) {
        Some(s @ (InstanceStatus::Active | InstanceStatus::Draining)) => s,
        _ => {
            return Err(ApiError::invalid(format!(
                "Container instances can only be set to ACTIVE or DRAINING, not {status}."
            )));
        }
    };
    let wanted = strings(&input, "containerInstances");
    if wanted.is_empty() || wanted.len() > 10 {
        return Err(ApiError::invalid("containerInstances must name between 1 and 10 container instances."));
    }
    let (changed, failures) = update_each(ctx, &cluster, &wanted, |rec| {
        if rec.status == InstanceStatus::Inactive {
            return Err("INACTIVE".into());
        }
        rec.status = wanted_status;
        Ok(())
    })
    .await?;
    let counts = task_counts(ctx, &cluster)?;
    let rendered: Vec<Value> = changed.iter().map(|(kv, rec)| render(ctx, kv, rec, &counts, false)).collect();
    Ok(json!({"containerInstances": rendered, "failures": failures}))
}

fn check_attributes(attributes: &[Value]) -> ApiResult<()> {
    for a in attributes {
        let name = a.get("name").and_then(Value::as_str).unwrap_or_default();
        let name_ok = !name.is_empty()
            && name.len() <= 128
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/' | b'@'));
        if !name_ok {
            return Err(ApiError::invalid(format!(
                "Invalid attribute name '{name}': 1-128 letters, numbers, hyphens, underscores, periods, slashes or at signs."
            )));
        }
        if let Some(value) = a.get("value").and_then(Value::as_str) {
            let value_ok = !value.is_empty()
                && value.len() <= 128
                && value.bytes().all(|b| b.is_ascii_alphanumeric() || b" -_./@:".contains(&b));
            if !value_ok {
                return Err(ApiError::invalid(format!("Invalid value for attribute '{name}'.")));
            }
        }
        if let Some(t) = a.get("targetType").and_then(Value::as_str)
            && t != "container-instance"
        {
            return Err(ApiError::invalid("targetType must be container-instance."));
        }
    }
    Ok(())
}

/// Groups attribute changes by the instance they target.
fn by_target(ctx: &Ctx<'_>, cluster: &str, attributes: &[Value]) -> ApiResult<Vec<(String, Vec<Value>)>> {
    let mut groups: Vec<(String, Vec<Value>)> = Vec::new();
    for a in attributes {
        let target = a
            .get("targetId")
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::invalid("targetId is required for attributes of container instances."))?;
        let id = instance_id(cluster, target)
            .filter(|id| matches!(ctx.store().get(&ctx.keys.instance(cluster, id)), Ok(Some(_))))
            .ok_or_else(|| {
                ApiError::new(400, "TargetNotFoundException", format!("Could not find container instance '{target}'."))
            })?;
        let mut plain = a.clone();
        if let Some(o) = plain.as_object_mut() {
            o.remove("targetId");
            o.remove("targetType");
        }
        match groups.iter_mut().find(|(g, _)| g == id) {
            Some((_, list)) => list.push(plain),
            None => groups.push((id.to_string(), vec![plain])),
        }
    }
    Ok(groups)
}

async fn change_attributes(ctx: &Ctx<'_>, input: Obj, put: bool) -> ApiResult<Value> {
    let cluster = cluster_arg(&input)?;
    let attributes = array(&input, "attributes");
    if attributes.is_empty() || attributes.len() > 10 {
        return Err(ApiError::invalid("attributes must hold between 1 and 10 attributes."));
    }
    check_attributes(&attributes)?;
    active_cluster(ctx, &cluster)?;
    for (id, list) in by_target(ctx, &cluster, &attributes)? {
        update_each(ctx, &cluster, std::slice::from_ref(&id), |rec| {
            let mut current = rec.instance.get("attributes").and_then(Value::as_array).cloned().unwrap_or_default();
            for a in &list {
                current.retain(|c| c.get("name") != a.get("name"));
                if put {
                    current.push(a.clone());
                }
            }
            rec.instance.insert("attributes".into(), Value::Array(current));
            Ok(())
        })
        .await?;
    }
    let echoed: Vec<Value> = attributes
        .into_iter()
        .map(|mut a| {
            if let Some(o) = a.as_object_mut() {
                o.entry("targetType").or_insert(json!("container-instance"));
            }
            a
        })
        .collect();
    Ok(json!({"attributes": echoed}))
}

pub async fn put_attributes(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    change_attributes(ctx, input, true).await
}

pub async fn delete_attributes(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    change_attributes(ctx, input, false).await
}

pub fn list_attributes(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let cluster = cluster_arg(&input)?;
    active_cluster(ctx, &cluster)?;
    let limit = max_results(&input, 100)?;
    let (name, value) = (text(&input, "attributeName"), text(&input, "attributeValue"));
    if value.is_some() && name.is_none() {
        return Err(ApiError::invalid("attributeValue can only be given together with attributeName."));
    }
    let mut items = Vec::new();
    for kv in ctx.store().list(&ctx.keys.instances(&cluster))? {
        let rec: InstanceRecord = decode(&kv)?;
        if rec.status == InstanceStatus::Inactive {
            continue;
        }
        let arn = rec.instance["containerInstanceArn"].clone();
        for a in rec.instance.get("attributes").and_then(Value::as_array).into_iter().flatten() {
            let a_name = a.get("name").and_then(Value::as_str);
            if name.is_some_and(|n| Some(n) != a_name)
                || value.is_some_and(|v| Some(v) != a.get("value").and_then(Value::as_str))
            {
                continue;
            }
            let mut out = a.clone();
            out["targetType"] = json!("container-instance");
            out["targetId"] = arn.clone();
            items.push((format!("{}#{}", kv.key, a_name.unwrap_or_default()), out));
        }
    }
    let (attributes, next) = page(&input, items, limit)?;
    let mut out = Obj::new();
    out.insert("attributes".into(), Value::Array(attributes));
    Ok(with_token(out, next))
}
