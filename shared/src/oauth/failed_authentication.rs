//! Failed client authentication: the budgets checked before any work (per address, and per client
//! from every address), the count a failure spends, and the audit trail's bounded summaries.
//!
//! An address over its budget is refused (429, `Retry-After`) before the client is looked up or
//! its secret compared, so that answer says nothing about the secret. A client over its budget
//! (guesses spread over many addresses) is not locked out: client ids are public (every token
//! carries one), so refusing the right secret would let anyone keep any agent from its tokens.
//! Its budget refuses only the addresses that have been failing; an address with no failures
//! still has its credentials checked, and a further failure costs no tally, sample or audit write.

use crate::domain::audit::Outcome;
use crate::domain::auth_failures::{is_reported, summary, Sample, SAMPLE_SIZE};
use crate::limits::{DecisionSlot, Meter, Peeked, Refusal, Subject, Tally};
use crate::oauth::client_auth::Rejected;
use crate::oauth::error::OAuthError;
use crate::ports::sql::Change;
use crate::state::AppState;
use crate::store::{credentials::StoredClient, kv_keys};

/// What the budgets allow for one authentication attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Budget {
    /// Both have room: a failure is counted, tallied and reported as usual.
    Open,
    /// The client's is spent, but this address has not been failing: the credentials are still
    /// checked, and a failure counts only against the address.
    ClientSpent,
}

/// Refuses an address over its failure budget, and an address that has been failing when the
/// client it claims is over its budget, before any work.
pub async fn ensure_budget(
    state: &AppState,
    slot: &DecisionSlot,
    client_ip: &str,
    claimed_client_id: Option<&str>,
) -> Result<Budget, OAuthError> {
    let address = Subject::FailedFromIp(client_ip);
    let mut budgets = vec![address];
    if let Some(client_id) = claimed_client_id {
        budgets.push(Subject::FailedAsClient(client_id));
    }
    let peeked = state.limiter.peek(&budgets).await?;
    let refused = |subject, peeked: Peeked, why: &str| {
        state.limiter.record_refusal(slot, subject, peeked);
        Err(OAuthError::too_many_requests(format!(
            "{why}; retry in {} s",
            peeked.decision.reset_seconds
        )))
    };
    if let Some(from_address) = peeked[0].filter(|p| p.is_full()) {
        return refused(
            address,
            from_address,
            "too many failed authentications from this address",
        );
    }
    match (budgets.get(1), peeked.get(1).copied().flatten()) {
        (Some(&client), Some(as_client)) if as_client.is_full() => {
            let address_failing = peeked[0].is_some_and(|p| p.in_window > 0);
            if address_failing {
                return refused(
                    client,
                    as_client,
                    "too many failed authentications for this client, some from this address",
                );
            }
            Ok(Budget::ClientSpent)
        }
        _ => Ok(Budget::Open),
    }
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
    budget: Budget,
) -> Result<(), OAuthError> {
    if budget == Budget::ClientSpent {
        // The client's budget already stopped counting: only the address learns of this one.
        let address = [Subject::FailedFromIp(client_ip)];
        if let Err(Refusal::Unavailable(e)) = state
            .limiter
            .admit_all(slot, &address, Meter::Nothing, Vec::new())
            .await
        {
            tracing::warn!(error = %e, "a failed authentication could not be counted");
        }
        return Ok(());
    }
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
