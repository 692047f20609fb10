//! `studio-pipeline`: the step graph that turns text into a finished video.
//!
//! plan → per scene (speech, visual), scenes concurrently → music → timeline → render.
//! Every provider step goes through a [`studio_providers::Chain`] whose results are stored by
//! content hash, so an interrupted or repeated run resumes without redoing finished steps; the
//! render reuses the engine's segment cache. Each run writes a JSON report of every step.
//!
//! Layout:
//! - [`style`]: style presets (fonts, palette, captions, transition, music mood) from TOML data;
//! - [`compose`]: plan + assets → [`studio_media::Timeline`];
//! - [`run`]: the orchestration, its options, errors and [`run::PipelineReport`].

pub mod compose;
pub mod requests;
pub mod run;
pub mod style;

pub use run::{
    run, MusicChoice, PipelineError, PipelineReport, RunOptions, StepReport, VideoRequest,
};
pub use style::Style;
