//! The ai-job service's durable core (the gRPC service and the workers build on it).
//!
//! - [`store`]: jobs and steps in Postgres as state machines
//!   (`queued → running → succeeded | failed | cancelled`). A worker claims a step with a
//!   **lease** (an expiry) and a **fencing token** (raised by every claim); completing or failing
//!   a step requires the current token, so a worker that stalled past its lease (a zombie) cannot
//!   overwrite the result of the worker that took over. Every state change that should wake a
//!   worker writes an **outbox** row in the same transaction.
//! - [`relay`]: publishes outbox rows to the work queue with the broker's confirmation, at least
//!   once, several relays side by side (`FOR UPDATE SKIP LOCKED`); and re-announces steps whose
//!   lease expired.
//!
//! Migrations live in `migrations/` and are embedded: [`MIGRATOR`].

pub mod relay;
pub mod store;
pub mod watch;

/// The service's migrations, applied at start.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The queue that carries `StepReady` messages.
pub const STEPS_QUEUE: &str = "studio.steps";
