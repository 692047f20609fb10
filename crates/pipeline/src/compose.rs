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
    /// The scene's clip, relative path, when the picture was set in motion: shown instead of
    /// the still, frozen on its last frame when shorter than the narration.
    pub clip_path: Option<String>,
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

/// A silence between two words long enough to end a caption cue on, seconds: a breath or a
/// comma. Measured: inside a phrase, Piper's words are 0.02–0.05 s apart; after a comma about
/// 0.3 s.
pub const CUE_PAUSE_S: f64 = 0.15;

/// Splits a timed sentence into caption cues of at most `max_words` words. Where the voice gave
/// each word's time (`words`, one per word of `text`, times relative to the audio like
/// `start`), cues end on real pauses (a silence of [`CUE_PAUSE_S`] once a cue has half its
/// words) and start when their first word does, each lasting until the next begins; otherwise
/// cues break after punctuation and share the sentence's time in proportion to letters
/// ([`sentence_cues`]). Joining the cues' texts with spaces gives the sentence back.
pub fn timed_sentence_cues(
    text: &str,
    start: f64,
    end: f64,
    words: &[TimedWord],
    max_words: usize,
) -> Vec<Cue> {
    let texts: Vec<&str> = text.split_whitespace().collect();
    let count = texts.len();
    if words.len() != count || count == 0 {
        return sentence_cues(text, start, end, max_words);
    }
    let max_words = max_words.max(1);
    // [from, to) word ranges.
    let mut chunks: Vec<(usize, usize)> = Vec::new();
    let mut from = 0;
    for i in 0..count {
        if i + 1 == count {
            chunks.push((from, count));
            break;
        }
        let len = i + 1 - from;
        let gap = words[i + 1].start - words[i].end;
        // (at least two words must remain after a break on a pause)
        let pause = gap >= CUE_PAUSE_S && len * 2 >= max_words && count - i > 2;
        if len >= max_words || pause {
            chunks.push((from, i + 1));
            from = i + 1;
        }
    }
    // A one-word tail joins the cue before it.
    if chunks.len() >= 2 {
        let (tail_from, tail_to) = chunks[chunks.len() - 1];
        let (prev_from, _) = chunks[chunks.len() - 2];
        if tail_to - tail_from == 1 && tail_from - prev_from < max_words + 2 {
            chunks.pop();
            chunks.last_mut().expect("two chunks").1 = tail_to;
        }
    }
    chunks
        .iter()
        .enumerate()
        .map(|(i, &(from, to))| {
            let cue_start = if i == 0 { start } else { words[from].start };
            let cue_end = chunks
                .get(i + 1)
                .map(|&(f, _)| words[f].start)
                .unwrap_or(end);
            // Each word lights inside its cue, in order, whatever a voice's rounding says.
            let last = (cue_end - 0.001).max(cue_start);
            let mut floor = cue_start;
            let word_starts = words[from..to]
                .iter()
                .map(|w| {
                    floor = w.start.clamp(floor, last.max(floor));
                    floor
                })
                .collect();
            Cue {
                start: cue_start,
                end: cue_end,
                text: texts[from..to].join(" "),
                word_starts,
            }
        })
        .collect()
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
                word_starts: Vec::new(),
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
                highlight: style.captions.highlight.clone(),
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
        visual: match &a.clip_path {
            Some(path) => Visual::Video {
                path: path.clone(),
                source_start: 0.0,
                source_end: None,
                fill: ClipFill::Freeze,
            },
            None => Visual::Image {
                path: a.picture_path.clone(),
            },
        },
        // A clip moves by itself; a still gets the style's camera move.
        motion: match a.clip_path {
            Some(_) => Motion::new(MotionEffect::None),
            None => Motion {
                effect,
                zoom: style.scenes.zoom,
                easing: Easing::EaseInOut,
            },
        },
        fit: if a.generated || a.clip_path.is_some() {
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
    fn cues_start_on_words_and_end_on_real_pauses() {
        let text = "The Hare ran off at a great pace and soon left the Tortoise far behind.";
        // Words 0.35 s long, 0.05 s apart, with a breath after "off" (the fourth word).
        let mut t = 10.0;
        let words: Vec<TimedWord> = text
            .split_whitespace()
            .enumerate()
            .map(|(i, w)| {
                let word = TimedWord {
                    text: w.into(),
                    start: t,
                    end: t + 0.35,
                };
                t += 0.4 + if i == 3 { 0.4 } else { 0.0 };
                word
            })
            .collect();
        let cues = timed_sentence_cues(text, 9.9, 17.0, &words, 6);
        let texts: Vec<&str> = cues.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "The Hare ran off",
                "at a great pace and soon",
                "left the Tortoise far behind."
            ]
        );
        assert!((cues[0].start - 9.9).abs() < 1e-9);
        assert!(
            (cues[1].start - words[4].start).abs() < 1e-9,
            "on its first word"
        );
        assert!(
            (cues[0].end - cues[1].start).abs() < 1e-9,
            "no gap between cues"
        );
        assert!((cues[2].start - words[10].start).abs() < 1e-9);
        assert!((cues[2].end - 17.0).abs() < 1e-9);
        // Without word times, or with times that do not match the words: letters decide.
        let plain = sentence_cues(text, 9.9, 17.0, 6);
        assert_eq!(timed_sentence_cues(text, 9.9, 17.0, &[], 6), plain);
        assert_eq!(timed_sentence_cues(text, 9.9, 17.0, &words[1..], 6), plain);
        assert_ne!(plain[0].text, cues[0].text);
    }

    /// A voice's word times a hair before the sentence (rounding), out of order, or at its very
    /// end still light every word inside its cue, in order: the timeline validates.
    #[test]
    fn word_starts_stay_inside_their_cue() {
        let text = "It rested when the work was done.";
        let starts = [2.957, 3.2, 3.1, 3.5, 3.8, 4.0, 4.7];
        let words: Vec<TimedWord> = text
            .split_whitespace()
            .zip(starts)
            .map(|(w, s)| TimedWord {
                text: w.into(),
                start: s,
                end: s + 0.1,
            })
            .collect();
        let cues = timed_sentence_cues(text, 2.9574, 4.7, &words, 8);
        for c in &cues {
            assert!(c.word_starts.windows(2).all(|w| w[0] <= w[1]), "{c:?}");
            assert!(
                c.word_starts.iter().all(|&t| t >= c.start && t < c.end),
                "{c:?}"
            );
        }
        assert_eq!(cues[0].word_starts[0], 2.9574);
        assert!(*cues.last().unwrap().word_starts.last().unwrap() < 4.7);
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
