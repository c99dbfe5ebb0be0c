//! Task sets of services an external controller deploys: CreateTaskSet, DescribeTaskSets,
//! UpdateTaskSet, UpdateServicePrimaryTaskSet, DeleteTaskSet.
//!
//! Task sets live in their service's record (`ServiceRecord::scheduler.task_sets`), so one
//! compare-and-swap covers a set and the service it belongs to; the service scheduler keeps
//! each set at its computed count (`berth_scheduler::task_set`).

use berth_control::services::{ServiceRecord, ServiceStatus};
use berth_model::arn;
use berth_scheduler::{AwsVpcConfiguration, Controller, Tag, TaskSet, TaskSetStatus};
use berth_store::KeyValue;
use serde_json::{Value, json};

use super::services::{
    client_token, find, refuse_unsupported, runnable, save_record, service_not_active, service_not_found,
};
use super::tasks::check_network;
use super::{Ctx, Obj, active_cluster, array, check_tags, cluster_arg, strings, text};
use crate::error::{ApiError, ApiResult};
use berth_control::store::retry;
use berth_model::launch::LaunchType;

/// How many task sets a service may have at once, DRAINING ones included (as ECS counts).
const MAX_TASK_SETS: usize = 5;

fn wrong_controller() -> ApiError {
    ApiError::invalid(
        "Amazon ECS only supports task set management on services configured to use external deployment controllers.",
    )
}

fn task_set_not_found() -> ApiError {
    ApiError::new(400, "TaskSetNotFoundException", "The specified task set wasn't found.")
}

/// The ECS `TaskSet` object.
pub fn render(ctx: &Ctx<'_>, rec: &ServiceRecord, set: &TaskSet, with_tags: bool) -> Value {
    let desired = rec.int("/desiredCount").unwrap_or(0).max(0) as u32;
    let [_, running, pending] = rec.counts.get(&set.id).copied().unwrap_or_default();
    let mut out = json!({
        "id": set.id,
        "taskSetArn": ctx.arns.task_set(&rec.cluster(), rec.name(), &set.id),
        "serviceArn": rec.service["serviceArn"],
        "clusterArn": rec.service["clusterArn"],
        "status": set.status.as_str(),
        "taskDefinition": set.task_definition,
        "computedDesiredCount": set.computed_desired(desired),
        "pendingCount": pending,
        "runningCount": running,
        "createdAt": set.created_at,
        "updatedAt": set.updated_at,
        "launchType": "EC2",
        "loadBalancers": [],
        "serviceRegistries": [],
        "scale": {"value": set.scale, "unit": "PERCENT"},
        "stabilityStatus": set.stability.as_str(),
        "stabilityStatusAt": set.stability_at,
    });
    if let Some(by) = &set.started_by {
        out["startedBy"] = json!(by);
    }
    if let Some(id) = &set.external_id {
        out["externalId"] = json!(id);
    }
    if let Some(c) = &set.awsvpc_configuration {
        out["networkConfiguration"] = json!({"awsvpcConfiguration": c});
    }
    if with_tags {
        out["tags"] = json!(set.tags);
    }
    out
}

/// The service a task set request names, ACTIVE, with a controller that allows `mutating`
/// requests (EXTERNAL only) or reads (CODE_DEPLOY too).
fn service_of(ctx: &Ctx<'_>, input: &Obj, mutating: bool) -> ApiResult<(String, KeyValue, ServiceRecord)> {
    let cluster = cluster_arg(input)?;
    active_cluster(ctx, &cluster)?;
    let given = text(input, "service").unwrap_or_default();
    let (kv, rec) = find(ctx, &cluster, given)?.ok_or_else(service_not_found)?;
    if rec.status != ServiceStatus::Active {
        return Err(service_not_active());
    }
    match rec.controller() {
        Controller::External => {}
        Controller::CodeDeploy if !mutating => {}
        _ => return Err(wrong_controller()),
    }
    Ok((cluster, kv, rec))
}

