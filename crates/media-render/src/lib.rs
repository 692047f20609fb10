//! The media-render service: a queue consumer that renders job timelines with `studio-media`.
//!
//! - [`worker`]: claim (through ai-job's `RenderLeaseService`), render, upload, report.
//! - [`startup`]: settings → encoder self-test → worker + `/healthz`, `/metrics` and the
//!   `RenderService.GetWorkerStatus` gRPC.

pub mod settings;
pub mod startup;
pub mod worker;
