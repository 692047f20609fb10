//! What every part of a render shares: [`RenderContext`] (the timeline, its layout, checked inputs,
//! burned text, FFmpeg and its sandbox, content-hash cache keys) and [`StagedFile`], a file
//! written under a temporary name until it is committed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use super::overlays::*;
use super::{RenderOptions, VideoEncoder};
use crate::error::MediaError;
use crate::ffmpeg::{FfmpegCommand, RunControl, Sandbox, Toolchain};
use crate::graph::Frame;
use crate::layout::Layout;
use crate::probe::ProbeInfo;
use crate::sniff::SourceFormat;
use crate::text::TextEvent;
use crate::timeline::*;

/// An input file checked and probed.
#[derive(Debug, Clone)]
pub(super) struct Source {
    pub(super) path: PathBuf,
    pub(super) format: SourceFormat,
    pub(super) info: ProbeInfo,
}

/// Everything segment builders need.
pub(super) struct RenderContext<'a> {
    pub(super) timeline: &'a Timeline,
    pub(super) layout: Layout,
    pub(super) frame: Frame,
    pub(super) sandbox: Sandbox,
    pub(super) sources: HashMap<String, Source>,
    pub(super) text: Vec<TextEvent>,
    pub(super) images: Vec<ImageOverlay>,
    pub(super) toolchain: Toolchain,
    pub(super) encoder: VideoEncoder,
    pub(super) ffmpeg_version: String,
    pub(super) hashes: Mutex<HashMap<PathBuf, String>>,
    pub(super) ctl: RunControl,
    /// Fitted stills of moving scenes: scene index -> (raw `yuv420p` file, cache key).
    pub(super) stills: HashMap<usize, (PathBuf, String)>,
}

impl<'a> RenderContext<'a> {
    /// The context of rendering `timeline` from the checked `sources`, with no burned text,
    /// image overlays or fitted stills yet, and no FFmpeg version (set it before computing
    /// cache keys).
    pub(super) fn new(
        timeline: &'a Timeline,
        sandbox: Sandbox,
        sources: HashMap<String, Source>,
        ctl: RunControl,
        options: &RenderOptions,
    ) -> RenderContext<'a> {
        let layout = Layout::compute(timeline);
        let (width, height) = timeline.canvas.size();
        RenderContext {
            timeline,
            frame: Frame {
                width,
                height,
                fps: layout.fps,
            },
            layout,
            sandbox,
            sources,
            text: Vec::new(),
            images: Vec::new(),
            toolchain: options.toolchain.clone(),
            encoder: options.encoder,
            ffmpeg_version: String::new(),
            hashes: Mutex::new(HashMap::new()),
            ctl,
            stills: HashMap::new(),
        }
    }

    pub(super) fn source(&self, path: &str) -> Result<&Source, MediaError> {
        self.sources
            .get(path)
            .ok_or_else(|| MediaError::Internal(format!("input {path} was not checked")))
    }

    pub(super) fn file_hash(&self, path: &Path) -> Result<String, MediaError> {
        if let Some(h) = self.hashes.lock().expect("hash cache lock").get(path) {
            return Ok(h.clone());
        }
        let mut file = std::fs::File::open(path).map_err(|e| MediaError::io(path, e))?;
        let mut hasher = Sha256::new();
        std::io::copy(&mut file, &mut hasher).map_err(|e| MediaError::io(path, e))?;
        let h = hex::encode(hasher.finalize());
        self.hashes
            .lock()
            .expect("hash cache lock")
            .insert(path.to_path_buf(), h.clone());
        Ok(h)
    }

    /// Cache key of a command: engine salt, FFmpeg version, arguments, input contents.
    pub(super) fn key(&self, salt: &str, cmd: &FfmpegCommand) -> Result<String, MediaError> {
        let mut h = Sha256::new();
        h.update(salt.as_bytes());
        h.update(b"\0");
        h.update(self.ffmpeg_version.as_bytes());
        for a in cmd.key_args() {
            h.update(b"\0");
            h.update(a.as_bytes());
        }
        for input in cmd.inputs() {
            h.update(b"\0");
            h.update(self.file_hash(input)?.as_bytes());
        }
        Ok(hex::encode(h.finalize()))
    }
}

/// A file being written under a temporary name; removed on drop unless committed.
#[derive(Debug)]
pub(super) struct StagedFile {
    pub(super) path: PathBuf,
    pub(super) committed: bool,
}

