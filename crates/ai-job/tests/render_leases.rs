//! What a render worker may settle (security review H1): only render steps, only files of the
//! known output kinds, and only keys under the job's own output prefix. On real Postgres.

use std::time::Duration;

use serde_json::json;
use studio_ai_job::service::{RenderLeases, RenderReport};
use studio_ai_job::store::{DeadLetter, JobStore, NewStep, RenderOutput, RenderedFile, State};
use studio_ai_job::MIGRATOR;
use studio_core::error::ErrorCode;
use studio_core::id::{ProjectId, UserId};
use studio_testkit::db::{drop_database, fresh_database};

const LEASE: Duration = Duration::from_secs(30);

fn file(kind: &str, key: &str) -> RenderedFile {
    RenderedFile {
        kind: kind.into(),
        storage_key: key.into(),
        size_bytes: 10,
        sha256: "00".repeat(32),
    }
}

fn done(files: Vec<RenderedFile>) -> RenderReport {
    RenderReport::Done(RenderOutput {
        files,
        duration_s: 1.0,
        render_seconds: 1.0,
        encoder: "libx264".into(),
        worker: "w".into(),
    })
}

#[tokio::test]
async fn finish_render_refuses_keys_outside_the_job_and_non_render_steps() {
    let (name, url) = fresh_database("aijobleases").await;
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    MIGRATOR.run(&pool).await.unwrap();
    let store = JobStore::new(pool.clone());
    let leases = RenderLeases {
        store: store.clone(),
    };
    let project = ProjectId::new();
    let step = |kind: &str, input: serde_json::Value| NewStep {
        kind: kind.into(),
        scene: None,
        stage: 0,
        max_attempts: 3,
        input,
    };
    let (job, _) = store
        .create_job(
            UserId::new(),
            project,
            "render",
            None,
            &[step("render", json!({}))],
            10,
        )
        .await
        .unwrap();
    let prefix = format!("projects/{project}/jobs/{}/outputs/", job.id);
    let render = store.steps(job.id).await.unwrap()[0].clone();
    sqlx::query("UPDATE steps SET input = $2 WHERE id = $1")
        .bind(render.id.0)
        .bind(json!({"timeline_key": "t", "inputs": {}, "output_prefix": prefix}))
        .execute(&pool)
        .await
        .unwrap();
    let (lease, _) = leases.claim(render.id, "w", LEASE).await.unwrap().unwrap();
    let token = lease.fencing_token;
    // The token is not the count of claims: it cannot be guessed from the step id.
    assert!(token > 1 << 20, "{token}");
    for guess in [1, 2, token - 1, token + 1] {
        let e = leases
            .finish(render.id, guess, done(Vec::new()))
            .await
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::FailedPrecondition, "guess {guess}");
    }

    let other = format!(
        "projects/{}/jobs/{}/outputs/final.mp4",
        ProjectId::new(),
        job.id
    );
    for (files, why) in [
        (vec![file("video", &other)], "another project's key"),
        (
            vec![file("video", &format!("{prefix}../../x/final.mp4"))],
            "a key climbing out",
        ),
        (vec![file("video", &prefix)], "the prefix itself"),
        (
            vec![file("secrets", &format!("{prefix}final.mp4"))],
            "an unknown kind",
        ),
    ] {
        let e = leases
            .finish(render.id, token, done(files))
            .await
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidArgument, "{why}: {e:?}");
        assert_eq!(e.field.as_deref(), Some("files"), "{why}");
        let now = store.steps(job.id).await.unwrap()[0].clone();
        assert_eq!(
            now.state,
            State::Running,
            "{why}: the step is still running"
        );
    }
    leases
        .finish(
            render.id,
            token,
            done(vec![file("video", &format!("{prefix}final.mp4"))]),
        )
        .await
        .unwrap();
    assert_eq!(
        store.steps(job.id).await.unwrap()[0].state,
        State::Succeeded
    );

    // A plan step, held by a step worker with a real token: not a render worker's to settle,
    // nor to keep alive.
    let (job, _) = store
        .create_job(
            UserId::new(),
            project,
            "plan",
            None,
            &[step("plan", json!({}))],
            10,
        )
        .await
        .unwrap();
    let plan = store.steps(job.id).await.unwrap()[0].clone();
    let lease = store
        .claim(plan.id, "step-worker", LEASE)
        .await
        .unwrap()
        .unwrap();
    let e = leases
        .finish(plan.id, lease.fencing_token, done(Vec::new()))
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::FailedPrecondition, "{e:?}");
    let e = leases
        .heartbeat(plan.id, lease.fencing_token, Duration::from_secs(3600))
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::FailedPrecondition, "{e:?}");
    assert!(leases.claim(plan.id, "w", LEASE).await.unwrap().is_none());
    assert_eq!(store.steps(job.id).await.unwrap()[0].state, State::Running);

    pool.close().await;
    drop_database(&name).await;
}

/// A dead-lettered message of a step that a worker holds under a live lease (a later attempt,
/// announced by the sweeper) does not fail it; once the lease has run out, it does (security
/// review M2).
#[tokio::test]
async fn a_dead_letter_does_not_fail_a_step_held_under_a_live_lease() {
    let (name, url) = fresh_database("aijobdlq").await;
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
    let (job, _) = store
        .create_job(UserId::new(), ProjectId::new(), "dlq", None, &[step], 10)
        .await
        .unwrap();
    let plan = store.steps(job.id).await.unwrap()[0].clone();
    store.claim(plan.id, "w", LEASE).await.unwrap().unwrap();
    assert!(matches!(
        store.fail_dead_lettered(plan.id, "dead").await.unwrap(),
        DeadLetter::HeldUntil(_)
    ));
    assert_eq!(store.steps(job.id).await.unwrap()[0].state, State::Running);
    assert!(!store.job(job.id).await.unwrap().state.is_final());
    // The worker is gone: its lease runs out.
    sqlx::query("UPDATE steps SET lease_expires_at = now() - interval '1 second' WHERE id = $1")
        .bind(plan.id.0)
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(
        store.fail_dead_lettered(plan.id, "dead").await.unwrap(),
        DeadLetter::Failed
    );
    assert_eq!(store.steps(job.id).await.unwrap()[0].state, State::Failed);
    assert_eq!(store.job(job.id).await.unwrap().state, State::Failed);
    pool.close().await;
    drop_database(&name).await;
}
