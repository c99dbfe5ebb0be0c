//! Blob endpoints: GET/HEAD (with Range), DELETE, and uploads: POST (a session, a monolithic
//! upload with `?digest=`, or a mount with `?mount=&from=`), PATCH (chunks, 416 when out of
//! order), PUT (complete), GET (status) and DELETE (cancel).

use axum::body::Body;
use axum::http::{Method, StatusCode};
use axum::response::Response;

use super::{Req, body_stream, respond};
use crate::error::{RegistryError, Result};
use crate::uploads::{BlobInfo, parse_digest};

fn location(name: &str, id: &str) -> String {
    format!("/v2/{name}/blobs/uploads/{id}")
}

fn range_of(size: u64) -> String {
    format!("0-{}", size.saturating_sub(1))
}

/// 202 for an upload that goes on.
fn in_progress(name: &str, id: &str, size: u64) -> Response {
    respond(
        StatusCode::ACCEPTED,
        vec![
            ("location", location(name, id)),
            ("range", range_of(size)),
            ("docker-upload-uuid", id.to_string()),
            ("content-length", "0".into()),
        ],
        Body::empty(),
    )
}

/// 201 for a blob that is now in the repository.
fn created(name: &str, blob: &BlobInfo) -> Response {
    respond(
        StatusCode::CREATED,
        vec![
            ("location", format!("/v2/{name}/blobs/{}", blob.digest)),
            ("docker-content-digest", blob.digest.to_string()),
            ("content-length", "0".into()),
        ],
        Body::empty(),
    )
}

/// `bytes=START-END` or `bytes=START-` within a blob of `size`.
fn byte_range(header: &str, size: u64) -> Option<(u64, u64)> {
    let spec = header.strip_prefix("bytes=")?;
    let (start, end) = spec.split_once('-')?;
    let start: u64 = start.trim().parse().ok()?;
    let end: u64 = if end.trim().is_empty() { size.checked_sub(1)? } else { end.trim().parse().ok()? };
    (start <= end && end < size).then_some((start, end.min(size - 1)))
}

pub(crate) async fn blob(req: &Req<'_>, name: &str, digest: &str) -> Result<Response> {
    let digest = parse_digest(digest)?;
    let (registry, scope) = (req.registry, req.scope);
    let action = match *req.method {
        Method::GET => "ecr:GetDownloadUrlForLayer",
        Method::HEAD => "ecr:BatchCheckLayerAvailability",
        Method::DELETE => {
            registry.delete_blob(scope, name, &digest).await?;
            return Ok(respond(StatusCode::ACCEPTED, vec![("content-length", "0".into())], Body::empty()));
        }
        _ => return req.unsupported(),
    };
    let (_, repo) = registry.repository(scope, name)?;
    registry.authorize(scope, &repo, action)?;
    let info =
        registry.blob(scope, name, &digest).await?.ok_or_else(|| RegistryError::BlobUnknown(digest.to_string()))?;
    let mut headers = vec![
        ("docker-content-digest", digest.to_string()),
        ("content-type", "application/octet-stream".to_string()),
        ("accept-ranges", "bytes".to_string()),
    ];
    let (status, start, len) = match req.header("range") {
        Some(r) => {
            let Some((start, end)) = byte_range(r, info.size) else {
                headers.push(("content-range", format!("bytes */{}", info.size)));
                return Ok(respond(StatusCode::RANGE_NOT_SATISFIABLE, headers, Body::empty()));
            };
            headers.push(("content-range", format!("bytes {start}-{end}/{}", info.size)));
            (StatusCode::PARTIAL_CONTENT, start, end - start + 1)
        }
        None => (StatusCode::OK, 0, info.size),
    };
    headers.push(("content-length", len.to_string()));
    if *req.method == Method::HEAD {
        return Ok(respond(status, headers, Body::empty()));
    }
    let stream = registry.blobs.read(&digest, start, len).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound { RegistryError::BlobUnknown(digest.to_string()) } else { e.into() }
    })?;
    Ok(respond(status, headers, Body::from_stream(stream)))
}

pub(crate) async fn start(req: &Req<'_>, name: &str, body: Body) -> Result<Response> {
    if *req.method != Method::POST {
        return req.unsupported();
    }
    let (registry, scope) = (req.registry, req.scope);
    if let Some(mount) = req.query.get("mount") {
        let digest = parse_digest(mount)?;
        if let Some(blob) = registry.mount_blob(scope, name, &digest, req.query.get("from").map(String::as_str)).await?
        {
            return Ok(created(name, &blob));
        }
    }
    let id = registry.start_upload(scope, name).await?;
    if let Some(digest) = req.query.get("digest") {
        let blob = registry.complete_upload(scope, name, &id, digest, Some(body_stream(body))).await?;
        return Ok(created(name, &blob));
    }
    Ok(in_progress(name, &id, 0))
}

/// `Content-Range: START-END` (some clients write `bytes START-END`).
fn content_range(raw: &str) -> Option<(u64, u64)> {
    let raw = raw.trim().trim_start_matches("bytes").trim().trim_start_matches('=');
    let (start, end) = raw.split_once('-')?;
    Some((start.trim().parse().ok()?, end.trim().split('/').next()?.parse().ok()?))
}

pub(crate) async fn upload(req: &Req<'_>, name: &str, id: &str, body: Body) -> Result<Response> {
    let (registry, scope) = (req.registry, req.scope);
    match *req.method {
        Method::GET => {
            let (_, size) = registry.upload_status(scope, name, id).await?;
            Ok(respond(
                StatusCode::NO_CONTENT,
                vec![
                    ("location", location(name, id)),
                    ("range", range_of(size)),
                    ("docker-upload-uuid", id.to_string()),
                ],
                Body::empty(),
            ))
        }
        Method::PATCH => {
            let start = match req.header("content-range") {
                None => None,
                Some(raw) => {
                    let Some((start, end)) = content_range(raw).filter(|(s, e)| s <= e) else {
                        let (_, size) = registry.upload_status(scope, name, id).await?;
                        return Err(RegistryError::RangeInvalid(size));
                    };
                    let length = req.header("content-length").and_then(|l| l.parse::<u64>().ok());
                    if length.is_some_and(|l| l != end - start + 1) {
                        return Err(RegistryError::UploadInvalid("Content-Length does not match Content-Range".into()));
                    }
                    Some(start)
                }
            };
            let size = registry.append_upload(scope, name, id, start, body_stream(body)).await?;
            Ok(in_progress(name, id, size))
        }
        Method::PUT => {
            let digest =
                req.query.get("digest").ok_or_else(|| RegistryError::DigestInvalid("missing ?digest=".into()))?;
            let has_body = req.header("content-length").is_none_or(|l| l != "0");
            let data = has_body.then(|| body_stream(body));
            let blob = registry.complete_upload(scope, name, id, digest, data).await?;
            Ok(created(name, &blob))
        }
        Method::DELETE => {
            registry.cancel_upload(scope, name, id).await?;
            Ok(respond(StatusCode::NO_CONTENT, vec![], Body::empty()))
        }
        _ => req.unsupported(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(byte_range("bytes=0-9", 100), Some((0, 9)));
        assert_eq!(byte_range("bytes=90-", 100), Some((90, 99)));
        assert_eq!(byte_range("bytes=90-200", 100), None);
        assert_eq!(byte_range("bytes=5-1", 100), None);
        assert_eq!(content_range("0-99"), Some((0, 99)));
        assert_eq!(content_range("bytes 100-199/*"), Some((100, 199)));
        assert_eq!(content_range("x"), None);
    }
}
