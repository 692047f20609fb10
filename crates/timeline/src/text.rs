//! Placed text and images: [`Anchor`] and [`Position`] on the canvas, [`TextStyle`], and the
//! timed [`Overlay`]s of a scene or of the whole timeline.

use super::*;

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
