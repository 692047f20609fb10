//! Text on screen and beside the video: fonts, line wrapping, ASS scripts, SRT and WebVTT.
//!
//! All burned text (captions, title cards, text overlays) is drawn by libass from one ASS script
//! per segment, so outline, box, alignment and font handling are the same everywhere. Lines are
//! wrapped here, with the font's real glyph advances, so `max_lines` can be honoured.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::color::parse_color;
use crate::error::MediaError;
use crate::ffmpeg::Sandbox;
use crate::timeline::{Anchor, CaptionPosition, Cue, Position, SafeMargins, TextStyle};

/// Font used when a style names none (Debian package `fonts-dejavu-core`).
pub const DEFAULT_FONT: &str = "DejaVuSans-Bold.ttf";

/// System folders searched for fonts named by file name.
pub const SYSTEM_FONT_DIRS: &[&str] = &["/usr/share/fonts", "/usr/local/share/fonts"];

/// A font copied into the work folder, with what is needed to measure and select it.
#[derive(Debug, Clone)]
pub struct Font {
    /// Content hash (hex), also the file's name in `work/fonts`.
    pub hash: String,
    /// Family name libass selects it by.
    pub family: String,
    /// True when the face is bold (weight ≥ 600).
    pub bold: bool,
    data: std::sync::Arc<Vec<u8>>,
}

impl Font {
    /// Returns the width of `text` in pixels at ASS font size `size` (libass sizes a font by
    /// its ascender-to-descender height).
    pub fn text_width(&self, text: &str, size: f64) -> f64 {
        let Ok(face) = ttf_parser::Face::parse(&self.data, 0) else {
            return text.chars().count() as f64 * size * 0.5;
        };
        let height = (face.ascender() as f64 - face.descender() as f64).max(1.0);
        let units: f64 = text
            .chars()
            .map(|c| {
                face.glyph_index(c)
                    .and_then(|g| face.glyph_hor_advance(g))
                    .map(f64::from)
                    .unwrap_or(height * 0.5)
            })
            .sum();
        units * size / height
    }
}

/// Fonts of one render, loaded once each.
#[derive(Debug, Default)]
pub struct FontBook {
    fonts: HashMap<String, Font>,
}

impl FontBook {
    /// Resolves `spec` (a path in the input folder, or a file name in the system font folders;
    /// `None` means [`DEFAULT_FONT`]), copies it into `work/fonts/` and returns it.
    ///
    /// Errors: [`MediaError::Input`] when the font cannot be found or is not a TrueType/OpenType
    /// font; sandbox errors for paths outside the input folder.
    pub fn load(&mut self, sandbox: &Sandbox, spec: Option<&str>) -> Result<Font, MediaError> {
        let spec = spec.unwrap_or(DEFAULT_FONT);
        if let Some(font) = self.fonts.get(spec) {
            return Ok(font.clone());
        }
        let candidate = sandbox.input_path(spec);
        let source = if candidate.exists() || spec.contains('/') {
            sandbox.check_read(&candidate)?
        } else {
            find_system_font(spec).ok_or_else(|| MediaError::Input {
                path: PathBuf::from(spec),
                problem: format!(
                    "font not found in the input folder or in {}; give a .ttf/.otf path inside the input folder, or install the font (the default needs `apt-get install fonts-dejavu-core`)",
                    SYSTEM_FONT_DIRS.join(", ")
                ),
            })?
        };
        let data = std::fs::read(&source).map_err(|e| MediaError::io(&source, e))?;
        let face = ttf_parser::Face::parse(&data, 0).map_err(|e| MediaError::Input {
            path: PathBuf::from(spec),
            problem: format!("is not a TrueType/OpenType font: {e}"),
        })?;
        let family = face
            .names()
            .into_iter()
            .filter(|n| n.name_id == ttf_parser::name_id::FAMILY && n.is_unicode())
            .find_map(|n| n.to_string())
            .ok_or_else(|| MediaError::Input {
                path: PathBuf::from(spec),
                problem: "font has no family name".into(),
            })?;
        let bold = face.weight().to_number() >= 600;
        let hash = hex::encode(&Sha256::digest(&data)[..12]);
        let dir = sandbox.work.join("fonts");
        std::fs::create_dir_all(&dir).map_err(|e| MediaError::io(&dir, e))?;
        let ext = source
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("ttf")
            .to_ascii_lowercase();
        let target = dir.join(format!("{hash}.{ext}"));
        if !target.exists() {
            crate::fs::write_atomic(&target, &data).map_err(|e| MediaError::io(&target, e))?;
        }
        let font = Font {
            hash,
            family,
            bold,
            data: std::sync::Arc::new(data),
        };
        self.fonts.insert(spec.to_string(), font.clone());
        Ok(font)
    }
}

