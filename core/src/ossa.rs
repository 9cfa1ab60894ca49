//! OSSA (Open Standard for Software Agents): the 11 lifecycle event types, the
//! four extensions, and typed payloads for each event.
//!
//! Each payload type (e.g. [`ToolCalled`]) knows its event type and writes its
//! `data` object by hand (no serde), so an OSSA event costs no more than its bytes.
//!
//! ```
//! use ossa_events_core::{ossa, Event, RawJson};
//! let ctx = ossa::Context { agent_id: Some("researcher"), trace_id: Some("t-1"), ..Default::default() };
//! let call = ossa::ToolCalled {
//!     tool: "web_search",
//!     call_id: Some("call-1"),
//!     arguments: Some(RawJson::new(r#"{"query":"rust no_std"}"#)?),
//! };
//! let ev = Event::builder()
//!     .id("1").source("/agents/researcher")
//!     .ossa(&call)
//!     .ossa_context(&ctx)
//!     .build()?;
//! assert_eq!(ev.ty(), ossa::TOOL_CALLED);
//! assert_eq!(ev.subject(), Some("web_search"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use core::fmt;

use crate::event::EventBuilder;
use crate::io::WriteError;
use crate::json::escape::write_str;
use crate::json::lex::JsonError;
use crate::json::ser::{Erased, JsonPayload, PayloadWriter, SerError};

/// `dev.ossa.agent.started`
pub const AGENT_STARTED: &str = "dev.ossa.agent.started";
/// `dev.ossa.agent.completed`
pub const AGENT_COMPLETED: &str = "dev.ossa.agent.completed";
/// `dev.ossa.agent.failed`
pub const AGENT_FAILED: &str = "dev.ossa.agent.failed";
/// `dev.ossa.tool.called`
pub const TOOL_CALLED: &str = "dev.ossa.tool.called";
/// `dev.ossa.tool.completed`
pub const TOOL_COMPLETED: &str = "dev.ossa.tool.completed";
/// `dev.ossa.tool.failed`
pub const TOOL_FAILED: &str = "dev.ossa.tool.failed";
/// `dev.ossa.turn.started`
pub const TURN_STARTED: &str = "dev.ossa.turn.started";
/// `dev.ossa.turn.completed`
pub const TURN_COMPLETED: &str = "dev.ossa.turn.completed";
/// `dev.ossa.state.updated`
pub const STATE_UPDATED: &str = "dev.ossa.state.updated";
/// `dev.ossa.workflow.started`
pub const WORKFLOW_STARTED: &str = "dev.ossa.workflow.started";
/// `dev.ossa.workflow.completed`
pub const WORKFLOW_COMPLETED: &str = "dev.ossa.workflow.completed";

/// All 11 OSSA event types.
pub const EVENT_TYPES: [&str; 11] = [
    AGENT_STARTED,
    AGENT_COMPLETED,
    AGENT_FAILED,
    TOOL_CALLED,
    TOOL_COMPLETED,
    TOOL_FAILED,
    TURN_STARTED,
    TURN_COMPLETED,
    STATE_UPDATED,
    WORKFLOW_STARTED,
    WORKFLOW_COMPLETED,
];

/// Where the JSON Schemas (draft 2020-12) of the OSSA payloads live: the
/// schema of type `T` has the `$id` `SCHEMA_BASE` + `T` + `.json`, e.g.
/// `https://ossa.dev/schemas/events/v1/dev.ossa.tool.called.json`. The `v1`
/// changes only with an incompatible change to a payload.
pub const SCHEMA_BASE: &str = "https://ossa.dev/schemas/events/v1/";

/// The schema URI (`$id`) of an OSSA event type's payload, for the
/// `dataschema` attribute; `None` for a type that is not one of [`EVENT_TYPES`].
///
/// ```
/// use ossa_events_core::ossa;
/// assert_eq!(
///     ossa::schema_uri(ossa::TOOL_CALLED),
///     Some("https://ossa.dev/schemas/events/v1/dev.ossa.tool.called.json")
/// );
/// assert_eq!(ossa::schema_uri("com.example.custom"), None);
/// ```
pub fn schema_uri(ty: &str) -> Option<&'static str> {
    macro_rules! uris {
        ($($t:literal),*) => {
            match ty {
                $($t => Some(concat!("https://ossa.dev/schemas/events/v1/", $t, ".json")),)*
                _ => None,
            }
        };
    }
    uris!(
        "dev.ossa.agent.started",
        "dev.ossa.agent.completed",
        "dev.ossa.agent.failed",
        "dev.ossa.tool.called",
        "dev.ossa.tool.completed",
        "dev.ossa.tool.failed",
        "dev.ossa.turn.started",
        "dev.ossa.turn.completed",
        "dev.ossa.state.updated",
        "dev.ossa.workflow.started",
        "dev.ossa.workflow.completed"
    )
}

/// Extension `ossaagentid`: the agent that emitted the event.
pub const EXT_AGENT_ID: &str = "ossaagentid";
/// Extension `ossainteractionid`: the conversation or session.
pub const EXT_INTERACTION_ID: &str = "ossainteractionid";
/// Extension `ossatraceid`: the distributed trace.
pub const EXT_TRACE_ID: &str = "ossatraceid";
/// Extension `ossaspanid`: the span within the trace.
pub const EXT_SPAN_ID: &str = "ossaspanid";

