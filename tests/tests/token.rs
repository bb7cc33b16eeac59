//! The token function end to end: client authentication, the grant, access-token checks, RFC 7523
//! assertions, introspection, revocation, keys and metadata, against the real server.

use std::collections::HashSet;

use agentidp_shared::domain::sealed::{self, Kek, Keks};
use agentidp_tests::{jwt_parts, open_db, status_json, AgentClient, Org, Server};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jwt_simple::prelude::*;
use serde_json::{json, Value};

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

async fn org_and_agent(server: &Server, capabilities: &[&str]) -> (Org, AgentClient) {
    let org = server.bootstrap("acme").await;
    let agent = server
        .agent_with_secret(&org, "indexer", capabilities)
        .await;
    (org, agent)
}

/// POSTs a form, authenticating as `client` with `client_secret_basic` when given.
async fn post_form_as(
    server: &Server,
    path: &str,
    client: Option<(&str, &str)>,
    form: &[(&str, &str)],
) -> (u16, Value) {
    let mut request = server.http.post(server.url(path)).form(form);
    if let Some((id, secret)) = client {
        request = request.basic_auth(id, Some(secret));
    }
    status_json(request.send().await.unwrap()).await
}

async fn post_form(server: &Server, path: &str, form: &[(&str, &str)]) -> (u16, Value) {
    post_form_as(server, path, None, form).await
}

/// An RFC 6749 §5.2 error with this status and `error` code.
fn assert_oauth_error((status, body): (u16, Value), expected_status: u16, error: &str) {
    assert_eq!(
        (status, body["error"].as_str()),
        (expected_status, Some(error)),
        "{body}"
    );
}

/// The server's active signing key, read from its database and opened with the key-encryption key
/// beside it, as an attacker holding both could.
async fn server_signing_key(server: &Server) -> ES256KeyPair {
    let conn = open_db(&server.db_path()).await;
    let mut rows = conn
        .query(
            "SELECT kid, private_key FROM signing_keys WHERE retired_at IS NULL AND alg = 'ES256'",
            (),
        )
        .await
        .unwrap();
    let row = rows.next().await.unwrap().unwrap();
    let kid: String = row.get(0).unwrap();
    let sealed_key: Vec<u8> = row.get(1).unwrap();
    let key_file = server.db_path().with_file_name("key-encryption-key");
    let kek = Kek::parse(&std::fs::read_to_string(key_file).unwrap()).unwrap();
    let key = Keks::new(kek, Vec::new())
        .open(&sealed::signing_key_row(&kid), &sealed_key)
        .unwrap();
    ES256KeyPair::from_bytes(&key).unwrap().with_key_id(&kid)
}

#[derive(Serialize, Deserialize)]
struct Custom {
    client_id: String,
    scope: String,
    org_id: String,
}

/// A token with the real key and the claims of a genuine one, for forging variants.
fn claims_like(server: &Server, genuine: &Value) -> JWTClaims<Custom> {
    let custom = Custom {
        client_id: genuine["client_id"].as_str().unwrap().into(),
        scope: genuine["scope"].as_str().unwrap().into(),
        org_id: genuine["org_id"].as_str().unwrap().into(),
    };
    Claims::with_custom_claims(custom, Duration::from_mins(10))
        .with_issuer(&server.base)
        .with_audience(&server.base)
        .with_subject(genuine["sub"].as_str().unwrap())
        .with_jwt_id("forged-jti")
}

fn at_jwt() -> HeaderOptions {
    HeaderOptions {
        signature_type: Some("at+jwt".into()),
        ..Default::default()
    }
}

