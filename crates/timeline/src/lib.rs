//! The timeline: the versioned contract between planning and rendering.
//!
//! A [`Timeline`] is plain data (JSON on disk) describing a canvas, an ordered list of scenes with
//! their transitions and overlays, the audio tracks, the captions and the output settings. Times
//! are in seconds (`f64`), sizes in pixels, gains in dB, loudness in LUFS. Paths are relative to
//! the timeline's input folder. [`Timeline::json_schema`] publishes the JSON Schema; structural
//! checks live in `studio_media::validate`.
//!
//! Layout: this module holds the whole ([`Timeline`], [`Canvas`], [`AspectPreset`]); `scene`
//! the scenes, their visuals, motion and transitions; `text` positions, text styles and
//! overlays; `audio` the tracks and ducking; `captions` the cues and safe margins;
//! `output` the encoder and loudness settings.

mod audio;
mod captions;
mod output;
mod scene;
mod text;

pub use audio::*;
pub use captions::*;
pub use output::*;
pub use scene::*;
pub use text::*;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The timeline format version this engine reads and writes.
pub const TIMELINE_VERSION: u32 = 1;

/// A whole video: canvas, scenes, audio, captions and output settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Timeline {
    /// Format version; must equal 1.
    pub version: u32,
    /// Frame size and rate.
    pub canvas: Canvas,
    /// Scenes in playback order; at least one.
    pub scenes: Vec<Scene>,
    /// Overlays timed on the whole timeline (seconds from the start of the video).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overlays: Vec<Overlay>,
    /// Voice, music and effect tracks.
    #[serde(default)]
    pub audio: AudioTracks,
    /// Caption cues and how they are burned in.
    #[serde(default)]
    pub captions: Captions,
    /// Encoder, loudness, size cap and thumbnail settings.
    #[serde(default)]
    pub output: OutputSettings,
}

impl Timeline {
    /// Returns the JSON Schema (draft 2020-12) of the timeline format.
    pub fn json_schema() -> serde_json::Value {
        serde_json::to_value(schemars::schema_for!(Timeline)).expect("schema serialises")
    }
}

/// Output aspect presets and the frame size each one means (pixels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum AspectPreset {
    /// 1920×1080 landscape (YouTube, desktop players).
    #[serde(rename = "16:9")]
    Landscape,
    /// 1080×1920 portrait (Shorts, Reels, TikTok).
    #[serde(rename = "9:16")]
    Portrait,
    /// 1080×1080 square.
    #[serde(rename = "1:1")]
    Square,
    /// 1080×1350 portrait feed post.
    #[serde(rename = "4:5")]
    Feed,
}

impl AspectPreset {
    /// Returns `(width, height)` in pixels.
    pub fn size(self) -> (u32, u32) {
        match self {
            AspectPreset::Landscape => (1920, 1080),
            AspectPreset::Portrait => (1080, 1920),
            AspectPreset::Square => (1080, 1080),
            AspectPreset::Feed => (1080, 1350),
        }
    }

    /// Every preset.
    pub const ALL: [AspectPreset; 4] = [
        AspectPreset::Landscape,
        AspectPreset::Portrait,
        AspectPreset::Square,
        AspectPreset::Feed,
    ];

    /// The ratio as written: `16:9`, `9:16`, `1:1` or `4:5` (also its JSON form).
    pub fn label(self) -> &'static str {
        match self {
            AspectPreset::Landscape => "16:9",
            AspectPreset::Portrait => "9:16",
            AspectPreset::Square => "1:1",
            AspectPreset::Feed => "4:5",
        }
    }

    /// Parses `16:9`, `9:16`, `1:1` or `4:5`.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.label() == s)
    }
}

/// Frame size and rate. Give either `preset` or both `width` and `height`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Canvas {
    /// A named size; mutually exclusive with `width`/`height`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<AspectPreset>,
    /// Width in pixels, even, 16..=7680.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    /// Height in pixels, even, 16..=7680.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// Frames per second, 1..=120. Default 30.
    #[serde(default = "default_fps")]
    pub fps: u32,
}

fn default_fps() -> u32 {
    30
}

impl Canvas {
    /// A canvas of a preset size.
    pub fn preset(preset: AspectPreset, fps: u32) -> Self {
        Self {
            preset: Some(preset),
            width: None,
            height: None,
            fps,
        }
    }

    /// Returns `(width, height)` in pixels; the preset wins, then explicit sizes, then 1920×1080.
    pub fn size(&self) -> (u32, u32) {
        match (self.preset, self.width, self.height) {
            (Some(p), _, _) => p.size(),
            (None, Some(w), Some(h)) => (w, h),
            _ => (1920, 1080),
        }
    }

    /// True when the frame is taller than wide (caption safe areas differ).
    pub fn is_portrait(&self) -> bool {
        let (w, h) = self.size();
        h > w
    }
}

fn default_true() -> bool {
    true
}
