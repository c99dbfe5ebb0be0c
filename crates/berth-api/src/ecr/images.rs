//! ListImages, DescribeImages, BatchGetImage, BatchDeleteImage and PutImage: the images a
//! repository holds, the same ones `/v2/` serves.

use berth_registry::images::Image;
use berth_registry::{Digest, RegistryError};
use serde_json::{Value, json};

use super::errors::{EcrResult, exception, image_not_found};
use super::{authorized, repository_arg, scope};
use crate::ecs::{Ctx, Obj, array, max_results, page, text, with_token};
use crate::error::ApiError;

/// What an `imageId` names in `images`, or the ECR failure code and reason.
pub fn find<'i>(images: &'i [Image], id: &Value) -> Result<&'i Image, (&'static str, String)> {
    let digest = id.get("imageDigest").and_then(Value::as_str);
    let tag = id.get("imageTag").and_then(Value::as_str);
    let found = match (digest, tag) {
        (None, None) => {
            return Err((
                "MissingDigestAndTag",
                "Invalid request parameters: both tag and digest cannot be null".into(),
            ));
        }
        (Some(d), _) if d.parse::<Digest>().is_err() => {
            return Err((
                "InvalidImageDigest",
                "Invalid request parameters: image digest should satisfy the regex '[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+'"
                    .into(),
            ));
        }
        (Some(d), t) => {
            let image = images.iter().find(|i| i.record.digest == d);
            if let (Some(i), Some(t)) = (image, t)
                && !i.tags.iter().any(|x| x == t)
            {
                return Err((
                    "ImageTagDoesNotMatchDigest",
                    "Invalid request parameters: image tag does not match digest".into(),
                ));
            }
            image
        }
        (None, Some(t)) => images.iter().find(|i| i.tags.iter().any(|x| x == t)),
    };
    found.ok_or_else(|| ("ImageNotFound", "Requested image not found".into()))
}

fn failure(id: &Value, (code, reason): (&str, String)) -> Value {
    json!({"imageId": id, "failureCode": code, "failureReason": reason})
}

fn tag_status(input: &Obj) -> &str {
    input.get("filter").and_then(|f| f.get("tagStatus")).and_then(Value::as_str).unwrap_or("ANY")
}

fn selected(image: &Image, status: &str) -> bool {
    match status {
        "TAGGED" => !image.tags.is_empty(),
        "UNTAGGED" => image.tags.is_empty(),
        _ => true,
    }
}

pub fn list(ctx: &Ctx<'_>, input: Obj) -> EcrResult<Value> {
    let (name, s, _) = authorized(ctx, &input, "ecr:ListImages")?;
    let limit = max_results(&input, 1000)?;
    let status = tag_status(&input);
    let mut items = Vec::new();
    for image in ctx.app.registry.images(&s, &name)?.iter().filter(|i| selected(i, status)) {
        let digest = &image.record.digest;
        if image.tags.is_empty() {
            items.push((format!("{digest}|"), json!({"imageDigest": digest})));
        }
        for tag in &image.tags {
            items.push((format!("{digest}|{tag}"), json!({"imageDigest": digest, "imageTag": tag})));
        }
    }
    let (ids, next) = page(&input, items, limit)?;
    let mut out = Obj::new();
    out.insert("imageIds".into(), json!(ids));
    Ok(with_token(out, next))
}

fn detail(ctx: &Ctx<'_>, repo: &str, image: &Image) -> Value {
    let r = &image.record;
    let mut d = json!({
        "registryId": ctx.config().account,
        "repositoryName": repo,
        "imageDigest": r.digest,
        "imageSizeInBytes": r.image_size,
        "imagePushedAt": r.pushed_at,
        "imageManifestMediaType": r.media_type,
        "imageStatus": "ACTIVE",
    });
    if !image.tags.is_empty() {
        d["imageTags"] = json!(image.tags);
    }
    if let Some(t) = &r.artifact_type {
        d["artifactMediaType"] = json!(t);
    }
    if let Some(t) = r.last_pull {
        d["lastRecordedPullTime"] = json!(t);
    }
    d
}

pub fn describe(ctx: &Ctx<'_>, input: Obj) -> EcrResult<Value> {
    let (name, s, _) = authorized(ctx, &input, "ecr:DescribeImages")?;
    let images = ctx.app.registry.images(&s, &name)?;
    let ids = array(&input, "imageIds");
    if !ids.is_empty() {
        if input.contains_key("maxResults") || input.contains_key("nextToken") {
            return Err(ApiError::invalid("maxResults and nextToken cannot be used with imageIds.").into());
        }
        let mut out = Vec::new();
        for id in &ids {
            match find(&images, id) {
                Ok(image) => out.push(detail(ctx, &name, image)),
                Err(("ImageNotFound", _)) => return Err(image_not_found(id, &name, &ctx.config().account)),
                Err((_, reason)) => return Err(ApiError::invalid(reason).into()),
            }
        }
        return Ok(json!({"imageDetails": out}));
    }
    let limit = max_results(&input, 1000)?;
    let status = tag_status(&input);
    let items = images
        .iter()
        .filter(|i| selected(i, status))
        .map(|i| (i.record.digest.clone(), detail(ctx, &name, i)))
        .collect();
    let (details, next) = page(&input, items, limit)?;
    let mut out = Obj::new();
    out.insert("imageDetails".into(), json!(details));
    Ok(with_token(out, next))
}

