//! Structural validation of a [`Timeline`]: every problem at once, each with its JSON path.
//!
//! These checks need no file access; [`crate::render`] adds the input checks (existence, folder,
//! real format, probe) with the same [`Problem`] shape.

use std::fmt;

use serde::Serialize;

use crate::color::parse_color;
use crate::layout::{frames_for, Layout};
use crate::timeline::*;

/// One thing wrong with a timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// JSON path of the offending value, e.g. `$.scenes[2].duration`.
    pub path: String,
    /// What is wrong.
    pub message: String,
    /// What would be accepted.
    pub allowed: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} (allowed: {})",
            self.path, self.message, self.allowed
        )
    }
}

/// Accumulates problems while walking a timeline.
#[derive(Debug, Default)]
pub(crate) struct Problems(pub Vec<Problem>);

impl Problems {
    pub(crate) fn push(
        &mut self,
        path: impl Into<String>,
        message: impl Into<String>,
        allowed: impl Into<String>,
    ) {
        self.0.push(Problem {
            path: path.into(),
            message: message.into(),
            allowed: allowed.into(),
        });
    }

    fn range(&mut self, path: &str, value: f64, min: f64, max: f64, unit: &str) {
        if !value.is_finite() || value < min || value > max {
            self.push(
                path,
                format!("{value} is out of range"),
                format!("{min}..={max} {unit}"),
            );
        }
    }

    fn color(&mut self, path: &str, value: &str) {
        if parse_color(value).is_none() {
            self.push(
                path,
                format!("{value:?} is not a colour"),
                "#RRGGBB or #RRGGBBAA (hex)",
            );
        }
    }

    fn path_ref(&mut self, path: &str, value: &str) {
        if value.trim().is_empty() {
            self.push(
                path,
                "the path is empty",
                "a file path relative to the input folder",
            );
        } else if value.contains("://") || value.starts_with("data:") {
            self.push(
                path,
                format!("{value:?} is a URL"),
                "a file path relative to the input folder; download remote media first",
            );
        }
    }
}

/// Returns every structural problem of `timeline`; empty when it can be rendered (given inputs
/// that pass the file checks).
pub fn validate(timeline: &Timeline) -> Vec<Problem> {
    let mut p = Problems::default();
    if timeline.version != TIMELINE_VERSION {
        p.push(
            "$.version",
            format!("version {} is not supported", timeline.version),
            format!("{TIMELINE_VERSION}"),
        );
    }
    let fps = check_canvas(&mut p, &timeline.canvas);
    let (width, height) = timeline.canvas.size();

    if timeline.scenes.is_empty() {
        p.push(
            "$.scenes",
            "the timeline has no scenes",
            "at least one scene",
        );
    }
    let last = timeline.scenes.len().saturating_sub(1);
    for (i, scene) in timeline.scenes.iter().enumerate() {
        check_scene(&mut p, i, scene, i == last, fps);
    }
    // Transitions may not eat a whole scene: each scene keeps at least one frame of its own.
    if p.0.is_empty() {
        let layout = Layout::compute(timeline);
        for (i, scene) in layout.scenes.iter().enumerate() {
            if scene.body_frames() == 0 {
                p.push(
                    format!("$.scenes[{i}].duration"),
                    format!(
                        "{} frames are fewer than the transitions into and out of the scene need ({} + {} frames)",
                        scene.frames, scene.overlap_in, scene.overlap_out
                    ),
                    "a duration longer than its transitions, or shorter transitions",
                );
            }
        }
    }
    let duration = if p.0.is_empty() {
        Layout::compute(timeline).duration()
    } else {
        f64::INFINITY
    };

    for (i, overlay) in timeline.overlays.iter().enumerate() {
        check_overlay(&mut p, &format!("$.overlays[{i}]"), overlay, duration);
    }
    check_audio(&mut p, &timeline.audio, duration);
    check_captions(&mut p, &timeline.captions, duration, width, height);
    check_output(&mut p, &timeline.output, timeline, fps);
    p.0
}

