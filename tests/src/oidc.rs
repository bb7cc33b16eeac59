//! A stand-in OIDC issuer for workload identity federation: an RSA key pair generated here, its
//! JWKS served on loopback, and tokens minted with exactly GitHub Actions' claim set.

use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jwt_simple::prelude::*;
use serde_json::{json, Map, Value};

/// The audience the tests configure as this deployment's (`GITHUB_OIDC_AUDIENCE`).
pub const AUDIENCE: &str = "https://agentidp.test";

/// Keys are slow to generate in a debug build: each test process makes two, once.
pub fn signing_key() -> &'static RS256KeyPair {
    static KEY: OnceLock<RS256KeyPair> = OnceLock::new();
    KEY.get_or_init(|| RS256KeyPair::generate(2048).expect("generating an RSA key"))
}

/// A second key, never published: what an attacker signs with.
pub fn other_key() -> &'static RS256KeyPair {
    static KEY: OnceLock<RS256KeyPair> = OnceLock::new();
    KEY.get_or_init(|| RS256KeyPair::generate(2048).expect("generating an RSA key"))
}

/// A key's id: its RFC 7638 thumbprint, so anyone holding the key derives the same one.
pub fn kid_of(key: &RS256KeyPair) -> String {
    key.public_key().jwk_thumbprint()
}

/// The public JWK of a key, as GitHub publishes its keys.
pub fn jwk_of(key: &RS256KeyPair) -> Value {
    let components = key.public_key().to_components();
    json!({
        "kty": "RSA",
        "alg": "RS256",
        "use": "sig",
        "kid": kid_of(key),
        "n": URL_SAFE_NO_PAD.encode(components.n),
        "e": URL_SAFE_NO_PAD.encode(components.e),
    })
}

/// Claims exactly as given, registered ones included: jwt-simple adds none of its own.
pub fn raw_claims(claims: &Map<String, Value>) -> JWTClaims<Map<String, Value>> {
    JWTClaims {
        issued_at: None,
        expires_at: None,
        invalid_before: None,
        issuer: None,
        subject: None,
        audiences: None,
        jwt_id: None,
        nonce: None,
        custom: claims.clone(),
    }
}