/// The OSSA context attached to events as the four extensions.
///
/// ```
/// use ossa_events_core::{ossa, Event};
/// let ctx = ossa::Context {
///     agent_id: Some("researcher"),
///     interaction_id: Some("chat-42"),
///     ..Default::default()
/// };
/// let ev = Event::builder().id("1").source("/s").ty("t").ossa_context(&ctx).build()?;
/// assert_eq!(ev.ossa_interaction_id(), Some("chat-42"));
/// assert_eq!(ev.ossa_span_id(), None);
/// # Ok::<(), ossa_events_core::ValidationError>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Context<'a> {
    /// `ossaagentid`
    pub agent_id: Option<&'a str>,
    /// `ossainteractionid`
    pub interaction_id: Option<&'a str>,
    /// `ossatraceid`
    pub trace_id: Option<&'a str>,
    /// `ossaspanid`
    pub span_id: Option<&'a str>,
}

/// A piece of JSON text checked to be one well-formed JSON value.
///
/// ```
/// use ossa_events_core::{json::JsonErrorKind, RawJson};
/// let args = RawJson::new(r#"{"query": "rust"}"#)?;
/// assert_eq!(args.as_str(), r#"{"query": "rust"}"#);
/// let err = RawJson::new(r#"{"query": }"#).unwrap_err();
/// assert_eq!(err.kind, JsonErrorKind::UnexpectedByte(b'}'));
/// # Ok::<(), ossa_events_core::JsonError>(())
/// ```
#[derive(Clone, Copy)]
pub struct RawJson<'a> {
    json: &'a str,
    /// How the encoders copy it: `None` when it has no whitespace outside
    /// strings (written as it is), else the compacting copy (see
    /// [`crate::json::lex::compactor`]).
    compact: Option<crate::json::lex::Compact>,
}

impl fmt::Debug for RawJson<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawJson").field("json", &self.json).finish()
    }
}

/// Equal when the texts are: how a text is copied follows from the text.
impl PartialEq for RawJson<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.json == other.json
    }
}

impl Eq for RawJson<'_> {}

impl<'a> RawJson<'a> {
    /// The deepest nesting [`new`](Self::new) accepts: one level less than
    /// [`crate::MAX_DATA_DEPTH`], since a payload writes the value as a
    /// member of its own object and the parsers read `data` nested up to
    /// that limit.
    ///
    /// ```
    /// use ossa_events_core::{RawJson, MAX_DATA_DEPTH};
    /// assert_eq!(RawJson::MAX_DEPTH, MAX_DATA_DEPTH - 1);
    /// let deep = "[".repeat(RawJson::MAX_DEPTH + 1) + &"]".repeat(RawJson::MAX_DEPTH + 1);
    /// assert!(RawJson::new(&deep).is_err());
    /// ```
    pub const MAX_DEPTH: usize = crate::event::MAX_DATA_DEPTH - 1;

    /// Checks `json` (one JSON value, nesting up to [`MAX_DEPTH`](Self::MAX_DEPTH)).
    ///
    /// ```
    /// use ossa_events_core::{json::JsonErrorKind, RawJson};
    /// assert!(RawJson::new("[1, 2, 3]").is_ok());
    /// // Exactly one value: a second one is an error, with its byte offset.
    /// let err = RawJson::new("1 2").unwrap_err();
    /// assert_eq!((err.offset, err.kind), (2, JsonErrorKind::TrailingCharacters));
    /// ```
    pub fn new(json: &'a str) -> Result<Self, JsonError> {
        let compact = crate::json::validate_compact(json.as_bytes(), Self::MAX_DEPTH)?;
        Ok(RawJson {
            json,
            compact: crate::json::lex::compactor(compact),
        })
    }
    /// JSON text the caller vouches for, not checked: for literals in
    /// firmware, where [`new`](Self::new) would link a JSON validator (about
    /// 4 KiB of flash on a Cortex-M) only to check constants. Check them once
    /// in a host test with `new`. Only `'static` text is taken, so input read
    /// at run time cannot reach it by accident.
    ///
    /// The encoders copy the text as it is (compacted outside strings), so
    /// text that is not exactly one well-formed JSON value is written into
    /// the event unchecked: it can make the event malformed, and crafted text
    /// can add members to the event (`1},"id":"x`) or, with a raw newline in
    /// a string, split a JSON Lines record in two. Never pass it anything
    /// but a literal you have checked.
    ///
    /// ```
    /// use ossa_events_core::{format::json, ossa, Event, RawJson};
    /// const ARGS: RawJson<'static> = RawJson::trusted(r#"{ "power_pct": 60 }"#);
    /// assert_eq!(RawJson::new(ARGS.as_str())?.as_str(), ARGS.as_str()); // the host test
    /// let call = ossa::ToolCalled { tool: "set_heater", call_id: None, arguments: Some(ARGS) };
    /// let ev = Event::builder().id("1").source("/s").ossa(&call).build()?;
    /// let mut buf = [0u8; 256];
    /// let n = json::to_slice(&ev, &mut buf)?;
    /// assert!(buf[..n].ends_with(br#""arguments":{"power_pct":60}}}"#)); // compact
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub const fn trusted(json: &'static str) -> Self {
        RawJson {
            json,
            compact: crate::json::lex::compactor(has_no_space_outside_strings(json.as_bytes())),
        }
    }
    /// The JSON text as given.
    ///
    /// ```
    /// # use ossa_events_core::RawJson;
    /// let raw = RawJson::new(" true ")?;
    /// assert_eq!(raw.as_str(), " true "); // as given; encoders write it compact
    /// # Ok::<(), ossa_events_core::JsonError>(())
    /// ```
    pub fn as_str(&self) -> &'a str {
        self.json
    }
}

