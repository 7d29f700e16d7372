//! Fault injection: rules matched per request, each with deterministic draws from the scenario seed.
//!
//! A rule's draws depend only on (seed, rule index, number of requests the rule has matched), so the
//! same scenario and the same request order fail at the same points. Faults never apply to `/_sim/`.

use serde::{Deserialize, Serialize};

/// The services on the one address (used to scope faults and audiences).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Service {
    Auth,
    Fno,
    Dataverse,
    Dualwrite,
    Blob,
    /// The export's storage account (Blob API, path-style under `/_storage/<account>/`).
    Storage,
    /// The Databricks workspace (`/api/2.0/`).
    Databricks,
    /// Azure Key Vault (`/_keyvault/`).
    Keyvault,
    Sim,
    /// A path no service serves: answered 404 without asking for a token.
    #[serde(skip)]
    Unknown,
}

impl Service {
    /// Which service a path belongs to (the request's host may override it: `route.rs`).
    pub fn of(path: &str) -> Service {
        let second = path.split('/').nth(2).unwrap_or("");
        if path.starts_with("/_sim/") {
            Service::Sim
        } else if path.starts_with("/_blob/") {
            Service::Blob
        } else if path.starts_with("/_storage/") {
            Service::Storage
        } else if path.starts_with("/_keyvault/") {
            Service::Keyvault
        } else if path.starts_with("/api/2.0/") {
            Service::Databricks
        } else if path.starts_with("/api/data/") || path == "/api/data" || path.starts_with("/XRMServices/") {
            Service::Dataverse
        } else if path.starts_with("/api/DualWriteManagement/")
            || path.starts_with("/api/ProjectExecutionWithCompanies/")
        {
            Service::Dualwrite
        } else if path == "/data" || path.starts_with("/data/") || path.starts_with("/Metadata/") {
            Service::Fno
        } else if matches!(second, "oauth2" | "v2.0" | ".well-known" | "discovery")
            // The managed-identity endpoints: IMDS and App Service's.
            || path.starts_with("/metadata/identity/")
            || path.starts_with("/msi/")
        {
            Service::Auth
        } else {
            Service::Unknown
        }
    }
}

/// The fault settings: a list of rules (the scenario's `faults`, or the body of `POST /_sim/faults`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(transparent)]
pub struct Faults(pub Vec<FaultRule>);

/// One fault rule. Every field is optional; a rule with only a scope does nothing.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FaultRule {
    /// Only requests to this service.
    pub service: Option<Service>,
    /// Only requests whose path starts with this.
    pub path_prefix: Option<String>,
    /// Answer 429 to every Nth matching request.
    pub throttle_every: Option<u64>,
    /// At most `requests` matching requests per `window` real seconds; the rest get 429.
    pub budget: Option<Budget>,
    /// Retry-After seconds on this rule's 429s (default 1).
    pub retry_after: Option<u64>,
    /// Send the Retry-After header (default true; false models a 429 without it).
    pub retry_after_header: Option<bool>,
    /// Share of matching requests answered 503 (F&O/gateway) or 500 (others).
    pub server_error_rate: f64,
    /// Share of matching requests whose connection is dropped before any response byte.
    pub reset_rate: f64,
    /// Share of JSON responses cut in half.
    pub truncated_rate: f64,
    /// Share of JSON responses replaced by invalid JSON.
    pub malformed_rate: f64,
    /// Share of requests answered 200 with an HTML sign-in page.
    pub html_signin_rate: f64,
    /// Share of requests to F&O, Dataverse and the gateway answered 401 as if their token had expired (a token
    /// revoked or expired early, e.g. by clock skew); other services are not affected.
    pub unauthorized_rate: f64,
    /// Share of responses trickled in small chunks.
    pub slow_rate: f64,
    /// Share of requests that are processed and whose answer is then lost (the connection drops before any
    /// response byte): the client cannot tell whether its call took effect.
    pub lost_rate: f64,
    /// Real milliseconds between trickled chunks (default 100).
    pub slow_chunk_ms: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    pub requests: u64,
    /// Window in real seconds.
    pub window: f64,
}

/// What the middleware must do to one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Pass,
    Throttle {
        retry_after: u64,
        header: bool,
    },
    ServerError,
    Reset,
    HtmlSignIn,
    /// 401 as for an expired token.
    Unauthorized,
    /// Let the request through, then damage or slow its response.
    Mangle(Mangle),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mangle {
    Truncate,
    Malformed,
    Slow {
        chunk_ms: u64,
    },
    /// Processed, then the connection is dropped before the response.
    Lost,
}

/// Run-time counters of the rules.
#[derive(Debug, Default)]
pub struct FaultState {
    pub faults: Faults,
    seen: Vec<u64>,
    windows: Vec<std::collections::VecDeque<std::time::Instant>>,
    pub injected: u64,
}

