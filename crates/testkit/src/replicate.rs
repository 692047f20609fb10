//! A local stand-in for Replicate's predictions API ([`FakeReplicate`]), following
//! replicate.com/docs/reference/http: `POST /v1/models/{owner}/{name}/predictions` (official
//! models) and `POST /v1/predictions` with `version`, each `{"input": {...}}` with
//! `Authorization: Bearer`; a prediction object `{id, model, version, input, status, output,
//! error, logs, urls: {get, cancel}, created_at, metrics}` that goes `starting` → `processing` →
//! `succeeded` over the polls of `urls.get` (`Prefer: wait` is answered with the prediction as it
//! stands when the fake's wait ends, as the API does when a model is slower than the wait), and
//! outputs as URLs of real PNGs served by the fake. A prompt containing "nsfw" ends `failed` with
//! the model's NSFW error; a missing prompt is a 422 with `detail`.
//!
//! Image-to-video models are served too: `POST /v1/files` (multipart field `content`) stores a
//! still and answers the file object with its `urls.get`; a prediction whose input names a still
//! (`start_image`, `first_frame_image` or `image`) fetches it (an unknown URL fails the
//! prediction as the model would) and outputs one URL of a real H.264 MP4: the still's shape,
//! filled with [`clip_colour`] of the prompt, a white square moving across it, `duration`
//! seconds (default 5). [`FakeReplicate::hold`] keeps predictions `processing` until released,
//! for tests that stop a worker mid-generation.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
    /// Outputs by name (`{id}.png`, `{id}.mp4`).
    files: HashMap<String, Vec<u8>>,
    /// Uploaded stills by `urls.get`.
    uploads: HashMap<String, Vec<u8>>,
}

/// The colour of the fake's clip for `prompt`: [`picture_colour`] inverted, so a clip and a
/// picture of the same words differ.
pub fn clip_colour(prompt: &str) -> [u8; 3] {
    let [r, g, b] = picture_colour(prompt);
    [255 - r, 255 - g, 255 - b]
}

/// A `width`×`height` H.264 MP4 of `seconds` at 24 fps filled with `colour`, a white square
/// moving left to right; made with FFmpeg.
pub fn mp4(width: u32, height: u32, seconds: u32, colour: [u8; 3]) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("clip.mp4");
    let [r, g, b] = colour;
    let square = (height / 6).max(8);
    let status = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-f", "lavfi", "-i"])
        .arg(format!(
            "color=c=0x{r:02x}{g:02x}{b:02x}:s={width}x{height}:r=24:d={seconds}"
        ))
        .args(["-f", "lavfi", "-i"])
        .arg(format!(
            "color=c=white:s={square}x{square}:r=24:d={seconds}"
        ))
        .arg("-filter_complex")
        .arg(format!(
            "[0][1]overlay=x='t*{}':y={square}:shortest=1,format=yuv420p",
            (width / seconds.max(1)).max(1)
        ))
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-movflags",
            "+faststart",
        ])
        .arg(&out)
        .status()
        .expect("ffmpeg runs");
    assert!(status.success(), "ffmpeg made the fake's clip");
    std::fs::read(out).expect("the fake's clip")
}

