//! A DMF data package as a file: the zip's directory, its `Manifest.xml` and `PackageHeader.xml`.
//!
//! Read by `cutover validate`/`plan` (offline), by the `dmf.import` executor before anything is sent, and by the
//! simulator when it is given a package. Every input is untrusted: any bytes give a [`PackageError`] or a
//! [`Manifest`], never a panic, and nothing is allocated beyond [`MAX_XML`] per file.
//!
//! The layout read (see `docs/simulator.md`, "DMF packages"): `Manifest.xml` has the root
//! `DataManagementPackageManifest` with `DefinitionGroupName`, an optional `Version` (the release version a
//! build stamps in: our model, from the seed article) and `PackageEntityList` holding one
//! `DataManagementPackageEntityData` per entity with `EntityName`, `ExecutionUnit`, `LevelInExecutionUnit` and
//! `SequenceInLevel`; `PackageHeader.xml` has the root `DataManagementPackageHeader` with `PackageVersion`
//! (the package *format* version, `2` in exported packages, not a release version). Element names are
//! matched on their local part (any namespace). Files may be UTF-8 or UTF-16 (with a BOM, as exports write).
//! Entities import in the order (`ExecutionUnit`, `LevelInExecutionUnit`, `SequenceInLevel`); entities with the
//! same three numbers run side by side.

use serde::Serialize;

/// The most a manifest or header may inflate to.
pub const MAX_XML: usize = 4 << 20;
/// The deepest element nesting read.
const MAX_DEPTH: usize = 64;

/// Why a package could not be read; the text says what and where, never repeats the file's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageError(pub String);

impl std::fmt::Display for PackageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PackageError {}

fn err<T>(s: impl Into<String>) -> Result<T, PackageError> {
    Err(PackageError(s.into()))
}

/// One entity of the manifest, with its place in the import order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PackageEntity {
    pub name: String,
    pub execution_unit: i64,
    pub level: i64,
    pub sequence: i64,
}

impl PackageEntity {
    /// The import order key: units in turn, levels in turn within a unit, sequences within a level.
    pub fn order(&self) -> (i64, i64, i64) {
        (self.execution_unit, self.level, self.sequence)
    }

    /// `unit/level/sequence`, as the plan shows it.
    pub fn position(&self) -> String {
        format!("{}/{}/{}", self.execution_unit, self.level, self.sequence)
    }
}

/// What a package says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Manifest {
    pub definition_group: Option<String>,
    /// `Manifest.xml`'s `Version`, when the build stamped one.
    pub version: Option<String>,
    /// `PackageHeader.xml`'s `PackageVersion` (the format version), when there is a header.
    pub header_version: Option<String>,
    /// In import order (stable: equal positions keep the manifest's order).
    pub entities: Vec<PackageEntity>,
    /// Every file name in the zip's directory.
    pub files: Vec<String>,
}

impl Manifest {
    /// Entity names in import order.
    pub fn entity_names(&self) -> Vec<String> {
        self.entities.iter().map(|e| e.name.clone()).collect()
    }
}

/// One entry of the zip's central directory.
#[derive(Debug, Clone)]
struct Entry {
    name: String,
    method: u16,
    flags: u16,
    compressed: usize,
    size: usize,
    local: usize,
}

fn u16_at(b: &[u8], i: usize) -> Option<u16> {
    b.get(i..i.checked_add(2)?)
        .map(|s| u16::from_le_bytes([s[0], s[1]]))
}

