//! Public agent identity end to end: the signed A2A card and the did:web document of a published
//! agent, what they say, and that they are gone at once when the agent is withdrawn or a key is
//! revoked. The signature itself is checked by independent code (tests/python/test_agent_card.py).

use agentidp_tests::{status_json, Org, Server};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jwt_simple::prelude::*;
use serde_json::{json, Value};

async fn browse(server: &Server, path: &str) -> (u16, Value) {
    status_json(server.http.get(server.url(path)).send().await.unwrap()).await
}

async fn publish(server: &Server, org: &Org) -> String {
    let (status, agent) = status_json(
        server
            .post(
                "/v1/agents",
                &org.token,
                json!({
                    "name": "Polyglot",
                    "agent_type": "nlp",
                    "version": "2.1.0",
                    "visibility": "public",
                    "capabilities": ["docs:read", "docs:translate"],
                    "description": "Translates documents.",
                    "a2a_url": "https://polyglot.example/a2a",
                    "homepage_url": "https://polyglot.example/",
                    "skills": [{ "id": "tr", "name": "Translate", "description": "Any pair", "tags": ["nlp"], "examples": ["to French"] }],
                }),
            )
            .await,
    )
    .await;
    assert_eq!(status, 201, "{agent}");
    agent["id"].as_str().unwrap().to_owned()
}

fn public_jwk(kid: &str) -> Value {
    let key = ES256KeyPair::generate();
    let point = key.public_key().public_key().to_bytes_uncompressed();
    json!({
        "kty": "EC", "crv": "P-256", "alg": "ES256", "kid": kid,
        "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
        "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
    })
}

