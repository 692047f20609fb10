//! Helpers for the engine's integration tests: fixtures from Studio's shared data and readers
//! that check results with ffprobe/ffmpeg, independently of the engine.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use studio_media::timeline::*;
use studio_media::RenderOptions;
pub use studio_testkit::media::{
    ffprobe, files_under, frame_hashes, gray_frames, loudness, mad, pcm, stream,
};

/// Folder of the example media (`STUDIO_DATA` overrides): `images/` and `audio/`.
pub fn data_dir() -> PathBuf {
    match std::env::var_os("STUDIO_DATA") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/media"),
    }
}

/// A scratch render: an input folder with copies of shared data, an output and a cache folder.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub input: PathBuf,
}

impl Fixture {
    /// Copies `files` (paths under the data folder) into a fresh input folder, same layout.
    pub fn new(files: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let input = dir.path().join("input");
        for f in files {
            let target = input.join(f);
            std::fs::create_dir_all(target.parent().unwrap()).unwrap();
            std::fs::copy(data_dir().join(f), &target).unwrap_or_else(|e| panic!("copy {f}: {e}"));
        }
        std::fs::create_dir_all(&input).unwrap();
        Self { dir, input }
    }

    /// Options writing to `out/<name>` with the cache in `cache/<cache>`.
    pub fn options(&self, name: &str, cache: &str) -> RenderOptions {
        RenderOptions {
            cache_dir: self.dir.path().join("cache").join(cache),
            ..RenderOptions::new(&self.input, self.dir.path().join("out").join(name))
        }
    }

    pub fn out(&self, name: &str) -> PathBuf {
        self.dir.path().join("out").join(name)
    }
}

pub const ROCKET: &str = "images/rocket.jpg";
pub const CAT: &str = "images/chelsea.png";
pub const COFFEE: &str = "images/coffee.png";
pub const ASTRONAUT: &str = "images/astronaut.png";
pub const SPEECH: &str = "audio/198-209-0000.ogg";
pub const MUSIC: &str = "audio/Kevin_MacLeod_-_Vibe_Ace.ogg";

pub fn scene(visual: Visual, duration: f64) -> Scene {
    Scene {
        id: None,
        duration,
        visual,
        motion: Motion::default(),
        fit: Fit::Cover,
        overlays: vec![],
        transition: Transition::default(),
    }
}

pub fn image(path: &str) -> Visual {
    Visual::Image { path: path.into() }
}

pub fn color(c: &str) -> Visual {
    Visual::Color { color: c.into() }
}

/// A timeline with a `width`×`height` canvas at `fps` and the given scenes, fast encoder.
pub fn timeline(width: u32, height: u32, fps: u32, scenes: Vec<Scene>) -> Timeline {
    Timeline {
        version: TIMELINE_VERSION,
        canvas: Canvas {
            preset: None,
            width: Some(width),
            height: Some(height),
            fps,
        },
        scenes,
        overlays: vec![],
        audio: AudioTracks::default(),
        captions: Captions::default(),
        output: OutputSettings {
            preset: EncoderPreset::Superfast,
            ..OutputSettings::default()
        },
    }
}