/// Whether JSON text has no whitespace outside its strings, byte by byte:
/// for [`RawJson::trusted`], where it runs when the constant is compiled, so
/// the firmware carries neither this loop nor, for compact constants, the
/// compacting copy.
const fn has_no_space_outside_strings(b: &[u8]) -> bool {
    let mut i = 0;
    let mut in_string = false;
    while i < b.len() {
        let c = b[i];
        if in_string {
            if c == b'\\' {
                // The escaped byte cannot end the string.
                i += 1;
            } else if c == b'"' {
                in_string = false;
            }
        } else if c == b'"' {
            in_string = true;
        } else if matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
            return false;
        }
        i += 1;
    }
    true
}

/// An OSSA event payload: knows its event type and subject.
///
/// ```
/// use ossa_events_core::ossa::{self, Payload};
/// let call = ossa::ToolCalled { tool: "web_search", ..Default::default() };
/// assert_eq!(ossa::ToolCalled::TYPE, ossa::TOOL_CALLED);
/// assert_eq!(call.subject(), Some("web_search"));
/// assert_eq!(ossa::TurnStarted::default().subject(), None);
/// ```
pub trait Payload: JsonPayload {
    /// The OSSA event type, one of [`EVENT_TYPES`].
    const TYPE: &'static str;
    /// The `subject` attribute for this event (the tool, agent, workflow or state key).
    ///
    /// ```
    /// use ossa_events_core::ossa::{self, Payload};
    /// let update = ossa::StateUpdated { key: "memory.goal", value: None };
    /// assert_eq!(update.subject(), Some("memory.goal"));
    /// ```
    fn subject(&self) -> Option<&str>;
}

impl<'a> EventBuilder<'a> {
    /// Sets `type`, `subject`, `datacontenttype: application/json` and `data` from an OSSA payload.
    /// An empty subject field (a tool call with no tool name) sets no
    /// `subject`: the attribute, when present, must not be empty (spec
    /// 3.1.1), and the payload itself is valid.
    ///
    /// ```
    /// use ossa_events_core::{ossa, Event};
    /// let started = ossa::AgentStarted { agent_id: "planner", version: Some("1.2.0"), ..Default::default() };
    /// let ev = Event::builder().id("1").source("/agents/planner").ossa(&started).build()?;
    /// assert_eq!(ev.ty(), ossa::AGENT_STARTED);
    /// assert_eq!(ev.subject(), Some("planner"));
    /// assert_eq!(ev.datacontenttype(), Some("application/json"));
    /// let unnamed = ossa::ToolCalled { tool: "", ..Default::default() };
    /// let ev = Event::builder().id("2").source("/agents/planner").ossa(&unnamed).build()?;
    /// assert_eq!((ev.ty(), ev.subject()), (ossa::TOOL_CALLED, None));
    /// # Ok::<(), ossa_events_core::ValidationError>(())
    /// ```
    #[inline]
    pub fn ossa<P: Payload>(self, payload: &'a P) -> Self {
        self.ossa_parts(P::TYPE, payload.subject(), payload)
    }

    /// [`ossa`](Self::ossa) without the payload's type: what the emitters'
    /// `emit_ossa` build, so their code is compiled once, not per payload type.
    #[inline]
    pub(crate) fn ossa_parts(
        self,
        ty: &'static str,
        subject: Option<&'a str>,
        payload: &'a dyn JsonPayload,
    ) -> Self {
        let b = self.ty(ty).data_serialize(payload);
        match subject {
            Some(s) if !s.is_empty() => b.subject(s),
            _ => b,
        }
    }
}

/// An error reported by an agent, workflow or tool.
///
/// ```
/// use ossa_events_core::{format::json, ossa, Event};
///
/// let p = ossa::ToolFailed {
///     tool: "fetch",
///     error: ossa::ErrorInfo { message: "timed out", code: Some("timeout"), retryable: Some(true) },
///     ..Default::default()
/// };
/// let ev = Event::builder().id("1").source("/agents/a").ossa(&p).build()?;
/// assert_eq!((ev.ty(), ev.subject()), (ossa::TOOL_FAILED, Some("fetch")));
/// let mut buf = [0u8; 512];
/// let n = json::to_slice(&ev, &mut buf)?;
/// assert!(buf[..n].ends_with(br#""data":{"tool":"fetch","error":{"message":"timed out","code":"timeout","retryable":true}}}"#));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ErrorInfo<'a> {
    /// Human-readable message.
    pub message: &'a str,
    /// Machine-readable code, e.g. `"timeout"`.
    pub code: Option<&'a str>,
    /// Whether trying again may succeed.
    pub retryable: Option<bool>,
}

