//! The keys of impersonation JWTs: the first signs, every one verifies (rotation), each by its
//! algorithm: HS256 secrets, Ed25519 (EdDSA) and P-256 (ES256) key pairs or public keys.

use std::{fmt, sync::Arc, time::Duration};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{
    Algorithm, EncodingKey, Header,
    crypto::{CryptoProvider, rust_crypto},
    errors::ErrorKind,
};
use serde_json::{Map, Value};

use super::{
    algorithm::JwtAlgorithm,
    cache::{Verified, VerifiedCache},
    claims::ImpersonationClaims,
    hs256::{MacKey, Parts},
    validity::{TimeRules, Validity},
    verifier::Verifier,
};
use crate::{error::ConfigError, time::Timestamp};

/// Shortest HS256 secret accepted, in bytes (RFC 7518 §3.2: at least the hash size).
const MIN_SECRET_LEN: usize = 32;

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
    inner: Arc<Inner>,
}

struct Inner {
    keys: Vec<Key>,
    /// Seconds a token is still accepted past its `exp`, and before its `nbf` and `iat`, for
    /// clock skew.
    leeway: u64,
    lifetime: Duration,
    /// Seconds `exp` may lie ahead of now; `None` for the lifetime plus the leeway.
    max_lifetime: Option<u64>,
    /// Tokens already verified with these keys. A new configuration (a rotation, other rules)
    /// starts empty.
    verified: VerifiedCache,
    /// The header segments most tokens carry, already parsed; filled by `From<Inner>`.
    known_headers: Vec<KnownHeader>,
}

/// A header segment whose meaning is known without decoding it: the one each key signs with, and
/// the bare form's `{"alg":"HS256"}`. A token that starts with one skips a base64 and JSON parse.
struct KnownHeader {
    segment: String,
    algorithm: JwtAlgorithm,
    kid: Option<String>,
}

#[derive(Clone)]
struct Key {
    id: Option<String>,
    /// What signs; `None` for a public key read from a JWK Set, which only verifies.
    encoding: Option<EncodingKey>,
    verifying: Verifier,
}

/// Why a JWT was refused. The layer answers every one of them with 401 `invalid_token`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum JwtError {
    /// Not a JWT, or claims of the wrong shape.
    Malformed,
    /// A header naming an algorithm no configured key uses. A header jsonwebtoken cannot read at
    /// all, such as one naming `none`, is `Malformed`.
    WrongAlgorithm,
    /// No configured key of the header's algorithm verifies the signature, or the `kid` is
    /// unknown or names a key of another algorithm.
    BadSignature,
    /// Past `exp`, beyond the leeway.
    Expired,
    /// Before `nbf`, beyond the leeway.
    NotYetValid,
    /// An `iat` further in the future than the leeway.
    IssuedInTheFuture,
    /// An `exp` further ahead than the maximum lifetime ([`JwtKeys::with_max_lifetime`]).
    ExpiresTooLate,
    /// A header with `crit`: it names extensions the JWT must not be used without, and this crate
    /// understands none (RFC 7515 §4.1.11).
    CriticalExtension,
    /// Signing failed, or the keys hold no private key.
    Signing(String),
}

impl fmt::Display for JwtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JwtError::Malformed => f.write_str("malformed JWT"),
            JwtError::WrongAlgorithm => f.write_str("JWT algorithm not accepted"),
            JwtError::BadSignature => f.write_str("JWT signature not valid"),
            JwtError::Expired => f.write_str("JWT expired"),
            JwtError::NotYetValid => f.write_str("JWT not valid yet"),
            JwtError::IssuedInTheFuture => f.write_str("JWT issued in the future"),
            JwtError::ExpiresTooLate => f.write_str("JWT expires too far ahead"),
            JwtError::CriticalExtension => f.write_str("JWT requires an extension not supported"),
            JwtError::Signing(why) => write!(f, "JWT could not be signed: {why}"),
        }
    }
}

