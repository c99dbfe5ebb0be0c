//! The protocol layer: every AWS API request Berth answers comes in on `/` and goes through
//! one pipeline, whatever its wire protocol.
//!
//! 1. route: `X-Amz-Target` names a JSON service; otherwise a form (the parameters of a POST
//!    body of `application/x-www-form-urlencoded` and of the URL's query string, or of a GET's
//!    query string) belongs to the query or EC2 service its SigV4 credential scope names (or,
//!    unsigned, its `Version`);
//! 2. the body is read up to the service's cap, and the signature verified for the service's
//!    signing name;
//! 3. the protocol module reads the operation and its input from the embedded model
//!    ([`json`], [`query`], [`ec2`]; shared: [`form`], [`xml`], [`validate`], [`shapes`]),
//!    except that an operation with a body handler decodes its JSON body itself, typed
//!    ([`json::bulk`]: bulk inputs such as PutLogEvents' events);
//! 4. the service's dispatch table ([`service`]) runs the handler in a task of its own;
//! 5. the protocol writes the handler's value tree through the output shape, or the error in
//!    its own shape, with the request id where that protocol carries it.
//!
//! Handlers never learn their protocol. Smithy RPC v2 CBOR ([`cbor`]) comes on its own
//! route, `POST /service/{Service}/operation/{Operation}` with `smithy-protocol: rpc-v2-cbor`.

pub mod cbor;
pub mod ec2;
pub mod form;
pub mod json;
pub mod query;
pub mod service;
pub mod shapes;
#[cfg(test)]
mod tests;
pub mod validate;
pub mod xml;

use std::sync::Arc;
use std::time::SystemTime;

use axum::body::{Body, Bytes, to_bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use serde_json::Value;

use crate::App;
use crate::ecs::{Ctx, Obj};
use crate::error::{ApiError, ApiResult};
use crate::sigv4;
use service::Service;

/// Largest body of a form request whose service is not known yet (no credential scope).
pub const MAX_FORM_BODY: usize = 1024 * 1024;

/// A wire protocol Berth speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    Json(json::Version),
    Query,
    Ec2,
    Cbor,
}

impl Wire {
    /// The protocol botocore names `name` (`json`, `query`, `ec2`), if Berth speaks it.
    pub fn named(name: &str, json_version: Option<&str>) -> Option<Wire> {
        match name {
            "json" if json_version == Some("1.0") => Some(Wire::Json(json::Version::V1_0)),
            "json" => Some(Wire::Json(json::Version::V1_1)),
            "query" => Some(Wire::Query),
            "ec2" => Some(Wire::Ec2),
            "smithy-rpc-v2-cbor" => Some(Wire::Cbor),
            _ => None,
        }
    }

    pub fn is_json(self) -> bool {
        matches!(self, Wire::Json(_))
    }

    /// Whether requests come as forms (`Action=...&Version=...`).
    pub fn is_form(self) -> bool {
        matches!(self, Wire::Query | Wire::Ec2)
    }

    /// The error codes the protocol documents for every service that speaks it.
    pub fn common_errors(self) -> &'static [&'static str] {
        match self {
            Wire::Json(_) | Wire::Cbor => &[],
            Wire::Query => query::COMMON_ERRORS,
            Wire::Ec2 => ec2::COMMON_ERRORS,
        }
    }

    fn auth_error(self, e: ApiError) -> ApiError {
        match self {
            Wire::Json(_) | Wire::Cbor => e,
            Wire::Query => query::auth_error(e),
            Wire::Ec2 => ec2::auth_error(e),
        }
    }

    fn too_large(self, limit: usize) -> ApiError {
        let code = if self.is_form() { "RequestEntityTooLarge" } else { "RequestEntityTooLargeException" };
        ApiError::new(413, code, format!("Request body is larger than {} MiB.", limit >> 20))
    }

    fn read(self, service: &Service, payload: Payload) -> ApiResult<(String, Obj)> {
        match (self, payload) {
            (Wire::Json(_), Payload::Json { operation, body }) => {
                let input = json::read(service, &operation, &body)?;
                Ok((operation, input))
            }
            (Wire::Cbor, Payload::Json { operation, body }) => {
                let input = cbor::read(service, &operation, &body)?;
                Ok((operation, input))
            }
            (Wire::Query | Wire::Ec2, Payload::Form(mut params)) => {
                let operation = form::operation(service.model(), &mut params)?;
                let input = match self {
                    Wire::Ec2 => ec2::read(service, &operation, params)?,
                    _ => query::read(service, &operation, params)?,
                };
                Ok((operation, input))
            }
            _ => Err(ApiError::server("the request reached a protocol it was not routed to")),
        }
    }

    /// Stops a request that only asks whether it would succeed (EC2's `DryRun`).
    fn dry_run(self, input: &mut Obj) -> ApiResult<()> {
        match self {
            Wire::Ec2 => ec2::dry_run(input),
            _ => Ok(()),
        }
    }

    fn write(self, service: &Service, operation: &str, output: &Value, request_id: &str) -> ApiResult<Response> {
        match self {
            Wire::Json(v) => Ok(json::write(v, output, request_id)),
            Wire::Cbor => Ok(cbor::write(service, operation, output, request_id)),
            Wire::Query => query::write(service, operation, output, request_id),
            Wire::Ec2 => ec2::write(service, operation, output, request_id),
        }
    }

    fn error(self, service: Option<&Service>, e: &ApiError, request_id: &str) -> Response {
        match self {
            Wire::Json(v) => json::error(v, e, request_id),
            Wire::Cbor => cbor::error(e, request_id),
            Wire::Query => query::error(service, e, request_id),
            Wire::Ec2 => ec2::error(e, request_id),
        }
    }
}

