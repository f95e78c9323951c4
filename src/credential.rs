//! Reading an impersonation credential from request headers, without trusting any of it yet.

use std::sync::Arc;

use http::{HeaderMap, HeaderName, HeaderValue, header::AUTHORIZATION};
use uuid::Uuid;

use crate::{
    impersonated::CredentialSource,
    jwt::{JwtKeys, Verified},
    rejection::{Rejection, RejectionKind},
    time::Timestamp,
    token::{TokenPrefix, parse_lower_uuid},
};

/// Longest user string accepted: the longest possible email address.
pub const MAX_USER_LEN: usize = 320;

/// What the headers claim, before any lookup; borrowed from the headers.
#[derive(Debug)]
pub(crate) enum Credential<'h> {
    /// No impersonation credential: the request is the app's own business.
    Absent,
    /// An impersonation token and the user it names.
    Opaque {
        secret: Uuid,
        user: &'h str,
        source: CredentialSource,
    },
    /// A bearer JWT, not verified yet.
    Jwt(&'h str),
    /// A bearer JWT whose text equals one the keys verified before, still valid: its claims.
    KnownJwt(Arc<Verified>),
}

/// A credential that outlives the headers, for checks that have to wait.
#[derive(Debug)]
pub(crate) enum OwnedCredential {
    Opaque {
        secret: Uuid,
        user: String,
        source: CredentialSource,
    },
    Jwt(String),
    KnownJwt(Arc<Verified>),
}

impl Credential<'_> {
    /// The owned form; `None` for `Absent`.
    pub(crate) fn into_owned(self) -> Option<OwnedCredential> {
        match self {
            Credential::Absent => None,
            Credential::Opaque {
                secret,
                user,
                source,
            } => Some(OwnedCredential::Opaque {
                secret,
                user: user.to_owned(),
                source,
            }),
            Credential::Jwt(token) => Some(OwnedCredential::Jwt(token.to_owned())),
            Credential::KnownJwt(verified) => Some(OwnedCredential::KnownJwt(verified)),
        }
    }
}

/// How to recognise credentials.
#[derive(Clone, Debug)]
pub(crate) struct CredentialFormat {
    pub(crate) prefix: TokenPrefix,
    pub(crate) user_header: HeaderName,
    /// The keys of impersonation JWTs: JWTs are recognised only when there are some.
    pub(crate) jwt: Option<JwtKeys>,
}

const TWO_AUTHORIZATIONS: Rejection = Rejection::new(
    RejectionKind::InvalidRequest,
    "send a single Authorization header",
);
const TWO_USER_HEADERS: Rejection = Rejection::new(
    RejectionKind::InvalidRequest,
    "send the user header at most once",
);
const MALFORMED_TOKEN: Rejection = Rejection::new(
    RejectionKind::InvalidToken,
    "the impersonation token is malformed, unknown, expired or revoked",
);
const MISSING_USER: Rejection = Rejection::new(
    RejectionKind::InvalidRequest,
    "name the user to act as in the user header, or append it to the token as <token>:<user>",
);
const INVALID_USER: Rejection = Rejection::new(
    RejectionKind::InvalidRequest,
    "the user must be 1 to 320 bytes of UTF-8 text without control characters",
);
const CONFLICTING_USERS: Rejection = Rejection::new(
    RejectionKind::InvalidRequest,
    "the user header and the token suffix name different users",
);
const SPOOFED_USER_HEADER: Rejection = Rejection::new(
    RejectionKind::AccessDenied,
    "a user header is only accepted together with an impersonation token",
);
const USER_HEADER_WITH_JWT: Rejection = Rejection::new(
    RejectionKind::InvalidRequest,
    "an impersonation JWT names its own user: send no user header with it",
);

