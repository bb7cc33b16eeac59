//! One Hrana stream: its own SQLite connection and stored SQL texts, and what runs on them
//! (statements, batches, sequences, descriptions), with `sqld`'s argument binding and error codes.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use rusqlite::types::{Value as SqlValue, ValueRef};
use rusqlite::{Connection, ErrorCode, Statement};

use super::proto::{
    Batch, BatchCond, BatchResult, Col, CursorEntry, DescribeCol, DescribeParam, DescribeResult,
    Error, Stmt, StmtResult, StreamRequest, StreamResponse, StreamResult, Value,
};

/// The protocol version a request came in on (`/v2/…` or `/v3/…`); some requests need 3.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Version {
    Hrana2,
    Hrana3,
}

/// A request no correct client sends: it fails the whole HTTP request (400) and closes the stream.
#[derive(Debug)]
pub struct ProtocolError(pub String);

/// Bounds on stored SQL texts per stream, as `sqld` sets them.
const MAX_STORED_SQLS: usize = 50;
const MAX_STORED_SQL_BYTES: usize = 5 * 1000;

/// How long a statement waits for another stream's write lock before failing with SQLITE_BUSY.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Creates the database file and puts it in WAL mode once (the mode persists in the file), so
/// streams read while another writes.
pub fn prepare_database(path: &Path) -> Result<(), String> {
    let conn = Connection::open(path).map_err(|e| format!("opening {}: {e}", path.display()))?;
    conn.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(()))
        .map_err(|e| format!("switching {} to WAL: {e}", path.display()))
}

pub struct Session {
    conn: Connection,
    sqls: HashMap<i32, String>,
    closed: bool,
}

impl Session {
    pub fn open(path: &Path) -> Result<Session, String> {
        let conn =
            Connection::open(path).map_err(|e| format!("opening {}: {e}", path.display()))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .and_then(|()| conn.execute_batch("PRAGMA foreign_keys=ON; PRAGMA synchronous=NORMAL;"))
            .map_err(|e| format!("configuring a connection: {e}"))?;
        Ok(Session {
            conn,
            sqls: HashMap::new(),
            closed: false,
        })
    }

