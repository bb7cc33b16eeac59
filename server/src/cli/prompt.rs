//! Reading what a command needs from its user: a line, a secret without echo, a confirmation, or
//! a value from stdin (`-`). Prompts go to the terminal, never to stdout.

use std::io::{BufRead, IsTerminal, Read, Write};

use super::exit::CliError;

pub fn stdin_is_terminal() -> bool {
    std::io::stdin().is_terminal()
}

fn read_stdin_line() -> Result<String, CliError> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| CliError::failure(format!("cannot read stdin: {e}")))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

/// A line typed at a prompt on stderr.
pub fn line(prompt: &str) -> Result<String, CliError> {
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    read_stdin_line()
}

/// A secret: typed without echo on a terminal, else the first line of stdin (for scripts).
pub fn secret(prompt: &str) -> Result<String, CliError> {
    if stdin_is_terminal() {
        rpassword::prompt_password(prompt)
            .map_err(|e| CliError::failure(format!("cannot read the secret: {e}")))
    } else {
        read_stdin_line()
    }
}

/// Yes only for an explicit `y` or `yes` at the terminal.
pub fn confirm(question: &str) -> Result<bool, CliError> {
    let answer = line(&format!("{question} [y/N] "))?;
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

/// `value`, or all of stdin (trimmed) when it is `-`.
pub fn value_or_stdin(value: &str) -> Result<String, CliError> {
    if value != "-" {
        return Ok(value.to_owned());
    }
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(|e| CliError::failure(format!("cannot read stdin: {e}")))?;
    Ok(text.trim().to_owned())
}
