//! `studio-pipeline`: the step graph that turns text into a finished video, and its embedded
//! executor.
//!
//! plan → per scene (narration, picture) and the moral → music → timeline → render. The graph
//! is declared once ([`graph`]); the embedded `studio render` ([`run`]) and the ai-job service
//! are its two executors. Every provider step goes through a [`studio_providers::Chain`] whose
//! results are stored by content hash, so an interrupted or repeated run resumes without redoing
//! finished steps; the render reuses the engine's segment cache. Each run writes a JSON report
//! of every step.
//!
//! Layout:
//! - [`request`]: [`VideoRequest`], its defaults and the checks before any step;
//! - [`graph`]: step kinds, stages, the spawn rule after the plan, the provider steps, the
//!   assembly of the timeline, and how failures end a step;
//! - [`requests`]: the provider request each step sends;
//! - [`style`]: style presets (fonts, palette, captions, transition, music mood) from TOML data
//!   (the `studio-style` crate, re-exported);
//! - [`compose`]: plan + assets → [`studio_media::Timeline`];
//! - [`estimate`]: a run's expected cost before anything is spent;
//! - [`run`]: the embedded executor and its options; [`report`]: what it writes to
//!   `report.json`; [`error`]: [`PipelineError`].

pub mod compose;
pub mod error;
pub mod estimate;
pub mod graph;
pub mod report;
pub mod request;
pub mod requests;
pub mod run;

pub use error::PipelineError;
pub use estimate::{estimate, RunEstimate};
pub use graph::{Graph, StepKind};
pub use report::{PipelineReport, StepReport};
pub use request::{MusicChoice, VideoRequest};
pub use run::{run, RunOptions};
pub use studio_style as style;
pub use studio_style::Style;
