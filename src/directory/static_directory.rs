//! A directory built once from data, for tests, examples and small deployments.

use std::{cell::RefCell, collections::HashMap, future::Future, sync::Arc};

use arc_swap::ArcSwap;
use foldhash::fast::RandomState;

/// The maps hash with foldhash rather than SipHash: the layer looks a name up on every
/// impersonated request, and the keys come from the app's data, never from clients, so a client
/// cannot fill a map with colliding keys.
type Map<K, V> = HashMap<K, V, RandomState>;

/// Lowercased name -> member of one organization, or `None` when the name is ambiguous.
type Names = Map<Box<str>, Option<Member>>;

use serde::{Deserialize, Serialize};

use super::{DirectoryError, Member, Membership, User, UserDirectory, UserWithMemberships};
use crate::thread_copies::{ThreadCopies, find_through, hash_of, new_source};

/// The serde form of a [`StaticDirectory`]:
/// `{"organizations": [{"id", "name", "members": [{"id", "email", "name", "admin", "aliases"}]}]}`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct DirectoryData {
    /// The organizations.
    pub organizations: Vec<OrganizationData>,
}

/// One organization of a [`DirectoryData`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OrganizationData {
    /// The organization's id.
    pub id: String,
    /// Its display name.
    #[serde(default)]
    pub name: String,
    /// Its members.
    #[serde(default)]
    pub members: Vec<MemberData>,
}

/// One member of an [`OrganizationData`]. Unknown fields (an app's own `api_key`, say) are ignored.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MemberData {
    /// The user's id.
    pub id: String,
    /// The user's email.
    pub email: String,
    /// The user's display name.
    #[serde(default)]
    pub name: String,
    /// Whether the user administers the organization.
    #[serde(default)]
    pub admin: bool,
    /// Other addresses the user is known by (key or relay emails).
    #[serde(default)]
    pub aliases: Vec<String>,
}

/// A user directory held in memory, built from [`DirectoryData`].
///
/// A user is found by id, email, display name or alias, ignoring case. A name shared by two members
/// of one organization finds neither.
///
/// Clones share one directory: [`StaticDirectory::replace`] through any clone replaces it for
/// all at once, so an app can hand clones to the layer and the services and reload its users
/// while serving. A request sees either the old directory or the new one, never a mix.
///
/// ```
/// use tower_impersonation::StaticDirectory;
///
/// let directory = StaticDirectory::from_json(r#"{"organizations": [{"id": "acme",
///     "members": [{"id": "u1", "email": "ada@acme.test", "admin": true}]}]}"#).unwrap();
/// let served = directory.clone(); // given to the layer
/// directory.replace_from_json(r#"{"organizations": [{"id": "acme",
///     "members": [{"id": "u1", "email": "ada@acme.test", "admin": false}]}]}"#).unwrap();
/// # let _ = served;
/// ```
#[derive(Clone, Debug, Default)]
pub struct StaticDirectory {
    current: Arc<ArcSwap<Indexes>>,
}

/// The lookups of one version of the directory.
#[derive(Debug)]
struct Indexes {
    /// Tells this version's members and users apart from another's in [`ThreadCopies`].
    source: u64,
    members: Map<Arc<str>, Names>,
    users: Map<String, UserWithMemberships>,
}

impl Default for Indexes {
    fn default() -> Self {
        Self {
            source: new_source(),
            members: Map::default(),
            users: Map::default(),
        }
    }
}

/// An organization and a name a member was found by.
type OrganizationAndName = (Box<str>, Box<str>);

thread_local! {
    /// This thread's copies of the members it found, by organization and name.
    static MEMBERS: RefCell<ThreadCopies<OrganizationAndName, Member>> =
        const { RefCell::new(ThreadCopies::new()) };
    /// This thread's copies of the users it found by id.
    static USERS: RefCell<ThreadCopies<Box<str>, UserWithMemberships>> =
        const { RefCell::new(ThreadCopies::new()) };
}

impl StaticDirectory {
    /// Builds the directory and its indexes.
    pub fn new(data: DirectoryData) -> Self {
        Self {
            current: Arc::new(ArcSwap::from_pointee(Indexes::new(data))),
        }
    }

    /// Builds the directory from its JSON form.
    pub fn from_json(json: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(json).map(Self::new)
    }

    /// Replaces the directory, for this handle and every clone of it, with one built from
    /// `data`. Requests already past their lookups keep what they found.
    pub fn replace(&self, data: DirectoryData) {
        self.current.store(Arc::new(Indexes::new(data)));
    }

    /// Replaces the directory with one built from its JSON form; a document that does not parse
    /// leaves the directory as it was.
    pub fn replace_from_json(&self, json: &str) -> Result<(), serde_json::Error> {
        let data = serde_json::from_str(json)?;
        self.replace(data);
        Ok(())
    }

