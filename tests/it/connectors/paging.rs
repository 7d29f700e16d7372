//! The pages of a whole-set read are asked for by a chain of their own: a reader busy with one page (a full
//! scratch writer, or another listing's parse on the same task) does not hold up the requests for the pages
//! after it, so the service's latency is the only wait between pages.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use cutover::connectors::parse::KeyedField;
use cutover::connectors::rows::{From, Keyed};

use crate::support::connector::*;
use crate::support::sim::request_log_with_query;

const YAML: &str = r#"
name: paging
auth:
  resources: { fno: "https://fno.example.test", dataverse: "https://dv.example.test", dualwrite: "https://dw.example.test" }
companies: [USMF]
fno:
  page_size: 5
entities:
  fno:
    CustomersV3: { key: CustomerAccount, rows: { USMF: 12 } }
"#;

/// The simulator's requests for `set`'s rows (not its metadata), in the order it got them.
async fn reads_of(url: &str, set: &str) -> Vec<String> {
    request_log_with_query(url)
        .await
        .into_iter()
        .filter(|(m, p, _)| m == "GET" && p.ends_with(&format!("/data/{set}")))
        .map(|(_, _, q)| q)
        .collect()
}

#[tokio::test]
async fn the_third_page_is_asked_for_while_the_reader_still_holds_the_first() {
    let h = start(YAML).await;
    let fno = h.fno();
    let fields = [KeyedField {
        name: "CustomerAccount",
        values: None,
    }];
    let url = h.url.clone();
    let mut pages = 0usize;
    let waited_for_third = std::sync::Arc::new(std::sync::Mutex::new(None));
    let rows = fno
        .read_keyed(
            "CustomersV3",
            None,
            Keyed {
                key: "CustomerAccount",
                fields: &fields,
            },
            From::Start,
            &h.cancel,
            |rows, _next| {
                pages += 1;
                let first = pages == 1;
                let url = url.clone();
                let waited = std::sync::Arc::clone(&waited_for_third);
                async move {
                    assert!(!rows.is_empty());
                    if first {
                        // The reader sits on page 1 until the simulator has been asked for page 3 (rows 10..):
                        // a loop that asks for a page only when the reader takes the one before never gets there.
                        let deadline = Instant::now() + Duration::from_secs(30);
                        loop {
                            let reads = reads_of(&url, "CustomersV3").await;
                            if reads.iter().any(|q| q.contains("$skip=10")) {
                                *waited.lock().unwrap() = Some(reads);
                                break;
                            }
                            if Instant::now() > deadline {
                                *waited.lock().unwrap() = Some(reads);
                                break;
                            }
                            tokio::task::yield_now().await;
                            tokio::time::sleep(Duration::from_millis(5)).await;
                        }
                    }
                    Ok(())
                }
            },
        )
        .await
        .unwrap();
    assert_eq!(rows, 12, "every row once");
    assert_eq!(pages, 3);
    let reads = waited_for_third
        .lock()
        .unwrap()
        .take()
        .expect("page 1 was handed over");
    assert!(
        reads.iter().any(|q| q.contains("$skip=10")),
        "page 3 was not asked for while the reader held page 1; requests seen: {reads:?}"
    );
    // Each page once: the chain does not ask again for what it already has.
    assert_eq!(reads_of(&h.url, "CustomersV3").await.len(), 3);
}
