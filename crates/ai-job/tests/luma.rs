//! `luma` clips, which Luma makes from a still it fetches itself: in the platform the still is
//! published to the shared object store (a real S3 protocol server here) and Luma is handed a
//! presigned URL that downloads exactly that still; the generation is recorded (on the worker's
//! disk and in the shared store) before waiting, so another worker taking over the step resumes
//! it (one paid create); a moderation failure is final;
//! without a shared store (an embedded run) luma is skipped, saying why.

use std::sync::Arc;
use std::time::Duration;

use studio_ai_job::shared_cache::StoredResults;
use studio_providers::cache::ResultCache;
use studio_providers::settings::ProviderSpec;
use studio_providers::*;
use studio_storage::s3::{S3Settings, S3Store};
use studio_testkit::luma::{self, FakeLuma};
use studio_testkit::openai_images::png;
use studio_testkit::s3::{S3Server, ACCESS_KEY, SECRET_KEY};

const KEY_ENV: &str = "STUDIO_TEST_LUMA_KEY";

fn settings(fake: &FakeLuma) -> ProvidersSettings {
    std::env::set_var(KEY_ENV, luma::KEY);
    ProvidersSettings {
        clip: vec![ProviderSpec {
            base_url: Some(fake.base_url()),
            api_key_env: Some(KEY_ENV.into()),
            ..ProviderSpec::new("luma")
        }],
        ..ProvidersSettings::default()
    }
}

async fn shared(endpoint: &str) -> Arc<StoredResults> {
    let store = S3Store::new(S3Settings {
        bucket: "studio-luma".to_owned(),
        region: "us-east-1".to_owned(),
        endpoint: Some(endpoint.to_owned()),
        access_key_id: ACCESS_KEY.to_owned(),
        secret_access_key: SECRET_KEY.to_owned().into(),
        force_path_style: None,
        multipart_threshold_bytes: 16 << 20,
        part_size_bytes: 8 << 20,
    })
    .unwrap();
    store.ensure_bucket().await.unwrap();
    Arc::new(StoredResults::new(Arc::new(store)))
}

fn request(still: &std::path::Path, prompt: &str) -> ClipRequest {
    let bytes = std::fs::read(still).unwrap();
    ClipRequest {
        prompt: prompt.into(),
        negative_prompt: String::new(),
        image_sha256: Some(sha256_hex(&bytes)),
        image: Some(still.to_path_buf()),
        duration_s: 8.0,
        width: 1920,
        height: 1080,
        seed: 1,
        terms: Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn luma_fetches_the_still_from_a_presigned_url_and_a_stopped_worker_resumes() {
    let fake = FakeLuma::start().await;
    let root = tempfile::tempdir().unwrap();
    let s3 = S3Server::start(root.path()).await;
    let store = shared(&s3.endpoint).await;
    let dir = tempfile::tempdir().unwrap();
    let still = dir.path().join("still.png");
    let still_bytes = png(640, 360, [30, 140, 70]);
    std::fs::write(&still, &still_bytes).unwrap();
    let prompt = "Slow pan. The crow drops pebbles into the jar.";
    let providers = |cache: &std::path::Path| {
        let cache = ResultCache::new(cache).with_shared(store.clone());
        settings(&fake).build(Some(Arc::new(cache))).unwrap()
    };

    // A worker stops while Luma dreams.
    fake.hold(true);
    {
        let first = providers(&dir.path().join("worker-a"));
        let asked = request(&still, prompt);
        let run = first.clip.run(&asked);
        assert!(tokio::time::timeout(Duration::from_secs(4), run)
            .await
            .is_err());
    }
    assert_eq!(fake.creates(), 1);
    let created = fake.created().await;
    let body = &created[0];
    assert_eq!(body["model"], "ray-2");
    assert_eq!(body["aspect_ratio"], "16:9");
    assert_eq!(body["duration"], "9s", "an 8 s scene");
    assert_eq!(body["resolution"], "720p");
    assert_eq!(body["keyframes"]["frame0"]["type"], "image");
    let url = body["keyframes"]["frame0"]["url"].as_str().unwrap();
    assert!(url.starts_with(&s3.endpoint), "{url}");
    let fetched = reqwest::get(url).await.unwrap();
    assert!(fetched.status().is_success());
    assert_eq!(
        fetched.bytes().await.unwrap().to_vec(),
        still_bytes,
        "the still itself"
    );

    // Another worker, with its own empty disk, takes the step over: it finds the generation in
    // the shared task log and resumes it.
    fake.hold(false);
    let again = providers(&dir.path().join("worker-b"));
    let got = again.clip.run(&request(&still, prompt)).await.unwrap();
    assert_eq!(fake.creates(), 1, "no second generation paid for");
    assert!((got.output.duration_s - 9.0).abs() < 0.2);
    assert_eq!(got.provenance.cost_micro_usd, 9 * 141_558);

    // Moderation is final, with Luma's reason.
    let refused = again
        .clip
        .run(&request(&still, "Something unsafe."))
        .await
        .unwrap_err();
    assert!(matches!(refused, ChainError::Invalid { .. }), "{refused}");
    assert!(
        refused.to_string().contains("failed moderation"),
        "{refused}"
    );

    // No shared store (an embedded run): skipped, saying why, nothing created.
    let embedded = settings(&fake)
        .build(Some(Arc::new(ResultCache::new(
            dir.path().join("embedded"),
        ))))
        .unwrap();
    let before = fake.creates();
    let skipped = embedded
        .clip
        .run(&request(&still, "A new prompt."))
        .await
        .unwrap_err();
    assert!(
        skipped
            .to_string()
            .contains("luma fetches the still from a public URL"),
        "{skipped}"
    );
    assert_eq!(fake.creates(), before);

    let checked = studio_providers::check::check(&settings(&fake)).await;
    let probe = &checked.iter().find(|c| c.kind == "luma").unwrap().probe;
    assert_eq!(probe, &Ok("2500 credits left".to_owned()));
}
