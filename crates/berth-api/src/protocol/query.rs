//! The AWS query protocol (ELBv2; later CloudWatch's query form): form-encoded parameters
//! (`Action`, `Version`, `Names.member.1=...`) in, XML out —
//! `<OpResponse><OpResult>...</OpResult><ResponseMetadata><RequestId>` — and errors as
//! `<ErrorResponse><Error><Type/><Code/><Message/></Error><RequestId/></ErrorResponse>`.
//! Constraint violations are worded as AWS's query services word them
//! (`1 validation error detected: Value ... at 'pageSize' failed to satisfy constraint: ...`).

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use super::form::{self, Params, Style};
use super::service::Service;
use super::validate::{Problem, Seg, Violation};
use super::xml::{self, Xml};
use crate::error::{ApiError, ApiResult};

/// Error codes every AWS query service documents (beside the model's own).
pub const COMMON_ERRORS: &[&str] = &[
    "AccessDeniedException",
    "IncompleteSignature",
    "InternalFailure",
    "InvalidAction",
    "InvalidClientTokenId",
    "InvalidParameterCombination",
    "InvalidParameterValue",
    "InvalidQueryParameter",
    "MalformedQueryString",
    "MissingAction",
    "MissingAuthenticationToken",
    "MissingParameter",
    "NotAuthorized",
    "OptInRequired",
    "RequestExpired",
    "ServiceUnavailable",
    "ThrottlingException",
    "ValidationError",
];

/// The validated input of `operation` from its parameters (`Action` and `Version` taken).
pub fn read(service: &Service, operation: &str, params: Params) -> ApiResult<Map<String, Value>> {
    form::read(service.model(), Style::Query, operation, params).map_err(|e| e.into_api(|v| violation(service, v)))
}

/// `loadBalancerArns.member.1`: the member path as AWS's query validation messages write it.
fn path_text(path: &[Seg]) -> String {
    let parts: Vec<String> = path
        .iter()
        .map(|seg| match seg {
            Seg::Member(m) => {
                let mut chars = m.chars();
                chars.next().map(|c| c.to_lowercase().chain(chars).collect()).unwrap_or_default()
            }
            Seg::Index(i) => format!("member.{}", i + 1),
            Seg::Key(k) => k.clone(),
        })
        .collect();
    parts.join(".")
}

/// "less than or equal to MAX" when `n` is above the range, else "greater than or equal to MIN".
pub fn bound<T: PartialOrd + std::fmt::Display>(n: T, min: Option<T>, max: Option<T>) -> String {
    match (min, max) {
        (_, Some(max)) if n > max => format!("less than or equal to {max}"),
        (Some(min), _) => format!("greater than or equal to {min}"),
        _ => "within the allowed range".to_string(),
    }
}

fn violation(service: &Service, v: Violation) -> ApiError {
    let at = path_text(&v.path);
    let constraint = match v.problem {
        Problem::Type { expected, found } => {
            format!("Value '{found}' at '{at}' failed to satisfy constraint: Member must be {expected}")
        }
        Problem::Missing => format!("Value null at '{at}' failed to satisfy constraint: Member must not be null"),
        Problem::Enum { value, allowed } => format!(
            "Value '{value}' at '{at}' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
            allowed.join(", ")
        ),
        Problem::Length { length: n, min, max } | Problem::Count { count: n, min, max } => {
            format!("Value at '{at}' failed to satisfy constraint: Member must have length {}", bound(n, min, max))
        }
        Problem::Range { value, min, max } => {
            let n: f64 = value.parse().unwrap_or_default();
            format!(
                "Value '{value}' at '{at}' failed to satisfy constraint: Member must have value {}",
                bound(n, min, max)
            )
        }
        Problem::Unknown(name) => format!("Parameter '{name}' is not recognized"),
    };
    ApiError::new(400, service.invalid_input, format!("1 validation error detected: {constraint}"))
}

/// SigV4 refusals under the names AWS's query services use.
pub fn auth_error(e: ApiError) -> ApiError {
    let (status, code) = match e.code {
        "MissingAuthenticationTokenException" => (403, "MissingAuthenticationToken"),
        "IncompleteSignatureException" => (400, "IncompleteSignature"),
        "UnrecognizedClientException" => (403, "InvalidClientTokenId"),
        "InvalidSignatureException" => (403, "SignatureDoesNotMatch"),
        _ => return e,
    };
    ApiError { status, code, message: e.message }
}

