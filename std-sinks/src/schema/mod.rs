//! Payload schemas: each event's `data` checked against a JSON Schema
//! (draft 2020-12), found by the event's `dataschema` URI, else by its `type`.
//!
//! A [`SchemaRegistry`] holds schemas from three kinds of source, each
//! compiled once (with [`jsonschema`]):
//!
//! - **built-in**: the schemas of the 11 OSSA payloads, shipped in the crate
//!   ([`builtin_schema`]); `$id` = [`ossa::SCHEMA_BASE`] + type + `.json`,
//!   e.g. `https://ossa.dev/schemas/events/v1/dev.ossa.tool.called.json`.
//!   They are *open*: the members of the typed payloads are checked (type,
//!   required), other members are allowed.
//! - **a local directory** ([`SchemaRegistryBuilder::dir`]): every `*.json`
//!   file in it, loaded and compiled when the registry is built; a file
//!   serves the type its name says (`com.acme.order.placed.json`) and the URI
//!   its `$id` says. A file that does not parse or compile fails the build.
//!   A file without `$id` has its `file://` URI (absolute, percent-encoded)
//!   as its URI and as the base of its `$ref`s, as JSON Schema says of a
//!   document retrieved without `$id`: `"$ref": "common.json#/$defs/sku"`
//!   finds the file beside it, `"../shared/qty.json"` the one above (read
//!   when the registry is built, whether or not its directory is loaded).
//! - **an HTTP registry** ([`HttpRegistry`]): fetched on first use, by a
//!   background thread, never on the caller's thread; cached, refreshed in the
//!   background after [`HttpRegistry::refresh`] (the old schema stays in use
//!   meanwhile and when the refresh fails).
//!
//! Which schema an event gets: its `dataschema` URI when a source knows it
//! (built-in or directory `$id`, or a URI under the HTTP registry's base URL);
//! else its `type`: the directory first, then the built-in OSSA schemas, then
//! the HTTP registry.
//!
//! What [`SchemaRegistry::check`] answers, and why:
//!
//! | situation | answer |
//! | --- | --- |
//! | the data matches its schema | `Ok(Checked::Valid { schema })` |
//! | the data breaks it | [`SchemaError::Violation`]: the JSON pointer of the bad value, the keyword (`type`, `required`, …), a message |
//! | no source has a schema for the type (an HTTP registry answered 404) | `Ok(Checked::NoSchema)`: passes, unless [`SchemaRegistryBuilder::require_schema`] makes it [`SchemaError::NoSchema`] |
//! | the schema is being fetched (first use of a remote type) | [`SchemaError::Unavailable`] with reason "being fetched": `check` never waits and never lets an unchecked event pass; [`check_within`](SchemaRegistry::check_within) waits, [`prefetch`](SchemaRegistry::prefetch) warms the cache at start |
//! | the fetch failed (timeout, connection refused, 5xx, a body that is not a schema) | [`SchemaError::Unavailable`] with the reason; tried again after [`HttpRegistry::retry_after`] |
//! | the event's `dataschema` is under the registry's URL and it answers 404 | [`SchemaError::Unavailable`] (a declared schema that does not exist is not a pass) |
//! | binary data (`data_base64`) with a schema | [`SchemaError::NotJson`] |
//!
//! An event without data is checked as `null` (so an OSSA event without its
//! payload is refused: the schemas require an object).
//!
//! Cost: `jsonschema` validates a `serde_json::Value`. For a schema whose
//! root says no more than `type`, `required` and `properties` (the built-in
//! ones), only the members it names are built into that value and the others
//! are skipped while the data is read (a member whose subschema constrains
//! nothing is read as `null`): about 0.4–0.6 µs and 3 allocations for the
//! typical `dev.ossa.tool.called` event, where building the whole value
//! costs 0.7–1.0 µs and 13 allocations. Other schemas get the whole value.
//!
//! ```
//! use ossa_events::schema::{Checked, SchemaError, SchemaRegistry};
//! use ossa_events::{ossa, Event};
//! let schemas = SchemaRegistry::builtin();
//! let good = Event::builder().id("1").source("/a").ty(ossa::TOOL_CALLED).data_json(r#"{"tool":"search"}"#).build()?;
//! assert!(matches!(schemas.check(&good)?, Checked::Valid { .. }));
//! let bad = Event::builder().id("2").source("/a").ty(ossa::TOOL_CALLED).data_json(r#"{"tool":3}"#).build()?;
//! match schemas.check(&bad) {
//!     Err(SchemaError::Violation(v)) => assert_eq!((v.instance_path.as_str(), v.keyword.as_str()), ("/tool", "type")),
//!     other => panic!("{other:?}"),
//! }
//! // Other types have no schema here: they pass (or see `require_schema`).
//! let other = Event::builder().id("3").source("/a").ty("com.example.tick").build()?;
//! assert_eq!(schemas.check(&other)?, Checked::NoSchema);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod builtin;
mod http;

pub use builtin::builtin_schema;
pub use http::{HttpRegistry, RegistryApi};

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError, RwLock, mpsc};
use std::time::{Duration, Instant};

use ossa_events_core::{Data, Event, ossa};
use serde_json::Value;

/// A compiled schema and the URI it is known by.
struct Compiled {
    uri: Arc<str>,
    validator: jsonschema::Validator,
    /// The only members of an object that the schema can look at, when it
    /// says no more than `type`, `required` and `properties` at its root
    /// (see [`members_looked_at`]): the others are skipped when the data is
    /// read, not built into the `Value` (most of a check's cost).
    looks_at: Option<Box<[Member]>>,
    /// The longest chain of in-place steps (`$ref`s, `allOf`, …) from any
    /// of its subschemas: the checking stack grows by about this much per
    /// level of the data (see [`validate`]).
    height: usize,
}

impl Drop for Compiled {
    /// `jsonschema` compiles a recursive `$ref` at each level of the data
    /// it first meets, and drops that chain by recursion: after deep data
    /// under a long in-place chain, dropping the registry overflowed the
    /// stack of whichever thread dropped it last. Such a validator is
    /// dropped on a thread whose stack fits it, as [`validate`] checks.
    fn drop(&mut self) {
        let levels = (ossa_events_core::MAX_DATA_DEPTH + 1).saturating_mul(self.height + 2);
        // Without `$ref`s (height 0) nothing is compiled per level.
        if self.height == 0 || levels <= INLINE_LEVELS {
            return;
        }
        let Ok(empty) = jsonschema::options().build(&Value::Bool(true)) else {
            return;
        };
        let validator = std::mem::replace(&mut self.validator, empty);
        let spawned = std::thread::Builder::new()
            .name("ossa-events-schema-drop".into())
            .stack_size(check_stack(levels))
            .spawn(move || drop(validator));
        if let Ok(t) = spawned {
            let _ = t.join();
        }
    }
}

/// A member a schema can look at.
#[derive(Debug, PartialEq, Eq)]
struct Member {
    name: String,
    /// Whether its value is checked; when not (its subschema constrains
    /// nothing, as `arguments` and `input` of the OSSA schemas), only its
    /// presence counts: it is read as `null`.
    checked: bool,
}

/// Keywords at a schema's root that constrain nothing.
const INERT: [&str; 11] = [
    "$schema",
    "$id",
    "$comment",
    "$defs",
    "definitions",
    "title",
    "description",
    "examples",
    "default",
    "deprecated",
    "readOnly",
];

/// The members of an object `schema` can look at: those of `properties`
/// and `required`, when its root has no other constraining keyword (no
/// `additionalProperties`, `patternProperties`, `$ref`, `allOf`, …: any of
/// them, or one we do not know, means `None`, the whole value is built).
/// Then validating an object with only those members gives the same result
/// as validating it whole.
fn members_looked_at(schema: &Value) -> Option<Box<[Member]>> {
    let root = schema.as_object()?;
    let mut keep: Vec<Member> = Vec::new();
    let inert = |s: &Value| match s {
        Value::Bool(true) => true,
        Value::Object(o) => o.keys().all(|k| INERT.contains(&k.as_str())),
        _ => false,
    };
    for (k, v) in root {
        match k.as_str() {
            "type" => {}
            "properties" => keep.extend(v.as_object()?.iter().map(|(name, sub)| Member {
                name: name.clone(),
                checked: !inert(sub),
            })),
            "required" => {
                for name in v.as_array()? {
                    keep.push(Member {
                        name: name.as_str()?.to_owned(),
                        checked: false,
                    });
                }
            }
            k if INERT.contains(&k) => {}
            _ => return None,
        }
    }
    // A member both required and in `properties`: checked if either says so.
    let mut merged: Vec<Member> = Vec::with_capacity(keep.len());
    for m in keep {
        match merged.iter_mut().find(|x| x.name == m.name) {
            Some(x) => x.checked |= m.checked,
            None => merged.push(m),
        }
    }
    Some(merged.into_boxed_slice())
}

/// Reads JSON text as a `Value`, keeping of a top-level object only the
/// members in `looks_at` (the others are skipped without being built).
fn read_data(text: &str, looks_at: Option<&[Member]>) -> Result<Value, serde_json::Error> {
    match read_data_with(text, looks_at, false) {
        // serde_json stops one level short of the deepest data an event
        // may carry (a `Violation` for valid data): read it again without
        // serde_json's limit when the core says it nests no deeper than that.
        Err(_)
            if ossa_events_core::json::validate(
                text.as_bytes(),
                ossa_events_core::MAX_DATA_DEPTH,
            )
            .is_ok() =>
        {
            read_data_with(text, looks_at, true)
        }
        r => r,
    }
}

/// [`read_data`], with or without serde_json's recursion limit.
fn read_data_with(
    text: &str,
    looks_at: Option<&[Member]>,
    unbounded: bool,
) -> Result<Value, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(text);
    if unbounded {
        de.disable_recursion_limit();
    }
    let v = match looks_at.filter(|_| text.trim_start().starts_with('{')) {
        Some(keep) => serde::Deserializer::deserialize_map(&mut de, Members(keep))?,
        None => serde::Deserialize::deserialize(&mut de)?,
    };
    de.end()?;
    Ok(v)
}

/// Builds an object of the members named in `.0`.
struct Members<'k>(&'k [Member]);

impl<'de> serde::de::Visitor<'de> for Members<'_> {
    type Value = Value;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut m: A) -> Result<Value, A::Error> {
        let mut out = serde_json::Map::new();
        while let Some(key) = m.next_key_seed(Key)? {
            match self.0.iter().find(|k| k.name == *key) {
                Some(k) if k.checked => {
                    let v: Value = m.next_value()?;
                    out.insert(key.into_owned(), v);
                }
                Some(_) => {
                    m.next_value::<serde::de::IgnoredAny>()?;
                    out.insert(key.into_owned(), Value::Null);
                }
                None => {
                    m.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        Ok(Value::Object(out))
    }
}

/// A member name, borrowed from the text unless it had escapes.
struct Key;

impl<'de> serde::de::DeserializeSeed<'de> for Key {
    type Value = std::borrow::Cow<'de, str>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Key {
    type Value = std::borrow::Cow<'de, str>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a member name")
    }
    fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(std::borrow::Cow::Borrowed(v))
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(std::borrow::Cow::Owned(v.to_owned()))
    }
    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(std::borrow::Cow::Owned(v))
    }
}

/// What a check found: see the [module docs](self).
///
/// ```
/// use ossa_events::schema::{Checked, SchemaRegistry};
/// use ossa_events::{ossa, Event};
/// let ev = Event::builder().id("1").source("/a").ty(ossa::STATE_UPDATED).data_json(r#"{"key":"goal","value":3}"#).build()?;
/// let Checked::Valid { schema } = SchemaRegistry::builtin().check(&ev)? else { unreachable!() };
/// assert_eq!(&*schema, ossa::schema_uri(ossa::STATE_UPDATED).unwrap_or_default());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Checked {
    /// The data matches this schema (its `$id`, or the URL it was fetched from).
    Valid {
        /// The schema's URI.
        schema: Arc<str>,
    },
    /// No schema is known for the event (and none is required).
    NoSchema,
}

