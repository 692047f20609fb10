//! The timeline: the versioned contract between planning and rendering.
//!
//! A [`Timeline`] is plain data (JSON on disk) describing a canvas, an ordered list of scenes with
//! their transitions and overlays, the audio tracks, the captions and the output settings. Times
//! are in seconds (`f64`), sizes in pixels, gains in dB, loudness in LUFS. Paths are relative to
//! the timeline's input folder. [`Timeline::json_schema`] publishes the JSON Schema; structural
//! checks live in [`crate::validate`].

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

/// One scene: a visual held for `duration` seconds, with motion, overlays and the transition
/// into the next scene.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Scene {
    /// A name for reports; optional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Length in seconds (> 0), rounded to whole frames. Overlapping transitions eat into it.
    pub duration: f64,
    /// What the scene shows.
    pub visual: Visual,
    /// Ken Burns motion for still images (and title cards with an image background).
    #[serde(default, skip_serializing_if = "Motion::is_none")]
    pub motion: Motion,
    /// How a source of another aspect fills the frame. Default `cover`.
    #[serde(default)]
    pub fit: Fit,
    /// Overlays timed from the start of this scene (seconds).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overlays: Vec<Overlay>,
    /// Transition from this scene into the next one; on the last scene only `cut` or `fade`.
    #[serde(default)]
    pub transition: Transition,
}

/// The picture source of a scene.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Visual {
    /// A still image (PNG, JPEG, WebP, BMP).
    Image {
        /// Path relative to the input folder.
        path: String,
    },
    /// A video clip (MP4/MOV, Matroska/WebM); its own sound is not used.
    Video {
        /// Path relative to the input folder.
        path: String,
        /// Where to start in the source, seconds. Default 0.
        #[serde(default)]
        source_start: f64,
        /// Where to stop in the source, seconds; default the end of the source.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        source_end: Option<f64>,
        /// What happens when the clip is shorter than the scene. Default `freeze`.
        #[serde(default)]
        fill: ClipFill,
    },
    /// A solid colour.
    Color {
        /// `#RRGGBB`.
        color: String,
    },
    /// A linear two-colour gradient.
    Gradient {
        /// `#RRGGBB` at the start of the gradient line.
        from: String,
        /// `#RRGGBB` at the end of the gradient line.
        to: String,
        /// Direction of the gradient line. Default `vertical` (top to bottom).
        #[serde(default)]
        direction: GradientDirection,
    },
    /// Text centred on a background.
    Title {
        /// The title; `\n` breaks lines, long lines wrap.
        text: String,
        /// Background behind the text.
        background: Background,
        /// Font, size, colours of the text.
        #[serde(default)]
        style: TextStyle,
    },
}

impl Visual {
    /// Returns the input file this visual reads, if any.
    pub fn path(&self) -> Option<&str> {
        match self {
            Visual::Image { path } | Visual::Video { path, .. } => Some(path),
            Visual::Title {
                background: Background::Image { path },
                ..
            } => Some(path),
            _ => None,
        }
    }
}

/// What a clip does when it ends before its scene does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ClipFill {
    /// Hold the last frame.
    #[default]
    Freeze,
    /// Start the clip again.
    Loop,
}

/// Direction of a gradient line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum GradientDirection {
    /// Top to bottom.
    #[default]
    Vertical,
    /// Left to right.
    Horizontal,
    /// Top-left to bottom-right.
    Diagonal,
}

/// Background of a title card.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Background {
    /// A solid colour, `#RRGGBB`.
    Color {
        /// `#RRGGBB`.
        color: String,
    },
    /// A linear gradient.
    Gradient {
        /// `#RRGGBB` at the start.
        from: String,
        /// `#RRGGBB` at the end.
        to: String,
        /// Direction. Default `vertical`.
        #[serde(default)]
        direction: GradientDirection,
    },
    /// A still image, fitted like an image scene (motion applies).
    Image {
        /// Path relative to the input folder.
        path: String,
    },
}

