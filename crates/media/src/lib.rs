//! `studio-media`: Studio's render engine — a timeline becomes a finished video.
//!
//! Layout:
//! - [`timeline`]: the versioned, serde-typed timeline and its JSON Schema;
//! - [`validate`]: structural validation returning every [`validate::Problem`] with its JSON path;
//! - [`layout`]: frame arithmetic and the split into independently encoded segments;
//! - [`sniff`], [`probe`]: what an input really is (magic bytes, then ffprobe);
//! - [`ffmpeg`]: the one FFmpeg/ffprobe command builder, with its sandbox, progress and
//!   cancellation;
//! - [`graph`], [`text`]: filter-graph pieces, fonts, ASS/SRT/WebVTT;
//! - [`motion`]: sub-pixel Ken Burns frames, computed here and streamed to FFmpeg;
//! - [`outputs`]: the files a render writes ([`outputs::OutputKind`]) and their content types;
//! - [`render`]: segmented, cached rendering into `final.mp4`, captions, thumbnail and report.

pub mod error;
pub mod ffmpeg;
pub mod graph;
pub mod layout;
pub mod motion;
pub mod outputs;
pub mod probe;
pub mod render;
pub mod sniff;
pub mod text;
pub mod timeline;
pub mod validate;

use std::path::Path;

pub use error::MediaError;
pub use render::{
    check, mix_audio, parse_timeline, render, Progress, RenderOptions, RenderReport, Stage,
    VideoEncoder,
};
pub use timeline::Timeline;

/// Writes `bytes` to `path`, creating or truncating it.
pub(crate) fn write_file(path: &Path, bytes: &[u8]) -> Result<(), MediaError> {
    std::fs::write(path, bytes).map_err(|e| MediaError::io(path, e))
}

/// Writes `bytes` to a temporary file beside `path` and renames it into place, so readers never
/// see a half-written file.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), MediaError> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    write_file(&tmp, bytes)?;
    std::fs::rename(&tmp, path).map_err(|e| MediaError::io(path, e))
}
