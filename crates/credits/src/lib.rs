//! The credits service: who has how many credits, what each job reserved and spent, and every
//! payment, in its own Postgres database.
//!
//! - [`ledger`]: the double-entry, append-only ledger (accounts, transactions whose entries sum
//!   to zero, holds that settle exactly once), every mutation idempotent on its key.
//!
//! Migrations live in `migrations/` and are embedded: [`MIGRATOR`].

pub mod ledger;

pub use ledger::{Balance, Entry, Hold, HoldState, Ledger, LedgerError};

/// The credits database's migrations.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();
