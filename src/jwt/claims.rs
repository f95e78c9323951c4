//! The claims of an impersonation JWT.

use serde::{Deserialize, Serialize};

/// The RFC 8693 actor claim: who is acting.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActorClaim {
    /// The admin's user id.
    pub sub: String,
}

/// The claims of an impersonation JWT: `user_id` and `exp`, and what this crate adds.
///
/// Tokens minted elsewhere carrying only `user_id` and `exp` are accepted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImpersonationClaims {
    /// The impersonated user's id.
    pub user_id: String,
    /// Expiry, in seconds since the epoch.
    pub exp: u64,
    /// Issue time, in seconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// A unique id for this token, for audit trails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// The organization the impersonation happens in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
    /// The admin who asked for the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<ActorClaim>,
    /// Role scopes; full access when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
}