/// How a source with another aspect ratio fills the canvas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Fit {
    /// Scale to cover the frame and crop the overflow.
    #[default]
    Cover,
    /// Scale to fit inside the frame, bars in black.
    Contain,
    /// Fit inside the frame over a blurred, cover-scaled copy of itself.
    BlurFill,
}

/// Ken Burns motion of a still image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Motion {
    /// The move. Default `none`.
    #[serde(default)]
    pub effect: MotionEffect,
    /// Largest zoom factor reached (zooms) or held (pans), 1.01..=2.0. Default 1.15.
    #[serde(default = "default_zoom")]
    pub zoom: f64,
    /// Speed curve. Default `ease-in-out`.
    #[serde(default)]
    pub easing: Easing,
}

fn default_zoom() -> f64 {
    1.15
}

impl Default for Motion {
    fn default() -> Self {
        Self {
            effect: MotionEffect::None,
            zoom: default_zoom(),
            easing: Easing::default(),
        }
    }
}

impl Motion {
    /// A motion with the default zoom and easing.
    pub fn new(effect: MotionEffect) -> Self {
        Self {
            effect,
            ..Self::default()
        }
    }

    fn is_none(&self) -> bool {
        *self == Self::default()
    }
}

/// Ken Burns moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum MotionEffect {
    /// Hold still.
    #[default]
    None,
    /// Zoom from 1 to `zoom` about the centre.
    ZoomIn,
    /// Zoom from `zoom` to 1 about the centre.
    ZoomOut,
    /// At `zoom`, move the view from the right edge to the left edge.
    PanLeft,
    /// At `zoom`, move the view from the left edge to the right edge.
    PanRight,
    /// At `zoom`, move the view from the bottom edge to the top edge.
    PanUp,
    /// At `zoom`, move the view from the top edge to the bottom edge.
    PanDown,
}

/// Speed curve of a motion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Easing {
    /// Constant speed.
    Linear,
    /// Smoothstep: starts and ends at rest.
    #[default]
    EaseInOut,
}

/// A transition from one scene into the next.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Transition {
    /// The effect. Default `cut`.
    #[serde(default)]
    pub kind: TransitionKind,
    /// Length in seconds, rounded to whole frames; ignored for `cut`. Default 0.5.
    #[serde(default = "default_transition_duration")]
    pub duration: f64,
}

fn default_transition_duration() -> f64 {
    0.5
}

impl Default for Transition {
    fn default() -> Self {
        Self {
            kind: TransitionKind::Cut,
            duration: default_transition_duration(),
        }
    }
}

impl Transition {
    /// A transition of `kind` lasting `duration` seconds.
    pub fn new(kind: TransitionKind, duration: f64) -> Self {
        Self { kind, duration }
    }
}

/// Transition effects. All but `cut` and `fade` overlap the two scenes for the transition's
/// duration (FFmpeg `xfade`); `fade` goes through black without overlap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum TransitionKind {
    /// Hard cut.
    #[default]
    Cut,
    /// Fade out to black over half the duration, fade in over the other half.
    Fade,
    /// Dissolve from one scene into the next.
    Crossfade,
    /// The next scene wipes in from the right, moving left.
    WipeLeft,
    /// The next scene wipes in from the left, moving right.
    WipeRight,
    /// The next scene wipes in from the bottom, moving up.
    WipeUp,
    /// The next scene wipes in from the top, moving down.
    WipeDown,
    /// Both scenes slide left.
    SlideLeft,
    /// Both scenes slide right.
    SlideRight,
    /// Both scenes slide up.
    SlideUp,
    /// Both scenes slide down.
    SlideDown,
    /// The next scene opens in a growing circle.
    CircleOpen,
}

