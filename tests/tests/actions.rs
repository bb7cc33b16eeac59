//! The two GitHub Actions in `.github/actions/` run as a runner would run them: each step of
//! `action.yml` with its inputs substituted, under `bash -eo pipefail`, against the real server,
//! with `ACTIONS_ID_TOKEN_REQUEST_URL` served by `agentidp-dev oidc-issuer`. Outputs are read
//! from `GITHUB_OUTPUT`, and the log, masked as the runner masks it, must show no token.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use agentidp_tests::{dev_binary, jwt_parts, status_json, Server};
use serde_json::{json, Value};

const AUDIENCE: &str = "https://agentidp.actions-test";
const REQUEST_TOKEN: &str = "runner-request-token";

fn actions_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join(".github/actions")
}

/// What the runner needs from an `action.yml`: input defaults, output expressions and the steps.
#[derive(Debug, Default)]
struct Action {
    defaults: BTreeMap<String, String>,
    required: Vec<String>,
    outputs: BTreeMap<String, String>,
    steps: Vec<Step>,
}

#[derive(Debug, Default)]
struct Step {
    id: String,
    shell: String,
    env: Vec<(String, String)>,
    run: String,
}

fn unquote(value: &str) -> String {
    let v = value.trim();
    if v.len() >= 2
        && ((v.starts_with('\'') && v.ends_with('\'')) || (v.starts_with('"') && v.ends_with('"')))
    {
        v[1..v.len() - 1].to_owned()
    } else {
        v.to_owned()
    }
}

/// Reads the subset of YAML the actions use: two-space indentation, `key: value` lines, steps as a
/// list of mappings with an `env` mapping and a one-line `run`.
fn parse_action(text: &str) -> Action {
    let mut action = Action::default();
    let mut section = "";
    let mut current: Option<String> = None;
    let mut in_env = false;
    for line in text.lines() {
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        let content = line.trim();
        let (key, value) = content
            .split_once(':')
            .map(|(k, v)| (k.trim().trim_start_matches("- "), v.trim()))
            .unwrap_or((content, ""));
        match indent {
            0 => {
                section = match key {
                    "inputs" => "inputs",
                    "outputs" => "outputs",
                    "runs" => "runs",
                    _ => "",
                };
            }
            2 if section == "inputs" || section == "outputs" => current = Some(key.to_owned()),
            4 if section == "inputs" => {
                let name = current.clone().unwrap();
                match key {
                    "default" => {
                        action.defaults.insert(name, unquote(value));
                    }
                    "required" if value == "true" => action.required.push(name),
                    _ => {}
                }
            }
            4 if section == "outputs" && key == "value" => {
                action
                    .outputs
                    .insert(current.clone().unwrap(), unquote(value));
            }
            4 if section == "runs" && content.starts_with("- ") => {
                action.steps.push(Step::default());
                in_env = false;
                if key == "id" {
                    action.steps.last_mut().unwrap().id = unquote(value);
                }
            }
            6 if section == "runs" => {
                let step = action.steps.last_mut().unwrap();
                in_env = key == "env";
                match key {
                    "id" => step.id = unquote(value),
                    "shell" => step.shell = unquote(value),
                    "run" => step.run = unquote(value),
                    _ => {}
                }
            }
            8 if section == "runs" && in_env => {
                let step = action.steps.last_mut().unwrap();
                step.env.push((key.to_owned(), value.to_owned()));
            }
            _ => {}
        }
    }
    action
}

/// `${{ inputs.NAME }}` and `${{ steps.ID.outputs.NAME }}` expressions, resolved.
fn substitute(
    text: &str,
    inputs: &BTreeMap<String, String>,
    steps: &BTreeMap<String, BTreeMap<String, String>>,
) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${{") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find("}}").unwrap() + start;
        let expression = rest[start + 3..end].trim();
        let value = if let Some(name) = expression.strip_prefix("inputs.") {
            inputs.get(name).cloned().unwrap_or_default()
        } else if let Some(path) = expression.strip_prefix("steps.") {
            let (id, output) = path.split_once(".outputs.").unwrap();
            steps
                .get(id)
                .and_then(|o| o.get(output))
                .cloned()
                .unwrap_or_default()
        } else {
            panic!("unsupported expression {expression}")
        };
        out.push_str(&value);
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    out
}

