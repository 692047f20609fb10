//! Platform overhead and job throughput, with every service as its own process (RabbitMQ, S3 via
//! s3s-fs, local providers, which answer in milliseconds):
//!
//! - **overhead per job**: REST start → the success event over WebSocket, minus the work itself
//!   (for each stage, the longest step from claim to completion, render included). What remains
//!   is the platform: outbox relay, broker hops, claims, progress events, the gateway.
//! - **throughput**: 50 jobs started at once, jobs completed per minute.
//!
//! Run: `cargo build --release --bins && cargo bench -p studio-e2e --bench jobs` (`STUDIO_BENCH_JOBS`
//! overrides the 50; `STUDIO_BENCH_SAMPLES` the 5 sequential jobs of the overhead figure).

use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use serde_json::{json, Value};
use studio_e2e::{Broker, Options, Platform};
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::Message;

const TEXT: &str = "The Ant And The Grain\n\nAn ant carried a grain of wheat to its nest. It rested when the work was done.\n";

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn post(http: &reqwest::Client, url: String, token: Option<&str>, body: Value) -> Value {
    let mut req = http.post(url).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap().json().await.unwrap()
}

/// Starts a job and returns its id.
async fn start(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    project: &str,
    key: &str,
) -> String {
    let job: Value = http
        .post(format!("{base}/v1/projects/{project}/jobs"))
        .bearer_auth(token)
        .header("Idempotency-Key", key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    job["id"].as_str().expect("job id").to_owned()
}

/// Reads events over WebSocket until the final one; returns its state.
async fn until_final(base: &str, token: &str, job: &str) -> String {
    let url = format!("{}/v1/jobs/{job}/events", base.replace("http://", "ws://"));
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let mut state = String::new();
    while let Some(Ok(message)) = socket.next().await {
        if let Message::Text(text) = message {
            let event: Value = serde_json::from_str(&text).unwrap();
            state = event["state"].as_str().unwrap_or_default().to_owned();
        }
    }
    state
}

/// Seconds of work on the job's critical path: per stage, the longest step (claim → done).
async fn work_seconds(pool: &sqlx::PgPool, job: &str) -> f64 {
    sqlx::query_scalar::<_, f64>(
        "SELECT COALESCE(sum(longest), 0)::float8 FROM (
             SELECT max(extract(epoch FROM finished_at - started_at)) AS longest
             FROM steps WHERE job_id = $1 AND state = 'succeeded' GROUP BY stage) s",
    )
    .bind(job.parse::<uuid::Uuid>().unwrap())
    .fetch_one(pool)
    .await
    .unwrap()
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` runs this binary without it.
    if !std::env::args().any(|a| a == "--bench") {
        println!("jobs benchmark: run it with cargo bench -p studio-e2e --bench jobs");
        return;
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let samples = env("STUDIO_BENCH_SAMPLES", 5);
        let queued = env("STUDIO_BENCH_JOBS", 50);
        let platform = Platform::start(Options::new(Broker::local_rabbitmq())).await;
        let base = platform.gateway.clone();
        let http = reqwest::Client::new();
        let auth = post(
            &http,
            format!("{base}/v1/auth/register"),
            None,
            json!({"email": "bench@example.com", "password": "correct horse battery"}),
        )
        .await;
        let token = auth["access_token"].as_str().unwrap().to_owned();
        let project = post(
            &http,
            format!("{base}/v1/projects"),
            Some(&token),
            json!({"title": "Ant", "source_text": TEXT, "aspect": "1:1", "settings": {"music": false}}),
        )
        .await;
        let project = project["id"].as_str().unwrap().to_owned();
        let pool = sqlx::PgPool::connect(&platform.ai_job_db_url).await.unwrap();

        // Warm-up: fills the provider cache the way a second job of the same text would.
        let warm = start(&http, &base, &token, &project, "warm-up").await;
        assert_eq!(until_final(&base, &token, &warm).await, "succeeded");

        let mut overheads = Vec::new();
        let mut walls = Vec::new();
        for i in 0..samples {
            let t = Instant::now();
            let job = start(&http, &base, &token, &project, &format!("sample-{i}")).await;
            assert_eq!(until_final(&base, &token, &job).await, "succeeded");
            let wall = t.elapsed().as_secs_f64();
            let work = work_seconds(&pool, &job).await;
            walls.push(wall);
            overheads.push(wall - work);
        }
        overheads.sort_by(f64::total_cmp);
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;

        let t = Instant::now();
        let mut ids = Vec::new();
        for i in 0..queued {
            ids.push(start(&http, &base, &token, &project, &format!("load-{i}")).await);
        }
        let waits = ids.iter().map(|id| until_final(&base, &token, id));
        let states = futures_util::future::join_all(waits).await;
        let elapsed = t.elapsed();
        assert!(states.iter().all(|s| s == "succeeded"), "{states:?}");
        let per_minute = queued as f64 / elapsed.as_secs_f64() * 60.0;

        println!("platform overhead per job ({samples} sequential jobs, RabbitMQ + S3, local providers):");
        println!(
            "  wall      mean {:.3} s (REST start -> success event)",
            mean(&walls)
        );
        println!(
            "  overhead  mean {:.3} s, median {:.3} s, max {:.3} s (wall - per-stage longest step){}",
            mean(&overheads),
            overheads[overheads.len() / 2],
            overheads[overheads.len() - 1],
            if mean(&overheads) < 1.0 { "  [target < 1 s: met]" } else { "  [target < 1 s: MISSED]" }
        );
        println!(
            "throughput: {queued} jobs queued at once, all done in {:.1} s = {per_minute:.1} jobs/min",
            elapsed.as_secs_f64()
        );
        pool.close().await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        platform.stop().await;
    });
}
