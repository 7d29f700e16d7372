//! `credential: client_certificate`: a certificate and its RSA private key, from a PEM file (certificate +
//! `PRIVATE KEY` or `RSA PRIVATE KEY`) or a PFX / PKCS#12 file with its password, signing a client assertion
//! per request as Microsoft's identity platform documents it (wire-facts A6): header `alg` PS256 (or RS256),
//! `typ` JWT, `x5t#S256` = base64url SHA-256 of the DER certificate (and the SHA-1 `x5t` older clients send);
//! claims `aud` = the token endpoint, `iss` = `sub` = client id, a fresh `jti`, `nbf` = `iat` = now,
//! `exp` = now + 10 minutes.
//!
//! Signing uses `ring` (already the TLS provider; constant-time RSA); the certificate is read with
//! `x509-cert` to check that the key belongs to it and to warn early about an expired certificate; PFX
//! files are opened with `p12-keystore` (PBES2/AES and the legacy 3DES/RC2 encodings). The key never
//! leaves this struct: `Debug` prints only the thumbprint.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ring::rand::SystemRandom;
use ring::signature::{self, KeyPair as _, RsaKeyPair};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::Digest as _;
use x509_cert::der::Decode as _;

use super::Secret;
use crate::runbook::SigningAlgorithm;
use crate::util::b64url;

/// A loaded certificate credential.
pub struct SigningCertificate {
    key: RsaKeyPair,
    /// base64url SHA-256 of the DER certificate (`x5t#S256`).
    pub thumbprint_sha256: String,
    /// base64url SHA-1 of the DER certificate (`x5t`).
    pub thumbprint_sha1: String,
    /// The certificate's `notAfter`.
    pub not_after: SystemTime,
    pub algorithm: SigningAlgorithm,
}

impl std::fmt::Debug for SigningCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningCertificate")
            .field("x5t#S256", &self.thumbprint_sha256)
            .finish_non_exhaustive()
    }
}

impl SigningCertificate {
    /// Loads `path` (PEM, else PFX with `password`). Errors name the file, never a byte of it.
    pub fn load(path: &Path, password: Option<&Secret>, algorithm: SigningAlgorithm) -> Result<Self, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let shown = path.display();
        let (key_der, cert_der) = if bytes.windows(10).any(|w| w == b"-----BEGIN") {
            pem_parts(&bytes).map_err(|e| format!("{shown}: {e}"))?
        } else {
            pfx_parts(&bytes, password.map_or("", Secret::expose)).map_err(|e| format!("{shown}: {e}"))?
        };
        Self::from_der(&key_der, &cert_der, algorithm).map_err(|e| format!("{shown}: {e}"))
    }

    /// From a DER private key (PKCS#8 or PKCS#1) and a DER certificate.
    pub fn from_der(key: &KeyDer, cert_der: &[u8], algorithm: SigningAlgorithm) -> Result<Self, String> {
        let key = match key {
            KeyDer::Pkcs8(d) => RsaKeyPair::from_pkcs8(d),
            KeyDer::Pkcs1(d) => RsaKeyPair::from_der(d),
        }
        .map_err(|e| {
            format!(
                "the private key is not a usable RSA key (Entra assertions need RSA, 2048 bits or more): {e}"
            )
        })?;
        let cert = x509_cert::Certificate::from_der(cert_der)
            .map_err(|e| format!("the certificate cannot be read: {e}"))?;
        let tbs = cert.tbs_certificate();
        let spki_key = tbs.subject_public_key_info().subject_public_key.raw_bytes();
        if spki_key != key.public_key().as_ref() {
            return Err("the private key does not belong to the certificate".into());
        }
        let not_after = tbs.validity().not_after.to_system_time();
        Ok(Self {
            key,
            thumbprint_sha256: b64url(&sha2::Sha256::digest(cert_der)),
            thumbprint_sha1: b64url(
                ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, cert_der).as_ref(),
            ),
            not_after,
            algorithm,
        })
    }

    /// Whether the certificate has expired (the console says so before Entra does).
    pub fn expired(&self) -> bool {
        SystemTime::now() > self.not_after
    }

    /// A signed client assertion for `client_id` at `audience` (the token endpoint), valid 10 minutes.
    pub fn assertion(&self, client_id: &str, audience: &str) -> Result<Secret, String> {
        if self.expired() {
            return Err(format!(
                "the certificate (x5t#S256 {}) expired on {}; Entra refuses it (AADSTS700027): renew it and register the new one on the app",
                self.thumbprint_sha256,
                chrono::DateTime::<chrono::Utc>::from(self.not_after).format("%Y-%m-%d %H:%M:%SZ")
            ));
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_secs();
        let alg = match self.algorithm {
            SigningAlgorithm::Ps256 => "PS256",
            SigningAlgorithm::Rs256 => "RS256",
        };
        let header = serde_json::json!({
            "alg": alg, "typ": "JWT", "x5t#S256": self.thumbprint_sha256, "x5t": self.thumbprint_sha1,
        });
        let claims = serde_json::json!({
            "aud": audience, "iss": client_id, "sub": client_id, "jti": uuid::Uuid::new_v4().to_string(),
            "nbf": now, "iat": now, "exp": now + 600,
        });
        let signing_input = format!(
            "{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(claims.to_string().as_bytes())
        );
        let padding: &dyn signature::RsaEncoding = match self.algorithm {
            SigningAlgorithm::Ps256 => &signature::RSA_PSS_SHA256,
            SigningAlgorithm::Rs256 => &signature::RSA_PKCS1_SHA256,
        };
        let mut sig = vec![0u8; self.key.public().modulus_len()];
        self.key
            .sign(padding, &SystemRandom::new(), signing_input.as_bytes(), &mut sig)
            .map_err(|_| "signing the client assertion failed".to_owned())?;
        Ok(Secret::new(format!("{signing_input}.{}", b64url(&sig))))
    }
}

