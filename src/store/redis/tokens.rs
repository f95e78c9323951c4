//! A [`RedisStore`]'s token operations: create, look up, list, revoke, and record a use.

use std::sync::Arc;

use redis::aio::ConnectionManager;
use uuid::Uuid;

use super::RedisStore;
use crate::{record::TokenRecord, store::StoreError, time::Timestamp, usage::LastUsed};

impl RedisStore {
    fn token_key(&self, digest_hex: &str) -> String {
        format!("{}token:{digest_hex}", self.prefix)
    }

    fn id_key(&self, id: Uuid) -> String {
        format!("{}id:{}", self.prefix, id.hyphenated())
    }

    fn organization_key(&self, organization: &str) -> String {
        format!("{}org:{organization}", self.prefix)
    }

    pub(super) async fn insert(&self, record: TokenRecord, limit: usize) -> Result<(), StoreError> {
        let json = serde_json::to_string(&record)
            .map_err(|error| StoreError::Encode(error.to_string()))?;
        let digest_hex = record.digest.to_hex();
        let optional = |value: Option<u64>| value.map_or_else(String::new, |v| v.to_string());
        let mut invocation = self.scripts.create.prepare_invoke();
        invocation
            .key(self.token_key(&digest_hex))
            .key(self.id_key(record.id))
            .key(self.organization_key(&record.organization))
            .arg(if limit == usize::MAX {
                String::new()
            } else {
                limit.to_string()
            })
            .arg(&*self.prefix)
            .arg(record.id.hyphenated().to_string())
            .arg(&digest_hex)
            .arg(&json)
            .arg(&*record.organization)
            .arg(optional(record.last_used.get().map(Timestamp::as_millis)));
        match self.invoke::<u8>("create", &invocation).await? {
            1 => Ok(()),
            _ => Err(StoreError::LimitReached { limit }),
        }
    }

    pub(super) async fn find(
        &self,
        digest_hex: String,
    ) -> Result<Option<Arc<TokenRecord>>, StoreError> {
        let mut command = redis::cmd("HMGET");
        command
            .arg(self.token_key(&digest_hex))
            .arg("record")
            .arg("last_used");
        let command = &command;
        let query = |mut connection: ConnectionManager| async move {
            command
                .query_async::<(Option<String>, Option<u64>)>(&mut connection)
                .await
        };
        let (json, last_used) = self.send("lookup", query).await?;
        let Some(json) = json else {
            return Ok(None);
        };
        let record = decode(&json, last_used)?;
        if record.digest.to_hex() != digest_hex {
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
        let mut invocation = self.scripts.list.prepare_invoke();
        invocation
            .key(self.organization_key(organization))
            .arg(&*self.prefix);
        let fields = self.invoke::<Vec<String>>("list", &invocation).await?;
        let mut records = fields
            .chunks(2)
            .map(|pair| {
                let last_used = match pair.get(1).map(String::as_str) {
                    None | Some("") => None,
                    Some(millis) => Some(millis.parse::<u64>().map_err(|_| {
                        StoreError::Decode("a last use is not a number".to_owned())
                    })?),
                };
                decode(&pair[0], last_used).map(Arc::new)
            })
            .collect::<Result<Vec<_>, _>>()?;
        records.sort_by_key(|record| (record.created_at, record.id));
        Ok(records)
    }

    pub(super) async fn delete(&self, organization: &str, id: Uuid) -> Result<bool, StoreError> {
        let mut invocation = self.scripts.revoke.prepare_invoke();
        invocation
            .key(self.id_key(id))
            .key(self.organization_key(organization))
            .arg(&*self.prefix)
            .arg(organization)
            .arg(id.hyphenated().to_string());
        Ok(self.invoke::<i64>("revoke", &invocation).await? == 1)
    }
    pub(super) async fn touch(&self, id: Uuid, at: Timestamp) -> Result<(), StoreError> {
        let mut invocation = self.scripts.record_use.prepare_invoke();
        invocation
            .key(self.id_key(id))
            .arg(&*self.prefix)
            .arg(at.as_millis());
        self.invoke::<i64>("record a use", &invocation).await?;
        Ok(())
    }
}

/// Reads a stored record back, with its separately kept last use.
fn decode(json: &str, last_used: Option<u64>) -> Result<TokenRecord, StoreError> {
    let mut record: TokenRecord =
        serde_json::from_str(json).map_err(|error| StoreError::Decode(error.to_string()))?;
    if let Some(millis) = last_used {
        let at = Timestamp::from_millis(millis);
        let latest = record.last_used.get().map_or(at, |known| known.max(at));
        record.last_used = LastUsed::new(Some(latest));
    }
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_separate_last_use_only_moves_forward() {
        let (_, mut record) = TokenRecord::issue(
            &crate::token::TokenPrefix::default(),
            "acme",
            "admin",
            crate::role::Roles::full_access(),
        );
        record.last_used = LastUsed::new(Some(Timestamp::from_millis(2000)));
        let json = serde_json::to_string(&record).unwrap();
        let later = decode(&json, Some(3000)).unwrap();
        assert_eq!(later.last_used.get(), Some(Timestamp::from_millis(3000)));
        let earlier = decode(&json, Some(1000)).unwrap();
        assert_eq!(earlier.last_used.get(), Some(Timestamp::from_millis(2000)));
        assert_eq!(decode(&json, None).unwrap(), record);
    }
}
