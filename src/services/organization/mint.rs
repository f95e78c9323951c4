//! Minting an impersonation JWT for a member: signed, remembered by the store, audited, then
//! answered as a JSON:API document.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Response, StatusCode, header::CONTENT_TYPE, request::Parts};
use http_body_util::Full;
use uuid::Uuid;

use super::{
    OrganizationImpersonationService,
    jsonapi::{ApiError, JSON_API, minted_document},
    store_failure,
};
use crate::{
    audit::{AuditEvent, AuditOutcome},
    directory::{Member, UserDirectory},
    jwt::{ActorClaim, ImpersonationClaims, MintedJwt},
    services::caller::Caller,
    store::TokenStore,
    time::Timestamp,
};

impl<D: UserDirectory, St: TokenStore + Clone> OrganizationImpersonationService<D, St> {
    pub(super) async fn mint(
        &self,
        caller: &Caller,
        organization: &str,
        member: &Member,
        reason: Option<&str>,
        parts: &Parts,
    ) -> Result<Response<Full<Bytes>>, ApiError> {
        let created_at = Timestamp::from_secs(Timestamp::now().as_secs());
        let expires_at = created_at.plus(self.keys.lifetime());
        let jti = Uuid::new_v4();
        let claims = ImpersonationClaims {
            user_id: member.user.id.clone(),
            exp: expires_at.as_secs(),
            iat: Some(created_at.as_secs()),
            jti: Some(jti.to_string()),
            org: Some(organization.to_owned()),
            act: Some(ActorClaim {
                sub: caller.user_id.to_string(),
            }),
            roles: None,
        };
        let token = self.keys.sign(&claims).map_err(|error| {
            tracing::error!(target: "tower_impersonation", %error, "could not sign a JWT");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the token could not be signed; retry shortly",
            )
        })?;
        // Remembered before it is handed out, so every JWT handed out can be listed and revoked.
        let minted = MintedJwt {
            jti,
            organization: organization.into(),
            user_id: member.user.id.as_str().into(),
            actor: Arc::clone(&caller.user_id),
            reason: reason.unwrap_or_default().to_owned(),
            issued_at: created_at,
            expires_at,
        };
        self.store.record_jwt(minted).await.map_err(store_failure)?;
        let outcome = AuditOutcome::JwtIssued {
            admin: &caller.user_id,
            organization,
            user: &member.user.id,
            jti,
            reason,
        };
        self.audit.record(&AuditEvent::of(outcome, parts));
        Ok(minted_document(
            &member.user.id,
            jti,
            &token,
            created_at,
            expires_at,
        ))
    }
}

pub(super) fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let essence = headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(|value| value.split(';').next().unwrap_or_default().trim());
    match essence {
        Some(essence) if essence.eq_ignore_ascii_case(JSON_API) => Ok(()),
        _ => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the document as Content-Type: application/vnd.api+json",
        )),
    }
}
