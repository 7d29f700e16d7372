//! Parser tests: documented sample bodies from d365-api.md, garbage, and arbitrary bytes (never a panic).

use proptest::prelude::*;

use super::*;

#[test]
fn token_response_documented_sample() {
    let t =
        token_response(br#"{ "token_type": "Bearer", "expires_in": 3599, "access_token": "eyJ0eXAi..." }"#)
            .unwrap();
    assert_eq!(
        (t.access_token.as_str(), t.expires_in, t.token_type.as_str()),
        ("eyJ0eXAi...", 3599, "Bearer")
    );
    assert_eq!(
        token_response(br#"{"expires_in":"60","access_token":"x","ext_expires_in":1}"#)
            .unwrap()
            .expires_in,
        60
    );
    assert!(token_response(br#"{"expires_in":60}"#).is_err());
    assert!(token_response(br#"{"access_token":"x"}"#).is_err());
}

#[test]
fn entra_and_odata_error_bodies() {
    let entra = br#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.","error_codes":[7000215],"timestamp":"2026-01-01 00:00:00Z","trace_id":"t","correlation_id":"c"}"#;
    let m = error_message(entra).unwrap();
    assert_eq!(m.code, "invalid_client");
    assert!(m.message.starts_with("AADSTS7000215"));
    let dv = error_message(br#"{"error":{"code":"0x80072322","message":"Number of requests exceeded the limit of 6000 over time window of 300 seconds."}}"#).unwrap();
    assert_eq!(dv.code, "0x80072322");
    assert!(dv.message.contains("6000"));
    assert!(error_message(b"not json").is_none());
    assert!(error_message(br#"{"error":5}"#).is_none());
}

#[test]
fn odata_collection_documented_sample() {
    let body = br#"{ "@odata.context": "https://env/data/$metadata#CustomersV3", "@odata.count": 1234,
      "value": [ { "@odata.etag": "W/\"x\"", "dataAreaId": "usmf", "CustomerAccount": "US-001" } ],
      "@odata.nextLink": "https://env/data/CustomersV3?cross-company=true&$skip=10000" }"#;
    let c = collection(body).unwrap();
    assert_eq!(c.count, Some(1234));
    assert_eq!(c.value.len(), 1);
    assert_eq!(
        c.next_link.as_deref(),
        Some("https://env/data/CustomersV3?cross-company=true&$skip=10000")
    );
    assert!(collection(br#"{"value":{}}"#).is_err());
    assert!(collection(br#"{"value":[],"@odata.count":-1}"#).is_err());
}

#[test]
fn dataverse_count_annotations() {
    let body = br#"{"@odata.count":5000,"@Microsoft.Dynamics.CRM.totalrecordcount":5000,"@Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded":true,"value":[]}"#;
    let c = collection(body).unwrap();
    assert_eq!(
        (c.count, c.total_record_count, c.limit_exceeded),
        (Some(5000), Some(5000), Some(true))
    );
    let rtrc = br#"{"@odata.context":"x","EntityRecordCountCollection":{"Count":2,"IsReadOnly":false,"Keys":["account","contact"],"Values":[19,3]}}"#;
    assert_eq!(
        retrieve_total_record_count(rtrc).unwrap(),
        vec![("account".into(), 19), ("contact".into(), 3)]
    );
    assert_eq!(fetchxml_aggregate(br#"{"value":[{"c":42}]}"#, "c").unwrap(), 42);
    assert!(fetchxml_aggregate(br#"{"value":[]}"#, "c").is_err());
}

#[test]
fn count_text_tolerates_bom_and_whitespace() {
    assert_eq!(count_text(b"12000").unwrap(), 12000);
    assert_eq!(count_text(b"\xEF\xBB\xBF 7\r\n").unwrap(), 7);
    assert!(count_text(b"").is_err());
    assert!(count_text(b"-1").is_err());
    assert!(count_text(b"<html>").is_err());
}

#[test]
fn dmf_values_flat_nested_and_double_encoded() {
    let flat = br#"{"@odata.context":"https://env/data/$metadata#Edm.String","value":"PartiallySucceeded"}"#;
    assert_eq!(dmf_value_string(flat).unwrap(), "PartiallySucceeded");
    let nested = br#"{"value":{"value":"https://blob/x?sig=1"}}"#;
    assert_eq!(dmf_value_string(nested).unwrap(), "https://blob/x?sig=1");
    let write = br#"{"@odata.context":"x","value":"{\"BlobId\":\"{B0B}\",\"BlobUrl\":\"https://acct.blob.core.windows.net/dmf/p.zip?sv=1&sig=2\"}"}"#;
    let w = dmf_write_url(write).unwrap();
    assert_eq!(w.blob_id, "{B0B}");
    assert!(w.blob_url.ends_with("sig=2"));
    assert!(dmf_write_url(br#"{"value":"not json"}"#).is_err());
    assert!(dmf_value_bool(br#"{"value":true}"#).unwrap());
    assert!(!dmf_value_bool(br#"{"value":"false"}"#).unwrap());
    assert!(dmf_value_bool(br#"{"value":"maybe"}"#).is_err());
}

#[test]
fn dmf_execution_errors_shapes() {
    let ours = br#"{"value":"[{\"entityName\":\"Customers V3\",\"errorMessage\":\"bad\",\"recordKey\":\"US-1\",\"stage\":\"Target\"}]"}"#;
    let e = dmf_execution_errors(ours).unwrap();
    assert_eq!(
        (e[0].entity_name.as_str(), e[0].stage.as_str()),
        ("Customers V3", "Target")
    );
    assert_eq!(
        dmf_execution_errors(br#"{"value":["plain message"]}"#).unwrap()[0].error_message,
        "plain message"
    );
    assert!(dmf_execution_errors(br#"{"value":""}"#).unwrap().is_empty());
    assert!(dmf_execution_errors(br#"{"value":"{}"}"#).is_err());
}

#[test]
fn html_is_detected_with_its_title() {
    let page = b"\n  <!DOCTYPE html><html><head><title>Sign in to your account</title></head><body>login.microsoftonline.com</body></html>";
    assert!(is_html(None, page));
    assert!(is_html(Some("text/html; charset=utf-8"), b"{}"));
    assert!(!is_html(Some("application/json"), b"{}"));
    // Azure Storage answers XML (Azurite without the byte-order mark the service sends).
    assert!(!is_html(
        None,
        b"<?xml version=\"1.0\" encoding=\"utf-8\"?><EnumerationResults/>"
    ));
    assert!(!is_html(Some("application/xml"), b"<EnumerationResults/>"));
    assert!(is_html(Some("application/xhtml+xml"), b"<html/>"));
    assert_eq!(html_title(page).as_deref(), Some("Sign in to your account"));
    assert!(looks_like_sign_in(page));
    assert!(!looks_like_sign_in(
        b"<html><title>502 Bad Gateway</title></html>"
    ));
}

#[test]
fn malformed_json_names_the_problem_not_the_body() {
    let e = json(br#"{"access_token":"SECRET-VALUE","#).unwrap_err();
    assert!(e.0.contains("truncated"), "{e}");
    assert!(!e.0.contains("SECRET"));
    assert!(json(b"  ").unwrap_err().0.contains("empty"));
    assert!(json(b"{x}").unwrap_err().0.contains("malformed"));
}

#[test]
fn retry_after_seconds_and_http_date() {
    let now = chrono::DateTime::parse_from_rfc3339("2015-10-21T07:28:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    assert_eq!(retry_after("120", now), Some(Duration::from_secs(120)));
    assert_eq!(
        retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
        Some(Duration::from_secs(30))
    );
    assert_eq!(
        retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
        Some(Duration::ZERO)
    );
    assert_eq!(retry_after("soon", now), None);
}

proptest! {
    #[test]
    fn no_parser_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = json(&bytes);
        let _ = is_html(None, &bytes);
        let _ = html_title(&bytes);
        let _ = looks_like_sign_in(&bytes);
        let _ = error_message(&bytes);
        let _ = token_response(&bytes);
        let _ = collection(&bytes);
        let _ = keyed_collection(&bytes, "k", &[KeyedField { name: "a", values: None }]);
        let _ = count_text(&bytes);
        let _ = dmf_value_string(&bytes);
        let _ = dmf_value_bool(&bytes);
        let _ = dmf_write_url(&bytes);
        let _ = dmf_execution_errors(&bytes);
        let _ = retrieve_total_record_count(&bytes);
        let _ = fetchxml_aggregate(&bytes, "c");
        let _ = object(&bytes);
        let _ = crate::connectors::dual_write::parse_maps(&bytes);
        let _ = crate::connectors::dual_write::parse_cid(&bytes);
        let _ = crate::connectors::dual_write::parse_request_id(&bytes);
        let _ = crate::connectors::dual_write::parse_initial_sync_details(&bytes);
        let _ = retry_after(&String::from_utf8_lossy(&bytes), chrono::Utc::now());
    }

    #[test]
    fn no_parser_panics_on_json_like_text(s in r#"[{}\[\]":,0-9a-zA-Z. \\<>/-]{0,200}"#) {
        let b = s.as_bytes();
        let _ = token_response(b);
        // The keyed parser refuses what the whole-page parser refuses.
        let keyed = keyed_collection(b, "k", &[KeyedField { name: "a", values: None }]);
        prop_assert_eq!(keyed.is_err(), collection(b).is_err());
        let _ = dmf_value_string(b);
        let _ = dmf_write_url(b);
        let _ = dmf_execution_errors(b);
        let _ = html_title(b);
        let _ = crate::connectors::dual_write::parse_maps(b);
        let _ = crate::connectors::dual_write::parse_initial_sync_details(b);
    }

    #[test]
    fn wrapped_dmf_strings_round_trip(s in ".{0,100}") {
        let flat = serde_json::json!({"value": s}).to_string();
        let nested = serde_json::json!({"value": {"value": s}}).to_string();
        prop_assert_eq!(dmf_value_string(flat.as_bytes()).unwrap(), s.clone());
        prop_assert_eq!(dmf_value_string(nested.as_bytes()).unwrap(), s);
    }
}

#[test]
fn a_keyed_page_keeps_what_a_parsed_page_would_compare() {
    let body = br#"{"@odata.context":"x","value":[
        {"@odata.etag":"W/\"1\"","k":"C-1","name":"Caf\u00e9 \"A\"","n":1.50,"b":true,"z":null,"o":{"a":[1,2]},"e":"Active"},
        {"k":"C-2","e":"Gone","n":-3,"name":"x"},
        7,
        {"name":"no key"},
        {"k":"C-3","e":5}
    ],"@odata.nextLink":"https://h/data/X?$skip=3"}"#;
    let vm: std::collections::BTreeMap<String, i64> = [("Active".to_owned(), 1)].into();
    let fields = [
        KeyedField {
            name: "name",
            values: None,
        },
        KeyedField {
            name: "n",
            values: None,
        },
        KeyedField {
            name: "b",
            values: None,
        },
        KeyedField {
            name: "z",
            values: None,
        },
        KeyedField {
            name: "o",
            values: None,
        },
        KeyedField {
            name: "missing",
            values: None,
        },
        KeyedField {
            name: "e",
            values: Some(&vm),
        },
    ];
    let (rows, next) = keyed_collection(body, "k", &fields).unwrap();
    assert_eq!(next.as_deref(), Some("https://h/data/X?$skip=3"));
    // What the row-by-row path gives: a parsed page, each field's text, the enum through its value map.
    let page = collection(body).unwrap();
    let expected: Vec<KeyedRow> = page
        .value
        .iter()
        .filter_map(Value::as_object)
        .map(|r| KeyedRow {
            key: value_text(r.get("k")),
            values: fields
                .iter()
                .map(|f| match (f.values, r.get(f.name).and_then(Value::as_str)) {
                    (Some(vm), Some(s)) => vm.get(s).map_or(format!("{s} (unmapped)"), i64::to_string),
                    _ => value_text(r.get(f.name)),
                })
                .collect(),
        })
        .collect();
    assert_eq!(rows, expected);
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[0].values[0], "Café \"A\"");
    assert_eq!(rows[0].values[1], "1.5");
    assert_eq!(rows[0].values[6], "1");
    assert_eq!(rows[1].values[6], "Gone (unmapped)");
    assert_eq!(
        rows[3].values[6], "5",
        "a number is not looked up in the value map"
    );
    assert_eq!(
        rows[2].key, "",
        "a row without its key is kept with an empty key (the store leaves it out)"
    );
}

#[test]
fn a_keyed_page_is_refused_as_a_parsed_page_would_be() {
    let f = [KeyedField {
        name: "a",
        values: None,
    }];
    for body in [
        &b"[1,2]"[..],
        b"{\"value\":3}",
        b"{\"x\":1}",
        b"  ",
        b"{\"value\":[{\"k\":1}",
        b"{\"value\":[]} x",
    ] {
        let keyed = keyed_collection(body, "k", &f).map(|_| ()).unwrap_err();
        let parsed = collection(body).map(|_| ()).unwrap_err();
        assert_eq!(keyed, parsed, "{}", String::from_utf8_lossy(body));
    }
    let (rows, next) = keyed_collection(b"{\"value\":[]}", "k", &f).unwrap();
    assert!(rows.is_empty() && next.is_none());
}

#[test]
fn a_next_link_written_last_is_found_from_the_end_and_agrees_with_the_parse() {
    let fields = [];
    for body in [
        r#"{"@odata.context":"c","value":[{"k":"a"}],"@odata.nextLink":"https://h/data/S?$skip=1"}"#,
        "{\"value\":[{\"k\":\"a\"}] , \"@odata.nextLink\" : \"https://h/data/S?$skip=1\" }\n",
        r#"{"value":[{"k":"a\\"}],"@odata.nextLink":"https:\/\/h\/data\/S?$skip=1"}"#,
    ] {
        let early = trailing_next_link(body.as_bytes());
        let (_, parsed) = keyed_collection(body.as_bytes(), "k", &fields).unwrap();
        assert_eq!(early.as_deref(), Some("https://h/data/S?$skip=1"), "{body}");
        assert_eq!(early, parsed, "{body}");
    }
}

#[test]
fn no_next_link_is_guessed_where_the_page_does_not_end_with_one() {
    for body in [
        // The link before the rows (a layout the services do not use): the parse finds it, the scan does not.
        r#"{"@odata.nextLink":"https://h/n","value":[]}"#,
        // A row value that looks like a link member, inside a string.
        r#"{"value":[{"k":"x\",\"@odata.nextLink\":\"https://evil/\"}"}]}"#,
        // A nested object's member, not the page's.
        r#"{"value":[{"k":"a","@odata.nextLink":"https://h/n"}]}"#,
        r#"{"value":[]}"#,
        r#"{"value":[],"@odata.nextLink":"unterminated}"#,
        "",
        "}",
        r#""@odata.nextLink":"x"}"#,
    ] {
        assert_eq!(trailing_next_link(body.as_bytes()), None, "{body}");
    }
}
