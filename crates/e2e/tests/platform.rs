//! The platform end to end, every service its own process: a user registers, creates a project
//! from Aesop's "The Lion And The Mouse" (examples/texts, from ../shared/data), starts a job, follows it over WebSocket to success and
//! downloads the video through its presigned URL (once over RabbitMQ + S3, once over SQS + S3);
//! bad requests get clear errors and leave nothing behind; and seeded crash trials kill -9 the
//! step worker or the render worker mid-job: every job still succeeds, no provider call is
//! recorded twice, and the video is uploaded once.
//!
//! Also: a worker frozen with SIGSTOP past its lease cannot overwrite the step its successor
//! finished (its write is fenced and counted); a message that kills every worker that takes it
//! is dead-lettered and fails its job with the reason while other jobs run; and restarting
//! RabbitMQ (a private node) during 200 small jobs loses and repeats nothing; and a topic-only
//! project is written, planned and spoken by AI providers configured by settings alone (the
//! local fake of the OpenAI API).
//!
//! `STUDIO_E2E_TRIALS` sets the number of crash trials (default 3; the long mode runs 20),
//! `STUDIO_E2E_SEED` their seed, `STUDIO_E2E_RESTART_JOBS` the jobs of the restart test (200).

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use studio_e2e::api::{Api, FABLE};
use studio_e2e::{counter, Broker, Options, Platform};
use studio_testkit::media::probe;
use studio_testkit::texts::letters;

fn fable_source() -> String {
    studio_testkit::texts::fable(FABLE)
}

/// The video as `studio render` promises it: H.264 at the aspect's size, AAC audio, the
/// narration's length, captions that are the fable's own words.
fn check_video(video: &Path, srt: &Path, width: u64, height: u64) {
    let p = probe(video);
    let streams = p["streams"].as_array().unwrap();
    let v = streams
        .iter()
        .find(|s| s["codec_type"] == "video")
        .expect("video stream");
    let a = streams
        .iter()
        .find(|s| s["codec_type"] == "audio")
        .expect("audio stream");
    assert_eq!(v["codec_name"], "h264");
    assert_eq!(
        (v["width"].as_u64().unwrap(), v["height"].as_u64().unwrap()),
        (width, height)
    );
    assert_eq!(a["codec_name"], "aac");
    let duration: f64 = p["format"]["duration"].as_str().unwrap().parse().unwrap();
    assert!((20.0..120.0).contains(&duration), "duration {duration}");
    let source = letters(&fable_source());
    let srt = std::fs::read_to_string(srt).unwrap();
    let cues: Vec<&str> = srt
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.contains("-->") && l.parse::<u32>().is_err())
        .collect();
    assert!(cues.len() >= 5, "{srt}");
    for cue in cues {
        assert!(
            source.contains(&letters(cue)),
            "caption {cue:?} is not the fable's words"
        );
    }
}

async fn assert_queues_empty(platform: &Platform) {
    let queue = platform.options.broker.connect().await;
    for name in [studio_queue::names::STEPS, studio_queue::names::RENDER] {
        let name = format!("{}{name}", platform.queue_prefix);
        assert_eq!(queue.depth(&name).await.unwrap(), 0, "{name}");
        assert_eq!(
            queue
                .depth(&studio_queue::dead_letter_name(&name))
                .await
                .unwrap(),
            0,
            "{name} dead letters"
        );
    }
}

/// Exactly one provider call recorded per provider step, and the job's final video uploaded
/// exactly once.
async fn assert_exactly_once(platform: &Platform, job: &Value) {
    let pool = sqlx::PgPool::connect(&platform.ai_job_db_url)
        .await
        .unwrap();
    let job_id: uuid::Uuid = job["id"].as_str().unwrap().parse().unwrap();
    // A step repeated after a crash asks for the same thing again: a second, different call
    // recorded for one step would mean work (and cost) applied twice.
    let twice: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT c.step_id FROM provider_calls c
           JOIN steps s ON s.id = c.step_id WHERE s.job_id = $1
           GROUP BY c.step_id HAVING count(*) > 1) t",
    )
    .bind(job_id)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(twice, 0, "a step recorded more than one provider call");
    let without: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM steps s WHERE s.job_id = $1
           AND s.kind IN ('plan', 'narration', 'picture', 'music')
           AND NOT EXISTS (SELECT 1 FROM provider_calls c WHERE c.step_id = s.id)",
    )
    .bind(job_id)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(without, 0, "every provider step recorded its call");
    pool.close().await;
    // Under the attempt that rendered it: `…/outputs/{attempt}/final.mp4`.
    let outputs = format!("{}/outputs/", job["id"].as_str().unwrap());
    let uploads = platform.s3.uploads_ending_with("/final.mp4");
    let uploads: std::collections::HashMap<_, _> = uploads
        .into_iter()
        .filter(|(key, _)| key.contains(&outputs))
        .collect();
    assert_eq!(
        uploads.values().sum::<u32>(),
        1,
        "final.mp4 uploads: {uploads:?}"
    );
}

