//! Failed client authentications as the audit trail records them: tallied per client per period,
//! and reported when failures start and each time their count doubles, so an attack of any size
//! costs a handful of events instead of one durable write per guess.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::domain::time::rfc3339;

/// The period failures are tallied over: an hour, so a client under steady attack produces at most
/// a few events an hour (the count doubles at most ~27 times whatever the budget).
pub const TALLY_PERIOD_MILLIS: i64 = 3_600_000;

/// How many failures of a period keep their details (time, address, reason) as a sample.
pub const SAMPLE_SIZE: u64 = 5;

/// The start of the tally period `now_millis` falls in.
pub fn period_start(now_millis: i64) -> i64 {
    now_millis - now_millis.rem_euclid(TALLY_PERIOD_MILLIS)
}

/// Whether the `count`-th failure of a period is reported: the first, then each power of two. The
/// trail thus knows every period with failures, when they began, and their number to within half.
pub fn is_reported(count: u64) -> bool {
    count.is_power_of_two()
}

/// One failure, as kept in a period's sample.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sample {
    pub at: i64,
    pub ip: String,
    pub reason: String,
}

/// The details of an `authentication.failed` event: the period's count so far, its first and
/// latest failure, and the distinct addresses and reasons of the sampled failures and this one.
pub fn summary(
    client_id: &str,
    method: &str,
    count: u64,
    samples: &[Sample],
    latest: &Sample,
) -> Value {
    let mut ips: Vec<&str> = Vec::new();
    let mut reasons: Vec<&str> = Vec::new();
    for sample in samples.iter().chain(std::iter::once(latest)) {
        if !ips.contains(&sample.ip.as_str()) {
            ips.push(&sample.ip);
        }
        if !reasons.contains(&sample.reason.as_str()) {
            reasons.push(&sample.reason);
        }
    }
    let first = samples.iter().map(|s| s.at).min().unwrap_or(latest.at);
    json!({
        "client_id": client_id,
        "method": method,
        "count": count,
        "period_started_at": rfc3339(period_start(latest.at)),
        "first_failure_at": rfc3339(first.min(latest.at)),
        "last_failure_at": rfc3339(latest.at),
        "ips": ips,
        "reasons": reasons,
        "next_report_at_count": count.saturating_mul(2),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_are_logarithmic_in_the_number_of_failures() {
        let reported: Vec<u64> = (1..=100).filter(|n| is_reported(*n)).collect();
        assert_eq!(reported, [1, 2, 4, 8, 16, 32, 64]);
        assert!(!is_reported(0));
    }

    #[test]
    fn a_summary_keeps_distinct_addresses_and_reasons() {
        let sample = |at, ip: &str, reason: &str| Sample {
            at,
            ip: ip.into(),
            reason: reason.into(),
        };
        let samples = [
            sample(3_600_500, "10.0.0.1", "wrong client secret"),
            sample(3_600_900, "10.0.0.2", "wrong client secret"),
        ];
        let latest = sample(3_700_000, "10.0.0.1", "credential revoked");
        let details = summary("aidp_x", "client_secret_basic", 4, &samples, &latest);
        assert_eq!(details["ips"], json!(["10.0.0.1", "10.0.0.2"]));
        assert_eq!(
            details["reasons"],
            json!(["wrong client secret", "credential revoked"])
        );
        assert_eq!(details["first_failure_at"], rfc3339(3_600_500));
        assert_eq!(details["last_failure_at"], rfc3339(3_700_000));
        assert_eq!(details["period_started_at"], rfc3339(3_600_000));
        assert_eq!(details["count"], 4);
    }
}
