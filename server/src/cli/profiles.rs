//! Saved profiles: a deployment's URL and a client's credentials per name, in one TOML file in the
//! platform's config directory, readable by its owner only (0600, in a 0700 directory).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::exit::CliError;

const FILE: &str = "profiles.toml";

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct Profile {
    pub url: String,
    pub client_id: String,
    pub client_secret: String,
}

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct Profiles {
    #[serde(default)]
    profiles: BTreeMap<String, Profile>,
}

/// `~/.config/agentidp` on Linux (`$XDG_CONFIG_HOME`), the platform's equivalent elsewhere.
pub fn default_dir() -> Option<PathBuf> {
    dirs::config_dir().map(|d| d.join("agentidp"))
}

pub fn path(dir: &Path) -> PathBuf {
    dir.join(FILE)
}

impl Profiles {
    /// The saved profiles; none when the file does not exist yet.
    pub fn load(dir: &Path) -> Result<Profiles, CliError> {
        let path = path(dir);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Profiles::default()),
            Err(e) => {
                return Err(CliError::failure(format!(
                    "cannot read {}: {e}",
                    path.display()
                )))
            }
        };
        warn_if_readable_by_others(&path);
        toml::from_str(&text)
            .map_err(|e| CliError::failure(format!("{} is malformed: {e}", path.display())))
    }

    /// The profile names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.profiles.keys().cloned().collect()
    }

    pub fn get(&self, name: &str) -> Option<&Profile> {
        self.profiles.get(name)
    }

    pub fn set(&mut self, name: &str, profile: Profile) {
        self.profiles.insert(name.to_owned(), profile);
    }

    pub fn remove(&mut self, name: &str) -> bool {
        self.profiles.remove(name).is_some()
    }

    /// Writes the file atomically (a temporary file in the same directory, renamed), created with
    /// mode 0600 so the secret is never readable by anyone else, not even for a moment.
    pub fn save(&self, dir: &Path) -> Result<PathBuf, CliError> {
        let fail = |what: &str, e: std::io::Error| {
            CliError::failure(format!("cannot {what} in {}: {e}", dir.display()))
        };
        create_private_dir(dir).map_err(|e| fail("create the config directory", e))?;
        let text = toml::to_string(self)
            .map_err(|e| CliError::failure(format!("cannot encode the profiles: {e}")))?;
        let target = path(dir);
        let temporary = dir.join(format!(".{FILE}.{}", std::process::id()));
        let written = (|| {
            let mut file = private_file(&temporary)?;
            file.write_all(text.as_bytes())?;
            file.sync_all()?;
            std::fs::rename(&temporary, &target)
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&temporary);
            return Err(fail("write the profiles", e));
        }
        Ok(target)
    }
}

#[cfg(unix)]
pub(super) fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
pub(super) fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

#[cfg(unix)]
pub(super) fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
pub(super) fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

/// As ssh does for keys: say so when others could read the secrets.
#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            eprintln!(
                "agentidp: warning: {} is readable by others (mode {mode:o}); run `chmod 600 {}`",
                path.display(),
                path.display()
            );
        }
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_: &Path) {}
