//! Canonical JSON straight from `Serialize`, without building a `serde_json::Value` first.
//!
//! [`to_canonical_json`] writes the same bytes as
//! [`canonical_json`](super::chain::canonical_json)`(&serde_json::to_value(v)?)`: compact, object keys
//! sorted by their UTF-8 bytes at every level, strings escaped by
//! [`push_json_str`](super::chain::push_json_str), numbers printed the way `serde_json::Number`
//! prints them. It is the journal's hot path (one call per appended event) and skips the value
//! tree's allocations: each object is written field by field into the output, then its entries are
//! reordered in place. Anything outside what the journal's events use (bytes, non-string map keys,
//! 128-bit integers, duplicate keys) is refused with [`CanonError`], and the caller falls back to
//! the `Value` path, so the two can never disagree silently. `tests/it/journal/encoding.rs` checks the
//! equality on every event kind.

use std::fmt::{Display, Write as _};

use serde::Serialize;
use serde::ser;

use super::chain::{push_json_str, write_value};

/// Refused: the value uses a serde feature this writer does not handle (use the `Value` path).
#[derive(Debug, thiserror::Error)]
#[error("canonical JSON writer: {0}")]
pub struct CanonError(String);

impl ser::Error for CanonError {
    fn custom<T: Display>(msg: T) -> Self {
        CanonError(msg.to_string())
    }
}

fn unsupported(what: &str) -> CanonError {
    CanonError(format!("{what} is not supported"))
}

/// The canonical JSON of `value` (see the module docs).
pub fn to_canonical_json<T: Serialize + ?Sized>(value: &T) -> Result<String, CanonError> {
    let mut out = String::with_capacity(256);
    value.serialize(Canon { out: &mut out })?;
    Ok(out)
}

struct Canon<'a> {
    out: &'a mut String,
}

/// An object being written: entries go out in field order, `end` puts them in key order.
pub struct Object<'a> {
    out: &'a mut String,
    /// Where the object's first entry starts (just after `{`).
    start: usize,
    /// (key, entry span `"key":value` in `out`)
    entries: Vec<(std::borrow::Cow<'static, str>, usize, usize)>,
    /// A struct variant wraps the object in `{"variant": ... }`: one more `}` to close.
    wrapped: bool,
    /// The map key waiting for its value (`serialize_key` then `serialize_value`).
    key: Option<(String, usize)>,
}

impl<'a> Object<'a> {
    fn new(out: &'a mut String, wrapped: bool) -> Self {
        out.push('{');
        let start = out.len();
        Object {
            out,
            start,
            entries: Vec::new(),
            wrapped,
            key: None,
        }
    }

    /// Write `,"key":` (no comma before the first entry); returns where the key starts.
    fn begin(&mut self, key: &str) -> usize {
        if !self.entries.is_empty() {
            self.out.push(',');
        }
        let at = self.out.len();
        push_json_str(self.out, key);
        self.out.push(':');
        at
    }

    fn field<T: Serialize + ?Sized>(
        &mut self,
        key: std::borrow::Cow<'static, str>,
        value: &T,
    ) -> Result<(), CanonError> {
        let at = self.begin(&key);
        value.serialize(Canon { out: self.out })?;
        self.entries.push((key, at, self.out.len()));
        Ok(())
    }

    /// Put the entries in key order (they were written in field order) and close the object.
    fn finish(self) -> Result<(), CanonError> {
        let entries = &self.entries;
        let mut order: Vec<usize> = (0..entries.len()).collect();
        order.sort_by(|&a, &b| entries[a].0.as_bytes().cmp(entries[b].0.as_bytes()));
        if order.windows(2).any(|w| entries[w[0]].0 == entries[w[1]].0) {
            return Err(unsupported("a duplicate object key"));
        }
        if order.iter().enumerate().any(|(i, &j)| i != j) {
            let body: String = self.out[self.start..].to_owned();
            self.out.truncate(self.start);
            for (n, &i) in order.iter().enumerate() {
                if n > 0 {
                    self.out.push(',');
                }
                let (_, a, b) = &entries[i];
                self.out.push_str(&body[a - self.start..b - self.start]);
            }
        }
        self.out.push('}');
        if self.wrapped {
            self.out.push('}');
        }
        Ok(())
    }
}

