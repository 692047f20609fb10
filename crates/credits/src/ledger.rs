//! The ledger in Postgres: accounts, transactions whose entries sum to zero, and holds.
//!
//! Every mutation carries an idempotency key and runs in one database transaction that locks
//! the user's account row first (`SELECT … FOR UPDATE`), so concurrent holds on one account are
//! serialised and a balance is never spent twice; repeating a mutation with its key returns what
//! the first one did and changes nothing. Amounts are whole credits (`i64`).
//!
//! Money moves between a user's account and a system account: a grant takes from `grants`, a
//! purchase from `purchases`; a captured hold pays `spend`; a refund or dispute reverses a
//! purchase into `refunds`. The system accounts' balances are therefore the negated totals of
//! what was granted, bought, spent and refunded.

use chrono::{DateTime, Duration, Utc};
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

/// A system account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum System {
    /// Credits bought through Stripe come from here.
    Purchases,
    /// Free credits (plans' monthly grants, admin grants) come from here.
    Grants,
    /// Captured holds go here.
    Spend,
    /// Refunded and disputed purchases go back here.
    Refunds,
}

impl System {
    fn name(self) -> &'static str {
        match self {
            System::Purchases => "purchases",
            System::Grants => "grants",
            System::Spend => "spend",
            System::Refunds => "refunds",
        }
    }
}

/// A user's balance, credits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Balance {
    /// Sum of the account's entries.
    pub posted: i64,
    /// Sum of its open holds.
    pub held: i64,
}

impl Balance {
    /// What new holds may take: posted minus held.
    pub fn available(&self) -> i64 {
        self.posted - self.held
    }
}

/// A hold's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldState {
    /// Reserving its amount.
    Open,
    /// Settled for `captured` credits.
    Captured,
    /// Released without charge.
    Voided,
    /// Released without charge because it lapsed ([`Ledger::expire_holds`]).
    Expired,
}

/// A hold on a user's credits.
#[derive(Debug, Clone, PartialEq)]
pub struct Hold {
    /// Its id.
    pub id: Uuid,
    /// The user.
    pub user_id: Uuid,
    /// Credits reserved.
    pub amount: i64,
    /// Credits charged when captured.
    pub captured: i64,
    /// Its state.
    pub state: HoldState,
    /// What it is for (`job:{id}`).
    pub reference: String,
    /// When an open hold lapses.
    pub expires_at: DateTime<Utc>,
}

/// One entry of a user's account.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Its id, increasing.
    pub id: i64,
    /// The transaction's kind (`grant`, `purchase`, `capture`, `refund`, `adjustment`,
    /// `reversal`).
    pub kind: String,
    /// Credits: positive adds to the account.
    pub amount: i64,
    /// The transaction's reference.
    pub reference: String,
    /// When it was posted.
    pub created_at: DateTime<Utc>,
}

