//! Fuzzes what the webhooks function reads from outside: the `Stripe-Signature` header and the
//! Stripe event body (`domain::billing`), webhook URLs against the SSRF rules (`domain::ssrf`), and
//! the JSON bodies of subscriptions (`domain::webhooks`). Refusals are errors, never panics; a
//! signature made as Stripe makes it always verifies, and one over another body never does.
//!
//! The first byte picks the input: 0 a Stripe delivery (header, newline, body), 1 a webhook URL,
//! 2 a `POST /v1/webhooks` body, 3 a `PATCH /v1/webhooks/{id}` body.
#![no_main]

use agentidp_shared::config::tiers::Tier;
use agentidp_shared::domain::billing::{instruction, parse_event, verify_signature};
use agentidp_shared::domain::ssrf::check_url;
use agentidp_shared::domain::webhooks::{
    valid_description, valid_events, valid_url_length, NewSubscription, SubscriptionPatch,
};
use agentidp_shared::http::extract::parse_json;
use libfuzzer_sys::fuzz_target;

const SECRET: &str = "whsec_fuzz";
const NOW: i64 = 1_800_000_000;

fn stripe_header(timestamp: i64, body: &[u8]) -> String {
    let mut signed = format!("{timestamp}.").into_bytes();
    signed.extend_from_slice(body);
    let mac = hmac_sha256::HMAC::mac(&signed, SECRET.as_bytes());
    let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
    format!("t={timestamp},v1={hex}")
}

fn stripe(data: &[u8]) {
    let split = data.iter().position(|b| *b == b'\n').unwrap_or(data.len());
    let (header, body) = (&data[..split], data.get(split + 1..).unwrap_or_default());
    let header = String::from_utf8_lossy(header);
    // Whatever the header says, checking it never panics; what it accepts is signed with SECRET.
    let _ = verify_signature(Some(&header), body, SECRET, NOW);
    let _ = verify_signature(Some(&header), body, "", NOW);
    // Signed as Stripe signs, within the tolerance: accepted; over another body: refused.
    let skew = i64::from(data.first().copied().unwrap_or(0)) - 128;
    let good = stripe_header(NOW + skew, body);
    assert!(verify_signature(Some(&good), body, SECRET, NOW).is_ok());
    let mut other = body.to_vec();
    other.push(b' ');
    assert!(verify_signature(Some(&good), &other, SECRET, NOW).is_err());
    assert!(verify_signature(Some(&good), body, "whsec_other", NOW).is_err());
    if let Ok(event) = parse_event(body) {
        let prices = [("price_1".to_owned(), Tier::Pro)];
        let _ = instruction(&event, &prices);
        let _ = instruction(&event, &[]);
    }
}

fn url(data: &[u8]) {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    if valid_url_length(raw).is_err() {
        return;
    }
    if let Ok(target) = check_url(raw, false) {
        // Production admits only HTTPS to a public name or address.
        assert!(target.url.starts_with("https://"), "{raw} -> {}", target.url);
        // What was checked is what is fetched: the normalised URL checks the same.
        assert_eq!(check_url(&target.url, false).as_ref(), Ok(&target));
    }
    if let Ok(target) = check_url(raw, true) {
        assert!(
            target.url.starts_with("https://") || target.url.starts_with("http://"),
            "{raw} -> {}",
            target.url
        );
    }
}

fn new_subscription(data: &[u8]) {
    let Ok(new) = parse_json::<NewSubscription>(data) else {
        return;
    };
    if let Some(url) = &new.url {
        let _ = valid_url_length(url).map(|()| check_url(url, false));
    }
    if let Some(events) = new.events {
        if let Ok(events) = valid_events(events) {
            assert!(!events.is_empty());
        }
    }
    let _ = valid_description(new.description);
}

fn patch(data: &[u8]) {
    let Ok(patch) = parse_json::<SubscriptionPatch>(data) else {
        return;
    };
    if let Some(Some(events)) = patch.events.clone() {
        let _ = valid_events(events);
    }
    if let Some(description) = patch.description.clone() {
        let _ = valid_description(description);
    }
    let _ = patch.is_empty();
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    match selector % 4 {
        0 => stripe(rest),
        1 => url(rest),
        2 => new_subscription(rest),
        _ => patch(rest),
    }
});
