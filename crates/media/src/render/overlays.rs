//! Burned text and image overlays: every title, heading, caption and text overlay resolved to
//! a styled, placed [`TextEvent`] in global seconds, and the timeline-wide image overlays.

use crate::error::MediaError;
use crate::ffmpeg::Sandbox;
use crate::layout::Layout;
use crate::text::{self, FontBook, Placement, ResolvedStyle, TextEvent};
use crate::timeline::*;
use crate::validate::Problem;

/// A timed image overlay on the whole timeline.
#[derive(Debug, Clone)]
pub(super) struct ImageOverlay {
    pub(super) source: String,
    pub(super) position: Position,
    pub(super) width: Option<u32>,
    pub(super) opacity: f64,
    pub(super) start: f64,
    pub(super) end: f64,
}

pub(super) fn default_text_size(w: u32, h: u32, fraction: f64) -> u32 {
    (w.min(h) as f64 * fraction).round() as u32
}

pub(super) fn resolve_style(
    style: &TextStyle,
    sandbox: &Sandbox,
    fonts: &mut FontBook,
    default_size: u32,
    json_path: &str,
) -> Result<ResolvedStyle, MediaError> {
    let font = fonts
        .load(sandbox, style.font.as_deref())
        .map_err(|e| match e {
            MediaError::Input { .. } | MediaError::OutsideSandbox { .. } => {
                MediaError::Invalid(vec![Problem {
                    path: format!("{json_path}.font"),
                    message: e.to_string(),
                    allowed: "a .ttf/.otf file in the input folder or a system font file name"
                        .into(),
                }])
            }
            other => other,
        })?;
    Ok(ResolvedStyle {
        font,
        size: style.size.unwrap_or(default_size),
        style: style.clone(),
    })
}

/// All burned text on the timeline, in global seconds.
pub(super) fn text_events(
    t: &Timeline,
    layout: &Layout,
    sandbox: &Sandbox,
    fonts: &mut FontBook,
) -> Result<Vec<TextEvent>, MediaError> {
    let (w, h) = t.canvas.size();
    let mut events = Vec::new();
    for (i, scene) in t.scenes.iter().enumerate() {
        let sl = &layout.scenes[i];
        let s0 = layout.seconds(sl.start);
        let s1 = layout.seconds(sl.start + sl.frames);
        if let Visual::Title { text, style, .. } = &scene.visual {
            let style = resolve_style(
                style,
                sandbox,
                fonts,
                default_text_size(w, h, 0.085),
                &format!("$.scenes[{i}].visual.style"),
            )?;
            let lines = text::wrap(&style.font, text, style.size as f64, w as f64 * 0.8);
            events.push(TextEvent {
                start: s0,
                end: s1,
                lines,
                style,
                place: Placement::At(Position::default()),
                karaoke: None,
            });
        }
        for (j, o) in scene.overlays.iter().enumerate() {
            let json = format!("$.scenes[{i}].overlays[{j}]");
            events.extend(overlay_text(t, sandbox, fonts, o, (s0, s1), &json)?);
        }
    }
    for (j, o) in t.overlays.iter().enumerate() {
        let json = format!("$.overlays[{j}]");
        events.extend(overlay_text(
            t,
            sandbox,
            fonts,
            o,
            (0.0, layout.duration()),
            &json,
        )?);
    }
    caption_events(t, sandbox, fonts, &mut events)?;
    Ok(events)
}

/// The burned caption cues, wrapped and split into parts of at most `max_lines` lines.
fn caption_events(
    t: &Timeline,
    sandbox: &Sandbox,
    fonts: &mut FontBook,
    events: &mut Vec<TextEvent>,
) -> Result<(), MediaError> {
    let (w, h) = t.canvas.size();
    if t.captions.burn && !t.captions.cues.is_empty() {
        let cs = &t.captions.style;
        let default_size = if h > w {
            (w as f64 * 0.065).round() as u32
        } else {
            (h as f64 * 0.05).round() as u32
        };
        let style = resolve_style(
            &cs.text,
            sandbox,
            fonts,
            default_size,
            "$.captions.style.text",
        )?;
        let margins = cs.margins.unwrap_or_else(|| SafeMargins::for_canvas(w, h));
        let max_width = (w - margins.left - margins.right) as f64;
        for cue in &t.captions.cues {
            let lines = text::wrap(&style.font, &cue.text, style.size as f64, max_width);
            // Karaoke where the style asks for it and the cue has a time for every word.
            let mut starts = match &cs.highlight {
                Some(_) if cue.word_starts.len() == cue.text.split_whitespace().count() => {
                    Some(cue.word_starts.iter().copied())
                }
                _ => None,
            };
            for (start, end, lines) in text::split_cue(cue, lines, cs.max_lines as usize) {
                let words: usize = lines.iter().map(|l| l.split_whitespace().count()).sum();
                let karaoke = match (&cs.highlight, starts.as_mut()) {
                    (Some(highlight), Some(starts)) => Some(text::Karaoke {
                        highlight: highlight.clone(),
                        word_starts: starts.by_ref().take(words).collect(),
                    }),
                    _ => None,
                };
                events.push(TextEvent {
                    start,
                    end,
                    lines,
                    style: style.clone(),
                    place: Placement::Caption(cs.position, margins),
                    karaoke,
                });
            }
        }
    }
    Ok(())
}

/// A text overlay shown from `offset + start` until its end or `default_end`, whichever comes
/// first; `None` for an image overlay.
fn overlay_text(
    t: &Timeline,
    sandbox: &Sandbox,
    fonts: &mut FontBook,
    o: &Overlay,
    (offset, default_end): (f64, f64),
    json: &str,
) -> Result<Option<TextEvent>, MediaError> {
    let (w, h) = t.canvas.size();
    let Overlay::Text {
        text,
        style,
        position,
        start,
        end,
    } = o
    else {
        return Ok(None);
    };
    let style = resolve_style(
        style,
        sandbox,
        fonts,
        default_text_size(w, h, 0.05),
        &format!("{json}.style"),
    )?;
    let lines = text::wrap(
        &style.font,
        text,
        style.size as f64,
        text::anchored_width(w, position),
    );
    let end = end
        .map(|e| e + offset)
        .unwrap_or(default_end)
        .min(default_end);
    Ok(Some(TextEvent {
        start: start + offset,
        end,
        lines,
        style,
        place: Placement::At(*position),
        karaoke: None,
    }))
}

pub(super) fn image_overlays(t: &Timeline, layout: &Layout) -> Vec<ImageOverlay> {
    let mut out = Vec::new();
    let mut push = |o: &Overlay, offset: f64, default_end: f64| {
        if let Overlay::Image {
            path,
            position,
            width,
            opacity,
            start,
            end,
        } = o
        {
            out.push(ImageOverlay {
                source: path.clone(),
                position: *position,
                width: *width,
                opacity: *opacity,
                start: start + offset,
                end: end
                    .map(|e| e + offset)
                    .unwrap_or(default_end)
                    .min(default_end),
            });
        }
    };
    for (i, scene) in t.scenes.iter().enumerate() {
        let sl = &layout.scenes[i];
        for o in &scene.overlays {
            push(
                o,
                layout.seconds(sl.start),
                layout.seconds(sl.start + sl.frames),
            );
        }
    }
    for o in &t.overlays {
        push(o, 0.0, layout.duration());
    }
    out
}
