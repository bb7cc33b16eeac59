//! Microbenchmark of the token hot path's CPU work: minting and verifying access tokens.
//! Natively: `cargo bench -p agentidp-shared --bench mint`. Inside wasm: `scripts/bench-wasm.sh`
//! builds this same file for wasm32-wasip2 and runs it under wasmtime.

use std::time::Instant;

use agentidp_shared::jose::access_token::{self, ClaimExtensions, MintRequest};
use agentidp_shared::jose::jwk::Alg;
use agentidp_shared::jose::keys::KeySet;
use agentidp_shared::platform::{es256_accelerator, OsEntropy, SystemClock};
use agentidp_shared::ports::runtime::Clock;

fn main() {
    let now = SystemClock.now_seconds();
    let audiences = vec!["https://id.example.com".to_owned()];
    for alg in [Alg::Es256, Alg::EdDsa] {
        let set = KeySet::ephemeral(alg, now * 1000, &OsEntropy, es256_accelerator())
            .expect("generating a key");
        let extensions = ClaimExtensions::default();
        let request = MintRequest {
            issuer: "https://id.example.com",
            subject: "9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d",
            audiences: &audiences,
            client_id: "aidp_abcdefghijklmnopqrstuv",
            org_id: "1b9d6bcd-bbfd-4b2d-9b5d-ab8dfbbd4bed",
            scope: "read:docs write:docs",
            jti: "b0c3a1e2-5f7d-4c1e-9a7b-3d2f1e0c9b8a",
            now_seconds: now,
            ttl_seconds: 3600,
            extensions: &extensions,
        };
        let n = 2_000;
        let started = Instant::now();
        let mut token = String::new();
        for _ in 0..n {
            token = access_token::mint(&set, &request).expect("minting");
        }
        let mint_us = started.elapsed().as_secs_f64() * 1e6 / f64::from(n);
        let started = Instant::now();
        for _ in 0..n {
            access_token::verify(&set, &token, "https://id.example.com", None, now)
                .expect("verifying");
        }
        let verify_us = started.elapsed().as_secs_f64() * 1e6 / f64::from(n);
        println!(
            "{:>6}: mint {mint_us:7.1} µs/token   verify {verify_us:7.1} µs/token",
            alg.as_str()
        );
    }
}
