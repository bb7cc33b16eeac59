//! Errors of the command line and their documented exit codes: each server answer is classed by
//! its status (and OAuth error), and shown with the server's problem title, detail and code.

use std::process::ExitCode;

use agentidp_client::Error as ClientError;
use serde_json::{json, Value};

use super::defs::OutputFormat;

/// The documented exit codes (`defs::EXIT_CODES`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    Failure = 1,
    Usage = 2,
    Authentication = 3,
    NotFound = 4,
    Conflict = 5,
    RateLimited = 6,
    Server = 7,
}

impl Class {
    /// How an error answer is classed: by OAuth error where there is one, else by status.
    pub fn of_answer(status: u16, oauth_error: Option<&str>) -> Class {
        if let Some("invalid_client" | "invalid_grant" | "unauthorized_client" | "invalid_scope") =
            oauth_error
        {
            return Class::Authentication;
        }
        match status {
            401 | 403 => Class::Authentication,
            404 => Class::NotFound,
            409 | 410 | 412 => Class::Conflict,
            429 => Class::RateLimited,
            500..=599 => Class::Server,
            400..=499 => Class::Usage,
            _ => Class::Failure,
        }
    }
}

/// Why a command failed: a message, and the server's error document when it answered with one.
#[derive(Debug)]
pub struct CliError {
    pub class: Class,
    pub message: String,
    pub document: Option<Value>,
}

impl CliError {
    fn new(class: Class, message: impl Into<String>) -> CliError {
        CliError {
            class,
            message: message.into(),
            document: None,
        }
    }

    pub fn failure(message: impl Into<String>) -> CliError {
        CliError::new(Class::Failure, message)
    }

    pub fn usage(message: impl Into<String>) -> CliError {
        CliError::new(Class::Usage, message)
    }

    pub fn authentication(message: impl Into<String>) -> CliError {
        CliError::new(Class::Authentication, message)
    }

    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.class as u8)
    }

    /// On stderr: one line for people, or with `--output json` the server's document as is (or
    /// `{"error": …}` when there is none), so scripts can read `code`.
    pub fn report(&self, output: OutputFormat) {
        match output {
            OutputFormat::Json => {
                let document = self.document.clone().unwrap_or_else(
                    || json!({ "error": self.message, "exit_code": self.class as u8 }),
                );
                eprintln!("{document}");
            }
            OutputFormat::Table => eprintln!("agentidp: {}", self.message),
        }
    }
}

impl From<ClientError> for CliError {
    fn from(e: ClientError) -> CliError {
        match &e {
            ClientError::Api(answer) => {
                let class = Class::of_answer(
                    answer.status,
                    answer.oauth.as_ref().map(|o| o.error.as_str()),
                );
                let mut message = answer.to_string();
                // The next step in the command line's terms, not the API's.
                message = in_cli_terms(&message);
                match (
                    answer.status,
                    answer.oauth.as_ref().map(|o| o.error.as_str()),
                ) {
                    (_, Some("invalid_client")) => message.push_str(
                        "; check the client id and secret (`agentidp login --url URL` saves them)",
                    ),
                    (401, None) => message.push_str("; run `agentidp login --url URL` again"),
                    _ => {}
                }
                if let Some(seconds) = answer.retry_after {
                    message.push_str(&format!("; retry in {seconds} s"));
                }
                let document = answer
                    .problem
                    .as_ref()
                    .and_then(|p| serde_json::to_value(p).ok())
                    .or_else(|| {
                        answer
                            .oauth
                            .as_ref()
                            .and_then(|o| serde_json::to_value(o).ok())
                    })
                    .map(|mut d| {
                        d["status"] = answer.status.into();
                        if let Some(detail) = d["detail"].as_str() {
                            d["detail"] = in_cli_terms(detail).into();
                        }
                        d
                    });
                CliError {
                    class,
                    message,
                    document,
                }
            }
            ClientError::Transport { .. } => CliError::new(
                Class::Server,
                format!(
                    "{e}; is the deployment up? Start the local one with `agentidp serve`, or \
                     check --url (or the profile's URL: `agentidp profiles list`)"
                ),
            ),
            ClientError::Decode { .. } => CliError::new(Class::Server, e.to_string()),
            ClientError::InvalidUrl(_) => CliError::usage(e.to_string()),
        }
    }
}

/// An API error's advice, said as the command line's flag rather than a JSON field.
fn in_cli_terms(text: &str) -> String {
    text.replace(
        "send \"allow_management_scopes\": true",
        "add --allow-management-scopes",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_classed_as_documented() {
        assert_eq!(Class::of_answer(400, None), Class::Usage);
        assert_eq!(
            Class::of_answer(401, Some("invalid_client")),
            Class::Authentication
        );
        assert_eq!(
            Class::of_answer(400, Some("invalid_scope")),
            Class::Authentication
        );
        assert_eq!(Class::of_answer(400, Some("invalid_request")), Class::Usage);
        assert_eq!(Class::of_answer(403, None), Class::Authentication);
        assert_eq!(Class::of_answer(404, None), Class::NotFound);
        assert_eq!(Class::of_answer(409, None), Class::Conflict);
        assert_eq!(
            Class::of_answer(429, Some("temporarily_unavailable")),
            Class::RateLimited
        );
        assert_eq!(
            Class::of_answer(503, Some("temporarily_unavailable")),
            Class::Server
        );
        assert_eq!(Class::of_answer(429, None), Class::RateLimited);
        assert_eq!(Class::of_answer(503, None), Class::Server);
    }
}