/// Token counts of a model turn.
///
/// ```
/// use ossa_events_core::{format::json, ossa, Event};
///
/// let usage = ossa::TokenUsage { input_tokens: 812, output_tokens: 64 };
/// let p = ossa::TurnCompleted { turn: 1, usage: Some(usage), ..Default::default() };
/// let ev = Event::builder().id("1").source("/agents/a").ossa(&p).build()?;
/// assert_eq!((ev.ty(), ev.subject()), (ossa::TURN_COMPLETED, None));
/// let mut buf = [0u8; 512];
/// let n = json::to_slice(&ev, &mut buf)?;
/// assert!(buf[..n].ends_with(br#""data":{"turn":1,"usage":{"input_tokens":812,"output_tokens":64}}}"#));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenUsage {
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Completion tokens.
    pub output_tokens: u64,
}

type R = Result<(), SerError<Erased>>;

/// A member name as written: `"name":`.
macro_rules! k {
    ($name:literal) => {
        concat!("\"", $name, "\":")
    };
}
type DynW<'w> = PayloadWriter<'w>;

/// Writes a JSON object member by member.
struct Obj<'w, 'x> {
    w: &'w mut DynW<'x>,
    first: bool,
}

impl<'w, 'x> Obj<'w, 'x> {
    fn start(w: &'w mut DynW<'x>) -> Result<Self, SerError<Erased>> {
        put(w, b"{")?;
        Ok(Obj { w, first: true })
    }
    /// Writes a member name given as `"name":` (see [`k!`]).
    fn key(&mut self, k: &str) -> R {
        if !self.first {
            put(self.w, b",")?;
        }
        self.first = false;
        put(self.w, k.as_bytes())
    }
    fn str(&mut self, k: &str, v: &str) -> R {
        self.key(k)?;
        write_str(self.w, v).map_err(SerError::Write)
    }
    fn opt_str(&mut self, k: &str, v: Option<&str>) -> R {
        match v {
            Some(v) => self.str(k, v),
            None => Ok(()),
        }
    }
    fn u64(&mut self, k: &str, v: u64) -> R {
        self.key(k)?;
        let mut buf = [0u8; 20];
        put(self.w, crate::num::write_u64(&mut buf, v))
    }
    fn opt_u64(&mut self, k: &str, v: Option<u64>) -> R {
        match v {
            Some(v) => self.u64(k, v),
            None => Ok(()),
        }
    }
    fn raw(&mut self, k: &str, v: Option<RawJson<'_>>) -> R {
        match v {
            Some(v) => {
                self.key(k)?;
                crate::json::lex::write_json_text(self.w, v.json.as_bytes(), v.compact)
                    .map_err(SerError::Write)
            }
            None => Ok(()),
        }
    }
    fn error(&mut self, k: &str, e: &ErrorInfo<'_>) -> R {
        self.key(k)?;
        let mut o = Obj::start(self.w)?;
        o.str(k!("message"), e.message)?;
        o.opt_str(k!("code"), e.code)?;
        if let Some(r) = e.retryable {
            o.key(k!("retryable"))?;
            put(o.w, if r { b"true" } else { b"false" })?;
        }
        o.end()
    }
    fn usage(&mut self, k: &str, u: Option<TokenUsage>) -> R {
        let Some(u) = u else { return Ok(()) };
        self.key(k)?;
        let mut o = Obj::start(self.w)?;
        o.u64(k!("input_tokens"), u.input_tokens)?;
        o.u64(k!("output_tokens"), u.output_tokens)?;
        o.end()
    }
    fn end(self) -> R {
        put(self.w, b"}")
    }
}

fn put(w: &mut DynW<'_>, b: &[u8]) -> R {
    crate::io::write_all(w, b).map_err(|e: WriteError<Erased>| SerError::Write(e))
}

/// One member of a payload object, by kind; [`write_members`] writes a
/// list of them. Each payload's `write_json` only lists its members, so the
/// writing code is compiled once, not once per payload type.
#[derive(Clone, Copy)]
enum Member<'a> {
    Str(&'a str),
    OptStr(Option<&'a str>),
    U64(u64),
    OptU64(Option<u64>),
    Raw(Option<RawJson<'a>>),
    Error(&'a ErrorInfo<'a>),
    Usage(Option<TokenUsage>),
}

/// Writes `members` as a JSON object, leaving out the `None`s.
#[inline(never)]
fn write_members(w: &mut DynW<'_>, members: &[(&str, Member<'_>)]) -> R {
    let mut o = Obj::start(w)?;
    for &(k, m) in members {
        match m {
            Member::Str(v) => o.str(k, v)?,
            Member::OptStr(v) => o.opt_str(k, v)?,
            Member::U64(v) => o.u64(k, v)?,
            Member::OptU64(v) => o.opt_u64(k, v)?,
            Member::Raw(v) => o.raw(k, v)?,
            Member::Error(e) => o.error(k, e)?,
            Member::Usage(u) => o.usage(k, u)?,
        }
    }
    o.end()
}

