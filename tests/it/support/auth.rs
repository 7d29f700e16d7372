//! Shared setup for the credential-kind tests (`tests/auth_*.rs`): a simulator with a directory
//! (principals, users, managed identity), throw-away RSA certificates, a runbook with one environment
//! whose `auth` is the kind under test, `cutover` run as a child process against the simulator, and a
//! scan of everything the run left behind for secret material.
//!
//! Each test file is its own crate and uses only some of these helpers, hence `dead_code` allows.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use cutover::sim::{Scenario, SimHandle, start};
use serde_json::Value;

pub const FNO: &str = "https://contoso.operations.dynamics.com";
pub const DV: &str = "https://contoso.crm.dynamics.com";
pub const TENANT: &str = "11111111-2222-4333-8444-555555555555";

/// A scenario whose `auth:` block carries `extra` (YAML lines indented by four spaces).
pub fn scenario(extra: &str) -> String {
    format!(
        r#"name: auth
seed: 7
time_scale: 1
auth:
  token_ttl: 3599
  resources:
    fno: {FNO}
    dataverse: {DV}
{extra}
companies: [USMF]
entities:
  fno:
    Companies: {{ key: DataArea, key_prefix: CO, rows: 2, fields: {{ Name: name }} }}
"#
    )
}

pub async fn start_sim(yaml: &str) -> SimHandle {
    start(Scenario::from_yaml(yaml).unwrap(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

/// A runbook with environment `env` (kind `kind`, URL `url`) authenticated by `auth` (flow YAML), and
/// `steps` (YAML list items indented by six spaces); `extra` goes at the top level.
pub fn runbook(env: &str, kind: &str, url: &str, auth: &str, steps: &str, extra: &str) -> String {
    format!(
        r#"runbook: auth-test
version: 1.0.0
{extra}
environments:
  {env}:
    kind: {kind}
    url: {url}
    auth: {auth}
phases:
  - id: p
    steps:
{steps}
"#
    )
}

/// Two reads of the environment with a wait between them long enough for a short-lived token to expire.
pub fn two_reads(env: &str, path: &str, wait: &str) -> String {
    format!(
        "      - {{ id: one, kind: http, env: {env}, path: \"{path}\" }}\n      - {{ id: pause, kind: wait, for: {wait} }}\n      - {{ id: two, kind: http, env: {env}, path: \"{path}\" }}"
    )
}

/// A fresh RSA key (PKCS#8 DER) for client-assertion certificates.
pub fn rsa_key() -> Vec<u8> {
    use rsa::pkcs8::EncodePrivateKey as _;
    struct Ring;
    impl rsa::rand_core::RngCore for Ring {
        fn next_u32(&mut self) -> u32 {
            let mut b = [0u8; 4];
            self.fill_bytes(&mut b);
            u32::from_le_bytes(b)
        }
        fn next_u64(&mut self) -> u64 {
            let mut b = [0u8; 8];
            self.fill_bytes(&mut b);
            u64::from_le_bytes(b)
        }
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), dest).unwrap();
        }
        fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rsa::rand_core::Error> {
            self.fill_bytes(dest);
            Ok(())
        }
    }
    impl rsa::rand_core::CryptoRng for Ring {}
    let key = rsa::RsaPrivateKey::new(&mut Ring, 2048).unwrap();
    key.to_pkcs8_der().unwrap().as_bytes().to_vec()
}

/// A self-signed certificate for an RSA key, valid over `[from, to]` (years).
pub struct TestCert {
    pub key_der: Vec<u8>,
    pub key_pem: String,
    pub cert_pem: String,
    pub cert_der: Vec<u8>,
}

pub fn rsa_cert(key_der: &[u8], from: i32, to: i32) -> TestCert {
    let pk = rustls::pki_types::PrivatePkcs8KeyDer::from(key_der.to_vec());
    let kp = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&pk, &rcgen::PKCS_RSA_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["cutover-client".to_owned()]).unwrap();
    params.not_before = rcgen::date_time_ymd(from, 1, 1);
    params.not_after = rcgen::date_time_ymd(to, 1, 1);
    let cert = params.self_signed(&kp).unwrap();
    TestCert {
        key_der: key_der.to_vec(),
        key_pem: kp.serialize_pem(),
        cert_pem: cert.pem(),
        cert_der: cert.der().to_vec(),
    }
}

