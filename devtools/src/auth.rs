//! The bearer token both stand-ins check, compared in constant time.

use axum::http::HeaderMap;

/// What a request presented, judged against the token the stand-in was started with.
#[derive(Debug, PartialEq)]
pub enum Credential {
    /// No token is configured, or the right one was presented.
    Accepted,
    Missing,
    Wrong,
}

/// `Authorization: Bearer …`, or `query_token` where a protocol also allows one in the URL.
pub fn check(headers: &HeaderMap, query_token: Option<&str>, expected: Option<&str>) -> Credential {
    let Some(expected) = expected else {
        return Credential::Accepted;
    };
    let presented = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .or(query_token);
    match presented {
        None => Credential::Missing,
        Some(p)
            if bool::from(subtle::ConstantTimeEq::ct_eq(
                p.as_bytes(),
                expected.as_bytes(),
            )) =>
        {
            Credential::Accepted
        }
        Some(_) => Credential::Wrong,
    }
}