#[tokio::test]
async fn client_credentials_issues_an_rfc9068_token() {
    let server = Server::start().await;
    let (org, agent) = org_and_agent(&server, &["read:docs", "write:docs"]).await;

    let response = server
        .token_request(&agent.client_id, &agent.client_secret, &[])
        .await;
    assert_eq!(response.headers()["cache-control"], "no-store");
    let (status, body) = status_json(response).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["scope"], "read:docs write:docs");

    let (header, claims) = jwt_parts(body["access_token"].as_str().unwrap());
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "ES256");
    assert!(header["kid"].is_string());
    assert_eq!(claims["iss"], server.base);
    assert_eq!(claims["aud"], server.base);
    assert_eq!(claims["sub"], agent.id);
    assert_eq!(claims["client_id"], agent.client_id);
    assert_eq!(claims["org_id"], org.id);
    assert_eq!(claims["scope"], "read:docs write:docs");
    assert!(claims["jti"].is_string());
    let iat = claims["iat"].as_i64().unwrap();
    assert_eq!(claims["nbf"].as_i64().unwrap(), iat);
    assert_eq!(claims["exp"].as_i64().unwrap(), iat + 3600);

    // The token verifies against the published JWKS with an independent JOSE implementation.
    let jwks = server.jwks().await;
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .unwrap();
    let key = ES256PublicKey::from_jwk(&jwk.to_string()).unwrap();
    let options = VerificationOptions {
        allowed_issuers: Some(HashSet::from([server.base.clone()])),
        required_signature_type: Some("at+jwt".into()),
        ..Default::default()
    };
    key.verify_token::<Custom>(body["access_token"].as_str().unwrap(), Some(options))
        .unwrap();
}

#[tokio::test]
async fn scope_and_audience_are_negotiated() {
    let server = Server::start().await;
    let (_org, agent) = org_and_agent(&server, &["read:docs", "write:docs"]).await;

    let response = server
        .token_request(
            &agent.client_id,
            &agent.client_secret,
            &[("scope", "read:docs")],
        )
        .await;
    let (status, body) = status_json(response).await;
    assert_eq!((status, body["scope"].as_str()), (200, Some("read:docs")));

    let response = server
        .token_request(
            &agent.client_id,
            &agent.client_secret,
            &[("scope", "read:docs admin")],
        )
        .await;
    let (status, body) = status_json(response).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_scope"))
    );

    let extra = [
        ("resource", "https://api.example.com/"),
        ("resource", "https://files.example.com/"),
    ];
    let response = server
        .token_request(&agent.client_id, &agent.client_secret, &extra)
        .await;
    let (status, body) = status_json(response).await;
    assert_eq!(status, 200, "{body}");
    let (_, claims) = jwt_parts(body["access_token"].as_str().unwrap());
    let mut audiences: Vec<&str> = claims["aud"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    audiences.sort_unstable();
    assert_eq!(
        audiences,
        ["https://api.example.com/", "https://files.example.com/"]
    );

    // A token minted for another resource is not accepted by this API.
    let response = server
        .get("/v1/agents", body["access_token"].as_str().unwrap())
        .await;
    assert_eq!(response.status(), 401);

    let response = server
        .token_request(
            &agent.client_id,
            &agent.client_secret,
            &[("resource", "not-a-uri")],
        )
        .await;
    let (status, body) = status_json(response).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_target"))
    );

    let response = server
        .token_request(
            &agent.client_id,
            &agent.client_secret,
            &[("audience", "billing-service")],
        )
        .await;
    let (status, body) = status_json(response).await;
    assert_eq!(status, 200);
    assert_eq!(
        jwt_parts(body["access_token"].as_str().unwrap()).1["aud"],
        "billing-service"
    );
}

#[tokio::test]
async fn client_secret_post_works_and_methods_cannot_be_mixed() {
    let server = Server::start().await;
    let (_org, agent) = org_and_agent(&server, &["read:docs"]).await;
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", agent.client_id.as_str()),
        ("client_secret", agent.client_secret.as_str()),
    ];
    let (status, body) = post_form(&server, "/oauth2/token", &form).await;
    assert_eq!(status, 200, "{body}");

    let me = (agent.client_id.as_str(), agent.client_secret.as_str());
    assert_oauth_error(
        post_form_as(&server, "/oauth2/token", Some(me), &form).await,
        400,
        "invalid_request",
    );
}