/// An array being written.
pub struct Array<'a> {
    out: &'a mut String,
    first: bool,
    wrapped: bool,
}

impl Array<'_> {
    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), CanonError> {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        value.serialize(Canon { out: self.out })
    }

    fn finish(self) {
        self.out.push(']');
        if self.wrapped {
            self.out.push('}');
        }
    }
}

impl<'a> Canon<'a> {
    fn int(self, n: impl Display) -> Result<(), CanonError> {
        let _ = write!(self.out, "{n}");
        Ok(())
    }

    /// `{"variant":` before an externally tagged variant's value.
    fn open_variant(&mut self, variant: &str) {
        self.out.push('{');
        push_json_str(self.out, variant);
        self.out.push(':');
    }
}

impl<'a> ser::Serializer for Canon<'a> {
    type Ok = ();
    type Error = CanonError;
    type SerializeSeq = Array<'a>;
    type SerializeTuple = Array<'a>;
    type SerializeTupleStruct = Array<'a>;
    type SerializeTupleVariant = Array<'a>;
    type SerializeMap = Object<'a>;
    type SerializeStruct = Object<'a>;
    type SerializeStructVariant = Object<'a>;

    fn serialize_bool(self, v: bool) -> Result<(), CanonError> {
        self.out.push_str(if v { "true" } else { "false" });
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> Result<(), CanonError> {
        self.int(v)
    }
    fn serialize_i16(self, v: i16) -> Result<(), CanonError> {
        self.int(v)
    }
    fn serialize_i32(self, v: i32) -> Result<(), CanonError> {
        self.int(v)
    }
    fn serialize_i64(self, v: i64) -> Result<(), CanonError> {
        self.int(v)
    }
    fn serialize_u8(self, v: u8) -> Result<(), CanonError> {
        self.int(v)
    }
    fn serialize_u16(self, v: u16) -> Result<(), CanonError> {
        self.int(v)
    }
    fn serialize_u32(self, v: u32) -> Result<(), CanonError> {
        self.int(v)
    }
    fn serialize_u64(self, v: u64) -> Result<(), CanonError> {
        self.int(v)
    }
    fn serialize_i128(self, _: i128) -> Result<(), CanonError> {
        Err(unsupported("i128"))
    }
    fn serialize_u128(self, _: u128) -> Result<(), CanonError> {
        Err(unsupported("u128"))
    }
    fn serialize_f32(self, v: f32) -> Result<(), CanonError> {
        // Exactly what `serde_json::to_value` makes of it (non-finite becomes null).
        write_value(self.out, &serde_json::Value::from(v));
        Ok(())
    }
    fn serialize_f64(self, v: f64) -> Result<(), CanonError> {
        write_value(self.out, &serde_json::Value::from(v));
        Ok(())
    }
    fn serialize_char(self, v: char) -> Result<(), CanonError> {
        push_json_str(self.out, v.encode_utf8(&mut [0u8; 4]));
        Ok(())
    }
    fn serialize_str(self, v: &str) -> Result<(), CanonError> {
        push_json_str(self.out, v);
        Ok(())
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<(), CanonError> {
        Err(unsupported("bytes"))
    }
    fn serialize_none(self) -> Result<(), CanonError> {
        self.out.push_str("null");
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), CanonError> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), CanonError> {
        self.out.push_str("null");
        Ok(())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), CanonError> {
        self.serialize_unit()
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), CanonError> {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), CanonError> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        mut self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), CanonError> {
        self.open_variant(variant);
        value.serialize(Canon { out: self.out })?;
        self.out.push('}');
        Ok(())
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Array<'a>, CanonError> {
        self.out.push('[');
        Ok(Array {
            out: self.out,
            first: true,
            wrapped: false,
        })
    }
    fn serialize_tuple(self, len: usize) -> Result<Array<'a>, CanonError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _: &'static str, len: usize) -> Result<Array<'a>, CanonError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        mut self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Array<'a>, CanonError> {
        self.open_variant(variant);
        self.out.push('[');
        Ok(Array {
            out: self.out,
            first: true,
            wrapped: true,
        })
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Object<'a>, CanonError> {
        Ok(Object::new(self.out, false))
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Object<'a>, CanonError> {
        Ok(Object::new(self.out, false))
    }
    fn serialize_struct_variant(
        mut self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Object<'a>, CanonError> {
        self.open_variant(variant);
        Ok(Object::new(self.out, true))
    }
}

