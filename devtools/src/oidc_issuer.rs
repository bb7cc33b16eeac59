//! A stand-in for GitHub Actions' OIDC issuer: publishes the JWKS of an RSA key kept in a file and
//! answers the runner's ID-token request protocol (`ACTIONS_ID_TOKEN_REQUEST_URL`) with tokens
//! carrying GitHub's claim set, so federation runs end to end without GitHub.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jwt_simple::prelude::*;
use serde_json::{json, Map, Value};

/// How long minted tokens live, as GitHub's do (about five minutes).
const TOKEN_LIFETIME_SECONDS: u64 = 300;

struct Issuer {
    url: String,
    key: RS256KeyPair,
    kid: String,
    /// Bearer token the request endpoint requires (`ACTIONS_ID_TOKEN_REQUEST_TOKEN`).
    request_token: String,
    /// Claims merged over the defaults, re-read on every request so a test can change them.
    claims_file: Option<PathBuf>,
}

/// Reads the PEM key at `path`, or generates one and writes it there (owner-only).
fn load_or_create_key(path: &Path) -> Result<RS256KeyPair, String> {
    if let Ok(pem) = std::fs::read_to_string(path) {
        return RS256KeyPair::from_pem(&pem).map_err(|e| format!("{}: {e}", path.display()));
    }
    let key = RS256KeyPair::generate(2048).map_err(|e| e.to_string())?;
    let pem = key.to_pem().map_err(|e| e.to_string())?;
    std::fs::write(path, pem).map_err(|e| format!("writing {}: {e}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
    }
    Ok(key)
}

pub async fn serve(
    listen: SocketAddr,
    key_file: PathBuf,
    issuer_url: Option<String>,
    claims_file: Option<PathBuf>,
    request_token: String,
) -> Result<(), String> {
    let key = load_or_create_key(&key_file)?;
    // The RFC 7638 thumbprint: whoever holds the key file derives the same kid.
    let kid = key.public_key().jwk_thumbprint();
    let url = issuer_url
        .unwrap_or_else(|| format!("http://{listen}"))
        .trim_end_matches('/')
        .to_owned();
    let issuer = Arc::new(Issuer {
        url: url.clone(),
        key: key.with_key_id(&kid),
        kid,
        request_token,
        claims_file,
    });
    let app = Router::new()
        .route("/.well-known/jwks", get(jwks))
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/token", get(request_token_endpoint))
        .with_state(issuer);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    tracing::info!(%listen, issuer = %url, "OIDC issuer stand-in serving");
    axum::serve(listener, app).await.map_err(|e| e.to_string())
}

async fn jwks(State(issuer): State<Arc<Issuer>>) -> Response {
    let components = issuer.key.public_key().to_components();
    let body = json!({ "keys": [{
        "kty": "RSA", "alg": "RS256", "use": "sig", "kid": issuer.kid,
        "n": URL_SAFE_NO_PAD.encode(components.n), "e": URL_SAFE_NO_PAD.encode(components.e),
    }]});
    ([(header::CACHE_CONTROL, "public, max-age=300")], Json(body)).into_response()
}

async fn discovery(State(issuer): State<Arc<Issuer>>) -> Json<Value> {
    Json(json!({
        "issuer": issuer.url,
        "jwks_uri": format!("{}/.well-known/jwks", issuer.url),
        "id_token_signing_alg_values_supported": ["RS256"],
    }))
}

fn random_id() -> String {
    let mut bytes = [0u8; 16];
    let _ = getrandom::fill(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// GitHub's claims for a push to `main` of `octo/app`, then the claims file's, then the request's.
fn claims(issuer: &Issuer, audience: Option<String>) -> Result<Map<String, Value>, String> {
    let mut claims = json!({
        "sub": "repo:octo/app:ref:refs/heads/main",
        "ref": "refs/heads/main",
        "sha": "0123456789abcdef0123456789abcdef01234567",
        "repository": "octo/app",
        "repository_owner": "octo",
        "repository_owner_id": "4242",
        "repository_visibility": "private",
        "repository_id": "111",
        "run_id": "9001",
        "run_number": "7",
        "run_attempt": "1",
        "runner_environment": "github-hosted",
        "actor": "octocat",
        "actor_id": "12",
        "workflow": "ci",
        "event_name": "push",
        "ref_type": "branch",
        "job_workflow_ref": "octo/app/.github/workflows/ci.yml@refs/heads/main",
        "workflow_ref": "octo/app/.github/workflows/ci.yml@refs/heads/main",
    });
    if let Some(path) = &issuer.claims_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        let extra: Map<String, Value> =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        for (k, v) in extra {
            claims[&k] = v;
        }
    }
    let owner = claims["repository_owner"]
        .as_str()
        .unwrap_or("octo")
        .to_owned();
    let Value::Object(mut claims) = claims else {
        return Err("claims are not an object".into());
    };
    // GitHub's default audience is the owner's URL.
    let audience = audience.unwrap_or_else(|| format!("https://github.com/{owner}"));
    claims.insert("aud".into(), json!(audience));
    claims.insert("iss".into(), json!(issuer.url));
    claims.insert("jti".into(), json!(random_id()));
    Ok(claims)
}

/// `GET /token?audience=…` with `Authorization: Bearer <request token>`: `{"count", "value"}`, as
/// the Actions runtime answers `core.getIDToken()`.
async fn request_token_endpoint(
    State(issuer): State<Arc<Issuer>>,
    headers: HeaderMap,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token);
    if presented != Some(issuer.request_token.as_str()) {
        return (
            StatusCode::UNAUTHORIZED,
            "bad ACTIONS_ID_TOKEN_REQUEST_TOKEN",
        )
            .into_response();
    }
    let claims = match claims(&issuer, query.get("audience").cloned()) {
        Ok(claims) => claims,
        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, e).into_response(),
    };
    let mut jwt = Claims::with_custom_claims(claims, Duration::from_secs(TOKEN_LIFETIME_SECONDS));
    jwt.invalid_before = jwt.issued_at.map(|t| t - Duration::from_secs(5));
    match issuer.key.sign(jwt) {
        Ok(value) => Json(json!({ "count": value.len(), "value": value })).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}
