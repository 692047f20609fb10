//! OpenAI and every server that speaks its API (OpenRouter, Ollama, vLLM, LM Studio, Kokoro and
//! other self-hosted TTS servers): Chat Completions as a [`LanguageModel`], and speech.
//!
//! API reference: <https://platform.openai.com/docs/api-reference/chat/create> and
//! <https://platform.openai.com/docs/api-reference/audio/createSpeech>.

use std::path::Path;

use async_trait::async_trait;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{Endpoint, Usage};
use crate::capability::{Describe, Produced, SpeechSynth};
use crate::error::ProviderError;
use crate::local::espeak::write_wav;
use crate::prices::Price;
use crate::types::*;
use crate::writer::{Answer, LanguageModel, Role, Task};

/// OpenAI's API base URL.
pub const BASE_URL: &str = "https://api.openai.com/v1";
/// Where the key is read from by default.
pub const KEY_ENV: &str = "OPENAI_API_KEY";
/// Chat model used when settings name none.
pub const CHAT_MODEL: &str = "gpt-4o-mini";
/// Speech model used when settings name none.
pub const SPEECH_MODEL: &str = "gpt-4o-mini-tts";
/// Voice used when settings name none.
pub const VOICE: &str = "alloy";
/// Sample rate of `pcm` speech: "raw samples in 24kHz (16-bit signed, low-endian), without the
/// header" (OpenAI, createSpeech `response_format`).
pub const PCM_RATE: u32 = 24_000;

/// How a chat server is asked for JSON.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StructuredOutput {
    /// `response_format: {type: "json_schema", strict: true}` (OpenAI, vLLM, Ollama ≥ 0.5).
    #[default]
    JsonSchema,
    /// A forced function call whose parameters are the schema (servers with tools but no
    /// `json_schema`).
    Tools,
    /// `response_format: {type: "json_object"}` with the schema in the instructions.
    Json,
}

/// Chat Completions.
#[derive(Debug)]
pub struct OpenAiChat {
    endpoint: Endpoint,
    model: String,
    structured: StructuredOutput,
}

impl OpenAiChat {
    /// Chat with `model` at `endpoint`.
    pub fn new(endpoint: Endpoint, model: &str, structured: StructuredOutput) -> Self {
        Self {
            endpoint,
            model: model.to_owned(),
            structured,
        }
    }

    /// The request body for `task`.
    pub fn body(&self, task: Task<'_>) -> Value {
        let mut system = task.system.to_owned();
        if self.structured == StructuredOutput::Json {
            system.push_str(&format!(
                "\nThe JSON must follow this JSON Schema:\n{}",
                task.schema
            ));
        }
        let mut messages = vec![json!({"role": "system", "content": system})];
        for turn in task.turns {
            let role = match turn.role {
                Role::User => "user",
                Role::Assistant => "assistant",
            };
            messages.push(json!({"role": role, "content": turn.content}));
        }
        let mut body = json!({"model": self.model, "messages": messages});
        match self.structured {
            StructuredOutput::JsonSchema => {
                body["response_format"] = json!({
                    "type": "json_schema",
                    "json_schema": {"name": task.schema_name, "strict": true, "schema": task.schema}
                });
            }
            StructuredOutput::Tools => {
                body["tools"] = json!([{
                    "type": "function",
                    "function": {
                        "name": task.schema_name,
                        "description": "Give the answer.",
                        "parameters": task.schema,
                        "strict": true
                    }
                }]);
                body["tool_choice"] =
                    json!({"type": "function", "function": {"name": task.schema_name}});
            }
            StructuredOutput::Json => {
                body["response_format"] = json!({"type": "json_object"});
            }
        }
        body
    }

    /// Lists the server's models (`GET /models`): a free probe of the key and the URL.
    pub async fn models(&self) -> Result<Vec<String>, ProviderError> {
        list_models(&self.endpoint).await
    }
}

/// `GET /models`: the ids the server offers.
pub async fn list_models(endpoint: &Endpoint) -> Result<Vec<String>, ProviderError> {
    #[derive(Deserialize)]
    struct Models {
        data: Vec<Model>,
    }
    #[derive(Deserialize)]
    struct Model {
        id: String,
    }
    let models: Models = endpoint
        .json(endpoint.request(Method::GET, "/models"))
        .await?;
    Ok(models.data.into_iter().map(|m| m.id).collect())
}

#[derive(Debug, Deserialize)]
struct Completion {
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<CompletionUsage>,
}

#[derive(Debug, Deserialize)]
struct Choice {
    message: Message,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Message {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    refusal: Option<String>,
    #[serde(default)]
    tool_calls: Vec<ToolCall>,
}

#[derive(Debug, Deserialize)]
struct ToolCall {
    function: FunctionCall,
}

#[derive(Debug, Deserialize)]
struct FunctionCall {
    arguments: String,
}

#[derive(Debug, Deserialize)]
struct CompletionUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
}

#[async_trait]
impl LanguageModel for OpenAiChat {
    fn model(&self) -> &str {
        &self.model
    }