#[tokio::test]
async fn token_endpoint_errors_follow_rfc6749() {
    let server = Server::start().await;
    let (_org, agent) = org_and_agent(&server, &["read:docs"]).await;

    // Wrong secret and unknown client: 401 invalid_client with a challenge, and no detail.
    for (id, secret) in [
        (agent.client_id.as_str(), "aidp_sk_wrong"),
        ("aidp_unknown", "x"),
    ] {
        let response = server.token_request(id, secret, &[]).await;
        assert_eq!(
            response.headers()["www-authenticate"],
            "Basic realm=\"agentidp\""
        );
        assert_eq!(response.headers()["cache-control"], "no-store");
        let (status, body) = status_json(response).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("invalid_client"))
        );
        assert!(body["error_description"].is_string());
    }

    let (status, body) = post_form(&server, "/oauth2/token", &[("client_id", "x")]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );

    assert_oauth_error(
        post_form(&server, "/oauth2/token", &[("grant_type", "password")]).await,
        400,
        "unsupported_grant_type",
    );

    assert_oauth_error(
        post_form(
            &server,
            "/oauth2/token",
            &[("grant_type", "client_credentials")],
        )
        .await,
        401,
        "invalid_client",
    );

    let response = server
        .http
        .post(server.url("/oauth2/token"))
        .body("grant_type=client_credentials&grant_type=client_credentials")
        .header("content-type", "application/x-www-form-urlencoded")
        .basic_auth(&agent.client_id, Some(&agent.client_secret))
        .send()
        .await
        .unwrap();
    assert_oauth_error(status_json(response).await, 400, "invalid_request");

    let response = server
        .http
        .post(server.url("/oauth2/token"))
        .json(&json!({ "grant_type": "client_credentials" }))
        .send()
        .await
        .unwrap();
    assert_oauth_error(status_json(response).await, 400, "invalid_request");

    let huge = format!(
        "grant_type=client_credentials&pad={}",
        "a".repeat(70 * 1024)
    );
    let response = server
        .http
        .post(server.url("/oauth2/token"))
        .body(huge)
        .header("content-type", "application/x-www-form-urlencoded")
        .send()
        .await
        .unwrap();
    assert_oauth_error(status_json(response).await, 413, "invalid_request");

    // A malformed Basic header is a client authentication failure, not a crash.
    let response = server
        .http
        .post(server.url("/oauth2/token"))
        .header("authorization", "Basic !!!notbase64")
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

fn assertion_key() -> (ES256KeyPair, Value) {
    let key = ES256KeyPair::generate();
    let point = key.public_key().public_key().to_bytes_uncompressed();
    let jwk = json!({
        "kty": "EC", "crv": "P-256",
        "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
        "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
    });
    (key, jwk)
}

async fn register_jwk(server: &Server, org: &Org, agent_id: &str, jwk: &Value) -> String {
    let response = server
        .post(
            &format!("/v1/agents/{agent_id}/credentials"),
            &org.token,
            json!({ "kind": "private_key_jwt", "public_jwk": jwk }),
        )
        .await;
    let (status, body) = status_json(response).await;
    assert_eq!(status, 201, "{body}");
    assert!(body.get("client_secret").is_none_or(Value::is_null));
    body["client_id"].as_str().unwrap().to_owned()
}

fn assertion(
    key: &ES256KeyPair,
    client_id: &str,
    aud: &str,
    jti: &str,
    valid_for: Duration,
) -> String {
    let claims = Claims::create(valid_for)
        .with_issuer(client_id)
        .with_subject(client_id)
        .with_audience(aud)
        .with_jwt_id(jti);
    key.sign(claims).unwrap()
}

async fn token_with_assertion(server: &Server, client_assertion: &str) -> (u16, Value) {
    let form = [
        ("grant_type", "client_credentials"),
        ("client_assertion_type", ASSERTION_TYPE),
        ("client_assertion", client_assertion),
    ];
    let (status, body) = post_form(server, "/oauth2/token", &form).await;
    (status, body)
}

