//! HS256 verification with an HMAC keyed once per secret rather than once per token. Signing
//! stays with jsonwebtoken.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// An HS256 secret, as an HMAC-SHA256 state already keyed with it.
#[derive(Clone)]
pub(super) struct MacKey(Hmac<Sha256>);

impl MacKey {
    pub(super) fn new(secret: &[u8]) -> Self {
        // HMAC takes a key of any length; `JwtKeys` refuses short ones before this.
        Self(Hmac::new_from_slice(secret).expect("HMAC accepts keys of any length"))
    }

    /// Whether `signature` is this key's MAC of `signed`, compared in constant time.
    pub(super) fn signed(&self, signed: &str, signature: &[u8]) -> bool {
        let mut mac = self.0.clone();
        mac.update(signed.as_bytes());
        mac.verify_slice(signature).is_ok()
    }
}
