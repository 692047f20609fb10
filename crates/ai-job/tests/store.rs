//! The job state machine on real Postgres: idempotent creation, stage-by-stage announcements
//! through the outbox, leases and fencing tokens (a zombie worker's write is rejected), retries
//! with backoff, final failure, and the outbox relay publishing exactly once across two relays.

use std::sync::Arc;
use std::time::Duration;

use prost::Message as _;
use serde_json::json;
use studio_ai_job::relay::{announce_expired_leases, relay_once, TAKEOVER_GRACE_S};
use studio_ai_job::store::{Failure, JobStore, NewStep, State, StoreError};
use studio_ai_job::{MIGRATOR, RENDER_QUEUE, STEPS_QUEUE};
use studio_core::id::{ProjectId, StepId, UserId};
use studio_proto::queue::v1::envelope::Body;
use studio_queue::memory::MemoryQueue;
use studio_queue::{QueueSpec, WorkQueue};
use studio_testkit::db::{drop_database, fresh_database};

struct Db {
    name: String,
    store: JobStore,
}

async fn db() -> Db {
    let (name, url) = fresh_database("aijob").await;
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    MIGRATOR.run(&pool).await.unwrap();
    Db {
        name,
        store: JobStore::new(pool),
    }
}

impl Db {
    async fn drop(self) {
        // A connection still checked out would make close() wait; the drop forces them off.
        let _ = tokio::time::timeout(Duration::from_secs(5), self.store.pool.close()).await;
        drop_database(&self.name).await;
    }
}

fn plan() -> Vec<NewStep> {
    let step = |kind: &str, scene: Option<i32>, stage: i32| NewStep {
        kind: kind.to_owned(),
        scene,
        stage,
        max_attempts: 3,
        input: json!({"kind": kind}),
    };
    vec![
        step("plan", None, 0),
        step("narration", Some(0), 1),
        step("picture", Some(0), 1),
        step("render", None, 2),
    ]
}

/// Step ids announced in the outbox, in order, each as a `StepReady`. Render steps go to the
/// render queue, every other step to the steps queue.
async fn announced(store: &JobStore) -> Vec<StepId> {
    let rows =
        sqlx::query_as::<_, (String, Vec<u8>)>("SELECT queue, payload FROM outbox ORDER BY id")
            .fetch_all(&store.pool)
            .await
            .unwrap();
    rows.iter()
        .map(|(queue, p)| {
            match (
                queue.as_str(),
                studio_queue::Envelope::decode(p.as_slice()).unwrap().body,
            ) {
                (STEPS_QUEUE | RENDER_QUEUE, Some(Body::StepReady(s))) => {
                    StepId(s.step_id.parse().unwrap())
                }
                other => panic!("{other:?}"),
            }
        })
        .collect()
}

const LEASE: Duration = Duration::from_secs(30);

#[tokio::test]
async fn a_job_runs_stage_by_stage_and_creation_is_idempotent() {
    let db = db().await;
    let s = &db.store;
    let (owner, project) = (UserId::new(), ProjectId::new());
    let (job, created) = s
        .create_job(owner, project, "start-1", None, &plan(), 100)
        .await
        .unwrap();
    assert!(created);
    assert_eq!(job.state, State::Queued);
    let (again, created) = s
        .create_job(owner, project, "start-1", None, &plan(), 100)
        .await
        .unwrap();
    assert_eq!((again.id, created), (job.id, false), "same key, same job");
    let steps = s.steps(job.id).await.unwrap();
    assert_eq!(steps.len(), 4);
    assert_eq!(
        announced(s).await,
        vec![steps[0].id],
        "only the first stage is announced"
    );

    // Stage 0.
    let lease = s.claim(steps[0].id, "w1", LEASE).await.unwrap().unwrap();
    assert_eq!(lease.attempt, 1);
    assert!(lease.fencing_token >= 1, "{}", lease.fencing_token);
    assert_eq!(s.job(job.id).await.unwrap().state, State::Running);
    s.complete(&lease, json!({"scenes": 1}), 1_000, &[])
        .await
        .unwrap();
    let stage1: Vec<StepId> = steps[1..3].iter().map(|s| s.id).collect();
    assert_eq!(
        announced(s).await[1..],
        stage1[..],
        "stage 1 announced when stage 0 is done"
    );

    // Stage 1 in parallel; the render waits for both.
    let a = s.claim(stage1[0], "w1", LEASE).await.unwrap().unwrap();
    let b = s.claim(stage1[1], "w2", LEASE).await.unwrap().unwrap();
    s.complete(&a, json!({"audio": "a.wav"}), 2_000, &[])
        .await
        .unwrap();
    assert_eq!(announced(s).await.len(), 3, "render not yet");
    s.complete(&b, json!({"image": "a.png"}), 3_000, &[])
        .await
        .unwrap();
    assert_eq!(announced(s).await.last(), Some(&steps[3].id));
    let render = s.claim(steps[3].id, "w3", LEASE).await.unwrap().unwrap();
    s.complete(&render, json!({"video": "final.mp4"}), 0, &[])
        .await
        .unwrap();

    let done = s.job(job.id).await.unwrap();
    assert_eq!(done.state, State::Succeeded);
    assert_eq!(done.cost_micro_usd, 6_000);
    assert!(
        s.claim(steps[3].id, "w4", LEASE).await.unwrap().is_none(),
        "finished steps stay finished"
    );
    db.drop().await;
}

