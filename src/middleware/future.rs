//! [`ResponseFuture`], the future of an [`Impersonation`](super::Impersonation) call.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll, ready},
};

use http::{HeaderMap, Request, Response};
use pin_project_lite::pin_project;
use tower_service::Service;

use super::authorize::AuthorizeFuture;
use crate::{body::ResponseBody, policy::is_grpc, rejection::Rejection};

pin_project! {
    /// Resolves to the inner service's response, or to a rejection.
    pub struct ResponseFuture<F, S, B> {
        #[pin]
        state: State<F, S, B>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, S, B> {
        Authorizing { checks: AuthorizeFuture, next: Option<(S, B)> },
        Inner { #[pin] future: F },
        Rejected { rejection: Option<(Rejection, bool)> },
    }
}

impl<F, S, B> ResponseFuture<F, S, B> {
    pub(super) fn inner(future: F) -> Self {
        Self {
            state: State::Inner { future },
        }
    }

    pub(super) fn rejected(rejection: Rejection, headers: &HeaderMap) -> Self {
        Self {
            state: State::Rejected {
                rejection: Some((rejection, is_grpc(headers))),
            },
        }
    }

    pub(super) fn authorizing(checks: AuthorizeFuture, service: S, body: B) -> Self {
        Self {
            state: State::Authorizing {
                checks,
                next: Some((service, body)),
            },
        }
    }
}

fn respond<B>(rejection: Rejection, grpc: bool) -> Response<ResponseBody<B>> {
    if grpc {
        rejection.into_grpc_response()
    } else {
        rejection.into_http_response()
    }
}

impl<F, S, B, ResBody, E> Future for ResponseFuture<F, S, B>
where
    S: Service<Request<B>, Response = Response<ResBody>, Error = E, Future = F>,
    F: Future<Output = Result<Response<ResBody>, E>>,
{
    type Output = Result<Response<ResponseBody<ResBody>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        loop {
            match state.as_mut().project() {
                StateProj::Authorizing { checks, next } => {
                    let (mut parts, verdict) = ready!(checks.as_mut().poll(cx));
                    let (mut service, body) = next.take().expect("polled after completion");
                    let user = match verdict {
                        Ok(user) => user,
                        Err(rejection) => {
                            return Poll::Ready(Ok(respond(rejection, is_grpc(&parts.headers))));
                        }
                    };
                    parts.extensions.insert(user);
                    let future = service.call(Request::from_parts(parts, body));
                    state.set(State::Inner { future });
                }
                StateProj::Inner { future } => {
                    let response = ready!(future.poll(cx))?;
                    return Poll::Ready(Ok(response.map(ResponseBody::inner)));
                }
                StateProj::Rejected { rejection } => {
                    let (rejection, grpc) = rejection.take().expect("polled after completion");
                    return Poll::Ready(Ok(respond(rejection, grpc)));
                }
            }
        }
    }
}
