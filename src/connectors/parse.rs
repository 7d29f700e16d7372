//! Pure parsers for every body the connectors read. They take bytes or text, never panic, and return
//! [`ParseError`] with a short human reason; callers wrap it into `ConnectorError::BadBody` naming env and call.
//! Unknown fields are ignored everywhere (services add fields over time).

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value};

/// Why a body could not be read. The text is safe to show (it never echoes the body, which may hold a token).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

fn err(s: impl Into<String>) -> ParseError {
    ParseError(s.into())
}

/// Parses JSON, describing truncation and syntax errors by position only.
pub fn json(body: &[u8]) -> Result<Value, ParseError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(err("empty body where JSON was expected"));
    }
    serde_json::from_slice(body).map_err(|e| describe(&e))
}

/// Checks that a body is well-formed JSON without building it (the transport's check of a JSON response
/// before it is handed over; a damaged body of an idempotent call is retried like a transient fault).
pub fn check_json(body: &[u8]) -> Result<(), ParseError> {
    serde_json::from_slice::<serde::de::IgnoredAny>(body)
        .map(|_| ())
        .map_err(|e| describe(&e))
}

fn describe(e: &serde_json::Error) -> ParseError {
    if e.is_eof() {
        err(format!(
            "truncated JSON (ended at line {} column {})",
            e.line(),
            e.column()
        ))
    } else {
        err(format!(
            "malformed JSON at line {} column {}: {}",
            e.line(),
            e.column(),
            e.classify_kind()
        ))
    }
}

trait Classify {
    fn classify_kind(&self) -> &'static str;
}
impl Classify for serde_json::Error {
    fn classify_kind(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "I/O error",
            serde_json::error::Category::Syntax => "syntax error",
            serde_json::error::Category::Data => "unexpected data",
            serde_json::error::Category::Eof => "unexpected end",
        }
    }
}

/// True when a body is an HTML page: by content type, or by its first non-blank byte being `<`. An XML
/// answer (Azure Storage's listings: `application/xml`, or a body opening with `<?xml`) is not one, with or
/// without the byte-order mark the service puts before it (Azurite sends none).
pub fn is_html(content_type: Option<&str>, body: &[u8]) -> bool {
    let ct = content_type.map(str::to_ascii_lowercase);
    if ct.as_deref().is_some_and(|c| c.contains("html")) {
        return true;
    }
    if ct.as_deref().is_some_and(|c| c.contains("xml")) {
        return false;
    }
    let start = body
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .map_or(&[][..], |i| &body[i..]);
    start.first() == Some(&b'<') && !start.starts_with(b"<?xml")
}

/// The `<title>` of an HTML page, trimmed and at most 120 characters.
pub fn html_title(body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(&body[..body.len().min(64 * 1024)]);
    let lower = text.to_ascii_lowercase();
    let open = lower.find("<title")?;
    let start = open + lower[open..].find('>')? + 1;
    let end = start + lower[start..].find("</title")?;
    let title: String = text
        .get(start..end)?
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    (!title.is_empty()).then(|| title.chars().take(120).collect())
}

/// Heuristic: the page is a sign-in page (Entra ID, ADFS, a proxy's login form).
pub fn looks_like_sign_in(body: &[u8]) -> bool {
    let text = String::from_utf8_lossy(&body[..body.len().min(64 * 1024)]).to_ascii_lowercase();
    [
        "sign in",
        "sign-in",
        "signin",
        "login",
        "log in",
        "microsoftonline",
        "password",
    ]
    .iter()
    .any(|w| text.contains(w))
}

/// The service's own words from an error body.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServiceMessage {
    pub code: String,
    pub message: String,
}

