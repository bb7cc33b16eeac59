//! Fuzzes RFC 7523 client-assertion checks: registering a public JWK (`Verifier::from_jwk` and the
//! credential service's `valid_public_jwk`), and verifying assertions with `jose::jwk::Verifier`
//! under the options the token endpoint uses (`oauth/client_auth.rs`, `check_assertion`).
//!
//! The first byte picks the mode; the rest is its input:
//! - 0: a JWK as JSON;
//! - 1: an assertion's text as sent;
//! - 2: an assertion's claims JSON, signed by the registered key (header `ES256`, no `typ`).
#![no_main]

use std::collections::HashSet;
use std::sync::OnceLock;

use agentidp_shared::jose::access_token::CLOCK_SKEW_SECONDS;
use agentidp_shared::jose::jwk::{Alg, Verifier};
use agentidp_shared::jose::keys::{KeySet, Signer};
use agentidp_shared::oauth::client_auth::unverified_issuer;
use agentidp_shared::platform::{es256_accelerator, OsEntropy};
use agentidp_shared::services::credentials::valid_public_jwk;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jwt_simple::prelude::{Duration, NoCustomClaims, UnixTimeStamp, VerificationOptions};
use libfuzzer_sys::fuzz_target;

const CLIENT_ID: &str = "aidp_client";
const ISSUER: &str = "https://id.example.test";
const TOKEN_ENDPOINT: &str = "https://id.example.test/oauth2/token";
const NOW: i64 = 1_800_000_100;
/// As `MAX_ASSERTION_LIFETIME_SECONDS` in oauth/client_auth.rs.
const MAX_LIFETIME: i64 = 300;

/// The client's key pair: signs here, and its public JWK is what the client registered.
fn client_key() -> &'static (KeySet, Verifier) {
    static KEY: OnceLock<(KeySet, Verifier)> = OnceLock::new();
    KEY.get_or_init(|| {
        let keys = KeySet::ephemeral(Alg::Es256, NOW, &OsEntropy, es256_accelerator())
            .expect("an ephemeral ES256 key");
        let jwks: serde_json::Value = serde_json::from_str(&keys.jwks).unwrap();
        let (verifier, _) = Verifier::from_jwk(&jwks["keys"][0]).expect("its own JWK");
        (keys, verifier)
    })
}

/// As `check_assertion` builds them.
fn options() -> VerificationOptions {
    VerificationOptions {
        required_subject: Some(CLIENT_ID.to_owned()),
        allowed_issuers: Some(HashSet::from([CLIENT_ID.to_owned()])),
        allowed_audiences: Some(HashSet::from([
            TOKEN_ENDPOINT.to_owned(),
            ISSUER.to_owned(),
        ])),
        time_tolerance: Some(Duration::from_secs(CLOCK_SKEW_SECONDS)),
        artificial_time: Some(UnixTimeStamp::from_secs(NOW as u64)),
        max_token_length: Some(8 * 1024),
        ..Default::default()
    }
}

fn check(verifier: &Verifier, assertion: &str) {
    let _ = unverified_issuer(assertion);
    let Ok(claims) = verifier.verify::<NoCustomClaims>(assertion, options()) else {
        return;
    };
    // What the library promised: the right client, audience and time window.
    assert_eq!(claims.subject.as_deref(), Some(CLIENT_ID));
    assert_eq!(claims.issuer.as_deref(), Some(CLIENT_ID));
    if let Some(exp) = claims.expires_at {
        assert!(
            exp.as_secs() + CLOCK_SKEW_SECONDS >= NOW as u64,
            "expired assertion accepted"
        );
        // The endpoint's own lifetime rule and replay-cache TTL must not overflow or wrap.
        let exp = exp.as_secs() as i64;
        let _too_long = exp - NOW > MAX_LIFETIME;
        let _ttl = (exp - NOW + CLOCK_SKEW_SECONDS as i64).max(1) as u64;
    }
    assert_eq!(unverified_issuer(assertion).as_deref(), Some(CLIENT_ID));
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, input)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 => {
            let Ok(jwk) = serde_json::from_slice::<serde_json::Value>(input) else {
                return;
            };
            let parsed = Verifier::from_jwk(&jwk);
            if let serde_json::Value::Object(map) = jwk {
                let registered = valid_public_jwk(map);
                // Registration accepts exactly the keys the token endpoint can use.
                if let Ok(kept) = &registered {
                    assert!(
                        Verifier::from_jwk(kept).is_ok(),
                        "registered an unusable key"
                    );
                    assert!(parsed.is_ok());
                }
            }
            if let Ok((verifier, _)) = parsed {
                check(&verifier, "eyJhbGciOiJFUzI1NiJ9.e30.AAAA");
            }
        }
        1 => {
            if let Ok(assertion) = std::str::from_utf8(input) {
                check(&client_key().1, assertion);
            }
        }
        _ => {
            let Signer::Es256Accelerated(raw) = &client_key().0.signing.signer else {
                panic!("natively the ES256 key signs through ring");
            };
            let mut token = URL_SAFE_NO_PAD.encode(br#"{"alg":"ES256"}"#);
            token.push('.');
            token.push_str(&URL_SAFE_NO_PAD.encode(input));
            let signature = raw.sign(token.as_bytes()).expect("signing");
            token.push('.');
            token.push_str(&URL_SAFE_NO_PAD.encode(signature));
            check(&client_key().1, &token);
        }
    }
});
