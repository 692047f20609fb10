//! Requests and results of each capability. Requests are what the cache hashes, so they hold
//! everything that changes the result and nothing that does not (no output paths, no clocks).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

// ---------------------------------------------------------------------------------------------
// Script

/// What to plan a video from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum PlanSource {
    /// Given text: a fable collection, a book, a script.
    Text {
        /// The whole text as read from the file (any line endings).
        text: String,
        /// Title of the section to plan (case-insensitive); `None` plans the first section.
        section: Option<String>,
    },
    /// A topic for a language model to write about.
    Topic {
        /// The topic, as the user typed it.
        topic: String,
        /// Who the video is for (`children aged 6–9`), if said.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        audience: Option<String>,
        /// Tone of voice (`warm`, `wry`, `solemn`), if said.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tone: Option<String>,
    },
}

/// How long narration takes, used to size scenes and to summarise before any audio exists.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Pace {
    /// Seconds of speech per letter or digit (punctuation and spaces are not counted).
    pub seconds_per_char: f64,
    /// Silence after each sentence, seconds.
    pub sentence_pause_s: f64,
}

impl Pace {
    /// Estimated seconds to speak `sentences`, pauses included.
    pub fn estimate<S: AsRef<str>>(&self, sentences: &[S]) -> f64 {
        sentences
            .iter()
            .map(|s| self.sentence_seconds(s.as_ref()))
            .sum()
    }

    /// Estimated seconds to speak one sentence, its pause included.
    pub fn sentence_seconds(&self, sentence: &str) -> f64 {
        let chars = sentence.chars().filter(|c| c.is_alphanumeric()).count();
        chars as f64 * self.seconds_per_char + self.sentence_pause_s
    }
}

/// A request to plan a video.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanRequest {
    /// What to plan from.
    pub source: PlanSource,
    /// Narration budget in seconds (the moral included); longer text is summarised. `None`
    /// keeps every sentence.
    pub target_seconds: Option<f64>,
    /// Narration per scene to aim for, seconds.
    pub scene_seconds: f64,
    /// Speaking pace used for the estimates.
    pub pace: Pace,
}

/// A planned video: what is said, scene by scene, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenePlan {
    /// Title for the intro card (a fable's title, a chapter heading).
    pub title: String,
    /// Second line of the intro card (a chapter's name), if any.
    pub subtitle: Option<String>,
    /// A fable's moral, narrated and shown on the end card.
    pub moral: Option<String>,
    /// Titles of every section found in the text, in order.
    pub sections: Vec<String>,
    /// Sentences in the chosen section's body.
    pub sentences_total: usize,
    /// Sentences kept after summarising (all of them when the text fits).
    pub sentences_kept: usize,
    /// Estimated narration, seconds (moral included).
    pub estimated_seconds: f64,
    /// Scenes in order.
    pub scenes: Vec<PlannedScene>,
    /// The recurring characters, each described once so every picture prompt draws them the
    /// same way. Empty from the extractive planner.
    #[serde(default)]
    pub characters: Vec<Character>,
    /// Music mood the planner chose (`calm`, `playful`, `wonder`, `tense`); `None` leaves it to
    /// the style.
    #[serde(default)]
    pub music_mood: Option<String>,
}

/// A recurring character with a fixed visual description.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Character {
    /// Name as the narration uses it.
    pub name: String,
    /// How it looks, reused word for word in every prompt it appears in.
    pub description: String,
}

impl ScenePlan {
    /// The title with the subtitle, as a reader would name the video: `CHAPTER VII. A Mad
    /// Tea-Party`, `Chapter 1: Loomings`, or the title alone when there is no subtitle.
    pub fn full_title(&self) -> String {
        match self
            .subtitle
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            Some(sub) if self.title.trim_end().ends_with(['.', ':', '!', '?']) => {
                format!("{} {sub}", self.title.trim_end())
            }
            Some(sub) => format!("{}: {sub}", self.title.trim_end()),
            None => self.title.clone(),
        }
    }
}

