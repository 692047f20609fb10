//! A local stand-in for Runway's API ([`FakeRunway`]), following docs.dev.runwayml.com:
//! `POST /v1/image_to_video` with `Authorization: Bearer`, `X-Runway-Version: 2024-11-06` and
//! `{"model", "promptImage", "promptText", "ratio", "duration", "seed"}` answers `{"id"}` (400
//! `{"error"}` for a missing version header, an unknown model, a ratio the model does not make,
//! a duration other than 5 or 10, or a `promptImage` that is neither an HTTPS URL nor an image
//! data URI; 401 for a bad key); `GET /v1/tasks/{id}` goes `PENDING` → `RUNNING` (with
//! `progress`) → `SUCCEEDED` with `output: [url]` of a real MP4 (the ratio's shape at most 640
//! wide, [`clip_colour`] of the prompt text, `duration` seconds) over three polls, or `FAILED`
//! with `failureCode` `SAFETY.INPUT.TEXT` when the prompt says "unsafe".
//! [`FakeRunway::hold`] keeps tasks `RUNNING` until released; `GET /v1/organization` answers the
//! credit balance.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use serde_json::{json, Value};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::replicate::{clip_colour, mp4};

/// The key the fake accepts.
pub const KEY: &str = "key_runway_test";

const RATIOS: [(&str, &[&str]); 2] = [
    (
        "gen4_turbo",
        &[
            "1280:720", "720:1280", "1104:832", "832:1104", "960:960", "1584:672",
        ],
    ),
    ("gen3a_turbo", &["1280:768", "768:1280"]),
];

struct RunwayTask {
    polls: u32,
    unsafe_prompt: bool,
}

#[derive(Default)]
struct State {
    tasks: HashMap<String, RunwayTask>,
    files: HashMap<String, Vec<u8>>,
    /// The decoded still of each task.
    stills: HashMap<String, Vec<u8>>,
}

/// A fake Runway API on a free local port.
pub struct FakeRunway {
    /// The wiremock server.
    pub server: MockServer,
    creates: Arc<AtomicU64>,
    held: Arc<AtomicBool>,
    state: Arc<Mutex<State>>,
}

impl FakeRunway {
    /// Starts the fake.
    pub async fn start() -> FakeRunway {
        let server = MockServer::start().await;
        let state = Arc::new(Mutex::new(State::default()));
        let creates = Arc::new(AtomicU64::new(0));
        let held = Arc::new(AtomicBool::new(false));
        let base = server.uri();
        Mock::given(method("POST"))
            .and(path("/v1/image_to_video"))
            .respond_with(Create {
                state: state.clone(),
                creates: creates.clone(),
            })
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path_regex(r"^/v1/tasks/[^/]+$"))
            .respond_with(Get {
                state: state.clone(),
                held: held.clone(),
                base,
            })
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path_regex(r"^/outputs/[^/]+\.mp4$"))
            .respond_with(Outputs(state.clone()))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/v1/organization"))
            .respond_with(Organization)
            .mount(&server)
            .await;
        FakeRunway {
            server,
            creates,
            held,
            state,
        }
    }

    /// `http://127.0.0.1:{port}`, the `base_url` to configure.
    pub fn base_url(&self) -> String {
        self.server.uri()
    }

    /// Tasks created so far (what Runway bills).
    pub fn creates(&self) -> u64 {
        self.creates.load(Ordering::SeqCst)
    }

    /// While `held`, tasks stay `RUNNING`.
    pub fn hold(&self, held: bool) {
        self.held.store(held, Ordering::SeqCst);
    }

    /// The stills the tasks were given, decoded, by task id.
    pub fn stills(&self) -> HashMap<String, Vec<u8>> {
        self.state.lock().unwrap().stills.clone()
    }

    /// The create bodies, in order, the data URI shortened to its media type.
    pub async fn created(&self) -> Vec<Value> {
        self.server
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .filter(|r| r.method.as_str() == "POST")
            .filter_map(|r| serde_json::from_slice::<Value>(&r.body).ok())
            .map(|mut b| {
                if let Some(uri) = b["promptImage"].as_str() {
                    b["promptImage"] = json!(uri.split(',').next().unwrap_or_default());
                }
                b
            })
            .collect()
    }

    /// Polls of each task, by id.
    pub async fn polls(&self) -> HashMap<String, usize> {
        let mut polls = HashMap::new();
        for r in self.server.received_requests().await.unwrap_or_default() {
            if let Some(id) = r.url.path().strip_prefix("/v1/tasks/") {
                *polls.entry(id.to_owned()).or_default() += 1;
            }
        }
        polls
    }
}

fn refused(request: &Request) -> Option<ResponseTemplate> {
    let auth = request
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok());
    if auth != Some(&format!("Bearer {KEY}")) {
        return Some(
            ResponseTemplate::new(401)
                .set_body_json(json!({"error": "Incorrect API key provided."})),
        );
    }
    let version = request
        .headers
        .get("x-runway-version")
        .and_then(|v| v.to_str().ok());
    if version != Some("2024-11-06") {
        return Some(ResponseTemplate::new(400).set_body_json(json!({
            "error": "Invalid API version. Set the X-Runway-Version header to 2024-11-06."
        })));
    }
    None
}

