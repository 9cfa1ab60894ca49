//! The HTTP schema registry: its settings ([`HttpRegistry`]) and the
//! blocking fetcher the registry's fetch thread runs (ureq).

use std::time::Duration;

use serde_json::Value;

use super::SchemaError;

/// How an [`HttpRegistry`] names the schema of an event type.
///
/// ```
/// use ossa_events::schema::{HttpRegistry, RegistryApi};
/// let plain = HttpRegistry::new("https://schemas.example.com/events/");
/// assert_eq!(plain.api(), &RegistryApi::Plain);
/// let confluent = HttpRegistry::confluent("http://registry:8081").version("3");
/// assert_eq!(confluent.api(), &RegistryApi::Confluent { version: "3".into() });
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RegistryApi {
    /// `GET {base}{type}.json`: a static file server or a CDN.
    Plain,
    /// The Confluent Schema Registry API (also Redpanda, Apicurio's
    /// compatibility API, Karapace): `GET
    /// {base}/subjects/{type}/versions/{version}`, the schema in the answer's
    /// `schema` member (its `schemaType` must be `JSON`). The subject is the
    /// event type.
    Confluent {
        /// `latest` or a version number.
        version: String,
    },
}

/// An HTTP schema registry, for [`SchemaRegistryBuilder::http`](super::SchemaRegistryBuilder::http).
///
/// Schemas are fetched by the registry's own thread, one at a time, each
/// within [`timeout`](Self::timeout); a body over 1 MiB is refused. An event
/// whose `dataschema` starts with the base URL has that URL fetched
/// (with [`RegistryApi::Confluent`], an answer in the Confluent envelope is
/// unwrapped); otherwise the schema of its type is fetched as the
/// [`RegistryApi`] says. A 404 for a type means "no schema" (cached like a
/// schema), except Confluent's "version not found" (`40402`) for a pinned
/// version; any other failure is an error, tried again after
/// [`retry_after`](Self::retry_after).
///
/// ```
/// use std::time::Duration;
/// use ossa_events::schema::HttpRegistry;
/// let r = HttpRegistry::new("https://schemas.example.com/events")
///     .timeout(Duration::from_secs(2))
///     .refresh(Duration::from_secs(600))
///     .retry_after(Duration::from_secs(10))
///     .header("Authorization", "Bearer t0ken");
/// assert_eq!(r.base(), "https://schemas.example.com/events/");
/// ```
#[derive(Clone)]
pub struct HttpRegistry {
    base: String,
    api: RegistryApi,
    timeout: Duration,
    refresh: Duration,
    retry_after: Duration,
    max_schemas: usize,
    headers: Vec<(String, String)>,
}

impl std::fmt::Debug for HttpRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Header values (tokens) and URL credentials stay out of logs.
        f.debug_struct("HttpRegistry")
            .field("base", &crate::sink::http::redacted(&self.base))
            .field("api", &self.api)
            .field("timeout", &self.timeout)
            .field("refresh", &self.refresh)
            .field("retry_after", &self.retry_after)
            .finish_non_exhaustive()
    }
}

impl HttpRegistry {
    /// Default time limit of one fetch, connecting included.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
    /// Default age after which a cached schema (or a 404) is fetched again.
    pub const DEFAULT_REFRESH: Duration = Duration::from_secs(300);
    /// Default wait before a failed fetch is tried again.
    pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(5);
    /// Largest schema body accepted.
    pub const MAX_SCHEMA_BYTES: u64 = 1 << 20;
    /// Default cap on the types and URIs the registry keeps (fetched, not
    /// found or failed).
    pub const DEFAULT_MAX_SCHEMAS: usize = 10_000;

