//! The `agentidp` command line against a live server, as a user drives it: the walkthrough from
//! sign-up to an exported audit trail with its JSON output parsed, the documented exit code of
//! each error class, private profiles and secrets printed only where asked, and completion scripts
//! that bash, zsh and fish accept.

use std::path::Path;
use std::process::Command;

use agentidp_client::{Client, ClientCredentials, TokenRequest};
use agentidp_tests::cli::{Cli, Run};
use agentidp_tests::{open_db, Server};
use serde_json::Value;

/// The exit codes `agentidp --help` documents.
const FAILURE: i32 = 1;
const USAGE: i32 = 2;
const AUTHENTICATION: i32 = 3;
const NOT_FOUND: i32 = 4;
const CONFLICT: i32 = 5;
const RATE_LIMITED: i32 = 6;
const SERVER: i32 = 7;

fn text(value: &Value, key: &str) -> String {
    value[key]
        .as_str()
        .unwrap_or_else(|| panic!("no `{key}` in {value}"))
        .to_owned()
}

/// Asserts an error's exit code and, for answers of the server, its problem `code` on stderr.
#[track_caller]
fn assert_fails(run: &Run, exit: i32, code: Option<&str>) {
    assert_eq!(run.code, exit, "{run:#?}");
    assert!(
        run.stdout.is_empty(),
        "an error printed on stdout: {run:#?}"
    );
    if let Some(code) = code {
        let error = run.error();
        let actual = error["code"].as_str().or(error["error"].as_str());
        assert_eq!(actual, Some(code), "{run:#?}");
    }
}