fn check_canvas(p: &mut Problems, canvas: &Canvas) -> u32 {
    match (canvas.preset, canvas.width, canvas.height) {
        (Some(_), None, None) => {}
        (Some(_), _, _) => p.push(
            "$.canvas",
            "both a preset and a width/height are given",
            "either `preset` or `width` and `height`",
        ),
        (None, Some(w), Some(h)) => {
            for (name, v) in [("width", w), ("height", h)] {
                if !(16..=7680).contains(&v) || v % 2 != 0 {
                    p.push(
                        format!("$.canvas.{name}"),
                        format!("{v} pixels is not usable"),
                        "an even number of pixels, 16..=7680",
                    );
                }
            }
        }
        _ => p.push(
            "$.canvas",
            "the frame size is missing",
            "`preset` (16:9, 9:16, 1:1, 4:5) or both `width` and `height`",
        ),
    }
    if !(1..=120).contains(&canvas.fps) {
        p.push(
            "$.canvas.fps",
            format!("{} fps is out of range", canvas.fps),
            "1..=120 frames per second",
        );
        return 30;
    }
    canvas.fps
}

fn check_scene(p: &mut Problems, i: usize, scene: &Scene, is_last: bool, fps: u32) {
    let at = format!("$.scenes[{i}]");
    if !scene.duration.is_finite() || scene.duration <= 0.0 || scene.duration > 3600.0 {
        p.push(
            format!("{at}.duration"),
            format!("{} seconds is not a scene length", scene.duration),
            "more than 0 and at most 3600 seconds",
        );
    } else if frames_for(scene.duration, fps) == 0 {
        p.push(
            format!("{at}.duration"),
            format!("{} seconds is shorter than one frame", scene.duration),
            format!("at least {:.4} seconds at {fps} fps", 1.0 / fps as f64),
        );
    }
    let vat = format!("{at}.visual");
    let still_image = match &scene.visual {
        Visual::Image { path } => {
            p.path_ref(&format!("{vat}.path"), path);
            true
        }
        Visual::Video {
            path,
            source_start,
            source_end,
            ..
        } => {
            p.path_ref(&format!("{vat}.path"), path);
            p.range(
                &format!("{vat}.source_start"),
                *source_start,
                0.0,
                86_400.0,
                "seconds",
            );
            if let Some(end) = source_end {
                if !end.is_finite() || *end <= *source_start {
                    p.push(
                        format!("{vat}.source_end"),
                        format!("{end} is not after source_start {source_start}"),
                        "a time in seconds after source_start",
                    );
                }
            }
            false
        }
        Visual::Color { color } => {
            p.color(&format!("{vat}.color"), color);
            false
        }
        Visual::Gradient { from, to, .. } => {
            p.color(&format!("{vat}.from"), from);
            p.color(&format!("{vat}.to"), to);
            false
        }
        Visual::Title {
            text,
            background,
            style,
        } => {
            if text.trim().is_empty() {
                p.push(format!("{vat}.text"), "the title is empty", "some text");
            }
            check_text_style(p, &format!("{vat}.style"), style);
            match background {
                Background::Color { color } => p.color(&format!("{vat}.background.color"), color),
                Background::Gradient { from, to, .. } => {
                    p.color(&format!("{vat}.background.from"), from);
                    p.color(&format!("{vat}.background.to"), to);
                }
                Background::Image { path } => p.path_ref(&format!("{vat}.background.path"), path),
            }
            matches!(background, Background::Image { .. })
        }
    };
    if scene.motion.effect != MotionEffect::None && !still_image {
        p.push(
            format!("{at}.motion.effect"),
            "motion needs a still image",
            "`none` for video, colour, gradient and plain title scenes; Ken Burns moves on image scenes",
        );
    }
    p.range(
        &format!("{at}.motion.zoom"),
        scene.motion.zoom,
        1.01,
        2.0,
        "(zoom factor)",
    );
    for (j, overlay) in scene.overlays.iter().enumerate() {
        check_overlay(p, &format!("{at}.overlays[{j}]"), overlay, scene.duration);
    }
    let t = &scene.transition;
    if t.kind != TransitionKind::Cut {
        let min = if t.kind == TransitionKind::Fade { 2 } else { 1 };
        if !t.duration.is_finite() || t.duration <= 0.0 || frames_for(t.duration, fps) < min {
            p.push(
                format!("{at}.transition.duration"),
                format!("{} seconds is too short", t.duration),
                format!(
                    "at least {min} frame(s): {:.3} seconds at {fps} fps",
                    min as f64 / fps as f64
                ),
            );
        }
        if is_last && t.kind != TransitionKind::Fade {
            p.push(
                format!("{at}.transition.kind"),
                "the last scene has no next scene to transition into",
                "`cut` or `fade` (fade to black) on the last scene",
            );
        }
    }
}

