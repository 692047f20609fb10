//! `comfyui`: pictures from a self-hosted ComfyUI server (the usual GPU server in a cluster),
//! through its HTTP API (ComfyUI's `server.py` routes, as its `script_examples` use them):
//!
//! 1. `POST {base_url}/prompt` with `{"prompt": <workflow>, "client_id": …}`, the workflow in
//!    ComfyUI's API format ("Save (API format)" in its menu) with these placeholders filled in:
//!    `"{{prompt}}"`, `"{{negative_prompt}}"` and `"{{model}}"` inside any string, and
//!    `"{{seed}}"`, `"{{width}}"`, `"{{height}}"` as whole values (they become numbers). The
//!    answer is `{"prompt_id", "number", "node_errors"}`; a workflow the server cannot run is a
//!    400 `{"error": {"type", "message", …}, "node_errors"}`.
//! 2. `GET {base_url}/history/{prompt_id}`, polled with backoff (0.5 s doubling to 5 s) for at
//!    most [`MAX_WAIT`]: `{}` while queued or running, then `{prompt_id: {"outputs": {node:
//!    {"images": [{"filename", "subfolder", "type"}]}}, "status": {"status_str", "completed",
//!    "messages"}}}`.
//! 3. `GET {base_url}/view?filename=…&subfolder=…&type=output`: the picture, checked before use.
//!
//! The shipped workflow ([`DEFAULT_WORKFLOW`], `comfyui/txt2img.json`) is the standard text-to-
//! image graph (checkpoint, two text encoders, empty latent, KSampler, VAE decode, save) for an
//! SDXL checkpoint named by `model`; point `workflow` at your own file for anything else. The
//! server takes no key by default (`api_key_env = ""`); behind a proxy that wants a bearer token,
//! name its variable.

use std::path::Path;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use reqwest::Method;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{picture, Endpoint};
use crate::capability::{Describe, ImageGen, Produced};
use crate::error::{ErrorKind, ProviderError};
use crate::types::*;

/// Where a ComfyUI server listens by default.
pub const BASE_URL: &str = "http://127.0.0.1:8188";
/// The checkpoint the shipped workflow loads when settings name none.
pub const MODEL: &str = "sd_xl_base_1.0.safetensors";
/// The shipped text-to-image workflow (API format).
pub const DEFAULT_WORKFLOW: &str = include_str!("../../comfyui/txt2img.json");
/// The longest a queued prompt is waited for.
pub const MAX_WAIT: Duration = Duration::from_secs(600);

/// The server's version and devices (`GET /system_stats`): a free probe of the URL.
pub async fn system_stats(endpoint: &Endpoint) -> Result<String, ProviderError> {
    let stats: Value = endpoint
        .json(endpoint.request(Method::GET, "/system_stats"))
        .await?;
    let version = stats["system"]["comfyui_version"].as_str().unwrap_or("?");
    let devices: Vec<&str> = stats["devices"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["name"].as_str())
        .collect();
    Ok(format!(
        "ComfyUI {version}; devices: {}",
        devices.join(", ")
    ))
}

/// Pictures from a ComfyUI server.
#[derive(Debug)]
pub struct ComfyUiImages {
    endpoint: Endpoint,
    model: String,
    workflow: Value,
    /// Digest of the workflow, part of the cache key.
    workflow_sha256: String,
}

impl ComfyUiImages {
    /// Pictures from `workflow` (API-format JSON text) with checkpoint `model` at `endpoint`.
    ///
    /// Errors: `Unavailable` when the workflow is not a JSON object of nodes, or has no
    /// `"{{prompt}}"` placeholder (every scene would get the same picture).
    pub fn new(endpoint: Endpoint, model: &str, workflow: &str) -> Result<Self, ProviderError> {
        let parsed: Value = serde_json::from_str(workflow).map_err(|e| {
            ProviderError::unavailable(format!(
                "the workflow is not JSON ({e}); export it with ComfyUI's \"Save (API format)\""
            ))
        })?;
        let nodes = parsed.as_object().filter(|o| {
            !o.is_empty()
                && o.values()
                    .all(|n| n.get("class_type").is_some_and(Value::is_string))
        });
        if nodes.is_none() {
            return Err(ProviderError::unavailable(
                "the workflow is not in ComfyUI's API format (an object of nodes, each with \
                 class_type and inputs); export it with \"Save (API format)\"",
            ));
        }
        if !workflow.contains("{{prompt}}") {
            return Err(ProviderError::unavailable(
                "the workflow has no \"{{prompt}}\" placeholder; put it in the positive text \
                 encoder's text",
            ));
        }
        Ok(Self {
            endpoint,
            model: model.to_owned(),
            workflow: parsed,
            workflow_sha256: crate::sha256_hex(workflow.as_bytes()),
        })
    }

