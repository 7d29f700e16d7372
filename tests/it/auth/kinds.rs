//! Every credential kind against the simulator, end to end: `cutover run` (a child process) reads an
//! F&O environment whose `auth` is the kind under test, the simulator checks the grant as Entra does,
//! and everything the run left behind (journal with its WAL, log, every report format, stdout, stderr,
//! the `ps` lines of the `az` stand-in and of its parent) is scanned for the kind's secret material.
use crate::support::auth::*;
use serde_json::json;

const CLIENT: &str = "c0ffee00-0000-4000-8000-000000000001";

fn cert_principal(cert_pem: &str, expires: Option<&str>) -> String {
    let indented: String = cert_pem.lines().map(|l| format!("            {l}\n")).collect();
    let exp = expires
        .map(|e| format!("          expires: {e}\n"))
        .unwrap_or_default();
    format!(
        "  principals:\n    - client_id: {CLIENT}\n      certificates:\n        - pem: |\n{indented}{exp}"
    )
}

const CERT_AUTH: &str = r#"{ credential: client_certificate, tenant: "${TENANT_ID}", client_id: "${CLIENT_ID}", certificate: "${CERT_PATH}", certificate_password: "${CERT_PASSWORD}" }"#;

fn cert_envs(path: &std::path::Path, password: &str) -> Vec<(&'static str, String)> {
    vec![
        ("TENANT_ID", TENANT.to_owned()),
        ("CLIENT_ID", CLIENT.to_owned()),
        ("CERT_PATH", path.display().to_string()),
        ("CERT_PASSWORD", password.to_owned()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_in_pem_and_in_pfx_signs_assertions_and_leaves_no_key_material() {
    let key = rsa_key();
    let c = rsa_cert(&key, 2020, 2090);
    let sim = start_sim(&scenario(&cert_principal(&c.cert_pem, None))).await;
    for (name, bytes, password) in [
        (
            "client.pem",
            format!("{}{}", c.cert_pem, c.key_pem).into_bytes(),
            "unused-pem-pass",
        ),
        ("client.pfx", pfx(&c, "Pfx-Pa55word-9f2c"), "Pfx-Pa55word-9f2c"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let secrets = dir.path().join("secrets");
        std::fs::create_dir_all(&secrets).unwrap();
        let path = secrets.join(name);
        std::fs::write(&path, &bytes).unwrap();
        let rb = runbook(
            "fno",
            "fno",
            FNO,
            CERT_AUTH,
            &two_reads("fno", "/data/Companies", "1s"),
            "",
        );
        let out = run(dir.path(), &rb, &sim.url(), &cert_envs(&path, password)).await;
        assert_eq!(out.status.code(), Some(0), "{name}: {}", text(&out));
        reports(dir.path()).await;
        let mut scan = Scan::default();
        scan.never_key(&c.key_pem, &c.key_der);
        scan.never("PFX password", password.as_bytes());
        scan.bytes("stdout", &out.stdout);
        scan.bytes("stderr", &out.stderr);
        scan.dir(dir.path(), &[&secrets]);
        scan.assert_clean();
    }
    let counts = sim_get(&sim.url(), "/_sim/auth").await;
    assert!(counts["client_assertion"].as_u64().unwrap() >= 2, "{counts}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_key_an_unregistered_certificate_and_an_expired_file_are_refused_by_name() {
    let key = rsa_key();
    let good = rsa_cert(&key, 2020, 2090);
    let other = rsa_cert(&rsa_key(), 2020, 2090);
    // The app registration's key credential ended in 2021, though the certificate itself is valid.
    let sim = start_sim(&scenario(&cert_principal(
        &good.cert_pem,
        Some("2021-01-01T00:00:00Z"),
    )))
    .await;
    let rb = runbook(
        "fno",
        "fno",
        FNO,
        CERT_AUTH,
        "      - { id: one, kind: http, env: fno, path: /data/Companies }",
        "",
    );
    let try_with = |c: &TestCert| format!("{}{}", c.cert_pem, c.key_pem);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("client.pem");
    std::fs::write(&path, try_with(&good)).unwrap();
    let out = run(dir.path(), &rb, &sim.url(), &cert_envs(&path, "x")).await;
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains("AADSTS700027") && t.contains("The key used is expired"),
        "{t}"
    );

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("client.pem");
    std::fs::write(&path, try_with(&other)).unwrap();
    let out = run(dir.path(), &rb, &sim.url(), &cert_envs(&path, "x")).await;
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains("AADSTS700027") && t.contains("The key was not found"),
        "{t}"
    );

    // A certificate file past its notAfter: refused before anything is sent, naming its thumbprint.
    let expired = rsa_cert(&key, 2019, 2021);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("client.pem");
    std::fs::write(&path, try_with(&expired)).unwrap();
    let before = sim_get(&sim.url(), "/_sim/auth").await["client_assertion"]
        .as_u64()
        .unwrap_or(0);
    let out = run(dir.path(), &rb, &sim.url(), &cert_envs(&path, "x")).await;
    let t = text(&out);
    assert_ne!(out.status.code(), Some(0), "{t}");
    assert!(
        t.contains("expired on 2021-01-01") && t.contains("x5t#S256"),
        "{t}"
    );
    let after = sim_get(&sim.url(), "/_sim/auth").await["client_assertion"]
        .as_u64()
        .unwrap_or(0);
    assert_eq!(before, after, "an expired certificate is not sent");
}

const MI_AUTH: &str = "{ credential: managed_identity }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn managed_identity_from_imds_and_app_service_and_none_assigned() {
    let none = start_sim(&scenario("")).await;
    let dir = tempfile::tempdir().unwrap();
    let rb = runbook(
        "fno",
        "fno",
        FNO,
        MI_AUTH,
        &two_reads("fno", "/data/Companies", "1s"),
        "",
    );
    let out = run(dir.path(), &rb, &none.url(), &[]).await;
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains("Identity not found") && t.contains("no managed identity"),
        "{t}"
    );

    let mi = "  managed_identity:\n    system: { client_id: 5e1f0000-0000-4000-8000-00000000aaaa }\n    header: Hdr-5ecret-7d1e\n";
    let sim = start_sim(&scenario(mi)).await;
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &rb, &sim.url(), &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let dir2 = tempfile::tempdir().unwrap();
    let app_service = [
        ("IDENTITY_ENDPOINT", format!("{}/msi/token", sim.url())),
        ("IDENTITY_HEADER", "Hdr-5ecret-7d1e".to_owned()),
    ];
    let out2 = run(dir2.path(), &rb, &sim.url(), &app_service).await;
    assert_eq!(out2.status.code(), Some(0), "{}", text(&out2));
    let counts = sim_get(&sim.url(), "/_sim/auth").await;
    assert!(
        counts["imds"].as_u64() >= Some(1) && counts["app_service"].as_u64() >= Some(1),
        "{counts}"
    );
    reports(dir2.path()).await;
    let mut scan = Scan::default();
    scan.never("IDENTITY_HEADER", b"Hdr-5ecret-7d1e");
    scan.bytes("stdout", &out2.stdout);
    scan.bytes("stderr", &out2.stderr);
    scan.dir(dir.path(), &[]);
    scan.dir(dir2.path(), &[]);
    scan.assert_clean();
}

fn federated_token(iss: &str, sub: &str, exp_in: i64) -> String {
    let now = chrono::Utc::now().timestamp();
    let b = |v: serde_json::Value| cutover::util::b64url(v.to_string().as_bytes());
    format!(
        "{}.{}.{}",
        b(json!({"alg": "RS256", "kid": "k8s"})),
        b(
            json!({"iss": iss, "sub": sub, "aud": "api://AzureADTokenExchange", "exp": now + exp_in, "iat": now})
        ),
        cutover::util::b64url(b"not-a-real-signature-1234")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workload_identity_reads_the_federated_token_file() {
    let fed = format!(
        "  principals:\n    - client_id: {CLIENT}\n      federated:\n        - {{ issuer: \"https://oidc.aks.example/abc\", subject: \"system:serviceaccount:cutover:runner\" }}\n"
    );
    let sim = start_sim(&scenario(&fed)).await;
    let auth = r#"{ credential: workload_identity, tenant: "${TENANT_ID}", client_id: "${CLIENT_ID}" }"#;
    let rb = runbook(
        "fno",
        "fno",
        FNO,
        auth,
        &two_reads("fno", "/data/Companies", "1s"),
        "",
    );
    let dir = tempfile::tempdir().unwrap();
    let secrets = dir.path().join("secrets");
    std::fs::create_dir_all(&secrets).unwrap();
    let file = secrets.join("azure-identity-token");
    let token = federated_token(
        "https://oidc.aks.example/abc",
        "system:serviceaccount:cutover:runner",
        3600,
    );
    std::fs::write(&file, &token).unwrap();
    let envs = [
        ("TENANT_ID", TENANT.to_owned()),
        ("CLIENT_ID", CLIENT.to_owned()),
        ("AZURE_FEDERATED_TOKEN_FILE", file.display().to_string()),
    ];
    let out = run(dir.path(), &rb, &sim.url(), &envs).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    reports(dir.path()).await;
    let mut scan = Scan::default();
    scan.never("federated token", token.as_bytes());
    scan.bytes("stdout", &out.stdout);
    scan.bytes("stderr", &out.stderr);
    scan.dir(dir.path(), &[&secrets]);
    scan.assert_clean();

    // A token of another subject matches no federated credential: AADSTS70021.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(
        &file,
        federated_token(
            "https://oidc.aks.example/abc",
            "system:serviceaccount:other:x",
            3600,
        ),
    )
    .unwrap();
    let envs = [
        ("TENANT_ID", TENANT.to_owned()),
        ("CLIENT_ID", CLIENT.to_owned()),
        ("AZURE_FEDERATED_TOKEN_FILE", file.display().to_string()),
    ];
    let out = run(dir.path(), &rb, &sim.url(), &envs).await;
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("AADSTS70021"), "{t}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_cli_token_is_asked_again_when_it_expires_mid_run_and_never_on_argv() {
    let users = "  users:\n    - { upn: lead@contoso.com, name: Cutover Lead }\n";
    let sim = start_sim(&scenario(users)).await;
    let dir = tempfile::tempdir().unwrap();
    let bin = az_stand_in(dir.path());
    // The first token lives 2 s (refreshed 0.2 s early); the run waits 3 s between its two reads.
    az_token(dir.path(), &sim.url(), 1, "lead@contoso.com", FNO, 2).await;
    az_token(dir.path(), &sim.url(), 2, "lead@contoso.com", FNO, 3600).await;
    let tokens: Vec<String> = (1..=2)
        .map(|n| {
            let v: serde_json::Value = serde_json::from_slice(
                &std::fs::read(dir.path().join(format!("az.tokens/{n}.json"))).unwrap(),
            )
            .unwrap();
            v["accessToken"].as_str().unwrap().to_owned()
        })
        .collect();
    let rb = runbook(
        "fno",
        "fno",
        FNO,
        "{ credential: azure_cli }",
        &two_reads("fno", "/data/Companies", "3s"),
        "",
    );
    let out = run(dir.path(), &rb, &sim.url(), &[("PATH", path_with(&bin))]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let calls = std::fs::read_to_string(dir.path().join("az.calls")).unwrap();
    let n = calls.lines().count();
    // Once, then again after expiry (a third only if a loaded machine let the first token lapse in flight).
    assert!(
        (2..=3).contains(&n),
        "asked once, then again after expiry: {calls}"
    );
    assert!(
        calls
            .lines()
            .all(|l| l == format!("argv: account get-access-token --output json --resource {FNO}")),
        "{calls}"
    );
    let ps = std::fs::read(dir.path().join("az.ps")).unwrap();
    assert!(
        String::from_utf8_lossy(&ps).contains("get-access-token"),
        "the ps lines were captured"
    );
    reports(dir.path()).await;
    let mut scan = Scan::default();
    for t in &tokens {
        scan.never("az access token", t.as_bytes());
    }
    scan.bytes("stdout", &out.stdout);
    scan.bytes("stderr", &out.stderr);
    scan.bytes("ps of az and of its parent", &ps);
    scan.dir(dir.path(), &[&dir.path().join("az.tokens")]);
    scan.assert_clean();

    // Not signed in: `az` fails and says so; the run names `az login`.
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let az = bin.join("az");
    std::fs::write(
        &az,
        "#!/bin/sh\necho \"ERROR: Please run 'az login' to setup account.\" >&2\nexit 1\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&az, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = run(dir.path(), &rb, &sim.url(), &[("PATH", path_with(&bin))]).await;
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("az login"), "{t}");
}

#[test]
fn the_scan_finds_every_shape_and_every_key_form_it_looks_for() {
    let key = rsa_key();
    let c = rsa_cert(&key, 2020, 2090);
    let mut scan = Scan::default();
    scan.never_key(&c.key_pem, &c.key_der);
    let line = c.key_pem.lines().nth(3).unwrap().to_owned();
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(&c.key_der);
    let hex = hex::encode(&c.key_der);
    let leaked = [
        line.clone(),
        b64.clone(),
        hex.clone(),
        format!("x sim.{} y", "ab".repeat(16)),
        format!("refresh=simrt.{}", "0f".repeat(20)),
        format!("code simdc.{}", "1a".repeat(20)),
        federated_token("i", "s", 60),
    ];
    for (i, l) in leaked.iter().enumerate() {
        let before = scan.leaks.len();
        scan.bytes(&format!("sample {i}"), l.as_bytes());
        assert!(scan.leaks.len() > before, "sample {i} not found: {l}");
    }
    let mut clean = Scan::default();
    clean.never_key(&c.key_pem, &c.key_der);
    clean.bytes(
        "ordinary",
        b"Bearer [REDACTED] sim.clock eyJ-not-a-jwt simrt. done",
    );
    assert!(clean.leaks.is_empty(), "{:?}", clean.leaks);
}
