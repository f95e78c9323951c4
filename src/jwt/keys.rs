//! HS256 keys: signing with the current one, verifying with any configured one (rotation).

use std::{fmt, sync::Arc, time::Duration};

use jsonwebtoken::{
    Algorithm, EncodingKey, Header,
    crypto::{CryptoProvider, rust_crypto},
    errors::ErrorKind,
};

use super::{
    cache::{Verified, VerifiedCache},
    claims::ImpersonationClaims,
    hs256::{MacKey, Parts},
};
use crate::{error::ConfigError, time::Timestamp};

/// Shortest HS256 secret accepted, in bytes (RFC 7518 §3.2: at least the hash size).
const MIN_SECRET_LEN: usize = 32;

/// The HS256 keys of impersonation JWTs: the first signs, every one verifies, so keys can rotate.
///
/// `Debug` never shows a secret. Cheap to clone.
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
    inner: Arc<Inner>,
}

struct Inner {
    keys: Vec<Key>,
    /// Seconds a token is still accepted past its `exp`, for clock skew.
    leeway: u64,
    lifetime: Duration,
    /// Tokens already verified with these keys. A new key set (a rotation) starts empty.
    verified: VerifiedCache,
    /// The header segments most tokens carry, already parsed; filled by `From<Inner>`.
    known_headers: Vec<KnownHeader>,
}

/// A header segment whose meaning is known without decoding it: the one each key signs with, and
/// the seed's `{"alg":"HS256"}`. A token that starts with one skips a base64 and JSON parse.
struct KnownHeader {
    segment: String,
    kid: Option<String>,
}

struct Key {
    id: Option<String>,
    encoding: EncodingKey,
    verifying: MacKey,
}

/// Why a JWT was refused. The layer answers every one of them with 401 `invalid_token`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum JwtError {
    /// Not a JWT, or claims of the wrong shape.
    Malformed,
    /// A header naming an algorithm other than the configured one. A header jsonwebtoken cannot
    /// read at all, such as one naming `none`, is `Malformed`.
    WrongAlgorithm,
    /// No configured key verifies the signature, or the `kid` is unknown.
    BadSignature,
    /// Past `exp`, beyond the leeway.
    Expired,
    /// Signing failed.
    Signing(String),
}

impl fmt::Display for JwtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JwtError::Malformed => f.write_str("malformed JWT"),
            JwtError::WrongAlgorithm => f.write_str("JWT algorithm not accepted"),
            JwtError::BadSignature => f.write_str("JWT signature not valid"),
            JwtError::Expired => f.write_str("JWT expired"),
            JwtError::Signing(why) => write!(f, "JWT could not be signed: {why}"),
        }
    }
}

impl std::error::Error for JwtError {}

impl JwtKeys {
    /// Keys with one HS256 secret of at least 32 bytes, which signs and verifies.
    pub fn hs256(secret: &[u8]) -> Result<Self, ConfigError> {
        select_crypto_backend()?;
        let inner = Inner {
            keys: vec![Key::new(None, secret)?],
            leeway: 5,
            lifetime: Duration::from_secs(3600),
            verified: VerifiedCache::default(),
            known_headers: Vec::new(),
        };
        Ok(inner.into())
    }

    /// Names the signing key, so tokens carry a `kid` header and verifiers pick the key by it.
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

    /// Adds a key that still verifies but no longer signs, for rotation.
    pub fn with_previous_key(self, id: Option<&str>, secret: &[u8]) -> Result<Self, ConfigError> {
        let key = Key::new(id.map(str::to_owned), secret)?;
        let mut inner = self.into_inner();
        if id.is_some() && inner.keys.iter().any(|k| k.id.as_deref() == id) {
            return Err(ConfigError::InvalidJwtKeys("a key id is used twice"));
        }
        inner.keys.push(key);
        Ok(inner.into())
    }

    /// Clock skew tolerated on `exp` (default 5 seconds).
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

    /// How long issued tokens live.
    pub fn lifetime(&self) -> Duration {
        self.inner.lifetime
    }

    /// Signs claims with the current key.
    pub fn sign(&self, claims: &ImpersonationClaims) -> Result<String, JwtError> {
        let key = &self.inner.keys[0];
        jsonwebtoken::encode(&signing_header(key), claims, &key.encoding)
            .map_err(|e| JwtError::Signing(e.to_string()))
    }

