//! Fuzzes the edge's Upstash REST client (`platform/upstash.rs`) on whatever the service answers:
//! the `{"result"}`/`{"error"}` envelope, `MGET` results, the admission script's reply, and the
//! rate-limit decision (`RateLimit-*` headers) derived from it. A hostile or broken store must
//! cause an error, never a panic.
//!
//! Input: one byte choosing the HTTP status (even: 200, odd: 400) and how many keys were read
//! (byte / 2 % 4), then the response body.
#![no_main]

use agentidp_shared::limits::Decision;
use agentidp_shared::platform::upstash::{decode_mget, decode_response, script_value};
use agentidp_shared::store::admission_script::decode_reply;
use libfuzzer_sys::fuzz_target;

const NOW_MILLIS: i64 = 1_800_000_000_000;
const WINDOW_MILLIS: i64 = 60_000;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let status = if selector % 2 == 0 { 200 } else { 400 };
    let reads = usize::from((selector / 2) % 4);
    let Ok(Ok(result)) = decode_response(status, body) else {
        return;
    };
    if let Ok(values) = decode_mget(result.clone(), reads) {
        assert_eq!(values.len(), reads);
    }
    let _set = result.as_str() == Some("OK");
    if let Ok(outcome) = decode_reply(script_value(result), reads) {
        assert_eq!(outcome.values.len(), reads);
        for window in &outcome.windows {
            let decision = Decision::new(100, WINDOW_MILLIS, NOW_MILLIS, outcome.admitted, window);
            assert!(decision.remaining <= 100);
            assert!((1..=60).contains(&decision.reset_seconds), "{decision:?}");
        }
    }
});
