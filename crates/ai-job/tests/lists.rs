//! Job lists stay small however many steps their jobs have (security review M9): a page carries
//! each job's steps in brief, read for the whole page in one query. On real Postgres.

use prost::Message as _;
use serde_json::json;
use studio_ai_job::service::JobView;
use studio_ai_job::store::{JobStore, NewStep, State};
use studio_ai_job::MIGRATOR;
use studio_core::id::{ProjectId, UserId};
use studio_testkit::db::{drop_database, fresh_database};

#[tokio::test]
async fn a_list_summarises_steps_instead_of_carrying_them() {
    let (name, url) = fresh_database("aijoblists").await;
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    MIGRATOR.run(&pool).await.unwrap();
    let store = JobStore::new(pool.clone());
    let owner = UserId::new();
    let step = |kind: &str, scene: Option<i32>| NewStep {
        kind: kind.into(),
        scene,
        stage: 1,
        max_attempts: 3,
        input: json!({"text": "x".repeat(100)}),
    };
    let mut big: Vec<NewStep> = (0..5_000).map(|i| step("narration", Some(i))).collect();
    big.push(step("render", None));
    let (job, _) = store
        .create_job(owner, ProjectId::new(), "big", None, &big, 10)
        .await
        .unwrap();
    let (small, _) = store
        .create_job(
            owner,
            ProjectId::new(),
            "small",
            None,
            &[step("plan", None)],
            10,
        )
        .await
        .unwrap();
    // A tenth done, and the render with its files.
    sqlx::query(
        "UPDATE steps SET state = 'succeeded' WHERE job_id = $1 AND kind = 'narration'
           AND scene < 500",
    )
    .bind(job.id.0)
    .execute(&pool)
    .await
    .unwrap();
    let files = json!({"files": [{"kind": "video", "storage_key": "k/final.mp4", "size_bytes": 5, "sha256": "00"}],
                       "duration_s": 1.0, "render_seconds": 1.0, "encoder": "libx264", "worker": "w"});
    sqlx::query(
        "UPDATE steps SET state = 'succeeded', output = $2 WHERE job_id = $1 AND kind = 'render'",
    )
    .bind(job.id.0)
    .bind(&files)
    .execute(&pool)
    .await
    .unwrap();

    let summaries = store.summaries(&[job.id, small.id]).await.unwrap();
    let big_summary = summaries[&job.id].clone();
    assert_eq!((big_summary.done, big_summary.total), (501, 5_001));
    assert_eq!(summaries[&small.id].total, 1);

    let view = JobView {
        job: store.job(job.id).await.unwrap(),
        steps: Vec::new(),
        summary: Some(big_summary),
    };
    assert!((view.percent() - 100.0 * 501.0 / 5001.0).abs() < 1e-9);
    assert_eq!(view.outputs()[0].storage_key, "k/final.mp4");
    let encoded = studio_proto::job::v1::Job::from(view).encoded_len();
    assert!(encoded < 1024, "{encoded} bytes for a job of 5,001 steps");
    assert_eq!(store.job(small.id).await.unwrap().state, State::Queued);
    pool.close().await;
    drop_database(&name).await;
}

/// Published outbox rows and the events of long-finished jobs are pruned; a job keeps its last
/// event, and nothing unpublished or recent goes (security review L5).
#[tokio::test]
async fn old_outbox_rows_and_events_are_pruned() {
    use studio_ai_job::retention::{prune_once, Retention};
    let (name, url) = fresh_database("aijobprune").await;
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    MIGRATOR.run(&pool).await.unwrap();
    let store = JobStore::new(pool.clone());
    let plan = || NewStep {
        kind: "plan".into(),
        scene: None,
        stage: 0,
        max_attempts: 3,
        input: json!({}),
    };
    let owner = UserId::new();
    let (old, _) = store
        .create_job(owner, ProjectId::new(), "old", None, &[plan()], 10)
        .await
        .unwrap();
    let (new, _) = store
        .create_job(owner, ProjectId::new(), "new", None, &[plan()], 10)
        .await
        .unwrap();
    // The old job ended 40 days ago, with three events; its outbox row went out 8 days ago.
    for seq in 2..=3 {
        sqlx::query(
            "INSERT INTO job_events (job_id, sequence, state, stage, percent, message, cost_micro_usd)
             VALUES ($1, $2, 'succeeded', 'done', 100, 'done', 0)",
        )
        .bind(old.id.0)
        .bind(seq as i64)
        .execute(&pool)
        .await
        .unwrap();
    }
    sqlx::query(
        "UPDATE jobs SET state = 'succeeded', event_seq = 3, updated_at = now() - interval '40 days'
         WHERE id = $1",
    )
    .bind(old.id.0)
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("UPDATE outbox SET published_at = now() - interval '8 days'")
        .execute(&pool)
        .await
        .unwrap();
    // The new job's row is still unpublished.
    sqlx::query(
        "UPDATE outbox SET published_at = NULL WHERE idempotency_key LIKE '%' AND id = (SELECT max(id) FROM outbox)",
    )
    .execute(&pool)
    .await
    .unwrap();
    let pruned = prune_once(&pool, &Retention::default()).await.unwrap();
    assert_eq!((pruned.outbox, pruned.events), (1, 2), "{pruned:?}");
    let kept: Vec<i64> = sqlx::query_scalar("SELECT sequence FROM job_events WHERE job_id = $1")
        .bind(old.id.0)
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(kept, [3], "the last event stays");
    let events_of_new: i64 =
        sqlx::query_scalar("SELECT count(*) FROM job_events WHERE job_id = $1")
            .bind(new.id.0)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(events_of_new, 1);
    let outbox: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(outbox, 1, "the unpublished row stays");
    pool.close().await;
    drop_database(&name).await;
}
