//! Our `adls` storage client against Azurite, Microsoft's storage emulator (npm `azurite`), on a loopback
//! port: an export folder layout (timestamped folders, `model.json`, headerless CSV, `Changelog/changelog.info`)
//! uploaded to it, then `lake.caught_up`, `lake.schema_check` and the embedded reconcile's reads through the
//! Blob API, signed with a shared access signature from `${VAR}` (the environment's `sas`): Azurite takes no
//! Entra token over plain http. The account key is Azurite's published development key (test only).
//!
//! Without Azurite the test is skipped with its reason printed, unless `CUTOVER_REQUIRE_AZURITE` is set
//! (`.ci/run` sets it): then it fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use base64::Engine as _;
use cutover::connectors::lake::Export;
use serde_json::json;

use crate::support::exec::{assert_ok, failure, start_with};

/// Azurite's well-known development account and key (documented by Microsoft; not a secret).
const ACCOUNT: &str = "devstoreaccount1";
const KEY: &str = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
const CONTAINER: &str = "dataverse-contoso-unq1";
const VERSION: &str = "2021-08-06";

fn azurite_or_skip() -> bool {
    let found = std::process::Command::new("azurite-blob")
        .arg("--version")
        .output();
    let why = match found {
        Ok(o) if o.status.success() => return true,
        Ok(o) => format!(
            "`azurite-blob --version` failed: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        ),
        Err(e) => format!("azurite-blob is not on PATH ({e})"),
    };
    if std::env::var_os("CUTOVER_REQUIRE_AZURITE").is_some_and(|v| !v.is_empty()) {
        panic!("CUTOVER_REQUIRE_AZURITE is set and {why} (npm i -g azurite@3.37.0)");
    }
    eprintln!(
        "SKIPPED the Azurite storage test: {why}; install it with `npm i -g azurite@3.37.0`, or set CUTOVER_REQUIRE_AZURITE=1 to fail instead"
    );
    false
}

/// Azurite's Blob service on a free loopback port, in memory; killed when dropped.
struct Azurite {
    child: tokio::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Azurite {
    async fn start() -> Azurite {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let mut child = tokio::process::Command::new("azurite-blob")
            .args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
            .args([
                "--inMemoryPersistence",
                "--skipApiVersionCheck",
                "--disableTelemetry",
                "--silent",
            ])
            // In memory: nothing is written; its working directory is a temporary one all the same.
            .current_dir(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("azurite-blob starts");
        // Ready when its port takes a connection (or failed when it exited).
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                break;
            }
            if let Some(status) = child.try_wait().unwrap() {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    use tokio::io::AsyncReadExt;
                    let _ = e.read_to_string(&mut err).await;
                }
                panic!("azurite-blob exited ({status}): {err}");
            }
            assert!(Instant::now() < deadline, "azurite-blob never listened on {port}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Azurite {
            child,
            port,
            _dir: dir,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/{ACCOUNT}", self.port)
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// An account SAS for the Blob service (service, container and object; read, write, list, create), signed
/// with the account key as Azure Storage documents it for version 2020-12-06 and later.
fn account_sas(permissions: &str) -> String {
    let expiry = "2099-01-01T00:00:00Z";
    let to_sign = format!("{ACCOUNT}\n{permissions}\nb\nsco\n\n{expiry}\n\nhttps,http\n{VERSION}\n\n");
    let key = base64::engine::general_purpose::STANDARD.decode(KEY).unwrap();
    let tag = ring::hmac::sign(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key),
        to_sign.as_bytes(),
    );
    let sig = base64::engine::general_purpose::STANDARD.encode(tag.as_ref());
    let enc = |s: &str| {
        s.replace('%', "%25")
            .replace('+', "%2B")
            .replace('/', "%2F")
            .replace('=', "%3D")
            .replace(':', "%3A")
    };
    format!(
        "sv={VERSION}&ss=b&srt=sco&sp={permissions}&se={}&spr=https,http&sig={}",
        enc(expiry),
        enc(&sig)
    )
}

const ROOT: &str = "exports/prod";
const ACCOUNT_COLUMNS: &[(&str, &str)] = &[
    ("Id", "guid"),
    ("SinkCreatedOn", "dateTime"),
    ("SinkModifiedOn", "dateTime"),
    ("versionnumber", "int64"),
    ("IsDelete", "boolean"),
    ("accountnumber", "string"),
    ("name", "string"),
];

fn model(extra: &[(&str, &str)]) -> String {
    let attrs: Vec<_> = ACCOUNT_COLUMNS
        .iter()
        .chain(extra)
        .map(|(n, t)| json!({"name": n, "dataType": t, "maxLength": -1}))
        .collect();
    json!({"name": "cdm", "version": "1.0", "entities": [
        {"$type": "LocalEntity", "name": "account", "attributes": attrs, "partitions": []}
    ]})
    .to_string()
}

/// The export: two closed folders (the second after a package added `cr_rating` to accounts: one row
/// renamed, one deleted, one created) and a third still being written.
fn layout() -> Vec<(String, String)> {
    let (a, b, c) = (
        "2026-11-27T18.00.00Z",
        "2026-11-27T18.05.00Z",
        "2026-11-27T18.10.00Z",
    );
    let id = |n: u32| format!("00000000-0000-0000-0000-00000000000{n}");
    let t0 = "2026-11-27T18:00:10.000Z";
    let t1 = "2026-11-27T18:05:10.000Z";
    vec![
        (format!("{a}/model.json"), model(&[])),
        (
            format!("{a}/account/2026.csv"),
            format!(
                "{},{t0},{t0},1,,AC-1,\"Contoso, Ltd\"\n{},{t0},{t0},2,,AC-2,Fabrikam\n{},{t0},{t0},3,,AC-3,Northwind\n",
                id(1),
                id(2),
                id(3)
            ),
        ),
        (format!("{b}/model.json"), model(&[("cr_rating", "int64")])),
        (
            format!("{b}/account/2026.csv"),
            format!(
                "{},{t0},{t1},4,,AC-2,\"Fabrikam \"\"Two\"\"\",5\n{},{t0},{t1},5,True,,,\n{},{t1},{t1},6,,AC-4,Litware,3\n",
                id(2),
                id(3),
                id(4)
            ),
        ),
        (format!("{c}/model.json"), model(&[("cr_rating", "int64")])),
        (
            format!("{c}/account/2026.csv"),
            format!("{},{t0},{t1},7,,AC-1,Half Written,1\n", id(1)),
        ),
        ("Changelog/changelog.info".to_owned(), c.to_owned()),
    ]
}

async fn upload(az: &Azurite, sas: &str) {
    let c = cutover::connectors::net::client().unwrap();
    let r = c
        .put(format!("{}/{CONTAINER}?restype=container&{sas}", az.url()))
        .header("x-ms-version", VERSION)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "create container: {}", r.text().await.unwrap());
    for (name, body) in layout() {
        let r = c
            .put(format!("{}/{CONTAINER}/{ROOT}/{name}?{sas}", az.url()))
            .header("x-ms-version", VERSION)
            .header("x-ms-blob-type", "BlockBlob")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "put {name}: {}", r.text().await.unwrap());
    }
}

fn runbook(url: &str) -> String {
    format!(
        r#"runbook: azurite
version: 1.0.0
environments:
  lake: {{ kind: adls, url: "{url}", account: {ACCOUNT}, container: {CONTAINER}, folder: {ROOT}, sas: "${{LAKE_SAS}}" }}
phases:
  - id: p
    steps:
      - {{ id: caught, kind: lake.caught_up, export: lake, after: "2026-11-27T18:03:00Z", every: 1s, timeout: 1m }}
      - {{ id: not-yet, kind: lake.caught_up, export: lake, after: "2026-11-27T18:08:00Z", every: 1s, timeout: 2s }}
      - {{ id: schema, kind: lake.schema_check, export: lake }}
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_adls_client_reads_an_export_from_azurite_with_a_shared_access_signature() {
    if !azurite_or_skip() {
        return;
    }
    let az = Azurite::start().await;
    upload(&az, &account_sas("rwlc")).await;
    // The console only reads: its signature has read and list.
    let read_sas = account_sas("rl");
    let sig = read_sas.split("sig=").nth(1).unwrap().to_owned();
    let h = start_with(None, &runbook(&az.url()), &[("LAKE_SAS", &read_sas)], true).await;

    // Without the signature Azurite refuses: the signature is what authenticates.
    let bare = cutover::connectors::net::client().unwrap();
    let r = bare
        .get(format!("{}/{CONTAINER}?restype=container&comp=list", az.url()))
        .header("x-ms-version", VERSION)
        .send()
        .await
        .unwrap();
    assert!(r.status() == 403 || r.status() == 404, "{}", r.status());

    // The reads the embedded reconcile makes: folders, model.json, partitions, records.
    let cancel = tokio_util::sync::CancellationToken::new();
    let (blob, root) = h.envs.scoped(None).blob("lake").unwrap();
    assert_eq!(root, format!("{ROOT}/"));
    let export = Export { blob: &blob, root };
    let state = export.state(&cancel).await.unwrap();
    let names: Vec<(&str, bool)> = state
        .folders
        .iter()
        .map(|f| (f.name.as_str(), f.closed))
        .collect();
    assert_eq!(
        names,
        [
            ("2026-11-27T18.00.00Z", true),
            ("2026-11-27T18.05.00Z", true),
            ("2026-11-27T18.10.00Z", false)
        ]
    );
    assert_eq!(state.open.as_deref(), Some("2026-11-27T18.10.00Z"));
    assert!(
        state.folders[1].written.is_some()
            || export
                .written("2026-11-27T18.05.00Z", &cancel)
                .await
                .unwrap()
                .is_some()
    );
    let m = export.model("2026-11-27T18.05.00Z", &cancel).await.unwrap();
    assert_eq!(m["account"].last().unwrap().0, "cr_rating");
    let parts = export
        .partitions("2026-11-27T18.05.00Z", "account", &cancel)
        .await
        .unwrap();
    assert_eq!(parts, [format!("{ROOT}/2026-11-27T18.05.00Z/account/2026.csv")]);
    let recs = export
        .records("2026-11-27T18.00.00Z", "account", &cancel)
        .await
        .unwrap();
    assert_eq!(recs.len(), 3);
    assert_eq!(recs[0][6], "Contoso, Ltd");
    let recs = export
        .records("2026-11-27T18.05.00Z", "account", &cancel)
        .await
        .unwrap();
    assert_eq!(recs[0][6], "Fabrikam \"Two\"");
    assert_eq!(recs[1][4], "True");

    // The steps, against Azurite.
    let r = h.run("caught").await;
    assert_ok(&r);
    assert_eq!(r.outputs["folder"], "2026-11-27T18.05.00Z");
    let msg = failure(&h.run("not-yet").await);
    assert!(
        msg.contains("the newest closed folder is 2026-11-27T18.05.00Z")
            && msg.contains("the folder still being written is 2026-11-27T18.10.00Z"),
        "{msg}"
    );
    let r = h.run("schema").await;
    assert_ok(&r);
    assert!(
        r.outputs["schema.account"].ends_with("name:string,cr_rating:int64"),
        "{:?}",
        r.outputs
    );

    // The signature reached no journal line.
    let text = serde_json::to_string(&h.events().await.iter().map(|e| &e.event).collect::<Vec<_>>()).unwrap();
    assert!(!text.contains(&sig), "the signature was journaled");
    assert!(
        text.contains(&format!("/{ACCOUNT}/{CONTAINER}")) && text.contains("&sig"),
        "the requests were journaled, the signature's key without its value: {}",
        &text[..text.len().min(3000)]
    );
}