/// One planned scene.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedScene {
    /// Narration, one entry per sentence, exactly as in the source (whitespace normalised).
    pub sentences: Vec<String>,
    /// Short on-screen heading: the scene's key words.
    pub heading: String,
    /// Visual search terms, most telling first, lowercase.
    pub search_terms: Vec<String>,
    /// What the scene shows, as an image prompt (a language model's plan); `None` from the
    /// extractive planner.
    #[serde(default)]
    pub visual: Option<String>,
    /// Names of the [`Character`]s in the scene.
    #[serde(default)]
    pub characters: Vec<String>,
}

// ---------------------------------------------------------------------------------------------
// Speech

/// A voice and how it speaks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Voice {
    /// Provider-specific voice name (espeak-ng: `en-us`, `en-gb`, `en-gb-x-rp`, …).
    pub name: String,
    /// Speaking rate, words per minute (espeak-ng default 175).
    pub rate_wpm: u32,
    /// Pitch, 0–99 (espeak-ng default 50).
    pub pitch: u32,
}

impl Default for Voice {
    /// The narrator used when none is chosen ([`studio_style::narrator`]).
    fn default() -> Self {
        Voice {
            name: studio_style::narrator::VOICE.into(),
            rate_wpm: studio_style::narrator::RATE_WPM,
            pitch: studio_style::narrator::PITCH,
        }
    }
}

/// A request to speak some sentences.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpeechRequest {
    /// Sentences in order; each becomes one timed stretch of audio.
    pub sentences: Vec<String>,
    /// Voice.
    pub voice: Voice,
    /// Silence after each sentence, seconds.
    pub sentence_pause_s: f64,
}

impl SpeechRequest {
    /// `Invalid` when every sentence is empty: there is nothing to say.
    pub fn check_words(&self) -> Result<(), crate::ProviderError> {
        if self.sentences.iter().all(|s| s.trim().is_empty()) {
            return Err(crate::ProviderError::invalid(
                "nothing to say: every sentence is empty",
            ));
        }
        Ok(())
    }
}

/// One sentence placed in the audio.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimedText {
    /// The sentence.
    pub text: String,
    /// Start, seconds from the start of the audio.
    pub start: f64,
    /// End of the spoken sound (before the pause), seconds.
    pub end: f64,
    /// Each word's time, where the voice tells them (a vendor's alignment); empty otherwise.
    /// Joining the words' texts with spaces gives the sentence's words.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub words: Vec<TimedWord>,
}

/// One spoken word placed in the audio.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimedWord {
    /// The word as written, punctuation attached.
    pub text: String,
    /// Start, seconds from the start of the audio.
    pub start: f64,
    /// End, seconds from the start of the audio.
    pub end: f64,
}

/// Spoken audio with the time of every sentence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Speech {
    /// WAV file (PCM 16-bit mono).
    pub audio: PathBuf,
    /// Sample rate, Hz.
    pub sample_rate: u32,
    /// Length, seconds (trailing pause included).
    pub duration_s: f64,
    /// Every sentence with its time, in order.
    pub sentences: Vec<TimedText>,
}

// ---------------------------------------------------------------------------------------------
// Image

/// A request for a picture for one scene.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageRequest {
    /// Search terms, most telling first, lowercase.
    pub terms: Vec<String>,
    /// Words to draw or to prompt a model with (the scene's heading).
    pub caption: String,
    /// Width, pixels.
    pub width: u32,
    /// Height, pixels.
    pub height: u32,
    /// Seed of this scene's procedural card; the same seed gives the same card.
    pub seed: u64,
    /// Palette, `#RRGGBB`, background colours first.
    pub palette: Vec<String>,
    /// The prompt for picture models: the style's prefix, what the scene shows, and the fixed
    /// description of every character in it, word for word in every scene. Cards and media
    /// folders do not read it.
    #[serde(default)]
    pub prompt: String,
    /// What pictures should not show, for models that take a negative prompt.
    #[serde(default)]
    pub negative_prompt: String,
    /// The video's seed, the same for every picture of it, for models that take a seed: with
    /// the same characters and prefix in every prompt, scenes come out alike in look.
    #[serde(default)]
    pub project_seed: u64,
}

