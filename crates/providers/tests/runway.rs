//! `runway` clips against a fake of Runway's API (`studio_testkit::runway`): the still sent as a
//! data URI with the version header, the model's ratio and length, the project seed; the task
//! recorded before waiting so a stopped process resumes it (one paid create); a moderation
//! failure keeps the vendor's reason and is final; `studio providers check` reads the balance.

use std::sync::Arc;
use std::time::Duration;

use studio_providers::cache::ResultCache;
use studio_providers::*;
use studio_testkit::openai_images::png;
use studio_testkit::runway::{self, FakeRunway};

const KEY_ENV: &str = "STUDIO_TEST_RUNWAY_KEY";

fn settings(fake: &FakeRunway) -> ProvidersSettings {
    std::env::set_var(KEY_ENV, runway::KEY);
    toml::from_str(&format!(
        r#"
        retry = {{ max_attempts = 2, initial_backoff_ms = 1, max_backoff_ms = 5 }}
        [[clip]]
        kind = "runway"
        base_url = "{}"
        api_key_env = "{KEY_ENV}"
        "#,
        fake.base_url()
    ))
    .unwrap()
}

fn request(still: &std::path::Path, prompt: &str, seconds: f64) -> ClipRequest {
    let bytes = std::fs::read(still).unwrap();
    ClipRequest {
        prompt: prompt.into(),
        negative_prompt: String::new(),
        image_sha256: Some(sha256_hex(&bytes)),
        image: Some(still.to_path_buf()),
        duration_s: seconds,
        width: 1080,
        height: 1920,
        seed: 5_000_000_123,
        terms: Vec::new(),
    }
}

#[tokio::test]
async fn a_still_becomes_a_runway_clip_and_a_stopped_process_resumes_the_task() {
    let fake = FakeRunway::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let still = dir.path().join("still.png");
    let png_bytes = png(360, 640, [20, 90, 160]);
    std::fs::write(&still, &png_bytes).unwrap();
    let prompt = "Slow push-in. The tortoise walks on.";
    fake.hold(true);
    {
        let first = settings(&fake)
            .build(Some(Arc::new(ResultCache::new(&cache))))
            .unwrap();
        let asked = request(&still, prompt, 9.0);
        let run = first.clip.run(&asked);
        assert!(tokio::time::timeout(Duration::from_secs(4), run)
            .await
            .is_err());
    }
    assert_eq!(fake.creates(), 1);
    fake.hold(false);
    let p = settings(&fake)
        .build(Some(Arc::new(ResultCache::new(&cache))))
        .unwrap();
    let got = p.clip.run(&request(&still, prompt, 9.0)).await.unwrap();
    assert_eq!(fake.creates(), 1, "the task the stopped process started");
    let polls = fake.polls().await;
    assert_eq!(polls.len(), 1);
    let created = fake.created().await;
    let body = &created[0];
    assert_eq!(body["model"], "gen4_turbo");
    assert_eq!(body["promptImage"], "data:image/png;base64");
    assert_eq!(body["promptText"], prompt);
    assert_eq!(body["ratio"], "720:1280");
    assert_eq!(body["duration"], 10);
    assert_eq!(body["seed"], 5_000_000_123u64 % (1 << 32));
    assert_eq!(fake.stills().into_values().next().unwrap(), png_bytes);
    let clip = &got.output;
    assert!((clip.duration_s - 10.0).abs() < 0.2, "{}", clip.duration_s);
    assert_eq!(
        (clip.width, clip.height),
        (640, 1138),
        "720:1280 at most 640 wide"
    );
    assert_eq!(got.provenance.cost_micro_usd, 500_000, "10 s at $0.05/s");

    // Moderation: final, with Runway's reason and code.
    let refused = p
        .clip
        .run(&request(&still, "Something unsafe.", 4.0))
        .await
        .unwrap_err();
    let text = refused.to_string();
    assert!(matches!(refused, ChainError::Invalid { .. }), "{text}");
    assert!(text.contains("SAFETY.INPUT.TEXT"), "{text}");
    assert_eq!(fake.creates(), 2, "not retried");

    let checked = studio_providers::check::check(&settings(&fake)).await;
    let runway = checked.iter().find(|c| c.kind == "runway").unwrap();
    assert_eq!(runway.probe, Ok("12500 credits left".to_owned()));
}
