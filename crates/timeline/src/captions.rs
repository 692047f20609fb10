//! Captions: timed cues, how they are burned in, and the safe margins they keep from the
//! frame edge.

use super::*;

/// Caption cues, written as SRT and WebVTT beside the video and optionally burned in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Captions {
    /// Cues in time order, not overlapping.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cues: Vec<Cue>,
    /// Burn the cues into the picture. Default true.
    #[serde(default = "default_true")]
    pub burn: bool,
    /// Look and placement of burned cues.
    #[serde(default)]
    pub style: CaptionStyle,
}

impl Default for Captions {
    fn default() -> Self {
        Self {
            cues: Vec::new(),
            burn: true,
            style: CaptionStyle::default(),
        }
    }
}

/// One caption cue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Cue {
    /// Start, seconds from the start of the video.
    pub start: f64,
    /// End, seconds; greater than `start`.
    pub end: f64,
    /// The text; `\n` breaks lines.
    pub text: String,
    /// When each word of `text` (split at whitespace) starts, seconds from the start of the
    /// video, rising, within the cue: what karaoke captions ([`CaptionStyle::highlight`]) light
    /// up by. Empty when the voice gave no word times.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub word_starts: Vec<f64>,
}

/// Vertical placement of captions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum CaptionPosition {
    /// Near the top safe margin.
    Top,
    /// Centred.
    Center,
    /// Near the bottom safe margin.
    #[default]
    Bottom,
}

/// Look and placement of burned captions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CaptionStyle {
    /// Font, size, colours. Default size: 5% of the canvas height (16:9) or 6.5% of its width
    /// (portrait).
    #[serde(default)]
    pub text: TextStyle,
    /// Vertical placement. Default `bottom`.
    #[serde(default)]
    pub position: CaptionPosition,
    /// Most lines shown at once (1..=4); longer cues are shown in consecutive parts. Default 2.
    #[serde(default = "default_max_lines")]
    pub max_lines: u32,
    /// Safe margins in pixels; default by aspect (see [`SafeMargins::for_canvas`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub margins: Option<SafeMargins>,
    /// Karaoke: each word of a cue with `word_starts` turns this colour (`#RRGGBB[AA]`) as it
    /// is spoken and stays lit to the cue's end. `None`: plain captions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub highlight: Option<String>,
}

fn default_max_lines() -> u32 {
    2
}

impl Default for CaptionStyle {
    fn default() -> Self {
        Self {
            text: TextStyle::default(),
            position: CaptionPosition::Bottom,
            max_lines: default_max_lines(),
            highlight: None,
            margins: None,
        }
    }
}

/// Distances from the frame edges that captions stay inside, pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SafeMargins {
    /// Left margin, pixels.
    pub left: u32,
    /// Right margin, pixels.
    pub right: u32,
    /// Top margin, pixels.
    pub top: u32,
    /// Bottom margin, pixels.
    pub bottom: u32,
}

impl SafeMargins {
    /// Returns the default safe area for a canvas of `width`×`height` pixels.
    ///
    /// Landscape and square frames keep the 10% title-safe border of SMPTE ST 2046-1 / EBU R 95.
    /// Portrait frames leave room for the app chrome that short-video players draw over the
    /// picture (caption bar and buttons): 8% left, 15% right, 12% top and 20% bottom, after the
    /// safe-zone guides published for YouTube Shorts, Instagram Reels and TikTok.
    pub fn for_canvas(width: u32, height: u32) -> Self {
        let pct = |v: u32, p: u32| v * p / 100;
        if height > width {
            Self {
                left: pct(width, 8),
                right: pct(width, 15),
                top: pct(height, 12),
                bottom: pct(height, 20),
            }
        } else {
            Self {
                left: pct(width, 10),
                right: pct(width, 10),
                top: pct(height, 10),
                bottom: pct(height, 10),
            }
        }
    }
}
