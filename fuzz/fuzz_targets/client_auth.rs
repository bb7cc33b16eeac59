//! Fuzzes client authentication's input parsing: the `Authorization` header (Basic, RFC 6749
//! §2.3.1), `client_secret_post`, and the unverified `iss` of a `private_key_jwt` assertion
//! (RFC 7523), all before any lookup. Input: `<Authorization header>\n<form body>`; without a
//! newline the whole input is the form body and no header is sent.
#![no_main]

use agentidp_shared::oauth::client_auth::{
    decode_basic, presented_credentials, unverified_issuer, Presented,
};
use agentidp_shared::oauth::form::OAuthForm;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (header, body) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (std::str::from_utf8(&data[..i]).ok(), &data[i + 1..]),
        None => (None, data),
    };
    if let Some(header) = header {
        if let Some((scheme, value)) = header.split_once(' ') {
            if let Some((id, secret)) = decode_basic(value.trim()) {
                assert!(
                    !id.is_empty() && !secret.is_empty(),
                    "{scheme}: empty half accepted"
                );
            }
        }
    }
    if let Ok(text) = std::str::from_utf8(body) {
        let _ = unverified_issuer(text);
    }
    let Ok(form) = OAuthForm::parse(body) else {
        return;
    };
    match presented_credentials(header, &form) {
        Ok(Presented::Secret {
            client_id, secret, ..
        }) => {
            assert!(!client_id.is_empty() && !secret.is_empty());
            // A form `client_id` never contradicts the credentials presented.
            if let Some(id) = form.get("client_id") {
                assert_eq!(id, client_id);
            }
        }
        Ok(Presented::Assertion {
            client_id,
            assertion,
        }) => {
            assert_eq!(
                unverified_issuer(&assertion).as_deref(),
                Some(client_id.as_str())
            );
            if let Some(id) = form.get("client_id") {
                assert_eq!(id, client_id);
            }
        }
        Err(_) => {}
    }
});
