//! Style presets: fonts, palette, caption look, transition, music mood and scene pacing, read
//! from TOML data files (`crates/style/styles/*.toml`, built into the binary, or any `.toml`
//! path given as the style name).

use std::path::Path;

use serde::{Deserialize, Serialize};
use studio_timeline::{Fit, MotionEffect, TransitionKind};

/// The narrator a video gets when nobody chooses one: espeak-ng's `en-us` voice at 165 words
/// per minute (the rate `ESPEAK_SECONDS_PER_LETTER_WPM` in `studio-pipeline` was measured at),
/// pitch 50 (espeak-ng's own default). The one home of these numbers: the providers'
/// `Voice::default`, the project service's settings and the gateway's REST defaults read them.
pub mod narrator {
    /// Voice name.
    pub const VOICE: &str = "en-us";
    /// Speaking rate, words per minute.
    pub const RATE_WPM: u32 = 165;
    /// Pitch, 0–99.
    pub const PITCH: u32 = 50;
}

/// The built-in presets, as `(name, TOML)`.
pub const BUILT_IN: &[(&str, &str)] = &[
    ("storybook", include_str!("../styles/storybook.toml")),
    ("bold", include_str!("../styles/bold.toml")),
    ("documentary", include_str!("../styles/documentary.toml")),
];

/// A style preset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Style {
    /// Name.
    pub name: String,
    /// One line saying what it looks like.
    pub description: String,
    /// Colours.
    pub palette: Palette,
    /// Font files (a file in the system font folders, or a path).
    pub fonts: Fonts,
    /// Burned captions.
    pub captions: CaptionLook,
    /// The per-scene heading overlay.
    pub heading: HeadingLook,
    /// Transition between scenes.
    pub transition: TransitionLook,
    /// Music bed.
    pub music: MusicLook,
    /// Pacing and motion.
    pub scenes: ScenePacing,
    /// How picture models are asked for this look. Optional in a style file.
    #[serde(default)]
    pub pictures: PictureLook,
}

/// How picture models (`openai-images`, `stability`, …) are asked for a style's look.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PictureLook {
    /// Words put before every picture prompt (`Watercolour storybook illustration, soft
    /// light`), so every scene is drawn the same way. Default none.
    pub prompt_prefix: String,
    /// What pictures should not show, for models that take a negative prompt. Default none.
    pub negative_prompt: String,
    /// Whether each scene's picture is set in motion by the clip providers
    /// (`providers.clip`): the scene then shows the clip instead of the still. Default false
    /// (clips cost far more than pictures; `studio render --clips` turns them on for one run).
    pub clips: bool,
    /// Words put before every clip's motion prompt (`Slow gentle camera push-in, subtle
    /// movement`). Default none.
    pub motion_prefix: String,
}

/// Colours, `#RRGGBB`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Palette {
    /// Two background colours (gradient start and end).
    pub background: [String; 2],
    /// Accent colours for generated cards (at least one).
    pub accents: Vec<String>,
    /// Text colour.
    pub text: String,
    /// Text outline colour.
    pub outline: String,
}

/// Font files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fonts {
    /// Intro and end cards.
    pub title: String,
    /// Scene headings.
    pub heading: String,
    /// Captions.
    pub captions: String,
}

/// Burned-caption look.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaptionLook {
    /// Font size as a fraction of the canvas's shorter side.
    pub size: f64,
    /// Box colour behind the text, `#RRGGBBAA`.
    pub r#box: String,
    /// Most lines at once.
    pub max_lines: u32,
    /// Karaoke highlight, `#RRGGBB`: each word lights up in this colour as it is spoken, where
    /// the voice times words (Piper, ElevenLabs). Absent: plain captions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub highlight: Option<String>,
}

/// Scene-heading look.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeadingLook {
    /// Font size as a fraction of the canvas's shorter side.
    pub size: f64,
}

/// Transition between scenes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransitionLook {
    /// Kind (`crossfade`, `slide-left`, `fade`, …).
    pub kind: TransitionKind,
    /// Length, seconds.
    pub duration: f64,
}

/// Music bed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MusicLook {
    /// Mood for generated music (`calm`, `playful`, `wonder`, `tense`).
    pub mood: String,
    /// Gain before ducking, dB.
    pub gain_db: f64,
}

/// Pacing and motion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenePacing {
    /// Narration per scene to aim for, seconds.
    pub seconds: f64,
    /// Intro card, seconds.
    pub intro_seconds: f64,
    /// Shortest end card, seconds.
    pub outro_seconds: f64,
    /// Ken Burns moves, used in turn.
    pub motion: Vec<MotionEffect>,
    /// Ken Burns zoom factor.
    pub zoom: f64,
    /// How pictures of another aspect fill the frame.
    pub fit: Fit,
}

