//! A local stand-in for Luma's Dream Machine API ([`FakeLuma`]), following docs.lumalabs.ai:
//! `POST /generations/video` with `Authorization: Bearer` and `{"prompt", "model",
//! "aspect_ratio", "duration", "resolution", "loop", "keyframes": {"frame0": {"type": "image",
//! "url"}}}` answers 201 with the generation object (400 `{"detail"}` for an unknown model, a
//! duration other than `5s`/`9s`, an aspect ratio Luma does not make, or a keyframe that is not
//! an http(s) URL: Luma fetches keyframes itself and takes no data URIs; 401 for a bad key);
//! `GET /generations/{id}` goes `queued` → `dreaming` → `completed` with `assets.video`, a real
//! MP4 (the ratio's shape at most 640 wide, [`clip_colour`] of the prompt, the asked length),
//! or `failed` with a moderation `failure_reason` when the prompt says "unsafe".
//! [`FakeLuma::hold`] keeps generations `dreaming`; `GET /credits` answers the balance.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::replicate::{clip_colour, mp4};

/// The key the fake accepts.
pub const KEY: &str = "luma-test-key";
const RATIOS: [(&str, f64, f64); 7] = [
    ("16:9", 16.0, 9.0),
    ("9:16", 9.0, 16.0),
    ("1:1", 1.0, 1.0),
    ("4:3", 4.0, 3.0),
    ("3:4", 3.0, 4.0),
    ("21:9", 21.0, 9.0),
    ("9:21", 9.0, 21.0),
];

struct Generation {
    polls: u32,
    request: Value,
    unsafe_prompt: bool,
}

#[derive(Default)]
struct State {
    generations: HashMap<String, Generation>,
    videos: HashMap<String, Vec<u8>>,
}

/// A fake Luma API on a free local port.
pub struct FakeLuma {
    /// The wiremock server.
    pub server: MockServer,
    creates: Arc<AtomicU64>,
    held: Arc<AtomicBool>,
}

impl FakeLuma {
    /// Starts the fake.
    pub async fn start() -> FakeLuma {
        let server = MockServer::start().await;
        let state = Arc::new(Mutex::new(State::default()));
        let creates = Arc::new(AtomicU64::new(0));
        let held = Arc::new(AtomicBool::new(false));
        let base = server.uri();
        Mock::given(method("POST"))
            .and(path("/generations/video"))
            .respond_with(Create {
                state: state.clone(),
                creates: creates.clone(),
            })
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path_regex(r"^/generations/[^/]+$"))
            .respond_with(Get {
                state: state.clone(),
                held: held.clone(),
                base,
            })
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path_regex(r"^/videos/[^/]+\.mp4$"))
            .respond_with(Videos(state))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/credits"))
            .respond_with(Credits)
            .mount(&server)
            .await;
        FakeLuma {
            server,
            creates,
            held,
        }
    }

    /// `http://127.0.0.1:{port}`, the `base_url` to configure.
    pub fn base_url(&self) -> String {
        self.server.uri()
    }

    /// Generations created so far (what Luma bills).
    pub fn creates(&self) -> u64 {
        self.creates.load(Ordering::SeqCst)
    }

    /// While `held`, generations stay `dreaming`.
    pub fn hold(&self, held: bool) {
        self.held.store(held, Ordering::SeqCst);
    }

    /// The create bodies, in order.
    pub async fn created(&self) -> Vec<Value> {
        self.server
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .filter(|r| r.method.as_str() == "POST")
            .filter_map(|r| serde_json::from_slice::<Value>(&r.body).ok())
            .collect()
    }

    /// Polls of each generation, by id.
    pub async fn polls(&self) -> HashMap<String, usize> {
        let mut polls = HashMap::new();
        for r in self.server.received_requests().await.unwrap_or_default() {
            if let Some(id) = r.url.path().strip_prefix("/generations/") {
                if r.method.as_str() == "GET" {
                    *polls.entry(id.to_owned()).or_default() += 1;
                }
            }
        }
        polls
    }
}

fn unauthorized(request: &Request) -> Option<ResponseTemplate> {
    let auth = request
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok());
    (auth != Some(&format!("Bearer {KEY}"))).then(|| {
        ResponseTemplate::new(401).set_body_json(json!({"detail": "Invalid API key provided"}))
    })
}

fn bad(detail: &str) -> ResponseTemplate {
    ResponseTemplate::new(400).set_body_json(json!({"detail": detail}))
}