/// Where the data broke its schema.
///
/// ```
/// use ossa_events::schema::{SchemaError, SchemaRegistry};
/// use ossa_events::{ossa, Event};
/// let ev = Event::builder().id("1").source("/a").ty(ossa::AGENT_FAILED)
///     .data_json(r#"{"agent_id":"a","error":{"code":"x"}}"#).build()?;
/// let Err(SchemaError::Violation(v)) = SchemaRegistry::builtin().check(&ev) else { unreachable!() };
/// assert_eq!((v.instance_path.as_str(), v.keyword.as_str()), ("/error", "required"));
/// assert!(v.message.contains("\"message\""), "{}", v.message);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Violation {
    /// The schema's URI.
    pub schema: String,
    /// JSON pointer (RFC 6901) to the value in `data` that failed: `""` for
    /// `data` itself, `/tool`, `/error/code`, … (for a missing member: the
    /// object that lacks it).
    pub instance_path: String,
    /// The schema keyword that failed: `type`, `required`, `minimum`, …
    /// (`false` for a `false` subschema, which allows nothing).
    pub keyword: String,
    /// What is wrong, as the validator says it (at most 200 characters).
    pub message: String,
}

/// Why a payload was refused, or a schema could not be used.
///
/// ```
/// use ossa_events::schema::{SchemaError, SchemaRegistry};
/// use ossa_events::{ossa, Event};
/// let ev = Event::builder().id("1").source("/a").ty(ossa::TURN_STARTED).data_json(r#"{"turn":-1}"#).build()?;
/// let err = SchemaRegistry::builtin().check(&ev).unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     "data does not match schema https://ossa.dev/schemas/events/v1/dev.ossa.turn.started.json at \"/turn\" (minimum): -1 is less than the minimum of 0"
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SchemaError {
    /// The data breaks its schema.
    Violation(Violation),
    /// The schema exists (or is declared by `dataschema`) but cannot be used
    /// now: still being fetched, the fetch failed, or it does not compile.
    Unavailable {
        /// The schema's URI, or the URL it is fetched from.
        schema: String,
        /// Why.
        reason: String,
    },
    /// No schema is known for this type, and the registry requires one.
    NoSchema {
        /// The event's type.
        ty: String,
    },
    /// The event's data is binary (`data_base64`), so no JSON Schema applies.
    NotJson {
        /// The schema's URI.
        schema: String,
    },
    /// A schema source given to the builder cannot be used (a directory
    /// that cannot be read, a file that is not a JSON Schema, a bad URL).
    Load {
        /// The file, directory or URL.
        source: String,
        /// Why.
        reason: String,
    },
}

impl fmt::Display for SchemaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SchemaError::Violation(v) => write!(
                f,
                "data does not match schema {} at {:?} ({}): {}",
                v.schema, v.instance_path, v.keyword, v.message
            ),
            SchemaError::Unavailable { schema, reason } => {
                write!(f, "schema unavailable: {schema}: {reason}")
            }
            SchemaError::NoSchema { ty } => {
                write!(f, "no schema for type {ty} (a schema is required)")
            }
            SchemaError::NotJson { schema } => {
                write!(f, "data is binary, schema {schema} needs JSON data")
            }
            SchemaError::Load { source, reason } => {
                write!(f, "cannot load schemas from {source}: {reason}")
            }
        }
    }
}

impl std::error::Error for SchemaError {}

/// Settings for a [`SchemaRegistry`]; start with [`SchemaRegistry::builder`].
///
/// ```
/// use std::time::Duration;
/// use ossa_events::schema::{HttpRegistry, SchemaRegistry};
/// let dir = std::env::temp_dir().join(format!("schemas-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// std::fs::write(dir.join("com.acme.order.placed.json"), r#"{"type":"object","required":["order"]}"#)?;
/// let schemas = SchemaRegistry::builder()
///     .dir(&dir)
///     .http(HttpRegistry::new("http://127.0.0.1:9/schemas/").timeout(Duration::from_secs(2)))
///     .require_schema(false)
///     .build()?;
/// assert!(schemas.schema_uri("com.acme.order.placed").is_some());
/// # std::fs::remove_dir_all(&dir).ok();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
#[must_use = "call .build() to get the registry"]
pub struct SchemaRegistryBuilder {
    builtin: bool,
    dirs: Vec<PathBuf>,
    http: Option<HttpRegistry>,
    require: bool,
}

impl SchemaRegistryBuilder {
    /// Whether the 11 built-in OSSA schemas are used. Defaults to `true`.
    ///
    /// ```
    /// use ossa_events::schema::{Checked, SchemaRegistry};
    /// use ossa_events::{ossa, Event};
    /// let none = SchemaRegistry::builder().builtin(false).build()?;
    /// let ev = Event::builder().id("1").source("/a").ty(ossa::TOOL_CALLED).data_json("{}").build()?;
    /// assert_eq!(none.check(&ev)?, Checked::NoSchema);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn builtin(mut self, on: bool) -> Self {
        self.builtin = on;
        self
    }
    /// Loads every `*.json` file of `dir` when the registry is built: the
    /// file `TYPE.json` is the schema of events of type `TYPE`, and of
    /// events whose `dataschema` is the file's `$id`. A file for an OSSA type
    /// replaces the built-in schema. Several directories may be given; the
    /// first one to name a type or URI wins. Defaults to none.
    ///
    /// ```
    /// use ossa_events::schema::{SchemaError, SchemaRegistry};
    /// let dir = std::env::temp_dir().join(format!("schemas-bad-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir)?;
    /// std::fs::write(dir.join("com.acme.broken.json"), "{ not json")?;
    /// let err = SchemaRegistry::builder().dir(&dir).build().unwrap_err();
    /// assert!(matches!(err, SchemaError::Load { .. }), "{err}");
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dirs.push(dir.into());
        self
    }
    /// Fetches schemas from an HTTP registry, off the caller's thread (see
    /// [`HttpRegistry`]). Defaults to none.
    ///
    /// ```
    /// use ossa_events::schema::{HttpRegistry, SchemaRegistry};
    /// let schemas = SchemaRegistry::builder()
    ///     .http(HttpRegistry::confluent("http://127.0.0.1:9").version("latest"))
    ///     .build()?;
    /// # drop(schemas);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn http(mut self, registry: HttpRegistry) -> Self {
        self.http = Some(registry);
        self
    }
    /// Whether an event with no schema is refused ([`SchemaError::NoSchema`])
    /// rather than passed ([`Checked::NoSchema`]). Defaults to `false`: only
    /// types with a schema are checked.
    ///
    /// ```
    /// use ossa_events::schema::{SchemaError, SchemaRegistry};
    /// use ossa_events::Event;
    /// let strict = SchemaRegistry::builder().require_schema(true).build()?;
    /// let ev = Event::builder().id("1").source("/a").ty("com.example.tick").build()?;
    /// assert!(matches!(strict.check(&ev), Err(SchemaError::NoSchema { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn require_schema(mut self, required: bool) -> Self {
        self.require = required;
        self
    }

    /// Loads and compiles the built-in and directory schemas, and starts the
    /// HTTP registry's fetch thread (it fetches nothing until asked).
    ///
    /// ```
    /// use ossa_events::schema::SchemaRegistry;
    /// let schemas = SchemaRegistry::builder().build()?;
    /// assert!(schemas.schema_uri(ossa_events::ossa::TOOL_CALLED).is_some());
    /// # Ok::<(), ossa_events::schema::SchemaError>(())
    /// ```
    pub fn build(self) -> Result<SchemaRegistry, SchemaError> {
        let fetcher = match self.http {
            Some(h) => Some(Arc::new(http::Fetcher::new(h)?)),
            None => None,
        };
        // Every known schema text by `$id`, for `$ref`s between schemas.
        let mut known: HashMap<String, Value> = HashMap::new();
        let mut builtins = Vec::new();
        if self.builtin {
            for (ty, text) in builtin::SCHEMAS {
                let v: Value = serde_json::from_str(text).map_err(|e| SchemaError::Load {
                    source: format!("built-in schema of {ty}"),
                    reason: e.to_string(),
                })?;
                if id_of(&v).is_some() {
                    known.insert(uri_of(&v, ""), v.clone());
                }
                builtins.push((ty.to_owned(), v));
            }
        }
        let mut files = Vec::new();
        // Every directory file by its `file://` URI too: the base its own
        // relative `$ref`s resolve against when it has no `$id`.
        let mut local = HashMap::new();
        for dir in &self.dirs {
            for (path, ty, v) in read_dir(dir)? {
                let uri = file_uri(&path);
                if id_of(&v).is_some() {
                    let base = uri.as_ref().map_or("", |(_, u)| u.as_str());
                    known.entry(uri_of(&v, base)).or_insert_with(|| v.clone());
                }
                if let Some((canonical, _)) = &uri {
                    local.entry(canonical.clone()).or_insert_with(|| v.clone());
                }
                files.push((path, ty, v, uri.map(|(_, u)| u)));
            }
        }
        let refs = Arc::new(Refs {
            known,
            local,
            http: fetcher.clone(),
        });
        let mut by_type: HashMap<String, Arc<Compiled>> = HashMap::new();
        let mut by_uri: HashMap<String, Arc<Compiled>> = HashMap::new();
        let builtin_sources = builtins.into_iter().map(|(ty, v)| {
            let uri = ossa::schema_uri(&ty).map(str::to_owned);
            (format!("built-in schema of {ty}"), ty, v, uri)
        });
        let file_sources = files
            .into_iter()
            .map(|(p, ty, v, uri)| (p.display().to_string(), ty, v, uri));
        // Directories first: the first to name a type or URI wins.
        for (source, ty, v, uri) in file_sources.chain(builtin_sources) {
            let base = uri.unwrap_or_else(|| format!("file://{source}"));
            let c = compile(&v, &base, &refs, true).map_err(|reason| SchemaError::Load {
                source: source.clone(),
                reason,
            })?;
            let c = Arc::new(c);
            by_uri
                .entry(uri_key(&c.uri).into_owned())
                .or_insert_with(|| c.clone());
            by_type.entry(ty).or_insert(c);
        }
        let remote = fetcher.map(|f| Remote::start(f, refs));
        Ok(SchemaRegistry {
            inner: Arc::new(Inner {
                by_type,
                by_uri,
                require: self.require,
                remote,
            }),
        })
    }
}

/// `$id` of a schema document.
fn id_of(v: &Value) -> Option<&str> {
    v.get("$id").and_then(Value::as_str)
}

/// The URI a schema document read from `base` is known by: its `$id`
/// resolved against `base` when relative, without its fragment (an empty
/// one, `…/order.json#`, the draft-04/07 habit, or a draft-06/07
/// plain-name one, `#order` or `…/order.json#v1`, which names an anchor,
/// not the document), as JSON Schema reads it (2020-12 §8.2.1); else
/// `base`. What `dataschema` names it by, and what an emitter stamps
/// there, which must be an absolute URI without fragment (before,
/// `rel.json` or `…/order.json#` as written: every event stamped with it
/// was refused; then `…#order` still was).
fn uri_of(v: &Value, base: &str) -> String {
    let Some(id) = id_of(v) else {
        return base.to_owned();
    };
    let relative = referencing::UriRef::parse(id).is_ok_and(|r| !r.has_scheme());
    let resolved = relative
        .then(|| referencing::uri::from_str(base).ok())
        .flatten()
        .and_then(|b| referencing::uri::resolve_against(&b.borrow(), id).ok())
        .map_or_else(|| id.to_owned(), |u| u.as_str().to_owned());
    match resolved.split_once('#') {
        Some((no_fragment, _)) => no_fragment.to_owned(),
        None => resolved,
    }
}

/// `uri` as the schemas are looked up by: its scheme and host in lower
/// case, which RFC 3986 §6.2.2.1 says do not tell URIs apart
/// (`HTTPS://OSSA.DEV/…` is `https://ossa.dev/…`; the path, and userinfo,
/// keep their case). Before, a `dataschema` naming a known schema so was
/// not found, and the event passed by its type, unchecked if it had none.
fn uri_key(uri: &str) -> std::borrow::Cow<'_, str> {
    let Some(colon) = uri.find(':') else {
        return std::borrow::Cow::Borrowed(uri);
    };
    let (scheme, rest) = uri.split_at(colon);
    // The host: after `//` and any `userinfo@`, before the path.
    let host = rest.strip_prefix("://").map(|after| {
        let end = after.find(['/', '?', '#']).unwrap_or(after.len());
        let start = after[..end].rfind('@').map_or(0, |i| i + 1);
        (colon + 3 + start, colon + 3 + end)
    });
    let (from, to) = host.unwrap_or((colon, colon));
    let has_upper = |s: &str| s.bytes().any(|b| b.is_ascii_uppercase());
    if !has_upper(scheme) && !has_upper(&uri[from..to]) {
        return std::borrow::Cow::Borrowed(uri);
    }
    let mut out = uri.to_owned();
    out[..colon].make_ascii_lowercase();
    out[from..to].make_ascii_lowercase();
    std::borrow::Cow::Owned(out)
}

