//! Baseline resets on PostgreSQL (the statements are `store::baselines`').

use super::PgStore;
use crate::store::StoreError;
use crate::store::baselines::{BaselineReset, reset_in, resets_in};
use crate::store::portable::Conn;

impl PgStore {
    pub async fn reset_baseline(&self, function: &str, operation: &str, at_ms: i64) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        reset_in(&mut Conn::Postgres(&mut conn), function, operation, at_ms).await
    }

    pub async fn baseline_resets(&self) -> Result<Vec<BaselineReset>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        resets_in(&mut Conn::Postgres(&mut conn)).await
    }
}