fn check_text_style(p: &mut Problems, at: &str, style: &TextStyle) {
    if let Some(size) = style.size {
        p.range(&format!("{at}.size"), size as f64, 8.0, 1000.0, "pixels");
    }
    p.color(&format!("{at}.color"), &style.color);
    p.color(&format!("{at}.outline_color"), &style.outline_color);
    p.range(&format!("{at}.outline"), style.outline, 0.0, 50.0, "pixels");
    if let Some(c) = &style.box_color {
        p.color(&format!("{at}.box_color"), c);
    }
    if let Some(font) = &style.font {
        p.path_ref(&format!("{at}.font"), font);
    }
}

fn check_overlay(p: &mut Problems, at: &str, overlay: &Overlay, span: f64) {
    let (start, end) = overlay.span();
    if !start.is_finite() || start < 0.0 || start >= span {
        p.push(
            format!("{at}.start"),
            format!("{start} seconds is outside its scene or video"),
            format!("0..{span} seconds"),
        );
    }
    if let Some(end) = end {
        if !end.is_finite() || end <= start {
            p.push(
                format!("{at}.end"),
                format!("{end} is not after start {start}"),
                "a time in seconds after start",
            );
        }
    }
    match overlay {
        Overlay::Text { text, style, .. } => {
            if text.trim().is_empty() {
                p.push(format!("{at}.text"), "the text is empty", "some text");
            }
            check_text_style(p, &format!("{at}.style"), style);
        }
        Overlay::Image {
            path,
            width,
            opacity,
            ..
        } => {
            p.path_ref(&format!("{at}.path"), path);
            p.range(&format!("{at}.opacity"), *opacity, 0.0, 1.0, "");
            if let Some(w) = width {
                p.range(&format!("{at}.width"), *w as f64, 2.0, 7680.0, "pixels");
            }
        }
    }
}

fn check_clip(p: &mut Problems, at: &str, clip: &AudioClip, duration: f64) {
    p.path_ref(&format!("{at}.path"), &clip.path);
    if !clip.start.is_finite() || clip.start < 0.0 || clip.start >= duration {
        p.push(
            format!("{at}.start"),
            format!("{} seconds is outside the video", clip.start),
            format!("0..{duration} seconds"),
        );
    }
    p.range(&format!("{at}.gain_db"), clip.gain_db, -60.0, 24.0, "dB");
    p.range(
        &format!("{at}.source_start"),
        clip.source_start,
        0.0,
        86_400.0,
        "seconds",
    );
    if let Some(end) = clip.source_end {
        if !end.is_finite() || end <= clip.source_start {
            p.push(
                format!("{at}.source_end"),
                format!("{end} is not after source_start {}", clip.source_start),
                "a time in seconds after source_start",
            );
        }
    }
}

fn check_audio(p: &mut Problems, audio: &AudioTracks, duration: f64) {
    for (i, clip) in audio.voice.iter().enumerate() {
        check_clip(p, &format!("$.audio.voice[{i}]"), clip, duration);
    }
    for (i, clip) in audio.effects.iter().enumerate() {
        check_clip(p, &format!("$.audio.effects[{i}]"), clip, duration);
    }
    if let Some(music) = &audio.music {
        p.path_ref("$.audio.music.path", &music.path);
        p.range("$.audio.music.gain_db", music.gain_db, -60.0, 24.0, "dB");
        p.range("$.audio.music.fade_in", music.fade_in, 0.0, 60.0, "seconds");
        p.range(
            "$.audio.music.fade_out",
            music.fade_out,
            0.0,
            60.0,
            "seconds",
        );
    }
    let d = &audio.ducking;
    p.range(
        "$.audio.ducking.threshold_db",
        d.threshold_db,
        -60.0,
        0.0,
        "dBFS",
    );
    p.range("$.audio.ducking.ratio", d.ratio, 1.0, 20.0, "");
    p.range(
        "$.audio.ducking.attack_ms",
        d.attack_ms,
        0.01,
        2000.0,
        "milliseconds",
    );
    p.range(
        "$.audio.ducking.release_ms",
        d.release_ms,
        0.01,
        9000.0,
        "milliseconds",
    );
}

