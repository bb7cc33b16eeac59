//! Every implementation of each seam passes the same suite: the in-process store, the durable
//! default (the in-process store over a table of the embedded database), a real Redis and the
//! Upstash REST client (over the stand-in and a real Redis) for key-value; the embedded engine
//! and libSQL over HTTP (over the Hrana stand-in) for the database.

use std::sync::Arc;
use std::time::Duration;

use agentidp_shared::platform::durable_kv::DurableKv;
use agentidp_shared::platform::hrana::HranaDatabase;
use agentidp_shared::platform::memory_kv::MemoryKv;
use agentidp_shared::platform::native::{Durability, EmbeddedDatabase, NativeOutbound};
use agentidp_shared::platform::redis::RedisKv;
use agentidp_shared::platform::upstash::UpstashKv;
use agentidp_shared::store::migrations;
use agentidp_tests::conformance::{database_suite, key_value_suite, Expiry, ManualClock};
use agentidp_tests::{DevBackends, RedisServer};

#[tokio::test]
async fn the_in_process_store_conforms() {
    let clock = ManualClock::at(1_700_000_000_000);
    let kv = Arc::new(MemoryKv::new(clock.clone()));
    key_value_suite(kv, Expiry::Clock(clock), "memory").await;
}

#[tokio::test]
async fn the_durable_default_store_conforms() {
    let dir = std::env::temp_dir().join(format!("agentidp-durable-kv-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = EmbeddedDatabase::open(&dir.join("kv.db"), Durability::Normal)
        .await
        .unwrap();
    let clock = ManualClock::at(1_700_000_000_000);
    migrations::apply(&db, clock.as_ref()).await.unwrap();
    let kv = DurableKv::open(Arc::new(db), clock.clone()).await.unwrap();
    key_value_suite(Arc::new(kv), Expiry::Clock(clock), "durable").await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn redis_conforms() {
    let redis = RedisServer::start();
    let kv = Arc::new(RedisKv::connect(&redis.url).await.unwrap());
    key_value_suite(kv, Expiry::RealTime, "redis").await;
}

#[tokio::test]
async fn the_upstash_client_conforms() {
    let redis = RedisServer::start();
    let backends = DevBackends::start(&redis.url);
    let outbound = Arc::new(NativeOutbound::new(Duration::from_secs(5)));
    let kv = Arc::new(UpstashKv::new(
        outbound,
        &backends.upstash_url,
        backends.token.clone(),
    ));
    key_value_suite(kv, Expiry::RealTime, "upstash").await;
}

#[tokio::test]
async fn the_embedded_database_conforms() {
    let dir = std::env::temp_dir().join(format!("agentidp-conformance-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = EmbeddedDatabase::open(&dir.join("conformance.db"), Durability::Normal)
        .await
        .unwrap();
    database_suite(Arc::new(db), "embedded").await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn libsql_over_http_conforms() {
    let redis = RedisServer::start();
    let backends = DevBackends::start(&redis.url);
    let outbound = Arc::new(NativeOutbound::new(Duration::from_secs(10)));
    let db = HranaDatabase::new(outbound, &backends.hrana_url, Some(backends.token.clone()));
    database_suite(Arc::new(db), "hrana").await;
}
