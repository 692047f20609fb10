//! Frame arithmetic: where each scene sits on the timeline and how the video splits into segments.
//!
//! Every duration is rounded to whole frames once, here. Overlapping transitions (`xfade` kinds)
//! make the two scenes share `T` frames: scene `i + 1` starts `T` frames before scene `i` ends.
//! The video is cut into segments that can be encoded independently and joined without
//! re-encoding:
//!
//! ```text
//! scene 0 body | transition 0→1 | scene 1 body | transition 1→2 | scene 2 body
//! ```
//!
//! A body holds the frames that belong to one scene alone; a transition segment holds the `T`
//! frames where two scenes blend. `cut` and `fade` (through black) need no transition segment:
//! a fade lives in the two bodies.

use crate::timeline::{Timeline, TransitionKind};

/// Rounds `seconds` to a whole number of frames at `fps`.
pub fn frames_for(seconds: f64, fps: u32) -> u64 {
    if !seconds.is_finite() || seconds <= 0.0 {
        return 0;
    }
    (seconds * fps as f64).round() as u64
}

/// Where one scene sits, in frames.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SceneLayout {
    /// First frame of the scene on the timeline.
    pub start: u64,
    /// Length of the scene, frames.
    pub frames: u64,
    /// Frames shared with the previous scene (incoming overlapping transition).
    pub overlap_in: u64,
    /// Frames shared with the next scene (outgoing overlapping transition).
    pub overlap_out: u64,
    /// Frames of fade-in from black at the scene's start.
    pub fade_in: u64,
    /// Frames of fade-out to black at the scene's end.
    pub fade_out: u64,
}

impl SceneLayout {
    /// Frames that belong to this scene alone; 0 means the transitions swallow it.
    pub fn body_frames(&self) -> u64 {
        self.frames
            .saturating_sub(self.overlap_in + self.overlap_out)
    }
}

/// What a segment shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentKind {
    /// Frames `[from, to)` of scene `scene`, scene-local.
    Body {
        /// Scene index.
        scene: usize,
        /// First scene-local frame.
        from: u64,
        /// One past the last scene-local frame.
        to: u64,
    },
    /// The overlap of scene `from` and scene `from + 1`.
    Transition {
        /// Index of the outgoing scene.
        from: usize,
        /// Transition kind (an `xfade` kind).
        kind: TransitionKind,
    },
}

/// One independently encoded piece of the video.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentPlan {
    /// Position in the join order.
    pub index: usize,
    /// What it shows.
    pub kind: SegmentKind,
    /// First frame on the timeline.
    pub start: u64,
    /// Length, frames.
    pub frames: u64,
}

/// The frame layout of a whole timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    /// Frames per second.
    pub fps: u32,
    /// One entry per scene.
    pub scenes: Vec<SceneLayout>,
    /// Segments in join order.
    pub segments: Vec<SegmentPlan>,
    /// Total frames of the video.
    pub total_frames: u64,
}

impl Layout {
    /// Lays out `timeline`; call after [`crate::validate::validate`] found nothing.
    pub fn compute(timeline: &Timeline) -> Self {
        let fps = timeline.canvas.fps.max(1);
        let n = timeline.scenes.len();
        let mut scenes: Vec<SceneLayout> = timeline
            .scenes
            .iter()
            .map(|s| SceneLayout {
                start: 0,
                frames: frames_for(s.duration, fps),
                overlap_in: 0,
                overlap_out: 0,
                fade_in: 0,
                fade_out: 0,
            })
            .collect();
        for (i, scene) in timeline.scenes.iter().enumerate() {
            let t = &scene.transition;
            let d = frames_for(t.duration, fps);
            match t.kind {
                TransitionKind::Cut => {}
                TransitionKind::Fade if i + 1 == n => scenes[i].fade_out = d,
                TransitionKind::Fade => {
                    scenes[i].fade_out = d / 2;
                    scenes[i + 1].fade_in = d - d / 2;
                }
                _ if i + 1 < n => {
                    scenes[i].overlap_out = d;
                    scenes[i + 1].overlap_in = d;
                }
                _ => {}
            }
        }
        let mut start: u64 = 0;
        for s in scenes.iter_mut() {
            s.start = start.saturating_sub(s.overlap_in);
            start = s.start + s.frames;
        }
        let total_frames = start;

        let mut segments = Vec::new();
        for (i, s) in scenes.iter().enumerate() {
            let body = s.body_frames();
            if body > 0 {
                segments.push(SegmentPlan {
                    index: segments.len(),
                    kind: SegmentKind::Body {
                        scene: i,
                        from: s.overlap_in,
                        to: s.frames - s.overlap_out,
                    },
                    start: s.start + s.overlap_in,
                    frames: body,
                });
            }
            if s.overlap_out > 0 {
                segments.push(SegmentPlan {
                    index: segments.len(),
                    kind: SegmentKind::Transition {
                        from: i,
                        kind: timeline.scenes[i].transition.kind,
                    },
                    start: s.start + s.frames - s.overlap_out,
                    frames: s.overlap_out,
                });
            }
        }
        Self {
            fps,
            scenes,
            segments,
            total_frames,
        }
    }

    /// Length of the video, seconds.
    pub fn duration(&self) -> f64 {
        self.total_frames as f64 / self.fps as f64
    }

    /// Converts a frame count to seconds.
    pub fn seconds(&self, frames: u64) -> f64 {
        frames as f64 / self.fps as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeline::*;

    fn scene(duration: f64, kind: TransitionKind, t: f64) -> Scene {
        Scene {
            id: None,
            duration,
            visual: Visual::Color {
                color: "#000000".into(),
            },
            motion: Motion::default(),
            fit: Fit::Cover,
            overlays: vec![],
            transition: Transition::new(kind, t),
        }
    }

    #[test]
    fn segments_tile_the_timeline_exactly() {
        let timeline = Timeline {
            version: 1,
            canvas: Canvas::preset(AspectPreset::Square, 30),
            scenes: vec![
                scene(2.0, TransitionKind::Crossfade, 0.5),
                scene(3.0, TransitionKind::Fade, 1.0),
                scene(2.0, TransitionKind::WipeLeft, 0.2),
                scene(1.0, TransitionKind::Fade, 0.5),
            ],
            overlays: vec![],
            audio: AudioTracks::default(),
            captions: Captions::default(),
            output: OutputSettings::default(),
        };
        let layout = Layout::compute(&timeline);
        // 60 + 90 + 60 + 30 frames, minus 15 and 6 shared by the two xfades.
        assert_eq!(layout.total_frames, 240 - 15 - 6);
        let mut next = 0;
        for seg in &layout.segments {
            assert_eq!(seg.start, next, "{seg:?}");
            next += seg.frames;
        }
        assert_eq!(next, layout.total_frames);
        assert_eq!(layout.segments.len(), 6);
        assert_eq!(layout.scenes[1].fade_out, 15);
        assert_eq!(layout.scenes[2].fade_in, 15);
        assert_eq!(layout.scenes[3].fade_out, 15);
        assert_eq!(layout.scenes[1].start, 45);
    }

    #[test]
    fn frames_round_to_nearest() {
        assert_eq!(frames_for(0.5, 30), 15);
        assert_eq!(frames_for(1.0 / 60.0, 30), 1);
        assert_eq!(frames_for(0.01, 30), 0);
    }
}
