//! Client authentication at the token, introspection and revocation endpoints: `client_secret_basic`,
//! `client_secret_post` (RFC 6749 §2.3.1) and `private_key_jwt` (RFC 7523 §2.2).

use std::collections::HashSet;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use jwt_simple::prelude::{Duration, NoCustomClaims, UnixTimeStamp, VerificationOptions};
use serde_json::json;

use crate::domain::audit::Outcome;
use crate::domain::scopes;
use crate::domain::secrets::{hash_secret, secret_matches};
use crate::jose::access_token::CLOCK_SKEW_SECONDS;
use crate::jose::jwk::Verifier;
use crate::oauth::error::OAuthError;
use crate::oauth::form::OAuthForm;
use crate::ports::sql::Change;
use crate::state::AppState;
use crate::store::credentials::{self as store, StoredClient};
use crate::store::kv_keys;

pub const JWT_BEARER_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Longest lifetime accepted for a client assertion; it also bounds the replay cache.
const MAX_ASSERTION_LIFETIME_SECONDS: i64 = 300;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    ClientSecretBasic,
    ClientSecretPost,
    PrivateKeyJwt,
}

impl Method {
    /// Every method, as the metadata document advertises them.
    pub const ALL: [Method; 3] = [
        Method::ClientSecretBasic,
        Method::ClientSecretPost,
        Method::PrivateKeyJwt,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Method::ClientSecretBasic => "client_secret_basic",
            Method::ClientSecretPost => "client_secret_post",
            Method::PrivateKeyJwt => "private_key_jwt",
        }
    }
}

/// Who the client is, once authenticated.
#[derive(Clone, Debug)]
pub struct AuthenticatedClient {
    pub credential_id: String,
    pub org_id: String,
    pub client_id: String,
    /// `None` for an organization's admin credential.
    pub agent_id: Option<String>,
    /// Scopes this client may be granted: the agent's capabilities, or the admin scopes.
    pub allowed_scopes: Vec<String>,
    pub method: Method,
}

impl AuthenticatedClient {
    /// The `sub` of its tokens: the agent id, or the client id for an admin (RFC 9068 §2.2).
    pub fn subject(&self) -> &str {
        self.agent_id.as_deref().unwrap_or(&self.client_id)
    }
}

/// What the client presented, before anything is looked up.
#[derive(Debug)]
pub enum Presented {
    Secret {
        client_id: String,
        secret: String,
        method: Method,
    },
    Assertion {
        client_id: String,
        assertion: String,
    },
}

/// Authenticates the caller; `authorization` is the raw `Authorization` header, if any.
pub async fn authenticate(
    state: &AppState,
    authorization: Option<&str>,
    form: &OAuthForm,
) -> Result<AuthenticatedClient, OAuthError> {
    let presented = presented_credentials(authorization, form)?;
    let client_id = match &presented {
        Presented::Secret { client_id, .. } | Presented::Assertion { client_id, .. } => {
            client_id.clone()
        }
    };
    let Some(record) = store::find_client(state.db.as_ref(), &client_id).await? else {
        // Spend the same hashing work as for a known client, so timing does not reveal which ids exist.
        if let Presented::Secret { secret, .. } = &presented {
            let _ = secret_matches(secret, &hash_secret(""));
        }
        return Err(OAuthError::invalid_client("client authentication failed"));
    };
    let method = match &presented {
        Presented::Secret { method, .. } => *method,
        Presented::Assertion { .. } => Method::PrivateKeyJwt,
    };
    let verdict = match &presented {
        Presented::Secret { secret, .. } => check_secret(&record, secret, state.now_millis()),
        Presented::Assertion { assertion, .. } => {
            check_assertion(state, &record, assertion).await?
        }
    }
    .and_then(|()| check_usable(&record));
    match verdict {
        Ok(()) => Ok(AuthenticatedClient {
            allowed_scopes: if record.is_admin {
                scopes::ADMIN.iter().map(|s| (*s).to_owned()).collect()
            } else {
                record.capabilities
            },
            credential_id: record.credential_id,
            org_id: record.org_id,
            client_id: record.client_id,
            agent_id: record.agent_id,
            method,
        }),
        Err(reason) => {
            record_failure(state, &record, method, reason).await?;
            Err(OAuthError::invalid_client("client authentication failed"))
        }
    }
}

