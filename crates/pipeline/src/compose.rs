//! Turns a plan and its assets into a [`Timeline`]: an intro card with the title, one picture
//! scene per planned scene (Ken Burns, heading overlay, its narration), an end card with the
//! moral and the credit lines, captions from the real sentence timings, and the music bed.
//!
//! Timing: scene *k* lasts its narration plus the outgoing transition, and each narration
//! starts when its scene's incoming transition starts, so narrations follow each other without
//! gaps and the video lasts `intro + Σ narration + end card` exactly (in whole frames).

use studio_media::layout::frames_for;
use studio_media::timeline::*;
use studio_providers::{PlannedScene, ScenePlan, Speech, TimedWord};

use crate::style::Style;

/// One scene's assets, with paths relative to the render's input folder.
#[derive(Debug, Clone)]
pub struct SceneAssets {
    /// Narration.
    pub speech: Speech,
    /// Narration audio, relative path.
    pub speech_path: String,
    /// Picture, relative path.
    pub picture_path: String,
    /// Whether the picture is a generated card drawn at canvas size (fills without cropping).
    pub generated: bool,
}

/// Everything the timeline is made of.
#[derive(Debug, Clone)]
pub struct Assets {
    /// Per planned scene, in order.
    pub scenes: Vec<SceneAssets>,
    /// The moral's narration and its relative path, if the plan has a moral.
    pub moral: Option<(Speech, String)>,
    /// Music bed, relative path.
    pub music_path: Option<String>,
    /// Credit lines for the end card and the music bed's credit.
    pub credits: Vec<String>,
    /// The music bed's own credit line, if any.
    pub music_credit: Option<String>,
}

/// Canvas and output choices.
#[derive(Debug, Clone, Copy)]
pub struct Format {
    /// Aspect preset.
    pub aspect: AspectPreset,
    /// Frames per second.
    pub fps: u32,
}

fn seconds_in_frames(seconds: f64, fps: u32) -> f64 {
    frames_for(seconds, fps) as f64 / fps as f64
}

fn text_style(font: &str, size_px: u32, style: &Style) -> TextStyle {
    TextStyle {
        font: Some(font.to_string()),
        size: Some(size_px),
        color: style.palette.text.clone(),
        outline_color: style.palette.outline.clone(),
        outline: (size_px as f64 / 22.0).clamp(1.0, 4.0),
        box_color: None,
    }
}

/// Splits a timed sentence into caption cues of at most `max_words` words, breaking after
/// punctuation where it can. Cue times come from the words' own times where the voice gave them
/// (`words`, one per word of `text`, times relative to the audio like `start`), else they share
/// the sentence's time in proportion to letters. Joining the cues' texts with spaces gives the
/// sentence back.
pub fn timed_sentence_cues(
    text: &str,
    start: f64,
    end: f64,
    words: &[TimedWord],
    max_words: usize,
) -> Vec<Cue> {
    let mut cues = sentence_cues(text, start, end, max_words);
    let count = text.split_whitespace().count();
    if words.len() != count || count == 0 {
        return cues;
    }
    // Each cue starts when its first word starts; the next cue's start ends it (the last ends
    // with the sentence), so captions never flicker off between words.
    let mut first = 0;
    let starts: Vec<f64> = cues
        .iter()
        .map(|c| {
            let t = words[first].start;
            first += c.text.split_whitespace().count();
            t
        })
        .collect();
    for (i, cue) in cues.iter_mut().enumerate() {
        cue.start = if i == 0 { start } else { starts[i] };
        cue.end = starts.get(i + 1).copied().unwrap_or(end);
    }
    cues
}

/// [`timed_sentence_cues`] without word times: cue times share the sentence's time in
/// proportion to letters.
pub fn sentence_cues(text: &str, start: f64, end: f64, max_words: usize) -> Vec<Cue> {
    let words: Vec<&str> = text.split_whitespace().collect();
    if words.is_empty() {
        return Vec::new();
    }
    let mut chunks: Vec<Vec<&str>> = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    for (i, w) in words.iter().enumerate() {
        current.push(w);
        let remaining = words.len() - i - 1;
        let soft = w.ends_with([',', ';', ':', '—']) && current.len() * 10 >= max_words * 6;
        if (current.len() >= max_words || soft) && remaining > 0 {
            chunks.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        // Avoid a one-word tail: give it to the previous chunk.
        if current.len() == 1 && !chunks.is_empty() && chunks.last().unwrap().len() < max_words + 2
        {
            chunks.last_mut().unwrap().extend(current);
        } else {
            chunks.push(current);
        }
    }
    let weight = |c: &Vec<&str>| {
        c.iter()
            .map(|w| w.chars().filter(|c| c.is_alphanumeric()).count())
            .sum::<usize>()
            .max(1) as f64
    };
    let total: f64 = chunks.iter().map(weight).sum();
    let mut t = start;
    chunks
        .iter()
        .map(|c| {
            let d = (end - start) * weight(c) / total;
            let cue = Cue {
                start: t,
                end: t + d,
                text: c.join(" "),
            };
            t += d;
            cue
        })
        .collect()
}

/// What every part of the timeline is measured by.
struct Measures<'a> {
    style: &'a Style,
    fps: u32,
    canvas: Canvas,
    width: u32,
    height: u32,
    /// The canvas's shorter side, pixels.
    short: f64,
    portrait: bool,
    /// Length of the overlap of two scenes in a transition, seconds (0 for a cut).
    ov: f64,
    transition: Transition,
    background: Background,
    /// Words per caption cue.
    max_words: usize,
}

