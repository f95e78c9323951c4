//! Where the gateway's JWT signing key comes from: `--jwt-key-file`, else the
//! `IMPERSONATION_JWT_SECRET` environment variable, else `--jwt-secret`, else a key generated on
//! the first start and kept in a file (mode 0600) beside the token database, so the JWTs the
//! gateway mints stay valid across restarts.
//!
//! For HS256 the key is the secret itself (at least 32 bytes; trailing line breaks are not part
//! of it); for EdDSA and ES256 it is a PKCS#8 PEM private key (`-----BEGIN PRIVATE KEY-----`).

use std::{
    fmt::Write as _,
    fs::{self, OpenOptions},
    io::{self, Write as _},
    path::{Path, PathBuf},
};

use rand_core::{OsRng, RngCore};
use tower_impersonation::jwt::{JwtAlgorithm, JwtKeys};

/// The file a generated key is kept in, in the working directory unless told otherwise.
pub const GENERATED_KEY_FILE: &str = "impersonation.jwt-key";

/// The environment variable holding the key, read when no `--jwt-key-file` is given.
pub const SECRET_VARIABLE: &str = "IMPERSONATION_JWT_SECRET";

/// Where the key came from, for the banner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeySource {
    /// `--jwt-key-file`.
    KeyFile(PathBuf),
    /// [`SECRET_VARIABLE`].
    Environment,
    /// `--jwt-secret`, which a process listing shows.
    Flag,
    /// Generated at this start and kept in this file.
    Generated(PathBuf),
    /// Generated at an earlier start and read back from this file.
    Kept(PathBuf),
}

impl KeySource {
    /// One line for the banner, naming the algorithm, the key id and where the key came from,
    /// and a warning when the key was given on the command line.
    pub fn describe(&self, keys: &JwtKeys) -> String {
        let mut text = format!("impersonation JWTs: {}", keys.algorithm());
        if let Some(kid) = keys.key_id() {
            let _ = write!(text, " (kid {kid})");
        }
        let _ = match self {
            KeySource::KeyFile(path) => write!(text, ", key from {}", path.display()),
            KeySource::Environment => write!(text, ", key from ${SECRET_VARIABLE}"),
            KeySource::Flag => write!(
                text,
                ", key from --jwt-secret\nwarning: a process listing (ps) shows --jwt-secret to \
                 every user of this machine; prefer --jwt-key-file FILE or ${SECRET_VARIABLE}"
            ),
            KeySource::Generated(path) => write!(
                text,
                ", key generated and kept in {} (mode 0600): JWTs stay valid across restarts",
                path.display()
            ),
            KeySource::Kept(path) => write!(
                text,
                ", key read from {} (generated on an earlier start)",
                path.display()
            ),
        };
        if let KeySource::KeyFile(path) | KeySource::Kept(path) = self
            && let Some(mode) = open_to_others(path)
        {
            let _ = write!(
                text,
                "\nwarning: other users may read {} (mode {mode:o}); chmod 600 it",
                path.display()
            );
        }
        text
    }
}

/// The file's permission bits when users other than its owner may read or write it.
fn open_to_others(path: &Path) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(path).ok()?.permissions().mode() & 0o777;
        (mode & 0o077 != 0).then_some(mode)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// The signing key for `algorithm`, from the first of `key_file`, `env_secret` and `flag_secret`
/// that is given, else from `generated_key_path`, which is created with a new random key when it
/// does not exist. A key that cannot be read, is too short or is not of `algorithm` is an error
/// that says which and where.
pub fn load_or_generate(
    algorithm: JwtAlgorithm,
    key_file: Option<&Path>,
    env_secret: Option<String>,
    flag_secret: Option<String>,
    generated_key_path: &Path,
) -> Result<(JwtKeys, KeySource), String> {
    if let Some(path) = key_file {
        let origin = format!("--jwt-key-file {}", path.display());
        let material = fs::read(path).map_err(|e| format!("{origin}: {e}"))?;
        let keys = keys_from(algorithm, &material, &origin)?;
        return Ok((keys, KeySource::KeyFile(path.to_owned())));
    }
    if let Some(secret) = env_secret {
        let keys = keys_from(algorithm, secret.as_bytes(), &format!("${SECRET_VARIABLE}"))?;
        return Ok((keys, KeySource::Environment));
    }
    if let Some(secret) = flag_secret {
        let keys = keys_from(algorithm, secret.as_bytes(), "--jwt-secret")?;
        return Ok((keys, KeySource::Flag));
    }
    let kept = |path: &Path| -> Result<(JwtKeys, KeySource), String> {
        let origin = format!(
            "{} (the key kept from an earlier start; delete the file to generate a new one, \
             which ends every JWT it signed)",
            path.display()
        );
        let material = fs::read(path).map_err(|e| format!("{origin}: {e}"))?;
        Ok((
            keys_from(algorithm, &material, &origin)?,
            KeySource::Kept(path.to_owned()),
        ))
    };
    match fs::symlink_metadata(generated_key_path) {
        Ok(_) => return kept(generated_key_path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("{}: {e}", generated_key_path.display())),
    }
    let material = generate(algorithm)?;
    let created = create_new_private_file(generated_key_path, &material).map_err(|e| {
        format!(
            "{}: cannot keep a generated JWT key ({e}); give one with --jwt-key-file or \
             ${SECRET_VARIABLE}",
            generated_key_path.display()
        )
    })?;
    if !created {
        // Another process generated it first: use that one, as every instance should.
        return kept(generated_key_path);
    }
    let keys = keys_from(algorithm, &material, "the generated key")?;
    Ok((keys, KeySource::Generated(generated_key_path.to_owned())))
}

