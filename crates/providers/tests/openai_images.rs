//! `openai-images` against the OpenAI fake (`studio_testkit::openai_images`): the exact request
//! we send per model and canvas, the picture written from `b64_json` or downloaded from a `url`,
//! its cost from the reported tokens or the table, and what bad answers do (a content-policy
//! refusal stops with the vendor's reason; HTML, a truncated picture or a 50,000-pixel header are
//! never used, and the chain's next provider draws the scene).

use std::path::Path;

use serde_json::{json, Value};
use studio_providers::*;
use studio_testkit::openai::{self, FakeOpenAi};
use studio_testkit::openai_images::{picture_colour, png};
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

const KEY_ENV: &str = "STUDIO_TEST_OPENAI_KEY";

fn chain(fake: &FakeOpenAi, model: &str) -> Providers {
    std::env::set_var(KEY_ENV, openai::KEY);
    let settings: ProvidersSettings = toml::from_str(&format!(
        r#"
        retry = {{ max_attempts = 2, initial_backoff_ms = 1, max_backoff_ms = 5 }}
        [[image]]
        kind = "openai-images"
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
        terms: vec!["hare".into(), "tortoise".into()],
        caption: "The race".into(),
        width,
        height,
        seed: 11,
        palette: vec!["#102030".into(), "#304050".into(), "#F0C040".into()],
        prompt: prompt.into(),
        negative_prompt: "text, watermark".into(),
        project_seed: 42,
    }
}

/// The colour of the picture's first pixel.
fn first_pixel(path: &Path) -> [u8; 3] {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    reader.next_frame(&mut buf).unwrap();
    [buf[0], buf[1], buf[2]]
}

#[tokio::test]
async fn gpt_image_draws_the_prompt_at_the_canvas_orientation_and_costs_its_tokens() {
    let fake = FakeOpenAi::start().await;
    let providers = chain(&fake, "gpt-image-1");
    let prompt = "Watercolour storybook illustration. A hare naps under an oak. No text.";
    let got = providers
        .image
        .run(&request(1920, 1080, prompt))
        .await
        .unwrap();
    assert_eq!(fake.images(), 1);
    let bodies = fake.bodies("/v1/images/generations").await;
    assert_eq!(
        bodies,
        vec![json!({"model": "gpt-image-1", "prompt": prompt, "n": 1, "size": "1536x1024"})],
        "exactly the documented request, no response_format for GPT image models"
    );
    let image = &got.output;
    assert_eq!((image.width, image.height), (1536, 1024));
    assert_eq!(first_pixel(&image.path), picture_colour(prompt));
    assert_eq!(
        image.source,
        ImageSource::Model {
            prompt: prompt.into(),
            seed: None,
            revised_prompt: None
        }
    );
    // Tokens as reported: text at $5 and image output at $40 per million.
    let input = openai::tokens(prompt);
    let expected = (input * 5000 + 1584 * 40_000 + 500) / 1000;
    assert_eq!(got.provenance.cost_micro_usd, expected);
    assert_eq!(got.provenance.provider, "openai-images");

    // Portrait canvases ask for portrait pictures.
    let tall = providers
        .image
        .run(&request(1080, 1920, "tall"))
        .await
        .unwrap();
    assert_eq!((tall.output.width, tall.output.height), (1024, 1536));
}

#[tokio::test]
async fn dall_e_3_pictures_come_as_base64_and_cost_the_table_price() {
    let fake = FakeOpenAi::start().await;
    let providers = chain(&fake, "dall-e-3");
    let got = providers
        .image
        .run(&request(1080, 1080, "A tortoise at the finish line."))
        .await
        .unwrap();
    let bodies = fake.bodies("/v1/images/generations").await;
    assert_eq!(bodies[0]["response_format"], "b64_json");
    assert_eq!(bodies[0]["size"], "1024x1024");
    assert_eq!(got.provenance.cost_micro_usd, 40_000);
    match &got.output.source {
        ImageSource::Model { revised_prompt, .. } => assert_eq!(
            revised_prompt.as_deref(),
            Some("A picture of: A tortoise at the finish line.")
        ),
        other => panic!("{other:?}"),
    }
    // A landscape DALL·E 3 picture lists at twice the square price.
    let wide = providers
        .image
        .run(&request(1920, 1080, "wide"))
        .await
        .unwrap();
    assert_eq!(wide.provenance.cost_micro_usd, 80_000);
}

#[tokio::test]
async fn a_picture_behind_a_url_is_downloaded_and_checked() {
    let fake = FakeOpenAi::start().await;
    // A compatible server that answers URLs whatever it was asked.
    let picture = png(1024, 1024, [10, 200, 30]);
    Mock::given(method("GET"))
        .and(path("/results/a.png"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(picture))
        .mount(&fake.server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/images/generations"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "created": 1,
            "data": [{"url": format!("{}/results/a.png", fake.server.uri())}]
        })))
        .with_priority(1)
        .mount(&fake.server)
        .await;
    let providers = chain(&fake, "dall-e-3");
    let got = providers
        .image
        .run(&request(1080, 1080, "green"))
        .await
        .unwrap();
    assert_eq!(first_pixel(&got.output.path), [10, 200, 30]);
}

#[tokio::test]
async fn bad_pictures_are_never_used_and_the_next_provider_draws_the_scene() {
    let fake = FakeOpenAi::start().await;
    let providers = chain(&fake, "gpt-image-1");
    let whole = png(1024, 1024, [1, 2, 3]);
    let mut huge = whole.clone();
    huge[16..20].copy_from_slice(&50_000u32.to_be_bytes());
    huge[20..24].copy_from_slice(&50_000u32.to_be_bytes());
    let cases: [(&str, Vec<u8>, &str); 3] = [
        (
            "html",
            b"<html><body>Bad gateway</body></html>".to_vec(),
            "HTML page",
        ),
        ("truncated", whole[..whole.len() / 2].to_vec(), "truncated"),
        ("huge", huge, "50000×50000"),
    ];
    for (name, bytes, reason) in cases {
        fake.server.reset().await;
        Mock::given(method("POST"))
            .and(path("/v1/images/generations"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "created": 1,
                "data": [{"b64_json": base64_encode(&bytes)}]
            })))
            .mount(&fake.server)
            .await;
        let got = providers
            .image
            .run(&request(1920, 1080, &format!("case {name}")))
            .await
            .unwrap();
        assert_eq!(
            got.provenance.provider, "card",
            "{name}: the fallback drew it"
        );
        let skipped = &got.provenance.skipped;
        assert_eq!(skipped.len(), 1, "{name}");
        assert!(
            skipped[0].reason.contains(reason) && skipped[0].reason.contains("openai-images"),
            "{name}: {}",
            skipped[0].reason
        );
    }
}

#[tokio::test]
async fn a_content_policy_refusal_names_the_vendors_reason() {
    let fake = FakeOpenAi::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/images/generations"))
        .respond_with(openai::error(
            400,
            "Your request was rejected as a result of our safety system.",
            "image_generation_user_error",
            Some("moderation_blocked"),
        ))
        .with_priority(1)
        .mount(&fake.server)
        .await;
    let providers = chain(&fake, "gpt-image-1");
    let err = providers
        .image
        .run(&request(1920, 1080, "something refused"))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("content policy") && text.contains("safety system"),
        "{text}"
    );
    let body: Value = fake.bodies("/v1/images/generations").await.remove(0);
    assert_eq!(body["prompt"], "something refused");
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
