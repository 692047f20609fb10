//! A local stand-in for the OpenAI API ([`FakeOpenAi`]), following the documented request and
//! response shapes of `POST /v1/chat/completions`, `POST /v1/audio/speech`,
//! `POST /v1/images/generations` ([`crate::openai_images`]) and `GET /v1/models`, errors
//! included (`{"error": {"message", "type", "code"}}`).
//!
//! Chat answers follow Studio's two schemas by name, as a compliant model would: `script` gets
//! [`SCRIPT_TITLE`] and [`script`] of the length the prompt asks for ("about N words");
//! `scene_plan` gets scenes of two sentences each over the sentence numbers the prompt lists,
//! with one described character. Usage is reported by OpenAI's rule of thumb, one token per four
//! characters ([`tokens`]). Speech answers are real audio: a tone shaped like syllables, 60 ms
//! per character, as 24 kHz 16-bit PCM (or WAV when asked).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// The key the fake accepts (`Authorization: Bearer sk-test`).
pub const KEY: &str = "sk-test";
/// Title of the fake's script.
pub const SCRIPT_TITLE: &str = "Why the Sky Is Blue";
/// The sentences the fake's scripts are made of, taken in turn.
pub const SENTENCES: [&str; 12] = [
    "Sunlight looks white, but it carries every colour of the rainbow.",
    "Our atmosphere is crowded with tiny nitrogen and oxygen molecules.",
    "They scatter short blue wavelengths far more strongly than red.",
    "Scattered blue light reaches our eyes from every direction.",
    "That is why the daytime sky appears blue.",
    "At sunset, sunlight travels through much more atmosphere.",
    "Most of the blue is scattered away long before it arrives.",
    "The remaining reds and oranges paint the evening clouds.",
    "Water droplets in clouds scatter every colour about equally.",
    "So clouds look white, or grey when they are thick.",
    "The Moon has no atmosphere to scatter anything.",
    "Its sky stays black, even at noon.",
];

/// The fake's script of about `words` words: [`SENTENCES`] in turn until the count is closest,
/// four sentences a paragraph.
pub fn script(words: usize) -> Vec<String> {
    let mut chosen: Vec<&str> = Vec::new();
    let mut count = 0;
    for s in SENTENCES.iter().cycle() {
        let n = s.split_whitespace().count();
        if count > 0 && (count + n).abs_diff(words) > count.abs_diff(words) {
            break;
        }
        chosen.push(s);
        count += n;
    }
    chosen.chunks(4).map(|p| p.join(" ")).collect()
}

/// The length a script prompt asks for ("about N words"); 150 when it names none.
pub fn words_asked(prompt: &str) -> usize {
    prompt
        .split("about ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(150)
}

/// Tokens of `text` by OpenAI's rule of thumb ("one token generally corresponds to ~4
/// characters of text for common English text").
pub fn tokens(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4)
}

/// Seconds of audio per character spoken.
pub const SECONDS_PER_CHAR: f64 = 0.06;

/// A fake OpenAI server on a free local port.
pub struct FakeOpenAi {
    /// The wiremock server; mount extra mocks on it (with a higher priority) to inject errors.
    pub server: MockServer,
    chats: Arc<AtomicU64>,
    speeches: Arc<AtomicU64>,
    images: Arc<AtomicU64>,
    usage: Arc<Usage>,
}

/// Tokens reported so far.
#[derive(Debug, Default)]
struct Usage {
    prompt: AtomicU64,
    completion: AtomicU64,
}

impl FakeOpenAi {
    /// Starts the fake with its default answers.
    pub async fn start() -> FakeOpenAi {
        let server = MockServer::start().await;
        let chats = Arc::new(AtomicU64::new(0));
        let speeches = Arc::new(AtomicU64::new(0));
        let usage = Arc::new(Usage::default());
        let images = Arc::new(AtomicU64::new(0));
        crate::openai_images::mount(&server, images.clone()).await;
        Mock::given(method("POST"))
            .and(path("/v1/chat/completions"))
            .respond_with(Chat(chats.clone(), usage.clone()))
            .with_priority(10)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/v1/audio/speech"))
            .respond_with(SpeechAnswer(speeches.clone()))
            .with_priority(10)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/v1/models"))
            .respond_with(Authorized(ResponseTemplate::new(200).set_body_json(json!({
                "object": "list",
                "data": [
                    {"id": "gpt-4o-mini", "object": "model", "created": 1721172741, "owned_by": "system"},
                    {"id": "gpt-4o-mini-tts", "object": "model", "created": 1742403959, "owned_by": "system"},
                    {"id": "gpt-image-1", "object": "model", "created": 1745517030, "owned_by": "system"}
                ]
            }))))
            .with_priority(10)
            .mount(&server)
            .await;
        FakeOpenAi {
            server,
            chats,
            speeches,
            images,
            usage,
        }
    }

