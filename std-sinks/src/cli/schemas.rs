//! `--schemas DIR|URL`, `--schema-api` and `--require-schema`: the payload
//! schema options that `validate` and `listen` share.

use std::time::Duration;

use ossa_events::schema::{HttpRegistry, SchemaRegistry};

/// The schema options, flattened into a command's arguments.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct SchemaArgs {
    /// Also check each event's data against its JSON
    /// Schema. SOURCE is a directory DIR, a URL or 'builtin':
    /// the 11 built-in OSSA schemas, plus every TYPE.json
    /// file of DIR, or the schemas of the HTTP registry at
    /// URL (fetched on first use, cached, fetched again
    /// when 5 min old)
    #[arg(long, value_name = "SOURCE", verbatim_doc_comment)]
    pub(crate) schemas: Option<String>,
    /// How the registry at --schemas URL names a type's
    /// schema: plain (URL/TYPE.json) or confluent
    /// (URL/subjects/TYPE/versions/latest) [default: plain]
    #[arg(long, value_name = "API", verbatim_doc_comment, requires = "schemas")]
    pub(crate) schema_api: Option<String>,
    /// With --schemas: refuse events of a type that has no
    /// schema (by default they pass unchecked)
    #[arg(long, verbatim_doc_comment, requires = "schemas")]
    pub(crate) require_schema: bool,
}

/// How long a command waits for a schema the HTTP registry is fetching.
pub(crate) const FETCH_WAIT: Duration = Duration::from_secs(10);

impl SchemaArgs {
    /// The registry the options describe (`None` without `--schemas`), or
    /// the message of a usage error.
    pub(crate) fn registry(&self) -> Result<Option<SchemaRegistry>, String> {
        let Some(spec) = self.schemas.as_deref() else {
            return Ok(None);
        };
        let spec = spec.trim();
        let mut b = SchemaRegistry::builder().require_schema(self.require_schema);
        let is_url = spec.starts_with("http://") || spec.starts_with("https://");
        match (self.schema_api.as_deref(), is_url) {
            (None | Some("plain"), _) | (Some("confluent"), true) => {}
            (Some("confluent"), false) => {
                return Err("--schema-api confluent needs --schemas URL".into());
            }
            (Some(other), _) => {
                return Err(format!(
                    "unknown --schema-api '{other}': use plain or confluent"
                ));
            }
        }
        if spec.is_empty() {
            return Err("--schemas needs a directory, a URL or 'builtin'".into());
        } else if is_url {
            let http = if self.schema_api.as_deref() == Some("confluent") {
                HttpRegistry::confluent(spec)
            } else {
                HttpRegistry::new(spec)
            };
            b = b.http(http);
        } else if spec != "builtin" {
            b = b.dir(spec);
        }
        b.build().map(Some).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use ossa_events::schema::HttpRegistry;

    /// The help says how long a registry's schema is kept: the library's
    /// refresh age, which `--schemas URL` does not change.
    #[test]
    fn help_states_the_registry_refresh() {
        let want = format!(
            "fetched again when {} min old",
            HttpRegistry::DEFAULT_REFRESH.as_secs() / 60
        );
        for cmd in ["validate", "listen"] {
            let h = super::super::help_of(cmd);
            let words = h.split_whitespace().collect::<Vec<_>>().join(" ");
            assert!(words.contains(&want), "{cmd}:\n{h}");
            assert!(!h.contains("fetched once"), "{cmd}:\n{h}");
        }
    }
}
