//! The OCI distribution API on `/v2/`: authentication (registry tokens as basic auth, with a
//! `WWW-Authenticate` challenge), routing of repository paths (names may hold `/`), and the
//! spec's JSON error shape. Blob and upload endpoints are in [`blobs`], manifests, tags,
//! referrers and the catalog in [`manifests`].

mod blobs;
mod manifests;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::Response;
use axum::routing::any;
use futures::TryStreamExt;

use crate::access::Caller;
use crate::blobs::ByteStream;
use crate::error::RegistryError;
use crate::token::Tokens;
use crate::{Registry, Scope};

pub const API_VERSION: (&str, &str) = ("docker-distribution-api-version", "registry/2.0");

/// The `/v2/` routes, served beside the AWS APIs on the same port.
pub fn router(registry: Arc<Registry>) -> Router {
    Router::new()
        .route("/v2", any(base))
        .route("/v2/", any(base))
        .route("/v2/{*path}", any(endpoint))
        .with_state(registry)
}

/// Who is asking: a valid registry token, or nobody. A bad or expired token is refused
/// outright (never treated as anonymous).
fn authenticate(registry: &Registry, headers: &HeaderMap, now: SystemTime) -> Result<Scope, RegistryError> {
    let Some(header) = headers.get("authorization") else {
        return Ok(Scope { region: registry.options.region.clone(), caller: Caller::Anonymous, now });
    };
    let password = header.to_str().ok().and_then(Tokens::basic_password).ok_or(RegistryError::Unauthorized)?;
    let claims = registry.tokens.verify(&password, now).map_err(|e| {
        tracing::debug!(error = %e, "registry token refused");
        RegistryError::Unauthorized
    })?;
    Ok(Scope { region: claims.region, caller: Caller::Account { access_key: claims.access_key }, now })
}

/// A response with the headers every `/v2/` answer carries.
pub(crate) fn respond(status: StatusCode, headers: Vec<(&'static str, String)>, body: Body) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(API_VERSION.0, HeaderValue::from_static(API_VERSION.1));
    for (k, v) in headers {
        if let Ok(v) = HeaderValue::from_str(&v) {
            h.append(k, v);
        }
    }
    response
}

pub(crate) fn error_response(registry: &Registry, e: &RegistryError) -> Response {
    let (status, code) = e.oci();
    if status >= 500 {
        tracing::error!(error = %e, "registry request failed");
    }
    let body = serde_json::json!({"errors": [{"code": code, "message": e.to_string(), "detail": {}}]});
    let mut headers = vec![("content-type", "application/json".to_string())];
    if status == 401 {
        headers.push((
            "www-authenticate",
            format!("Basic realm=\"http://{}/\",service=\"ecr.amazonaws.com\"", registry.options.host),
        ));
    }
    if let RegistryError::RangeInvalid(size) = e {
        headers.push(("range", format!("0-{}", size.saturating_sub(1))));
    }
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    respond(status, headers, Body::from(body.to_string()))
}

/// `/v2/`: tells clients this is a registry, and challenges those without credentials.
async fn base(State(registry): State<Arc<Registry>>, headers: HeaderMap) -> Response {
    match authenticate(&registry, &headers, SystemTime::now()) {
        Ok(Scope { caller: Caller::Account { .. }, .. }) => {
            respond(StatusCode::OK, vec![("content-type", "application/json".into())], Body::from("{}"))
        }
        Ok(_) | Err(_) => error_response(&registry, &RegistryError::Unauthorized),
    }
}

/// What a path under `/v2/` names.
#[derive(Debug, PartialEq, Eq)]
enum Route<'a> {
    Catalog,
    Tags(&'a str),
    Manifest(&'a str, &'a str),
    Referrers(&'a str, &'a str),
    Uploads(&'a str),
    Upload(&'a str, &'a str),
    Blob(&'a str, &'a str),
}

fn route(path: &str) -> Option<Route<'_>> {
    if path == "_catalog" {
        return Some(Route::Catalog);
    }
    if let Some(name) = path.strip_suffix("/tags/list") {
        return Some(Route::Tags(name));
    }
    if let Some(name) = path.strip_suffix("/blobs/uploads/").or_else(|| path.strip_suffix("/blobs/uploads")) {
        return Some(Route::Uploads(name));
    }
    let split = |marker: &str| path.rsplit_once(marker).filter(|(_, r)| !r.is_empty() && !r.contains('/'));
    if let Some((name, id)) = split("/blobs/uploads/") {
        return Some(Route::Upload(name, id));
    }
    if let Some((name, r)) = split("/manifests/") {
        return Some(Route::Manifest(name, r));
    }
    if let Some((name, d)) = split("/referrers/") {
        return Some(Route::Referrers(name, d));
    }
    if let Some((name, d)) = split("/blobs/") {
        return Some(Route::Blob(name, d));
    }
    None
}

pub(crate) fn body_stream(body: Body) -> ByteStream {
    Box::pin(body.into_data_stream().map_err(std::io::Error::other))
}

/// Every repository endpoint. Each request runs to completion in its own task, so a client
/// that hangs up never stops a commit halfway.
async fn endpoint(
    State(registry): State<Arc<Registry>>,
    method: Method,
    uri: Uri,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let work = tokio::spawn(async move {
        let scope = match authenticate(&registry, &headers, SystemTime::now()) {
            Ok(s) => s,
            Err(e) => return error_response(&registry, &e),
        };
        let path = uri.path().strip_prefix("/v2/").unwrap_or_default().to_string();
        let Some(route) = route(&path) else {
            return respond(StatusCode::NOT_FOUND, vec![], Body::empty());
        };
        let name = match &route {
            Route::Catalog => None,
            Route::Tags(n)
            | Route::Manifest(n, _)
            | Route::Referrers(n, _)
            | Route::Uploads(n)
            | Route::Upload(n, _)
            | Route::Blob(n, _) => Some(*n),
        };
        if let Some(name) = name
            && !crate::repositories::valid_name(name)
        {
            return error_response(&registry, &RegistryError::NameInvalid(name.to_string()));
        }
        let req = Req { registry: &registry, scope: &scope, method: &method, query: &query, headers: &headers };
        let bodiless = !headers.contains_key(header::TRANSFER_ENCODING)
            && headers.get(header::CONTENT_LENGTH).is_none_or(|n| n.as_bytes() == b"0");
        let mut result = dispatch(&req, &route, body).await;
        // What this server's view lacks may have just been written through another server
        // (a push through one, a pull through the next): a request that can be run again
        // runs again once the view has caught up. Requests with a body check within.
        if bodiless && result.as_ref().is_err_and(RegistryError::may_be_stale) {
            result = match registry.sync().await {
                Ok(()) => dispatch(&req, &route, Body::empty()).await,
                Err(e) => Err(e),
            };
        }
        result.unwrap_or_else(|e| error_response(&registry, &e))
    });
    work.await.unwrap_or_else(|e| {
        tracing::error!(error = %e, "registry handler failed");
        respond(StatusCode::INTERNAL_SERVER_ERROR, vec![], Body::empty())
    })
}

async fn dispatch(req: &Req<'_>, route: &Route<'_>, body: Body) -> Result<Response, RegistryError> {
    match *route {
        Route::Catalog => manifests::catalog(req),
        Route::Tags(name) => manifests::tags(req, name),
        Route::Manifest(name, reference) => manifests::manifest(req, name, reference, body).await,
        Route::Referrers(name, digest) => manifests::referrers(req, name, digest),
        Route::Uploads(name) => blobs::start(req, name, body).await,
        Route::Upload(name, id) => blobs::upload(req, name, id, body).await,
        Route::Blob(name, digest) => blobs::blob(req, name, digest).await,
    }
}

/// One request as the endpoint handlers see it.
pub(crate) struct Req<'a> {
    pub registry: &'a Registry,
    pub scope: &'a Scope,
    pub method: &'a Method,
    pub query: &'a HashMap<String, String>,
    pub headers: &'a HeaderMap,
}

