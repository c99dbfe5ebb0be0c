//! The EC2 query protocol: form-encoded parameters named by EC2's conventions
//! (`ZoneName.1`, `Filter.1.Value.2`: query names or capitalised location names, every list
//! numbered directly) in; XML out — `<OpResponse><requestId/>...</OpResponse>` with lists as
//! `<item>`s — and errors as `<Response><Errors><Error><Code/><Message/></Error></Errors>
//! <RequestID/></Response>`. Bad parameters get EC2's common error codes
//! (`MissingParameter`, `InvalidParameterValue`, `UnknownParameter`), and `DryRun=true`
//! stops a permitted request with `DryRunOperation` before it changes anything.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use super::form::{self, Params, Style};
use super::query::bound;
use super::service::Service;
use super::validate::{Problem, Violation};
use super::xml::{self, Xml};
use crate::ecs::Obj;
use crate::error::{ApiError, ApiResult};

/// The error codes EC2 documents for every action (its model declares none).
pub const COMMON_ERRORS: &[&str] = &[
    "AuthFailure",
    "Blocked",
    "DryRunOperation",
    "IdempotentParameterMismatch",
    "IncompleteSignature",
    "InvalidAction",
    "InvalidCharacter",
    "InvalidClientTokenId",
    "InvalidPaginationToken",
    "InvalidParameter",
    "InvalidParameterCombination",
    "InvalidParameterDependency",
    "InvalidParameterValue",
    "InvalidQueryParameter",
    "MalformedQueryString",
    "MissingAction",
    "MissingAuthenticationToken",
    "MissingParameter",
    "OptInRequired",
    "PendingVerification",
    "RequestExpired",
    "UnauthorizedOperation",
    "UnknownParameter",
    "UnsupportedInstanceAttribute",
    "UnsupportedOperation",
    "UnsupportedProtocol",
    "ValidationError",
];

/// The validated input of `operation` from its parameters (`Action` and `Version` taken).
pub fn read(service: &Service, operation: &str, params: Params) -> ApiResult<Map<String, Value>> {
    form::read(service.model(), Style::Ec2, operation, params)
        .map_err(|e| e.into_api(|v| violation(service, operation, v)))
}

fn violation(service: &Service, operation: &str, v: Violation) -> ApiError {
    let name = form::parameter_name(service.model(), Style::Ec2, operation, &v.path);
    let invalid = |message: String| ApiError::new(400, service.invalid_input, message);
    match v.problem {
        Problem::Type { expected, found } => {
            invalid(format!("Value ({found}) for parameter {name} is invalid. Expected {expected}."))
        }
        Problem::Missing => {
            ApiError::new(400, "MissingParameter", format!("The request must contain the parameter {name}"))
        }
        Problem::Enum { value, allowed } => {
            invalid(format!("Value ({value}) for parameter {name} is invalid. Valid values: {}.", allowed.join(", ")))
        }
        Problem::Length { length, min, max } => {
            invalid(format!("Value for parameter {name} is invalid. Its length must be {}.", bound(length, min, max)))
        }
        Problem::Count { count, min, max } => {
            invalid(format!("Parameter {name} has {count} values; the number must be {}.", bound(count, min, max)))
        }
        Problem::Range { value, min, max } => {
            let n: f64 = value.parse().unwrap_or_default();
            invalid(format!("Value ({value}) for parameter {name} is invalid. It must be {}.", bound(n, min, max)))
        }
        Problem::Unknown(p) => ApiError::new(400, "UnknownParameter", format!("The parameter {p} is not recognized")),
    }
}

/// A request with `DryRun=true` stops here, as a permitted one does on EC2 (every signed
/// caller is permitted: Berth has no IAM). `DryRun=false` is taken out of the input.
pub fn dry_run(input: &mut Obj) -> ApiResult<()> {
    match input.remove("DryRun") {
        Some(Value::Bool(true)) => {
            Err(ApiError::new(412, "DryRunOperation", "Request would have succeeded, but DryRun flag is set."))
        }
        _ => Ok(()),
    }
}

/// SigV4 refusals under EC2's names.
pub fn auth_error(e: ApiError) -> ApiError {
    let (status, code) = match e.code {
        "MissingAuthenticationTokenException" => (401, "MissingAuthenticationToken"),
        "IncompleteSignatureException" => (400, "IncompleteSignature"),
        "UnrecognizedClientException" => (401, "AuthFailure"),
        "InvalidSignatureException" if e.message.starts_with("Signature expired") => (400, "RequestExpired"),
        "InvalidSignatureException" if e.message.starts_with("Signature not yet current") => (400, "RequestExpired"),
        "InvalidSignatureException" => (401, "AuthFailure"),
        _ => return e,
    };
    ApiError { status, code, message: e.message }
}