    /// A plain registry: the schema of type `T` is at `{base}/T.json`.
    ///
    /// ```
    /// use ossa_events::schema::HttpRegistry;
    /// assert_eq!(HttpRegistry::new("http://localhost:8000/s").base(), "http://localhost:8000/s/");
    /// ```
    pub fn new(base: impl Into<String>) -> Self {
        Self::with_api(base.into(), RegistryApi::Plain)
    }
    /// A Confluent-compatible registry at `base` (version `latest`).
    ///
    /// ```
    /// use ossa_events::schema::{HttpRegistry, RegistryApi};
    /// let r = HttpRegistry::confluent("http://registry:8081");
    /// assert_eq!(r.api(), &RegistryApi::Confluent { version: "latest".into() });
    /// ```
    pub fn confluent(base: impl Into<String>) -> Self {
        Self::with_api(
            base.into(),
            RegistryApi::Confluent {
                version: "latest".into(),
            },
        )
    }
    fn with_api(mut base: String, api: RegistryApi) -> Self {
        if !base.ends_with('/') {
            base.push('/');
        }
        HttpRegistry {
            base,
            api,
            timeout: Self::DEFAULT_TIMEOUT,
            refresh: Self::DEFAULT_REFRESH,
            retry_after: Self::DEFAULT_RETRY_AFTER,
            max_schemas: Self::DEFAULT_MAX_SCHEMAS,
            headers: Vec::new(),
        }
    }
    /// The subject version to fetch from a Confluent registry (`latest` or
    /// a number). Defaults to `latest`; no effect on a plain registry.
    ///
    /// ```
    /// use ossa_events::schema::{HttpRegistry, RegistryApi};
    /// let r = HttpRegistry::confluent("http://registry:8081").version("7");
    /// assert_eq!(r.api(), &RegistryApi::Confluent { version: "7".into() });
    /// ```
    pub fn version(mut self, version: impl Into<String>) -> Self {
        if let RegistryApi::Confluent { version: v } = &mut self.api {
            *v = version.into();
        }
        self
    }
    /// Time limit of one fetch, connecting included (`Duration::MAX`: no
    /// limit). Defaults to `5 s`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use ossa_events::schema::HttpRegistry;
    /// let r = HttpRegistry::new("http://localhost:8000").timeout(Duration::from_millis(500));
    /// # drop(r);
    /// ```
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = d;
        self
    }
    /// Age after which a schema (or a "no schema" answer) is fetched again,
    /// in the background, the cached one staying in use. Defaults to `300 s`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use ossa_events::schema::HttpRegistry;
    /// let r = HttpRegistry::new("http://localhost:8000").refresh(Duration::from_secs(60));
    /// # drop(r);
    /// ```
    pub fn refresh(mut self, d: Duration) -> Self {
        self.refresh = d;
        self
    }
    /// Wait before a failed fetch is tried again (events needing that
    /// schema are refused meanwhile). Defaults to `5 s`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use ossa_events::schema::HttpRegistry;
    /// let r = HttpRegistry::new("http://localhost:8000").retry_after(Duration::from_secs(1));
    /// # drop(r);
    /// ```
    pub fn retry_after(mut self, d: Duration) -> Self {
        self.retry_after = d;
        self
    }
    /// Most types and URIs kept in the cache (schemas, "no schema" answers
    /// and failures alike). Event types come from whoever sends the events:
    /// past the cap, a type or URI not seen yet is refused with reason
    /// "schema cache full" instead of being fetched, so a stream of made-up
    /// types costs neither memory nor requests to the registry. Defaults to
    /// `10 000`.
    ///
    /// ```
    /// use ossa_events::schema::HttpRegistry;
    /// let r = HttpRegistry::new("http://localhost:8000").max_schemas(500);
    /// # drop(r);
    /// ```
    pub fn max_schemas(mut self, n: usize) -> Self {
        self.max_schemas = n.max(1);
        self
    }
    /// A header sent with every fetch (an `Authorization` token; kept out of
    /// `Debug`). Defaults to none.
    ///
    /// ```
    /// use ossa_events::schema::HttpRegistry;
    /// let r = HttpRegistry::new("http://localhost:8000").header("Authorization", "Basic dTpw");
    /// assert!(!format!("{r:?}").contains("dTpw"));
    /// ```
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
    /// The base URL, ending with `/`.
    ///
    /// ```
    /// use ossa_events::schema::HttpRegistry;
    /// assert_eq!(HttpRegistry::new("http://h/x/").base(), "http://h/x/");
    /// ```
    pub fn base(&self) -> &str {
        &self.base
    }
    /// How schemas are named.
    ///
    /// ```
    /// use ossa_events::schema::{HttpRegistry, RegistryApi};
    /// assert_eq!(HttpRegistry::new("http://h/").api(), &RegistryApi::Plain);
    /// ```
    pub fn api(&self) -> &RegistryApi {
        &self.api
    }
}

/// Fetches schemas over HTTP (blocking: only ever called on the registry's
/// fetch thread, or while a registry is built).
pub(super) struct Fetcher {
    config: HttpRegistry,
    agent: ureq::Agent,
}

impl Fetcher {
    pub(super) fn new(config: HttpRegistry) -> Result<Fetcher, SchemaError> {
        let uri: Result<ureq::http::Uri, _> = config.base.parse();
        let ok = uri
            .as_ref()
            .is_ok_and(|u| matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some());
        if !ok {
            return Err(SchemaError::Load {
                source: config.base.clone(),
                reason: "not an http:// or https:// URL".into(),
            });
        }
        // A limit the clock cannot hold (`Duration::MAX`) is no limit, as
        // `check_within` reads it: the client panicked adding it to the
        // clock at every fetch. Twice the limit must fit, for the calls
        // that start after now.
        let timeout =
            crate::worker::after(config.timeout.saturating_mul(2)).map(|_| config.timeout);
        let agent_config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            // Schemas come from under the registry's URL only, and the
            // configured headers (tokens) go nowhere else: a redirect is
            // a failed fetch, not followed (it was, to any host, with them).
            .max_redirects(0)
            .timeout_global(timeout)
            .timeout_connect(timeout)
            .user_agent(concat!("ossa-events/", env!("CARGO_PKG_VERSION")))
            .build();
        Ok(Fetcher {
            agent: ureq::Agent::new_with_config(agent_config),
            config,
        })
    }