/// The index of the set `given` (an id or a task-set ARN) names in the service's list.
fn position(rec: &ServiceRecord, cluster: &str, given: &str) -> ApiResult<Option<usize>> {
    let id = if given.starts_with("arn:") {
        let parsed = arn::parse(given).filter(|p| p.kind == "task-set");
        let Some(rest) = parsed.map(|p| p.rest) else {
            return Err(ApiError::invalid("Task Set Identifier is invalid"));
        };
        // task-set/CLUSTER/SERVICE/ecs-svc/NNN
        let mut parts = rest.splitn(3, '/');
        let (Some(c), Some(s), Some(id)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(ApiError::invalid("Task Set Identifier is invalid"));
        };
        if c != cluster || s != rec.name() {
            return Ok(None);
        }
        id
    } else if given.starts_with("ecs-svc/") {
        given
    } else {
        return Err(ApiError::invalid("Task Set Identifier is invalid"));
    };
    Ok(rec.scheduler.task_sets.iter().position(|s| s.id == id))
}

/// `scale` as a percent: 0 to 100, unit PERCENT (the model's only unit).
fn scale_arg(input: &Obj) -> ApiResult<Option<f64>> {
    let Some(scale) = input.get("scale") else { return Ok(None) };
    let value = scale.get("value").and_then(Value::as_f64).unwrap_or(0.0);
    if !(0.0..=100.0).contains(&value) {
        return Err(ApiError::invalid("scale.value must be between 0 and 100."));
    }
    Ok(Some(value))
}

/// Members of CreateTaskSet that Berth cannot act on yet: refused, not ignored.
fn refuse_for_task_sets(input: &Obj) -> ApiResult<()> {
    if input.get("platformVersion").is_some_and(|v| !v.is_null()) {
        return Err(ApiError::invalid("platformVersion applies to the FARGATE launch type only."));
    }
    if text(input, "launchType").is_some_and(|lt| lt != "EC2") {
        return Err(ApiError::invalid("Berth runs task sets on the EC2 launch type only."));
    }
    if !array(input, "capacityProviderStrategy").is_empty() {
        return Err(ApiError::invalid("Berth does not support capacity provider strategies for task sets yet."));
    }
    if !array(input, "serviceRegistries").is_empty() {
        return Err(ApiError::invalid("Berth does not support service registries for task sets yet."));
    }
    refuse_unsupported(input)
}

pub async fn create(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let scale = scale_arg(&input)?.unwrap_or(0.0);
    refuse_for_task_sets(&input)?;
    let tags = array(&input, "tags");
    check_tags(&tags)?;
    let token = client_token(&input)?;
    let (input, tags, token) = (&input, &tags, &token);
    retry(move || async move {
        let (_, kv, mut rec) = service_of(ctx, input, true)?;
        if let Some(same) =
            rec.scheduler.task_sets.iter().find(|s| token.is_some() && s.client_token.as_ref() == token.as_ref())
        {
            return Ok(Some(json!({"taskSet": render(ctx, &rec, same, false)})));
        }
        let definition = runnable(ctx, text(input, "taskDefinition").unwrap_or_default())?;
        let network = check_network(ctx, &definition.definition, input, LaunchType::Ec2)?;
        if rec.scheduler.task_sets.len() >= MAX_TASK_SETS {
            return Err(ApiError::invalid(format!(
                "{MAX_TASK_SETS} deployments exist on the service. Unable to create new TaskSet since this exceeds the \
                 maximum limit."
            )));
        }
        let arn = definition.definition["taskDefinitionArn"].as_str().unwrap_or_default().to_string();
        let mut set =
            TaskSet::new(ctx.control.ids.deployment_id(), arn, scale, ctx.timestamp(), ctx.store().revision()?);
        set.external_id = text(input, "externalId").map(str::to_string);
        set.awsvpc_configuration = network.map(|n| AwsVpcConfiguration {
            subnets: n.subnets,
            security_groups: n.security_groups,
            assign_public_ip: if n.assign_public_ip { "ENABLED" } else { "DISABLED" }.to_string(),
        });
        set.client_token = token.clone();
        set.tags = tags.iter().map(|t| Tag { key: text_of(t, "key"), value: text_of(t, "value") }).collect();
        let id = set.id.clone();
        rec.scheduler.task_sets.push(set);
        rec.scheduler.steady = false;
        if save_record(ctx, &kv, &rec).await? {
            let set = rec.scheduler.task_sets.iter().find(|s| s.id == id).expect("just added");
            return Ok(Some(json!({"taskSet": render(ctx, &rec, set, false)})));
        }
        Ok(None)
    })
    .await
}