/// Creates an organization with `orgs create --login`, saving the admin as the default profile.
fn sign_up(cli: &Cli, name: &str) -> ClientCredentials {
    let created = cli.run(&["orgs", "create", name, "--login"]).ok().json();
    let admin = &created["admin_credential"];
    ClientCredentials {
        client_id: text(admin, "client_id"),
        client_secret: text(admin, "client_secret"),
    }
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn the_walkthrough_from_login_to_an_exported_trail() {
    let server = Server::start().await;
    let cli = Cli::new(&server.base);

    // Sign up, then log in as the admin, the secret on stdin as a script would pass it.
    let created = cli.run(&["orgs", "create", "acme"]).ok();
    let admin = &created.json()["admin_credential"];
    let (admin_id, admin_secret) = (text(admin, "client_id"), text(admin, "client_secret"));
    assert!(
        !created.stderr.contains(&admin_secret),
        "the secret went to stderr: {created:#?}"
    );
    let login = cli.run_with(
        &["login", "--client-id", &admin_id],
        &[],
        Some(&format!("{admin_secret}\n")),
    );
    let login = login.ok();
    assert_eq!(login.json()["client_id"], admin_id.as_str());
    for output in [&login.stdout, &login.stderr] {
        assert!(
            !output.contains(&admin_secret),
            "login printed the secret back: {login:#?}"
        );
    }
    let profiles = cli.config_dir.join("profiles.toml");
    #[cfg(unix)]
    {
        assert_eq!(
            mode(&profiles),
            0o600,
            "the profile file is readable by others"
        );
        assert_eq!(mode(&cli.config_dir), 0o700);
    }
    let saved: Value = toml::from_str(&std::fs::read_to_string(&profiles).unwrap()).unwrap();
    assert_eq!(
        saved["profiles"]["default"]["client_secret"],
        admin_secret.as_str()
    );

    // Register an agent; the typed client, reading the API directly, sees the same agent.
    let agent = cli
        .run(&[
            "agents",
            "register",
            "--name",
            "doc-bot",
            "--type",
            "assistant",
            "--capability",
            "read:docs,write:docs",
            "--env",
            "production",
        ])
        .ok()
        .json();
    let agent_id = text(&agent, "id");
    assert_eq!(
        agent["capabilities"],
        serde_json::json!(["read:docs", "write:docs"])
    );
    let client = Client::new(&server.base).unwrap();
    let admin_token = client
        .token(
            &ClientCredentials {
                client_id: admin_id.clone(),
                client_secret: admin_secret.clone(),
            },
            &TokenRequest::default(),
        )
        .await
        .unwrap();
    let seen = client
        .authorized(&admin_token.access_token)
        .get_agent(&agent_id)
        .await
        .unwrap();
    assert_eq!(
        (seen.name.as_str(), seen.deployment_env.as_str()),
        ("doc-bot", "production")
    );
    let listed = cli.run(&["agents", "list"]).ok().json();
    assert_eq!(listed["data"][0]["id"], agent_id.as_str());
    let shown = cli.run(&["agents", "show", &agent_id]).ok().json();
    assert_eq!(shown["status"], "active");
    let updated = cli
        .run(&["agents", "update", &agent_id, "--agent-version", "2.0.0"])
        .ok()
        .json();
    assert_eq!(updated["version"], "2.0.0");

    // A credential: its secret printed once, on stdout only.
    let created = cli.run(&["credentials", "create", &agent_id]).ok();
    let credential = created.json();
    let (client_id, secret) = (
        text(&credential, "client_id"),
        text(&credential, "client_secret"),
    );
    assert!(!created.stderr.contains(&secret), "{created:#?}");
    let listed = cli.run(&["credentials", "list", &agent_id]).ok();
    assert!(
        !listed.stdout.contains(&secret),
        "a listing showed the secret"
    );
    assert_eq!(listed.json()["data"][0]["client_id"], client_id.as_str());

    // The agent's token: bare for $(…), JSON when asked.
    let as_agent = [
        ("AGENTIDP_CLIENT_ID", client_id.as_str()),
        ("AGENTIDP_CLIENT_SECRET", secret.as_str()),
    ];
    let bare = cli
        .run_with(&["token", "--scope", "read:docs"], &as_agent, None)
        .ok();
    let token = bare.stdout.trim_end_matches('\n').to_owned();
    assert_eq!(token.split('.').count(), 3, "not a bare JWT: {bare:#?}");
    assert!(!token.contains(char::is_whitespace));
    let response = cli
        .run_with(
            &["token", "--scope", "read:docs", "-o", "json"],
            &as_agent,
            None,
        )
        .ok()
        .json();
    assert_eq!(response["token_type"], "Bearer");
    assert_eq!(response["scope"], "read:docs");

    // Introspect, revoke, introspect again (as the admin, the profile's client).
    let active = cli.run(&["introspect", &token]).ok().json();
    assert_eq!(active["active"], true, "{active}");
    assert_eq!(active["sub"], agent_id.as_str());
    let revoked = cli
        .run_with(&["revoke", "-"], &[], Some(&token))
        .ok()
        .json();
    assert_eq!(revoked["revoked"], true);
    let inactive = cli.run(&["introspect", &token]).ok().json();
    assert_eq!(inactive, serde_json::json!({ "active": false }));

    // Rotate and revoke the credential.
    let credential_id = text(&credential, "id");
    let rotated = cli
        .run(&[
            "credentials",
            "rotate",
            &agent_id,
            &credential_id,
            "--grace-period",
            "0",
        ])
        .ok()
        .json();
    assert_ne!(text(&rotated, "client_secret"), secret);
    let revoked = cli
        .run(&["credentials", "revoke", &agent_id, &credential_id])
        .ok()
        .json();
    assert_eq!(revoked["status"], "revoked");

    // Suspend, resume, decommission (confirmed with --yes: stdin is not a terminal).
    let suspended = cli.run(&["agents", "suspend", &agent_id]).ok().json();
    assert_eq!(suspended["status"], "suspended");
    let resumed = cli.run(&["agents", "resume", &agent_id]).ok().json();
    assert_eq!(resumed["status"], "active");
    let unconfirmed = cli.run(&["agents", "decommission", &agent_id]);
    assert_fails(&unconfirmed, USAGE, None);
    let gone = cli
        .run(&["agents", "decommission", &agent_id, "--yes"])
        .ok()
        .json();
    assert_eq!(gone["status"], "decommissioned");

    // The trail: intact, its newest events, and an export that is the whole chain.
    let verified = cli.run(&["audit", "verify"]).ok().json();
    assert_eq!(verified["valid"], true, "{verified}");
    assert!(
        verified["events_checked"].as_i64().unwrap() > 10,
        "{verified}"
    );
    let tail = cli.run(&["audit", "tail", "-n", "3"]).ok().json_lines();
    assert_eq!(tail.len(), 3);
    let seqs: Vec<i64> = tail.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert!(
        seqs.windows(2).all(|w| w[1] > w[0]),
        "not oldest first: {seqs:?}"
    );
    let actions = cli
        .run(&[
            "audit",
            "tail",
            "-n",
            "200",
            "--action",
            "agent.decommissioned",
        ])
        .ok()
        .json_lines();
    assert_eq!(actions.len(), 1);
    assert_eq!(actions[0]["agent_id"], agent_id.as_str());

    let file = cli.config_dir.join("audit.ndjson");
    let exported = cli
        .run(&["audit", "export", "--file", file.to_str().unwrap()])
        .ok();
    assert!(
        exported.stderr.is_empty(),
        "progress shown while piped: {exported:#?}"
    );
    let summary = exported.json();
    let lines: Vec<Value> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(summary["events"].as_u64(), Some(lines.len() as u64));
    let seqs: Vec<i64> = lines.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as i64).collect::<Vec<_>>(),
        "not the whole chain"
    );
    let actions: Vec<&str> = lines
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for expected in [
        "org.created",
        "agent.created",
        "credential.created",
        "token.issued",
        "token.revoked",
        "credential.rotated",
        "credential.revoked",
        "agent.decommissioned",
    ] {
        assert!(actions.contains(&expected), "{expected} not in {actions:?}");
    }
    let mut partial = file.clone().into_os_string();
    partial.push(".partial");
    assert!(!Path::new(&partial).exists());

    // Logging out forgets the profile; then nothing authenticates.
    cli.run(&["logout"]).ok();
    assert_fails(&cli.run(&["agents", "list"]), AUTHENTICATION, None);
}