fn u32_at(b: &[u8], i: usize) -> Option<u32> {
    b.get(i..i.checked_add(4)?)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

fn entries(zip: &[u8]) -> Result<Vec<Entry>, PackageError> {
    const EOCD: [u8; 4] = [0x50, 0x4b, 0x05, 0x06];
    if zip.len() < 22 {
        return err(format!("is not a zip archive ({} bytes)", zip.len()));
    }
    // The end record is within the last 64 KiB + 22 bytes (its comment is at most 65535 bytes).
    let lowest = zip.len().saturating_sub(22 + 0xFFFF);
    let Some(eocd) = (lowest..=zip.len() - 22)
        .rev()
        .find(|&i| zip.get(i..i + 4) == Some(&EOCD[..]))
    else {
        return err("is not a zip archive (no end-of-central-directory record)");
    };
    let (Some(count), Some(offset)) = (u16_at(zip, eocd + 10), u32_at(zip, eocd + 16)) else {
        return err("has a truncated end-of-central-directory record");
    };
    if count == 0xFFFF || offset == 0xFFFF_FFFF {
        return err("is a ZIP64 archive, which is not read");
    }
    let mut at = offset as usize;
    let mut out = Vec::with_capacity(usize::from(count).min(4096));
    for n in 0..count {
        if zip.get(at..at.saturating_add(4)) != Some(&[0x50, 0x4b, 0x01, 0x02][..]) {
            return err(format!("has a broken central directory (entry {})", n + 1));
        }
        let field = |off: usize| u16_at(zip, at + off).map(usize::from);
        let wide = |off: usize| u32_at(zip, at + off).map(|v| v as usize);
        let (
            Some(flags),
            Some(method),
            Some(compressed),
            Some(size),
            Some(nlen),
            Some(xlen),
            Some(clen),
            Some(local),
        ) = (
            u16_at(zip, at + 8),
            u16_at(zip, at + 10),
            wide(20),
            wide(24),
            field(28),
            field(30),
            field(32),
            wide(42),
        )
        else {
            return err(format!("has a truncated central directory (entry {})", n + 1));
        };
        let Some(name) = zip.get(at + 46..at + 46 + nlen) else {
            return err(format!("has a truncated central directory (entry {})", n + 1));
        };
        out.push(Entry {
            name: String::from_utf8_lossy(name).into_owned(),
            method,
            flags,
            compressed,
            size,
            local,
        });
        at += 46 + nlen + xlen + clen;
    }
    Ok(out)
}

fn extract(zip: &[u8], e: &Entry) -> Result<Vec<u8>, PackageError> {
    let name = &e.name;
    if e.flags & 1 != 0 {
        return err(format!("`{name}` is encrypted"));
    }
    if e.size > MAX_XML {
        return err(format!(
            "`{name}` is {} bytes, more than the {MAX_XML} read",
            e.size
        ));
    }
    let l = e.local;
    if zip.get(l..l.saturating_add(4)) != Some(&[0x50, 0x4b, 0x03, 0x04][..]) {
        return err(format!("`{name}` has no local header where the directory says"));
    }
    let (Some(nlen), Some(xlen)) = (u16_at(zip, l + 26), u16_at(zip, l + 28)) else {
        return err(format!("`{name}` has a truncated local header"));
    };
    let start = l + 30 + usize::from(nlen) + usize::from(xlen);
    let Some(data) = start
        .checked_add(e.compressed)
        .and_then(|end| zip.get(start..end))
    else {
        return err(format!("`{name}` is truncated"));
    };
    match e.method {
        0 => Ok(data.to_vec()),
        8 => miniz_oxide::inflate::decompress_to_vec_with_limit(data, MAX_XML)
            .map_err(|x| PackageError(format!("`{name}` does not inflate ({:?})", x.status))),
        m => err(format!(
            "`{name}` uses compression method {m} (only stored and deflate are read)"
        )),
    }
}

/// The package's data files in the zip's directory (every file but the manifest and header), extension dropped:
/// the entities of a package whose manifest lists none. Empty when the directory is unreadable.
pub fn data_files(zip: &[u8]) -> Vec<String> {
    entries(zip)
        .unwrap_or_default()
        .iter()
        .filter_map(|e| {
            let base = e.name.rsplit(['/', '\\']).next().unwrap_or(&e.name);
            let lower = base.to_ascii_lowercase();
            (!base.is_empty() && lower != "manifest.xml" && lower != "packageheader.xml")
                .then(|| base.rsplit_once('.').map_or(base, |(s, _)| s).to_owned())
        })
        .collect()
}

/// Data rows in the package's data files (lines after each file's header line), when every data file reads
/// (stored or deflate, UTF-8 or UTF-16, at most [`MAX_XML`] bytes each); `None` otherwise or without data files.
pub fn record_count(zip: &[u8]) -> Option<u64> {
    let list = entries(zip).ok()?;
    let mut total = 0u64;
    let mut any = false;
    for e in &list {
        let base = e
            .name
            .rsplit(['/', '\\'])
            .next()
            .unwrap_or(&e.name)
            .to_ascii_lowercase();
        if base.is_empty() || base == "manifest.xml" || base == "packageheader.xml" || base.ends_with('/') {
            continue;
        }
        let text = decode(&extract(zip, e).ok()?).ok()?;
        let lines = text.lines().filter(|l| !l.trim().is_empty()).count() as u64;
        total += lines.saturating_sub(1);
        any = true;
    }
    any.then_some(total)
}

/// Reads a package's manifest and header. A zip without `Manifest.xml` is an error; one without
/// `PackageHeader.xml` is read with `header_version: None`; a manifest that lists no entities gets its
/// entities from the data files' names, all at `0/0/0`.
pub fn read(zip: &[u8]) -> Result<Manifest, PackageError> {
    let list = entries(zip)?;
    let find = |n: &str| {
        list.iter().find(|e| {
            e.name
                .rsplit(['/', '\\'])
                .next()
                .is_some_and(|b| b.eq_ignore_ascii_case(n))
        })
    };
    let Some(m) = find("Manifest.xml") else {
        return err("has no Manifest.xml");
    };
    let text = decode(&extract(zip, m)?).map_err(|e| PackageError(format!("Manifest.xml {e}")))?;
    let mut manifest = parse_manifest(&text).map_err(|e| PackageError(format!("Manifest.xml: {e}")))?;
    if let Some(h) = find("PackageHeader.xml") {
        let text = decode(&extract(zip, h)?).map_err(|e| PackageError(format!("PackageHeader.xml {e}")))?;
        manifest.header_version =
            parse_header(&text).map_err(|e| PackageError(format!("PackageHeader.xml: {e}")))?;
    }
    manifest.files = list.iter().map(|e| e.name.clone()).collect();
    if manifest.entities.is_empty() {
        manifest.entities = data_files(zip)
            .into_iter()
            .map(|name| PackageEntity {
                name,
                execution_unit: 0,
                level: 0,
                sequence: 0,
            })
            .collect();
    }
    Ok(manifest)
}

/// UTF-8 (BOM optional) or UTF-16 (BOM, or `<\0` / `\0<` first).
fn decode(b: &[u8]) -> Result<String, String> {
    let utf16 = |le: bool, body: &[u8]| {
        let units = body.chunks_exact(2).map(|c| {
            if le {
                u16::from_le_bytes([c[0], c[1]])
            } else {
                u16::from_be_bytes([c[0], c[1]])
            }
        });
        char::decode_utf16(units)
            .collect::<Result<String, _>>()
            .map_err(|_| "is not valid UTF-16".to_owned())
    };
    let utf8 = |body: &[u8]| {
        std::str::from_utf8(body)
            .map(str::to_owned)
            .map_err(|_| "is not valid UTF-8 or UTF-16".to_owned())
    };
    if let Some(rest) = b.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        utf8(rest)
    } else if let Some(rest) = b.strip_prefix(&[0xFF, 0xFE]) {
        utf16(true, rest)
    } else if let Some(rest) = b.strip_prefix(&[0xFE, 0xFF]) {
        utf16(false, rest)
    } else if b.starts_with(b"<\0") {
        utf16(true, b)
    } else if b.starts_with(b"\0<") {
        utf16(false, b)
    } else {
        utf8(b)
    }
}

