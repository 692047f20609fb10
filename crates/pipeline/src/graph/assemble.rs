//! The timeline step's work: the finished steps' outputs become the composer's assets, under
//! fixed input names, and then the timeline.
//!
//! Input names, relative to the render's input folder: `narration/{i}.wav`,
//! `narration/moral.wav`, `pictures/{i}.{ext}`, `clips/{i}.{ext}` and `music.{ext}` (scene
//! indexes 0-based). The
//! executor puts each file there: the embedded run links it into its work folder; ai-job hands
//! media-render the object keys to fetch.

use std::collections::BTreeMap;
use std::path::PathBuf;

use studio_media::Timeline;
use studio_providers::{Clip, Image, ImageSource, ScenePlan};

use super::{extension, Finished, SceneClip, StepError, StepKey, StepKind, StepOutput};
use crate::compose::{self, Assets, SceneAssets};
use crate::request::{MusicChoice, VideoRequest};
use crate::requests;

/// What the timeline step composed.
#[derive(Debug, Clone)]
pub struct Assembly {
    /// The timeline, its paths relative to the render's input folder.
    pub timeline: Timeline,
    /// Relative path in the timeline → where that file is now (a local path, or an object key
    /// in the platform).
    pub inputs: BTreeMap<String, PathBuf>,
    /// The end card's credit lines.
    pub credits: Vec<String>,
    /// Narration, all clips together, seconds.
    pub narration_s: f64,
}

/// Seconds of narration among `done`: every narration step's speech, the moral's included.
pub fn narration_seconds(done: &[Finished]) -> f64 {
    done.iter()
        .filter_map(|f| match &f.output {
            StepOutput::Narration(s) => Some(s.duration_s),
            _ => None,
        })
        .sum()
}

fn find(done: &[Finished], key: StepKey) -> Option<&StepOutput> {
    done.iter().find(|f| f.key == key).map(|f| &f.output)
}

fn missing(key: StepKey) -> StepError {
    StepError::fatal(
        &StepKey::job(StepKind::Timeline),
        format!("the {} is missing", key.describe()),
    )
}

/// Composes the timeline of `plan` from the finished steps: each scene's narration and picture
/// (or its clip, when a clip step made one),
/// the moral's narration, the generated music or the user's own file, and the credit lines.
///
/// Errors: a final [`StepError::Failed`] when a scene's narration or picture is missing from
/// `done` (the steps before the timeline did not all run).
pub fn assemble(
    request: &VideoRequest,
    plan: &ScenePlan,
    done: &[Finished],
) -> Result<Assembly, StepError> {
    let mut inputs = BTreeMap::new();
    let mut scenes = Vec::new();
    let mut images: Vec<Image> = Vec::new();
    for i in 0..plan.scenes.len() {
        let speech_key = StepKey::scene(StepKind::Narration, i);
        let picture_key = StepKey::scene(StepKind::Picture, i);
        let Some(StepOutput::Narration(speech)) = find(done, speech_key) else {
            return Err(missing(speech_key));
        };
        let Some(StepOutput::Picture(image)) = find(done, picture_key) else {
            return Err(missing(picture_key));
        };
        let speech_path = format!("narration/{i}.wav");
        let picture_path = format!("pictures/{i}.{}", extension(&image.path, "png"));
        inputs.insert(speech_path.clone(), speech.audio.clone());
        inputs.insert(picture_path.clone(), image.path.clone());
        let clip_path = match find(done, StepKey::scene(StepKind::Clip, i)) {
            Some(StepOutput::Clip(SceneClip {
                clip: Some(clip), ..
            })) => {
                let path = format!("clips/{i}.{}", extension(&clip.path, "mp4"));
                inputs.insert(path.clone(), clip.path.clone());
                Some(path)
            }
            _ => None,
        };
        scenes.push(SceneAssets {
            speech: speech.clone(),
            speech_path,
            picture_path,
            generated: matches!(image.source, ImageSource::Generated),
            clip_path,
        });
        images.push(image.clone());
    }
    let moral = match find(done, StepKey::job(StepKind::Narration)) {
        Some(StepOutput::Narration(speech)) => {
            let path = "narration/moral.wav".to_owned();
            inputs.insert(path.clone(), speech.audio.clone());
            Some((speech.clone(), path))
        }
        _ => None,
    };
    let music = match (&request.music, find(done, StepKey::job(StepKind::Music))) {
        (MusicChoice::File { path, credit }, _) => Some((
            path.clone(),
            credit.clone().or_else(|| credit_from_sidecar(path)),
        )),
        (_, Some(StepOutput::Music(m))) => Some((m.path.clone(), m.credit.clone())),
        _ => None,
    };
    let (music_path, music_credit) = match music {
        Some((source, credit)) => {
            let path = format!("music.{}", extension(&source, "wav"));
            inputs.insert(path.clone(), source);
            (Some(path), credit)
        }
        None => (None, None),
    };
    let mut credits = requests::credit_lines(&images, music_credit.as_deref());
    // Stock videos shown in place of stills are credited like pictures.
    for f in done {
        if let StepOutput::Clip(SceneClip {
            clip: Some(Clip {
                credit: Some(c), ..
            }),
            ..
        }) = &f.output
        {
            let line = format!("Video: {c}");
            if !credits.contains(&line) {
                credits.push(line);
            }
        }
    }
    let narration_s = narration_seconds(done);
    let assets = Assets {
        scenes,
        moral,
        music_path,
        credits: credits.clone(),
        music_credit,
    };
    let timeline = compose::timeline(
        plan,
        &assets,
        &request.style,
        compose::Format {
            aspect: request.aspect,
            fps: request.fps,
        },
    );
    Ok(Assembly {
        timeline,
        inputs,
        credits,
        narration_s,
    })
}

/// Reads a credit line for an audio file from a `<name>.LICENSE.txt` or `<stem>.LICENSE.txt`
/// sidecar: "X by Y is licensed under …" plus a Creative Commons licence URL becomes
/// "X by Y, CC BY 3.0 (URL)".
pub fn credit_from_sidecar(path: &std::path::Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    let stem = path.file_stem()?.to_str()?;
    let dir = path.parent()?;
    let text = [format!("{name}.LICENSE.txt"), format!("{stem}.LICENSE.txt")]
        .iter()
        .find_map(|f| std::fs::read_to_string(dir.join(f)).ok())?;
    let first = text.lines().map(str::trim).find(|l| !l.is_empty())?;
    let work = first
        .split(" is licensed under")
        .next()
        .unwrap_or(first)
        .trim_end_matches('.')
        .to_string();
    let url = text
        .split_whitespace()
        .find(|w| w.contains("creativecommons.org/licenses/"));
    Some(match url {
        Some(url) => {
            let parts: Vec<&str> = url
                .split("/licenses/")
                .nth(1)
                .unwrap_or("")
                .split('/')
                .filter(|s| !s.is_empty())
                .collect();
            let licence = match parts.as_slice() {
                [kind, version, ..] => format!("CC {} {version}", kind.to_uppercase()),
                [kind] => format!("CC {}", kind.to_uppercase()),
                [] => "Creative Commons".into(),
            };
            format!("{work}, {licence} ({url})")
        }
        None => work,
    })
}