fn check_captions(p: &mut Problems, captions: &Captions, duration: f64, width: u32, height: u32) {
    let mut previous_end = 0.0;
    for (i, cue) in captions.cues.iter().enumerate() {
        let at = format!("$.captions.cues[{i}]");
        if !cue.start.is_finite() || cue.start < 0.0 || cue.start >= duration {
            p.push(
                format!("{at}.start"),
                format!("{} seconds is outside the video", cue.start),
                format!("0..{duration} seconds"),
            );
        } else if cue.start + 1e-9 < previous_end {
            p.push(
                format!("{at}.start"),
                format!(
                    "{} seconds overlaps the previous cue, which ends at {previous_end}",
                    cue.start
                ),
                "cues in time order that do not overlap",
            );
        }
        if !cue.end.is_finite() || cue.end <= cue.start {
            p.push(
                format!("{at}.end"),
                format!("{} is not after start {}", cue.end, cue.start),
                "a time in seconds after start",
            );
        } else if cue.end > duration + 1e-6 {
            p.push(
                format!("{at}.end"),
                format!("{} seconds is past the end of the video", cue.end),
                format!("at most {duration} seconds"),
            );
        }
        if cue.text.trim().is_empty() {
            p.push(format!("{at}.text"), "the cue is empty", "some text");
        }
        if !cue.word_starts.is_empty() {
            let words = cue.text.split_whitespace().count();
            let rising = cue.word_starts.windows(2).all(|w| w[0] <= w[1]);
            let inside = cue
                .word_starts
                .iter()
                .all(|t| t.is_finite() && *t >= cue.start - 1e-6 && *t < cue.end);
            if cue.word_starts.len() != words {
                p.push(
                    format!("{at}.word_starts"),
                    format!(
                        "{} times for the {words} words of the text",
                        cue.word_starts.len()
                    ),
                    "one start per word of text (split at spaces), or none",
                );
            } else if !rising || !inside {
                p.push(
                    format!("{at}.word_starts"),
                    "the times do not rise within the cue",
                    format!("rising times from {} to before {}", cue.start, cue.end),
                );
            }
        }
        previous_end = cue.end;
    }
    let style = &captions.style;
    check_text_style(p, "$.captions.style.text", &style.text);
    if let Some(h) = &style.highlight {
        p.color("$.captions.style.highlight", h);
    }
    p.range(
        "$.captions.style.max_lines",
        style.max_lines as f64,
        1.0,
        4.0,
        "lines",
    );
    if let Some(m) = style.margins {
        if m.left + m.right + 64 > width || m.top + m.bottom + 64 > height {
            p.push(
                "$.captions.style.margins",
                "the margins leave no room for text",
                format!("margins leaving at least 64 pixels inside {width}×{height}"),
            );
        }
    }
}

