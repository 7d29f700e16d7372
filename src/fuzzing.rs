//! Entry points for the fuzz targets under `fuzz/` and for `tests/it/app/fuzz_regress.rs`, which replays
//! every kept corpus and crasher input on the stable toolchain.
//!
//! Each `pub fn NAME(data: &[u8])` feeds the bytes to the crate's real parsing functions (never a
//! copy of them) and returns nothing: the contract under test is "no panic, no hang, no unbounded
//! allocation, whatever the bytes". Results are looked at only where a parser promises something
//! checkable without a second implementation (an error text never echoes the body; a valid
//! runbook always plans).
//!
//! Not a stable API: the module exists for the fuzzers and is hidden from the docs.

use crate::connectors::{dmf, dual_write, parse};
use crate::runbook::{self, EnvLookup};

/// A fuzz entry: any bytes, no panic.
pub type Entry = fn(&[u8]);

/// Every target by name, for the regression test and the campaign script (`fuzz/fuzz_targets/NAME.rs`
/// calls the function of the same name).
pub const TARGETS: &[(&str, Entry)] = &[
    ("runbook", runbook),
    ("token_response", token_response),
    ("fno_odata", fno_odata),
    ("dmf", dmf),
    ("dataverse", dataverse),
    ("dual_write", dual_write),
    ("error_body", error_body),
    ("sim_scenario", sim_scenario),
    ("caps", caps),
    ("dmf_package", dmf_package),
];

/// Every `${NAME}` resolves to a fixed value, so validation reaches the checks after variables.
struct AnyVar;

impl EnvLookup for AnyVar {
    fn get(&self, name: &str) -> Option<String> {
        Some(if name.ends_with("_URL") {
            "https://fuzz.example.com".to_owned()
        } else {
            format!("fuzz-{name}")
        })
    }
}

/// Runbook bytes → load → validate (lenient and strict) → plan when there is no error.
pub fn runbook(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let loaded = runbook::load(&text, "fuzz.yaml");
    let diags = runbook::validate_loaded(&loaded, "fuzz.yaml", &AnyVar, true);
    let _ = runbook::validate_loaded(&loaded, "fuzz.yaml", &|_: &str| None, false);
    let _ = runbook::validate::package_diagnostics(&loaded, "fuzz.yaml", &|_| {
        runbook::validate::PackageFile::Bytes(crate::util::dmf_package::build_package(
            "G",
            Some("1.0.0"),
            &[("Customer groups", 1, 1, 1), ("Customers V3", 1, 1, 2)],
        ))
    });
    for d in &diags {
        let _ = d.render(Some(&text));
    }
    if let Some(rb) = &loaded.runbook
        && !diags.iter().any(runbook::Diagnostic::is_error)
    {
        let p = runbook::plan::plan(rb);
        let _ = runbook::plan::render_text(&p);
    }
}

/// Entra ID token responses.
pub fn token_response(data: &[u8]) {
    if let Err(e) = parse::token_response(data) {
        assert_no_echo(data, &e.0);
    }
}

/// F&O OData: `$count` text, collection pages (with `@odata.nextLink`).
pub fn fno_odata(data: &[u8]) {
    let _ = parse::count_text(data);
    let _ = parse::collection(data);
}

/// DMF action results: status and package URL strings, the blob write URL, the target-errors flag and
/// the execution errors.
pub fn dmf(data: &[u8]) {
    if let Ok(s) = parse::dmf_value_string(data) {
        let _ = dmf::ExecutionStatus::parse(&s).is_terminal();
    }
    let _ = parse::dmf_write_url(data);
    let _ = parse::dmf_value_bool(data);
    let _ = parse::dmf_execution_errors(data);
}

/// Dataverse: collection pages, `RetrieveTotalRecordCount`, a FetchXML aggregate, single rows.
pub fn dataverse(data: &[u8]) {
    let _ = parse::collection(data);
    let _ = parse::retrieve_total_record_count(data);
    let _ = parse::fetchxml_aggregate(data, "c");
    let _ = parse::object(data);
}

/// The dual-write gateway: the map list (and a request's status in it), request ids, environments and the
/// initial-sync details.
pub fn dual_write(data: &[u8]) {
    if let Ok(maps) = dual_write::parse_maps(data) {
        for m in &maps {
            let _ = m.state();
        }
        let _ = dual_write::request_status_of("r", maps);
    }
    let _ = dual_write::parse_request_id(data);
    let _ = dual_write::parse_cid(data);
    let _ = dual_write::parse_initial_sync_details(data);
}

