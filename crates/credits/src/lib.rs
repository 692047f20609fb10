//! The credits service: who has how many credits, what each job reserved and spent, and every
//! payment, in its own Postgres database.
//!
//! - [`ledger`]: the double-entry, append-only ledger (accounts, transactions whose entries sum
//!   to zero, holds that settle exactly once, lapsed holds released), every mutation idempotent
//!   on its key;
//! - [`price`]: what a credit is worth, and the credits a provider cost in micro-USD comes to.
//!
//! Migrations live in `migrations/` and are embedded: [`MIGRATOR`].

pub mod ledger;
pub mod price;

pub use ledger::{Balance, Entry, Hold, HoldState, Ledger, LedgerError};
pub use price::CreditPrice;

/// The credits database's migrations.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();