/// Reads an error body: OData/Dataverse `{"error":{"code","message"}}` or Entra ID
/// `{"error":"invalid_client","error_description":"AADSTS..."}`. `None` when neither shape is present.
pub fn error_message(body: &[u8]) -> Option<ServiceMessage> {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return storage_error(body);
    };
    // Databricks: `{"error_code", "message"}`.
    if let (Some(code), Some(message)) = (
        v.get("error_code").and_then(scalar_string),
        v.get("message").and_then(scalar_string),
    ) {
        return Some(ServiceMessage { code, message });
    }
    match v.get("error")? {
        Value::Object(e) => Some(ServiceMessage {
            code: e.get("code").and_then(scalar_string).unwrap_or_default(),
            message: e.get("message").and_then(scalar_string).unwrap_or_default(),
        }),
        Value::String(code) => Some(ServiceMessage {
            code: code.clone(),
            message: v
                .get("error_description")
                .and_then(scalar_string)
                .unwrap_or_default(),
        }),
        _ => None,
    }
}

/// Azure Storage's XML error: `<Error><Code/><Message/></Error>` (the message's first line).
fn storage_error(body: &[u8]) -> Option<ServiceMessage> {
    let text = String::from_utf8_lossy(body);
    let inner = |tag: &str| {
        let open = format!("<{tag}>");
        let start = text.find(&open)? + open.len();
        let end = text[start..].find(&format!("</{tag}>"))? + start;
        Some(text[start..end].to_owned())
    };
    text.contains("<Error>").then_some(())?;
    Some(ServiceMessage {
        code: inner("Code").unwrap_or_default(),
        message: inner("Message")
            .unwrap_or_default()
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned(),
    })
}

/// A string, number or bool as text (keys and ids come as either).
pub fn scalar_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// An Entra ID token response. `Debug` leaves the token out.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenResponse {
    pub access_token: String,
    pub expires_in: u64,
    pub token_type: String,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("access_token", &"[REDACTED]")
            .field("expires_in", &self.expires_in)
            .field("token_type", &self.token_type)
            .finish()
    }
}

/// Parses `{"token_type":"Bearer","expires_in":3599,"access_token":"..."}`; `expires_in` may be a number or a
/// numeric string (older endpoints).
pub fn token_response(body: &[u8]) -> Result<TokenResponse, ParseError> {
    let v = json(body)?;
    let access_token = v
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| err("token response has no access_token"))?
        .to_owned();
    let expires_in = match v.get("expires_in") {
        Some(Value::Number(n)) => n
            .as_u64()
            .ok_or_else(|| err("expires_in is not a whole number"))?,
        Some(Value::String(s)) => s.trim().parse().map_err(|_| err("expires_in is not a number"))?,
        _ => return Err(err("token response has no expires_in")),
    };
    let token_type = v
        .get("token_type")
        .and_then(Value::as_str)
        .unwrap_or("Bearer")
        .to_owned();
    Ok(TokenResponse {
        access_token,
        expires_in,
        token_type,
    })
}

/// One page of an OData collection.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Collection {
    pub value: Vec<Value>,
    pub next_link: Option<String>,
    /// `@odata.count` when `$count=true` was asked.
    pub count: Option<u64>,
    /// Dataverse `@Microsoft.Dynamics.CRM.totalrecordcount` (-1 when not computed).
    pub total_record_count: Option<i64>,
    /// Dataverse `@Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded`.
    pub limit_exceeded: Option<bool>,
}

/// Parses an OData v4 collection page (F&O and Dataverse).
pub fn collection(body: &[u8]) -> Result<Collection, ParseError> {
    let Value::Object(mut obj) = json(body)? else {
        return Err(err("expected a JSON object with a value array"));
    };
    // Taken, not cloned: a 10,000-row page is the largest thing a connector parses.
    let value = match obj.remove("value") {
        Some(Value::Array(a)) => a,
        _ => return Err(err("collection has no value array")),
    };
    let next_link = obj
        .get("@odata.nextLink")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let count = match obj.get("@odata.count") {
        None => None,
        Some(c) => Some(
            c.as_u64()
                .ok_or_else(|| err("@odata.count is not a whole number"))?,
        ),
    };
    Ok(Collection {
        value,
        next_link,
        count,
        total_record_count: obj
            .get("@Microsoft.Dynamics.CRM.totalrecordcount")
            .and_then(Value::as_i64),
        limit_exceeded: obj
            .get("@Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded")
            .and_then(Value::as_bool),
    })
}