fn find_system_font(name: &str) -> Option<PathBuf> {
    fn walk(dir: &Path, name: &str, depth: u32) -> Option<PathBuf> {
        if depth > 6 {
            return None;
        }
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .ok()?
            .flatten()
            .map(|e| e.path())
            .collect();
        entries.sort();
        for path in &entries {
            if path.is_file()
                && path
                    .file_name()
                    .is_some_and(|f| f.to_string_lossy().eq_ignore_ascii_case(name))
            {
                return Some(path.clone());
            }
        }
        entries
            .iter()
            .filter(|p| p.is_dir())
            .find_map(|p| walk(p, name, depth + 1))
    }
    SYSTEM_FONT_DIRS
        .iter()
        .find_map(|d| walk(Path::new(d), name, 0))
}

/// Breaks `text` into lines no wider than `max_width` pixels; `\n` forces a break. A single
/// word wider than the limit gets a line of its own.
pub fn wrap(font: &Font, text: &str, size: f64, max_width: f64) -> Vec<String> {
    let mut lines = Vec::new();
    for paragraph in text.split('\n') {
        let mut line = String::new();
        for word in paragraph.split_whitespace() {
            let trial = if line.is_empty() {
                word.to_string()
            } else {
                format!("{line} {word}")
            };
            if !line.is_empty() && font.text_width(&trial, size) > max_width {
                lines.push(std::mem::take(&mut line));
                line = word.to_string();
            } else {
                line = trial;
            }
        }
        if !line.is_empty() {
            lines.push(line);
        }
    }
    lines
}

/// Splits a cue whose wrapped text needs more than `max_lines` lines into consecutive parts of
/// at most `max_lines` lines, timed in proportion to their characters. Returns
/// `(start, end, lines)` in seconds.
pub fn split_cue(cue: &Cue, lines: Vec<String>, max_lines: usize) -> Vec<(f64, f64, Vec<String>)> {
    let max_lines = max_lines.max(1);
    if lines.len() <= max_lines {
        return vec![(cue.start, cue.end, lines)];
    }
    let chunks: Vec<Vec<String>> = lines.chunks(max_lines).map(|c| c.to_vec()).collect();
    let weight = |c: &Vec<String>| c.iter().map(|l| l.chars().count().max(1)).sum::<usize>() as f64;
    let total: f64 = chunks.iter().map(weight).sum();
    let mut t = cue.start;
    let span = cue.end - cue.start;
    let n = chunks.len();
    chunks
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            let end = if i + 1 == n {
                cue.end
            } else {
                t + span * weight(&c) / total
            };
            let part = (t, end, c);
            t = end;
            part
        })
        .collect()
}

/// Formats `#RRGGBB[AA]` as an ASS colour `&HAABBGGRR` (ASS alpha 00 is opaque).
fn ass_color(color: &str) -> String {
    let (r, g, b, a) = parse_color(color).unwrap_or((255, 255, 255, 255));
    format!("&H{:02X}{:02X}{:02X}{:02X}", 255 - a, b, g, r)
}

/// Makes user text safe inside an ASS event: braces are escaped, backslashes (which start ASS
/// override codes) become U+2216, and newlines become `\N`.
pub fn ass_escape(text: &str) -> String {
    text.replace('\\', "\u{2216}")
        .replace('{', "\\{")
        .replace('}', "\\}")
}

