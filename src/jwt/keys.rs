//! The keys of impersonation JWTs: the first signs, every one verifies (rotation), each by its
//! algorithm: HS256 secrets, Ed25519 (EdDSA) and P-256 (ES256) key pairs or public keys.
use std::{fmt, sync::Arc, time::Duration};

use super::{
    algorithm::JwtAlgorithm,
    cache::VerifiedCache,
    claims::ImpersonationClaims,
    crypto_backend::select_crypto_backend,
    error::JwtError,
    key_material::{Key, signing_header},
    known_header::{KnownHeader, known_headers},
    validity::TimeRules,
};
use crate::error::ConfigError;

/// The keys of impersonation JWTs: the first signs, every one verifies, so keys can rotate.
///
/// HS256 (one shared secret) is the default; an Ed25519 (`EdDSA`) or P-256 (`ES256`)
/// key pair signs tokens that others verify with its public key alone, which
/// [`JwtKeys::jwks`] publishes as a JWK Set and [`JwtKeys::from_jwks`] reads back. A token is
/// checked only against keys of the algorithm its header names, and only the key its `kid`
/// names, if it names one; asymmetric keys are named by their RFC 7638 thumbprint unless
/// [`JwtKeys::with_key_id`] names them.
///
/// A token whose signature verifies is accepted only if its claims hold, read as RFC 7515 and
/// RFC 7519 mean them, with times in whole seconds since the epoch and a leeway for clock skew
/// ([`JwtKeys::with_leeway`], 5 seconds by default):
///
/// - its header has no `crit`: the extensions it would name must be understood, and this crate
///   understands none;
/// - `exp` is present, and now is at most `exp` plus the leeway;
/// - now is at least `nbf` less the leeway, when there is an `nbf`;
/// - now is at least `iat` less the leeway, when there is an `iat`: no token issued in the future;
/// - `exp` lies at most the maximum lifetime ahead of now ([`JwtKeys::with_max_lifetime`], by
///   default the lifetime, one hour, plus the leeway): however far ahead a token's `exp`, it is
///   accepted only in the last hour and five seconds before, and the leeway after;
/// - no `aud`, as no audience is configured.
///
/// The bare `{"user_id", "exp"}` form is accepted within those rules. Every rule holds
/// for a token remembered as verified as much as for one seen for the first time: a remembered
/// token is accepted only while now lies within the interval its claims allow.
///
/// `Debug` never shows a secret or a private key. Cheap to clone.
///
/// ```
/// use tower_impersonation::jwt::JwtKeys;
///
/// let keys = JwtKeys::hs256(b"an example secret of at least 32 bytes!")?
///     .with_previous_key(Some("2025"), b"last year's secret, also 32 bytes long")?;
/// assert!(JwtKeys::hs256(b"too short").is_err());
/// # Ok::<_, tower_impersonation::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct JwtKeys {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub(super) keys: Vec<Key>,
    /// Seconds a token is still accepted past its `exp`, and before its `nbf` and `iat`, for
    /// clock skew.
    pub(super) leeway: u64,
    pub(super) lifetime: Duration,
    /// Seconds `exp` may lie ahead of now; `None` for the lifetime plus the leeway.
    pub(super) max_lifetime: Option<u64>,
    /// Tokens already verified with these keys. A new configuration (a rotation, other rules)
    /// starts empty.
    pub(super) verified: VerifiedCache,
    /// The header segments most tokens carry, already parsed; filled by `From<Inner>`.
    pub(super) known_headers: Vec<KnownHeader>,
}

impl JwtKeys {
    /// Keys with one HS256 secret of at least 32 bytes, which signs and verifies.
    pub fn hs256(secret: &[u8]) -> Result<Self, ConfigError> {
        select_crypto_backend()?;
        Ok(Inner::new(Key::hs256(None, secret)?).into())
    }