/// Parses a `/$count` body: a bare non-negative integer as text (a UTF-8 BOM and whitespace are tolerated).
pub fn count_text(body: &[u8]) -> Result<u64, ParseError> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let text = std::str::from_utf8(body)
        .map_err(|_| err("count is not UTF-8 text"))?
        .trim();
    if text.is_empty() {
        return Err(err("empty count body"));
    }
    text.parse::<u64>()
        .map_err(|_| err("count body is not a whole number"))
}

/// The `value` of a DMF action envelope as a string, accepting both the flat shape
/// `{"value":"..."}` (the real one per Microsoft's sample client) and the doc's nested `{"value":{"value":"..."}}`.
pub fn dmf_value_string(body: &[u8]) -> Result<String, ParseError> {
    let v = json(body)?;
    match v.get("value") {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Object(inner)) => match inner.get("value") {
            Some(Value::String(s)) => Ok(s.clone()),
            _ => Err(err("nested value is not a string")),
        },
        Some(Value::Null) => Ok(String::new()),
        _ => Err(err("action response has no string value")),
    }
}

/// The `value` of a DMF action envelope as a boolean (`GenerateImportTargetErrorKeysFile`).
pub fn dmf_value_bool(body: &[u8]) -> Result<bool, ParseError> {
    let v = json(body)?;
    match v.get("value") {
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(true),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(false),
        Some(Value::Object(inner)) => inner
            .get("value")
            .and_then(Value::as_bool)
            .ok_or_else(|| err("value is not a boolean")),
        _ => Err(err("action response has no boolean value")),
    }
}

/// The blob to upload a package to, from `GetAzureWriteUrl`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct WriteUrl {
    #[serde(rename = "BlobId")]
    pub blob_id: String,
    #[serde(rename = "BlobUrl")]
    pub blob_url: String,
}

/// Decodes `GetAzureWriteUrl`'s value: a string that itself contains JSON (`{"BlobId","BlobUrl"}`).
pub fn dmf_write_url(body: &[u8]) -> Result<WriteUrl, ParseError> {
    let inner = dmf_value_string(body)?;
    let w: WriteUrl = serde_json::from_str(&inner)
        .map_err(|_| err("GetAzureWriteUrl value is not the expected JSON string with BlobId and BlobUrl"))?;
    if w.blob_url.is_empty() {
        return Err(err("GetAzureWriteUrl returned an empty BlobUrl"));
    }
    Ok(w)
}

/// One entry of `GetExecutionErrors` (our simulator model; real element shape is undocumented, so plain strings
/// and unknown objects are kept as the message).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExecutionError {
    pub entity_name: String,
    pub error_message: String,
    pub record_key: String,
    pub stage: String,
}

/// Parses `GetExecutionErrors`: the value is a string holding a JSON list (or, tolerantly, the list itself).
pub fn dmf_execution_errors(body: &[u8]) -> Result<Vec<ExecutionError>, ParseError> {
    let v = json(body)?;
    let list = match v.get("value") {
        Some(Value::String(s)) if s.trim().is_empty() => return Ok(Vec::new()),
        Some(Value::String(s)) => serde_json::from_str::<Value>(s)
            .map_err(|_| err("GetExecutionErrors value is not a JSON list"))?,
        Some(other) => other.clone(),
        None => return Err(err("GetExecutionErrors response has no value")),
    };
    let Value::Array(items) = list else {
        return Err(err("GetExecutionErrors value is not a list"));
    };
    Ok(items
        .iter()
        .map(|item| match item {
            Value::Object(o) => {
                let f = |k: &str| o.get(k).and_then(scalar_string).unwrap_or_default();
                let mut e = ExecutionError {
                    entity_name: f("entityName"),
                    error_message: f("errorMessage"),
                    record_key: f("recordKey"),
                    stage: f("stage"),
                };
                if e.error_message.is_empty() {
                    e.error_message = item.to_string();
                }
                e
            }
            other => ExecutionError {
                error_message: scalar_string(other).unwrap_or_else(|| other.to_string()),
                ..Default::default()
            },
        })
        .collect())
}