#[tokio::test]
async fn private_key_jwt_assertions_are_checked_per_rfc7523() {
    let server = Server::start().await;
    let (org, agent) = org_and_agent(&server, &["read:docs"]).await;
    let (key, jwk) = assertion_key();
    let client_id = register_jwk(&server, &org, &agent.id, &jwk).await;
    let token_endpoint = server.url("/oauth2/token");

    // Valid, with the token endpoint or the issuer as audience.
    let valid = assertion(
        &key,
        &client_id,
        &token_endpoint,
        "jti-1",
        Duration::from_secs(60),
    );
    let (status, body) = token_with_assertion(&server, &valid).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        jwt_parts(body["access_token"].as_str().unwrap()).1["sub"],
        agent.id
    );
    let (status, _) = token_with_assertion(
        &server,
        &assertion(
            &key,
            &client_id,
            &server.base,
            "jti-2",
            Duration::from_secs(60),
        ),
    )
    .await;
    assert_eq!(status, 200);

    // Replayed jti.
    let (status, body) = token_with_assertion(&server, &valid).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );

    // Wrong audience.
    let wrong_aud = assertion(
        &key,
        &client_id,
        "https://elsewhere.example/token",
        "jti-3",
        Duration::from_secs(60),
    );
    assert_eq!(token_with_assertion(&server, &wrong_aud).await.0, 401);

    // Expired (beyond the clock-skew tolerance).
    let mut claims = Claims::create(Duration::from_secs(60))
        .with_issuer(&client_id)
        .with_subject(&client_id)
        .with_audience(&token_endpoint)
        .with_jwt_id("jti-4");
    let past = Clock::now_since_epoch() - Duration::from_secs(600);
    claims.issued_at = Some(past);
    claims.invalid_before = Some(past);
    claims.expires_at = Some(past + Duration::from_secs(60));
    assert_eq!(
        token_with_assertion(&server, &key.sign(claims).unwrap())
            .await
            .0,
        401
    );

    // Too long-lived to be a client assertion.
    let long = assertion(
        &key,
        &client_id,
        &token_endpoint,
        "jti-5",
        Duration::from_hours(2),
    );
    assert_eq!(token_with_assertion(&server, &long).await.0, 401);

    // Signed by a key that is not registered.
    let (other_key, _) = assertion_key();
    let unknown = assertion(
        &other_key,
        &client_id,
        &token_endpoint,
        "jti-6",
        Duration::from_secs(60),
    );
    assert_eq!(token_with_assertion(&server, &unknown).await.0, 401);

    // Missing jti.
    let no_jti = Claims::create(Duration::from_secs(60))
        .with_issuer(&client_id)
        .with_subject(&client_id)
        .with_audience(&token_endpoint);
    assert_eq!(
        token_with_assertion(&server, &key.sign(no_jti).unwrap())
            .await
            .0,
        401
    );

    // Wrong assertion type.
    let form = [
        ("grant_type", "client_credentials"),
        ("client_assertion_type", "urn:example:other"),
        ("client_assertion", valid.as_str()),
    ];
    assert_oauth_error(
        post_form(&server, "/oauth2/token", &form).await,
        400,
        "invalid_request",
    );

    // A client secret cannot authenticate a private_key_jwt credential, and a garbage assertion fails cleanly.
    assert_eq!(
        server
            .token_request(&client_id, "aidp_sk_guess", &[])
            .await
            .status(),
        401
    );
    assert_eq!(token_with_assertion(&server, "not.a.jwt").await.0, 401);
}