macro_rules! payload {
    ($ty:ident, $const:ident, $subject:ident, |$s:ident| $members:expr) => {
        impl JsonPayload for $ty<'_> {
            fn write_json(&self, w: &mut DynW<'_>) -> R {
                let $s = self;
                write_members(w, &$members)
            }
        }
        impl Payload for $ty<'_> {
            const TYPE: &'static str = $const;
            fn subject(&self) -> Option<&str> {
                payload!(@subject self, $subject)
            }
        }
    };
    (@subject $self:ident, none) => { None };
    (@subject $self:ident, $field:ident) => { Some($self.$field) };
}

/// Payload of `dev.ossa.workflow.started`; subject = `workflow_id`.
///
/// ```
/// use ossa_events_core::{format::json, ossa, Event, RawJson};
///
/// let p = ossa::WorkflowStarted {
///     workflow_id: "wf-7",
///     name: Some("nightly-report"),
///     input: Some(RawJson::new(r#"{"day": "2026-01-01"}"#)?),
/// };
/// let ev = Event::builder().id("1").source("/workflows").ossa(&p).build()?;
/// assert_eq!((ev.ty(), ev.subject()), (ossa::WORKFLOW_STARTED, Some("wf-7")));
/// let mut buf = [0u8; 512];
/// let n = json::to_slice(&ev, &mut buf)?;
/// assert!(buf[..n].ends_with(br#""data":{"workflow_id":"wf-7","name":"nightly-report","input":{"day":"2026-01-01"}}}"#));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkflowStarted<'a> {
    /// The workflow run.
    pub workflow_id: &'a str,
    /// Workflow name.
    pub name: Option<&'a str>,
    /// Input given to the workflow.
    pub input: Option<RawJson<'a>>,
}
payload!(WorkflowStarted, WORKFLOW_STARTED, workflow_id, |s| [
    (k!("workflow_id"), Member::Str(s.workflow_id)),
    (k!("name"), Member::OptStr(s.name)),
    (k!("input"), Member::Raw(s.input)),
]);

/// Payload of `dev.ossa.workflow.completed`; subject = `workflow_id`.
///
/// ```
/// use ossa_events_core::{format::json, ossa, Event};
///
/// let p = ossa::WorkflowCompleted {
///     workflow_id: "wf-7",
///     status: "success",
///     duration_ms: Some(1200),
///     ..Default::default()
/// };
/// let ev = Event::builder().id("1").source("/workflows").ossa(&p).build()?;
/// assert_eq!((ev.ty(), ev.subject()), (ossa::WORKFLOW_COMPLETED, Some("wf-7")));
/// let mut buf = [0u8; 512];
/// let n = json::to_slice(&ev, &mut buf)?;
/// assert!(buf[..n].ends_with(br#""data":{"workflow_id":"wf-7","status":"success","duration_ms":1200}}"#));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkflowCompleted<'a> {
    /// The workflow run.
    pub workflow_id: &'a str,
    /// Outcome, e.g. `"success"`, `"failed"`, `"cancelled"`.
    pub status: &'a str,
    /// Output of the workflow.
    pub output: Option<RawJson<'a>>,
    /// Wall time in milliseconds.
    pub duration_ms: Option<u64>,
}
payload!(WorkflowCompleted, WORKFLOW_COMPLETED, workflow_id, |s| [
    (k!("workflow_id"), Member::Str(s.workflow_id)),
    (k!("status"), Member::Str(s.status)),
    (k!("output"), Member::Raw(s.output)),
    (k!("duration_ms"), Member::OptU64(s.duration_ms)),
]);

/// Payload of `dev.ossa.agent.started`; subject = `agent_id`.
///
/// ```
/// use ossa_events_core::{format::json, ossa, Event};
///
/// let p = ossa::AgentStarted { agent_id: "planner", name: Some("Planner"), ..Default::default() };
/// let ev = Event::builder().id("1").source("/agents/planner").ossa(&p).build()?;
/// assert_eq!((ev.ty(), ev.subject()), (ossa::AGENT_STARTED, Some("planner")));
/// let mut buf = [0u8; 512];
/// let n = json::to_slice(&ev, &mut buf)?;
/// assert!(buf[..n].ends_with(br#""data":{"agent_id":"planner","name":"Planner"}}"#));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AgentStarted<'a> {
    /// The agent.
    pub agent_id: &'a str,
    /// Agent name.
    pub name: Option<&'a str>,
    /// Agent version.
    pub version: Option<&'a str>,
    /// Input given to the agent.
    pub input: Option<RawJson<'a>>,
}
payload!(AgentStarted, AGENT_STARTED, agent_id, |s| [
    (k!("agent_id"), Member::Str(s.agent_id)),
    (k!("name"), Member::OptStr(s.name)),
    (k!("version"), Member::OptStr(s.version)),
    (k!("input"), Member::Raw(s.input)),
]);

