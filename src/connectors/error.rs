//! The one error type of the connectors: every variant names the environment and the call, so a failed step's
//! message says where it failed without the caller adding context.

/// What went wrong with a connector call. Outcomes are data: the engine matches on the variant to decide whether
/// to retry the step, ask the operator, or fail.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    /// A transient failure (connect error, reset, timeout, 5xx, 429) persisted through every allowed attempt.
    #[error("{env}: {call}: still failing after {attempts} attempts: {last}")]
    TransientExhausted {
        env: String,
        call: String,
        attempts: u32,
        last: String,
    },
    /// A non-idempotent call without an idempotency handle failed in a way that leaves its effect unknown (a 5xx,
    /// a timeout or a reset after the request was sent). It was not repeated; the engine must reconcile.
    #[error(
        "{env}: {call}: outcome unknown (the request may have taken effect, so it was not repeated): {detail}"
    )]
    Ambiguous {
        env: String,
        call: String,
        detail: String,
    },
    /// The credentials were refused (Entra ID error, or 401/403 from the service after one token refresh).
    #[error("{env}: {call}: authentication failed: {message}")]
    Auth {
        env: String,
        call: String,
        status: Option<u16>,
        message: String,
    },
    /// The service answered 404, or the thing looked for does not exist.
    #[error("{env}: {call}: not found: {message}")]
    NotFound {
        env: String,
        call: String,
        message: String,
    },
    /// The service refused the call with its own message.
    #[error("{env}: {call}: HTTP {status}{}: {message}", if code.is_empty() { String::new() } else { format!(" {code}") })]
    Service {
        env: String,
        call: String,
        status: u16,
        code: String,
        message: String,
    },
    /// An HTML page came back where JSON was expected (often a sign-in page from a proxy or a wrong URL).
    #[error("{env}: {path}: expected JSON but got an HTML page (HTTP {status}{}){}",
        title.as_ref().map(|t| format!(", title \"{t}\"")).unwrap_or_default(),
        if *sign_in { "; it looks like a sign-in page: check the URL and the credentials" } else { "" })]
    UnexpectedHtml {
        env: String,
        path: String,
        status: u16,
        title: Option<String>,
        sign_in: bool,
    },
    /// The body could not be understood (truncated or malformed JSON, a missing field).
    #[error("{env}: {call}: unreadable response: {detail}")]
    BadBody {
        env: String,
        call: String,
        detail: String,
    },
    /// The call (or the polling of a long operation) did not finish in time.
    #[error("{env}: {call}: timed out after {after_ms} ms")]
    Timeout {
        env: String,
        call: String,
        after_ms: u64,
    },
    /// The caller cancelled (operator abort, shutdown).
    #[error("{env}: {call}: cancelled")]
    Cancelled { env: String, call: String },
    /// The configuration cannot be used (a plain-http URL to a non-loopback host, an unparseable URL).
    #[error("{env}: {detail}")]
    Config { env: String, detail: String },
    /// A long-running job finished in a failed state (DMF import with errors, a gateway request in Error, an
    /// initial sync that failed, a shell command that exited non-zero). Carries the service's details.
    #[error("{}", .0)]
    JobFailed(Box<JobFailure>),
}

/// The details of a job that finished but failed.
#[derive(Debug, Clone, PartialEq)]
pub struct JobFailure {
    pub env: String,
    pub call: String,
    /// The job's handle: DMF executionId, gateway requestId, map name.
    pub handle: String,
    /// The final status as the service named it (e.g. `PartiallySucceeded`, `Succeeded` with target errors).
    pub status: String,
    /// One line per error, in the service's words.
    pub details: Vec<String>,
}

impl std::fmt::Display for JobFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {}: {} finished as {}",
            self.env, self.call, self.handle, self.status
        )?;
        for (i, d) in self.details.iter().take(5).enumerate() {
            write!(f, "{}{d}", if i == 0 { ": " } else { "; " })?;
        }
        if self.details.len() > 5 {
            write!(f, " (and {} more)", self.details.len() - 5)?;
        }
        Ok(())
    }
}

