//! SigV4 for the API. The algorithm (verifying and signing) lives in `berth-sigv4`, shared with
//! Berth's clients; here a refused signature becomes the API's own error shape.

use std::time::SystemTime;

use axum::http::HeaderMap;
pub use berth_sigv4::{Caller, KeyRing, MAX_SKEW, SignatureError, sign_headers};

use crate::error::ApiError;

impl From<SignatureError> for ApiError {
    fn from(e: SignatureError) -> Self {
        ApiError::new(e.status, e.code, e.message)
    }
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
) -> Result<Caller, ApiError> {
    berth_sigv4::verify(keys, service, method, path_and_query, headers, body, now).map_err(ApiError::from)
}