    /// The member named `who`, as this thread's own copy once the thread keeps finding them (a
    /// token in steady use names the same member on every request).
    fn find(&self, organization: &str, who: &str) -> Option<Member> {
        let indexes = self.current.load();
        find_through(
            &MEMBERS,
            indexes.source,
            hash_of((organization, who)),
            |(kept_organization, kept_who), _| {
                **kept_organization == *organization && **kept_who == *who
            },
            Member::own_copy,
            || indexes.find(organization, who),
            || (organization.into(), who.into()),
        )
    }

    /// The user with this id, as this thread's own copy once the thread has found them before.
    fn user(&self, id: &str) -> Option<UserWithMemberships> {
        let indexes = self.current.load();
        find_through(
            &USERS,
            indexes.source,
            hash_of(id),
            |kept, _| **kept == *id,
            UserWithMemberships::own_copy,
            || indexes.users.get(id).cloned(),
            || id.into(),
        )
    }

    fn administers(&self, organization: &str, user_id: &str) -> bool {
        self.current
            .load()
            .users
            .get(user_id)
            .and_then(|user| user.membership(organization))
            .is_some_and(|membership| membership.admin)
    }
}

impl Indexes {
    fn new(data: DirectoryData) -> Self {
        let mut indexes = Self::default();
        for organization in data.organizations {
            let org: Arc<str> = organization.id.into();
            for member in organization.members {
                indexes.add(&org, member);
            }
        }
        indexes
    }

    fn add(&mut self, organization: &Arc<str>, data: MemberData) {
        let user = match self.users.get(&data.id) {
            Some(known) => Arc::clone(&known.user),
            None => Arc::new(User {
                id: data.id.clone(),
                email: data.email.clone(),
                name: data.name.clone(),
            }),
        };
        let member = Member {
            user: Arc::clone(&user),
            admin: data.admin,
        };
        let names = [&data.id, &data.email, &data.name]
            .into_iter()
            .chain(&data.aliases)
            .filter(|name| !name.is_empty());
        let by_name = self.members.entry(Arc::clone(organization)).or_default();
        for name in names {
            let slot = by_name
                .entry(name.to_lowercase().into())
                .or_insert_with(|| Some(member.clone()));
            let same_user = slot.as_ref().is_some_and(|m| m.user.id == user.id);
            if !same_user {
                *slot = None;
            }
        }
        let entry = self
            .users
            .entry(data.id)
            .or_insert_with(|| UserWithMemberships {
                user,
                memberships: Arc::from([]),
            });
        let membership = Membership {
            organization: Arc::clone(organization),
            admin: data.admin,
        };
        entry.memberships = entry
            .memberships
            .iter()
            .cloned()
            .chain([membership])
            .collect();
    }

    fn find(&self, organization: &str, who: &str) -> Option<Member> {
        let by_name = self.members.get(organization)?;
        // Most names arrive lowercase already: look them up without allocating.
        let found = if has_capitals(who) {
            by_name.get(who.to_lowercase().as_str())
        } else {
            by_name.get(who)
        };
        found.cloned().flatten()
    }
}

/// Whether `who` has a capital letter; ASCII, the usual case, in one vectorised pass.
fn has_capitals(who: &str) -> bool {
    if who.is_ascii() {
        who.bytes()
            .fold(false, |found, b| found | b.is_ascii_uppercase())
    } else {
        who.chars().any(char::is_uppercase)
    }
}

impl UserDirectory for StaticDirectory {
    fn resolve(
        &self,
        organization: &str,
        who: &str,
    ) -> impl Future<Output = Result<Option<Member>, DirectoryError>> + Send {
        std::future::ready(Ok(self.find(organization, who)))
    }

