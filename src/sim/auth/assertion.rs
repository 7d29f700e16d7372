//! Client assertions, checked the way Entra does (wire-facts A4, A6, A10), in this order (our model of
//! the order): the JWT's shape; a certificate assertion (`x5t#S256` or `x5t` header) must name a
//! certificate registered on the app (401 `invalid_client` AADSTS700027 "key was not found"), verify
//! against it with PS256 or RS256 (AADSTS700027 "invalid signature"), and the key credential must not have
//! expired (AADSTS700027 "The key used is expired"); `aud` must be this token endpoint (401
//! `invalid_client` AADSTS50012: the historical code, the current one is not published); `exp`/`nbf` must
//! hold against Entra's clock with five minutes of leeway (401 `invalid_client` AADSTS700024; the leeway
//! is our model); `iss` and `sub` must be the client id. A federated assertion (no thumbprint) must match
//! a federated credential's `iss` and `sub` with `aud` `api://AzureADTokenExchange` (else 400
//! `invalid_request` AADSTS70021); its signature is not checked (our model: the simulator holds no
//! issuer's keys).

use axum::http::StatusCode;
use axum::response::Response;
use ring::signature::{self, UnparsedPublicKey};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use serde_json::Value;
use sha2::Digest as _;
use x509_cert::der::Decode as _;

use super::aad_error_status;
use super::config::Principal;
use super::grants::ExpectedAudience;
use crate::sim::server::App;
use crate::util::{b64url, b64url_decode};

/// Seconds of clock difference Entra tolerates on `exp` and `nbf` (our model).
pub const LEEWAY: i64 = 300;
/// The audience of a federated (workload identity) assertion.
pub const EXCHANGE_AUDIENCE: &str = "api://AzureADTokenExchange";

fn unauthorized(app: &App, code: u64, text: &str) -> Response {
    aad_error_status(app, StatusCode::UNAUTHORIZED, "invalid_client", Some(code), text)
}

