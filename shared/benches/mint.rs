//! Microbenchmark of the token hot path's CPU work: minting and verifying access tokens.
//! Run: `cargo bench -p agentidp-shared --bench mint`.

use std::sync::Arc;
use std::time::Instant;

use agentidp_shared::keys::{Alg, KeyRing};
use agentidp_shared::platform::native::{Durability, EmbeddedDatabase, SystemClock};
use agentidp_shared::runtime::Clock;
use agentidp_shared::tokens::{self, TokenRequest};
use agentidp_shared::{keys, migrations};

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let dir = std::env::temp_dir().join(format!("agentidp-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let db = Arc::new(EmbeddedDatabase::open(&dir.join("bench.db"), Durability::Normal).await.unwrap());
        migrations::apply(db.as_ref(), &SystemClock).await.unwrap();
        for alg in [Alg::Es256, Alg::EdDsa] {
            keys::rotate(db.as_ref(), &SystemClock, alg).await.unwrap();
            let ring = KeyRing::new();
            let set = ring.current(db.as_ref(), &SystemClock, 3600).await.unwrap();
            let audiences = vec!["https://id.example.com".to_owned()];
            let now = SystemClock.now_seconds();
            let request = |jti: &'static str| TokenRequest {
                issuer: "https://id.example.com",
                subject: "9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d",
                audiences: &audiences,
                client_id: "aidp_abcdefghijklmnopqrstuv",
                org_id: "1b9d6bcd-bbfd-4b2d-9b5d-ab8dfbbd4bed",
                scope: "read:docs write:docs",
                jti,
                now_seconds: now,
                ttl_seconds: 3600,
            };
            let n = 5_000;
            let started = Instant::now();
            let mut token = String::new();
            for _ in 0..n {
                token = tokens::mint(&set, &request("b0c3a1e2-5f7d-4c1e-9a7b-3d2f1e0c9b8a")).unwrap();
            }
            let mint_us = started.elapsed().as_secs_f64() * 1e6 / n as f64;
            let started = Instant::now();
            for _ in 0..n {
                tokens::verify(&set, &token, "https://id.example.com", None, now).unwrap();
            }
            let verify_us = started.elapsed().as_secs_f64() * 1e6 / n as f64;
            println!("{:>6}: mint {mint_us:7.1} µs/token   verify {verify_us:7.1} µs/token", alg.as_str());
        }
        let _ = std::fs::remove_dir_all(&dir);
    });
}
