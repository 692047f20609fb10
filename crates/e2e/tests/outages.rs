//! Outages and limits end to end, every service its own process: restarting the ai-job API while
//! a render waits fails nothing and dead-letters nothing (the render worker holds its message and
//! tries the claim again instead of spending deliveries); a render past `render_timeout_s` fails
//! its job for good, naming the limit (security review H5, H3).

use std::time::{Duration, Instant};

use studio_e2e::api::Api;
use studio_e2e::{counter, Broker, Options, Platform};

/// Waits until `job` has a step of `kind` in `state`.
async fn step_in(pool: &sqlx::PgPool, job: &str, kind: &str, state: &str, timeout: Duration) {
    let job: uuid::Uuid = job.parse().unwrap();
    let deadline = Instant::now() + timeout;
    loop {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM steps WHERE job_id = $1 AND kind = $2 AND state = $3",
        )
        .bind(job)
        .bind(kind)
        .bind(state)
        .fetch_one(pool)
        .await
        .unwrap();
        if n > 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no {state} {kind} step within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn restarting_the_ai_job_api_while_a_render_waits_fails_nothing() {
    let mut platform = Platform::start(Options::new(Broker::local_rabbitmq())).await;
    let api = Api::new(&platform);
    let token = api.register("restart-api@example.com").await;
    let project = api.fable_project(&token, "1:1").await;
    let (status, job) = api.start(&token, &project, "api-restart").await;
    assert_eq!(status, 201, "{job}");
    let id = job["id"].as_str().unwrap().to_owned();
    let pool = sqlx::PgPool::connect(&platform.ai_job_db_url)
        .await
        .unwrap();
    // Hold the render worker still while the render is announced, so that it takes the message
    // only once the API is gone.
    step_in(&pool, &id, "plan", "succeeded", Duration::from_secs(120)).await;
    platform.media_render.signal("STOP");
    step_in(&pool, &id, "render", "queued", Duration::from_secs(120)).await;
    tokio::time::sleep(Duration::from_secs(1)).await; // the relay publishes the announcement
    platform.ai_job_api.kill9();
    platform.media_render.signal("CONT");
    // The render worker meets a dead API for 15 s: a claim a second, each handing the message
    // back, would have spent its five deliveries and dead-lettered it.
    tokio::time::sleep(Duration::from_secs(15)).await;
    platform.ai_job_api.restart().await;
    let done = api.wait(&token, &id, Duration::from_secs(300)).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    let metrics = platform.ai_job_api.metrics().await;
    assert_eq!(counter(&metrics, "ai_job_dead_lettered_total"), 0.0);
    let render = platform.media_render.metrics().await;
    assert!(
        counter(&render, "media_render_claim_retries_total") >= 1.0,
        "the claim met the outage and was tried again"
    );
    pool.close().await;
    platform.stop().await;
}

#[tokio::test]
async fn a_render_past_its_deadline_fails_the_job_naming_the_limit() {
    let mut options = Options::new(Broker::local_rabbitmq());
    options.render_timeout_s = 1;
    let platform = Platform::start(options).await;
    let api = Api::new(&platform);
    let token = api.register("deadline@example.com").await;
    let project = api.fable_project(&token, "1:1").await;
    let (status, job) = api.start(&token, &project, "deadline").await;
    assert_eq!(status, 201, "{job}");
    let done = api
        .wait(
            &token,
            job["id"].as_str().unwrap(),
            Duration::from_secs(300),
        )
        .await;
    assert_eq!(done["state"], "failed", "{done}");
    let error = done["error"].as_str().unwrap_or_default();
    assert!(error.contains("media_render.render_timeout_s"), "{done}");
    platform.stop().await;
}

/// Postgres unreachable from the step workers for 40 s in the middle of a job (every connection
/// dropped, new ones closed at once, through a TCP proxy): the workers hold their deliveries and
/// try again, the job succeeds, and nothing is dead-lettered (security review H5).
#[tokio::test]
async fn a_postgres_blip_fails_no_job() {
    let postgres = studio_testkit::db::admin_url();
    let authority = postgres
        .split_once("://")
        .and_then(|(_, rest)| rest.split('/').next())
        .and_then(|a| a.rsplit('@').next())
        .unwrap();
    let upstream = tokio::net::lookup_host(authority)
        .await
        .unwrap()
        .next()
        .unwrap();
    let proxy = studio_testkit::proxy::TcpProxy::start(upstream).await;
    let mut options = Options::new(Broker::local_rabbitmq());
    options.worker_database_port = Some(proxy.port);
    let platform = Platform::start(options).await;
    let api = Api::new(&platform);
    let token = api.register("postgres-blip@example.com").await;
    let project = api.fable_project(&token, "1:1").await;
    let (status, job) = api.start(&token, &project, "postgres-blip").await;
    assert_eq!(status, 201, "{job}");
    let id = job["id"].as_str().unwrap().to_owned();
    let pool = sqlx::PgPool::connect(&platform.ai_job_db_url)
        .await
        .unwrap();
    step_in(&pool, &id, "plan", "succeeded", Duration::from_secs(120)).await;
    proxy.cut();
    tokio::time::sleep(Duration::from_secs(40)).await;
    proxy.restore();
    let done = api.wait(&token, &id, Duration::from_secs(300)).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert!(
        proxy.dropped() > 0,
        "the cut dropped the workers' connections"
    );
    let metrics = platform.ai_job_api.metrics().await;
    assert_eq!(counter(&metrics, "ai_job_dead_lettered_total"), 0.0);
    let dead: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM steps WHERE job_id = $1 AND error LIKE '%dead-letter%'",
    )
    .bind(id.parse::<uuid::Uuid>().unwrap())
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(dead, 0);
    pool.close().await;
    platform.stop().await;
}
