//! The paths both services answer: where a service is mounted, and the collection and items
//! below it.

use crate::error::ConfigError;

/// Where a service is mounted, for routers that hand it whole paths: starts with `/`, kept
/// without a trailing one.
#[derive(Clone, Debug)]
pub(super) struct MountPath(String);

impl MountPath {
    /// A service's default mount path, written well formed.
    pub(super) fn default_for(path: &'static str) -> Self {
        debug_assert!(path.starts_with('/') && !path.ends_with('/'));
        Self(path.to_owned())
    }

    pub(super) fn new(path: &str) -> Result<Self, ConfigError> {
        if !path.starts_with('/') {
            return Err(ConfigError::InvalidPathPrefix(path.to_owned()));
        }
        Ok(Self(path.trim_end_matches('/').to_owned()))
    }

    /// The part of `path` below the service. A full path (from `route_service`, or a gateway
    /// handing the service every request) loses the mount path. Any other path is taken as what
    /// a nesting router left after stripping it: axum's `nest_service` hands `/` or `/{id}`.
    pub(super) fn below<'a>(&self, path: &'a str) -> Below<'a> {
        match path
            .strip_prefix(self.0.as_str())
            .filter(|rest| rest.is_empty() || rest.starts_with('/'))
        {
            Some(rest) => Below {
                rest,
                nested: false,
            },
            None => Below {
                rest: path,
                nested: true,
            },
        }
    }
}

/// A request's path below the service's mount path.
pub(super) struct Below<'a> {
    /// The path below the mount path: empty, or starting with `/`.
    pub(super) rest: &'a str,
    /// Whether a router nesting the service stripped the mount path.
    pub(super) nested: bool,
}

/// What a path names: a collection, or one item in it.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Resource<'a> {
    Collection,
    Item(&'a str),
}

/// What `path` names in the collection at `collection`: the collection itself, or an item
/// `{collection}/{id}` whose id is one non-empty segment. The mount point, as the collection
/// `""`, may also be written `/`, as a nesting router hands it.
pub(super) fn resource<'a>(path: &'a str, collection: &str) -> Option<Resource<'a>> {
    let tail = path.strip_prefix(collection)?;
    match tail.strip_prefix('/') {
        None if tail.is_empty() => Some(Resource::Collection),
        Some("") if collection.is_empty() => Some(Resource::Collection),
        Some(id) if !id.is_empty() && !id.contains('/') => Some(Resource::Item(id)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_path_loses_the_mount_path_and_any_other_path_is_taken_as_nested() {
        let mount = MountPath::new("/api/tokens/").unwrap();
        let full = mount.below("/api/tokens/7");
        assert_eq!((full.rest, full.nested), ("/7", false));
        let nested = mount.below("/7");
        assert_eq!((nested.rest, nested.nested), ("/7", true));
        assert!(mount.below("/api/tokensx").nested, "not a segment boundary");
        assert!(MountPath::new("api").is_err());
    }

    #[test]
    fn a_path_names_the_collection_or_one_item_in_it() {
        assert_eq!(resource("", ""), Some(Resource::Collection));
        assert_eq!(resource("/", ""), Some(Resource::Collection));
        assert_eq!(resource("/7", ""), Some(Resource::Item("7")));
        assert_eq!(resource("/7/8", ""), None);
        assert_eq!(resource("jwts", "jwts"), Some(Resource::Collection));
        assert_eq!(resource("jwts/7", "jwts"), Some(Resource::Item("7")));
        assert_eq!(resource("jwts/", "jwts"), None);
        assert_eq!(resource("jwtsx", "jwts"), None);
    }
}
