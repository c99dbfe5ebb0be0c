//! AWS Signature Version 4, both halves: [`verify`] checks what clients send to Berth's API,
//! [`sign_headers`] signs for Berth's own clients (the agent, the CLI, the benchmark).
//!
//! aws-sigv4 only signs, so verification re-signs: the request's signed headers, body and
//! `X-Amz-Date` go through the same canonicalisation the SDKs use, with the secret we hold
//! for the access key, and the two signatures are compared in constant time.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use http::HeaderMap;
use subtle::ConstantTimeEq;
use time::OffsetDateTime;
use time::macros::format_description;

/// How far a request's `X-Amz-Date` may be from the server's clock.
pub const MAX_SKEW: Duration = Duration::from_secs(15 * 60);

/// Access key id → secret access key.
#[derive(Debug, Clone, Default)]
pub struct KeyRing {
    keys: HashMap<String, String>,
}

impl KeyRing {
    pub fn new(pairs: impl IntoIterator<Item = (String, String)>) -> Self {
        KeyRing { keys: pairs.into_iter().collect() }
    }

    pub fn secret(&self, access_key: &str) -> Option<&str> {
        self.keys.get(access_key).map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// Who signed a request, and for which region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub access_key: String,
    pub region: String,
}

struct Authorization<'a> {
    access_key: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
    signed_headers: Vec<&'a str>,
    signature: &'a str,
}

/// Why a request's signature was refused: the AWS exception name, the HTTP status and the
/// message AWS answers with. The API renders it in its own error shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct SignatureError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl SignatureError {
    fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        SignatureError { status, code, message: message.into() }
    }
}

fn incomplete(why: &str) -> SignatureError {
    SignatureError::new(400, "IncompleteSignatureException", why.to_string())
}

fn mismatch() -> SignatureError {
    SignatureError::new(
        400,
        "InvalidSignatureException",
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
    )
}

fn parse_authorization(header: &str) -> Result<Authorization<'_>, SignatureError> {
    let rest = header
        .strip_prefix("AWS4-HMAC-SHA256 ")
        .ok_or_else(|| incomplete("Authorization header requires the AWS4-HMAC-SHA256 algorithm."))?;
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        match part.trim().split_once('=') {
            Some(("Credential", v)) => credential = Some(v),
            Some(("SignedHeaders", v)) => signed = Some(v),
            Some(("Signature", v)) => signature = Some(v),
            _ => {}
        }
    }
    let missing = |what: &str| incomplete(&format!("Authorization header requires '{what}' parameter."));
    let credential = credential.ok_or_else(|| missing("Credential"))?;
    let mut scope = credential.split('/');
    let (Some(access_key), Some(date), Some(region), Some(service), Some("aws4_request"), None) =
        (scope.next(), scope.next(), scope.next(), scope.next(), scope.next(), scope.next())
    else {
        return Err(incomplete(
            "Credential should be scoped to a valid region, service and date: ACCESS_KEY/DATE/REGION/SERVICE/aws4_request.",
        ));
    };
    Ok(Authorization {
        access_key,
        date,
        region,
        service,
        signed_headers: signed.ok_or_else(|| missing("SignedHeaders"))?.split(';').collect(),
        signature: signature.ok_or_else(|| missing("Signature"))?,
    })
}

fn amz_date(raw: &str) -> Option<SystemTime> {
    let format = format_description!("[year][month][day]T[hour][minute][second]Z");
    let parsed = time::PrimitiveDateTime::parse(raw, format).ok()?.assume_utc();
    Some(SystemTime::from(parsed))
}

fn format_amz_date(t: SystemTime) -> String {
    let format = format_description!("[year][month][day]T[hour][minute][second]Z");
    OffsetDateTime::from(t).format(format).unwrap_or_default()
}

