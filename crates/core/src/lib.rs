//! What every Studio service shares.
//!
//! - [`id`]: typed UUID v7 ids (`UserId`, `ProjectId`, …) parsed once at the edge.
//! - [`error`]: the [`ErrorCode`] vocabulary, mapped to gRPC codes and HTTP statuses, and
//!   [`Error`], the error a service returns across its edge.
//! - [`settings`]: layered settings (`config/default.toml` → `config/{STUDIO_ENV}.toml` →
//!   `STUDIO__…` environment variables), validated at start.
//! - [`db`]: the Postgres pool and the `/healthz` + `/readyz` probes.
//! - [`shutdown`]: one signal that SIGTERM/SIGINT (or a test) triggers and every task awaits.
//! - [`tls`]: TLS on the gRPC ports (certificates of listeners, CAs of peers).
//! - [`scratch`]: keeps a worker's scratch folders and caches within an age and a size.

pub mod db;
pub mod error;
pub mod id;
pub mod page;
pub mod scratch;
pub mod settings;
pub mod shutdown;
pub mod tls;

pub use error::{Error, ErrorCode};
pub use shutdown::Shutdown;