#[tokio::test]
async fn a_zombie_worker_cannot_overwrite_the_step_another_worker_finished() {
    let db = db().await;
    let s = &db.store;
    let (job, _) = s
        .create_job(UserId::new(), ProjectId::new(), "k", None, &plan(), 100)
        .await
        .unwrap();
    let step = s.steps(job.id).await.unwrap()[0].id;
    let zombie = s
        .claim(step, "zombie", Duration::from_millis(200))
        .await
        .unwrap()
        .unwrap();
    assert!(
        s.claim(step, "other", LEASE).await.unwrap().is_none(),
        "a live lease is exclusive"
    );
    // The zombie stalls past its lease (and the sweeper's grace); the sweeper re-announces,
    // another worker takes over.
    tokio::time::sleep(Duration::from_secs_f64(TAKEOVER_GRACE_S + 0.4)).await;
    assert_eq!(announce_expired_leases(s).await.unwrap(), 1);
    assert_eq!(
        announce_expired_leases(s).await.unwrap(),
        0,
        "announced once"
    );
    let live = s.claim(step, "live", LEASE).await.unwrap().unwrap();
    assert_eq!(live.attempt, 2);
    assert!(
        live.fencing_token > zombie.fencing_token,
        "tokens only grow"
    );
    s.complete(&live, json!({"by": "live"}), 10, &[])
        .await
        .unwrap();
    // The zombie wakes up and tries to write: rejected, nothing changed.
    let write = s.complete(&zombie, json!({"by": "zombie"}), 99, &[]).await;
    assert!(
        matches!(write, Err(StoreError::Fenced { token, .. }) if token == zombie.fencing_token),
        "{write:?}"
    );
    assert!(matches!(
        s.fail(&zombie, Failure::Final("zombie".into()), LEASE)
            .await,
        Err(StoreError::Fenced { .. })
    ));
    assert!(matches!(
        s.heartbeat(&zombie, LEASE).await,
        Err(StoreError::Fenced { .. })
    ));
    let steps = s.steps(job.id).await.unwrap();
    assert_eq!(steps[0].output, Some(json!({"by": "live"})));
    assert_eq!(steps[0].state, State::Succeeded);
    assert_eq!(s.job(job.id).await.unwrap().cost_micro_usd, 10);
    db.drop().await;
}