    /// True once a `close` request ran: the stream gets no baton and its connection is dropped,
    /// which rolls back a transaction left open.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    pub fn handle(
        &mut self,
        request: StreamRequest,
        version: Version,
    ) -> Result<StreamResult, ProtocolError> {
        if self.closed {
            return Err(ProtocolError("Stream for this baton was closed".into()));
        }
        let outcome = match request {
            StreamRequest::Close => {
                self.closed = true;
                Ok(StreamResponse::Close)
            }
            StreamRequest::Execute { stmt } => {
                let sql = self.sql_text(stmt.sql.as_deref(), stmt.sql_id)?;
                execute(&self.conn, sql, &stmt).map(|result| StreamResponse::Execute { result })
            }
            StreamRequest::Batch { batch } => {
                let result = self.batch(&batch, version)?;
                Ok(StreamResponse::Batch { result })
            }
            StreamRequest::Sequence { sql, sql_id } => {
                let sql = self.sql_text(sql.as_deref(), sql_id)?;
                sequence(&self.conn, sql).map(|()| StreamResponse::Sequence)
            }
            StreamRequest::Describe { sql, sql_id } => {
                let sql = self.sql_text(sql.as_deref(), sql_id)?;
                describe(&self.conn, sql).map(|result| StreamResponse::Describe { result })
            }
            StreamRequest::StoreSql { sql_id, sql } => self.store_sql(sql_id, sql)?,
            StreamRequest::CloseSql { sql_id } => {
                self.sqls.remove(&sql_id);
                Ok(StreamResponse::CloseSql)
            }
            StreamRequest::GetAutocommit => {
                require(version, Version::Hrana3, "The `get_autocommit` request")?;
                Ok(StreamResponse::GetAutocommit {
                    is_autocommit: self.conn.is_autocommit(),
                })
            }
        };
        Ok(match outcome {
            Ok(response) => StreamResult::Ok { response },
            Err(error) => StreamResult::Error { error },
        })
    }

    /// A batch as a cursor's entries: the same execution, reported step by step.
    pub fn cursor(
        &mut self,
        batch: &Batch,
        version: Version,
    ) -> Result<Vec<CursorEntry>, ProtocolError> {
        if self.closed {
            return Err(ProtocolError("Stream for this baton was closed".into()));
        }
        let result = self.batch(batch, version)?;
        let mut entries = Vec::new();
        let steps = result.step_results.into_iter().zip(result.step_errors);
        for (step, outcome) in (0u32..).zip(steps) {
            match outcome {
                (Some(result), _) => {
                    entries.push(CursorEntry::StepBegin {
                        step,
                        cols: result.cols,
                    });
                    entries.extend(result.rows.into_iter().map(|row| CursorEntry::Row { row }));
                    entries.push(CursorEntry::StepEnd {
                        affected_row_count: result.affected_row_count,
                        last_insert_rowid: result.last_insert_rowid,
                    });
                }
                (None, Some(error)) => entries.push(CursorEntry::StepError { step, error }),
                (None, None) => {}
            }
        }
        Ok(entries)
    }

    fn sql_text<'a>(
        &'a self,
        sql: Option<&'a str>,
        sql_id: Option<i32>,
    ) -> Result<&'a str, ProtocolError> {
        match (sql, sql_id) {
            (Some(sql), None) => Ok(sql),
            (None, Some(id)) => self
                .sqls
                .get(&id)
                .map(String::as_str)
                .ok_or_else(|| ProtocolError(format!("SQL text {id} not found"))),
            (Some(_), Some(_)) => Err(ProtocolError(
                "Either `sql` or `sql_id` are required, but not both".into(),
            )),
            (None, None) => Err(ProtocolError(
                "Either `sql` or `sql_id` are required".into(),
            )),
        }
    }

    fn store_sql(
        &mut self,
        sql_id: i32,
        sql: String,
    ) -> Result<Result<StreamResponse, Error>, ProtocolError> {
        if self.sqls.contains_key(&sql_id) {
            return Err(ProtocolError(format!("SQL text {sql_id} already exists")));
        }
        if self.sqls.len() >= MAX_STORED_SQLS {
            return Ok(Err(error(
                format!(
                    "The server already stores {} SQL texts, it cannot store more",
                    self.sqls.len()
                ),
                "SQL_STORE_TOO_MANY",
            )));
        }
        if sql.len() > MAX_STORED_SQL_BYTES {
            return Ok(Err(error(
                format!(
                    "The statement is too large to be stored: {} bytes",
                    sql.len()
                ),
                "SQL_STORE_TOO_LARGE",
            )));
        }
        self.sqls.insert(sql_id, sql);
        Ok(Ok(StreamResponse::StoreSql))
    }

    /// Checks the whole batch first (SQL references, conditions only looking back), then runs
    /// each step whose condition holds, in order.
    fn batch(&self, batch: &Batch, version: Version) -> Result<BatchResult, ProtocolError> {
        let mut texts = Vec::with_capacity(batch.steps.len());
        for (index, step) in batch.steps.iter().enumerate() {
            texts.push(self.sql_text(step.stmt.sql.as_deref(), step.stmt.sql_id)?);
            if let Some(cond) = &step.condition {
                check_condition(cond, index, version)?;
            }
        }
        let mut result = BatchResult::default();
        for (step, sql) in batch.steps.iter().zip(texts) {
            let runs = step
                .condition
                .as_ref()
                .is_none_or(|c| holds(c, &result, &self.conn));
            let (ok, err) = if runs {
                match execute(&self.conn, sql, &step.stmt) {
                    Ok(r) => (Some(r), None),
                    Err(e) => (None, Some(e)),
                }
            } else {
                (None, None)
            };
            result.step_results.push(ok);
            result.step_errors.push(err);
        }
        Ok(result)
    }
}

fn require(version: Version, min: Version, what: &str) -> Result<(), ProtocolError> {
    if version < min {
        return Err(ProtocolError(format!(
            "{what} is only supported in protocol version hrana3 and higher"
        )));
    }
    Ok(())
}

fn check_condition(cond: &BatchCond, step: usize, version: Version) -> Result<(), ProtocolError> {
    let earlier = |s: u32| {
        if (s as usize) < step {
            Ok(())
        } else {
            Err(ProtocolError(
                "Invalid reference to step in a batch condition".into(),
            ))
        }
    };
    match cond {
        BatchCond::Ok { step: s } | BatchCond::Error { step: s } => earlier(*s),
        BatchCond::Not { cond } => check_condition(cond, step, version),
        BatchCond::And { conds } | BatchCond::Or { conds } => conds
            .iter()
            .try_for_each(|c| check_condition(c, step, version)),
        BatchCond::IsAutocommit => require(
            version,
            Version::Hrana3,
            "BatchCond of type `is_autocommit`",
        ),
    }
}

