//! Reading results back with FFmpeg, independently of the engine: stream facts, per-frame
//! hashes, loudness (EBU R128), decoded samples and frames.

use std::path::Path;
use std::process::Command;

/// Runs `program` (`ffmpeg`/`ffprobe`) with `before`, the file, then `after`; returns stdout,
/// panicking with FFmpeg's error text when it fails.
fn run_stdout(program: &str, before: &[&str], path: &Path, after: &[&str]) -> Vec<u8> {
    let out = Command::new(program)
        .args(before)
        .arg(path)
        .args(after)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// ffprobe's JSON for streams and format (without counting frames: fast).
pub fn probe(path: &Path) -> serde_json::Value {
    let out = run_stdout(
        "ffprobe",
        &[
            "-v",
            "error",
            "-show_streams",
            "-show_format",
            "-of",
            "json",
        ],
        path,
        &[],
    );
    serde_json::from_slice(&out).unwrap()
}

/// The container's duration, seconds.
pub fn duration(path: &Path) -> f64 {
    probe(path)["format"]["duration"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .unwrap_or_else(|| panic!("{} has no duration", path.display()))
}

/// ffprobe's JSON for streams and format, frames counted (`nb_read_frames`).
pub fn ffprobe(path: &Path) -> serde_json::Value {
    let out = run_stdout(
        "ffprobe",
        &[
            "-v",
            "error",
            "-count_frames",
            "-show_streams",
            "-show_format",
            "-of",
            "json",
        ],
        path,
        &[],
    );
    serde_json::from_slice(&out).unwrap()
}

/// The first stream of `kind` (`video`, `audio`) in ffprobe's JSON; panics when there is none.
pub fn stream<'a>(probe: &'a serde_json::Value, kind: &str) -> &'a serde_json::Value {
    probe["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["codec_type"] == kind)
        .unwrap_or_else(|| panic!("no {kind} stream"))
}

/// MD5 of every decoded video frame (ffmpeg `framemd5`).
pub fn frame_hashes(path: &Path) -> Vec<String> {
    let out = run_stdout(
        "ffmpeg",
        &["-v", "error", "-i"],
        path,
        &["-map", "0:v:0", "-f", "framemd5", "-"],
    );
    String::from_utf8_lossy(&out)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit(',').next().map(|h| h.trim().to_string()))
        .collect()
}

/// Integrated loudness (LUFS) and true peak (dBTP) measured by ffmpeg's `ebur128`.
pub fn loudness(path: &Path) -> (f64, f64) {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostats", "-i"])
        .arg(path)
        .args([
            "-map",
            "0:a:0",
            "-af",
            "ebur128=peak=true",
            "-f",
            "null",
            "-",
        ])
        .output()
        .expect("ffmpeg runs");
    let text = String::from_utf8_lossy(&out.stderr);
    let summary = &text[text.rfind("Summary:").expect("ebur128 summary")..];
    let value = |key: &str| -> f64 {
        let line = summary
            .lines()
            .find(|l| l.trim_start().starts_with(key))
            .unwrap_or_else(|| panic!("{key} in {summary}"));
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    (value("I:"), value("Peak:"))
}

/// Decodes the audio of `path` to interleaved stereo 48 kHz `f32` samples.
pub fn pcm(path: &Path) -> Vec<f32> {
    let out = run_stdout(
        "ffmpeg",
        &["-v", "error", "-i"],
        path,
        &[
            "-map", "0:a:0", "-f", "f32le", "-ac", "2", "-ar", "48000", "-",
        ],
    );
    out.chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// Lists the files under `dir` (recursively), relative names.
pub fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(base, &p, out);
                } else {
                    out.push(p.strip_prefix(base).unwrap().display().to_string());
                }
            }
        }
    }
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Decodes every frame of `path` as 8-bit grey, `width`×`height`.
pub fn gray_frames(path: &Path, width: usize, height: usize) -> Vec<Vec<u8>> {
    let out = run_stdout(
        "ffmpeg",
        &["-v", "error", "-i"],
        path,
        &["-map", "0:v:0", "-f", "rawvideo", "-pix_fmt", "gray", "-"],
    );
    out.chunks_exact(width * height)
        .map(<[u8]>::to_vec)
        .collect()
}

/// Mean absolute difference of two grey frames, in 8-bit levels.
pub fn mad(a: &[u8], b: &[u8]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (*x as f64 - *y as f64).abs())
        .sum::<f64>()
        / a.len().max(1) as f64
}

/// The mean RGB colour of a `box_px`×`box_px` square at the centre of the frame shown at
/// `at_s` seconds.
pub fn centre_colour(path: &Path, at_s: f64, box_px: u32) -> [u8; 3] {
    let at = format!("{at_s:.3}");
    let crop = format!("crop={box_px}:{box_px}");
    let out = run_stdout(
        "ffmpeg",
        &["-v", "error", "-ss", &at, "-i"],
        path,
        &[
            "-frames:v",
            "1",
            "-vf",
            &crop,
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-",
        ],
    );
    let pixels = (out.len() / 3).max(1) as u64;
    let mut sum = [0u64; 3];
    for px in out.chunks_exact(3) {
        for (s, v) in sum.iter_mut().zip(px) {
            *s += u64::from(*v);
        }
    }
    sum.map(|s| (s / pixels) as u8)
}

/// Where the middle of each scene of a rendered timeline (`timeline.json` as JSON) falls in the
/// video, seconds: scenes follow one another, overlapping by their transition into the next
/// unless it is a cut or a fade through black.
pub fn scene_middles(timeline: &serde_json::Value) -> Vec<f64> {
    let mut start = 0.0;
    let mut middles = Vec::new();
    for scene in timeline["scenes"].as_array().into_iter().flatten() {
        let d = scene["duration"].as_f64().unwrap_or_default();
        middles.push(start + d / 2.0);
        let overlap = match scene["transition"]["kind"].as_str().unwrap_or("cut") {
            "cut" | "fade" => 0.0,
            _ => scene["transition"]["duration"].as_f64().unwrap_or_default(),
        };
        start += d - overlap;
    }
    middles
}

/// The largest difference of one channel between two colours.
pub fn colour_distance(a: [u8; 3], b: [u8; 3]) -> u8 {
    a.iter()
        .zip(b)
        .map(|(x, y)| x.abs_diff(y))
        .max()
        .unwrap_or(0)
}
