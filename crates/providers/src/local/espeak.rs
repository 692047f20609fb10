//! The local [`SpeechSynth`]: espeak-ng (<https://github.com/espeak-ng/espeak-ng>), one process
//! per sentence, so every sentence's time in the joined audio comes from its real length.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use async_trait::async_trait;
use tokio::io::AsyncWriteExt;

use crate::capability::{Describe, Produced, SpeechSynth};
use crate::error::ProviderError;
use crate::types::*;

/// Seconds of espeak-ng speech per letter at 1 word per minute: measured on 33 sentences of
/// *Alice* chapter I (4,213 letters: 330 s at 165 wpm, 309 s at 175 wpm, ±1%).
pub const SECONDS_PER_LETTER_WPM: f64 = 12.9;

/// espeak-ng speech.
#[derive(Debug, Clone)]
pub struct EspeakSpeech {
    binary: PathBuf,
    version: String,
}

impl EspeakSpeech {
    /// Speech through the `espeak-ng` found on `PATH` (or `binary`), asking it for its version.
    ///
    /// Errors: `Unavailable` when espeak-ng cannot be run, saying how to install it.
    pub fn detect(binary: Option<PathBuf>) -> Result<Self, ProviderError> {
        let binary = binary.unwrap_or_else(|| PathBuf::from("espeak-ng"));
        let out = std::process::Command::new(&binary)
            .arg("--version")
            .output()
            .map_err(|e| {
                ProviderError::unavailable(format!(
                    "espeak-ng cannot be run ({}: {e}); install it with `apt-get install espeak-ng`",
                    binary.display()
                ))
            })?;
        let text = String::from_utf8_lossy(&out.stdout);
        // "eSpeak NG text-to-speech: 1.51  Data at: …"
        let version = text
            .split(':')
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .unwrap_or("unknown")
            .to_string();
        Ok(Self { binary, version })
    }

    async fn sentence(
        &self,
        voice: &Voice,
        text: &str,
        wav: &Path,
    ) -> Result<(u32, Vec<i16>), ProviderError> {
        let mut child = tokio::process::Command::new(&self.binary)
            .arg("-v")
            .arg(&voice.name)
            .arg("-s")
            .arg(voice.rate_wpm.to_string())
            .arg("-p")
            .arg(voice.pitch.min(99).to_string())
            .arg("-w")
            .arg(wav)
            .arg("--stdin")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| ProviderError::unavailable(format!("espeak-ng cannot be run: {e}")))?;
        let mut stdin = child.stdin.take().expect("stdin is piped");
        stdin
            .write_all(text.as_bytes())
            .await
            .map_err(|e| ProviderError::transient(format!("writing to espeak-ng: {e}")))?;
        drop(stdin);
        let out = child
            .wait_with_output()
            .await
            .map_err(|e| ProviderError::transient(format!("espeak-ng: {e}")))?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() || stderr.contains("not found") {
            if stderr.to_lowercase().contains("voice") {
                return Err(ProviderError::invalid(format!(
                    "espeak-ng has no voice \"{}\" (see `espeak-ng --voices`)",
                    voice.name
                )));
            }
            return Err(ProviderError::transient(format!(
                "espeak-ng failed ({}): {}",
                out.status,
                stderr.trim()
            )));
        }
        let reader = hound::WavReader::open(wav).map_err(|e| {
            ProviderError::transient(format!("espeak-ng wrote no readable WAV: {e}"))
        })?;
        let rate = reader.spec().sample_rate;
        let samples = reader
            .into_samples::<i16>()
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ProviderError::transient(format!("reading espeak-ng WAV: {e}")))?;
        Ok((rate, samples))
    }
}

impl Describe for EspeakSpeech {
    fn name(&self) -> &str {
        "espeak-ng"
    }
    fn model(&self) -> String {
        format!("espeak-ng {}", self.version)
    }
}

#[async_trait]
impl SpeechSynth for EspeakSpeech {
    fn seconds_per_letter_wpm(&self) -> Option<f64> {
        Some(SECONDS_PER_LETTER_WPM)
    }

    async fn synthesize(
        &self,
        request: &SpeechRequest,
        out: &Path,
    ) -> Result<Produced<Speech>, ProviderError> {
        request.check_words()?;
        let mut sample_rate = 22_050;
        let mut samples: Vec<i16> = Vec::new();
        let mut timed = Vec::new();
        for (i, sentence) in request.sentences.iter().enumerate() {
            let part = out.join(format!("sentence-{i:03}.wav"));
            let (rate, pcm) = self.sentence(&request.voice, sentence, &part).await?;
            let _ = std::fs::remove_file(&part);
            sample_rate = rate;
            let start = samples.len();
            samples.extend_from_slice(&pcm);
            let end = samples.len();
            let pause = (request.sentence_pause_s.max(0.0) * rate as f64).round() as usize;
            samples.resize(end + pause, 0);
            timed.push(TimedText {
                text: sentence.clone(),
                start: start as f64 / rate as f64,
                end: end as f64 / rate as f64,
                words: Vec::new(),
            });
        }
        let audio = out.join("speech.wav");
        write_wav(&audio, sample_rate, &samples)?;
        Ok(Produced::free(Speech {
            audio,
            sample_rate,
            duration_s: samples.len() as f64 / sample_rate as f64,
            sentences: timed,
        }))
    }
}

/// Writes mono 16-bit PCM to `path`.
pub fn write_wav(path: &Path, sample_rate: u32, samples: &[i16]) -> Result<(), ProviderError> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(path, spec)
        .map_err(|e| ProviderError::transient(format!("creating {}: {e}", path.display())))?;
    for s in samples {
        writer
            .write_sample(*s)
            .map_err(|e| ProviderError::transient(format!("writing {}: {e}", path.display())))?;
    }
    writer
        .finalize()
        .map_err(|e| ProviderError::transient(format!("writing {}: {e}", path.display())))
}
