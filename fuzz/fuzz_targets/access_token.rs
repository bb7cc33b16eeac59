//! Fuzzes RFC 9068 access-token verification (`jose::access_token::verify`) with an ephemeral ES256
//! key set: arbitrary token text, arbitrary claims and headers under a valid signature, and
//! mint-then-verify round trips of arbitrary claim values.
//!
//! The first byte picks the mode; the rest is its input:
//! - 0: the token text as sent;
//! - 1: the payload JSON, signed under the key's usual header;
//! - 2: the header JSON (`KID` stands for the key's id), over a valid payload;
//! - 3: `subject\nclient_id\nscope\njti\naudience`, minted and verified again.
#![no_main]

use std::sync::OnceLock;

use agentidp_shared::jose::access_token::{self, ClaimExtensions, MintRequest, CLOCK_SKEW_SECONDS};
use agentidp_shared::jose::jwk::Alg;
use agentidp_shared::jose::keys::{KeySet, Signer};
use agentidp_shared::platform::{es256_accelerator, OsEntropy};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use libfuzzer_sys::fuzz_target;

const ISSUER: &str = "https://id.example.test";
/// A fixed "now", so a run is reproducible; seeds use `iat` 1800000000 and `exp` 1800003600.
const NOW: i64 = 1_800_000_100;

fn keys() -> &'static KeySet {
    static KEYS: OnceLock<KeySet> = OnceLock::new();
    KEYS.get_or_init(|| {
        KeySet::ephemeral(Alg::Es256, NOW, &OsEntropy, es256_accelerator())
            .expect("an ephemeral ES256 key")
    })
}

/// JWS compact serialization of arbitrary header and payload bytes under the ephemeral key.
fn sign(header: &[u8], payload: &[u8]) -> String {
    let Signer::Es256Accelerated(raw) = &keys().signing.signer else {
        panic!("natively the ES256 key signs through ring");
    };
    let mut token = URL_SAFE_NO_PAD.encode(header);
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(payload));
    let signature = raw.sign(token.as_bytes()).expect("signing");
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(signature));
    token
}

fn usual_header() -> String {
    format!(
        r#"{{"alg":"ES256","typ":"at+jwt","kid":"{}"}}"#,
        keys().signing.kid
    )
}

const VALID_PAYLOAD: &str = r#"{"iss":"https://id.example.test","sub":"agent","aud":"https://id.example.test","iat":1800000000,"nbf":1800000000,"exp":1800003600,"jti":"j","client_id":"c","scope":"read","org_id":"o"}"#;

/// What every accepted token must satisfy, whatever it looked like.
fn check(token: &str, audience: Option<&str>) {
    let Ok(verified) = access_token::verify(keys(), token, ISSUER, audience, NOW) else {
        return;
    };
    assert!(
        verified.expires_at + CLOCK_SKEW_SECONDS as i64 >= NOW,
        "expired token accepted"
    );
    if let Some(audience) = audience {
        assert!(
            verified.audiences.iter().any(|a| a == audience),
            "wrong audience accepted"
        );
    }
    let _ = verified.scopes().count();
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, input)) = data.split_first() else {
        return;
    };
    match mode % 4 {
        0 => {
            if let Ok(token) = std::str::from_utf8(input) {
                let _ = access_token::key_id(token);
                check(token, None);
                check(token, Some(ISSUER));
            }
        }
        1 => {
            let token = sign(usual_header().as_bytes(), input);
            check(&token, None);
            check(&token, Some("https://api.example.test"));
        }
        2 => {
            let header = String::from_utf8_lossy(input).replace("KID", &keys().signing.kid);
            let token = sign(header.as_bytes(), VALID_PAYLOAD.as_bytes());
            check(&token, None);
        }
        _ => {
            // Beyond this the token would exceed the 8 KiB every verifier refuses.
            if input.len() > 2048 {
                return;
            }
            let text = String::from_utf8_lossy(input);
            let mut fields = text.split('\n');
            let mut next = || fields.next().unwrap_or("").to_owned();
            let (subject, client_id, scope, jti) = (next(), next(), next(), next());
            let audiences = vec![match next() {
                a if a.is_empty() => ISSUER.to_owned(),
                a => a,
            }];
            let minted = access_token::mint(
                keys(),
                &MintRequest {
                    issuer: ISSUER,
                    subject: &subject,
                    audiences: &audiences,
                    client_id: &client_id,
                    org_id: "org",
                    scope: &scope,
                    jti: &jti,
                    now_seconds: NOW,
                    ttl_seconds: 3600,
                    extensions: &ClaimExtensions::default(),
                },
            )
            .expect("minting never fails on claim values");
            let verified = access_token::verify(keys(), &minted, ISSUER, None, NOW)
                .expect("a token this issuer just minted verifies");
            assert_eq!(verified.subject, subject);
            assert_eq!(verified.jti, jti);
            assert_eq!(verified.claims.client_id, client_id);
            assert_eq!(verified.claims.scope, scope);
            assert_eq!(verified.audiences, audiences);
        }
    }
});