impl StagedFile {
    pub(super) fn new(dir: &Path, name: &str) -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        Self {
            path: dir.join(format!(".{name}.{}-{n}.partial", std::process::id())),
            committed: false,
        }
    }

    pub(super) fn commit(mut self, target: &Path) -> Result<(), MediaError> {
        std::fs::rename(&self.path, target).map_err(|e| MediaError::io(target, e))?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for StagedFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// A context for the command builders' unit tests: `timeline` (JSON) over placeholder inputs
/// in a temporary folder, each "probed" as 10 s long, with FFmpeg version `test`. Nothing here
/// runs FFmpeg.
#[cfg(test)]
pub(super) mod testing {
    use super::*;
    use crate::probe::AudioInfo;

    /// The timeline of a test, and the folder its context lives in.
    pub(crate) struct Fixture {
        pub(crate) timeline: Timeline,
        pub(crate) dir: tempfile::TempDir,
    }

    impl Fixture {
        pub(crate) fn new(json: &str) -> Fixture {
            Fixture {
                timeline: super::super::parse_timeline(json).unwrap(),
                dir: tempfile::tempdir().unwrap(),
            }
        }

        pub(crate) fn context(&self) -> RenderContext<'_> {
            let root = self.dir.path();
            let inputs = root.join("in");
            std::fs::create_dir_all(&inputs).unwrap();
            let mut sources = HashMap::new();
            for (_, rel, _) in super::super::inputs::references(&self.timeline) {
                let path = inputs.join(&rel);
                // The magic bytes the sniffer looks for, then the name, so files differ.
                let (format, magic): (_, &[u8]) = match rel.rsplit('.').next() {
                    Some("png") => (SourceFormat::Png, b"\x89PNG\r\n\x1a\n"),
                    Some("ogg") => (SourceFormat::Ogg, b"OggS\0\x02"),
                    _ => (SourceFormat::Wav, b"RIFF\x24\0\0\0WAVEfmt "),
                };
                std::fs::write(&path, [magic, rel.as_bytes()].concat()).unwrap();
                let info = ProbeInfo {
                    format: Some(format),
                    duration: Some(10.0),
                    video: None,
                    audio: Some(AudioInfo {
                        codec: "pcm_s16le".into(),
                        sample_rate: 48_000,
                        channels: 1,
                    }),
                };
                let path = path.canonicalize().unwrap();
                sources.insert(rel, Source { path, format, info });
            }
            let sandbox = Sandbox::new(&inputs, &root.join("work"), &root.join("out")).unwrap();
            let ctl = RunControl {
                cancel: Default::default(),
                timeout: None,
            };
            let options = RenderOptions::new(&inputs, root.join("out"));
            let mut ctx = RenderContext::new(&self.timeline, sandbox, sources, ctl, &options);
            ctx.ffmpeg_version = "test".into();
            ctx.images = image_overlays(&self.timeline, &ctx.layout);
            ctx
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::Fixture;
    use super::*;

    const TIMELINE: &str = r##"{"version": 1, "canvas": {"preset": "1:1", "fps": 30},
        "scenes": [{"duration": 4, "visual": {"kind": "color", "color": "#102030"}}],
        "audio": {"voice": [{"path": "voice.wav", "start": 0.5}]}}"##;

    fn mix_key(ctx: &RenderContext, voice: &Path) -> String {
        let mut cmd = FfmpegCommand::ffmpeg(&ctx.sandbox);
        cmd.input(voice, SourceFormat::Wav, &[]).unwrap();
        cmd.args(["-af", "volume=1"]);
        cmd.output(&ctx.sandbox.work.join("x.wav"), "wav").unwrap();
        ctx.key("salt", &cmd).unwrap()
    }

    #[test]
    fn cache_keys_follow_content_not_paths() {
        let fixture = Fixture::new(TIMELINE);
        let ctx = fixture.context();
        let voice = ctx.source("voice.wav").unwrap().path.clone();
        let first = mix_key(&ctx, &voice);
        assert_eq!(first, mix_key(&ctx, &voice), "deterministic");
        // The same bytes under another name: the same key.
        let copy = voice.with_file_name("copy.wav");
        std::fs::copy(&voice, &copy).unwrap();
        assert_eq!(first, mix_key(&ctx, &copy));
        // Other bytes: another key (a fresh context, since hashes are remembered per render).
        let mut other = std::fs::read(&copy).unwrap();
        other.extend_from_slice(b" louder");
        std::fs::write(&copy, other).unwrap();
        let ctx = fixture.context();
        assert_ne!(first, mix_key(&ctx, &copy));
    }

    #[test]
    fn a_staged_file_is_removed_unless_committed() {
        let dir = tempfile::tempdir().unwrap();
        let dropped = StagedFile::new(dir.path(), "final.mp4");
        std::fs::write(&dropped.path, b"half").unwrap();
        let kept = StagedFile::new(dir.path(), "final.mp4");
        assert_ne!(dropped.path, kept.path, "two stagings never share a name");
        std::fs::write(&kept.path, b"whole").unwrap();
        drop(dropped);
        kept.commit(&dir.path().join("final.mp4")).unwrap();
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, ["final.mp4"]);
    }
}