impl TransitionKind {
    /// Returns the `xfade` transition name when the scenes overlap, `None` for `cut` and `fade`.
    pub fn xfade_name(self) -> Option<&'static str> {
        Some(match self {
            TransitionKind::Cut | TransitionKind::Fade => return None,
            TransitionKind::Crossfade => "fade",
            TransitionKind::WipeLeft => "wipeleft",
            TransitionKind::WipeRight => "wiperight",
            TransitionKind::WipeUp => "wipeup",
            TransitionKind::WipeDown => "wipedown",
            TransitionKind::SlideLeft => "slideleft",
            TransitionKind::SlideRight => "slideright",
            TransitionKind::SlideUp => "slideup",
            TransitionKind::SlideDown => "slidedown",
            TransitionKind::CircleOpen => "circleopen",
        })
    }
}

/// Where a box is placed on the canvas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Anchor {
    /// Top-left corner.
    TopLeft,
    /// Top edge, centred.
    Top,
    /// Top-right corner.
    TopRight,
    /// Left edge, centred vertically.
    Left,
    /// Centre.
    #[default]
    Center,
    /// Right edge, centred vertically.
    Right,
    /// Bottom-left corner.
    BottomLeft,
    /// Bottom edge, centred.
    Bottom,
    /// Bottom-right corner.
    BottomRight,
}

impl Anchor {
    /// Returns (column, row) in 0..=2: 0 left/top, 1 centre, 2 right/bottom.
    pub fn grid(self) -> (u8, u8) {
        match self {
            Anchor::TopLeft => (0, 0),
            Anchor::Top => (1, 0),
            Anchor::TopRight => (2, 0),
            Anchor::Left => (0, 1),
            Anchor::Center => (1, 1),
            Anchor::Right => (2, 1),
            Anchor::BottomLeft => (0, 2),
            Anchor::Bottom => (1, 2),
            Anchor::BottomRight => (2, 2),
        }
    }
}

/// Placement of an overlay: an anchor plus margins from the nearest edges, in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Position {
    /// Anchor point. Default `center`.
    #[serde(default)]
    pub anchor: Anchor,
    /// Horizontal distance from the anchored edge, pixels. Default 48.
    #[serde(default = "default_margin")]
    pub margin_x: u32,
    /// Vertical distance from the anchored edge, pixels. Default 48.
    #[serde(default = "default_margin")]
    pub margin_y: u32,
}

fn default_margin() -> u32 {
    48
}

impl Default for Position {
    fn default() -> Self {
        Self {
            anchor: Anchor::Center,
            margin_x: default_margin(),
            margin_y: default_margin(),
        }
    }
}

/// Font, size and colours of text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TextStyle {
    /// Font file: a path in the input folder, or a file name found in the system font folders.
    /// Default `DejaVuSans-Bold.ttf`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub font: Option<String>,
    /// Font size in pixels (em height); default 6% of the canvas's shorter side.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u32>,
    /// Text colour, `#RRGGBB` or `#RRGGBBAA`. Default white.
    #[serde(default = "default_white")]
    pub color: String,
    /// Outline colour. Default black.
    #[serde(default = "default_black")]
    pub outline_color: String,
    /// Outline width in pixels. Default 3.
    #[serde(default = "default_outline")]
    pub outline: f64,
    /// Opaque box behind the text in this colour (`#RRGGBBAA` for translucency); none by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub box_color: Option<String>,
}

fn default_white() -> String {
    "#FFFFFF".into()
}
fn default_black() -> String {
    "#000000".into()
}
fn default_outline() -> f64 {
    3.0
}

impl Default for TextStyle {
    fn default() -> Self {
        Self {
            font: None,
            size: None,
            color: default_white(),
            outline_color: default_black(),
            outline: default_outline(),
            box_color: None,
        }
    }
}