/// Checks `assertion` for principal `p`; `Err` is Entra's answer.
pub fn verify(
    app: &App,
    p: &Principal,
    assertion: &str,
    expected: &ExpectedAudience,
) -> Result<(), Response> {
    let parts: Vec<&str> = assertion.split('.').collect();
    let decode = |s: &str| b64url_decode(s).and_then(|b| serde_json::from_slice::<Value>(&b).ok());
    let (Some(header), Some(claims), 3) = (
        parts.first().and_then(|h| decode(h)),
        parts.get(1).and_then(|c| decode(c)),
        parts.len(),
    ) else {
        return Err(unauthorized(app, 50027, "JWT token is invalid or malformed."));
    };
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    let (skew, now_real) = (
        app.with(|st| st.scenario.auth.clock_skew),
        chrono::Utc::now().timestamp(),
    );
    let now = now_real + skew;
    let thumb256 = s(&header, "x5t#S256");
    let thumb1 = s(&header, "x5t");
    if thumb256.is_none() && thumb1.is_none() {
        return federated(app, p, &claims, now);
    }
    let shown = thumb256.clone().or(thumb1.clone()).unwrap_or_default();
    let found = p.certificates.iter().find_map(|rc| {
        let der = CertificateDer::from_pem_slice(rc.pem.as_bytes()).ok()?;
        let t256 = b64url(&sha2::Sha256::digest(der.as_ref()));
        let t1 = b64url(ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, der.as_ref()).as_ref());
        let hit = thumb256.as_deref() == Some(t256.as_str())
            || thumb256.is_none() && thumb1.as_deref() == Some(t1.as_str());
        hit.then(|| (der.to_vec(), rc.expires))
    });
    let Some((der, expires)) = found else {
        return Err(unauthorized(
            app,
            700027,
            &format!(
                "The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found., Thumbprint of key used by client: '{shown}', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '{}'.]",
                p.client_id
            ),
        ));
    };
    let Ok(cert) = x509_cert::Certificate::from_der(&der) else {
        return Err(unauthorized(
            app,
            700027,
            "Client assertion contains an invalid signature. [Reason - The key was not found.]",
        ));
    };
    let tbs = cert.tbs_certificate();
    let public = tbs.subject_public_key_info().subject_public_key.raw_bytes();
    let alg: &dyn signature::VerificationAlgorithm = match s(&header, "alg").as_deref() {
        Some("PS256") => &signature::RSA_PSS_2048_8192_SHA256,
        Some("RS256") => &signature::RSA_PKCS1_2048_8192_SHA256,
        _ => {
            return Err(unauthorized(
                app,
                700027,
                "Client assertion contains an invalid signature. [Reason - The signature algorithm is not supported.]",
            ));
        }
    };
    let signing_input = format!("{}.{}", parts[0], parts[1]);
    let sig = b64url_decode(parts[2]).unwrap_or_default();
    if UnparsedPublicKey::new(alg, public)
        .verify(signing_input.as_bytes(), &sig)
        .is_err()
    {
        return Err(unauthorized(
            app,
            700027,
            &format!(
                "Client assertion contains an invalid signature. [Reason - The provided signature value did not match the expected signature value., Thumbprint of key used by client: '{shown}']"
            ),
        ));
    }
    let not_after = tbs.validity().not_after.to_unix_duration().as_secs();
    let end = expires.map_or(i64::try_from(not_after).unwrap_or(i64::MAX), |e| e.timestamp());
    if now > end {
        let start = tbs.validity().not_before.to_unix_duration().as_secs();
        let fmt = |t: i64| {
            chrono::DateTime::from_timestamp(t, 0)
                .map(|d| d.format("%m/%d/%Y %H:%M:%S").to_string())
                .unwrap_or_default()
        };
        return Err(unauthorized(
            app,
            700027,
            &format!(
                "Client assertion contains an invalid signature. [Reason - The key used is expired., Thumbprint of key used by client: '{shown}', Found key 'Start={}, End={}']",
                fmt(i64::try_from(start).unwrap_or(0)),
                fmt(end)
            ),
        ));
    }
    if !s(&claims, "aud").is_some_and(|a| expected.matches(&a)) {
        return Err(unauthorized(
            app,
            50012,
            "Client assertion audience claim does not match Realm issuer.",
        ));
    }
    times(app, &claims, now)?;
    if s(&claims, "iss").as_deref() != Some(&p.client_id)
        || s(&claims, "sub").as_deref() != Some(&p.client_id)
    {
        return Err(unauthorized(
            app,
            700021,
            "Client assertion application identifier doesn't match 'client_id' parameter.",
        ));
    }
    Ok(())
}

fn times(app: &App, claims: &Value, now: i64) -> Result<(), Response> {
    let n = |k: &str| claims.get(k).and_then(Value::as_i64);
    let late = n("exp").is_none_or(|exp| now > exp + LEEWAY);
    let early = n("nbf").is_some_and(|nbf| now + LEEWAY < nbf);
    if late || early {
        return Err(unauthorized(
            app,
            700024,
            "Client assertion is not within its valid time range.",
        ));
    }
    Ok(())
}

fn federated(app: &App, p: &Principal, claims: &Value, now: i64) -> Result<(), Response> {
    let s = |k: &str| claims.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let (iss, sub, aud) = (s("iss"), s("sub"), s("aud"));
    let matched = p.federated.iter().any(|f| f.issuer == iss && f.subject == sub);
    if !matched || aud != EXCHANGE_AUDIENCE {
        return Err(aad_error_status(
            app,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            Some(70021),
            &format!(
                "No matching federated identity record found for presented assertion. Assertion Issuer: '{iss}'. Assertion Subject: '{sub}'. Assertion Audience: '{aud}'."
            ),
        ));
    }
    times(app, claims, now)
}
