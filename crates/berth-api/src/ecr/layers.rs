//! Layer operations of the ECR API: BatchCheckLayerAvailability, InitiateLayerUpload,
//! UploadLayerPart, CompleteLayerUpload and GetDownloadUrlForLayer. They drive the same
//! upload sessions as `/v2/` pushes.

use base64::Engine;
use berth_registry::{Digest, RegistryError};
use bytes::Bytes;
use serde_json::{Value, json};

use super::errors::EcrResult;
use super::errors::{exception, invalid_at};
use super::{authorized, head, with};
use crate::ecs::{Ctx, Obj, strings, text};
use crate::error::ApiError;

/// The part size InitiateLayerUpload suggests (ECR accepts parts up to 20 MiB).
const PART_SIZE: u64 = 10 * 1024 * 1024;

pub async fn check(ctx: &Ctx<'_>, input: Obj) -> EcrResult<Value> {
    let (name, s, _) = authorized(ctx, &input, "ecr:BatchCheckLayerAvailability")?;
    let (mut layers, mut failures) = (Vec::new(), Vec::new());
    for raw in strings(&input, "layerDigests") {
        let Ok(digest) = raw.parse::<Digest>() else {
            failures.push(json!({"layerDigest": raw, "failureCode": "InvalidLayerDigest", "failureReason": "Invalid layer digest"}));
            continue;
        };
        match ctx.app.registry.blob(&s, &name, &digest).await? {
            Some(b) => layers.push(json!({"layerDigest": raw, "layerAvailability": "AVAILABLE", "layerSize": b.size})),
            None => layers.push(json!({"layerDigest": raw, "layerAvailability": "UNAVAILABLE"})),
        }
    }
    Ok(json!({"layers": layers, "failures": failures}))
}

pub async fn initiate(ctx: &Ctx<'_>, input: Obj) -> EcrResult<Value> {
    let name = super::repository_arg(ctx, &input)?;
    let id = ctx.app.registry.start_upload(&super::scope(ctx), &name).await?;
    Ok(json!({"uploadId": id, "partSize": PART_SIZE}))
}

fn upload_id(input: &Obj) -> EcrResult<String> {
    let id = text(input, "uploadId").unwrap_or_default();
    if uuid::Uuid::parse_str(id).is_err() {
        return Err(invalid_at("uploadId", &format!("'{id}' is not an upload id")));
    }
    Ok(id.to_string())
}

pub async fn upload_part(ctx: &Ctx<'_>, input: Obj) -> EcrResult<Value> {
    let name = super::repository_arg(ctx, &input)?;
    let id = upload_id(&input)?;
    let first = input.get("partFirstByte").and_then(Value::as_u64).unwrap_or(0);
    let last = input.get("partLastByte").and_then(Value::as_u64).unwrap_or(0);
    let blob = base64::engine::general_purpose::STANDARD
        .decode(text(&input, "layerPartBlob").unwrap_or_default())
        .map_err(|_| ApiError::serialization("layerPartBlob is not valid base64."))?;
    if blob.is_empty() || last < first || last - first + 1 != blob.len() as u64 {
        return Err(exception(
            "InvalidLayerPartException",
            format!(
                "The layer part is {} bytes; partFirstByte {first} and partLastByte {last} do not describe it.",
                blob.len()
            ),
        ));
    }
    let s = super::scope(ctx);
    let data = Box::pin(futures::stream::once(futures::future::ready(Ok(Bytes::from(blob)))));
    let size = ctx.app.registry.append_upload(&s, &name, &id, Some(first), data).await.map_err(|e| match e {
        RegistryError::RangeInvalid(size) => exception(
            "InvalidLayerPartException",
            format!("The upload holds {size} bytes; the next part must start at byte {size}, not {first}."),
        ),
        other => other.into(),
    })?;
    Ok(with(head(ctx, &name), json!({"uploadId": id, "lastByteReceived": size - 1})))
}

pub async fn complete(ctx: &Ctx<'_>, input: Obj) -> EcrResult<Value> {
    let name = super::repository_arg(ctx, &input)?;
    let id = upload_id(&input)?;
    let digests = strings(&input, "layerDigests");
    let [digest] = digests.as_slice() else {
        return Err(ApiError::invalid("Exactly one layer digest is supported per upload.").into());
    };
    let s = super::scope(ctx);
    let registry = &ctx.app.registry;
    let (_, size) = registry.upload_status(&s, &name, &id).await?;
    if size == 0 {
        return Err(exception("EmptyUploadException", format!("The upload {id} holds no layer parts.")));
    }
    let blob = registry.complete_upload(&s, &name, &id, digest, None).await?;
    Ok(with(head(ctx, &name), json!({"uploadId": id, "layerDigest": blob.digest.to_string()})))
}

pub async fn download_url(ctx: &Ctx<'_>, input: Obj) -> EcrResult<Value> {
    let (name, s, _) = authorized(ctx, &input, "ecr:GetDownloadUrlForLayer")?;
    let raw = text(&input, "layerDigest").unwrap_or_default();
    let digest: Digest =
        raw.parse().map_err(|e: berth_registry::digest::BadDigest| ApiError::invalid(e.to_string()))?;
    if ctx.app.registry.blob(&s, &name, &digest).await?.is_none() {
        return Err(exception(
            "LayersNotFoundException",
            format!(
                "The layer with digest '{digest}' does not exist in the repository with name '{name}' in the registry with id '{}'",
                ctx.config().account
            ),
        ));
    }
    let url = format!("http://{}/v2/{name}/blobs/{digest}", ctx.app.registry.options.host);
    Ok(json!({"downloadUrl": url, "layerDigest": digest.to_string()}))
}
