//! Fuzzes the token, introspection and revocation endpoints' form parsing (`OAuthForm::parse`):
//! any body either parses or is refused as `invalid_request`, and a parsed form answers lookups
//! consistently with the pairs it was given.
#![no_main]

use agentidp_shared::oauth::form::OAuthForm;
use libfuzzer_sys::fuzz_target;

/// The parameters the endpoints read (RFC 6749, 7009, 7523, 7662, 8693, 8707).
const NAMES: &[&str] = &[
    "grant_type",
    "scope",
    "client_id",
    "client_secret",
    "client_assertion",
    "client_assertion_type",
    "resource",
    "audience",
    "token",
    "token_type_hint",
    "subject_token",
    "subject_token_type",
    "assertion",
];

fuzz_target!(|body: &[u8]| {
    let pairs: Vec<(String, String)> = form_urlencoded_pairs(body);
    match OAuthForm::parse(body) {
        Ok(form) => {
            for name in NAMES {
                let all: Vec<&str> = form.get_all(name).collect();
                let expected: Vec<&str> = pairs
                    .iter()
                    .filter(|(k, _)| k == name)
                    .map(|(_, v)| v.as_str())
                    .collect();
                assert_eq!(all, expected, "get_all({name})");
                // Only `resource` and `audience` may repeat (RFC 6749 §3.2, RFC 8707, RFC 8693).
                if !matches!(*name, "resource" | "audience") {
                    assert!(all.len() <= 1, "`{name}` accepted twice");
                }
                let first = all.first().copied().filter(|v| !v.is_empty());
                assert_eq!(form.get(name), first, "get({name})");
                assert_eq!(form.require(name).ok(), first, "require({name})");
            }
        }
        Err(error) => {
            // Only a repeated parameter is refused.
            let mut names: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
            names.retain(|k| !matches!(*k, "resource" | "audience"));
            let before = names.len();
            names.sort_unstable();
            names.dedup();
            assert!(names.len() < before, "refused without a repeat: {error:?}");
        }
    }
});

/// The pairs as the WHATWG urlencoded parser reads them, independently of `OAuthForm`.
fn form_urlencoded_pairs(body: &[u8]) -> Vec<(String, String)> {
    // `+` is a space and `%XX` a byte; invalid UTF-8 becomes U+FFFD, as form_urlencoded does.
    body.split(|b| *b == b'&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = match pair.iter().position(|b| *b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &[][..]),
            };
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(bytes: &[u8]) -> String {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(high), Some(low)) => {
                    out.push(high * 16 + low);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}
