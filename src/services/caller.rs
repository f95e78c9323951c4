//! [`Caller`]: who the host app says is calling a service.

use std::sync::Arc;

/// The authenticated caller of a service, put in the request extensions by the host app's own
/// authentication.
///
/// Without one a service answers 401; a caller who is not an admin of the organization concerned
/// gets 403.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// The caller's user id.
    pub user_id: Arc<str>,
    /// The organization the caller acts in.
    pub organization: Arc<str>,
    /// Whether the caller administers that organization.
    pub admin: bool,
}

impl Caller {
    /// A caller.
    pub fn new(
        user_id: impl Into<Arc<str>>,
        organization: impl Into<Arc<str>>,
        admin: bool,
    ) -> Self {
        Self {
            user_id: user_id.into(),
            organization: organization.into(),
            admin,
        }
    }

    /// Whether the caller administers `organization`.
    pub fn administers(&self, organization: &str) -> bool {
        self.admin && &*self.organization == organization
    }
}
