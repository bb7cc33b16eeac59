//! Reading an organization's audit trail: filtered listing, whole-chain verification, and NDJSON
//! export a chunk at a time.

use crate::domain::audit::{
    check_link, time_range, AuditEvent, BrokenLink, BrokenReason, ChainHead, EventFilter,
    EventsQuery, ExportQuery, Outcome, Verification,
};
use crate::domain::caller::OrgId;
use crate::domain::page::{Keyset, Page, PageRequest};
use crate::domain::validate::{optional_text, Invalid};
use crate::ports::sql::{Database, DbError};
use crate::services::ServiceError;
use crate::store::audit_trail as store;

/// Events read per query while verifying: bounds memory whatever the length of the chain.
pub const VERIFY_PAGE: i64 = 1000;
/// Events read per query while exporting.
pub const EXPORT_PAGE: i64 = 1000;
/// Most events one export response carries; clients continue with `after_seq`.
pub const EXPORT_MAX_EVENTS: i64 = 100_000;
/// Longest accepted text filter; identifiers and action names are far shorter.
const MAX_FILTER_CHARS: usize = 200;

/// `GET /v1/audit/events`: the organization's events matching `query`, newest first.
pub async fn list_events(
    db: &dyn Database,
    org_id: &OrgId,
    query: EventsQuery,
) -> Result<Page<AuditEvent>, ServiceError> {
    let page = PageRequest::parse(query.limit, query.cursor.as_deref())?;
    let (from, to) = time_range(query.from.as_deref(), query.to.as_deref())?;
    let filter = EventFilter {
        agent_id: optional_text("agent_id", query.agent_id, MAX_FILTER_CHARS)?,
        action: optional_text("action", query.action, MAX_FILTER_CHARS)?,
        outcome: query.outcome.map(Outcome::from),
        from,
        to,
    };
    let before_seq = page.after.as_ref().map(|k| k.position);
    let events =
        store::newest_first(db, org_id.as_str(), &filter, before_seq, page.fetch()).await?;
    let page = Page::from_rows(events, &page, |e| Keyset {
        position: e.seq,
        id: e.id.clone(),
    });
    Ok(page.map(AuditEvent::from))
}

/// `GET /v1/audit/verify`: recomputes the organization's whole chain from the genesis hash (or,
/// once retention removed events, from the first remaining one) and reports the first link that
/// does not hold.
///
/// The chain alone cannot reveal events removed from its end; compare `head` with a value recorded
/// earlier for that.
pub async fn verify_chain(db: &dyn Database, org_id: &OrgId) -> Result<Verification, DbError> {
    let mut previous = ChainHead::genesis();
    // Behind what retention removed, the chain starts at the first remaining event's link; that
    // link is proved by the Merkle tree (its inclusion in a checkpoint), not by the chain.
    let removed = crate::store::audit_tree::removed_through(db, org_id.as_str()).await?;
    if removed > 0 {
        if let Some(Ok(first)) = store::chain_after(db, org_id.as_str(), removed, 1)
            .await?
            .into_iter()
            .next()
        {
            previous = ChainHead {
                seq: removed,
                hash: first.prev_hash,
            };
        }
    }
    let mut checked: u64 = 0;
    loop {
        // Keyset paging on `seq` is consistent while events are appended: they only ever land
        // after the current head.
        let links = store::chain_after(db, org_id.as_str(), previous.seq, VERIFY_PAGE).await?;
        let read = links.len() as i64;
        for link in links {
            checked += 1;
            let broken = match link {
                Err(malformed) => Some(BrokenLink {
                    seq: malformed.seq,
                    id: malformed.id,
                    reason: BrokenReason::MalformedRow,
                }),
                Ok(event) => match check_link(&previous, &event) {
                    Ok(()) => {
                        previous = event.head();
                        None
                    }
                    Err(reason) => Some(BrokenLink {
                        seq: Some(event.seq),
                        id: Some(event.id),
                        reason,
                    }),
                },
            };
            if let Some(first_broken) = broken {
                return Ok(Verification::Broken {
                    events_checked: checked,
                    first_broken,
                });
            }
        }
        if read < VERIFY_PAGE {
            break;
        }
    }
    Ok(Verification::Valid {
        events_checked: checked,
        head: (previous.seq > 0).then_some(previous),
    })
}

/// An export in progress: pages through the organization's events oldest first, one query per
/// chunk, so a response streams without holding the whole trail in memory.
#[derive(Clone, Debug)]
pub struct Export {
    org_id: OrgId,
    filter: EventFilter,
    after_seq: i64,
    remaining: i64,
}

impl Export {
    /// Validates `GET /v1/audit/export` parameters for the caller's organization.
    pub fn new(org_id: &OrgId, query: ExportQuery) -> Result<Self, Invalid> {
        let (from, to) = time_range(query.from.as_deref(), query.to.as_deref())?;
        let after_seq = match query.after_seq {
            None => 0,
            Some(n) if n >= 0 => n,
            Some(_) => return Err(Invalid::new("after_seq", "must not be negative")),
        };
        Ok(Export {
            org_id: org_id.clone(),
            filter: EventFilter {
                from,
                to,
                ..EventFilter::default()
            },
            after_seq,
            remaining: EXPORT_MAX_EVENTS,
        })
    }

    /// The next chunk of NDJSON (one event per line), or `None` when the export is complete.
    pub async fn next_chunk(&mut self, db: &dyn Database) -> Result<Option<String>, DbError> {
        if self.remaining <= 0 {
            return Ok(None);
        }
        let page = EXPORT_PAGE.min(self.remaining);
        let events =
            store::oldest_first(db, self.org_id.as_str(), &self.filter, self.after_seq, page)
                .await?;
        let Some(last) = events.last() else {
            self.remaining = 0;
            return Ok(None);
        };
        self.after_seq = last.seq;
        self.remaining = if (events.len() as i64) < page {
            0
        } else {
            self.remaining - events.len() as i64
        };
        let mut chunk = String::with_capacity(events.len() * 512);
        for event in events {
            let line = serde_json::to_string(&AuditEvent::from(event))
                .map_err(|e| DbError::Decode(format!("encoding an audit event: {e}")))?;
            chunk.push_str(&line);
            chunk.push('\n');
        }
        Ok(Some(chunk))
    }
}