/// Parses `RetrieveTotalRecordCount`: logical name -> count (a snapshot up to 24 h old; a cross-check only).
pub fn retrieve_total_record_count(body: &[u8]) -> Result<Vec<(String, i64)>, ParseError> {
    let v = json(body)?;
    let c = v
        .get("EntityRecordCountCollection")
        .ok_or_else(|| err("no EntityRecordCountCollection"))?;
    let keys = c
        .get("Keys")
        .and_then(Value::as_array)
        .ok_or_else(|| err("no Keys list"))?;
    let values = c
        .get("Values")
        .and_then(Value::as_array)
        .ok_or_else(|| err("no Values list"))?;
    if keys.len() != values.len() {
        return Err(err("Keys and Values differ in length"));
    }
    keys.iter()
        .zip(values)
        .map(|(k, v)| {
            Ok((
                k.as_str().ok_or_else(|| err("a key is not a string"))?.to_owned(),
                v.as_i64().ok_or_else(|| err("a value is not an integer"))?,
            ))
        })
        .collect()
}

/// The first row's field of a FetchXML aggregate result (`value[0].<alias>`).
pub fn fetchxml_aggregate(body: &[u8], alias: &str) -> Result<u64, ParseError> {
    let c = collection(body)?;
    let row = c.value.first().ok_or_else(|| err("aggregate returned no row"))?;
    row.get(alias)
        .and_then(Value::as_u64)
        .ok_or_else(|| err(format!("aggregate row has no whole-number {alias}")))
}

/// A JSON object body (Dataverse create with `return=representation`, WhoAmI, gateway map).
pub fn object(body: &[u8]) -> Result<Map<String, Value>, ParseError> {
    match json(body)? {
        Value::Object(o) => Ok(o),
        _ => Err(err("expected a JSON object")),
    }
}

/// Parses `Retry-After`: delta-seconds or an HTTP date (relative to `now`). Past dates give zero.
pub fn retry_after(value: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Ok(secs) = value.parse::<f64>()
        && secs.is_finite()
        && secs >= 0.0
    {
        return Some(Duration::from_secs_f64(secs.min(86_400.0)));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let delta = at.with_timezone(&chrono::Utc) - now;
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

/// One row of a keyed read: the text of its key and of each wanted field, in the order asked for (see
/// [`keyed_collection`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeyedRow {
    pub key: String,
    pub values: Vec<String>,
}

/// A field a keyed read keeps, and the value map its text goes through (an F&O enum member → the Dataverse
/// option it maps to; a member the map lacks becomes `<member> (unmapped)`).
#[derive(Debug, Clone, Copy)]
pub struct KeyedField<'a> {
    pub name: &'a str,
    pub values: Option<&'a std::collections::BTreeMap<String, i64>>,
}

