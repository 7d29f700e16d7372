//! Apache Spark runs the statement `reconcile … engine: lake` sends to a Databricks SQL warehouse, over the
//! simulator's Synapse Link export loaded as Lakeflow Connect lands it, and finds what the embedded engine
//! finds over the same export, count for count and sample key for sample key.
//!
//! Spark is `pyspark` in local mode (`scripts/lake-spark.py`, run with `python3`; Java from the distribution).
//! Without pyspark the test is skipped with its reason printed, unless `CUTOVER_REQUIRE_SPARK` is set
//! (`.ci/run` sets it): then it fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use crate::support::exec as exec_support;

use super::exec_lake::{PARITY, Planted, plant, reconciled, reconciled_of};
use exec_support::{assert_ok, start};

const SAMPLE: usize = 50;

/// `Err(why)` when `python3` cannot import pyspark.
pub(crate) fn pyspark() -> Result<(), String> {
    match std::process::Command::new("python3")
        .args(["-c", "import pyspark"])
        .output()
    {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(format!(
            "python3 cannot import pyspark: {}",
            String::from_utf8_lossy(&o.stderr).lines().last().unwrap_or("")
        )),
        Err(e) => Err(format!("python3 did not start: {e}")),
    }
}

/// Whether the test runs: Spark is there, or it is not and `CUTOVER_REQUIRE_SPARK` does not ask for it
/// (then the reason is printed and the test passes without running).
fn spark_or_skip(test: &str) -> bool {
    match pyspark() {
        Ok(()) => true,
        Err(why) if std::env::var_os("CUTOVER_REQUIRE_SPARK").is_some_and(|v| !v.is_empty()) => {
            panic!("CUTOVER_REQUIRE_SPARK is set and {why} (pip install pyspark==4.0.1)")
        }
        Err(why) => {
            eprintln!(
                "SKIPPED {test}: {why}; install it with `pip install pyspark==4.0.1`, or set CUTOVER_REQUIRE_SPARK=1 to fail instead"
            );
            false
        }
    }
}

fn runbook() -> String {
    let auth = "auth: { tenant: t-0000, client_id: c-0000, client_secret: \"${TEST_SECRET}\" }";
    format!(
        r#"runbook: lake-spark
version: 1.0.0
environments:
  fno: {{ kind: fno, url: {}, {auth} }}
  dataverse: {{ kind: dataverse, url: {}, {auth} }}
  lake: {{ kind: adls, account: contosolake, container: dataverse-contoso-unq1, {auth} }}
maps:
  customers:
    source: fno:CustomersV3
    target: dataverse:accounts
    companies: [USMF, USRT]
    key: {{ source: CustomerAccount, target: accountnumber }}
    compare: {{ OrganizationName: name, CreditLimit: creditlimit }}
phases:
  - id: p
    steps:
      - {{ id: rows-here, kind: reconcile, engine: lake, maps: [customers], sample: {SAMPLE}, max_differences: 100000 }}
"#,
        exec_support::FNO,
        exec_support::DV
    )
}

/// Copies every blob of the export (its folders, `model.json`s, CSV partitions, `Changelog/`) under `to`,
/// by its name below the export's root, through our Blob client.
async fn copy_export(h: &exec_support::Harness, to: &Path) -> usize {
    let cancel = tokio_util::sync::CancellationToken::new();
    let (blob, root) = h.envs.scoped(None).blob("lake").unwrap();
    let listing = blob.list(&root, None, &cancel).await.unwrap();
    for b in &listing.blobs {
        let rel = b.name.strip_prefix(&root).unwrap();
        assert!(
            !rel.split('/').any(|p| p.is_empty() || p == ".." || p == "."),
            "{rel}"
        );
        let path = to.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, blob.get(&b.name, &cancel).await.unwrap()).unwrap();
    }
    listing.blobs.len()
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/lake-spark.py")
}

