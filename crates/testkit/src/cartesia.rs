//! A local stand-in for Cartesia ([`FakeCartesia`]): `POST /tts/sse` answering a Server-Sent
//! Events stream of `chunk` (base64 PCM), `timestamps` (`word_timestamps: {words, start, end}`)
//! and `done` events, `GET /voices` (paginated `{data, has_more}`), the documented HTTP error
//! body (`{title, message, error_code}`) and in-stream `error` events.
//!
//! Requests must carry `Authorization: Bearer` [`KEY`] and a `Cartesia-Version` date, and ask
//! for raw `pcm_s16le` at 24 kHz. The audio is real PCM (a tone), and words are timed like the
//! ElevenLabs fake's alignment (letters [`crate::elevenlabs::LETTER_S`], spaces and punctuation
//! [`crate::elevenlabs::PAUSE_S`]); words are named without punctuation, as Cartesia names them.

use std::sync::{Arc, Mutex};

use base64::Engine as _;
use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// The key the fake accepts.
pub const KEY: &str = "sk_car_test";
/// Voice ids the fake knows, with their names.
pub const VOICES: [(&str, &str); 2] = [
    ("694f9389-aac1-45b6-b726-9d9369183238", "Sarah"),
    ("a0e99841-438c-4a64-b679-ae501e7d6091", "Barbershop Man"),
];

/// A fake Cartesia server on a free local port.
pub struct FakeCartesia {
    /// The wiremock server.
    pub server: MockServer,
    refuse: Arc<Mutex<Option<String>>>,
}

/// A Cartesia HTTP error answer.
pub fn error(status: u16, code: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({
        "error_code": code,
        "title": code.replace('_', " "),
        "message": message,
        "request_id": "req_test",
    }))
}

/// Each word of `text` (punctuation stripped) with its start and end in the fake's speech.
pub fn word_times(text: &str) -> Vec<(String, f64, f64)> {
    let (starts, ends) = crate::elevenlabs::alignment(text);
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_whitespace() {
            i += 1;
            continue;
        }
        let mut j = i;
        while j < chars.len() && !chars[j].is_whitespace() {
            j += 1;
        }
        let letters: Vec<usize> = (i..j).filter(|&k| chars[k].is_alphanumeric()).collect();
        if let (Some(&a), Some(&b)) = (letters.first(), letters.last()) {
            let word: String = letters.iter().map(|&k| chars[k]).collect();
            out.push((word, starts[a], ends[b]));
        }
        i = j;
    }
    out
}

impl FakeCartesia {
    /// Starts the fake.
    pub async fn start() -> FakeCartesia {
        let server = MockServer::start().await;
        let refuse = Arc::new(Mutex::new(None));
        Mock::given(method("POST"))
            .and(path("/tts/sse"))
            .respond_with(Sse {
                refuse: refuse.clone(),
            })
            .with_priority(10)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/voices"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "data": VOICES.iter().map(|(id, name)| json!({"id": id, "name": name, "is_public": true, "language": "en"})).collect::<Vec<_>>(),
                "has_more": false,
            })))
            .with_priority(10)
            .mount(&server)
            .await;
        FakeCartesia { server, refuse }
    }

    /// `http://127.0.0.1:{port}`, the `base_url` to configure.
    pub fn base_url(&self) -> String {
        self.server.uri()
    }

    /// Answers transcripts containing `word` with an in-stream `error` event (status 400), as
    /// Cartesia reports a generation it refuses after the stream has begun.
    pub fn refuse_transcripts_containing(&self, word: &str) {
        *self.refuse.lock().unwrap() = Some(word.to_owned());
    }

    /// Every speech request received, as JSON bodies.
    pub async fn speeches(&self) -> Vec<Value> {
        self.server
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .filter(|r| r.url.path() == "/tts/sse")
            .map(|r| serde_json::from_slice(&r.body).unwrap_or(Value::Null))
            .collect()
    }
}

struct Sse {
    refuse: Arc<Mutex<Option<String>>>,
}

fn event(value: Value) -> String {
    format!(
        "event: {}\ndata: {value}\n\n",
        value["type"].as_str().unwrap_or("message")
    )
}

impl Respond for Sse {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let header = |name: &str| request.headers.get(name).and_then(|v| v.to_str().ok());
        if header("authorization") != Some(&format!("Bearer {KEY}")) {
            return error(401, "unauthorized", "Invalid API key");
        }
        let version = header("cartesia-version").unwrap_or_default();
        let is_date = version.len() == 10
            && version.char_indices().all(|(i, c)| {
                if i == 4 || i == 7 {
                    c == '-'
                } else {
                    c.is_ascii_digit()
                }
            });
        if !is_date {
            return error(
                400,
                "invalid_version",
                "The Cartesia-Version header must be a date (YYYY-MM-DD).",
            );
        }
        let Ok(body) = serde_json::from_slice::<Value>(&request.body) else {
            return error(400, "invalid_json", "The request body is not valid JSON.");
        };
        let Some(text) = body["transcript"].as_str().filter(|t| !t.trim().is_empty()) else {
            return error(400, "missing_transcript", "transcript: field required");
        };
        if body["model_id"].as_str().is_none() {
            return error(400, "missing_model_id", "model_id: field required");
        }
        let voice = body["voice"]["id"].as_str().unwrap_or_default();
        if body["voice"]["mode"] != "id" || !VOICES.iter().any(|(id, _)| *id == voice) {
            return error(404, "voice_not_found", &format!("Voice {voice} not found"));
        }
        let format = &body["output_format"];
        if format["container"] != "raw"
            || format["encoding"] != "pcm_s16le"
            || format["sample_rate"] != 24_000
        {
            return error(
                400,
                "invalid_output_format",
                &format!("output_format {format} is not served by this fake"),
            );
        }
        let refused = self.refuse.lock().unwrap().clone();
        let mut stream = String::new();
        if refused.is_some_and(|w| text.contains(&w)) {
            stream.push_str(&event(json!({
                "type": "error", "done": true, "status_code": 400,
                "title": "Invalid transcript",
                "message": "The transcript could not be generated.",
                "error_code": "invalid_transcript",
            })));
            return ResponseTemplate::new(200)
                .insert_header("content-type", "text/event-stream")
                .set_body_string(stream);
        }
        let words = word_times(text);
        let seconds = crate::elevenlabs::alignment(text)
            .1
            .last()
            .copied()
            .unwrap_or(0.0);
        let pcm = crate::openai::tone(seconds);
        let half = (pcm.len() / 4) * 2; // two chunks, each whole samples
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        stream.push_str(&event(json!({"type": "chunk", "data": b64(&pcm[..half]), "done": false, "status_code": 206, "step_time": 12.5})));
        if body["add_timestamps"] == true {
            for part in words.chunks(4) {
                stream.push_str(&event(json!({
                    "type": "timestamps", "done": false, "status_code": 206,
                    "word_timestamps": {
                        "words": part.iter().map(|w| &w.0).collect::<Vec<_>>(),
                        "start": part.iter().map(|w| w.1).collect::<Vec<_>>(),
                        "end": part.iter().map(|w| w.2).collect::<Vec<_>>(),
                    },
                })));
            }
        }
        stream.push_str(&event(json!({"type": "chunk", "data": b64(&pcm[half..]), "done": false, "status_code": 206, "step_time": 12.5})));
        stream.push_str(&event(
            json!({"type": "done", "done": true, "status_code": 200}),
        ));
        ResponseTemplate::new(200)
            .insert_header("content-type", "text/event-stream")
            .set_body_string(stream)
    }
}
