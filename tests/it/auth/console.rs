//! Five credential kinds in one console run (a pseudo-terminal): a device-code environment that signs
//! in from the console (the code and URL on screen, approved by the test, refreshed after its
//! 3-second token expires), the Azure CLI (an `az` stand-in), a certificate, the managed identity and
//! a workload identity. While the console waits at its last step the journal is open, so its -wal and
//! -shm are scanned with it; then the log, the reports, the raw terminal stream (every screen drawn),
//! the screens sampled along the way and the command lines of `az` and its parent (`cutover`) are
//! scanned for every kind's secret material. Approving the last step shows the signed-in identity
//! beside the operator in the console's header.
use std::io::{Read as _, Write as _};
use std::num::NonZeroU16;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::auth::*;
use portable_pty::{CommandBuilder, PtySize, native_pty_system};
use serde_json::json;

const CLIENT: &str = "c0ffee00-0000-4000-8000-000000000011";
const PUBLIC: &str = "d0d0c0de-0000-4000-8000-000000000012";
const ISSUER: &str = "https://oidc.ci.example/runner";
const SUBJECT: &str = "repo:contoso/cutover:environment:prod";

fn directory(cert_pem: &str) -> String {
    let pem: String = cert_pem.lines().map(|l| format!("            {l}\n")).collect();
    format!(
        "  principals:\n    - client_id: {CLIENT}\n      certificates:\n        - pem: |\n{pem}      federated:\n        - {{ issuer: \"{ISSUER}\", subject: \"{SUBJECT}\" }}\n    - {{ client_id: {PUBLIC}, public_client: true }}\n  users:\n    - {{ upn: lead@contoso.com, name: Cutover Lead }}\n  managed_identity:\n    system: {{ client_id: 5e1f0000-0000-4000-8000-00000000aaaa }}\n  device_code: {{ interval: 1, expires_in: 120 }}\n  user_token_ttl: 3\n"
    )
}

fn runbook_text() -> String {
    format!(
        r#"runbook: five-kinds
version: 1.0.0
environments:
  dv:
    kind: dataverse
    url: {DV}
    auth: {{ credential: device_code, tenant: "${{TENANT_ID}}", client_id: "{PUBLIC}" }}
  cli:
    kind: fno
    url: {FNO}
    auth: {{ credential: azure_cli }}
  cert:
    kind: fno
    url: {FNO}
    auth: {{ credential: client_certificate, tenant: "${{TENANT_ID}}", client_id: "{CLIENT}", certificate: "${{CERT_PATH}}", certificate_password: "${{CERT_PASSWORD}}" }}
  mi:
    kind: fno
    url: {FNO}
    auth: {{ credential: managed_identity }}
  ci:
    kind: fno
    url: {FNO}
    auth: {{ credential: workload_identity, tenant: "${{TENANT_ID}}", client_id: "{CLIENT}" }}
phases:
  - id: p
    steps:
      - {{ id: dv-1, kind: http, env: dv, path: /api/data/v9.2/WhoAmI }}
      - {{ id: cli, kind: http, env: cli, path: /data/Companies }}
      - {{ id: cert, kind: http, env: cert, path: /data/Companies }}
      - {{ id: mi, kind: http, env: mi, path: /data/Companies }}
      - {{ id: ci, kind: http, env: ci, path: /data/Companies }}
      - {{ id: expire, kind: wait, for: 4s }}
      - {{ id: dv-2, kind: http, env: dv, path: /api/data/v9.2/WhoAmI }}
      - {{ id: hold, kind: manual, title: Hold the console open }}
"#
    )
}