impl ser::SerializeSeq for Array<'_> {
    type Ok = ();
    type Error = CanonError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), CanonError> {
        self.element(value)
    }
    fn end(self) -> Result<(), CanonError> {
        self.finish();
        Ok(())
    }
}

impl ser::SerializeTuple for Array<'_> {
    type Ok = ();
    type Error = CanonError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), CanonError> {
        self.element(value)
    }
    fn end(self) -> Result<(), CanonError> {
        self.finish();
        Ok(())
    }
}

impl ser::SerializeTupleStruct for Array<'_> {
    type Ok = ();
    type Error = CanonError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), CanonError> {
        self.element(value)
    }
    fn end(self) -> Result<(), CanonError> {
        self.finish();
        Ok(())
    }
}

impl ser::SerializeTupleVariant for Array<'_> {
    type Ok = ();
    type Error = CanonError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), CanonError> {
        self.element(value)
    }
    fn end(self) -> Result<(), CanonError> {
        self.finish();
        Ok(())
    }
}

impl ser::SerializeMap for Object<'_> {
    type Ok = ();
    type Error = CanonError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), CanonError> {
        let key = key.serialize(KeyOnly)?;
        let at = self.begin(&key);
        self.key = Some((key, at));
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), CanonError> {
        let (key, at) = self
            .key
            .take()
            .ok_or_else(|| unsupported("a map value without a key"))?;
        value.serialize(Canon { out: self.out })?;
        self.entries.push((key.into(), at, self.out.len()));
        Ok(())
    }
    fn end(self) -> Result<(), CanonError> {
        self.finish()
    }
}

impl ser::SerializeStruct for Object<'_> {
    type Ok = ();
    type Error = CanonError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), CanonError> {
        self.field(key.into(), value)
    }
    fn end(self) -> Result<(), CanonError> {
        self.finish()
    }
}

impl ser::SerializeStructVariant for Object<'_> {
    type Ok = ();
    type Error = CanonError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), CanonError> {
        self.field(key.into(), value)
    }
    fn end(self) -> Result<(), CanonError> {
        self.finish()
    }
}

/// Map keys: strings only (every map the journal writes is keyed by `String`).
struct KeyOnly;

macro_rules! refuse {
    ($($f:ident($t:ty)),* $(,)?) => {
        $(fn $f(self, _: $t) -> Result<String, CanonError> {
            Err(unsupported("a map key that is not a string"))
        })*
    };
}

impl ser::Serializer for KeyOnly {
    type Ok = String;
    type Error = CanonError;
    type SerializeSeq = ser::Impossible<String, CanonError>;
    type SerializeTuple = ser::Impossible<String, CanonError>;
    type SerializeTupleStruct = ser::Impossible<String, CanonError>;
    type SerializeTupleVariant = ser::Impossible<String, CanonError>;
    type SerializeMap = ser::Impossible<String, CanonError>;
    type SerializeStruct = ser::Impossible<String, CanonError>;
    type SerializeStructVariant = ser::Impossible<String, CanonError>;

