//! Pruning: refresh tokens a day past their expiry (used or not: an expired token is refused
//! whatever it was), sign-in families left without tokens, verification links a day past their
//! expiry, and mail sent or given up a week ago, every hour, so the tables do not grow for ever
//! (security review L5).

use std::time::Duration;

use sqlx::PgPool;
use studio_core::Shutdown;

/// How often the tables are pruned.
pub const INTERVAL: Duration = Duration::from_secs(3600);

/// Rows one pass deleted: (refresh tokens, families, verification links, mails).
pub async fn prune_once(pool: &PgPool) -> Result<(u64, u64, u64, u64), sqlx::Error> {
    let tokens =
        sqlx::query!("DELETE FROM refresh_tokens WHERE expires_at < now() - interval '1 day'")
            .execute(pool)
            .await?
            .rows_affected();
    let families = sqlx::query!(
        r#"DELETE FROM refresh_families f
           WHERE f.created_at < now() - interval '1 day'
             AND NOT EXISTS (SELECT 1 FROM refresh_tokens t WHERE t.family_id = f.id)"#
    )
    .execute(pool)
    .await?
    .rows_affected();
    let links =
        sqlx::query!("DELETE FROM email_verifications WHERE expires_at < now() - interval '1 day'")
            .execute(pool)
            .await?
            .rows_affected();
    let mails = sqlx::query!(
        r#"DELETE FROM mail_outbox
           WHERE coalesce(sent_at, failed_at) < now() - interval '7 days'"#
    )
    .execute(pool)
    .await?
    .rows_affected();
    for (table, rows) in [
        ("refresh_tokens", tokens),
        ("refresh_families", families),
        ("email_verifications", links),
        ("mail_outbox", mails),
    ] {
        metrics::counter!("user_pruned_rows_total", "table" => table).increment(rows);
    }
    Ok((tokens, families, links, mails))
}

/// Prunes every [`INTERVAL`] until `shutdown`; errors are logged and retried.
pub async fn run(pool: PgPool, shutdown: Shutdown) {
    loop {
        match prune_once(&pool).await {
            Ok((0, 0, 0, 0)) => {}
            Ok((tokens, families, links, mails)) => {
                tracing::info!(tokens, families, links, mails, "pruned")
            }
            Err(err) => tracing::warn!(error = %err, "pruning failed; trying again later"),
        }
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = tokio::time::sleep(INTERVAL) => {}
        }
    }
}