/// One XML event with the element path it happened at (local names).
enum Ev {
    Start,
    Text(String),
}

/// Walks the elements of a document, calling `on` with the path of local names for each start tag and each
/// run of text. Comments, processing instructions and CDATA are handled; a DTD is refused.
fn walk(text: &str, mut on: impl FnMut(&[String], Ev) -> Result<(), String>) -> Result<(), String> {
    let s = text;
    let mut i = 0usize;
    let mut stack: Vec<String> = Vec::new();
    let mut roots = 0usize;
    while i < s.len() {
        let rest = &s[i..];
        if !rest.starts_with('<') {
            let end = rest.find('<').unwrap_or(rest.len());
            let raw = &rest[..end];
            if stack.is_empty() {
                if !raw.trim().is_empty() {
                    return Err(format!("has text outside the root element at byte {i}"));
                }
            } else {
                on(&stack, Ev::Text(unescape(raw)))?;
            }
            i += end;
            continue;
        }
        let skip_to = |pat: &str, what: &str| -> Result<usize, String> {
            rest.find(pat)
                .map(|k| k + pat.len())
                .ok_or_else(|| format!("has an unterminated {what} at byte {i}"))
        };
        if rest.starts_with("<?") {
            i += skip_to("?>", "processing instruction")?;
        } else if rest.starts_with("<!--") {
            i += skip_to("-->", "comment")?;
        } else if let Some(body) = rest.strip_prefix("<![CDATA[") {
            let end = body
                .find("]]>")
                .ok_or_else(|| format!("has an unterminated CDATA section at byte {i}"))?;
            if !stack.is_empty() {
                on(&stack, Ev::Text(body[..end].to_owned()))?;
            }
            i += 9 + end + 3;
        } else if rest.starts_with("<!") {
            return Err(format!("has a DTD or declaration at byte {i}, which is not read"));
        } else {
            let end = tag_end(rest).ok_or_else(|| format!("has an unterminated tag at byte {i}"))?;
            let tag = &rest[1..end];
            i += end + 1;
            if let Some(name) = tag.strip_prefix('/') {
                let name = local(name.trim());
                match stack.pop() {
                    Some(open) if open == name => {}
                    Some(open) => {
                        return Err(format!("closes <{name}> where <{open}> is open"));
                    }
                    None => return Err(format!("closes <{name}>, which was never opened")),
                }
                continue;
            }
            let empty = tag.ends_with('/');
            let tag = tag.strip_suffix('/').unwrap_or(tag);
            let raw = tag.split(|c: char| c.is_whitespace()).next().unwrap_or("");
            if raw.is_empty() {
                return Err(format!("has a tag without a name at byte {i}"));
            }
            if stack.is_empty() {
                roots += 1;
                if roots > 1 {
                    return Err("has more than one root element".into());
                }
            }
            if stack.len() >= MAX_DEPTH {
                return Err(format!("nests elements deeper than {MAX_DEPTH}"));
            }
            stack.push(local(raw).to_owned());
            on(&stack, Ev::Start)?;
            if empty {
                stack.pop();
            }
        }
    }
    if let Some(open) = stack.last() {
        return Err(format!("ends with <{open}> still open"));
    }
    if roots == 0 {
        return Err("has no root element".into());
    }
    Ok(())
}