/// `(path, type, schema)` of every `*.json` file of `dir`, in name order.
fn read_dir(dir: &Path) -> Result<Vec<(PathBuf, String, Value)>, SchemaError> {
    let load = |what: &Path, reason: String| SchemaError::Load {
        source: what.display().to_string(),
        reason,
    };
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| load(dir, e.to_string()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json") && p.is_file())
        .collect();
    paths.sort();
    let mut out = Vec::with_capacity(paths.len());
    for p in paths {
        let Some(ty) = p.file_stem().and_then(|s| s.to_str()).map(str::to_owned) else {
            return Err(load(&p, "file name is not UTF-8".into()));
        };
        let text = std::fs::read(&p).map_err(|e| load(&p, e.to_string()))?;
        let v: Value =
            serde_json::from_slice(&text).map_err(|e| load(&p, format!("not JSON: {e}")))?;
        out.push((p, ty, v));
    }
    Ok(out)
}

/// `(canonical path, file:// URI)` of `path`: absolute, symbolic links
/// resolved, each byte outside RFC 3986's path characters percent-encoded
/// (a name with a space or a `#` stays one path). `None` when the path
/// cannot be resolved.
fn file_uri(path: &Path) -> Option<(PathBuf, String)> {
    use percent_encoding::{AsciiSet, CONTROLS, percent_encode};
    /// What RFC 3986 does not allow as is in a path segment (`/` separates).
    const PATH: &AsciiSet = &CONTROLS
        .add(b' ')
        .add(b'"')
        .add(b'#')
        .add(b'%')
        .add(b'<')
        .add(b'>')
        .add(b'?')
        .add(b'[')
        .add(b'\\')
        .add(b']')
        .add(b'^')
        .add(b'`')
        .add(b'{')
        .add(b'|')
        .add(b'}');
    let canonical = std::fs::canonicalize(path).ok()?;
    #[cfg(unix)]
    let encoded = {
        use std::os::unix::ffi::OsStrExt;
        percent_encode(canonical.as_os_str().as_bytes(), PATH).to_string()
    };
    #[cfg(not(unix))]
    let encoded = {
        let s = canonical.to_str()?.replace('\\', "/");
        let s = s.strip_prefix("//?/").unwrap_or(&s).to_owned();
        let s = if s.starts_with('/') {
            s
        } else {
            format!("/{s}")
        };
        percent_encode(s.as_bytes(), PATH).to_string()
    };
    Some((canonical, format!("file://{encoded}")))
}

/// The canonical path a `file:` URI (no host, or `localhost`) names.
fn path_of_file_uri(uri: &str) -> Option<PathBuf> {
    let rest = uri.strip_prefix("file://")?;
    let rest = rest.strip_prefix("localhost").unwrap_or(rest);
    if !rest.starts_with('/') {
        return None;
    }
    let bytes: Vec<u8> = percent_encoding::percent_decode_str(rest).collect();
    #[cfg(unix)]
    let path = {
        use std::os::unix::ffi::OsStringExt;
        PathBuf::from(std::ffi::OsString::from_vec(bytes))
    };
    #[cfg(not(unix))]
    let path = PathBuf::from(String::from_utf8(bytes).ok()?.trim_start_matches('/'));
    std::fs::canonicalize(path).ok()
}

/// Compiles `schema` (draft 2020-12 unless its `$schema` names another
/// draft jsonschema knows: 2019-09, draft-07, -06 or -04); its URI is
/// its `$id`, else `base`: where it was read from, which its relative
/// `$ref`s resolve against when it has no `$id`. `local_files`: whether its
/// `$ref`s may read `file:` URIs from the disk (the directories' schemas,
/// compiled at build; not the ones an HTTP registry serves).
fn compile(
    schema: &Value,
    base: &str,
    refs: &Arc<Refs>,
    local_files: bool,
) -> Result<Compiled, String> {
    let uri: Arc<str> = Arc::from(uri_of(schema, base));
    // The draft its `$schema` names (before, every schema was read as
    // 2020-12: a draft-07 `dependencies` checked nothing, draft-07 tuple
    // `items` did not load); an unknown `$schema` is read as 2020-12.
    let draft = jsonschema::Draft::Draft202012
        .detect(schema)
        .unwrap_or(jsonschema::Draft::Draft202012);
    // This document alone first: `jsonschema` compiles a chain of `$ref`s
    // by recursion (300 deep overflowed a 2 MiB stack).
    let (_, mut height) = in_place_cost(schema, base, &HashMap::new(), draft)?;
    let retrieved = Arc::new(Mutex::new(HashMap::new()));
    let validator = jsonschema::options()
        .with_draft(draft)
        .with_base_uri(base)
        .with_retriever(RefsHandle {
            refs: refs.clone(),
            count: AtomicUsize::new(0),
            retrieved: retrieved.clone(),
            local_files,
        })
        .build(schema)
        .map_err(|e| format!("not a valid JSON Schema: {}", short(&e.to_string())))?;
    // Then through the documents it reached (all retrieved while it was
    // built), before any check runs.
    let docs = std::mem::take(&mut *retrieved.lock().unwrap_or_else(PoisonError::into_inner));
    if !docs.is_empty() {
        (_, height) = in_place_cost(schema, base, &docs, draft)?;
    }
    Ok(Compiled {
        uri,
        validator,
        looks_at: members_looked_at(schema),
        height,
    })
}

/// Most subschemas one check may evaluate at a value before it reads into
/// it: `allOf`/`anyOf`/`oneOf`/`not`/`if`/`then`/`else`/
/// `dependentSchemas` and the document's own `$ref`s, counted through.
const MAX_IN_PLACE: u64 = 10_000;
/// Most schemas one schema's `$ref`s may fetch or look up while it is
/// compiled (a chain of references has an end).
const MAX_REFERENCED: usize = 64;
/// Deepest chain of `$ref`s and in-place applicators at one value.
/// `jsonschema` compiles and checks such a chain by recursion: 180 steps
/// (90 `allOf`s, each with a `$ref` to the next) overflowed a 2 MiB thread
/// in a debug build (160 did not; a release build took 198).
const MAX_IN_PLACE_DEPTH: usize = 100;

/// Refuses a schema whose evaluation at one value never ends or grows
/// exponentially: a cycle of `$ref`s and in-place applicators that reads
/// no data (`jsonschema` recursed until the stack overflowed: the process
/// aborted on the first event; through two documents it built an ever
/// longer path until memory ran out), `$ref`s that fan out (each `allOf` of
/// two refs to the next level doubling the work: seconds per check at 18
/// levels), or a chain of them deeper than [`MAX_IN_PLACE_DEPTH`] (each
/// level a few frames of the checking thread's stack). Counts, memoised,
/// the subschemas evaluated at one value, from every subschema the check
/// can reach (the root, its members' and items' subschemas, …), following `$ref`s,
/// `$dynamicRef`s and `$recursiveRef`s into this document and into the
/// documents its compilation `retrieved` (by URI, no fragment). The
/// references are resolved as `jsonschema` resolves them (the
/// `referencing` crate, `draft`, the one `jsonschema` was told, or the
/// one a retrieved document's `$schema` names): JSON pointers, `$anchor`s
/// and `$dynamicAnchor`s, and subschemas with their own `$id` (`id` in
/// draft-04) (before, a cycle through an anchor or an embedded `$id` was
/// not followed, and overflowed the stack at the first check). A
/// reference to a document it was not given is not followed (the second
/// pass, with the retrieved documents, follows it). Returns the count at
/// the root, and the longest in-place chain from any subschema.
fn in_place_cost(
    schema: &Value,
    base: &str,
    retrieved: &HashMap<String, Value>,
    draft: referencing::Draft,
) -> Result<(u64, usize), String> {
    use referencing::{Draft, Registry, Resolver};
    /// A document the walk was not given: an empty schema.
    struct Unknown;
    impl referencing::Retrieve for Unknown {
        fn retrieve(
            &self,
            _: &referencing::Uri<String>,
        ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
            Ok(Value::Bool(true))
        }
    }
    struct Walk {
        /// By the subschema's address in the registry: how many subschemas
        /// its check at one value evaluates, and its longest chain of
        /// in-place steps; `None` while being counted (a cycle if met again).
        memo: HashMap<*const Value, Option<(u64, usize)>>,
    }
    /// The error of a chain deeper than [`MAX_IN_PLACE_DEPTH`].
    fn too_deep(at: &str) -> String {
        format!(
            "its $refs and applicators nest more than {MAX_IN_PLACE_DEPTH} deep at one value, through {at:?}"
        )
    }
    impl Walk {
        fn cost<'r>(
            &mut self,
            resolver: &Resolver<'r>,
            draft: Draft,
            node: &'r Value,
            at: &str,
            depth: usize,
        ) -> Result<(u64, usize), String> {
            let key: *const Value = node;
            match self.memo.get(&key) {
                // Met before from another start: its chain still counts
                // from here.
                Some(Some((_, height))) if depth + height > MAX_IN_PLACE_DEPTH => {
                    return Err(too_deep(at));
                }
                Some(Some(known)) => return Ok(*known),
                Some(None) => {
                    return Err(format!(
                        "a $ref cycle that reads no data, through {at:?}: its check would never end"
                    ));
                }
                None => {}
            }
            if depth > MAX_IN_PLACE_DEPTH {
                return Err(too_deep(at));
            }
            self.memo.insert(key, None);
            let mut n: u64 = 1;
            let mut height = 0;
            if let Value::Object(o) = node {
                let mut children: Vec<(&'r Value, String)> = Vec::new();
                for k in ["allOf", "anyOf", "oneOf"] {
                    if let Some(Value::Array(items)) = o.get(k) {
                        for (i, item) in items.iter().enumerate() {
                            children.push((item, format!("{at}/{k}/{i}")));
                        }
                    }
                }
                for k in ["not", "if", "then", "else"] {
                    if let Some(sub) = o.get(k) {
                        children.push((sub, format!("{at}/{k}")));
                    }
                }
                // Draft-07 and older: `dependencies`, whose values are
                // subschemas or (skipped) lists of member names.
                for k in ["dependentSchemas", "dependencies"] {
                    if let Some(Value::Object(deps)) = o.get(k) {
                        for (name, sub) in deps {
                            if !sub.is_array() {
                                children.push((sub, format!("{at}/{k}/{name}")));
                            }
                        }
                    }
                }
                // A subschema with its own `$id` (`id` in draft-04) is a
                // resource: its references resolve against that.
                let id = if draft == Draft::Draft4 { "id" } else { "$id" };
                for (child, path) in children {
                    let inner = match child.get(id) {
                        Some(Value::String(_)) => resolver
                            .in_subresource(draft.create_resource_ref(child))
                            .unwrap_or_else(|_| resolver.clone()),
                        _ => resolver.clone(),
                    };
                    let (c, h) = self.cost(&inner, draft, child, &path, depth + 1)?;
                    n = n.saturating_add(c);
                    height = height.max(h + 1);
                }
                // `$recursiveRef` (2019-09) is always `#`: followed as a `$ref`.
                for k in ["$ref", "$dynamicRef", "$recursiveRef"] {
                    if let Some(Value::String(r)) = o.get(k)
                        && let Ok(target) = resolver.lookup(r)
                    {
                        let to = match r.strip_prefix('#') {
                            Some(fragment) => {
                                format!("{}#{fragment}", resolver.base_uri().as_str())
                            }
                            None => r.clone(),
                        };
                        let (t, inner, d) = target.into_inner();
                        let (c, h) = self.cost(&inner, d, t, &to, depth + 1)?;
                        n = n.saturating_add(c);
                        height = height.max(h + 1);
                    }
                }
            }
            if n > MAX_IN_PLACE {
                return Err(format!(
                    "its $refs and applicators evaluate more than {MAX_IN_PLACE} subschemas at one value"
                ));
            }
            self.memo.insert(key, Some((n, height)));
            Ok((n, height))
        }

        /// [`cost`](Self::cost) from every subschema the check can reach,
        /// not from the root only (before, a cycle below a member, as
        /// `{"properties":{"a":{"allOf":[{"$ref":"#/properties/a"}]}}}`,
        /// loaded, and the first event with that member overflowed the
        /// stack): through the subschemas of each (`$defs` only when
        /// referred to) and the targets of its references, into the other
        /// documents. Each node once, with a list, not recursion (a long
        /// chain of references through members stays off the stack).
        fn everywhere<'r>(
            &mut self,
            resolver: Resolver<'r>,
            draft: Draft,
            root: &'r Value,
        ) -> Result<(u64, usize), String> {
            let mut seen: std::collections::HashSet<*const Value> =
                std::collections::HashSet::new();
            let mut todo = vec![(resolver, draft, root, String::from("#"))];
            let mut at_root = None;
            let mut highest = 0;
            while let Some((resolver, draft, node, at)) = todo.pop() {
                if !seen.insert(node) {
                    continue;
                }
                let (n, height) = self.cost(&resolver, draft, node, &at, 0)?;
                at_root.get_or_insert(n);
                highest = highest.max(height);
                let Value::Object(o) = node else { continue };
                let defs: std::collections::HashSet<*const Value> = ["$defs", "definitions"]
                    .iter()
                    .filter_map(|k| o.get(*k).and_then(Value::as_object))
                    .flat_map(|m| m.values().map(|v| v as *const Value))
                    .collect();
                let id = if draft == Draft::Draft4 { "id" } else { "$id" };
                for child in draft.subresources_of(node) {
                    if defs.contains(&(child as *const Value)) {
                        continue;
                    }
                    let inner = match child.get(id) {
                        Some(Value::String(_)) => resolver
                            .in_subresource(draft.create_resource_ref(child))
                            .unwrap_or_else(|_| resolver.clone()),
                        _ => resolver.clone(),
                    };
                    todo.push((inner, draft, child, locate(o, child, &at)));
                }
                for k in ["$ref", "$dynamicRef", "$recursiveRef"] {
                    if let Some(Value::String(r)) = o.get(k)
                        && let Ok(target) = resolver.lookup(r)
                    {
                        let (t, inner, d) = target.into_inner();
                        todo.push((inner, d, t, format!("{at}/{k}")));
                    }
                }
            }
            Ok((at_root.unwrap_or(1), highest))
        }
    }
    /// Where `child`, a subschema of `o` (at `at`), sits: `{at}/{keyword}`,
    /// and its index or member name under a keyword that holds several.
    fn locate(o: &serde_json::Map<String, Value>, child: &Value, at: &str) -> String {
        for (k, v) in o {
            if std::ptr::eq(v, child) {
                return format!("{at}/{k}");
            }
            let inner = match v {
                Value::Array(items) => items
                    .iter()
                    .position(|x| std::ptr::eq(x, child))
                    .map(|i| i.to_string()),
                Value::Object(m) => m
                    .iter()
                    .find(|(_, x)| std::ptr::eq(*x, child))
                    .map(|(name, _)| name.clone()),
                _ => None,
            };
            if let Some(inner) = inner {
                return format!("{at}/{k}/{inner}");
            }
        }
        at.to_owned()
    }
    let docs = std::iter::once((base, schema))
        .chain(
            retrieved
                .iter()
                .filter(|(u, _)| u.as_str() != base)
                .map(|(u, v)| (u.as_str(), v)),
        )
        .map(|(u, v)| {
            (
                u,
                draft.detect(v).unwrap_or(draft).create_resource(v.clone()),
            )
        });
    let registry = Registry::options()
        .draft(draft)
        .retriever(Unknown)
        .build(docs)
        .map_err(|e| format!("its $refs cannot be resolved: {}", short(&e.to_string())))?;
    let resolver = registry
        .try_resolver(base)
        .map_err(|e| format!("{base}: not a URI: {e}"))?;
    let root = resolver.lookup(base).map_err(|e| format!("{base}: {e}"))?;
    let (root, resolver, _) = root.into_inner();
    let resolver = resolver
        .in_subresource(draft.create_resource_ref(root))
        .unwrap_or(resolver);
    let mut walk = Walk {
        memo: HashMap::new(),
    };
    walk.everywhere(resolver, draft, root)
}

