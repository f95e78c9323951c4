//! Where impersonation tokens are kept: the [`TokenStore`] trait and its backends.

mod memory;

use std::{fmt, future::Future, sync::Arc};

use uuid::Uuid;

pub use memory::MemoryStore;

use crate::{record::TokenRecord, time::Timestamp, token::TokenDigest};

/// Keeps token records, keyed by the digest of their secret.
///
/// Methods return `impl Future + Send`, so a networked store is as welcome as [`MemoryStore`]; an
/// implementation holds no lock across an `.await`. A method that fails leaves what was stored as it
/// was.
pub trait TokenStore: Send + Sync + 'static {
    /// Stores a new record; its id and digest are fresh.
    fn create(&self, record: TokenRecord) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Finds the record whose secret has this digest.
    fn lookup(
        &self,
        digest: &TokenDigest,
    ) -> impl Future<Output = Result<Option<Arc<TokenRecord>>, StoreError>> + Send;

    /// Every token of an organization, oldest first.
    fn list(
        &self,
        organization: &str,
    ) -> impl Future<Output = Result<Vec<Arc<TokenRecord>>, StoreError>> + Send;

    /// Deletes the token `id` if it belongs to `organization`; `false` when there is no such token.
    fn revoke(
        &self,
        organization: &str,
        id: Uuid,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Notes that token `id` was used at `at`; callers throttle this, so it need not be cheap.
    fn record_use(
        &self,
        id: Uuid,
        at: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

impl<T: TokenStore> TokenStore for Arc<T> {
    fn create(&self, record: TokenRecord) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).create(record)
    }

    fn lookup(
        &self,
        digest: &TokenDigest,
    ) -> impl Future<Output = Result<Option<Arc<TokenRecord>>, StoreError>> + Send {
        (**self).lookup(digest)
    }

    fn list(
        &self,
        organization: &str,
    ) -> impl Future<Output = Result<Vec<Arc<TokenRecord>>, StoreError>> + Send {
        (**self).list(organization)
    }

    fn revoke(
        &self,
        organization: &str,
        id: Uuid,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        (**self).revoke(organization, id)
    }

    fn record_use(
        &self,
        id: Uuid,
        at: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).record_use(id, at)
    }
}

/// Why a store could not answer. Messages never contain a secret.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend could not be reached or failed; the request may be retried later.
    Backend(String),
    /// A stored record could not be read back.
    Decode(String),
    /// A record could not be written in the backend's format.
    Encode(String),
    /// The organization already holds as many tokens as allowed.
    LimitReached {
        /// The configured limit.
        limit: usize,
    },
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Backend(why) => write!(f, "token store unavailable: {why}"),
            StoreError::Decode(why) => write!(f, "stored token record unreadable: {why}"),
            StoreError::Encode(why) => write!(f, "token record could not be encoded: {why}"),
            StoreError::LimitReached { limit } => {
                write!(
                    f,
                    "the organization already has {limit} tokens, the most allowed"
                )
            }
        }
    }
}

impl std::error::Error for StoreError {}
