//! Word timings for voices that give none (espeak-ng, OpenAI-compatible speech servers): forced
//! alignment of the spoken audio against its known text with PocketSphinx (PyPI `pocketsphinx`,
//! whose wheel ships the US English acoustic model and dictionary), run as a subprocess in the
//! Python environment `scripts/setup.sh` makes (`align/studio_align.py` explains how).
//!
//! [`Aligned`] wraps a voice: what the voice times itself is kept, and only sentences it left
//! without word times are aligned, so captions can light the spoken word and cues can end on real
//! pauses whatever the voice.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::capability::{Describe, Produced, SpeechSynth};
use crate::error::ProviderError;
use crate::local::bridge::Bridge;
use crate::types::*;

/// The aligner script, passed to Python with `-c`.
const SCRIPT: &str = include_str!("../../align/studio_align.py");

/// How a voice's words are timed, the `word_timing` of a speech provider's settings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WordTiming {
    /// The voice's own word times; where it gives none, PocketSphinx when installed, else by
    /// letters. The default.
    #[default]
    Auto,
    /// The voice's own word times, PocketSphinx for the rest; a settings error when PocketSphinx
    /// is not installed.
    Pocketsphinx,
    /// The voice's own word times only; sentences without them are captioned by letters.
    Letters,
}

/// PocketSphinx forced alignment.
#[derive(Debug, Clone)]
pub struct PocketSphinx {
    python: PathBuf,
    version: String,
}

#[derive(Debug, Deserialize)]
struct Versions {
    pocketsphinx: String,
}

#[derive(Debug, Deserialize)]
struct Line {
    words: Vec<TimedWord>,
}

impl PocketSphinx {
    /// PocketSphinx through `python` (default [`crate::local::piper::default_python`], the
    /// environment that also holds Piper), asking it for its version.
    ///
    /// Errors: `Unavailable` when Python or PocketSphinx cannot be loaded, saying how to install
    /// them.
    pub fn detect(python: Option<PathBuf>) -> Result<Self, ProviderError> {
        let python = python.unwrap_or_else(crate::local::piper::default_python);
        let install = "run scripts/setup.sh, which installs pocketsphinx into \
                       ~/.cache/studio/piper (or set STUDIO_PIPER_PYTHON)";
        let out = std::process::Command::new(&python)
            .args(["-c", SCRIPT, "--version"])
            .output()
            .map_err(|e| {
                ProviderError::unavailable(format!(
                    "pocketsphinx cannot be run ({}: {e}); {install}",
                    python.display()
                ))
            })?;
        let versions: Versions = serde_json::from_slice(&out.stdout).map_err(|_| {
            ProviderError::unavailable(format!(
                "pocketsphinx is not installed for {}; {install}",
                python.display()
            ))
        })?;
        Ok(Self {
            python,
            version: format!("pocketsphinx {}", versions.pocketsphinx),
        })
    }

    /// Name and version (`pocketsphinx 5.1.1`).
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Times the words of every sentence of `speech` that has none, from its audio.
    ///
    /// A sentence whose alignment comes back inconsistent (other words than its own, times out
    /// of order or outside the sentence) keeps no word times and is captioned by letters.
    ///
    /// Errors: `Unavailable` when Python cannot be run; `Transient` when the aligner fails.
    pub async fn align(&self, speech: &mut Speech) -> Result<(), ProviderError> {
        let todo: Vec<usize> = (0..speech.sentences.len())
            .filter(|&i| speech.sentences[i].words.is_empty())
            .filter(|&i| !speech.sentences[i].text.trim().is_empty())
            .collect();
        if todo.is_empty() {
            return Ok(());
        }
        let job = serde_json::json!({
            "wav": speech.audio,
            "sentences": todo.iter().map(|&i| {
                let s = &speech.sentences[i];
                serde_json::json!({"text": s.text, "start": s.start, "end": s.end})
            }).collect::<Vec<_>>(),
        });
        let mut bridge = Bridge::start("pocketsphinx", &self.python, SCRIPT, &job).await?;
        let mut done = 0;
        while let Some(line) = bridge.next_line().await? {
            let Some(&i) = todo.get(done) else { break };
            let line: Line = serde_json::from_str(&line).map_err(|e| {
                ProviderError::transient(format!("pocketsphinx said something unexpected ({e})"))
            })?;
            let sentence = &mut speech.sentences[i];
            let words = placed(sentence, line.words);
            if consistent(sentence, &words) {
                sentence.words = words;
            } else {
                tracing::warn!(
                    sentence = %sentence.text,
                    "pocketsphinx's word times do not fit the sentence; its captions are timed by letters"
                );
            }
            done += 1;
        }
        bridge.finish(done, todo.len(), "sentences").await
    }
}

