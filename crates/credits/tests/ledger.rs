//! The ledger on real Postgres: entries always balance and are append-only; holds serialise on
//! the account (100 concurrent job starts against credits for exactly 10 → 10 holds, 90 refusals
//! naming the shortfall, never a negative available balance); every mutation is idempotent; a
//! reversal after spending leaves a negative balance that refuses new holds.

use chrono::Duration;
use futures_util::future::join_all;
use studio_credits::{HoldState, Ledger, LedgerError, MIGRATOR};
use studio_testkit::db::{drop_database, fresh_database};
use uuid::Uuid;

async fn ledger() -> (Ledger, sqlx::PgPool, String) {
    let (name, url) = fresh_database("credits").await;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(20)
        .connect(&url)
        .await
        .unwrap();
    MIGRATOR.run(&pool).await.unwrap();
    (Ledger::new(pool.clone()), pool, name)
}

/// Every transaction's entries sum to zero, and balances equal their entries.
async fn assert_balanced(pool: &sqlx::PgPool) {
    let unbalanced: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT transaction_id FROM entries GROUP BY transaction_id HAVING sum(amount) <> 0) t",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(unbalanced, 0);
    let drift: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM accounts a WHERE a.posted <> (SELECT coalesce(sum(amount), 0) FROM entries e WHERE e.account_id = a.id)",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(drift, 0, "posted balances equal their entries");
    let held: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM accounts a WHERE a.held <> (SELECT coalesce(sum(amount), 0) FROM holds h WHERE h.account_id = a.id AND h.state = 'open')",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(held, 0, "held balances equal their open holds");
}

#[tokio::test]
async fn a_hold_is_captured_once_for_what_the_job_cost() {
    let (ledger, pool, name) = ledger().await;
    let user = Uuid::new_v4();
    let b = ledger
        .grant(user, 1_000, "welcome:u1", "welcome")
        .await
        .unwrap();
    assert_eq!((b.posted, b.held, b.available()), (1_000, 0, 1_000));
    // The same grant again: nothing changes.
    let again = ledger
        .grant(user, 1_000, "welcome:u1", "welcome")
        .await
        .unwrap();
    assert_eq!(again.posted, 1_000);

    let hold = ledger
        .place_hold(user, 300, "job:1", "start:1", Duration::hours(24))
        .await
        .unwrap();
    assert_eq!(ledger.balance(user).await.unwrap().available(), 700);
    let same = ledger
        .place_hold(user, 300, "job:1", "start:1", Duration::hours(24))
        .await
        .unwrap();
    assert_eq!(same.id, hold.id, "a repeated start returns the first hold");
    assert_eq!(ledger.balance(user).await.unwrap().held, 300);

    // The job cost 120: captured twice (a retried message), charged once.
    let captured = ledger.capture(hold.id, 120).await.unwrap();
    assert_eq!(
        (captured.state, captured.captured),
        (HoldState::Captured, 120)
    );
    let twice = ledger.capture(hold.id, 120).await.unwrap();
    assert_eq!(twice.captured, 120);
    let b = ledger.balance(user).await.unwrap();
    assert_eq!((b.posted, b.held), (880, 0));
    assert!(matches!(
        ledger.void(hold.id).await,
        Err(LedgerError::Settled {
            state: "captured",
            ..
        })
    ));

    // More than held, a void then a capture: refused, nothing posted.
    let second = ledger
        .place_hold(user, 100, "job:2", "start:2", Duration::hours(24))
        .await
        .unwrap();
    assert!(matches!(
        ledger.capture(second.id, 101).await,
        Err(LedgerError::Invalid {
            field: "actual",
            ..
        })
    ));
    ledger.void(second.id).await.unwrap();
    ledger.void(second.id).await.unwrap();
    assert!(matches!(
        ledger.capture(second.id, 50).await,
        Err(LedgerError::Settled {
            state: "voided",
            ..
        })
    ));
    assert_eq!(ledger.balance(user).await.unwrap().available(), 880);

    let entries = ledger.entries(user, None, 10).await.unwrap();
    let kinds: Vec<(&str, i64)> = entries
        .iter()
        .map(|e| (e.kind.as_str(), e.amount))
        .collect();
    assert_eq!(kinds, [("capture", -120), ("grant", 1_000)]);
    assert_balanced(&pool).await;

    // Append-only, and a transaction that does not balance cannot commit.
    let update = sqlx::query("UPDATE entries SET amount = 1")
        .execute(&pool)
        .await;
    assert!(update.unwrap_err().to_string().contains("append-only"));
    let mut tx = pool.begin().await.unwrap();
    let t = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO transactions (id, kind, idempotency_key) VALUES ($1, 'adjustment', 'x')",
    )
    .bind(t)
    .execute(&mut *tx)
    .await
    .unwrap();
    sqlx::query("INSERT INTO entries (transaction_id, account_id, amount) SELECT $1, id, 5 FROM accounts WHERE user_id = $2")
        .bind(t)
        .bind(user)
        .execute(&mut *tx)
        .await
        .unwrap();
    let commit = tx.commit().await.unwrap_err().to_string();
    assert!(commit.contains("does not balance"), "{commit}");
    pool.close().await;
    drop_database(&name).await;
}

