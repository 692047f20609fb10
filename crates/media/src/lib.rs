//! `studio-media`: Studio's render engine — a timeline becomes a finished video.
//!
//! Layout:
//! - [`timeline`]: the versioned, serde-typed timeline and its JSON Schema (the `studio-timeline`
//!   crate, re-exported);
//! - [`validate`]: structural validation returning every [`validate::Problem`] with its JSON path;
//! - [`layout`]: frame arithmetic and the split into independently encoded segments;
//! - [`sniff`], [`probe`]: what an input really is (magic bytes, then ffprobe);
//! - [`ffmpeg`]: the one FFmpeg/ffprobe command builder, with its sandbox, progress and
//!   cancellation;
//! - [`graph`], [`text`], [`color`]: filter-graph pieces, fonts, ASS/SRT/WebVTT, colours;
//! - [`encoder`]: the H.264 encoders and their self-test; [`fs`]: atomic file writes;
//! - [`motion`]: sub-pixel Ken Burns frames, computed here and streamed to FFmpeg;
//! - [`outputs`]: the files a render writes ([`outputs::OutputKind`]) and their content types;
//! - [`render`]: segmented, cached rendering into `final.mp4`, captions, thumbnail and report.

pub mod color;
pub mod encoder;
pub mod error;
pub mod ffmpeg;
pub mod fs;
pub mod graph;
pub mod layout;
pub mod motion;
pub mod outputs;
pub mod probe;
pub mod render;
pub mod sniff;
pub mod text;
pub mod validate;

pub use encoder::VideoEncoder;
pub use error::MediaError;
pub use render::{
    check, mix_audio, parse_timeline, render, Progress, RenderOptions, RenderReport, Stage,
};
pub use studio_timeline as timeline;
pub use studio_timeline::Timeline;
