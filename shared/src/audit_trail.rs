//! Reading the audit chain: organization-scoped queries, whole-chain verification and NDJSON export.

use serde::{Deserialize, Serialize};

use crate::audit::{ChainHead, Outcome, SealedEvent, EVENT_COLUMNS};
use crate::error::ApiError;
use crate::http::{decode_cursor, encode_cursor, optional_text, page_limit, Page};
use crate::runtime::{parse_rfc3339, rfc3339};
use crate::sql::{Database, DbError, Row, Statement, Value};

/// Events read per query while verifying: bounds memory whatever the length of the chain.
pub const VERIFY_PAGE: i64 = 1000;
/// Events read per query while exporting.
pub const EXPORT_PAGE: i64 = 1000;
/// Most events one export response carries; clients continue with `after_seq`.
pub const EXPORT_MAX_EVENTS: i64 = 100_000;
/// Longest accepted text filter; identifiers and action names are far shorter.
const MAX_FILTER_CHARS: usize = 200;

/// `outcome` as a query parameter; unknown values are refused by name.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeParam {
    Success,
    Failure,
}

impl From<OutcomeParam> for Outcome {
    fn from(o: OutcomeParam) -> Self {
        match o {
            OutcomeParam::Success => Outcome::Success,
            OutcomeParam::Failure => Outcome::Failure,
        }
    }
}

/// Query parameters of `GET /v1/audit/events`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    pub agent_id: Option<String>,
    pub action: Option<String>,
    pub outcome: Option<OutcomeParam>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// Query parameters of `GET /v1/audit/export`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    pub from: Option<String>,
    pub to: Option<String>,
    /// Resume after this sequence number (the last `seq` of a previous, full export).
    pub after_seq: Option<i64>,
}

/// Which events of an organization a query selects; `from` is inclusive, `to` exclusive.
#[derive(Clone, Debug, Default)]
pub struct EventFilter {
    pub agent_id: Option<String>,
    pub action: Option<String>,
    pub outcome: Option<Outcome>,
    pub from: Option<i64>,
    pub to: Option<i64>,
}

fn timestamp(field: &str, value: Option<&str>) -> Result<Option<i64>, ApiError> {
    value
        .map(|text| {
            parse_rfc3339(text).ok_or_else(|| {
                ApiError::invalid_field(
                    field,
                    "must be an RFC 3339 timestamp, e.g. 2025-01-31T12:00:00Z",
                )
            })
        })
        .transpose()
}

/// Parses the `from`/`to` pair, refusing an empty-by-construction range.
fn time_range(
    from: Option<&str>,
    to: Option<&str>,
) -> Result<(Option<i64>, Option<i64>), ApiError> {
    let from = timestamp("from", from)?;
    let to = timestamp("to", to)?;
    if let (Some(f), Some(t)) = (from, to) {
        if f > t {
            return Err(ApiError::invalid_field(
                "to",
                "must not be earlier than `from`",
            ));
        }
    }
    Ok((from, to))
}

/// Builds `WHERE` clauses with numbered parameters, so optional filters stay index-friendly
/// instead of `(?n IS NULL OR column = ?n)` patterns the planner cannot use.
struct Query {
    sql: String,
    params: Vec<Value>,
}

impl Query {
    fn new(select: &str, org_id: &str) -> Self {
        Query {
            sql: format!("{select} WHERE org_id = ?1"),
            params: vec![Value::from(org_id)],
        }
    }

    /// Appends `AND <column> <op> ?n` bound to `value`.
    fn and(&mut self, column: &str, op: &str, value: impl Into<Value>) {
        self.params.push(value.into());
        self.sql
            .push_str(&format!(" AND {column} {op} ?{}", self.params.len()));
    }

    fn filter(&mut self, filter: &EventFilter) {
        if let Some(agent_id) = &filter.agent_id {
            self.and("agent_id", "=", agent_id);
        }
        if let Some(action) = &filter.action {
            self.and("action", "=", action);
        }
        if let Some(outcome) = filter.outcome {
            self.and("outcome", "=", outcome.as_str());
        }
        if let Some(from) = filter.from {
            self.and("occurred_at", ">=", from);
        }
        if let Some(to) = filter.to {
            self.and("occurred_at", "<", to);
        }
    }

    fn finish(mut self, order: &str, limit: i64) -> Statement {
        self.params.push(Value::Integer(limit));
        self.sql.push_str(&format!(
            " ORDER BY seq {order} LIMIT ?{}",
            self.params.len()
        ));
        let mut statement = Statement::new(self.sql);
        statement.params = self.params;
        statement
    }
}

fn select_events() -> String {
    format!("SELECT {EVENT_COLUMNS} FROM audit_events")
}

/// An audit event as the API shows it.
#[derive(Clone, Debug, Serialize)]
pub struct AuditEvent {
    pub id: String,
    pub org_id: String,
    pub seq: i64,
    pub occurred_at: String,
    pub actor: String,
    pub action: String,
    pub agent_id: Option<String>,
    pub target: Option<String>,
    pub outcome: String,
    pub details: serde_json::Value,
    pub prev_hash: String,
    pub hash: String,
}

