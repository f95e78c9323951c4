//! [`Impersonation`], the service the layer wraps around an inner service.

use std::{
    fmt,
    sync::Arc,
    task::{Context, Poll},
};

use http::{Request, Response};
use tower_service::Service;

use super::{future::ResponseFuture, layer::Shared};
use crate::{
    body::ResponseBody,
    credential::Credential,
    rejection::{Rejection, RejectionKind},
};

const CREDENTIAL_REQUIRED: Rejection = Rejection::new(
    RejectionKind::CredentialRequired,
    "an impersonation token or JWT is required",
);

/// Checks impersonation credentials before calling the inner service; built by
/// [`ImpersonationLayer`](super::ImpersonationLayer).
#[derive(Clone)]
pub struct Impersonation<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> Impersonation<S> {
    pub(super) fn new(inner: S, shared: Arc<Shared>) -> Self {
        Self { inner, shared }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S: fmt::Debug> fmt::Debug for Impersonation<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Impersonation")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Impersonation<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, S, ReqBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let credential = match self.shared.format.read(request.headers()) {
            Ok(credential) => credential,
            Err(rejection) => return ResponseFuture::rejected(rejection, request.headers()),
        };
        match credential {
            Credential::Absent if self.shared.require => {
                ResponseFuture::rejected(CREDENTIAL_REQUIRED, request.headers())
            }
            Credential::Absent => ResponseFuture::inner(self.inner.call(request)),
            credential => {
                // Keep the service that was polled ready; leave a fresh clone in its place.
                let clone = self.inner.clone();
                let ready = std::mem::replace(&mut self.inner, clone);
                let (parts, body) = request.into_parts();
                let checks = Arc::clone(&self.shared.checks);
                ResponseFuture::authorizing(checks.authorize(credential, parts), ready, body)
            }
        }
    }
}
