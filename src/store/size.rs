//! How much disk the store takes: the database file's pages (and how many are free), its
//! write-ahead log, and, for measurements, each table and index (SQLite's `dbstat`, which
//! reads every page, so it is for benches and one-off reports, never a periodic metric).

use super::{SqliteStore, StoreError};

/// The store's files, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StorageSize {
    /// Pages of the database file (`page_count × page_size`).
    pub database: u64,
    /// Of those, pages free for reuse (left by deletions; not returned to the filesystem).
    pub free: u64,
    /// The write-ahead log beside it (checkpointed back into the database as it goes).
    pub wal: u64,
}

impl SqliteStore {
    /// The database's and its WAL's sizes (cheap: three pragmas and a file's metadata).
    pub async fn storage_size(&self) -> Result<StorageSize, StoreError> {
        let page_size: i64 = sqlx::query_scalar("PRAGMA page_size").fetch_one(&self.pool).await?;
        let pages: i64 = sqlx::query_scalar("PRAGMA page_count").fetch_one(&self.pool).await?;
        let free: i64 = sqlx::query_scalar("PRAGMA freelist_count").fetch_one(&self.pool).await?;
        let wal = self.path.as_ref().map_or(0, |p| {
            let mut wal = p.as_os_str().to_owned();
            wal.push("-wal");
            std::fs::metadata(wal).map_or(0, |m| m.len())
        });
        Ok(StorageSize { database: (pages * page_size) as u64, free: (free * page_size) as u64, wal })
    }

    /// Bytes per table and index (every page read), largest first.
    pub async fn storage_by_object(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC").fetch_all(&self.pool).await?;
        Ok(rows.into_iter().map(|(n, b)| (n, b as u64)).collect())
    }

    /// Events stored (a count over the table: for measurements, not for a periodic metric).
    pub async fn event_count(&self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM event_rows").fetch_one(&self.pool).await?;
        Ok(n as u64)
    }
}

#[cfg(test)]
mod tests {
    use crate::store::{OpenMode, SqliteStore};

    #[tokio::test]
    async fn sizes_are_the_files_and_objects_add_up_to_the_pages_in_use() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("s.db"), OpenMode::Writer, 4096).await.unwrap();
        let size = store.storage_size().await.unwrap();
        assert!(size.database > 0 && size.database % 4096 == 0, "{size:?}");
        let wal = std::fs::metadata(dir.path().join("s.db-wal")).map_or(0, |m| m.len());
        assert_eq!(size.wal, wal);
        let objects = store.storage_by_object().await.unwrap();
        assert!(objects.iter().any(|(n, _)| n == "event_rows"), "{objects:?}");
        assert!(objects.iter().any(|(n, _)| n == "event_rows_key"), "{objects:?}");
        let in_objects: u64 = objects.iter().map(|o| o.1).sum();
        assert_eq!(in_objects + size.free, size.database, "every page is an object's or free");
        assert_eq!(store.event_count().await.unwrap(), 0);
    }
}