/// Payload of `dev.ossa.agent.completed`; subject = `agent_id`.
///
/// ```
/// use ossa_events_core::{format::json, ossa, Event, RawJson};
///
/// let p = ossa::AgentCompleted {
///     agent_id: "planner",
///     status: "success",
///     output: Some(RawJson::new(r#"{"plan": ["a", "b"]}"#)?),
///     duration_ms: None,
/// };
/// let ev = Event::builder().id("1").source("/agents/planner").ossa(&p).build()?;
/// assert_eq!((ev.ty(), ev.subject()), (ossa::AGENT_COMPLETED, Some("planner")));
/// let mut buf = [0u8; 512];
/// let n = json::to_slice(&ev, &mut buf)?;
/// assert!(buf[..n].ends_with(br#""data":{"agent_id":"planner","status":"success","output":{"plan":["a","b"]}}}"#));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AgentCompleted<'a> {
    /// The agent.
    pub agent_id: &'a str,
    /// Outcome, e.g. `"success"`.
    pub status: &'a str,
    /// What the agent produced.
    pub output: Option<RawJson<'a>>,
    /// Wall time in milliseconds.
    pub duration_ms: Option<u64>,
}
payload!(AgentCompleted, AGENT_COMPLETED, agent_id, |s| [
    (k!("agent_id"), Member::Str(s.agent_id)),
    (k!("status"), Member::Str(s.status)),
    (k!("output"), Member::Raw(s.output)),
    (k!("duration_ms"), Member::OptU64(s.duration_ms)),
]);

/// Payload of `dev.ossa.agent.failed`; subject = `agent_id`.
///
/// ```
/// use ossa_events_core::{format::json, ossa, Event};
///
/// let p = ossa::AgentFailed {
///     agent_id: "planner",
///     error: ossa::ErrorInfo { message: "no model", ..Default::default() },
///     duration_ms: Some(5),
/// };
/// let ev = Event::builder().id("1").source("/agents/planner").ossa(&p).build()?;
/// assert_eq!((ev.ty(), ev.subject()), (ossa::AGENT_FAILED, Some("planner")));
/// let mut buf = [0u8; 512];
/// let n = json::to_slice(&ev, &mut buf)?;
/// assert!(buf[..n].ends_with(br#""data":{"agent_id":"planner","error":{"message":"no model"},"duration_ms":5}}"#));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AgentFailed<'a> {
    /// The agent.
    pub agent_id: &'a str,
    /// What went wrong.
    pub error: ErrorInfo<'a>,
    /// Wall time in milliseconds.
    pub duration_ms: Option<u64>,
}
payload!(AgentFailed, AGENT_FAILED, agent_id, |s| [
    (k!("agent_id"), Member::Str(s.agent_id)),
    (k!("error"), Member::Error(&s.error)),
    (k!("duration_ms"), Member::OptU64(s.duration_ms)),
]);

/// Payload of `dev.ossa.turn.started`; no subject.
///
/// ```
/// use ossa_events_core::{format::json, ossa, Event, RawJson};
///
/// let p = ossa::TurnStarted { turn: 3, input: Some(RawJson::new(r#""hi""#)?) };
/// let ev = Event::builder().id("1").source("/agents/a").ossa(&p).build()?;
/// assert_eq!((ev.ty(), ev.subject()), (ossa::TURN_STARTED, None));
/// let mut buf = [0u8; 512];
/// let n = json::to_slice(&ev, &mut buf)?;
/// assert!(buf[..n].ends_with(br#""data":{"turn":3,"input":"hi"}}"#));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TurnStarted<'a> {
    /// Turn number within the interaction, from 1.
    pub turn: u64,
    /// The turn's input (user message, prompt…).
    pub input: Option<RawJson<'a>>,
}
payload!(TurnStarted, TURN_STARTED, none, |s| [
    (k!("turn"), Member::U64(s.turn)),
    (k!("input"), Member::Raw(s.input)),
]);

/// Payload of `dev.ossa.turn.completed`; no subject.
///
/// ```
/// use ossa_events_core::{format::json, ossa, Event, RawJson};
///
/// let p = ossa::TurnCompleted {
///     turn: 3,
///     output: Some(RawJson::new(r#""hello""#)?),
///     usage: None,
///     duration_ms: Some(870),
/// };
/// let ev = Event::builder().id("1").source("/agents/a").ossa(&p).build()?;
/// assert_eq!((ev.ty(), ev.subject()), (ossa::TURN_COMPLETED, None));
/// let mut buf = [0u8; 512];
/// let n = json::to_slice(&ev, &mut buf)?;
/// assert!(buf[..n].ends_with(br#""data":{"turn":3,"output":"hello","duration_ms":870}}"#));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TurnCompleted<'a> {
    /// Turn number within the interaction.
    pub turn: u64,
    /// The turn's output.
    pub output: Option<RawJson<'a>>,
    /// Model token usage.
    pub usage: Option<TokenUsage>,
    /// Wall time in milliseconds.
    pub duration_ms: Option<u64>,
}
payload!(TurnCompleted, TURN_COMPLETED, none, |s| [
    (k!("turn"), Member::U64(s.turn)),
    (k!("output"), Member::Raw(s.output)),
    (k!("usage"), Member::Usage(s.usage)),
    (k!("duration_ms"), Member::OptU64(s.duration_ms)),
]);

