//! ffprobe-based inspection of input media: format, duration, streams, size and rotation.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::MediaError;
use crate::ffmpeg::{FfmpegCommand, RunControl, Sandbox, Toolchain};
use crate::sniff::{sniff_file, SourceFormat};

/// What ffprobe found in a file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeInfo {
    /// Container or image format (by content).
    #[serde(skip)]
    pub format: Option<SourceFormat>,
    /// Length in seconds; `None` for still images.
    pub duration: Option<f64>,
    /// The first video (or image) stream.
    pub video: Option<VideoInfo>,
    /// The first audio stream.
    pub audio: Option<AudioInfo>,
}

/// A video or image stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VideoInfo {
    /// Coded width, pixels.
    pub width: u32,
    /// Coded height, pixels.
    pub height: u32,
    /// Display rotation in degrees (from the display matrix), e.g. 90 for portrait phone video.
    pub rotation: i32,
    /// Codec name.
    pub codec: String,
    /// Pixel format.
    pub pix_fmt: Option<String>,
    /// Average frame rate, frames per second.
    pub fps: Option<f64>,
    /// Frame count, when the container says.
    pub frames: Option<u64>,
}

/// An audio stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AudioInfo {
    /// Sample rate, Hz.
    pub sample_rate: u32,
    /// Channel count.
    pub channels: u32,
    /// Codec name.
    pub codec: String,
}

#[derive(Deserialize)]
struct RawProbe {
    #[serde(default)]
    streams: Vec<RawStream>,
    format: Option<RawFormat>,
}

#[derive(Deserialize)]
struct RawFormat {
    duration: Option<String>,
}

#[derive(Deserialize)]
struct RawStream {
    codec_type: Option<String>,
    codec_name: Option<String>,
    width: Option<u32>,
    height: Option<u32>,
    pix_fmt: Option<String>,
    avg_frame_rate: Option<String>,
    nb_frames: Option<String>,
    duration: Option<String>,
    sample_rate: Option<String>,
    channels: Option<u32>,
    #[serde(default)]
    tags: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    side_data_list: Vec<serde_json::Map<String, serde_json::Value>>,
}

fn rate(s: &str) -> Option<f64> {
    let (n, d) = s.split_once('/')?;
    let (n, d): (f64, f64) = (n.parse().ok()?, d.parse().ok()?);
    (d > 0.0 && n > 0.0).then_some(n / d)
}

/// The widest or tallest picture or video accepted, pixels: larger ones are refused at probe,
/// before anything decodes them at full size (security review L9; 16384 is also the largest
/// texture side of common GPUs).
pub const MAX_SIDE_PX: u32 = 16_384;
/// The most pixels a picture or video frame may have: 40 megapixels, above any camera our users
/// shoot with and 5× a 4K frame (security review L9).
pub const MAX_PIXELS: u64 = 40_000_000;

