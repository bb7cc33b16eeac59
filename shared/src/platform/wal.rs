//! Keeps the embedded database's write-ahead log bounded: background PASSIVE checkpoints, a RESTART by the writer itself past a hard bound, and TRUNCATE when idle and at shutdown.
//!
//! Why each piece: a PASSIVE checkpoint never blocks anyone, but under a steady stream of commits
//! the WAL is never fully copied back at the moment a new transaction starts, so SQLite never
//! rewinds it and it grows without end. The writer is the only process-wide writer, so between
//! two groups it can run a RESTART checkpoint without competing for the write lock: it copies
//! what the background checkpoints have not yet copied, waits for readers (whose statements run to
//! completion and so never pin an old snapshot for long) and makes the next commit rewind the log.
//! `journal_size_limit` then cuts the file back. When writes stop, a TRUNCATE empties the file.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Past this many bytes the writer pauses commits for one RESTART checkpoint. Under the 64 MiB
/// the log must stay within, with room for the group in flight when it is crossed.
pub const WRITER_CHECKPOINT_BYTES: u64 = 32 * 1024 * 1024;
/// What the log file is cut back to when SQLite rewinds it.
pub const JOURNAL_SIZE_LIMIT_BYTES: u64 = 8 * 1024 * 1024;
/// How often the background thread copies new frames back into the database file.
const PASSIVE_INTERVAL: Duration = Duration::from_millis(250);
/// Without a new frame for this long, the log is emptied.
const IDLE_BEFORE_TRUNCATE: Duration = Duration::from_secs(1);
/// The idle TRUNCATE waits at most this long for the write lock; a busy writer means not idle.
const TRUNCATE_BUSY_TIMEOUT_MS: u32 = 100;

/// The WAL file of the database at `db`.
pub fn wal_path(db: &Path) -> PathBuf {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    PathBuf::from(wal)
}

fn wal_bytes(wal: &Path) -> u64 {
    std::fs::metadata(wal).map(|m| m.len()).unwrap_or(0)
}

/// Pragmas every connection gets, so whichever connection rewinds the log also cuts it back.
pub fn pragmas() -> String {
    format!("PRAGMA journal_size_limit={JOURNAL_SIZE_LIMIT_BYTES};")
}

/// `(busy, frames in the log, frames copied back)`, as `PRAGMA wal_checkpoint` reports them.
pub async fn checkpoint(
    conn: &libsql::Connection,
    mode: &str,
) -> Result<(bool, i64, i64), libsql::Error> {
    let mut rows = conn
        .query(&format!("PRAGMA wal_checkpoint({mode})"), ())
        .await?;
    let Some(row) = rows.next().await? else {
        return Ok((false, 0, 0));
    };
    Ok((
        row.get::<i64>(0)? != 0,
        row.get::<i64>(1)?,
        row.get::<i64>(2)?,
    ))
}

/// The writer's side: called between groups, when no transaction is open.
pub struct WriterBound {
    wal: PathBuf,
}

impl WriterBound {
    pub fn new(db: &Path) -> Self {
        WriterBound { wal: wal_path(db) }
    }

    /// One RESTART checkpoint when the log is past the bound; commits wait meanwhile, which is
    /// better than an unbounded file.
    pub async fn after_group(&self, conn: &libsql::Connection) {
        if wal_bytes(&self.wal) <= WRITER_CHECKPOINT_BYTES {
            return;
        }
        let started = Instant::now();
        match checkpoint(conn, "RESTART").await {
            Ok((busy, log, copied)) => tracing::debug!(
                busy,
                log,
                copied,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "WAL past its bound: RESTART checkpoint by the writer"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "WAL RESTART checkpoint failed; retrying after the next group")
            }
        }
    }
}

/// The background thread's loop: PASSIVE while frames arrive, one TRUNCATE once they stop. The
/// database closing (process exit) is the only way out; errors are retried next round.
pub fn run_checkpoints(conn: libsql::Connection) {
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread().build() else {
        tracing::error!("database checkpoint thread could not start");
        return;
    };
    if let Err(e) = runtime
        .block_on(conn.execute_batch(&format!("PRAGMA busy_timeout={TRUNCATE_BUSY_TIMEOUT_MS};")))
    {
        tracing::warn!(error = %e, "setting the checkpoint connection's busy timeout failed");
    }
    let mut last_log = 0;
    let mut last_change = Instant::now();
    loop {
        std::thread::sleep(PASSIVE_INTERVAL);
        let log = match runtime.block_on(checkpoint(&conn, "PASSIVE")) {
            Ok((_, log, _)) => log,
            Err(e) => {
                tracing::warn!(error = %e, "WAL checkpoint failed; retrying");
                continue;
            }
        };
        if log != last_log {
            last_log = log;
            last_change = Instant::now();
            continue;
        }
        if log > 0 && last_change.elapsed() >= IDLE_BEFORE_TRUNCATE {
            match runtime.block_on(checkpoint(&conn, "TRUNCATE")) {
                Ok((false, _, _)) => last_log = 0,
                // The writer came back meanwhile: not idle after all.
                Ok((true, _, _)) => last_change = Instant::now(),
                Err(e) => tracing::warn!(error = %e, "WAL TRUNCATE checkpoint failed; retrying"),
            }
        }
    }
}
