//! Impersonation token secrets: their format, their digest and their masked form.

use std::{
    fmt,
    hash::{Hash, Hasher},
};

use sha2::{Digest as _, Sha256};
use uuid::Uuid;

use crate::error::ConfigError;

/// The prefix of impersonation tokens unless configured otherwise.
pub const DEFAULT_PREFIX: &str = "GINT:IMP:";

/// Length of a lowercase hyphenated UUID.
const UUID_LEN: usize = 36;

/// The prefix that marks a bearer credential as an impersonation token (`GINT:IMP:` by default).
///
/// A prefix is 1 to 32 visible ASCII characters, so a token never needs quoting in a header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenPrefix(Box<str>);

impl TokenPrefix {
    /// Checks and wraps a prefix.
    pub fn new(prefix: &str) -> Result<Self, ConfigError> {
        let visible = prefix.bytes().all(|b| b.is_ascii_graphic());
        if prefix.is_empty() || prefix.len() > 32 || !visible {
            return Err(ConfigError::InvalidTokenPrefix);
        }
        Ok(Self(prefix.into()))
    }

    /// The prefix as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for TokenPrefix {
    fn default() -> Self {
        Self(DEFAULT_PREFIX.into())
    }
}

/// A whole impersonation token, `<prefix><uuid v4>`: a secret, shown to its creator once.
///
/// `Debug` and `Display` redact it; [`TokenSecret::expose`] is the one way to read it.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenSecret {
    prefix: TokenPrefix,
    secret: Uuid,
}

impl TokenSecret {
    /// Draws a new secret from the operating system's random generator.
    pub fn generate(prefix: &TokenPrefix) -> Self {
        Self {
            prefix: prefix.clone(),
            secret: Uuid::new_v4(),
        }
    }

    /// Parses a whole token; `None` unless it is `prefix` followed by a lowercase hyphenated UUID.
    pub fn parse(prefix: &TokenPrefix, token: &str) -> Option<Self> {
        let rest = token.strip_prefix(prefix.as_str())?;
        parse_lower_uuid(rest.as_bytes()).map(|secret| Self {
            prefix: prefix.clone(),
            secret,
        })
    }

    /// The whole token, for the one response that hands it to its creator.
    pub fn expose(&self) -> String {
        format!("{}{}", self.prefix.as_str(), self.secret.hyphenated())
    }

    /// The digest under which the token is stored.
    pub fn digest(&self) -> TokenDigest {
        TokenDigest::of(&self.secret)
    }

    /// The last four characters, kept for the masked listing.
    pub fn last_four(&self) -> LastFour {
        let mut buffer = Uuid::encode_buffer();
        let hyphenated = self.secret.hyphenated().encode_lower(&mut buffer);
        let mut last = [0; 4];
        last.copy_from_slice(&hyphenated.as_bytes()[UUID_LEN - 4..]);
        LastFour(last)
    }
}

impl fmt::Debug for TokenSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenSecret(<redacted>)")
    }
}

impl fmt::Display for TokenSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted token>")
    }
}

/// Parses exactly the canonical lowercase hyphenated form, so one secret has one spelling.
pub(crate) fn parse_lower_uuid(text: &[u8]) -> Option<Uuid> {
    // Of the forms uuid reads, only the hyphenated one is 36 bytes long; barring capitals leaves
    // its lowercase spelling. The fold has no early exit, so it compiles to vectorised code.
    let no_capitals = text.iter().fold(true, |ok, b| ok & !b.is_ascii_uppercase());
    if text.len() != UUID_LEN || !no_capitals {
        return None;
    }
    Uuid::try_parse_ascii(text).ok()
}

/// The SHA-256 digest of a token's secret: the only form in which a token is stored.
///
/// The secret holds 122 random bits, so the digest cannot be turned back into a usable token.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TokenDigest([u8; 32]);

/// Hashes a digest by its first eight bytes: they are already uniformly random, and a client
/// cannot choose them without inverting SHA-256. Equality still compares all 32 bytes.
impl Hash for TokenDigest {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let mut head = [0; 8];
        head.copy_from_slice(&self.0[..8]);
        state.write_u64(u64::from_le_bytes(head));
    }
}

/// A hasher for maps keyed by [`TokenDigest`]: it keeps the eight bytes the digest hands it.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only reached for keys other than digests; FNV-1a keeps it correct if slow.
        for &byte in bytes {
            self.0 = (self.0 ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

/// Builds [`DigestHasher`]s.
pub(crate) type DigestHashBuilder = std::hash::BuildHasherDefault<DigestHasher>;

impl TokenDigest {
    /// The digest of a secret.
    pub(crate) fn of(secret: &Uuid) -> Self {
        Self(Sha256::digest(secret.as_bytes()).into())
    }

    /// Rebuilds a digest read back from a store.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw digest, for stores that key records by it.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The digest as 64 lowercase hex characters.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Reads back what [`TokenDigest::to_hex`] wrote: exactly 64 lowercase hex characters.
    pub fn from_hex(hex: &str) -> Option<Self> {
        let lower_hex = |b: &u8| b.is_ascii_digit() || (b'a'..=b'f').contains(b);
        if hex.len() != 64 || !hex.as_bytes().iter().all(lower_hex) {
            return None;
        }
        let mut bytes = [0u8; 32];
        for (byte, pair) in bytes.iter_mut().zip(hex.as_bytes().chunks(2)) {
            // Two ASCII hex digits: always valid UTF-8 and always a byte.
            let pair = std::str::from_utf8(pair).ok()?;
            *byte = u8::from_str_radix(pair, 16).ok()?;
        }
        Some(Self(bytes))
    }
}

impl fmt::Debug for TokenDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenDigest({}…)", &self.to_hex()[..8])
    }
}