    fn serialize_str(self, v: &str) -> Result<String, CanonError> {
        Ok(v.to_owned())
    }
    refuse!(
        serialize_bool(bool),
        serialize_i8(i8),
        serialize_i16(i16),
        serialize_i32(i32),
        serialize_i64(i64),
        serialize_u8(u8),
        serialize_u16(u16),
        serialize_u32(u32),
        serialize_u64(u64),
        serialize_f32(f32),
        serialize_f64(f64),
        serialize_char(char),
        serialize_bytes(&[u8]),
        serialize_unit_struct(&'static str),
    );
    fn serialize_none(self) -> Result<String, CanonError> {
        Err(unsupported("a map key that is not a string"))
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<String, CanonError> {
        Err(unsupported("a map key that is not a string"))
    }
    fn serialize_unit(self) -> Result<String, CanonError> {
        Err(unsupported("a map key that is not a string"))
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, _: &'static str) -> Result<String, CanonError> {
        Err(unsupported("a map key that is not a string"))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<String, CanonError> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<String, CanonError> {
        Err(unsupported("a map key that is not a string"))
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, CanonError> {
        Err(unsupported("a map key that is not a string"))
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, CanonError> {
        Err(unsupported("a map key that is not a string"))
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, CanonError> {
        Err(unsupported("a map key that is not a string"))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, CanonError> {
        Err(unsupported("a map key that is not a string"))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, CanonError> {
        Err(unsupported("a map key that is not a string"))
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct, CanonError> {
        Err(unsupported("a map key that is not a string"))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, CanonError> {
        Err(unsupported("a map key that is not a string"))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};

    use serde::ser::SerializeMap as _;
    use serde_json::json;

    use super::*;
    use crate::journal::chain::canonical_json;

    #[derive(Serialize)]
    #[serde(tag = "t", rename_all = "snake_case")]
    enum Tagged {
        Unit,
        Fields { zeta: u8, alpha: Option<String> },
    }

    #[derive(Serialize)]
    enum External {
        New(u64),
        Tuple(i32, f64),
        Fields { b: bool, a: char },
        Plain,
    }

    #[derive(Serialize)]
    struct Mixed {
        z: Vec<Tagged>,
        m: BTreeMap<String, f64>,
        h: HashMap<String, i64>,
        e: Vec<External>,
        a: (u16, String),
        f: f32,
        nan: f64,
    }

    fn same<T: Serialize>(v: &T) {
        let slow = canonical_json(&serde_json::to_value(v).unwrap());
        assert_eq!(to_canonical_json(v).unwrap(), slow);
    }

    #[test]
    fn equals_the_value_path() {
        same(&Mixed {
            z: vec![
                Tagged::Unit,
                Tagged::Fields {
                    zeta: 3,
                    alpha: Some("q\"\\\n\u{1}é".into()),
                },
            ],
            m: BTreeMap::from([("b".into(), 1.0), ("a".into(), -0.5), ("B".into(), 1e300)]),
            h: HashMap::from([("y".into(), -3), ("x".into(), i64::MIN), ("é".into(), 0)]),
            e: vec![
                External::New(u64::MAX),
                External::Tuple(-1, 2.5),
                External::Fields { b: true, a: '"' },
                External::Plain,
            ],
            a: (7, String::new()),
            f: 0.1,
            nan: f64::NAN,
        });
        same(&json!({"b": [1, {"d": null, "c": []}], "a": {}}));
    }

    #[test]
    fn refuses_what_it_does_not_handle() {
        assert!(to_canonical_json(&BTreeMap::from([(1u8, 2u8)])).is_err());
        assert!(to_canonical_json(&serde_bytes_like()).is_err());
        let mut dup = String::new();
        let mut o = Object::new(&mut dup, false);
        o.field("k".into(), &1).unwrap();
        o.serialize_entry("k", &2).unwrap();
        assert!(o.finish().is_err());
    }

    struct Bytes;
    impl Serialize for Bytes {
        fn serialize<S: ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(b"x")
        }
    }
    fn serde_bytes_like() -> Bytes {
        Bytes
    }
}
