//! What a video is made from: [`VideoRequest`], checked once by [`check`] before any step runs,
//! whichever executor runs it (the embedded `studio render` or the ai-job service).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use studio_media::sniff::sniff_file;
use studio_media::timeline::AspectPreset;
use studio_providers::{PlanSource, Voice};

use crate::error::PipelineError;
use crate::style::Style;

/// Seconds of espeak-ng speech per letter at 1 word per minute
/// ([`studio_providers::local::espeak::SECONDS_PER_LETTER_WPM`]): the pace narration is sized
/// by when the voice has no measured pace of its own.
pub const ESPEAK_SECONDS_PER_LETTER_WPM: f64 =
    studio_providers::local::espeak::SECONDS_PER_LETTER_WPM;

/// Frames per second of a video when nobody asks for another rate.
pub const DEFAULT_FPS: u32 = 30;

/// Seconds of silence after each narrated sentence when nobody asks for another pause.
pub const DEFAULT_SENTENCE_PAUSE_S: f64 = 0.35;

/// The video to make.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VideoRequest {
    /// Text (and section) or topic.
    pub source: PlanSource,
    /// Aspect preset.
    pub aspect: AspectPreset,
    /// Frames per second.
    pub fps: u32,
    /// Target length of the whole video, seconds; longer text is summarised. `None` narrates
    /// every sentence.
    pub duration_s: Option<f64>,
    /// Style preset.
    pub style: Style,
    /// Narrator.
    pub voice: Voice,
    /// Silence after each sentence, seconds.
    pub sentence_pause_s: f64,
    /// Music bed.
    pub music: MusicChoice,
    /// Seed for generated pictures and music.
    pub seed: u64,
}

/// Where the music bed comes from.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum MusicChoice {
    /// Composed by the music chain for the style's mood.
    Generate,
    /// The user's own track.
    File {
        /// Audio file.
        path: PathBuf,
        /// Credit line; default read from a `<name>.LICENSE.txt` (or `<stem>.LICENSE.txt`)
        /// sidecar when there is one.
        credit: Option<String>,
    },
    /// No music.
    Silent,
}

/// Seconds of narration the duration budget leaves after the title and end cards; `None`
/// narrates every sentence.
///
/// Errors: [`PipelineError::Input`] naming `duration_s` when it lies outside 10..=3600 s or
/// leaves under 5 s of narration.
pub fn narration_budget(request: &VideoRequest) -> Result<Option<f64>, PipelineError> {
    let style = &request.style;
    let fixed = style.scenes.intro_seconds + style.scenes.outro_seconds;
    match request.duration_s {
        None => Ok(None),
        Some(d) if !d.is_finite() || !(10.0..=3600.0).contains(&d) => Err(PipelineError::Input {
            field: "duration_s",
            message: format!("{d} s is outside 10..=3600 seconds"),
        }),
        Some(d) if d - fixed < 5.0 => Err(PipelineError::Input {
            field: "duration_s",
            message: format!(
                "{d} s leaves no time for narration after the {fixed} s of title and end cards; ask for at least {} s",
                (fixed + 5.0).ceil()
            ),
        }),
        Some(d) => Ok(Some(d - fixed)),
    }
}

/// Checks a request before any step runs: the duration budget ([`narration_budget`]) and the
/// user's own music file, which must be readable audio.
///
/// Errors: [`PipelineError::Input`] naming `duration_s` or `music`.
pub fn check(request: &VideoRequest) -> Result<(), PipelineError> {
    narration_budget(request)?;
    if let MusicChoice::File { path, .. } = &request.music {
        let format = sniff_file(path).map_err(|e| PipelineError::Input {
            field: "music",
            message: format!("{} {e}", path.display()),
        })?;
        if format.is_image() {
            return Err(PipelineError::Input {
                field: "music",
                message: format!("{} is a {format} picture, not audio", path.display()),
            });
        }
    }
    Ok(())
}

impl VideoRequest {
    /// A request for `source` with every other choice at its default: 16:9, [`DEFAULT_FPS`],
    /// the `storybook` style, [`Voice::default`], [`DEFAULT_SENTENCE_PAUSE_S`], generated
    /// music, seed 0.
    pub fn new(source: PlanSource) -> VideoRequest {
        VideoRequest {
            source,
            aspect: AspectPreset::Landscape,
            fps: DEFAULT_FPS,
            duration_s: None,
            style: Style::load("storybook").expect("the storybook style is built in"),
            voice: Voice::default(),
            sentence_pause_s: DEFAULT_SENTENCE_PAUSE_S,
            music: MusicChoice::Generate,
            seed: 0,
        }
    }
}
