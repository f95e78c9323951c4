//! The write-back of last uses: noted on cached records, written to the store.

use std::sync::Arc;

use uuid::Uuid;

use super::CachingStore;
use crate::{
    record::TokenRecord,
    store::{StoreError, TokenStore},
    time::Timestamp,
};

impl<Cache: TokenStore, Store: TokenStore> CachingStore<Cache, Store> {
    /// Writes the uses noted on cached records since their last write to the store. A use the
    /// store did not take stays unwritten, for the next flush.
    pub(super) async fn flush_uses(&self) -> Result<(), StoreError> {
        let shared = &self.shared;
        let records: Vec<Arc<TokenRecord>> = shared
            .entries
            .iter()
            .map(|entry| Arc::clone(&entry.record))
            .collect();
        for record in records {
            if let Some(at) = record.last_used.unwritten() {
                shared.store.record_use(record.id, at).await?;
                record.last_used.mark_written(at);
            }
        }
        shared.store.flush().await
    }

    pub(super) async fn touch(&self, id: Uuid, at: Timestamp) -> Result<(), StoreError> {
        self.shared.store.record_use(id, at).await?;
        if let Err(error) = self.shared.cache.record_use(id, at).await {
            tracing::warn!(target: "tower_impersonation", %error, "token cache failed");
        }
        Ok(())
    }
}
