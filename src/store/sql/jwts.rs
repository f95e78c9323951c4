//! An [`SqlStore`]'s JWT operations: record, list and revoke minted JWTs, and read the
//! revocations in force.

use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Type};
use uuid::Uuid;

use super::{
    SqlDatabase, SqlStore, row,
    write::{Write, WriteError},
};
use crate::{
    jwt::{JwtRevocations, MintedJwt, UserRevocation},
    store::StoreError,
    time::Timestamp,
};

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
    pub(super) async fn insert_jwt(&self, jwt: MintedJwt) -> Result<(), StoreError> {
        let now = row::millis(Timestamp::now())?;
        let queries = &self.queries;
        let insert = row::bind_jwt(sqlx::query(&queries.record_jwt), &jwt)?;
        let inserting = async {
            let mut write = self.begin_write(None).await?;
            for forget in [
                &queries.forget_expired_jwts,
                &queries.forget_expired_user_revocations,
            ] {
                write.execute(sqlx::query(forget).bind(now)).await?;
            }
            write.execute(insert).await?;
            write.commit().await
        };
        self.written("record a JWT", inserting).await
    }

    pub(super) async fn collect_jwts(
        &self,
        organization: &str,
        now: Timestamp,
    ) -> Result<Vec<MintedJwt>, StoreError> {
        let listing = sqlx::query(&self.queries.list_jwts)
            .bind(organization.to_owned())
            .bind(row::millis(now)?)
            .fetch_all(&self.pool);
        let rows = self.within("list JWTs", listing).await?;
        rows.iter().map(row::minted_jwt).collect()
    }

    pub(super) async fn revoke_one_jwt(
        &self,
        organization: &str,
        jti: Uuid,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let revoke = sqlx::query(&self.queries.revoke_jwt)
            .bind(organization.to_owned())
            .bind(row::millis(now)?)
            .bind(jti.hyphenated().to_string());
        let revoking = async {
            let mut write = self.begin_write(None).await?;
            let revoked = !write.fetch_all(revoke).await?.is_empty();
            if revoked {
                self.announce_jwt_revocations(&mut write).await?;
            }
            write.commit().await?;
            Ok(revoked)
        };
        self.written("revoke a JWT", revoking).await
    }

    pub(super) async fn revoke_all_user_jwts(
        &self,
        revocation: UserRevocation,
    ) -> Result<(), StoreError> {
        let revoke = sqlx::query(&self.queries.revoke_user_jwts)
            .bind(revocation.organization.to_string())
            .bind(revocation.user_id.to_string())
            .bind(row::millis(revocation.cutoff)?)
            .bind(row::millis(revocation.forget_at)?);
        let revoking = async {
            let mut write = self.begin_write(None).await?;
            write.execute(revoke).await?;
            self.announce_jwt_revocations(&mut write).await?;
            write.commit().await
        };
        self.written("revoke a user's JWTs", revoking).await
    }

    /// Announces JWT revocations when `write` commits, where the backend can.
    async fn announce_jwt_revocations(&self, write: &mut Write<DB>) -> Result<(), WriteError> {
        if let Some(announce) = &self.queries.announce_jwt_revocations {
            write.execute(sqlx::query(announce)).await?;
        }
        Ok(())
    }

    pub(super) async fn read_jwt_revocations(
        &self,
        now: Timestamp,
    ) -> Result<JwtRevocations, StoreError> {
        let now = row::millis(now)?;
        let queries = &self.queries;
        let reading = async {
            let jtis = sqlx::query(&queries.revoked_jtis)
                .bind(now)
                .fetch_all(&self.pool)
                .await?;
            let users = sqlx::query(&queries.user_revocations)
                .bind(now)
                .fetch_all(&self.pool)
                .await?;
            Ok((jtis, users))
        };
        let (jtis, users) = self.within("read JWT revocations", reading).await?;
        row::jwt_revocations(&jtis, &users)
    }
}