/// Where a picture came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ImageSource {
    /// Drawn by a provider at canvas size (a procedural card).
    Generated,
    /// Drawn by a picture model from a prompt: what was asked, so the scene can be made again
    /// exactly (same prompt and seed) or anew (another seed).
    Model {
        /// The prompt sent.
        prompt: String,
        /// The seed sent, for models that take one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seed: Option<u64>,
        /// The prompt as the model rewrote it, when it says (DALL·E 3).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        revised_prompt: Option<String>,
    },
    /// A photo from a stock library, found by the scene's search terms.
    Stock {
        /// The library (`pexels`, `pixabay`).
        library: String,
        /// The photo's id there.
        id: String,
        /// Its page on the library's site.
        page: String,
        /// Who took it.
        photographer: String,
    },
    /// A file from the user's media folder.
    File {
        /// File name in the folder.
        name: String,
        /// The terms that matched.
        matched: Vec<String>,
    },
}

/// A picture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Image {
    /// PNG, JPEG, WebP or BMP file.
    pub path: PathBuf,
    /// Width, pixels.
    pub width: u32,
    /// Height, pixels.
    pub height: u32,
    /// Where it came from.
    pub source: ImageSource,
    /// Credit line its licence asks for (CC-BY), if any.
    pub credit: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Clip

/// A request for a short video clip: a scene's still set in motion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClipRequest {
    /// How the still should move (the style's motion prompt and what the scene shows).
    pub prompt: String,
    /// What the clip should not show, for models that take a negative prompt.
    #[serde(default)]
    pub negative_prompt: String,
    /// SHA-256 of the still to animate (part of the cache key; the file is [`Self::image`]).
    pub image_sha256: Option<String>,
    /// The still itself, on local disk. Not part of the cache key: its digest is.
    #[serde(skip)]
    pub image: Option<PathBuf>,
    /// Length wanted, seconds (the scene's narration); vendors make clips of their own fixed
    /// lengths, and the timeline freezes or trims them to the scene.
    pub duration_s: f64,
    /// Width of the canvas, pixels.
    pub width: u32,
    /// Height of the canvas, pixels.
    pub height: u32,
    /// The video's seed, the same for every clip of it, for models that take one.
    pub seed: u64,
    /// The scene's search terms, most telling first, for stock video libraries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub terms: Vec<String>,
}

/// A video clip.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Clip {
    /// MP4 or WebM file, sniffed and probed.
    pub path: PathBuf,
    /// Length, seconds (probed).
    pub duration_s: f64,
    /// Width, pixels (probed).
    #[serde(default)]
    pub width: u32,
    /// Height, pixels (probed).
    #[serde(default)]
    pub height: u32,
    /// The prompt sent, so the clip can be made again.
    #[serde(default)]
    pub prompt: String,
    /// The seed sent, for models that take one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Credit line its licence asks for (a stock video's author), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credit: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Music

/// A request for a music bed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MusicRequest {
    /// Mood name (`calm`, `playful`, `wonder`, `tense`, …).
    pub mood: String,
    /// Shortest length wanted, seconds.
    pub duration_s: f64,
    /// Seed; the same seed gives the same piece.
    pub seed: u64,
}

/// A music bed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Music {
    /// Audio file (WAV).
    pub path: PathBuf,
    /// Length, seconds.
    pub duration_s: f64,
    /// Tempo, beats per minute.
    pub tempo_bpm: u32,
    /// Credit line its licence asks for, if any.
    pub credit: Option<String>,
}