/// Width and height of a PNG from its IHDR; 640×360 for anything else.
fn still_size(bytes: &[u8]) -> (u32, u32) {
    let be32 = |i: usize| {
        bytes
            .get(i..i + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    match (bytes.get(12..16), be32(16), be32(20)) {
        (Some(b"IHDR"), Some(w), Some(h)) if w > 0 && h > 0 => (w, h),
        _ => (640, 360),
    }
}

/// The still a video prediction's input names, if any.
fn still_url(input: &Value) -> Option<&str> {
    ["start_image", "first_frame_image", "image"]
        .iter()
        .find_map(|k| input[*k].as_str())
}

/// A fake Replicate API on a free local port.
pub struct FakeReplicate {
    /// The wiremock server.
    pub server: MockServer,
    creates: Arc<AtomicU64>,
    held: Arc<AtomicBool>,
}

impl FakeReplicate {
    /// Starts the fake.
    pub async fn start() -> FakeReplicate {
        let server = MockServer::start().await;
        let state = Arc::new(Mutex::new(State::default()));
        let creates = Arc::new(AtomicU64::new(0));
        let held = Arc::new(AtomicBool::new(false));
        let base = server.uri();
        Mock::given(method("POST"))
            .and(path_regex(r"^/v1/(models/[^/]+/[^/]+/)?predictions$"))
            .respond_with(Create {
                state: state.clone(),
                creates: creates.clone(),
                base: base.clone(),
                held: held.clone(),
            })
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path_regex(r"^/v1/predictions/[^/]+$"))
            .respond_with(Get {
                state: state.clone(),
                base: base.clone(),
                held: held.clone(),
            })
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/v1/files"))
            .respond_with(Upload {
                state: state.clone(),
                base: base.clone(),
            })
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path_regex(r"^/files/[^/]+\.(png|mp4)$"))
            .respond_with(Files(state))
            .mount(&server)
            .await;
        // The account of the token (what a key check asks for).
        Mock::given(method("GET"))
            .and(path("/v1/account"))
            .respond_with(Account)
            .mount(&server)
            .await;
        FakeReplicate {
            server,
            creates,
            held,
        }
    }

    /// While `held`, predictions stay `processing` however often they are polled; released,
    /// they go on to their end.
    pub fn hold(&self, held: bool) {
        self.held.store(held, Ordering::SeqCst);
    }

    /// Polls of each prediction so far, by id.
    pub async fn polls(&self) -> HashMap<String, usize> {
        let mut polls = HashMap::new();
        for r in self.server.received_requests().await.unwrap_or_default() {
            if r.method.as_str() == "GET" {
                if let Some(id) = r.url.path().strip_prefix("/v1/predictions/") {
                    *polls.entry(id.to_owned()).or_default() += 1;
                }
            }
        }
        polls
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
            .filter(|r| r.method.as_str() == "POST" && r.url.path().ends_with("/predictions"))
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
fn view(p: &Prediction, base: &str, state: &State, held: bool) -> Value {
    let nsfw = p.input["prompt"]
        .as_str()
        .is_some_and(|s| s.to_lowercase().contains("nsfw"));
    let still = still_url(&p.input);
    let (status, output, error) = match p.polls {
        0 => ("starting", Value::Null, Value::Null),
        n if n < POLLS_TO_SUCCEED || held => ("processing", Value::Null, Value::Null),
        _ if nsfw => (
            "failed",
            Value::Null,
            json!("NSFW content detected. Try running it again, or try a different prompt."),
        ),
        _ if still.is_some_and(|u| !state.uploads.contains_key(u)) => (
            "failed",
            Value::Null,
            json!(format!(
                "could not download the image at {}",
                still.unwrap_or_default()
            )),
        ),
        // A video model's output is one URL.
        _ if still.is_some() => (
            "succeeded",
            json!(format!("{base}/files/{}.mp4", p.id)),
            Value::Null,
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
    held: Arc<AtomicBool>,
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
        let prompt = prediction.input["prompt"].as_str().unwrap_or_default();
        let mut state = self.state.lock().unwrap();
        match still_url(&prediction.input) {
            Some(url) => {
                let (w, h) = state
                    .uploads
                    .get(url)
                    .map(|b| still_size(b))
                    .unwrap_or((640, 360));
                // At most 640 wide, even sides, the still's shape.
                let scale = (640.0 / f64::from(w)).min(1.0);
                let even = |v: f64| ((v * scale / 2.0).round() as u32).max(8) * 2;
                let seconds = prediction.input["duration"].as_u64().unwrap_or(5) as u32;
                let clip = mp4(
                    even(f64::from(w)),
                    even(f64::from(h)),
                    seconds,
                    clip_colour(prompt),
                );
                state.files.insert(format!("{}.mp4", prediction.id), clip);
            }
            None => {
                let (w, h) = picture_size(&prediction.input);
                let picture = png(w, h, picture_colour(prompt));
                state
                    .files
                    .insert(format!("{}.png", prediction.id), picture);
            }
        }
        state
            .predictions
            .insert(prediction.id.clone(), prediction.clone());
        let held = self.held.load(Ordering::SeqCst);
        ResponseTemplate::new(201).set_body_json(view(&prediction, &self.base, &state, held))
    }
}

struct Get {
    state: Arc<Mutex<State>>,
    base: String,
    held: Arc<AtomicBool>,
}

impl Respond for Get {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        if !authorized(request) {
            return unauthorized();
        }
        let id = request.url.path().trim_start_matches("/v1/predictions/");
        let mut state = self.state.lock().unwrap();
        let held = self.held.load(Ordering::SeqCst);
        let polled = state.predictions.get_mut(id).map(|p| {
            p.polls += 1;
            p.clone()
        });
        match polled {
            Some(p) => ResponseTemplate::new(200).set_body_json(view(&p, &self.base, &state, held)),
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

struct Upload {
    state: Arc<Mutex<State>>,
    base: String,
}

impl Respond for Upload {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        if !authorized(request) {
            return unauthorized();
        }
        let Some(content) = crate::multipart::parts(request).remove("content") else {
            return ResponseTemplate::new(400).set_body_json(json!({
                "title": "Bad request", "detail": "the form has no content field", "status": 400
            }));
        };
        let mut state = self.state.lock().unwrap();
        let id = format!("file{:04}", state.uploads.len() + 1);
        let get = format!("{}/v1/files/{id}", self.base);
        let size = content.len();
        state.uploads.insert(get.clone(), content);
        ResponseTemplate::new(201).set_body_json(json!({
            "id": id,
            "name": "still",
            "content_type": "application/octet-stream",
            "size": size,
            "etag": format!("\"{id}\""),
            "checksums": {},
            "metadata": {},
            "created_at": "2026-12-07T12:00:00.000Z",
            "expires_at": "2026-12-08T12:00:00.000Z",
            "urls": {"get": get}
        }))
    }
}

struct Files(Arc<Mutex<State>>);

impl Respond for Files {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let name = request.url.path().trim_start_matches("/files/");
        let mime = if name.ends_with(".mp4") {
            "video/mp4"
        } else {
            "image/png"
        };
        match self.0.lock().unwrap().files.get(name) {
            Some(bytes) => ResponseTemplate::new(200)
                .insert_header("content-type", mime)
                .set_body_bytes(bytes.clone()),
            None => ResponseTemplate::new(404),
        }
    }
}