/// Resolves `$ref`s to other schemas: the built-in and directory ones by
/// `$id`, and URLs under the HTTP registry (fetched on the fetch thread or
/// at build, never on an emitting thread).
struct Refs {
    known: HashMap<String, Value>,
    /// The directories' files by canonical path.
    local: HashMap<PathBuf, Value>,
    http: Option<Arc<http::Fetcher>>,
}

/// [`Refs`] for one schema's compilation, which counts what it retrieves.
struct RefsHandle {
    refs: Arc<Refs>,
    count: AtomicUsize,
    /// What it retrieved, by URI (no fragment): the documents its checks
    /// can reach, which [`in_place_cost`] walks.
    retrieved: Arc<Mutex<HashMap<String, Value>>>,
    /// Whether `file:` URIs outside the directories are read from the disk.
    local_files: bool,
}

impl jsonschema::Retrieve for RefsHandle {
    fn retrieve(
        &self,
        uri: &jsonschema::Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        let s = uri.as_str();
        let s = s.split('#').next().unwrap_or(s);
        if self.count.fetch_add(1, Ordering::Relaxed) >= MAX_REFERENCED {
            // An endless chain of references (each served document refers
            // to a next one) kept the fetch thread for good.
            return Err(format!("{s}: more than {MAX_REFERENCED} schemas referenced").into());
        }
        let v = self.find(s)?;
        self.retrieved
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(s.to_owned(), v.clone());
        Ok(v)
    }
}

impl RefsHandle {
    /// The document at `s` (a URI without fragment) from the sources.
    fn find(&self, s: &str) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        if let Some(v) = self.refs.known.get(s) {
            return Ok(v.clone());
        }
        if s.starts_with("file:") {
            let Some(path) = path_of_file_uri(s) else {
                return Err(format!("{s}: no such file").into());
            };
            if let Some(v) = self.refs.local.get(&path) {
                return Ok(v.clone());
            }
            if !self.local_files {
                return Err(format!("{s}: a remote schema may not read local files").into());
            }
            let text = std::fs::read(&path).map_err(|e| format!("{s}: {e}"))?;
            return serde_json::from_slice(&text).map_err(|e| format!("{s}: not JSON: {e}").into());
        }
        match &self.refs.http {
            Some(h) => match h.serves(s).map(|url| h.get(&url)) {
                Some(Ok(Some(v))) => Ok(v),
                Some(Ok(None)) => Err(format!("{s}: not found (404)").into()),
                Some(Err(e)) => Err(e.into()),
                None => Err(format!("{s}: no schema source has it").into()),
            },
            None => Err(format!("{s}: no schema source has it").into()),
        }
    }
}

/// A payload check against the schemas of built-in, directory and HTTP
/// sources: see the [module docs](self). `Clone + Send + Sync`, cheap to
/// clone (the compiled schemas and the cache are shared).
///
/// ```
/// use ossa_events::schema::SchemaRegistry;
/// use ossa_events::{ossa, Event};
/// let schemas = SchemaRegistry::builtin();
/// let ev = Event::builder().id("1").source("/a").ty(ossa::TOOL_CALLED).data_json(r#"{"tol":3}"#).build()?;
/// let err = schemas.check(&ev).unwrap_err(); // "tool" is required
/// assert!(err.to_string().contains("(required)"), "{err}");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct SchemaRegistry {
    inner: Arc<Inner>,
}

impl fmt::Debug for SchemaRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SchemaRegistry")
            .field("types", &self.inner.by_type.len())
            .field("require_schema", &self.inner.require)
            .field(
                "http",
                &self.inner.remote.as_ref().map(|r| r.fetcher.base()),
            )
            .finish()
    }
}

struct Inner {
    by_type: HashMap<String, Arc<Compiled>>,
    by_uri: HashMap<String, Arc<Compiled>>,
    require: bool,
    remote: Option<Remote>,
}

/// What a lookup found.
enum Found {
    Schema(Arc<Compiled>),
    NoSchema,
    Pending(String),
    Failed(String, Arc<str>),
}

impl SchemaRegistry {
    /// Settings for a registry (built-in OSSA schemas on, no other source).
    ///
    /// ```
    /// use ossa_events::schema::SchemaRegistry;
    /// let schemas = SchemaRegistry::builder().require_schema(true).build()?;
    /// # drop(schemas);
    /// # Ok::<(), ossa_events::schema::SchemaError>(())
    /// ```
    pub fn builder() -> SchemaRegistryBuilder {
        SchemaRegistryBuilder {
            builtin: true,
            dirs: Vec::new(),
            http: None,
            require: false,
        }
    }

    /// A registry of the 11 built-in OSSA schemas only, compiled once per
    /// process and shared (this call is cheap after the first).
    ///
    /// ```
    /// use ossa_events::schema::SchemaRegistry;
    /// let a = SchemaRegistry::builtin();
    /// assert!(a.schema_uri("dev.ossa.agent.started").is_some());
    /// ```
    pub fn builtin() -> SchemaRegistry {
        static BUILTIN: std::sync::OnceLock<SchemaRegistry> = std::sync::OnceLock::new();
        BUILTIN
            .get_or_init(|| {
                // The shipped schemas compile (a unit test proves it); an
                // empty registry is the fallback for the type system only.
                Self::builder().build().unwrap_or_else(|_| SchemaRegistry {
                    inner: Arc::new(Inner {
                        by_type: HashMap::new(),
                        by_uri: HashMap::new(),
                        require: false,
                        remote: None,
                    }),
                })
            })
            .clone()
    }