/// A timed overlay on top of the picture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Overlay {
    /// Text.
    Text {
        /// The text; `\n` breaks lines, long lines wrap.
        text: String,
        /// Font, size, colours.
        #[serde(default)]
        style: TextStyle,
        /// Placement.
        #[serde(default)]
        position: Position,
        /// Start, seconds (from the scene's start, or the video's start for timeline overlays).
        #[serde(default)]
        start: f64,
        /// End, seconds; default the end of the scene (or of the video).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        end: Option<f64>,
    },
    /// An image such as a logo (PNG with alpha works).
    Image {
        /// Path relative to the input folder.
        path: String,
        /// Placement.
        #[serde(default)]
        position: Position,
        /// Width on the canvas in pixels (height keeps the aspect); default the source width.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        width: Option<u32>,
        /// Opacity 0..=1. Default 1.
        #[serde(default = "default_opacity")]
        opacity: f64,
        /// Start, seconds.
        #[serde(default)]
        start: f64,
        /// End, seconds; default the end of the scene (or of the video).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        end: Option<f64>,
    },
}

fn default_opacity() -> f64 {
    1.0
}

impl Overlay {
    /// Returns `(start, end)` in seconds as written.
    pub fn span(&self) -> (f64, Option<f64>) {
        match self {
            Overlay::Text { start, end, .. } | Overlay::Image { start, end, .. } => (*start, *end),
        }
    }
}

/// Voice, music and effect tracks.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AudioTracks {
    /// Narration clips; music ducks under them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub voice: Vec<AudioClip>,
    /// A music bed under the whole video.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub music: Option<MusicBed>,
    /// Sound effects; they do not duck the music.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub effects: Vec<AudioClip>,
    /// How the music ducks under the voice.
    #[serde(default)]
    pub ducking: Ducking,
}

/// An audio clip placed on the timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AudioClip {
    /// Path relative to the input folder (WAV, FLAC, Ogg, MP3, M4A).
    pub path: String,
    /// Timeline time where the clip starts, seconds.
    #[serde(default)]
    pub start: f64,
    /// Gain in dB. Default 0.
    #[serde(default)]
    pub gain_db: f64,
    /// Where to start in the source, seconds. Default 0.
    #[serde(default)]
    pub source_start: f64,
    /// Where to stop in the source, seconds; default its end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_end: Option<f64>,
}

impl AudioClip {
    /// A clip of `path` starting at `start` seconds.
    pub fn at(path: impl Into<String>, start: f64) -> Self {
        Self {
            path: path.into(),
            start,
            gain_db: 0.0,
            source_start: 0.0,
            source_end: None,
        }
    }
}

/// A music bed laid under the whole video.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MusicBed {
    /// Path relative to the input folder.
    pub path: String,
    /// Gain in dB before ducking. Default -8.
    #[serde(default = "default_music_gain")]
    pub gain_db: f64,
    /// Loop the track when it is shorter than the video (else silence follows). Default true.
    #[serde(default = "default_true")]
    pub r#loop: bool,
    /// Fade-in length, seconds. Default 1.
    #[serde(default = "default_fade_in")]
    pub fade_in: f64,
    /// Fade-out length at the end of the video, seconds. Default 2.
    #[serde(default = "default_fade_out")]
    pub fade_out: f64,
    /// Credit line the licence asks for (CC-BY); copied into the render report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credit: Option<String>,
}

fn default_music_gain() -> f64 {
    -8.0
}
fn default_true() -> bool {
    true
}
fn default_fade_in() -> f64 {
    1.0
}
fn default_fade_out() -> f64 {
    2.0
}

impl MusicBed {
    /// A bed of `path` with default gain, looping and fades.
    pub fn new(path: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            gain_db: default_music_gain(),
            r#loop: true,
            fade_in: default_fade_in(),
            fade_out: default_fade_out(),
            credit: None,
        }
    }
}

/// Sidechain compression of the music keyed by the voice (FFmpeg `sidechaincompress`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Ducking {
    /// Duck at all. Default true.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Voice level above which the music is compressed, dBFS. Default -40.
    #[serde(default = "default_duck_threshold")]
    pub threshold_db: f64,
    /// Compression ratio, 1..=20. Default 20.
    #[serde(default = "default_duck_ratio")]
    pub ratio: f64,
    /// Attack, milliseconds. Default 20.
    #[serde(default = "default_duck_attack")]
    pub attack_ms: f64,
    /// Release, milliseconds. Default 600.
    #[serde(default = "default_duck_release")]
    pub release_ms: f64,
}

