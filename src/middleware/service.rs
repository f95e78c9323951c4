//! [`Impersonation`], the service the layer wraps around an inner service.

use std::{
    fmt,
    sync::Arc,
    task::{Context, Poll},
};

use http::{Request, Response};
use tower_service::Service;

use super::{authorize::CheckedNow, future::ResponseFuture, layer::Shared};
use crate::{
    audit::{AuditEvent, AuditOutcome},
    body::ResponseBody,
    credential::Credential,
    policy::RequestHead,
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

/// What the headers and the backends at hand decided.
enum Decision {
    PassOn,
    Accept(crate::ImpersonatedUser),
    Reject(Rejection),
    Wait(crate::credential::OwnedCredential),
}

impl<S> Impersonation<S> {
    fn decide<B>(&self, request: &Request<B>) -> Decision {
        let credential = match self.shared.format.read(request.headers()) {
            Ok(Credential::Absent) if self.shared.require => {
                return Decision::Reject(CREDENTIAL_REQUIRED);
            }
            Ok(Credential::Absent) => return Decision::PassOn,
            Ok(credential) => credential,
            Err(rejection) => return Decision::Reject(rejection),
        };
        let head = RequestHead {
            method: request.method(),
            uri: request.uri(),
            headers: request.headers(),
        };
        match self.shared.checks.check_now(credential, &head) {
            CheckedNow::Decided(Ok(user)) => Decision::Accept(user),
            CheckedNow::Decided(Err(rejection)) => Decision::Reject(rejection),
            CheckedNow::Wait(credential) => match credential.into_owned() {
                Some(owned) => Decision::Wait(owned),
                None => Decision::PassOn,
            },
        }
    }

    /// Tells the layer's audit of the decision on `request`.
    fn audit<B>(&self, outcome: AuditOutcome<'_>, request: &Request<B>) {
        let event = AuditEvent::new(
            outcome,
            request.method(),
            request.uri(),
            request.extensions(),
        );
        self.shared.checks.audit(&event);
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

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        match self.decide(&request) {
            Decision::PassOn => ResponseFuture::inner(self.inner.call(request)),
            Decision::Accept(user) => {
                self.audit(AuditOutcome::Accepted(&user), &request);
                self.shared.checks.clean(request.headers_mut(), &user);
                request.extensions_mut().insert(user);
                ResponseFuture::inner(self.inner.call(request))
            }
            Decision::Reject(rejection) => {
                self.audit(AuditOutcome::Refused(&rejection), &request);
                ResponseFuture::rejected(rejection, request.headers())
            }
            Decision::Wait(credential) => {
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