#[tokio::test]
async fn a_published_agent_has_a_card_signed_by_a_key_of_the_jwks() {
    let server = Server::start().await;
    let org = server.bootstrap("cards").await;
    let id = publish(&server, &org).await;
    let (status, card) = browse(
        &server,
        &format!("/v1/marketplace/agents/{id}/agent-card.json"),
    )
    .await;
    assert_eq!(status, 200, "{card}");
    assert_eq!(card["name"], "Polyglot");
    assert_eq!(card["description"], "Translates documents.");
    assert_eq!(card["version"], "2.1.0");
    assert_eq!(card["url"], "https://polyglot.example/a2a");
    assert_eq!(card["provider"]["organization"], "cards");
    assert_eq!(card["skills"][0]["examples"], json!(["to French"]));
    let scheme = &card["securitySchemes"]["agentidp"];
    assert_eq!(scheme["type"], "oauth2");
    assert_eq!(
        scheme["flows"]["clientCredentials"]["tokenUrl"],
        server.url("/oauth2/token")
    );
    assert_eq!(
        scheme["oauth2MetadataUrl"],
        server.url("/.well-known/oauth-authorization-server")
    );
    let scopes = scheme["flows"]["clientCredentials"]["scopes"]
        .as_object()
        .unwrap();
    assert_eq!(
        scopes.keys().collect::<Vec<_>>(),
        ["docs:read", "docs:translate"]
    );
    let (_, listing) = browse(&server, &format!("/v1/marketplace/agents/{id}")).await;
    assert_eq!(
        card["capabilities"]["extensions"][0]["params"]["did"],
        listing["did"]
    );

    let signatures = card["signatures"].as_array().unwrap();
    assert_eq!(signatures.len(), 1);
    let protected: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(signatures[0]["protected"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(protected["alg"], "ES256");
    assert_eq!(protected["typ"], "JOSE");
    assert_eq!(protected["jku"], server.url("/.well-known/jwks.json"));
    let (_, jwks) = browse(&server, "/.well-known/jwks.json").await;
    assert!(
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["kid"] == protected["kid"]),
        "{protected} not in {jwks}"
    );
    // Signed once per version: the same card again is byte-identical (ES256 signatures are
    // randomized, so a fresh signature would differ).
    let (_, again) = browse(
        &server,
        &format!("/v1/marketplace/agents/{id}/agent-card.json"),
    )
    .await;
    assert_eq!(again["signatures"], card["signatures"]);
    server
        .patch(
            &format!("/v1/agents/{id}"),
            &org.token,
            json!({ "description": "Now more." }),
        )
        .await;
    let (_, changed) = browse(
        &server,
        &format!("/v1/marketplace/agents/{id}/agent-card.json"),
    )
    .await;
    assert_eq!(changed["description"], "Now more.");
    assert_ne!(changed["signatures"], card["signatures"]);
}

#[tokio::test]
async fn the_did_document_lists_the_agents_active_keys_only() {
    let server = Server::start().await;
    let org = server.bootstrap("dids").await;
    let id = publish(&server, &org).await;
    let credentials = format!("/v1/agents/{id}/credentials");
    let mut created = Vec::new();
    for kid in ["k1", "k2"] {
        let (status, credential) = status_json(
            server
                .post(
                    &credentials,
                    &org.token,
                    json!({ "kind": "private_key_jwt", "public_jwk": public_jwk(kid) }),
                )
                .await,
        )
        .await;
        assert_eq!(status, 201, "{credential}");
        created.push(credential["id"].as_str().unwrap().to_owned());
    }
    // A client secret is no public key.
    server.post(&credentials, &org.token, json!({})).await;

    let response = server
        .http
        .get(server.url(&format!("/agents/{id}/did.json")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-type"], "application/did+json");
    assert_eq!(response.headers()["cache-control"], "no-cache");
    let (status, document) = status_json(response).await;
    assert_eq!(status, 200, "{document}");
    let did = document["id"].as_str().unwrap();
    let port = server.base.rsplit(':').next().unwrap();
    assert_eq!(did, format!("did:web:127.0.0.1%3A{port}:agents:{id}"));
    let methods = document["verificationMethod"].as_array().unwrap();
    assert_eq!(methods.len(), 2);
    assert_eq!(methods[0]["type"], "JsonWebKey");
    assert_eq!(methods[0]["controller"], did);
    assert_eq!(methods[0]["publicKeyJwk"]["kid"], "k1");
    assert_eq!(
        document["authentication"],
        json!([methods[0]["id"], methods[1]["id"]])
    );
    assert_eq!(document["assertionMethod"], document["authentication"]);
    let services: Vec<&str> = document["service"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["serviceEndpoint"].as_str().unwrap())
        .collect();
    assert_eq!(
        services,
        [
            server.url(&format!("/v1/marketplace/agents/{id}/agent-card.json")),
            server.url("/.well-known/oauth-authorization-server"),
        ]
    );

    let revoked = server
        .delete(&format!("{credentials}/{}", created[0]), &org.token)
        .await;
    assert!(revoked.status().is_success());
    let (_, document) = browse(&server, &format!("/agents/{id}/did.json")).await;
    let kids: Vec<&Value> = document["verificationMethod"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["publicKeyJwk"]["kid"])
        .collect();
    assert_eq!(kids, [&json!("k2")]);
}

#[tokio::test]
async fn private_withdrawn_and_unknown_agents_have_no_card_and_no_did() {
    let server = Server::start().await;
    let org = server.bootstrap("hidden").await;
    let id = publish(&server, &org).await;
    let (_, private) = status_json(
        server
            .post(
                "/v1/agents",
                &org.token,
                json!({ "name": "Private", "agent_type": "nlp" }),
            )
            .await,
    )
    .await;
    let private = private["id"].as_str().unwrap().to_owned();
    let paths = |agent: &str| {
        [
            format!("/v1/marketplace/agents/{agent}/agent-card.json"),
            format!("/agents/{agent}/did.json"),
        ]
    };
    for path in paths(&id) {
        assert_eq!(browse(&server, &path).await.0, 200, "{path}");
    }
    for missing in [
        private.as_str(),
        "00000000-0000-4000-8000-000000000000",
        "nope",
    ] {
        for path in paths(missing) {
            let (status, body) = browse(&server, &path).await;
            assert_eq!(
                (status, body["code"].as_str()),
                (404, Some("not_found")),
                "{path}"
            );
        }
    }
    for change in [
        json!({ "visibility": "private" }),
        json!({ "status": "suspended" }),
    ] {
        server
            .patch(&format!("/v1/agents/{id}"), &org.token, change.clone())
            .await;
        for path in paths(&id) {
            assert_eq!(browse(&server, &path).await.0, 404, "{change} {path}");
        }
        server
            .patch(
                &format!("/v1/agents/{id}"),
                &org.token,
                json!({ "visibility": "public", "status": "active" }),
            )
            .await;
    }
    server.delete(&format!("/v1/agents/{id}"), &org.token).await;
    for path in paths(&id) {
        assert_eq!(browse(&server, &path).await.0, 404, "{path}");
    }
}
