//! Anthropic's Messages API as a [`LanguageModel`]: structured output through a forced tool
//! call whose input schema is the answer's schema.
//!
//! API reference: <https://docs.anthropic.com/en/api/messages> ("tool_choice": `{"type":
//! "tool", "name": …}` forces the tool) and <https://docs.anthropic.com/en/api/errors>.

use async_trait::async_trait;
use reqwest::Method;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{Endpoint, Usage};
use crate::error::ProviderError;
use crate::writer::{Answer, LanguageModel, Role, Task};

/// Anthropic's API base URL (paths start with `/v1`).
pub const BASE_URL: &str = "https://api.anthropic.com";
/// Where the key is read from by default.
pub const KEY_ENV: &str = "ANTHROPIC_API_KEY";
/// Model used when settings name none.
pub const MODEL: &str = "claude-haiku-4-5";
/// The API version sent as `anthropic-version` (the current one per the versioning docs).
pub const API_VERSION: &str = "2023-06-01";
/// `max_tokens` asked for (required by the API): enough for a 60-sentence chunk's plan.
pub const MAX_TOKENS: u32 = 8192;

/// The Messages API.
#[derive(Debug)]
pub struct AnthropicChat {
    endpoint: Endpoint,
    model: String,
}

impl AnthropicChat {
    /// Messages with `model` at `endpoint` (which must send `anthropic-version`; see
    /// [`AnthropicChat::endpoint_headers`]).
    pub fn new(endpoint: Endpoint, model: &str) -> Self {
        Self {
            endpoint: Self::endpoint_headers(endpoint),
            model: model.to_owned(),
        }
    }

    /// `endpoint` with the `anthropic-version` header every request needs.
    pub fn endpoint_headers(endpoint: Endpoint) -> Endpoint {
        endpoint.with_header("anthropic-version", API_VERSION)
    }

    /// The request body for `task`.
    pub fn body(&self, task: Task<'_>) -> Value {
        let messages: Vec<Value> = task
            .turns
            .iter()
            .map(|t| {
                let role = match t.role {
                    Role::User => "user",
                    Role::Assistant => "assistant",
                };
                json!({"role": role, "content": t.content})
            })
            .collect();
        json!({
            "model": self.model,
            "max_tokens": MAX_TOKENS,
            "system": task.system,
            "messages": messages,
            "tools": [{
                "name": task.schema_name,
                "description": "Give the answer.",
                "input_schema": task.schema
            }],
            "tool_choice": {"type": "tool", "name": task.schema_name}
        })
    }

    /// Lists the models (`GET /v1/models`): a free probe of the key and the URL.
    pub async fn models(&self) -> Result<Vec<String>, ProviderError> {
        #[derive(Deserialize)]
        struct Models {
            data: Vec<Model>,
        }
        #[derive(Deserialize)]
        struct Model {
            id: String,
        }
        let models: Models = self
            .endpoint
            .json(self.endpoint.request(Method::GET, "/v1/models"))
            .await?;
        Ok(models.data.into_iter().map(|m| m.id).collect())
    }
}

#[derive(Debug, Deserialize)]
struct MessageResponse {
    content: Vec<Block>,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    usage: Option<MessageUsage>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block {
    Text {
        text: String,
    },
    ToolUse {
        input: Value,
    },
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
struct MessageUsage {
    #[serde(default)]
    input_tokens: u64,
    #[serde(default)]
    output_tokens: u64,
}

#[async_trait]
impl LanguageModel for AnthropicChat {
    fn model(&self) -> &str {
        &self.model
    }

    async fn answer(&self, task: Task<'_>) -> Result<Answer, ProviderError> {
        let request = self
            .endpoint
            .request(Method::POST, "/v1/messages")
            .json(&self.body(task));
        let message: MessageResponse = self.endpoint.json(request).await?;
        let usage = message
            .usage
            .map(|u| Usage {
                input_tokens: u.input_tokens,
                output_tokens: u.output_tokens,
                characters: 0,
            })
            .unwrap_or_default();
        if message.stop_reason.as_deref() == Some("refusal") {
            return Err(ProviderError::invalid(format!(
                "anthropic ({}) declined the request under its usage policy",
                self.model
            )));
        }
        let mut text = None;
        for block in message.content {
            match block {
                Block::ToolUse { input } => {
                    return Ok(Answer {
                        text: input.to_string(),
                        usage,
                    })
                }
                Block::Text { text: t } => text = Some(t),
                Block::Other => {}
            }
        }
        // No tool call (a server that ignores tool_choice): the text may still be the JSON.
        Ok(Answer {
            text: text.unwrap_or_default(),
            usage,
        })
    }
}
