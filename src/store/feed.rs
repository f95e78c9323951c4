//! How a shared store announces revocations to the instances in front of it: the
//! [`RevocationFeed`] it offers (Redis pub/sub, Postgres `LISTEN`/`NOTIFY`), its
//! [`RevocationSubscription`]s and their [`Announcement`]s. The
//! [`RevocationListener`](super::RevocationListener) applies them to a
//! [`CachingStore`](super::CachingStore).

use std::future::Future;

use super::{StoreError, TokenStore};
use crate::token::TokenDigest;

/// A store shared by many instances that announces every revocation to the instances listening,
/// so that a [`CachingStore`](super::CachingStore) in front of it drops a revoked token at once
/// instead of within its cache lifetime.
#[cfg_attr(docsrs, doc(cfg(any(feature = "redis", feature = "postgres"))))]
pub trait RevocationFeed: TokenStore + Clone {
    /// A live subscription to the store's announcements.
    type Subscription: RevocationSubscription;

    /// Subscribes: every revocation committed after this returns is announced on the
    /// subscription, until it fails.
    fn subscribe(&self) -> impl Future<Output = Result<Self::Subscription, StoreError>> + Send;
}

/// Revocation announcements, as they arrive.
#[cfg_attr(docsrs, doc(cfg(any(feature = "redis", feature = "postgres"))))]
pub trait RevocationSubscription: Send + 'static {
    /// The next announcement. An error means the subscription is lost, and announcements made
    /// meanwhile may be missed; the listener then subscribes again.
    fn next(&mut self) -> impl Future<Output = Result<Announcement, StoreError>> + Send;
}

/// What one revocation announcement says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
#[cfg_attr(docsrs, doc(cfg(any(feature = "redis", feature = "postgres"))))]
pub enum Announcement {
    /// The token whose secret has this digest was revoked.
    Token(TokenDigest),
    /// Impersonation JWTs were revoked: the JWT revocations must be read again.
    JwtRevocations,
    /// An announcement that could not be read: any token may have been revoked.
    Unreadable,
}

/// The payload announcing JWT revocations; a token's is its digest's 64 hex characters.
pub(crate) const JWT_REVOCATIONS: &str = "jwt";

impl Announcement {
    /// Reads an announcement's payload.
    pub(crate) fn parse(payload: &str) -> Self {
        if payload == JWT_REVOCATIONS {
            return Self::JwtRevocations;
        }
        TokenDigest::from_hex(payload).map_or(Self::Unreadable, Self::Token)
    }
}
