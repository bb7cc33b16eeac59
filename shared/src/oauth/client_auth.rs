//! Client authentication at the token, introspection and revocation endpoints: `client_secret_basic`,
//! `client_secret_post` (RFC 6749 §2.3.1) and `private_key_jwt` (RFC 7523 §2.2).

use std::collections::HashSet;

use crate::domain::caller::{AgentId, Caller, ClientId, Identity, OrgId};
use crate::domain::policies::AgentFacts;
use crate::domain::scopes;
use crate::domain::secrets::{hash_secret, secret_matches};
use crate::jose::access_token::CLOCK_SKEW_SECONDS;
use crate::jose::jwk::Verifier;
use crate::oauth::error::OAuthError;
use crate::oauth::form::OAuthForm;
use crate::state::AppState;
use crate::store::credentials::{self as store, StoredClient};
use crate::store::kv_keys;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use jwt_simple::prelude::{Duration, NoCustomClaims, UnixTimeStamp, VerificationOptions};

pub const JWT_BEARER_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Longest lifetime accepted for a client assertion; it also bounds the replay cache.
const MAX_ASSERTION_LIFETIME_SECONDS: i64 = 300;

/// Longest `jti` kept in the replay cache: generous for UUIDs and random strings, bounded for keys.
const MAX_JTI_CHARS: usize = 256;

/// RFC 8725 §3.11: a JWT explicitly typed as an RFC 9068 access token (`typ: at+jwt`, in any case,
/// with or without the `application/` prefix) is never accepted as a client assertion, so a token
/// cannot be replayed as a credential even where its claims would pass.
fn is_typed_as_access_token(jwt: &str) -> bool {
    let Some(header) = jwt
        .split('.')
        .next()
        .and_then(|h| URL_SAFE_NO_PAD.decode(h).ok())
        .and_then(|h| serde_json::from_slice::<serde_json::Value>(&h).ok())
    else {
        return false;
    };
    header
        .get("typ")
        .and_then(|t| t.as_str())
        .is_some_and(|typ| {
            let typ = typ.to_ascii_lowercase();
            typ.strip_prefix("application/").unwrap_or(&typ) == "at+jwt"
        })
}

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
    /// What the organization's policies know of the agent; `None` for an admin credential,
    /// whose tokens policies do not govern.
    pub policy_facts: Option<AgentFacts>,
    /// The version of the organization's policy set, read with the credential.
    pub policy_version: i64,
}

impl AuthenticatedClient {
    /// The `sub` of its tokens: the agent id, or the client id for an admin (RFC 9068 §2.2).
    pub fn subject(&self) -> &str {
        self.agent_id.as_deref().unwrap_or(&self.client_id)
    }

    /// The client as a caller of the decision point, holding what it may be granted.
    pub fn caller(&self) -> Caller {
        let client_id = ClientId::new(self.client_id.as_str());
        Caller {
            org: OrgId::new(self.org_id.as_str()),
            identity: match &self.agent_id {
                None => Identity::Admin { client_id },
                Some(agent_id) => Identity::Agent {
                    agent_id: AgentId::new(agent_id.as_str()),
                    client_id,
                },
            },
            scopes: self.allowed_scopes.clone(),
            key_binding: None,
        }
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

impl Presented {
    /// The client id the caller claims: looked up, never trusted, until authentication succeeds.
    pub fn client_id(&self) -> &str {
        match self {
            Presented::Secret { client_id, .. } | Presented::Assertion { client_id, .. } => {
                client_id
            }
        }
    }

    pub fn method(&self) -> Method {
        match self {
            Presented::Secret { method, .. } => *method,
            Presented::Assertion { .. } => Method::PrivateKeyJwt,
        }
    }
}

/// A refused authentication, for the failure accounting (`oauth::failed_authentication`).
#[derive(Debug)]
pub struct Rejected {
    /// The credential presented, when one with that client id exists.
    pub client: Option<StoredClient>,
    pub method: Method,
    /// Why, for the audit trail; never the caller's to see.
    pub reason: &'static str,
}

/// Authenticates what the caller presented (`Ok(Err(_))` when it does not authenticate);
/// `Err` only when a dependency failed.
pub async fn authenticate(
    state: &AppState,
    presented: &Presented,
) -> Result<Result<AuthenticatedClient, Rejected>, OAuthError> {
    let method = presented.method();
    let Some(record) = store::find_client(state.db.as_ref(), presented.client_id()).await? else {
        // Spend the same hashing work as for a known client, so timing does not reveal which ids exist.
        if let Presented::Secret { secret, .. } = presented {
            let _ = secret_matches(secret, &hash_secret(""));
        }
        return Ok(Err(Rejected {
            client: None,
            method,
            reason: "unknown client",
        }));
    };
    let verdict = match presented {
        Presented::Secret { secret, .. } => check_secret(&record, secret, state.now_millis()),
        Presented::Assertion { assertion, .. } => {
            check_assertion(state, &record, assertion).await?
        }
    }
    .and_then(|()| check_usable(&record));
    Ok(match verdict {
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
            policy_facts: record.policy_facts,
            policy_version: record.policy_version,
        }),
        Err(reason) => Err(Rejected {
            client: Some(record),
            method,
            reason,
        }),
    })
}

/// Whether the request carries client credentials at all (Basic, `client_secret` or
/// `client_assertion`), whatever their shape.
pub fn presents_credentials(authorization: Option<&str>, form: &OAuthForm) -> bool {
    let basic = authorization
        .and_then(|h| h.split_once(' '))
        .is_some_and(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"));
    basic || form.get("client_secret").is_some() || form.get("client_assertion").is_some()
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
    if is_typed_as_access_token(assertion) {
        return Ok(Err("an access token is not a client assertion"));
    }
    let Ok(claims) = verifier.verify::<NoCustomClaims>(assertion, options) else {
        return Ok(Err("client assertion failed verification"));
    };
    let (Some(exp), Some(jti)) = (claims.expires_at, claims.jwt_id) else {
        return Ok(Err("client assertion lacks `exp` or `jti`"));
    };
    if jti.trim().is_empty() || jti.len() > MAX_JTI_CHARS {
        return Ok(Err("client assertion `jti` is empty or too long"));
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt_with_header(header: &str) -> String {
        format!(
            "{}.{}.sig",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(r#"{"iss":"c"}"#)
        )
    }

    #[test]
    fn access_tokens_are_told_apart_from_assertions_by_their_type() {
        for typ in ["at+jwt", "AT+JWT", "application/at+jwt"] {
            let jwt = jwt_with_header(&format!(r#"{{"alg":"ES256","typ":"{typ}"}}"#));
            assert!(is_typed_as_access_token(&jwt), "{typ}");
        }
        for header in [
            r#"{"alg":"ES256","typ":"JWT"}"#,
            r#"{"alg":"ES256"}"#,
            "not json",
        ] {
            assert!(
                !is_typed_as_access_token(&jwt_with_header(header)),
                "{header}"
            );
        }
    }
}