    pub(super) fn base(&self) -> &str {
        &self.config.base
    }
    pub(super) fn refresh(&self) -> Duration {
        self.config.refresh
    }
    pub(super) fn max_schemas(&self) -> usize {
        self.config.max_schemas
    }
    pub(super) fn retry_after(&self) -> Duration {
        self.config.retry_after
    }

    /// `uri` spelled with this registry's URL, when it is this registry's to
    /// fetch: under its URL, with no `..` segment (written as is or
    /// percent-encoded, `/` or `\\` between segments, as servers read them)
    /// that would climb out of it on the server. It comes from the event's
    /// sender, as a type does. Its scheme and authority match in any case
    /// (RFC 3986 §6.2.2.1: `HTTP://Host/` is `http://host/`, as a sender may
    /// write it and as `jsonschema` writes the `$ref`s it resolves); before,
    /// such a URI was not the registry's (a declared schema was ignored, a
    /// served schema's relative `$ref`s had no source).
    pub(super) fn serves(&self, uri: &str) -> Option<String> {
        let base = &self.config.base;
        // The base is an http(s) URL ending with `/`: its scheme and
        // authority end at the first `/` after `://`.
        let head = base.find("://").map_or(0, |i| i + 3);
        let authority_end = base[head..].find('/').map_or(base.len(), |i| head + i);
        let (base_authority, base_path) = base.split_at(authority_end);
        if !uri
            .get(..authority_end)
            .is_some_and(|a| a.eq_ignore_ascii_case(base_authority))
        {
            return None;
        }
        let rest = uri.get(authority_end..)?.strip_prefix(base_path)?;
        let path = rest.split(['?', '#']).next().unwrap_or(rest);
        let path = percent_encoding::percent_decode_str(path).decode_utf8_lossy();
        if path.split(['/', '\\']).any(|segment| segment == "..") {
            return None;
        }
        Some(format!("{base}{rest}"))
    }

    /// Whether the schema of type `ty` may be asked of this registry: not
    /// when its URL would not name it (an empty type; with the Confluent
    /// API, `.` or `..`, a dot segment of `subjects/{type}/versions/…` that
    /// the server resolves to another of its resources).
    pub(super) fn asks_for_type(&self, ty: &str) -> bool {
        match self.config.api {
            RegistryApi::Plain => !ty.is_empty(),
            RegistryApi::Confluent { .. } => !matches!(ty, "" | "." | ".."),
        }
    }

    /// The URL a key is fetched from.
    pub(super) fn url(&self, side: super::Side, key: &str) -> String {
        match (side, &self.config.api) {
            (super::Side::Uri, _) => key.to_owned(),
            // The type as one path segment: it comes from the event's
            // sender (`../x` or `a#` left the registry's path, or named
            // another of its resources).
            (super::Side::Type, RegistryApi::Plain) => {
                format!("{}{}.json", self.config.base, encode_segment(key))
            }
            (super::Side::Type, RegistryApi::Confluent { version }) => format!(
                "{}subjects/{}/versions/{}",
                self.config.base,
                encode_segment(key),
                encode_segment(version)
            ),
        }
    }