    async fn answer(&self, task: Task<'_>) -> Result<Answer, ProviderError> {
        let request = self
            .endpoint
            .request(Method::POST, "/chat/completions")
            .json(&self.body(task));
        let completion: Completion = self.endpoint.json(request).await?;
        let usage = completion
            .usage
            .map(|u| Usage {
                input_tokens: u.prompt_tokens,
                output_tokens: u.completion_tokens,
                characters: 0,
            })
            .unwrap_or_default();
        let choice = completion.choices.into_iter().next().ok_or_else(|| {
            ProviderError::transient(format!("{} answered with no choices", self.endpoint.vendor))
        })?;
        if let Some(refusal) = choice.message.refusal.filter(|r| !r.trim().is_empty()) {
            return Err(ProviderError::invalid(format!(
                "{} ({}) refused: {refusal}",
                self.endpoint.vendor, self.model
            )));
        }
        if choice.finish_reason.as_deref() == Some("content_filter") {
            return Err(ProviderError::invalid(format!(
                "{} ({}) stopped the answer under its content policy",
                self.endpoint.vendor, self.model
            )));
        }
        let text = match choice.message.tool_calls.into_iter().next() {
            Some(call) => call.function.arguments,
            None => choice.message.content.unwrap_or_default(),
        };
        Ok(Answer { text, usage })
    }
}

/// The audio format asked of a speech server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AudioFormat {
    /// Headerless 16-bit PCM at 24 kHz (the documented rate).
    #[default]
    Pcm,
    /// WAV.
    Wav,
}

/// `/audio/speech`, one request per sentence so each sentence's time is exact.
#[derive(Debug)]
pub struct OpenAiSpeech {
    kind: String,
    endpoint: Endpoint,
    model: String,
    voice: String,
    format: AudioFormat,
    price: Option<Price>,
}

impl OpenAiSpeech {
    /// Speech named `kind` in settings, with `model` and `voice`, priced by `price`.
    pub fn new(
        kind: &str,
        endpoint: Endpoint,
        model: &str,
        voice: &str,
        format: AudioFormat,
        price: Option<Price>,
    ) -> Self {
        Self {
            kind: kind.to_owned(),
            endpoint,
            model: model.to_owned(),
            voice: voice.to_owned(),
            format,
            price,
        }
    }

    /// Lists the server's models: a free probe of the key and the URL.
    pub async fn models(&self) -> Result<Vec<String>, ProviderError> {
        list_models(&self.endpoint).await
    }

    async fn sentence(&self, text: &str, speed: f64) -> Result<(u32, Vec<i16>), ProviderError> {
        let format = match self.format {
            AudioFormat::Pcm => "pcm",
            AudioFormat::Wav => "wav",
        };
        let mut body = json!({
            "model": self.model,
            "input": text,
            "voice": self.voice,
            "response_format": format,
        });
        // Servers ignore or reject `speed` for some models (gpt-4o-mini-tts): send it only when
        // the narrator asks for another pace.
        if (speed - 1.0).abs() > 0.01 {
            body["speed"] = json!(speed);
        }
        let request = self
            .endpoint
            .request(Method::POST, "/audio/speech")
            .json(&body);
        let (_, bytes) = self.endpoint.bytes(request).await?;
        let decoded = match self.format {
            AudioFormat::Pcm => Ok((PCM_RATE, super::pcm16(&bytes))),
            AudioFormat::Wav => super::parse_wav(&bytes),
        };
        let (rate, samples) = decoded.map_err(|e| {
            ProviderError::transient(format!(
                "{} sent audio that cannot be read: {e}",
                self.endpoint.vendor
            ))
        })?;
        if samples.is_empty() {
            return Err(ProviderError::transient(format!(
                "{} sent no audio for \"{text}\"",
                self.endpoint.vendor
            )));
        }
        Ok((rate, samples))
    }
}

impl Describe for OpenAiSpeech {
    fn name(&self) -> &str {
        &self.kind
    }
    fn model(&self) -> String {
        format!("{}/{}", self.model, self.voice)
    }
}

#[async_trait]
impl SpeechSynth for OpenAiSpeech {
    async fn synthesize(
        &self,
        request: &SpeechRequest,
        out: &Path,
    ) -> Result<Produced<Speech>, ProviderError> {
        request.check_words()?;
        let speed = (f64::from(request.voice.rate_wpm)
            / f64::from(studio_style::narrator::RATE_WPM))
        .clamp(0.25, 4.0);
        let mut joined = super::Joined::default();
        let mut characters = 0u64;
        for sentence in &request.sentences {
            let (rate, samples) = self.sentence(sentence, speed).await?;
            characters += sentence.chars().count() as u64;
            joined
                .push(sentence, rate, &samples, request.sentence_pause_s)
                .map_err(ProviderError::transient)?;
        }
        let audio = out.join("speech.wav");
        write_wav(&audio, joined.sample_rate, &joined.samples)?;
        let usage = Usage {
            characters,
            ..Usage::default()
        };
        Ok(Produced {
            output: joined.speech(audio),
            cost_micro_usd: self.price.map(|p| p.cost(&usage)).unwrap_or(0),
        })
    }

    fn estimate(&self, characters: u64) -> u64 {
        let usage = Usage {
            characters,
            ..Usage::default()
        };
        self.price.map(|p| p.cost(&usage)).unwrap_or(0)
    }
}