/// A PFX holding the certificate and its key, encrypted with `password`.
pub fn pfx(c: &TestCert, password: &str) -> Vec<u8> {
    let key = p12_keystore::PrivateKey::from_der(&c.key_der).unwrap();
    let cert = p12_keystore::Certificate::from_der(&c.cert_der).unwrap();
    let chain = p12_keystore::PrivateKeyChain::new(vec![1u8; 20], key, [cert]);
    let mut ks = p12_keystore::KeyStore::new();
    ks.add_entry("client", p12_keystore::KeyStoreEntry::PrivateKeyChain(chain));
    ks.writer(password).write().unwrap()
}

/// `cutover` with a private HOME, cache and TMPDIR under `dir` and debug logging.
pub fn cutover(dir: &Path) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_cutover"));
    c.current_dir(dir)
        .env("HOME", dir)
        .env("XDG_CACHE_HOME", dir.join("cache"))
        .env("TMPDIR", dir)
        .env("CUTOVER_LOG", "debug")
        .env_remove("CUTOVER_TOKEN_CACHE")
        .env_remove("IDENTITY_ENDPOINT")
        .env_remove("IDENTITY_HEADER")
        .env_remove("HTTPS_PROXY")
        .env_remove("https_proxy")
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy")
        .env_remove("ALL_PROXY")
        .env_remove("all_proxy")
        .kill_on_drop(true);
    c
}

/// `cutover run RUNBOOK --headless --auto-approve --sim-url URL --journal dir/run.journal`, with `envs`.
pub async fn run(dir: &Path, runbook_text: &str, sim: &str, envs: &[(&str, String)]) -> Output {
    let rb = dir.join("rb.yaml");
    std::fs::write(&rb, runbook_text).unwrap();
    let mut c = cutover(dir);
    c.args([
        "run",
        "rb.yaml",
        "--headless",
        "--auto-approve",
        "--operator",
        "tess",
        "--sim-url",
        sim,
    ]);
    c.args(["--journal", "run.journal"]);
    for (k, v) in envs {
        c.env(k, v);
    }
    tokio::time::timeout(Duration::from_secs(120), c.output())
        .await
        .expect("the run finishes within 2 minutes")
        .unwrap()
}