fn check_output(p: &mut Problems, out: &OutputSettings, timeline: &Timeline, fps: u32) {
    p.range("$.output.crf", out.crf as f64, 0.0, 51.0, "");
    p.range("$.output.threads", out.threads as f64, 0.0, 64.0, "threads");
    p.range(
        "$.output.audio_bitrate_kbps",
        out.audio_bitrate_kbps as f64,
        64.0,
        512.0,
        "kbit/s",
    );
    p.range(
        "$.output.loudness_lufs",
        out.loudness_lufs,
        -70.0,
        -5.0,
        "LUFS",
    );
    p.range(
        "$.output.true_peak_dbtp",
        out.true_peak_dbtp,
        -9.0,
        0.0,
        "dBTP",
    );
    if out.max_bytes == Some(0) {
        p.push(
            "$.output.max_bytes",
            "0 bytes cannot hold a video",
            "a size in bytes, or leave it out",
        );
    }
    let thumb = &out.thumbnail;
    match timeline.scenes.get(thumb.scene) {
        None if !timeline.scenes.is_empty() => p.push(
            "$.output.thumbnail.scene",
            format!("scene {} does not exist", thumb.scene),
            format!("0..={}", timeline.scenes.len() - 1),
        ),
        Some(scene) => {
            if let Some(at) = thumb.at {
                let last_frame = (frames_for(scene.duration, fps).max(1) - 1) as f64 / fps as f64;
                if !at.is_finite() || at < 0.0 || at > last_frame + 1e-9 {
                    p.push(
                        "$.output.thumbnail.at",
                        format!("{at} seconds is outside scene {}", thumb.scene),
                        format!("0..={last_frame:.3} seconds"),
                    );
                }
            }
        }
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timeline() -> Timeline {
        Timeline {
            version: 1,
            canvas: Canvas::preset(AspectPreset::Landscape, 30),
            scenes: vec![Scene {
                id: None,
                duration: 2.0,
                visual: Visual::Color {
                    color: "#102030".into(),
                },
                motion: Motion::default(),
                fit: Fit::Cover,
                overlays: vec![],
                transition: Transition::default(),
            }],
            overlays: vec![],
            audio: AudioTracks::default(),
            captions: Captions::default(),
            output: OutputSettings::default(),
        }
    }

    #[test]
    fn a_plain_timeline_has_no_problems() {
        assert_eq!(validate(&timeline()), vec![]);
    }

    #[test]
    fn every_problem_is_reported_with_its_path() {
        let mut t = timeline();
        t.version = 7;
        t.canvas = Canvas {
            preset: None,
            width: Some(1921),
            height: Some(1080),
            fps: 0,
        };
        t.scenes[0].duration = -1.0;
        t.scenes[0].visual = Visual::Color {
            color: "red".into(),
        };
        t.scenes[0].motion = Motion::new(MotionEffect::ZoomIn);
        t.captions.cues.push(Cue {
            start: 1.0,
            end: 0.5,
            text: " ".into(),
            word_starts: Vec::new(),
        });
        t.captions.cues.push(Cue {
            start: 2.0,
            end: 3.0,
            text: "two words".into(),
            word_starts: vec![2.0],
        });
        t.captions.style.highlight = Some("gold".into());
        t.output.crf = 60;
        let paths: Vec<String> = validate(&t).into_iter().map(|p| p.path).collect();
        for expected in [
            "$.version",
            "$.canvas.width",
            "$.canvas.fps",
            "$.scenes[0].duration",
            "$.scenes[0].visual.color",
            "$.scenes[0].motion.effect",
            "$.captions.cues[0].end",
            "$.captions.cues[0].text",
            "$.captions.cues[1].word_starts",
            "$.captions.style.highlight",
            "$.output.crf",
        ] {
            assert!(
                paths.iter().any(|p| p == expected),
                "{expected} missing from {paths:?}"
            );
        }
    }

    #[test]
    fn transitions_may_not_swallow_a_scene() {
        let mut t = timeline();
        t.scenes[0].transition = Transition::new(TransitionKind::Crossfade, 1.5);
        let mut second = t.scenes[0].clone();
        second.duration = 1.0;
        second.transition = Transition::new(TransitionKind::Crossfade, 0.5);
        let mut third = t.scenes[0].clone();
        third.transition = Transition::default();
        t.scenes = vec![t.scenes[0].clone(), second, third];
        let problems = validate(&t);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].path, "$.scenes[1].duration");
    }

    #[test]
    fn urls_and_overlapping_cues_are_refused() {
        let mut t = timeline();
        t.scenes[0].visual = Visual::Image {
            path: "https://example.com/a.png".into(),
        };
        t.captions.cues = vec![
            Cue {
                start: 0.0,
                end: 1.0,
                text: "a".into(),
                word_starts: Vec::new(),
            },
            Cue {
                start: 0.5,
                end: 1.5,
                text: "b".into(),
                word_starts: Vec::new(),
            },
        ];
        let problems = validate(&t);
        assert!(problems
            .iter()
            .any(|p| p.path == "$.scenes[0].visual.path" && p.message.contains("URL")));
        assert!(problems
            .iter()
            .any(|p| p.path == "$.captions.cues[1].start"));
    }
}