/// What a request carries once routed (a CBOR request's body comes as `Json`'s does: the
/// operation named, the body raw).
enum Payload {
    Json { operation: String, body: Bytes },
    Form(form::Params),
}

/// Where a request has got to: who renders its answer.
struct Exchange {
    wire: Wire,
    service: Option<&'static Service>,
    operation: Option<String>,
}

/// `POST /` and `GET /`: every AWS API request.
pub async fn serve(State(app): State<Arc<App>>, method: Method, uri: Uri, headers: HeaderMap, body: Body) -> Response {
    let started = std::time::Instant::now();
    let request_id = uuid::Uuid::new_v4().to_string();
    let mut exchange = Exchange { wire: Wire::Json(json::Version::V1_1), service: None, operation: None };
    let outcome = run(&app, &method, &uri, &headers, body, &mut exchange).await;
    let written = outcome.and_then(|output| match (exchange.service, &exchange.operation) {
        (Some(service), Some(op)) => exchange.wire.write(service, op, &output, &request_id),
        _ => Err(ApiError::server("an answer without an operation")),
    });
    let response = written.unwrap_or_else(|e| {
        tracing::debug!(code = e.code, message = %e.message, "request refused");
        exchange.wire.error(exchange.service, &e, &request_id)
    });
    let service = exchange.service.map_or("unknown", |s| s.name);
    let operation = exchange.operation.as_deref().unwrap_or("unknown");
    app.telemetry.request(service, operation, response.status().as_u16(), started.elapsed());
    response
}

async fn run(
    app: &Arc<App>,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
    exchange: &mut Exchange,
) -> ApiResult<Value> {
    let now = SystemTime::now();
    let cbor = headers.get(cbor::HEADER).is_some_and(|v| v.as_bytes() == cbor::NAME.as_bytes());
    let (service, payload, raw) = match headers.get("x-amz-target") {
        None if cbor => cbor_route(uri.path(), body, exchange).await?,
        Some(target) => json_route(target.to_str().unwrap_or_default(), body, exchange).await?,
        None if is_form(method, headers) => form_route(uri, headers, body, exchange).await?,
        None => return Err(ApiError::unknown_operation("Unknown target ''.")),
    };
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let signing_name = &service.model().signing_name;
    let caller = sigv4::verify(&app.config.keys, signing_name, method.as_str(), path, headers, &raw, now)
        .map_err(|e| exchange.wire.auth_error(e))?;
    let body_len = raw.len();
    let work = match payload {
        Payload::Json { operation, body } if exchange.wire.is_json() && service.body_handler(&operation).is_some() => {
            exchange.operation = Some(operation.clone());
            Work::Body(service.body_handler(&operation).expect("checked"), body)
        }
        payload => {
            let (operation, mut input) = exchange.wire.read(service, payload)?;
            exchange.operation = Some(operation.clone());
            let handler = service.handler(&operation).ok_or_else(|| service.unimplemented_error(&operation))?;
            exchange.wire.dry_run(&mut input)?;
            Work::Tree(handler, input)
        }
    };
    // A request runs to completion in its own task even if the client hangs up, so a
    // multi-step handler (or the leader of a batch of them) is never stopped midway.
    let app = app.clone();
    let work = tokio::spawn(async move {
        let ctx = Ctx::new(&app, caller, now, body_len);
        match work {
            Work::Tree(handler, input) => handler(&ctx, input).await,
            Work::Body(handler, body) => handler(&ctx, body).await,
        }
    });
    work.await.unwrap_or_else(|e| Err(ApiError::server(format!("request handler failed: {e}"))))
}