fn default_duck_threshold() -> f64 {
    -40.0
}
fn default_duck_ratio() -> f64 {
    20.0
}
fn default_duck_attack() -> f64 {
    20.0
}
fn default_duck_release() -> f64 {
    600.0
}

impl Default for Ducking {
    fn default() -> Self {
        Self {
            enabled: true,
            threshold_db: default_duck_threshold(),
            ratio: default_duck_ratio(),
            attack_ms: default_duck_attack(),
            release_ms: default_duck_release(),
        }
    }
}

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

/// x264 speed presets, fastest first.
///
/// `ultrafast` is not offered: it turns off CABAC and 8×8 transforms, so its streams are
/// Constrained Baseline rather than the High profile Studio delivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum EncoderPreset {
    Superfast,
    #[default]
    Veryfast,
    Faster,
    Fast,
    Medium,
    Slow,
    Slower,
    Veryslow,
}

impl EncoderPreset {
    /// Returns the name libx264 takes.
    pub fn as_str(self) -> &'static str {
        match self {
            EncoderPreset::Superfast => "superfast",
            EncoderPreset::Veryfast => "veryfast",
            EncoderPreset::Faster => "faster",
            EncoderPreset::Fast => "fast",
            EncoderPreset::Medium => "medium",
            EncoderPreset::Slow => "slow",
            EncoderPreset::Slower => "slower",
            EncoderPreset::Veryslow => "veryslow",
        }
    }
}

/// Encoder, loudness, size cap and thumbnail settings.
///
/// Video is always H.264 High, yuv420p, BT.709, in MP4 with `+faststart`; audio AAC-LC 48 kHz
/// stereo.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OutputSettings {
    /// x264 constant rate factor, 0..=51 (lower is better). Default 21.
    #[serde(default = "default_crf")]
    pub crf: u8,
    /// x264 preset. Default `veryfast`.
    #[serde(default)]
    pub preset: EncoderPreset,
    /// Encoder threads per FFmpeg process; default 0 (FFmpeg picks).
    #[serde(default)]
    pub threads: u32,
    /// AAC bitrate, kbit/s, 64..=512. Default 192.
    #[serde(default = "default_audio_bitrate")]
    pub audio_bitrate_kbps: u32,
    /// Integrated loudness target, LUFS (EBU R 128 / ITU-R BS.1770). Default -14, the level
    /// YouTube, Spotify and TikTok normalise to.
    #[serde(default = "default_target_lufs")]
    pub loudness_lufs: f64,
    /// True-peak ceiling, dBTP. Default -1.
    #[serde(default = "default_true_peak")]
    pub true_peak_dbtp: f64,
    /// Largest allowed file size in bytes; the video is re-encoded at a higher CRF until it fits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<u64>,
    /// Which frame becomes `thumbnail.jpg`.
    #[serde(default)]
    pub thumbnail: ThumbnailSpec,
}

fn default_crf() -> u8 {
    21
}
fn default_audio_bitrate() -> u32 {
    192
}
fn default_target_lufs() -> f64 {
    -14.0
}
fn default_true_peak() -> f64 {
    -1.0
}

impl Default for OutputSettings {
    fn default() -> Self {
        Self {
            crf: default_crf(),
            preset: EncoderPreset::default(),
            threads: 0,
            audio_bitrate_kbps: default_audio_bitrate(),
            loudness_lufs: default_target_lufs(),
            true_peak_dbtp: default_true_peak(),
            max_bytes: None,
            thumbnail: ThumbnailSpec::default(),
        }
    }
}

/// Which frame becomes the thumbnail.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ThumbnailSpec {
    /// Scene index (0-based). Default 0.
    #[serde(default)]
    pub scene: usize,
    /// Seconds into the scene; default its middle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<f64>,
}
