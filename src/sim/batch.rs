//! OData `$batch` for Dataverse (`/api/data/v9.2/$batch`) and F&O (`/data/$batch`):
//! `multipart/mixed` with top-level requests and change sets.
//!
//! Each request runs through the simulator's own router with the batch's credentials and host, so
//! it is answered exactly as it would be on its own. The response is `multipart/mixed;
//! boundary=batchresponse_<id>`, change sets inside `changesetresponse_<id>` parts echoing each
//! `Content-ID` (the names dynamics-web-api splits on: wire-facts B8, D1). A change set is atomic:
//! when one of its requests fails, the tables are put back as they were before it, and `$<n>`
//! names the record created by Content-ID `n` earlier in the same change set. Dataverse: without
//! `Prefer: odata.continue-on-error` the batch stops at the first failure and answers 400 with that
//! part only; with it, 200 and every part [doc]. No GET inside a change set, at most 1,000 requests.
//! Our models: F&O stops after the first failing part and answers 200 with the parts so far; a
//! JSON-format batch is a 501 (not documented for Dataverse, not modelled here).

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use tower::ServiceExt;

use super::faults::Service;
use super::server::{App, header, json_error};
use super::wire;

/// One request inside a batch.
#[derive(Debug, Clone)]
struct Part {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: String,
    content_id: Option<String>,
}

#[derive(Debug)]
enum Item {
    One(Part),
    ChangeSet(Vec<Part>),
}

fn error(service: Service, status: StatusCode, msg: &str) -> Response {
    let code = if service == Service::Dataverse {
        "0x80060888"
    } else {
        ""
    };
    json_error(status, code, msg)
}

fn boundary(content_type: &str) -> Option<String> {
    content_type.split(';').find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_string())
    })
}

/// Splits a multipart body on `--boundary` lines: the parts between the first and the closing one.
fn split(body: &str, boundary: &str) -> Vec<String> {
    let delim = format!("--{boundary}");
    let mut parts = Vec::new();
    let mut cur: Option<Vec<&str>> = None;
    for line in body.split('\n') {
        let l = line.trim_end_matches('\r');
        if l == delim || l == format!("{delim}--") {
            if let Some(p) = cur.take() {
                parts.push(p.join("\n"));
            }
            if l.ends_with("--") && l != delim {
                break;
            }
            cur = Some(Vec::new());
        } else if let Some(p) = cur.as_mut() {
            p.push(line);
        }
    }
    parts
}

/// Headers and content of a MIME part.
fn mime(part: &str) -> (Vec<(String, String)>, String) {
    let text = part.trim_start_matches(['\r', '\n']);
    let (head, content) = match text.find("\r\n\r\n") {
        Some(i) => (&text[..i], &text[i + 4..]),
        None => match text.find("\n\n") {
            Some(i) => (&text[..i], &text[i + 2..]),
            None => (text, ""),
        },
    };
    let headers = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (headers, content.to_string())
}

fn get<'a>(h: &'a [(String, String)], k: &str) -> Option<&'a str> {
    h.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
}

fn http_part(mime_headers: &[(String, String)], content: &str) -> Result<Part, String> {
    let text = content.trim_start_matches(['\r', '\n']);
    let mut lines = text.split('\n');
    let first = lines.next().unwrap_or("").trim_end_matches('\r');
    let mut words = first.split_whitespace();
    let (method, url) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    if method.is_empty() || url.is_empty() {
        return Err(format!("A batch part has no request line: '{first}'."));
    }
    let mut headers = Vec::new();
    for l in lines.by_ref() {
        let l = l.trim_end_matches('\r');
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let body: Vec<&str> = lines.collect();
    Ok(Part {
        method: method.to_ascii_uppercase(),
        url: url.to_string(),
        headers,
        body: body.join("\n").trim_end_matches(['\r', '\n']).to_string(),
        content_id: get(mime_headers, "content-id").map(str::to_string),
    })
}

fn parse(body: &str, boundary: &str) -> Result<Vec<Item>, String> {
    let mut items = Vec::new();
    for p in split(body, boundary) {
        let (h, content) = mime(&p);
        let ct = get(&h, "content-type").unwrap_or("");
        if ct.starts_with("multipart/mixed") {
            let b = boundary_of(ct)?;
            let mut set = Vec::new();
            for inner in split(&content, &b) {
                let (ih, icontent) = mime(&inner);
                if get(&ih, "content-type").is_some_and(|c| c.starts_with("multipart/")) {
                    return Err("A change set cannot contain another change set or batch.".into());
                }
                let part = http_part(&ih, &icontent)?;
                if part.method == "GET" {
                    return Err("A change set cannot contain a GET request.".into());
                }
                set.push(part);
            }
            items.push(Item::ChangeSet(set));
        } else if ct.starts_with("application/http") {
            items.push(Item::One(http_part(&h, &content)?));
        } else {
            return Err(format!(
                "A batch part has Content-Type '{ct}', not application/http or multipart/mixed."
            ));
        }
    }
    Ok(items)
}

fn boundary_of(ct: &str) -> Result<String, String> {
    boundary(ct).ok_or_else(|| "A multipart part has no boundary.".to_string())
}

/// The path+query a part's URL names, resolved against the service root.
fn target(url: &str, root: &str, ids: &[(String, String)]) -> String {
    let path = match url.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]).to_string(),
        None if url.starts_with('/') => url.to_string(),
        None => format!("{root}/{url}"),
    };
    // `$1/...` names the record created by Content-ID 1.
    match path.strip_prefix(&format!("{root}/$")) {
        Some(rest) => {
            let (id, tail) = rest
                .split_once(['/', '?'])
                .map_or((rest, ""), |(a, _)| (a, &rest[a.len()..]));
            match ids.iter().find(|(c, _)| c == id) {
                Some((_, entity)) => format!("{entity}{tail}"),
                None => path,
            }
        }
        None => path,
    }
}

