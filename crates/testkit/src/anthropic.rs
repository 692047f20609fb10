//! A local stand-in for Anthropic's Messages API ([`FakeAnthropic`]): `POST /v1/messages` with
//! forced tool use, and `GET /v1/models`, with the documented error body
//! (`{"type": "error", "error": {"type", "message"}}`). Answers follow Studio's schemas by the
//! tool's name, as [`crate::openai`]'s do.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::openai::{plan_for, script, tokens, words_asked, SCRIPT_TITLE};

/// The key the fake accepts (`x-api-key`).
pub const KEY: &str = "sk-ant-test";

/// A fake Anthropic server on a free local port.
pub struct FakeAnthropic {
    /// The wiremock server; mount extra mocks (higher priority) to inject errors.
    pub server: MockServer,
    messages: Arc<AtomicU64>,
}

/// An Anthropic error answer.
pub fn error(status: u16, kind: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .set_body_json(json!({"type": "error", "error": {"type": kind, "message": message}}))
}

impl FakeAnthropic {
    /// Starts the fake.
    pub async fn start() -> FakeAnthropic {
        let server = MockServer::start().await;
        let messages = Arc::new(AtomicU64::new(0));
        Mock::given(method("POST"))
            .and(path("/v1/messages"))
            .respond_with(Messages(messages.clone()))
            .with_priority(10)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/v1/models"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "data": [{"type": "model", "id": "claude-haiku-4-5", "display_name": "Claude Haiku 4.5", "created_at": "2025-10-01T00:00:00Z"}],
                "has_more": false, "first_id": "claude-haiku-4-5", "last_id": "claude-haiku-4-5"
            })))
            .with_priority(10)
            .mount(&server)
            .await;
        FakeAnthropic { server, messages }
    }

    /// `http://127.0.0.1:{port}`, the `base_url` to configure.
    pub fn base_url(&self) -> String {
        self.server.uri()
    }

    /// Messages answered with 200 so far.
    pub fn messages(&self) -> u64 {
        self.messages.load(Ordering::SeqCst)
    }

    /// The JSON bodies of the requests to `/v1/messages`.
    pub async fn bodies(&self) -> Vec<Value> {
        self.server
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .filter(|r| r.url.path() == "/v1/messages")
            .filter_map(|r| serde_json::from_slice(&r.body).ok())
            .collect()
    }
}

struct Messages(Arc<AtomicU64>);

impl Respond for Messages {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let header = |name: &str| request.headers.get(name).and_then(|v| v.to_str().ok());
        if header("x-api-key") != Some(KEY) {
            return error(401, "authentication_error", "invalid x-api-key");
        }
        if header("anthropic-version").is_none() {
            return error(
                400,
                "invalid_request_error",
                "anthropic-version: header is required",
            );
        }
        let Ok(body) = serde_json::from_slice::<Value>(&request.body) else {
            return error(
                400,
                "invalid_request_error",
                "The request body is not valid JSON.",
            );
        };
        if body["max_tokens"].as_u64().is_none() {
            return error(400, "invalid_request_error", "max_tokens: Field required");
        }
        let tool = body
            .pointer("/tools/0/name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let first = body
            .pointer("/messages/0/content")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let input = match tool {
            "script" => json!({"title": SCRIPT_TITLE, "paragraphs": script(words_asked(first))}),
            "scene_plan" => plan_for(first),
            other => {
                return error(
                    400,
                    "invalid_request_error",
                    &format!("tools.0.name: unknown tool {other}"),
                )
            }
        };
        self.0.fetch_add(1, Ordering::SeqCst);
        ResponseTemplate::new(200).set_body_json(json!({
            "id": "msg_fake",
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": [{"type": "tool_use", "id": "toolu_1", "name": tool, "input": input}],
            "stop_reason": "tool_use",
            "stop_sequence": null,
            "usage": {"input_tokens": tokens(&body.to_string()), "output_tokens": tokens(&input.to_string())}
        }))
    }
}
