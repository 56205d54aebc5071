//! What the benches' baselines share: a bare SQLite database through sqlx, WAL, one table.

use sqlx::ConnectOptions;

/// A fresh database at `path` holding the one table `create` makes.
pub async fn connection(path: &std::path::Path, create: &str) -> sqlx::SqliteConnection {
    let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
        .connect()
        .await
        .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(create)).execute(&mut conn).await.unwrap();
    conn
}
