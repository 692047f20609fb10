//! Scenes: what each one shows ([`Visual`]), how it moves ([`Motion`]) and how it hands
//! over to the next ([`Transition`]).

use super::*;

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