impl ConnectorError {
    /// The environment the error is about.
    pub fn env(&self) -> &str {
        match self {
            Self::TransientExhausted { env, .. }
            | Self::Ambiguous { env, .. }
            | Self::Auth { env, .. }
            | Self::NotFound { env, .. }
            | Self::Service { env, .. }
            | Self::UnexpectedHtml { env, .. }
            | Self::BadBody { env, .. }
            | Self::Timeout { env, .. }
            | Self::Cancelled { env, .. }
            | Self::Config { env, .. } => env,
            Self::JobFailed(j) => &j.env,
        }
    }

    /// The service's own words for why, when it gave any: a failed job's details, a refusal's message.
    pub fn service_reason(&self) -> Option<String> {
        match self {
            Self::JobFailed(j) => Some(if j.details.is_empty() {
                format!("finished as {}", j.status)
            } else {
                j.details.join("; ")
            }),
            Self::Service { message, .. } | Self::NotFound { message, .. } | Self::Auth { message, .. }
                if !message.trim().is_empty() =>
            {
                Some(message.clone())
            }
            _ => None,
        }
    }

    /// True when repeating the whole step later might succeed (the service was throttling or down).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::TransientExhausted { .. } | Self::Timeout { .. })
    }

    /// A failure to obtain a token, restated for the environment and call that needed it (the token source's
    /// own errors name Entra ID and its token call, which would not tell the operator which environment failed).
    #[must_use]
    pub fn for_token(self, env: &str, call: &str) -> Self {
        let env = env.to_owned();
        let via = |inner: &str| format!("{call} (token: {inner})");
        match self {
            Self::TransientExhausted {
                call: c,
                attempts,
                last,
                ..
            } => Self::TransientExhausted {
                env,
                call: via(&c),
                attempts,
                last,
            },
            Self::Ambiguous { call: c, detail, .. } => Self::Ambiguous {
                env,
                call: via(&c),
                detail,
            },
            Self::Auth {
                call: c,
                status,
                message,
                ..
            } => Self::Auth {
                env,
                call: via(&c),
                status,
                message,
            },
            Self::NotFound { call: c, message, .. } => Self::NotFound {
                env,
                call: via(&c),
                message,
            },
            Self::Service {
                call: c,
                status,
                code,
                message,
                ..
            } => Self::Service {
                env,
                call: via(&c),
                status,
                code,
                message,
            },
            Self::UnexpectedHtml {
                path,
                status,
                title,
                sign_in,
                ..
            } => Self::UnexpectedHtml {
                env,
                path: via(&path),
                status,
                title,
                sign_in,
            },
            Self::BadBody { call: c, detail, .. } => Self::BadBody {
                env,
                call: via(&c),
                detail,
            },
            Self::Timeout {
                call: c, after_ms, ..
            } => Self::Timeout {
                env,
                call: via(&c),
                after_ms,
            },
            Self::Cancelled { .. } => Self::Cancelled {
                env,
                call: call.to_owned(),
            },
            Self::Config { detail, .. } => Self::Config {
                env,
                detail: format!("{call} (token): {detail}"),
            },
            Self::JobFailed(j) => Self::JobFailed(j),
        }
    }

    /// A status read of a long job that failed on the way (retries exhausted, timed out, an
    /// unreadable body): the job itself is unaffected, so a poller carries on until its own
    /// deadline instead of giving the job up after one bad read (a service throttling for an hour).
    pub fn poll_may_ride_out(&self) -> bool {
        matches!(
            self,
            Self::TransientExhausted { .. } | Self::Timeout { .. } | Self::BadBody { .. }
        )
    }

    pub(crate) fn bad_body(env: &str, call: &str, detail: impl Into<String>) -> Self {
        Self::BadBody {
            env: env.to_owned(),
            call: call.to_owned(),
            detail: detail.into(),
        }
    }

    pub(crate) fn job_failed(
        env: &str,
        call: &str,
        handle: &str,
        status: &str,
        details: Vec<String>,
    ) -> Self {
        Self::JobFailed(Box::new(JobFailure {
            env: env.to_owned(),
            call: call.to_owned(),
            handle: handle.to_owned(),
            status: status.to_owned(),
            details,
        }))
    }
}