/// Payload of `dev.ossa.tool.called`; subject = `tool`.
///
/// ```
/// use ossa_events_core::{format::json, ossa, Event, RawJson};
///
/// let p = ossa::ToolCalled {
///     tool: "web_search",
///     call_id: Some("call-1"),
///     arguments: Some(RawJson::new(r#"{ "query": "no_std" }"#)?), // written compact
/// };
/// let ev = Event::builder().id("1").source("/agents/a").ossa(&p).build()?;
/// assert_eq!((ev.ty(), ev.subject()), (ossa::TOOL_CALLED, Some("web_search")));
/// let mut buf = [0u8; 512];
/// let n = json::to_slice(&ev, &mut buf)?;
/// assert!(buf[..n].ends_with(br#""data":{"tool":"web_search","call_id":"call-1","arguments":{"query":"no_std"}}}"#));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ToolCalled<'a> {
    /// Tool name.
    pub tool: &'a str,
    /// Id linking the call to its completion or failure.
    pub call_id: Option<&'a str>,
    /// Arguments passed to the tool.
    pub arguments: Option<RawJson<'a>>,
}
payload!(ToolCalled, TOOL_CALLED, tool, |s| [
    (k!("tool"), Member::Str(s.tool)),
    (k!("call_id"), Member::OptStr(s.call_id)),
    (k!("arguments"), Member::Raw(s.arguments)),
]);

/// Payload of `dev.ossa.tool.completed`; subject = `tool`.
///
/// ```
/// use ossa_events_core::{format::json, ossa, Event, RawJson};
///
/// let p = ossa::ToolCompleted {
///     tool: "web_search",
///     call_id: Some("call-1"),
///     result: Some(RawJson::new("[]")?),
///     duration_ms: Some(230),
/// };
/// let ev = Event::builder().id("1").source("/agents/a").ossa(&p).build()?;
/// assert_eq!((ev.ty(), ev.subject()), (ossa::TOOL_COMPLETED, Some("web_search")));
/// let mut buf = [0u8; 512];
/// let n = json::to_slice(&ev, &mut buf)?;
/// assert!(buf[..n].ends_with(br#""data":{"tool":"web_search","call_id":"call-1","result":[],"duration_ms":230}}"#));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ToolCompleted<'a> {
    /// Tool name.
    pub tool: &'a str,
    /// Id of the call.
    pub call_id: Option<&'a str>,
    /// What the tool returned.
    pub result: Option<RawJson<'a>>,
    /// Wall time in milliseconds.
    pub duration_ms: Option<u64>,
}
payload!(ToolCompleted, TOOL_COMPLETED, tool, |s| [
    (k!("tool"), Member::Str(s.tool)),
    (k!("call_id"), Member::OptStr(s.call_id)),
    (k!("result"), Member::Raw(s.result)),
    (k!("duration_ms"), Member::OptU64(s.duration_ms)),
]);

/// Payload of `dev.ossa.tool.failed`; subject = `tool`.
///
/// ```
/// use ossa_events_core::{format::json, ossa, Event};
///
/// let p = ossa::ToolFailed {
///     tool: "web_search",
///     call_id: Some("call-1"),
///     error: ossa::ErrorInfo { message: "rate limited", code: Some("429"), retryable: Some(true) },
///     duration_ms: None,
/// };
/// let ev = Event::builder().id("1").source("/agents/a").ossa(&p).build()?;
/// assert_eq!((ev.ty(), ev.subject()), (ossa::TOOL_FAILED, Some("web_search")));
/// let mut buf = [0u8; 512];
/// let n = json::to_slice(&ev, &mut buf)?;
/// assert!(buf[..n].ends_with(br#""data":{"tool":"web_search","call_id":"call-1","error":{"message":"rate limited","code":"429","retryable":true}}}"#));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ToolFailed<'a> {
    /// Tool name.
    pub tool: &'a str,
    /// Id of the call.
    pub call_id: Option<&'a str>,
    /// What went wrong.
    pub error: ErrorInfo<'a>,
    /// Wall time in milliseconds.
    pub duration_ms: Option<u64>,
}
payload!(ToolFailed, TOOL_FAILED, tool, |s| [
    (k!("tool"), Member::Str(s.tool)),
    (k!("call_id"), Member::OptStr(s.call_id)),
    (k!("error"), Member::Error(&s.error)),
    (k!("duration_ms"), Member::OptU64(s.duration_ms)),
]);

