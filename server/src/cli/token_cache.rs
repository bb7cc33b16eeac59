//! A profile's access token kept between commands (mode 0600, next to the profiles) until shortly
//! before it expires, so a sequence of commands makes one token request instead of one each (and
//! the organization's audit trail is not filled with the CLI's own `token.issued`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use agentidp_client::ClientCredentials;
use serde::{Deserialize, Serialize};

use super::profiles::{create_private_dir, private_file};

/// A token this close to its expiry is not reused: a command may take a while.
const MARGIN_SECONDS: i64 = 60;

#[derive(Serialize, Deserialize)]
struct Cached {
    url: String,
    client_id: String,
    /// SHA-256 of the secret: another secret for the same client id (a rotation) is another
    /// cache entry, and the file never holds the secret itself.
    secret_sha256: String,
    access_token: String,
    expires_at: i64,
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn fingerprint(secret: &str) -> String {
    agentidp_shared::domain::secrets::hash_secret(secret)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn path(dir: &Path, profile: &str) -> PathBuf {
    // Profile names are the user's; keep the file name to safe characters.
    let safe: String = profile
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    dir.join("tokens").join(format!("{safe}.json"))
}

/// The cached token for these credentials at `url`, if it is still good for a while.
pub fn get(
    dir: &Path,
    profile: &str,
    url: &str,
    credentials: &ClientCredentials,
) -> Option<String> {
    let text = std::fs::read_to_string(path(dir, profile)).ok()?;
    let cached: Cached = serde_json::from_str(&text).ok()?;
    (cached.url == url
        && cached.client_id == credentials.client_id
        && cached.secret_sha256 == fingerprint(&credentials.client_secret)
        && cached.expires_at - MARGIN_SECONDS > now())
    .then_some(cached.access_token)
}

/// Keeps a fresh token; failing to write only costs the next command a token request.
pub fn put(
    dir: &Path,
    profile: &str,
    url: &str,
    credentials: &ClientCredentials,
    access_token: &str,
    expires_in: i64,
) {
    let cached = Cached {
        url: url.to_owned(),
        client_id: credentials.client_id.clone(),
        secret_sha256: fingerprint(&credentials.client_secret),
        access_token: access_token.to_owned(),
        expires_at: now() + expires_in,
    };
    let target = path(dir, profile);
    let Some(parent) = target.parent() else {
        return;
    };
    let temporary = parent.join(format!(".token.{}", std::process::id()));
    let written = (|| -> std::io::Result<()> {
        create_private_dir(parent)?;
        let mut file = private_file(&temporary)?;
        file.write_all(serde_json::to_string(&cached)?.as_bytes())?;
        std::fs::rename(&temporary, &target)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
}

/// Forgets the profile's token (after the server refused it, or at logout).
pub fn forget(dir: &Path, profile: &str) {
    let _ = std::fs::remove_file(path(dir, profile));
}