#[tokio::test]
async fn table_output_is_for_people_and_json_errors_carry_the_problem() {
    let server = Server::start().await;
    let cli = Cli::new(&server.base);
    sign_up(&cli, "tables");
    let registered = cli.run(&[
        "agents",
        "register",
        "--name",
        "t",
        "--type",
        "assistant",
        "-o",
        "table",
    ]);
    let registered = registered.ok();
    assert!(
        registered.stdout.lines().any(|l| l.starts_with("id ")),
        "{registered:#?}"
    );
    let table = cli.run(&["agents", "list", "-o", "table"]).ok();
    let header = table.stdout.lines().next().unwrap();
    assert!(
        header.starts_with("ID") && header.contains("STATUS"),
        "{table:#?}"
    );
    let missing = cli.run(&["agents", "show", "no-such-agent", "-o", "table"]);
    assert_eq!(missing.code, NOT_FOUND);
    // People get the title, the detail and the code on one line.
    assert!(
        missing.stderr.contains("Not Found") && missing.stderr.contains("(not_found, HTTP 404)"),
        "{missing:#?}"
    );
    let json = cli.run(&["agents", "show", "no-such-agent", "-o", "json"]);
    let problem = json.error();
    assert_eq!(
        (problem["status"].as_u64(), problem["code"].as_str()),
        (Some(404), Some("not_found"))
    );
    assert!(problem["title"].is_string() && problem["detail"].is_string());
}

#[tokio::test]
async fn each_error_class_has_its_exit_code() {
    let server = Server::start().await;
    let cli = Cli::new(&server.base);

    // Usage: arguments clap refuses, and requests the server refuses as invalid.
    assert_fails(&cli.run(&["agents", "frobnicate"]), USAGE, None);
    assert_fails(
        &cli.run(&["agents", "list", "--limit", "many"]),
        USAGE,
        None,
    );
    // Authentication: not logged in at all.
    assert_fails(&cli.run(&["agents", "list"]), AUTHENTICATION, None);

    let admin = sign_up(&cli, "errors");
    let invalid = cli.run(&[
        "agents",
        "register",
        "--name",
        "x",
        "--type",
        "t",
        "--capability",
        "bad scope!",
    ]);
    assert_fails(&invalid, USAGE, Some("invalid_field"));
    let metadata = cli.run(&[
        "agents",
        "register",
        "--name",
        "x",
        "--type",
        "t",
        "--metadata",
        "[]",
    ]);
    assert_fails(&metadata, USAGE, None);

    // Authentication: a wrong secret, and a scope the client may not have.
    let wrong = cli.run_with(
        &["agents", "list"],
        &[
            ("AGENTIDP_CLIENT_ID", &admin.client_id),
            ("AGENTIDP_CLIENT_SECRET", "not-the-secret"),
        ],
        None,
    );
    assert_fails(&wrong, AUTHENTICATION, Some("invalid_client"));
    assert_fails(
        &cli.run(&["token", "--scope", "root"]),
        AUTHENTICATION,
        Some("invalid_scope"),
    );

    // Not found, and conflict (two agents cannot share an email).
    assert_fails(
        &cli.run(&["agents", "show", "nope"]),
        NOT_FOUND,
        Some("not_found"),
    );
    let register = |name: &str| {
        cli.run(&[
            "agents",
            "register",
            "--name",
            name,
            "--type",
            "t",
            "--email",
            "ops@example.com",
        ])
    };
    register("first").ok();
    assert_fails(&register("second"), CONFLICT, Some("email_taken"));

    // Server error or no answer.
    let closed = format!("http://127.0.0.1:{}", agentidp_tests::free_port());
    let unreachable = cli.run(&["agents", "list", "--url", &closed]);
    assert_fails(&unreachable, SERVER, None);
    assert!(unreachable.error()["error"]
        .as_str()
        .unwrap()
        .contains("no answer"));

    // Failure: a broken audit chain (a row rewritten behind the database's back).
    let db = open_db(&server.db_path()).await;
    db.execute("DROP TRIGGER audit_events_no_update", ())
        .await
        .unwrap();
    db.execute("UPDATE audit_events SET actor = 'forged' WHERE seq = 2", ())
        .await
        .unwrap();
    let broken = cli.run(&["audit", "verify"]);
    assert_eq!(broken.code, FAILURE, "{broken:#?}");
    assert_eq!(broken.json()["valid"], false);
    assert_eq!(broken.error()["error"], "audit_chain_broken");
}

