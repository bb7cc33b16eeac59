//! What the OAuth endpoints count: token requests by grant type and outcome, and failed client
//! authentications by the method the client tried.

use crate::oauth::error::{ErrorCode, OAuthError};
use crate::oauth::form::OAuthForm;
use crate::oauth::GRANTS;
use crate::ports::metrics::{self, Event};

/// Counts a token request: its grant type (`unsupported` for any other value, so the label stays
/// a bounded set) and `issued` or the OAuth error code.
pub fn token_request<T>(form: &OAuthForm, result: &Result<T, OAuthError>) {
    if !metrics::is_enabled() {
        return;
    }
    let requested = form.get("grant_type").unwrap_or_default();
    let grant = GRANTS
        .iter()
        .map(|g| g.grant_type())
        .find(|g| *g == requested)
        .unwrap_or("unsupported");
    let outcome = match result {
        Ok(_) => "issued",
        Err(e) => e.error(),
    };
    metrics::record(Event::TokenRequest { grant, outcome });
}

/// Counts a failed client authentication at `/oauth2/*`, by the method presented.
pub fn client_authentication<T>(
    authorization: Option<&str>,
    form: &OAuthForm,
    result: &Result<T, OAuthError>,
) {
    if let Err(e) = result {
        if e.code == ErrorCode::InvalidClient {
            let method = presented_method(authorization, form);
            metrics::record(Event::AuthenticationFailure { method });
        }
    }
}

/// The client authentication method a request tried, by what it carries.
pub fn presented_method(authorization: Option<&str>, form: &OAuthForm) -> &'static str {
    let basic = authorization
        .and_then(|v| v.split_once(' '))
        .is_some_and(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"));
    if basic {
        "client_secret_basic"
    } else if form.get("client_assertion").is_some() {
        "private_key_jwt"
    } else if form.get("client_secret").is_some() {
        "client_secret_post"
    } else {
        "none"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_method_is_read_from_what_the_request_carries() {
        let form = |body: &str| OAuthForm::parse(body.as_bytes()).unwrap();
        let empty = form("grant_type=client_credentials");
        assert_eq!(
            presented_method(Some("Basic YTpi"), &empty),
            "client_secret_basic"
        );
        assert_eq!(presented_method(None, &empty), "none");
        assert_eq!(
            presented_method(None, &form("client_id=a&client_secret=b")),
            "client_secret_post"
        );
        assert_eq!(
            presented_method(None, &form("client_id=a&client_assertion=x.y.z")),
            "private_key_jwt"
        );
    }
}