    /// The workflow for `request`, placeholders filled in.
    pub fn workflow(&self, request: &ImageRequest) -> Value {
        let (width, height) = picture::megapixel_size(request.width, request.height);
        let prompt = if request.prompt.trim().is_empty() {
            format!("{}: {}", request.caption, request.terms.join(", "))
        } else {
            request.prompt.trim().to_owned()
        };
        let mut workflow = self.workflow.clone();
        fill(
            &mut workflow,
            &[
                ("{{prompt}}", prompt.as_str()),
                ("{{negative_prompt}}", request.negative_prompt.as_str()),
                ("{{model}}", self.model.as_str()),
            ],
            &[
                ("{{seed}}", request.project_seed),
                ("{{width}}", u64::from(width)),
                ("{{height}}", u64::from(height)),
            ],
        );
        workflow
    }

    /// Queues `workflow`; returns the prompt id.
    async fn queue(&self, workflow: Value) -> Result<String, ProviderError> {
        #[derive(Deserialize)]
        struct Queued {
            prompt_id: String,
        }
        let body = json!({"prompt": workflow, "client_id": "studio"});
        let call = self.endpoint.request(Method::POST, "/prompt").json(&body);
        match self.endpoint.json::<Queued>(call).await {
            Ok(q) => Ok(q.prompt_id),
            // The server cannot run this workflow: the settings are wrong, not the scene.
            Err(e) if e.kind == ErrorKind::Invalid => Err(ProviderError::unavailable(format!(
                "the ComfyUI server refused the workflow: {}; check the workflow file and that \
                 the model \"{}\" is installed",
                e.message, self.model
            ))),
            Err(e) => Err(e),
        }
    }

