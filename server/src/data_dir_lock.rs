//! One server per data directory: an exclusive advisory lock on `agentidp.lock`, held for the process's life and released by the OS when it exits or is killed.
//!
//! Two servers on one embedded database would each trust their own cached audit-chain heads and
//! key-value cache, so the second is refused instead. `agentidp keys rotate` does not take the
//! lock: it is a short-lived writer whose change the running server picks up on its own.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::Path;

const LOCK_FILE: &str = "agentidp.lock";

/// Holds the lock until dropped (or the process ends, however it ends).
pub struct DataDirLock {
    _file: File,
}

/// Takes the directory's lock, or explains who holds it.
pub fn lock(dir: &Path) -> Result<DataDirLock, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let path = dir.join(LOCK_FILE);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {
            // The holder's pid, for the message a second server prints; the lock is what counts.
            let _ = file.set_len(0);
            let _ = write!(file, "{}", std::process::id());
            let _ = file.flush();
            Ok(DataDirLock { _file: file })
        }
        Err(TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.rewind();
            let _ = file.read_to_string(&mut holder);
            let holder = match holder.trim() {
                "" => String::new(),
                pid => format!(" (pid {pid})"),
            };
            Err(format!(
                "data directory {} is in use by another agentidp server{holder}; stop it first \
                 or give this one another --data-dir",
                dir.display()
            ))
        }
        Err(TryLockError::Error(e)) => Err(format!("cannot lock {}: {e}", path.display())),
    }
}