fn ass_time(seconds: f64) -> String {
    let cs = (seconds.max(0.0) * 100.0).round() as u64;
    format!(
        "{}:{:02}:{:02}.{:02}",
        cs / 360_000,
        (cs / 6000) % 60,
        (cs / 100) % 60,
        cs % 100
    )
}

/// A piece of burned text, timed in segment-local seconds.
#[derive(Debug, Clone)]
pub struct TextEvent {
    /// First second it shows.
    pub start: f64,
    /// Second it stops showing.
    pub end: f64,
    /// Wrapped lines.
    pub lines: Vec<String>,
    /// Look.
    pub style: ResolvedStyle,
    /// Where.
    pub place: Placement,
    /// Karaoke: each word's start (same clock as `start`) and the colour it turns then.
    pub karaoke: Option<Karaoke>,
}

/// Words lighting up as they are spoken.
#[derive(Debug, Clone, PartialEq)]
pub struct Karaoke {
    /// Colour of a spoken word, `#RRGGBB[AA]`.
    pub highlight: String,
    /// Start of each word of the event's lines, in order, seconds (same clock as the event).
    pub word_starts: Vec<f64>,
}

impl Karaoke {
    /// The same words on a clock `by` seconds later (a segment starting at `by`).
    pub fn shifted(&self, by: f64) -> Karaoke {
        Karaoke {
            highlight: self.highlight.clone(),
            word_starts: self.word_starts.iter().map(|t| t - by).collect(),
        }
    }
}