    /// Polls the history until `id` completed; returns its first output picture's
    /// `(filename, subfolder, type)`.
    async fn finished(&self, id: &str) -> Result<(String, String, String), ProviderError> {
        let started = Instant::now();
        let mut wait = Duration::from_millis(500);
        loop {
            let history: Map<String, Value> = self
                .endpoint
                .json(
                    self.endpoint
                        .request(Method::GET, &format!("/history/{id}")),
                )
                .await?;
            if let Some(entry) = history.get(id) {
                let status = &entry["status"];
                if status["status_str"] == "error" {
                    let why = status["messages"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .find(|m| m[0] == "execution_error")
                        .and_then(|m| m[1]["exception_message"].as_str())
                        .unwrap_or("no reason given");
                    return Err(ProviderError::transient(format!(
                        "comfyui prompt {id} failed: {}",
                        why.trim()
                    )));
                }
                let image = entry["outputs"]
                    .as_object()
                    .into_iter()
                    .flat_map(|o| o.values())
                    .flat_map(|node| node["images"].as_array().into_iter().flatten())
                    .find(|i| i["type"] == "output" || i["type"].is_null());
                if let Some(i) = image {
                    let text = |k: &str| i[k].as_str().unwrap_or_default().to_owned();
                    let kind = i["type"].as_str().unwrap_or("output").to_owned();
                    return Ok((text("filename"), text("subfolder"), kind));
                }
                if status["completed"] == true {
                    return Err(ProviderError::unavailable(format!(
                        "comfyui prompt {id} completed without an output picture; the workflow \
                         needs a SaveImage node"
                    )));
                }
            }
            if started.elapsed() > MAX_WAIT {
                return Err(ProviderError::transient(format!(
                    "comfyui prompt {id} not done after {} s",
                    MAX_WAIT.as_secs()
                )));
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(5));
        }
    }
}

/// Replaces `texts` inside every string of `value`, and strings equal to one of `numbers`'
/// placeholders by the number.
fn fill(value: &mut Value, texts: &[(&str, &str)], numbers: &[(&str, u64)]) {
    match value {
        Value::String(s) => {
            if let Some((_, n)) = numbers.iter().find(|(p, _)| s == p) {
                *value = json!(n);
                return;
            }
            for (placeholder, text) in texts {
                if s.contains(placeholder) {
                    *s = s.replace(placeholder, text);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| fill(v, texts, numbers)),
        Value::Object(map) => map.values_mut().for_each(|v| fill(v, texts, numbers)),
        _ => {}
    }
}

impl Describe for ComfyUiImages {
    fn name(&self) -> &str {
        "comfyui"
    }

    fn model(&self) -> String {
        format!("{} workflow {}", self.model, &self.workflow_sha256[..16])
    }
}

#[async_trait]
impl ImageGen for ComfyUiImages {
    async fn image(
        &self,
        request: &ImageRequest,
        out: &Path,
    ) -> Result<Produced<Image>, ProviderError> {
        let workflow = self.workflow(request);
        let id = self.queue(workflow).await?;
        let (filename, subfolder, kind) = self.finished(&id).await?;
        let view = self.endpoint.request(Method::GET, "/view").query(&[
            ("filename", filename.as_str()),
            ("subfolder", subfolder.as_str()),
            ("type", kind.as_str()),
        ]);
        let (_, bytes) = self.endpoint.bytes(view).await?;
        let checked = picture::check("comfyui", &bytes)?;
        let path = out.join(format!("picture.{}", checked.extension()));
        std::fs::write(&path, &bytes)
            .map_err(|e| ProviderError::transient(format!("{}: {e}", path.display())))?;
        let prompt = if request.prompt.trim().is_empty() {
            format!("{}: {}", request.caption, request.terms.join(", "))
        } else {
            request.prompt.trim().to_owned()
        };
        // A self-hosted server: its cost is the operator's GPU time, not a price per call.
        Ok(Produced::free(Image {
            path,
            width: checked.width,
            height: checked.height,
            source: ImageSource::Model {
                prompt,
                seed: Some(request.project_seed),
                revised_prompt: None,
            },
            credit: None,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint() -> Endpoint {
        Endpoint::new(
            "comfyui",
            BASE_URL,
            "",
            super::super::Auth::Bearer,
            Duration::from_secs(1),
        )
        .unwrap()
    }

    #[test]
    fn placeholders_are_filled_with_text_and_numbers() {
        let comfy = ComfyUiImages::new(endpoint(), MODEL, DEFAULT_WORKFLOW).unwrap();
        let request = ImageRequest {
            terms: vec!["fox".into()],
            caption: "The fox".into(),
            width: 1080,
            height: 1920,
            seed: 1,
            palette: vec![],
            prompt: "Ink drawing. A fox.".into(),
            negative_prompt: "text".into(),
            project_seed: 12_345_678_901,
        };
        let w = comfy.workflow(&request);
        assert_eq!(w["6"]["inputs"]["text"], "Ink drawing. A fox.");
        assert_eq!(w["7"]["inputs"]["text"], "text");
        assert_eq!(w["4"]["inputs"]["ckpt_name"], MODEL);
        assert_eq!(w["3"]["inputs"]["seed"], 12_345_678_901u64);
        assert_eq!(w["5"]["inputs"]["width"], 768);
        assert_eq!(w["5"]["inputs"]["height"], 1344);
        assert_eq!(w["3"]["inputs"]["positive"], json!(["6", 0]), "links kept");
    }

    #[test]
    fn a_workflow_that_cannot_serve_is_refused_with_the_fix() {
        let not_api = ComfyUiImages::new(endpoint(), MODEL, r#"{"nodes": [], "links": []}"#);
        assert!(not_api.unwrap_err().message.contains("Save (API format)"));
        let fixed = r#"{"1": {"class_type": "CLIPTextEncode", "inputs": {"text": "a cat"}}}"#;
        let no_prompt = ComfyUiImages::new(endpoint(), MODEL, fixed).unwrap_err();
        assert!(
            no_prompt.message.contains("{{prompt}}"),
            "{}",
            no_prompt.message
        );
    }
}
