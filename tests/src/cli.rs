//! Running the `agentidp` command line as a user does: the real binary with its own config
//! directory, pointed at a deployment, stdin not a terminal; its exit code, stdout and stderr.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::{free_port, server_binary};

/// Variables of the command line that must not leak in from the caller's shell.
const CLI_VARIABLES: &[&str] = &[
    "AGENTIDP_URL",
    "AGENTIDP_PROFILE",
    "AGENTIDP_CLIENT_ID",
    "AGENTIDP_CLIENT_SECRET",
    "AGENTIDP_CONFIG_DIR",
    "AGENTIDP_OUTPUT",
    "AGENTIDP_SIGNUP_TOKEN",
];

/// The command line for one user: a deployment and a config directory of its own (removed on
/// drop).
pub struct Cli {
    pub url: String,
    pub config_dir: PathBuf,
}

/// One finished command.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Asserts success and returns itself.
    #[track_caller]
    pub fn ok(self) -> Run {
        assert_eq!(self.code, 0, "the command failed: {self:#?}");
        self
    }

    /// Stdout as JSON.
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:#?}"))
    }

    /// Stdout as JSON lines.
    #[track_caller]
    pub fn json_lines(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    /// The error document `--output json` prints on stderr.
    #[track_caller]
    pub fn error(&self) -> Value {
        let line = self.stderr.lines().last().unwrap_or_default();
        serde_json::from_str(line).unwrap_or_else(|e| panic!("stderr is not JSON ({e}): {self:#?}"))
    }
}

impl Cli {
    pub fn new(url: &str) -> Cli {
        let config_dir = std::env::temp_dir().join(format!(
            "agentidp-cli-{}-{}",
            std::process::id(),
            free_port()
        ));
        Cli {
            url: url.to_owned(),
            config_dir,
        }
    }

    fn command(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut command = Command::new(server_binary());
        for variable in CLI_VARIABLES {
            command.env_remove(variable);
        }
        command
            .args(args)
            .env("AGENTIDP_URL", &self.url)
            .env("AGENTIDP_CONFIG_DIR", &self.config_dir)
            .env("AGENTIDP_LOG", "warn");
        for (k, v) in env {
            command.env(k, v);
        }
        command
    }

    /// Runs `agentidp ARGS` with stdin empty.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, &[], None)
    }

    /// Runs `agentidp ARGS` with extra environment variables and, optionally, stdin.
    pub fn run_with(&self, args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Run {
        let mut child = self
            .command(args, env)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting agentidp");
        let mut input = child.stdin.take().expect("stdin");
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).expect("writing stdin");
        }
        drop(input);
        let output = child.wait_with_output().expect("running agentidp");
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

impl Drop for Cli {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.config_dir);
    }
}
