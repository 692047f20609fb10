//! The ai-job service: jobs as durable state machines, their workers, and the gRPC API. It is
//! the distributed executor of the step graph that `studio-pipeline` declares.
//!
//! Layout, in the order a request meets it:
//! - [`startup`]: builds the service from [`settings`] and runs its roles (`api`, `worker`);
//! - [`grpc`]: the gRPC adapters, prost ↔ domain only;
//! - [`service`]: the rules: a project becomes a video request, jobs are started, listed,
//!   cancelled and watched, outputs presigned, render leases claimed and settled;
//! - [`limits`]: what one job and one user may ask for, checked when a job starts;
//! - [`worker`]: the step worker loop (claim, heartbeat, run, settle, ack) around [`steps`],
//!   which runs one step of the graph;
//! - [`watch`]: live progress, one `LISTEN` per process fanned out to every watcher;
//! - [`deadletter`]: fails the step and job of a dead-lettered message;
//! - [`messages`]: the only builder of queue messages and render tasks;
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
//! - [`retention`]: prunes published outbox rows and old progress events; [`deletion`]: a
//!   deleted project's jobs and the purge of its files; [`shared_cache`]: provider results
//!   shared by every worker through the object store.
//!
//! Migrations live in `migrations/` and are embedded: [`MIGRATOR`].

pub mod deadletter;
pub mod deletion;
pub mod grpc;
pub mod limits;
pub mod messages;
pub mod relay;
pub mod retention;
pub mod service;
pub mod settings;
pub mod shared_cache;
pub mod startup;
pub mod steps;
pub mod store;
pub mod watch;
pub mod worker;

/// The service's migrations, applied at start.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The queue that carries `StepReady` messages to ai-job's workers.
pub const STEPS_QUEUE: &str = studio_queue::names::STEPS;

/// The queue that announces render steps to media-render workers.
pub const RENDER_QUEUE: &str = studio_queue::names::RENDER;