    /// Verifies a token: HS256 only, `exp` required and in the future (within the leeway), signed
    /// by the key its `kid` names, or by any configured key when it names none.
    pub fn verify(&self, token: &str) -> Result<ImpersonationClaims, JwtError> {
        self.verify_at(token, Timestamp::now().as_secs())
    }

    /// [`JwtKeys::verify`] at `now`, in seconds since the epoch.
    fn verify_at(&self, token: &str, now: u64) -> Result<ImpersonationClaims, JwtError> {
        let parts = Parts::split(token)?;
        let parsed;
        let kid = match self.known_header(parts.header) {
            Some(known) => known.kid.as_deref(),
            None => {
                parsed = header_kid(token)?;
                parsed.as_deref()
            }
        };
        let candidates = self
            .inner
            .keys
            .iter()
            .filter(|key| kid.is_none() || key.id.as_deref() == kid)
            .map(|key| &key.verifying);
        if !parts.signed_by_any(candidates) {
            return Err(JwtError::BadSignature);
        }
        parts.claims(now, self.inner.leeway)
    }

    /// [`JwtKeys::verify`] at `now` (the request's one clock read), remembering tokens that passed
    /// until they expire, so a client sending the same token again and again pays for one
    /// verification. Tokens are compared by their full text.
    pub(crate) fn verify_cached(
        &self,
        token: &str,
        now: Timestamp,
    ) -> Result<Arc<Verified>, JwtError> {
        let now = now.as_secs();
        if let Some(hit) = self.inner.verified.get(token, now) {
            return Ok(hit);
        }
        let claims = self.verify_at(token, now)?;
        let verified = Arc::new(Verified::new(claims, self.inner.leeway)?);
        self.inner.verified.insert(token, Arc::clone(&verified));
        Ok(verified)
    }

    fn known_header(&self, segment: &str) -> Option<&KnownHeader> {
        self.inner
            .known_headers
            .iter()
            .find(|known| known.segment == segment)
    }

    fn into_inner(self) -> Inner {
        Arc::try_unwrap(self.inner).unwrap_or_else(|shared| Inner {
            keys: shared.keys.iter().map(Key::duplicate).collect(),
            leeway: shared.leeway,
            lifetime: shared.lifetime,
            verified: VerifiedCache::default(),
            known_headers: Vec::new(),
        })
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

/// The `kid` a token's header names, after checking its algorithm.
fn header_kid(token: &str) -> Result<Option<String>, JwtError> {
    let header = jsonwebtoken::decode_header(token).map_err(|e| classify(e.kind()))?;
    if header.alg != Algorithm::HS256 {
        return Err(JwtError::WrongAlgorithm);
    }
    Ok(header.kid)
}

fn known_headers(keys: &[Key]) -> Vec<KnownHeader> {
    let seed = Header {
        typ: None,
        ..Header::new(Algorithm::HS256)
    };
    let signed = keys.iter().map(|key| (signing_header(key), key));
    let headers = std::iter::once((seed, &keys[0])).chain(signed);
    headers
        .filter_map(|(header, key)| {
            // The segment exactly as jsonwebtoken writes it, taken from a token it signs.
            let token =
                jsonwebtoken::encode(&header, &serde_json::Map::new(), &key.encoding).ok()?;
            let segment = token.split('.').next()?.to_owned();
            Some(KnownHeader {
                segment,
                kid: header.kid,
            })
        })
        .collect()
}

fn signing_header(key: &Key) -> Header {
    let mut header = Header::new(Algorithm::HS256);
    header.kid.clone_from(&key.id);
    header
}

impl Key {
    fn new(id: Option<String>, secret: &[u8]) -> Result<Self, ConfigError> {
        if secret.len() < MIN_SECRET_LEN {
            return Err(ConfigError::WeakJwtSecret { len: secret.len() });
        }
        Ok(Self {
            id,
            encoding: EncodingKey::from_secret(secret),
            verifying: MacKey::new(secret),
        })
    }

    fn duplicate(&self) -> Self {
        Self {
            id: self.id.clone(),
            encoding: self.encoding.clone(),
            verifying: self.verifying.clone(),
        }
    }
}

fn classify(kind: &ErrorKind) -> JwtError {
    match kind {
        ErrorKind::InvalidSignature => JwtError::BadSignature,
        ErrorKind::ExpiredSignature => JwtError::Expired,
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => JwtError::WrongAlgorithm,
        _ => JwtError::Malformed,
    }
}

impl fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<_> = self.inner.keys.iter().map(|k| k.id.as_deref()).collect();
        f.debug_struct("JwtKeys")
            .field("key_ids", &ids)
            .field("secrets", &"<redacted>")
            .field("lifetime", &self.inner.lifetime)
            .finish()
    }
}

