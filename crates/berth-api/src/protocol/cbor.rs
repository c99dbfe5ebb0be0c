//! Smithy RPC v2 CBOR, the protocol current botocore speaks first to CloudWatch:
//! `POST /service/{Service}/operation/{Operation}` with `smithy-protocol: rpc-v2-cbor` and a
//! CBOR body (an empty body is `{}`). Timestamps travel as CBOR tag 1 (seconds since the
//! epoch) and blobs as byte strings; the request becomes the same value tree the JSON
//! protocol reads (timestamps as seconds, blobs as base64) and is checked against the model
//! alike. Answers are written through the output shape, so timestamps and blobs get their
//! CBOR forms; errors are `{"__type", "message"}` maps.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ciborium::Value as Cbor;
use serde_json::{Map, Number, Value};

use super::service::Service;
use super::shapes::{Model, Shape};
use super::validate;
use crate::error::{ApiError, ApiResult};

pub const HEADER: &str = "smithy-protocol";
pub const NAME: &str = "rpc-v2-cbor";

/// `/service/{Service}/operation/{Operation}` → (service, operation).
pub fn path(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix("/service/")?;
    let (service, operation) = rest.split_once("/operation/")?;
    (!service.is_empty() && !operation.is_empty() && !operation.contains('/')).then_some((service, operation))
}

fn to_json(v: Cbor) -> Result<Value, String> {
    Ok(match v {
        Cbor::Null => Value::Null,
        Cbor::Bool(b) => Value::Bool(b),
        Cbor::Integer(i) => {
            let n = i128::from(i);
            i64::try_from(n)
                .map(Value::from)
                .or_else(|_| u64::try_from(n).map(Value::from))
                .map_err(|_| "an integer out of range")?
        }
        Cbor::Float(f) => Number::from_f64(f).map(Value::Number).ok_or("a float that is not finite")?,
        Cbor::Text(t) => Value::String(t),
        Cbor::Bytes(b) => Value::String(STANDARD.encode(b)),
        Cbor::Array(items) => Value::Array(items.into_iter().map(to_json).collect::<Result<_, _>>()?),
        Cbor::Map(entries) => {
            let mut out = Map::new();
            for (k, v) in entries {
                let Cbor::Text(k) = k else { return Err("a map key that is not text".into()) };
                out.insert(k, to_json(v)?);
            }
            Value::Object(out)
        }
        // Tag 1: a moment as seconds since the epoch; other tags carry their value.
        Cbor::Tag(_, inner) => to_json(*inner)?,
        _ => return Err("a CBOR value the protocol does not use".into()),
    })
}

/// The validated input of `operation` from a CBOR body.
pub fn read(service: &Service, operation: &str, body: &[u8]) -> ApiResult<Map<String, Value>> {
    let model = service.model();
    if !model.operations.contains_key(operation) {
        return Err(ApiError::unknown_operation(format!("Unknown operation '{operation}'.")));
    }
    let parsed = if body.is_empty() {
        Value::Object(Map::new())
    } else {
        let raw: Cbor = ciborium::from_reader(body)
            .map_err(|e| ApiError::serialization(format!("Request body is not valid CBOR: {e}.")))?;
        to_json(raw).map_err(|e| ApiError::serialization(format!("Request body holds {e}.")))?
    };
    validate::input(model, operation, parsed).map_err(|e| e.into_api(|v| super::json::violation(service, v)))
}

/// `value` in the CBOR form of shape `name`.
fn encode(model: &Model, name: &str, value: &Value) -> Cbor {
    let shape = model.shapes.get(name);
    match (shape, value) {
        (_, Value::Null) => Cbor::Null,
        (Some(Shape::Timestamp), v) => Cbor::Tag(1, Box::new(Cbor::Float(v.as_f64().unwrap_or_default()))),
        (Some(Shape::Blob), Value::String(s)) => {
            Cbor::Bytes(STANDARD.decode(s).unwrap_or_else(|_| s.clone().into_bytes()))
        }
        (Some(Shape::Structure { members, .. }), Value::Object(o)) => Cbor::Map(
            o.iter()
                .map(|(k, v)| {
                    let inner = members.get(k).map(|r| encode(model, &r.shape, v)).unwrap_or_else(|| plain(v));
                    (Cbor::Text(k.clone()), inner)
                })
                .collect(),
        ),
        (Some(Shape::List { member, .. }), Value::Array(items)) => {
            Cbor::Array(items.iter().map(|i| encode(model, &member.shape, i)).collect())
        }
        (Some(Shape::Map { value: v, .. }), Value::Object(o)) => {
            Cbor::Map(o.iter().map(|(k, x)| (Cbor::Text(k.clone()), encode(model, &v.shape, x))).collect())
        }
        (Some(Shape::Float { .. }), v) => Cbor::Float(v.as_f64().unwrap_or_default()),
        (_, v) => plain(v),
    }
}

