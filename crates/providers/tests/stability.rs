//! `stability` against the Stable Image API fake (`studio_testkit::stability`): the exact form we
//! send (prompt, negative prompt, the canvas's aspect ratio, the project seed, PNG), the seed the
//! vendor used recorded with the picture, the table's price, and the documented errors (content
//! moderation stops with the vendor's reason; a refused key falls back naming its variable).

use studio_providers::*;
use studio_testkit::openai_images::picture_colour;
use studio_testkit::stability::{self, FakeStability};

const KEY_ENV: &str = "STUDIO_TEST_STABILITY_KEY";

fn providers(fake: &FakeStability, model: &str) -> Providers {
    std::env::set_var(KEY_ENV, stability::KEY);
    let settings: ProvidersSettings = toml::from_str(&format!(
        r#"
        retry = {{ max_attempts = 2, initial_backoff_ms = 1, max_backoff_ms = 5 }}
        [[image]]
        kind = "stability"
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

fn request(width: u32, height: u32, prompt: &str, project_seed: u64) -> ImageRequest {
    ImageRequest {
        terms: vec!["fox".into()],
        caption: "The fox".into(),
        width,
        height,
        seed: 5,
        palette: vec!["#102030".into(), "#304050".into(), "#F0C040".into()],
        prompt: prompt.into(),
        negative_prompt: "text, watermark".into(),
        project_seed,
    }
}

#[tokio::test]
async fn stable_image_core_gets_the_documented_form_and_the_project_seed() {
    let fake = FakeStability::start().await;
    let p = providers(&fake, "core");
    let prompt = "Watercolour storybook illustration. A fox eyes the grapes.";
    let wide = p.image.run(&request(1920, 1080, prompt, 77)).await.unwrap();
    let tall = p
        .image
        .run(&request(1080, 1920, "A fox walks away.", 77))
        .await
        .unwrap();
    let forms = fake.forms().await;
    assert_eq!(forms.len(), 2);
    let form = &forms[0];
    assert_eq!(form["path"], "/v2beta/stable-image/generate/core");
    assert_eq!(form["prompt"], prompt);
    assert_eq!(form["negative_prompt"], "text, watermark");
    assert_eq!(form["aspect_ratio"], "16:9");
    assert_eq!(
        form["seed"], "78",
        "the project seed, shifted past 0 (random)"
    );
    assert_eq!(form["output_format"], "png");
    assert!(!form.contains_key("model"));
    assert_eq!(forms[1]["aspect_ratio"], "9:16");
    assert_eq!(forms[1]["seed"], form["seed"], "one seed for every scene");

    assert_eq!((wide.output.width, wide.output.height), (1344, 768));
    assert_eq!((tall.output.width, tall.output.height), (768, 1344));
    assert_eq!(wide.provenance.cost_micro_usd, 30_000);
    assert_eq!(
        wide.output.source,
        ImageSource::Model {
            prompt: prompt.into(),
            seed: Some(78),
            revised_prompt: None
        }
    );
    let pixels = std::fs::read(&wide.output.path).unwrap();
    let decoder = png::Decoder::new(std::io::Cursor::new(pixels));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    reader.next_frame(&mut buf).unwrap();
    assert_eq!([buf[0], buf[1], buf[2]], picture_colour(prompt));
}

#[tokio::test]
async fn sd3_models_are_named_in_the_form() {
    let fake = FakeStability::start().await;
    let p = providers(&fake, "sd3.5-large");
    let got = p
        .image
        .run(&request(1080, 1080, "A crow and a jug.", 1))
        .await
        .unwrap();
    let forms = fake.forms().await;
    assert_eq!(forms[0]["path"], "/v2beta/stable-image/generate/sd3");
    assert_eq!(forms[0]["model"], "sd3.5-large");
    assert_eq!(forms[0]["aspect_ratio"], "1:1");
    assert_eq!(got.provenance.cost_micro_usd, 65_000);
}

#[tokio::test]
async fn moderation_stops_with_the_vendors_reason_and_a_bad_key_falls_back() {
    let fake = FakeStability::start().await;
    let p = providers(&fake, "core");
    let flagged = format!("A {} scene", stability::FLAGGED);
    let err = p
        .image
        .run(&request(1920, 1080, &flagged, 1))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("content policy") && err.contains("content moderation system"),
        "{err}"
    );
    assert_eq!(fake.pictures(), 0);

    std::env::set_var("STUDIO_TEST_STABILITY_WRONG_KEY", "sk-wrong");
    let settings: ProvidersSettings = toml::from_str(&format!(
        r#"
        [[image]]
        kind = "stability"
        base_url = "{}"
        api_key_env = "STUDIO_TEST_STABILITY_WRONG_KEY"
        [[image]]
        kind = "card"
        "#,
        fake.base_url()
    ))
    .unwrap();
    let got = settings
        .build(None)
        .unwrap()
        .image
        .run(&request(1920, 1080, "A fox.", 1))
        .await
        .unwrap();
    assert_eq!(got.provenance.provider, "card");
    let reason = &got.provenance.skipped[0].reason;
    assert!(
        reason.contains("STUDIO_TEST_STABILITY_WRONG_KEY"),
        "{reason}"
    );
}
