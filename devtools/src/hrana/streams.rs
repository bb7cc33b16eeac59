//! Hrana-over-HTTP streams that outlive a request: each on its own connection and thread, found
//! again by an unguessable baton, closed after an idle timeout, and bounded in number.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;

use super::session::Session;

/// A stream nobody used for this long is closed (its open transaction rolled back), as `sqld`
/// does: a client that vanishes without closing must not hold a write lock for ever.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// Expired streams are remembered this long, so a late request hears "expired", not "invalid".
const EXPIRED_REMEMBERED: Duration = Duration::from_secs(300);

/// Each open stream is a thread and a SQLite connection; beyond this many, new streams are refused
/// rather than exhausting the machine.
pub const MAX_STREAMS: usize = 128;

/// Why a request cannot have its stream.
#[derive(Debug, PartialEq)]
pub enum AcquireError {
    BatonInvalid,
    BatonReused,
    Expired,
    TooMany,
    Open(String),
}

type Job = Box<dyn FnOnce(&mut Session) + Send>;

/// The thread that owns a stream's session; the stream closes when the last sender is dropped.
#[derive(Clone)]
struct Worker {
    jobs: mpsc::Sender<Job>,
}

impl Worker {
    fn spawn(mut session: Session) -> Result<Worker, String> {
        let (jobs, inbox) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("hrana-stream".into())
            .spawn(move || {
                for job in inbox {
                    job(&mut session);
                }
            })
            .map_err(|e| format!("cannot start a stream thread: {e}"))?;
        Ok(Worker { jobs })
    }
}

enum Slot {
    /// Waiting for the request that presents `baton`.
    Idle {
        worker: Worker,
        baton: String,
        since: Instant,
    },
    /// A request is running on it; a second request with the same baton is refused.
    Busy,
}

#[derive(Default)]
struct Table {
    open: HashMap<u64, Slot>,
    expired: HashMap<u64, Instant>,
}

pub struct Streams {
    database: PathBuf,
    table: Mutex<Table>,
}

impl Streams {
    pub fn new(database: PathBuf) -> Streams {
        Streams {
            database,
            table: Mutex::new(Table::default()),
        }
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        // A panic while holding the lock leaves the table consistent (every update is one call).
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The stream a baton names, or a new one (on a new connection) for a request without baton.
    pub fn acquire(self: &Arc<Self>, baton: Option<&str>) -> Result<Lease, AcquireError> {
        let Some(baton) = baton else {
            return self.open_stream();
        };
        let id = stream_id(baton).ok_or(AcquireError::BatonInvalid)?;
        let mut table = self.table();
        if table.expired.contains_key(&id) {
            return Err(AcquireError::Expired);
        }
        let slot = table.open.get_mut(&id).ok_or(AcquireError::BatonInvalid)?;
        match slot {
            Slot::Idle { baton: current, .. } if current.as_str() == baton => {}
            _ => return Err(AcquireError::BatonReused),
        }
        let Slot::Idle { worker, .. } = std::mem::replace(slot, Slot::Busy) else {
            unreachable!("checked just above");
        };
        Ok(Lease {
            streams: self.clone(),
            id,
            worker,
            released: false,
        })
    }

    fn open_stream(self: &Arc<Self>) -> Result<Lease, AcquireError> {
        if self.table().open.len() >= MAX_STREAMS {
            return Err(AcquireError::TooMany);
        }
        let session = Session::open(&self.database).map_err(AcquireError::Open)?;
        let worker = Worker::spawn(session).map_err(AcquireError::Open)?;
        let mut table = self.table();
        let id = loop {
            let id = u64::from_be_bytes(random());
            if !table.open.contains_key(&id) && !table.expired.contains_key(&id) {
                break id;
            }
        };
        table.open.insert(id, Slot::Busy);
        Ok(Lease {
            streams: self.clone(),
            id,
            worker,
            released: false,
        })
    }

    /// Closes streams idle past the timeout and forgets long-expired ones.
    pub fn expire_idle(&self, now: Instant) {
        let mut table = self.table();
        let stale: Vec<u64> = table
            .open
            .iter()
            .filter_map(|(id, slot)| match slot {
                Slot::Idle { since, .. } if now.duration_since(*since) >= IDLE_TIMEOUT => Some(*id),
                _ => None,
            })
            .collect();
        for id in stale {
            table.open.remove(&id);
            table.expired.insert(id, now);
            tracing::debug!(stream = id, "hrana stream expired");
        }
        table
            .expired
            .retain(|_, at| now.duration_since(*at) < EXPIRED_REMEMBERED);
    }

    #[cfg(test)]
    pub fn open_count(&self) -> usize {
        self.table().open.len()
    }
}

/// A stream held by one request. Released with a fresh baton, or closed (also when the request
/// is abandoned midway, e.g. by a client disconnect).
pub struct Lease {
    streams: Arc<Streams>,
    id: u64,
    worker: Worker,
    released: bool,
}

impl Lease {
    /// Runs `job` on the stream's thread and waits for it; `None` if that thread has died.
    pub async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Session) -> T + Send + 'static,
    ) -> Option<T> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |session| {
            let _ = reply.send(job(session));
        });
        self.worker.jobs.send(job).ok()?;
        answer.await.ok()
    }

    /// Keeps the stream for the next request and returns its new baton, or closes it (`None`).
    pub fn release(mut self, keep: bool) -> Option<String> {
        self.released = true;
        let mut table = self.streams.table();
        if !keep {
            table.open.remove(&self.id);
            return None;
        }
        let baton = new_baton(self.id);
        table.open.insert(
            self.id,
            Slot::Idle {
                worker: self.worker.clone(),
                baton: baton.clone(),
                since: Instant::now(),
            },
        );
        Some(baton)
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if !self.released {
            self.streams.table().open.remove(&self.id);
        }
    }
}

fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0; N];
    getrandom::fill(&mut bytes).expect("the operating system's random source failed");
    bytes
}

/// The stream id and 128 random bits: each response's baton differs, and none can be guessed.
fn new_baton(id: u64) -> String {
    let mut bytes = [0u8; 24];
    bytes[..8].copy_from_slice(&id.to_be_bytes());
    bytes[8..].copy_from_slice(&random::<16>());
    STANDARD_NO_PAD.encode(bytes)
}

fn stream_id(baton: &str) -> Option<u64> {
    let bytes = STANDARD_NO_PAD.decode(baton).ok()?;
    let id: [u8; 8] = bytes.get(..8)?.try_into().ok()?;
    (bytes.len() == 24).then_some(u64::from_be_bytes(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn streams() -> Arc<Streams> {
        let dir =
            std::env::temp_dir().join(format!("hrana-streams-{}", u64::from_be_bytes(random())));
        std::fs::create_dir_all(&dir).unwrap();
        Arc::new(Streams::new(dir.join("db")))
    }

    #[test]
    fn a_baton_is_good_for_exactly_one_request() {
        let streams = streams();
        let first = streams.acquire(None).unwrap();
        let baton = first.release(true).unwrap();
        let second = streams.acquire(Some(&baton)).unwrap();
        assert_eq!(
            streams.acquire(Some(&baton)).err(),
            Some(AcquireError::BatonReused)
        );
        let next = second.release(true).unwrap();
        assert_ne!(next, baton);
        assert_eq!(
            streams.acquire(Some(&baton)).err(),
            Some(AcquireError::BatonReused)
        );
        assert_eq!(
            streams.acquire(Some("not a baton")).err(),
            Some(AcquireError::BatonInvalid)
        );
        streams.acquire(Some(&next)).unwrap().release(false);
        assert_eq!(streams.open_count(), 0);
    }

    #[test]
    fn idle_streams_expire_and_say_so() {
        let streams = streams();
        let baton = streams.acquire(None).unwrap().release(true).unwrap();
        streams.expire_idle(Instant::now() + IDLE_TIMEOUT);
        assert_eq!(streams.open_count(), 0);
        assert_eq!(
            streams.acquire(Some(&baton)).err(),
            Some(AcquireError::Expired)
        );
    }

    #[test]
    fn an_abandoned_request_closes_its_stream() {
        let streams = streams();
        drop(streams.acquire(None).unwrap());
        assert_eq!(streams.open_count(), 0);
    }
}
