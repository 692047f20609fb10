//! Provider results shared by every worker through the object store (issue 14): two step
//! workers, each with its own disk cache, over one bucket of a real S3 protocol server. The
//! first runs a job whose scenes are drawn by `openai-images` and set in motion by a Replicate
//! image-to-video model (local fakes); the second runs the same job and makes no call at all.

mod common;

use std::sync::Arc;

use common::{fable_request, until_render, Harness};
use studio_ai_job::settings::WorkerSettings;
use studio_ai_job::shared_cache::StoredResults;
use studio_ai_job::store::{RenderInput, State};
use studio_pipeline::graph::{Graph, StepKind};
use studio_providers::cache::ResultCache;
use studio_providers::settings::ProviderSpec;
use studio_providers::ProvidersSettings;
use studio_storage::s3::{S3Settings, S3Store};
use studio_testkit::openai::{self, FakeOpenAi};
use studio_testkit::replicate::{self, FakeReplicate};
use studio_testkit::s3::{S3Server, ACCESS_KEY, SECRET_KEY};

const OPENAI_KEY_ENV: &str = "STUDIO_TEST_SHARED_OPENAI_KEY";
const REPLICATE_KEY_ENV: &str = "STUDIO_TEST_SHARED_REPLICATE_TOKEN";

async fn bucket(endpoint: &str) -> S3Store {
    let store = S3Store::new(S3Settings {
        bucket: "studio-shared".to_owned(),
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
    store
}

/// A step worker with its own scratch and disk cache, the shared bucket behind it.
async fn worker(openai: &FakeOpenAi, replicate: &FakeReplicate, s3: &str) -> Harness {
    let settings = ProvidersSettings {
        image: vec![ProviderSpec {
            base_url: Some(openai.base_url()),
            api_key_env: Some(OPENAI_KEY_ENV.into()),
            ..ProviderSpec::new("openai-images")
        }],
        clip: vec![ProviderSpec {
            base_url: Some(replicate.base_url()),
            api_key_env: Some(REPLICATE_KEY_ENV.into()),
            model: Some("wavespeedai/wan-2.1-i2v-480p".into()),
            ..ProviderSpec::new("replicate")
        }],
        ..ProvidersSettings::default()
    };
    let storage = Arc::new(bucket(s3).await);
    let dir = tempfile::tempdir().unwrap();
    let cache = ResultCache::new(dir.path().join("cache"))
        .with_shared(Arc::new(StoredResults::new(storage.clone())));
    let providers = Arc::new(settings.build(Some(Arc::new(cache))).unwrap());
    Harness::start_with(
        Graph::standard(),
        WorkerSettings::default(),
        providers,
        storage,
        dir,
    )
    .await
}

async fn calls(openai: &FakeOpenAi, replicate: &FakeReplicate) -> (usize, usize) {
    let replicate = replicate
        .server
        .received_requests()
        .await
        .unwrap_or_default()
        .len();
    (openai.requests().await.len(), replicate)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_repeated_on_another_worker_makes_no_paid_call() {
    std::env::set_var(OPENAI_KEY_ENV, openai::KEY);
    std::env::set_var(REPLICATE_KEY_ENV, replicate::KEY);
    let openai = FakeOpenAi::start().await;
    let replicate = FakeReplicate::start().await;
    let root = tempfile::tempdir().unwrap();
    let s3 = S3Server::start(root.path()).await;
    let mut request = fable_request();
    request.style.pictures.clips = true;

    // Worker A makes every picture and clip, and shares them.
    let a = worker(&openai, &replicate, &s3.endpoint).await;
    let job = a.job_for(&request).await;
    until_render(&a.store, &job).await;
    let steps = a.store.steps(job.id).await.unwrap();
    let scenes = steps
        .iter()
        .filter(|s| s.kind == StepKind::Picture.name())
        .count();
    assert!(scenes >= 1);
    let clips: Vec<_> = steps
        .iter()
        .filter(|s| s.kind == StepKind::Clip.name())
        .collect();
    assert_eq!(clips.len(), scenes, "a clip a scene");
    for clip in &clips {
        assert_eq!(clip.state, State::Succeeded, "{}", clip.error);
        let out = clip.output.clone().unwrap();
        assert!(out["clip"]["duration_s"].as_f64().unwrap() > 4.0, "{out}");
    }
    let render = steps
        .iter()
        .find(|s| s.kind == StepKind::Render.name())
        .unwrap();
    let input: RenderInput = serde_json::from_value(
        sqlx::query_scalar::<_, serde_json::Value>("SELECT input FROM steps WHERE id = $1")
            .bind(render.id.0)
            .fetch_one(&a.pool)
            .await
            .unwrap(),
    )
    .unwrap();
    assert!(input.inputs.contains_key("clips/0.mp4"), "{input:?}");
    assert_eq!(openai.images() as usize, scenes);
    assert_eq!(replicate.creates() as usize, scenes);
    let after_a = calls(&openai, &replicate).await;
    assert!(
        !s3.uploads_ending_with("/entry.json").is_empty(),
        "entries shared in the bucket"
    );
    a.stop().await;

    // Worker B, its own empty disk cache: the same job, not one call to any vendor.
    let b = worker(&openai, &replicate, &s3.endpoint).await;
    let again = b.job_for(&request).await;
    until_render(&b.store, &again).await;
    let steps = b.store.steps(again.id).await.unwrap();
    assert!(steps
        .iter()
        .filter(|s| s.kind == StepKind::Clip.name())
        .all(|s| s.state == State::Succeeded && s.output.as_ref().unwrap()["clip"].is_object()));
    assert_eq!(
        calls(&openai, &replicate).await,
        after_a,
        "zero calls at the fakes"
    );
    b.stop().await;
}
