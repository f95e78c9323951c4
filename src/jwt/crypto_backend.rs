//! The jsonwebtoken crypto backend the keys sign with.

use jsonwebtoken::{
    Algorithm, EncodingKey,
    crypto::{CryptoProvider, rust_crypto},
};

use super::key_material::MIN_SECRET_LEN;
use crate::error::ConfigError;

/// jsonwebtoken picks its crypto backend from its cargo features and panics at first use when an
/// app enables both. Install ours explicitly, and turn a backend that cannot sign into an error now
/// rather than a panic on the first request.
pub(super) fn select_crypto_backend() -> Result<(), ConfigError> {
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