pub async fn dataverse(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    run(app, headers, body, Service::Dataverse).await
}

pub async fn fno(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    run(app, headers, body, Service::Fno).await
}

struct Done {
    status: u16,
    reason: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    content_id: Option<String>,
}

async fn execute(app: &App, outer: &HeaderMap, part: &Part, path: &str, ids: &[(String, String)]) -> Done {
    let mut body = part.body.clone();
    for (c, entity) in ids {
        // "@odata.bind": "$1" names the record created by Content-ID 1.
        body = body.replace(&format!("\"${c}\""), &format!("\"{entity}\""));
    }
    let method = Method::from_bytes(part.method.as_bytes()).unwrap_or(Method::GET);
    let mut rb = Request::builder().method(method).uri(path);
    for k in ["authorization", "host", "x-forwarded-host", "x-forwarded-proto"] {
        if let Some(v) = outer.get(k) {
            rb = rb.header(k, v);
        }
    }
    for (k, v) in &part.headers {
        if k != "authorization" && k != "host" && k != "content-length" {
            rb = rb.header(k.as_str(), v.as_str());
        }
    }
    let req = match rb.body(Body::from(body)) {
        Ok(r) => r,
        Err(e) => {
            return failed(
                format!(
                    "The batch request '{} {}' is not valid: {e}",
                    part.method, part.url
                ),
                part,
            );
        }
    };
    let Some(router) = app.router.get().cloned() else {
        return failed("The router is not ready.".into(), part);
    };
    let resp = match router.oneshot(req).await {
        Ok(r) => r,
        Err(e) => match e {},
    };
    let status = resp.status();
    let headers = resp
        .headers()
        .iter()
        .filter(|(k, _)| k.as_str() != "content-length")
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let body = axum::body::to_bytes(resp.into_body(), 64 << 20)
        .await
        .map(|b| b.to_vec())
        .unwrap_or_default();
    Done {
        status: status.as_u16(),
        reason: status.canonical_reason().unwrap_or("").to_string(),
        headers,
        body,
        content_id: part.content_id.clone(),
    }
}

fn failed(msg: String, part: &Part) -> Done {
    Done {
        status: 400,
        reason: "Bad Request".into(),
        headers: vec![(
            "content-type".into(),
            "application/json; odata.metadata=minimal".into(),
        )],
        body: serde_json::json!({"error": {"code": "0x80060888", "message": msg}})
            .to_string()
            .into_bytes(),
        content_id: part.content_id.clone(),
    }
}

fn write_part(out: &mut String, d: &Done) {
    out.push_str("Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n");
    if let Some(c) = &d.content_id {
        out.push_str(&format!("Content-ID: {c}\r\n"));
    }
    out.push_str(&format!("\r\nHTTP/1.1 {} {}\r\n", d.status, d.reason));
    for (k, v) in &d.headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(&String::from_utf8_lossy(&d.body));
    out.push_str("\r\n");
}

enum Out {
    One(Done),
    Set(Vec<Done>),
}

