//! Failed client authentication: the budgets checked before any work (per address, and per client
//! from every address), the count a failure spends, and the audit trail's bounded summaries.
//!
//! An address or client over its budget is refused with `slow_down` before the client is looked up
//! or its secret compared, so a 429 says nothing about the secret, and the right secret is refused
//! too until the window moves on. The lockout this allows (anyone who knows a client id can keep
//! it refused by failing often enough) is bounded by making the per-client budget generous: an
//! attacker must sustain it from several addresses, each also limited, and the owner can always
//! give the agent a new credential, whose new client id the attacker does not know.

use crate::domain::audit::Outcome;
use crate::domain::auth_failures::{is_reported, summary, Sample, SAMPLE_SIZE};
use crate::limits::{DecisionSlot, Meter, Subject, Tally};
use crate::oauth::client_auth::Rejected;
use crate::oauth::error::OAuthError;
use crate::ports::sql::Change;
use crate::state::AppState;
use crate::store::{credentials::StoredClient, kv_keys};

/// Refuses an address or a claimed client id over its failure budget, before any work.
pub async fn ensure_budget(
    state: &AppState,
    slot: &DecisionSlot,
    client_ip: &str,
    claimed_client_id: Option<&str>,
) -> Result<(), OAuthError> {
    let mut budgets = vec![Subject::FailedFromIp(client_ip)];
    if let Some(client_id) = claimed_client_id {
        budgets.push(Subject::FailedAsClient(client_id));
    }
    state
        .limiter
        .has_room(slot, &budgets)
        .await
        .map_err(|refusal| {
            let mut error = OAuthError::from(refusal);
            if error.error() == "slow_down" {
                error.description =
                "too many failed authentications from this address or for this client; retry later"
                    .into();
            }
            error
        })
}

/// Spends a failure from the budgets of the address and of the client id claimed, and reports it
/// in the client's audit trail when the period's count reaches a reporting point.
///
/// An unknown client id spends, tallies and keeps its sample exactly as a known one does: the
/// same work either way, so how long a failure takes does not tell which client ids exist. Only
/// the audit report, which needs an organization, is a known client's.
pub async fn record(
    state: &AppState,
    slot: &DecisionSlot,
    client_ip: &str,
    claimed_client_id: Option<&str>,
    rejected: Option<&Rejected>,
) -> Result<(), OAuthError> {
    let client = rejected.and_then(|r| r.client.as_ref());
    let client_id = client.map(|c| c.client_id.as_str()).or(claimed_client_id);
    let mut budgets = vec![Subject::FailedFromIp(client_ip)];
    let meter = match client_id {
        Some(client_id) => {
            budgets.push(Subject::FailedAsClient(client_id));
            Meter::FailedAuthentication { client_id }
        }
        None => Meter::Nothing,
    };
    let tally = match state
        .limiter
        .admit_all(slot, &budgets, meter, Vec::new())
        .await
    {
        Ok(admitted) => admitted.tally,
        // Concurrent failures filled the budget first: this one is not counted (nor reported),
        // and the caller still hears that authentication failed.
        Err(_) => None,
    };
    let (Some(client_id), Some(rejected), Some(tally)) = (client_id, rejected, tally) else {
        if client.is_some() && tally.is_none() {
            tracing::warn!(
                client_id = client.map(|c| c.client_id.as_str()),
                "a failed authentication could not be tallied; not audited"
            );
        }
        return Ok(());
    };
    let latest = Sample {
        at: tally.at_millis,
        ip: client_ip.to_owned(),
        reason: rejected.reason.to_owned(),
    };
    keep_sample(state, client_id, &latest, &tally).await?;
    match client {
        Some(client) => report(state, client, rejected, latest, tally).await,
        None => Ok(()),
    }
}

/// Keeps the first failures of a period as samples for the summary.
async fn keep_sample(
    state: &AppState,
    client_id: &str,
    latest: &Sample,
    tally: &Tally,
) -> Result<(), OAuthError> {
    let sample_key = kv_keys::failure_sample(client_id, tally.period_start_millis, tally.count);
    if tally.count <= SAMPLE_SIZE {
        let value = serde_json::to_string(latest).map_err(OAuthError::server_error)?;
        let stored = state
            .kv
            .set(&sample_key, &value, kv_keys::FAILURE_TALLY_TTL_SECONDS)
            .await;
        if let Err(e) = stored {
            tracing::warn!(error = %e, "a failed authentication's sample was not kept");
        }
    }
    Ok(())
}

async fn report(
    state: &AppState,
    client: &StoredClient,
    rejected: &Rejected,
    latest: Sample,
    tally: Tally,
) -> Result<(), OAuthError> {
    let sample_key = |n| kv_keys::failure_sample(&client.client_id, tally.period_start_millis, n);
    if !is_reported(tally.count) {
        return Ok(());
    }
    let earlier: Vec<String> = (1..tally.count.min(SAMPLE_SIZE + 1))
        .map(sample_key)
        .collect();
    let samples: Vec<Sample> = if earlier.is_empty() {
        Vec::new()
    } else {
        match state.kv.get_many(&earlier).await {
            Ok(values) => values
                .into_iter()
                .flatten()
                .filter_map(|v| serde_json::from_str(&v).ok())
                .collect(),
            Err(e) => {
                tracing::warn!(error = %e, "reading failed authentications' samples failed");
                Vec::new()
            }
        }
    };
    let details = summary(
        &client.client_id,
        rejected.method.as_str(),
        tally.count,
        &samples,
        &latest,
    );
    let mut event = state
        .audit(
            &client.org_id,
            &client.client_id,
            "authentication.failed",
            Outcome::Failure,
        )
        .target(client.credential_id.clone())
        .details(details);
    if let Some(agent) = &client.agent_id {
        event = event.agent(agent);
    }
    state.db.commit(Change::new().event(event)).await?;
    Ok(())
}
