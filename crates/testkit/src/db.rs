//! Fresh databases on the local Postgres named by `STUDIO_TEST_POSTGRES` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`), one per test, dropped afterwards.

/// The administrative connection URL for test databases.
pub fn admin_url() -> String {
    std::env::var("STUDIO_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// Creates an empty database `studio_test_{prefix}_{uuid}`; returns (name, URL).
///
/// Panics when Postgres cannot be reached: the tests that call it need a real one.
pub async fn fresh_database(prefix: &str) -> (String, String) {
    let name = format!("studio_test_{prefix}_{}", uuid::Uuid::new_v4().simple());
    let admin = sqlx::PgPool::connect(&admin_url())
        .await
        .expect("local postgres (STUDIO_TEST_POSTGRES)");
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&admin)
        .await
        .expect("create test database");
    admin.close().await;
    let base = admin_url();
    let server = base.rsplit_once('/').map(|(s, _)| s).unwrap_or(&base);
    (name.clone(), format!("{server}/{name}"))
}

/// Drops a database made by [`fresh_database`], closing its connections.
pub async fn drop_database(name: &str) {
    if let Ok(admin) = sqlx::PgPool::connect(&admin_url()).await {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .execute(&admin)
            .await;
        admin.close().await;
    }
}