/// The end of a tag (`>` outside quoted attribute values).
fn tag_end(s: &str) -> Option<usize> {
    let mut quote: Option<char> = None;
    for (k, c) in s.char_indices().skip(1) {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '>') => return Some(k),
            (None, '<') => return None,
            _ => {}
        }
    }
    None
}

fn local(name: &str) -> &str {
    name.rsplit(':').next().unwrap_or(name)
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(k) = rest.find('&') {
        out.push_str(&rest[..k]);
        let after = &rest[k + 1..];
        let ent = after.find(';').filter(|e| *e <= 10).map(|e| (&after[..e], e));
        let ch = ent.and_then(|(ent, _)| match ent {
            "lt" => Some('<'),
            "gt" => Some('>'),
            "amp" => Some('&'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => ent
                .strip_prefix("#x")
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| ent.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        });
        match (ch, ent) {
            (Some(c), Some((_, e))) => {
                out.push(c);
                rest = &after[e + 1..];
            }
            _ => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn is(path: &[String], want: &[&str]) -> bool {
    path.len() == want.len() && path.iter().zip(want).all(|(a, b)| a.eq_ignore_ascii_case(b))
}

const ROOT: &str = "DataManagementPackageManifest";
const LIST: &str = "PackageEntityList";
const ITEM: &str = "DataManagementPackageEntityData";

/// Parses `Manifest.xml`'s text.
fn parse_manifest(text: &str) -> Result<Manifest, String> {
    let mut m = Manifest {
        definition_group: None,
        version: None,
        header_version: None,
        entities: Vec::new(),
        files: Vec::new(),
    };
    // (name, unit, level, sequence) as text, per entity in document order.
    let mut raw: Vec<[String; 4]> = Vec::new();
    let mut root_seen = false;
    walk(text, |path, ev| {
        if path.len() == 1 && !root_seen {
            root_seen = true;
            if !path[0].eq_ignore_ascii_case(ROOT) {
                return Err(format!("its root is <{}>, not <{ROOT}>", path[0]));
            }
        }
        match ev {
            Ev::Start if is(path, &[ROOT, LIST, ITEM]) => raw.push(Default::default()),
            Ev::Start => {}
            Ev::Text(t) => {
                let field = |name: &str| is(path, &[ROOT, name]);
                if field("DefinitionGroupName") {
                    m.definition_group.get_or_insert_default().push_str(&t);
                } else if field("Version") {
                    m.version.get_or_insert_default().push_str(&t);
                } else if path.len() == 4 && is(&path[..3], &[ROOT, LIST, ITEM]) {
                    let slot = [
                        "EntityName",
                        "ExecutionUnit",
                        "LevelInExecutionUnit",
                        "SequenceInLevel",
                    ]
                    .iter()
                    .position(|f| path[3].eq_ignore_ascii_case(f));
                    if let (Some(k), Some(e)) = (slot, raw.last_mut()) {
                        if e[k].len() + t.len() > 4096 {
                            return Err(format!("has a <{}> longer than 4096 bytes", path[3]));
                        }
                        e[k].push_str(&t);
                    }
                }
            }
        }
        Ok(())
    })?;
    for (n, [name, unit, level, seq]) in raw.into_iter().enumerate() {
        let name = name.trim().to_owned();
        if name.is_empty() {
            return Err(format!("entity {} of <{LIST}> has no <EntityName>", n + 1));
        }
        let num = |v: &str, what: &str| -> Result<i64, String> {
            let v = v.trim();
            if v.is_empty() {
                return Ok(0);
            }
            v.parse()
                .map_err(|_| format!("entity `{name}` has a <{what}> that is not a whole number"))
        };
        m.entities.push(PackageEntity {
            execution_unit: num(&unit, "ExecutionUnit")?,
            level: num(&level, "LevelInExecutionUnit")?,
            sequence: num(&seq, "SequenceInLevel")?,
            name,
        });
    }
    m.entities.sort_by_key(PackageEntity::order);
    for v in [&mut m.definition_group, &mut m.version] {
        *v = v.take().map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
    }
    Ok(m)
}

/// Parses `PackageHeader.xml`'s text: its `PackageVersion`.
fn parse_header(text: &str) -> Result<Option<String>, String> {
    const HEAD: &str = "DataManagementPackageHeader";
    let mut version: Option<String> = None;
    let mut root_seen = false;
    walk(text, |path, ev| {
        if path.len() == 1 && !root_seen {
            root_seen = true;
            if !path[0].eq_ignore_ascii_case(HEAD) {
                return Err(format!("its root is <{}>, not <{HEAD}>", path[0]));
            }
        }
        if let Ev::Text(t) = ev
            && is(path, &[HEAD, "PackageVersion"])
            && version.as_ref().is_none_or(|v| v.len() < 256)
        {
            version.get_or_insert_default().push_str(&t);
        }
        Ok(())
    })?;
    Ok(version.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()))
}

/// Builds a stored (uncompressed) zip of `files`: for tests, fixtures and the simulator's exports.
pub fn build_zip(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut dir = Vec::new();
    for (name, data) in files {
        let offset = out.len() as u32;
        let crc = crc32(data);
        let (n, len) = (name.len() as u16, data.len() as u32);
        out.extend_from_slice(&[0x50, 0x4b, 0x03, 0x04, 20, 0, 0, 0, 0, 0, 0, 0, 0x21, 0]);
        for v in [crc, len, len] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&n.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(data);
        dir.extend_from_slice(&[0x50, 0x4b, 0x01, 0x02, 20, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0x21, 0]);
        for v in [crc, len, len] {
            dir.extend_from_slice(&v.to_le_bytes());
        }
        dir.extend_from_slice(&n.to_le_bytes());
        dir.extend_from_slice(&[0; 12]);
        dir.extend_from_slice(&offset.to_le_bytes());
        dir.extend_from_slice(name.as_bytes());
    }
    let (at, size) = (out.len() as u32, dir.len() as u32);
    out.extend_from_slice(&dir);
    let count = (files.len() as u16).to_le_bytes();
    out.extend_from_slice(&[0x50, 0x4b, 0x05, 0x06, 0, 0, 0, 0]);
    out.extend_from_slice(&count);
    out.extend_from_slice(&count);
    out.extend_from_slice(&size.to_le_bytes());
    out.extend_from_slice(&at.to_le_bytes());
    out.extend_from_slice(&[0, 0]);
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for &b in data {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0xEDB8_8320
            } else {
                c >> 1
            };
        }
    }
    !c
}

/// A `Manifest.xml` in the layout read, for tests and fixtures: `entities` as (name, unit, level, sequence).
pub fn manifest_xml(group: &str, version: Option<&str>, entities: &[(&str, i64, i64, i64)]) -> String {
    let esc = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    let mut x = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\r\n<DataManagementPackageManifest xmlns:i=\"http://www.w3.org/2001/XMLSchema-instance\" xmlns=\"http://schemas.microsoft.com/dynamics/2015/01/DataManagement\">\r\n  <DefinitionGroupName>{}</DefinitionGroupName>\r\n",
        esc(group)
    );
    if let Some(v) = version {
        x.push_str(&format!("  <Version>{}</Version>\r\n", esc(v)));
    }
    x.push_str("  <PackageEntityList>\r\n");
    for (name, u, l, s) in entities {
        x.push_str(&format!(
            "    <DataManagementPackageEntityData>\r\n      <EntityMapList />\r\n      <EntityName>{}</EntityName>\r\n      <ExecutionUnit>{u}</ExecutionUnit>\r\n      <LevelInExecutionUnit>{l}</LevelInExecutionUnit>\r\n      <SequenceInLevel>{s}</SequenceInLevel>\r\n    </DataManagementPackageEntityData>\r\n",
            esc(name)
        ));
    }
    x.push_str("  </PackageEntityList>\r\n</DataManagementPackageManifest>\r\n");
    x
}

