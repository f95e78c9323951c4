//! Verifying a token with the keys: its header, its signature, its time claims, and the cache of
//! tokens already verified.

use std::sync::Arc;

use super::{
    algorithm::JwtAlgorithm,
    cache::Verified,
    claims::ImpersonationClaims,
    error::{JwtError, classify},
    keys::JwtKeys,
    known_header::KnownHeader,
    parts::Parts,
    validity::Validity,
};
use crate::time::Timestamp;

impl JwtKeys {
    /// Verifies a token: its header's `alg` one of the keys' algorithms and no `crit`, signed by
    /// the key of that algorithm its `kid` names, or by any configured key of that algorithm when
    /// it names none, and its time claims valid now (see [`JwtKeys`]).
    pub fn verify(&self, token: &str) -> Result<ImpersonationClaims, JwtError> {
        let now = Timestamp::now().as_secs();
        self.verify_parts(token, now).map(|(claims, _)| claims)
    }

    /// [`JwtKeys::verify`] at `now`, in seconds since the epoch, and when the token is valid.
    fn verify_parts(
        &self,
        token: &str,
        now: u64,
    ) -> Result<(ImpersonationClaims, Validity), JwtError> {
        let parts = Parts::split(token)?;
        let parsed;
        let (algorithm, kid) = match self.known_header(parts.header) {
            Some(known) => (known.algorithm, known.kid.as_deref()),
            None => {
                parsed = self.header(token)?;
                (parsed.0, parsed.1.as_deref())
            }
        };
        // Only keys of the header's algorithm: an HS256 token "signed" with a public key as its
        // secret never meets that public key.
        let candidates = self
            .inner
            .keys
            .iter()
            .filter(|key| key.verifying.algorithm() == algorithm)
            .filter(|key| kid.is_none() || key.id.as_deref() == kid)
            .map(|key| &key.verifying);
        if !parts.signed_by_any(candidates) {
            return Err(JwtError::BadSignature);
        }
        parts.claims(now, self.inner.time_rules())
    }

    /// [`JwtKeys::verify`] at `now`, through the cache as the layer goes through it (which takes
    /// the two steps apart: reading the credential asks the cache, the checks verify).
    #[cfg(test)]
    pub(crate) fn verify_cached(
        &self,
        token: &str,
        now: Timestamp,
    ) -> Result<Arc<Verified>, JwtError> {
        match self.verified_before(token.as_bytes(), now) {
            Some(hit) => Ok(hit),
            None => self.verify_and_remember(token, now),
        }
    }

    /// The claims of `token` if its text is that of a token that passed verification here and is
    /// valid at `now` (the request's one clock read) by every time rule: such a text needs no
    /// other check. Tokens are remembered until they expire, so a client sending the same one
    /// again and again pays for one verification, and compared by their full text.
    pub(crate) fn verified_before(&self, token: &[u8], now: Timestamp) -> Option<Arc<Verified>> {
        self.inner.verified.get(token, now.as_secs())
    }

    /// [`JwtKeys::verify`] at `now`, remembering the token if it passes; for a token
    /// [`JwtKeys::verified_before`] has just not known.
    pub(crate) fn verify_and_remember(
        &self,
        token: &str,
        now: Timestamp,
    ) -> Result<Arc<Verified>, JwtError> {
        let (claims, validity) = self.verify_parts(token, now.as_secs())?;
        let verified = Arc::new(Verified::new(claims, validity, self.inner.lifetime)?);
        self.inner.verified.insert(token, Arc::clone(&verified));
        Ok(verified)
    }

    pub(super) fn known_header(&self, segment: &str) -> Option<&KnownHeader> {
        self.inner
            .known_headers
            .iter()
            .find(|known| known.segment == segment)
    }