pub fn text(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// GET `{sim}{path}` as JSON.
pub async fn sim_get(sim: &str, path: &str) -> Value {
    cutover::connectors::net::client()
        .unwrap()
        .get(format!("{sim}{path}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// POST JSON to `{sim}{path}`; returns the status.
pub async fn sim_post(sim: &str, path: &str, body: Value) -> (u16, Value) {
    let r = cutover::connectors::net::client()
        .unwrap()
        .post(format!("{sim}{path}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Waits until `f` holds (checked every 50 ms), or panics after `limit` naming `what`.
pub async fn until<F, Fut>(what: &str, limit: Duration, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !f().await {
        assert!(started.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every file under `dir` (recursively).
pub fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// What must never appear: exact values, plus the shapes of every token the simulator issues.
#[derive(Default)]
pub struct Scan {
    pub needles: Vec<(String, Vec<u8>)>,
    pub scanned: Vec<(String, usize)>,
    pub leaks: Vec<String>,
}

fn shape_leaks(bytes: &[u8]) -> Vec<&'static str> {
    let mut out = Vec::new();
    let text = String::from_utf8_lossy(bytes);
    let hex_run =
        |rest: &str, n: usize| rest.len() >= n && rest.as_bytes()[..n].iter().all(u8::is_ascii_hexdigit);
    for (prefix, n, what) in [
        ("sim.", 32, "an app access token"),
        ("simrt.", 40, "a refresh token"),
        ("simdc.", 40, "a device code"),
    ] {
        if text
            .match_indices(prefix)
            .any(|(i, _)| hex_run(&text[i + prefix.len()..], n))
        {
            out.push(what);
        }
    }
    // A JWT: eyJ… '.' eyJ… '.' something (user tokens, id tokens, assertions, federated tokens).
    if text.match_indices("eyJ").any(|(i, _)| {
        let rest = &text[i..];
        let seg: Vec<&str> = rest
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'))
            .next()
            .unwrap_or("")
            .split('.')
            .collect();
        seg.len() >= 3 && seg[1].starts_with("eyJ") && seg[2].len() >= 8
    }) {
        out.push("a JWT (access, id or assertion)");
    }
    out
}

impl Scan {
    /// Adds an exact value that must not appear.
    pub fn never(&mut self, what: &str, value: &[u8]) {
        self.needles.push((what.to_owned(), value.to_vec()));
    }

    /// Adds the forms private-key bytes could leak in: PEM body lines, base64 and hex of the DER.
    pub fn never_key(&mut self, key_pem: &str, key_der: &[u8]) {
        use base64::Engine as _;
        for line in key_pem
            .lines()
            .filter(|l| !l.starts_with("-----") && l.len() >= 40)
        {
            self.never("private key (PEM line)", line.as_bytes());
        }
        let b64 = base64::engine::general_purpose::STANDARD.encode(key_der);
        for chunk in b64.as_bytes().chunks(48).skip(2).take(4) {
            self.never("private key (base64 of the DER)", chunk);
        }
        let hex = hex::encode(key_der);
        for chunk in hex.as_bytes().chunks(64).skip(4).take(4) {
            self.never("private key (DER hex)", chunk);
        }
    }

    pub fn bytes(&mut self, name: &str, bytes: &[u8]) {
        for (what, n) in &self.needles {
            if !n.is_empty() && bytes.windows(n.len()).any(|w| w == n.as_slice()) {
                self.leaks.push(format!("{name}: {what}"));
            }
        }
        for what in shape_leaks(bytes) {
            self.leaks.push(format!("{name}: {what}"));
        }
        self.scanned.push((name.to_owned(), bytes.len()));
    }

    /// Every file under `dir` except those `keep` names (inputs the test wrote: the certificate, the cache).
    pub fn dir(&mut self, dir: &Path, keep: &[&Path]) {
        for f in files(dir) {
            if keep.iter().any(|k| f.starts_with(k)) {
                continue;
            }
            let bytes = std::fs::read(&f).unwrap();
            self.bytes(&f.display().to_string(), &bytes);
        }
    }

    pub fn assert_clean(&self) {
        assert!(self.scanned.len() >= 3, "too little scanned: {:?}", self.scanned);
        assert!(
            self.leaks.is_empty(),
            "leaks: {:#?}\nscanned: {:?}",
            self.leaks,
            self.scanned
        );
    }
}

/// Writes every report format of `journal` into `dir/report.*` (md, html, json, csv directory).
pub async fn reports(dir: &Path) {
    for (fmt, out) in [
        ("md", "report.md"),
        ("html", "report.html"),
        ("json", "report.json"),
        ("csv", "report-csv"),
    ] {
        let o = cutover(dir)
            .args(["report", "--format", fmt, "-o", out, "run.journal"])
            .output()
            .await
            .unwrap();
        assert!(o.status.success(), "report {fmt}: {}", text(&o));
    }
}

/// The kinds of events of the journal's last run, with their payloads.
pub fn journal_events(journal: &Path) -> Vec<cutover::engine::Event> {
    let r = cutover::journal::JournalReader::open_read_only(journal).unwrap();
    let run = r.runs().unwrap().pop().unwrap();
    r.events(&run.run_id).map(|e| e.unwrap().event).collect()
}

/// A shell script put first on PATH as `az`: it appends its own argv and command line (and its parent's,
/// as `ps -o args` shows them, from `/proc`)
/// to `az.calls`, then prints the next of the tokens the test pre-fetched (`az.tokens/1.json`, `2.json`,
/// ..., the last one repeated).
pub fn az_stand_in(dir: &Path) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let script = format!(
        r#"#!/bin/sh
d='{d}'
echo "argv: $*" >> "$d/az.calls"
# What `ps -o args` shows for this process and its parent (cutover), read from /proc so the test
# needs no procps.
{{ tr '\0' ' ' < /proc/$$/cmdline; echo; tr '\0' ' ' < /proc/$PPID/cmdline; echo; }} >> "$d/az.ps"
n=$(cat "$d/az.count" 2>/dev/null || echo 0)
n=$((n + 1))
echo $n > "$d/az.count"
f="$d/az.tokens/$n.json"
[ -f "$f" ] || f=$(ls "$d"/az.tokens/*.json | sort -n | tail -1)
cat "$f"
"#,
        d = dir.display()
    );
    let path = bin.join("az");
    std::fs::write(&path, script).unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::create_dir_all(dir.join("az.tokens")).unwrap();
    bin
}

/// PATH with `bin` first.
pub fn path_with(bin: &Path) -> String {
    format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default())
}

/// Pre-fetches a user's token from the simulator in the Azure CLI's output shape into `az.tokens/<n>.json`.
pub async fn az_token(dir: &Path, sim: &str, n: u32, upn: &str, resource: &str, ttl: u64) {
    let (status, v) = sim_post(
        sim,
        "/_sim/users/token",
        serde_json::json!({"upn": upn, "resource": resource, "ttl": ttl}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    std::fs::write(dir.join("az.tokens").join(format!("{n}.json")), v.to_string()).unwrap();
}