/// A DER private key as found in a file.
pub enum KeyDer {
    Pkcs8(Vec<u8>),
    Pkcs1(Vec<u8>),
}

fn pem_parts(bytes: &[u8]) -> Result<(KeyDer, Vec<u8>), String> {
    if bytes.windows(29).any(|w| w == b"BEGIN ENCRYPTED PRIVATE KEY--") {
        return Err("an encrypted PEM private key is not supported: use a PFX file with a password, or keep the PEM key unencrypted in a 0600 file".into());
    }
    let cert = CertificateDer::pem_slice_iter(bytes)
        .next()
        .ok_or("no `BEGIN CERTIFICATE` block")?
        .map_err(|e| format!("the certificate block cannot be read: {e:?}"))?;
    let key = match PrivateKeyDer::from_pem_slice(bytes)
        .map_err(|_| "no `BEGIN PRIVATE KEY` or `BEGIN RSA PRIVATE KEY` block".to_owned())?
    {
        PrivateKeyDer::Pkcs8(k) => KeyDer::Pkcs8(k.secret_pkcs8_der().to_vec()),
        PrivateKeyDer::Pkcs1(k) => KeyDer::Pkcs1(k.secret_pkcs1_der().to_vec()),
        _ => return Err("the private key is not an RSA key (Entra client assertions need RSA)".into()),
    };
    Ok((key, cert.to_vec()))
}

fn pfx_parts(bytes: &[u8], password: &str) -> Result<(KeyDer, Vec<u8>), String> {
    let store =
        p12_keystore::KeyStore::from_pkcs12(bytes, password, p12_keystore::Pkcs12ImportPolicy::Relaxed)
            .map_err(|e| match e {
                p12_keystore::error::Error::MacError(_) => {
                    "the PFX password is wrong (the file's integrity check failed)".to_owned()
                }
                other => format!("not a PEM file and not a readable PFX (PKCS#12) file: {other}"),
            })?;
    let (_, chain) = store
        .private_key_chain()
        .ok_or("the PFX file holds no private key with its certificate")?;
    let cert = chain
        .certs()
        .first()
        .ok_or("the PFX file's private key has no certificate")?;
    Ok((
        KeyDer::Pkcs8(chain.key().as_der().to_vec()),
        cert.as_der().to_vec(),
    ))
}

/// The `x5t#S256` of a DER certificate (the simulator registers certificates by it).
pub fn thumbprint_sha256(cert_der: &[u8]) -> String {
    b64url(&sha2::Sha256::digest(cert_der))
}