fn bad(message: &str) -> ResponseTemplate {
    ResponseTemplate::new(400).set_body_json(json!({"error": message, "issues": []}))
}

struct Create {
    state: Arc<Mutex<State>>,
    creates: Arc<AtomicU64>,
}

impl Respond for Create {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        if let Some(refusal) = refused(request) {
            return refusal;
        }
        let Ok(body) = serde_json::from_slice::<Value>(&request.body) else {
            return bad("Invalid JSON");
        };
        let model = body["model"].as_str().unwrap_or_default();
        let Some((_, ratios)) = RATIOS.iter().find(|(m, _)| *m == model) else {
            return bad(&format!("Invalid model: {model}"));
        };
        let ratio = body["ratio"].as_str().unwrap_or_default();
        if !ratios.contains(&ratio) {
            return bad(&format!("Invalid ratio {ratio} for {model}"));
        }
        let duration = body["duration"].as_u64().unwrap_or(0);
        if duration != 5 && duration != 10 {
            return bad("duration must be 5 or 10");
        }
        let image = body["promptImage"].as_str().unwrap_or_default();
        let still = match image.split_once(";base64,") {
            Some((head, data)) if head.starts_with("data:image/") => {
                match base64::engine::general_purpose::STANDARD.decode(data) {
                    Ok(bytes) => bytes,
                    Err(_) => return bad("promptImage is not valid base64"),
                }
            }
            _ if image.starts_with("https://") => Vec::new(),
            _ => return bad("promptImage must be an HTTPS URL or a data URI"),
        };
        let n = self.creates.fetch_add(1, Ordering::SeqCst) + 1;
        let id = format!("17f20503-6c24-4c16-946b-{n:012}");
        let (w, h) = ratio.split_once(':').unwrap_or(("1280", "720"));
        let (w, h): (f64, f64) = (w.parse().unwrap_or(1280.0), h.parse().unwrap_or(720.0));
        let scale = (640.0 / w).min(1.0);
        let even = |v: f64| ((v * scale / 2.0).round() as u32).max(8) * 2;
        let prompt = body["promptText"].as_str().unwrap_or_default();
        let video = mp4(even(w), even(h), duration as u32, clip_colour(prompt));
        let mut state = self.state.lock().unwrap();
        state.files.insert(id.clone(), video);
        state.stills.insert(id.clone(), still);
        state.tasks.insert(
            id.clone(),
            RunwayTask {
                polls: 0,
                unsafe_prompt: prompt.to_lowercase().contains("unsafe"),
            },
        );
        ResponseTemplate::new(200).set_body_json(json!({"id": id}))
    }
}

struct Get {
    state: Arc<Mutex<State>>,
    held: Arc<AtomicBool>,
    base: String,
}

impl Respond for Get {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        if let Some(refusal) = refused(request) {
            return refusal;
        }
        let id = request
            .url
            .path()
            .trim_start_matches("/v1/tasks/")
            .to_owned();
        let mut state = self.state.lock().unwrap();
        let Some(task) = state.tasks.get_mut(&id) else {
            return ResponseTemplate::new(404).set_body_json(json!({"error": "Task not found"}));
        };
        task.polls += 1;
        let held = self.held.load(Ordering::SeqCst);
        let mut view = json!({"id": id, "createdAt": "2026-12-07T12:00:00.000Z"});
        match task.polls {
            1 => view["status"] = json!("PENDING"),
            n if n < 3 || held => {
                view["status"] = json!("RUNNING");
                view["progress"] = json!(0.5);
            }
            _ if task.unsafe_prompt => {
                view["status"] = json!("FAILED");
                view["failure"] = json!("Your prompt did not pass our content moderation.");
                view["failureCode"] = json!("SAFETY.INPUT.TEXT");
            }
            _ => {
                view["status"] = json!("SUCCEEDED");
                view["output"] = json!([format!("{}/outputs/{id}.mp4", self.base)]);
            }
        }
        ResponseTemplate::new(200).set_body_json(view)
    }
}

struct Outputs(Arc<Mutex<State>>);

impl Respond for Outputs {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let id = request
            .url
            .path()
            .trim_start_matches("/outputs/")
            .trim_end_matches(".mp4");
        match self.0.lock().unwrap().files.get(id) {
            Some(bytes) => ResponseTemplate::new(200)
                .insert_header("content-type", "video/mp4")
                .set_body_bytes(bytes.clone()),
            None => ResponseTemplate::new(404),
        }
    }
}

struct Organization;

impl Respond for Organization {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        if let Some(refusal) = refused(request) {
            return refusal;
        }
        ResponseTemplate::new(200).set_body_json(json!({
            "creditBalance": 12500,
            "tier": {"maxMonthlyCreditSpend": 100000, "models": {}},
            "usage": {"models": {}}
        }))
    }
}
