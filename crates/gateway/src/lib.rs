//! The gateway: Studio's public REST API.
//!
//! - `routes/`: the `/v1` handlers, each relaying to a service over gRPC with the caller's token;
//! - `dto.rs`: the REST shapes (and the OpenAPI schemas); `error.rs`: problem+json errors;
//! - `extract.rs`: JSON/query extractors that name the bad field, the authenticated caller;
//! - `rate.rs`: per-IP and per-user rate limits; `state.rs`: what every handler can reach;
//!   `settings.rs`, `startup.rs`.
//!
//! `GET /openapi.json` serves the OpenAPI 3.1 document generated from the same handler list
//! that builds the router ([`startup::api`]).

pub mod dto;
pub mod error;
pub mod extract;
pub mod rate;
pub mod routes;
pub mod settings;
pub mod startup;
pub mod state;