fn respond(status: StatusCode, body: String, request_id: &str) -> Response {
    let mut response = (status, body).into_response();
    let h = response.headers_mut();
    h.insert("content-type", HeaderValue::from_static("text/xml"));
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert("x-amzn-requestid", v);
    }
    response
}

pub fn write(service: &Service, operation: &str, output: &Value, request_id: &str) -> ApiResult<Response> {
    let model = service.model();
    let op = &model.operations[operation];
    let root = format!("{operation}Response");
    let mut out = Xml::new();
    out.open(&root, model.xml_namespace.as_deref());
    if let Some(shape) = &op.output {
        let wrapper = op.result_wrapper.clone().unwrap_or_else(|| format!("{operation}Result"));
        out.open(&wrapper, None);
        xml::members(model, shape, output, &mut out)?;
        out.close(&wrapper);
    }
    out.open("ResponseMetadata", None);
    out.leaf("RequestId", request_id);
    out.close("ResponseMetadata");
    out.close(&root);
    Ok(respond(StatusCode::OK, out.finish(), request_id))
}

pub fn error(service: Option<&Service>, e: &ApiError, request_id: &str) -> Response {
    let (code, fault) = match e.status {
        500.. if e.code == "ServerException" => ("InternalFailure", "Receiver"),
        500.. => (e.code, "Receiver"),
        _ => (e.code, "Sender"),
    };
    let mut out = Xml::new();
    out.open("ErrorResponse", service.and_then(|s| s.model().xml_namespace.as_deref()));
    out.open("Error", None);
    out.leaf("Type", fault);
    out.leaf("Code", code);
    out.leaf("Message", &e.message);
    out.close("Error");
    out.leaf("RequestId", request_id);
    out.close("ErrorResponse");
    respond(StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST), out.finish(), request_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::elbv2::SERVICE as ELBV2;

    fn params(text: &str) -> Params {
        let mut p = Params::new();
        form::parse_into(&mut p, text).unwrap();
        p
    }

    #[test]
    fn violations_read_as_aws_query_validation_errors() {
        let e = read(&ELBV2, "DescribeLoadBalancers", params("PageSize=0")).unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            (
                "ValidationError",
                "1 validation error detected: Value '0' at 'pageSize' failed to satisfy constraint: Member must have value greater than or equal to 1"
            )
        );
        let e = read(&ELBV2, "DescribeLoadBalancers", params("PageSize=401")).unwrap_err();
        assert!(e.message.ends_with("less than or equal to 400"), "{}", e.message);
        let e = read(&ELBV2, "DescribeTags", params("")).unwrap_err();
        assert!(e.message.contains("Value null at 'resourceArns'"), "{}", e.message);
        let e = read(&ELBV2, "DescribeLoadBalancers", params("Bogus=1")).unwrap_err();
        assert_eq!(e.message, "1 validation error detected: Parameter 'Bogus' is not recognized");
        let e = read(&ELBV2, "DescribeLoadBalancers", params("PageSize=many")).unwrap_err();
        assert!(e.message.contains("Value 'many' at 'pageSize'"), "{}", e.message);
    }

    #[test]
    fn responses_wrap_results_and_carry_the_request_id() {
        let out = serde_json::json!({"LoadBalancers": []});
        let r = write(&ELBV2, "DescribeLoadBalancers", &out, "rid-1").unwrap();
        assert_eq!(r.headers()["x-amzn-requestid"], "rid-1");
        let body = futures::executor::block_on(axum::body::to_bytes(r.into_body(), 1 << 20)).unwrap();
        let text = String::from_utf8(body.to_vec()).unwrap();
        assert!(
            text.contains(
                "<DescribeLoadBalancersResponse xmlns=\"http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/\">\
             <DescribeLoadBalancersResult><LoadBalancers></LoadBalancers></DescribeLoadBalancersResult>\
             <ResponseMetadata><RequestId>rid-1</RequestId></ResponseMetadata></DescribeLoadBalancersResponse>"
            ),
            "{text}"
        );
    }

    #[test]
    fn errors_are_error_responses_with_a_fault() {
        let r = error(Some(&ELBV2), &ApiError::server("boom"), "rid-2");
        assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = futures::executor::block_on(axum::body::to_bytes(r.into_body(), 1 << 20)).unwrap();
        let text = String::from_utf8(body.to_vec()).unwrap();
        assert!(text.contains("<Error><Type>Receiver</Type><Code>InternalFailure</Code><Message>boom</Message></Error><RequestId>rid-2</RequestId>"), "{text}");
        assert_eq!(auth_error(ApiError::new(400, "InvalidSignatureException", "x")).code, "SignatureDoesNotMatch");
    }
}
