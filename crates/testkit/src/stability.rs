//! A local stand-in for Stability AI's Stable Image API ([`FakeStability`]), following the
//! documented shapes of `POST /v2beta/stable-image/generate/{core,ultra,sd3}`: a
//! `multipart/form-data` request with `prompt` (required), `negative_prompt`, `aspect_ratio`,
//! `seed`, `output_format` (and `model` for `sd3`), `Authorization: Bearer`; with
//! `Accept: application/json` the answer is `{"image": base64, "finish_reason": "SUCCESS",
//! "seed"}`. Errors as documented: 401 `{"name": "unauthorized", "errors": [...]}`, 400
//! `bad_request`, 403 `content_moderation` for a prompt with [`FLAGGED`] in it.
//!
//! Pictures are real PNGs of the size the aspect ratio gives at about one megapixel, one colour
//! from the prompt ([`crate::openai_images::picture_colour`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use base64::Engine as _;
use serde_json::json;
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::openai_images::{picture_colour, png};

/// The key the fake accepts.
pub const KEY: &str = "sk-stability-test";
/// A word the fake's moderation refuses (403 `content_moderation`).
pub const FLAGGED: &str = "forbidden";

/// Width and height the fake draws for an aspect ratio (about one megapixel, multiples of 64).
pub fn size_of(aspect: &str) -> Option<(u32, u32)> {
    Some(match aspect {
        "21:9" => (1536, 640),
        "16:9" => (1344, 768),
        "3:2" => (1216, 832),
        "5:4" => (1152, 896),
        "1:1" => (1024, 1024),
        "4:5" => (896, 1152),
        "2:3" => (832, 1216),
        "9:16" => (768, 1344),
        "9:21" => (640, 1536),
        _ => return None,
    })
}

/// A fake Stable Image API on a free local port.
pub struct FakeStability {
    /// The wiremock server; mount extra mocks on it (with a higher priority) to inject errors.
    pub server: MockServer,
    pictures: Arc<AtomicU64>,
}

impl FakeStability {
    /// Starts the fake.
    pub async fn start() -> FakeStability {
        let server = MockServer::start().await;
        let pictures = Arc::new(AtomicU64::new(0));
        Mock::given(method("POST"))
            .and(path_regex(
                r"^/v2beta/stable-image/generate/(core|ultra|sd3)$",
            ))
            .respond_with(Generate(pictures.clone()))
            .with_priority(10)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(wiremock::matchers::path("/v1/user/balance"))
            .respond_with(Balance)
            .mount(&server)
            .await;
        FakeStability { server, pictures }
    }

    /// `http://127.0.0.1:{port}`, the `base_url` to configure.
    pub fn base_url(&self) -> String {
        self.server.uri()
    }

    /// Pictures answered so far.
    pub fn pictures(&self) -> u64 {
        self.pictures.load(Ordering::SeqCst)
    }

    /// The form fields of every generate request, in order, with the path under `"path"`.
    pub async fn forms(&self) -> Vec<std::collections::BTreeMap<String, String>> {
        self.server
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .filter(|r| r.method.as_str() == "POST")
            .map(|r| {
                let mut fields = crate::multipart::fields(r);
                fields.insert("path".into(), r.url.path().to_owned());
                fields
            })
            .collect()
    }
}

fn fail(status: u16, name: &str, error: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({
        "id": "a1b2c3d4e5f6",
        "name": name,
        "errors": [error]
    }))
}

/// 401 as documented, unless the request carries the fake's key.
fn unauthorized(request: &Request) -> Option<ResponseTemplate> {
    let key = request
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok());
    (key != Some(&format!("Bearer {KEY}"))).then(|| {
        fail(
            401,
            "unauthorized",
            "authorization: invalid or missing API key",
        )
    })
}

struct Balance;

impl Respond for Balance {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        if let Some(refused) = unauthorized(request) {
            return refused;
        }
        ResponseTemplate::new(200).set_body_json(json!({"credits": 97.5}))
    }
}

struct Generate(Arc<AtomicU64>);

impl Respond for Generate {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        if let Some(refused) = unauthorized(request) {
            return refused;
        }
        let fields = crate::multipart::fields(request);
        let Some(prompt) = fields.get("prompt").filter(|p| !p.trim().is_empty()) else {
            return fail(400, "bad_request", "prompt: cannot be empty");
        };
        if prompt.contains(FLAGGED) {
            return fail(
                403,
                "content_moderation",
                "Your request was flagged by our content moderation system, as a result your request was denied and you were not charged.",
            );
        }
        let aspect = fields.get("aspect_ratio").map_or("1:1", String::as_str);
        let Some((w, h)) = size_of(aspect) else {
            return fail(
                400,
                "bad_request",
                "aspect_ratio: must be one of 16:9, 1:1, 21:9, 2:3, 3:2, 4:5, 5:4, 9:16, 9:21",
            );
        };
        let seed: u64 = match fields.get("seed").map(|s| s.parse::<u64>()) {
            Some(Ok(s)) if s <= 4_294_967_294 => s,
            None => 1234,
            _ => return fail(400, "bad_request", "seed: must be between 0 and 4294967294"),
        };
        self.0.fetch_add(1, Ordering::SeqCst);
        let picture = png(w, h, picture_colour(prompt));
        ResponseTemplate::new(200).set_body_json(json!({
            "image": base64::engine::general_purpose::STANDARD.encode(picture),
            "finish_reason": "SUCCESS",
            "seed": seed
        }))
    }
}
