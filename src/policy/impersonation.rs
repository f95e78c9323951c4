//! Impersonation policies: whether an actor may act as a given member.

use crate::{directory::Member, impersonated::Actor};

/// Decides whether `actor` may act as `target`, after the target was found in the organization.
///
/// Closures `Fn(&Actor, &Member) -> bool` are policies too. A refusal answers 403 with the same
/// message as an unknown user, so a policy never reveals who exists.
pub trait ImpersonationPolicy: Send + Sync + 'static {
    /// Whether the impersonation is allowed.
    fn may_impersonate(&self, actor: &Actor, target: &Member) -> bool;
}

impl<F> ImpersonationPolicy for F
where
    F: Fn(&Actor, &Member) -> bool + Send + Sync + 'static,
{
    fn may_impersonate(&self, actor: &Actor, target: &Member) -> bool {
        self(actor, target)
    }
}

/// The default: any member of the organization may be impersonated.
#[derive(Clone, Copy, Debug, Default)]
pub struct AnyMember;

impl ImpersonationPolicy for AnyMember {
    fn may_impersonate(&self, _: &Actor, _: &Member) -> bool {
        true
    }
}

/// Refuses to act as an organization's admins, so impersonation cannot climb to admin rights.
#[derive(Clone, Copy, Debug, Default)]
pub struct DenyAdmins;

impl ImpersonationPolicy for DenyAdmins {
    fn may_impersonate(&self, _: &Actor, target: &Member) -> bool {
        !target.admin
    }
}

/// The ready policy that never impersonates admins.
pub fn deny_admins() -> DenyAdmins {
    DenyAdmins
}