    /// Keys with one Ed25519 private key (`EdDSA`), in PKCS#8 PEM (`-----BEGIN PRIVATE
    /// KEY-----`, as `openssl genpkey -algorithm ed25519` writes it), which signs; its public key
    /// verifies and is published by [`JwtKeys::jwks`]. Its `kid` is the key's RFC 7638 thumbprint
    /// unless [`JwtKeys::with_key_id`] names it.
    ///
    /// ```
    /// use tower_impersonation::jwt::{JwtAlgorithm, JwtKeys};
    ///
    /// let pem = "-----BEGIN PRIVATE KEY-----
    /// MC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC
    /// -----END PRIVATE KEY-----";
    /// let keys = JwtKeys::ed25519_pem(pem)?;
    /// assert_eq!(keys.algorithm(), JwtAlgorithm::EdDsa);
    /// assert_eq!(keys.jwks()["keys"][0]["kty"], "OKP");
    /// # Ok::<_, tower_impersonation::ConfigError>(())
    /// ```
    pub fn ed25519_pem(pem: &str) -> Result<Self, ConfigError> {
        select_crypto_backend()?;
        Ok(Inner::new(Key::ed25519_pem(pem)?).into())
    }

    /// Keys with one P-256 private key (`ES256`), in PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`,
    /// as `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256` writes it), which
    /// signs; its public key verifies and is published by [`JwtKeys::jwks`]. Its `kid` is the
    /// key's RFC 7638 thumbprint unless [`JwtKeys::with_key_id`] names it.
    pub fn es256_pem(pem: &str) -> Result<Self, ConfigError> {
        select_crypto_backend()?;
        Ok(Inner::new(Key::es256_pem(pem)?).into())
    }

    /// Names the signing key, so tokens carry this `kid` header and verifiers pick the key by it.
    pub fn with_key_id(self, id: &str) -> Result<Self, ConfigError> {
        let mut inner = self.into_inner();
        if inner
            .keys
            .iter()
            .skip(1)
            .any(|k| k.id.as_deref() == Some(id))
        {
            return Err(ConfigError::InvalidJwtKeys("a key id is used twice"));
        }
        inner.keys[0].id = Some(id.to_owned());
        Ok(inner.into())
    }

    /// Adds an HS256 key that still verifies but no longer signs, for rotation.
    pub fn with_previous_key(self, id: Option<&str>, secret: &[u8]) -> Result<Self, ConfigError> {
        let key = Key::hs256(id.map(str::to_owned), secret)?;
        self.with_verifying_keys(vec![key])
    }

    /// Adds every key of `previous`, of any algorithm, as keys that still verify but no longer
    /// sign: rotating from one key pair to another, or from HS256 to EdDSA or ES256, keeps the
    /// tokens already issued valid until they expire. Key ids must stay distinct.
    ///
    /// ```
    /// use tower_impersonation::jwt::JwtKeys;
    ///
    /// let old = JwtKeys::hs256(b"the secret used until this rotation")?;
    /// # let pem = "-----BEGIN PRIVATE KEY-----
    /// # MC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC
    /// # -----END PRIVATE KEY-----";
    /// let keys = JwtKeys::ed25519_pem(pem)?.with_previous_keys(&old)?;
    /// # Ok::<_, tower_impersonation::ConfigError>(())
    /// ```
    pub fn with_previous_keys(self, previous: &JwtKeys) -> Result<Self, ConfigError> {
        self.with_verifying_keys(previous.inner.keys.clone())
    }

    fn with_verifying_keys(self, added: Vec<Key>) -> Result<Self, ConfigError> {
        let mut inner = self.into_inner();
        for key in added {
            if key.id.is_some() && inner.keys.iter().any(|k| k.id == key.id) {
                return Err(ConfigError::InvalidJwtKeys("a key id is used twice"));
            }
            inner.keys.push(key);
        }
        Ok(inner.into())
    }

    /// Clock skew tolerated on `exp`, `nbf` and `iat`, in whole seconds (default 5 seconds).
    /// Zero tolerates none, not even between the clock that minted a token and the one that
    /// checks it.
    #[must_use]
    pub fn with_leeway(self, leeway: Duration) -> Self {
        let mut inner = self.into_inner();
        inner.leeway = leeway.as_secs();
        inner.into()
    }

    /// How long issued tokens live (default one hour).
    #[must_use]
    pub fn with_lifetime(self, lifetime: Duration) -> Self {
        let mut inner = self.into_inner();
        inner.lifetime = lifetime;
        inner.into()
    }