    /// Checks `ev`'s data against its schema, without ever waiting: a
    /// schema not fetched yet is [`SchemaError::Unavailable`] (and its fetch
    /// is started). What the [`Emitter`](crate::Emitter) calls at emit.
    ///
    /// ```
    /// use ossa_events::schema::{Checked, SchemaRegistry};
    /// use ossa_events::{ossa, Event};
    /// let ev = Event::builder().id("1").source("/a").ty(ossa::TURN_COMPLETED)
    ///     .data_json(r#"{"turn":2,"usage":{"input_tokens":10,"output_tokens":3}}"#).build()?;
    /// assert!(matches!(SchemaRegistry::builtin().check(&ev)?, Checked::Valid { .. }));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn check(&self, ev: &Event<'_>) -> Result<Checked, SchemaError> {
        let found = self.find(ev.ty(), ev.dataschema());
        self.finish(ev, found)
    }

    /// [`check`](Self::check), but waits up to `wait` for a schema that is
    /// being fetched: for a collector or a CLI, where the caller can wait.
    ///
    /// ```
    /// use std::time::Duration;
    /// use ossa_events::schema::{Checked, SchemaRegistry};
    /// use ossa_events::Event;
    /// let ev = Event::builder().id("1").source("/a").ty("com.example.tick").build()?;
    /// assert_eq!(SchemaRegistry::builtin().check_within(&ev, Duration::from_secs(1))?, Checked::NoSchema);
    /// // `Duration::MAX` is no limit.
    /// assert_eq!(SchemaRegistry::builtin().check_within(&ev, Duration::MAX)?, Checked::NoSchema);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn check_within(&self, ev: &Event<'_>, wait: Duration) -> Result<Checked, SchemaError> {
        // `None`: past what an `Instant` holds (`Duration::MAX`), no limit.
        let deadline = crate::worker::after(wait);
        loop {
            let found = self.find(ev.ty(), ev.dataschema());
            match (&found, &self.inner.remote) {
                (Found::Pending(_), Some(r)) if before(deadline) => r.wait(deadline),
                _ => return self.finish(ev, found),
            }
        }
    }

    /// Starts fetching the schemas of `types` (and of `uris`) from the HTTP
    /// registry now, so that the first events of those types need not be
    /// refused as "being fetched"; waits up to `wait` for them. Returns the
    /// first error of those that could not be had (a type with no schema is
    /// not an error; a URI that no source has, neither a built-in or
    /// directory `$id` nor a URL under the HTTP registry's, is one: events
    /// declaring it would be checked by their type). Without an HTTP
    /// registry it fetches nothing.
    ///
    /// ```
    /// use std::time::Duration;
    /// use ossa_events::schema::SchemaRegistry;
    /// let schemas = SchemaRegistry::builtin();
    /// schemas.prefetch(&["com.acme.order.placed"], &[], Duration::from_secs(2))?;
    /// schemas.prefetch(&["com.acme.order.placed"], &[], Duration::MAX)?; // no limit
    /// # Ok::<(), ossa_events::schema::SchemaError>(())
    /// ```
    pub fn prefetch(
        &self,
        types: &[&str],
        uris: &[&str],
        wait: Duration,
    ) -> Result<(), SchemaError> {
        let deadline = crate::worker::after(wait);
        let mut first_err = None;
        let pending = |this: &Self| {
            types
                .iter()
                .map(|t| this.find(t, None))
                .chain(uris.iter().map(|u| match this.find("", Some(u)) {
                    // Not known by `$id` nor the registry's to fetch: it
                    // fell through to the (empty) type. Before, `Ok(())`,
                    // as if it were at hand.
                    Found::NoSchema => Found::Failed(
                        crate::sink::http::redacted(u).into_owned(),
                        Arc::from(
                            "no schema source has it (no built-in or directory $id, not under the HTTP registry's URL)",
                        ),
                    ),
                    f => f,
                }))
                .collect::<Vec<_>>()
        };
        loop {
            let now = pending(self);
            let waiting = now.iter().any(|f| matches!(f, Found::Pending(_)));
            match (&self.inner.remote, waiting) {
                (Some(r), true) if before(deadline) => r.wait(deadline),
                _ => {
                    for f in now {
                        match f {
                            Found::Pending(s) if first_err.is_none() => {
                                first_err = Some(SchemaError::Unavailable {
                                    schema: s,
                                    reason: "still being fetched".into(),
                                });
                            }
                            Found::Failed(s, reason) if first_err.is_none() => {
                                first_err = Some(SchemaError::Unavailable {
                                    schema: s,
                                    reason: reason.to_string(),
                                });
                            }
                            _ => {}
                        }
                    }
                    return first_err.map_or(Ok(()), Err);
                }
            }
        }
    }

    /// The URI of the schema events of type `ty` are checked against, when
    /// it is known now (built-in, directory, or fetched already): what
    /// [`EmitterBuilder::dataschema`](crate::EmitterBuilder::dataschema) puts
    /// in `dataschema`. Never waits.
    ///
    /// ```
    /// use ossa_events::{ossa, schema::SchemaRegistry};
    /// let s = SchemaRegistry::builtin();
    /// assert_eq!(s.schema_uri(ossa::TOOL_FAILED).as_deref(), ossa::schema_uri(ossa::TOOL_FAILED));
    /// ```
    pub fn schema_uri(&self, ty: &str) -> Option<Arc<str>> {
        if let Some(c) = self.inner.by_type.get(ty) {
            return Some(c.uri.clone());
        }
        self.inner
            .remote
            .as_ref()
            .and_then(|r| r.ready(Side::Type, ty))
            .map(|c| c.uri.clone())
    }

    fn find(&self, ty: &str, dataschema: Option<&str>) -> Found {
        let inner = &*self.inner;
        if let Some(uri) = dataschema {
            if let Some(c) = inner.by_uri.get(&*uri_key(uri)) {
                return Found::Schema(c.clone());
            }
            let served = inner
                .remote
                .as_ref()
                .and_then(|r| r.fetcher.serves(uri).map(|uri| (r, uri)));
            if let Some((r, uri)) = served {
                // The type's own schema when it is this one: what
                // `schema_uri` gave an emitter stamping `dataschema` (after
                // a `prefetch` of the type, its events were refused "being
                // fetched" while the same URL was fetched again by URI).
                if let Some(c) = r
                    .ready(Side::Type, ty)
                    .filter(|c| uri_key(&c.uri) == uri_key(&uri))
                {
                    return Found::Schema(c);
                }
                return match r.lookup(Side::Uri, &uri) {
                    // A declared schema that is not there is not a pass.
                    Found::NoSchema => Found::Failed(uri.to_owned(), Arc::from("not found (404)")),
                    f => f,
                };
            }
        }
        if let Some(c) = inner.by_type.get(ty) {
            return Found::Schema(c.clone());
        }
        match &inner.remote {
            Some(r) if r.fetcher.asks_for_type(ty) => r.lookup(Side::Type, ty),
            _ => Found::NoSchema,
        }
    }

    fn finish(&self, ev: &Event<'_>, found: Found) -> Result<Checked, SchemaError> {
        match found {
            Found::Schema(c) => validate(&c, ev).map(|()| Checked::Valid {
                schema: c.uri.clone(),
            }),
            Found::NoSchema if self.inner.require => Err(SchemaError::NoSchema {
                ty: ev.ty().to_owned(),
            }),
            Found::NoSchema => Ok(Checked::NoSchema),
            Found::Pending(schema) => Err(SchemaError::Unavailable {
                schema,
                reason: "being fetched (not in the cache yet)".into(),
            }),
            Found::Failed(schema, reason) => Err(SchemaError::Unavailable {
                schema,
                reason: reason.to_string(),
            }),
        }
    }
}

thread_local! {
    /// A serde payload's JSON, written here to be parsed (reused per thread).
    static PAYLOAD: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The event's data as a JSON value (as the JSON format carries it).
fn data_value(ev: &Event<'_>, c: &Compiled) -> Result<Value, SchemaError> {
    let schema: &str = &c.uri;
    let looks_at = c.looks_at.as_deref();
    let not_json = || SchemaError::NotJson {
        schema: schema.to_owned(),
    };
    // The event was validated: its JSON data is well-formed, so a parse
    // failure here is a limit of serde_json (e.g. a number it cannot hold).
    let unparsable = |e: serde_json::Error| {
        SchemaError::Violation(Violation {
            schema: schema.to_owned(),
            instance_path: String::new(),
            keyword: "type".into(),
            message: short(&format!("data cannot be read as JSON: {e}")),
        })
    };
    match ev.data() {
        None => Ok(Value::Null),
        Some(Data::Json(s)) => read_data(s, looks_at).map_err(unparsable),
        Some(Data::Text(s)) => Ok(Value::String((*s).to_owned())),
        Some(Data::Serialize(p)) => {
            let read = |buf: &mut Vec<u8>| {
                buf.clear();
                ossa_events_core::json::ser::write_payload(buf, *p).map_err(|e| {
                    SchemaError::Violation(Violation {
                        schema: schema.to_owned(),
                        instance_path: String::new(),
                        keyword: "type".into(),
                        message: short(&format!("payload cannot be serialized: {e}")),
                    })
                })?;
                // Payloads write UTF-8 JSON; anything else is read (and refused) whole.
                match std::str::from_utf8(buf) {
                    Ok(text) => read_data(text, looks_at),
                    Err(_) => serde_json::from_slice(buf),
                }
                .map_err(unparsable)
            };
            PAYLOAD
                .try_with(|cell| match cell.try_borrow_mut() {
                    Ok(mut buf) => {
                        let v = read(&mut buf);
                        if buf.capacity() > 1 << 20 {
                            *buf = Vec::new();
                        }
                        v
                    }
                    Err(_) => read(&mut Vec::new()),
                })
                // The thread is ending and its buffer is gone (an emit from
                // a thread-local's destructor): `with` panicked there, and a
                // panic in a thread-local's destructor aborts the process.
                .unwrap_or_else(|_| read(&mut Vec::new()))
        }
        Some(_) => Err(not_json()),
    }
}

/// Levels of checking (in-place chain and the step into the data) that run
/// on the caller's stack; past them, on a thread of their own.
const INLINE_LEVELS: usize = 256;
/// Stack given to a check thread per level of checking (about 2 KiB are
/// used in a debug build).
const STACK_PER_LEVEL: usize = 8 << 10;

fn validate(c: &Compiled, ev: &Event<'_>) -> Result<(), SchemaError> {
    let v = data_value(ev, c)?;
    // `jsonschema` recurses through the schema's in-place chain at every
    // level of the data: deep data and a long chain (each allowed alone)
    // overflowed the caller's stack and aborted the process (127 levels of
    // data and a chain of 9 `$ref`s and `allOf`s on a 2 MiB stack). Such
    // a check gets a thread whose stack fits it. Without `$ref`s (height
    // 0), the schema's own nesting bounds the recursion.
    if c.height == 0 {
        return validate_value(c, &v);
    }
    let levels = (depth(&v) + 1).saturating_mul(c.height + 2);
    if levels <= INLINE_LEVELS {
        return validate_value(c, &v);
    }
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .name("ossa-events-schema-check".into())
            .stack_size(check_stack(levels))
            .spawn_scoped(s, || validate_value(c, &v))
            .map_err(|e| format!("cannot start a thread for data this deep: {e}"))
            .and_then(|t| t.join().map_err(|_| "its check panicked".to_owned()))
    })
    .unwrap_or_else(|reason| {
        Err(SchemaError::Unavailable {
            schema: c.uri.to_string(),
            reason,
        })
    })
}

/// The stack of a thread that checks (or drops) `levels` levels.
fn check_stack(levels: usize) -> usize {
    levels
        .saturating_mul(STACK_PER_LEVEL)
        .saturating_add(256 << 10)
}

