//! The audit trail's model: events drafted by the domain, sealed into a per-organization SHA-256
//! hash chain, the rules that verify a chain, and the filters a reader may apply.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::domain::time::{parse_rfc3339, rfc3339};
use crate::domain::validate::Invalid;

/// The `prev_hash` of an organization's first event.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Success,
    Failure,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
        }
    }
}

/// An event before it has a place in the chain.
#[derive(Clone, Debug)]
pub struct AuditDraft {
    pub org_id: String,
    pub id: String,
    pub occurred_at: i64,
    pub actor: String,
    pub action: &'static str,
    pub agent_id: Option<String>,
    pub target: Option<String>,
    pub outcome: Outcome,
    pub details: serde_json::Value,
}

/// The last link of an organization's chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainHead {
    pub seq: i64,
    pub hash: String,
}

impl ChainHead {
    pub fn genesis() -> Self {
        ChainHead {
            seq: 0,
            hash: GENESIS_HASH.to_owned(),
        }
    }
}

/// An event with its position and hashes, exactly as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct SealedEvent {
    pub org_id: String,
    pub seq: i64,
    pub id: String,
    pub occurred_at: i64,
    pub actor: String,
    pub action: String,
    pub agent_id: Option<String>,
    pub target: Option<String>,
    pub outcome: String,
    pub details: String,
    pub prev_hash: String,
    pub hash: String,
}

impl SealedEvent {
    pub fn head(&self) -> ChainHead {
        ChainHead {
            seq: self.seq,
            hash: self.hash.clone(),
        }
    }

    /// The hash this event's stored fields imply; verification compares it with `hash`.
    pub fn computed_hash(&self) -> String {
        // A JSON array gives an unambiguous encoding of the fields without a bespoke format.
        let canonical = serde_json::json!([
            "agentidp.audit.v1",
            self.org_id,
            self.seq,
            self.id,
            self.occurred_at,
            self.actor,
            self.action,
            self.agent_id,
            self.target,
            self.outcome,
            self.details,
            self.prev_hash,
        ]);
        hex(&Sha256::digest(canonical.to_string().as_bytes()))
    }
}

impl AuditDraft {
    pub fn agent(mut self, agent_id: &str) -> Self {
        self.agent_id = Some(agent_id.to_owned());
        self
    }

    pub fn target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }

    pub fn details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }
}

/// Places a draft after `head`.
pub fn seal(draft: &AuditDraft, head: &ChainHead) -> SealedEvent {
    let mut event = SealedEvent {
        org_id: draft.org_id.clone(),
        seq: head.seq + 1,
        id: draft.id.clone(),
        occurred_at: draft.occurred_at,
        actor: draft.actor.clone(),
        action: draft.action.to_owned(),
        agent_id: draft.agent_id.clone(),
        target: draft.target.clone(),
        outcome: draft.outcome.as_str().to_owned(),
        details: draft.details.to_string(),
        prev_hash: head.hash.clone(),
        hash: String::new(),
    };
    event.hash = event.computed_hash();
    event
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    out
}

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

fn timestamp(field: &str, value: Option<&str>) -> Result<Option<i64>, Invalid> {
    value
        .map(|text| {
            parse_rfc3339(text).ok_or_else(|| {
                Invalid::new(
                    field,
                    "must be an RFC 3339 timestamp, e.g. 2025-01-31T12:00:00Z",
                )
            })
        })
        .transpose()
}

/// Parses the `from`/`to` pair, refusing an empty-by-construction range.
pub fn time_range(
    from: Option<&str>,
    to: Option<&str>,
) -> Result<(Option<i64>, Option<i64>), Invalid> {
    let from = timestamp("from", from)?;
    let to = timestamp("to", to)?;
    if let (Some(f), Some(t)) = (from, to) {
        if f > t {
            return Err(Invalid::new("to", "must not be earlier than `from`"));
        }
    }
    Ok((from, to))
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
pub fn check_link(previous: &ChainHead, event: &SealedEvent) -> Result<(), BrokenReason> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(e.field, "from");
        let e = time_range(None, Some("2025-13-01T00:00:00Z")).unwrap_err();
        assert_eq!(e.field, "to");
        let e = time_range(Some("2025-02-01T00:00:00Z"), Some("2025-01-01T00:00:00Z")).unwrap_err();
        assert_eq!(e.field, "to");
    }
}
