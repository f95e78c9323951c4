//! Ending impersonation JWTs: one by its `jti`, or every JWT of a member issued until now.

use bytes::Bytes;
use http::{Response, StatusCode, request::Parts};
use http_body_util::Full;
use uuid::Uuid;

use super::{OrganizationImpersonationService, jsonapi::ApiError, store_failure};
use crate::{
    audit::{AuditEvent, AuditOutcome},
    directory::{Member, UserDirectory},
    jwt::{UserRevocation, revocation_cutoff},
    services::{caller::Caller, reply::empty},
    store::TokenStore,
    time::Timestamp,
};

impl<D: UserDirectory, St: TokenStore + Clone> OrganizationImpersonationService<D, St> {
    pub(super) async fn revoke(
        &self,
        caller: &Caller,
        organization: &str,
        jti: &str,
        parts: &Parts,
    ) -> Result<Response<Full<Bytes>>, ApiError> {
        let jti = Uuid::try_parse(jti)
            .map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "the JWT id must be a UUID"))?;
        let revoked = self
            .store
            .revoke_jwt(organization, jti, Timestamp::now())
            .await
            .map_err(store_failure)?;
        if !revoked {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "no live impersonation JWT with that id in this organization",
            ));
        }
        let outcome = AuditOutcome::JwtRevoked {
            admin: &caller.user_id,
            organization,
            jti,
        };
        self.audit.record(&AuditEvent::of(outcome, parts));
        Ok(empty(StatusCode::NO_CONTENT))
    }

    pub(super) async fn revoke_user(
        &self,
        caller: &Caller,
        organization: &str,
        member: &Member,
        parts: &Parts,
    ) -> Result<Response<Full<Bytes>>, ApiError> {
        let cutoff = revocation_cutoff(Timestamp::now());
        let revocation = UserRevocation {
            organization: organization.into(),
            user_id: member.user.id.as_str().into(),
            cutoff,
            // By then every JWT issued before the cutoff has expired, leeway included.
            forget_at: cutoff.plus(self.keys.lifetime() + self.keys.leeway()),
        };
        self.store
            .revoke_user_jwts(revocation)
            .await
            .map_err(store_failure)?;
        let outcome = AuditOutcome::UserJwtsRevoked {
            admin: &caller.user_id,
            organization,
            user: &member.user.id,
        };
        self.audit.record(&AuditEvent::of(outcome, parts));
        Ok(empty(StatusCode::NO_CONTENT))
    }
}
