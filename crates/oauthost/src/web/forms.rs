//! Reading request parameters and client credentials.

use axum::{
    body::Bytes,
    extract::rejection::BytesRejection,
    http::{header, HeaderMap, StatusCode},
};
use base64::{engine::general_purpose::STANDARD, Engine as _};
use oauthost_core::{error::OAuthError, params::Params};

/// Largest request body accepted by oauthost's endpoints.
pub(crate) const MAX_BODY_BYTES: usize = 16 * 1024;

/// The parameters of a form-encoded body. Another content type, a body over
/// [`MAX_BODY_BYTES`], or bytes that do not decode to UTF-8 are refused with a status and an
/// `invalid_request`.
pub(crate) fn form_body(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Params, (StatusCode, OAuthError)> {
    let body = body.map_err(|rejection| {
        let status = rejection.status();
        let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
            format!("The request body is larger than {MAX_BODY_BYTES} bytes")
        } else {
            "The request body could not be read".to_owned()
        };
        (status, OAuthError::invalid_request(message))
    })?;
    if body.is_empty() {
        return Ok(Params::default());
    }
    if !is_form(headers) {
        return Err((
            StatusCode::BAD_REQUEST,
            OAuthError::invalid_request("Content-Type must be application/x-www-form-urlencoded"),
        ));
    }
    Params::parse(&body).map_err(|e| (StatusCode::BAD_REQUEST, e))
}

/// Whether the request says its body is `application/x-www-form-urlencoded`.
pub(crate) fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// The parameters of a query string.
pub(crate) fn query(query: Option<&str>) -> Result<Params, OAuthError> {
    Params::parse(query.unwrap_or_default().as_bytes())
}

fn form_decode(part: &str) -> Option<String> {
    let spaced = part.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

/// The client id and secret of an `Authorization: Basic` header (RFC 6749 §2.3.1: each
/// form-encoded, split at the first colon). `Ok(None)` without such a header; malformed
/// credentials are `invalid_client`.
pub(crate) fn basic_credentials(
    headers: &HeaderMap,
) -> Result<Option<(String, String)>, OAuthError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let malformed = || OAuthError::invalid_client("Malformed HTTP Basic credentials");
    let value = value.to_str().map_err(|_| malformed())?;
    let (scheme, encoded) = value.trim().split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(None);
    }
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| malformed())?;
    let decoded = String::from_utf8(decoded).map_err(|_| malformed())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(malformed)?;
    let id = form_decode(id)
        .filter(|id| !id.is_empty())
        .ok_or_else(malformed)?;
    let secret = form_decode(secret).ok_or_else(malformed)?;
    Ok(Some((id, secret)))
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn basic(value: &str) -> Result<Option<(String, String)>, OAuthError> {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        basic_credentials(&headers)
    }

    #[test]
    fn basic_credentials_are_form_decoded_and_split_at_the_first_colon() {
        // "my%20app:s%3Acret:x" -> id "my app", secret "s:cret:x"
        let encoded = STANDARD.encode("my%20app:s%3Acret:x");
        assert_eq!(
            basic(&format!("basic {encoded}")).unwrap(),
            Some(("my app".into(), "s:cret:x".into()))
        );
        assert_eq!(basic("Bearer abc").unwrap(), None);
        for bad in [
            "Basic",
            "Basic !!!",
            &format!("Basic {}", STANDARD.encode("nocolon")),
        ] {
            assert!(basic(bad).is_err(), "{bad}");
        }
    }
}