/// Keys of `algorithm` from a secret (HS256) or a PKCS#8 PEM private key (EdDSA, ES256).
fn keys_from(algorithm: JwtAlgorithm, material: &[u8], origin: &str) -> Result<JwtKeys, String> {
    let pem = material.trim_ascii_start().starts_with(b"-----BEGIN");
    let keys = match algorithm {
        JwtAlgorithm::Hs256 if pem => {
            return Err(format!(
                "{origin}: holds a PEM key, but HS256 takes a secret; for a key pair pass \
                 --jwt-algorithm EdDSA or ES256"
            ));
        }
        JwtAlgorithm::Hs256 => JwtKeys::hs256(trim_line_breaks(material)),
        _ if !pem => {
            return Err(format!(
                "{origin}: holds no PEM key (an HS256 secret?), but {algorithm} takes a PKCS#8 \
                 PEM private key (-----BEGIN PRIVATE KEY-----)"
            ));
        }
        JwtAlgorithm::EdDsa | JwtAlgorithm::Es256 => {
            let text = std::str::from_utf8(material)
                .map_err(|_| format!("{origin}: a PEM key is text, and this is not UTF-8"))?;
            if algorithm == JwtAlgorithm::EdDsa {
                JwtKeys::ed25519_pem(text)
            } else {
                JwtKeys::es256_pem(text)
            }
        }
        _ => {
            return Err(format!(
                "{origin}: the gateway does not support {algorithm}"
            ));
        }
    };
    keys.map_err(|e| format!("{origin}: {e}"))
}

/// A secret without the line breaks an editor or `echo` leaves at its end.
fn trim_line_breaks(secret: &[u8]) -> &[u8] {
    let end = secret
        .iter()
        .rposition(|b| *b != b'\n' && *b != b'\r')
        .map_or(0, |last| last + 1);
    &secret[..end]
}

/// A new key from the operating system's random generator: for HS256 32 random bytes, written
/// as 64 hexadecimal characters (the secret is that text, so it can be handed to other instances
/// as it is); for EdDSA and ES256 a PKCS#8 PEM private key.
fn generate(algorithm: JwtAlgorithm) -> Result<Vec<u8>, String> {
    use ed25519_dalek::pkcs8::{EncodePrivateKey as _, spki::der::pem::LineEnding};
    let random = || -> Result<[u8; 32], String> {
        let mut bytes = [0; 32];
        OsRng
            .try_fill_bytes(&mut bytes)
            .map_err(|e| format!("the operating system's random generator failed: {e}"))?;
        Ok(bytes)
    };
    let pem_error = |e: ed25519_dalek::pkcs8::Error| format!("cannot write the new key: {e}");
    let text: String = match algorithm {
        JwtAlgorithm::Hs256 => {
            let mut hex = String::with_capacity(65);
            for byte in random()? {
                let _ = write!(hex, "{byte:02x}");
            }
            hex.push('\n');
            hex
        }
        JwtAlgorithm::EdDsa => ed25519_dalek::SigningKey::from_bytes(&random()?)
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(pem_error)?
            .to_string(),
        JwtAlgorithm::Es256 => loop {
            // A random 32-byte string is a valid P-256 scalar but with odds of about 2^-32.
            if let Ok(key) = p256::ecdsa::SigningKey::from_slice(&random()?) {
                break key
                    .to_pkcs8_pem(LineEnding::LF)
                    .map_err(pem_error)?
                    .to_string();
            }
        },
        _ => return Err(format!("the gateway cannot generate {algorithm} keys")),
    };
    Ok(text.into_bytes())
}

/// Creates `path` holding `contents`, readable and writable by this user alone, without ever
/// replacing a file that exists and without anyone seeing it half written: the key goes to a
/// private temporary file beside it first, which is then linked to `path` (which fails when
/// `path` exists). `Ok(false)` when `path` already existed.
fn create_new_private_file(path: &Path, contents: &[u8]) -> io::Result<bool> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a file name"))?;
    let temporary = path.with_file_name(format!(
        ".{}.{}-{:016x}.tmp",
        name.to_string_lossy(),
        std::process::id(),
        OsRng.next_u64()
    ));
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options.open(&temporary).and_then(|mut file| {
        file.write_all(contents)?;
        file.sync_all()
    });
    let linked = written.and_then(|()| fs::hard_link(&temporary, path));
    let _ = fs::remove_file(&temporary);
    match linked {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}
