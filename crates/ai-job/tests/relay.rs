//! A broker that stops confirming publishes (a memory or disk alarm, a half-open link) holds no
//! transaction, no row lock and no sweep (security review M3). On real Postgres.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::json;
use studio_ai_job::relay::{relay_once, RelayError, PUBLISH_TIMEOUT};
use studio_ai_job::store::{JobStore, NewStep};
use studio_ai_job::MIGRATOR;
use studio_core::id::{ProjectId, UserId};
use studio_queue::{Consumer, Envelope, QueueError, QueueSpec, WorkQueue};
use studio_testkit::db::{drop_database, fresh_database};

/// A broker that takes every publish and never confirms it.
struct Stuck;

#[async_trait]
impl WorkQueue for Stuck {
    async fn declare(&self, _spec: &QueueSpec) -> Result<(), QueueError> {
        Ok(())
    }
    async fn publish(&self, _queue: &str, _envelope: &Envelope) -> Result<(), QueueError> {
        std::future::pending().await
    }
    async fn consume(&self, _queue: &str, _prefetch: u16) -> Result<Box<dyn Consumer>, QueueError> {
        std::future::pending().await
    }
    async fn depth(&self, _queue: &str) -> Result<u64, QueueError> {
        Ok(0)
    }
    async fn delete(&self, _queue: &str) -> Result<(), QueueError> {
        Ok(())
    }
}

#[tokio::test]
async fn a_stuck_broker_does_not_hold_the_outbox() {
    let (name, url) = fresh_database("aijobrelay").await;
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    MIGRATOR.run(&pool).await.unwrap();
    let store = JobStore::new(pool.clone());
    let step = NewStep {
        kind: "plan".into(),
        scene: None,
        stage: 0,
        max_attempts: 3,
        input: json!({}),
    };
    store
        .create_job(
            UserId::new(),
            ProjectId::new(),
            "stuck",
            None,
            std::slice::from_ref(&step),
            10,
        )
        .await
        .unwrap();
    let started = Instant::now();
    let relay = relay_once(&pool, &Stuck, 10);
    let watch = async {
        // While the publish hangs: no session sits idle in a transaction, and the outbox takes
        // new rows.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let idle: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND state = 'idle in transaction'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        store
            .create_job(
                UserId::new(),
                ProjectId::new(),
                "meanwhile",
                None,
                std::slice::from_ref(&step),
                10,
            )
            .await
            .unwrap();
        idle
    };
    let (relayed, idle) = tokio::join!(relay, watch);
    assert_eq!(idle, 0, "no transaction held across the publish");
    assert!(
        matches!(relayed, Err(RelayError::Timeout(_))),
        "{relayed:?}"
    );
    assert!(started.elapsed() < PUBLISH_TIMEOUT + Duration::from_secs(5));
    // The row it could not publish is due again at once, for the next pass.
    let due: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM outbox WHERE published_at IS NULL AND available_at <= now()",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(due, 2);
    pool.close().await;
    drop_database(&name).await;
}