/// A value without a shape: as JSON has it.
fn plain(v: &Value) -> Cbor {
    match v {
        Value::Null => Cbor::Null,
        Value::Bool(b) => Cbor::Bool(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Cbor::Integer(i.into()),
            (None, Some(u)) => Cbor::Integer(u.into()),
            _ => Cbor::Float(n.as_f64().unwrap_or_default()),
        },
        Value::String(s) => Cbor::Text(s.clone()),
        Value::Array(items) => Cbor::Array(items.iter().map(plain).collect()),
        Value::Object(o) => Cbor::Map(o.iter().map(|(k, v)| (Cbor::Text(k.clone()), plain(v))).collect()),
    }
}

fn respond(status: StatusCode, body: &Cbor, request_id: &str) -> Response {
    let mut bytes = Vec::new();
    ciborium::into_writer(body, &mut bytes).expect("CBOR encodes into memory");
    let mut response = (status, bytes).into_response();
    let headers = response.headers_mut();
    headers.insert("content-type", HeaderValue::from_static("application/cbor"));
    headers.insert(HEADER, HeaderValue::from_static(NAME));
    if let Ok(id) = HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-requestid", id);
    }
    response
}

pub fn write(service: &Service, operation: &str, output: &Value, request_id: &str) -> Response {
    let model = service.model();
    let shape = model.operations.get(operation).and_then(|o| o.output.clone());
    let body = match shape {
        Some(s) => encode(model, &s, output),
        None => Cbor::Map(Vec::new()),
    };
    respond(StatusCode::OK, &body, request_id)
}

pub fn error(e: &ApiError, request_id: &str) -> Response {
    let body = Cbor::Map(vec![
        (Cbor::Text("__type".into()), Cbor::Text(e.code.into())),
        (Cbor::Text("message".into()), Cbor::Text(e.message.clone())),
    ]);
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut response = respond(status, &body, request_id);
    // Query-compatible services (CloudWatch) name the error's query code here too.
    if let Ok(v) = HeaderValue::from_str(&format!("{};{}", e.code, if e.status >= 500 { "Receiver" } else { "Sender" }))
    {
        response.headers_mut().insert("x-amzn-query-error", v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_service_and_operation() {
        assert_eq!(
            path("/service/GraniteServiceVersion20100801/operation/PutMetricData"),
            Some(("GraniteServiceVersion20100801", "PutMetricData"))
        );
        for bad in ["/", "/service/x", "/service//operation/y", "/service/x/operation/", "/service/x/operation/a/b"] {
            assert_eq!(path(bad), None, "{bad}");
        }
    }

    #[test]
    fn values_convert_with_timestamps_and_blobs() {
        let raw = Cbor::Map(vec![
            (Cbor::Text("t".into()), Cbor::Tag(1, Box::new(Cbor::Float(1.5)))),
            (Cbor::Text("b".into()), Cbor::Bytes(vec![1, 2])),
            (Cbor::Text("n".into()), Cbor::Integer(7.into())),
            (Cbor::Text("l".into()), Cbor::Array(vec![Cbor::Bool(true), Cbor::Null])),
        ]);
        assert_eq!(to_json(raw).unwrap(), serde_json::json!({"t": 1.5, "b": "AQI=", "n": 7, "l": [true, null]}));
        assert!(to_json(Cbor::Map(vec![(Cbor::Integer(1.into()), Cbor::Null)])).is_err());
    }
}
