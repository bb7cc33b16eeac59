//! The native server's key-encryption key: `AGENTIDP_KEY_ENCRYPTION_KEY`, or else a key file in
//! the data directory, made (mode 0600) on the first start of a database that holds nothing sealed.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use agentidp_shared::config::KEY_ENCRYPTION_KEY;
use agentidp_shared::domain::sealed::{Kek, Keks};
use agentidp_shared::ports::runtime::{random_bytes, Entropy};
use agentidp_shared::ports::sql::Database;
use agentidp_shared::services::sealing;

/// The key file's name in the data directory.
pub const KEY_FILE: &str = "key-encryption-key";

/// The key-encryption keys of this deployment, checked against what the database holds sealed.
pub async fn load(
    configured: Option<String>,
    dir: &Path,
    db: &dyn Database,
    entropy: &dyn Entropy,
) -> Result<Keks, String> {
    let name = KEY_ENCRYPTION_KEY.name;
    let kek = match configured {
        Some(text) => Kek::parse(&text).map_err(|reason| format!("{name} {reason}"))?,
        None => {
            let path = dir.join(KEY_FILE);
            match std::fs::read_to_string(&path) {
                Ok(text) => {
                    Kek::parse(&text).map_err(|reason| format!("{}: {reason}", path.display()))?
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    let sealed = sealing::holds_sealed(db)
                        .await
                        .map_err(|e| format!("reading the sealed secrets: {e}"))?;
                    if sealed {
                        return Err(format!(
                            "the database holds sealed secrets, but {name} is not set and {} does \
                             not exist: set {name} to the key the database was sealed with (or \
                             restore that file)",
                            path.display()
                        ));
                    }
                    create(&path, entropy)?
                }
                Err(e) => return Err(format!("reading {}: {e}", path.display())),
            }
        }
    };
    let keks = Keks::new(kek, Vec::new());
    sealing::check_keys(db, &keks).await?;
    Ok(keks)
}

fn create(path: &Path, entropy: &dyn Entropy) -> Result<Kek, String> {
    // With a remote database the data directory holds nothing else, and may not exist yet.
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }
    let random = random_bytes::<32>(entropy);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("creating {}: {e}", path.display()))?;
    file.write_all(format!("{}\n", Kek::encode(&random)).as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("writing {}: {e}", path.display()))?;
    tracing::info!(
        path = %path.display(),
        "created the key-encryption key that seals the stored signing keys and webhook secrets; back it up apart from the database (or set {} instead)",
        KEY_ENCRYPTION_KEY.name
    );
    Ok(Kek::from_bytes(&random))
}
