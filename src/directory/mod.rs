//! Who the users are: the [`UserDirectory`] trait and a ready [`StaticDirectory`].

mod static_directory;

use std::{fmt, future::Future, sync::Arc};

use serde::{Deserialize, Serialize};

pub use static_directory::{DirectoryData, MemberData, OrganizationData, StaticDirectory};

/// A user who can be impersonated.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// The user's stable id.
    pub id: String,
    /// The user's email address.
    pub email: String,
    /// The user's display name.
    pub name: String,
}

/// A user as a member of one organization.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// The user.
    pub user: Arc<User>,
    /// Whether the user administers that organization.
    pub admin: bool,
}

/// One organization a user belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    /// The organization's id.
    pub organization: Arc<str>,
    /// Whether the user administers it.
    pub admin: bool,
}

/// A user with every organization it belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserWithMemberships {
    /// The user.
    pub user: Arc<User>,
    /// The user's organizations.
    pub memberships: Arc<[Membership]>,
}

impl Member {
    /// The same member in memory of its own, shared with no one.
    pub(crate) fn own_copy(&self) -> Self {
        Self {
            user: Arc::new(User::clone(&self.user)),
            admin: self.admin,
        }
    }
}

impl UserWithMemberships {
    /// The same user and memberships in memory of their own, shared with no one.
    pub(crate) fn own_copy(&self) -> Self {
        Self {
            user: Arc::new(User::clone(&self.user)),
            memberships: Arc::from(&*self.memberships),
        }
    }

    /// The user's membership of `organization`, if any.
    pub fn membership(&self, organization: &str) -> Option<&Membership> {
        self.memberships
            .iter()
            .find(|m| &*m.organization == organization)
    }
}

/// Finds users: by whatever a caller names them with inside an organization, or by id alone.
///
/// An implementation decides what a name may be (email, id, display name, alias) and must answer
/// `None` for a name that matches more than one member, so an ambiguous name never picks a user.
pub trait UserDirectory: Send + Sync + 'static {
    /// The member of `organization` named `who` (an email, id, name or alias).
    fn resolve(
        &self,
        organization: &str,
        who: &str,
    ) -> impl Future<Output = Result<Option<Member>, DirectoryError>> + Send;

    /// The user with this id, with its organizations.
    fn user_by_id(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<UserWithMemberships>, DirectoryError>> + Send;

    /// Whether the user with id `user_id` administers `organization`: `false` for an unknown
    /// user or one outside it. The layer asks on every impersonated request, so a credential
    /// stops working once the admin behind it loses the role.
    ///
    /// The default asks [`UserDirectory::user_by_id`]; a directory that can tell more cheaply
    /// overrides it.
    fn is_admin(
        &self,
        organization: &str,
        user_id: &str,
    ) -> impl Future<Output = Result<bool, DirectoryError>> + Send {
        let found = self.user_by_id(user_id);
        async move {
            found
                .await
                .map(|found| administers(found.as_ref(), organization))
        }
    }

    /// The answer of [`UserDirectory::is_admin`] if it is at hand without waiting; `None`
    /// means "ask `is_admin`". The default asks [`UserDirectory::user_by_id_now`].
    fn is_admin_now(
        &self,
        organization: &str,
        user_id: &str,
    ) -> Option<Result<bool, DirectoryError>> {
        self.user_by_id_now(user_id)
            .map(|found| found.map(|found| administers(found.as_ref(), organization)))
    }

    /// The answer of [`UserDirectory::resolve`] if it is at hand without waiting; `None` (the
    /// default) means "ask `resolve`".
    fn resolve_now(
        &self,
        organization: &str,
        who: &str,
    ) -> Option<Result<Option<Member>, DirectoryError>> {
        let _ = (organization, who);
        None
    }

    /// The answer of [`UserDirectory::user_by_id`] if it is at hand without waiting; `None` (the
    /// default) means "ask `user_by_id`".
    fn user_by_id_now(
        &self,
        id: &str,
    ) -> Option<Result<Option<UserWithMemberships>, DirectoryError>> {
        let _ = id;
        None
    }
}

impl<T: UserDirectory> UserDirectory for Arc<T> {
    fn resolve(
        &self,
        organization: &str,
        who: &str,
    ) -> impl Future<Output = Result<Option<Member>, DirectoryError>> + Send {
        (**self).resolve(organization, who)
    }

    fn user_by_id(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<UserWithMemberships>, DirectoryError>> + Send {
        (**self).user_by_id(id)
    }

    fn resolve_now(
        &self,
        organization: &str,
        who: &str,
    ) -> Option<Result<Option<Member>, DirectoryError>> {
        (**self).resolve_now(organization, who)
    }

    fn user_by_id_now(
        &self,
        id: &str,
    ) -> Option<Result<Option<UserWithMemberships>, DirectoryError>> {
        (**self).user_by_id_now(id)
    }

    fn is_admin(
        &self,
        organization: &str,
        user_id: &str,
    ) -> impl Future<Output = Result<bool, DirectoryError>> + Send {
        (**self).is_admin(organization, user_id)
    }

    fn is_admin_now(
        &self,
        organization: &str,
        user_id: &str,
    ) -> Option<Result<bool, DirectoryError>> {
        (**self).is_admin_now(organization, user_id)
    }
}

/// Whether `found` administers `organization`.
fn administers(found: Option<&UserWithMemberships>, organization: &str) -> bool {
    found
        .and_then(|user| user.membership(organization))
        .is_some_and(|membership| membership.admin)
}

/// Why a directory could not answer. Messages never contain a secret.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DirectoryError {
    /// The directory's backend could not be reached or failed; the request may be retried
    /// later.
    Backend(String),
}

impl fmt::Display for DirectoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DirectoryError::Backend(why) => write!(f, "user directory unavailable: {why}"),
        }
    }
}

impl std::error::Error for DirectoryError {}

#[cfg(test)]
mod tests {
    use super::DirectoryError;

    #[test]
    fn a_directory_error_says_the_directory_is_unavailable_and_why() {
        let error = DirectoryError::Backend("connection refused".to_owned());
        assert_eq!(
            error.to_string(),
            "user directory unavailable: connection refused"
        );
    }
}