/// Management scopes are reserved: an agent gets one only when the admin says so.
#[tokio::test]
async fn management_scopes_need_an_explicit_flag() {
    let server = Server::start().await;
    let cli = Cli::new(&server.base);
    sign_up(&cli, "managers");
    let register = |extra: &[&str]| {
        let mut args = vec![
            "agents",
            "register",
            "--name",
            "auditor",
            "--type",
            "bot",
            "--capability",
            "audit:read",
        ];
        args.extend_from_slice(extra);
        cli.run(&args)
    };
    let refused = register(&[]);
    assert_fails(&refused, USAGE, Some("invalid_field"));
    assert!(
        refused.error()["detail"]
            .as_str()
            .is_some_and(|d| d.contains("add --allow-management-scopes")),
        "{refused:#?}"
    );
    let agent = register(&["--allow-management-scopes"]).ok().json();
    assert_eq!(agent["capabilities"], serde_json::json!(["audit:read"]));
    let id = text(&agent, "id");
    let widened = cli.run(&[
        "agents",
        "update",
        &id,
        "--capability",
        "audit:read,agents:read",
    ]);
    assert_fails(&widened, USAGE, Some("invalid_field"));
    let updated = cli
        .run(&[
            "agents",
            "update",
            &id,
            "--capability",
            "audit:read,agents:read",
            "--allow-management-scopes",
        ])
        .ok()
        .json();
    assert_eq!(
        updated["capabilities"],
        serde_json::json!(["audit:read", "agents:read"])
    );
}

/// What an agent publishes is set from flags, and a malformed `--skills` is a usage error before
/// any request.
#[tokio::test]
async fn agents_publish_descriptions_tags_links_and_skills_from_flags() {
    let server = Server::start().await;
    let cli = Cli::new(&server.base);
    sign_up(&cli, "publishers");
    let agent = cli
        .run(&[
            "agents",
            "register",
            "--name",
            "polyglot",
            "--type",
            "nlp",
            "--visibility",
            "public",
            "--description",
            "Translates documents.",
            "--tag",
            "i18n,documents",
            "--a2a-url",
            "https://polyglot.example/a2a",
            "--homepage-url",
            "https://polyglot.example/",
            "--skills",
            r#"[{"id":"tr","name":"Translate","description":"Any pair of languages","tags":["nlp"]}]"#,
        ])
        .ok()
        .json();
    assert_eq!(agent["description"], "Translates documents.");
    assert_eq!(agent["tags"], serde_json::json!(["i18n", "documents"]));
    assert_eq!(agent["a2a_url"], "https://polyglot.example/a2a");
    assert_eq!(agent["skills"][0]["id"], "tr");
    let id = text(&agent, "id");
    let updated = cli
        .run(&["agents", "update", &id, "--description", "Forty languages."])
        .ok()
        .json();
    assert_eq!(updated["description"], "Forty languages.");
    assert_eq!(updated["tags"], serde_json::json!(["i18n", "documents"]));
    let bad = cli.run(&["agents", "update", &id, "--skills", "{not json"]);
    assert_fails(&bad, USAGE, None);
}

/// The admin's own credentials: a second one, a rotation without grace, and revocation, each
/// checked by authenticating with the secrets the commands printed.
#[tokio::test]
async fn admin_credentials_are_created_rotated_and_revoked() {
    let server = Server::start().await;
    let cli = Cli::new(&server.base);
    let first = sign_up(&cli, "admins");
    let listed = cli.run(&["orgs", "credentials", "list"]).ok().json();
    assert_eq!(listed["data"].as_array().unwrap().len(), 1, "{listed}");
    assert!(listed["data"][0].get("client_secret").is_none(), "{listed}");
    let first_id = text(&listed["data"][0], "id");

    let created = cli.run(&["orgs", "credentials", "create"]).ok();
    assert!(created.stderr.contains("shown only now"), "{created:#?}");
    let second = created.json();
    let (second_client, second_secret) =
        (text(&second, "client_id"), text(&second, "client_secret"));
    let as_second = |args: &[&str], secret: &str| {
        cli.run_with(
            args,
            &[
                ("AGENTIDP_CLIENT_ID", second_client.as_str()),
                ("AGENTIDP_CLIENT_SECRET", secret),
            ],
            None,
        )
    };
    let both = as_second(&["orgs", "credentials", "list"], &second_secret)
        .ok()
        .json();
    assert_eq!(both["data"].as_array().unwrap().len(), 2, "{both}");

    // The first admin rotates the second's secret with no grace: only the new one works.
    let rotated = cli
        .run(&[
            "orgs",
            "credentials",
            "rotate",
            &text(&second, "id"),
            "--grace-period",
            "0",
        ])
        .ok()
        .json();
    let new_secret = text(&rotated, "client_secret");
    assert_ne!(new_secret, second_secret);
    assert_fails(
        &as_second(&["orgs", "credentials", "list"], &second_secret),
        AUTHENTICATION,
        Some("invalid_client"),
    );
    as_second(&["orgs", "credentials", "list"], &new_secret).ok();

    // The second revokes the first; the first's profile stops working.
    let revoked = as_second(&["orgs", "credentials", "revoke", &first_id], &new_secret)
        .ok()
        .json();
    assert_eq!(revoked["status"], "revoked", "{revoked}");
    assert_fails(
        &cli.run(&["orgs", "credentials", "list"]),
        AUTHENTICATION,
        Some("invalid_client"),
    );
    assert_eq!(first.client_id, text(&revoked, "client_id"));
    // The last active admin credential cannot be revoked.
    assert_fails(
        &as_second(
            &["orgs", "credentials", "revoke", &text(&second, "id")],
            &new_secret,
        ),
        CONFLICT,
        Some("last_admin_credential"),
    );
}