/// Sniffs and probes `path` (which must be inside the sandbox).
///
/// Errors: [`MediaError::Input`] when the file is missing, of an unsupported or disguised
/// format, when ffprobe cannot decode it (a `.png` that is not an image, a truncated file), or
/// when its picture is over [`MAX_SIDE_PX`] on a side or [`MAX_PIXELS`] in all; sandbox errors
/// as in [`Sandbox::check_read`].
pub async fn probe(
    sandbox: &Sandbox,
    toolchain: &Toolchain,
    path: &Path,
    ctl: &RunControl,
) -> Result<ProbeInfo, MediaError> {
    let resolved = sandbox.check_read(path)?;
    let format = sniff_file(&resolved).map_err(|e| MediaError::Input {
        path: path.to_path_buf(),
        problem: e.to_string(),
    })?;
    let mut cmd = FfmpegCommand::ffprobe(sandbox);
    cmd.args(["-show_streams", "-show_format", "-of", "json"]);
    cmd.input(path, format, &[])?;
    let out = cmd.run(toolchain, ctl, None).await.map_err(|e| match e {
        MediaError::Ffmpeg { stderr, .. } => MediaError::Input {
            path: path.to_path_buf(),
            problem: format!(
                "has {format} content but cannot be decoded: {}",
                stderr.lines().last().unwrap_or("unknown error")
            ),
        },
        other => other,
    })?;
    let raw: RawProbe = serde_json::from_str(&out.stdout).map_err(|e| MediaError::Input {
        path: path.to_path_buf(),
        problem: format!("ffprobe output unreadable: {e}"),
    })?;
    let mut info = ProbeInfo {
        format: Some(format),
        duration: None,
        video: None,
        audio: None,
    };
    let mut stream_duration = None;
    for s in raw.streams {
        match s.codec_type.as_deref() {
            Some("video") if info.video.is_none() => {
                let rotation = s
                    .side_data_list
                    .iter()
                    .find_map(|d| d.get("rotation").and_then(|r| r.as_f64()))
                    .or_else(|| {
                        s.tags
                            .get("rotate")
                            .and_then(|r| r.as_str())
                            .and_then(|r| r.parse().ok())
                    })
                    .unwrap_or(0.0);
                info.video = Some(VideoInfo {
                    width: s.width.unwrap_or(0),
                    height: s.height.unwrap_or(0),
                    rotation: rotation.round() as i32,
                    codec: s.codec_name.unwrap_or_default(),
                    pix_fmt: s.pix_fmt,
                    fps: s.avg_frame_rate.as_deref().and_then(rate),
                    frames: s.nb_frames.and_then(|n| n.parse().ok()),
                });
                stream_duration = stream_duration.or(s.duration.and_then(|d| d.parse().ok()));
            }
            Some("audio") if info.audio.is_none() => {
                info.audio = Some(AudioInfo {
                    sample_rate: s.sample_rate.and_then(|r| r.parse().ok()).unwrap_or(0),
                    channels: s.channels.unwrap_or(0),
                    codec: s.codec_name.unwrap_or_default(),
                });
                stream_duration = stream_duration.or(s.duration.and_then(|d| d.parse().ok()));
            }
            _ => {}
        }
    }
    if !format.is_image() {
        info.duration = raw
            .format
            .and_then(|f| f.duration)
            .and_then(|d| d.parse().ok())
            .or(stream_duration);
    }
    let empty = match &info.video {
        Some(v) => v.width == 0 || v.height == 0,
        None => info.audio.is_none(),
    };
    if empty {
        return Err(MediaError::Input {
            path: path.to_path_buf(),
            problem: format!("has {format} content but cannot be decoded: no usable stream"),
        });
    }
    if let Some(v) = &info.video {
        let pixels = u64::from(v.width) * u64::from(v.height);
        if v.width > MAX_SIDE_PX || v.height > MAX_SIDE_PX || pixels > MAX_PIXELS {
            return Err(MediaError::Input {
                path: path.to_path_buf(),
                problem: format!(
                    "is {}×{} pixels; at most {MAX_SIDE_PX} on a side and {} megapixels are accepted: scale it down first",
                    v.width,
                    v.height,
                    MAX_PIXELS / 1_000_000
                ),
            });
        }
    }
    Ok(info)
}

#[cfg(test)]
mod size_tests {
    use super::*;

    /// A grey PNG of `width`×`height` in the sandbox's input folder, written with the `png`
    /// crate (FFmpeg's own sources stop at 16384 pixels a side).
    fn png(dir: &Path, name: &str, width: u32, height: u32) -> std::path::PathBuf {
        let path = dir.join("in").join(name);
        let file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        let mut encoder = png::Encoder::new(file, width, height);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().unwrap();
        let row = vec![128u8; width as usize];
        let mut stream = writer.stream_writer().unwrap();
        for _ in 0..height {
            std::io::Write::write_all(&mut stream, &row).unwrap();
        }
        stream.finish().unwrap();
        path
    }

    /// Pictures over 16384 pixels on a side or 40 megapixels are refused at probe with the
    /// size and the limits; ones at the limits pass (security review L9).
    #[tokio::test]
    async fn oversized_pictures_are_refused_at_probe() {
        let dir = tempfile::tempdir().unwrap();
        for d in ["in", "work", "out"] {
            std::fs::create_dir_all(dir.path().join(d)).unwrap();
        }
        let sandbox = Sandbox::new(
            &dir.path().join("in"),
            &dir.path().join("work"),
            &dir.path().join("out"),
        )
        .unwrap();
        let tools = Toolchain::default();
        let ctl = RunControl::default();
        for (name, w, h, ok) in [
            ("wide-ok.png", 16_384, 2, true),
            ("wide.png", 16_385, 2, false),
            ("tall.png", 2, 16_385, false),
            ("big-ok.png", 8_000, 5_000, true),
            ("big.png", 8_000, 5_001, false),
        ] {
            let path = png(dir.path(), name, w, h);
            let probed = probe(&sandbox, &tools, &path, &ctl).await;
            match (probed, ok) {
                (Ok(info), true) => assert_eq!(info.video.unwrap().width, w),
                (Err(MediaError::Input { problem, .. }), false) => {
                    assert!(problem.contains(&format!("{w}×{h}")), "{problem}");
                    assert!(problem.contains("16384") && problem.contains("40 megapixels"));
                }
                (other, _) => panic!("{name}: {other:?}"),
            }
        }
    }
}