    /// How far ahead of now a token's `exp` may lie, in whole seconds: a token whose `exp` lies
    /// further ahead is refused ([`JwtError::ExpiresTooLate`]) until it comes within. Default:
    /// the lifetime plus the leeway, so the tokens these keys mint pass.
    ///
    /// Lower it to accept only shorter-lived tokens. For tokens minted elsewhere with a longer
    /// lifetime, set [`JwtKeys::with_lifetime`] to that lifetime instead: this default follows
    /// it, and so does what the crate derives from the lifetime (how long a user's revocation is
    /// kept, the issue time of a JWT without `iat`).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_impersonation::jwt::{ImpersonationClaims, JwtError, JwtKeys};
    ///
    /// let keys = JwtKeys::hs256(b"an example secret of at least 32 bytes!")?;
    /// assert_eq!(keys.max_lifetime(), Duration::from_secs(3600 + 5));
    /// let short = keys.with_max_lifetime(Duration::from_secs(600));
    /// let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
    /// let claims = |exp| ImpersonationClaims {
    ///     user_id: "u1".into(),
    ///     exp,
    ///     iat: Some(now),
    ///     jti: None,
    ///     org: None,
    ///     act: None,
    ///     roles: None,
    /// };
    /// let in_five_minutes = short.sign(&claims(now + 300))?;
    /// assert!(short.verify(&in_five_minutes).is_ok());
    /// let in_a_day = short.sign(&claims(now + 86_400))?;
    /// assert_eq!(short.verify(&in_a_day), Err(JwtError::ExpiresTooLate));
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn with_max_lifetime(self, max_lifetime: Duration) -> Self {
        let mut inner = self.into_inner();
        inner.max_lifetime = Some(max_lifetime.as_secs());
        inner.into()
    }

    /// How long issued tokens live.
    pub fn lifetime(&self) -> Duration {
        self.inner.lifetime
    }

    /// How long past its `exp` (and before its `nbf` and `iat`) a token is still accepted, for
    /// clock skew.
    pub fn leeway(&self) -> Duration {
        Duration::from_secs(self.inner.leeway)
    }

    /// How far ahead of now a token's `exp` may lie: [`JwtKeys::with_max_lifetime`], or the
    /// lifetime plus the leeway.
    pub fn max_lifetime(&self) -> Duration {
        Duration::from_secs(self.inner.time_rules().max_lifetime)
    }

    /// The algorithm the signing key signs with.
    pub fn algorithm(&self) -> JwtAlgorithm {
        self.inner.keys[0].verifying.algorithm()
    }

    /// The `kid` of the signing key, if it has one (asymmetric keys always do).
    pub fn key_id(&self) -> Option<&str> {
        self.inner.keys[0].id.as_deref()
    }

    /// Signs claims with the current key.
    pub fn sign(&self, claims: &ImpersonationClaims) -> Result<String, JwtError> {
        let key = &self.inner.keys[0];
        let Some(encoding) = &key.encoding else {
            return Err(JwtError::Signing(
                "these keys were read from a JWK Set and only verify".to_owned(),
            ));
        };
        jsonwebtoken::encode(&signing_header(key), claims, encoding)
            .map_err(|e| JwtError::Signing(e.to_string()))
    }

    /// The configuration to change, its cache empty: what was verified under the old one is no
    /// proof under the new.
    fn into_inner(self) -> Inner {
        let shared = self.inner;
        Inner {
            keys: shared.keys.clone(),
            leeway: shared.leeway,
            lifetime: shared.lifetime,
            max_lifetime: shared.max_lifetime,
            verified: VerifiedCache::default(),
            known_headers: Vec::new(),
        }
    }
}

impl Inner {
    pub(super) fn new(key: Key) -> Self {
        Inner {
            keys: vec![key],
            leeway: 5,
            lifetime: Duration::from_secs(3600),
            max_lifetime: None,
            verified: VerifiedCache::default(),
            known_headers: Vec::new(),
        }
    }

    pub(super) fn time_rules(&self) -> TimeRules {
        let default = self.lifetime.as_secs().saturating_add(self.leeway);
        TimeRules {
            leeway: self.leeway,
            max_lifetime: self.max_lifetime.unwrap_or(default),
        }
    }
}

impl From<Inner> for JwtKeys {
    fn from(mut inner: Inner) -> Self {
        inner.known_headers = known_headers(&inner.keys);
        Self {
            inner: Arc::new(inner),
        }
    }
}

