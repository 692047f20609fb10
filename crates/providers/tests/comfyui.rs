//! `comfyui` against a fake ComfyUI server (`studio_testkit::comfyui`): the shipped workflow
//! queued with the scene's prompt, the project seed and a one-megapixel size in the canvas's
//! shape, the history followed until the picture is saved, the picture fetched from `/view` and
//! checked; a workflow the server cannot run falls back to the next provider naming the fix; a
//! prompt that fails on the GPU is retried, then falls back.

use studio_providers::*;
use studio_testkit::comfyui::{positive_text, FakeComfyUi, CHECKPOINT};
use studio_testkit::openai_images::picture_colour;

fn providers(fake: &FakeComfyUi, extra: &str) -> Providers {
    let settings: ProvidersSettings = toml::from_str(&format!(
        r#"
        retry = {{ max_attempts = 2, initial_backoff_ms = 1, max_backoff_ms = 5 }}
        [[image]]
        kind = "comfyui"
        base_url = "{}"
        {extra}
        [[image]]
        kind = "card"
        "#,
        fake.base_url()
    ))
    .unwrap();
    settings.build(None).unwrap()
}

fn request(prompt: &str) -> ImageRequest {
    ImageRequest {
        terms: vec!["owl".into()],
        caption: "The owl".into(),
        width: 1080,
        height: 1350,
        seed: 3,
        palette: vec!["#102030".into(), "#304050".into(), "#F0C040".into()],
        prompt: prompt.into(),
        negative_prompt: "text, watermark".into(),
        project_seed: 77,
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
async fn the_workflow_is_queued_followed_and_its_picture_fetched() {
    let fake = FakeComfyUi::start().await;
    let p = providers(&fake, "");
    let prompt = "Woodcut print. An owl on a branch at night.";
    let got = p.image.run(&request(prompt)).await.unwrap();
    assert_eq!(got.provenance.provider, "comfyui");
    assert_eq!(fake.prompts(), 1);
    let workflow = &fake.workflows().await[0];
    assert_eq!(positive_text(workflow).unwrap(), prompt);
    assert_eq!(workflow["7"]["inputs"]["text"], "text, watermark");
    assert_eq!(workflow["4"]["inputs"]["ckpt_name"], CHECKPOINT);
    assert_eq!(workflow["3"]["inputs"]["seed"], 77, "the project seed");
    assert_eq!(
        workflow["5"]["inputs"]["width"], 896,
        "4:5 at one megapixel"
    );
    assert_eq!(workflow["5"]["inputs"]["height"], 1152);
    assert_eq!((got.output.width, got.output.height), (896, 1152));
    assert_eq!(first_pixel(&got.output.path), picture_colour(prompt));
    assert_eq!(got.provenance.cost_micro_usd, 0, "self-hosted");
    // `studio providers check` asks the server about itself, queueing nothing.
    let settings: ProvidersSettings = toml::from_str(&format!(
        "[[image]]\nkind = \"comfyui\"\nbase_url = \"{}\"",
        fake.base_url()
    ))
    .unwrap();
    let checked = studio_providers::check::check(&settings).await;
    let comfy = checked.iter().find(|c| c.kind == "comfyui").unwrap();
    assert_eq!(comfy.key, None, "no key by default");
    assert_eq!(
        comfy.probe,
        Ok("ComfyUI 0.3.40; devices: cuda:0 NVIDIA L4 : cudaMallocAsync".to_owned())
    );
    assert_eq!(fake.prompts(), 1);
    assert_eq!(
        got.output.source,
        ImageSource::Model {
            prompt: prompt.into(),
            seed: Some(77),
            revised_prompt: None
        }
    );
}

#[tokio::test]
async fn a_user_workflow_and_its_problems_are_named() {
    let fake = FakeComfyUi::start().await;
    let dir = tempfile::tempdir().unwrap();
    // The user's own workflow with a node the server lacks: the card draws the scene, and the
    // reason names the server's message and what to check.
    let custom = dir.path().join("flow.json");
    std::fs::write(
        &custom,
        r#"{"1": {"class_type": "FluxGuidance", "inputs": {"text": "{{prompt}}"}}}"#,
    )
    .unwrap();
    let p = providers(&fake, &format!("workflow = \"{}\"", custom.display()));
    let got = p.image.run(&request("A fox.")).await.unwrap();
    assert_eq!(got.provenance.provider, "card");
    let reason = &got.provenance.skipped[0].reason;
    assert!(
        reason.contains("refused the workflow")
            && reason.contains("Cannot execute because node FluxGuidance does not exist"),
        "{reason}"
    );
    // A checkpoint that is not installed.
    let p = providers(&fake, "model = \"missing.safetensors\"");
    let got = p.image.run(&request("A fox.")).await.unwrap();
    assert!(got.provenance.skipped[0]
        .reason
        .contains("the model \"missing.safetensors\" is installed"));
    // A GPU failure is transient: retried, then the card.
    let p = providers(&fake, "");
    let got = p
        .image
        .run(&request("A fox. CUDA out of memory please"))
        .await
        .unwrap();
    assert_eq!(got.provenance.provider, "card");
    assert!(got.provenance.skipped[0]
        .reason
        .contains("CUDA out of memory"));
    // A workflow file that is not in the API format is a settings error naming the entry.
    std::fs::write(&custom, r#"{"nodes": [], "links": []}"#).unwrap();
    let settings: ProvidersSettings = toml::from_str(&format!(
        "[[image]]\nkind = \"comfyui\"\nworkflow = \"{}\"",
        custom.display()
    ))
    .unwrap();
    let e = settings.build(None).unwrap_err().to_string();
    assert!(e.starts_with("providers.image[0] (comfyui):"), "{e}");
    assert!(e.contains("Save (API format)"), "{e}");
}