/// Payload of `dev.ossa.state.updated`; subject = `key`.
///
/// ```
/// use ossa_events_core::{format::json, ossa, Event, RawJson};
///
/// let p = ossa::StateUpdated { key: "memory.goal", value: Some(RawJson::new(r#""ship v1""#)?) };
/// let ev = Event::builder().id("1").source("/agents/a").ossa(&p).build()?;
/// assert_eq!((ev.ty(), ev.subject()), (ossa::STATE_UPDATED, Some("memory.goal")));
/// let mut buf = [0u8; 512];
/// let n = json::to_slice(&ev, &mut buf)?;
/// assert!(buf[..n].ends_with(br#""data":{"key":"memory.goal","value":"ship v1"}}"#));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StateUpdated<'a> {
    /// Which piece of agent state changed.
    pub key: &'a str,
    /// Its new value.
    pub value: Option<RawJson<'a>>,
}
payload!(StateUpdated, STATE_UPDATED, key, |s| [
    (k!("key"), Member::Str(s.key)),
    (k!("value"), Member::Raw(s.value)),
]);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Event;

    #[test]
    fn every_type_has_a_schema_uri_under_the_base() {
        for ty in EVENT_TYPES {
            let uri = schema_uri(ty).unwrap();
            assert_eq!(
                uri.strip_prefix(SCHEMA_BASE)
                    .and_then(|r| r.strip_suffix(".json")),
                Some(ty)
            );
        }
    }

    #[test]
    fn raw_json_is_written_compact_whatever_its_spacing() {
        const SPACED: RawJson<'static> = RawJson::trusted("{ \"q\" : \"a b\",\n \"n\": [1, 2] }\n");
        const COMPACT: RawJson<'static> = RawJson::trusted(r#"{"q":"a b","n":[1,2]}"#);
        // Compiled in: the compacting copy only for the spaced constant.
        assert!(SPACED.compact.is_some() && COMPACT.compact.is_none());
        for args in [
            RawJson::new(r#"{"q":"a b","n":[1,2]}"#).unwrap(),
            RawJson::new("{ \"q\" : \"a b\",\n \"n\": [1, 2] }\n").unwrap(),
            SPACED,
            COMPACT,
        ] {
            let call = ToolCalled {
                tool: "t",
                call_id: None,
                arguments: Some(args),
            };
            let ev = Event::builder()
                .id("1")
                .source("/s")
                .ossa(&call)
                .build()
                .unwrap();
            let mut buf = [0u8; 512];
            let n = crate::format::json::to_slice(&ev, &mut buf).unwrap();
            let out = core::str::from_utf8(&buf[..n]).unwrap();
            assert!(
                out.ends_with(r#""data":{"tool":"t","arguments":{"q":"a b","n":[1,2]}}}"#),
                "{out}"
            );
        }
    }

    #[test]
    fn every_payload_has_its_type() {
        let e = ErrorInfo {
            message: "m",
            code: Some("c"),
            retryable: Some(false),
        };
        let types = [
            <WorkflowStarted<'_> as Payload>::TYPE,
            <WorkflowCompleted<'_> as Payload>::TYPE,
            <AgentStarted<'_> as Payload>::TYPE,
            <AgentCompleted<'_> as Payload>::TYPE,
            <AgentFailed<'_> as Payload>::TYPE,
            <TurnStarted<'_> as Payload>::TYPE,
            <TurnCompleted<'_> as Payload>::TYPE,
            <ToolCalled<'_> as Payload>::TYPE,
            <ToolCompleted<'_> as Payload>::TYPE,
            <ToolFailed<'_> as Payload>::TYPE,
            <StateUpdated<'_> as Payload>::TYPE,
        ];
        let mut sorted = types;
        sorted.sort_unstable();
        let mut all = EVENT_TYPES;
        all.sort_unstable();
        assert_eq!(sorted, all);
        let failed = AgentFailed {
            agent_id: "a",
            error: e,
            duration_ms: Some(3),
        };
        let ev = Event::builder()
            .id("1")
            .source("/s")
            .ossa(&failed)
            .build()
            .unwrap();
        let mut buf = [0u8; 512];
        let n = crate::format::json::to_slice(&ev, &mut buf).unwrap();
        let out = core::str::from_utf8(&buf[..n]).unwrap();
        assert!(out.contains(r#""subject":"a""#), "{out}");
        assert!(
            out.ends_with(r#""data":{"agent_id":"a","error":{"message":"m","code":"c","retryable":false},"duration_ms":3}}"#),
            "{out}"
        );
    }

    proptest::proptest! {
        /// `trusted`'s compile-time scan finds whitespace outside strings
        /// exactly where the lexer does, on JSON that serde_json writes
        /// pretty or compact (strings with spaces, escaped quotes and
        /// backslashes included).
        #[test]
        fn trusted_scan_agrees_with_the_lexer(
            words in proptest::collection::vec("[ a-z\\\\\"\\n\\t]{0,6}", 0..6),
            pretty in proptest::bool::ANY,
        ) {
            let value = serde_json::json!({ "w": words, "n": [1, 2.5, null, true] });
            let text = if pretty {
                serde_json::to_string_pretty(&value).unwrap()
            } else {
                serde_json::to_string(&value).unwrap()
            };
            let lexer = crate::json::validate_compact(text.as_bytes(), 8).unwrap();
            proptest::prop_assert_eq!(has_no_space_outside_strings(text.as_bytes()), lexer);
            proptest::prop_assert_eq!(lexer, !pretty);
        }
    }
}