/// The text a value compares as: a string as is, null or absent as empty, anything else as JSON writes it.
pub fn value_text(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// The `@odata.nextLink` of a page whose last member it is, as the services write it (`…],"@odata.nextLink":
/// "…"}`), found from the end of the body without parsing the rows: the next page can be asked for while this
/// one is parsed. `None` when the body does not end that way (no link, or another layout); the caller still
/// takes the link the full parse finds, so this is only ever a head start.
pub fn trailing_next_link(body: &[u8]) -> Option<String> {
    const NAME: &[u8] = b"\"@odata.nextLink\"";
    let trim = |b: &[u8]| -> usize {
        b.iter()
            .rposition(|c| !c.is_ascii_whitespace())
            .map_or(0, |i| i + 1)
    };
    let end = trim(body);
    let body = body.get(..end)?;
    let body = body.strip_suffix(b"}")?;
    let body = &body[..trim(body)];
    // The link's closing quote, then back to its opening quote (one not escaped by an odd run of `\\`).
    let close = body.len().checked_sub(1).filter(|&i| body[i] == b'"')?;
    let mut open = close;
    loop {
        open = body[..open].iter().rposition(|&c| c == b'"')?;
        let slashes = body[..open].iter().rev().take_while(|&&c| c == b'\\').count();
        if slashes % 2 == 0 {
            break;
        }
    }
    let before = &body[..trim(&body[..open])];
    let before = before.strip_suffix(b":")?;
    let before = &before[..trim(before)];
    let before = before.strip_suffix(NAME)?;
    let before = &before[..trim(before)];
    if !before.ends_with(b",") && !before.ends_with(b"{") {
        return None;
    }
    serde_json::from_slice::<String>(&body[open..=close]).ok()
}

/// Parses an OData collection page straight into [`KeyedRow`]s, with its `@odata.nextLink`: only the key and the
/// wanted fields of each row are kept (as [`value_text`] gives them), without building the rows as JSON values
/// first, so a 10,000-row page costs a few strings a row. Same errors as [`collection`]; a row that is not an
/// object is skipped, as there.
pub fn keyed_collection(
    body: &[u8],
    key: &str,
    fields: &[KeyedField<'_>],
) -> Result<(Vec<KeyedRow>, Option<String>), ParseError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(err("empty body where JSON was expected"));
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let page = serde::de::DeserializeSeed::deserialize(keyed::PageSeed { key, fields }, &mut de)
        .and_then(|p| de.end().map(|()| p))
        .map_err(|e| describe(&e))?;
    match page {
        keyed::Page::NotObject => Err(err("expected a JSON object with a value array")),
        keyed::Page::NoValue => Err(err("collection has no value array")),
        keyed::Page::Rows(rows, next) => Ok((rows, next)),
    }
}

mod keyed {
    //! The serde visitors behind [`super::keyed_collection`].
    use super::{KeyedField, KeyedRow, value_text};
    use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
    use serde_json::Value;
    use std::borrow::Cow;
    use std::fmt;

    /// A visitor's answer to any scalar (a string, a number, a boolean or null): `$v`, the "not what was wanted"
    /// value of that visitor.
    macro_rules! scalars_are {
        ($v:expr) => {
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok($v)
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok($v)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok($v)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok($v)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok($v)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok($v)
            }
        };
    }

    pub enum Page {
        NotObject,
        NoValue,
        Rows(Vec<KeyedRow>, Option<String>),
    }

    pub struct PageSeed<'f> {
        pub key: &'f str,
        pub fields: &'f [KeyedField<'f>],
    }

    impl<'de> DeserializeSeed<'de> for PageSeed<'_> {
        type Value = Page;
        fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Page, D::Error> {
            d.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for PageSeed<'_> {
        type Value = Page;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an OData collection")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Page, A::Error> {
            let (mut rows, mut next) = (None, None);
            while let Some(k) = map.next_key::<Cow<'de, str>>()? {
                match k.as_ref() {
                    "value" => {
                        rows = map.next_value_seed(RowsSeed {
                            key: self.key,
                            fields: self.fields,
                        })?;
                    }
                    "@odata.nextLink" => next = map.next_value::<Option<String>>()?,
                    _ => {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
            }
            Ok(match rows {
                Some(rows) => Page::Rows(rows, next),
                None => Page::NoValue,
            })
        }
        // Anything but an object: read to the end (so a syntax error is still reported), then refused.
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Page, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(Page::NotObject)
        }
        scalars_are!(Page::NotObject);
    }

    /// The `value` member: `Some(rows)` for an array, `None` for anything else.
    struct RowsSeed<'f> {
        key: &'f str,
        fields: &'f [KeyedField<'f>],
    }

    impl<'de> DeserializeSeed<'de> for RowsSeed<'_> {
        type Value = Option<Vec<KeyedRow>>;
        fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for RowsSeed<'_> {
        type Value = Option<Vec<KeyedRow>>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an array of rows")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut rows = Vec::with_capacity(seq.size_hint().unwrap_or(0));
            while let Some(row) = seq.next_element_seed(RowSeed {
                key: self.key,
                fields: self.fields,
            })? {
                rows.extend(row);
            }
            Ok(Some(rows))
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            Ok(None)
        }
        scalars_are!(None);
    }

    /// One row: `Some` for an object, `None` (skipped) for anything else.
    struct RowSeed<'f> {
        key: &'f str,
        fields: &'f [KeyedField<'f>],
    }

    impl<'de> DeserializeSeed<'de> for RowSeed<'_> {
        type Value = Option<KeyedRow>;
        fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for RowSeed<'_> {
        type Value = Option<KeyedRow>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a row")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut row = KeyedRow {
                key: String::new(),
                values: vec![String::new(); self.fields.len()],
            };
            while let Some(k) = map.next_key::<Cow<'de, str>>()? {
                let k = k.as_ref();
                if k == self.key {
                    row.key = map.next_value::<Text>()?.0;
                } else if let Some(i) = self.fields.iter().position(|f| f.name == k) {
                    let t = map.next_value::<Text>()?;
                    row.values[i] = match (self.fields[i].values, t.1) {
                        (Some(vm), true) => match vm.get(&t.0) {
                            Some(n) => n.to_string(),
                            None => format!("{} (unmapped)", t.0),
                        },
                        _ => t.0,
                    };
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            // A field named twice keeps the last, as a JSON object does; the key field asked for as a compared
            // field too gets its text in both places.
            if let Some(i) = self.fields.iter().position(|f| f.name == self.key) {
                row.values[i].clone_from(&row.key);
            }
            Ok(Some(row))
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(None)
        }
        scalars_are!(None);
    }

    /// A value's text ([`value_text`]) and whether it was a JSON string.
    struct Text(String, bool);

    impl<'de> de::Deserialize<'de> for Text {
        fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_any(TextVisitor)
        }
    }

    struct TextVisitor;

    impl<'de> Visitor<'de> for TextVisitor {
        type Value = Text;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a JSON value")
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<Text, E> {
            Ok(Text(s.to_owned(), true))
        }
        fn visit_string<E: de::Error>(self, s: String) -> Result<Text, E> {
            Ok(Text(s, true))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Text, E> {
            Ok(Text(String::new(), false))
        }
        fn visit_none<E: de::Error>(self) -> Result<Text, E> {
            Ok(Text(String::new(), false))
        }
        fn visit_bool<E: de::Error>(self, b: bool) -> Result<Text, E> {
            Ok(Text(value_text(Some(&Value::Bool(b))), false))
        }
        fn visit_i64<E: de::Error>(self, n: i64) -> Result<Text, E> {
            Ok(Text(value_text(Some(&Value::from(n))), false))
        }
        fn visit_u64<E: de::Error>(self, n: u64) -> Result<Text, E> {
            Ok(Text(value_text(Some(&Value::from(n))), false))
        }
        fn visit_f64<E: de::Error>(self, n: f64) -> Result<Text, E> {
            Ok(Text(value_text(Some(&Value::from(n))), false))
        }
        // An object or an array compares as the JSON it is (rare: a compared field is a scalar).
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Text, A::Error> {
            let v = Value::deserialize(de::value::MapAccessDeserializer::new(map))?;
            Ok(Text(value_text(Some(&v)), false))
        }
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Text, A::Error> {
            let v = Value::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
            Ok(Text(value_text(Some(&v)), false))
        }
    }

    use serde::Deserialize as _;
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