/// The last four characters of a token's secret (lowercase hex), kept inline for the masked
/// listing. Serialized as a four-character string.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LastFour([u8; 4]);

impl LastFour {
    /// Checks and wraps four lowercase hex characters.
    pub fn new(text: &str) -> Option<Self> {
        let bytes: [u8; 4] = text.as_bytes().try_into().ok()?;
        let hex = bytes
            .iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b));
        hex.then_some(Self(bytes))
    }

    /// The four characters.
    pub fn as_str(&self) -> &str {
        // Only ASCII hex is ever stored.
        std::str::from_utf8(&self.0).unwrap_or("????")
    }
}

impl serde::Serialize for LastFour {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for LastFour {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        LastFour::new(&text).ok_or_else(|| serde::de::Error::custom("expected four hex characters"))
    }
}

/// The masked form of a token shown in listings: `GINT:IMP:xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxc622`.
pub(crate) fn masked(prefix: &str, last_four: LastFour) -> String {
    let last_four = last_four.as_str();
    format!("{prefix}xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxx{last_four}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_read_back_from_lowercase_hex_only() {
        let digest = TokenDigest::from_bytes([0xab; 32]);
        assert_eq!(TokenDigest::from_hex(&digest.to_hex()), Some(digest));
        assert_eq!(TokenDigest::from_hex("abc"), None);
        assert_eq!(TokenDigest::from_hex(&"A".repeat(64)), None);
        assert_eq!(TokenDigest::from_hex(&"+".repeat(64)), None);
        assert_eq!(TokenDigest::from_hex(&"é".repeat(32)), None);
    }

    #[test]
    fn generated_token_is_the_prefix_and_a_v4_uuid_and_parses_back() {
        let prefix = TokenPrefix::default();
        let token = TokenSecret::generate(&prefix);
        let text = token.expose();
        assert!(text.starts_with("GINT:IMP:"));
        assert_eq!(text.len(), "GINT:IMP:".len() + 36);
        assert_eq!(Uuid::parse_str(&text[9..]).unwrap().get_version_num(), 4);
        assert_eq!(TokenSecret::parse(&prefix, &text), Some(token));
    }

    #[test]
    fn uppercase_or_unhyphenated_uuids_are_not_tokens() {
        let prefix = TokenPrefix::default();
        let upper = "GINT:IMP:9E0B2B17-5A76-44EF-B726-09D556B04318";
        let simple = "GINT:IMP:9e0b2b175a7644efb72609d556b04318";
        assert!(TokenSecret::parse(&prefix, upper).is_none());
        assert!(TokenSecret::parse(&prefix, simple).is_none());
        assert!(TokenSecret::parse(&prefix, "GINT:IMP:").is_none());
        assert!(
            TokenSecret::parse(&prefix, "OTHER:9e0b2b17-5a76-44ef-b726-09d556b04318").is_none()
        );
    }

    #[test]
    fn the_lowercase_parser_reads_what_uuid_reads_and_nothing_else() {
        for _ in 0..1000 {
            let uuid = Uuid::new_v4();
            let text = uuid.hyphenated().to_string();
            assert_eq!(parse_lower_uuid(text.as_bytes()), Some(uuid));
        }
        let good = "9e0b2b17-5a76-44ef-b726-09d556b04318";
        for bad in [
            "9e0b2b17-5a76-44ef-b726-09d556b0431",
            "9e0b2b17-5a76-44ef-b726-09d556b043188",
            "9e0b2b175-a76-44ef-b726-09d556b04318",
            "9e0b2b17-5a76-44ef-b726-09d556b0431g",
            "9e0b2b17-5a76-44ef-b726-09d556b0431F",
            "9e0b2b17-5a76-44ef-b726+09d556b04318",
            "{e0b2b17-5a76-44ef-b726-09d556b0431}",
            "9e0b2b17-5a76-44ef-b726-09d556b043é",
        ] {
            assert_eq!(parse_lower_uuid(bad.as_bytes()), None, "{bad}");
        }
        assert!(parse_lower_uuid(good.as_bytes()).is_some());
    }

    #[test]
    fn debug_and_display_never_show_the_secret() {
        let token = TokenSecret::generate(&TokenPrefix::default());
        let uuid = &token.expose()[9..];
        assert!(!format!("{token:?}").contains(uuid));
        assert!(!format!("{token}").contains(uuid));
        assert!(!format!("{:?}", token.digest()).contains(uuid));
    }

    #[test]
    fn mask_keeps_only_the_last_four_characters() {
        let token = TokenSecret::parse(
            &TokenPrefix::default(),
            "GINT:IMP:9e0b2b17-5a76-44ef-b726-09d556b0c622",
        )
        .unwrap();
        assert_eq!(
            masked("GINT:IMP:", token.last_four()),
            "GINT:IMP:xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxc622"
        );
    }

    #[test]
    fn prefix_must_be_visible_ascii() {
        assert!(TokenPrefix::new("ACME:IMP:").is_ok());
        assert!(TokenPrefix::new("").is_err());
        assert!(TokenPrefix::new("has space").is_err());
        assert!(TokenPrefix::new("é").is_err());
    }
}
