//! `replicate` clips against the predictions fake (`studio_testkit::replicate`): the still
//! uploaded with the Files API and named in the model's documented input, the prediction created
//! without `Prefer: wait` and recorded before waiting, the MP4 downloaded, sniffed and probed;
//! a process that stops mid-generation resumes the same prediction (one paid create); vendor
//! bytes that are not a video are refused.

use std::sync::Arc;
use std::time::Duration;

use studio_providers::cache::ResultCache;
use studio_providers::vendor::clip;
use studio_providers::*;
use studio_testkit::openai_images::png;
use studio_testkit::replicate::{self, FakeReplicate};

const KEY_ENV: &str = "STUDIO_TEST_REPLICATE_CLIP_TOKEN";

fn providers(fake: &FakeReplicate, cache: &std::path::Path) -> Providers {
    std::env::set_var(KEY_ENV, replicate::KEY);
    let settings: ProvidersSettings = toml::from_str(&format!(
        r#"
        retry = {{ max_attempts = 2, initial_backoff_ms = 1, max_backoff_ms = 5 }}
        [[clip]]
        kind = "replicate"
        base_url = "{}"
        api_key_env = "{KEY_ENV}"
        "#,
        fake.base_url()
    ))
    .unwrap();
    settings
        .build(Some(Arc::new(ResultCache::new(cache))))
        .unwrap()
}

fn request(still: &std::path::Path, seconds: f64) -> ClipRequest {
    let bytes = std::fs::read(still).unwrap();
    ClipRequest {
        prompt: "Gentle camera push-in. The lion yawns.".into(),
        negative_prompt: "text".into(),
        image_sha256: Some(sha256_hex(&bytes)),
        image: Some(still.to_path_buf()),
        duration_s: seconds,
        width: 1920,
        height: 1080,
        seed: 42,
        terms: Vec::new(),
    }
}

fn still(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("still.png");
    std::fs::write(&path, png(640, 360, [200, 120, 40])).unwrap();
    path
}

#[tokio::test]
async fn a_still_is_uploaded_set_in_motion_and_the_clip_checked() {
    let fake = FakeReplicate::start().await;
    let dir = tempfile::tempdir().unwrap();
    let p = providers(&fake, &dir.path().join("cache"));
    let still = still(dir.path());
    let got = p.clip.run(&request(&still, 8.0)).await.unwrap();
    assert_eq!(fake.creates(), 1, "one paid prediction");
    let created = fake.created().await;
    assert_eq!(
        created[0]["path"],
        "/v1/models/kwaivgi/kling-v1.6-standard/predictions"
    );
    assert_eq!(
        created[0]["prefer"], "",
        "no Prefer: wait, so the id is recorded before any waiting"
    );
    let input = &created[0]["input"];
    assert_eq!(input["prompt"], "Gentle camera push-in. The lion yawns.");
    assert_eq!(input["negative_prompt"], "text");
    assert_eq!(input["duration"], 10, "an 8 s scene asks Kling for 10 s");
    let start = input["start_image"].as_str().unwrap();
    assert!(start.starts_with(&format!("{}/v1/files/", fake.base_url())));
    // The upload carried the still's bytes exactly.
    let uploads: Vec<_> = fake
        .server
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.url.path() == "/v1/files")
        .collect();
    assert_eq!(uploads.len(), 1);
    assert_eq!(
        studio_testkit::multipart::parts(&uploads[0])["content"],
        std::fs::read(&still).unwrap()
    );
    let clip = &got.output;
    assert!(
        (clip.duration_s - 10.0).abs() < 0.2,
        "probed {}",
        clip.duration_s
    );
    assert_eq!((clip.width, clip.height), (640, 360), "the still's shape");
    assert_eq!(clip.path.extension().unwrap(), "mp4");
    assert_eq!(
        got.provenance.cost_micro_usd, 500_000,
        "10 s at the table's $0.05/s"
    );
    // The result is cached: the same request asks nobody again.
    let again = p.clip.run(&request(&still, 8.0)).await.unwrap();
    assert!(again.provenance.cache_hit);
    assert_eq!(fake.creates(), 1);
}

#[tokio::test]
async fn a_process_stopped_mid_generation_resumes_the_same_prediction() {
    let fake = FakeReplicate::start().await;
    fake.hold(true);
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let still = still(dir.path());
    {
        let first = providers(&fake, &cache);
        // The worker dies while the clip is made: its future is dropped mid-wait.
        let stopped = tokio::time::timeout(
            Duration::from_secs(3),
            first.clip.run(&request(&still, 4.0)),
        )
        .await;
        assert!(stopped.is_err(), "the prediction is held");
    }
    assert_eq!(fake.creates(), 1);
    let id = fake.polls().await.into_keys().next().expect("polled once");
    fake.hold(false);
    let restarted = providers(&fake, &cache);
    let got = restarted.clip.run(&request(&still, 4.0)).await.unwrap();
    assert_eq!(
        fake.creates(),
        1,
        "the restarted process paid for nothing new"
    );
    assert!(
        fake.polls().await[&id] >= 2,
        "the same prediction was polled after the restart"
    );
    assert!((got.output.duration_s - 5.0).abs() < 0.2);
    // Once it ended, the task is forgotten: a new request would create anew.
    assert_eq!(
        std::fs::read_dir(cache.join("tasks")).unwrap().count(),
        0,
        "no task left under way"
    );
}

#[tokio::test]
async fn bytes_that_are_not_a_whole_video_are_refused_naming_the_vendor() {
    let dir = tempfile::tempdir().unwrap();
    let html = clip::check("replicate", b"<!DOCTYPE html><html>busy</html>", dir.path())
        .await
        .unwrap_err();
    assert_eq!(html.kind, ErrorKind::Transient);
    assert!(
        html.message
            .contains("replicate sent an HTML page instead of a video clip"),
        "{}",
        html.message
    );
    let picture = clip::check("replicate", &png(8, 8, [0, 0, 0]), dir.path())
        .await
        .unwrap_err();
    assert!(
        picture.message.contains("not a video clip"),
        "{}",
        picture.message
    );
    let whole = replicate::mp4(64, 36, 1, [10, 20, 30]);
    let truncated = clip::check("replicate", &whole[..whole.len() / 3], dir.path())
        .await
        .unwrap_err();
    assert_eq!(truncated.kind, ErrorKind::Transient);
    assert!(
        truncated.message.contains("truncated or damaged MP4"),
        "{}",
        truncated.message
    );
    // Whole boxes around bytes FFmpeg cannot read.
    let mut garbled = whole.clone();
    let middle = garbled.len() / 2;
    garbled[40..middle].fill(0x5A);
    let unreadable = clip::check("replicate", &garbled, dir.path())
        .await
        .unwrap_err();
    assert_eq!(
        unreadable.kind,
        ErrorKind::Transient,
        "{}",
        unreadable.message
    );
    let ok = clip::check("replicate", &whole, dir.path()).await.unwrap();
    assert_eq!((ok.width, ok.height), (64, 36));
}
