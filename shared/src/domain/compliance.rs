//! The compliance report: what it contains, its period, and its CSV form (one row per fact,
//! `section,subject,field,value`, so every section fits one table a spreadsheet can filter).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::domain::audit::time_range;
use crate::domain::validate::Invalid;

/// Query of `GET /v1/compliance/report`: the period of changes and activity, by default the
/// last 30 days.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    pub from: Option<String>,
    pub to: Option<String>,
}

/// Credentials unused this long are listed as such.
pub const UNUSED_DAYS: i64 = 90;
const DAY_MILLIS: i64 = 86_400_000;

impl ReportQuery {
    /// `[from, to)` in milliseconds.
    pub fn period(&self, now: i64) -> Result<(i64, i64), Invalid> {
        let (from, to) = time_range(self.from.as_deref(), self.to.as_deref())?;
        let to = to.unwrap_or(now);
        Ok((from.unwrap_or(to - 30 * DAY_MILLIS), to))
    }
}

/// Whether a credential is unused for `UNUSED_DAYS` at `now`: never used and older, or last used
/// before then.
pub fn unused(created_at: i64, last_used_at: Option<i64>, now: i64) -> bool {
    last_used_at.unwrap_or(created_at) < now - UNUSED_DAYS * DAY_MILLIS
}

pub fn age_days(created_at: i64, now: i64) -> i64 {
    (now - created_at).max(0) / DAY_MILLIS
}

/// The report as JSON (sections in a fixed order: `preserve_order` keeps it).
#[derive(Clone, Debug, Serialize)]
pub struct Report(pub Value);

impl Report {
    /// `section,subject,field,value`: every scalar of every section, objects by their `id` (or
    /// `agent_id`), RFC 4180 quoting.
    pub fn csv(&self) -> String {
        let mut out = String::from("section,subject,field,value\r\n");
        let Value::Object(sections) = &self.0 else {
            return out;
        };
        for (section, value) in sections {
            match value {
                Value::Array(items) => {
                    for (i, item) in items.iter().enumerate() {
                        match item {
                            Value::Object(fields) => {
                                let subject = fields
                                    .get("id")
                                    .or_else(|| fields.get("agent_id"))
                                    .or_else(|| fields.get("seq"))
                                    .map_or_else(|| i.to_string(), scalar);
                                for (field, v) in fields {
                                    row(&mut out, section, &subject, field, &scalar(v));
                                }
                            }
                            other => row(&mut out, section, &scalar(other), "", ""),
                        }
                    }
                }
                Value::Object(fields) => {
                    for (field, v) in fields {
                        row(&mut out, section, "", field, &scalar(v));
                    }
                }
                other => row(&mut out, section, "", "", &scalar(other)),
            }
        }
        out
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn row(out: &mut String, section: &str, subject: &str, field: &str, value: &str) {
    let cells = [section, subject, field, value].map(quote);
    out.push_str(&cells.join(","));
    out.push_str("\r\n");
}

/// RFC 4180 quoting; a cell starting with `=`, `+`, `-` or `@` gets a leading `'` so a spreadsheet
/// does not run it as a formula (tenants choose names and repositories).
fn quote(cell: &str) -> String {
    let guarded = if cell.starts_with(['=', '+', '@']) || (cell.starts_with('-') && cell.len() > 1)
    {
        format!("'{cell}")
    } else {
        cell.to_owned()
    };
    if guarded.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", guarded.replace('"', "\"\""))
    } else {
        guarded
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        let report = Report(serde_json::json!({
            "agents_by_status": { "active": 2 },
            "trust_policies": [{ "id": "p1", "repository": "=cmd(\"x\"),y" }],
        }));
        assert_eq!(
            report.csv(),
            "section,subject,field,value\r\nagents_by_status,,active,2\r\n\
             trust_policies,p1,id,p1\r\ntrust_policies,p1,repository,\"'=cmd(\"\"x\"\"),y\"\r\n"
        );
    }
}