    fn user_by_id(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<UserWithMemberships>, DirectoryError>> + Send {
        std::future::ready(Ok(self.user(id)))
    }

    fn is_admin(
        &self,
        organization: &str,
        user_id: &str,
    ) -> impl Future<Output = Result<bool, DirectoryError>> + Send {
        std::future::ready(Ok(self.administers(organization, user_id)))
    }

    fn resolve_now(
        &self,
        organization: &str,
        who: &str,
    ) -> Option<Result<Option<Member>, DirectoryError>> {
        Some(Ok(self.find(organization, who)))
    }

    fn user_by_id_now(
        &self,
        id: &str,
    ) -> Option<Result<Option<UserWithMemberships>, DirectoryError>> {
        Some(Ok(self.user(id)))
    }

    fn is_admin_now(
        &self,
        organization: &str,
        user_id: &str,
    ) -> Option<Result<bool, DirectoryError>> {
        Some(Ok(self.administers(organization, user_id)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn directory() -> StaticDirectory {
        StaticDirectory::from_json(
            r#"{"organizations": [
                {"id": "acme", "name": "Acme", "members": [
                    {"id": "u1", "email": "Ada@acme.test", "name": "Ada", "admin": true,
                     "aliases": ["ada.relay@acme.test"], "api_key": "ignored"},
                    {"id": "u2", "email": "bob@acme.test", "name": "Sam"},
                    {"id": "u3", "email": "sam@acme.test", "name": "Sam"}
                ]},
                {"id": "globex", "members": [{"id": "u1", "email": "Ada@acme.test", "name": "Ada"}]}
            ]}"#,
        )
        .unwrap()
    }

    fn resolve(d: &StaticDirectory, org: &str, who: &str) -> Option<String> {
        d.find(org, who).map(|m| m.user.id.clone())
    }

    #[test]
    fn finds_a_member_by_id_email_name_or_alias_ignoring_case() {
        let d = directory();
        for who in ["u1", "ada@ACME.test", "ada", "ada.relay@acme.test"] {
            assert_eq!(resolve(&d, "acme", who).as_deref(), Some("u1"), "{who}");
        }
    }

    #[test]
    fn ambiguous_names_and_other_organizations_find_no_one() {
        let d = directory();
        assert_eq!(resolve(&d, "acme", "Sam"), None);
        assert_eq!(resolve(&d, "globex", "bob@acme.test"), None);
        assert_eq!(resolve(&d, "nowhere", "u1"), None);
    }

    #[test]
    fn a_member_this_thread_keeps_finding_is_found_in_their_organization_only() {
        let d = directory();
        // Four times: kept at the third, copied at the fourth.
        for _ in 0..4 {
            assert_eq!(resolve(&d, "acme", "bob@acme.test").as_deref(), Some("u2"));
        }
        assert_eq!(resolve(&d, "globex", "bob@acme.test"), None);
        assert_eq!(resolve(&d, "acme", "sam@acme.test").as_deref(), Some("u3"));
    }

    #[test]
    fn user_by_id_lists_every_membership() {
        let d = directory();
        let found = d.user("u1").unwrap();
        assert!(found.membership("acme").unwrap().admin);
        assert!(!found.membership("globex").unwrap().admin);
        assert!(found.membership("initech").is_none());
    }
}

#[cfg(test)]
mod replacing {
    use super::*;

    fn acme(ada_is_admin: bool) -> String {
        format!(
            r#"{{"organizations": [{{"id": "acme", "members": [
                {{"id": "u1", "email": "ada@acme.test", "admin": {ada_is_admin}}},
                {{"id": "u2", "email": "bob@acme.test"}}]}}]}}"#
        )
    }

    #[test]
    fn a_replacement_reaches_every_clone() {
        let directory = StaticDirectory::from_json(&acme(true)).unwrap();
        let served = directory.clone();
        assert_eq!(served.is_admin_now("acme", "u1"), Some(Ok(true)));
        directory.replace_from_json(&acme(false)).unwrap();
        assert_eq!(served.is_admin_now("acme", "u1"), Some(Ok(false)));
        assert_eq!(served.find("acme", "bob@acme.test").unwrap().user.id, "u2");
    }

    #[test]
    fn a_thread_that_found_a_user_before_finds_the_replacement() {
        let directory = StaticDirectory::from_json(&acme(true)).unwrap();
        let ada_is_admin =
            |d: &StaticDirectory| d.user("u1").unwrap().membership("acme").unwrap().admin;
        // Four times: kept at the third, copied at the fourth.
        for _ in 0..4 {
            assert_eq!(
                directory.find("acme", "ada@acme.test").unwrap().user.id,
                "u1"
            );
            assert!(ada_is_admin(&directory));
        }
        let renamed = acme(false).replace("ada@acme.test", "ada@acme.example");
        directory.replace_from_json(&renamed).unwrap();
        assert_eq!(directory.find("acme", "ada@acme.test"), None);
        assert!(!ada_is_admin(&directory));
        assert_eq!(directory.user("u1").unwrap().user.email, "ada@acme.example");
    }

    #[test]
    fn a_document_that_does_not_parse_leaves_the_directory_as_it_was() {
        let directory = StaticDirectory::from_json(&acme(true)).unwrap();
        assert!(directory.replace_from_json("{not json").is_err());
        assert_eq!(directory.is_admin_now("acme", "u1"), Some(Ok(true)));
    }

    #[test]
    fn unknown_users_and_other_organizations_are_not_admins() {
        let directory = StaticDirectory::from_json(&acme(true)).unwrap();
        assert_eq!(directory.is_admin_now("acme", "u9"), Some(Ok(false)));
        assert_eq!(directory.is_admin_now("globex", "u1"), Some(Ok(false)));
        assert_eq!(directory.is_admin_now("acme", "u2"), Some(Ok(false)));
    }
}