#[tokio::test]
async fn a_rate_limited_call_exits_6() {
    let server = Server::start_with(&[("RATE_LIMIT_PER_MINUTE", "2")]).await;
    let cli = Cli::new(&server.base);
    sign_up(&cli, "limited");
    cli.run(&["agents", "list"]).ok();
    cli.run(&["agents", "list"]).ok();
    let limited = cli.run(&["agents", "list"]);
    assert_fails(&limited, RATE_LIMITED, Some("rate_limited"));
}

#[tokio::test]
async fn trust_policies_are_created_listed_evaluated_and_deleted() {
    // A deployment that trusts GitHub's issuer: without an audience it refuses every policy.
    let server = Server::start_with(&[("GITHUB_OIDC_AUDIENCE", "https://agentidp.test")]).await;
    let cli = Cli::new(&server.base);
    sign_up(&cli, "federated");
    let agent = cli
        .run(&[
            "agents",
            "register",
            "--name",
            "ci",
            "--type",
            "deployer",
            "--capability",
            "deploy",
        ])
        .ok()
        .json();
    let agent_id = text(&agent, "id");
    let policy = cli
        .run(&[
            "trust-policies",
            "create",
            "--repository",
            "octo/app",
            "--branch",
            "main",
            "--agent",
            &agent_id,
            "--scope",
            "deploy",
        ])
        .ok()
        .json();
    let policy_id = text(&policy, "id");
    let listed = cli
        .run(&["trust-policies", "list", "--agent", &agent_id])
        .ok()
        .json();
    assert_eq!(listed["data"][0]["id"], policy_id.as_str());
    let claims = r#"{"repository":"octo/app","repository_owner":"octo","ref":"refs/heads/dev","event_name":"push"}"#;
    let evaluation = cli
        .run(&[
            "trust-policies",
            "evaluate",
            "--claims",
            claims,
            "--agent",
            &agent_id,
        ])
        .ok()
        .json();
    assert_eq!(evaluation["matched"], false, "{evaluation}");
    assert_eq!(evaluation["token_verified"], false);
    let deleted = cli
        .run(&["trust-policies", "delete", &policy_id])
        .ok()
        .json();
    assert_eq!(deleted["id"], policy_id.as_str());
    assert_fails(
        &cli.run(&["trust-policies", "show", &policy_id]),
        NOT_FOUND,
        Some("not_found"),
    );
    let both = cli.run(&[
        "trust-policies",
        "create",
        "--repository",
        "octo/app",
        "--agent",
        "a",
        "--allow-registration",
    ]);
    assert_fails(&both, USAGE, None);
}

/// The webhooks commands speak the API of the webhooks function (`/v1/webhooks`): the secret shown
/// once, listed without it, a test event in the delivery log, unknown ids reported as not found.
#[tokio::test]
async fn webhook_commands_report_what_the_server_answers() {
    let server = Server::start().await;
    let cli = Cli::new(&server.base);
    sign_up(&cli, "hooks");
    let unknown = "00000000-0000-4000-8000-000000000001";
    let created = cli
        .run(&[
            "webhooks",
            "create",
            "--endpoint",
            "https://hooks.example.com/x",
            "--event",
            "agent.created,credential.revoked",
        ])
        .ok();
    let webhook = created.json();
    assert_eq!(webhook["url"], "https://hooks.example.com/x", "{webhook}");
    assert!(text(&webhook, "secret").starts_with("whsec_"));
    assert!(created.stderr.contains("shown only now"), "{created:#?}");
    let id = text(&webhook, "id");
    let listed = cli.run(&["webhooks", "list"]).ok().json();
    assert!(listed["data"].is_array(), "{listed}");
    assert_eq!(listed["data"][0]["id"], id.as_str());
    assert!(listed["data"][0].get("secret").is_none(), "{listed}");
    let test = cli.run(&["webhooks", "test", &id]).ok().json();
    assert_eq!(test["event_type"], "webhook.test", "{test}");
    let log = cli.run(&["webhooks", "deliveries", &id]).ok().json();
    assert_eq!(log["data"][0]["id"], test["id"], "{log}");
    let deliveries = cli.run(&["webhooks", "deliveries", unknown]);
    assert_fails(&deliveries, NOT_FOUND, Some("not_found"));
    assert_fails(
        &cli.run(&["webhooks", "test", unknown]),
        NOT_FOUND,
        Some("not_found"),
    );
    // The rest of a subscription's life from the command line.
    let updated = cli
        .run(&[
            "webhooks",
            "update",
            &id,
            "--event",
            "agent.created",
            "--disable",
        ])
        .ok()
        .json();
    assert_eq!(
        updated["events"],
        serde_json::json!(["agent.created"]),
        "{updated}"
    );
    assert_eq!(updated["enabled"], false, "{updated}");
    let rotated = cli
        .run(&["webhooks", "rotate", &id, "--grace-period", "60"])
        .ok();
    assert!(
        text(&rotated.json(), "secret").starts_with("whsec_"),
        "{rotated:#?}"
    );
    let retried = cli.run(&["webhooks", "retry", &id, unknown]);
    assert_fails(&retried, NOT_FOUND, Some("not_found"));
    cli.run(&["webhooks", "delete", &id]).ok();
    assert_fails(
        &cli.run(&["webhooks", "delete", &id]),
        NOT_FOUND,
        Some("not_found"),
    );
    // `--scope` takes the list syntax of `--capability`.
    let token = cli
        .run(&[
            "token",
            "--scope",
            "agents:read,webhooks:read",
            "-o",
            "json",
        ])
        .ok()
        .json();
    assert_eq!(token["scope"], "agents:read webhooks:read", "{token}");
}

