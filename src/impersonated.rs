//! [`ImpersonatedUser`]: what the inner service learns about an accepted impersonation.

use std::sync::Arc;

use uuid::Uuid;

use crate::{directory::User, jwt::Verified, record::TokenRecord, role::Roles};

/// Who is acting on the impersonated user's behalf.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Actor {
    /// A workspace impersonation token.
    Token(Arc<TokenRecord>),
    /// An organization admin, named by the `act` claim of an impersonation JWT.
    Admin {
        /// The admin's user id.
        user_id: Arc<str>,
    },
    /// A JWT minted elsewhere that does not say who asked for it.
    Unattributed,
}

impl Actor {
    /// The token used, when the actor is a token.
    pub fn token_id(&self) -> Option<Uuid> {
        match self {
            Actor::Token(record) => Some(record.id),
            _ => None,
        }
    }

    /// The user id of the person behind the actor: the token's creator, or the admin.
    pub fn user_id(&self) -> Option<&str> {
        match self {
            Actor::Token(record) => Some(&record.created_by),
            Actor::Admin { user_id } => Some(user_id),
            Actor::Unattributed => None,
        }
    }
}

/// How the impersonation credential arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CredentialSource {
    /// An impersonation token with the user in the user header (`X-Guru-UserID`).
    UserHeader,
    /// An impersonation token with the user appended after a `:`.
    TokenSuffix,
    /// An impersonation token with the same user given both ways.
    HeaderAndSuffix,
    /// An impersonation JWT, which names its own user.
    Jwt,
}

impl CredentialSource {
    /// Whether the user came in the user header.
    pub(crate) const fn has_user_header(self) -> bool {
        matches!(
            self,
            CredentialSource::UserHeader | CredentialSource::HeaderAndSuffix
        )
    }

    /// The source's name in audit events: `user_header`, `token_suffix`, `header_and_suffix` or
    /// `jwt`.
    ///
    /// ```
    /// use tower_impersonation::CredentialSource;
    ///
    /// assert_eq!(CredentialSource::TokenSuffix.as_str(), "token_suffix");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            CredentialSource::UserHeader => "user_header",
            CredentialSource::TokenSuffix => "token_suffix",
            CredentialSource::HeaderAndSuffix => "header_and_suffix",
            CredentialSource::Jwt => "jwt",
        }
    }
}

/// The request extension the layer adds to every accepted impersonated request.
///
/// The inner service reads it to act as [`ImpersonatedUser::user`]; with the `axum` feature it is
/// also an extractor.
#[derive(Clone, Debug)]
pub struct ImpersonatedUser {
    user: Arc<User>,
    actor: Actor,
    grant: Grant,
    source: CredentialSource,
}

/// Where the organization and roles come from. The layer points at the token record or verified
/// JWT it already holds rather than cloning their parts: every token of an organization shares
/// the organization's `Arc`, and bumping one shared count per request makes cores fight over it.
#[derive(Clone, Debug)]
enum Grant {
    /// The actor's token record.
    Token,
    /// A verified JWT.
    Jwt(Arc<Verified>),
    /// Given as they are.
    Given {
        organization: Option<Arc<str>>,
        roles: Roles,
    },
}

impl ImpersonatedUser {
    /// Assembles an impersonated user; the layer does this, tests of an app may too.
    pub fn new(
        user: Arc<User>,
        organization: Option<Arc<str>>,
        actor: Actor,
        roles: Roles,
        source: CredentialSource,
    ) -> Self {
        let grant = Grant::Given {
            organization,
            roles,
        };
        Self {
            user,
            actor,
            grant,
            source,
        }
    }

    /// Acting through a token, `actor` being [`Actor::Token`]: organization and roles are its
    /// record's (none for any other actor).
    pub(crate) fn by_token(user: Arc<User>, actor: Actor, source: CredentialSource) -> Self {
        Self {
            user,
            actor,
            grant: Grant::Token,
            source,
        }
    }

    /// Acting through a verified JWT.
    pub(crate) fn by_jwt(user: Arc<User>, actor: Actor, verified: Arc<Verified>) -> Self {
        Self {
            user,
            actor,
            grant: Grant::Jwt(verified),
            source: CredentialSource::Jwt,
        }
    }

    /// The user being acted as.
    pub fn user(&self) -> &User {
        &self.user
    }

    /// The organization the impersonation happens in; `None` only for a JWT minted elsewhere
    /// without an `org` claim.
    pub fn organization(&self) -> Option<&str> {
        match (&self.grant, &self.actor) {
            (Grant::Token, Actor::Token(record)) => Some(&record.organization),
            (Grant::Jwt(verified), _) => verified.organization.as_deref(),
            (Grant::Given { organization, .. }, _) => organization.as_deref(),
            (Grant::Token, _) => None,
        }
    }

    /// Who is acting.
    pub fn actor(&self) -> &Actor {
        &self.actor
    }

    /// The scopes in effect.
    pub fn roles(&self) -> &Roles {
        match (&self.grant, &self.actor) {
            (Grant::Token, Actor::Token(record)) => &record.roles,
            (Grant::Jwt(verified), _) => &verified.roles,
            (Grant::Given { roles, .. }, _) => roles,
            (Grant::Token, _) => Roles::none(),
        }
    }

    /// How the credential arrived.
    pub fn source(&self) -> CredentialSource {
        self.source
    }
}