/// How deep `v` nests (`0` for a scalar; by recursion: an event's data
/// nests no deeper than `MAX_DATA_DEPTH`).
fn depth(v: &Value) -> usize {
    match v {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(o) => 1 + o.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// [`validate`] of the data read as `v`.
fn validate_value(c: &Compiled, v: &Value) -> Result<(), SchemaError> {
    // The boolean path first (no error locations kept): the common case.
    if c.validator.is_valid(v) {
        return Ok(());
    }
    match c.validator.validate(v) {
        Ok(()) => Ok(()),
        Err(e) => {
            let schema_path = e.schema_path.as_str();
            let last = schema_path.rsplit('/').next().unwrap_or(schema_path);
            // A `false` subschema's path ends with where it sits: a keyword
            // (`additionalProperties`, `items`, …), else a member's name,
            // an index or `$ref`, which is no keyword.
            let keyword = match e.kind {
                jsonschema::error::ValidationErrorKind::FalseSchema
                    if !FALSE_AT_KEYWORD.contains(&last) =>
                {
                    "false"
                }
                _ => last,
            };
            Err(SchemaError::Violation(Violation {
                schema: c.uri.to_string(),
                instance_path: e.instance_path.as_str().to_owned(),
                keyword: keyword.to_owned(),
                message: short(&e.to_string()),
            }))
        }
    }
}

/// Keywords whose value may be a `false` subschema of its own.
const FALSE_AT_KEYWORD: [&str; 9] = [
    "additionalProperties",
    "unevaluatedProperties",
    "items",
    "unevaluatedItems",
    "propertyNames",
    "contains",
    "not",
    "then",
    "else",
];

/// `s` cut to at most 200 characters.
fn short(s: &str) -> String {
    const MAX: usize = 200;
    match s.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

/// Which map of the cache a key is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Type,
    Uri,
}

#[derive(Clone)]
enum State {
    Fetching,
    Ready(Arc<Compiled>),
    Missing,
    Failed(Arc<str>),
}

struct Entry {
    state: State,
    at: Instant,
    queued: bool,
}

#[derive(Default)]
struct Maps {
    types: HashMap<String, Entry>,
    uris: HashMap<String, Entry>,
}

impl Maps {
    fn side(&mut self, side: Side) -> &mut HashMap<String, Entry> {
        match side {
            Side::Type => &mut self.types,
            Side::Uri => &mut self.uris,
        }
    }
}

/// The cache of fetched schemas, shared with the fetch thread.
struct Cache {
    maps: RwLock<Maps>,
    /// Bumped (and waiters woken) whenever a fetch ends.
    changed: Mutex<u64>,
    cond: Condvar,
}

/// The HTTP source: its fetcher, its cache and the fetch thread's queue.
struct Remote {
    fetcher: Arc<http::Fetcher>,
    cache: Arc<Cache>,
    jobs: Mutex<mpsc::Sender<(Side, String)>>,
}

impl Remote {
    fn start(fetcher: Arc<http::Fetcher>, refs: Arc<Refs>) -> Remote {
        let cache = Arc::new(Cache {
            maps: RwLock::new(Maps::default()),
            changed: Mutex::new(0),
            cond: Condvar::new(),
        });
        let (tx, rx) = mpsc::channel::<(Side, String)>();
        let (c, f) = (cache.clone(), fetcher.clone());
        // Ends when the registry (the only sender) is dropped.
        let spawned = std::thread::Builder::new()
            .name("ossa-events-schemas".into())
            .spawn(move || fetch_loop(&rx, &c, &f, &refs));
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the schema fetch thread");
        }
        Remote {
            fetcher,
            cache,
            jobs: Mutex::new(tx),
        }
    }

    /// The cached state of `key`, starting a fetch when there is none or it
    /// is due for a refresh. Never waits for the network.
    fn lookup(&self, side: Side, key: &str) -> Found {
        let f = &self.fetcher;
        // Named in errors: without the credentials a registry URL may hold.
        let what = || crate::sink::http::redacted(&f.url(side, key)).into_owned();
        let due = |e: &Entry| {
            let age = e.at.elapsed();
            !e.queued
                && match e.state {
                    State::Fetching => false,
                    State::Failed(_) => age >= f.retry_after(),
                    State::Ready(_) | State::Missing => age >= f.refresh(),
                }
        };
        let seen = {
            let maps = self
                .cache
                .maps
                .read()
                .unwrap_or_else(PoisonError::into_inner);
            let map = match side {
                Side::Type => &maps.types,
                Side::Uri => &maps.uris,
            };
            map.get(key).map(|e| (e.state.clone(), due(e)))
        };
        let state = match &seen {
            Some((state, false)) => state.clone(),
            _ => {
                let mut maps = self
                    .cache
                    .maps
                    .write()
                    .unwrap_or_else(PoisonError::into_inner);
                // Types and URIs come from the events, which a collector does
                // not control: the cache (and what it asks the registry) is
                // bounded.
                let full = maps.types.len() + maps.uris.len() >= f.max_schemas();
                if seen.is_none() && full && !maps.side(side).contains_key(key) {
                    return Found::Failed(
                        what(),
                        Arc::from("schema cache full (HttpRegistry::max_schemas)"),
                    );
                }
                let e = maps.side(side).entry(key.to_owned()).or_insert(Entry {
                    state: State::Fetching,
                    at: Instant::now(),
                    queued: false,
                });
                // A new entry, or one due again (another thread may have
                // queued it between the read and this write).
                let fresh = matches!(e.state, State::Fetching) && !e.queued;
                if fresh || due(e) {
                    e.queued = true;
                    let sent = self
                        .jobs
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .send((side, key.to_owned()));
                    if sent.is_err() {
                        e.queued = false;
                        e.state =
                            State::Failed(Arc::from("the schema fetch thread is not running"));
                    }
                }
                e.state.clone()
            }
        };
        match state {
            State::Fetching => Found::Pending(what()),
            State::Ready(c) => Found::Schema(c),
            State::Missing => Found::NoSchema,
            State::Failed(r) => Found::Failed(what(), r),
        }
    }

    /// The compiled schema of `key` if it is in the cache now.
    fn ready(&self, side: Side, key: &str) -> Option<Arc<Compiled>> {
        let maps = self
            .cache
            .maps
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let map = match side {
            Side::Type => &maps.types,
            Side::Uri => &maps.uris,
        };
        match map.get(key).map(|e| &e.state) {
            Some(State::Ready(c)) => Some(c.clone()),
            _ => None,
        }
    }

    /// Waits until a fetch ends or `deadline` passes.
    fn wait(&self, deadline: Option<Instant>) {
        let gen_now = self
            .cache
            .changed
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let seen = *gen_now;
        let left = deadline.map_or(Duration::MAX, |d| {
            d.saturating_duration_since(Instant::now())
        });
        // Short slices: a fetch that ended between our lookup and this lock
        // bumped the counter before we read it, so poll now and then too.
        let slice = left.min(Duration::from_millis(50));
        let _ = self
            .cache
            .cond
            .wait_timeout_while(gen_now, slice, |g| *g == seen);
    }
}

/// The fetch thread: fetches, compiles and caches one key at a time.
fn fetch_loop(
    rx: &mpsc::Receiver<(Side, String)>,
    cache: &Cache,
    fetcher: &http::Fetcher,
    refs: &Arc<Refs>,
) {
    while let Ok((side, key)) = rx.recv() {
        let url = fetcher.url(side, &key);
        // A panic in the client or the compiler fails this schema, not the
        // thread every later fetch needs.
        let fetched =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match fetcher.get(&url) {
                Ok(Some(v)) => match compile(&v, &url, refs, false) {
                    Ok(c) => State::Ready(Arc::new(c)),
                    Err(reason) => State::Failed(Arc::from(reason)),
                },
                Ok(None) => State::Missing,
                Err(reason) => State::Failed(Arc::from(reason)),
            }));
        let state = fetched
            .unwrap_or_else(|_| State::Failed(Arc::from("fetching or compiling it panicked")));
        if let State::Failed(reason) = &state {
            tracing::warn!(
                schema = %crate::sink::http::redacted(&url),
                reason = %reason,
                "schema fetch failed"
            );
        }
        {
            let mut maps = cache.maps.write().unwrap_or_else(PoisonError::into_inner);
            let e = maps.side(side).entry(key).or_insert(Entry {
                state: State::Fetching,
                at: Instant::now(),
                queued: true,
            });
            // A failed refresh keeps the schema it had.
            let keep_old = matches!((&e.state, &state), (State::Ready(_), State::Failed(_)));
            if !keep_old {
                e.state = state;
            }
            e.at = Instant::now();
            e.queued = false;
        }
        let mut g = cache.changed.lock().unwrap_or_else(PoisonError::into_inner);
        *g = g.wrapping_add(1);
        cache.cond.notify_all();
    }
}

