//! The AWS JSON 1.0 and 1.1 protocols (ECS, ECR; later Logs, Cloud Map, Application Auto
//! Scaling): `POST /` with `X-Amz-Target: Prefix.Operation` and a JSON body, checked against
//! the operation's input shape. The handler's value tree is the JSON answer as it is;
//! errors are `{"__type": ..., "message": ...}`; every response carries `x-amzn-RequestId`.
//!
//! A wrong JSON type is a `SerializationException`, as AWS's JSON front end answers; other
//! violations of the model get the service's own name for a bad parameter.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use super::service::Service;
use super::validate::{self, Problem, Seg, Violation};
use crate::error::{ApiError, ApiResult};

/// The JSON protocol version: only the content type differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1_0,
    V1_1,
}

impl Version {
    fn content_type(self) -> &'static str {
        match self {
            Version::V1_0 => "application/x-amz-json-1.0",
            Version::V1_1 => "application/x-amz-json-1.1",
        }
    }
}

/// The validated input of `operation` from a JSON body (an empty body is `{}`).
pub fn read(service: &Service, operation: &str, body: &[u8]) -> ApiResult<Map<String, Value>> {
    let model = service.model();
    if !model.operations.contains_key(operation) {
        return Err(ApiError::unknown_operation(format!("Unknown operation '{operation}'.")));
    }
    let parsed: Value = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Object(Map::new())
    } else {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::serialization(format!("Request body is not valid JSON: {e}.")))?
    };
    validate(service, operation, parsed)
}

/// An input that [`bulk`] decodes straight from its JSON body.
pub trait Bulk: serde::de::DeserializeOwned {
    /// Whether the model's checks would certainly take this input as it is: every length,
    /// count and range within the model's bounds. When it is not sure, it says `false`, and
    /// the model's checks decide (and word any refusal).
    fn plainly_valid(&self) -> bool;
}

/// The input of `operation` decoded straight into `T` (no value tree): what [`read`] takes,
/// and refused as [`read`] refuses it. A body `T` does not decode, or decodes but does not
/// vouch for, goes through [`read`] and the model's checks.
pub fn bulk<T: Bulk>(service: &Service, operation: &str, body: &[u8]) -> ApiResult<T> {
    if let Ok(input) = serde_json::from_slice::<T>(body)
        && input.plainly_valid()
    {
        return Ok(input);
    }
    let checked = read(service, operation, body)?;
    serde_json::from_value(Value::Object(checked))
        .map_err(|e| ApiError::serialization(format!("The request does not fit {operation}'s input: {e}.")))
}

/// `parsed` checked against the input shape of `operation` (one the model has).
pub fn validate(service: &Service, operation: &str, parsed: Value) -> ApiResult<Map<String, Value>> {
    validate::input(service.model(), operation, parsed).map_err(|e| e.into_api(|v| violation(service, v)))
}

/// `a.b[0].c`, as the messages name a member.
fn path_text(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Member(m) | Seg::Key(m) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(m);
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

pub(super) fn violation(service: &Service, v: Violation) -> ApiError {
    let path = path_text(&v.path);
    let invalid = |message: String| ApiError::new(400, service.invalid_input, message);
    match v.problem {
        Problem::Type { expected, found } => {
            let at = if path.is_empty() { "the request body".to_string() } else { format!("'{path}'") };
            ApiError::serialization(format!("Expected {expected} at {at} but found {found}."))
        }
        Problem::Missing => invalid(format!("Missing required parameter '{path}'.")),
        Problem::Enum { value, allowed } => {
            invalid(format!("Invalid value '{value}' for '{path}'. Valid values: {}.", allowed.join(", ")))
        }
        Problem::Count { count, .. } => invalid(format!("'{path}' has {count} items, outside the allowed range.")),
        Problem::Length { length, .. } => invalid(format!("'{path}' has length {length}, outside the allowed range.")),
        Problem::Range { value, .. } => invalid(format!("'{path}' is {value}, outside the allowed range.")),
        Problem::Unknown(name) => invalid(format!("Unknown parameter '{name}'.")),
    }
}

fn respond(version: Version, status: StatusCode, body: &Value, request_id: &str) -> Response {
    let mut response = (status, serde_json::to_vec(body).unwrap_or_default()).into_response();
    let h = response.headers_mut();
    h.insert("content-type", HeaderValue::from_static(version.content_type()));
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert("x-amzn-requestid", v);
    }
    response
}

pub fn write(version: Version, output: &Value, request_id: &str) -> Response {
    respond(version, StatusCode::OK, output, request_id)
}

pub fn error(version: Version, e: &ApiError, request_id: &str) -> Response {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
    respond(version, status, &e.body(), request_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ecs::SERVICE as ECS;

    fn refuse(operation: &str, body: &str) -> ApiError {
        read(&ECS, operation, body.as_bytes()).unwrap_err()
    }

    #[test]
    fn reads_validated_input_and_empty_bodies() {
        let out = read(&ECS, "CreateCluster", br#"{"clusterName": "a", "bogus": 1}"#).unwrap();
        assert_eq!(Value::Object(out), serde_json::json!({"clusterName": "a"}));
        assert!(read(&ECS, "ListClusters", b"  ").unwrap().is_empty());
    }

    #[test]
    fn errors_keep_ecs_names_and_messages() {
        let e = refuse(
            "RegisterTaskDefinition",
            r#"{"family": "f", "containerDefinitions": [{"name": "a", "memory": "lots"}]}"#,
        );
        assert_eq!(
            (e.code, e.message.as_str()),
            ("SerializationException", "Expected an integer at 'containerDefinitions[0].memory' but found a string.")
        );
        let e = refuse("CreateCluster", "[1]");
        assert_eq!(e.message, "Expected a structure at the request body but found a list.");
        let e = refuse("RegisterTaskDefinition", r#"{"family": "f"}"#);
        assert_eq!(
            (e.code, e.message.as_str()),
            ("InvalidParameterException", "Missing required parameter 'containerDefinitions'.")
        );
        let e = refuse("RunTask", r#"{"taskDefinition": "t", "launchType": "MOON"}"#);
        assert!(e.message.starts_with("Invalid value 'MOON' for 'launchType'. Valid values: EC2, "), "{}", e.message);
        assert_eq!(refuse("CreateCluster", "{\"clusterName\": ").code, "SerializationException");
        let e = refuse("NoSuchThing", "{}");
        assert_eq!((e.code, e.message.as_str()), ("UnknownOperationException", "Unknown operation 'NoSuchThing'."));
    }

    #[test]
    fn responses_carry_content_type_and_request_id() {
        let r = error(Version::V1_0, &ApiError::invalid("x"), "rid");
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert_eq!(r.headers()["content-type"], "application/x-amz-json-1.0");
        assert_eq!(r.headers()["x-amzn-requestid"], "rid");
    }
}