/// What a request's handler is given: its checked input, or (a body handler) its JSON body.
enum Work {
    Tree(service::Handler, Obj),
    Body(service::BodyHandler, Bytes),
}

fn is_form(method: &Method, headers: &HeaderMap) -> bool {
    let content_type = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
    *method == Method::GET || content_type.trim_start().starts_with("application/x-www-form-urlencoded")
}

async fn read_body(body: Body, limit: usize, wire: Wire) -> ApiResult<Bytes> {
    to_bytes(body, limit).await.map_err(|_| wire.too_large(limit))
}

/// A routed request: its service, what its protocol reads, and the raw body (signed).
type Routed = (&'static Service, Payload, Bytes);

async fn json_route(target: &str, body: Body, exchange: &mut Exchange) -> ApiResult<Routed> {
    let (prefix, operation) = target.split_once('.').unwrap_or((target, ""));
    let service =
        service::by_target(prefix).ok_or_else(|| ApiError::unknown_operation(format!("Unknown target '{target}'.")))?;
    exchange.wire = service.json_wire().unwrap_or(exchange.wire);
    exchange.service = Some(service);
    let body = read_body(body, service.body_limit, exchange.wire).await?;
    Ok((service, Payload::Json { operation: operation.to_string(), body: body.clone() }, body))
}

async fn cbor_route(path: &str, body: Body, exchange: &mut Exchange) -> ApiResult<Routed> {
    exchange.wire = Wire::Cbor;
    let (name, operation) =
        cbor::path(path).ok_or_else(|| ApiError::unknown_operation(format!("No operation at '{path}'.")))?;
    let service = service::by_cbor_name(name)
        .ok_or_else(|| ApiError::unknown_operation(format!("Berth serves no RPC v2 CBOR service '{name}'.")))?;
    exchange.service = Some(service);
    let body = read_body(body, service.body_limit, exchange.wire).await?;
    Ok((service, Payload::Json { operation: operation.to_string(), body: body.clone() }, body))
}

/// The service name of the request's SigV4 credential scope, before anything is verified.
fn scope_service(headers: &HeaderMap) -> Option<&str> {
    let header = headers.get("authorization")?.to_str().ok()?;
    let credential = header.split([' ', ',']).find_map(|part| part.strip_prefix("Credential="))?;
    credential.split('/').nth(3)
}

/// Routes a form request: among the query and EC2 services that sign as the credential scope
/// says (any, when unsigned), the one whose API version the form names, or the only one.
async fn form_route(uri: &Uri, headers: &HeaderMap, body: Body, exchange: &mut Exchange) -> ApiResult<Routed> {
    exchange.wire = Wire::Query;
    let scope = scope_service(headers);
    let candidates: Vec<&'static Service> = service::form_services(scope).collect();
    let limit = candidates.iter().map(|s| s.body_limit).max().unwrap_or(MAX_FORM_BODY);
    if let [only] = candidates[..] {
        exchange.wire = only.form_wire().unwrap_or(exchange.wire);
        exchange.service = Some(only);
    }
    let raw = read_body(body, limit, exchange.wire).await?;
    let malformed = |e: form::Malformed| ApiError::new(400, "MalformedQueryString", e.0);
    let mut params = form::Params::new();
    form::parse_into(&mut params, uri.query().unwrap_or_default()).map_err(malformed)?;
    let text = std::str::from_utf8(&raw)
        .map_err(|_| ApiError::new(400, "MalformedQueryString", "The request body is not UTF-8."))?;
    form::parse_into(&mut params, text).map_err(malformed)?;
    let version = params.get("Version").map(String::as_str);
    let service = candidates
        .iter()
        .copied()
        .find(|s| Some(s.model().api_version.as_str()) == version)
        .or(exchange.service)
        .ok_or_else(|| match scope {
            Some(name) => {
                ApiError::new(400, "InvalidAction", format!("Berth serves no query or EC2 API that signs as '{name}'."))
            }
            None => ApiError::new(403, "MissingAuthenticationToken", "Missing Authentication Token"),
        })?;
    exchange.wire = service.form_wire().unwrap_or(exchange.wire);
    exchange.service = Some(service);
    Ok((service, Payload::Form(params), raw))
}