/// `lines` with ASS karaoke tags (`{\kNN}`, centiseconds) before each word so that word `i`
/// lights up `word_starts[i] - start` seconds into the event (at once for words already
/// spoken). The lines' words must number `word_starts.len()`; otherwise the lines are returned
/// plain.
pub fn karaoke_lines(lines: &[String], start: f64, end: f64, word_starts: &[f64]) -> String {
    let plain = || {
        lines
            .iter()
            .map(|l| ass_escape(l))
            .collect::<Vec<_>>()
            .join("\\N")
    };
    let count: usize = lines.iter().map(|l| l.split_whitespace().count()).sum();
    if count != word_starts.len() || count == 0 {
        return plain();
    }
    let span = (end - start).max(0.0);
    // Centiseconds from the event's start at which each word lights, rising, rounded once so
    // the durations do not drift.
    let mut at: Vec<u64> = Vec::with_capacity(count);
    for t in word_starts {
        let cs = ((t - start).clamp(0.0, span) * 100.0).round() as u64;
        at.push(cs.max(at.last().copied().unwrap_or(0)));
    }
    let mut out = String::new();
    if at[0] > 0 {
        out.push_str(&format!("{{\\k{}}}", at[0]));
    }
    let mut i = 0;
    for (l, line) in lines.iter().enumerate() {
        if l > 0 {
            out.push_str("\\N");
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        for (w, word) in words.iter().enumerate() {
            let next = at
                .get(i + 1)
                .copied()
                .unwrap_or((span * 100.0).round() as u64);
            out.push_str(&format!(
                "{{\\k{}}}{}",
                next.saturating_sub(at[i]),
                ass_escape(word)
            ));
            if w + 1 < words.len() {
                out.push(' ');
            }
            i += 1;
        }
    }
    out
}

/// Placement of a text event.
#[derive(Debug, Clone, Copy)]
pub enum Placement {
    /// Anchored at a point (overlays, titles).
    At(Position),
    /// Inside caption margins.
    Caption(CaptionPosition, SafeMargins),
}

/// A text style with its font loaded and its size decided.
#[derive(Debug, Clone)]
pub struct ResolvedStyle {
    /// The font.
    pub font: Font,
    /// ASS font size, pixels.
    pub size: u32,
    /// Source style (colours, outline, box).
    pub style: TextStyle,
}

/// Builds an ASS script for a `width`×`height` canvas from `events`.
pub fn ass_script(width: u32, height: u32, events: &[TextEvent]) -> String {
    let mut styles: Vec<String> = Vec::new();
    let mut lines = Vec::new();
    let mut fonts: Vec<&str> = events.iter().map(|e| e.style.font.hash.as_str()).collect();
    fonts.sort_unstable();
    fonts.dedup();
    for e in events {
        let s = &e.style;
        let (border_style, outline_color, outline) = match &s.style.box_color {
            Some(box_color) => (3, ass_color(box_color), (s.size as f64 * 0.18).round()),
            None => (1, ass_color(&s.style.outline_color), s.style.outline),
        };
        let (align, ml, mr, mv) = match e.place {
            Placement::Caption(pos, m) => match pos {
                CaptionPosition::Bottom => (2, m.left, m.right, m.bottom),
                CaptionPosition::Top => (8, m.left, m.right, m.top),
                CaptionPosition::Center => (5, m.left, m.right, 0),
            },
            Placement::At(_) => (5, 0, 0, 0),
        };
        // Karaoke: a word is drawn in the secondary colour until its time, then in the primary.
        let (primary, secondary) = match &e.karaoke {
            Some(k) => (ass_color(&k.highlight), ass_color(&s.style.color)),
            None => (ass_color(&s.style.color), "&H000000FF".to_owned()),
        };
        let style = format!(
            "{},{},{primary},{secondary},{},&H00000000,{},0,0,0,100,100,0,0,{},{},0,{},{},{},{},1",
            s.font.family,
            s.size,
            outline_color,
            if s.font.bold { -1 } else { 0 },
            border_style,
            outline,
            align,
            ml,
            mr,
            mv
        );
        let index = match styles.iter().position(|x| *x == style) {
            Some(i) => i,
            None => {
                styles.push(style);
                styles.len() - 1
            }
        };
        let text = match &e.karaoke {
            Some(k) => karaoke_lines(&e.lines, e.start, e.end, &k.word_starts),
            None => e
                .lines
                .iter()
                .map(|l| ass_escape(l))
                .collect::<Vec<_>>()
                .join("\\N"),
        };
        let prefix = match e.place {
            Placement::At(p) => {
                let (col, row) = p.anchor.grid();
                let an = match row {
                    0 => 7 + col,
                    1 => 4 + col,
                    _ => 1 + col,
                };
                let x = match col {
                    0 => p.margin_x as i64,
                    1 => width as i64 / 2,
                    _ => width as i64 - p.margin_x as i64,
                };
                let y = match row {
                    0 => p.margin_y as i64,
                    1 => height as i64 / 2,
                    _ => height as i64 - p.margin_y as i64,
                };
                format!("{{\\an{an}\\pos({x},{y})}}")
            }
            Placement::Caption(..) => String::new(),
        };
        lines.push(format!(
            "Dialogue: 0,{},{},S{index},,0,0,0,,{prefix}{text}",
            ass_time(e.start),
            ass_time(e.end)
        ));
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "[Script Info]\n; Studio text layer; fonts {}",
        fonts.join(",")
    );
    let _ = writeln!(out, "ScriptType: v4.00+\nPlayResX: {width}\nPlayResY: {height}\nWrapStyle: 2\nScaledBorderAndShadow: yes\nYCbCr Matrix: TV.709\n");
    let _ = writeln!(out, "[V4+ Styles]\nFormat: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding");
    for (i, s) in styles.iter().enumerate() {
        let _ = writeln!(out, "Style: S{i},{s}");
    }
    let _ = writeln!(out, "\n[Events]\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text");
    for l in lines {
        let _ = writeln!(out, "{l}");
    }
    out
}

/// Anchored text is wrapped to the canvas width minus twice its horizontal margin.
pub fn anchored_width(width: u32, position: &Position) -> f64 {
    let margin = if position.anchor == Anchor::Center {
        width / 10
    } else {
        position.margin_x
    };
    (width as f64 - 2.0 * margin as f64).max(32.0)
}

fn clock(seconds: f64, sep: char) -> String {
    let ms = (seconds.max(0.0) * 1000.0).round() as u64;
    format!(
        "{:02}:{:02}:{:02}{sep}{:03}",
        ms / 3_600_000,
        (ms / 60_000) % 60,
        (ms / 1000) % 60,
        ms % 1000
    )
}

/// Returns the cues as SubRip (SRT) text.
pub fn srt(cues: &[Cue]) -> String {
    let mut out = String::new();
    for (i, cue) in cues.iter().enumerate() {
        let _ = write!(
            out,
            "{}\n{} --> {}\n{}\n\n",
            i + 1,
            clock(cue.start, ','),
            clock(cue.end, ','),
            cue.text.trim()
        );
    }
    out
}

/// Returns the cues as WebVTT text (W3C WebVTT), with `&`, `<` and `>` escaped.
pub fn webvtt(cues: &[Cue]) -> String {
    let mut out = String::from("WEBVTT\n\n");
    for cue in cues {
        let text = cue
            .text
            .trim()
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;");
        let _ = write!(
            out,
            "{} --> {}\n{}\n\n",
            clock(cue.start, '.'),
            clock(cue.end, '.'),
            text
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn karaoke_tags_light_each_word_at_its_time() {
        let lines = vec!["The Hare ran".to_string(), "off {fast}".to_string()];
        let tagged = karaoke_lines(&lines, 10.0, 12.0, &[10.2, 10.5, 10.9, 11.0, 11.5]);
        assert_eq!(
            tagged,
            "{\\k20}{\\k30}The {\\k40}Hare {\\k10}ran\\N{\\k50}off {\\k50}\\{fast\\}"
        );
        // Words spoken before the event (a segment that starts mid-cue) light at once.
        assert_eq!(
            karaoke_lines(&["a b".into()], 5.0, 6.0, &[4.0, 5.5]),
            "{\\k50}a {\\k50}b"
        );
        // Times that do not match the words: plain lines.
        assert_eq!(karaoke_lines(&["a b".into()], 0.0, 1.0, &[0.1]), "a b");
    }

    #[test]
    fn subtitle_files_keep_cues_in_order_with_times() {
        let cues = vec![
            Cue {
                start: 0.0,
                end: 1.5,
                text: "Slow & steady".into(),
                word_starts: Vec::new(),
            },
            Cue {
                start: 61.25,
                end: 3725.007,
                text: "wins <the> race".into(),
                word_starts: Vec::new(),
            },
        ];
        assert_eq!(srt(&cues), "1\n00:00:00,000 --> 00:00:01,500\nSlow & steady\n\n2\n00:01:01,250 --> 01:02:05,007\nwins <the> race\n\n");
        assert!(webvtt(&cues)
            .starts_with("WEBVTT\n\n00:00:00.000 --> 00:00:01.500\nSlow &amp; steady\n"));
        assert!(webvtt(&cues).contains("wins &lt;the&gt; race"));
    }

    #[test]
    fn long_cues_split_in_proportion() {
        let cue = Cue {
            start: 10.0,
            end: 16.0,
            text: String::new(),
            word_starts: Vec::new(),
        };
        let lines = vec![
            "aaaa".to_string(),
            "aaaa".into(),
            "aaaa".into(),
            "aaaa".into(),
            "aaaa".into(),
            "aaaa".into(),
        ];
        let parts = split_cue(&cue, lines, 2);
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[0].0, 10.0);
        assert!((parts[1].0 - 12.0).abs() < 1e-9);
        assert_eq!(parts[2].1, 16.0);
    }

    #[test]
    fn ass_text_is_escaped_and_colours_converted() {
        assert_eq!(ass_escape(r"a{\b1}b"), "a\\{\u{2216}b1\\}b");
        assert_eq!(ass_color("#FF8000"), "&H000080FF");
        assert_eq!(ass_color("#00000080"), "&H7F000000");
        assert_eq!(ass_time(3723.456), "1:02:03.46");
    }
}