/// The `PackageHeader.xml` exported packages carry (format version 2).
pub const HEADER_XML: &str = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\r\n<DataManagementPackageHeader xmlns:i=\"http://www.w3.org/2001/XMLSchema-instance\" xmlns=\"http://schemas.microsoft.com/dynamics/2015/01/DataManagement\">\r\n  <Description>package</Description>\r\n  <ManifestType>Microsoft.Dynamics.AX.Framework.Tools.DataManagement.Serialization.DataManagementPackageManifest</ManifestType>\r\n  <PackageType>DefinitionGroup</PackageType>\r\n  <PackageVersion>2</PackageVersion>\r\n</DataManagementPackageHeader>\r\n";

/// A whole package in the layout read: manifest, header and one CSV per entity.
pub fn build_package(group: &str, version: Option<&str>, entities: &[(&str, i64, i64, i64)]) -> Vec<u8> {
    let manifest = manifest_xml(group, version, entities);
    let csvs: Vec<(String, Vec<u8>)> = entities
        .iter()
        .map(|(n, ..)| (format!("{n}.csv"), b"KEY\r\n1\r\n".to_vec()))
        .collect();
    let mut files: Vec<(&str, &[u8])> = vec![
        ("Manifest.xml", manifest.as_bytes()),
        ("PackageHeader.xml", HEADER_XML.as_bytes()),
    ];
    files.extend(csvs.iter().map(|(n, d)| (n.as_str(), d.as_slice())));
    build_zip(&files)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_package_reads_its_entities_in_import_order() {
        let zip = build_package(
            "G",
            Some("1.4.2"),
            &[
                ("Customers V3", 1, 2, 1),
                ("Customer groups", 1, 1, 1),
                ("Terms of payment", 1, 1, 2),
            ],
        );
        let m = read(&zip).unwrap();
        assert_eq!(m.version.as_deref(), Some("1.4.2"));
        assert_eq!(m.header_version.as_deref(), Some("2"));
        assert_eq!(m.definition_group.as_deref(), Some("G"));
        assert_eq!(
            m.entity_names(),
            ["Customer groups", "Terms of payment", "Customers V3"]
        );
    }

    #[test]
    fn utf16_manifests_with_a_bom_are_read() {
        let xml = manifest_xml("G", Some("2.0.0"), &[("Currencies", 1, 10, 10)]);
        let mut utf16 = vec![0xFF, 0xFE];
        for u in xml.encode_utf16() {
            utf16.extend_from_slice(&u.to_le_bytes());
        }
        let zip = build_zip(&[("Manifest.xml", &utf16)]);
        let m = read(&zip).unwrap();
        assert_eq!(m.version.as_deref(), Some("2.0.0"));
        assert_eq!(m.header_version, None);
        assert_eq!(m.entity_names(), ["Currencies"]);
    }

    #[test]
    fn deflated_manifests_are_read() {
        let xml = manifest_xml("G", Some("1"), &[("A", 1, 1, 1)]);
        let packed = miniz_oxide::deflate::compress_to_vec(xml.as_bytes(), 6);
        let mut zip = build_zip(&[("Manifest.xml", &packed)]);
        // Method 8 and the inflated size, in the local header and the directory.
        let dir = zip.len() - 22 - (46 + "Manifest.xml".len());
        for at in [8usize, dir + 10] {
            zip[at..at + 2].copy_from_slice(&8u16.to_le_bytes());
        }
        let size = (xml.len() as u32).to_le_bytes();
        zip[22..26].copy_from_slice(&size);
        zip[dir + 24..dir + 28].copy_from_slice(&size);
        assert_eq!(read(&zip).unwrap().entity_names(), ["A"]);
    }

    #[test]
    fn bad_packages_are_errors_that_say_what() {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"PK".to_vec(), "not a zip"),
            (build_zip(&[("data.csv", b"x")]), "no Manifest.xml"),
            (build_zip(&[("Manifest.xml", b"<Other/>")]), "not <DataManagementPackageManifest>"),
            (build_zip(&[("Manifest.xml", b"<DataManagementPackageManifest>")]), "still open"),
            (
                build_zip(&[(
                    "Manifest.xml",
                    b"<DataManagementPackageManifest><PackageEntityList><DataManagementPackageEntityData><EntityName>A</EntityName><SequenceInLevel>x</SequenceInLevel></DataManagementPackageEntityData></PackageEntityList></DataManagementPackageManifest>",
                )]),
                "not a whole number",
            ),
            (build_zip(&[("Manifest.xml", &[0xC3, 0x28])]), "not valid UTF-8"),
            (build_zip(&[("Manifest.xml", b"<!DOCTYPE x><x/>")]), "DTD"),
        ];
        for (zip, want) in cases {
            let e = read(&zip).unwrap_err().0;
            assert!(e.contains(want), "{e} / {want}");
        }
    }

    #[test]
    fn a_manifest_without_an_entity_list_falls_back_to_the_data_files() {
        let zip = build_zip(&[
            ("Manifest.xml", b"<DataManagementPackageManifest/>"),
            ("Customer groups.csv", b"x"),
        ]);
        assert_eq!(read(&zip).unwrap().entity_names(), ["Customer groups"]);
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
            let _ = read(&bytes);
            let _ = data_files(&bytes);
            let zip = build_zip(&[("Manifest.xml", &bytes)]);
            let _ = read(&zip);
        }

        #[test]
        fn mangled_packages_never_panic(flips in proptest::collection::vec((0usize..2000, proptest::num::u8::ANY), 1..8)) {
            let mut zip = build_package("G", Some("1"), &[("A", 1, 1, 1), ("B", 1, 2, 1)]);
            for (at, b) in flips {
                let n = zip.len();
                zip[at % n] = b;
            }
            let _ = read(&zip);
        }
    }
}