/// Signs arbitrary claims (registered ones included, as given) with `key`, naming `kid`.
pub fn mint_with(key: &RS256KeyPair, kid: &str, claims: &Map<String, Value>) -> String {
    key.clone()
        .with_key_id(kid)
        .sign(raw_claims(claims))
        .expect("signing")
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn unique_jti() -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "jti-{nanos}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// GitHub Actions' claim set for a push to `main` of `repository` (ids as GitHub sends them:
/// strings), valid now for five minutes.
pub fn github_claims(issuer: &str, repository: &str, repository_id: &str) -> Map<String, Value> {
    let owner = repository.split('/').next().unwrap();
    let now = now();
    let claims = json!({
        "jti": unique_jti(),
        "sub": format!("repo:{repository}:environment:production"),
        "aud": AUDIENCE,
        "ref": "refs/heads/main",
        "sha": "0123456789abcdef0123456789abcdef01234567",
        "repository": repository,
        "repository_owner": owner,
        "repository_owner_id": "4242",
        "repository_visibility": "private",
        "repository_id": repository_id,
        "run_id": "9001",
        "run_number": "7",
        "run_attempt": "1",
        "runner_environment": "github-hosted",
        "actor": "octocat",
        "actor_id": "12",
        "workflow": "ci",
        "event_name": "push",
        "ref_type": "branch",
        "environment": "production",
        "job_workflow_ref": format!("{repository}/.github/workflows/ci.yml@refs/heads/main"),
        "workflow_ref": format!("{repository}/.github/workflows/ci.yml@refs/heads/main"),
        "iss": issuer,
        "nbf": now - 5,
        "iat": now,
        "exp": now + 300,
    });
    match claims {
        Value::Object(map) => map,
        _ => unreachable!(),
    }
}

struct Published {
    jwks: Mutex<Value>,
    requests: AtomicUsize,
    /// 200, or the failure the JWKS endpoint answers with.
    status: AtomicU16,
}

/// The stand-in issuer: its URL is the `iss` of its tokens, its JWKS at `/.well-known/jwks`.
pub struct Issuer {
    pub url: String,
    pub kid: String,
    key: &'static RS256KeyPair,
    published: Option<Arc<Published>>,
}

async fn jwks(State(published): State<Arc<Published>>) -> axum::response::Response {
    published.requests.fetch_add(1, Ordering::SeqCst);
    let status = published.status.load(Ordering::SeqCst);
    if status != 200 {
        return StatusCode::from_u16(status).unwrap().into_response();
    }
    let body = published.jwks.lock().unwrap().to_string();
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

impl Issuer {
    /// Serves the JWKS of [`signing_key`] on a free loopback port, in this test's runtime.
    pub async fn start() -> Issuer {
        let key = signing_key();
        let published = Arc::new(Published {
            jwks: Mutex::new(json!({ "keys": [jwk_of(key)] })),
            requests: AtomicUsize::new(0),
            status: AtomicU16::new(200),
        });
        let app = Router::new()
            .route("/.well-known/jwks", get(jwks))
            .with_state(published.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Issuer {
            url,
            kid: kid_of(key),
            key,
            published: Some(published),
        }
    }

    /// An issuer someone else serves (`agentidp-dev oidc-issuer`) with the key in `pem`.
    pub fn at(url: &str, pem: &str) -> Issuer {
        let key: &'static RS256KeyPair = Box::leak(Box::new(
            RS256KeyPair::from_pem(pem).expect("an RSA private key"),
        ));
        Issuer {
            url: url.trim_end_matches('/').to_owned(),
            kid: kid_of(key),
            key,
            published: None,
        }
    }

    /// The issuer of `AGENTIDP_OIDC_ISSUER_URL` with the key in `AGENTIDP_OIDC_KEY_FILE` (the
    /// edge runs', configured into the deployment), else a fresh one here.
    pub async fn from_env() -> Issuer {
        match (
            std::env::var("AGENTIDP_OIDC_ISSUER_URL"),
            std::env::var("AGENTIDP_OIDC_KEY_FILE"),
        ) {
            (Ok(url), Ok(file)) if !url.is_empty() => Issuer::at(
                &url,
                &std::fs::read_to_string(file).expect("the issuer's key"),
            ),
            _ => Issuer::start().await,
        }
    }

    /// The server variables that make a deployment trust this issuer.
    pub fn server_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("GITHUB_OIDC_ISSUER", self.url.clone()),
            ("GITHUB_OIDC_AUDIENCE", AUDIENCE.to_owned()),
        ]
    }

    fn published(&self) -> &Published {
        self.published.as_ref().expect("an issuer this test serves")
    }

    /// How many times its JWKS was fetched.
    pub fn jwks_requests(&self) -> usize {
        self.published().requests.load(Ordering::SeqCst)
    }

    /// Makes the JWKS endpoint answer `status` (200 restores it).
    pub fn set_jwks_status(&self, status: u16) {
        self.published().status.store(status, Ordering::SeqCst);
    }

    /// GitHub's claims for a push to `main` of `repository`.
    pub fn claims(&self, repository: &str, repository_id: &str) -> Map<String, Value> {
        github_claims(&self.url, repository, repository_id)
    }

    /// A token signed with the published key.
    pub fn mint(&self, claims: &Map<String, Value>) -> String {
        mint_with(self.key, &self.kid, claims)
    }
}

/// The two grants a workflow's token is exchanged through.
#[derive(Clone, Copy, Debug)]
pub enum Grant {
    /// RFC 8693 token exchange.
    TokenExchange,
    /// RFC 7523 §2.1 jwt-bearer.
    JwtBearer,
}

/// Posts a workflow's `token` to the token endpoint through `grant`, with `extra` parameters
/// (`agent_id`, `scope`, ...); no client authentication.
pub async fn exchange(
    server: &crate::Server,
    grant: Grant,
    token: &str,
    extra: &[(&str, &str)],
) -> (u16, Value) {
    let mut form: Vec<(&str, &str)> = match grant {
        Grant::TokenExchange => vec![
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:token-exchange",
            ),
            ("subject_token", token),
            (
                "subject_token_type",
                "urn:ietf:params:oauth:token-type:id_token",
            ),
        ],
        Grant::JwtBearer => vec![
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("assertion", token),
        ],
    };
    form.extend_from_slice(extra);
    let response = server
        .http
        .post(server.url("/oauth2/token"))
        .form(&form)
        .send()
        .await
        .unwrap();
    crate::status_json(response).await
}
