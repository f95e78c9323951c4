//! [`Parts`]: a JWT cut at its dots, its signature checked by any algorithm's
//! [`Verifier`] and its claims read once the signature is known good.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::{Deserialize, de::IgnoredAny};

use super::{
    claims::ImpersonationClaims,
    error::JwtError,
    validity::{TimeClaims, TimeRules, Validity},
    verifier::Verifier,
};

/// A JWT cut at its two dots, its signature decoded.
pub(super) struct Parts<'t> {
    /// The header segment, still encoded.
    pub(super) header: &'t str,
    /// What the signature covers: `header.payload`.
    signed: &'t str,
    payload: &'t str,
    signature: Vec<u8>,
}

/// The claims of a payload, and what jsonwebtoken's default validation would also refuse.
#[derive(Deserialize)]
struct Payload {
    #[serde(flatten)]
    claims: ImpersonationClaims,
    /// No audience is configured, so a token meant for one is not for us.
    aud: Option<IgnoredAny>,
    /// Not before, in seconds since the epoch: a rule of the token's time, not part of what it
    /// grants.
    nbf: Option<u64>,
}

impl<'t> Parts<'t> {
    /// Exactly three segments, the last one base64url.
    pub(super) fn split(token: &'t str) -> Result<Self, JwtError> {
        let (signed, signature) = token.rsplit_once('.').ok_or(JwtError::Malformed)?;
        let (header, payload) = signed.split_once('.').ok_or(JwtError::Malformed)?;
        if payload.contains('.') {
            return Err(JwtError::Malformed);
        }
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| JwtError::Malformed)?;
        Ok(Self {
            header,
            signed,
            payload,
            signature,
        })
    }

    /// Whether any of `keys` signed the token.
    pub(super) fn signed_by_any<'k>(&self, mut keys: impl Iterator<Item = &'k Verifier>) -> bool {
        keys.any(|key| key.verifies(self.signed, &self.signature))
    }

    /// The claims and when they are valid, once the signature is known good: `exp` required, no
    /// `aud`, and `now` within what the time claims and `rules` allow.
    pub(super) fn claims(
        &self,
        now: u64,
        rules: TimeRules,
    ) -> Result<(ImpersonationClaims, Validity), JwtError> {
        let json = URL_SAFE_NO_PAD
            .decode(self.payload)
            .map_err(|_| JwtError::Malformed)?;
        let payload: Payload = serde_json::from_slice(&json).map_err(|_| JwtError::Malformed)?;
        if payload.aud.is_some() {
            return Err(JwtError::Malformed);
        }
        let times = TimeClaims {
            exp: payload.claims.exp,
            nbf: payload.nbf,
            iat: payload.claims.iat,
        };
        let validity = Validity::at(times, rules, now)?;
        Ok((payload.claims, validity))
    }
}