    /// Pictures answered with 200 so far (`POST /v1/images/generations`).
    pub fn images(&self) -> u64 {
        self.images.load(Ordering::SeqCst)
    }

    /// Refuses every chat request whose body contains `needle` with OpenAI's content-policy
    /// error (400, `content_policy_violation`).
    pub async fn refuse_chats_containing(&self, needle: &str) {
        Mock::given(method("POST"))
            .and(path("/v1/chat/completions"))
            .and(wiremock::matchers::body_string_contains(needle))
            .respond_with(error(
                400,
                "Your request was rejected as a result of our safety system.",
                "invalid_request_error",
                Some("content_policy_violation"),
            ))
            .with_priority(1)
            .mount(&self.server)
            .await;
    }

    /// `http://127.0.0.1:{port}/v1`, the `base_url` to configure.
    pub fn base_url(&self) -> String {
        format!("{}/v1", self.server.uri())
    }

    /// Chat completions answered with 200 so far.
    pub fn chats(&self) -> u64 {
        self.chats.load(Ordering::SeqCst)
    }

    /// Prompt and completion tokens reported so far, all answers together.
    pub fn usage(&self) -> (u64, u64) {
        (
            self.usage.prompt.load(Ordering::SeqCst),
            self.usage.completion.load(Ordering::SeqCst),
        )
    }

    /// Speech requests answered with 200 so far.
    pub fn speeches(&self) -> u64 {
        self.speeches.load(Ordering::SeqCst)
    }

    /// Every request received, in order.
    pub async fn requests(&self) -> Vec<Request> {
        self.server.received_requests().await.unwrap_or_default()
    }

    /// The JSON bodies of the requests to `path` (`/v1/chat/completions`).
    pub async fn bodies(&self, to: &str) -> Vec<Value> {
        self.requests()
            .await
            .iter()
            .filter(|r| r.url.path() == to)
            .filter_map(|r| serde_json::from_slice(&r.body).ok())
            .collect()
    }
}

/// An OpenAI error answer.
pub fn error(status: u16, message: &str, kind: &str, code: Option<&str>) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({
        "error": {"message": message, "type": kind, "param": null, "code": code}
    }))
}

fn authorized(request: &Request) -> bool {
    request
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        == Some(&format!("Bearer {KEY}"))
}

fn unauthorized() -> ResponseTemplate {
    error(
        401,
        "Incorrect API key provided: sk-wrong. You can find your API key at https://platform.openai.com/account/api-keys.",
        "invalid_request_error",
        Some("invalid_api_key"),
    )
}

struct Authorized(ResponseTemplate);

impl Respond for Authorized {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        if authorized(request) {
            self.0.clone()
        } else {
            unauthorized()
        }
    }
}

struct Chat(Arc<AtomicU64>, Arc<Usage>);

impl Respond for Chat {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        if !authorized(request) {
            return unauthorized();
        }
        let Ok(body) = serde_json::from_slice::<Value>(&request.body) else {
            return error(
                400,
                "We could not parse the JSON body of your request.",
                "invalid_request_error",
                None,
            );
        };
        let (Some(model), Some(messages)) = (body["model"].as_str(), body["messages"].as_array())
        else {
            return error(
                400,
                "you must provide a model parameter",
                "invalid_request_error",
                None,
            );
        };
        let schema = body
            .pointer("/response_format/json_schema/name")
            .or_else(|| body.pointer("/tools/0/function/name"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        let prompt = messages
            .iter()
            .rev()
            .find(|m| m["role"] == "user")
            .and_then(|m| m["content"].as_str())
            .unwrap_or_default();
        let first_prompt = messages
            .iter()
            .find(|m| m["role"] == "user")
            .and_then(|m| m["content"].as_str())
            .unwrap_or(prompt);
        let answer = match schema {
            "script" => {
                json!({"title": SCRIPT_TITLE, "paragraphs": script(words_asked(first_prompt))})
            }
            "scene_plan" => plan_for(first_prompt),
            other => {
                return error(
                    400,
                    &format!("Invalid schema name '{other}'"),
                    "invalid_request_error",
                    None,
                )
            }
        };
        self.0.fetch_add(1, Ordering::SeqCst);
        let text = answer.to_string();
        let asked: String = messages
            .iter()
            .filter_map(|m| m["content"].as_str())
            .collect::<Vec<_>>()
            .join("\n");
        let schema_text = body
            .pointer("/response_format/json_schema/schema")
            .or_else(|| body.pointer("/tools/0/function/parameters"))
            .map(Value::to_string)
            .unwrap_or_default();
        let (prompt_tokens, completion_tokens) =
            (tokens(&asked) + tokens(&schema_text), tokens(&text));
        self.1.prompt.fetch_add(prompt_tokens, Ordering::SeqCst);
        self.1
            .completion
            .fetch_add(completion_tokens, Ordering::SeqCst);
        let message = if body.get("tools").is_some() {
            json!({"role": "assistant", "content": null, "refusal": null, "tool_calls": [{
                "id": "call_1", "type": "function",
                "function": {"name": schema, "arguments": text}
            }]})
        } else {
            json!({"role": "assistant", "content": text, "refusal": null})
        };
        ResponseTemplate::new(200).set_body_json(json!({
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": 1733011200,
            "model": model,
            "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": prompt_tokens + completion_tokens}
        }))
    }
}

