//! `@odata.nextLink` is followed only on the scheme, host and port the request went to: a page whose next
//! link points elsewhere (here: the simulator building links from a forged `X-Forwarded-Host` naming a hostile
//! listener on loopback) fails with both hosts named, and the hostile listener never sees a connection.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use cutover::connectors::ConnectorError;
use cutover::connectors::dataverse::DataverseClient;
use cutover::connectors::fno::FnoClient;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::connector::*;

const YAML: &str = r#"
name: next-link
auth:
  resources: { fno: "https://fno.example.test", dataverse: "https://dv.example.test", dualwrite: "https://dw.example.test" }
companies: [USMF]
fno:
  page_size: 5
dataverse:
  page_size: 5
entities:
  fno:
    CustomersV3: { key: CustomerAccount, rows: { USMF: 12 } }
  dataverse:
    contacts: { key: emailaddress1, id: contactid, rows: 12 }
"#;

/// A listener that counts connections and answers any request with an empty OData page.
async fn hostile() -> (String, Arc<AtomicUsize>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let h2 = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            h2.fetch_add(1, Ordering::SeqCst);
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).await;
            let body = r#"{"value":[]}"#;
            let _ = s
                .write_all(
                    format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    )
                    .as_bytes(),
                )
                .await;
        }
    });
    (addr.to_string(), hits)
}

fn refused(err: &ConnectorError, hostile: &str, sim: &str) {
    let text = err.to_string();
    assert!(matches!(err, ConnectorError::Config { .. }), "{text}");
    assert!(text.contains("nextLink"), "{text}");
    assert!(
        text.contains(&format!("http://{hostile}")),
        "names the foreign host: {text}"
    );
    let sim_host = sim.trim_start_matches("http://");
    assert!(text.contains(sim_host), "names the request's host: {text}");
    assert!(text.contains("token was not sent"), "{text}");
}

#[tokio::test]
async fn a_next_link_to_another_host_is_refused_and_gets_no_token() {
    let h = start(YAML).await;
    let (evil, hits) = hostile().await;
    let forged = |env: &str, resource: &str| {
        h.transport(env, resource, fast_policy())
            .with_header("X-Forwarded-Host", &evil)
            .with_header("X-Forwarded-Proto", "http")
    };
    let dv = DataverseClient::new(forged("dataverse", DATAVERSE));
    let err = dv
        .count_by_paging("contacts", "contactid", None, &h.cancel)
        .await
        .unwrap_err();
    refused(&err, &evil, &h.url);
    let fno = FnoClient::new(forged("fno", FNO));
    let err = fno
        .read("CustomersV3", None, &[], None, 100, &h.cancel)
        .await
        .unwrap_err();
    refused(&err, &evil, &h.url);
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "the hostile listener saw a connection"
    );
    // The same reads with honest links page to the end on the simulator's own origin.
    let c = h
        .dataverse()
        .count_by_paging("contacts", "contactid", None, &h.cancel)
        .await
        .unwrap();
    assert_eq!((c.rows, c.pages), (12, 3));
    let rows = h
        .fno()
        .read("CustomersV3", None, &[], None, 100, &h.cancel)
        .await
        .unwrap();
    assert_eq!(rows.len(), 12);
}