/// Runs `sql` on Spark over the export copied to `export`; its result rows.
pub(crate) async fn run_spark(
    export: &Path,
    sql: &str,
    sample: usize,
) -> (Vec<Vec<serde_json::Value>>, String) {
    let work = export.parent().unwrap().to_path_buf();
    let sql_file = work.join("statement.sql");
    let out_file = work.join("result.jsonl");
    std::fs::write(&sql_file, sql).unwrap();
    let mut cmd = tokio::process::Command::new("python3");
    cmd.arg(script())
        .arg(export)
        .arg(&sql_file)
        .arg(&out_file)
        .arg(sample.to_string())
        .env("SPARK_LOCAL_DIRS", &work)
        .env("CUTOVER_SPARK_PARTITIONS", "4")
        .kill_on_drop(true);
    // Nothing of the test's credentials goes to the child.
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().to_uppercase();
        if k.contains("SECRET") || k.contains("TOKEN") || k.contains("PASSWORD") {
            cmd.env_remove(&k);
        }
    }
    let out = tokio::time::timeout(std::time::Duration::from_secs(300), cmd.output())
        .await
        .expect("spark finished within 5 minutes")
        .unwrap();
    let stderr = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "spark failed: {stderr}");
    let rows = std::fs::read_to_string(&out_file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (rows, stderr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spark_runs_the_generated_statement_over_the_export_and_agrees_with_the_embedded_engine_row_for_row()
{
    if !spark_or_skip("spark_runs_the_generated_statement…") {
        return;
    }
    // A few thousand rows a side: 2,500 customers, a tenth of them corrupted on the Dataverse side.
    let scenario = PARITY
        .replace("STATEMENT", "20s")
        .replace("rows: { USMF: 60, USRT: 40 }", "rows: { USMF: 1500, USRT: 1000 }")
        // A folder every 10 simulated minutes (a second here): fewer folders for the waits to re-read.
        .replace("interval: 1m", "interval: 10m");
    assert_ne!(
        scenario,
        PARITY.replace("STATEMENT", "20s"),
        "the scenario was scaled"
    );
    let h = start(Some(&scenario), &runbook()).await;
    let t0 = std::time::Instant::now();
    let Planted { usmf, usrt, .. } = plant(&h).await;
    eprintln!("planted in {:?}", t0.elapsed());

    let here = h.run("rows-here").await;
    assert_ok(&here);
    eprintln!("embedded engine done at {:?}", t0.elapsed());
    let events = h.events().await;
    let embedded = reconciled(&events, "rows-here");

    // The export as the container holds it, copied through our Blob client.
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("export");
    assert!(copy_export(&h, &export).await > 10);
    assert!(export.join("Changelog/changelog.info").exists());

    // The statement the warehouse would be sent, from the generator, and Spark's answer read as the step
    // reads the warehouse's.
    let ctx = h.ctx("rows-here", 1).await;
    let sql = cutover::engine::exec::lake_statement(&ctx, "customers")
        .await
        .unwrap()
        .unwrap();
    assert!(
        sql.contains("FULL OUTER JOIN") && sql.contains(":sample"),
        "{sql}"
    );
    let (rows, log) = run_spark(&export, &sql, SAMPLE).await;
    eprintln!(
        "{}",
        log.lines()
            .filter(|l| l.starts_with("spark-"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let spark_events = cutover::engine::exec::lake_result(&ctx, "customers", SAMPLE, &rows)
        .await
        .unwrap();
    let spark = reconciled_of(spark_events.iter(), "rows-here");

    assert_eq!(embedded.len(), 2, "{embedded:?}");
    assert_eq!(
        spark, embedded,
        "Spark and the embedded engine agree: counts per class and sample keys, company by company"
    );
    // The planted differences are there, so agreement is not two empty answers.
    let usmf_row = spark.iter().find(|r| r.0.as_deref() == Some("USMF")).unwrap();
    let usrt_row = spark.iter().find(|r| r.0.as_deref() == Some("USRT")).unwrap();
    assert_eq!((usmf_row.2, usmf_row.3), (1, 1), "{usmf_row:?}");
    assert_eq!((usrt_row.2, usrt_row.3), (1, 1), "{usrt_row:?}");
    assert!(usmf_row.1 > 1000 && usrt_row.1 > 700, "{usmf_row:?} {usrt_row:?}");
    assert!(usmf_row.4 > 50 && usrt_row.4 > 50, "{usmf_row:?} {usrt_row:?}");
    // The sample is bounded, and holds the planted keys.
    assert!(usmf_row.5.len() <= 3 * SAMPLE, "{}", usmf_row.5.len());
    assert!(
        usmf_row.5.contains(&format!("Missing {} ", usmf[0])),
        "{usmf_row:?}"
    );
    assert!(
        usmf_row.5.contains(&"Extra ZZ-EXTRA-1 ".to_owned()),
        "{usmf_row:?}"
    );
    assert!(
        usrt_row.5.contains(&format!("Missing {} ", usrt[0])),
        "{usrt_row:?}"
    );
    assert!(
        usmf_row
            .5
            .iter()
            .any(|s| s.starts_with(&format!("Different {} ", usmf[1])) && s.ends_with("/Second Rename Ltd")),
        "the latest version of a row renamed in two folders wins: {usmf_row:?}"
    );
}

/// The sizes of [`one_million_rows_a_side`]: `CUTOVER_LAKE_ROWS` rows a side (default 1,000,000), 60% USMF.
fn bench_rows() -> u64 {
    std::env::var("CUTOVER_LAKE_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

async fn lake_json(h: &exec_support::Harness, body: Option<serde_json::Value>) -> serde_json::Value {
    let c = cutover::connectors::net::client().unwrap();
    let url = format!("{}/_sim/lake", h.sim.url());
    match body {
        None => c.get(url).send().await.unwrap().json().await.unwrap(),
        Some(b) => {
            let r = c.post(url).json(&b).send().await.unwrap();
            assert_eq!(r.status(), 204);
            serde_json::Value::Null
        }
    }
}

/// The folder being written now.
async fn open_folder(h: &exec_support::Harness) -> String {
    let v = lake_json(h, None).await;
    v["folders"]
        .as_array()
        .unwrap()
        .iter()
        .rfind(|f| f["closed"] == false)
        .map(|f| f["name"].as_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// A measurement, not a timed test (`scripts/lake-spark-bench` runs it in release mode and prints its
/// lines): `CUTOVER_LAKE_ROWS` customers a side (default 1,000,000), a hundredth of them corrupted on the
/// Dataverse side, plus 20 deleted (missing), 20 created (extra) and 5 renamed after the first export. Both
/// engines read the same closed folders (Synapse Link is stopped once the changes are in one); it asserts
/// their agreement and prints both times.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement of minutes: scripts/lake-spark-bench runs it"]
async fn one_million_rows_a_side() {
    if !spark_or_skip("one_million_rows_a_side") {
        return;
    }
    let n = bench_rows();
    let (usmf_n, usrt_n) = (n * 6 / 10, n - n * 6 / 10);
    let scenario = PARITY
        .replace("STATEMENT", "20s")
        .replace(
            "rows: { USMF: 60, USRT: 40 }",
            &format!("rows: {{ USMF: {usmf_n}, USRT: {usrt_n} }}"),
        )
        .replace("corrupt_share: 0.1", "corrupt_share: 0.01")
        .replace("interval: 1m", "interval: 10m");
    let t0 = std::time::Instant::now();
    let h = start(Some(&scenario), &runbook()).await;
    // The first export of every row, then the planted changes into a later folder.
    let first = open_folder(&h).await;
    eprintln!(
        "LAKE-BENCH first export into {first} in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    // Synapse Link stopped while the changes are made (each look at the tables reads every row), then
    // resumed: the changes land in one folder.
    lake_json(&h, Some(serde_json::json!({"stopped": true}))).await;
    let keys = super::exec_lake::customer_keys(&h, "usmf", 25).await;
    let dv = h.envs.dataverse("dataverse").unwrap();
    let c = tokio_util::sync::CancellationToken::new();
    let mut company = String::new();
    for (i, k) in keys.iter().enumerate() {
        let (id, cid) = super::exec_lake::account_id(&h, k, "USMF").await;
        company = cid;
        if i < 20 {
            dv.delete("accounts", &id, &c).await.unwrap();
        } else {
            super::exec_lake::rename_account(&h, &id, &format!("Renamed {i} Ltd")).await;
        }
    }
    for i in 0..20 {
        let body = serde_json::json!({"accountnumber": format!("ZZ-EXTRA-{i:02}"), "name": "Nobody Ltd", "msdyn_company@odata.bind": format!("/cdm_companies({company})")});
        dv.create("accounts", &body, None, &c).await.unwrap();
    }
    lake_json(&h, Some(serde_json::json!({"stopped": false}))).await;
    let planted_in = open_folder(&h).await;
    assert!(planted_in > first, "{planted_in} after {first}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(600);
    while open_folder(&h).await == planted_in {
        assert!(std::time::Instant::now() < deadline, "{planted_in} never closed");
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    lake_json(&h, Some(serde_json::json!({"stopped": true}))).await;
    eprintln!(
        "LAKE-BENCH planted and closed in {:.1} s",
        t0.elapsed().as_secs_f64()
    );

    let t = std::time::Instant::now();
    let here = h.run("rows-here").await;
    let embedded_s = t.elapsed().as_secs_f64();
    assert_ok(&here);
    let events = h.events().await;
    let embedded = reconciled(&events, "rows-here");

    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("export");
    let t = std::time::Instant::now();
    let blobs = copy_export(&h, &export).await;
    let copy_s = t.elapsed().as_secs_f64();
    let ctx = h.ctx("rows-here", 1).await;
    let sql = cutover::engine::exec::lake_statement(&ctx, "customers")
        .await
        .unwrap()
        .unwrap();
    let t = std::time::Instant::now();
    let (rows, log) = run_spark(&export, &sql, SAMPLE).await;
    let spark_s = t.elapsed().as_secs_f64();
    let spark_events = cutover::engine::exec::lake_result(&ctx, "customers", SAMPLE, &rows)
        .await
        .unwrap();
    let spark = reconciled_of(spark_events.iter(), "rows-here");
    let counts: Vec<_> = embedded
        .iter()
        .map(|r| (r.0.clone(), r.1, r.2, r.3, r.4))
        .collect();
    eprintln!("LAKE-BENCH rows a side: {n}; per company (matching, missing, extra, different): {counts:?}");
    eprintln!(
        "LAKE-BENCH embedded engine (reconcile step, engine: lake, over the Blob API): {embedded_s:.1} s"
    );
    eprintln!(
        "LAKE-BENCH export copied to disk for Spark: {blobs} blobs in {copy_s:.1} s (not counted in Spark's time)"
    );
    let spark_lines: Vec<&str> = log.lines().filter(|l| l.starts_with("spark-")).collect();
    eprintln!(
        "LAKE-BENCH Spark (python3 + JVM start, load as Lakeflow lands it, the statement): {spark_s:.1} s; {}",
        spark_lines.join(" ")
    );
    let agree = spark == embedded;
    eprintln!("LAKE-BENCH agreement row for row: {agree}");
    assert!(agree, "Spark {spark:?}\nembedded {embedded:?}");
    let usmf = embedded.iter().find(|r| r.0.as_deref() == Some("USMF")).unwrap();
    assert_eq!((usmf.2, usmf.3), (20, 20), "{usmf:?}");
}