fn holds(cond: &BatchCond, so_far: &BatchResult, conn: &Connection) -> bool {
    match cond {
        BatchCond::Ok { step } => so_far
            .step_results
            .get(*step as usize)
            .is_some_and(Option::is_some),
        BatchCond::Error { step } => so_far
            .step_errors
            .get(*step as usize)
            .is_some_and(Option::is_some),
        BatchCond::Not { cond } => !holds(cond, so_far, conn),
        BatchCond::And { conds } => conds.iter().all(|c| holds(c, so_far, conn)),
        BatchCond::Or { conds } => conds.iter().any(|c| holds(c, so_far, conn)),
        BatchCond::IsAutocommit => conn.is_autocommit(),
    }
}

fn error(message: impl Into<String>, code: &str) -> Error {
    Error {
        message: message.into(),
        code: code.to_owned(),
    }
}

/// Exactly one statement, as the protocol requires of `execute` and `describe`.
fn prepare_one<'c>(conn: &'c Connection, sql: &str) -> Result<Statement<'c>, Error> {
    let mut statements = rusqlite::Batch::new(conn, sql);
    let first = match statements.next() {
        Ok(Some(statement)) => statement,
        Ok(None) => {
            return Err(error(
                "SQL string does not contain any statement",
                "SQL_NO_STATEMENT",
            ))
        }
        Err(e) => return Err(sqlite_error(e)),
    };
    match statements.next() {
        Ok(None) => Ok(first),
        _ => Err(error(
            "SQL string contains more than one statement",
            "SQL_MANY_STATEMENTS",
        )),
    }
}

fn execute(conn: &Connection, sql: &str, stmt: &Stmt) -> Result<StmtResult, Error> {
    let mut prepared = prepare_one(conn, sql)?;
    bind(&mut prepared, stmt).map_err(|reason| {
        error(
            format!("Arguments do not match SQL parameters: {reason}"),
            "ARGS_INVALID",
        )
    })?;
    let cols: Vec<Col> = prepared
        .columns()
        .iter()
        .map(|c| Col {
            name: Some(c.name().to_owned()),
            decltype: c.decl_type().map(str::to_owned),
        })
        .collect();
    let want_rows = stmt.want_rows.unwrap_or(true);
    let changes_before = total_changes(conn);
    let mut rows = Vec::new();
    let mut cursor = prepared.raw_query();
    while let Some(row) = cursor.next().map_err(sqlite_error)? {
        if !want_rows {
            continue;
        }
        let values = (0..cols.len())
            .map(|i| row.get_ref(i).map(value_of).map_err(sqlite_error))
            .collect::<Result<Vec<_>, _>>()?;
        rows.push(values);
    }
    // `changes()` keeps the count of the last INSERT/UPDATE/DELETE, so a SELECT or DDL statement
    // would report a stale number; count it only when this statement changed rows.
    let affected_row_count = if total_changes(conn) != changes_before {
        conn.changes()
    } else {
        0
    };
    Ok(StmtResult {
        cols,
        rows,
        affected_row_count,
        last_insert_rowid: Some(conn.last_insert_rowid()),
    })
}

fn total_changes(conn: &Connection) -> i64 {
    // SAFETY: the handle is this connection's own open database, used on the connection's thread;
    // sqlite3_total_changes64 only reads a counter. The safe wrapper lacks this call.
    unsafe { rusqlite::ffi::sqlite3_total_changes64(conn.handle()) }
}

