//! PutReplicationConfiguration and DescribeImageReplicationStatus (the copying is
//! `berth_registry::replication`'s).

use serde_json::{Value, json};

use super::errors::{EcrResult, image_not_found};
use super::images::find;
use super::{authorized, scope};
use crate::ecs::{Ctx, Obj};
use crate::error::ApiError;

pub async fn put(ctx: &Ctx<'_>, input: Obj) -> EcrResult<Value> {
    let config = input.get("replicationConfiguration").cloned().unwrap_or_else(|| json!({"rules": []}));
    ctx.app.registry.put_replication_configuration(&scope(ctx), config.clone()).await?;
    Ok(json!({"replicationConfiguration": config}))
}

pub fn describe_status(ctx: &Ctx<'_>, input: Obj) -> EcrResult<Value> {
    let (name, s, _) = authorized(ctx, &input, "ecr:DescribeImageReplicationStatus")?;
    let id = input.get("imageId").cloned().unwrap_or_else(|| json!({}));
    let images = ctx.app.registry.images(&s, &name)?;
    let image = match find(&images, &id) {
        Ok(image) => image,
        Err(("ImageNotFound", _)) => return Err(image_not_found(&id, &name, &ctx.config().account)),
        Err((_, reason)) => return Err(ApiError::invalid(reason).into()),
    };
    let statuses = ctx.app.registry.replication_statuses(&s, &name, &image.record.digest)?;
    let statuses: Vec<Value> = statuses
        .iter()
        .map(|st| {
            let mut v = json!({"region": st.region, "registryId": st.registry_id, "status": st.status});
            if let Some(code) = &st.failure_code {
                v["failureCode"] = json!(code);
            }
            v
        })
        .collect();
    let mut image_id = json!({"imageDigest": image.record.digest});
    if let Some(tag) = id.get("imageTag") {
        image_id["imageTag"] = tag.clone();
    }
    Ok(json!({"repositoryName": name, "imageId": image_id, "replicationStatuses": statuses}))
}