    /// The algorithm and `kid` a token's header names, once the algorithm is known to be one
    /// some key uses and the header is known to name no critical extension (a `KnownHeader`
    /// names none).
    fn header(&self, token: &str) -> Result<(JwtAlgorithm, Option<String>), JwtError> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| classify(e.kind()))?;
        if header.crit.is_some() {
            return Err(JwtError::CriticalExtension);
        }
        let algorithm = JwtAlgorithm::from_jsonwebtoken(header.alg)
            .filter(|alg| {
                self.inner
                    .keys
                    .iter()
                    .any(|k| k.verifying.algorithm() == *alg)
            })
            .ok_or(JwtError::WrongAlgorithm)?;
        Ok((algorithm, header.kid))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    use jsonwebtoken::{Algorithm, EncodingKey, Header};

    use super::super::test_fixtures::*;
    use super::*;

    #[test]
    fn signed_tokens_verify_and_expired_ones_do_not() {
        let keys = JwtKeys::hs256(SECRET).unwrap();
        let token = keys.sign(&claims(60)).unwrap();
        assert_eq!(keys.verify(&token).unwrap().user_id, "u1");
        let old = keys.sign(&claims(-60)).unwrap();
        assert_eq!(keys.verify(&old), Err(JwtError::Expired));
    }

    #[test]
    fn leeway_is_honoured_and_exp_is_required() {
        let keys = JwtKeys::hs256(SECRET).unwrap();
        let now = Timestamp::now().as_secs();
        let within = bare_form(
            &serde_json::json!({"user_id": "u1", "exp": now - 2}),
            SECRET,
        );
        assert!(keys.verify(&within).is_ok(), "2 s past exp, 5 s leeway");
        let past = bare_form(
            &serde_json::json!({"user_id": "u1", "exp": now - 30}),
            SECRET,
        );
        assert_eq!(keys.verify(&past), Err(JwtError::Expired));
        let no_exp = bare_form(&serde_json::json!({"user_id": "u1"}), SECRET);
        assert_eq!(keys.verify(&no_exp), Err(JwtError::Malformed));
    }

    #[test]
    fn a_token_for_an_audience_is_refused_as_jsonwebtoken_would() {
        let keys = JwtKeys::hs256(SECRET).unwrap();
        let exp = Timestamp::now().as_secs() + 60;
        for aud in [serde_json::json!("billing"), serde_json::json!(["billing"])] {
            let claims = serde_json::json!({"user_id": "u1", "exp": exp, "aud": aud});
            assert_eq!(
                keys.verify(&bare_form(&claims, SECRET)),
                Err(JwtError::Malformed)
            );
        }
    }

    #[test]
    fn any_change_to_a_signed_token_is_refused() {
        let keys = JwtKeys::hs256(SECRET).unwrap();
        let token = keys.sign(&claims(60)).unwrap();
        let (signed, signature) = token.rsplit_once('.').unwrap();
        let (header, _) = signed.split_once('.').unwrap();
        let other_claims = JwtKeys::hs256(SECRET).unwrap().sign(&claims(3600)).unwrap();
        let other_payload = other_claims.split('.').nth(1).unwrap();
        // 40 characters: whole bytes, so a valid encoding of a too-short signature.
        let short = &signature[..40];
        let first = if signature.starts_with('A') { "B" } else { "A" };
        let flipped = format!("{first}{}", &signature[1..]);
        for (tampered, why) in [
            (
                format!("{header}.{other_payload}.{signature}"),
                JwtError::BadSignature,
            ),
            (format!("{signed}.{flipped}"), JwtError::BadSignature),
            (format!("{signed}.{short}"), JwtError::BadSignature),
            (format!("{signed}.{signature}.x"), JwtError::Malformed),
            (format!("{signed}.{signature}="), JwtError::Malformed),
            (format!("{signed}."), JwtError::BadSignature),
            (signed.to_owned(), JwtError::Malformed),
        ] {
            assert_eq!(keys.verify(&tampered), Err(why), "{tampered}");
        }
        assert!(keys.verify(&token).is_ok());
    }

    #[test]
    fn a_kid_that_names_no_configured_key_is_refused_even_with_the_right_secret() {
        let unnamed = JwtKeys::hs256(SECRET).unwrap();
        let named = JwtKeys::hs256(SECRET).unwrap().with_key_id("k1").unwrap();
        let token = named.sign(&claims(60)).unwrap();
        assert_eq!(unnamed.verify(&token), Err(JwtError::BadSignature));
        assert!(named.verify(&token).is_ok());
        let other_header = Header {
            typ: Some("at+jwt".into()),
            ..Header::new(Algorithm::HS256)
        };
        let encoding = EncodingKey::from_secret(SECRET);
        let unusual = jsonwebtoken::encode(&other_header, &claims(60), &encoding).unwrap();
        assert!(
            unnamed.verify(&unusual).is_ok(),
            "headers no key signs are parsed"
        );
    }

    #[test]
    fn cached_tokens_still_expire() {
        let keys = JwtKeys::hs256(SECRET).unwrap().with_leeway(Duration::ZERO);
        let token = keys.sign(&claims(1)).unwrap();
        assert!(keys.verify_cached(&token, Timestamp::now()).is_ok());
        assert!(
            keys.verify_cached(&token, Timestamp::now()).is_ok(),
            "served from the cache"
        );
        std::thread::sleep(Duration::from_millis(2100));
        assert_eq!(
            keys.verify_cached(&token, Timestamp::now()).err(),
            Some(JwtError::Expired)
        );
    }

    #[test]
    fn the_cache_never_accepts_a_different_token() {
        let keys = JwtKeys::hs256(SECRET).unwrap();
        let token = keys.sign(&claims(60)).unwrap();
        assert!(keys.verify_cached(&token, Timestamp::now()).is_ok());
        let at = token.len() - 10;
        let swapped = if &token[at..=at] == "A" { "B" } else { "A" };
        let tampered = format!("{}{swapped}{}", &token[..at], &token[at + 1..]);
        assert!(keys.verify_cached(&tampered, Timestamp::now()).is_err());
    }

    /// A token over `claims` with this exact `header` JSON, signed with `SECRET`.
    fn with_header(header: &str, claims: &serde_json::Value) -> String {
        use hmac::{Hmac, Mac};
        let header = URL_SAFE_NO_PAD.encode(header);
        let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
        let signed = format!("{header}.{payload}");
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET).unwrap();
        mac.update(signed.as_bytes());
        format!(
            "{signed}.{}",
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        )
    }

    /// A token `keys` verified at `then` and remembered: whether it is still taken from the cache
    /// at `now`, and what verifying it at `now` (as a request then would) says.
    fn cached_then_checked(
        keys: &JwtKeys,
        token: &str,
        then: u64,
        now: u64,
    ) -> (bool, Result<(), JwtError>) {
        assert!(
            keys.verify_cached(token, at(then)).is_ok(),
            "valid at {then}"
        );
        assert!(keys.verified_before(token.as_bytes(), at(then)).is_some());
        let known = keys.verified_before(token.as_bytes(), at(now)).is_some();
        (known, keys.verify_cached(token, at(now)).map(|_| ()))
    }

    #[test]
    fn a_header_naming_a_critical_extension_is_refused_and_never_cached() {
        let keys = JwtKeys::hs256(SECRET).unwrap();
        let now = Timestamp::now();
        let claims = serde_json::json!({"user_id": "u1", "exp": now.as_secs() + 60});
        for header in [
            r#"{"alg":"HS256","crit":["x-unknown"],"x-unknown":true}"#,
            r#"{"alg":"HS256","typ":"JWT","crit":["b64"],"b64":false}"#,
            r#"{"alg":"HS256","crit":["exp"]}"#,
            r#"{"alg":"HS256","crit":[]}"#,
        ] {
            let token = with_header(header, &claims);
            assert_eq!(keys.verify(&token), Err(JwtError::CriticalExtension));
            for sight in ["first", "second"] {
                let verdict = keys.verify_cached(&token, now).err();
                assert_eq!(
                    verdict,
                    Some(JwtError::CriticalExtension),
                    "{sight}: {header}"
                );
            }
            assert!(keys.verified_before(token.as_bytes(), now).is_none());
        }
        let not_a_list = with_header(r#"{"alg":"HS256","crit":"x-unknown"}"#, &claims);
        assert_eq!(keys.verify(&not_a_list), Err(JwtError::Malformed));
        // The same header parameter, not marked critical, may be ignored.
        let ignorable = with_header(r#"{"alg":"HS256","x-unknown":true}"#, &claims);
        assert!(keys.verify(&ignorable).is_ok());
    }

    #[test]
    fn nbf_is_honoured_within_the_leeway_at_first_sight_and_on_a_cache_hit() {
        let keys = JwtKeys::hs256(SECRET).unwrap();
        let t = Timestamp::now().as_secs();
        let claims = serde_json::json!({"user_id": "u1", "exp": t + 600, "nbf": t + 60});
        let token = bare_form(&claims, SECRET);
        assert_eq!(keys.verify(&token), Err(JwtError::NotYetValid));
        assert_eq!(
            keys.verify_cached(&token, at(t + 54)).err(),
            Some(JwtError::NotYetValid)
        );
        assert_eq!(
            cached_then_checked(&keys, &token, t + 55, t + 600),
            (true, Ok(()))
        );
        // A clock set back before `nbf`: the cache does not answer, the rule refuses.
        assert_eq!(
            cached_then_checked(&keys, &token, t + 55, t + 54),
            (false, Err(JwtError::NotYetValid))
        );
        let past = bare_form(
            &serde_json::json!({"user_id": "u1", "exp": t + 600, "nbf": t}),
            SECRET,
        );
        assert!(keys.verify(&past).is_ok());
    }

    #[test]
    fn an_iat_in_the_future_beyond_the_leeway_is_refused_at_first_sight_and_on_a_cache_hit() {
        let keys = JwtKeys::hs256(SECRET).unwrap();
        let t = Timestamp::now().as_secs();
        let ten_minutes_ahead = ImpersonationClaims {
            iat: Some(t + 600),
            ..claims(1200)
        };
        let token = keys.sign(&ten_minutes_ahead).unwrap();
        assert_eq!(keys.verify(&token), Err(JwtError::IssuedInTheFuture));
        assert_eq!(
            keys.verify_cached(&token, at(t + 594)).err(),
            Some(JwtError::IssuedInTheFuture)
        );
        assert_eq!(
            cached_then_checked(&keys, &token, t + 595, t + 1000),
            (true, Ok(()))
        );
        assert_eq!(
            cached_then_checked(&keys, &token, t + 595, t + 594),
            (false, Err(JwtError::IssuedInTheFuture))
        );
        for iat in [t + 5, t, t - 86_400] {
            let issued = keys.sign(&ImpersonationClaims {
                iat: Some(iat),
                ..claims(60)
            });
            assert!(keys.verify(&issued.unwrap()).is_ok(), "iat {iat}");
        }
    }

    #[test]
    fn an_exp_beyond_the_maximum_lifetime_is_refused_at_first_sight_and_on_a_cache_hit() {
        let keys = JwtKeys::hs256(SECRET).unwrap();
        assert_eq!(keys.max_lifetime(), Duration::from_secs(3605));
        let t = Timestamp::now().as_secs();
        // 9999-12-31T23:59:59Z: a token a leaked key would make to live forever.
        let year_9999 = 253_402_300_799;
        let forever = bare_form(
            &serde_json::json!({"user_id": "u1", "exp": year_9999}),
            SECRET,
        );
        assert_eq!(keys.verify(&forever), Err(JwtError::ExpiresTooLate));
        assert_eq!(
            keys.verify_cached(&forever, at(t)).err(),
            Some(JwtError::ExpiresTooLate)
        );
        // Accepted only in its last hour and five seconds, and the leeway after.
        assert_eq!(
            cached_then_checked(&keys, &forever, year_9999 - 3605, year_9999 + 5),
            (true, Ok(()))
        );
        assert_eq!(
            cached_then_checked(&keys, &forever, year_9999 - 3605, year_9999 - 3606),
            (false, Err(JwtError::ExpiresTooLate))
        );
        // The bare form keeps working within the hour, and just beyond it is refused.
        let bare = |exp: u64| bare_form(&serde_json::json!({"user_id": "u1", "exp": exp}), SECRET);
        assert!(keys.verify_cached(&bare(t + 3600), at(t)).is_ok());
        assert!(keys.verify_cached(&bare(t + 3605), at(t)).is_ok());
        assert_eq!(
            keys.verify_cached(&bare(t + 3606), at(t)).err(),
            Some(JwtError::ExpiresTooLate)
        );
    }

    #[test]
    fn a_cached_token_expires_with_the_leeway_and_no_later() {
        let keys = JwtKeys::hs256(SECRET).unwrap();
        let t = Timestamp::now().as_secs();
        let token = keys
            .sign(&ImpersonationClaims {
                exp: t + 60,
                ..claims(0)
            })
            .unwrap();
        assert_eq!(
            cached_then_checked(&keys, &token, t, t + 65),
            (true, Ok(()))
        );
        assert_eq!(
            cached_then_checked(&keys, &token, t, t + 66),
            (false, Err(JwtError::Expired))
        );
    }

    #[test]
    fn a_token_is_checked_only_against_keys_of_its_headers_algorithm() {
        let eddsa = JwtKeys::ed25519_pem(ED25519).unwrap();
        let kid = eddsa.key_id().unwrap().to_owned();
        // Alg confusion: an HS256 token whose "secret" is the EdDSA public key, naming its kid.
        let x = eddsa.jwks()["keys"][0]["x"].as_str().unwrap().to_owned();
        let public = URL_SAFE_NO_PAD.decode(&x).unwrap();
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(kid.clone());
        for secret in [public.as_slice(), x.as_bytes(), ED25519.as_bytes()] {
            let key = EncodingKey::from_secret(secret);
            let forged = jsonwebtoken::encode(&header, &claims(60), &key).unwrap();
            assert_eq!(eddsa.verify(&forged), Err(JwtError::WrongAlgorithm));
        }
        // With an HS256 key beside it, the HS256 token still never meets the EdDSA key.
        let mixed = JwtKeys::hs256(SECRET)
            .unwrap()
            .with_previous_keys(&eddsa)
            .unwrap();
        let key = EncodingKey::from_secret(&public);
        let forged = jsonwebtoken::encode(&header, &claims(60), &key).unwrap();
        assert_eq!(mixed.verify(&forged), Err(JwtError::BadSignature));
        // An ES256 token is not verified by an EdDSA key, even under its kid.
        let es256 = JwtKeys::es256_pem(P256).unwrap().with_key_id(&kid).unwrap();
        let other = es256.sign(&claims(60)).unwrap();
        assert_eq!(eddsa.verify(&other), Err(JwtError::WrongAlgorithm));
        assert_eq!(mixed.verify(&other), Err(JwtError::WrongAlgorithm));
    }
}