impl<'a> Measures<'a> {
    fn new(style: &'a Style, format: Format) -> Measures<'a> {
        let fps = format.fps;
        let canvas = Canvas::preset(format.aspect, fps);
        let (width, height) = canvas.size();
        let t = &style.transition;
        let ov = if t.kind.xfade_name().is_some() {
            seconds_in_frames(t.duration, fps)
        } else {
            0.0
        };
        Measures {
            style,
            fps,
            canvas,
            width,
            height,
            short: width.min(height) as f64,
            portrait: height > width,
            ov,
            transition: Transition::new(t.kind, t.duration),
            background: Background::Gradient {
                from: style.palette.background[0].clone(),
                to: style.palette.background[1].clone(),
                direction: GradientDirection::default(),
            },
            max_words: if height > width { 8 } else { 12 },
        }
    }
}

/// The timeline under construction: scenes, voice clips, caption cues, and where the next
/// narration starts (seconds).
#[derive(Default)]
struct Draft {
    scenes: Vec<Scene>,
    voice: Vec<AudioClip>,
    cues: Vec<Cue>,
    cursor: f64,
}

impl Draft {
    /// Places `speech` (its audio at `path`) at the cursor, with a caption cue per part of each
    /// sentence.
    fn narrate(&mut self, m: &Measures, speech: &Speech, path: &str) {
        self.voice.push(AudioClip::at(path.to_owned(), self.cursor));
        for s in &speech.sentences {
            let words: Vec<TimedWord> = s
                .words
                .iter()
                .map(|w| TimedWord {
                    text: w.text.clone(),
                    start: self.cursor + w.start,
                    end: self.cursor + w.end,
                })
                .collect();
            self.cues.extend(timed_sentence_cues(
                &s.text,
                self.cursor + s.start,
                self.cursor + s.end,
                &words,
                m.max_words,
            ));
        }
    }
}

/// Builds the timeline.
pub fn timeline(plan: &ScenePlan, assets: &Assets, style: &Style, format: Format) -> Timeline {
    let m = Measures::new(style, format);
    let mut draft = Draft::default();
    intro_card(&m, plan, &mut draft);
    for (i, (planned, a)) in plan.scenes.iter().zip(&assets.scenes).enumerate() {
        picture_scene(&m, i, planned, a, &mut draft);
    }
    end_card(&m, plan, assets, &mut draft);
    let music = assets.music_path.as_ref().map(|path| MusicBed {
        gain_db: style.music.gain_db,
        credit: assets.music_credit.clone(),
        ..MusicBed::new(path.clone())
    });
    let caption_size = (m.short * style.captions.size) as u32;
    Timeline {
        version: TIMELINE_VERSION,
        canvas: m.canvas.clone(),
        scenes: draft.scenes,
        overlays: Vec::new(),
        audio: AudioTracks {
            voice: draft.voice,
            music,
            effects: Vec::new(),
            ducking: Ducking::default(),
        },
        captions: Captions {
            cues: draft.cues,
            burn: true,
            style: CaptionStyle {
                text: TextStyle {
                    box_color: Some(style.captions.r#box.clone()),
                    ..text_style(&style.fonts.captions, caption_size, style)
                },
                position: CaptionPosition::Bottom,
                max_lines: style.captions.max_lines,
                margins: None,
            },
        },
        output: OutputSettings {
            thumbnail: ThumbnailSpec {
                scene: 1.min(plan.scenes.len()),
                at: None,
            },
            ..OutputSettings::default()
        },
    }
}

/// The intro card: the title and subtitle on the style's gradient.
fn intro_card(m: &Measures, plan: &ScenePlan, draft: &mut Draft) {
    let style = m.style;
    let intro = seconds_in_frames(style.scenes.intro_seconds, m.fps);
    let mut title = plan.title.clone();
    if let Some(sub) = &plan.subtitle {
        title = format!("{title}\n{sub}");
    }
    draft.scenes.push(Scene {
        id: Some("intro".into()),
        duration: intro + m.ov,
        visual: Visual::Title {
            text: title,
            background: m.background.clone(),
            style: text_style(&style.fonts.title, (m.short * 0.085) as u32, style),
        },
        motion: Motion::new(MotionEffect::None),
        fit: Fit::Cover,
        overlays: Vec::new(),
        transition: m.transition.clone(),
    });
    draft.cursor = intro;
}

/// Planned scene `i`: its picture with the style's motion, its heading for the first seconds,
/// and its narration.
fn picture_scene(
    m: &Measures,
    i: usize,
    planned: &PlannedScene,
    a: &SceneAssets,
    draft: &mut Draft,
) {
    let style = m.style;
    let narration = seconds_in_frames(a.speech.duration_s, m.fps);
    let duration = narration + m.ov;
    draft.narrate(m, &a.speech, &a.speech_path);
    let effect = style.scenes.motion[i % style.scenes.motion.len()];
    let heading_size = (m.short * style.heading.size) as u32;
    let overlays = if planned.heading.is_empty() {
        Vec::new()
    } else {
        vec![Overlay::Text {
            text: planned.heading.clone(),
            style: TextStyle {
                box_color: Some("#00000066".into()),
                ..text_style(&style.fonts.heading, heading_size, style)
            },
            position: Position {
                anchor: Anchor::Top,
                margin_x: (m.width as f64 * 0.06) as u32,
                margin_y: (m.height as f64 * if m.portrait { 0.12 } else { 0.07 }) as u32,
            },
            start: 0.0,
            end: Some(duration.min(m.ov + 4.0)),
        }]
    };
    draft.scenes.push(Scene {
        id: Some(format!("scene-{}", i + 1)),
        duration,
        visual: Visual::Image {
            path: a.picture_path.clone(),
        },
        motion: Motion {
            effect,
            zoom: style.scenes.zoom,
            easing: Easing::EaseInOut,
        },
        fit: if a.generated {
            Fit::Cover
        } else {
            style.scenes.fit
        },
        overlays,
        transition: m.transition.clone(),
    });
    draft.cursor += narration;
}

/// The end card: the moral (narrated), or the title again, and the credit lines.
fn end_card(m: &Measures, plan: &ScenePlan, assets: &Assets, draft: &mut Draft) {
    let style = m.style;
    let mut end_text = Vec::new();
    let mut end_len = seconds_in_frames(style.scenes.outro_seconds, m.fps);
    match (&plan.moral, &assets.moral) {
        (Some(moral), Some((speech, path))) => {
            end_text.push(moral.clone());
            draft.narrate(m, speech, path);
            end_len = end_len.max(seconds_in_frames(speech.duration_s + 1.5, m.fps));
        }
        _ => {
            end_text.push(plan.title.clone());
            end_text.extend(plan.subtitle.clone());
        }
    }
    let mut end_size = (m.short * 0.07) as u32;
    if !assets.credits.is_empty() {
        end_text.push(String::new());
        end_text.extend(assets.credits.iter().cloned());
        end_size = (m.short * 0.045) as u32;
    }
    let fade_out = seconds_in_frames(0.8, m.fps);
    draft.scenes.push(Scene {
        id: Some("end".into()),
        duration: end_len,
        visual: Visual::Title {
            text: end_text.join("\n"),
            background: m.background.clone(),
            style: text_style(&style.fonts.title, end_size, style),
        },
        motion: Motion::new(MotionEffect::None),
        fit: Fit::Cover,
        overlays: Vec::new(),
        transition: Transition::new(TransitionKind::Fade, fade_out),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cues_follow_the_voices_word_times() {
        let text = "The Hare ran off at a great pace, and soon left the Tortoise far behind him.";
        let words: Vec<TimedWord> = text
            .split_whitespace()
            .enumerate()
            .map(|(i, w)| TimedWord {
                text: w.into(),
                // Slow at first, fast later: not proportional to letters.
                start: 10.0 + (i as f64).powf(1.5) * 0.2,
                end: 10.0 + (i as f64).powf(1.5) * 0.2 + 0.1,
            })
            .collect();
        let cues = timed_sentence_cues(text, 10.0, 20.0, &words, 6);
        let plain = sentence_cues(text, 10.0, 20.0, 6);
        assert_eq!(
            cues.iter().map(|c| &c.text).collect::<Vec<_>>(),
            plain.iter().map(|c| &c.text).collect::<Vec<_>>()
        );
        let second_first_word = cues[0].text.split_whitespace().count();
        assert!((cues[1].start - words[second_first_word].start).abs() < 1e-9);
        assert!((cues[0].end - cues[1].start).abs() < 1e-9);
        assert_ne!(cues[1].start, plain[1].start);
        assert!((cues.last().unwrap().end - 20.0).abs() < 1e-9);
        // Words that do not match the text: the proportional times.
        assert_eq!(timed_sentence_cues(text, 10.0, 20.0, &words[1..], 6), plain);
    }

    #[test]
    fn cues_keep_every_word_and_share_time() {
        let text = "The Hare, believing her assertion to be simply impossible, assented to the proposal; and they agreed that the Fox should choose the course.";
        let cues = sentence_cues(text, 10.0, 20.0, 8);
        assert!(cues.len() >= 3);
        let joined: Vec<&str> = cues.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(joined.join(" "), text);
        assert!((cues[0].start - 10.0).abs() < 1e-9);
        assert!((cues.last().unwrap().end - 20.0).abs() < 1e-9);
        assert!(cues
            .windows(2)
            .all(|w| (w[0].end - w[1].start).abs() < 1e-9));
        assert!(cues.iter().all(|c| c.text.split_whitespace().count() <= 9));
    }
}
