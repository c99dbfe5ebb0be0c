//! Tags on scalable targets (the one resource Application Auto Scaling tags), by the
//! target's ARN: TagResource, UntagResource, ListTagsForResource. At most 50 per target;
//! keys beginning `aws:` are reserved.

use berth_control::autoscaling::ScalingError;
use berth_control::autoscaling::change::transact;
use berth_control::autoscaling::records::TargetRecord;
use serde_json::{Value, json};

use super::{all_targets, scaling_error, validation};
use crate::ecs::{Ctx, Obj, strings, text};
use crate::error::{ApiError, ApiResult};

/// The `Tags` map of a request, checked ([`check_tags`]).
pub fn tags_of(input: &Obj) -> ApiResult<Vec<(String, String)>> {
    let tags: Vec<(String, String)> = input
        .get("Tags")
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())).collect())
        .unwrap_or_default();
    check_tags(&tags)?;
    Ok(tags)
}

/// Tags AWS would refuse: reserved keys.
pub fn check_tags(tags: &[(String, String)]) -> ApiResult<()> {
    if let Some((k, _)) = tags.iter().find(|(k, _)| k.to_ascii_lowercase().starts_with("aws:")) {
        return Err(validation(format!("Tag key {k} uses the reserved prefix aws:.")));
    }
    Ok(())
}

fn not_found(arn: &str) -> ApiError {
    ApiError::new(400, "ResourceNotFoundException", format!("No scalable target found for ARN {arn}."))
}

/// The target an ARN names.
fn target_by_arn(ctx: &Ctx<'_>, arn: &str) -> ApiResult<TargetRecord> {
    all_targets(ctx)?.into_iter().map(|(_, t)| t).find(|t| t.arn == arn).ok_or_else(|| not_found(arn))
}

pub async fn tag(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let arn = text(&input, "ResourceARN").unwrap_or_default().to_string();
    let tags = tags_of(&input)?;
    let resource = target_by_arn(ctx, &arn)?.resource_id;
    let tags = &tags;
    transact(ctx, &resource, |draft| {
        let t = draft
            .target
            .as_mut()
            .ok_or_else(|| ScalingError::NotFound(format!("No scalable target found for ARN {arn}.")))?;
        t.tags.extend(tags.iter().cloned());
        if t.tags.len() > 50 {
            return Err(ScalingError::LimitExceeded("A scalable target can have at most 50 tags.".into()).into());
        }
        Ok(())
    })
    .await
    .map_err(|e| match scaling_error(e) {
        e if e.code == "LimitExceededException" => ApiError::new(400, "TooManyTagsException", e.message),
        e if e.code == "ObjectNotFoundException" => not_found(&arn),
        e => e,
    })?;
    Ok(json!({}))
}

pub async fn untag(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let arn = text(&input, "ResourceARN").unwrap_or_default().to_string();
    let keys = strings(&input, "TagKeys");
    let resource = target_by_arn(ctx, &arn)?.resource_id;
    transact(ctx, &resource, |draft| {
        let t = draft
            .target
            .as_mut()
            .ok_or_else(|| ScalingError::NotFound(format!("No scalable target found for ARN {arn}.")))?;
        t.tags.retain(|k, _| !keys.contains(k));
        Ok(())
    })
    .await
    .map_err(|e| match scaling_error(e) {
        e if e.code == "ObjectNotFoundException" => not_found(&arn),
        e => e,
    })?;
    Ok(json!({}))
}

pub fn list(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let arn = text(&input, "ResourceARN").unwrap_or_default();
    Ok(json!({"Tags": target_by_arn(ctx, arn)?.tags}))
}
