//! The audit trail as a verifiable log: signed checkpoints, inclusion and consistency proofs
//! checked by independent code (`tests/python/verify_audit_log.py`), tenant isolation, and the
//! tree kept over events written before it existed.

use agentidp_tests::audit_log::verify_independently;
use agentidp_tests::{assert_problem, open_db, status_json, Org, Server};

async fn issue_tokens(server: &Server, org: &Org, name: &str, n: usize) {
    let agent = server.agent_with_secret(org, name, &["agents:read"]).await;
    let mut requests = Vec::new();
    for _ in 0..n {
        let (server_http, url) = (server.http.clone(), server.url("/oauth2/token"));
        let (id, secret) = (agent.client_id.clone(), agent.client_secret.clone());
        // Fired together, so the native writer folds them into shared group commits.
        requests.push(tokio::spawn(async move {
            let response = server_http
                .post(url)
                .basic_auth(id, Some(secret))
                .form(&[("grant_type", "client_credentials")])
                .send()
                .await
                .unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }));
    }
    for request in requests {
        let (status, body) = request.await.unwrap();
        assert_eq!(status, 200, "{body}");
    }
}

pub async fn latest_checkpoint(server: &Server, token: &str) -> String {
    let response = server.get("/v1/audit/checkpoints/latest", token).await;
    assert_eq!(response.status(), 200);
    response.text().await.unwrap()
}

fn size_of(note: &str) -> u64 {
    note.lines().nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn checkpoints_and_proofs_verify_with_independent_code() {
    let server = Server::start().await;
    let org = server.bootstrap("verifiable").await;
    let other = server.bootstrap("elsewhere").await;
    issue_tokens(&server, &org, "issuer-a", 20).await;
    issue_tokens(&server, &other, "issuer-b", 7).await;
    let saved = latest_checkpoint(&server, &org.token).await;
    issue_tokens(&server, &org, "issuer-c", 20).await;

    let summary = verify_independently(&server, &org.token, &saved);
    assert_eq!(summary["saved_size"].as_u64(), Some(size_of(&saved)));
    assert!(
        summary["size"].as_u64().unwrap() >= size_of(&saved) + 20,
        "{summary}"
    );
    assert!(summary["origin"]
        .as_str()
        .unwrap()
        .ends_with(&format!("/audit/{}", org.id)));

    // The other organization's log is its own: its own origin, its own sizes.
    let theirs = latest_checkpoint(&server, &other.token).await;
    assert!(theirs.starts_with(
        &summary["origin"]
            .as_str()
            .unwrap()
            .replace(&org.id, &other.id)
    ));
    let summary = verify_independently(&server, &other.token, &theirs);
    assert_eq!(summary["size"], summary["saved_size"]);
}

#[tokio::test]
async fn proofs_refuse_sizes_beyond_the_tree_and_events_outside_it() {
    let server = Server::start().await;
    let org = server.bootstrap("bounds").await;
    let size = size_of(&latest_checkpoint(&server, &org.token).await);
    let beyond = size + 1;
    let (status, body) = status_json(
        server
            .get(
                &format!("/v1/audit/events/1/proof?size={beyond}"),
                &org.token,
            )
            .await,
    )
    .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (400, Some("size")),
        "{body}"
    );
    let response = server
        .get(&format!("/v1/audit/events/{beyond}/proof"), &org.token)
        .await;
    assert_problem(status_json(response).await, 404, "not_found");
    let response = server.get("/v1/audit/events/zero/proof", &org.token).await;
    assert_problem(status_json(response).await, 404, "not_found");
    let response = server
        .get(
            &format!("/v1/audit/consistency?from={beyond}&to={size}"),
            &org.token,
        )
        .await;
    assert_eq!(response.status(), 400);
    let response = server.get("/v1/audit/consistency?to=1", &org.token).await;
    assert_eq!(response.status(), 400);
    // Without audit:read, nothing.
    let agent = server
        .agent_with_secret(&org, "reader", &["agents:read"])
        .await;
    let token = server
        .token(&agent.client_id, &agent.client_secret, &[])
        .await;
    let response = server.get("/v1/audit/checkpoints/latest", &token).await;
    assert_eq!(response.status(), 403);
}

#[tokio::test]
async fn a_tree_is_rebuilt_over_events_written_before_it_existed() {
    let mut server = Server::start().await;
    let org = server.bootstrap("legacy").await;
    issue_tokens(&server, &org, "old", 40).await;
    server.stop();
    // As a database from before the tree: no nodes, no checkpoints.
    let conn = open_db(&server.db_path()).await;
    conn.execute("DELETE FROM audit_tree_nodes", ())
        .await
        .unwrap();
    drop(conn);
    let restarted = Server::start_in(server.data_dir.clone(), &[]).await;
    // Another port, so another issuer: a fresh admin token.
    let org = Org {
        token: restarted
            .token(&org.client_id, &org.client_secret, &[])
            .await,
        ..org
    };
    let saved = latest_checkpoint(&restarted, &org.token).await;
    issue_tokens(&restarted, &org, "new", 5).await;
    let summary = verify_independently(&restarted, &org.token, &saved);
    assert_eq!(summary["saved_size"].as_u64(), Some(size_of(&saved)));
}

#[tokio::test]
async fn an_export_carries_the_checkpoint_covering_it_and_resumes_after_a_sequence() {
    use base64::Engine;
    let server = Server::start().await;
    let org = server.bootstrap("exported").await;
    issue_tokens(&server, &org, "exporter", 12).await;
    let response = server.get("/v1/audit/export", &org.token).await;
    assert_eq!(response.status(), 200);
    let note = response.headers()["audit-checkpoint"]
        .to_str()
        .unwrap()
        .to_owned();
    let note = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(note)
            .unwrap(),
    )
    .unwrap();
    let lines: Vec<serde_json::Value> = response
        .text()
        .await
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // The note is the organization's signed checkpoint, covering every exported event.
    let key = server
        .http
        .get(server.url("/v1/audit/checkpoints/key"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let checkpoint = agentidp_shared::domain::checkpoint::verify_note(&note, &key).unwrap();
    assert!(checkpoint.origin.ends_with(&org.id));
    assert_eq!(checkpoint.size, lines.len() as u64);
    // Resuming after a sequence number gives exactly the rest.
    let resumed = server
        .get("/v1/audit/export?after_seq=5", &org.token)
        .await
        .text()
        .await
        .unwrap();
    let seqs: Vec<i64> = resumed
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"]
                .as_i64()
                .unwrap()
        })
        .collect();
    assert_eq!(seqs, (6..=lines.len() as i64).collect::<Vec<_>>());
}