#[test]
fn five_kinds_in_the_console_leave_no_secret_in_the_journal_wal_screens_or_command_lines() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let key = rsa_key();
    let cert = rsa_cert(&key, 2020, 2090);
    let sim = rt.block_on(start_sim(&scenario(&directory(&cert.cert_pem))));
    let url = sim.url();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let secrets = dir.join("secrets");
    std::fs::create_dir_all(&secrets).unwrap();
    let pfx_path = secrets.join("client.pfx");
    std::fs::write(&pfx_path, pfx(&cert, "Console-Pfx-Pass-77")).unwrap();
    let now = chrono::Utc::now().timestamp();
    let b = |v: serde_json::Value| cutover::util::b64url(v.to_string().as_bytes());
    let federated = format!(
        "{}.{}.{}",
        b(json!({"alg": "RS256"})),
        b(json!({"iss": ISSUER, "sub": SUBJECT, "aud": "api://AzureADTokenExchange", "exp": now + 3600})),
        cutover::util::b64url(b"ci-signature-bytes")
    );
    std::fs::write(secrets.join("federated"), &federated).unwrap();
    let bin = az_stand_in(dir);
    rt.block_on(az_token(dir, &url, 1, "lead@contoso.com", FNO, 3600));
    std::fs::write(dir.join("rb.yaml"), runbook_text()).unwrap();

    let pair = native_pty_system()
        .openpty(PtySize {
            rows: 36,
            cols: 120,
            pixel_width: 0,
            pixel_height: 0,
        })
        .unwrap();
    let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_cutover"));
    cmd.args([
        "run",
        "rb.yaml",
        "--sim-url",
        url.as_str(),
        "--journal",
        "run.journal",
        "--operator",
        "tess",
    ]);
    cmd.cwd(dir);
    for (k, v) in [
        ("TERM", "xterm-256color".to_owned()),
        ("HOME", dir.display().to_string()),
        ("XDG_CACHE_HOME", dir.join("cache").display().to_string()),
        ("TMPDIR", dir.display().to_string()),
        ("CUTOVER_LOG", "debug".to_owned()),
        ("PATH", path_with(&bin)),
        ("TENANT_ID", TENANT.to_owned()),
        ("CERT_PATH", pfx_path.display().to_string()),
        ("CERT_PASSWORD", "Console-Pfx-Pass-77".to_owned()),
        (
            "AZURE_FEDERATED_TOKEN_FILE",
            secrets.join("federated").display().to_string(),
        ),
    ] {
        cmd.env(k, v);
    }
    for k in [
        "IDENTITY_ENDPOINT",
        "IDENTITY_HEADER",
        "HTTPS_PROXY",
        "https_proxy",
        "CUTOVER_TOKEN_CACHE",
        "NO_COLOR",
    ] {
        cmd.env_remove(k);
    }
    let mut child = pair.slave.spawn_command(cmd).unwrap();
    drop(pair.slave);
    let parser = Arc::new(Mutex::new(vt100::Parser::new(
        NonZeroU16::new(36).unwrap(),
        NonZeroU16::new(120).unwrap(),
        0,
    )));
    let raw = Arc::new(Mutex::new(Vec::new()));
    let mut out = pair.master.try_clone_reader().unwrap();
    let (sink, raw_sink) = (parser.clone(), raw.clone());
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n) = out.read(&mut buf) {
            if n == 0 {
                break;
            }
            raw_sink.lock().unwrap().extend_from_slice(&buf[..n]);
            sink.lock().unwrap().process(&buf[..n]);
        }
    });
    let mut writer = pair.master.take_writer().unwrap();
    let mut screens: Vec<String> = Vec::new();
    let screen = |screens: &mut Vec<String>| {
        let s = parser.lock().unwrap().screen().contents();
        if screens.last() != Some(&s) {
            screens.push(s.clone());
        }
        s
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    let wait = |what: &str, screens: &mut Vec<String>, cond: &mut dyn FnMut(&str) -> bool| loop {
        let s = screen(screens);
        if cond(&s) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; the screen:\n{s}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };

    // The device-code sign-in happens in the console: its code is on screen; the test approves it.
    let mut code = String::new();
    wait("a pending device code", &mut screens, &mut |_| {
        let v = rt.block_on(sim_get(&url, "/_sim/devicecode"));
        match v["value"].as_array().and_then(|a| a.first()) {
            Some(d) => {
                code = d["user_code"].as_str().unwrap().to_owned();
                true
            }
            None => false,
        }
    });
    // The run log (`v`) shows it.
    writer.write_all(b"v").unwrap();
    writer.flush().unwrap();
    wait("the code on screen", &mut screens, &mut |s| s.contains(&code));
    let (status, _) = rt.block_on(sim_post(
        &url,
        "/_sim/devicecode/approve",
        json!({"user_code": code, "upn": "lead@contoso.com"}),
    ));
    assert_eq!(status, 204);
    wait("the last step's question", &mut screens, &mut |s| {
        s.contains("APPROVE hold")
    });

    let counts = rt.block_on(sim_get(&url, "/_sim/auth"));
    for k in ["client_assertion", "imds", "device_code", "refresh_token"] {
        assert!(counts[k].as_u64().unwrap_or(0) >= 1, "{k}: {counts}");
    }
    let refreshed = counts["refresh_token"].as_u64().unwrap();
    assert!(refreshed >= 1, "the 3-second token was refreshed: {counts}");

    let mut scan = Scan::default();
    scan.never_key(&cert.key_pem, &cert.key_der);
    scan.never("PFX password", b"Console-Pfx-Pass-77");
    scan.never("federated token", federated.as_bytes());
    let az: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("az.tokens/1.json")).unwrap()).unwrap();
    scan.never("az access token", az["accessToken"].as_str().unwrap().as_bytes());
    // The journal is open (its WAL and shared memory exist): scan them now.
    let open: Vec<_> = files(dir)
        .into_iter()
        .filter(|f| {
            f.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("run.journal")
        })
        .collect();
    assert!(
        open.iter().any(|f| f.to_string_lossy().ends_with("-wal")),
        "{open:?}"
    );
    for f in &open {
        scan.bytes(&format!("open {}", f.display()), &std::fs::read(f).unwrap());
    }

    // Approving the last step journals the decision with the signed-in identity (the az account),
    // which the header then shows beside the operator label.
    writer.write_all(b"a").unwrap();
    writer.flush().unwrap();
    wait("the approval dialog", &mut screens, &mut |s| {
        s.contains("Approve step")
    });
    writer.write_all(b"y").unwrap();
    writer.flush().unwrap();
    wait("the signed-in identity in the header", &mut screens, &mut |s| {
        s.contains("operator tess (signed in: lead@contoso.com)")
    });

    writer.write_all(b"q").unwrap();
    writer.flush().unwrap();
    let quit_by = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < quit_by, "the console did not quit");
        if parser
            .lock()
            .unwrap()
            .screen()
            .contents()
            .contains("Quit the console?")
        {
            writer.write_all(b"y").unwrap();
            writer.flush().unwrap();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    reader.join().unwrap();
    screens.push(parser.lock().unwrap().screen().contents());
    rt.block_on(reports(dir));
    scan.bytes("terminal stream", &raw.lock().unwrap());
    for (i, s) in screens.iter().enumerate() {
        scan.bytes(&format!("screen {i}"), s.as_bytes());
    }
    let ps = std::fs::read(dir.join("az.ps")).unwrap();
    assert!(String::from_utf8_lossy(&ps).contains("get-access-token"));
    scan.bytes("command lines of az and cutover", &ps);
    scan.dir(dir, &[&secrets, &dir.join("az.tokens"), &dir.join("cache")]);
    scan.assert_clean();
    assert!(screens.len() > 3, "screens were sampled");
}