impl Req<'_> {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn unsupported(&self) -> Result<Response, RegistryError> {
        Ok(respond(StatusCode::METHOD_NOT_ALLOWED, vec![], Body::empty()))
    }
}

/// A page of sorted `items` after `last`, at most `n` (the spec's `n`/`last` paging); and
/// whether more follow.
pub(crate) fn paginate(
    items: Vec<String>,
    query: &HashMap<String, String>,
) -> Result<(Vec<String>, bool), RegistryError> {
    let n = match query.get("n") {
        None => usize::MAX,
        Some(n) => n.parse::<usize>().map_err(|_| RegistryError::InvalidParameter(format!("invalid n {n:?}")))?,
    };
    let after: Vec<String> = match query.get("last") {
        Some(last) => items.into_iter().filter(|i| i.as_str() > last.as_str()).collect(),
        None => items,
    };
    let more = after.len() > n;
    Ok((after.into_iter().take(n).collect(), more))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_names_with_slashes() {
        assert_eq!(route("a/b/manifests/latest"), Some(Route::Manifest("a/b", "latest")));
        assert_eq!(route("a/manifests/x/manifests/1"), Some(Route::Manifest("a/manifests/x", "1")));
        assert_eq!(route("a/b/blobs/uploads/"), Some(Route::Uploads("a/b")));
        assert_eq!(route("a/blobs/uploads/123"), Some(Route::Upload("a", "123")));
        assert_eq!(route("a/blobs/sha256:00"), Some(Route::Blob("a", "sha256:00")));
        assert_eq!(route("a/tags/list"), Some(Route::Tags("a")));
        assert_eq!(route("a/referrers/sha256:1"), Some(Route::Referrers("a", "sha256:1")));
        assert_eq!(route("_catalog"), Some(Route::Catalog));
        assert_eq!(route("a/things"), None);
    }

    #[test]
    fn pages_after_last() {
        let items: Vec<String> = ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect();
        let q = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        assert_eq!(paginate(items.clone(), &q(&[("n", "2")])).unwrap(), (vec!["a".into(), "b".into()], true));
        assert_eq!(
            paginate(items.clone(), &q(&[("n", "2"), ("last", "b")])).unwrap(),
            (vec!["c".into(), "d".into()], false)
        );
        assert!(paginate(items, &q(&[("n", "x")])).is_err());
    }
}
