//! `studio-providers`: the AI capabilities Studio draws on, behind one trait each, and the
//! machinery that makes calling them dependable and honest about cost.
//!
//! Layout:
//! - [`capability`]: one trait per capability — [`ScriptWriter`], [`SpeechSynth`], [`ImageGen`],
//!   [`ClipGen`], [`MusicGen`] — and the [`Capability`] descriptor that lets one chain serve all;
//! - [`types`]: requests and results (scene plans, speech with timings, images, clips, music);
//! - [`chain`]: a provider chain per capability (primary + fallbacks, retries with backoff for
//!   transient errors only, a concurrency limit per provider) in front of [`cache`], a
//!   content-addressed store of results on disk;
//! - [`settings`]: which providers make up each chain, as serde-typed settings;
//! - [`limits`]: a circuit breaker per provider and requests-per-minute limits; [`tasks`]: vendor
//!   tasks under way, recorded before waiting so a restarted process resumes them;
//! - [`local`]: providers that need no key and no network: extractive planning from given text,
//!   espeak-ng speech, a media folder, procedural cards, MIDI music rendered with FluidSynth;
//! - [`vendor`]: providers over a vendor's HTTP API (OpenAI and compatible servers), with one
//!   error classification; [`writer`]: the script writer and planner over any language model;
//! - [`prices`]: what each call costs, from the vendor's reported usage and a price table.
//!
//! Every result carries its [`Provenance`]: provider, model, request hash, cost in micro-USD
//! (0 for local providers) and whether the cache served it.

pub mod cache;
pub mod capability;
pub mod chain;
pub mod check;
pub mod error;
pub mod limits;
pub mod local;
pub mod prices;
pub mod settings;
pub mod tasks;
pub mod types;
pub mod vendor;
pub mod writer;

pub use capability::{
    Artifacts, Capability, ClipGen, Describe, ImageGen, MusicGen, Produced, ScriptWriter,
    SpeechSynth,
};
pub use chain::{Chain, ChainError, Estimate, Generated, Provenance, RetryPolicy, Skipped};
pub use error::{ErrorKind, ProviderError};
pub use settings::{Providers, ProvidersSettings};
pub use types::*;

use sha2::{Digest, Sha256};

/// Returns the hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}