impl CredentialFormat {
    /// Reads the credential; every refusal here happens before any store is asked.
    pub(crate) fn read<'h>(&self, headers: &'h HeaderMap) -> Result<Credential<'h>, Rejection> {
        let authorization = single(headers, &AUTHORIZATION).ok_or(TWO_AUTHORIZATIONS)?;
        let user_header = single(headers, &self.user_header).ok_or(TWO_USER_HEADERS)?;
        let bearer = authorization.and_then(|value| bearer_token(value.as_bytes()));
        let credential = match bearer {
            Some(token) if token.starts_with(self.prefix.as_str().as_bytes()) => {
                return self.read_opaque(&token[self.prefix.as_str().len()..], user_header);
            }
            Some(token) => self.read_jwt(token),
            None => None,
        };
        match (credential, user_header) {
            (Some(_), Some(_)) => Err(USER_HEADER_WITH_JWT),
            (Some(jwt), None) => Ok(jwt),
            (None, Some(_)) => Err(SPOOFED_USER_HEADER),
            (None, None) => Ok(Credential::Absent),
        }
    }

    /// The bearer token as a JWT, if JWTs are accepted and it is one. A token whose text the
    /// keys verified before is known by that text alone, without its characters scanned again;
    /// any other must be three non-empty base64url segments.
    fn read_jwt<'h>(&self, token: &'h [u8]) -> Option<Credential<'h>> {
        let keys = self.jwt.as_ref()?;
        if !has_three_segments(token) {
            return None;
        }
        if let Some(verified) = keys.verified_before(token, Timestamp::now_coarse()) {
            return Some(Credential::KnownJwt(verified));
        }
        if !is_base64url_or_dots(token) {
            return None;
        }
        // Base64url and dots are ASCII.
        std::str::from_utf8(token).ok().map(Credential::Jwt)
    }

    fn read_opaque<'h>(
        &self,
        after_prefix: &'h [u8],
        user_header: Option<&'h HeaderValue>,
    ) -> Result<Credential<'h>, Rejection> {
        let (secret, suffix) = split_secret(after_prefix).ok_or(MALFORMED_TOKEN)?;
        let suffix = suffix.map(valid_user).transpose()?;
        let header = user_header.map(|v| valid_user(v.as_bytes())).transpose()?;
        let (user, source) = match (header, suffix) {
            (Some(h), Some(s)) if h.eq_ignore_ascii_case(s) => {
                (h, CredentialSource::HeaderAndSuffix)
            }
            (Some(_), Some(_)) => return Err(CONFLICTING_USERS),
            (Some(h), None) => (h, CredentialSource::UserHeader),
            (None, Some(s)) => (s, CredentialSource::TokenSuffix),
            (None, None) => return Err(MISSING_USER),
        };
        Ok(Credential::Opaque {
            secret,
            user,
            source,
        })
    }
}

/// The one value of a header; `None` when it is repeated.
fn single<'h>(headers: &'h HeaderMap, name: &HeaderName) -> Option<Option<&'h HeaderValue>> {
    let mut values = headers.get_all(name).iter();
    let first = values.next();
    values.next().is_none().then_some(first)
}

/// The token of `Bearer <token>`, the scheme matched without regard to case.
fn bearer_token(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = value.split_at_checked(6)?;
    if !scheme.eq_ignore_ascii_case(b"bearer") || rest.first() != Some(&b' ') {
        return None;
    }
    let token = rest.trim_ascii();
    (!token.is_empty()).then_some(token)
}

/// Splits `<uuid>[:<user>]`.
fn split_secret(after_prefix: &[u8]) -> Option<(Uuid, Option<&[u8]>)> {
    let (uuid, rest) = after_prefix.split_at_checked(36)?;
    let secret = parse_lower_uuid(uuid)?;
    match rest {
        [] => Some((secret, None)),
        [b':', user @ ..] => Some((secret, Some(user))),
        _ => None,
    }
}

fn valid_user(bytes: &[u8]) -> Result<&str, Rejection> {
    if bytes.is_empty() || bytes.len() > MAX_USER_LEN {
        return Err(INVALID_USER);
    }
    let text = std::str::from_utf8(bytes).map_err(|_| INVALID_USER)?;
    // Printable ASCII, the usual case, is checked in one vectorised pass (no early exit); other
    // text is checked character by character.
    let printable_ascii = bytes
        .iter()
        .fold(true, |ok, &b| ok & (b' '..=b'~').contains(&b));
    if printable_ascii || !text.chars().any(char::is_control) {
        Ok(text)
    } else {
        Err(INVALID_USER)
    }
}

