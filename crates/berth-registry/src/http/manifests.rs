//! Manifest endpoints (GET/HEAD/PUT/DELETE by tag or digest; a pull of a manifest a
//! pull-through cache covers imports it first), the tag list, the referrers API and the
//! catalog.

use axum::body::{Body, to_bytes};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::json;

use super::{Req, paginate, respond};
use crate::error::{RegistryError, Result};
use crate::images::Reference;
use crate::manifest::{MAX_MANIFEST, OCI_INDEX};
use crate::uploads::parse_digest;

pub(crate) async fn manifest(req: &Req<'_>, name: &str, reference: &str, body: Body) -> Result<Response> {
    let (registry, scope) = (req.registry, req.scope);
    match *req.method {
        Method::GET | Method::HEAD => {
            let get = *req.method == Method::GET;
            let m = match registry.get_manifest(scope, name, reference, get).await {
                // Missing here: a pull-through cache rule may fetch it from its upstream.
                Err(e @ (RegistryError::RepositoryNotFound(_) | RegistryError::ManifestUnknown(_))) => {
                    if !registry.pull_through(scope, name, reference).await? {
                        return Err(e);
                    }
                    registry.get_manifest(scope, name, reference, get).await?
                }
                other => other?,
            };
            let headers = vec![
                ("content-type", m.media_type.clone()),
                ("docker-content-digest", m.digest.clone()),
                ("content-length", m.manifest.len().to_string()),
            ];
            let body = if get { Body::from(m.manifest) } else { Body::empty() };
            Ok(respond(StatusCode::OK, headers, body))
        }
        Method::PUT => {
            let bytes = to_bytes(body, MAX_MANIFEST + 1).await.map_err(|_| {
                RegistryError::ManifestInvalid(format!("manifests are limited to {MAX_MANIFEST} bytes"))
            })?;
            let content_type = req.header("content-type").unwrap_or_default();
            let pushed = registry.put_manifest(scope, name, reference, content_type, &bytes).await?;
            let mut headers = vec![
                ("location", format!("/v2/{name}/manifests/{}", pushed.digest)),
                ("docker-content-digest", pushed.digest.to_string()),
                ("content-length", "0".to_string()),
            ];
            if let Some(subject) = pushed.subject {
                headers.push(("oci-subject", subject));
            }
            Ok(respond(StatusCode::CREATED, headers, Body::empty()))
        }
        Method::DELETE => {
            match Reference::parse(reference)? {
                Reference::Digest(d) => {
                    registry.delete_manifest(scope, name, &d).await?;
                }
                Reference::Tag(tag) => {
                    registry.delete_tag(scope, name, &tag).await?;
                }
            }
            Ok(respond(StatusCode::ACCEPTED, vec![("content-length", "0".into())], Body::empty()))
        }
        _ => req.unsupported(),
    }
}

fn json_response(value: serde_json::Value, content_type: &str, mut headers: Vec<(&'static str, String)>) -> Response {
    headers.push(("content-type", content_type.to_string()));
    respond(StatusCode::OK, headers, Body::from(value.to_string()))
}

fn next_link(path: &str, n: Option<&String>, last: Option<&String>) -> (&'static str, String) {
    let n = n.map(|n| format!("n={n}&")).unwrap_or_default();
    ("link", format!("<{path}?{n}last={}>; rel=\"next\"", last.map(String::as_str).unwrap_or_default()))
}

pub(crate) fn tags(req: &Req<'_>, name: &str) -> Result<Response> {
    if *req.method != Method::GET {
        return req.unsupported();
    }
    let (tags, more) = paginate(req.registry.list_tags(req.scope, name)?, req.query)?;
    let mut headers = Vec::new();
    if more {
        headers.push(next_link(&format!("/v2/{name}/tags/list"), req.query.get("n"), tags.last()));
    }
    Ok(json_response(json!({"name": name, "tags": tags}), "application/json", headers))
}

pub(crate) fn catalog(req: &Req<'_>) -> Result<Response> {
    if *req.method != Method::GET {
        return req.unsupported();
    }
    if req.scope.caller == crate::Caller::Anonymous {
        return Err(RegistryError::Unauthorized);
    }
    let names = req.registry.list_repositories(req.scope)?.into_iter().map(|r| r.name).collect();
    let (names, more) = paginate(names, req.query)?;
    let mut headers = Vec::new();
    if more {
        headers.push(next_link("/v2/_catalog", req.query.get("n"), names.last()));
    }
    Ok(json_response(json!({"repositories": names}), "application/json", headers))
}

pub(crate) fn referrers(req: &Req<'_>, name: &str, digest: &str) -> Result<Response> {
    if *req.method != Method::GET {
        return req.unsupported();
    }
    let digest = parse_digest(digest)?;
    let filter = req.query.get("artifactType").map(String::as_str);
    let manifests = req.registry.referrers(req.scope, name, &digest, filter)?;
    let mut headers = Vec::new();
    if filter.is_some() {
        headers.push(("oci-filters-applied", "artifactType".to_string()));
    }
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests});
    Ok(json_response(index, OCI_INDEX, headers))
}