/// jsonwebtoken picks its crypto backend from its cargo features and panics at first use when an
/// app enables both. Install ours explicitly, and turn a backend that cannot sign into an error now
/// rather than a panic on the first request.
fn select_crypto_backend() -> Result<(), ConfigError> {
    let Err(installed) = CryptoProvider::install_default(&rust_crypto::DEFAULT_PROVIDER) else {
        return Ok(());
    };
    if std::ptr::eq(installed, &rust_crypto::DEFAULT_PROVIDER) {
        return Ok(());
    }
    let probe = std::panic::catch_unwind(|| {
        let key = EncodingKey::from_secret(&[0; MIN_SECRET_LEN]);
        jsonwebtoken::crypto::sign(b"probe", &key, Algorithm::HS256).is_ok()
    });
    match probe {
        Ok(true) => Ok(()),
        _ => Err(ConfigError::CryptoBackend(
            "the installed jsonwebtoken CryptoProvider cannot sign HS256; enable exactly one of \
             jsonwebtoken's `rust_crypto` and `aws_lc_rs` features, or install a provider first",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Timestamp;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
    const OTHER: &[u8] = b"fedcba9876543210fedcba9876543210";

    fn claims(exp_in: i64) -> ImpersonationClaims {
        let now = Timestamp::now().as_secs() as i64;
        ImpersonationClaims {
            user_id: "u1".into(),
            exp: (now + exp_in) as u64,
            iat: None,
            jti: None,
            org: None,
            act: None,
            roles: None,
        }
    }

    #[test]
    fn signed_tokens_verify_and_expired_ones_do_not() {
        let keys = JwtKeys::hs256(SECRET).unwrap();
        let token = keys.sign(&claims(60)).unwrap();
        assert_eq!(keys.verify(&token).unwrap().user_id, "u1");
        let old = keys.sign(&claims(-60)).unwrap();
        assert_eq!(keys.verify(&old), Err(JwtError::Expired));
    }

    /// A token over `claims` with the seed's header, signed with `secret` by jsonwebtoken.
    fn seed_form(claims: &serde_json::Value, secret: &[u8]) -> String {
        let header = Header {
            typ: None,
            ..Header::new(Algorithm::HS256)
        };
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(secret)).unwrap()
    }

    #[test]
    fn leeway_is_honoured_and_exp_is_required() {
        let keys = JwtKeys::hs256(SECRET).unwrap();
        let now = Timestamp::now().as_secs();
        let within = seed_form(
            &serde_json::json!({"user_id": "u1", "exp": now - 2}),
            SECRET,
        );
        assert!(keys.verify(&within).is_ok(), "2 s past exp, 5 s leeway");
        let past = seed_form(
            &serde_json::json!({"user_id": "u1", "exp": now - 30}),
            SECRET,
        );
        assert_eq!(keys.verify(&past), Err(JwtError::Expired));
        let no_exp = seed_form(&serde_json::json!({"user_id": "u1"}), SECRET);
        assert_eq!(keys.verify(&no_exp), Err(JwtError::Malformed));
    }

    #[test]
    fn a_token_for_an_audience_is_refused_as_jsonwebtoken_would() {
        let keys = JwtKeys::hs256(SECRET).unwrap();
        let exp = Timestamp::now().as_secs() + 60;
        for aud in [serde_json::json!("billing"), serde_json::json!(["billing"])] {
            let claims = serde_json::json!({"user_id": "u1", "exp": exp, "aud": aud});
            assert_eq!(
                keys.verify(&seed_form(&claims, SECRET)),
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

    #[test]
    fn debug_shows_no_secret() {
        let keys = JwtKeys::hs256(SECRET).unwrap();
        assert!(!format!("{keys:?}").contains("0123456789abcdef"));
    }
}
