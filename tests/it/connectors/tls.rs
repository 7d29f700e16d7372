//! Networks as companies run them, against the simulator served over TLS by a small rustls front
//! (a throw-away CA and server certificates made here with rcgen), in live mode: the runbook's own
//! URL and authority are `https://localhost:PORT`.
//! - a private CA: trusted with `--ca-bundle FILE`, refused without it ("not trusted", naming the host,
//!   one attempt: never a retry loop);
//! - an expired server certificate and one for another name: refused with the cause;
//! - an HTTP CONNECT proxy of our own on loopback: `HTTPS_PROXY` sends every request through it, and
//!   `NO_PROXY` bypasses it.
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use crate::support::auth::*;
use cutover::engine::Event;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

struct Ca {
    pem: String,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

fn ca() -> Ca {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "cutover test root CA");
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let cert = params.self_signed(&key).unwrap();
    Ca {
        pem: cert.pem(),
        issuer: rcgen::Issuer::new(params, key),
    }
}

/// A server certificate for `name` signed by `ca`, valid over the years given.
fn server_cert(ca: &Ca, name: &str, from: i32, to: i32) -> (Vec<u8>, Vec<u8>) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec![name.to_owned()]).unwrap();
    params.not_before = rcgen::date_time_ymd(from, 1, 1);
    params.not_after = rcgen::date_time_ymd(to, 1, 1);
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    (cert.der().to_vec(), key.serialize_der())
}

/// Serves TLS on `listener` with the certificate, forwarding the plaintext to `backend`.
fn tls_front(listener: TcpListener, cert: (Vec<u8>, Vec<u8>), backend: SocketAddr) {
    cutover::connectors::net::init_tls();
    let chain = vec![rustls::pki_types::CertificateDer::from(cert.0)];
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.1.into());
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut up) = TcpStream::connect(backend).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut up).await;
            });
        }
    });
}

/// A minimal HTTP CONNECT proxy on loopback; records each CONNECT target.
async fn connect_proxy() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    tokio::spawn(async move {
        loop {
            let Ok((mut client, _)) = listener.accept().await else {
                return;
            };
            let log = Arc::clone(&log);
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut b = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && head.len() < 8192 {
                    if client.read(&mut b).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(b[0]);
                }
                let text = String::from_utf8_lossy(&head).into_owned();
                let target = text.split_whitespace().nth(1).unwrap_or("").to_owned();
                if !text.starts_with("CONNECT ") {
                    let _ = client.write_all(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n").await;
                    return;
                }
                log.lock().unwrap().push(target.clone());
                // Loopback only: the target is localhost:PORT.
                let port = target.rsplit(':').next().unwrap_or("0").to_owned();
                let Ok(mut up) = TcpStream::connect(format!("127.0.0.1:{port}")).await else {
                    return;
                };
                let _ = client
                    .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
                    .await;
                let _ = tokio::io::copy_bidirectional(&mut client, &mut up).await;
            });
        }
    });
    (port, seen)
}

const APP: &str = "a9900000-0000-4000-8000-000000000003";
const SECRET: &str = "Tls-Secret-6b1d0c";

/// A simulator whose F&O resource is `https://localhost:PORT`, behind a TLS front with `cert` on PORT.
async fn estate(ca: &Ca, name: &str, years: (i32, i32)) -> (cutover::sim::SimHandle, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://localhost:{}", listener.local_addr().unwrap().port());
    // One host serves both the authority and F&O here, so the scenario names no resources: the
    // simulator then routes by path (with resources, `localhost` would be F&O's host, and F&O has no
    // token endpoint, as on the real service).
    let yaml = scenario(&format!(
        "  principals:\n    - {{ client_id: {APP}, secret: {SECRET} }}\n"
    ))
    .replace(
        &format!("  resources:\n    fno: {FNO}\n    dataverse: {DV}\n"),
        "",
    );
    assert!(!yaml.contains("resources:"), "the scenario names no resources");
    let sim = start_sim(&yaml).await;
    tls_front(listener, server_cert(ca, name, years.0, years.1), sim.addr());
    (sim, url)
}

fn live_runbook(url: &str) -> String {
    let auth = format!(
        r#"{{ authority: "{url}", tenant: "${{TENANT_ID}}", client_id: "${{CLIENT_ID}}", client_secret: "${{CLIENT_SECRET}}" }}"#
    );
    runbook(
        "fno",
        "fno",
        url,
        &auth,
        &two_reads("fno", "/data/Companies", "1s"),
        "",
    )
}