/// Why a ledger operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The account lacks the credits a hold asks for.
    #[error("not enough credits: {wanted} asked, {available} available ({shortfall} short)")]
    Insufficient {
        /// Asked for.
        wanted: i64,
        /// Available.
        available: i64,
        /// What is missing.
        shortfall: i64,
    },
    /// A value is out of range; `field` names it.
    #[error("{field}: {message}")]
    Invalid {
        /// The argument.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The hold does not exist.
    #[error("hold {0} not found")]
    NoHold(Uuid),
    /// The hold was settled the other way (a capture after a void, or the reverse).
    #[error("hold {id} is already {state}")]
    Settled {
        /// The hold.
        id: Uuid,
        /// How it was settled.
        state: &'static str,
    },
    /// Postgres failed.
    #[error("ledger database: {0}")]
    Db(#[from] sqlx::Error),
}

fn state_of(s: &str) -> HoldState {
    match s {
        "captured" => HoldState::Captured,
        "voided" => HoldState::Voided,
        "expired" => HoldState::Expired,
        _ => HoldState::Open,
    }
}

/// The ledger over one Postgres pool (the credits service's own database).
#[derive(Debug, Clone)]
pub struct Ledger {
    pool: PgPool,
}

impl Ledger {
    /// The ledger in `pool`, migrated with [`crate::MIGRATOR`].
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// The user's account id, created on first use, locked for this transaction.
    async fn lock_user(
        tx: &mut Transaction<'_, Postgres>,
        user: Uuid,
    ) -> Result<(Uuid, Balance), sqlx::Error> {
        sqlx::query!(
            "INSERT INTO accounts (id, user_id) VALUES ($1, $2) ON CONFLICT (user_id) DO NOTHING",
            Uuid::new_v4(),
            user
        )
        .execute(&mut **tx)
        .await?;
        let row = sqlx::query!(
            "SELECT id, posted, held FROM accounts WHERE user_id = $1 FOR UPDATE",
            user
        )
        .fetch_one(&mut **tx)
        .await?;
        Ok((
            row.id,
            Balance {
                posted: row.posted,
                held: row.held,
            },
        ))
    }

    /// A system account's id, created on first use.
    async fn system(
        tx: &mut Transaction<'_, Postgres>,
        system: System,
    ) -> Result<Uuid, sqlx::Error> {
        sqlx::query!(
            "INSERT INTO accounts (id, system_name) VALUES ($1, $2) ON CONFLICT (system_name) DO NOTHING",
            Uuid::new_v4(),
            system.name()
        )
        .execute(&mut **tx)
        .await?;
        sqlx::query_scalar!(
            "SELECT id FROM accounts WHERE system_name = $1",
            system.name()
        )
        .fetch_one(&mut **tx)
        .await
    }

    /// Posts a transaction of `kind` moving `amount` from `from` to `to` under `key`; returns
    /// false (and posts nothing) when `key` was posted before.
    async fn post(
        tx: &mut Transaction<'_, Postgres>,
        kind: &str,
        key: &str,
        reference: &str,
        from: Uuid,
        to: Uuid,
        amount: i64,
    ) -> Result<bool, sqlx::Error> {
        let id = Uuid::new_v4();
        let inserted = sqlx::query!(
            "INSERT INTO transactions (id, kind, idempotency_key, reference) VALUES ($1, $2, $3, $4)
             ON CONFLICT (idempotency_key) DO NOTHING",
            id,
            kind,
            key,
            reference
        )
        .execute(&mut **tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            return Ok(false);
        }
        for (account, signed) in [(from, -amount), (to, amount)] {
            sqlx::query!(
                "INSERT INTO entries (transaction_id, account_id, amount) VALUES ($1, $2, $3)",
                id,
                account,
                signed
            )
            .execute(&mut **tx)
            .await?;
            sqlx::query!(
                "UPDATE accounts SET posted = posted + $2 WHERE id = $1",
                account,
                signed
            )
            .execute(&mut **tx)
            .await?;
        }
        Ok(true)
    }

    /// Adds `amount` free credits to `user` from the `grants` account (a plan's monthly grant,
    /// an admin's grant with `reason`). Idempotent on `key`.
    ///
    /// Errors: [`LedgerError::Invalid`] for an amount that is not positive.
    pub async fn grant(
        &self,
        user: Uuid,
        amount: i64,
        key: &str,
        reason: &str,
    ) -> Result<Balance, LedgerError> {
        self.credit(user, System::Grants, "grant", amount, key, reason)
            .await
    }

    /// Adds `amount` bought credits to `user` from the `purchases` account. Idempotent on
    /// `key` (the payment's id).
    ///
    /// Errors: [`LedgerError::Invalid`] for an amount that is not positive.
    pub async fn purchase(
        &self,
        user: Uuid,
        amount: i64,
        key: &str,
        reference: &str,
    ) -> Result<Balance, LedgerError> {
        self.credit(user, System::Purchases, "purchase", amount, key, reference)
            .await
    }

    async fn credit(
        &self,
        user: Uuid,
        from: System,
        kind: &str,
        amount: i64,
        key: &str,
        reference: &str,
    ) -> Result<Balance, LedgerError> {
        if amount <= 0 {
            return Err(LedgerError::Invalid {
                field: "amount",
                message: format!("{amount} credits; give a positive number"),
            });
        }
        let mut tx = self.pool.begin().await?;
        let (account, _) = Self::lock_user(&mut tx, user).await?;
        let source = Self::system(&mut tx, from).await?;
        Self::post(&mut tx, kind, key, reference, source, account, amount).await?;
        let balance = Self::balance_in(&mut tx, account).await?;
        tx.commit().await?;
        Ok(balance)
    }

    /// Takes back `amount` credits a refunded or disputed purchase granted, into `refunds`. The
    /// balance may go negative this way only; new holds are then refused. Idempotent on `key`.
    ///
    /// Errors: [`LedgerError::Invalid`] for an amount that is not positive.
    pub async fn reverse(
        &self,
        user: Uuid,
        amount: i64,
        key: &str,
        reference: &str,
    ) -> Result<Balance, LedgerError> {
        if amount <= 0 {
            return Err(LedgerError::Invalid {
                field: "amount",
                message: format!("{amount} credits; give a positive number"),
            });
        }
        let mut tx = self.pool.begin().await?;
        let (account, _) = Self::lock_user(&mut tx, user).await?;
        let refunds = Self::system(&mut tx, System::Refunds).await?;
        Self::post(
            &mut tx, "reversal", key, reference, account, refunds, amount,
        )
        .await?;
        let balance = Self::balance_in(&mut tx, account).await?;
        tx.commit().await?;
        Ok(balance)
    }

    async fn balance_in(
        tx: &mut Transaction<'_, Postgres>,
        account: Uuid,
    ) -> Result<Balance, sqlx::Error> {
        let row = sqlx::query!("SELECT posted, held FROM accounts WHERE id = $1", account)
            .fetch_one(&mut **tx)
            .await?;
        Ok(Balance {
            posted: row.posted,
            held: row.held,
        })
    }

    /// The user's balance (zero for a user who never had credits).
    pub async fn balance(&self, user: Uuid) -> Result<Balance, LedgerError> {
        let row = sqlx::query!("SELECT posted, held FROM accounts WHERE user_id = $1", user)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row
            .map(|r| Balance {
                posted: r.posted,
                held: r.held,
            })
            .unwrap_or(Balance { posted: 0, held: 0 }))
    }

    /// Reserves `amount` credits of `user` for `reference` until `ttl` passes. Idempotent on
    /// `key`: a repeat returns the first hold, whatever the balance is now.
    ///
    /// Errors: [`LedgerError::Insufficient`] naming the shortfall when the available balance
    /// (posted minus open holds) is below `amount` (a negative balance after a reversal refuses
    /// every hold); [`LedgerError::Invalid`] for an amount that is not positive.
    pub async fn place_hold(
        &self,
        user: Uuid,
        amount: i64,
        reference: &str,
        key: &str,
        ttl: Duration,
    ) -> Result<Hold, LedgerError> {
        if amount <= 0 {
            return Err(LedgerError::Invalid {
                field: "amount",
                message: format!("{amount} credits; a hold reserves a positive number"),
            });
        }
        let mut tx = self.pool.begin().await?;
        let (account, balance) = Self::lock_user(&mut tx, user).await?;
        if let Some(existing) = Self::hold_by_key(&mut tx, key).await? {
            tx.commit().await?;
            return Ok(existing);
        }
        if balance.available() < amount {
            return Err(LedgerError::Insufficient {
                wanted: amount,
                available: balance.available().max(0),
                shortfall: amount - balance.available().max(0),
            });
        }
        let id = Uuid::new_v4();
        let expires_at = Utc::now() + ttl;
        sqlx::query!(
            "INSERT INTO holds (id, account_id, amount, reference, idempotency_key, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
            id,
            account,
            amount,
            reference,
            key,
            expires_at
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query!(
            "UPDATE accounts SET held = held + $2 WHERE id = $1",
            account,
            amount
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Hold {
            id,
            user_id: user,
            amount,
            captured: 0,
            state: HoldState::Open,
            reference: reference.to_owned(),
            expires_at,
        })
    }

    async fn hold_by_key(
        tx: &mut Transaction<'_, Postgres>,
        key: &str,
    ) -> Result<Option<Hold>, sqlx::Error> {
        let row = sqlx::query!(
            r#"SELECT h.id, a.user_id AS "user_id!", h.amount, h.captured, h.state, h.reference, h.expires_at
               FROM holds h JOIN accounts a ON a.id = h.account_id WHERE h.idempotency_key = $1"#,
            key
        )
        .fetch_optional(&mut **tx)
        .await?;
        Ok(row.map(|r| Hold {
            id: r.id,
            user_id: r.user_id,
            amount: r.amount,
            captured: r.captured,
            state: state_of(&r.state),
            reference: r.reference,
            expires_at: r.expires_at,
        }))
    }

    /// Locks hold `id` and its account, account first (the order every mutation takes).
    async fn lock_hold(tx: &mut Transaction<'_, Postgres>, id: Uuid) -> Result<Hold, LedgerError> {
        let user = sqlx::query_scalar!(
            r#"SELECT a.user_id AS "user_id!" FROM holds h JOIN accounts a ON a.id = h.account_id WHERE h.id = $1"#,
            id
        )
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(LedgerError::NoHold(id))?;
        Self::lock_user(tx, user).await?;
        let r = sqlx::query!(
            "SELECT amount, captured, state, reference, expires_at FROM holds WHERE id = $1 FOR UPDATE",
            id
        )
        .fetch_one(&mut **tx)
        .await?;
        Ok(Hold {
            id,
            user_id: user,
            amount: r.amount,
            captured: r.captured,
            state: state_of(&r.state),
            reference: r.reference,
            expires_at: r.expires_at,
        })
    }

    /// Ends the locked, open `hold` in `state` (`captured` for `captured` credits, `voided`,
    /// `expired`) and releases its amount from the account's held credits; returns the account.
    async fn settle(
        tx: &mut Transaction<'_, Postgres>,
        hold: &Hold,
        state: &str,
        captured: i64,
    ) -> Result<Uuid, sqlx::Error> {
        let account = sqlx::query_scalar!(
            "UPDATE holds SET state = $2, captured = $3, settled_at = now() WHERE id = $1 RETURNING account_id",
            hold.id,
            state,
            captured
        )
        .fetch_one(&mut **tx)
        .await?;
        sqlx::query!(
            "UPDATE accounts SET held = held - $2 WHERE id = $1",
            account,
            hold.amount
        )
        .execute(&mut **tx)
        .await?;
        Ok(account)
    }

    /// Settles hold `id` for `actual` credits (what the job's provider calls cost): posts them
    /// to `spend` and releases the rest. Idempotent: capturing a captured hold returns it as it
    /// was captured.
    ///
    /// Errors: [`LedgerError::NoHold`]; [`LedgerError::Settled`] for a voided hold;
    /// [`LedgerError::Invalid`] for `actual` below 0 or above the hold.
    pub async fn capture(&self, id: Uuid, actual: i64) -> Result<Hold, LedgerError> {
        let mut tx = self.pool.begin().await?;
        let mut hold = Self::lock_hold(&mut tx, id).await?;
        match hold.state {
            HoldState::Captured => {
                tx.commit().await?;
                return Ok(hold);
            }
            HoldState::Voided => {
                return Err(LedgerError::Settled {
                    id,
                    state: "voided",
                })
            }
            HoldState::Expired => {
                return Err(LedgerError::Settled {
                    id,
                    state: "expired",
                })
            }
            HoldState::Open => {}
        }
        if !(0..=hold.amount).contains(&actual) {
            return Err(LedgerError::Invalid {
                field: "actual",
                message: format!(
                    "{actual} credits; a capture takes 0 to the {} held",
                    hold.amount
                ),
            });
        }
        let account = Self::settle(&mut tx, &hold, "captured", actual).await?;
        if actual > 0 {
            let spend = Self::system(&mut tx, System::Spend).await?;
            let key = format!("capture:{id}");
            Self::post(
                &mut tx,
                "capture",
                &key,
                &hold.reference,
                account,
                spend,
                actual,
            )
            .await?;
        }
        tx.commit().await?;
        hold.state = HoldState::Captured;
        hold.captured = actual;
        Ok(hold)
    }

    /// Releases hold `id` without charge. Idempotent (a lapsed hold is already released).
    ///
    /// Errors: [`LedgerError::NoHold`]; [`LedgerError::Settled`] for a captured hold.
    pub async fn void(&self, id: Uuid) -> Result<Hold, LedgerError> {
        let mut tx = self.pool.begin().await?;
        let mut hold = Self::lock_hold(&mut tx, id).await?;
        match hold.state {
            HoldState::Voided | HoldState::Expired => {
                tx.commit().await?;
                return Ok(hold);
            }
            HoldState::Captured => {
                return Err(LedgerError::Settled {
                    id,
                    state: "captured",
                })
            }
            HoldState::Open => {}
        }
        Self::settle(&mut tx, &hold, "voided", 0).await?;
        tx.commit().await?;
        hold.state = HoldState::Voided;
        Ok(hold)
    }

    /// Releases every open hold whose `expires_at` is before `now` (a job that never settled,
    /// e.g. its service lost the hold's id), at most `limit` at a time; returns them. Each is
    /// released under its account's lock, so a capture racing the sweep settles the hold once:
    /// whichever locks it first wins and the other sees it settled.
    pub async fn expire_holds(
        &self,
        now: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<Uuid>, LedgerError> {
        let due = sqlx::query_scalar!(
            "SELECT id FROM holds WHERE state = 'open' AND expires_at < $1 ORDER BY expires_at LIMIT $2",
            now,
            limit.clamp(1, 10_000)
        )
        .fetch_all(&self.pool)
        .await?;
        let mut expired = Vec::new();
        for id in due {
            let mut tx = self.pool.begin().await?;
            let hold = Self::lock_hold(&mut tx, id).await?;
            if hold.state != HoldState::Open || hold.expires_at >= now {
                continue;
            }
            Self::settle(&mut tx, &hold, "expired", 0).await?;
            tx.commit().await?;
            expired.push(id);
        }
        Ok(expired)
    }

    /// The user's entries, newest first: at most `limit` with ids below `before` (all when
    /// `None`).
    pub async fn entries(
        &self,
        user: Uuid,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<Entry>, LedgerError> {
        let rows = sqlx::query!(
            "SELECT e.id, t.kind, e.amount, t.reference, e.created_at
             FROM entries e
             JOIN accounts a ON a.id = e.account_id
             JOIN transactions t ON t.id = e.transaction_id
             WHERE a.user_id = $1 AND e.id < $2
             ORDER BY e.id DESC LIMIT $3",
            user,
            before.unwrap_or(i64::MAX),
            limit.clamp(1, 500)
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| Entry {
                id: r.id,
                kind: r.kind,
                amount: r.amount,
                reference: r.reference,
                created_at: r.created_at,
            })
            .collect())
    }
}
