//! Printing results: aligned tables for people, the API's JSON for scripts. Nothing here prints a
//! secret that the command was not asked to show.

use std::io::Write;

use agentidp_client::Page;
use serde::Serialize;
use serde_json::Value;

use super::defs::OutputFormat;
use super::exit::CliError;

/// A column of a table: its header and the member it shows.
pub type Column = (&'static str, &'static str);

#[derive(Clone, Copy)]
pub struct Printer {
    pub format: OutputFormat,
}

fn to_value<T: Serialize>(value: &T) -> Result<Value, CliError> {
    serde_json::to_value(value).map_err(|e| CliError::failure(format!("cannot encode: {e}")))
}

/// A member shown in a table cell: text as is, lists joined, absent as `-`.
pub fn cell(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => "-".to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => {
            let joined: Vec<&str> = items.iter().filter_map(Value::as_str).collect();
            if joined.is_empty() {
                "-".to_owned()
            } else {
                joined.join(",")
            }
        }
        Some(other) => other.to_string(),
    }
}

fn write_out(text: &str) -> Result<(), CliError> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        // A closed pipe (`| head`) is the reader's choice, not a failure.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.map_err(|e| CliError::failure(format!("cannot write to stdout: {e}"))),
    }
}

/// Rows under their headers, each column as wide as its widest cell.
pub fn render_table(columns: &[Column], rows: &[Value]) -> String {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| columns.iter().map(|(_, key)| cell(row.get(*key))).collect())
        .collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, (header, _))| {
            cells
                .iter()
                .map(|r| r[i].chars().count())
                .chain([header.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    let mut line = |values: Vec<&str>| {
        let last = values.len().saturating_sub(1);
        for (i, value) in values.iter().enumerate() {
            out.push_str(value);
            if i < last {
                let pad = widths[i] - value.chars().count() + 2;
                out.push_str(&" ".repeat(pad));
            }
        }
        out.push('\n');
    };
    line(columns.iter().map(|(h, _)| *h).collect());
    for row in &cells {
        line(row.iter().map(String::as_str).collect());
    }
    out
}

/// An object's members, one per line: `id` first, then alphabetically.
pub fn render_record(value: &Value) -> String {
    let Some(object) = value.as_object() else {
        return format!("{}\n", cell(Some(value)));
    };
    let mut keys: Vec<&String> = object.keys().collect();
    keys.sort_by_key(|k| (k.as_str() != "id", k.as_str()));
    let width = keys.iter().map(|k| k.len()).max().unwrap_or(0);
    keys.iter()
        .map(|key| format!("{key:width$}  {}\n", cell(object.get(*key))))
        .collect()
}

impl Printer {
    /// One resource.
    pub fn record<T: Serialize>(&self, value: &T) -> Result<(), CliError> {
        let value = to_value(value)?;
        match self.format {
            OutputFormat::Json => self.json(&value),
            OutputFormat::Table => write_out(&render_record(&value)),
        }
    }

    /// A page of a list: the API's page object as JSON, or a table (the next cursor on stderr).
    pub fn page<T: Serialize>(&self, page: &Page<T>, columns: &[Column]) -> Result<(), CliError> {
        match self.format {
            OutputFormat::Json => self.json(&to_value(page)?),
            OutputFormat::Table => {
                let rows: Vec<Value> = page.data.iter().map(to_value).collect::<Result<_, _>>()?;
                write_out(&render_table(columns, &rows))?;
                if let Some(cursor) = &page.next_cursor {
                    eprintln!("(more: --cursor {cursor}, or --all)");
                }
                Ok(())
            }
        }
    }

    pub fn json(&self, value: &Value) -> Result<(), CliError> {
        let text = serde_json::to_string_pretty(value)
            .map_err(|e| CliError::failure(format!("cannot encode: {e}")))?;
        write_out(&format!("{text}\n"))
    }

    /// A line of text, as is.
    pub fn line(&self, text: &str) -> Result<(), CliError> {
        write_out(&format!("{text}\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tables_align_and_show_absent_members_as_dashes() {
        let rows = [
            json!({"id": "a1", "name": "doc-bot", "capabilities": ["read", "write"]}),
            json!({"id": "b22", "name": null, "capabilities": []}),
        ];
        let table = render_table(
            &[("ID", "id"), ("NAME", "name"), ("CAPS", "capabilities")],
            &rows,
        );
        assert_eq!(
            table,
            "ID   NAME     CAPS\na1   doc-bot  read,write\nb22  -        -\n"
        );
    }

    #[test]
    fn records_list_the_id_first() {
        let record = render_record(&json!({"name": "x", "id": "1", "active": true}));
        assert_eq!(record, "id      1\nactive  true\nname    x\n");
    }
}
