//! Pruning: refresh tokens a day past their expiry (used or not: an expired token is refused
//! whatever it was) and sign-in families left without tokens, every hour, so the tables do not
//! grow for ever (security review L5).

use std::time::Duration;

use sqlx::PgPool;
use studio_core::Shutdown;

/// How often the tables are pruned.
pub const INTERVAL: Duration = Duration::from_secs(3600);

/// Rows one pass deleted: (refresh tokens, families).
pub async fn prune_once(pool: &PgPool) -> Result<(u64, u64), sqlx::Error> {
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
    metrics::counter!("user_pruned_rows_total", "table" => "refresh_tokens").increment(tokens);
    metrics::counter!("user_pruned_rows_total", "table" => "refresh_families").increment(families);
    Ok((tokens, families))
}

/// Prunes every [`INTERVAL`] until `shutdown`; errors are logged and retried.
pub async fn run(pool: PgPool, shutdown: Shutdown) {
    loop {
        match prune_once(&pool).await {
            Ok((0, 0)) => {}
            Ok((tokens, families)) => tracing::info!(tokens, families, "pruned"),
            Err(err) => tracing::warn!(error = %err, "pruning failed; trying again later"),
        }
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = tokio::time::sleep(INTERVAL) => {}
        }
    }
}
