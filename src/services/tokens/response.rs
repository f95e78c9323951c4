//! What the token service answers: the token created, and the listing of an organization's
//! tokens.

use std::sync::Arc;

use serde::Serialize;
use uuid::Uuid;

use crate::{record::TokenRecord, time::Timestamp};

/// The create response: the token, shown this once, its fields, and when it was made and expires.
#[derive(Serialize)]
pub(super) struct Created {
    id: Uuid,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    token: String,
    roles: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    users: Option<Arc<[String]>>,
    #[serde(rename = "dateCreated")]
    date_created: String,
    #[serde(rename = "expiresAt", skip_serializing_if = "Option::is_none")]
    expires_at: Option<String>,
}

impl Created {
    pub(super) fn of(record: &TokenRecord, token: String) -> Self {
        Self {
            id: record.id,
            name: record.name.clone(),
            token,
            roles: record.roles.to_strings(),
            users: record.users.clone(),
            date_created: record.created_at.to_listing_format(),
            expires_at: record.expires_at.map(Timestamp::to_listing_format),
        }
    }
}

/// One entry of the listing: the token masked, and its fields.
#[derive(Serialize)]
pub(super) struct Listed {
    token: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    id: Uuid,
    roles: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    users: Option<Arc<[String]>>,
    #[serde(rename = "dateCreated")]
    date_created: String,
    #[serde(rename = "lastUsed", skip_serializing_if = "Option::is_none")]
    last_used: Option<String>,
    #[serde(rename = "expiresAt", skip_serializing_if = "Option::is_none")]
    expires_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expired: Option<bool>,
}

impl Listed {
    pub(super) fn of(record: &TokenRecord, prefix: &str, now: Timestamp) -> Self {
        Self {
            token: record.masked_token(prefix),
            name: record.name.clone(),
            id: record.id,
            roles: record.roles.to_strings(),
            users: record.users.clone(),
            date_created: record.created_at.to_listing_format(),
            last_used: record.last_used.get().map(Timestamp::to_listing_format),
            expires_at: record.expires_at.map(Timestamp::to_listing_format),
            expired: record.expires_at.map(|_| record.is_expired(now)),
        }
    }
}