/// Scenes of two sentences over the numbers listed in `prompt` ("12. [1.4 s] …" lines).
pub(crate) fn plan_for(prompt: &str) -> Value {
    let numbers: Vec<u64> = prompt
        .lines()
        .filter_map(|l| {
            let (n, rest) = l.split_once(". [")?;
            rest.contains(" s] ").then(|| n.trim().parse().ok())?
        })
        .collect();
    let known = prompt.contains("- Narrator:");
    let scenes: Vec<Value> = numbers
        .chunks(2)
        .enumerate()
        .map(|(i, pair)| {
            json!({
                "sentences": pair,
                "heading": format!("Part {}", i + 1),
                "visual": format!("A wide sky over a quiet field, picture {}", i + 1),
                "characters": ["Narrator"]
            })
        })
        .collect();
    let new_characters = if known {
        json!([])
    } else {
        json!([{"name": "Narrator", "description": "a grey-haired woman in a blue coat"}])
    };
    json!({
        "scenes": scenes,
        "new_characters": new_characters,
        "plot_so_far": "The narrator explains the sky.",
        "music_mood": "wonder"
    })
}

struct SpeechAnswer(Arc<AtomicU64>);

impl Respond for SpeechAnswer {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        if !authorized(request) {
            return unauthorized();
        }
        let Ok(body) = serde_json::from_slice::<Value>(&request.body) else {
            return error(
                400,
                "We could not parse the JSON body of your request.",
                "invalid_request_error",
                None,
            );
        };
        let input = body["input"].as_str().unwrap_or_default();
        if input.is_empty() || body["voice"].as_str().is_none() || body["model"].as_str().is_none()
        {
            return error(
                400,
                "[{'type': 'missing', 'loc': ('body', 'input'), 'msg': 'Field required'}]",
                "invalid_request_error",
                None,
            );
        }
        self.0.fetch_add(1, Ordering::SeqCst);
        let pcm = tone(input.chars().count() as f64 * SECONDS_PER_CHAR);
        match body["response_format"].as_str().unwrap_or("mp3") {
            "pcm" => ResponseTemplate::new(200)
                .insert_header("content-type", "audio/pcm")
                .set_body_bytes(pcm),
            "wav" => ResponseTemplate::new(200)
                .insert_header("content-type", "audio/wav")
                .set_body_bytes(wav(&pcm)),
            other => error(
                400,
                &format!("response_format '{other}' is not served by this fake"),
                "invalid_request_error",
                None,
            ),
        }
    }
}

/// `seconds` of a 220 Hz tone in 0.2 s "syllables", 24 kHz 16-bit little-endian mono.
pub fn tone(seconds: f64) -> Vec<u8> {
    let n = (seconds * 24_000.0) as usize;
    let mut out = Vec::with_capacity(n * 2);
    for i in 0..n {
        let t = i as f64 / 24_000.0;
        let envelope = (std::f64::consts::PI * (t % 0.2) / 0.2).sin();
        let s = (0.3 * envelope * (2.0 * std::f64::consts::PI * 220.0 * t).sin() * 32767.0) as i16;
        out.extend_from_slice(&s.to_le_bytes());
    }
    out
}

/// A streamed-style WAV around `pcm` (sizes 0xFFFFFFFF, as OpenAI streams it).
fn wav(pcm: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(pcm.len() + 44);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&u32::MAX.to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&24_000u32.to_le_bytes());
    out.extend_from_slice(&48_000u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&u32::MAX.to_le_bytes());
    out.extend_from_slice(pcm);
    out
}
