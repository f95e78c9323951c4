//! axum glue: [`ImpersonatedUser`] as an extractor.

use axum_core::{
    extract::{FromRequestParts, OptionalFromRequestParts},
    response::{IntoResponse, Response},
};
use http::{StatusCode, header, request::Parts};

use crate::impersonated::ImpersonatedUser;

/// The rejection of the [`ImpersonatedUser`] extractor: 401, the request was not impersonated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub struct NotImpersonated;

impl IntoResponse for NotImpersonated {
    fn into_response(self) -> Response {
        let body = r#"{"error":"unauthorized","error_description":"this route needs an impersonation credential"}"#;
        (
            StatusCode::UNAUTHORIZED,
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::WWW_AUTHENTICATE, "Bearer"),
            ],
            body,
        )
            .into_response()
    }
}

#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
impl<S: Send + Sync> FromRequestParts<S> for ImpersonatedUser {
    type Rejection = NotImpersonated;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<ImpersonatedUser>()
            .cloned()
            .ok_or(NotImpersonated)
    }
}

#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
impl<S: Send + Sync> OptionalFromRequestParts<S> for ImpersonatedUser {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<ImpersonatedUser>().cloned())
    }
}