fn respond(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert("content-type", HeaderValue::from_static("text/xml;charset=UTF-8"));
    response
}

/// EC2's namespace ends with a slash on the wire.
fn namespace(service: &Service) -> String {
    let ns = service.model().xml_namespace.clone().unwrap_or_default();
    if ns.ends_with('/') { ns } else { format!("{ns}/") }
}

pub fn write(service: &Service, operation: &str, output: &Value, request_id: &str) -> ApiResult<Response> {
    let model = service.model();
    let root = format!("{operation}Response");
    let mut out = Xml::new();
    out.open(&root, Some(&namespace(service)));
    out.leaf("requestId", request_id);
    match &model.operations[operation].output {
        Some(shape) => xml::members(model, shape, output, &mut out)?,
        // Actions without output (DeleteVpc, CreateTags) answer `<return>true</return>`.
        None => out.leaf("return", "true"),
    }
    out.close(&root);
    Ok(respond(StatusCode::OK, out.finish()))
}

pub fn error(e: &ApiError, request_id: &str) -> Response {
    let code = if e.status >= 500 && e.code == "ServerException" { "InternalError" } else { e.code };
    let mut out = Xml::new();
    out.open("Response", None);
    out.open("Errors", None);
    out.open("Error", None);
    out.leaf("Code", code);
    out.leaf("Message", &e.message);
    out.close("Error");
    out.close("Errors");
    out.leaf("RequestID", request_id);
    out.close("Response");
    respond(StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST), out.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ec2::SERVICE as EC2;
    use serde_json::json;

    fn params(text: &str) -> Params {
        let mut p = Params::new();
        form::parse_into(&mut p, text).unwrap();
        p
    }

    fn text(r: Response) -> String {
        let body = futures::executor::block_on(axum::body::to_bytes(r.into_body(), 1 << 20)).unwrap();
        String::from_utf8(body.to_vec()).unwrap()
    }

    #[test]
    fn reads_ec2_parameters() {
        let input =
            read(&EC2, "DescribeAvailabilityZones", params("ZoneName.1=a&Filter.1.Name=state&Filter.1.Value.1=x"))
                .unwrap();
        assert_eq!(Value::Object(input), json!({"ZoneNames": ["a"], "Filters": [{"Name": "state", "Values": ["x"]}]}));
    }

    #[test]
    fn bad_parameters_get_ec2_codes() {
        let e = read(&EC2, "DeleteVpc", params("")).unwrap_err();
        assert_eq!((e.code, e.message.as_str()), ("MissingParameter", "The request must contain the parameter VpcId"));
        let e = read(&EC2, "DescribeAvailabilityZones", params("ZoneNames.1=a")).unwrap_err();
        assert_eq!((e.code, e.message.as_str()), ("UnknownParameter", "The parameter ZoneNames.1 is not recognized"));
        let e = read(&EC2, "DescribeAvailabilityZones", params("AllAvailabilityZones=maybe")).unwrap_err();
        assert_eq!(e.code, "InvalidParameterValue");
        assert!(e.message.starts_with("Value (maybe) for parameter AllAvailabilityZones is invalid"), "{}", e.message);
        let e = read(&EC2, "DescribeVpcs", params("MaxResults=2")).unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            (
                "InvalidParameterValue",
                "Value (2) for parameter MaxResults is invalid. It must be greater than or equal to 5."
            )
        );
    }

    #[test]
    fn dry_run_stops_a_request_and_false_is_taken_out() {
        let mut input = read(&EC2, "DescribeAvailabilityZones", params("DryRun=true")).unwrap();
        assert_eq!(dry_run(&mut input).unwrap_err().code, "DryRunOperation");
        let mut input = read(&EC2, "DescribeAvailabilityZones", params("DryRun=false")).unwrap();
        dry_run(&mut input).unwrap();
        assert!(input.is_empty());
    }

    #[test]
    fn responses_and_errors_have_ec2_envelopes() {
        let r = write(&EC2, "DeleteVpc", &json!({}), "rid").unwrap();
        assert_eq!(
            text(r),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<DeleteVpcResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">\
             <requestId>rid</requestId><return>true</return></DeleteVpcResponse>"
        );
        let r = error(&ApiError::new(400, "InvalidParameterValue", "bad <zone>"), "rid");
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert!(text(r).ends_with(
            "<Response><Errors><Error><Code>InvalidParameterValue</Code><Message>bad &lt;zone&gt;</Message></Error></Errors>\
             <RequestID>rid</RequestID></Response>"
        ));
        let expired = auth_error(ApiError::new(400, "InvalidSignatureException", "Signature expired: x"));
        assert_eq!(expired.code, "RequestExpired");
    }
}
