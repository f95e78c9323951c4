//! The stored form of an impersonation token.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    role::Roles,
    time::Timestamp,
    token::{LastFour, TokenDigest, TokenPrefix, TokenSecret, masked},
    usage::LastUsed,
};

/// One impersonation token as a store keeps it: everything but the secret, which is kept only as its
/// digest.
///
/// Made by [`TokenRecord::issue`], or read back from a store's serialized form; it may gain
/// fields, so it is not built field by field outside this crate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TokenRecord {
    /// The token's own id, used to revoke it; unrelated to the secret.
    pub id: Uuid,
    /// The SHA-256 digest of the secret: the lookup key.
    #[serde(with = "digest_hex")]
    pub digest: TokenDigest,
    /// The workspace (organization) whose members the token may act as.
    pub organization: Arc<str>,
    /// An optional label chosen by the creator.
    pub name: Option<String>,
    /// The scopes the token grants.
    pub roles: Roles,
    /// When the token was created.
    pub created_at: Timestamp,
    /// The id of the admin who created the token.
    pub created_by: Arc<str>,
    /// The last four characters of the secret, for the masked listing.
    pub last_four: LastFour,
    /// When the token stops working, if ever.
    pub expires_at: Option<Timestamp>,
    /// When the token was last used.
    #[serde(default)]
    pub last_used: LastUsed,
    /// The ids of the members the token may act as; `None`: any member of the organization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users: Option<Arc<[String]>>,
}

impl TokenRecord {
    /// Draws a new secret for `organization` and the record that stores it: the secret goes to the
    /// creator once, the record to the store.
    pub fn issue(
        prefix: &TokenPrefix,
        organization: impl Into<Arc<str>>,
        created_by: impl Into<Arc<str>>,
        roles: Roles,
    ) -> (TokenSecret, TokenRecord) {
        let secret = TokenSecret::generate(prefix);
        let record = TokenRecord {
            id: Uuid::new_v4(),
            digest: secret.digest(),
            organization: organization.into(),
            name: None,
            roles,
            created_at: Timestamp::now(),
            created_by: created_by.into(),
            last_four: secret.last_four(),
            expires_at: None,
            last_used: LastUsed::default(),
            users: None,
        };
        (secret, record)
    }

    /// Whether the token may act as the member with id `user_id`: any member unless the token
    /// was narrowed to some.
    pub fn may_act_as(&self, user_id: &str) -> bool {
        self.users
            .as_ref()
            .is_none_or(|users| users.iter().any(|id| id == user_id))
    }

    /// Whether the token was narrowed to some members.
    pub fn is_narrowed(&self) -> bool {
        self.users.is_some()
    }

    /// Whether the token has expired at `now`.
    pub fn is_expired(&self, now: Timestamp) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }

    /// The token as listings show it, e.g. `GINT:IMP:xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxc622`.
    pub fn masked_token(&self, prefix: &str) -> String {
        masked(prefix, self.last_four)
    }
}

mod digest_hex {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    use crate::token::TokenDigest;

    pub(super) fn serialize<S: Serializer>(digest: &TokenDigest, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&digest.to_hex())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<TokenDigest, D::Error> {
        let hex = String::deserialize(d)?;
        TokenDigest::from_hex(&hex)
            .ok_or_else(|| D::Error::custom("digest must be 64 lowercase hex characters"))
    }
}
