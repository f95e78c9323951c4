//! The members a token is narrowed to: named by id, email or name when it is created, kept by id.

use std::{fmt, future::Future, pin::Pin, sync::Arc};

use crate::{
    credential::MAX_USER_LEN,
    directory::{DirectoryError, Member, UserDirectory},
};

/// Most members one token may be narrowed to.
pub(super) const MAX_TOKEN_USERS: usize = 100;

type MemberFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Option<Member>, DirectoryError>> + Send + 'a>>;

/// A [`UserDirectory`] with its type erased, so the service's type does not name it. A token is
/// created rarely; the boxed future costs nothing that matters there.
#[derive(Clone)]
pub(super) struct Members(Arc<dyn FindMember>);

trait FindMember: Send + Sync + 'static {
    fn member<'a>(&'a self, organization: &'a str, who: &'a str) -> MemberFuture<'a>;
}

impl<D: UserDirectory> FindMember for D {
    fn member<'a>(&'a self, organization: &'a str, who: &'a str) -> MemberFuture<'a> {
        Box::pin(self.resolve(organization, who))
    }
}

/// Why a token's `users` could not be resolved.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Unresolved {
    /// The entry at this position names no member of the organization.
    NotAMember(usize),
    /// The directory could not answer.
    Unavailable(DirectoryError),
}

impl Members {
    pub(super) fn new(directory: impl UserDirectory) -> Self {
        Self(Arc::new(directory))
    }

    /// The ids of the members `names` name in `organization`, each once, in the order first
    /// named.
    pub(super) async fn resolve(
        &self,
        organization: &str,
        names: &[String],
    ) -> Result<Arc<[String]>, Unresolved> {
        let mut ids: Vec<String> = Vec::with_capacity(names.len());
        for (position, name) in names.iter().enumerate() {
            let member = self
                .0
                .member(organization, name)
                .await
                .map_err(Unresolved::Unavailable)?
                .ok_or(Unresolved::NotAMember(position))?;
            if !ids.contains(&member.user.id) {
                ids.push(member.user.id.clone());
            }
        }
        Ok(ids.into())
    }
}

impl fmt::Debug for Members {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Members")
    }
}

/// Checks the shape of a create request's `users`: 1 to [`MAX_TOKEN_USERS`] non-empty strings.
pub(super) fn parse(users: &[serde_json::Value]) -> Result<Vec<String>, String> {
    if users.is_empty() || users.len() > MAX_TOKEN_USERS {
        return Err(format!("users must name 1 to {MAX_TOKEN_USERS} members"));
    }
    users
        .iter()
        .enumerate()
        .map(|(position, user)| match user.as_str() {
            Some(name) if !name.is_empty() && name.len() <= MAX_USER_LEN => Ok(name.to_owned()),
            _ => Err(format!(
                "users[{position}] must be a member's id, email or name, 1 to {MAX_USER_LEN} bytes"
            )),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::StaticDirectory;

    fn acme() -> Members {
        Members::new(
            StaticDirectory::from_json(
                r#"{"organizations": [{"id": "acme", "members": [
                    {"id": "u1", "email": "ada@acme.test", "name": "Ada"},
                    {"id": "u2", "email": "bob@acme.test", "name": "Bob"}]},
                    {"id": "globex", "members": [{"id": "u3", "email": "carol@globex.test"}]}]}"#,
            )
            .unwrap(),
        )
    }

    #[tokio::test]
    async fn names_resolve_to_ids_each_once() {
        let names = ["ada@acme.test", "Bob", "u1"].map(str::to_owned);
        let ids = acme().resolve("acme", &names).await.unwrap();
        assert_eq!(&*ids, ["u1", "u2"]);
    }

    #[tokio::test]
    async fn a_name_outside_the_organization_is_refused_by_its_position() {
        let names = ["u1", "carol@globex.test"].map(str::to_owned);
        let refused = acme().resolve("acme", &names).await.unwrap_err();
        assert_eq!(refused, Unresolved::NotAMember(1));
    }

    #[test]
    fn the_list_s_shape_is_checked() {
        assert!(parse(&[]).unwrap_err().contains("1 to 100"));
        assert!(
            parse(&[json!("u1"), json!(7)])
                .unwrap_err()
                .starts_with("users[1]")
        );
        assert!(parse(&[json!("")]).unwrap_err().starts_with("users[0]"));
        assert_eq!(parse(&[json!("u1")]).unwrap(), ["u1"]);
    }
}
