//! The Images API of the OpenAI fake (`POST /v1/images/generations`,
//! platform.openai.com/docs/api-reference/images/create), mounted by
//! [`crate::openai::FakeOpenAi::start`] on the same server.
//!
//! It checks what OpenAI checks (the key, a prompt, `n`, a `size` the model supports) and answers
//! a real PNG of the asked size: GPT image models with `data[0].b64_json` and token `usage`,
//! DALL·E 3 with `b64_json` plus `revised_prompt`, or a `url` to the picture (served by the fake
//! at `/files/{id}.png`) when `response_format` is `url` or left out. Each picture is one colour
//! taken from the prompt's hash ([`picture_colour`]), so a test can tell which prompt a frame
//! came from.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use base64::Engine as _;
use serde_json::{json, Value};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::openai::{error, tokens};

/// Image tokens OpenAI reports for a medium-quality picture: 1024x1024 → 1056, 1536x1024 and
/// 1024x1536 → 1584 (OpenAI, "Image generation" guide, cost and latency table).
pub fn image_tokens(size: &str) -> u64 {
    if size == "1024x1024" {
        1056
    } else {
        1584
    }
}

/// The RGB colour of the fake's picture for `prompt`.
pub fn picture_colour(prompt: &str) -> [u8; 3] {
    // FNV-1a: stable across runs and platforms.
    let mut h: u32 = 0x811C_9DC5;
    for b in prompt.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    [(h >> 16) as u8, (h >> 8) as u8, h as u8]
}

/// A PNG of `width`×`height` pixels of `colour`.
pub fn png(width: u32, height: u32, colour: [u8; 3]) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, width, height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().unwrap();
        let mut stream = writer.stream_writer().unwrap();
        let row: Vec<u8> = colour
            .iter()
            .copied()
            .cycle()
            .take(width as usize * 3)
            .collect();
        for _ in 0..height {
            std::io::Write::write_all(&mut stream, &row).unwrap();
        }
        stream.finish().unwrap();
    }
    out
}

/// Mounts the Images API on `server`, counting answered pictures in `count`.
pub async fn mount(server: &MockServer, count: Arc<AtomicU64>) {
    let files = Arc::new(std::sync::Mutex::new(Vec::<Vec<u8>>::new()));
    Mock::given(method("POST"))
        .and(path("/v1/images/generations"))
        .respond_with(Generate {
            count,
            files: files.clone(),
            base: server.uri(),
        })
        .with_priority(10)
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path_regex(r"^/files/\d+\.png$"))
        .respond_with(Files(files))
        .with_priority(10)
        .mount(server)
        .await;
}

struct Generate {
    count: Arc<AtomicU64>,
    files: Arc<std::sync::Mutex<Vec<Vec<u8>>>>,
    base: String,
}

fn invalid(message: &str, param: &str) -> ResponseTemplate {
    ResponseTemplate::new(400).set_body_json(json!({
        "error": {"message": message, "type": "invalid_request_error", "param": param, "code": null}
    }))
}

impl Respond for Generate {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        if request
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            != Some(&format!("Bearer {}", crate::openai::KEY))
        {
            return error(
                401,
                "Incorrect API key provided.",
                "invalid_request_error",
                Some("invalid_api_key"),
            );
        }
        let Ok(body) = serde_json::from_slice::<Value>(&request.body) else {
            return invalid("We could not parse the JSON body of your request.", "body");
        };
        let model = body["model"].as_str().unwrap_or("dall-e-2");
        let Some(prompt) = body["prompt"].as_str().filter(|p| !p.trim().is_empty()) else {
            return invalid("Missing required parameter: 'prompt'.", "prompt");
        };
        if body["n"].as_u64().unwrap_or(1) != 1 {
            return invalid("The fake draws one picture a request (n = 1).", "n");
        }
        let gpt = model.starts_with("gpt-image");
        let sizes: &[&str] = if gpt {
            &["1024x1024", "1536x1024", "1024x1536", "auto"]
        } else {
            &["1024x1024", "1792x1024", "1024x1792"]
        };
        let size = body["size"].as_str().unwrap_or("1024x1024");
        if !sizes.contains(&size) {
            return invalid(
                &format!(
                    "Invalid value: '{size}'. Supported values are: {}.",
                    sizes.join(", ")
                ),
                "size",
            );
        }
        if gpt && body.get("response_format").is_some() {
            return invalid("Unknown parameter: 'response_format'.", "response_format");
        }
        let (w, h) = match size {
            "1536x1024" => (1536, 1024),
            "1024x1536" => (1024, 1536),
            "1792x1024" => (1792, 1024),
            "1024x1792" => (1024, 1792),
            _ => (1024, 1024),
        };
        let picture = png(w, h, picture_colour(prompt));
        self.count.fetch_add(1, Ordering::SeqCst);
        let created = 1_765_000_000;
        if gpt {
            let input = tokens(prompt);
            let output = image_tokens(size);
            return ResponseTemplate::new(200).set_body_json(json!({
                "created": created,
                "data": [{"b64_json": base64::engine::general_purpose::STANDARD.encode(&picture)}],
                "usage": {
                    "total_tokens": input + output,
                    "input_tokens": input,
                    "output_tokens": output,
                    "input_tokens_details": {"text_tokens": input, "image_tokens": 0}
                }
            }));
        }
        let revised = format!("A picture of: {prompt}");
        match body["response_format"].as_str().unwrap_or("url") {
            "b64_json" => ResponseTemplate::new(200).set_body_json(json!({
                "created": created,
                "data": [{
                    "b64_json": base64::engine::general_purpose::STANDARD.encode(&picture),
                    "revised_prompt": revised
                }]
            })),
            "url" => {
                let mut files = self.files.lock().unwrap();
                files.push(picture);
                let url = format!("{}/files/{}.png", self.base, files.len() - 1);
                ResponseTemplate::new(200).set_body_json(json!({
                    "created": created,
                    "data": [{"url": url, "revised_prompt": revised}]
                }))
            }
            other => invalid(
                &format!("Invalid value: '{other}'. Supported values are: 'url' and 'b64_json'."),
                "response_format",
            ),
        }
    }
}

struct Files(Arc<std::sync::Mutex<Vec<Vec<u8>>>>);

impl Respond for Files {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let id: usize = request
            .url
            .path()
            .trim_start_matches("/files/")
            .trim_end_matches(".png")
            .parse()
            .unwrap_or(usize::MAX);
        match self.0.lock().unwrap().get(id) {
            Some(bytes) => ResponseTemplate::new(200)
                .insert_header("content-type", "image/png")
                .set_body_bytes(bytes.clone()),
            None => ResponseTemplate::new(404),
        }
    }
}