/// `words` timed from the start of `sentence` (as the aligner reports them, in milliseconds),
/// placed in the audio: shifted by the sentence's start and kept inside its time, which the
/// aligner's rounding may leave by a fraction of a millisecond.
fn placed(sentence: &TimedText, words: Vec<TimedWord>) -> Vec<TimedWord> {
    let at = |t: f64| (sentence.start + t).clamp(sentence.start, sentence.end);
    words
        .into_iter()
        .map(|w| TimedWord {
            start: at(w.start),
            end: at(w.end),
            text: w.text,
        })
        .collect()
}

/// Whether `words` are `sentence`'s own words, in order, inside its time, each starting before
/// the sentence ends.
fn consistent(sentence: &TimedText, words: &[TimedWord]) -> bool {
    words
        .iter()
        .map(|w| w.text.as_str())
        .eq(sentence.text.split_whitespace())
        && words.windows(2).all(|w| w[0].end <= w[1].start)
        && words.iter().all(|w| {
            w.start <= w.end
                && w.start >= sentence.start
                && w.end <= sentence.end
                && (w.start < sentence.end || sentence.start == sentence.end)
        })
}

/// A voice whose untimed sentences are aligned by [`PocketSphinx`].
pub struct Aligned {
    voice: Arc<dyn SpeechSynth>,
    aligner: PocketSphinx,
}

impl std::fmt::Debug for Aligned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Aligned")
            .field("voice", &self.voice.name())
            .field("aligner", &self.aligner.version)
            .finish()
    }
}

impl Aligned {
    /// `voice`, aligned by `aligner`.
    pub fn new(voice: Arc<dyn SpeechSynth>, aligner: PocketSphinx) -> Self {
        Self { voice, aligner }
    }
}

impl Describe for Aligned {
    fn name(&self) -> &str {
        self.voice.name()
    }
    /// The voice's model and the aligner's version: both change the result.
    fn model(&self) -> String {
        format!("{} + {}", self.voice.model(), self.aligner.version)
    }
}

#[async_trait]
impl SpeechSynth for Aligned {
    fn seconds_per_letter_wpm(&self) -> Option<f64> {
        self.voice.seconds_per_letter_wpm()
    }

    fn estimate(&self, characters: u64) -> u64 {
        self.voice.estimate(characters)
    }

    /// The voice's speech, then alignment of what it left untimed. An aligner failure costs
    /// only word times (the speech, maybe paid for, is kept): it is logged and those captions
    /// are timed by letters.
    async fn synthesize(
        &self,
        request: &SpeechRequest,
        out: &Path,
    ) -> Result<Produced<Speech>, ProviderError> {
        let mut produced = self.voice.synthesize(request, out).await?;
        if let Err(e) = self.aligner.align(&mut produced.output).await {
            tracing::warn!(error = %e, "word alignment failed; captions are timed by letters");
        }
        Ok(produced)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(text: &str, start: f64, end: f64) -> TimedWord {
        TimedWord {
            text: text.into(),
            start,
            end,
        }
    }

    #[test]
    fn only_the_sentences_own_words_in_order_and_time_are_kept() {
        let sentence = TimedText {
            text: "Slow but steady.".into(),
            start: 1.0,
            end: 2.0,
            words: Vec::new(),
        };
        let good = [
            word("Slow", 1.0, 1.3),
            word("but", 1.3, 1.5),
            word("steady.", 1.5, 2.0),
        ];
        assert!(consistent(&sentence, &good));
        let mut other = good.to_vec();
        other[2].text = "steady".into();
        assert!(!consistent(&sentence, &other), "a changed word");
        assert!(!consistent(&sentence, &good[..2]), "a missing word");
        let mut late = good.to_vec();
        late[2].end = 2.5;
        assert!(!consistent(&sentence, &late), "past the sentence");
        let mut early = good.to_vec();
        early[0].start = 0.9995;
        assert!(!consistent(&sentence, &early), "before the sentence");
        // The aligner's millisecond times, relative to the sentence, are placed inside it.
        let relative = vec![
            word("Slow", -0.0004, 0.3),
            word("but", 0.3, 0.5),
            word("steady.", 0.5, 1.0004),
        ];
        let placed = placed(&sentence, relative);
        assert_eq!((placed[0].start, placed[2].end), (1.0, 2.0));
        assert!(consistent(&sentence, &placed));
        let mut crossed = good.to_vec();
        crossed[1].start = 1.2;
        assert!(!consistent(&sentence, &crossed), "overlapping words");
    }
}