async fn run(app: App, headers: HeaderMap, body: Bytes, service: Service) -> Response {
    let ct = header(&headers, "content-type").unwrap_or("");
    if ct.starts_with("application/json") {
        return wire::not_modelled(service, "A JSON-format $batch");
    }
    let Some(b) = boundary(ct).filter(|_| ct.starts_with("multipart/mixed")) else {
        return error(
            service,
            StatusCode::BAD_REQUEST,
            "A $batch needs Content-Type: multipart/mixed; boundary=...",
        );
    };
    let text = String::from_utf8_lossy(&body).into_owned();
    let items = match parse(&text, &b) {
        Ok(i) => i,
        Err(e) => return error(service, StatusCode::BAD_REQUEST, &e),
    };
    let n: usize = items
        .iter()
        .map(|i| match i {
            Item::One(_) => 1,
            Item::ChangeSet(s) => s.len(),
        })
        .sum();
    if n > 1000 {
        return error(
            service,
            StatusCode::BAD_REQUEST,
            "The number of requests in a $batch exceeds the limit of 1000.",
        );
    }
    let root = if service == Service::Dataverse {
        super::dataverse::API
    } else {
        "/data"
    };
    let keep_going = wire::prefers(&headers, "odata.continue-on-error");
    let mut outs: Vec<Out> = Vec::new();
    let mut failed_at: Option<Out> = None;
    for item in items {
        match item {
            Item::One(p) => {
                let d = execute(&app, &headers, &p, &target(&p.url, root, &[]), &[]).await;
                let bad = d.status >= 400;
                if bad && !keep_going {
                    failed_at = Some(Out::One(d));
                    break;
                }
                outs.push(Out::One(d));
            }
            Item::ChangeSet(parts) => {
                let checkpoint = app.with(|st| st.checkpoint());
                let mut ids: Vec<(String, String)> = Vec::new();
                let mut done = Vec::new();
                let mut failure = None;
                for p in &parts {
                    let d = execute(&app, &headers, p, &target(&p.url, root, &ids), &ids).await;
                    if d.status >= 400 {
                        failure = Some(d);
                        break;
                    }
                    if let (Some(c), Some((_, e))) = (
                        &p.content_id,
                        d.headers
                            .iter()
                            .find(|(k, _)| k == "odata-entityid" || k == "location"),
                    ) {
                        let path = e
                            .split_once("://")
                            .and_then(|(_, r)| r.find('/').map(|i| r[i..].to_string()))
                            .unwrap_or_else(|| e.clone());
                        ids.push((c.clone(), path));
                    }
                    done.push(d);
                }
                if let Some(f) = failure {
                    app.with(|st| st.restore(checkpoint));
                    if !keep_going {
                        failed_at = Some(Out::Set(vec![f]));
                        break;
                    }
                    outs.push(Out::Set(vec![f]));
                } else {
                    outs.push(Out::Set(done));
                }
            }
        }
    }
    let status = match (&failed_at, service) {
        (Some(_), Service::Dataverse) => {
            // Dataverse answers 400 with the failing part only.
            outs.clear();
            StatusCode::BAD_REQUEST
        }
        _ => StatusCode::OK,
    };
    outs.extend(failed_at);
    let id = app.with(|st| st.next_guid());
    let bb = format!("batchresponse_{id}");
    let mut out = String::new();
    for o in &outs {
        out.push_str(&format!("--{bb}\r\n"));
        match o {
            Out::One(d) => write_part(&mut out, d),
            Out::Set(ds) => {
                let cs = format!("changesetresponse_{}", app.with(|st| st.next_guid()));
                out.push_str(&format!("Content-Type: multipart/mixed; boundary={cs}\r\n\r\n"));
                for d in ds {
                    out.push_str(&format!("--{cs}\r\n"));
                    write_part(&mut out, d);
                }
                out.push_str(&format!("--{cs}--\r\n"));
            }
        }
    }
    out.push_str(&format!("--{bb}--\r\n"));
    (
        status,
        [("content-type", format!("multipart/mixed; boundary={bb}"))],
        out,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_with_a_change_set_parses_as_dynamics_web_api_sends_it() {
        let body = "\r\n--batch_1\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\nGET https://org.crm.dynamics.com/api/data/v9.2/accounts?$top=2 HTTP/1.1\r\nAccept: application/json\r\n\r\n--batch_1\r\nContent-Type: multipart/mixed;boundary=changeset_2\r\n\r\n--changeset_2\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\nContent-ID: 100001\r\n\r\nPOST https://org.crm.dynamics.com/api/data/v9.2/accounts HTTP/1.1\r\nContent-Type: application/json\r\n\r\n{\"name\":\"x\"}\r\n--changeset_2--\r\n--batch_1--\r\n";
        let items = parse(body, "batch_1").unwrap();
        assert_eq!(items.len(), 2);
        let Item::One(g) = &items[0] else {
            panic!("first part")
        };
        assert_eq!(
            (g.method.as_str(), target(&g.url, "/api/data/v9.2", &[]).as_str()),
            ("GET", "/api/data/v9.2/accounts?$top=2")
        );
        let Item::ChangeSet(s) = &items[1] else {
            panic!("change set")
        };
        assert_eq!(s[0].content_id.as_deref(), Some("100001"));
        assert_eq!(s[0].body, "{\"name\":\"x\"}");
        assert_eq!(get(&s[0].headers, "content-type"), Some("application/json"));
        let ids = vec![("1".to_string(), "/data/X('a')".to_string())];
        assert_eq!(target("$1/Name", "/data", &ids), "/data/X('a')/Name");
        assert_eq!(target("X", "/data", &ids), "/data/X");
        assert!(parse("--b\r\nContent-Type: multipart/mixed; boundary=c\r\n\r\n--c\r\nContent-Type: application/http\r\n\r\nGET X HTTP/1.1\r\n\r\n--c--\r\n--b--", "b").is_err());
    }
}