fn view(id: &str, g: &Generation, state: &str, base: &str) -> Value {
    let (failure, assets) = match state {
        "failed" => (
            json!("Prompt failed moderation: it may violate our content policy"),
            Value::Null,
        ),
        "completed" => (
            Value::Null,
            json!({"video": format!("{base}/videos/{id}.mp4"), "image": Value::Null}),
        ),
        _ => (Value::Null, Value::Null),
    };
    json!({
        "id": id,
        "generation_type": "video",
        "state": state,
        "failure_reason": failure,
        "created_at": "2026-12-07T12:00:00.000Z",
        "assets": assets,
        "model": g.request["model"],
        "request": g.request
    })
}

struct Create {
    state: Arc<Mutex<State>>,
    creates: Arc<AtomicU64>,
}

impl Respond for Create {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        if let Some(refusal) = unauthorized(request) {
            return refusal;
        }
        let Ok(body) = serde_json::from_slice::<Value>(&request.body) else {
            return bad("Invalid JSON");
        };
        let model = body["model"].as_str().unwrap_or_default();
        if !["ray-2", "ray-flash-2"].contains(&model) {
            return bad(&format!("Invalid model: {model}"));
        }
        let seconds = match body["duration"].as_str() {
            Some("5s") => 5,
            Some("9s") => 9,
            _ => return bad("duration must be 5s or 9s"),
        };
        let ratio = body["aspect_ratio"].as_str().unwrap_or_default();
        let Some(&(_, rw, rh)) = RATIOS.iter().find(|r| r.0 == ratio) else {
            return bad(&format!("Invalid aspect ratio: {ratio}"));
        };
        let frame = &body["keyframes"]["frame0"];
        let url = frame["url"].as_str().unwrap_or_default();
        if frame["type"] != "image" || !(url.starts_with("https://") || url.starts_with("http://"))
        {
            return bad(
                "keyframes.frame0 must be {\"type\": \"image\", \"url\": <a public http(s) URL>}",
            );
        }
        let n = self.creates.fetch_add(1, Ordering::SeqCst) + 1;
        let id = format!("a1b2c3d4-0000-4000-9000-{n:012}");
        let (w, h) = if rw >= rh {
            (640.0, 640.0 * rh / rw)
        } else {
            (640.0 * rw / rh, 640.0)
        };
        let even = |v: f64| ((v / 2.0).round() as u32).max(8) * 2;
        let prompt = body["prompt"].as_str().unwrap_or_default();
        let video = mp4(even(w), even(h), seconds, clip_colour(prompt));
        let generation = Generation {
            polls: 0,
            unsafe_prompt: prompt.to_lowercase().contains("unsafe"),
            request: body.clone(),
        };
        let answer = view(&id, &generation, "queued", "");
        let mut state = self.state.lock().unwrap();
        state.videos.insert(id.clone(), video);
        state.generations.insert(id, generation);
        ResponseTemplate::new(201).set_body_json(answer)
    }
}

struct Get {
    state: Arc<Mutex<State>>,
    held: Arc<AtomicBool>,
    base: String,
}

impl Respond for Get {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        if let Some(refusal) = unauthorized(request) {
            return refusal;
        }
        let id = request
            .url
            .path()
            .trim_start_matches("/generations/")
            .to_owned();
        let mut state = self.state.lock().unwrap();
        let Some(g) = state.generations.get_mut(&id) else {
            return ResponseTemplate::new(404)
                .set_body_json(json!({"detail": "Generation not found"}));
        };
        g.polls += 1;
        let held = self.held.load(Ordering::SeqCst);
        let now = match g.polls {
            1 => "queued",
            n if n < 3 || held => "dreaming",
            _ if g.unsafe_prompt => "failed",
            _ => "completed",
        };
        ResponseTemplate::new(200).set_body_json(view(&id, g, now, &self.base))
    }
}

struct Videos(Arc<Mutex<State>>);

impl Respond for Videos {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let id = request
            .url
            .path()
            .trim_start_matches("/videos/")
            .trim_end_matches(".mp4");
        match self.0.lock().unwrap().videos.get(id) {
            Some(bytes) => ResponseTemplate::new(200)
                .insert_header("content-type", "video/mp4")
                .set_body_bytes(bytes.clone()),
            None => ResponseTemplate::new(404),
        }
    }
}

struct Credits;

impl Respond for Credits {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        if let Some(refusal) = unauthorized(request) {
            return refusal;
        }
        ResponseTemplate::new(200).set_body_json(json!({"credit_balance": 2500.0}))
    }
}