/// Verifies a SigV4-signed request for `service`; returns the caller on success.
pub fn verify(
    keys: &KeyRing,
    service: &str,
    method: &str,
    path_and_query: &str,
    headers: &HeaderMap,
    body: &[u8],
    now: SystemTime,
) -> Result<Caller, SignatureError> {
    let Some(header) = headers.get("authorization").and_then(|v| v.to_str().ok()) else {
        return Err(SignatureError::new(403, "MissingAuthenticationTokenException", "Missing Authentication Token"));
    };
    let auth = parse_authorization(header)?;
    let Some(secret) = keys.secret(auth.access_key) else {
        return Err(SignatureError::new(
            400,
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        ));
    };
    let raw_date = headers.get("x-amz-date").and_then(|v| v.to_str().ok()).ok_or_else(|| {
        incomplete("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
    })?;
    let signed_at = amz_date(raw_date).ok_or_else(|| incomplete("X-Amz-Date must be in the form YYYYMMDDTHHMMSSZ."))?;
    if signed_at + MAX_SKEW < now {
        return Err(SignatureError::new(
            400,
            "InvalidSignatureException",
            format!(
                "Signature expired: {raw_date} is now earlier than {} ({} - 15 min.)",
                format_amz_date(now - MAX_SKEW),
                format_amz_date(now)
            ),
        ));
    }
    if signed_at > now + MAX_SKEW {
        return Err(SignatureError::new(
            400,
            "InvalidSignatureException",
            format!(
                "Signature not yet current: {raw_date} is still later than {} ({} + 15 min.)",
                format_amz_date(now + MAX_SKEW),
                format_amz_date(now)
            ),
        ));
    }
    if !raw_date.starts_with(auth.date) || auth.date.len() != 8 {
        return Err(SignatureError::new(
            400,
            "InvalidSignatureException",
            format!("Credential should be scoped to a valid date: {}.", &raw_date[..8]),
        ));
    }
    if auth.service != service {
        return Err(SignatureError::new(
            400,
            "InvalidSignatureException",
            format!("Credential should be scoped to correct service: '{service}'."),
        ));
    }
    if !auth.signed_headers.contains(&"host") {
        return Err(mismatch());
    }
    let mut signed = Vec::with_capacity(auth.signed_headers.len());
    let mut token = None;
    for name in &auth.signed_headers {
        if *name == "x-amz-security-token" {
            token = headers.get(*name).and_then(|v| v.to_str().ok()).map(str::to_string);
            continue;
        }
        let value = headers.get(*name).and_then(|v| v.to_str().ok()).ok_or_else(mismatch)?;
        signed.push((*name, value));
    }
    let expected = signature(
        auth.access_key,
        secret,
        token,
        auth.region,
        service,
        signed_at,
        method,
        path_and_query,
        signed,
        body,
    )
    .ok_or_else(mismatch)?;
    if expected.as_bytes().ct_eq(auth.signature.as_bytes()).into() {
        Ok(Caller { access_key: auth.access_key.to_string(), region: auth.region.to_string() })
    } else {
        Err(mismatch())
    }
}

#[allow(clippy::too_many_arguments)]
fn signature(
    access_key: &str,
    secret: &str,
    token: Option<String>,
    region: &str,
    service: &str,
    at: SystemTime,
    method: &str,
    path_and_query: &str,
    headers: Vec<(&str, &str)>,
    body: &[u8],
) -> Option<String> {
    let identity = Credentials::new(access_key, secret, token, None, "berth").into();
    let mut settings = SigningSettings::default();
    settings.excluded_headers = None;
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(at)
        .settings(settings)
        .build()
        .ok()?
        .into();
    let request = SignableRequest::new(method, path_and_query, headers.into_iter(), SignableBody::Bytes(body)).ok()?;
    Some(sign(request, &params).ok()?.signature().to_string())
}

/// The headers to add to a request so Berth (or AWS) accepts it: `x-amz-date` and
/// `authorization`. `headers` must include `host` and every other header to sign.
#[allow(clippy::too_many_arguments)]
pub fn sign_headers(
    access_key: &str,
    secret: &str,
    region: &str,
    service: &str,
    at: SystemTime,
    method: &str,
    path_and_query: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Vec<(String, String)> {
    let date = format_amz_date(at);
    let mut all: Vec<(&str, &str)> = headers.to_vec();
    all.push(("x-amz-date", &date));
    all.sort_by(|a, b| a.0.cmp(b.0));
    let sig = signature(access_key, secret, None, region, service, at, method, path_and_query, all.clone(), body)
        .expect("signing a well-formed request");
    let names: Vec<&str> = all.iter().map(|(n, _)| *n).collect();
    let scope = format!("{access_key}/{}/{region}/{service}/aws4_request", &date[..8]);
    vec![
        ("x-amz-date".into(), date.clone()),
        (
            "authorization".into(),
            format!("AWS4-HMAC-SHA256 Credential={scope}, SignedHeaders={}, Signature={sig}", names.join(";")),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn keys() -> KeyRing {
        KeyRing::new([("AKID".to_string(), "SECRET".to_string())])
    }

    fn signed(at: SystemTime, secret: &str, body: &[u8]) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("host", HeaderValue::from_static("127.0.0.1:8600"));
        h.insert("x-amz-target", HeaderValue::from_static("AmazonEC2ContainerServiceV20141113.ListClusters"));
        let extra = sign_headers(
            "AKID",
            secret,
            "us-east-1",
            "ecs",
            at,
            "POST",
            "/",
            &[("host", "127.0.0.1:8600"), ("x-amz-target", "AmazonEC2ContainerServiceV20141113.ListClusters")],
            body,
        );
        for (k, v) in extra {
            h.insert(http::HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(&v).unwrap());
        }
        h
    }

    #[test]
    fn accepts_a_good_signature_and_names_the_region() {
        let now = SystemTime::now();
        let h = signed(now, "SECRET", b"{}");
        let caller = verify(&keys(), "ecs", "POST", "/", &h, b"{}", now).unwrap();
        assert_eq!(caller, Caller { access_key: "AKID".into(), region: "us-east-1".into() });
    }

    #[test]
    fn refuses_wrong_secret_tampered_body_and_missing_auth() {
        let now = SystemTime::now();
        let refuse = |keys: &KeyRing, service: &str, headers: &HeaderMap, body: &[u8]| {
            verify(keys, service, "POST", "/", headers, body, now).unwrap_err()
        };
        let good = signed(now, "SECRET", b"{}");
        let bad = refuse(&keys(), "ecs", &signed(now, "WRONG", b"{}"), b"{}");
        assert_eq!(bad.code, "InvalidSignatureException");
        let tampered = refuse(&keys(), "ecs", &good, b"{\"x\":1}");
        assert_eq!(tampered.code, "InvalidSignatureException");
        let none = refuse(&keys(), "ecs", &HeaderMap::new(), b"");
        assert_eq!((none.status, none.code), (403, "MissingAuthenticationTokenException"));
        let unknown = refuse(&KeyRing::default(), "ecs", &good, b"{}");
        assert_eq!(unknown.code, "UnrecognizedClientException");
        let wrong_service = refuse(&keys(), "ecr", &good, b"{}");
        assert_eq!(wrong_service.code, "InvalidSignatureException");
    }

    #[test]
    fn refuses_stale_and_future_dates() {
        let now = SystemTime::now();
        let stale = signed(now - Duration::from_secs(16 * 60), "SECRET", b"{}");
        let e = verify(&keys(), "ecs", "POST", "/", &stale, b"{}", now).unwrap_err();
        assert!(e.message.starts_with("Signature expired:"), "{}", e.message);
        let future = signed(now + Duration::from_secs(16 * 60), "SECRET", b"{}");
        let e = verify(&keys(), "ecs", "POST", "/", &future, b"{}", now).unwrap_err();
        assert!(e.message.starts_with("Signature not yet current:"), "{}", e.message);
        let fine = signed(now - Duration::from_secs(14 * 60), "SECRET", b"{}");
        assert!(verify(&keys(), "ecs", "POST", "/", &fine, b"{}", now).is_ok());
    }
}