#[tokio::test]
async fn a_hundred_concurrent_starts_against_credits_for_ten_hold_exactly_ten() {
    let (ledger, pool, name) = ledger().await;
    let user = Uuid::new_v4();
    ledger.grant(user, 1_000, "grant", "test").await.unwrap();
    let starts = (0..100).map(|i| {
        let ledger = ledger.clone();
        async move {
            ledger
                .place_hold(
                    user,
                    100,
                    &format!("job:{i}"),
                    &format!("start:{i}"),
                    Duration::hours(1),
                )
                .await
        }
    });
    let results = join_all(starts).await;
    let held = results.iter().filter(|r| r.is_ok()).count();
    let refused: Vec<_> = results
        .iter()
        .filter_map(|r| match r {
            Err(LedgerError::Insufficient {
                wanted,
                available,
                shortfall,
            }) => Some((*wanted, *available, *shortfall)),
            _ => None,
        })
        .collect();
    assert_eq!(held, 10);
    assert_eq!(refused.len(), 90);
    assert!(refused.iter().all(|r| *r == (100, 0, 100)), "{refused:?}");
    let b = ledger.balance(user).await.unwrap();
    assert_eq!((b.posted, b.held, b.available()), (1_000, 1_000, 0));
    assert_balanced(&pool).await;
    pool.close().await;
    drop_database(&name).await;
}

#[tokio::test]
async fn a_refund_after_spending_leaves_a_negative_balance_that_refuses_holds() {
    let (ledger, pool, name) = ledger().await;
    let user = Uuid::new_v4();
    ledger
        .purchase(user, 500, "cs_1", "pack:500")
        .await
        .unwrap();
    let hold = ledger
        .place_hold(user, 400, "job:1", "start:1", Duration::hours(1))
        .await
        .unwrap();
    ledger.capture(hold.id, 300).await.unwrap();
    // The whole purchase is refunded: the 300 spent leave the balance at -300.
    let b = ledger
        .reverse(user, 500, "ch_1:refund", "charge.refunded")
        .await
        .unwrap();
    assert_eq!(b.posted, -300);
    let again = ledger
        .reverse(user, 500, "ch_1:refund", "charge.refunded")
        .await
        .unwrap();
    assert_eq!(again.posted, -300, "the same refund event reverses once");
    match ledger
        .place_hold(user, 1, "job:2", "start:2", Duration::hours(1))
        .await
    {
        Err(LedgerError::Insufficient {
            available,
            shortfall,
            ..
        }) => {
            assert_eq!((available, shortfall), (0, 1));
        }
        other => panic!("a hold on a negative balance: {other:?}"),
    }
    assert_balanced(&pool).await;
    pool.close().await;
    drop_database(&name).await;
}

#[tokio::test]
async fn lapsed_holds_are_released_once_and_a_late_capture_is_refused() {
    let (ledger, pool, name) = ledger().await;
    let user = Uuid::new_v4();
    ledger.grant(user, 100, "grant", "test").await.unwrap();
    let lapsing = ledger
        .place_hold(user, 60, "job:1", "start:1", Duration::seconds(-1))
        .await
        .unwrap();
    let live = ledger
        .place_hold(user, 30, "job:2", "start:2", Duration::hours(1))
        .await
        .unwrap();
    assert_eq!(ledger.balance(user).await.unwrap().available(), 10);
    let now = chrono::Utc::now();
    assert_eq!(ledger.expire_holds(now, 100).await.unwrap(), [lapsing.id]);
    assert!(
        ledger.expire_holds(now, 100).await.unwrap().is_empty(),
        "once"
    );
    assert_eq!(ledger.balance(user).await.unwrap().available(), 70);
    assert!(matches!(
        ledger.capture(lapsing.id, 10).await,
        Err(LedgerError::Settled {
            state: "expired",
            ..
        })
    ));
    assert_eq!(
        ledger.void(lapsing.id).await.unwrap().state,
        HoldState::Expired
    );
    ledger.capture(live.id, 30).await.unwrap();
    let b = ledger.balance(user).await.unwrap();
    assert_eq!((b.posted, b.held), (70, 0));
    assert_balanced(&pool).await;
    pool.close().await;
    drop_database(&name).await;
}
