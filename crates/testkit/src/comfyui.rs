//! A local stand-in for a ComfyUI server's HTTP API ([`FakeComfyUi`]), following ComfyUI's
//! `server.py` routes: `POST /prompt` with `{"prompt": <API-format workflow>, "client_id"}`
//! answers `{"prompt_id", "number", "node_errors"}`, or a 400 `{"error": {"type", "message",
//! "details", "extra_info"}, "node_errors"}` for a node class it does not have, a checkpoint not
//! installed ([`CHECKPOINT`] is) or a seed that is not an integer; `GET /history/{id}` answers
//! `{}` on the first poll (queued) and then the finished entry with its `outputs` and `status`;
//! `GET /view?filename&subfolder&type` serves the real PNG the workflow "drew": the
//! `EmptyLatentImage` size, filled with [`picture_colour`] of the positive prompt's text. A
//! prompt containing "out of memory" ends with an `execution_error`. `GET /system_stats` answers
//! as a one-GPU server does.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::openai_images::{picture_colour, png};

/// The checkpoint installed on the fake server.
pub const CHECKPOINT: &str = "sd_xl_base_1.0.safetensors";
/// Node classes the fake server has.
const NODES: [&str; 6] = [
    "KSampler",
    "CheckpointLoaderSimple",
    "EmptyLatentImage",
    "CLIPTextEncode",
    "VAEDecode",
    "SaveImage",
];

struct Queued {
    polls: u32,
    filename: String,
    failed: Option<String>,
}

#[derive(Default)]
struct State {
    queued: HashMap<String, Queued>,
    files: HashMap<String, Vec<u8>>,
}

/// A fake ComfyUI server on a free local port.
pub struct FakeComfyUi {
    /// The wiremock server.
    pub server: MockServer,
    prompts: Arc<AtomicU64>,
}

impl FakeComfyUi {
    /// Starts the fake.
    pub async fn start() -> FakeComfyUi {
        let server = MockServer::start().await;
        let state = Arc::new(Mutex::new(State::default()));
        let prompts = Arc::new(AtomicU64::new(0));
        Mock::given(method("POST"))
            .and(path("/prompt"))
            .respond_with(Queue {
                state: state.clone(),
                prompts: prompts.clone(),
            })
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path_regex(r"^/history/[^/]+$"))
            .respond_with(History(state.clone()))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/view"))
            .respond_with(View(state))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/system_stats"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "system": {
                    "os": "posix",
                    "ram_total": 68_719_476_736u64,
                    "ram_free": 60_000_000_000u64,
                    "comfyui_version": "0.3.40",
                    "python_version": "3.11.7",
                    "pytorch_version": "2.5.1+cu124",
                    "embedded_python": false,
                    "argv": ["main.py", "--listen"]
                },
                "devices": [{
                    "name": "cuda:0 NVIDIA L4 : cudaMallocAsync",
                    "type": "cuda",
                    "index": 0,
                    "vram_total": 23_580_753_920u64,
                    "vram_free": 23_000_000_000u64,
                    "torch_vram_total": 0,
                    "torch_vram_free": 0
                }]
            })))
            .mount(&server)
            .await;
        FakeComfyUi { server, prompts }
    }

    /// `http://127.0.0.1:{port}`, the `base_url` to configure.
    pub fn base_url(&self) -> String {
        self.server.uri()
    }

    /// Prompts queued so far.
    pub fn prompts(&self) -> u64 {
        self.prompts.load(Ordering::SeqCst)
    }

    /// The workflows queued, in order.
    pub async fn workflows(&self) -> Vec<Value> {
        self.server
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .filter(|r| r.method.as_str() == "POST" && r.url.path() == "/prompt")
            .filter_map(|r| serde_json::from_slice::<Value>(&r.body).ok())
            .map(|b| b["prompt"].clone())
            .collect()
    }
}

/// The text of the positive prompt of `workflow`'s sampler.
pub fn positive_text(workflow: &Value) -> Option<String> {
    let nodes = workflow.as_object()?;
    let sampler = nodes.values().find(|n| n["class_type"] == "KSampler")?;
    let id = sampler["inputs"]["positive"][0].as_str()?;
    Some(nodes.get(id)?["inputs"]["text"].as_str()?.to_owned())
}

fn invalid(kind: &str, message: &str, details: &str, node_errors: Value) -> ResponseTemplate {
    ResponseTemplate::new(400).set_body_json(json!({
        "error": {"type": kind, "message": message, "details": details, "extra_info": {}},
        "node_errors": node_errors
    }))
}

struct Queue {
    state: Arc<Mutex<State>>,
    prompts: Arc<AtomicU64>,
}

