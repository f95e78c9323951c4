//! An [`SqlStore`]'s token operations: create, look up, list, revoke, and record a use.

use std::sync::Arc;

use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Row, Type};
use uuid::Uuid;

use super::{SqlDatabase, SqlStore, row, row::Columns};
use crate::{record::TokenRecord, store::StoreError, time::Timestamp, token::TokenDigest};

impl<DB> SqlStore<DB>
where
    DB: SqlDatabase,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> String: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Option<String>: Encode<'q, DB>,
    for<'q> Option<i64>: Encode<'q, DB>,
    for<'n> &'n str: ColumnIndex<DB::Row>,
{
    pub(super) async fn insert(&self, record: TokenRecord, limit: usize) -> Result<(), StoreError> {
        let columns = Columns::of(&record)?;
        let lock = format!("{}:{}", self.queries.tokens, record.organization);
        let inserting = async {
            let mut write = self.begin_write(Some(&lock)).await?;
            if limit != usize::MAX {
                let count = sqlx::query(&self.queries.count).bind(record.organization.to_string());
                let held = write.fetch_one(count).await?.try_get::<i64, _>("held")?;
                if usize::try_from(held).is_ok_and(|held| held >= limit) {
                    return Ok(false);
                }
            }
            write
                .execute(columns.bind(sqlx::query(&self.queries.insert)))
                .await?;
            write.commit().await?;
            Ok(true)
        };
        match self.written("create a token", inserting).await? {
            true => Ok(()),
            false => Err(StoreError::LimitReached { limit }),
        }
    }

    pub(super) async fn find(
        &self,
        digest: TokenDigest,
    ) -> Result<Option<Arc<TokenRecord>>, StoreError> {
        let finding = sqlx::query(&self.queries.lookup)
            .bind(digest.to_hex())
            .fetch_optional(&self.pool);
        let Some(row) = self.within("look a token up", finding).await? else {
            return Ok(None);
        };
        let record = row::record(&row)?;
        if record.digest != digest {
            return Err(StoreError::Decode(
                "a record is stored under another token's digest".to_owned(),
            ));
        }
        Ok(Some(Arc::new(record)))
    }

    pub(super) async fn collect(
        &self,
        organization: &str,
    ) -> Result<Vec<Arc<TokenRecord>>, StoreError> {
        let listing = sqlx::query(&self.queries.list)
            .bind(organization.to_owned())
            .fetch_all(&self.pool);
        let rows = self.within("list tokens", listing).await?;
        rows.iter()
            .map(|row| row::record(row).map(Arc::new))
            .collect()
    }

    pub(super) async fn delete(&self, organization: &str, id: Uuid) -> Result<bool, StoreError> {
        let revoke = sqlx::query(&self.queries.revoke)
            .bind(id.hyphenated().to_string())
            .bind(organization.to_owned());
        let deleting = async {
            let mut write = self.begin_write(None).await?;
            let deleted = !write.fetch_all(revoke).await?.is_empty();
            write.commit().await?;
            Ok(deleted)
        };
        self.written("revoke a token", deleting).await
    }

    pub(super) async fn touch(&self, id: Uuid, at: Timestamp) -> Result<(), StoreError> {
        let record_use = sqlx::query(&self.queries.record_use)
            .bind(row::millis(at)?)
            .bind(id.hyphenated().to_string());
        let touching = async {
            let mut write = self.begin_write(None).await?;
            write.execute(record_use).await?;
            write.commit().await
        };
        self.written("record a use", touching).await
    }
}
