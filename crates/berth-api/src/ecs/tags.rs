//! Tags on any ECS resource: TagResource, UntagResource, ListTagsForResource. Tags live in
//! the resource's own record, so describing a resource with TAGS and listing its tags agree.
//!
//! A resource that does not exist gets the error ECS names for its kind: a cluster (also the
//! cluster of a task, instance or service) `ClusterNotFoundException`, a service
//! `ServiceNotFoundException`, a task definition revision the `ClientException` of
//! DescribeTaskDefinition; tasks, container instances and task sets `ResourceNotFoundException`.
//! A task set's tags sit in its service's record, beside the set.

use berth_model::arn::{self, ParsedArn};
use berth_store::{Compare, Op, Txn};
use serde_json::{Value, json};

use super::{Ctx, Obj, active_cluster, array, check_tags, merge_tags, strings, text};
use crate::error::{ApiError, ApiResult};
use berth_control::store::retry;

fn resource_not_found() -> ApiError {
    ApiError::new(400, "ResourceNotFoundException", "The specified resource could not be found.")
}

/// Where a tagged resource lives: its store key, where its tags sit inside the record, and
/// the error to answer when the record (or the resource inside it) is missing.
struct Location {
    key: String,
    pointer: Pointer,
    missing: fn() -> ApiError,
}

/// Where a resource's tags sit inside its record.
enum Pointer {
    Fixed(&'static str),
    /// The set with this id in its service record's list (found anew in every read).
    TaskSet(String),
}

impl Pointer {
    fn resolve(&self, record: &Value) -> Option<String> {
        match self {
            Pointer::Fixed(p) => Some(p.to_string()),
            Pointer::TaskSet(id) => {
                let sets = record.pointer("/scheduler/taskSets")?.as_array()?;
                let i = sets.iter().position(|s| s["id"] == id.as_str())?;
                Some(format!("/scheduler/taskSets/{i}/tags"))
            }
        }
    }
}

/// Finds the record an ARN names. Tasks, container instances and services are only tagged
/// through their long ARNs (`KIND/CLUSTER/ID`), as in ECS.
fn locate(ctx: &Ctx<'_>, given: &str) -> ApiResult<Location> {
    let Some(ParsedArn { region, account, kind, rest }) = arn::parse(given) else {
        return Err(ApiError::invalid("The ARN provided is invalid."));
    };
    if region != ctx.caller.region || account != ctx.config().account {
        return Err(resource_not_found());
    }
    let scoped = matches!(kind, "task" | "container-instance" | "service" | "task-set");
    let location = match (kind, rest.split_once('/')) {
        ("cluster", None) => {
            active_cluster(ctx, rest)?;
            Location {
                key: ctx.keys.cluster(rest),
                pointer: Pointer::Fixed("/tags"),
                missing: ApiError::cluster_not_found,
            }
        }
        ("task-definition", None) => {
            let revision = arn::task_definition_ref(rest).and_then(|(family, rev)| Some((family, rev?)));
            let (family, rev) = revision.ok_or_else(ApiError::task_definition_not_found)?;
            let key = ctx.keys.task_definition(family, rev);
            Location { key, pointer: Pointer::Fixed("/tags"), missing: ApiError::task_definition_not_found }
        }
        (_, None) if scoped => {
            return Err(ApiError::invalid("Long arn format must be used for tagging operations"));
        }
        ("task", Some((cluster, id))) => {
            active_cluster(ctx, cluster)?;
            Location {
                key: ctx.keys.task(cluster, id),
                pointer: Pointer::Fixed("/task/tags"),
                missing: resource_not_found,
            }
        }
        ("container-instance", Some((cluster, id))) => {
            active_cluster(ctx, cluster)?;
            let key = ctx.keys.instance(cluster, id);
            Location { key, pointer: Pointer::Fixed("/instance/tags"), missing: resource_not_found }
        }
        ("service", Some((cluster, name))) => {
            active_cluster(ctx, cluster)?;
            Location {
                key: ctx.keys.service(cluster, name),
                pointer: Pointer::Fixed("/service/tags"),
                missing: ApiError::service_not_found,
            }
        }
        // task-set/CLUSTER/SERVICE/ecs-svc/NNN
        ("task-set", Some((cluster, rest))) => {
            active_cluster(ctx, cluster)?;
            let (service, id) = rest.split_once('/').ok_or_else(resource_not_found)?;
            let key = ctx.keys.service(cluster, service);
            Location { key, pointer: Pointer::TaskSet(id.to_string()), missing: resource_not_found }
        }
        _ => return Err(resource_not_found()),
    };
    let record: Value = match ctx.store().get(&location.key)? {
        Some(kv) => super::decode(&kv)?,
        None => return Err((location.missing)()),
    };
    location.pointer.resolve(&record).ok_or_else(location.missing)?;
    Ok(location)
}

async fn change(ctx: &Ctx<'_>, arn: &str, edit: impl Fn(&mut Vec<Value>)) -> ApiResult<()> {
    let Location { key, pointer, missing } = locate(ctx, arn)?;
    let (edit, key, pointer) = (&edit, &key, &pointer);
    retry(move || async move {
        let kv = ctx.store().get(key)?.ok_or_else(missing)?;
        let mut record: Value = super::decode(&kv)?;
        let pointer = pointer.resolve(&record).ok_or_else(missing)?;
        let mut tags = record.pointer(&pointer).and_then(Value::as_array).cloned().unwrap_or_default();
        edit(&mut tags);
        check_tags(&tags)?;
        let (parent, field) = pointer.rsplit_once('/').expect("pointer has a field");
        let target = if parent.is_empty() { Some(&mut record) } else { record.pointer_mut(parent) };
        if let Some(obj) = target.and_then(Value::as_object_mut) {
            obj.insert(field.to_string(), Value::Array(tags));
        }
        let txn = Txn::new()
            .when(vec![Compare::unchanged(key, kv.mod_revision)])
            .and_then(vec![Op::put(key, super::encode(&record))]);
        if ctx.store().txn(txn).await?.succeeded {
            return Ok(Some(()));
        }
        Ok(None)
    })
    .await
}

pub async fn tag(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let arn = text(&input, "resourceArn").unwrap_or_default();
    let new = array(&input, "tags");
    check_tags(&new)?;
    change(ctx, arn, |tags| merge_tags(tags, &new)).await?;
    Ok(json!({}))
}

pub async fn untag(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let arn = text(&input, "resourceArn").unwrap_or_default();
    let keys = strings(&input, "tagKeys");
    change(ctx, arn, |tags| tags.retain(|t| !keys.iter().any(|k| t.get("key").and_then(Value::as_str) == Some(k))))
        .await?;
    Ok(json!({}))
}

pub fn list(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let arn = text(&input, "resourceArn").unwrap_or_default();
    let Location { key, pointer, missing } = locate(ctx, arn)?;
    let record: Value = super::decode(&ctx.store().get(&key)?.ok_or_else(missing)?)?;
    let pointer = pointer.resolve(&record).ok_or_else(missing)?;
    Ok(json!({"tags": record.pointer(&pointer).cloned().unwrap_or(json!([]))}))
}
