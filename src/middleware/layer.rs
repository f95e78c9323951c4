//! [`ImpersonationLayer`], the entry point.

use std::{fmt, sync::Arc};

use tower_layer::Layer;

use super::{authorize::Authorize, builder::ImpersonationBuilder, service::Impersonation};
use crate::{credential::CredentialFormat, directory::UserDirectory, store::TokenStore};

/// A tower layer that accepts impersonation credentials and adds an
/// [`ImpersonatedUser`](crate::ImpersonatedUser) to the requests it lets through.
///
/// ```
/// use tower_impersonation::{ImpersonationLayer, MemoryStore, StaticDirectory};
///
/// let layer = ImpersonationLayer::new(MemoryStore::new(), StaticDirectory::default());
/// // axum: Router::new().route(...).layer(layer)
/// # let _ = layer;
/// ```
#[derive(Clone)]
pub struct ImpersonationLayer {
    pub(super) shared: Arc<Shared>,
}

/// What every service built by one layer shares.
pub(super) struct Shared {
    pub(super) format: CredentialFormat,
    pub(super) require: bool,
    pub(super) checks: Arc<dyn Authorize>,
}

impl ImpersonationLayer {
    /// A layer with the defaults: prefix `GINT:IMP:`, header `X-Guru-UserID`, path scopes under
    /// `/api/v1`, any member may be impersonated, requests without a credential pass on.
    pub fn new<St: TokenStore, D: UserDirectory>(store: St, directory: D) -> Self {
        Self::builder(store, directory).build()
    }

    /// Starts a configuration.
    pub fn builder<St: TokenStore, D: UserDirectory>(
        store: St,
        directory: D,
    ) -> ImpersonationBuilder<St, D> {
        ImpersonationBuilder::new(store, directory)
    }

    pub(super) fn from_parts(
        format: CredentialFormat,
        require: bool,
        checks: Arc<dyn Authorize>,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                format,
                require,
                checks,
            }),
        }
    }
}

impl fmt::Debug for ImpersonationLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImpersonationLayer")
            .field("prefix", &self.shared.format.prefix)
            .field("user_header", &self.shared.format.user_header)
            .field("require", &self.shared.require)
            .finish_non_exhaustive()
    }
}

impl<S> Layer<S> for ImpersonationLayer {
    type Service = Impersonation<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Impersonation::new(inner, Arc::clone(&self.shared))
    }
}