pub fn describe(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let (cluster, _, rec) = service_of(ctx, &input, false)?;
    let with_tags = strings(&input, "include").iter().any(|i| i == "TAGS");
    let wanted = strings(&input, "taskSets");
    let (mut sets, mut failures) = (Vec::new(), Vec::new());
    if !input.contains_key("taskSets") {
        sets = rec.scheduler.task_sets.iter().map(|s| render(ctx, &rec, s, with_tags)).collect();
    }
    for given in wanted {
        match position(&rec, &cluster, &given)? {
            Some(i) => sets.push(render(ctx, &rec, &rec.scheduler.task_sets[i], with_tags)),
            None => failures.push(json!({"arn": given, "reason": "MISSING"})),
        }
    }
    Ok(json!({"taskSets": sets, "failures": failures}))
}

/// Reads the service and the set `field` names, lets `edit` change the set (and the
/// service), and saves both with one compare-and-swap.
async fn change(
    ctx: &Ctx<'_>,
    input: &Obj,
    field: &str,
    edit: impl Fn(&mut ServiceRecord, usize) -> ApiResult<()>,
) -> ApiResult<Value> {
    let given = text(input, field).unwrap_or_default();
    let edit = &edit;
    retry(move || async move {
        let (cluster, kv, mut rec) = service_of(ctx, input, true)?;
        let i = position(&rec, &cluster, given)?.ok_or_else(task_set_not_found)?;
        edit(&mut rec, i)?;
        let now = ctx.timestamp();
        rec.scheduler.task_sets[i].updated_at = now;
        rec.scheduler.steady = false;
        if save_record(ctx, &kv, &rec).await? {
            return Ok(Some(json!({"taskSet": render(ctx, &rec, &rec.scheduler.task_sets[i], false)})));
        }
        Ok(None)
    })
    .await
}

fn text_of(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or_default().to_string()
}

fn not_draining(set: &TaskSet) -> ApiResult<()> {
    if set.status == TaskSetStatus::Draining {
        return Err(ApiError::invalid(format!("The task set {} is DRAINING: it cannot be changed.", set.id)));
    }
    Ok(())
}

pub async fn update(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let scale = scale_arg(&input)?.unwrap_or(0.0);
    change(ctx, &input, "taskSet", |rec, i| {
        let set = &mut rec.scheduler.task_sets[i];
        not_draining(set)?;
        set.scale = scale;
        Ok(())
    })
    .await
}

pub async fn update_primary(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    change(ctx, &input, "primaryTaskSet", |rec, i| {
        not_draining(&rec.scheduler.task_sets[i])?;
        for (j, set) in rec.scheduler.task_sets.iter_mut().enumerate() {
            if j == i {
                set.status = TaskSetStatus::Primary;
            } else if set.status == TaskSetStatus::Primary {
                set.status = TaskSetStatus::Active;
            }
        }
        Ok(())
    })
    .await
}

pub async fn delete(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let force = input.get("force").and_then(Value::as_bool).unwrap_or(false);
    change(ctx, &input, "taskSet", |rec, i| {
        let set = &mut rec.scheduler.task_sets[i];
        match set.status {
            TaskSetStatus::Primary => return Err(ApiError::invalid("Primary TaskSet cannot be deleted")),
            TaskSetStatus::Draining => return Ok(()),
            TaskSetStatus::Active => {}
        }
        if set.scale > 0.0 && !force {
            return Err(ApiError::invalid(format!(
                "The task set {} is scaled to {}%: scale it to 0 first or delete it with force.",
                set.id, set.scale
            )));
        }
        set.status = TaskSetStatus::Draining;
        Ok(())
    })
    .await
}