/// `GITHUB_OUTPUT`'s two forms: `name=value` and `name<<DELIMITER` … `DELIMITER`.
fn parse_outputs(text: &str) -> BTreeMap<String, String> {
    let mut outputs = BTreeMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if let Some((name, delimiter)) = line.split_once("<<") {
            let value: Vec<&str> = lines.by_ref().take_while(|l| *l != delimiter).collect();
            outputs.insert(name.to_owned(), value.join("\n"));
        } else if let Some((name, value)) = line.split_once('=') {
            outputs.insert(name.to_owned(), value.to_owned());
        }
    }
    outputs
}

/// One run of an action: its outputs, its exit status and its log as the runner would show it.
struct Run {
    success: bool,
    outputs: BTreeMap<String, String>,
    /// Every line of stdout and stderr, `::add-mask::` values replaced by `***` from where each
    /// was registered on, and the mask commands themselves left out (the runner does not show them).
    masked_log: String,
    raw_log: String,
}

fn run_action(name: &str, given: &[(&str, &str)], env: &[(&str, &str)]) -> Run {
    let dir = actions_dir().join(name);
    let action = parse_action(&std::fs::read_to_string(dir.join("action.yml")).unwrap());
    let mut inputs = action.defaults.clone();
    for (k, v) in given {
        inputs.insert((*k).to_owned(), (*v).to_owned());
    }
    for required in &action.required {
        assert!(
            inputs.contains_key(required),
            "input {required} is required"
        );
    }
    let work = std::env::temp_dir().join(format!(
        "agentidp-action-{}-{name}-{}",
        std::process::id(),
        oidc_now_nanos()
    ));
    std::fs::create_dir_all(&work).unwrap();
    let mut step_outputs: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut raw_log = String::new();
    let mut success = true;
    for step in &action.steps {
        assert_eq!(step.shell, "bash", "composite steps run in bash");
        let script = work.join(format!("{}.sh", step.id));
        std::fs::write(&script, substitute(&step.run, &inputs, &step_outputs)).unwrap();
        let output_file = work.join(format!("{}.out", step.id));
        std::fs::write(&output_file, "").unwrap();
        let mut command = Command::new("bash");
        command
            .args(["--noprofile", "--norc", "-eo", "pipefail"])
            .arg(&script)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap())
            .env("HOME", &work)
            .env("RUNNER_TEMP", &work)
            .env("GITHUB_ACTION_PATH", &dir)
            .env("GITHUB_OUTPUT", &output_file);
        for (k, v) in &step.env {
            command.env(k, substitute(v, &inputs, &step_outputs));
        }
        for (k, v) in env {
            command.env(k, v);
        }
        // Both streams into one log, in order, as the runner shows them.
        let output = command.stdin(Stdio::null()).output().expect("running bash");
        raw_log.push_str(&String::from_utf8_lossy(&output.stdout));
        raw_log.push_str(&String::from_utf8_lossy(&output.stderr));
        step_outputs.insert(
            step.id.clone(),
            parse_outputs(&std::fs::read_to_string(&output_file).unwrap()),
        );
        if !output.status.success() {
            success = false;
            break;
        }
    }
    let outputs = action
        .outputs
        .iter()
        .map(|(name, expression)| (name.clone(), substitute(expression, &inputs, &step_outputs)))
        .collect();
    let _ = std::fs::remove_dir_all(&work);
    Run {
        success,
        outputs,
        masked_log: mask(&raw_log),
        raw_log,
    }
}

fn mask(log: &str) -> String {
    let mut secrets: Vec<String> = Vec::new();
    let mut shown = Vec::new();
    for line in log.lines() {
        if let Some(secret) = line.strip_prefix("::add-mask::") {
            secrets.push(secret.to_owned());
            continue;
        }
        let mut line = line.to_owned();
        for secret in secrets.iter().filter(|s| !s.is_empty()) {
            line = line.replace(secret.as_str(), "***");
        }
        shown.push(line);
    }
    shown.join("\n")
}

