//! Stored secrets are sealed at rest: no private signing key or webhook signing secret is in the
//! database file, a database opens only with its key-encryption key, and what an older release
//! stored in clear is sealed on the next start.

use std::path::Path;
use std::process::Command;

use agentidp_shared::domain::sealed::{self, Kek, Keks};
use agentidp_tests::{jwt_parts, open_db, server_binary, status_json, Server};
use serde_json::json;

/// The key the server made in its data directory on the first start.
fn key_file_keks(data_dir: &Path) -> Keks {
    let text = std::fs::read_to_string(data_dir.join("key-encryption-key")).unwrap();
    Keks::new(Kek::parse(&text).unwrap(), Vec::new())
}

/// The database file and its write-ahead log, as anyone holding a copy reads them.
fn database_bytes(data_dir: &Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    for name in ["agentidp.db", "agentidp.db-wal"] {
        if let Ok(mut file) = std::fs::read(data_dir.join(name)) {
            bytes.append(&mut file);
        }
    }
    bytes
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A webhook subscription (its first secret) and its rotation (the second), as the API shows them.
async fn webhook_secrets(server: &Server, token: &str) -> (String, Vec<String>) {
    let body = json!({ "url": "https://hooks.example.com/in", "events": ["agent.created"] });
    let (status, created) = status_json(server.post("/v1/webhooks", token, body).await).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let rotate = format!("/v1/webhooks/{id}/rotate");
    let (status, rotated) = status_json(
        server
            .post(&rotate, token, json!({ "grace_period_seconds": 3600 }))
            .await,
    )
    .await;
    assert_eq!(status, 200, "{rotated}");
    let secrets = [&created, &rotated]
        .iter()
        .map(|b| b["secret"].as_str().unwrap().to_owned())
        .collect();
    (id, secrets)
}

async fn stored_values(data_dir: &Path) -> Vec<(String, Vec<u8>)> {
    let conn = open_db(&data_dir.join("agentidp.db")).await;
    let mut values = Vec::new();
    let mut rows = conn
        .query("SELECT kid, private_key FROM signing_keys", ())
        .await
        .unwrap();
    while let Some(row) = rows.next().await.unwrap() {
        values.push((
            sealed::signing_key_row(&row.get::<String>(0).unwrap()),
            row.get::<Vec<u8>>(1).unwrap(),
        ));
    }
    let mut rows = conn
        .query(
            "SELECT id, secret, previous_secret FROM webhook_subscriptions",
            (),
        )
        .await
        .unwrap();
    while let Some(row) = rows.next().await.unwrap() {
        let row_name = sealed::webhook_row(&row.get::<String>(0).unwrap());
        values.push((row_name.clone(), row.get::<String>(1).unwrap().into_bytes()));
        if let Ok(previous) = row.get::<String>(2) {
            values.push((row_name, previous.into_bytes()));
        }
    }
    values
}

#[tokio::test]
async fn the_database_file_holds_no_signing_key_or_webhook_secret() {
    let mut server = Server::start().await;
    let org = server.bootstrap("acme").await;
    let (_, secrets) = webhook_secrets(&server, &org.token).await;
    let data_dir = server.db_path().parent().unwrap().to_path_buf();
    server.stop();
    let keks = key_file_keks(&data_dir);
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(data_dir.join("key-encryption-key"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    let bytes = database_bytes(&data_dir);
    for secret in &secrets {
        assert!(
            !contains(&bytes, secret.as_bytes()),
            "a webhook secret is in clear"
        );
    }
    let stored = stored_values(&data_dir).await;
    assert_eq!(
        stored.len(),
        3,
        "one signing key, a secret and the previous one"
    );
    for (row, value) in &stored {
        assert!(sealed::is_sealed(value), "{row} is not sealed");
        let clear = keks.open(row, value).unwrap();
        assert!(
            !contains(&bytes, &clear),
            "{row}'s secret is in the file in clear"
        );
    }
    // The webhook secrets the API showed are what was sealed.
    let opened: Vec<String> = stored[1..]
        .iter()
        .map(|(row, value)| String::from_utf8(keks.open(row, value).unwrap()).unwrap())
        .collect();
    assert_eq!(opened, [secrets[1].clone(), secrets[0].clone()]);
}

fn start_fails(data_dir: &Path, env: &[(&str, &str)]) -> String {
    let mut command = Command::new(server_binary());
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .env_remove("AGENTIDP_KEY_ENCRYPTION_KEY");
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command.output().unwrap();
    assert!(
        !output.status.success(),
        "the server should refuse to start"
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test]
async fn a_sealed_database_opens_only_with_its_key() {
    let mut server = Server::start().await;
    let org = server.bootstrap("acme").await;
    let data_dir = server.db_path().parent().unwrap().to_path_buf();
    server.stop();
    let key_file = data_dir.join("key-encryption-key");
    let key = std::fs::read_to_string(&key_file).unwrap();
    std::fs::remove_file(&key_file).unwrap();
    // Without the key, and with another key: refused, naming the setting.
    let stderr = start_fails(&data_dir, &[]);
    assert!(stderr.contains("AGENTIDP_KEY_ENCRYPTION_KEY"), "{stderr}");
    assert!(!key_file.exists(), "no new key may replace the lost one");
    let other = Kek::encode(&[7; 32]);
    let stderr = start_fails(&data_dir, &[("AGENTIDP_KEY_ENCRYPTION_KEY", &other)]);
    assert!(stderr.contains("AGENTIDP_KEY_ENCRYPTION_KEY"), "{stderr}");
    let stderr = start_fails(&data_dir, &[("AGENTIDP_KEY_ENCRYPTION_KEY", "short")]);
    assert!(stderr.contains("AGENTIDP_KEY_ENCRYPTION_KEY"), "{stderr}");
    // With the key given through the environment instead of the file, it serves as before.
    let server = Server::start_in(
        data_dir.clone(),
        &[("AGENTIDP_KEY_ENCRYPTION_KEY", key.trim())],
    )
    .await;
    // It signs with the key it had (opened with the key given), creating none.
    let token = server.token(&org.client_id, &org.client_secret, &[]).await;
    assert_eq!(jwt_parts(&token).0["kid"], jwt_parts(&org.token).0["kid"]);
}

#[tokio::test]
async fn clear_secrets_an_older_release_left_are_sealed_on_start_and_copies_do_not_open() {
    let mut server = Server::start().await;
    let org = server.bootstrap("acme").await;
    let (subscription, _) = webhook_secrets(&server, &org.token).await;
    let data_dir = server.db_path().parent().unwrap().to_path_buf();
    server.stop();
    let keks = key_file_keks(&data_dir);
    // As an older release stored them: in clear.
    let conn = open_db(&data_dir.join("agentidp.db")).await;
    for (row, value) in stored_values(&data_dir).await {
        let clear = keks.open(&row, &value).unwrap();
        if let Some(kid) = row.strip_prefix("signing_keys/") {
            conn.execute(
                "UPDATE signing_keys SET private_key = ?1 WHERE kid = ?2",
                libsql::params![clear, kid],
            )
            .await
            .unwrap();
        }
    }
    let (_, webhook_secret) = stored_values(&data_dir).await.remove(1);
    let clear = String::from_utf8(
        keks.open(&sealed::webhook_row(&subscription), &webhook_secret)
            .unwrap(),
    )
    .unwrap();
    conn.execute(
        "UPDATE webhook_subscriptions SET secret = ?1 WHERE id = ?2",
        libsql::params![clear, subscription.as_str()],
    )
    .await
    .unwrap();
    drop(conn);
    let mut server = Server::start_in(data_dir.clone(), &[]).await;
    server.token(&org.client_id, &org.client_secret, &[]).await;
    server.stop();
    let stored = stored_values(&data_dir).await;
    for (row, value) in &stored {
        assert!(sealed::is_sealed(value), "{row} was not sealed on start");
        keks.open(row, value).unwrap();
    }
    // A sealed key copied into another row (here, a newer key's) does not open: the server
    // signs nothing with it.
    let (_, private_key) = stored[0].clone();
    let conn = open_db(&data_dir.join("agentidp.db")).await;
    conn.execute(
        "INSERT INTO signing_keys (kid, alg, private_key, public_jwk, created_at) \
         SELECT 'copied', alg, ?1, public_jwk, created_at + 1 FROM signing_keys LIMIT 1",
        libsql::params![private_key],
    )
    .await
    .unwrap();
    drop(conn);
    let server = Server::start_in(data_dir, &[]).await;
    let response = server
        .token_request(&org.client_id, &org.client_secret, &[])
        .await;
    assert!(response.status().is_server_error(), "{}", response.status());
    let body = response.text().await.unwrap();
    assert!(!body.contains("access_token"), "{body}");
}