impl From<SealedEvent> for AuditEvent {
    fn from(e: SealedEvent) -> Self {
        // Details are written as JSON; should a row ever hold anything else (it can only be edited
        // around the append-only triggers), show the raw text rather than fail the whole listing.
        let details = serde_json::from_str(&e.details)
            .unwrap_or_else(|_| serde_json::Value::String(e.details.clone()));
        AuditEvent {
            id: e.id,
            org_id: e.org_id,
            seq: e.seq,
            occurred_at: rfc3339(e.occurred_at),
            actor: e.actor,
            action: e.action,
            agent_id: e.agent_id,
            target: e.target,
            outcome: e.outcome,
            details,
            prev_hash: e.prev_hash,
            hash: e.hash,
        }
    }
}

fn events_from(rows: &[Row]) -> Result<Vec<AuditEvent>, DbError> {
    rows.iter()
        .map(|row| SealedEvent::from_row(row).map(AuditEvent::from))
        .collect()
}

/// `GET /v1/audit/events`: the organization's events matching `query`, newest first.
pub async fn list_events(
    db: &dyn Database,
    org_id: &str,
    query: EventsQuery,
) -> Result<Page<AuditEvent>, ApiError> {
    let limit = page_limit(query.limit)?;
    let (from, to) = time_range(query.from.as_deref(), query.to.as_deref())?;
    let filter = EventFilter {
        agent_id: optional_text("agent_id", query.agent_id, MAX_FILTER_CHARS)?,
        action: optional_text("action", query.action, MAX_FILTER_CHARS)?,
        outcome: query.outcome.map(Outcome::from),
        from,
        to,
    };
    let before_seq = query
        .cursor
        .as_deref()
        .map(decode_cursor)
        .transpose()?
        .map(|(seq, _)| seq);

    let mut sql = Query::new(&select_events(), org_id);
    sql.filter(&filter);
    if let Some(seq) = before_seq {
        sql.and("seq", "<", seq);
    }
    // One extra row tells whether another page exists without a count query.
    let rows = db.query(sql.finish("DESC", limit + 1)).await?;
    let mut data = events_from(&rows)?;
    let next_cursor = if data.len() as i64 > limit {
        data.truncate(limit as usize);
        data.last().map(|e| encode_cursor(e.seq, &e.id))
    } else {
        None
    };
    Ok(Page { data, next_cursor })
}

/// Why verification stopped at an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BrokenReason {
    /// The event's `seq` is not one more than the previous event's: events were removed.
    SequenceGap,
    /// The event's `prev_hash` is not the previous event's `hash`.
    PrevHashMismatch,
    /// The event's stored fields do not hash to its `hash`: the event was altered.
    HashMismatch,
    /// The row cannot be read as an event at all (a column holds a value of the wrong type).
    MalformedRow,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BrokenLink {
    pub seq: Option<i64>,
    pub id: Option<String>,
    pub reason: BrokenReason,
}

/// The result of recomputing a chain. `events_checked` counts the events examined, including the
/// broken one when there is one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verification {
    /// Every link holds; `head` is the last event (`None` for an organization without events).
    Valid {
        events_checked: u64,
        head: Option<ChainHead>,
    },
    Broken {
        events_checked: u64,
        first_broken: BrokenLink,
    },
}

impl Serialize for Verification {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let body = match self {
            Verification::Valid {
                events_checked,
                head,
            } => serde_json::json!({
                "valid": true,
                "events_checked": events_checked,
                "head": head.as_ref().map(|h| serde_json::json!({ "seq": h.seq, "hash": h.hash })),
            }),
            Verification::Broken {
                events_checked,
                first_broken,
            } => serde_json::json!({
                "valid": false,
                "events_checked": events_checked,
                "first_broken": first_broken,
            }),
        };
        body.serialize(serializer)
    }
}

/// Checks one event against the link before it.
fn check_link(previous: &ChainHead, event: &SealedEvent) -> Result<(), BrokenReason> {
    if event.seq != previous.seq + 1 {
        return Err(BrokenReason::SequenceGap);
    }
    if event.prev_hash != previous.hash {
        return Err(BrokenReason::PrevHashMismatch);
    }
    if event.computed_hash() != event.hash {
        return Err(BrokenReason::HashMismatch);
    }
    Ok(())
}

