//! The one place HTTP clients are built, so that TLS setup and defaults are not repeated.

use std::time::Duration;

/// Installs the process-wide rustls crypto provider (ring). Idempotent: later calls are no-ops.
pub fn init_tls() {
    // `install_default` fails only when a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A reqwest client builder with the crate's defaults: rustls, certificate verification on,
/// a connect timeout, and a user agent naming the tool.
pub fn client_builder() -> reqwest::ClientBuilder {
    init_tls();
    reqwest::Client::builder()
        .user_agent(concat!("cutover/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10))
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
