//! Fuzzes the edge's libSQL-over-HTTP client (`platform/hrana.rs`) on whatever a server answers:
//! the pipeline response, the first result, its rows and values, and a guarded transaction's
//! batch outcome. A hostile or broken server must cause an error, never a panic.
//!
//! Input: one byte choosing the HTTP status (even: 200, odd: 500) and how many statements the
//! transaction had (byte / 2 % 8), then the response body.
#![no_main]

use agentidp_shared::platform::hrana::{
    decode_pipeline_response, first_response, rows_of, transaction_outcome, StreamResponse,
};
use agentidp_shared::ports::sql::Statement;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let status = if selector % 2 == 0 { 200 } else { 500 };
    let statements: Vec<Statement> = (0..(selector / 2) % 8)
        .map(|i| Statement::new(format!("INSERT INTO t VALUES ({i})")))
        .collect();
    let Ok(results) = decode_pipeline_response(status, body) else {
        return;
    };
    assert_eq!(status, 200, "a non-2xx answer was decoded");
    let Ok(response) = first_response(results) else {
        return;
    };
    match response {
        StreamResponse::Execute { result } => {
            if let Ok(rows) = rows_of(result.clone()) {
                assert_eq!(rows.len(), result.rows.len());
            }
            let _ = transaction_outcome(&statements, StreamResponse::Execute { result });
        }
        other => {
            if let Ok(counts) = transaction_outcome(&statements, other) {
                assert_eq!(counts.len(), statements.len());
            }
        }
    }
});
