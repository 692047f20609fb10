//! A local stand-in for Replicate's predictions API ([`FakeReplicate`]), following
//! replicate.com/docs/reference/http: `POST /v1/models/{owner}/{name}/predictions` (official
//! models) and `POST /v1/predictions` with `version`, each `{"input": {...}}` with
//! `Authorization: Bearer`; a prediction object `{id, model, version, input, status, output,
//! error, logs, urls: {get, cancel}, created_at, metrics}` that goes `starting` → `processing` →
//! `succeeded` over the polls of `urls.get` (`Prefer: wait` is answered with the prediction as it
//! stands when the fake's wait ends, as the API does when a model is slower than the wait), and
//! outputs as URLs of real PNGs served by the fake. A prompt containing "nsfw" ends `failed` with
//! the model's NSFW error; a missing prompt is a 422 with `detail`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::openai_images::{picture_colour, png};

/// The token the fake accepts.
pub const KEY: &str = "r8_test_token";
/// Polls of `urls.get` before a prediction succeeds.
pub const POLLS_TO_SUCCEED: u32 = 2;

#[derive(Debug, Clone)]
struct Prediction {
    id: String,
    model: String,
    version: String,
    input: Value,
    polls: u32,
}

#[derive(Default)]
struct State {
    predictions: HashMap<String, Prediction>,
    files: HashMap<String, Vec<u8>>,
}

/// A fake Replicate API on a free local port.
pub struct FakeReplicate {
    /// The wiremock server.
    pub server: MockServer,
    creates: Arc<AtomicU64>,
}

impl FakeReplicate {
    /// Starts the fake.
    pub async fn start() -> FakeReplicate {
        let server = MockServer::start().await;
        let state = Arc::new(Mutex::new(State::default()));
        let creates = Arc::new(AtomicU64::new(0));
        let base = server.uri();
        Mock::given(method("POST"))
            .and(path_regex(r"^/v1/(models/[^/]+/[^/]+/)?predictions$"))
            .respond_with(Create {
                state: state.clone(),
                creates: creates.clone(),
                base: base.clone(),
            })
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path_regex(r"^/v1/predictions/[^/]+$"))
            .respond_with(Get {
                state: state.clone(),
                base: base.clone(),
            })
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path_regex(r"^/files/[^/]+\.png$"))
            .respond_with(Files(state))
            .mount(&server)
            .await;
        // The account of the token (what a key check asks for).
        Mock::given(method("GET"))
            .and(path("/v1/account"))
            .respond_with(Account)
            .mount(&server)
            .await;
        FakeReplicate { server, creates }
    }

    /// `http://127.0.0.1:{port}`, the `base_url` to configure.
    pub fn base_url(&self) -> String {
        self.server.uri()
    }

    /// Predictions created so far (what Replicate bills).
    pub fn creates(&self) -> u64 {
        self.creates.load(Ordering::SeqCst)
    }

    /// The JSON bodies of the create requests, in order, with the path under `"path"`.
    pub async fn created(&self) -> Vec<Value> {
        self.server
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .filter(|r| r.method.as_str() == "POST")
            .filter_map(|r| {
                let mut body: Value = serde_json::from_slice(&r.body).ok()?;
                body["path"] = json!(r.url.path());
                body["prefer"] = json!(r
                    .headers
                    .get("prefer")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default());
                Some(body)
            })
            .collect()
    }
}

fn authorized(request: &Request) -> bool {
    request
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        == Some(&format!("Bearer {KEY}"))
}

fn unauthorized() -> ResponseTemplate {
    ResponseTemplate::new(401).set_body_json(json!({
        "title": "Unauthenticated",
        "detail": "You did not pass a valid authentication token",
        "status": 401
    }))
}

