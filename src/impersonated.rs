//! [`ImpersonatedUser`]: what the inner service learns about an accepted impersonation.

use std::sync::Arc;

use uuid::Uuid;

use crate::{directory::User, record::TokenRecord, role::Roles};

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

/// The request extension the layer adds to every accepted impersonated request.
///
/// The inner service reads it to act as [`ImpersonatedUser::user`]; with the `axum` feature it is
/// also an extractor.
#[derive(Clone, Debug)]
pub struct ImpersonatedUser {
    user: Arc<User>,
    organization: Option<Arc<str>>,
    actor: Actor,
    roles: Roles,
    source: CredentialSource,
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
        Self {
            user,
            organization,
            actor,
            roles,
            source,
        }
    }

    /// The user being acted as.
    pub fn user(&self) -> &User {
        &self.user
    }

    /// The organization the impersonation happens in; `None` only for a JWT minted elsewhere
    /// without an `org` claim.
    pub fn organization(&self) -> Option<&str> {
        self.organization.as_deref()
    }

    /// Who is acting.
    pub fn actor(&self) -> &Actor {
        &self.actor
    }

    /// The scopes in effect.
    pub fn roles(&self) -> &Roles {
        &self.roles
    }

    /// How the credential arrived.
    pub fn source(&self) -> CredentialSource {
        self.source
    }
}