/// Three non-empty base64url segments separated by dots.
#[cfg(test)]
fn looks_like_jwt(token: &[u8]) -> bool {
    has_three_segments(token) && is_base64url_or_dots(token)
}

/// Three non-empty segments separated by dots.
fn has_three_segments(token: &[u8]) -> bool {
    // Every bearer request comes here, so the dots are found with memchr's vectorised search: an
    // app's own key, rarely holding a dot, is turned away by one search.
    let Some(first) = memchr::memchr(b'.', token) else {
        return false;
    };
    let Some(last) = memchr::memrchr(b'.', token) else {
        return false;
    };
    first > 0
        && last > first + 1
        && last + 1 < token.len()
        && memchr::memchr(b'.', &token[first + 1..last]).is_none()
}

fn is_base64url_or_dots(token: &[u8]) -> bool {
    // Without an early exit the fold compiles to a vectorised loop.
    token
        .iter()
        .fold(true, |ok, &b| ok & (is_base64url(b) | (b == b'.')))
}

fn is_base64url(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() | (byte == b'-') | (byte == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "9e0b2b17-5a76-44ef-b726-09d556b04318";

    fn keys() -> JwtKeys {
        JwtKeys::hs256(b"the credential tests' 32-byte key").unwrap()
    }

    fn format_with(keys: JwtKeys) -> CredentialFormat {
        CredentialFormat {
            prefix: TokenPrefix::default(),
            user_header: HeaderName::from_static("x-guru-userid"),
            jwt: Some(keys),
        }
    }

    fn headers(pairs: &[(&str, &[u8])]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            let name: HeaderName = name.parse().unwrap();
            headers.append(name, HeaderValue::from_bytes(value).unwrap());
        }
        headers
    }

    /// The credential read, in owned form so it outlives the headers.
    fn read(pairs: &[(&str, &[u8])]) -> Result<Option<String>, Rejection> {
        read_with(&format_with(keys()), pairs)
    }

    fn read_with(
        format: &CredentialFormat,
        pairs: &[(&str, &[u8])],
    ) -> Result<Option<String>, Rejection> {
        format
            .read(&headers(pairs))
            .map(|c| c.into_owned().map(|c| format!("{c:?}")))
    }

    fn opaque(user: &str, source: CredentialSource) -> Option<String> {
        let credential = OwnedCredential::Opaque {
            secret: Uuid::parse_str(SECRET).unwrap(),
            user: user.to_owned(),
            source,
        };
        Some(format!("{credential:?}"))
    }

    fn bearer(suffix: &str) -> Vec<u8> {
        format!("Bearer GINT:IMP:{SECRET}{suffix}").into_bytes()
    }

    #[test]
    fn user_header_form() {
        let got = read(&[
            ("authorization", &bearer("")),
            ("X-Guru-UserID", b"ada@acme.test"),
        ]);
        assert_eq!(
            got,
            Ok(opaque("ada@acme.test", CredentialSource::UserHeader))
        );
    }

    #[test]
    fn suffix_form_with_any_case_scheme() {
        let value = format!("bEaReR GINT:IMP:{SECRET}:ada@acme.test");
        let got = read(&[("authorization", value.as_bytes())]);
        assert_eq!(
            got,
            Ok(opaque("ada@acme.test", CredentialSource::TokenSuffix))
        );
    }

    #[test]
    fn both_forms_must_agree() {
        let same = read(&[
            ("authorization", &bearer(":Ada@acme.test")),
            ("x-guru-userid", b"ada@acme.test"),
        ]);
        assert_eq!(
            same,
            Ok(opaque("ada@acme.test", CredentialSource::HeaderAndSuffix))
        );
        let different = read(&[
            ("authorization", &bearer(":bob")),
            ("x-guru-userid", b"ada"),
        ]);
        assert_eq!(different, Err(CONFLICTING_USERS));
    }

    #[test]
    fn token_without_user_is_a_bad_request() {
        assert_eq!(read(&[("authorization", &bearer(""))]), Err(MISSING_USER));
        assert_eq!(read(&[("authorization", &bearer(":"))]), Err(INVALID_USER));
    }

    #[test]
    fn bad_user_strings_are_refused() {
        let long = format!(":{}", "a".repeat(321));
        assert_eq!(
            read(&[("authorization", &bearer(&long))]),
            Err(INVALID_USER)
        );
        let max = format!(":{}", "a".repeat(320));
        assert!(read(&[("authorization", &bearer(&max))]).is_ok());
        let mut invalid_utf8 = bearer(":");
        invalid_utf8.extend_from_slice(&[0xff, 0xfe]);
        assert_eq!(read(&[("authorization", &invalid_utf8)]), Err(INVALID_USER));
        assert_eq!(
            read(&[("authorization", &bearer(":a\tb"))]),
            Err(INVALID_USER)
        );
        let utf8_name = read(&[
            ("authorization", &bearer("")),
            ("x-guru-userid", "José".as_bytes()),
        ]);
        assert!(utf8_name.is_ok());
    }

    #[test]
    fn repeated_headers_are_refused() {
        let twice = read(&[
            ("authorization", &bearer(":a")),
            ("authorization", b"Bearer other"),
        ]);
        assert_eq!(twice, Err(TWO_AUTHORIZATIONS));
        let users = read(&[
            ("authorization", &bearer("")),
            ("x-guru-userid", b"a"),
            ("x-guru-userid", b"b"),
        ]);
        assert_eq!(users, Err(TWO_USER_HEADERS));
    }

    #[test]
    fn malformed_tokens_are_invalid_tokens() {
        for value in [
            "Bearer GINT:IMP:".to_owned(),
            "Bearer GINT:IMP:not-a-uuid".to_owned(),
            format!("Bearer GINT:IMP:{}", SECRET.to_uppercase()),
            format!("Bearer GINT:IMP:{SECRET}x"),
        ] {
            assert_eq!(
                read(&[("authorization", value.as_bytes())]),
                Err(MALFORMED_TOKEN),
                "{value}"
            );
        }
    }

    #[test]
    fn user_header_without_credential_is_spoofing() {
        assert_eq!(read(&[("x-guru-userid", b"ada")]), Err(SPOOFED_USER_HEADER));
        let app_key = read(&[
            ("authorization", b"Bearer app-key"),
            ("x-guru-userid", b"ada"),
        ]);
        assert_eq!(app_key, Err(SPOOFED_USER_HEADER));
    }

    #[test]
    fn other_credentials_pass_untouched() {
        assert_eq!(read(&[]), Ok(None));
        assert_eq!(read(&[("authorization", b"Bearer app-key")]), Ok(None));
        assert_eq!(read(&[("authorization", b"Basic dXNlcjpwYXNz")]), Ok(None));
        assert_eq!(read(&[("authorization", b"Bearer")]), Ok(None));
    }

    #[test]
    fn jwts_are_recognised_and_name_their_own_user() {
        let jwt = b"Bearer eyJhbGciOiJIUzI1NiJ9.eyJ1c2VyX2lkIjoiMSJ9.c2ln";
        let read_jwt = read(&[("authorization", jwt)]).unwrap().unwrap();
        assert!(read_jwt.starts_with("Jwt("), "{read_jwt}");
        assert_eq!(
            read(&[("authorization", jwt), ("x-guru-userid", b"a")]),
            Err(USER_HEADER_WITH_JWT)
        );
        assert_eq!(read(&[("authorization", b"Bearer a.b.c.d")]), Ok(None));
    }

    #[test]
    fn a_jwt_the_keys_verified_before_is_known_by_its_text_alone() {
        let keys = keys();
        let format = format_with(keys.clone());
        let claims = crate::jwt::ImpersonationClaims {
            user_id: "u1".into(),
            exp: Timestamp::now().as_secs() + 60,
            iat: None,
            jti: None,
            org: None,
            act: None,
            roles: None,
        };
        let token = keys.sign(&claims).unwrap();
        let bearer = format!("Bearer {token}");
        let read = |bearer: &str| read_with(&format, &[("authorization", bearer.as_bytes())]);
        assert!(read(&bearer).unwrap().unwrap().starts_with("Jwt("));
        keys.verify_cached(&token, Timestamp::now()).unwrap();
        let known = read(&bearer).unwrap().unwrap();
        assert!(known.starts_with("KnownJwt("), "{known}");
        assert!(known.contains(r#"user_id: "u1""#), "{known}");
        // A different text is not known, whatever it shares with the verified one.
        let at = bearer.len() - 10;
        let swapped = if &bearer[at..=at] == "A" { "B" } else { "A" };
        let tampered = format!("{}{swapped}{}", &bearer[..at], &bearer[at + 1..]);
        assert!(read(&tampered).unwrap().unwrap().starts_with("Jwt("));
        // Known or not, it names its own user, and keys that did not verify it do not know it.
        assert_eq!(
            read_with(
                &format,
                &[
                    ("authorization", bearer.as_bytes()),
                    ("x-guru-userid", b"a")
                ]
            ),
            Err(USER_HEADER_WITH_JWT)
        );
        let other = read_with(
            &format_with(self::keys()),
            &[("authorization", bearer.as_bytes())],
        );
        assert!(other.unwrap().unwrap().starts_with("Jwt("));
    }

    #[test]
    fn a_jwt_the_rules_refuse_now_is_not_known_whatever_the_cache_holds() {
        let keys = keys();
        let format = format_with(keys.clone());
        let now = Timestamp::now().as_secs();
        let claims = |exp: u64, iat: Option<u64>| crate::jwt::ImpersonationClaims {
            user_id: "u1".into(),
            exp,
            iat,
            jti: None,
            org: None,
            act: None,
            roles: None,
        };
        // Issued ten minutes ahead and remembered then; expired a minute ago, remembered while
        // still valid; expiring in a day, remembered in its last hour.
        for (claims, then) in [
            (claims(now + 1200, Some(now + 600)), now + 600),
            (claims(now - 60, None), now - 100),
            (claims(now + 86_400, None), now + 86_400 - 3600),
        ] {
            let token = keys.sign(&claims).unwrap();
            keys.verify_cached(&token, Timestamp::from_secs(then))
                .unwrap();
            let bearer = format!("Bearer {token}");
            let read = read_with(&format, &[("authorization", bearer.as_bytes())]);
            assert!(read.unwrap().unwrap().starts_with("Jwt("), "{claims:?}");
        }
    }

    #[test]
    fn without_keys_a_jwt_is_the_app_s_own_business() {
        let format = CredentialFormat {
            jwt: None,
            ..format_with(keys())
        };
        let jwt = b"Bearer eyJhbGciOiJIUzI1NiJ9.eyJ1c2VyX2lkIjoiMSJ9.c2ln";
        assert_eq!(read_with(&format, &[("authorization", jwt)]), Ok(None));
        assert_eq!(
            read_with(&format, &[("authorization", jwt), ("x-guru-userid", b"a")]),
            Err(SPOOFED_USER_HEADER)
        );
    }

    #[test]
    fn only_three_non_empty_base64url_segments_look_like_a_jwt() {
        assert!(looks_like_jwt(b"a.b.c"));
        assert!(looks_like_jwt(b"eyJ-_09.AZaz.x"));
        for not_jwt in [
            &b""[..],
            b"abc",
            b"a.b",
            b"a.b.c.d",
            b".b.c",
            b"a..c",
            b"a.b.",
            b"..",
            b"a.b=.c",
            b"a.b.c d",
            b"a.\xc3\xa9.c",
        ] {
            assert!(
                !looks_like_jwt(not_jwt),
                "{}",
                String::from_utf8_lossy(not_jwt)
            );
        }
    }
}
