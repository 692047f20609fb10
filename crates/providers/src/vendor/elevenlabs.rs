//! ElevenLabs text-to-speech with timestamps: each sentence's audio comes with the vendor's own
//! character alignment, from which every word is timed (so captions follow the real speech).
//!
//! API reference: <https://elevenlabs.io/docs/api-reference/text-to-speech/convert-with-timestamps>
//! (`POST /v1/text-to-speech/{voice_id}/with-timestamps?output_format=pcm_24000`, answering
//! `{audio_base64, alignment: {characters, character_start_times_seconds,
//! character_end_times_seconds}}`) and `GET /v1/voices`.

use std::path::Path;

use async_trait::async_trait;
use base64::Engine as _;
use reqwest::Method;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{Endpoint, Usage};
use crate::capability::{Describe, Produced, SpeechSynth};
use crate::error::ProviderError;
use crate::local::espeak::write_wav;
use crate::prices::Price;
use crate::types::*;

/// ElevenLabs' API base URL.
pub const BASE_URL: &str = "https://api.elevenlabs.io";
/// Where the key is read from by default.
pub const KEY_ENV: &str = "ELEVENLABS_API_KEY";
/// Model used when settings name none.
pub const MODEL: &str = "eleven_multilingual_v2";
/// Voice used when settings name none ("George", a premade voice in ElevenLabs' examples).
pub const VOICE: &str = "JBFqnCBsd6RMkjVDRZzb";
/// The output format asked for: 16-bit PCM at 24 kHz.
pub const OUTPUT_FORMAT: &str = "pcm_24000";

/// ElevenLabs speech.
#[derive(Debug)]
pub struct ElevenLabsSpeech {
    endpoint: Endpoint,
    model: String,
    voice: String,
    voice_settings: Option<Value>,
    price: Option<Price>,
}

#[derive(Debug, Deserialize)]
struct WithTimestamps {
    audio_base64: String,
    #[serde(default)]
    alignment: Option<Alignment>,
}

#[derive(Debug, Deserialize)]
struct Alignment {
    characters: Vec<String>,
    character_start_times_seconds: Vec<f64>,
    character_end_times_seconds: Vec<f64>,
}

impl ElevenLabsSpeech {
    /// Speech with `model` and `voice` (a voice id); `voice_settings` passed as given
    /// (`stability`, `similarity_boost`, `style`, `use_speaker_boost`, `speed`).
    pub fn new(
        endpoint: Endpoint,
        model: &str,
        voice: &str,
        voice_settings: Option<Value>,
        price: Option<Price>,
    ) -> Self {
        Self {
            endpoint,
            model: model.to_owned(),
            voice: voice.to_owned(),
            voice_settings,
            price,
        }
    }

    /// The voices of the account (`GET /v1/voices`): names and ids, a free probe of the key.
    pub async fn voices(&self) -> Result<Vec<(String, String)>, ProviderError> {
        #[derive(Deserialize)]
        struct Voices {
            voices: Vec<V>,
        }
        #[derive(Deserialize)]
        struct V {
            voice_id: String,
            name: String,
        }
        let voices: Voices = self
            .endpoint
            .json(self.endpoint.request(Method::GET, "/v1/voices"))
            .await?;
        Ok(voices
            .voices
            .into_iter()
            .map(|v| (v.name, v.voice_id))
            .collect())
    }

    async fn sentence(
        &self,
        text: &str,
        speed: f64,
    ) -> Result<(Vec<i16>, Vec<TimedWord>), ProviderError> {
        let mut settings = self.voice_settings.clone().unwrap_or_else(|| json!({}));
        if (speed - 1.0).abs() > 0.01 && settings.get("speed").is_none() {
            settings["speed"] = json!(speed.clamp(0.7, 1.2));
        }
        let mut body = json!({"text": text, "model_id": self.model});
        if settings.as_object().is_some_and(|o| !o.is_empty()) {
            body["voice_settings"] = settings;
        }
        let request = self
            .endpoint
            .request(
                Method::POST,
                &format!("/v1/text-to-speech/{}/with-timestamps", self.voice),
            )
            .query(&[("output_format", OUTPUT_FORMAT)])
            .json(&body);
        let answer: WithTimestamps = self.endpoint.json(request).await?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(answer.audio_base64.as_bytes())
            .map_err(|e| {
                ProviderError::transient(format!("elevenlabs sent audio that is not base64: {e}"))
            })?;
        let samples = super::pcm16(&bytes);
        if samples.is_empty() {
            return Err(ProviderError::transient(format!(
                "elevenlabs sent no audio for \"{text}\""
            )));
        }
        let words = answer.alignment.map(|a| words(&a)).unwrap_or_default();
        Ok((samples, words))
    }
}

/// Words and their times from a character alignment: a word starts at its first character's
/// start and ends at its last character's end.
fn words(a: &Alignment) -> Vec<TimedWord> {
    let n = a
        .characters
        .len()
        .min(a.character_start_times_seconds.len())
        .min(a.character_end_times_seconds.len());
    let mut out = Vec::new();
    let mut current: Option<TimedWord> = None;
    for i in 0..n {
        let c = &a.characters[i];
        if c.trim().is_empty() {
            out.extend(current.take());
            continue;
        }
        match &mut current {
            Some(w) => {
                w.text.push_str(c);
                w.end = a.character_end_times_seconds[i];
            }
            None => {
                current = Some(TimedWord {
                    text: c.clone(),
                    start: a.character_start_times_seconds[i],
                    end: a.character_end_times_seconds[i],
                })
            }
        }
    }
    out.extend(current);
    out
}

impl Describe for ElevenLabsSpeech {
    fn name(&self) -> &str {
        "elevenlabs"
    }
    fn model(&self) -> String {
        match &self.voice_settings {
            Some(s) => format!("{}/{}/{s}", self.model, self.voice),
            None => format!("{}/{}", self.model, self.voice),
        }
    }
}

#[async_trait]
impl SpeechSynth for ElevenLabsSpeech {
    async fn synthesize(
        &self,
        request: &SpeechRequest,
        out: &Path,
    ) -> Result<Produced<Speech>, ProviderError> {
        request.check_words()?;
        let speed = f64::from(request.voice.rate_wpm) / f64::from(studio_style::narrator::RATE_WPM);
        let mut joined = super::Joined::default();
        let mut characters = 0u64;
        for sentence in &request.sentences {
            let (samples, words) = self.sentence(sentence, speed).await?;
            characters += sentence.chars().count() as u64;
            joined
                .push(sentence, 24_000, &samples, request.sentence_pause_s)
                .map_err(ProviderError::transient)?;
            joined.time_words(words);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_timed_from_their_characters() {
        let text = "Slow but  steady.";
        let a = Alignment {
            characters: text.chars().map(String::from).collect(),
            character_start_times_seconds: (0..text.len()).map(|i| i as f64 * 0.1).collect(),
            character_end_times_seconds: (0..text.len()).map(|i| i as f64 * 0.1 + 0.1).collect(),
        };
        let w = words(&a);
        let texts: Vec<&str> = w.iter().map(|w| w.text.as_str()).collect();
        assert_eq!(texts, ["Slow", "but", "steady."]);
        assert!((w[2].start - 1.0).abs() < 1e-9 && (w[2].end - 1.7).abs() < 1e-9);
    }
}