impl std::error::Error for JwtError {}

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

    /// Keys that only verify: the Ed25519 and P-256 public keys of a JWK Set document
    /// (`{"keys": [...]}`, RFC 7517), such as [`JwtKeys::jwks`] of the minting service publishes.
    /// Keys of other types or curves, or meant for encryption (`"use": "enc"`), are left out; a
    /// set with none left, a key this crate should use but cannot read, a private key (member `d`)
    /// or a `kid` used twice is an error. [`JwtKeys::sign`] fails on these keys.
    pub fn from_jwks(document: &str) -> Result<Self, ConfigError> {
        select_crypto_backend()?;
        let invalid = |why: String| ConfigError::InvalidJwtKey(format!("JWK Set: {why}"));
        let set: Value = serde_json::from_str(document)
            .map_err(|e| invalid(format!("not a JSON document: {e}")))?;
        let jwks = set
            .get("keys")
            .and_then(Value::as_array)
            .ok_or_else(|| invalid("no \"keys\" array".to_owned()))?;
        let mut keys: Vec<Key> = Vec::new();
        for jwk in jwks {
            let jwk = jwk
                .as_object()
                .ok_or_else(|| invalid("a key is not a JSON object".to_owned()))?;
            if jwk.contains_key("d") {
                return Err(invalid(
                    "a key holds a private key (\"d\"); publish public keys only".to_owned(),
                ));
            }
            if jwk.get("use").is_some_and(|usage| *usage != "sig") {
                continue;
            }
            let Some(verifying) = Verifier::from_public_jwk(jwk).map_err(invalid)? else {
                continue;
            };
            let algorithm = verifying.algorithm();
            if let Some(alg) = jwk.get("alg")
                && *alg != algorithm.name()
            {
                return Err(invalid(format!(
                    "a key's \"alg\" is {alg}, but its type and curve are {algorithm}'s"
                )));
            }
            let id = match jwk.get("kid") {
                Some(Value::String(kid)) => Some(kid.clone()),
                None => verifying.thumbprint(),
                Some(_) => return Err(invalid("a key's \"kid\" is not a string".to_owned())),
            };
            if keys.iter().any(|key| key.id == id) {
                return Err(ConfigError::InvalidJwtKeys("a key id is used twice"));
            }
            keys.push(Key {
                id,
                encoding: None,
                verifying,
            });
        }
        let mut keys = keys.into_iter();
        let first = keys.next().ok_or_else(|| {
            invalid("no Ed25519 (EdDSA) or P-256 (ES256) signing key in the set".to_owned())
        })?;
        let mut inner = Inner::new(first);
        inner.keys.extend(keys);
        Ok(inner.into())
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

    /// The public keys, as a JWK Set document (RFC 7517): one JWK for each Ed25519 or P-256 key,
    /// signing or previous, with its `kid`, `alg` and `"use": "sig"`; never a private key or an
    /// HS256 secret, so `{"keys": []}` for HS256 keys. Whoever holds it verifies these keys'
    /// tokens without being able to sign one.
    pub fn jwks(&self) -> Value {
        let keys = self
            .inner
            .keys
            .iter()
            .filter_map(|key| {
                let mut jwk = key.verifying.public_jwk()?;
                if let Some(id) = &key.id {
                    jwk.insert("kid".to_owned(), Value::String(id.clone()));
                }
                let algorithm = key.verifying.algorithm().name();
                jwk.insert("alg".to_owned(), Value::String(algorithm.to_owned()));
                jwk.insert("use".to_owned(), Value::String("sig".to_owned()));
                Some(Value::Object(jwk))
            })
            .collect();
        let mut set = Map::new();
        set.insert("keys".to_owned(), Value::Array(keys));
        Value::Object(set)
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

    fn known_header(&self, segment: &str) -> Option<&KnownHeader> {
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
    fn new(key: Key) -> Self {
        Inner {
            keys: vec![key],
            leeway: 5,
            lifetime: Duration::from_secs(3600),
            max_lifetime: None,
            verified: VerifiedCache::default(),
            known_headers: Vec::new(),
        }
    }

    fn time_rules(&self) -> TimeRules {
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

fn known_headers(keys: &[Key]) -> Vec<KnownHeader> {
    let seed = keys
        .iter()
        .any(|key| key.verifying.algorithm() == JwtAlgorithm::Hs256)
        .then(|| Header {
            typ: None,
            ..Header::new(Algorithm::HS256)
        });
    let signed = keys.iter().map(signing_header);
    seed.into_iter()
        .chain(signed)
        .filter_map(|header| {
            let algorithm = JwtAlgorithm::from_jsonwebtoken(header.alg)?;
            // The segment exactly as jsonwebtoken writes it: the header's JSON, base64url.
            let json = serde_json::to_vec(&header).ok()?;
            Some(KnownHeader {
                segment: URL_SAFE_NO_PAD.encode(json),
                algorithm,
                kid: header.kid,
            })
        })
        .collect()
}

fn signing_header(key: &Key) -> Header {
    let mut header = Header::new(key.verifying.algorithm().jsonwebtoken());
    header.kid.clone_from(&key.id);
    header
}

impl Key {
    fn hs256(id: Option<String>, secret: &[u8]) -> Result<Self, ConfigError> {
        if secret.len() < MIN_SECRET_LEN {
            return Err(ConfigError::WeakJwtSecret { len: secret.len() });
        }
        Ok(Self {
            id,
            encoding: Some(EncodingKey::from_secret(secret)),
            verifying: Verifier::Hmac(MacKey::new(secret)),
        })
    }

    fn ed25519_pem(pem: &str) -> Result<Self, ConfigError> {
        use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
        let key = ed25519_dalek::SigningKey::from_pkcs8_pem(pem.trim())
            .map_err(|e| unreadable_pem(JwtAlgorithm::EdDsa, "an Ed25519", &e.to_string()))?;
        let der = key
            .to_pkcs8_der()
            .map_err(|e| unreadable_pem(JwtAlgorithm::EdDsa, "an Ed25519", &e.to_string()))?;
        Self::asymmetric(
            EncodingKey::from_ed_der(der.as_bytes()),
            Verifier::Ed25519(key.verifying_key()),
        )
    }

    fn es256_pem(pem: &str) -> Result<Self, ConfigError> {
        use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey};
        let key = p256::ecdsa::SigningKey::from_pkcs8_pem(pem.trim())
            .map_err(|e| unreadable_pem(JwtAlgorithm::Es256, "a P-256", &e.to_string()))?;
        let der = key
            .to_pkcs8_der()
            .map_err(|e| unreadable_pem(JwtAlgorithm::Es256, "a P-256", &e.to_string()))?;
        Self::asymmetric(
            EncodingKey::from_ec_der(der.as_bytes()),
            Verifier::Es256(*key.verifying_key()),
        )
    }

    /// A key pair named by its thumbprint, once it is known to sign.
    fn asymmetric(encoding: EncodingKey, verifying: Verifier) -> Result<Self, ConfigError> {
        let key = Self {
            id: verifying.thumbprint(),
            encoding: Some(encoding),
            verifying,
        };
        let probe = Header::new(key.verifying.algorithm().jsonwebtoken());
        let encoding = key.encoding.as_ref().expect("a key pair signs");
        if let Err(e) = jsonwebtoken::encode(&probe, &Map::new(), encoding) {
            return Err(ConfigError::InvalidJwtKey(format!(
                "the {} key does not sign: {e}",
                key.verifying.algorithm()
            )));
        }
        Ok(key)
    }
}

fn unreadable_pem(algorithm: JwtAlgorithm, kind: &str, why: &str) -> ConfigError {
    ConfigError::InvalidJwtKey(format!(
        "the {algorithm} key must be {kind} private key in PKCS#8 PEM \
         (-----BEGIN PRIVATE KEY-----): {why}"
    ))
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

    fn at(secs: u64) -> Timestamp {
        Timestamp::from_secs(secs)
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
        let token = seed_form(&claims, SECRET);
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
        let past = seed_form(
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
        let forever = seed_form(
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
        // The seed's bare form keeps working within the hour, and just beyond it is refused.
        let seed = |exp: u64| seed_form(&serde_json::json!({"user_id": "u1", "exp": exp}), SECRET);
        assert!(keys.verify_cached(&seed(t + 3600), at(t)).is_ok());
        assert!(keys.verify_cached(&seed(t + 3605), at(t)).is_ok());
        assert_eq!(
            keys.verify_cached(&seed(t + 3606), at(t)).err(),
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

    /// RFC 8037 appendix A's Ed25519 key, as PKCS#8 PEM.
    const RFC8037_ED25519: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g
-----END PRIVATE KEY-----";
    const ED25519: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEICvvcdvgqZ7p5LHiOdBDIKtC2mASUUbQL0p4TQUcxAAN
-----END PRIVATE KEY-----";
    const P256: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgSSYFZZErANAYM5Vb
0rz+PdDTcO69G4r6CNvhiJ41e+ihRANCAATygTGMD9j5018cVf9ffTG1HLC/f4Lk
VfmfxYp6kBxGlk3p0d+vKZnHK9U5FHmuHHKwYDWk02SmZon2UhvmLx5d
-----END PRIVATE KEY-----";

    fn header_of(token: &str) -> serde_json::Value {
        let segment = token.split('.').next().unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(segment).unwrap()).unwrap()
    }

    #[test]
    fn the_ed25519_key_id_and_public_jwk_are_rfc_8037s() {
        let keys = JwtKeys::ed25519_pem(RFC8037_ED25519).unwrap();
        assert_eq!(keys.algorithm(), JwtAlgorithm::EdDsa);
        // RFC 8037 A.3: the thumbprint of the example key.
        assert_eq!(
            keys.key_id(),
            Some("kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k")
        );
        assert_eq!(
            keys.jwks(),
            serde_json::json!({"keys": [{"kty": "OKP", "crv": "Ed25519",
                "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
                "kid": "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k",
                "alg": "EdDSA", "use": "sig"}]})
        );
    }

    #[test]
    fn eddsa_and_es256_keys_sign_tokens_they_verify_with_their_kid() {
        for (keys, alg) in [
            (JwtKeys::ed25519_pem(ED25519).unwrap(), "EdDSA"),
            (JwtKeys::es256_pem(P256).unwrap(), "ES256"),
        ] {
            let token = keys.sign(&claims(60)).unwrap();
            let header = header_of(&token);
            assert_eq!(header["alg"], alg);
            assert_eq!(header["kid"], keys.key_id().unwrap());
            assert_eq!(keys.verify(&token).unwrap().user_id, "u1");
            assert!(keys.verify_cached(&token, Timestamp::now()).is_ok());
            let expired = keys.sign(&claims(-60)).unwrap();
            assert_eq!(keys.verify(&expired), Err(JwtError::Expired));
            let (signed, signature) = token.rsplit_once('.').unwrap();
            let first = if signature.starts_with('A') { "B" } else { "A" };
            let flipped = format!("{signed}.{first}{}", &signature[1..]);
            assert_eq!(keys.verify(&flipped), Err(JwtError::BadSignature));
            let jwk = &keys.jwks()["keys"][0];
            assert_eq!(jwk["alg"], alg);
            assert!(jwk.get("d").is_none(), "no private part: {jwk}");
        }
        let es256 = JwtKeys::es256_pem(P256).unwrap();
        let jwk = &es256.jwks()["keys"][0];
        assert_eq!((&jwk["kty"], &jwk["crv"]), (&"EC".into(), &"P-256".into()));
        assert!(jwk["y"].is_string());
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
    fn keys_read_from_the_jwks_verify_but_cannot_sign() {
        let signer = JwtKeys::es256_pem(P256)
            .unwrap()
            .with_previous_keys(&JwtKeys::ed25519_pem(ED25519).unwrap())
            .unwrap();
        let document = signer.jwks().to_string();
        let verifier = JwtKeys::from_jwks(&document).unwrap();
        let token = signer.sign(&claims(60)).unwrap();
        assert_eq!(verifier.verify(&token).unwrap().user_id, "u1");
        assert!(matches!(
            verifier.sign(&claims(60)),
            Err(JwtError::Signing(_))
        ));
        assert_eq!(verifier.jwks(), signer.jwks());
        let hs256_token = JwtKeys::hs256(SECRET).unwrap().sign(&claims(60)).unwrap();
        assert_eq!(verifier.verify(&hs256_token), Err(JwtError::WrongAlgorithm));
    }

    #[test]
    fn bad_jwk_sets_and_pem_keys_are_configuration_errors_that_say_why() {
        let private = serde_json::json!({"keys": [{"kty": "OKP", "crv": "Ed25519",
            "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
            "d": "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"}]});
        for (document, says) in [
            ("{\"keys\": []}".to_owned(), "no Ed25519"),
            ("[]".to_owned(), "\"keys\""),
            (private.to_string(), "private key"),
            (
                r#"{"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "AAAA"}]}"#.to_owned(),
                "32 bytes",
            ),
            (
                r#"{"keys": [{"kty": "RSA", "n": "AQAB", "e": "AQAB"}]}"#.to_owned(),
                "no Ed25519",
            ),
        ] {
            let error = JwtKeys::from_jwks(&document).unwrap_err().to_string();
            assert!(error.contains(says), "{document}: {error}");
        }
        for (keys, says) in [
            (JwtKeys::ed25519_pem(P256), "Ed25519"),
            (JwtKeys::es256_pem(ED25519), "P-256"),
            (JwtKeys::ed25519_pem("not a key"), "PKCS#8 PEM"),
            (JwtKeys::es256_pem(""), "PKCS#8 PEM"),
        ] {
            let error = keys.unwrap_err().to_string();
            assert!(error.contains(says), "{error}");
            assert!(!error.contains("MIGHAgEA"), "no key material: {error}");
        }
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

    #[test]
    fn the_headers_tokens_usually_carry_skip_the_header_parse() {
        let hs256 = JwtKeys::hs256(SECRET).unwrap();
        let seed = seed_form(&serde_json::json!({"user_id": "u1", "exp": 1}), SECRET);
        let named = JwtKeys::hs256(SECRET).unwrap().with_key_id("k1").unwrap();
        let eddsa = JwtKeys::ed25519_pem(ED25519).unwrap();
        for (keys, token) in [
            (&hs256, hs256.sign(&claims(60)).unwrap()),
            (&hs256, seed),
            (&named, named.sign(&claims(60)).unwrap()),
            (&eddsa, eddsa.sign(&claims(60)).unwrap()),
        ] {
            let segment = token.split('.').next().unwrap();
            let known = keys.known_header(segment).expect("a known header");
            assert_eq!(known.kid.as_deref(), header_of(&token)["kid"].as_str());
        }
    }
}