#[test]
fn completion_scripts_pass_each_shells_syntax_check() {
    let cli = Cli::new("http://127.0.0.1:9");
    std::fs::create_dir_all(&cli.config_dir).unwrap();
    for shell in ["bash", "zsh", "fish"] {
        let script = cli.run(&["completions", shell]).ok();
        assert!(script.stdout.contains("agentidp"), "{shell}: {script:#?}");
        assert!(
            script.stdout.contains("trust-policies"),
            "{shell}: the subcommands are missing"
        );
        let path = cli.config_dir.join(format!("agentidp.{shell}"));
        std::fs::write(&path, &script.stdout).unwrap();
        let checked = Command::new(shell)
            .arg("-n")
            .arg(&path)
            .output()
            .unwrap_or_else(|e| {
                panic!("{shell} is needed for this test ({e}); `bash scripts/test.sh setup` installs it")
            });
        assert!(
            checked.status.success(),
            "{shell} -n refused the script: {}",
            String::from_utf8_lossy(&checked.stderr)
        );
    }
    // The check itself can fail: a script with a syntax error is refused by each shell.
    let broken = cli.config_dir.join("broken");
    std::fs::write(&broken, "if then fi (\n").unwrap();
    for shell in ["bash", "zsh", "fish"] {
        let checked = Command::new(shell).arg("-n").arg(&broken).output().unwrap();
        assert!(
            !checked.status.success(),
            "{shell} -n accepted a broken script"
        );
    }
}

/// On a terminal, an export to a file shows a progress bar (on stderr); `script` gives the
/// command a pseudo-terminal.
#[tokio::test]
async fn an_export_to_a_file_shows_progress_on_a_terminal() {
    if Command::new("script").arg("--version").output().is_err() {
        panic!("util-linux `script` is needed for this test");
    }
    let server = Server::start().await;
    let cli = Cli::new(&server.base);
    sign_up(&cli, "progress");
    let file = cli.config_dir.join("trail.ndjson");
    let typescript = cli.config_dir.join("typescript");
    let command = format!(
        "{} audit export --file {}",
        agentidp_tests::server_binary().display(),
        file.display()
    );
    let status = Command::new("script")
        .args(["-q", "-e", "-c", &command])
        .arg(&typescript)
        .env("AGENTIDP_URL", &server.base)
        .env("AGENTIDP_CONFIG_DIR", &cli.config_dir)
        .env_remove("AGENTIDP_OUTPUT")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(status.status.success(), "{status:?}");
    let screen = std::fs::read_to_string(&typescript).unwrap();
    // The bar reads `N/TOTAL events`; the summary on stdout has no such count.
    let bar = screen.match_indices(" events").any(|(i, _)| {
        let before: String = screen[..i]
            .chars()
            .rev()
            .take_while(|c| c.is_ascii_digit() || *c == '/')
            .collect();
        before.contains('/') && before.len() >= 3
    });
    assert!(bar, "no progress bar on the terminal: {screen:?}");
    assert!(std::fs::read_to_string(&file).unwrap().lines().count() >= 2);
}

#[tokio::test]
async fn ten_commands_make_one_token_request() {
    let server = Server::start().await;
    let cli = Cli::new(&server.base);
    let admin = sign_up(&cli, "frugal");
    let commands: [&[&str]; 10] = [
        &["agents", "list"],
        &["whoami"],
        &["usage"],
        &["agents", "register", "--name", "bot", "--type", "assistant"],
        &["agents", "list", "--status", "active"],
        &["webhooks", "list"],
        &["trust-policies", "list"],
        &["audit", "verify"],
        &["orgs", "credentials", "list"],
        &["usage"],
    ];
    for args in commands {
        cli.run(args).ok();
    }
    let token_file = cli.config_dir.join("tokens").join("default.json");
    #[cfg(unix)]
    assert_eq!(mode(&token_file), 0o600);
    // Counted in the trail, read directly from the database the server writes.
    let db = open_db(&server.db_path()).await;
    let mut rows = db
        .query(
            "SELECT COUNT(*) FROM audit_events WHERE action = 'token.issued'",
            (),
        )
        .await
        .unwrap();
    let issued: i64 = rows.next().await.unwrap().unwrap().get(0).unwrap();
    assert_eq!(issued, 1, "ten commands, one token request");

    let whoami = cli.run(&["whoami", "-o", "json"]).ok().json();
    assert_eq!(whoami["client_id"], admin.client_id.as_str());
    assert!(
        whoami["scope"].as_str().unwrap().contains("agents:write"),
        "{whoami}"
    );
    let profiles = cli.run(&["profiles", "list", "-o", "json"]).ok().json();
    assert_eq!(profiles[0]["name"], "default");
    assert!(!cli
        .run(&["profiles", "list"])
        .stdout
        .contains(&admin.client_secret));
    // `orgs create --login` does not overwrite a profile without --force.
    let refused = cli.run(&["orgs", "create", "second", "--login"]);
    assert_eq!(refused.code, 2, "{refused:#?}");
    assert!(refused.stderr.contains("--force"), "{refused:#?}");
    cli.run(&["orgs", "create", "second", "--login", "--force"])
        .ok();
}