impl FaultState {
    pub fn new(faults: Faults) -> FaultState {
        let n = faults.0.len();
        FaultState {
            faults,
            seen: vec![0; n],
            windows: vec![Default::default(); n],
            injected: 0,
        }
    }

    /// Decides the fate of one request; the first rule that fires wins.
    pub fn decide(&mut self, seed: u64, path: &str, now: std::time::Instant) -> Decision {
        self.decide_for(seed, Service::of(path), path, now)
    }

    /// [`FaultState::decide`] for a request already known to be for `service`.
    pub fn decide_for(
        &mut self,
        seed: u64,
        service: Service,
        path: &str,
        now: std::time::Instant,
    ) -> Decision {
        if service == Service::Sim {
            return Decision::Pass;
        }
        for (i, rule) in self.faults.0.iter().enumerate() {
            if rule.service.is_some_and(|s| s != service)
                || rule.path_prefix.as_deref().is_some_and(|p| !path.starts_with(p))
            {
                continue;
            }
            self.seen[i] += 1;
            let c = self.seen[i];
            let retry_after = rule.retry_after.unwrap_or(1);
            let header = rule.retry_after_header.unwrap_or(true);
            if rule.throttle_every.is_some_and(|n| n > 0 && c % n == 0) {
                self.injected += 1;
                return Decision::Throttle { retry_after, header };
            }
            if let Some(b) = &rule.budget {
                let w = &mut self.windows[i];
                let span = std::time::Duration::from_secs_f64(b.window.max(0.0));
                while w.front().is_some_and(|t| now.duration_since(*t) >= span) {
                    w.pop_front();
                }
                if w.len() as u64 >= b.requests {
                    self.injected += 1;
                    return Decision::Throttle { retry_after, header };
                }
                w.push_back(now);
            }
            let draw = |k: u64| unit(mix(mix(seed, i as u64 * 16 + k), c));
            let d = if draw(1) < rule.reset_rate {
                Decision::Reset
            } else if draw(2) < rule.server_error_rate {
                Decision::ServerError
            } else if draw(3) < rule.html_signin_rate {
                Decision::HtmlSignIn
            } else if draw(7) < rule.unauthorized_rate
                && matches!(service, Service::Fno | Service::Dataverse | Service::Dualwrite)
            {
                Decision::Unauthorized
            } else if draw(4) < rule.truncated_rate {
                Decision::Mangle(Mangle::Truncate)
            } else if draw(5) < rule.malformed_rate {
                Decision::Mangle(Mangle::Malformed)
            } else if draw(8) < rule.lost_rate {
                Decision::Mangle(Mangle::Lost)
            } else if draw(6) < rule.slow_rate {
                Decision::Mangle(Mangle::Slow {
                    chunk_ms: rule.slow_chunk_ms.unwrap_or(100),
                })
            } else {
                continue;
            };
            self.injected += 1;
            return d;
        }
        Decision::Pass
    }
}

/// SplitMix64 step: the one mixing function behind every deterministic draw.
pub fn mix(a: u64, b: u64) -> u64 {
    let mut z = a ^ b
        .wrapping_add(0x9E37_79B9_7F4A_7C15)
        .wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A draw in [0, 1).
pub fn unit(x: u64) -> f64 {
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// Stable hash of a string (FNV-1a), to key draws by names.
pub fn hash_str(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The HTML page an expired session or a misconfigured proxy returns instead of JSON.
pub const SIGN_IN_HTML: &str = "<!DOCTYPE html><html><head><title>Sign in to your account</title></head>\
<body><form method=\"post\" action=\"https://login.microsoftonline.com/common/login\">\
<div>Sign in</div><input type=\"email\" name=\"loginfmt\"/></form></body></html>";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_nth_request_is_throttled_and_draws_repeat() {
        let rule = FaultRule {
            throttle_every: Some(3),
            ..Default::default()
        };
        let mut s = FaultState::new(Faults(vec![rule]));
        let now = std::time::Instant::now();
        let got: Vec<bool> = (0..6)
            .map(|_| s.decide(1, "/data/X", now) != Decision::Pass)
            .collect();
        assert_eq!(got, [false, false, true, false, false, true]);
        assert_eq!(s.decide(1, "/_sim/state", now), Decision::Pass);
    }

    #[test]
    fn rates_are_deterministic_per_seed() {
        let rule = FaultRule {
            server_error_rate: 0.3,
            ..Default::default()
        };
        let run = |seed| {
            let mut s = FaultState::new(Faults(vec![rule.clone()]));
            let now = std::time::Instant::now();
            (0..50)
                .map(|_| s.decide(seed, "/data/X", now) == Decision::ServerError)
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        let hits = run(7).iter().filter(|b| **b).count();
        assert!((5..=25).contains(&hits), "{hits}");
    }
}