impl Respond for Queue {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let Ok(body) = serde_json::from_slice::<Value>(&request.body) else {
            return invalid("invalid_prompt", "Invalid prompt", "not JSON", json!({}));
        };
        let Some(nodes) = body["prompt"].as_object() else {
            return invalid(
                "invalid_prompt",
                "Cannot execute because the prompt is not a dict.",
                "",
                json!({}),
            );
        };
        for (id, node) in nodes {
            let class = node["class_type"].as_str().unwrap_or_default();
            if !NODES.contains(&class) {
                return invalid(
                    "invalid_prompt",
                    &format!("Cannot execute because node {class} does not exist."),
                    &format!("Node ID '#{id}'"),
                    json!({}),
                );
            }
            let error = match class {
                "CheckpointLoaderSimple" if node["inputs"]["ckpt_name"] != CHECKPOINT => {
                    Some(format!(
                        "ckpt_name: '{}' not in ['{CHECKPOINT}']",
                        node["inputs"]["ckpt_name"].as_str().unwrap_or_default()
                    ))
                }
                "KSampler" if !node["inputs"]["seed"].is_u64() => {
                    Some("seed: not an integer".to_owned())
                }
                _ => None,
            };
            if let Some(details) = error {
                return invalid(
                    "prompt_outputs_failed_validation",
                    "Prompt outputs failed validation",
                    "",
                    json!({id: {
                        "errors": [{"type": "value_not_in_list", "message": "Value not in list", "details": details, "extra_info": {}}],
                        "dependent_outputs": [],
                        "class_type": class
                    }}),
                );
            }
        }
        let workflow = &body["prompt"];
        let text = positive_text(workflow).unwrap_or_default();
        let latent = nodes
            .values()
            .find(|n| n["class_type"] == "EmptyLatentImage")
            .map(|n| &n["inputs"]);
        let size = |k: &str| latent.and_then(|l| l[k].as_u64()).unwrap_or(1024) as u32;
        let n = self.prompts.fetch_add(1, Ordering::SeqCst) + 1;
        let id = format!("6f1c2b7e-0000-4000-8000-{n:012}");
        let filename = format!("studio_{n:05}_.png");
        let mut state = self.state.lock().unwrap();
        state.files.insert(
            filename.clone(),
            png(size("width"), size("height"), picture_colour(&text)),
        );
        let failed = text
            .to_lowercase()
            .contains("out of memory")
            .then(|| "CUDA out of memory. Tried to allocate 2.00 GiB".to_owned());
        state.queued.insert(
            id.clone(),
            Queued {
                polls: 0,
                filename,
                failed,
            },
        );
        ResponseTemplate::new(200).set_body_json(json!({
            "prompt_id": id, "number": n, "node_errors": {}
        }))
    }
}

struct History(Arc<Mutex<State>>);

impl Respond for History {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let id = request
            .url
            .path()
            .trim_start_matches("/history/")
            .to_owned();
        let mut state = self.0.lock().unwrap();
        let Some(q) = state.queued.get_mut(&id) else {
            return ResponseTemplate::new(200).set_body_json(json!({}));
        };
        q.polls += 1;
        if q.polls < 2 {
            return ResponseTemplate::new(200).set_body_json(json!({}));
        }
        let entry = match &q.failed {
            Some(why) => json!({
                "prompt": [],
                "outputs": {},
                "status": {
                    "status_str": "error",
                    "completed": false,
                    "messages": [
                        ["execution_start", {"prompt_id": id}],
                        ["execution_error", {"prompt_id": id, "node_id": "3", "node_type": "KSampler", "exception_message": why, "exception_type": "torch.OutOfMemoryError"}]
                    ]
                },
                "meta": {}
            }),
            None => json!({
                "prompt": [],
                "outputs": {"9": {"images": [{"filename": q.filename, "subfolder": "", "type": "output"}]}},
                "status": {
                    "status_str": "success",
                    "completed": true,
                    "messages": [["execution_start", {"prompt_id": id}], ["execution_success", {"prompt_id": id}]]
                },
                "meta": {"9": {"node_id": "9", "display_node": "9"}}
            }),
        };
        ResponseTemplate::new(200).set_body_json(json!({ id: entry }))
    }
}

struct View(Arc<Mutex<State>>);

impl Respond for View {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let query: HashMap<String, String> = request.url.query_pairs().into_owned().collect();
        if query.get("type").map(String::as_str) != Some("output") {
            return ResponseTemplate::new(404);
        }
        let name = query.get("filename").cloned().unwrap_or_default();
        match self.0.lock().unwrap().files.get(&name) {
            Some(bytes) => ResponseTemplate::new(200)
                .insert_header("content-type", "image/png")
                .set_body_bytes(bytes.clone()),
            None => ResponseTemplate::new(404),
        }
    }
}