/// The prediction object in its current state.
fn view(p: &Prediction, base: &str) -> Value {
    let nsfw = p.input["prompt"]
        .as_str()
        .is_some_and(|s| s.to_lowercase().contains("nsfw"));
    let (status, output, error) = match p.polls {
        0 => ("starting", Value::Null, Value::Null),
        n if n < POLLS_TO_SUCCEED => ("processing", Value::Null, Value::Null),
        _ if nsfw => (
            "failed",
            Value::Null,
            json!("NSFW content detected. Try running it again, or try a different prompt."),
        ),
        _ => (
            "succeeded",
            json!([format!("{base}/files/{}.png", p.id)]),
            Value::Null,
        ),
    };
    json!({
        "id": p.id,
        "model": p.model,
        "version": p.version,
        "input": p.input,
        "logs": "",
        "output": output,
        "error": error,
        "status": status,
        "created_at": "2026-12-07T12:00:00.000Z",
        "urls": {
            "get": format!("{base}/v1/predictions/{}", p.id),
            "cancel": format!("{base}/v1/predictions/{}/cancel", p.id)
        },
        "metrics": {}
    })
}

/// The size of the fake's picture for `input`.
fn picture_size(input: &Value) -> (u32, u32) {
    match (input["width"].as_u64(), input["height"].as_u64()) {
        (Some(w), Some(h)) => (w as u32, h as u32),
        _ => crate::stability::size_of(input["aspect_ratio"].as_str().unwrap_or("1:1"))
            .unwrap_or((1024, 1024)),
    }
}

struct Create {
    state: Arc<Mutex<State>>,
    creates: Arc<AtomicU64>,
    base: String,
}

impl Respond for Create {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        if !authorized(request) {
            return unauthorized();
        }
        let Ok(body) = serde_json::from_slice::<Value>(&request.body) else {
            return ResponseTemplate::new(400)
                .set_body_json(json!({"detail": "invalid JSON", "status": 400}));
        };
        let input = body["input"].clone();
        if input["prompt"].as_str().is_none_or(|p| p.trim().is_empty()) {
            return ResponseTemplate::new(422).set_body_json(json!({
                "title": "Input validation failed",
                "detail": "- input: prompt is required",
                "status": 422,
                "invalid_fields": [{"type": "required", "field": "input", "description": "prompt is required"}]
            }));
        }
        let path = request.url.path();
        let (model, version) = match path.strip_prefix("/v1/models/") {
            Some(rest) => (rest.trim_end_matches("/predictions").to_owned(), "hidden".to_owned()),
            None => match body["version"].as_str() {
                Some(v) => ("community/model".to_owned(), v.to_owned()),
                None => {
                    return ResponseTemplate::new(422).set_body_json(json!({
                        "title": "Input validation failed", "detail": "- version is required", "status": 422
                    }))
                }
            },
        };
        let n = self.creates.fetch_add(1, Ordering::SeqCst) + 1;
        let prediction = Prediction {
            id: format!("pred{n:04}qz"),
            model,
            version,
            input,
            polls: 0,
        };
        let (w, h) = picture_size(&prediction.input);
        let colour = picture_colour(prediction.input["prompt"].as_str().unwrap_or_default());
        let mut state = self.state.lock().unwrap();
        state.files.insert(prediction.id.clone(), png(w, h, colour));
        state
            .predictions
            .insert(prediction.id.clone(), prediction.clone());
        ResponseTemplate::new(201).set_body_json(view(&prediction, &self.base))
    }
}

struct Get {
    state: Arc<Mutex<State>>,
    base: String,
}

impl Respond for Get {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        if !authorized(request) {
            return unauthorized();
        }
        let id = request.url.path().trim_start_matches("/v1/predictions/");
        let mut state = self.state.lock().unwrap();
        match state.predictions.get_mut(id) {
            Some(p) => {
                p.polls += 1;
                ResponseTemplate::new(200).set_body_json(view(p, &self.base))
            }
            None => ResponseTemplate::new(404).set_body_json(
                json!({"title": "Not found", "detail": "Not found.", "status": 404}),
            ),
        }
    }
}

struct Account;

impl Respond for Account {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        if !authorized(request) {
            return unauthorized();
        }
        ResponseTemplate::new(200).set_body_json(json!({
            "type": "user", "username": "studio-test", "name": "Studio Test"
        }))
    }
}

struct Files(Arc<Mutex<State>>);

impl Respond for Files {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let id = request
            .url
            .path()
            .trim_start_matches("/files/")
            .trim_end_matches(".png");
        match self.0.lock().unwrap().files.get(id) {
            Some(bytes) => ResponseTemplate::new(200)
                .insert_header("content-type", "image/png")
                .set_body_bytes(bytes.clone()),
            None => ResponseTemplate::new(404),
        }
    }
}