/// Which credentials the request carries, read from the `Authorization` header and the form
/// without any lookup: a pure function, fuzzed by `fuzz/fuzz_targets/client_auth.rs`.
pub fn presented_credentials(
    authorization: Option<&str>,
    form: &OAuthForm,
) -> Result<Presented, OAuthError> {
    let basic = authorization
        .and_then(|h| h.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .map(|(_, value)| value.trim());
    let post_secret = form.get("client_secret");
    let assertion = form.get("client_assertion");
    let used = [basic.is_some(), post_secret.is_some(), assertion.is_some()];
    if used.iter().filter(|u| **u).count() > 1 {
        return Err(OAuthError::invalid_request(
            "use exactly one client authentication method",
        ));
    }
    if let Some(encoded) = basic {
        let (client_id, secret) = decode_basic(encoded)
            .ok_or_else(|| OAuthError::invalid_client("malformed Basic authorization header"))?;
        if form.get("client_id").is_some_and(|id| id != client_id) {
            return Err(OAuthError::invalid_request(
                "client_id does not match the Basic credentials",
            ));
        }
        return Ok(Presented::Secret {
            client_id,
            secret,
            method: Method::ClientSecretBasic,
        });
    }
    if let Some(secret) = post_secret {
        let client_id = form.require("client_id")?;
        return Ok(Presented::Secret {
            client_id: client_id.to_owned(),
            secret: secret.to_owned(),
            method: Method::ClientSecretPost,
        });
    }
    if let Some(assertion) = assertion {
        if form.get("client_assertion_type") != Some(JWT_BEARER_ASSERTION) {
            return Err(OAuthError::invalid_request(format!(
                "client_assertion_type must be {JWT_BEARER_ASSERTION}"
            )));
        }
        let issuer = unverified_issuer(assertion).ok_or_else(|| {
            OAuthError::invalid_client("client_assertion is not a JWT with `iss`")
        })?;
        if form.get("client_id").is_some_and(|id| id != issuer) {
            return Err(OAuthError::invalid_request(
                "client_id does not match the assertion's issuer",
            ));
        }
        return Ok(Presented::Assertion {
            client_id: issuer,
            assertion: assertion.to_owned(),
        });
    }
    Err(OAuthError::invalid_client(
        "client authentication is required",
    ))
}

/// RFC 6749 §2.3.1: both halves are form-urlencoded before Base64.
pub fn decode_basic(encoded: &str) -> Option<(String, String)> {
    let decoded = String::from_utf8(STANDARD.decode(encoded).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let (id, secret) = (form_decode(id)?, form_decode(secret)?);
    (!id.is_empty() && !secret.is_empty()).then_some((id, secret))
}

fn form_decode(text: &str) -> Option<String> {
    let spaced = text.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

/// The `iss` of an unverified JWT, used only to find which key to verify it with.
pub fn unverified_issuer(jwt: &str) -> Option<String> {
    let payload = jwt.split('.').nth(1)?;
    let claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    claims.get("iss")?.as_str().map(str::to_owned)
}

fn check_secret(record: &StoredClient, secret: &str, now_millis: i64) -> Result<(), &'static str> {
    if record.kind != "client_secret" {
        return Err("credential does not use a client secret");
    }
    let current = record
        .secret_hash
        .as_deref()
        .is_some_and(|h| secret_matches(secret, h));
    let in_grace = record
        .previous_secret_expires_at
        .is_some_and(|t| t > now_millis);
    let previous = in_grace
        && record
            .previous_secret_hash
            .as_deref()
            .is_some_and(|h| secret_matches(secret, h));
    if current || previous {
        Ok(())
    } else {
        Err("wrong client secret")
    }
}

/// Revoked credentials and agents that are not active never get through.
fn check_usable(record: &StoredClient) -> Result<(), &'static str> {
    if record.status != "active" {
        return Err("credential revoked");
    }
    match (&record.agent_id, record.agent_status.as_deref()) {
        (None, _) | (Some(_), Some("active")) => Ok(()),
        (Some(_), Some("suspended")) => Err("agent suspended"),
        (Some(_), _) => Err("agent decommissioned"),
    }
}

/// RFC 7523 §3: signed by the registered key, `iss` = `sub` = client id, `aud` = token endpoint or
/// issuer, short-lived, and its `jti` used once.
async fn check_assertion(
    state: &AppState,
    record: &StoredClient,
    assertion: &str,
) -> Result<Result<(), &'static str>, OAuthError> {
    let Some(jwk) = record
        .public_jwk
        .as_deref()
        .filter(|_| record.kind == "private_key_jwt")
        .and_then(|j| serde_json::from_str::<serde_json::Value>(j).ok())
    else {
        return Ok(Err("credential has no registered public key"));
    };
    let Ok((verifier, _alg)) = Verifier::from_jwk(&jwk) else {
        return Ok(Err("registered public key is unusable"));
    };
    let now = state.clock.now_seconds();
    let config = &state.config;
    let options = VerificationOptions {
        required_subject: Some(record.client_id.clone()),
        allowed_issuers: Some(HashSet::from([record.client_id.clone()])),
        allowed_audiences: Some(HashSet::from([
            config.token_endpoint(),
            config.issuer.clone(),
        ])),
        time_tolerance: Some(Duration::from_secs(CLOCK_SKEW_SECONDS)),
        artificial_time: Some(UnixTimeStamp::from_secs(now.max(0) as u64)),
        max_token_length: Some(8 * 1024),
        ..Default::default()
    };
    let Ok(claims) = verifier.verify::<NoCustomClaims>(assertion, options) else {
        return Ok(Err("client assertion failed verification"));
    };
    let (Some(exp), Some(jti)) = (claims.expires_at, claims.jwt_id) else {
        return Ok(Err("client assertion lacks `exp` or `jti`"));
    };
    let exp = exp.as_secs() as i64;
    if exp - now > MAX_ASSERTION_LIFETIME_SECONDS {
        return Ok(Err("client assertion lives too long"));
    }
    let replay_key = kv_keys::used_assertion(&record.client_id, &jti);
    let ttl = (exp - now + CLOCK_SKEW_SECONDS as i64).max(1) as u64;
    if !state.kv.set_if_absent(&replay_key, "1", ttl).await? {
        return Ok(Err("client assertion replayed"));
    }
    Ok(Ok(()))
}

/// An authentication failure of a known client lands in its organization's audit trail.
async fn record_failure(
    state: &AppState,
    record: &StoredClient,
    method: Method,
    reason: &str,
) -> Result<(), OAuthError> {
    let mut event = state
        .audit(
            &record.org_id,
            &record.client_id,
            "authentication.failed",
            Outcome::Failure,
        )
        .target(record.credential_id.clone())
        .details(
            json!({ "client_id": record.client_id, "method": method.as_str(), "reason": reason }),
        );
    if let Some(agent) = &record.agent_id {
        event = event.agent(agent);
    }
    state.db.commit(Change::new().event(event)).await?;
    Ok(())
}
