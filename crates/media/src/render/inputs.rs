//! Input checks before any frame is drawn: every file the timeline names must exist inside the
//! input folder, be what its place needs (picture, video, audio) by its magic bytes, and probe;
//! every problem is reported at once.

use std::collections::HashMap;
use std::path::Path;

use super::context::*;
use crate::error::MediaError;
use crate::ffmpeg::{RunControl, Sandbox, Toolchain};
use crate::probe::probe;
use crate::timeline::*;
use crate::validate::Problems;

pub(super) fn file_len(path: &Path) -> Result<u64, MediaError> {
    std::fs::metadata(path)
        .map(|m| m.len())
        .map_err(|e| MediaError::io(path, e))
}

/// What an input reference must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Need {
    Image,
    Video,
    Audio,
}

/// Every file the timeline references, with its JSON path and what it must be.
pub(super) fn references(t: &Timeline) -> Vec<(String, String, Need)> {
    let mut refs = Vec::new();
    for (i, s) in t.scenes.iter().enumerate() {
        match &s.visual {
            Visual::Image { path } => refs.push((
                format!("$.scenes[{i}].visual.path"),
                path.clone(),
                Need::Image,
            )),
            Visual::Video { path, .. } => refs.push((
                format!("$.scenes[{i}].visual.path"),
                path.clone(),
                Need::Video,
            )),
            Visual::Title {
                background: Background::Image { path },
                ..
            } => refs.push((
                format!("$.scenes[{i}].visual.background.path"),
                path.clone(),
                Need::Image,
            )),
            _ => {}
        }
        for (j, o) in s.overlays.iter().enumerate() {
            if let Overlay::Image { path, .. } = o {
                refs.push((
                    format!("$.scenes[{i}].overlays[{j}].path"),
                    path.clone(),
                    Need::Image,
                ));
            }
        }
    }
    for (j, o) in t.overlays.iter().enumerate() {
        if let Overlay::Image { path, .. } = o {
            refs.push((format!("$.overlays[{j}].path"), path.clone(), Need::Image));
        }
    }
    for (i, c) in t.audio.voice.iter().enumerate() {
        refs.push((
            format!("$.audio.voice[{i}].path"),
            c.path.clone(),
            Need::Audio,
        ));
    }
    for (i, c) in t.audio.effects.iter().enumerate() {
        refs.push((
            format!("$.audio.effects[{i}].path"),
            c.path.clone(),
            Need::Audio,
        ));
    }
    if let Some(m) = &t.audio.music {
        refs.push(("$.audio.music.path".into(), m.path.clone(), Need::Audio));
    }
    refs
}

/// Checks and probes every input; returns all problems at once.
pub(super) async fn check_inputs(
    t: &Timeline,
    sandbox: &Sandbox,
    toolchain: &Toolchain,
    ctl: &RunControl,
) -> Result<HashMap<String, Source>, MediaError> {
    let mut problems = Problems::default();
    let mut sources: HashMap<String, Source> = HashMap::new();
    let mut failed: HashMap<String, String> = HashMap::new();
    for (json_path, user_path, need) in references(t) {
        if let Some(reason) = failed.get(&user_path) {
            problems.push(
                json_path,
                reason.clone(),
                "an existing image, audio or video file inside the input folder",
            );
            continue;
        }
        if !sources.contains_key(&user_path) {
            let path = sandbox.input_path(&user_path);
            match probe(sandbox, toolchain, &path, ctl).await {
                Ok(info) => {
                    let format = info.format.expect("probe sets the format");
                    sources.insert(
                        user_path.clone(),
                        Source {
                            path: sandbox.check_read(&path)?,
                            format,
                            info,
                        },
                    );
                }
                Err(e @ (MediaError::Input { .. } | MediaError::OutsideSandbox { .. })) => {
                    let reason = e.to_string();
                    failed.insert(user_path.clone(), reason.clone());
                    problems.push(
                        json_path,
                        reason,
                        "an existing image, audio or video file inside the input folder",
                    );
                    continue;
                }
                Err(e) => return Err(e),
            }
        }
        let source = &sources[&user_path];
        let ok = match need {
            Need::Image => source.format.is_image(),
            Need::Video => source.format.can_hold_video() && source.info.video.is_some(),
            Need::Audio => source.info.audio.is_some(),
        };
        if !ok {
            let wanted = match need {
                Need::Image => "a still image (PNG, JPEG, WebP, BMP)",
                Need::Video => "a video (MP4/MOV or Matroska/WebM with a video stream)",
                Need::Audio => "a file with an audio stream (WAV, FLAC, Ogg, MP3, M4A)",
            };
            problems.push(
                json_path,
                format!(
                    "input {user_path} has {} content, which this slot cannot use",
                    source.format
                ),
                wanted,
            );
        }
    }
    // Source ranges must start inside the source.
    let check_start = |problems: &mut Problems, json: String, user_path: &str, start: f64| {
        if let Some(d) = sources.get(user_path).and_then(|s| s.info.duration) {
            if start >= d {
                problems.push(
                    json,
                    format!("{start} seconds is past the end of {user_path} ({d:.3} s)"),
                    format!("0..{d:.3} seconds"),
                );
            }
        }
    };
    for (i, s) in t.scenes.iter().enumerate() {
        if let Visual::Video {
            path, source_start, ..
        } = &s.visual
        {
            check_start(
                &mut problems,
                format!("$.scenes[{i}].visual.source_start"),
                path,
                *source_start,
            );
        }
    }
    for (i, c) in t.audio.voice.iter().enumerate() {
        check_start(
            &mut problems,
            format!("$.audio.voice[{i}].source_start"),
            &c.path,
            c.source_start,
        );
    }
    if problems.0.is_empty() {
        Ok(sources)
    } else {
        Err(MediaError::Invalid(problems.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_referenced_file_is_listed_with_its_json_path_and_kind() {
        let t = super::super::parse_timeline(
            r##"{"version": 1, "canvas": {"preset": "16:9", "fps": 30},
              "scenes": [
                {"duration": 3, "visual": {"kind": "image", "path": "a.png"},
                 "overlays": [{"kind": "image", "path": "logo.png"}]},
                {"duration": 3, "visual": {"kind": "title", "text": "T",
                  "background": {"kind": "image", "path": "bg.png"}}}],
              "overlays": [{"kind": "image", "path": "corner.png"}],
              "audio": {"voice": [{"path": "v.wav", "start": 0}],
                        "effects": [{"path": "boom.wav", "start": 1}],
                        "music": {"path": "m.ogg"}}}"##,
        )
        .unwrap();
        let refs: Vec<(String, String, Need)> = references(&t);
        let expect = [
            ("$.scenes[0].visual.path", "a.png", Need::Image),
            ("$.scenes[0].overlays[0].path", "logo.png", Need::Image),
            ("$.scenes[1].visual.background.path", "bg.png", Need::Image),
            ("$.overlays[0].path", "corner.png", Need::Image),
            ("$.audio.voice[0].path", "v.wav", Need::Audio),
            ("$.audio.effects[0].path", "boom.wav", Need::Audio),
            ("$.audio.music.path", "m.ogg", Need::Audio),
        ];
        assert_eq!(refs.len(), expect.len(), "{refs:?}");
        for (json_path, file, need) in expect {
            assert!(
                refs.iter()
                    .any(|(p, f, n)| p == json_path && f == file && *n == need),
                "{json_path} {file} missing from {refs:?}"
            );
        }
    }
}