impl fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Vec<_> = self
            .inner
            .keys
            .iter()
            .map(|k| (k.verifying.algorithm(), k.id.as_deref()))
            .collect();
        f.debug_struct("JwtKeys")
            .field("keys", &keys)
            .field("secrets", &"<redacted>")
            .field("lifetime", &self.inner.lifetime)
            .field("max_lifetime", &self.max_lifetime())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::test_fixtures::*;
    use super::*;
    use crate::time::Timestamp;

    #[test]
    fn rotation_accepts_previous_keys_and_kid_selects_one() {
        let old = JwtKeys::hs256(OTHER).unwrap().with_key_id("old").unwrap();
        let new = JwtKeys::hs256(SECRET)
            .unwrap()
            .with_key_id("new")
            .unwrap()
            .with_previous_key(Some("old"), OTHER)
            .unwrap();
        let token = old.sign(&claims(60)).unwrap();
        assert!(new.verify(&token).is_ok());
        let stranger = JwtKeys::hs256(OTHER).unwrap().with_key_id("new").unwrap();
        let forged = stranger.sign(&claims(60)).unwrap();
        assert_eq!(new.verify(&forged), Err(JwtError::BadSignature));
    }

    #[test]
    fn short_secrets_and_duplicate_ids_are_configuration_errors() {
        assert_eq!(
            JwtKeys::hs256(&SECRET[..31]).err(),
            Some(ConfigError::WeakJwtSecret { len: 31 })
        );
        let dup = JwtKeys::hs256(SECRET)
            .unwrap()
            .with_previous_key(Some("a"), OTHER)
            .unwrap();
        assert!(dup.with_previous_key(Some("a"), OTHER).is_err());
    }

    #[test]
    fn the_maximum_lifetime_follows_the_lifetime_unless_it_is_set() {
        let t = Timestamp::now().as_secs();
        let two_hours = JwtKeys::hs256(SECRET)
            .unwrap()
            .with_lifetime(Duration::from_secs(7200))
            .with_leeway(Duration::from_secs(30));
        assert_eq!(two_hours.max_lifetime(), Duration::from_secs(7230));
        // What the keys mint, as the services mint it, passes every rule.
        let minted = ImpersonationClaims {
            iat: Some(t),
            ..claims(7200)
        };
        assert!(two_hours.verify(&two_hours.sign(&minted).unwrap()).is_ok());
        let tighter = two_hours.with_max_lifetime(Duration::from_secs(600));
        assert_eq!(tighter.max_lifetime(), Duration::from_secs(600));
        assert_eq!(
            tighter.verify(&tighter.sign(&minted).unwrap()),
            Err(JwtError::ExpiresTooLate)
        );
        assert!(tighter.verify(&tighter.sign(&claims(600)).unwrap()).is_ok());
    }

    #[test]
    fn changed_rules_start_with_an_empty_cache() {
        let keys = JwtKeys::hs256(SECRET).unwrap();
        let t = Timestamp::now().as_secs();
        let token = keys.sign(&claims(3000)).unwrap();
        assert!(keys.verify_cached(&token, at(t)).is_ok());
        let stricter = keys.with_max_lifetime(Duration::from_secs(600));
        assert!(stricter.verified_before(token.as_bytes(), at(t)).is_none());
        assert_eq!(
            stricter.verify_cached(&token, at(t)).err(),
            Some(JwtError::ExpiresTooLate)
        );
    }

    #[test]
    fn debug_shows_no_secret() {
        let keys = JwtKeys::hs256(SECRET).unwrap();
        assert!(!format!("{keys:?}").contains("0123456789abcdef"));
    }

    #[test]
    fn rotation_spans_algorithms_and_the_jwks_lists_every_public_key() {
        let hs256 = JwtKeys::hs256(SECRET).unwrap().with_key_id("hs").unwrap();
        let eddsa = JwtKeys::ed25519_pem(ED25519).unwrap();
        let es256 = JwtKeys::es256_pem(P256)
            .unwrap()
            .with_previous_keys(&eddsa)
            .unwrap()
            .with_previous_keys(&hs256)
            .unwrap();
        for old in [&hs256, &eddsa] {
            let token = old.sign(&claims(60)).unwrap();
            assert!(es256.verify(&token).is_ok(), "{old:?}");
        }
        let ids: Vec<_> = es256.jwks()["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|jwk| jwk["alg"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            ids,
            ["ES256", "EdDSA"],
            "the HS256 secret is never published"
        );
        assert!(
            es256.with_previous_keys(&eddsa).is_err(),
            "a kid used twice"
        );
    }

    #[test]
    fn debug_of_key_pairs_shows_no_private_key() {
        let keys = JwtKeys::ed25519_pem(ED25519).unwrap();
        let shown = format!("{keys:?}");
        assert!(
            shown.contains("EdDsa") && !shown.contains("MC4CAQAw"),
            "{shown}"
        );
    }
}
