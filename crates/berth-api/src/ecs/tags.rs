//! Tags on any ECS resource: TagResource, UntagResource, ListTagsForResource. Tags live in
//! the resource's own record, so describing a resource with TAGS and listing its tags agree.

use berth_model::arn::{self, ParsedArn};
use berth_store::{Compare, Op, Txn};
use serde_json::{Value, json};

use super::{Ctx, MAX_ATTEMPTS, Obj, array, check_tags, contention, merge_tags, strings, text};
use crate::error::{ApiError, ApiResult};

/// The store key of the record an ARN names and where its tags sit inside that record.
fn locate(ctx: &Ctx<'_>, given: &str) -> ApiResult<(String, &'static str)> {
    let not_found = || ApiError::new(400, "ResourceNotFoundException", "The specified resource could not be found.");
    let Some(ParsedArn { region, account, kind, rest }) = arn::parse(given) else {
        return Err(ApiError::invalid(format!("Invalid resource ARN '{given}'.")));
    };
    if region != ctx.caller.region || account != ctx.app.config.account {
        return Err(not_found());
    }
    let (key, pointer) = match (kind, rest.split_once('/')) {
        ("cluster", None) => (ctx.keys.cluster(rest), "/tags"),
        ("task-definition", None) => {
            let (family, rev) = rest.split_once(':').ok_or_else(not_found)?;
            (ctx.keys.task_definition(family, rev.parse().map_err(|_| not_found())?), "/tags")
        }
        ("task", Some((cluster, id))) => (ctx.keys.task(cluster, id), "/task/tags"),
        ("container-instance", Some((cluster, id))) => (ctx.keys.instance(cluster, id), "/instance/tags"),
        ("service", Some((cluster, name))) => (ctx.keys.service(cluster, name), "/service/tags"),
        _ => return Err(not_found()),
    };
    if ctx.store().get(&key)?.is_none() {
        return Err(not_found());
    }
    Ok((key, pointer))
}

async fn change(ctx: &Ctx<'_>, arn: &str, edit: impl Fn(&mut Vec<Value>)) -> ApiResult<()> {
    let (key, pointer) = locate(ctx, arn)?;
    for _ in 0..MAX_ATTEMPTS {
        let kv = ctx.store().get(&key)?.ok_or_else(|| {
            ApiError::new(400, "ResourceNotFoundException", "The specified resource could not be found.")
        })?;
        let mut record: Value = super::decode(&kv)?;
        let mut tags = record.pointer(pointer).and_then(Value::as_array).cloned().unwrap_or_default();
        edit(&mut tags);
        check_tags(&tags)?;
        let (parent, field) = pointer.rsplit_once('/').expect("pointer has a field");
        let target = if parent.is_empty() { Some(&mut record) } else { record.pointer_mut(parent) };
        if let Some(obj) = target.and_then(Value::as_object_mut) {
            obj.insert(field.to_string(), Value::Array(tags));
        }
        let txn = Txn::new()
            .when(vec![Compare::unchanged(&key, kv.mod_revision)])
            .and_then(vec![Op::put(&key, super::encode(&record))]);
        if ctx.store().txn(txn).await?.succeeded {
            return Ok(());
        }
    }
    Err(contention())
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
    let (key, pointer) = locate(ctx, arn)?;
    let record: Value = match ctx.store().get(&key)? {
        Some(kv) => super::decode(&kv)?,
        None => Value::Null,
    };
    Ok(json!({"tags": record.pointer(pointer).cloned().unwrap_or(json!([]))}))
}