fn image_json(ctx: &Ctx<'_>, repo: &str, digest: &str, tag: Option<&str>, manifest: &str, media_type: &str) -> Value {
    let mut id = json!({"imageDigest": digest});
    if let Some(t) = tag {
        id["imageTag"] = json!(t);
    }
    json!({"registryId": ctx.config().account, "repositoryName": repo, "imageId": id,
        "imageManifest": manifest, "imageManifestMediaType": media_type})
}

pub async fn batch_get(ctx: &Ctx<'_>, input: Obj) -> EcrResult<Value> {
    let (name, s, _) = authorized(ctx, &input, "ecr:BatchGetImage")?;
    let registry = &ctx.app.registry;
    let images = registry.images(&s, &name)?;
    let (mut found, mut failures) = (Vec::new(), Vec::new());
    for id in array(&input, "imageIds") {
        match find(&images, &id) {
            Ok(image) => {
                let m = registry.get_manifest(&s, &name, &image.record.digest, true).await?;
                let tag = id.get("imageTag").and_then(Value::as_str);
                found.push(image_json(ctx, &name, &m.digest, tag, &m.manifest, &m.media_type));
            }
            Err(f) => failures.push(failure(&id, f)),
        }
    }
    Ok(json!({"images": found, "failures": failures}))
}

pub async fn batch_delete(ctx: &Ctx<'_>, input: Obj) -> EcrResult<Value> {
    let (name, s, _) = authorized(ctx, &input, "ecr:BatchDeleteImage")?;
    let registry = &ctx.app.registry;
    let (mut deleted, mut failures) = (Vec::new(), Vec::new());
    for id in array(&input, "imageIds") {
        // Re-read per id: an earlier id of the same batch may have changed the repository.
        let images = registry.images(&s, &name)?;
        let image = match find(&images, &id) {
            Ok(i) => i,
            Err(f) => {
                failures.push(failure(&id, f));
                continue;
            }
        };
        let digest: Digest = image
            .record
            .digest
            .parse()
            .map_err(|e: berth_registry::digest::BadDigest| ApiError::server(e.to_string()))?;
        let by_tag_only = id.get("imageDigest").is_none();
        let tag = id.get("imageTag").and_then(Value::as_str);
        if let (true, Some(tag)) = (by_tag_only, tag) {
            registry.delete_tag(&s, &name, tag).await?;
            deleted.push(json!({"imageDigest": digest.to_string(), "imageTag": tag}));
            // Removing an image's last tag removes the image, as in ECR.
            if image.tags.len() == 1 {
                match registry.delete_manifest(&s, &name, &digest).await {
                    Ok(_) | Err(RegistryError::ManifestUnknown(_)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            continue;
        }
        let removed = registry.delete_manifest(&s, &name, &digest).await?;
        if removed.tags.is_empty() {
            deleted.push(json!({"imageDigest": digest.to_string()}));
        }
        for t in removed.tags {
            deleted.push(json!({"imageDigest": digest.to_string(), "imageTag": t}));
        }
    }
    Ok(json!({"imageIds": deleted, "failures": failures}))
}

pub async fn put(ctx: &Ctx<'_>, input: Obj) -> EcrResult<Value> {
    let name = repository_arg(ctx, &input)?;
    let s = scope(ctx);
    let registry = &ctx.app.registry;
    let manifest = text(&input, "imageManifest").unwrap_or_default();
    let media_type = text(&input, "imageManifestMediaType").unwrap_or_default();
    let tag = text(&input, "imageTag");
    let computed = match text(&input, "imageDigest") {
        Some(given) => {
            let given: Digest =
                given.parse().map_err(|e: berth_registry::digest::BadDigest| ApiError::invalid(e.to_string()))?;
            let actual = Digest::of(given.algorithm(), manifest.as_bytes());
            if actual != given {
                return Err(exception(
                    "ImageDigestDoesNotMatchException",
                    format!("The digest of the manifest, {actual}, does not match the given digest {given}."),
                ));
            }
            actual
        }
        None => Digest::of(berth_registry::digest::Algorithm::Sha256, manifest.as_bytes()),
    };
    if let Ok((_, _)) = registry.repository(&s, &name) {
        let images = registry.images(&s, &name)?;
        let existing = images.iter().find(|i| i.record.digest == computed.to_string());
        if existing.is_some_and(|i| tag.is_none_or(|t| i.tags.iter().any(|x| x == t))) {
            return Err(exception(
                "ImageAlreadyExistsException",
                format!(
                    "Image with digest '{computed}' and tag '{}' already exists in the repository with name '{name}' in registry with id '{}'",
                    tag.unwrap_or("null"),
                    ctx.config().account
                ),
            ));
        }
    }
    let reference = tag.map(str::to_string).unwrap_or_else(|| computed.to_string());
    let pushed =
        registry.put_manifest(&s, &name, &reference, media_type, manifest.as_bytes()).await.map_err(|e| match e {
            RegistryError::DigestInvalid(m) => exception("ImageDigestDoesNotMatchException", m),
            other => other.into(),
        })?;
    let stored = registry.get_manifest(&s, &name, &pushed.digest.to_string(), false).await?;
    Ok(json!({"image": image_json(ctx, &name, &stored.digest, tag, &stored.manifest, &stored.media_type)}))
}
