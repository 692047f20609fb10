//! `replicate` against the predictions fake (`studio_testkit::replicate`): the documented create
//! request per model family (FLUX by model name, a pinned version through `/v1/predictions`), the
//! prediction followed at `urls.get` until it succeeds, its output downloaded and checked, the
//! table's price, and a prediction that fails as NSFW stopping with the model's reason.

use studio_providers::*;
use studio_testkit::openai_images::picture_colour;
use studio_testkit::replicate::{self, FakeReplicate};

const KEY_ENV: &str = "STUDIO_TEST_REPLICATE_TOKEN";

fn providers(fake: &FakeReplicate, model: &str) -> Providers {
    std::env::set_var(KEY_ENV, replicate::KEY);
    let settings: ProvidersSettings = toml::from_str(&format!(
        r#"
        retry = {{ max_attempts = 2, initial_backoff_ms = 1, max_backoff_ms = 5 }}
        [[image]]
        kind = "replicate"
        base_url = "{}"
        api_key_env = "{KEY_ENV}"
        model = "{model}"
        [[image]]
        kind = "card"
        "#,
        fake.base_url()
    ))
    .unwrap();
    settings.build(None).unwrap()
}

fn request(width: u32, height: u32, prompt: &str) -> ImageRequest {
    ImageRequest {
        terms: vec!["lion".into()],
        caption: "The lion".into(),
        width,
        height,
        seed: 3,
        palette: vec!["#102030".into(), "#304050".into(), "#F0C040".into()],
        prompt: prompt.into(),
        negative_prompt: "text".into(),
        project_seed: 9_000_000_001,
    }
}

fn first_pixel(path: &std::path::Path) -> [u8; 3] {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    reader.next_frame(&mut buf).unwrap();
    [buf[0], buf[1], buf[2]]
}

#[tokio::test]
async fn a_flux_prediction_is_created_followed_and_its_output_downloaded() {
    let fake = FakeReplicate::start().await;
    let p = providers(&fake, "black-forest-labs/flux-schnell");
    let prompt = "Storybook illustration. A lion spares a mouse.";
    let got = p.image.run(&request(1920, 1080, prompt)).await.unwrap();
    assert_eq!(fake.creates(), 1, "one paid prediction");
    let created = fake.created().await;
    assert_eq!(
        created[0]["path"],
        "/v1/models/black-forest-labs/flux-schnell/predictions"
    );
    assert_eq!(created[0]["prefer"], "wait");
    let input = &created[0]["input"];
    assert_eq!(input["prompt"], prompt);
    assert_eq!(input["aspect_ratio"], "16:9");
    assert_eq!(input["output_format"], "png");
    assert_eq!(input["num_outputs"], 1);
    let seed = 9_000_000_001u64 % (1 << 32);
    assert_eq!(input["seed"], seed, "the project seed, in 32 bits");
    assert_eq!((got.output.width, got.output.height), (1344, 768));
    assert_eq!(first_pixel(&got.output.path), picture_colour(prompt));
    assert_eq!(got.provenance.cost_micro_usd, 3_000);
    assert_eq!(
        got.output.source,
        ImageSource::Model {
            prompt: prompt.into(),
            seed: Some(seed),
            revised_prompt: None
        }
    );
}

#[tokio::test]
async fn a_pinned_version_goes_through_predictions_with_its_size_and_negative_prompt() {
    let fake = FakeReplicate::start().await;
    let p = providers(
        &fake,
        "stability-ai/sdxl:7762fd07cf82c948538e41f63f77d685e02b063e37e496e96eefd46c929f9bdc",
    );
    let got = p
        .image
        .run(&request(1080, 1920, "A lion sleeps."))
        .await
        .unwrap();
    let created = fake.created().await;
    assert_eq!(created[0]["path"], "/v1/predictions");
    assert_eq!(
        created[0]["version"],
        "7762fd07cf82c948538e41f63f77d685e02b063e37e496e96eefd46c929f9bdc"
    );
    let input = &created[0]["input"];
    assert_eq!(
        (input["width"].as_u64(), input["height"].as_u64()),
        (Some(768), Some(1344))
    );
    assert_eq!(input["negative_prompt"], "text");
    assert_eq!((got.output.width, got.output.height), (768, 1344));
    // Billed by GPU time, not in the shipped table: counted as free and said so in the log.
    assert_eq!(got.provenance.cost_micro_usd, 0);
}

#[tokio::test]
async fn an_nsfw_failure_stops_with_the_models_reason() {
    let fake = FakeReplicate::start().await;
    let p = providers(&fake, "black-forest-labs/flux-schnell");
    let err = p
        .image
        .run(&request(1920, 1080, "an nsfw scene"))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("content policy") && err.contains("NSFW content detected"),
        "{err}"
    );
    assert_eq!(fake.creates(), 1, "refusals are not tried again");
}

/// `studio providers check` probes each picture vendor for free: OpenAI's model list, Stability's
/// credit balance, Replicate's account; a wrong key is named.
#[tokio::test]
async fn picture_vendors_are_probed_without_spending() {
    let replicate = FakeReplicate::start().await;
    let stability = studio_testkit::stability::FakeStability::start().await;
    let openai = studio_testkit::openai::FakeOpenAi::start().await;
    std::env::set_var(KEY_ENV, replicate::KEY);
    std::env::set_var(
        "STUDIO_TEST_CHECK_STABILITY",
        studio_testkit::stability::KEY,
    );
    std::env::set_var("STUDIO_TEST_CHECK_OPENAI", studio_testkit::openai::KEY);
    std::env::set_var("STUDIO_TEST_CHECK_WRONG", "wrong");
    let settings: ProvidersSettings = toml::from_str(&format!(
        r#"
        [[image]]
        kind = "replicate"
        base_url = "{}"
        api_key_env = "{KEY_ENV}"
        [[image]]
        kind = "stability"
        base_url = "{}"
        api_key_env = "STUDIO_TEST_CHECK_STABILITY"
        [[image]]
        kind = "openai-images"
        base_url = "{}"
        api_key_env = "STUDIO_TEST_CHECK_OPENAI"
        [[image]]
        kind = "replicate"
        base_url = "{}"
        api_key_env = "STUDIO_TEST_CHECK_WRONG"
        "#,
        replicate.base_url(),
        stability.base_url(),
        openai.base_url(),
        replicate.base_url(),
    ))
    .unwrap();
    let checked = studio_providers::check::check(&settings).await;
    let probes: Vec<Result<String, String>> = checked
        .iter()
        .filter(|c| c.capability == "image")
        .map(|c| c.probe.clone())
        .collect();
    assert_eq!(probes[0], Ok("account studio-test".to_owned()));
    assert_eq!(probes[1], Ok("97.5 credits left".to_owned()));
    assert!(
        probes[2]
            .as_ref()
            .is_ok_and(|p| p.contains("gpt-image-1 offered")),
        "{:?}",
        probes[2]
    );
    let wrong = probes[3].as_ref().unwrap_err();
    assert!(wrong.contains("STUDIO_TEST_CHECK_WRONG"), "{wrong}");
    assert_eq!(
        replicate.creates() + stability.pictures() + openai.images(),
        0
    );
}