/// `GET /v1/audit/verify`: recomputes the organization's whole chain from the genesis hash and
/// reports the first link that does not hold.
///
/// The chain alone cannot reveal events removed from its end; compare `head` with a value recorded
/// earlier for that.
pub async fn verify_chain(db: &dyn Database, org_id: &str) -> Result<Verification, DbError> {
    let mut previous = ChainHead::genesis();
    let mut checked: u64 = 0;
    loop {
        // Keyset paging on `seq` is consistent while events are appended: they only ever land
        // after the current head.
        let mut sql = Query::new(&select_events(), org_id);
        sql.and("seq", ">", previous.seq);
        let rows = db.query(sql.finish("ASC", VERIFY_PAGE)).await?;
        for row in &rows {
            checked += 1;
            let event = match SealedEvent::from_row(row) {
                Ok(event) => event,
                Err(_) => {
                    let link = BrokenLink {
                        seq: row.get("seq").ok(),
                        id: row.get("id").ok(),
                        reason: BrokenReason::MalformedRow,
                    };
                    return Ok(Verification::Broken {
                        events_checked: checked,
                        first_broken: link,
                    });
                }
            };
            if let Err(reason) = check_link(&previous, &event) {
                let link = BrokenLink {
                    seq: Some(event.seq),
                    id: Some(event.id),
                    reason,
                };
                return Ok(Verification::Broken {
                    events_checked: checked,
                    first_broken: link,
                });
            }
            previous = event.head();
        }
        if (rows.len() as i64) < VERIFY_PAGE {
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
    org_id: String,
    filter: EventFilter,
    after_seq: i64,
    remaining: i64,
}

impl Export {
    /// Validates `GET /v1/audit/export` parameters for the caller's organization.
    pub fn new(org_id: &str, query: ExportQuery) -> Result<Self, ApiError> {
        let (from, to) = time_range(query.from.as_deref(), query.to.as_deref())?;
        let after_seq = match query.after_seq {
            None => 0,
            Some(n) if n >= 0 => n,
            Some(_) => return Err(ApiError::invalid_field("after_seq", "must not be negative")),
        };
        Ok(Export {
            org_id: org_id.to_owned(),
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
        let mut sql = Query::new(&select_events(), &self.org_id);
        sql.filter(&self.filter);
        sql.and("seq", ">", self.after_seq);
        let page = EXPORT_PAGE.min(self.remaining);
        let rows = db.query(sql.finish("ASC", page)).await?;
        let events = events_from(&rows)?;
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
        for event in &events {
            let line = serde_json::to_string(event)
                .map_err(|e| DbError::Decode(format!("encoding an audit event: {e}")))?;
            chunk.push_str(&line);
            chunk.push('\n');
        }
        Ok(Some(chunk))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{seal, AuditDraft};

    fn chain(n: usize) -> Vec<SealedEvent> {
        let mut head = ChainHead::genesis();
        (0..n)
            .map(|i| {
                let draft = AuditDraft {
                    org_id: "org".into(),
                    id: format!("e{i}"),
                    occurred_at: 1_700_000_000_000 + i as i64,
                    actor: "admin".into(),
                    action: "agent.created",
                    agent_id: None,
                    target: None,
                    outcome: Outcome::Success,
                    details: serde_json::json!({ "i": i }),
                };
                let event = seal(&draft, &head);
                head = event.head();
                event
            })
            .collect()
    }

    fn first_break(events: &[SealedEvent]) -> Option<(i64, BrokenReason)> {
        let mut previous = ChainHead::genesis();
        for e in events {
            if let Err(reason) = check_link(&previous, e) {
                return Some((e.seq, reason));
            }
            previous = e.head();
        }
        None
    }

    #[test]
    fn an_untouched_chain_holds() {
        assert_eq!(first_break(&chain(5)), None);
    }

    #[test]
    fn an_edited_event_breaks_its_own_hash() {
        let mut events = chain(5);
        events[2].actor = "someone else".into();
        assert_eq!(first_break(&events), Some((3, BrokenReason::HashMismatch)));
    }

    #[test]
    fn a_rehashed_edit_breaks_the_next_link() {
        let mut events = chain(5);
        events[2].details = "{}".into();
        events[2].hash = events[2].computed_hash();
        assert_eq!(
            first_break(&events),
            Some((4, BrokenReason::PrevHashMismatch))
        );
    }

    #[test]
    fn a_removed_event_leaves_a_gap() {
        let mut events = chain(5);
        events.remove(0);
        assert_eq!(first_break(&events), Some((2, BrokenReason::SequenceGap)));
    }

    #[test]
    fn malformed_times_name_their_field() {
        let e = time_range(Some("yesterday"), None).unwrap_err();
        assert_eq!(e.extra["field"], "from");
        let e = time_range(None, Some("2025-13-01T00:00:00Z")).unwrap_err();
        assert_eq!(e.extra["field"], "to");
        let e = time_range(Some("2025-02-01T00:00:00Z"), Some("2025-01-01T00:00:00Z")).unwrap_err();
        assert_eq!(e.extra["field"], "to");
    }

    #[test]
    fn filters_become_numbered_parameters() {
        let mut q = Query::new("SELECT 1 FROM audit_events", "org");
        q.filter(&EventFilter {
            agent_id: Some("a".into()),
            outcome: Some(Outcome::Failure),
            ..EventFilter::default()
        });
        let s = q.finish("DESC", 10);
        assert_eq!(
            s.sql,
            "SELECT 1 FROM audit_events WHERE org_id = ?1 AND agent_id = ?2 AND outcome = ?3 \
             ORDER BY seq DESC LIMIT ?4"
        );
        assert_eq!(s.params.len(), 4);
    }
}