#[tokio::test]
async fn retries_back_off_and_a_final_failure_fails_the_job_keeping_finished_work() {
    let db = db().await;
    let s = &db.store;
    let (job, _) = s
        .create_job(UserId::new(), ProjectId::new(), "k", None, &plan(), 100)
        .await
        .unwrap();
    let steps = s.steps(job.id).await.unwrap();
    let l = s.claim(steps[0].id, "w", LEASE).await.unwrap().unwrap();
    s.complete(&l, json!({"plan": true}), 5, &[]).await.unwrap();
    let narration = steps[1].id;
    let l = s.claim(narration, "w", LEASE).await.unwrap().unwrap();
    // Provider calls are recorded once per idempotency key, even when a retry repeats one.
    assert!(s
        .record_provider_call(&l, "tts:abc", "espeak-ng", "1.51", 0, false)
        .await
        .unwrap());
    let state = s
        .fail(
            &l,
            Failure::Retryable("timeout".into()),
            Duration::from_millis(300),
        )
        .await
        .unwrap();
    assert_eq!(state, State::Queued);
    assert!(
        s.claim(narration, "w", LEASE).await.unwrap().is_none(),
        "not before the backoff"
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    let l = s.claim(narration, "w", LEASE).await.unwrap().unwrap();
    assert_eq!(l.attempt, 2);
    assert!(!s
        .record_provider_call(&l, "tts:abc", "espeak-ng", "1.51", 0, false)
        .await
        .unwrap());
    let state = s
        .fail(
            &l,
            Failure::Final("voice xx-yy is not installed; pick another voice".into()),
            Duration::from_millis(300),
        )
        .await
        .unwrap();
    assert_eq!(state, State::Failed);
    let failed = s.job(job.id).await.unwrap();
    assert_eq!(failed.state, State::Failed);
    assert!(
        failed.error.contains("voice xx-yy is not installed"),
        "{}",
        failed.error
    );
    let after = s.steps(job.id).await.unwrap();
    assert_eq!(
        after[0].output,
        Some(json!({"plan": true})),
        "finished work is kept"
    );
    assert!(
        s.claim(steps[2].id, "w", LEASE).await.unwrap().is_none(),
        "a failed job takes no claims"
    );
    let calls: i64 = sqlx::query_scalar("SELECT count(*) FROM provider_calls")
        .fetch_one(&s.pool)
        .await
        .unwrap();
    assert_eq!(calls, 1);
    db.drop().await;
}

#[tokio::test]
async fn the_relay_publishes_each_outbox_row_once_across_concurrent_relays() {
    let db = db().await;
    let s = &db.store;
    let queue = Arc::new(MemoryQueue::new());
    queue.declare(&QueueSpec::new(STEPS_QUEUE)).await.unwrap();
    // 30 jobs: 30 first-stage announcements.
    for i in 0..30 {
        s.create_job(
            UserId::new(),
            ProjectId::new(),
            &format!("k{i}"),
            None,
            &plan(),
            100,
        )
        .await
        .unwrap();
    }
    let (a, b) = tokio::join!(
        relay_once(&s.pool, queue.as_ref(), 7),
        relay_once(&s.pool, queue.as_ref(), 7)
    );
    let mut total = a.unwrap() + b.unwrap();
    while total < 30 {
        let n = relay_once(&s.pool, queue.as_ref(), 7).await.unwrap();
        assert!(n > 0);
        total += n;
    }
    assert_eq!(total, 30);
    assert_eq!(
        relay_once(&s.pool, queue.as_ref(), 7).await.unwrap(),
        0,
        "nothing left"
    );
    assert_eq!(
        queue.depth(STEPS_QUEUE).await.unwrap(),
        30,
        "each row published once"
    );
    // Publishing to a queue that does not exist keeps the row for later.
    let (job, _) = s
        .create_job(UserId::new(), ProjectId::new(), "late", None, &plan(), 100)
        .await
        .unwrap();
    let empty = MemoryQueue::new();
    assert!(relay_once(&s.pool, &empty, 10).await.is_err());
    assert_eq!(relay_once(&s.pool, queue.as_ref(), 10).await.unwrap(), 1);
    let mut consumer = queue.consume(STEPS_QUEUE, 1).await.unwrap();
    let mut last = None;
    for _ in 0..31 {
        let d = consumer.next().await.unwrap();
        last = Some(d.envelope.clone());
        d.ack().await.unwrap();
    }
    match last.unwrap().body {
        Some(Body::StepReady(step)) => assert_eq!(step.job_id, job.id.to_string()),
        other => panic!("{other:?}"),
    }
    db.drop().await;
}

#[tokio::test]
async fn progress_events_stream_live_in_order_until_the_job_ends() {
    let db = db().await;
    let s = db.store.clone();
    let owner = UserId::new();
    let (job, _) = s
        .create_job(owner, ProjectId::new(), "watched", None, &plan(), 100)
        .await
        .unwrap();
    let hub = studio_ai_job::watch::EventHub::start(&s).await.unwrap();
    let mut watch = studio_ai_job::watch::Watch::start(s.clone(), &hub, job.id, 0)
        .await
        .unwrap();
    let first = watch.next().await.unwrap().unwrap();
    assert_eq!(
        (first.sequence, first.state, first.message.as_str()),
        (1, State::Queued, "queued")
    );

    let worker = {
        let s = s.clone();
        tokio::spawn(async move {
            for step in s.steps(job.id).await.unwrap() {
                tokio::time::sleep(Duration::from_millis(30)).await;
                let lease = s.claim(step.id, "w", LEASE).await.unwrap().unwrap();
                s.complete(&lease, json!({}), 250, &[]).await.unwrap();
            }
        })
    };
    let mut events = vec![first];
    while let Some(event) = tokio::time::timeout(Duration::from_secs(10), watch.next())
        .await
        .expect("events keep coming")
        .unwrap()
    {
        events.push(event);
    }
    worker.await.unwrap();
    let sequences: Vec<i64> = events.iter().map(|e| e.sequence).collect();
    assert_eq!(
        sequences,
        (1..=9).collect::<Vec<_>>(),
        "1 queued + 4 started + 4 done, no gaps"
    );
    let last = events.last().unwrap();
    assert_eq!(
        (last.state, last.percent, last.cost_micro_usd),
        (State::Succeeded, 100.0, 1000)
    );
    assert!(events.windows(2).all(|w| w[0].percent <= w[1].percent));
    assert_eq!(events[2].message, "plan done");
    assert_eq!(events[2].percent, 25.0);

    // A late watcher gets the history and ends at once.
    let mut late = studio_ai_job::watch::Watch::start(s.clone(), &hub, job.id, 7)
        .await
        .unwrap();
    assert_eq!(late.next().await.unwrap().unwrap().sequence, 8);
    assert_eq!(late.next().await.unwrap().unwrap().sequence, 9);
    assert!(late.next().await.unwrap().is_none());
    // Watchers hold pooled connections; release them before closing the pool.
    drop(watch);
    drop(late);
    db.drop().await;
}

#[tokio::test]
async fn cancelling_stops_claims_and_rejects_the_running_worker_and_only_the_owner_may() {
    let db = db().await;
    let s = &db.store;
    let owner = UserId::new();
    let project = ProjectId::new();
    let (job, _) = s
        .create_job(owner, project, "c", None, &plan(), 100)
        .await
        .unwrap();
    let (other, _) = s
        .create_job(owner, project, "d", None, &plan(), 100)
        .await
        .unwrap();
    let steps = s.steps(job.id).await.unwrap();
    let running = s.claim(steps[0].id, "w", LEASE).await.unwrap().unwrap();

    assert!(matches!(
        s.cancel(UserId::new(), job.id).await,
        Err(StoreError::NotFound("job"))
    ));
    assert!(matches!(
        s.job_for_owner(UserId::new(), job.id).await,
        Err(StoreError::NotFound(_))
    ));
    let cancelled = s.cancel(owner, job.id).await.unwrap();
    assert_eq!(cancelled.state, State::Cancelled);
    assert!(matches!(
        s.cancel(owner, job.id).await,
        Err(StoreError::AlreadyFinal(State::Cancelled))
    ));
    assert!(matches!(
        s.complete(&running, json!({}), 1, &[]).await,
        Err(StoreError::Fenced { .. })
    ));
    assert!(s.claim(steps[1].id, "w", LEASE).await.unwrap().is_none());
    let events = s.events(job.id, 0).await.unwrap();
    assert_eq!(events.last().unwrap().message, "cancelled");

    let listed = s.list_jobs(owner, Some(project), None, 10).await.unwrap();
    assert_eq!(
        listed.iter().map(|j| j.id).collect::<Vec<_>>(),
        vec![other.id, job.id]
    );
    let page = s.list_jobs(owner, None, Some(other.id), 10).await.unwrap();
    assert_eq!(page.len(), 1);
    assert!(s
        .list_jobs(UserId::new(), None, None, 10)
        .await
        .unwrap()
        .is_empty());
    db.drop().await;
}

/// A cancel racing the settling and claiming of the same job's steps never deadlocks: every
/// writer takes the step rows before the job row (security review L1). 200 rounds of a cancel,
/// a complete, a failure and a claim on one job at once; any answer but a database error is
/// fine (the losers are fenced or find the job ended).
#[tokio::test]
async fn cancel_racing_settles_and_claims_never_deadlocks() {
    let db = db().await;
    let s = &db.store;
    let owner = UserId::new();
    let project = ProjectId::new();
    let mut settled = 0;
    for round in 0..200 {
        let (job, _) = s
            .create_job(owner, project, &format!("race-{round}"), None, &plan(), 100)
            .await
            .unwrap();
        let steps = s.steps(job.id).await.unwrap();
        let done = s.claim(steps[0].id, "a", LEASE).await.unwrap().unwrap();
        let failing = s.claim(steps[2].id, "b", LEASE).await.unwrap().unwrap();
        let retry = Failure::Retryable("flaky".to_owned());
        let (cancel, complete, fail, claim) = tokio::join!(
            s.cancel(owner, job.id),
            s.complete(&done, json!({"ok": true}), 1, &[]),
            s.fail(&failing, retry, Duration::from_secs(1)),
            s.claim(steps[1].id, "c", LEASE),
        );
        let deadlock = |e: &StoreError| match e {
            StoreError::Database(sqlx::Error::Database(db)) => {
                panic!("round {round}: {} ({:?})", db.message(), db.code())
            }
            StoreError::Database(other) => panic!("round {round}: {other}"),
            _ => {}
        };
        if let Err(e) = &cancel {
            deadlock(e);
        }
        if let Err(e) = &complete {
            deadlock(e);
        }
        if let Err(e) = &fail {
            deadlock(e);
        }
        if let Err(e) = &claim {
            deadlock(e);
        }
        settled += usize::from(complete.is_ok());
        assert_eq!(
            s.job(job.id).await.unwrap().state,
            State::Cancelled,
            "round {round}: the cancel always lands"
        );
    }
    // Both orders happened: some completes landed before the cancel, some were fenced by it.
    assert!(
        settled > 0 && settled < 200,
        "{settled} of 200 completes landed"
    );
    db.drop().await;
}
