//! Reading the `audit_events` table: an organization's events by filter, newest first, and its
//! chain in order, a page at a time.

use crate::domain::audit::{EventFilter, SealedEvent};
use crate::ports::sql::{Database, DbError, Statement, Value};
use crate::store::chain::{sealed_from_row, EVENT_COLUMNS};

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

/// Up to `limit` events of the organization matching `filter`, newest first, before `before_seq`.
pub async fn newest_first(
    db: &dyn Database,
    org_id: &str,
    filter: &EventFilter,
    before_seq: Option<i64>,
    limit: i64,
) -> Result<Vec<SealedEvent>, DbError> {
    let mut sql = Query::new(&select_events(), org_id);
    sql.filter(filter);
    if let Some(seq) = before_seq {
        sql.and("seq", "<", seq);
    }
    db.query(sql.finish("DESC", limit))
        .await?
        .iter()
        .map(sealed_from_row)
        .collect()
}

/// Up to `limit` events of the organization matching `filter`, oldest first, after `after_seq`.
pub async fn oldest_first(
    db: &dyn Database,
    org_id: &str,
    filter: &EventFilter,
    after_seq: i64,
    limit: i64,
) -> Result<Vec<SealedEvent>, DbError> {
    let mut sql = Query::new(&select_events(), org_id);
    sql.filter(filter);
    sql.and("seq", ">", after_seq);
    db.query(sql.finish("ASC", limit))
        .await?
        .iter()
        .map(sealed_from_row)
        .collect()
}

/// A stored row that cannot be read as an event (a column holds a value of the wrong type).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MalformedEvent {
    pub seq: Option<i64>,
    pub id: Option<String>,
}

/// The next `limit` links of the organization's chain after `after_seq`, each either an event or
/// the row that could not be read as one (verification reports it rather than failing).
pub async fn chain_after(
    db: &dyn Database,
    org_id: &str,
    after_seq: i64,
    limit: i64,
) -> Result<Vec<Result<SealedEvent, MalformedEvent>>, DbError> {
    let mut sql = Query::new(&select_events(), org_id);
    sql.and("seq", ">", after_seq);
    let rows = db.query(sql.finish("ASC", limit)).await?;
    Ok(rows
        .iter()
        .map(|row| {
            sealed_from_row(row).map_err(|_| MalformedEvent {
                seq: row.get("seq").ok(),
                id: row.get("id").ok(),
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::audit::Outcome;

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