#[tokio::test]
async fn audit_verify_checks_checkpoints_online_and_an_export_offline() {
    let server = Server::start().await;
    let cli = Cli::new(&server.base);
    sign_up(&cli, "verifier");
    let register = |name: &str| {
        cli.run(&["agents", "register", "--name", name, "--type", "assistant"])
            .ok();
    };
    register("first");
    let saved = cli.config_dir.join("saved.note");
    let saved_arg = saved.to_str().unwrap();
    let first = cli
        .run(&["audit", "verify", "--save", saved_arg])
        .ok()
        .json();
    assert_eq!(first["consistent"], true, "{first}");
    for name in ["second", "third", "fourth"] {
        register(name);
    }

    // Online: the server's latest checkpoint extends the saved one; keep it for next time.
    let newer = cli.config_dir.join("newer.note");
    let newer_arg = newer.to_str().unwrap();
    let checked = cli
        .run(&[
            "audit",
            "verify",
            "--checkpoint",
            saved_arg,
            "--save",
            newer_arg,
        ])
        .ok()
        .json();
    assert_eq!(checked["valid"], true, "{checked}");
    assert!(
        checked["latest_size"].as_u64() > checked["saved_size"].as_u64(),
        "{checked}"
    );
    assert_eq!(checked["saved_size"], first["latest_size"]);

    // Offline: an export against the newer checkpoint, with the published key and no server.
    let key = reqwest::get(server.url("/v1/audit/checkpoints/key"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let export = cli.config_dir.join("export.ndjson");
    let export_arg = export.to_str().unwrap();
    cli.run(&["audit", "export", "--file", export_arg]).ok();
    let offline = |note: &str, key: &str| {
        cli.run(&[
            "audit",
            "verify",
            "--offline",
            export_arg,
            "--checkpoint",
            note,
            "--key",
            key,
            "--url",
            "http://127.0.0.1:9",
        ])
    };
    let verified = offline(newer_arg, key.trim()).ok().json();
    assert_eq!(verified["valid"], true, "{verified}");
    assert_eq!(verified["checkpoint_size"], checked["latest_size"]);

    // A flipped byte in the checkpoint, or an altered event, fails with exit code 1.
    let note = std::fs::read_to_string(&newer).unwrap();
    let forged = cli.config_dir.join("forged.note");
    let flipped = note.replacen("\n", "0\n", 2).replacen("0\n", "\n", 1);
    std::fs::write(&forged, flipped).unwrap();
    let refused = offline(forged.to_str().unwrap(), key.trim());
    assert_eq!(refused.code, FAILURE, "{refused:#?}");
    assert_eq!(refused.error()["error"], "checkpoint_not_verified");
    let events = std::fs::read_to_string(&export).unwrap();
    std::fs::write(
        &export,
        events.replacen(
            "\"action\":\"agent.created\"",
            "\"action\":\"agent.createe\"",
            1,
        ),
    )
    .unwrap();
    let refused = offline(newer_arg, key.trim());
    assert_eq!(refused.code, FAILURE, "{refused:#?}");
    assert_eq!(refused.error()["error"], "audit_chain_broken");

    // A checkpoint of another organization's log is no history of this one.
    let other = Cli::new(&server.base);
    sign_up(&other, "elsewhere");
    let theirs = other.config_dir.join("theirs.note");
    other
        .run(&["audit", "verify", "--save", theirs.to_str().unwrap()])
        .ok();
    let refused = cli.run(&["audit", "verify", "--checkpoint", theirs.to_str().unwrap()]);
    assert_eq!(refused.code, FAILURE, "{refused:#?}");
    assert_eq!(refused.error()["error"], "checkpoint_origin_mismatch");
}

#[tokio::test]
async fn policies_are_uploaded_evaluated_replaced_and_deleted_from_the_command_line() {
    let server = Server::start().await;
    let cli = Cli::new(&server.base);
    sign_up(&cli, "policies");
    let agent = cli
        .run(&[
            "agents",
            "register",
            "--name",
            "payer",
            "--type",
            "service",
            "--capability",
            "payments:write,read:docs",
        ])
        .ok()
        .json();
    let agent_id = text(&agent, "id");
    let file = cli.config_dir.join("payments.cedar");
    std::fs::write(
        &file,
        "@reason(\"payments only for the payment API\")\n\
         forbid(principal, action, resource) when { context.scope == \"payments:write\" }\n\
         unless { resource == AgentIdP::Audience::\"https://pay.example\" };\n\
         permit(principal, action, resource);\n",
    )
    .unwrap();
    let created = cli
        .run(&[
            "policies",
            "put",
            "--file",
            file.to_str().unwrap(),
            "--description",
            "payments",
        ])
        .ok()
        .json();
    let id = text(&created, "id");
    assert_eq!(created["version"], 1);
    let listed = cli.run(&["policies", "list"]).ok().json();
    assert_eq!(listed["data"][0]["id"], id.as_str());

    let decided = cli
        .run(&[
            "policies",
            "evaluate",
            "--agent",
            &agent_id,
            "--scope",
            "payments:write,read:docs",
        ])
        .ok()
        .json();
    assert_eq!(decided["decisions"][0]["decision"], "deny", "{decided}");
    assert_eq!(
        decided["decisions"][0]["reason"],
        "payments only for the payment API"
    );
    assert_eq!(decided["decisions"][1]["decision"], "allow");
    let table = cli
        .run(&[
            "policies",
            "evaluate",
            "--agent",
            &agent_id,
            "--scope",
            "payments:write",
            "--audience",
            "https://pay.example",
            "-o",
            "table",
        ])
        .ok();
    assert!(table.stdout.contains("allow"), "{table:#?}");

    // Replacing from a stale version is a conflict; from the current one it works.
    let replaced = cli
        .run(&[
            "policies",
            "put",
            "--id",
            &id,
            "--cedar",
            "permit(principal, action, resource);",
            "--if-match",
            "1",
        ])
        .ok()
        .json();
    assert_eq!(replaced["version"], 2);
    let stale = cli.run(&[
        "policies",
        "put",
        "--id",
        &id,
        "--cedar",
        "forbid(principal, action, resource);",
        "--if-match",
        "1",
    ]);
    assert_eq!(stale.code, CONFLICT, "{stale:#?}");
    assert_eq!(stale.error()["code"], "policy_changed");
    // An invalid policy is a usage error naming where it is wrong.
    let invalid = cli.run(&[
        "policies",
        "put",
        "--cedar",
        "permit(principal action, resource);",
    ]);
    assert_eq!(invalid.code, USAGE, "{invalid:#?}");
    assert_eq!(invalid.error()["line"], 1);

    let schema = cli.run(&["policies", "schema", "-o", "table"]).ok();
    assert!(
        schema.stdout.starts_with("namespace AgentIdP"),
        "{schema:#?}"
    );
    cli.run(&["policies", "delete", &id]).ok();
    let missing = cli.run(&["policies", "get", &id]);
    assert_eq!(missing.code, NOT_FOUND);
}

#[tokio::test]
async fn client_ids_serve_as_credential_ids_and_errors_name_the_next_step() {
    let server = Server::start().await;
    let cli = Cli::new(&server.base);
    let admin = sign_up(&cli, "friendly");
    let agent = cli
        .run(&["agents", "register", "--name", "bot", "--type", "assistant"])
        .ok()
        .json();
    let agent_id = text(&agent, "id");
    let credential = cli.run(&["credentials", "create", &agent_id]).ok().json();
    let revoked = cli
        .run(&[
            "credentials",
            "revoke",
            &agent_id,
            &text(&credential, "client_id"),
        ])
        .ok()
        .json();
    assert_eq!(revoked["id"], credential["id"], "{revoked}");

    // The CLI's own token issuance can be left out of the trail it shows.
    let tail = cli
        .run(&[
            "audit",
            "tail",
            "-n",
            "50",
            "--exclude-action",
            "token.issued",
            "-o",
            "json",
        ])
        .ok();
    let actions: Vec<String> = tail
        .json_lines()
        .iter()
        .map(|e| text(e, "action"))
        .collect();
    assert!(
        actions.contains(&"credential.revoked".to_owned()),
        "{actions:?}"
    );
    assert!(!actions.contains(&"token.issued".to_owned()), "{actions:?}");

    // Errors say what to do in the command line's terms.
    let admin_scoped = cli.run(&[
        "agents",
        "register",
        "--name",
        "boss",
        "--type",
        "assistant",
        "--capability",
        "agents:write",
    ]);
    assert!(
        admin_scoped.stderr.contains("--allow-management-scopes"),
        "{admin_scoped:#?}"
    );
    let nowhere = Cli::new(&format!("http://127.0.0.1:{}", agentidp_tests::free_port()));
    let unreachable = nowhere.run_with(
        &["agents", "list"],
        &[
            ("AGENTIDP_CLIENT_ID", admin.client_id.as_str()),
            ("AGENTIDP_CLIENT_SECRET", admin.client_secret.as_str()),
        ],
        None,
    );
    assert!(
        unreachable.stderr.contains("agentidp serve") && unreachable.stderr.contains("--url"),
        "{unreachable:#?}"
    );
}