async fn live_run(
    dir: &std::path::Path,
    url: &str,
    ca_bundle: Option<&std::path::Path>,
    env: &[(&str, String)],
) -> std::process::Output {
    std::fs::write(dir.join("rb.yaml"), live_runbook(url)).unwrap();
    let mut c = cutover(dir);
    if let Some(b) = ca_bundle {
        c.arg("--ca-bundle").arg(b);
    }
    c.args([
        "run",
        "rb.yaml",
        "--headless",
        "--auto-approve",
        "--journal",
        "run.journal",
    ]);
    c.env("TENANT_ID", TENANT)
        .env("CLIENT_ID", APP)
        .env("CLIENT_SECRET", SECRET);
    for (k, v) in env {
        c.env(k, v);
    }
    tokio::time::timeout(std::time::Duration::from_secs(120), c.output())
        .await
        .unwrap()
        .unwrap()
}

fn token_attempts(dir: &std::path::Path) -> usize {
    journal_events(&dir.join("run.journal"))
        .iter()
        .filter(|e| matches!(e, Event::Request { path, .. } if path.ends_with("/oauth2/v2.0/token")))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_ca_is_trusted_with_ca_bundle_and_refused_without_it() {
    let ca = ca();
    let (_sim, url) = estate(&ca, "localhost", (2020, 2090)).await;
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("corp-ca.pem");
    std::fs::write(&bundle, &ca.pem).unwrap();
    let out = live_run(dir.path(), &url, Some(&bundle), &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    let dir = tempfile::tempdir().unwrap();
    let out = live_run(dir.path(), &url, None, &[]).await;
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains("TLS with localhost failed") && t.contains("not trusted (unknown issuer)"),
        "{t}"
    );
    assert!(t.contains("--ca-bundle"), "the message says what to do: {t}");
    assert_eq!(token_attempts(dir.path()), 1, "one attempt, no retry loop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_server_certificate_and_a_wrong_name_are_refused_with_the_cause() {
    let ca = ca();
    for (name, years, cause) in [
        ("localhost", (2019, 2021), "the server's certificate has expired"),
        (
            "intranet.contoso.example",
            (2020, 2090),
            "not valid for this host name",
        ),
    ] {
        let (_sim, url) = estate(&ca, name, years).await;
        let dir = tempfile::tempdir().unwrap();
        let bundle = dir.path().join("corp-ca.pem");
        std::fs::write(&bundle, &ca.pem).unwrap();
        let out = live_run(dir.path(), &url, Some(&bundle), &[]).await;
        let t = text(&out);
        assert_eq!(out.status.code(), Some(1), "{t}");
        assert!(
            t.contains("TLS with localhost failed") && t.contains(cause),
            "{cause}: {t}"
        );
        assert_eq!(token_attempts(dir.path()), 1, "one attempt, no retry loop");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_proxy_carries_every_request_and_no_proxy_bypasses_it() {
    let ca = ca();
    let (_sim, url) = estate(&ca, "localhost", (2020, 2090)).await;
    let (proxy_port, seen) = connect_proxy().await;
    let proxy = format!("http://127.0.0.1:{proxy_port}");
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("corp-ca.pem");
    std::fs::write(&bundle, &ca.pem).unwrap();
    let out = live_run(dir.path(), &url, Some(&bundle), &[("HTTPS_PROXY", proxy.clone())]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let host = url.trim_start_matches("https://").to_owned();
    let through = seen.lock().unwrap().clone();
    assert!(
        !through.is_empty() && through.iter().all(|t| *t == host),
        "{through:?}"
    );

    let n = through.len();
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("corp-ca.pem");
    std::fs::write(&bundle, &ca.pem).unwrap();
    let env = [("HTTPS_PROXY", proxy), ("NO_PROXY", "localhost".to_owned())];
    let out = live_run(dir.path(), &url, Some(&bundle), &env).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(seen.lock().unwrap().len(), n, "NO_PROXY=localhost goes direct");
    let mut scan = Scan::default();
    scan.never("client secret", SECRET.as_bytes());
    scan.bytes("stdout", &out.stdout);
    scan.bytes("stderr", &out.stderr);
    scan.dir(dir.path(), &[]);
    scan.assert_clean();
}
