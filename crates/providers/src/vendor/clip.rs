//! What a clip vendor sent, checked before anything uses it: the bytes must be an MP4/MOV or
//! Matroska/WebM file (sniffed, never trusted from a header or a file name) that ffprobe reads
//! in a sandbox holding only that file, with a video stream within the picture size limits
//! ([`studio_media::probe::MAX_SIDE_PX`], [`studio_media::probe::MAX_PIXELS`]) and a length.
//! Vendor URLs are fetched here, never handed to FFmpeg.

use std::path::{Path, PathBuf};

use studio_media::ffmpeg::{RunControl, Sandbox, Toolchain};
use studio_media::sniff::{sniff_bytes, SourceFormat};

use super::picture::not_media;
use crate::error::ProviderError;

/// A checked clip, written under the provider's scratch folder.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedClip {
    /// The file: `clip.mp4` or `clip.webm`.
    pub path: PathBuf,
    /// Length, seconds.
    pub duration_s: f64,
    /// Width, pixels.
    pub width: u32,
    /// Height, pixels.
    pub height: u32,
}

/// Checks `bytes` from `vendor` and writes them to `out` (see the module docs).
///
/// Errors, each naming the vendor and what is wrong: `Transient` for HTML, JSON or other bytes
/// instead of a video, and for a file ffprobe cannot read (a cut transfer: worth another try);
/// `Unavailable` for a video without a picture or over the size limits (the same request would
/// make it again).
pub async fn check(vendor: &str, bytes: &[u8], out: &Path) -> Result<CheckedClip, ProviderError> {
    let refuse = |what: String| ProviderError::transient(format!("{vendor} sent {what}"));
    let extension = match sniff_bytes(bytes) {
        Ok(SourceFormat::Mp4) => "mp4",
        Ok(SourceFormat::Matroska) => "webm",
        Ok(other) => return Err(refuse(format!("{other:?} data, not a video clip"))),
        Err(_) => {
            return Err(refuse(not_media(
                bytes,
                "a video clip",
                "an MP4 or WebM video",
            )))
        }
    };
    if extension == "mp4" {
        mp4_whole(bytes).map_err(|why| refuse(format!("a truncated or damaged MP4 ({why})")))?;
    }
    let dir = out.join("clip");
    let io = |e: std::io::Error| ProviderError::transient(format!("{}: {e}", dir.display()));
    std::fs::create_dir_all(&dir).map_err(io)?;
    let path = dir.join(format!("clip.{extension}"));
    std::fs::write(&path, bytes).map_err(io)?;
    let sandbox = Sandbox::new(&dir, &dir, &dir)
        .map_err(|e| ProviderError::transient(format!("probing {vendor}'s clip: {e}")))?;
    let control = RunControl {
        timeout: Some(std::time::Duration::from_secs(30)),
        ..RunControl::default()
    };
    let info = studio_media::probe::probe(&sandbox, &Toolchain::default(), &path, &control)
        .await
        .map_err(|e| match e {
            studio_media::MediaError::MissingTool { .. } => ProviderError::unavailable(format!(
                "clips cannot be checked without ffprobe ({e}); install ffmpeg"
            )),
            e if e.to_string().contains("megapixels are accepted") => {
                ProviderError::unavailable(format!("{vendor} sent {e}"))
            }
            e => refuse(format!("a video that cannot be read ({e})")),
        })?;
    let video = info.video.ok_or_else(|| {
        ProviderError::unavailable(format!("{vendor} sent a file without a video stream"))
    })?;
    let duration_s = info
        .duration
        .filter(|d| d.is_finite() && *d > 0.0)
        .ok_or_else(|| refuse("a video without a length".to_owned()))?;
    Ok(CheckedClip {
        path,
        duration_s,
        width: video.width,
        height: video.height,
    })
}

/// Whether the top-level boxes of an MP4 (ISO/IEC 14496-12 §4.2) cover the file exactly: a cut
/// transfer leaves the last box running past the end, which ffprobe does not notice when the
/// index (`moov`) comes first.
fn mp4_whole(b: &[u8]) -> Result<(), String> {
    let mut i = 0usize;
    while i < b.len() {
        let head = b.get(i..i + 8).ok_or("a box header cut short")?;
        let size = u64::from(u32::from_be_bytes([head[0], head[1], head[2], head[3]]));
        let size = match size {
            // The box runs to the end of the file.
            0 => return Ok(()),
            1 => {
                let large = b.get(i + 8..i + 16).ok_or("a box header cut short")?;
                u64::from_be_bytes(large.try_into().map_err(|_| "a box header cut short")?)
            }
            n => n,
        };
        if size < 8 {
            return Err(format!("a box of {size} bytes"));
        }
        let end = (i as u64).saturating_add(size);
        if end > b.len() as u64 {
            let kind = String::from_utf8_lossy(&head[4..8]).into_owned();
            return Err(format!(
                "its {kind} box needs {size} bytes, {} are there",
                b.len() - i
            ));
        }
        i = end as usize;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mp4_boxes_must_cover_the_file() {
        let mut file = Vec::new();
        for (kind, body) in [(b"ftyp", 8usize), (b"mdat", 20)] {
            file.extend_from_slice(&((8 + body) as u32).to_be_bytes());
            file.extend_from_slice(kind);
            file.extend(std::iter::repeat_n(0u8, body));
        }
        assert_eq!(mp4_whole(&file), Ok(()));
        let cut = &file[..file.len() - 5];
        assert!(mp4_whole(cut)
            .unwrap_err()
            .contains("mdat box needs 28 bytes"));
    }
}