/// What every service's error answer goes through: the error body, the HTML-page detection and title,
/// the sign-in heuristic, and `Retry-After` (the first line of the input as the header value).
pub fn error_body(data: &[u8]) {
    let _ = parse::error_message(data);
    let _ = parse::is_html(None, data);
    let _ = parse::html_title(data);
    let _ = parse::looks_like_sign_in(data);
    let text = String::from_utf8_lossy(data);
    if let Some(line) = text.lines().next() {
        let _ = parse::retry_after(line, chrono::DateTime::UNIX_EPOCH);
        let _ = parse::retry_after(line, chrono::Utc::now());
    }
}

/// A DMF package zip: its directory, `Manifest.xml` and `PackageHeader.xml`; the bytes are also tried as the
/// manifest's own text inside a well-formed zip, so the XML reader is reached without a valid archive.
pub fn dmf_package(data: &[u8]) {
    use crate::util::dmf_package as pkg;
    let _ = pkg::read(data);
    let _ = pkg::data_files(data);
    let _ = pkg::read(&pkg::build_zip(&[("Manifest.xml", data)]));
    let _ = pkg::read(&pkg::build_zip(&[
        (
            "Manifest.xml",
            pkg::manifest_xml("G", Some("1"), &[("A", 1, 1, 1)]).as_bytes(),
        ),
        ("PackageHeader.xml", data),
    ]));
}

/// Simulator scenario YAML (the simulator is also given files by users: `cutover sim --scenario`).
pub fn sim_scenario(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = crate::sim::Scenario::from_yaml(&text);
}

/// The bounds on what a service can make the console read: the body cap (declared length and streamed chunks),
/// the page cap and repeated-link check of a listing, and the same-origin rule for a next link. The first three
/// bytes choose the caps (pages 1 to 16, chunk size 1 to 16, body 0 to 65,535 bytes); the rest is streamed as
/// the body and read, line by line, as next links relative to an environment's URL.
pub fn caps(data: &[u8]) {
    use crate::connectors::transport::{CappedBody, Pages, same_origin};
    let [a, b, c, rest @ ..] = data else { return };
    let max_pages = 1 + u32::from(*a % 16);
    let cap = u64::from(u16::from_le_bytes([*b, *c]));
    let chunk = 1 + usize::from(*a / 16);
    let declared = (rest.first().is_some_and(|x| x % 2 == 0)).then_some(rest.len() as u64);
    match CappedBody::new(cap, declared) {
        Err(n) => assert!(n > cap),
        Ok(mut body) => {
            let mut offered = 0u64;
            for piece in rest.chunks(chunk) {
                offered += piece.len() as u64;
                if let Err(over) = body.push(piece) {
                    assert_eq!(over.0, offered);
                    assert!(offered > cap, "refused at {offered} bytes under the cap of {cap}");
                    break;
                }
            }
            assert!(body.len() as u64 <= cap);
            if offered <= cap {
                assert_eq!(body.into_inner(), rest);
            }
        }
    }
    let base = reqwest::Url::parse("https://fuzz.operations.dynamics.com/data/").expect("a fixed URL");
    let mut pages = Pages::new("fuzz", "fuzz.read_all", max_pages);
    let mut followed = std::collections::HashSet::new();
    for line in String::from_utf8_lossy(rest).lines() {
        if let Ok(u) = base.join(line)
            && same_origin(&base, &u)
        {
            assert_eq!(
                (u.scheme(), u.host_str(), u.port_or_known_default()),
                (base.scheme(), base.host_str(), base.port_or_known_default()),
                "{line}"
            );
        }
        if pages.next(line).is_ok() {
            assert!(followed.insert(line.to_owned()), "a link followed twice: {line}");
            assert!(pages.count() <= max_pages);
        }
    }
}

/// A parse error's text must not repeat the body (it may hold a token): a distinctive run of the
/// body's bytes (24 or more, no spaces) must not appear in the message.
fn assert_no_echo(body: &[u8], message: &str) {
    let text = String::from_utf8_lossy(body);
    for word in text.split(|c: char| c.is_whitespace() || c == '"') {
        if word.len() >= 24 {
            assert!(
                !message.contains(word),
                "a parse error echoes the body: {message}"
            );
        }
    }
}