/// Whether `deadline` (`None`: no limit) is still ahead.
fn before(deadline: Option<Instant>) -> bool {
    deadline.is_none_or(|d| Instant::now() < d)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `uri_key` lower-cases the scheme and the host only, and takes odd
    /// input (no scheme, no host, IPv6 literals, ports, userinfo, non-ASCII)
    /// without panicking, leaving what it does not know as it is.
    #[test]
    fn uri_key_lowers_scheme_and_host_only_and_takes_odd_input() {
        for (uri, key) in [
            (
                "HTTPS://OSSA.DEV/Schemas/A.json",
                "https://ossa.dev/Schemas/A.json",
            ),
            ("https://ossa.dev/x", "https://ossa.dev/x"),
            (
                "HTTP://User:PW@Host:8080/P?Q#F",
                "http://User:PW@host:8080/P?Q#F",
            ),
            ("http://[FE80::1]:80/X", "http://[fe80::1]:80/X"),
            ("HTTP://[::1]", "http://[::1]"),
            ("HTTP:///Path", "http:///Path"),
            ("HTTP://", "http://"),
            ("URN:ISBN:0-X", "urn:ISBN:0-X"),
            ("A:", "a:"),
            (":", ":"),
            ("", ""),
            ("no-colon", "no-colon"),
            ("http://HÖST.Example/É", "http://hÖst.example/É"),
            ("ÉTTP://H/x", "Éttp://h/x"),
            ("http://a@B@C/D", "http://a@B@c/D"),
            ("http://H?Q", "http://h?Q"),
            ("http://H#F", "http://h#F"),
        ] {
            assert_eq!(uri_key(uri), key, "{uri}");
            assert_eq!(uri_key(key), key, "idempotent: {uri}");
        }
    }

    /// A directory holding `schema` as `com.x.json`, for `name`.
    fn dir_with(name: &str, schema: &Value) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ossa-schema-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("com.x.json"), schema.to_string()).unwrap();
        dir
    }

    /// Schemas whose check at one value never ends (a `$ref` cycle through
    /// in-place applicators: the process aborted on a stack overflow at the
    /// first event) or grows exponentially (`$ref` fan-out: 8 s a check at
    /// 18 levels) are refused when loaded, naming why; recursion through
    /// members (`properties`) is fine.
    #[test]
    fn schemas_whose_check_never_ends_or_explodes_are_refused_at_load() {
        let cycle = serde_json::json!({"$defs":{"a":{"allOf":[{"$ref":"#/$defs/b"}]},
            "b":{"anyOf":[{"$ref":"#/$defs/a"}]}},"$ref":"#/$defs/a"});
        let mut defs = serde_json::Map::new();
        for i in 0..24 {
            let next = format!("#/$defs/d{}", i + 1);
            defs.insert(
                format!("d{i}"),
                serde_json::json!({"allOf":[{"$ref":next},{"$ref":next}]}),
            );
        }
        defs.insert("d24".into(), serde_json::json!({"type":"object"}));
        let fan = serde_json::json!({"$defs": defs, "$ref": "#/$defs/d0"});
        for (name, schema, why) in [
            ("cycle", cycle, "cycle"),
            ("self", serde_json::json!({"$ref":"#"}), "cycle"),
            ("fan", fan, "more than"),
        ] {
            let dir = dir_with(name, &schema);
            let err = SchemaRegistry::builder().dir(&dir).build().unwrap_err();
            assert!(err.to_string().contains(why), "{name}: {err}");
            let _ = std::fs::remove_dir_all(&dir);
        }
        let tree = serde_json::json!({"type":"object",
            "properties":{"children":{"type":"array","items":{"$ref":"#"}}}});
        let dir = dir_with("tree", &tree);
        let r = SchemaRegistry::builder().dir(&dir).build().unwrap();
        let ev = Event::builder()
            .id("1")
            .source("/s")
            .ty("com.x")
            .data_json(r#"{"children":[{"children":[]},{"children":[{}]}]}"#)
            .build()
            .unwrap();
        assert!(matches!(r.check(&ev), Ok(Checked::Valid { .. })));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A schema file without `$id` has its file's URI as its base, as JSON
    /// Schema says of a document retrieved without one: its relative `$ref`s
    /// find the files beside it (and above it), in a directory whose name
    /// needs percent-encoding, and events naming that URI as `dataschema`
    /// are checked with it. (Before, `"$ref": "common.json"` resolved to no
    /// source, and the registry refused to build.)
    #[test]
    fn relative_refs_of_schema_files_without_id_find_the_files_beside_them() {
        let root = std::env::temp_dir().join(format!("ossa-schema-rel-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let dir = root.join("my schemas#1");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::create_dir_all(root.join("shared")).unwrap();
        let order = serde_json::json!({"type":"object","required":["sku","qty"],
            "properties":{"sku":{"$ref":"common.json#/$defs/sku"},
                          "qty":{"$ref":"../shared/qty.json"}}});
        std::fs::write(dir.join("com.acme.order.json"), order.to_string()).unwrap();
        let common = serde_json::json!({"$defs":{"sku":{"type":"string","pattern":"^SKU-"}}});
        std::fs::write(dir.join("common.json"), common.to_string()).unwrap();
        let qty = serde_json::json!({"type":"integer","minimum":1});
        std::fs::write(root.join("shared").join("qty.json"), qty.to_string()).unwrap();

        let r = SchemaRegistry::builder().dir(&dir).build().unwrap();
        let ev = |data: &'static str| {
            Event::builder()
                .id("1")
                .source("/s")
                .ty("com.acme.order")
                .data_json(data)
                .build()
                .unwrap()
        };
        assert!(matches!(
            r.check(&ev(r#"{"sku":"SKU-1","qty":2}"#)),
            Ok(Checked::Valid { .. })
        ));
        let err = r
            .check(&ev(r#"{"sku":"X-1","qty":2}"#))
            .unwrap_err()
            .to_string();
        assert!(err.contains("/sku"), "{err}");
        let err = r
            .check(&ev(r#"{"sku":"SKU-1","qty":0}"#))
            .unwrap_err()
            .to_string();
        assert!(err.contains("/qty"), "{err}");

        let uri = r.schema_uri("com.acme.order").unwrap();
        let canon = std::fs::canonicalize(&dir).unwrap();
        assert!(uri.starts_with("file:///"), "{uri}");
        assert!(
            uri.ends_with("/my%20schemas%231/com.acme.order.json"),
            "{uri}"
        );
        assert!(
            uri.contains(canon.parent().unwrap().to_str().unwrap()),
            "{uri} {canon:?}"
        );
        // Named as `dataschema`, that URI picks the schema too.
        let other = Event::builder()
            .id("2")
            .source("/s")
            .ty("com.acme.other")
            .dataschema(&uri)
            .data_json(r#"{"sku":"nope","qty":1}"#)
            .build()
            .unwrap();
        assert!(r.check(&other).is_err());
        let _ = std::fs::remove_dir_all(&root);
    }

    /// The same across documents: two files whose `$ref`s lead to each other
    /// at one value (by relative file name, or by `$id`) are refused when
    /// loaded (before, the registry built, and the first check of an event
    /// of either type built an ever longer path in `jsonschema` until
    /// memory ran out), and so is a chain of `$ref`s deeper than
    /// `MAX_IN_PLACE_DEPTH`; files whose `$ref`s to each other read into
    /// the data load and check.
    #[test]
    fn ref_cycles_across_documents_and_deep_chains_are_refused_at_load() {
        let dir_of = |name: &str, files: &[(&str, Value)]| {
            let dir =
                std::env::temp_dir().join(format!("ossa-schema-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            for (file, v) in files {
                std::fs::write(dir.join(file), v.to_string()).unwrap();
            }
            dir
        };
        let by_file = [
            ("com.a.json", serde_json::json!({"$ref":"com.b.json"})),
            (
                "com.b.json",
                serde_json::json!({"allOf":[{"$ref":"com.a.json#"}]}),
            ),
        ];
        let by_id = [
            (
                "com.a.json",
                serde_json::json!({"$id":"https://x.example/a.json",
                "$ref":"https://x.example/b.json#/$defs/loop"}),
            ),
            (
                "com.b.json",
                serde_json::json!({"$id":"https://x.example/b.json",
                "$defs":{"loop":{"anyOf":[{"$ref":"a.json"}]}}}),
            ),
        ];
        let mut defs = serde_json::Map::new();
        for i in 0..300 {
            defs.insert(
                format!("d{i}"),
                serde_json::json!({"$ref": format!("#/$defs/d{}", i + 1)}),
            );
        }
        defs.insert("d300".into(), serde_json::json!({"type":"object"}));
        let deep = [(
            "com.a.json",
            serde_json::json!({"$defs": defs, "$ref": "#/$defs/d0"}),
        )];
        for (name, files, why) in [
            ("xcycle-file", &by_file[..], "cycle"),
            ("xcycle-id", &by_id[..], "cycle"),
            ("deep", &deep[..], "deep"),
        ] {
            let dir = dir_of(name, files);
            let err = SchemaRegistry::builder().dir(&dir).build().unwrap_err();
            assert!(err.to_string().contains(why), "{name}: {err}");
            let _ = std::fs::remove_dir_all(&dir);
        }
        let through_data = [
            (
                "com.a.json",
                serde_json::json!({"type":"object",
                "properties":{"b":{"$ref":"com.b.json"}}}),
            ),
            (
                "com.b.json",
                serde_json::json!({"type":"object",
                "properties":{"a":{"$ref":"com.a.json"}}, "allOf":[{"$ref":"common.json"}]}),
            ),
            ("common.json", serde_json::json!({"required":["n"]})),
        ];
        let dir = dir_of("xdata", &through_data);
        let r = SchemaRegistry::builder().dir(&dir).build().unwrap();
        let ev = |data: &'static str| {
            Event::builder()
                .id("1")
                .source("/s")
                .ty("com.a")
                .data_json(data)
                .build()
                .unwrap()
        };
        assert!(matches!(
            r.check(&ev(r#"{"b":{"n":1,"a":{"b":{"n":2}}}}"#)),
            Ok(Checked::Valid { .. })
        ));
        let err = r
            .check(&ev(r#"{"b":{"n":1,"a":{"b":{}}}}"#))
            .unwrap_err()
            .to_string();
        assert!(err.contains("/b/a/b"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn every_builtin_schema_compiles_and_has_its_id() {
        let r = SchemaRegistry::builder().build().unwrap();
        for ty in ossa::EVENT_TYPES {
            assert_eq!(r.schema_uri(ty).as_deref(), ossa::schema_uri(ty), "{ty}");
            assert!(builtin_schema(ty).is_some(), "{ty}");
        }
        assert_eq!(r.inner.by_type.len(), 11);
    }

    #[test]
    fn only_schemas_that_look_at_named_members_skip_the_others() {
        let open = serde_json::json!({"type":"object","title":"t","required":["a","b"],
            "properties":{"b":{"type":"string"},"c":{"description":"any"},"a":true}});
        let m = |name: &str, checked| Member {
            name: name.into(),
            checked,
        };
        assert_eq!(
            members_looked_at(&open).as_deref(),
            Some(&[m("a", false), m("b", true), m("c", false)][..])
        );
        for closed in [
            serde_json::json!({"type":"object","additionalProperties":false}),
            serde_json::json!({"allOf":[{"$ref":"x"}]}),
            serde_json::json!({"minProperties":3}),
            serde_json::json!(true),
        ] {
            assert_eq!(members_looked_at(&closed), None, "{closed}");
        }
        let keep = [m("tool", true), m("arguments", false)];
        let v = read_data(
            r#" {"x":[1,{"y":2}],"tool":"s","t\u006fol":"t","arguments":{"q":[1]},"z":"w"}"#,
            Some(&keep),
        )
        .unwrap();
        assert_eq!(v, serde_json::json!({"tool":"t","arguments":null}));
        assert_eq!(
            read_data("[1]", Some(&keep)).unwrap(),
            serde_json::json!([1])
        );
        assert!(read_data(r#"{"tool":1} x"#, Some(&keep)).is_err());
    }

    #[test]
    fn short_cuts_long_messages_on_a_char_boundary() {
        let long = "é".repeat(300);
        let s = short(&long);
        assert_eq!(s.chars().count(), 201);
        assert_eq!(short("ok"), "ok");
    }

    /// A `$ref` cycle through an `$anchor`, through a subschema with its own
    /// `$id`, or through a `$dynamicRef` is refused when loaded, as one
    /// through a JSON pointer is (before, none of them was followed: the
    /// registry built, and the first check of an event overflowed the
    /// stack and aborted the process); anchors, embedded `$id`s and
    /// dynamic references that read into the data load and check.
    #[test]
    fn ref_cycles_through_anchors_embedded_ids_and_dynamic_refs_are_refused_at_load() {
        for (name, schema) in [
            (
                "anchor",
                serde_json::json!({"$anchor":"a","allOf":[{"$ref":"#a"}]}),
            ),
            (
                "anchor2",
                serde_json::json!({"$defs":{"x":{"$anchor":"x","anyOf":[{"$ref":"#/$defs/y"}]},
                    "y":{"not":{"$ref":"#x"}}},"$ref":"#x"}),
            ),
            (
                "embedded",
                serde_json::json!({"$defs":{"x":{"$id":"https://e.example/x",
                    "allOf":[{"$ref":"https://e.example/x"}]}},"$ref":"https://e.example/x"}),
            ),
            (
                "embedded-rel",
                serde_json::json!({"$id":"https://e.example/root.json","$defs":{"x":{"$id":"x.json",
                    "allOf":[{"$ref":"#"}]}},"$ref":"x.json"}),
            ),
            (
                "dynamic",
                serde_json::json!({"$dynamicAnchor":"m","allOf":[{"$dynamicRef":"#m"}]}),
            ),
        ] {
            let dir = dir_with(&format!("cyc-{name}"), &schema);
            let err = SchemaRegistry::builder().dir(&dir).build();
            let _ = std::fs::remove_dir_all(&dir);
            let err = err.map(|_| ()).unwrap_err().to_string();
            assert!(err.contains("cycle"), "{name}: {err}");
        }
        let fine = serde_json::json!({"type":"object",
            "$defs":{"sku":{"$anchor":"sku","type":"string"},
                     "qty":{"$id":"https://e.example/qty","type":"integer","allOf":[{"$ref":"#/$defs/min"}],
                            "$defs":{"min":{"minimum":1}}},
                     "node":{"$dynamicAnchor":"node","type":"object",
                             "properties":{"next":{"$dynamicRef":"#node"}}}},
            "properties":{"sku":{"$ref":"#sku"},"qty":{"$ref":"https://e.example/qty"},
                          "list":{"$ref":"#/$defs/node"}}});
        let dir = dir_with("cyc-fine", &fine);
        let r = SchemaRegistry::builder().dir(&dir).build().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        let ev = |data: &'static str| {
            Event::builder()
                .id("1")
                .source("/s")
                .ty("com.x")
                .data_json(data)
                .build()
                .unwrap()
        };
        let good = r.check(&ev(r#"{"sku":"a","qty":2,"list":{"next":{"next":{}}}}"#));
        assert!(matches!(good, Ok(Checked::Valid { .. })), "{good:?}");
        for (bad, at) in [
            (r#"{"sku":1}"#, "/sku"),
            (r#"{"qty":0}"#, "/qty"),
            (r#"{"list":{"next":{"next":3}}}"#, "/list/next/next"),
        ] {
            match r.check(&ev(bad)) {
                Err(SchemaError::Violation(v)) => assert_eq!(v.instance_path, at, "{bad}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    /// Data nested as deep as an event's data may be (`MAX_DATA_DEPTH`,
    /// 128) is checked like any other (before, serde_json's own limit, one
    /// level less, made it a `type` violation of any schema); one level
    /// more is not an event.
    #[test]
    fn data_as_deep_as_an_event_may_carry_is_checked() {
        let nested = |depth: usize| {
            format!(
                "{{\"a\":{}{}}}",
                "[".repeat(depth - 1),
                "]".repeat(depth - 1)
            )
        };
        for (name, schema) in [
            (
                "whole",
                serde_json::json!({"type":"object","additionalProperties":true}),
            ),
            (
                "members",
                serde_json::json!({"type":"object","properties":{"a":{"type":"array"}}}),
            ),
        ] {
            let dir = dir_with(&format!("depth-{name}"), &schema);
            let r = SchemaRegistry::builder().dir(&dir).build().unwrap();
            let _ = std::fs::remove_dir_all(&dir);
            let deepest = nested(ossa_events_core::MAX_DATA_DEPTH);
            let ev = Event::builder()
                .id("1")
                .source("/s")
                .ty("com.x")
                .data_json(&deepest)
                .build()
                .unwrap();
            let got = r.check(&ev);
            assert!(matches!(got, Ok(Checked::Valid { .. })), "{name}: {got:?}");
            let too_deep = nested(ossa_events_core::MAX_DATA_DEPTH + 1);
            let built = Event::builder()
                .id("1")
                .source("/s")
                .ty("com.x")
                .data_json(&too_deep)
                .build();
            assert!(built.is_err(), "{name}");
        }
    }

    /// A `false` subschema that refuses a value is reported with keyword
    /// `false`, not with the last segment of its schema path (before: the
    /// member's name, `secret`, or `$ref`, where the docs promise a keyword).
    #[test]
    fn a_false_schema_is_reported_as_the_keyword_false() {
        let schema = serde_json::json!({"type":"object","$defs":{"no":false},
            "properties":{"secret":false,"a":{"$ref":"#/$defs/no"},"n":{"type":"integer"},
                          "l":{"items":false}}});
        let dir = dir_with("false-kw", &schema);
        let r = SchemaRegistry::builder().dir(&dir).build().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        for (data, at, keyword) in [
            (r#"{"secret":1}"#, "/secret", "false"),
            (r#"{"a":1}"#, "/a", "false"),
            (r#"{"n":"x"}"#, "/n", "type"),
            (r#"{"l":[1]}"#, "/l/0", "items"),
        ] {
            let ev = Event::builder()
                .id("1")
                .source("/s")
                .ty("com.x")
                .data_json(data)
                .build()
                .unwrap();
            match r.check(&ev) {
                Err(SchemaError::Violation(v)) => {
                    assert_eq!(
                        (v.instance_path.as_str(), v.keyword.as_str()),
                        (at, keyword),
                        "{data}"
                    );
                }
                other => panic!("{data}: {other:?}"),
            }
        }
    }

    /// A schema is read as the draft its `$schema` names (2020-12, 2019-09,
    /// draft-07, -06, -04), as the module docs promise, and a cycle through
    /// the keywords of the older drafts (`dependencies`, `$recursiveRef`,
    /// draft-04's `id`) is refused at load like one of 2020-12. Before,
    /// every schema was read as 2020-12: a draft-07 `dependencies` was an
    /// unknown keyword (its data passed unchecked), draft-07 tuple `items`
    /// and draft-04 boolean `exclusiveMaximum` did not load at all.
    #[test]
    fn schemas_are_read_as_the_draft_their_schema_keyword_names() {
        let check = |name: &str, schema: Value, good: &[&str], bad: &[(&str, &str, &str)]| {
            let dir = dir_with(&format!("draft-{name}"), &schema);
            let r = SchemaRegistry::builder().dir(&dir).build();
            let _ = std::fs::remove_dir_all(&dir);
            let r = r.unwrap_or_else(|e| panic!("{name}: {e}"));
            fn ev(data: &str) -> Event<'_> {
                Event::builder()
                    .id("1")
                    .source("/s")
                    .ty("com.x")
                    .data_json(data)
                    .build()
                    .unwrap()
            }
            for data in good {
                let got = r.check(&ev(data));
                assert!(
                    matches!(got, Ok(Checked::Valid { .. })),
                    "{name} {data}: {got:?}"
                );
            }
            for (data, at, keyword) in bad {
                match r.check(&ev(data)) {
                    Err(SchemaError::Violation(v)) => assert_eq!(
                        (v.instance_path.as_str(), v.keyword.as_str()),
                        (*at, *keyword),
                        "{name} {data}"
                    ),
                    other => panic!("{name} {data}: {other:?}"),
                }
            }
        };
        check(
            "07-dependencies",
            serde_json::json!({"$schema":"http://json-schema.org/draft-07/schema#",
                "type":"object","dependencies":{"a":["b"]}}),
            &[r#"{"a":1,"b":2}"#, r#"{"b":2}"#],
            &[(r#"{"a":1}"#, "", "dependencies")],
        );
        check(
            "07-tuple",
            serde_json::json!({"$schema":"http://json-schema.org/draft-07/schema#",
                "type":"array","items":[{"type":"string"}],"additionalItems":false}),
            &[r#"["a"]"#],
            &[
                (r#"[1]"#, "/0", "type"),
                (r#"["a","b"]"#, "", "additionalItems"),
            ],
        );
        check(
            "04-exclusive",
            serde_json::json!({"$schema":"http://json-schema.org/draft-04/schema#",
                "type":"object","properties":{"n":{"type":"number","maximum":10,"exclusiveMaximum":true}}}),
            &[r#"{"n":9}"#],
            &[(r#"{"n":10}"#, "/n", "exclusiveMaximum")],
        );
        check(
            "2019-recursive",
            serde_json::json!({"$schema":"https://json-schema.org/draft/2019-09/schema",
                "$recursiveAnchor":true,"type":"object","properties":{"c":{"$recursiveRef":"#"}}}),
            &[r#"{"c":{"c":{}}}"#],
            &[(r#"{"c":{"c":1}}"#, "/c/c", "type")],
        );
        check(
            "2020",
            serde_json::json!({"$schema":"https://json-schema.org/draft/2020-12/schema",
                "type":"array","prefixItems":[{"type":"string"}],"items":false}),
            &[r#"["a"]"#],
            &[(r#"["a",1]"#, "/1", "items")],
        );
        for (name, schema) in [
            (
                "07-dependencies",
                serde_json::json!({"$schema":"http://json-schema.org/draft-07/schema#",
                    "dependencies":{"a":{"$ref":"#"}}}),
            ),
            (
                "2019-recursive",
                serde_json::json!({"$schema":"https://json-schema.org/draft/2019-09/schema",
                    "$recursiveAnchor":true,"allOf":[{"$recursiveRef":"#"}]}),
            ),
            (
                "04-id",
                serde_json::json!({"$schema":"http://json-schema.org/draft-04/schema#",
                    "definitions":{"x":{"id":"http://e.example/x.json",
                        "allOf":[{"$ref":"#"}]}},
                    "allOf":[{"$ref":"http://e.example/x.json"}]}),
            ),
        ] {
            let dir = dir_with(&format!("draft-cyc-{name}"), &schema);
            let err = SchemaRegistry::builder().dir(&dir).build();
            let _ = std::fs::remove_dir_all(&dir);
            let err = err.map(|_| ()).unwrap_err().to_string();
            assert!(err.contains("cycle"), "{name}: {err}");
        }
    }

    /// A `$ref` cycle that reads no data below the root (under a member,
    /// an item, in a definition a member refers to, in another document)
    /// is refused when loaded, as one at the root is (before, the registry
    /// built, and the first event with that member overflowed the stack
    /// and aborted the process); so is a chain deeper than
    /// `MAX_IN_PLACE_DEPTH` below the root. A cycle in a definition
    /// nothing refers to is never evaluated, and loads.
    #[test]
    fn ref_cycles_below_the_root_are_refused_at_load() {
        let mut chain = serde_json::Map::new();
        for i in 0..300 {
            chain.insert(
                format!("d{i}"),
                serde_json::json!({"allOf":[{"$ref": format!("#/$defs/d{}", i + 1)}]}),
            );
        }
        chain.insert("d300".into(), serde_json::json!({"type":"object"}));
        for (name, schema, why) in [
            (
                "member",
                serde_json::json!({"type":"object",
                    "properties":{"a":{"allOf":[{"$ref":"#/properties/a"}]}}}),
                "cycle",
            ),
            (
                "item",
                serde_json::json!({"type":"array","items":{"anyOf":[{"$ref":"#/items"}]}}),
                "cycle",
            ),
            (
                "def",
                serde_json::json!({"$defs":{"x":{"not":{"$ref":"#/$defs/x"}}},
                    "properties":{"a":{"$ref":"#/$defs/x"}}}),
                "cycle",
            ),
            (
                "deep",
                serde_json::json!({"$defs": chain, "properties":{"a":{"$ref":"#/$defs/d0"}}}),
                "deep",
            ),
        ] {
            let dir = dir_with(&format!("below-{name}"), &schema);
            let err = SchemaRegistry::builder().dir(&dir).build();
            let _ = std::fs::remove_dir_all(&dir);
            let err = err.map(|_| ()).unwrap_err().to_string();
            assert!(err.contains(why), "{name}: {err}");
        }
        // In another document, below its root.
        let dir =
            std::env::temp_dir().join(format!("ossa-schema-below-doc-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let a = serde_json::json!({"properties":{"b":{"$ref":"common.json"}}});
        let common = serde_json::json!({"properties":{"c":{"oneOf":[{"$ref":"#/properties/c"}]}}});
        std::fs::write(dir.join("com.a.json"), a.to_string()).unwrap();
        std::fs::write(dir.join("common.json"), common.to_string()).unwrap();
        let err = SchemaRegistry::builder().dir(&dir).build();
        let _ = std::fs::remove_dir_all(&dir);
        let err = err.map(|_| ()).unwrap_err().to_string();
        assert!(err.contains("cycle"), "{err}");

        let unused = serde_json::json!({"type":"object","$defs":{"x":{"$ref":"#/$defs/x"}},
            "properties":{"a":{"type":"integer"}}});
        let dir = dir_with("below-unused", &unused);
        let r = SchemaRegistry::builder().dir(&dir).build();
        let _ = std::fs::remove_dir_all(&dir);
        let r = r.unwrap();
        let ev = Event::builder()
            .id("1")
            .source("/s")
            .ty("com.x")
            .data_json(r#"{"a":1}"#)
            .build()
            .unwrap();
        assert!(matches!(r.check(&ev), Ok(Checked::Valid { .. })));
    }

    /// The longest chain allowed loads and checks on a 2 MiB thread (a
    /// limit of 200 steps let a 90-link chain load, which overflowed such a
    /// thread in a debug build and aborted the process); one step more is
    /// refused.
    #[test]
    fn the_longest_chain_allowed_loads_and_checks_on_a_small_stack() {
        let chain = |links: usize| {
            let mut defs = serde_json::Map::new();
            for i in 0..links {
                defs.insert(
                    format!("d{i}"),
                    serde_json::json!({"allOf":[{"$ref": format!("#/$defs/d{}", i + 1)}]}),
                );
            }
            defs.insert(format!("d{links}"), serde_json::json!({"type":"object"}));
            serde_json::json!({"$defs": defs, "$ref": "#/$defs/d0"})
        };
        // The root's `$ref`, then two steps a link.
        let longest = (MAX_IN_PLACE_DEPTH - 1) / 2;
        let dir = dir_with("longest-chain", &chain(longest));
        let too_long = dir_with("too-long-chain", &chain(longest + 1));
        let (loaded, refused) = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || {
                let r = SchemaRegistry::builder().dir(&dir).build().unwrap();
                let ev = |data: &str| {
                    let ev = Event::builder()
                        .id("1")
                        .source("/s")
                        .ty("com.x")
                        .data_json(data)
                        .build()
                        .unwrap();
                    matches!(r.check(&ev), Ok(Checked::Valid { .. }))
                };
                let loaded = ev(r#"{"a":1}"#) && !ev("1");
                let refused = SchemaRegistry::builder().dir(&too_long).build().is_err();
                let _ = std::fs::remove_dir_all(&dir);
                let _ = std::fs::remove_dir_all(&too_long);
                (loaded, refused)
            })
            .unwrap()
            .join()
            .unwrap();
        assert!(loaded && refused, "loaded {loaded}, refused {refused}");
    }

    /// Data as deep as an event may carry, checked against a schema whose
    /// `$ref`s and `allOf`s chain at every level (each within its limits),
    /// is checked, on a caller's 2 MiB stack too (before, `jsonschema`
    /// recursed through the chain at each level of the data and the
    /// process aborted on a stack overflow, from 4 links on in a debug
    /// build).
    #[test]
    fn deep_data_under_a_long_in_place_chain_is_checked_without_overflowing() {
        for links in [4, 40] {
            let mut defs = serde_json::Map::new();
            for i in 0..links {
                defs.insert(
                    format!("d{i}"),
                    serde_json::json!({"allOf":[{"$ref": format!("#/$defs/d{}", i + 1)}]}),
                );
            }
            defs.insert(
                format!("d{links}"),
                serde_json::json!({"type":"object","properties":{"a":{"$ref":"#/$defs/d0"}}}),
            );
            let schema = serde_json::json!({"$defs": defs, "$ref": "#/$defs/d0"});
            let dir = dir_with(&format!("deep-chain-{links}"), &schema);
            let r = SchemaRegistry::builder().dir(&dir).build();
            let _ = std::fs::remove_dir_all(&dir);
            let r = r.unwrap();
            let levels = ossa_events_core::MAX_DATA_DEPTH - 1;
            let got = std::thread::Builder::new()
                .stack_size(2 << 20)
                .spawn(move || {
                    let bad = format!("{}1{}", r#"{"a":"#.repeat(levels), "}".repeat(levels));
                    let good = format!("{}{{}}{}", r#"{"a":"#.repeat(levels), "}".repeat(levels));
                    let ev = |data: &str| {
                        let ev = Event::builder()
                            .id("1")
                            .source("/s")
                            .ty("com.x")
                            .data_json(data)
                            .build()
                            .unwrap();
                        r.check(&ev)
                    };
                    (ev(&bad), ev(&good))
                })
                .unwrap()
                .join()
                .unwrap();
            match got.0 {
                Err(SchemaError::Violation(v)) => {
                    assert_eq!(v.instance_path, "/a".repeat(levels), "{links}")
                }
                other => panic!("{links}: {other:?}"),
            }
            assert!(
                matches!(got.1, Ok(Checked::Valid { .. })),
                "{links}: {:?}",
                got.1
            );
        }
    }
}