async fn end_to_end(platform: &Platform) {
    let api = Api::new(platform);
    let token = api
        .register(&format!(
            "ada-{}@example.com",
            uuid::Uuid::new_v4().simple()
        ))
        .await;
    let project = api.fable_project(&token, "16:9").await;
    let (status, job) = api.start(&token, &project, "first").await;
    assert_eq!(status, 201, "{job}");
    let id = job["id"].as_str().unwrap().to_owned();
    // Same key: the same job, not a second one.
    let (status, again) = api.start(&token, &project, "first").await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["id"], job["id"]);

    let events = api.events_ws(&token, &id).await;
    assert!(!events.is_empty());
    let seq: Vec<u64> = events
        .iter()
        .map(|e| e["sequence"].as_u64().unwrap())
        .collect();
    assert!(
        seq.windows(2).all(|w| w[1] == w[0] + 1),
        "gap-free: {seq:?}"
    );
    let last = events.last().unwrap();
    assert_eq!(last["state"], "succeeded", "{events:#?}");
    assert_eq!(last["percent"], 100.0);
    assert!(events.iter().any(|e| e["stage"] == "render"));
    // Connecting after the end gives the current state first (and only).
    let after = api.events_ws(&token, &id).await;
    assert_eq!(after.len(), 1);
    assert_eq!(after[0]["state"], "succeeded");

    // Server-Sent Events give the same: the current state, then the end of the stream.
    let sse = api
        .http
        .get(format!("{}/v1/jobs/{id}/events", api.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(sse.headers()["content-type"], "text/event-stream");
    let text = sse.text().await.unwrap();
    assert!(text.contains("event: progress"), "{text}");
    assert!(text.contains(r#""state":"succeeded""#), "{text}");

    let done = api.wait(&token, &id, Duration::from_secs(10)).await;
    let kinds: Vec<&str> = done["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["kind"].as_str().unwrap())
        .collect();
    for k in ["video", "captions_srt", "captions_vtt", "thumbnail"] {
        assert!(kinds.contains(&k), "{kinds:?}");
    }
    let dir = tempfile::tempdir().unwrap();
    let video = api
        .download(&token, &id, "video", dir.path(), "final.mp4")
        .await;
    let srt = api
        .download(&token, &id, "captions_srt", dir.path(), "captions.srt")
        .await;
    check_video(&video, &srt, 1920, 1080);
    assert_exactly_once(platform, &done).await;

    // Bad input: clear errors, nothing left behind.
    let other = api
        .register(&format!(
            "eve-{}@example.com",
            uuid::Uuid::new_v4().simple()
        ))
        .await;
    for (method, path) in [
        ("GET", format!("/v1/jobs/{id}")),
        ("POST", format!("/v1/jobs/{id}/cancel")),
        ("GET", format!("/v1/jobs/{id}/outputs/video")),
        ("GET", format!("/v1/jobs/{id}/events")),
        ("POST", format!("/v1/projects/{project}/jobs")),
    ] {
        let (status, body) = api.call(method, &path, Some(&other), None).await;
        assert_eq!(status, 404, "{method} {path} as another user: {body}");
    }
    let unknown = uuid::Uuid::now_v7();
    let (status, _) = api
        .call("GET", &format!("/v1/jobs/{unknown}"), Some(&token), None)
        .await;
    assert_eq!(status, 404);
    let (status, body) = api
        .call("GET", "/v1/jobs/not-a-uuid", Some(&token), None)
        .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (400, Some("id")),
        "{body}"
    );
    let (status, body) = api
        .call("POST", &format!("/v1/jobs/{id}/cancel"), Some(&token), None)
        .await;
    assert_eq!(status, 409, "cancelling a finished job: {body}");
    assert!(
        body["detail"].as_str().unwrap().contains("already ended"),
        "{body}"
    );
    let (status, body) = api
        .call(
            "GET",
            &format!("/v1/jobs/{id}/outputs/poster"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (400, Some("kind")),
        "{body}"
    );
    // A project with a topic but no text: no language model here to write a script.
    let (status, topic) = api
        .call(
            "POST",
            "/v1/projects",
            Some(&token),
            Some(json!({"title": "Bees", "topic": "how bees dance"})),
        )
        .await;
    assert_eq!(status, 201, "{topic}");
    let (status, body) = api
        .start(&token, topic["id"].as_str().unwrap(), "topic")
        .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (409, Some("source_text")),
        "{body}"
    );
    // A job cancelled while queued never runs.
    let (status, cancelled) = api.start(&token, &project, "second").await;
    assert_eq!(status, 201);
    let cid = cancelled["id"].as_str().unwrap();
    let (status, body) = api
        .call(
            "POST",
            &format!("/v1/jobs/{cid}/cancel"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "cancelled");
    let (status, body) = api
        .call(
            "GET",
            &format!("/v1/jobs/{cid}/outputs/video"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, 409, "no outputs for a cancelled job: {body}");
    let (status, list) = api
        .call("GET", "/v1/jobs?page_size=10", Some(&token), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(list["items"].as_array().unwrap().len(), 2, "{list}");
    // Give the cancelled job's announcement time to be consumed and dropped.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_queues_empty(platform).await;
    let keys: Vec<String> = {
        use studio_storage::ObjectStore as _;
        platform
            .store()
            .list(&format!("projects/{project}/jobs/{cid}/outputs/"))
            .await
            .unwrap()
            .into_iter()
            .map(|o| o.key)
            .collect()
    };
    assert!(keys.is_empty(), "a cancelled job has no outputs: {keys:?}");
}

#[tokio::test]
async fn rabbitmq_and_s3_end_to_end() {
    let platform = Platform::start(Options::new(Broker::local_rabbitmq())).await;
    end_to_end(&platform).await;
    platform.stop().await;
}

#[tokio::test]
async fn sqs_and_s3_end_to_end() {
    let moto = studio_testkit::moto::Moto::start().await;
    let broker = Broker::Sqs {
        endpoint: moto.endpoint(),
    };
    let platform = Platform::start(Options::new(broker)).await;
    end_to_end(&platform).await;
    platform.stop().await;
}

/// A topic-only project (refused with 409 where no language model is configured) is written
/// and planned by the configured language model and spoken by the configured voice, both the
/// local fake of the OpenAI API; a topic the vendor refuses fails its job with the vendor's
/// reason.
#[tokio::test]
async fn a_topic_project_is_written_and_spoken_by_the_configured_vendors() {
    use studio_testkit::openai::{self, FakeOpenAi};
    let fake = FakeOpenAi::start().await;
    fake.refuse_chats_containing("forbidden rites").await;
    let mut options = Options::new(Broker::local_rabbitmq());
    options.openai = Some(fake.base_url());
    let platform = Platform::start(options).await;
    let api = Api::new(&platform);
    let token = api
        .register(&format!(
            "tess-{}@example.com",
            uuid::Uuid::new_v4().simple()
        ))
        .await;
    let topic_project = |topic: &'static str| {
        let api = &api;
        let token = token.clone();
        async move {
            let (status, project) = api
                .call(
                    "POST",
                    "/v1/projects",
                    Some(&token),
                    Some(json!({"title": "Sky", "topic": topic, "aspect": "16:9"})),
                )
                .await;
            assert_eq!(status, 201, "{project}");
            project["id"].as_str().unwrap().to_owned()
        }
    };
    let project = topic_project("why the sky is blue").await;
    let (status, job) = api.start(&token, &project, "sky").await;
    assert_eq!(status, 201, "{job}");
    let id = job["id"].as_str().unwrap().to_owned();
    let done = api.wait(&token, &id, Duration::from_secs(300)).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    let dir = tempfile::tempdir().unwrap();
    let srt = api
        .download(&token, &id, "captions_srt", dir.path(), "captions.srt")
        .await;
    let said = letters(&studio_testkit::texts::srt_text(&srt));
    let asked = fake.bodies("/v1/chat/completions").await;
    let words = openai::words_asked(asked[0]["messages"][1]["content"].as_str().unwrap());
    assert_eq!(said, letters(&openai::script(words).concat()));
    assert_eq!(fake.chats(), 2, "one script, one plan");
    let spoken: Vec<Value> = fake.bodies("/v1/audio/speech").await;
    assert!(!spoken.is_empty() && spoken.iter().all(|b| b["voice"] == "nova"));
    let video = api
        .download(&token, &id, "video", dir.path(), "final.mp4")
        .await;
    let p = probe(&video);
    assert!(p["streams"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["codec_type"] == "audio"));
    assert_exactly_once(&platform, &done).await;

    // The vendor refuses a topic: the job fails with its reason.
    let refused = topic_project("forbidden rites").await;
    let (status, job) = api.start(&token, &refused, "refused").await;
    assert_eq!(status, 201, "{job}");
    let failed = api
        .wait(
            &token,
            job["id"].as_str().unwrap(),
            Duration::from_secs(120),
        )
        .await;
    assert_eq!(failed["state"], "failed", "{failed}");
    let reason = failed.to_string();
    assert!(
        reason.contains("content policy") && reason.contains("safety system"),
        "{failed}"
    );
    platform.stop().await;
}

/// xorshift64*: a seeded, dependency-free source of "random points" for the trials.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `[lo, hi)` milliseconds.
    fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.next() % (hi - lo))
    }
}

#[tokio::test]
async fn killing_workers_mid_job_loses_and_repeats_nothing() {
    let trials: usize = std::env::var("STUDIO_E2E_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let seed: u64 = std::env::var("STUDIO_E2E_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20261121);
    let mut options = Options::new(Broker::local_rabbitmq());
    options.step_lease_s = 3;
    options.render_lease_s = 6;
    let mut platform = Platform::start(options).await;
    let api = Api::new(&platform);
    let token = api.register("crash@example.com").await;
    let project = api.fable_project(&token, "1:1").await;
    let mut rng = Rng(seed | 1);
    for trial in 0..trials {
        let (status, job) = api.start(&token, &project, &format!("trial-{trial}")).await;
        assert_eq!(status, 201, "{job}");
        let id = job["id"].as_str().unwrap().to_owned();
        // Odd trials kill the render worker (during the render); even ones the step worker.
        let render = trial % 2 == 1;
        let at = if render {
            rng.millis(3_000, 20_000)
        } else {
            rng.millis(100, 3_000)
        };
        tokio::time::sleep(at).await;
        let victim = if render {
            &mut platform.media_render
        } else {
            &mut platform.ai_job_workers[0]
        };
        eprintln!("trial {trial}: kill -9 {} after {at:?}", victim.name);
        victim.kill9();
        tokio::time::sleep(rng.millis(0, 1_000)).await;
        victim.restart().await;
        let done = api.wait(&token, &id, Duration::from_secs(300)).await;
        assert_eq!(done["state"], "succeeded", "trial {trial}: {done}");
        assert_exactly_once(&platform, &done).await;
    }
    platform.stop().await;
}

/// Waits until `job`'s step of `kind` is running under a fencing token above `after`; returns
/// the pid of the worker holding its lease (worker ids end in the pid) and the token.
async fn running_step(
    pool: &sqlx::PgPool,
    job: &str,
    kind: &str,
    after: i64,
    timeout: Duration,
) -> (u32, i64) {
    let job: uuid::Uuid = job.parse().unwrap();
    let deadline = Instant::now() + timeout;
    loop {
        let owner: Option<(Option<String>, i64)> = sqlx::query_as(
            "SELECT lease_owner, fencing_token FROM steps WHERE job_id = $1 AND kind = $2
               AND state = 'running' AND lease_expires_at > now() AND fencing_token > $3",
        )
        .bind(job)
        .bind(kind)
        .bind(after)
        .fetch_optional(pool)
        .await
        .unwrap();
        if let Some((Some(owner), token)) = owner {
            return (owner.rsplit('-').next().unwrap().parse().unwrap(), token);
        }
        assert!(
            Instant::now() < deadline,
            "no {kind} step ran within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_stopped_worker_cannot_overwrite_the_step_its_successor_finished() {
    let mut options = Options::new(Broker::local_rabbitmq());
    options.step_lease_s = 2;
    options.workers = 2;
    let platform = Platform::start(options).await;
    let api = Api::new(&platform);
    let token = api.register("zombie@example.com").await;
    let project = api.fable_project(&token, "1:1").await;
    let (_, job) = api.start(&token, &project, "zombie").await;
    let id = job["id"].as_str().unwrap().to_owned();
    let pool = sqlx::PgPool::connect(&platform.ai_job_db_url)
        .await
        .unwrap();
    // Freeze the worker in the middle of the music step (FluidSynth, about a second).
    let (pid, _) = running_step(&pool, &id, "music", 0, Duration::from_secs(120)).await;
    let zombie = platform
        .ai_job_workers
        .iter()
        .position(|w| w.pid() == Some(pid))
        .expect("a worker of ours holds the step");
    platform.ai_job_workers[zombie].signal("STOP");
    let done = api.wait(&token, &id, Duration::from_secs(300)).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    let music = || async {
        sqlx::query_as::<_, (Option<Value>, i32, i64)>(
            "SELECT output, attempts, fencing_token FROM steps WHERE job_id = $1 AND kind = 'music'",
        )
        .bind(id.parse::<uuid::Uuid>().unwrap())
        .fetch_one(&pool)
        .await
        .unwrap()
    };
    let finished = music().await;
    assert!(
        finished.1 >= 2,
        "another worker took the step over: {finished:?}"
    );
    // Wake the zombie: its late write (heartbeat or result) carries the old token.
    platform.ai_job_workers[zombie].signal("CONT");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let metrics = platform.ai_job_workers[zombie].metrics().await;
        if counter(&metrics, "ai_job_fenced_writes_total") >= 1.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no fenced write counted:\n{metrics}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(music().await, finished, "the zombie changed nothing");
    // Nor in storage: artifacts live under their attempt, so the key the step recorded was
    // written once, by the attempt that recorded it (security review M1).
    let recorded = finished.0.as_ref().unwrap()["music"]["path"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        recorded.contains(&format!("/{}/", finished.1)),
        "{recorded} is under its attempt {}",
        finished.1
    );
    let uploads = platform.s3.uploads_ending_with(&recorded);
    assert_eq!(
        uploads.values().copied().collect::<Vec<_>>(),
        vec![1],
        "{uploads:?}"
    );
    assert_exactly_once(&platform, &done).await;
    pool.close().await;
    platform.stop().await;
}

#[tokio::test]
async fn a_message_that_kills_every_worker_is_dead_lettered_and_fails_its_job() {
    let mut options = Options::new(Broker::local_rabbitmq());
    options.step_lease_s = 2;
    options.workers = 2;
    options.max_deliveries = 2;
    let mut platform = Platform::start(options).await;
    let api = Api::new(&platform);
    let token = api.register("poison@example.com").await;
    let project = api.fable_project(&token, "1:1").await;
    let (_, job) = api.start(&token, &project, "poison").await;
    let id = job["id"].as_str().unwrap().to_owned();
    let pool = sqlx::PgPool::connect(&platform.ai_job_db_url)
        .await
        .unwrap();
    // Whichever worker takes the music step dies with it, every time.
    let mut kills = 0;
    let mut fence = 0;
    let failed = loop {
        let (pid, token_now) = tokio::select! {
            next = running_step(&pool, &id, "music", fence, Duration::from_secs(120)) => next,
            done = api.wait(&token, &id, Duration::from_secs(120)) => break done,
        };
        fence = token_now;
        assert!(kills < 10, "the job still runs after {kills} kills");
        let worker = platform
            .ai_job_workers
            .iter_mut()
            .find(|w| w.pid() == Some(pid))
            .expect("a worker of ours holds the step");
        eprintln!(
            "kill -9 {} running the music step (token {fence})",
            worker.name
        );
        worker.kill9();
        kills += 1;
        worker.restart().await;
    };
    assert_eq!(failed["state"], "failed", "{failed}");
    let error = failed["error"].as_str().unwrap();
    assert!(error.contains("dead-lettered"), "{error}");
    assert!(error.starts_with("music failed"), "{error}");
    // max_deliveries = 2: delivered twice, both holders died, then dead-lettered.
    assert_eq!(kills, 2, "kills before the message was dead-lettered");
    let metrics = platform.ai_job_api.metrics().await;
    assert!(
        counter(&metrics, "ai_job_dead_lettered_total") >= 1.0,
        "{metrics}"
    );
    // The queue is not blocked: the next job runs to the end.
    let (_, next) = api.start(&token, &project, "healthy").await;
    let done = api
        .wait(
            &token,
            next["id"].as_str().unwrap(),
            Duration::from_secs(300),
        )
        .await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_queues_empty(&platform).await;
    pool.close().await;
    platform.stop().await;
}

#[tokio::test]
async fn restarting_rabbitmq_during_many_small_jobs_loses_and_repeats_nothing() {
    let jobs: usize = std::env::var("STUDIO_E2E_RESTART_JOBS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let node = studio_testkit::rabbit::RabbitNode::new();
    node.start().await;
    let mut options = Options::new(Broker::RabbitMq {
        url: format!("{}?heartbeat=5", node.url()),
    });
    options.step_lease_s = 10;
    options.render_lease_s = 30;
    let platform = Platform::start(options).await;
    let api = Api::new(&platform);
    let token = api.register("restart@example.com").await;
    let (status, project) = api
        .call(
            "POST",
            "/v1/projects",
            Some(&token),
            Some(json!({
                "title": "The Ant And The Grain",
                "source_text": "The Ant And The Grain\n\nAn ant carried a grain of wheat to its nest. It rested when the work was done.\n",
                "aspect": "1:1",
                "settings": {"music": false},
            })),
        )
        .await;
    assert_eq!(status, 201, "{project}");
    let project = project["id"].as_str().unwrap();
    let mut ids = Vec::new();
    for i in 0..jobs {
        let (status, job) = api.start(&token, project, &format!("small-{i}")).await;
        assert_eq!(status, 201, "{job}");
        ids.push(job["id"].as_str().unwrap().to_owned());
    }
    // Restart the broker once a third of the jobs are done.
    let succeeded = |ids: Vec<String>| {
        let api = &api;
        let token = &token;
        async move {
            let mut n = 0;
            for id in ids {
                let (_, job) = api
                    .call("GET", &format!("/v1/jobs/{id}"), Some(token), None)
                    .await;
                n += usize::from(job["state"] == "succeeded");
            }
            n
        }
    };
    let deadline = Instant::now() + Duration::from_secs(60 + 20 * jobs as u64);
    while succeeded(ids.clone()).await < jobs / 3 {
        assert!(Instant::now() < deadline, "jobs stalled before the restart");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eprintln!(
        "restarting RabbitMQ with {} of {jobs} jobs done",
        succeeded(ids.clone()).await
    );
    node.stop();
    tokio::time::sleep(Duration::from_secs(2)).await;
    node.start().await;
    for id in &ids {
        let left = deadline.saturating_duration_since(Instant::now());
        let done = api
            .wait(&token, id, left.max(Duration::from_secs(30)))
            .await;
        assert_eq!(done["state"], "succeeded", "{done}");
        assert_exactly_once(&platform, &done).await;
    }
    assert_queues_empty(&platform).await;
    platform.stop().await;
    drop(node);
}

#[tokio::test]
async fn media_render_hands_the_render_back_on_sigterm_past_its_grace() {
    let platform_options = Options::new(Broker::local_rabbitmq());
    let mut platform = Platform::start(platform_options).await;
    let api = Api::new(&platform);
    let token = api.register("sigterm@example.com").await;
    let project = api.fable_project(&token, "16:9").await;
    let (_, job) = api.start(&token, &project, "sigterm").await;
    let id = job["id"].as_str().unwrap().to_owned();
    let pool = sqlx::PgPool::connect(&platform.ai_job_db_url)
        .await
        .unwrap();
    let _ = running_step(&pool, &id, "render", 0, Duration::from_secs(120)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    // grace_s = 5: the render (longer than that) is stopped and handed back.
    let t = Instant::now();
    platform.media_render.signal("TERM");
    assert!(
        platform
            .media_render
            .wait_exit(Duration::from_secs(30))
            .await,
        "media-render exits after its grace period"
    );
    let stopped_in = t.elapsed();
    assert!(
        stopped_in < Duration::from_secs(20),
        "stopped in {stopped_in:?}"
    );
    let (state, error, attempts): (String, String, i32) = sqlx::query_as(
        "SELECT state, error, attempts FROM steps WHERE job_id = $1 AND kind = 'render'",
    )
    .bind(id.parse::<uuid::Uuid>().unwrap())
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((state.as_str(), attempts), ("queued", 1), "{error}");
    assert!(error.contains("shut down"), "{error}");
    platform.media_render.restart().await;
    let done = api.wait(&token, &id, Duration::from_secs(300)).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_exactly_once(&platform, &done).await;
    pool.close().await;
    platform.stop().await;
}