/// Binds arguments as `sqld` does: `?NNN` by position, `:name`/`@name`/`$name` by the full name
/// or, when the client left the prefix off, by the bare name; anonymous `?` by position. Positional
/// and named arguments may not be mixed; every parameter needs a value.
fn bind(prepared: &mut Statement<'_>, stmt: &Stmt) -> Result<(), String> {
    if !stmt.args.is_empty() && !stmt.named_args.is_empty() {
        return Err("Specifying both positional and named arguments is not supported".into());
    }
    let supplied = stmt.args.len().max(stmt.named_args.len());
    let count = prepared.parameter_count();
    if supplied > count {
        return Err(format!(
            "too many parameters, expected {count} found {supplied}"
        ));
    }
    let named = |name: &str| {
        stmt.named_args
            .iter()
            .find(|a| a.name == name)
            .map(|a| &a.value)
    };
    for index in 1..=count {
        let name = prepared.parameter_name(index).map(str::to_owned);
        let value = match name.as_deref() {
            Some(name) if name.starts_with('?') => {
                let position: usize = name[1..]
                    .parse()
                    .map_err(|_| format!("invalid parameter {name}"))?;
                stmt.args.get(position - 1)
            }
            Some(name) => named(name).or_else(|| named(&name[1..])),
            None => stmt.args.get(index - 1),
        };
        let Some(value) = value else {
            if prepared.is_explain() > 0 {
                return Ok(());
            }
            return Err(format!(
                "value for parameter {} not found",
                name.unwrap_or_else(|| index.to_string())
            ));
        };
        prepared
            .raw_bind_parameter(index, sql_value(value))
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Runs every statement of a script in order, rows ignored, stopping at the first failure.
fn sequence(conn: &Connection, sql: &str) -> Result<(), Error> {
    let mut statements = rusqlite::Batch::new(conn, sql);
    while let Some(mut statement) = statements.next().map_err(sqlite_error)? {
        let mut rows = statement.raw_query();
        while rows.next().map_err(sqlite_error)?.is_some() {}
    }
    Ok(())
}

fn describe(conn: &Connection, sql: &str) -> Result<DescribeResult, Error> {
    let prepared = prepare_one(conn, sql)?;
    Ok(DescribeResult {
        params: (1..=prepared.parameter_count())
            .map(|i| DescribeParam {
                name: prepared.parameter_name(i).map(str::to_owned),
            })
            .collect(),
        cols: prepared
            .columns()
            .iter()
            .map(|c| DescribeCol {
                name: c.name().to_owned(),
                decltype: c.decl_type().map(str::to_owned),
            })
            .collect(),
        is_explain: prepared.is_explain() > 0,
        is_readonly: prepared.readonly(),
    })
}

fn sql_value(value: &Value) -> SqlValue {
    match value {
        Value::Null => SqlValue::Null,
        Value::Integer { value } => SqlValue::Integer(*value),
        Value::Float { value } => SqlValue::Real(*value),
        Value::Text { value } => SqlValue::Text(value.clone()),
        Value::Blob { value } => SqlValue::Blob(value.clone()),
    }
}

fn value_of(value: ValueRef<'_>) -> Value {
    match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(value) => Value::Integer { value },
        ValueRef::Real(value) => Value::Float { value },
        ValueRef::Text(bytes) => Value::Text {
            value: String::from_utf8_lossy(bytes).into_owned(),
        },
        ValueRef::Blob(bytes) => Value::Blob {
            value: bytes.to_vec(),
        },
    }
}

/// SQLite's failures in `sqld`'s words: the engine's message, and its result code's name as `code`.
fn sqlite_error(e: rusqlite::Error) -> Error {
    match e {
        rusqlite::Error::SqliteFailure(failure, message) => error(
            format!(
                "SQLite error: {}",
                message.unwrap_or_else(|| failure.to_string())
            ),
            code_name(failure.code),
        ),
        // Syntax errors are caught by `sqld`'s own parser before SQLite sees the statement.
        rusqlite::Error::SqlInputError { msg, .. } if msg.contains("syntax error") => error(
            format!("SQL string could not be parsed: {msg}"),
            "SQL_PARSE_ERROR",
        ),
        rusqlite::Error::SqlInputError { msg, offset, .. } => error(
            format!("SQL input error: {msg} (at offset {offset})"),
            "SQL_INPUT_ERROR",
        ),
        other => error(format!("SQLite error: {other}"), "SQLITE_UNKNOWN"),
    }
}

fn code_name(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::InternalMalfunction => "SQLITE_INTERNAL",
        ErrorCode::PermissionDenied => "SQLITE_PERM",
        ErrorCode::OperationAborted => "SQLITE_ABORT",
        ErrorCode::DatabaseBusy => "SQLITE_BUSY",
        ErrorCode::DatabaseLocked => "SQLITE_LOCKED",
        ErrorCode::OutOfMemory => "SQLITE_NOMEM",
        ErrorCode::ReadOnly => "SQLITE_READONLY",
        ErrorCode::OperationInterrupted => "SQLITE_INTERRUPT",
        ErrorCode::SystemIoFailure => "SQLITE_IOERR",
        ErrorCode::DatabaseCorrupt => "SQLITE_CORRUPT",
        ErrorCode::NotFound => "SQLITE_NOTFOUND",
        ErrorCode::DiskFull => "SQLITE_FULL",
        ErrorCode::CannotOpen => "SQLITE_CANTOPEN",
        ErrorCode::FileLockingProtocolFailed => "SQLITE_PROTOCOL",
        ErrorCode::SchemaChanged => "SQLITE_SCHEMA",
        ErrorCode::TooBig => "SQLITE_TOOBIG",
        ErrorCode::ConstraintViolation => "SQLITE_CONSTRAINT",
        ErrorCode::TypeMismatch => "SQLITE_MISMATCH",
        ErrorCode::ApiMisuse => "SQLITE_MISUSE",
        ErrorCode::NoLargeFileSupport => "SQLITE_NOLFS",
        ErrorCode::AuthorizationForStatementDenied => "SQLITE_AUTH",
        ErrorCode::ParameterOutOfRange => "SQLITE_RANGE",
        ErrorCode::NotADatabase => "SQLITE_NOTADB",
        _ => "SQLITE_UNKNOWN",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hrana::proto::NamedArg;

    fn session() -> Session {
        Session {
            conn: Connection::open_in_memory().unwrap(),
            sqls: HashMap::new(),
            closed: false,
        }
    }

    fn stmt(sql: &str, args: Vec<Value>, named: Vec<(&str, Value)>) -> Stmt {
        Stmt {
            sql: Some(sql.into()),
            sql_id: None,
            args,
            named_args: named
                .into_iter()
                .map(|(name, value)| NamedArg {
                    name: name.into(),
                    value,
                })
                .collect(),
            want_rows: None,
        }
    }

    fn int(value: i64) -> Value {
        Value::Integer { value }
    }

    #[test]
    fn named_arguments_bind_with_or_without_their_prefix() {
        let s = session();
        for sql in ["SELECT :x", "SELECT @x", "SELECT $x"] {
            for name in ["x", &sql[7..]] {
                let result = execute(&s.conn, sql, &stmt(sql, vec![], vec![(name, int(42))]));
                assert_eq!(
                    result.unwrap().rows,
                    vec![vec![int(42)]],
                    "{sql} with {name}"
                );
            }
        }
        let missing = execute(&s.conn, "SELECT :x", &stmt("", vec![], vec![])).unwrap_err();
        assert_eq!(missing.code, "ARGS_INVALID");
        let mixed = stmt("", vec![int(1)], vec![("x", int(2))]);
        assert_eq!(
            execute(&s.conn, "SELECT ?, :x", &mixed).unwrap_err().code,
            "ARGS_INVALID"
        );
    }

    #[test]
    fn numbered_parameters_take_their_position() {
        let s = session();
        let result = execute(
            &s.conn,
            "SELECT ?2, ?1",
            &stmt("", vec![int(1), int(2)], vec![]),
        );
        assert_eq!(result.unwrap().rows, vec![vec![int(2), int(1)]]);
    }

    #[test]
    fn one_statement_per_execute() {
        let s = session();
        let err = |sql| {
            execute(&s.conn, sql, &stmt(sql, vec![], vec![]))
                .unwrap_err()
                .code
        };
        assert_eq!(err("SELECT 1; SELECT 2"), "SQL_MANY_STATEMENTS");
        assert_eq!(err("  -- nothing"), "SQL_NO_STATEMENT");
        assert_eq!(err("SELEC 1"), "SQL_PARSE_ERROR");
        // SQLITE_ERROR, which rusqlite (and so `sqld`) calls "unknown".
        assert_eq!(err("SELECT * FROM missing"), "SQLITE_UNKNOWN");
        assert!(execute(&s.conn, "SELECT 1; ", &stmt("", vec![], vec![])).is_ok());
    }

    #[test]
    fn affected_rows_count_only_changing_statements() {
        let s = session();
        let run = |sql| execute(&s.conn, sql, &stmt(sql, vec![], vec![])).unwrap();
        run("CREATE TABLE t (x INTEGER PRIMARY KEY, y TEXT UNIQUE)");
        assert_eq!(
            run("INSERT INTO t (y) VALUES ('a'), ('b')").affected_row_count,
            2
        );
        assert_eq!(run("SELECT * FROM t").affected_row_count, 0);
        let inserted = run("INSERT INTO t (y) VALUES ('c')");
        assert_eq!(inserted.last_insert_rowid, Some(3));
        let duplicate = execute(
            &s.conn,
            "INSERT INTO t (y) VALUES ('a')",
            &stmt("", vec![], vec![]),
        );
        let duplicate = duplicate.unwrap_err();
        assert_eq!(duplicate.code, "SQLITE_CONSTRAINT");
        assert!(
            duplicate.message.contains("UNIQUE constraint failed"),
            "{}",
            duplicate.message
        );
    }
}