/// Why a style could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum StyleError {
    /// No built-in style has this name and no such file exists.
    #[error("unknown style \"{name}\"; built-in styles: {known}, or give a path to a .toml file")]
    Unknown {
        /// The name asked for.
        name: String,
        /// Built-in names.
        known: String,
    },
    /// The TOML does not parse or a value is out of range.
    #[error("style {name}: {message}")]
    Invalid {
        /// Style name or path.
        name: String,
        /// What is wrong, with the key.
        message: String,
    },
}

impl Style {
    /// Loads the built-in style `name`, or the TOML file at `name` when it ends in `.toml`.
    ///
    /// Errors: [`StyleError::Unknown`] for a name that is neither; [`StyleError::Invalid`] for
    /// TOML that does not parse or values out of range.
    pub fn load(name: &str) -> Result<Self, StyleError> {
        let (label, text) = if name.ends_with(".toml") {
            let text =
                std::fs::read_to_string(Path::new(name)).map_err(|e| StyleError::Invalid {
                    name: name.into(),
                    message: format!("cannot be read: {e}"),
                })?;
            (name.to_string(), text)
        } else {
            let (_, text) = BUILT_IN
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .ok_or_else(|| StyleError::Unknown {
                    name: name.into(),
                    known: BUILT_IN
                        .iter()
                        .map(|(n, _)| *n)
                        .collect::<Vec<_>>()
                        .join(", "),
                })?;
            (name.to_string(), text.to_string())
        };
        Style::parse(&label, &text)
    }

    /// Parses and checks a style document; `label` names it in errors.
    ///
    /// Errors: [`StyleError::Invalid`] for TOML that does not parse or values out of range.
    pub fn parse(label: &str, text: &str) -> Result<Self, StyleError> {
        let label = label.to_string();
        let style: Style = toml::from_str(text).map_err(|e| StyleError::Invalid {
            name: label.clone(),
            message: e.message().to_string()
                + &e.span()
                    .map(|s| format!(" (at byte {})", s.start))
                    .unwrap_or_default(),
        })?;
        style.check().map_err(|message| StyleError::Invalid {
            name: label,
            message,
        })?;
        Ok(style)
    }

    fn check(&self) -> Result<(), String> {
        let colour = |key: &str, c: &str, alpha: bool| {
            let h = c.trim_start_matches('#');
            let ok = c.starts_with('#')
                && (h.len() == 6 || (alpha && h.len() == 8))
                && h.chars().all(|c| c.is_ascii_hexdigit());
            if ok {
                Ok(())
            } else {
                Err(format!("{key} = \"{c}\" is not a #RRGGBB colour"))
            }
        };
        for c in &self.palette.background {
            colour("palette.background", c, false)?;
        }
        if self.palette.accents.is_empty() {
            return Err("palette.accents needs at least one colour".into());
        }
        for c in &self.palette.accents {
            colour("palette.accents", c, false)?;
        }
        colour("palette.text", &self.palette.text, false)?;
        colour("palette.outline", &self.palette.outline, false)?;
        colour("captions.box", &self.captions.r#box, true)?;
        if let Some(h) = &self.captions.highlight {
            colour("captions.highlight", h, false)?;
        }
        let range = |key: &str, v: f64, lo: f64, hi: f64| {
            if v.is_finite() && v >= lo && v <= hi {
                Ok(())
            } else {
                Err(format!("{key} = {v} is outside {lo}..={hi}"))
            }
        };
        range("captions.size", self.captions.size, 0.01, 0.2)?;
        range("heading.size", self.heading.size, 0.01, 0.2)?;
        range("transition.duration", self.transition.duration, 0.0, 3.0)?;
        range("scenes.seconds", self.scenes.seconds, 2.0, 60.0)?;
        range("scenes.intro_seconds", self.scenes.intro_seconds, 1.0, 15.0)?;
        range("scenes.outro_seconds", self.scenes.outro_seconds, 1.0, 15.0)?;
        range("scenes.zoom", self.scenes.zoom, 1.01, 2.0)?;
        range("music.gain_db", self.music.gain_db, -40.0, 6.0)?;
        if !(1..=4).contains(&self.captions.max_lines) {
            return Err("captions.max_lines must be 1..=4".into());
        }
        if self.scenes.motion.is_empty() {
            return Err("scenes.motion needs at least one move".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_styles_load() {
        for (name, _) in BUILT_IN {
            let s = Style::load(name).unwrap();
            assert_eq!(&s.name, name);
        }
        assert!(matches!(
            Style::load("neon"),
            Err(StyleError::Unknown { .. })
        ));
    }

    #[test]
    fn bad_values_name_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.toml");
        let text = BUILT_IN[0].1.replace("zoom = 1.18", "zoom = 7.0");
        std::fs::write(&path, text).unwrap();
        let e = Style::load(path.to_str().unwrap()).unwrap_err().to_string();
        assert!(e.contains("scenes.zoom"), "{e}");
    }
}
