//! The `shell` step: runs `sh -c <command>` locally with extra environment variables and a timeout, capturing the
//! last few KiB of stdout and stderr. The command runs in its own process group, and the whole group is killed on
//! timeout or cancellation (so a script's children do not outlive the step). A non-zero exit is data in the
//! outcome (`success()`), not an error: the engine fails the step with the tails.

use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio_util::sync::CancellationToken;

use super::{ConnectorError, Result};

/// Bytes of each stream kept.
pub const TAIL_BYTES: usize = 8 * 1024;

/// What a command did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellOutcome {
    /// The exit code; `None` when killed by a signal.
    pub exit_code: Option<i32>,
    pub stdout_tail: String,
    pub stderr_tail: String,
    pub duration_ms: u64,
}

impl ShellOutcome {
    pub fn success(&self) -> bool {
        self.exit_code == Some(0)
    }
}

async fn tail<R: AsyncRead + Unpin>(mut r: R) -> Vec<u8> {
    let mut keep = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = r.read(&mut buf).await {
        if n == 0 {
            break;
        }
        keep.extend_from_slice(&buf[..n]);
        if keep.len() > 2 * TAIL_BYTES {
            keep.drain(..keep.len() - TAIL_BYTES);
        }
    }
    if keep.len() > TAIL_BYTES {
        keep.drain(..keep.len() - TAIL_BYTES);
    }
    keep
}

fn kill_group(pid: Option<u32>) {
    if let Some(pid) = pid {
        // No libc dependency: the standard `kill` utility signals the whole group with a negative pid.
        let _ = std::process::Command::new("kill")
            .args(["-KILL", "--", &format!("-{pid}")])
            .stderr(Stdio::null())
            .status();
    }
}

/// Runs `command` with `sh -c` in exactly the environment `env` (nothing else is inherited). `env` values are
/// passed to the child only (never logged).
pub async fn run(
    command: &str,
    env: &[(String, String)],
    timeout: Duration,
    cancel: &CancellationToken,
) -> Result<ShellOutcome> {
    let call = "shell";
    let started = Instant::now();
    let mut cmd = tokio::process::Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(command)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd.process_group(0);
    let mut child = cmd.spawn().map_err(|e| ConnectorError::Config {
        env: "local".into(),
        detail: format!("{call}: cannot start sh: {e}"),
    })?;
    let pid = child.id();
    let out = child.stdout.take().map(|s| tokio::spawn(tail(s)));
    let err = child.stderr.take().map(|s| tokio::spawn(tail(s)));
    let status = tokio::select! {
        s = child.wait() => s.map_err(|e| ConnectorError::Config { env: "local".into(), detail: format!("{call}: {e}") })?,
        () = tokio::time::sleep(timeout) => {
            kill_group(pid);
            let _ = child.wait().await;
            return Err(ConnectorError::Timeout { env: "local".into(), call: call.into(), after_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX) });
        }
        () = cancel.cancelled() => {
            kill_group(pid);
            let _ = child.wait().await;
            return Err(ConnectorError::Cancelled { env: "local".into(), call: call.into() });
        }
    };
    // A background grandchild may keep the pipes open: give the readers a moment, then stop waiting.
    let collect = |h: Option<tokio::task::JoinHandle<Vec<u8>>>| async move {
        match h {
            Some(h) => match tokio::time::timeout(Duration::from_secs(2), h).await {
                Ok(Ok(v)) => String::from_utf8_lossy(&v).into_owned(),
                _ => String::new(),
            },
            None => String::new(),
        }
    };
    let stdout_tail = collect(out).await;
    let stderr_tail = collect(err).await;
    Ok(ShellOutcome {
        exit_code: status.code(),
        stdout_tail,
        stderr_tail,
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn captures_output_env_and_exit_code() {
        let env = vec![("CUTOVER_X".to_owned(), "hello".to_owned())];
        let o = run(
            "echo $CUTOVER_X; echo oops >&2; exit 3",
            &env,
            Duration::from_secs(10),
            &CancellationToken::new(),
        )
        .await
        .unwrap();
        assert_eq!(o.exit_code, Some(3));
        assert!(!o.success());
        assert_eq!(o.stdout_tail.trim(), "hello");
        assert_eq!(o.stderr_tail.trim(), "oops");
    }

    #[tokio::test]
    async fn keeps_only_the_tail() {
        let o = run(
            "seq 1 20000",
            &[],
            Duration::from_secs(10),
            &CancellationToken::new(),
        )
        .await
        .unwrap();
        assert!(o.success());
        assert!(o.stdout_tail.len() <= TAIL_BYTES);
        assert!(o.stdout_tail.ends_with("20000\n"));
    }

    #[tokio::test]
    async fn timeout_kills_the_process_group() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("child-survived");
        // The background child would create the marker after 2 s if it outlived the kill.
        let cmd = format!("(sleep 2; touch {}) & sleep 30", marker.display());
        let e = run(&cmd, &[], Duration::from_millis(300), &CancellationToken::new())
            .await
            .unwrap_err();
        assert!(matches!(e, ConnectorError::Timeout { .. }), "{e}");
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert!(!marker.exists(), "a child of the timed-out command survived");
    }

    #[tokio::test]
    async fn cancel_stops_the_command() {
        let cancel = CancellationToken::new();
        let c2 = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            c2.cancel();
        });
        let e = run("sleep 30", &[], Duration::from_secs(60), &cancel)
            .await
            .unwrap_err();
        assert!(matches!(e, ConnectorError::Cancelled { .. }), "{e}");
    }
}