    /// The schema at `url`: `Ok(None)` for a 404, `Err(reason)` for any
    /// other failure.
    pub(super) fn get(&self, url: &str) -> Result<Option<Value>, String> {
        let mut req = self.agent.get(url).header(
            "accept",
            "application/schema+json, application/vnd.schemaregistry.v1+json, application/json",
        );
        for (n, v) in &self.config.headers {
            req = req.header(n.as_str(), v.as_str());
        }
        let mut resp = req.call().map_err(|e| match e {
            ureq::Error::Timeout(_) => format!("timed out after {:?}", self.config.timeout),
            e => format!("fetch failed: {e}"),
        })?;
        let status = resp.status().as_u16();
        let body = resp
            .body_mut()
            .with_config()
            .limit(HttpRegistry::MAX_SCHEMA_BYTES)
            .read_to_vec();
        if status == 404 {
            // Confluent tells "no such subject" (40401: the type has no
            // schema) from "no such version" (40402: a pinned version that
            // is not there, which must not make every event pass).
            let code = body
                .as_deref()
                .ok()
                .and_then(|b| serde_json::from_slice::<Value>(b).ok())
                .and_then(|v| v.get("error_code").and_then(Value::as_u64));
            if let (RegistryApi::Confluent { version }, Some(40402)) = (&self.config.api, code) {
                return Err(format!("version {version} not found (40402)"));
            }
            return Ok(None);
        }
        if (300..400).contains(&status) {
            return Err(format!(
                "registry answered {status} (redirects are not followed: schemas come from under its URL)"
            ));
        }
        if !(200..300).contains(&status) {
            return Err(format!("registry answered {status}"));
        }
        let body = body.map_err(|e| match e {
            ureq::Error::Timeout(_) => format!("timed out after {:?}", self.config.timeout),
            e => format!("reading the answer failed: {e}"),
        })?;
        let v: Value = serde_json::from_slice(&body)
            .map_err(|e| format!("answer is not JSON: {}", super::short(&e.to_string())))?;
        match &self.config.api {
            RegistryApi::Confluent { .. } => unwrap_confluent(v).map(Some),
            RegistryApi::Plain => Ok(Some(v)),
        }
    }
}

/// The schema inside a Confluent answer (`{"subject", "version", "id",
/// "schemaType", "schema": "<text>"}`); an answer without the envelope is
/// taken as the schema itself. The API leaves `schemaType` out for an
/// AVRO schema (its default): an envelope without it is not JSON Schema
/// (before, an Avro schema was compiled as one and failed as "not a valid
/// JSON Schema", which named the wrong cause).
fn unwrap_confluent(v: Value) -> Result<Value, String> {
    let Some(text) = v.get("schema").and_then(Value::as_str) else {
        return Ok(v);
    };
    match v.get("schemaType").and_then(Value::as_str) {
        Some("JSON") => {}
        None => return Err("no schemaType, which is AVRO in the Confluent API, not JSON".into()),
        Some(other) => return Err(format!("schemaType is {other}, not JSON")),
    }
    serde_json::from_str(text)
        .map_err(|e| format!("its schema is not JSON: {}", super::short(&e.to_string())))
}

/// `s` percent-encoded as one path segment.
fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_by_api() {
        let f = Fetcher::new(HttpRegistry::new("http://h:1/s")).unwrap();
        assert_eq!(
            f.url(super::super::Side::Type, "a.b"),
            "http://h:1/s/a.b.json"
        );
        assert!(
            f.serves("http://h:1/s/x.json").is_some() && f.serves("http://other/x.json").is_none()
        );
        assert!(
            f.serves("http://h:1/s/a/b..c.json").is_some()
                && f.serves("http://h:1/s/x.json?v=..%2F").is_some()
        );
        assert_eq!(
            f.serves("HTTP://H:1/s/x.json").as_deref(),
            Some("http://h:1/s/x.json")
        );
        assert!(f.serves("http://h:1/S/x.json").is_none() && f.serves("http://h:10/s/x").is_none());
        for out in [
            "http://h:1/s/../x",
            "http://h:1/s/a/%2E%2e/../x",
            "http://h:1/s/..%5Cx",
        ] {
            assert!(f.serves(out).is_none(), "{out}");
        }
        // A type is one path segment, whoever sent it.
        for (ty, url) in [
            ("../admin/secret", "http://h:1/s/..%2Fadmin%2Fsecret.json"),
            ("com.a#", "http://h:1/s/com.a%23.json"),
            ("com.a?x=", "http://h:1/s/com.a%3Fx%3D.json"),
            ("com b", "http://h:1/s/com%20b.json"),
        ] {
            assert_eq!(f.url(super::super::Side::Type, ty), url, "{ty}");
        }
        let f = Fetcher::new(HttpRegistry::confluent("http://h:1").version("2")).unwrap();
        assert_eq!(
            f.url(super::super::Side::Type, "a b"),
            "http://h:1/subjects/a%20b/versions/2"
        );
        assert!(Fetcher::new(HttpRegistry::new("ftp://h/")).is_err());
    }

    #[test]
    fn confluent_envelope() {
        let v = serde_json::json!({"subject":"t","version":1,"id":3,"schemaType":"JSON","schema":"{\"type\":\"object\"}"});
        assert_eq!(
            unwrap_confluent(v).unwrap(),
            serde_json::json!({"type":"object"})
        );
        // No `schemaType` is AVRO, the API's default.
        let avro = serde_json::json!({"subject":"t","version":1,"id":3,"schema":"\"string\""});
        assert!(unwrap_confluent(avro).unwrap_err().contains("AVRO"));
        let avro = serde_json::json!({"schemaType":"AVRO","schema":"{}"});
        assert!(unwrap_confluent(avro).unwrap_err().contains("AVRO"));
    }
}
