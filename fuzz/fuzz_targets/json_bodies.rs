//! Fuzzes every JSON body and query string the management API parses (`http::extract::parse_json`
//! and `parse_query`, as the `ApiJson` and `ApiQuery` extractors do), then the domain validation
//! each handler runs on the parsed request, then the problem document a refusal becomes.
//!
//! The first byte picks the request type; the rest is the body or query string:
//! 0 `NewAgent`, 1 `AgentPatch`, 2 `NewCredential`, 3 `Rotation`, 4 `NewOrganization` (JSON), and
//! the queries 5 agents `ListQuery`, 6 credentials `ListQuery`, 7 marketplace `SearchQuery`,
//! 8 audit `EventsQuery`, 9 audit `ExportQuery`.
#![no_main]

use agentidp_shared::axum::response::IntoResponse;
use agentidp_shared::domain::agents::{self, Agent, AgentPatch, NewAgent};
use agentidp_shared::domain::audit::{time_range, EventsQuery, ExportQuery};
use agentidp_shared::domain::credentials::{self, NewCredential, Rotation};
use agentidp_shared::domain::marketplace::{SearchQuery, MAX_FILTER_CHARS};
use agentidp_shared::domain::orgs::{self, NewOrganization};
use agentidp_shared::domain::page::PageRequest;
use agentidp_shared::domain::validate::{optional_text, Invalid};
use agentidp_shared::http::error::ApiError;
use agentidp_shared::http::extract::{parse_json, parse_query};
use agentidp_shared::services::audit_trail::Export;
use agentidp_shared::services::credentials::valid_public_jwk;
use libfuzzer_sys::fuzz_target;

const ID: &str = "00000000-0000-4000-8000-000000000001";
const NOW: i64 = 1_800_000_000_000;

/// A refusal must always turn into a response (a problem document), never a panic.
fn refuse(error: ApiError) {
    let response = error.into_response();
    assert!(response.status().is_client_error(), "{}", response.status());
}

fn invalid(error: Invalid) {
    refuse(ApiError::from(error));
}

fn existing_agent() -> Agent {
    Agent::register(
        parse_json::<NewAgent>(
            br#"{"name":"bot","agent_type":"assistant","capabilities":["read"]}"#,
        )
        .ok()
        .expect("a valid registration"),
        ID.to_owned(),
        "org",
        NOW,
    )
    .expect("a valid agent")
}

fn json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Option<T> {
    parse_json::<T>(body).map_err(refuse).ok()
}

fn query<T: serde::de::DeserializeOwned>(input: &[u8]) -> Option<T> {
    let text = std::str::from_utf8(input).ok()?;
    parse_query::<T>(text).map_err(refuse).ok()
}

fn page(limit: Option<u32>, cursor: Option<&str>) {
    if let Err(e) = PageRequest::parse(limit, cursor) {
        invalid(e);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&kind, input)) = data.split_first() else {
        return;
    };
    match kind % 10 {
        0 => {
            if let Some(new) = json::<NewAgent>(input) {
                match Agent::register(new, ID.to_owned(), "org", NOW) {
                    Ok(agent) => {
                        let shown = serde_json::to_value(&agent).expect("an agent serializes");
                        assert_eq!(shown["id"], ID);
                        let _ = agents::serialize_metadata(&agent.metadata);
                        let _ = agents::serialize_capabilities(&agent.capabilities);
                    }
                    Err(e) => invalid(e),
                }
            }
        }
        1 => {
            if let Some(patch) = json::<AgentPatch>(input) {
                let empty = patch.is_empty();
                let before = existing_agent();
                match before.patched(patch) {
                    Ok((after, changed)) => {
                        if empty {
                            assert!(changed.is_empty(), "an empty patch changed {changed:?}");
                        }
                        assert_eq!(after.id, before.id, "a patch changed the immutable id");
                        serde_json::to_value(&after).expect("an agent serializes");
                    }
                    Err(e) => invalid(e),
                }
            }
        }
        2 => {
            if let Some(new) = json::<NewCredential>(input) {
                let _ = new.kind;
                if let Some(jwk) = new.public_jwk {
                    if let Err(e) = valid_public_jwk(jwk) {
                        invalid(e);
                    }
                }
            }
        }
        3 => {
            if let Some(rotation) = json::<Rotation>(input) {
                // As services::credentials::rotate checks it.
                let grace = rotation.grace_period_seconds.unwrap_or(0);
                if (0..=credentials::MAX_GRACE_PERIOD_SECONDS).contains(&grace) {
                    let _until = NOW + grace * 1000;
                }
            }
        }
        4 => {
            if let Some(new) = json::<NewOrganization>(input) {
                if let Err(e) = orgs::valid_name(new.name) {
                    invalid(e);
                }
            }
        }
        5 => {
            if let Some(q) = query::<agents::ListQuery>(input) {
                page(q.limit, q.cursor.as_deref());
            }
        }
        6 => {
            if let Some(q) = query::<credentials::ListQuery>(input) {
                page(q.limit, q.cursor.as_deref());
            }
        }
        7 => {
            if let Some(q) = query::<SearchQuery>(input) {
                page(q.limit, q.cursor.as_deref());
                for (name, value) in [
                    ("q", q.q),
                    ("agent_type", q.agent_type),
                    ("capability", q.capability),
                ] {
                    if let Err(e) = optional_text(name, value, MAX_FILTER_CHARS) {
                        invalid(e);
                    }
                }
            }
        }
        8 => {
            if let Some(q) = query::<EventsQuery>(input) {
                page(q.limit, q.cursor.as_deref());
                if let Err(e) = time_range(q.from.as_deref(), q.to.as_deref()) {
                    invalid(e);
                }
            }
        }
        _ => {
            if let Some(q) = query::<ExportQuery>(input) {
                if let Err(e) = Export::new("org", q) {
                    invalid(e);
                }
            }
        }
    }
});