fn oidc_now_nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// No JWT (header `eyJ…`, three base64url parts) survives masking.
fn assert_no_token(run: &Run, secrets: &[&str]) {
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        assert!(
            !run.masked_log.contains(secret),
            "a token shows in the log:\n{}",
            run.masked_log
        );
    }
    let jwt_like = run
        .masked_log
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'))
        .any(|word| word.starts_with("eyJ") && word.matches('.').count() == 2);
    assert!(!jwt_like, "a JWT shows in the log:\n{}", run.masked_log);
}

/// `agentidp-dev oidc-issuer` on a free port, its key and claims in a temporary directory.
struct DevIssuer {
    url: String,
    claims_file: PathBuf,
    dir: PathBuf,
    child: Child,
}

impl DevIssuer {
    fn start() -> DevIssuer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir =
            std::env::temp_dir().join(format!("agentidp-issuer-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let claims_file = dir.join("claims.json");
        std::fs::write(&claims_file, "{}").unwrap();
        let child = Command::new(dev_binary())
            .args(["oidc-issuer", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--key-file")
            .arg(dir.join("key.pem"))
            .arg("--claims-file")
            .arg(&claims_file)
            .args(["--request-token", REQUEST_TOKEN])
            .env("AGENTIDP_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting agentidp-dev oidc-issuer");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "the issuer stand-in did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        DevIssuer {
            url: format!("http://127.0.0.1:{port}"),
            claims_file,
            dir,
            child,
        }
    }

    fn set_claims(&self, claims: Value) {
        std::fs::write(&self.claims_file, claims.to_string()).unwrap();
    }

    /// What the runner puts in a job with `permissions: id-token: write`.
    fn runner_env(&self) -> Vec<(&'static str, String)> {
        vec![
            (
                "ACTIONS_ID_TOKEN_REQUEST_URL",
                format!("{}/token?api-version=2.0", self.url),
            ),
            ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", REQUEST_TOKEN.to_owned()),
        ]
    }
}

impl Drop for DevIssuer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn the_actions_register_an_agent_and_issue_its_tokens_without_showing_them() {
    let issuer = DevIssuer::start();
    let server = Server::start_with(&[
        ("GITHUB_OIDC_ISSUER", &issuer.url),
        ("GITHUB_OIDC_AUDIENCE", AUDIENCE),
    ])
    .await;
    let org = server.bootstrap("acme").await;
    let (status, policy) = status_json(
        server
            .post(
                "/v1/oidc/trust-policies",
                &org.token,
                json!({ "provider": "github", "repository": "octo/app", "branch": "main",
                        "allow_registration": true, "scopes": ["deploy:write"] }),
            )
            .await,
    )
    .await;
    assert_eq!(status, 201, "{policy}");
    let runner = issuer.runner_env();
    let env: Vec<(&str, &str)> = runner.iter().map(|(k, v)| (*k, v.as_str())).collect();

    // register-agent
    let run = run_action(
        "register-agent",
        &[
            ("api-url", &server.base),
            ("agent-name", "release-bot"),
            ("agent-description", "Ships \"releases\" from CI"),
            ("audience", AUDIENCE),
        ],
        &env,
    );
    assert!(run.success, "{}", run.raw_log);
    let agent_id = run.outputs["agent-id"].clone();
    assert_eq!(agent_id.len(), 36, "{:?}", run.outputs);
    assert_no_token(&run, &[]);
    let (status, agent) = status_json(
        server
            .get(&format!("/v1/agents/{agent_id}"), &org.token)
            .await,
    )
    .await;
    assert_eq!(status, 200, "{agent}");
    assert_eq!(agent["name"], "release-bot");
    assert_eq!(
        agent["metadata"]["description"],
        "Ships \"releases\" from CI"
    );
    assert_eq!(agent["capabilities"], json!(["deploy:write"]));

    // issue-token, for the agent the workflow registered.
    let run = run_action(
        "issue-token",
        &[
            ("api-url", &server.base),
            ("agent-id", &agent_id),
            ("scope", "deploy:write"),
            ("audience", AUDIENCE),
        ],
        &env,
    );
    assert!(run.success, "{}", run.raw_log);
    let access = run.outputs["access-token"].clone();
    let (_, claims) = jwt_parts(&access);
    assert_eq!(claims["sub"], agent_id.as_str());
    assert_eq!(claims["scope"], "deploy:write");
    assert_eq!(claims["act"]["repository"], "octo/app");
    let expires_at = &run.outputs["expires-at"];
    assert!(
        expires_at.ends_with('Z') && expires_at.len() == 20,
        "{expires_at}"
    );
    assert!(
        run.raw_log.contains(&format!("::add-mask::{access}")),
        "the token is masked"
    );
    assert!(run.raw_log.contains("valid until"), "{}", run.raw_log);
    assert_no_token(&run, &[&access]);

    // Refusals are shown with the server's explanation, and still no token.
    issuer.set_claims(json!({ "ref": "refs/heads/feature" }));
    let run = run_action(
        "issue-token",
        &[
            ("api-url", &server.base),
            ("agent-id", &agent_id),
            ("audience", AUDIENCE),
        ],
        &env,
    );
    assert!(!run.success);
    assert!(
        run.masked_log
            .contains("::error title=AgentIdP token exchange refused::HTTP 400 invalid_grant:")
            && run
                .masked_log
                .contains("ref refs/heads/feature does not match"),
        "{}",
        run.masked_log
    );
    assert_no_token(&run, &[]);
    issuer.set_claims(json!({}));
    // The deployment's audience left at its default (api-url) is not the configured one.
    let run = run_action(
        "issue-token",
        &[("api-url", &server.base), ("agent-id", &agent_id)],
        &env,
    );
    assert!(!run.success);
    assert!(
        run.masked_log.contains("is not this deployment's audience"),
        "{}",
        run.masked_log
    );
    // A registration name the server refuses.
    let run = run_action(
        "register-agent",
        &[
            ("api-url", &server.base),
            ("agent-name", "x"),
            ("agent-type", "Not Valid"),
            ("audience", AUDIENCE),
        ],
        &env,
    );
    assert!(!run.success);
    assert!(
        run.masked_log
            .contains("::error title=AgentIdP registration refused::HTTP 400 invalid_field"),
        "{}",
        run.masked_log
    );
    assert_no_token(&run, &[]);
    // A job without `id-token: write` is told what to add.
    let run = run_action(
        "issue-token",
        &[("api-url", &server.base), ("agent-id", &agent_id)],
        &[],
    );
    assert!(!run.success);
    assert!(
        run.masked_log.contains("permissions: id-token: write"),
        "{}",
        run.masked_log
    );
}

#[test]
fn the_action_descriptions_name_their_inputs_and_outputs() {
    for (name, inputs, outputs) in [
        (
            "issue-token",
            &["api-url", "agent-id", "scope"][..],
            &["access-token", "expires-at"][..],
        ),
        (
            "register-agent",
            &["api-url", "agent-name", "agent-description"][..],
            &["agent-id"][..],
        ),
    ] {
        let text = std::fs::read_to_string(actions_dir().join(name).join("action.yml")).unwrap();
        let action = parse_action(&text);
        assert!(text.contains("using: composite"), "{name}");
        for input in inputs {
            assert!(
                text.contains(&format!("\n  {input}:\n")),
                "{name}: input {input}"
            );
        }
        for output in outputs {
            assert!(
                action.outputs.contains_key(*output),
                "{name}: output {output}"
            );
        }
        let readme = std::fs::read_to_string(actions_dir().join(name).join("README.md")).unwrap();
        for needle in ["id-token: write", "trust-policies", "| `api-url`"] {
            assert!(readme.contains(needle), "{name}/README.md lacks {needle}");
        }
    }
}
