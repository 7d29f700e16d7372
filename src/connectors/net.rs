//! The one place HTTP clients are built, so that TLS setup and defaults are not repeated.
//!
//! Networks as companies run them:
//! - **Proxy**: `HTTPS_PROXY` / `HTTP_PROXY` / `ALL_PROXY` (and lower-case forms) are honoured by every
//!   client built here, with `NO_PROXY` exclusions (reqwest's environment proxy; https goes through the
//!   proxy with `CONNECT`, so the proxy never sees a token). The managed-identity endpoints (IMDS, App
//!   Service) are local to the machine and are always reached directly ([`direct_client`]).
//! - **Trust**: server certificates are verified against the operating system's store (rustls platform
//!   verifier), plus the PEM certificates of `--ca-bundle FILE` / `CUTOVER_CA_BUNDLE` (a corporate root
//!   CA that re-signs traffic, or a private CA).
//! - **TLS failures** (expired, untrusted, wrong name) are never retried: [`tls_failure`] names the cause
//!   so the transport reports it with the host at once.

use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

/// Extra trusted roots from `--ca-bundle`, set once at start-up.
static EXTRA_ROOTS: OnceLock<Vec<reqwest::Certificate>> = OnceLock::new();

/// Reads a PEM bundle of CA certificates that every client built afterwards trusts in addition to the
/// operating system's store. Returns how many certificates it holds; an unreadable file or a file with
/// no certificate is an error naming the file.
pub fn add_ca_bundle(path: &Path) -> Result<usize, String> {
    let pem = std::fs::read(path).map_err(|e| format!("--ca-bundle {}: {e}", path.display()))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
        format!(
            "--ca-bundle {}: not a PEM certificate bundle: {e}",
            path.display()
        )
    })?;
    if certs.is_empty() {
        return Err(format!(
            "--ca-bundle {}: holds no `BEGIN CERTIFICATE` block",
            path.display()
        ));
    }
    let n = certs.len();
    EXTRA_ROOTS
        .set(certs)
        .map_err(|_| "--ca-bundle was given twice".to_owned())?;
    Ok(n)
}

/// Why a request failed at TLS, in words, when it did: the error chain holds a rustls error (through
/// `std::io::Error`s, whose `source()` skips the error they wrap). `None` for any other failure.
pub fn tls_failure(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(r) = e.downcast_ref::<rustls::Error>() {
            return Some(describe_tls(r));
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
            && let Some(found) = tls_failure(inner)
        {
            return Some(found);
        }
        cur = e.source();
    }
    None
}

fn describe_tls(e: &rustls::Error) -> String {
    use rustls::CertificateError as C;
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            C::Expired | C::ExpiredContext { .. } => {
                "the server's certificate has expired (or this machine's clock is wrong)".into()
            }
            C::NotValidYet | C::NotValidYetContext { .. } => {
                "the server's certificate is not valid yet (check this machine's clock)".into()
            }
            C::UnknownIssuer => "the server's certificate is not trusted (unknown issuer): if a corporate \
                                 proxy or a private CA signs it, add that CA to the OS store or pass \
                                 --ca-bundle FILE"
                .into(),
            C::NotValidForName | C::NotValidForNameContext { .. } => {
                "the server's certificate is not valid for this host name".into()
            }
            C::Revoked => "the server's certificate is revoked".into(),
            C::BadSignature => "the server's certificate has a bad signature".into(),
            other => format!("the server's certificate was refused ({other:?})"),
        },
        other => format!("the TLS handshake failed ({other})"),
    }
}

/// Installs the process-wide rustls crypto provider (ring). Idempotent: later calls are no-ops.
pub fn init_tls() {
    // `install_default` fails only when a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A reqwest client builder with the crate's defaults: rustls, certificate verification on,
/// a connect timeout, a user agent naming the tool, and no automatic redirects (the transport follows
/// them itself, checking each hop against the token's origin rule).
pub fn client_builder() -> reqwest::ClientBuilder {
    init_tls();
    let b = reqwest::Client::builder()
        .user_agent(concat!("cutover/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none());
    match EXTRA_ROOTS.get() {
        Some(roots) => b.tls_certs_merge(roots.iter().cloned()),
        None => b,
    }
}

/// A client that ignores proxy variables: for the machine-local managed-identity endpoints.
pub fn direct_client() -> Result<reqwest::Client, reqwest::Error> {
    client_builder().no_proxy().build()
}

/// Builds a client with [`client_builder`]'s defaults.
pub fn client() -> Result<reqwest::Client, reqwest::Error> {
    client_builder().build()
}

#[cfg(test)]
mod tests {
    #[test]
    fn client_builds_with_the_ring_provider() {
        assert!(super::client().is_ok());
    }
}