#[tokio::test]
async fn eddsa_keys_can_authenticate_too() {
    let server = Server::start().await;
    let (org, agent) = org_and_agent(&server, &["read:docs"]).await;
    let key = Ed25519KeyPair::generate();
    let jwk = json!({ "kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode(key.public_key().to_bytes()) });
    let client_id = register_jwk(&server, &org, &agent.id, &jwk).await;
    let claims = Claims::create(Duration::from_secs(60))
        .with_issuer(&client_id)
        .with_subject(&client_id)
        .with_audience(server.url("/oauth2/token"))
        .with_jwt_id("ed-1");
    let (status, body) = token_with_assertion(&server, &key.sign(claims).unwrap()).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn access_tokens_are_verified_strictly() {
    let server = Server::start().await;
    let org = server.bootstrap("acme").await;
    assert_eq!(server.get("/v1/agents", &org.token).await.status(), 200);
    let (header, genuine) = jwt_parts(&org.token);
    let real_key = server_signing_key(&server).await;

    let expect_rejected = |label: &'static str, token: String| {
        let server = &server;
        async move {
            let response = server.get("/v1/agents", &token).await;
            let challenge = response
                .headers()
                .get("www-authenticate")
                .map(|v| v.to_str().unwrap().to_owned());
            let (status, body) = status_json(response).await;
            assert_eq!(status, 401, "{label}: {body}");
            assert_eq!(body["code"], "invalid_token", "{label}");
            assert!(challenge.unwrap().starts_with("Bearer"), "{label}");
        }
    };

    // Tampered payload: scope widened, signature kept.
    let parts: Vec<&str> = org.token.split('.').collect();
    let mut widened = genuine.clone();
    widened["org_id"] = json!("another-org");
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(widened.to_string()),
        parts[2]
    );
    expect_rejected("tampered payload", tampered).await;

    // alg: none.
    let none_header = json!({ "alg": "none", "typ": "at+jwt", "kid": header["kid"] });
    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(none_header.to_string()),
        parts[1]
    );
    expect_rejected("alg none", unsigned).await;

    // HS256 keyed with the public key (algorithm confusion).
    let jwks = server.jwks().await;
    let hmac = HS256Key::from_bytes(jwks["keys"][0].to_string().as_bytes())
        .with_key_id(header["kid"].as_str().unwrap());
    let confused = hmac
        .authenticate_with_options(claims_like(&server, &genuine), &at_jwt())
        .unwrap();
    expect_rejected("HS256 with public key", confused).await;

    // Unknown kid.
    let stranger = ES256KeyPair::generate().with_key_id("not-a-key-of-this-issuer");
    expect_rejected(
        "unknown kid",
        stranger
            .sign_with_options(claims_like(&server, &genuine), &at_jwt())
            .unwrap(),
    )
    .await;

    // Signed with the real key but expired, not yet valid, wrong issuer, wrong audience, wrong typ.
    let mut expired = claims_like(&server, &genuine);
    let past = Clock::now_since_epoch() - Duration::from_mins(30);
    expired.issued_at = Some(past);
    expired.invalid_before = Some(past);
    expired.expires_at = Some(past + Duration::from_mins(5));
    expect_rejected(
        "expired",
        real_key.sign_with_options(expired, &at_jwt()).unwrap(),
    )
    .await;

    let mut future = claims_like(&server, &genuine);
    future.invalid_before = Some(Clock::now_since_epoch() + Duration::from_mins(5));
    expect_rejected(
        "nbf in the future",
        real_key.sign_with_options(future, &at_jwt()).unwrap(),
    )
    .await;

    let wrong_iss = claims_like(&server, &genuine).with_issuer("https://evil.example");
    expect_rejected(
        "wrong iss",
        real_key.sign_with_options(wrong_iss, &at_jwt()).unwrap(),
    )
    .await;

    let wrong_aud = claims_like(&server, &genuine).with_audience("https://other.example");
    expect_rejected(
        "wrong aud",
        real_key.sign_with_options(wrong_aud, &at_jwt()).unwrap(),
    )
    .await;

    expect_rejected(
        "typ JWT",
        real_key.sign(claims_like(&server, &genuine)).unwrap(),
    )
    .await;

    // The control: the same forging path with correct claims is accepted, so the checks above are meaningful.
    let control = real_key
        .sign_with_options(claims_like(&server, &genuine), &at_jwt())
        .unwrap();
    assert_eq!(server.get("/v1/agents", &control).await.status(), 200);

    // Garbage and missing tokens.
    expect_rejected("garbage", "a.b.c".into()).await;
    let response = server
        .http
        .get(server.url("/v1/agents"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

async fn introspect(server: &Server, client: (&str, &str), token: &str) -> (u16, Value) {
    post_form_as(
        server,
        "/oauth2/introspect",
        Some(client),
        &[("token", token)],
    )
    .await
}

async fn revoke(server: &Server, client: (&str, &str), token: &str) -> (u16, Value) {
    let form = [("token", token), ("token_type_hint", "access_token")];
    post_form_as(server, "/oauth2/revoke", Some(client), &form).await
}

#[tokio::test]
async fn introspection_reports_only_live_tokens_of_the_callers_org() {
    let server = Server::start().await;
    let (org, agent) = org_and_agent(&server, &["read:docs"]).await;
    let me = (agent.client_id.as_str(), agent.client_secret.as_str());
    let token = server
        .token(&agent.client_id, &agent.client_secret, &[])
        .await;

    let (status, body) = introspect(&server, me, &token).await;
    assert_eq!(status, 200);
    assert_eq!(body["active"], true);
    assert_eq!(body["sub"], agent.id);
    assert_eq!(body["client_id"], agent.client_id);
    assert_eq!(body["scope"], "read:docs");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["iss"], server.base);
    assert!(body["exp"].as_i64().unwrap() > body["iat"].as_i64().unwrap());

    // The admin of the same org may introspect it too.
    let (_, body) = introspect(&server, (&org.client_id, &org.client_secret), &token).await;
    assert_eq!(body["active"], true);

    // Another organization's client learns nothing.
    let other = server.bootstrap("globex").await;
    let (_, body) = introspect(&server, (&other.client_id, &other.client_secret), &token).await;
    assert_eq!(body, json!({ "active": false }));

    for junk in ["", "garbage", "a.b.c"] {
        let (status, body) = introspect(&server, me, junk).await;
        if junk.is_empty() {
            assert_eq!(
                (status, body["error"].as_str()),
                (400, Some("invalid_request"))
            );
        } else {
            assert_eq!(
                (status, body.clone()),
                (200, json!({ "active": false })),
                "{junk}"
            );
        }
    }

    // Expired token, signed with the real key.
    let (_, genuine) = jwt_parts(&token);
    let mut expired = claims_like(&server, &genuine);
    let past = Clock::now_since_epoch() - Duration::from_mins(30);
    expired.issued_at = Some(past);
    expired.expires_at = Some(past + Duration::from_mins(5));
    let expired = server_signing_key(&server)
        .await
        .sign_with_options(expired, &at_jwt())
        .unwrap();
    assert_eq!(
        introspect(&server, me, &expired).await.1,
        json!({ "active": false })
    );

    // Introspection needs client authentication.
    let response = server
        .http
        .post(server.url("/oauth2/introspect"))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(response).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
}

#[tokio::test]
async fn revocation_follows_rfc7009() {
    let server = Server::start().await;
    let (org, reader) = org_and_agent(&server, &["agents:read"]).await;
    let other_agent = server
        .agent_with_secret(&org, "other", &["agents:read"])
        .await;
    let me = (reader.client_id.as_str(), reader.client_secret.as_str());

    let token = server
        .token(&reader.client_id, &reader.client_secret, &[])
        .await;
    assert_eq!(server.get("/v1/agents", &token).await.status(), 200);

    // Another agent of the same org may not revoke it.
    assert_oauth_error(
        revoke(
            &server,
            (&other_agent.client_id, &other_agent.client_secret),
            &token,
        )
        .await,
        400,
        "unauthorized_client",
    );
    // Another org's admin gets 200 and changes nothing.
    let globex = server.bootstrap("globex").await;
    assert_eq!(
        revoke(&server, (&globex.client_id, &globex.client_secret), &token)
            .await
            .0,
        200
    );
    assert_eq!(server.get("/v1/agents", &token).await.status(), 200);

    // The owner revokes it: every later use fails.
    assert_eq!(revoke(&server, me, &token).await.0, 200);
    assert_eq!(
        introspect(&server, me, &token).await.1,
        json!({ "active": false })
    );
    let (status, body) = status_json(server.get("/v1/agents", &token).await).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("invalid_token"))
    );
    // Revoking again, or revoking junk, is still 200.
    assert_eq!(revoke(&server, me, &token).await.0, 200);
    assert_eq!(revoke(&server, me, "junk").await.0, 200);

    // The org admin may revoke any of its agents' tokens; a new token keeps working.
    let second = server
        .token(&reader.client_id, &reader.client_secret, &[])
        .await;
    assert_eq!(
        revoke(&server, (&org.client_id, &org.client_secret), &second)
            .await
            .0,
        200
    );
    assert_eq!(server.get("/v1/agents", &second).await.status(), 401);
    let third = server
        .token(&reader.client_id, &reader.client_secret, &[])
        .await;
    assert_eq!(server.get("/v1/agents", &third).await.status(), 200);

    // Revocation needs client authentication.
    let response = server
        .http
        .post(server.url("/oauth2/revoke"))
        .form(&[("token", third.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn metadata_and_jwks_are_published() {
    let server = Server::start().await;
    let response = server
        .http
        .get(server.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let metadata: Value = response.json().await.unwrap();
    assert_eq!(metadata["issuer"], server.base);
    assert_eq!(metadata["token_endpoint"], server.url("/oauth2/token"));
    assert_eq!(metadata["jwks_uri"], server.url("/.well-known/jwks.json"));
    assert_eq!(
        metadata["introspection_endpoint"],
        server.url("/oauth2/introspect")
    );
    assert_eq!(
        metadata["revocation_endpoint"],
        server.url("/oauth2/revoke")
    );
    assert_eq!(
        metadata["grant_types_supported"],
        json!(["client_credentials"])
    );
    let methods = metadata["token_endpoint_auth_methods_supported"]
        .as_array()
        .unwrap();
    for m in [
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
    ] {
        assert!(methods.contains(&json!(m)), "{m}");
    }
    let oidc: Value = server
        .http
        .get(server.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(oidc, metadata);

    let response = server
        .http
        .get(server.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert!(response.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("max-age="));
    let jwks: Value = response.json().await.unwrap();
    let key = &jwks["keys"][0];
    assert_eq!(
        (
            key["kty"].as_str(),
            key["crv"].as_str(),
            key["alg"].as_str()
        ),
        (Some("EC"), Some("P-256"), Some("ES256"))
    );
    assert!(
        key.get("d").is_none(),
        "the JWKS must never carry private key material"
    );
}

#[tokio::test]
async fn key_rotation_keeps_old_tokens_verifiable() {
    // A fixed issuer, so tokens stay valid across the restart onto another port.
    let issuer = [("AGENTIDP_ISSUER", "http://agentidp.test")];
    let mut server = Server::start_with(&issuer).await;
    let (_org, agent) = org_and_agent(&server, &["agents:read"]).await;
    let old_token = server
        .token(&agent.client_id, &agent.client_secret, &[])
        .await;
    let old_kid = jwt_parts(&old_token).0["kid"].as_str().unwrap().to_owned();

    let data_dir = server.data_dir.clone();
    server.stop();
    let output = std::process::Command::new(agentidp_tests::server_binary())
        .args(["keys", "rotate", "--data-dir"])
        .arg(&data_dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let new_kid = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    assert_ne!(new_kid, old_kid);

    let server = Server::start_in(data_dir, &issuer).await;
    let jwks = server.jwks().await;
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert!(
        kids.contains(&old_kid.as_str()) && kids.contains(&new_kid.as_str()),
        "{kids:?}"
    );

    let new_token = server
        .token(&agent.client_id, &agent.client_secret, &[])
        .await;
    assert_eq!(jwt_parts(&new_token).0["kid"], new_kid);
    // Tokens signed by the previous key keep working until they expire.
    assert_eq!(server.get("/v1/agents", &old_token).await.status(), 200);
    assert_eq!(server.get("/v1/agents", &new_token).await.status(), 200);
}

/// The signing key rotates on schedule through the clock seam: the next key is in the JWKS a day
/// before it signs, and tokens of the key it took over from stay verifiable (and introspect
/// active) until they expire.
#[tokio::test]
async fn the_signing_key_rotates_on_schedule_and_old_tokens_stay_valid() {
    let server = Server::start_with(&[("AGENTIDP_SIGNING_KEY_ROTATION_DAYS", "30")]).await;
    let org = server.bootstrap("acme").await;
    let kids = || async {
        server.jwks().await["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    let kid_of = |token: &str| jwt_parts(token).0["kid"].as_str().unwrap().to_owned();
    let first = server.token(&org.client_id, &org.client_secret, &[]).await;
    assert_eq!(kids().await, [kid_of(&first)]);
    let day = std::time::Duration::from_secs(86_400);
    server.advance_clock(day * 29 + std::time::Duration::from_secs(60));
    let still_first = server.token(&org.client_id, &org.client_secret, &[]).await;
    assert_eq!(kid_of(&still_first), kid_of(&first));
    let published = kids().await;
    assert_eq!(
        published.len(),
        2,
        "the next key is published ahead: {published:?}"
    );
    let minute = std::time::Duration::from_secs(60);
    server.advance_clock(day - minute * 11);
    let last_old = server.token(&org.client_id, &org.client_secret, &[]).await;
    assert_eq!(kid_of(&last_old), kid_of(&first));
    server.advance_clock(minute * 20);
    let next = server.token(&org.client_id, &org.client_secret, &[]).await;
    assert_ne!(kid_of(&next), kid_of(&first));
    assert!(published.contains(&kid_of(&next)));
    // The previous key's last token is still good until it expires.
    assert!(kids().await.contains(&kid_of(&last_old)));
    let (status, body) = post_form_as(
        &server,
        "/oauth2/introspect",
        Some((&org.client_id, &org.client_secret)),
        &[("token", last_old.as_str())],
    )
    .await;
    assert_eq!(
        (status, body["active"].as_bool()),
        (200, Some(true)),
        "{body}"
    );
}
