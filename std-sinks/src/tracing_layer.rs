//! [`OssaLayer`]: OSSA lifecycle events from `tracing` spans named per the
//! OpenTelemetry GenAI conventions, and the ids of the current span for
//! events emitted inside one ([`current_span_ids`],
//! [`EmitterBuilder::context_from_tracing`](crate::EmitterBuilder::context_from_tracing)).
//!
//! | span (name, or `gen_ai.operation.name`) | first enter | close | close with an error |
//! | --- | --- | --- | --- |
//! | `invoke_workflow` | `workflow.started` | `workflow.completed` (`success`) | `workflow.completed` (`failed`) |
//! | `invoke_agent` | `agent.started` | `agent.completed` | `agent.failed` |
//! | `chat` (also `text_completion`, `generate_content`) | `turn.started` | `turn.completed` (token usage) | `turn.completed` |
//! | `execute_tool` | `tool.called` | `tool.completed` | `tool.failed` |
//!
//! A span name may carry a suffix after a space, as the conventions write
//! them (`chat gpt-4o`, `execute_tool web_search`). The fields read, whether
//! set at creation or recorded later with `Span::record`:
//!
//! | field | goes to |
//! | --- | --- |
//! | `gen_ai.agent.id`, else `gen_ai.agent.name` | `agent_id` of the agent events; `ossaagentid` of every event in the agent span |
//! | `gen_ai.agent.name` | `name` of `agent.started` |
//! | `gen_ai.prompt`, `gen_ai.completion` | `input` of `agent.started`, `output` of `agent.completed` |
//! | `gen_ai.conversation.id` (any span) | `ossainteractionid` of its events and those of the spans in it |
//! | `gen_ai.workflow.id`, `gen_ai.workflow.name` | `workflow_id` (else the span id) and `name` of the workflow events |
//! | `gen_ai.tool.name`, `gen_ai.tool.call.id` | `tool`, `call_id` |
//! | `gen_ai.tool.call.arguments`, `gen_ai.tool.call.result` | `arguments`, `result` (JSON as it is; other text as a JSON string) |
//! | `gen_ai.usage.input_tokens`, `gen_ai.usage.output_tokens` | `usage` of `turn.completed` |
//! | `error.type`, `gen_ai.tool.error.type`, `otel.status_code = "ERROR"` | the span failed: `error.code` |
//!
//! Where a field also becomes an attribute (`subject`, `ossaagentid`,
//! `ossainteractionid`), the characters a CloudEvents String must not hold
//! (control characters, noncharacters) become U+FFFD there; the data keeps
//! them as they are (JSON escapes them).
//!
//! An ERROR-level event inside a span (or inside a plain span within it)
//! fails it too; its message becomes `error.message` (not one an
//! emitter's `on_undelivered` callback logs: that is about the event it was
//! told of). So does a panic that unwinds out of the span (its exit while
//! the thread panics; the message is `panicked`), though not out of a span
//! entered during the unwinding (a future dropped then). Turns are numbered
//! 1, 2, … per agent span, in the order they start. The operation
//! (`gen_ai.operation.name`) and the agent id are read when the span
//! starts: recorded after that, they change neither its end event (which
//! must pair with its start) nor the spans in it. What a span takes from
//! the spans around it (`ossaagentid`, `ossainteractionid`, its turn
//! counter) is read when it starts too, not when it is created.
//!
//! # A span's life
//!
//! ```text
//!   new ──(first enter)──▶ started ──(close)──▶ ended: completed | failed
//!    │                       ▲  (more enters and exits: nothing)
//!    │                       │
//!    └──(close, never entered: no event)
//! ```
//!
//! Started means the start event was emitted, on the first enter. One
//! exception: an `execute_tool` span entered before it has a tool name (rig
//! creates it empty and records `gen_ai.tool.name`, the call id and the
//! arguments right after entering it; an async tool may record them only
//! after an `.await`, in a later poll) is started at the first exit (or
//! enter) at which it has its name, else at its close (tool `unknown`), or
//! earlier when a GenAI span in it starts or an event is emitted in it
//! (its `tool.called` comes before those), always with the time of its
//! first enter and before its end event. A span that is never closed (its
//! handle leaked) never ends: it emits no end event (nor, if it is such a
//! tool span that never got its name, a start), and its state, kept in
//! the span's extensions, is freed with the span by the registry, like the
//! span itself.
//!
//! A span whose future is dropped before it finishes (a
//! `tokio::time::timeout` that fires, a `select!` that drops its branch)
//! ends as a finished one does: completed, unless an error field or an
//! ERROR event in it says it failed. `tracing` gives a layer no sign of the
//! cancellation: `Instrumented` enters the span to drop its future whether
//! the future finished or not, then the span closes; and no field is sure
//! to be left unrecorded only then (rig returns from some tool calls
//! without recording their outcome). The code that cancels it knows: if it
//! records `error.type` (or `gen_ai.tool.error.type`), declared on the span
//! (`Empty` at creation), on a handle of the span it kept, the span fails
//! with that code, since it closes only with its last handle.
//!
//! # Ids
//!
//! Every GenAI span gets W3C ids ([`SpanIds`]), used as the `ossatraceid` and
//! `ossaspanid` (and so the `traceparent`) of its events: the trace id of the
//! nearest GenAI span around it, else a new random one; a random span id.
//! With the `opentelemetry` feature and a `tracing_opentelemetry` layer added
//! to the subscriber **before** `OssaLayer` (so it sees each span first),
//! the ids are those of the span's OpenTelemetry span instead, so the events
//! and the exported spans name the same trace and span.
//!
//! # Cost and failure
//!
//! The hot path (first enter, close) does not build the event: it copies
//! what the event reads out of the span's state (short text inline, long
//! text shared) with the time it happened, and puts that off in the
//! emitter; the other callbacks only update the span's state. The
//! emitter's worker builds, validates, encodes and queues the events, in
//! the order they happened, before it takes each batch (a span that puts
//! the first one off wakes it when it sleeps with an empty queue; else it
//! finds them within the flush interval). [`Emitter::emit`] builds those
//! still waiting first, on its caller's thread (so an event emitted inside
//! a span follows the span's start); [`Emitter::flush`],
//! [`Emitter::shutdown`] and a drop of the last handle that waits build
//! them before they wait, so they count every event of a span that ended
//! (or started) before them; a drop that does not wait leaves them to the
//! worker, which queues them during shutdown, until its deadline. Until it
//! is built an event is not in [`Metrics`](crate::Metrics) (`emitted`,
//! `queue_depth`): the counters lag the spans by what waits. About the
//! emitter's [`queue_capacity`](crate::EmitterBuilder::queue_capacity)
//! events wait at most. A span that finds that many waiting does what the
//! emitter's [`Overflow`](crate::Overflow) policy does for a full queue:
//! under `Block` it builds them on its own thread first; under
//! `DropNewest` its event is dropped (counted and reported).
//!
//! An event the emitter refuses (queue full, shut down, invalid) is counted
//! and reported by the emitter as usual, when it is built; the layer never
//! panics and never blocks longer than the emitter's
//! [`Overflow`](crate::Overflow) policy lets `emit` block (per event it
//! builds).
//!
//! ```
//! use ossa_events::{sink::WriterSink, tracing_layer::OssaLayer, Emitter};
//! use tracing_subscriber::layer::SubscriberExt;
//!
//! let emitter = Emitter::builder("/agents/researcher").sink(WriterSink::new(Vec::new())).build()?;
//! let subscriber = tracing_subscriber::registry().with(OssaLayer::new(emitter.clone()));
//! tracing::subscriber::with_default(subscriber, || {
//!     let agent = tracing::info_span!("invoke_agent", gen_ai.agent.name = "researcher");
//!     let _a = agent.enter(); // agent.started
//!     let tool = tracing::info_span!("execute_tool", gen_ai.tool.name = "web_search", gen_ai.tool.call.id = "c1");
//!     tool.in_scope(|| {}); // tool.called
//!     tool.record("gen_ai.tool.call.result", r#"{"hits":3}"#);
//!     drop(tool); // tool.completed
//! }); // agent.completed
//! assert_eq!(emitter.flush()?.delivered, 4);
//! # Ok::<(), ossa_events::Error>(())
//! ```

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use ossa_events_core::attr::is_valid_string;
use ossa_events_core::{EventBuilder, RawJson, ossa};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::{LookupSpan, SpanRef};

use crate::Emitter;

pub use crate::span_ids::{SpanIds, current_span_ids};

/// A `tracing_subscriber` layer that turns GenAI spans into OSSA events
/// through an [`Emitter`] (see the [module docs](self) for the mapping).
///
/// Add it to a subscriber built on tracing-subscriber's `Registry` (the
/// layer keeps its per-span state in the registry's span extensions):
///
/// ```
/// use ossa_events::{sink::NullSink, tracing_layer::OssaLayer, Emitter};
/// use tracing_subscriber::layer::SubscriberExt;
///
/// let emitter = Emitter::builder("/agents/a").sink(NullSink::new()).build()?;
/// let subscriber = tracing_subscriber::registry().with(OssaLayer::new(emitter));
/// # drop(subscriber);
/// // then tracing::subscriber::set_global_default(subscriber)
/// # Ok::<(), ossa_events::Error>(())
/// ```
///
/// A subscriber may hold several (one emitter per destination): each keeps
/// its own state in every span, and all give a span the same trace and
/// span ids, unless a per-layer filter hides from one layer a GenAI span
/// around it that a later layer sees: the later layer then gives it ids of
/// its own, in the trace of that span around it.
pub struct OssaLayer {
    emitter: Emitter,
    /// Which `OssaLayer` this is: a subscriber may have more than one (one
    /// emitter per destination), each with its own state in every span.
    key: usize,
    /// The subscriber this layer is part of, to ask the OpenTelemetry layer
    /// for a span's context (a scoped dispatcher is not reachable from
    /// inside a callback through `get_default`).
    #[cfg(feature = "opentelemetry")]
    dispatch: std::sync::OnceLock<tracing::dispatcher::WeakDispatch>,
}

impl fmt::Debug for OssaLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OssaLayer")
            .field("emitter", &self.emitter)
            .finish_non_exhaustive()
    }
}

impl OssaLayer {
    /// A layer emitting through `emitter` (a clone of it: the emitter stays
    /// usable for other events).
    ///
    /// ```
    /// use ossa_events::{sink::NullSink, tracing_layer::OssaLayer, Emitter};
    /// let emitter = Emitter::builder("/agents/a").sink(NullSink::new()).build()?;
    /// let layer = OssaLayer::new(emitter.clone());
    /// assert_eq!(layer.emitter().metrics().emitted, 0);
    /// # Ok::<(), ossa_events::Error>(())
    /// ```
    pub fn new(emitter: Emitter) -> Self {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(1);
        OssaLayer {
            emitter,
            key: NEXT.fetch_add(1, Ordering::Relaxed),
            #[cfg(feature = "opentelemetry")]
            dispatch: std::sync::OnceLock::new(),
        }
    }

    /// The emitter events go through (for its metrics, `flush`, `shutdown`).
    pub fn emitter(&self) -> &Emitter {
        &self.emitter
    }
}

/// What kind of GenAI operation a span is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Workflow,
    Agent,
    Chat,
    Tool,
}

impl Kind {
    /// From an operation name, or a span name whose first word is one.
    fn parse(name: &str) -> Option<Kind> {
        let op = name.split_once(' ').map_or(name, |(op, _)| op);
        match op {
            "invoke_workflow" => Some(Kind::Workflow),
            "invoke_agent" => Some(Kind::Agent),
            "chat" | "text_completion" | "generate_content" => Some(Kind::Chat),
            "execute_tool" => Some(Kind::Tool),
            _ => None,
        }
    }
}

const OPERATION: &str = "gen_ai.operation.name";

/// Text kept inline up to this many bytes.
const INLINE: usize = 30;

/// A field's text: inline when short (tool names, call ids such as
/// `call_…` and `toolu_…`, short results), else shared, so the common span
/// allocates nothing for its fields and an event's copy of them costs no
/// allocation either (a reference count at most).
#[derive(Clone)]
enum Text {
    Inline { len: u8, buf: [u8; INLINE] },
    Shared(Arc<str>),
}

impl Text {
    fn new(s: &str) -> Text {
        let mut buf = [0u8; INLINE];
        match (buf.get_mut(..s.len()), u8::try_from(s.len())) {
            (Some(dst), Ok(len)) => {
                dst.copy_from_slice(s.as_bytes());
                Text::Inline { len, buf }
            }
            _ => Text::Shared(Arc::from(s)),
        }
    }
}

impl Text {
    /// Bytes it holds beyond itself (shared text, counted whole: once the
    /// span is gone the snapshot may be the only holder).
    fn heap(&self) -> usize {
        match self {
            Text::Inline { .. } => 0,
            Text::Shared(s) => s.len(),
        }
    }
}

/// [`Text::heap`] of an optional field.
fn heap(t: Option<&Text>) -> usize {
    t.map_or(0, Text::heap)
}

impl std::ops::Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        match self {
            // Copied whole from a `&str`: always UTF-8.
            Text::Inline { len, buf } => buf
                .get(..usize::from(*len))
                .and_then(|b| std::str::from_utf8(b).ok())
                .unwrap_or_default(),
            Text::Shared(s) => s,
        }
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

/// The fields of a span its start event is made from (its end event reads
/// them too).
#[derive(Debug, Clone, Default)]
struct Fields {
    operation: Option<Kind>,
    agent_name: Option<Text>,
    agent_id: Option<Text>,
    conversation: Option<Text>,
    workflow_name: Option<Text>,
    workflow_id: Option<Text>,
    tool: Option<Text>,
    call_id: Option<Text>,
    arguments: Option<Text>,
    prompt: Option<Text>,
}

/// The fields only a span's end event reads (rig records them late: a
/// tool's result, token usage).
#[derive(Debug, Default)]
struct Outcome {
    result: Option<Text>,
    completion: Option<Text>,
    error_type: Option<Text>,
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
}

/// Whether `name` is a field this layer reads.
fn reads(name: &str) -> bool {
    name.starts_with("gen_ai.") || name == "error.type" || name == "otel.status_code"
}

/// Records field values into a span's state (see the module docs).
struct Recorder<'a> {
    core: &'a mut Core,
    outcome: &'a mut Outcome,
}

impl Recorder<'_> {
    fn fields(&mut self) -> &mut Fields {
        &mut self.core.fields
    }

    fn set_str(&mut self, name: &str, v: &str) {
        // Empty text is no value (CloudEvents refuses an empty `subject`).
        let text = || (!v.is_empty()).then(|| Text::new(v));
        match name {
            OPERATION => {
                // An unknown operation leaves the span as its name says.
                if let Some(k) = Kind::parse(v) {
                    self.fields().operation = Some(k);
                }
            }
            "gen_ai.agent.name" => self.fields().agent_name = text(),
            "gen_ai.agent.id" => self.fields().agent_id = text(),
            "gen_ai.conversation.id" => self.fields().conversation = text(),
            "gen_ai.workflow.name" => self.fields().workflow_name = text(),
            "gen_ai.workflow.id" => self.fields().workflow_id = text(),
            "gen_ai.tool.name" => self.fields().tool = text(),
            "gen_ai.tool.call.id" => self.fields().call_id = text(),
            "gen_ai.tool.call.arguments" => self.fields().arguments = text(),
            "gen_ai.prompt" => self.fields().prompt = text(),
            "gen_ai.tool.call.result" => self.outcome.result = text(),
            "gen_ai.completion" => self.outcome.completion = text(),
            "error.type" | "gen_ai.tool.error.type" => self.outcome.error_type = text(),
            "otel.status_code"
                if v.eq_ignore_ascii_case("error") && self.outcome.error_type.is_none() =>
            {
                self.outcome.error_type = Some(Text::new("error"));
            }
            "gen_ai.usage.input_tokens" | "gen_ai.usage.output_tokens" => {
                if let Ok(n) = v.trim().parse::<u64>() {
                    self.set_u64(name, n);
                }
            }
            _ => {}
        }
    }

    fn set_u64(&mut self, name: &str, n: u64) {
        match name {
            "gen_ai.usage.input_tokens" => self.outcome.input_tokens = Some(n),
            "gen_ai.usage.output_tokens" => self.outcome.output_tokens = Some(n),
            // A number where text is read (a numeric call id, say).
            _ if reads(name) => {
                let mut buf = [0u8; 20];
                let mut i = buf.len();
                let mut v = n;
                loop {
                    i -= 1;
                    buf[i] = b'0' + (v % 10) as u8;
                    v /= 10;
                    if v == 0 {
                        break;
                    }
                }
                // Only ASCII digits were written.
                self.set_str(name, std::str::from_utf8(&buf[i..]).unwrap_or_default());
            }
            _ => {}
        }
    }
}

impl Visit for Recorder<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.set_str(field.name(), value);
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.set_u64(field.name(), value);
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        match u64::try_from(value) {
            Ok(n) => self.set_u64(field.name(), n),
            Err(_) if reads(field.name()) => self.set_str(field.name(), &value.to_string()),
            Err(_) => {}
        }
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        // A whole count recorded as a float (instrumentation bridged from
        // languages whose numbers are doubles): the count.
        let name = field.name();
        if name.starts_with("gen_ai.usage.")
            && value >= 0.0
            && value.fract() == 0.0
            && value < u64::MAX as f64
        {
            self.set_u64(name, value as u64);
        } else {
            self.record_debug(field, &value);
        }
    }
    fn record_bool(&mut self, _: &Field, _: bool) {}
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // `%value` and `?value` fields: formatted only when read.
        if reads(field.name()) {
            self.set_str(field.name(), &format!("{value:?}"));
        }
    }
}

/// The message of an ERROR event: its `message`, else its `error` field
/// (what `#[instrument(err)]` records: `error = %e`, no message).
#[derive(Default)]
struct Message {
    message: Option<String>,
    error: Option<String>,
}

impl Message {
    fn slot(&mut self, field: &Field) -> Option<&mut Option<String>> {
        match field.name() {
            "message" => Some(&mut self.message),
            "error" => Some(&mut self.error),
            _ => None,
        }
    }

    /// The text the failure reports.
    fn text(self) -> Option<String> {
        self.message.or(self.error)
    }
}

impl Visit for Message {
    fn record_str(&mut self, field: &Field, value: &str) {
        if let Some(slot) = self.slot(field) {
            *slot = Some(value.to_owned());
        }
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        if let Some(slot) = self.slot(field) {
            *slot = Some(value.to_string());
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if let Some(slot) = self.slot(field) {
            *slot = Some(format!("{value:?}"));
        }
    }
}

/// What a span's events are made from, in its state.
#[derive(Debug)]
struct Core {
    /// The kind its name gives (`Fields::operation` overrides it).
    named: Option<Kind>,
    ids: SpanIds,
    fields: Fields,
    /// `ossaagentid` from the agent span around it.
    agent: Option<Text>,
    /// `ossainteractionid` from a span around it.
    conversation: Option<Text>,
    /// When it was first entered.
    entered: Option<Instant>,
    /// What its start event said of the span, once it started: its end
    /// event says the same (fields recorded later change neither).
    started: Option<Identity>,
}

/// A started span's operation and agent.
#[derive(Debug)]
struct Identity {
    kind: Kind,
    own_agent: Option<Text>,
    agent: Option<Text>,
}

impl Core {
    fn kind(&self) -> Option<Kind> {
        match &self.started {
            Some(i) => Some(i.kind),
            None => self.fields.operation.or(self.named),
        }
    }
    /// This agent span's own `ossaagentid`.
    fn own_agent(&self) -> Option<&Text> {
        match &self.started {
            Some(i) => i.own_agent.as_ref(),
            None => self
                .fields
                .agent_id
                .as_ref()
                .or(self.fields.agent_name.as_ref()),
        }
    }
    /// `ossaagentid` of its events and of the spans in it.
    fn agent(&self) -> Option<&Text> {
        if let Some(i) = &self.started {
            return i.agent.as_ref();
        }
        match self.kind() {
            Some(Kind::Agent) => self.own_agent().or(self.agent.as_ref()),
            _ => self.agent.as_ref(),
        }
    }
    /// Fixes its operation and agent as its start event gives them: a
    /// `gen_ai.agent.id` or `gen_ai.operation.name` recorded after that
    /// would otherwise make an end event that pairs with no start (another
    /// agent, another operation).
    fn pin(&mut self, kind: Kind) {
        let own_agent = self.own_agent().cloned();
        let agent = self.agent().cloned();
        self.started = Some(Identity {
            kind,
            own_agent,
            agent,
        });
    }
    fn conversation(&self) -> Option<&Text> {
        self.fields
            .conversation
            .as_ref()
            .or(self.conversation.as_ref())
    }
    /// The workflow's id: its own, else the span id.
    fn workflow_id(&self) -> Text {
        match &self.fields.workflow_id {
            Some(id) => id.clone(),
            None => Text::new(self.ids.span_id()),
        }
    }

    /// What its start event is made from, dated at its first enter
    /// (`turn`: its turn number, for a chat span).
    fn start(&self, kind: Kind, turn: u64) -> Snap {
        let f = &self.fields;
        let what = match kind {
            Kind::Workflow => What::WorkflowStarted {
                id: self.workflow_id(),
                name: f.workflow_name.clone(),
            },
            Kind::Agent => What::AgentStarted {
                id: self.own_agent().cloned(),
                name: f.agent_name.clone(),
                input: f.prompt.clone(),
            },
            Kind::Chat => What::TurnStarted { turn },
            Kind::Tool => What::ToolCalled {
                tool: f.tool.clone(),
                call_id: f.call_id.clone(),
                arguments: f.arguments.clone(),
            },
        };
        self.snap(self.entered.unwrap_or_else(Instant::now), what)
    }

    /// What its end event is made from, dated `closed`.
    fn end(&self, kind: Kind, turn: u64, closed: Instant, end: End) -> Snap {
        let f = &self.fields;
        let o = end.outcome;
        let duration_ms = self.entered.map(|e| {
            let d = closed.saturating_duration_since(e);
            u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
        });
        let failure = (end.error.is_some() || o.error_type.is_some()).then_some(Failure {
            message: end.error,
            code: o.error_type,
        });
        let what = match kind {
            Kind::Workflow => What::WorkflowCompleted {
                id: self.workflow_id(),
                failed: failure.is_some(),
                duration_ms,
            },
            Kind::Agent => What::AgentEnded {
                id: self.own_agent().cloned(),
                output: o.completion,
                failure,
                duration_ms,
            },
            Kind::Chat => What::TurnCompleted {
                turn,
                input_tokens: o.input_tokens,
                output_tokens: o.output_tokens,
                duration_ms,
            },
            Kind::Tool => What::ToolEnded {
                tool: f.tool.clone(),
                call_id: f.call_id.clone(),
                result: o.result,
                failure,
                duration_ms,
            },
        };
        self.snap(closed, what)
    }

    fn snap(&self, at: Instant, what: What) -> Snap {
        Snap {
            ids: self.ids,
            at,
            agent: self.agent().cloned(),
            conversation: self.conversation().cloned(),
            what,
        }
    }
}

/// The layer's state of one GenAI span, in its extensions.
#[derive(Debug)]
pub(crate) struct SpanState {
    /// Its W3C ids (the same for every `OssaLayer` on the subscriber).
    pub(crate) ids: SpanIds,
    /// The `OssaLayer` it is of ([`OssaLayer::key`]).
    layer: usize,
    /// The state of the next `OssaLayer` on the subscriber, if there are
    /// more than one: the extensions hold one value per type.
    next: Option<Box<SpanState>>,
    core: Core,
    outcome: Outcome,
    /// The turn counter of the agent span around it (its own for an agent).
    turns: Option<Arc<AtomicU64>>,
    /// Its turn number (chat spans), given when it starts.
    turn: u64,
    started: bool,
    /// Entered and not started: the emitter its start goes to.
    waiting: Option<Waiting>,
    /// The message of the first ERROR event inside it (or of a panic out
    /// of it).
    error: Option<Box<str>>,
    /// It was last entered while the thread was unwinding from a panic (to
    /// drop a future, say): its exit then is no panic out of it.
    entered_panicking: bool,
}

impl SpanState {
    /// The state of layer `layer` in a span's chain.
    fn of(mut s: &mut SpanState, layer: usize) -> Option<&mut SpanState> {
        loop {
            if s.layer == layer {
                return Some(s);
            }
            s = s.next.as_deref_mut()?;
        }
    }

    /// The state of layer `layer` in a span's chain.
    fn of_ref(mut s: &SpanState, layer: usize) -> Option<&SpanState> {
        loop {
            if s.layer == layer {
                return Some(s);
            }
            s = s.next.as_deref()?;
        }
    }

    /// Adds `state` to the end of the chain.
    fn append(mut s: &mut SpanState, state: SpanState) {
        while s.next.is_some() {
            let Some(next) = s.next.as_deref_mut() else {
                return;
            };
            s = next;
        }
        s.next = Some(Box::new(state));
    }

    /// Takes the state of layer `layer` out of a span's extensions (the
    /// other layers' stay).
    fn remove(
        ext: &mut tracing_subscriber::registry::ExtensionsMut<'_>,
        layer: usize,
    ) -> Option<SpanState> {
        let head = ext.get_mut::<SpanState>()?;
        if head.layer == layer {
            let mut head = ext.remove::<SpanState>()?;
            if let Some(next) = head.next.take() {
                ext.insert(*next);
            }
            return Some(head);
        }
        let mut s = head;
        loop {
            let is_next = s.next.as_ref()?.layer == layer;
            if is_next {
                let mut taken = s.next.take()?;
                s.next = taken.next.take();
                return Some(*taken);
            }
            s = s.next.as_deref_mut()?;
        }
    }

    /// Marks it started and returns what its start event is made from.
    fn start(&mut self, kind: Kind) -> Snap {
        self.started = true;
        if kind == Kind::Chat {
            self.turn = match &self.turns {
                Some(t) => t.fetch_add(1, Ordering::Relaxed).saturating_add(1),
                None => 1,
            };
        }
        let snap = self.core.start(kind, self.turn);
        self.core.pin(kind);
        snap
    }
}

/// How a span ended.
#[derive(Debug)]
struct End {
    error: Option<Box<str>>,
    outcome: Outcome,
}

/// Why a span failed.
#[derive(Debug)]
struct Failure {
    /// The message of an ERROR event inside it.
    message: Option<Box<str>>,
    /// Its `error.type`.
    code: Option<Text>,
}

/// An event of a span, put off: what it is built from, copied out of the
/// span's state on the caller's thread when it happened (only what that
/// event reads: text up to 30 bytes inline, longer text shared), and built,
/// encoded and queued later by the emitter (see [`crate::deferred`]).
#[derive(Debug)]
pub(crate) struct Later(Snap);

/// What one event of a span is made from.
#[derive(Debug)]
struct Snap {
    ids: SpanIds,
    /// When it happened: the event's `time` (the wall clock is read when
    /// the event is built, less the time since).
    at: Instant,
    /// `ossaagentid` and `ossainteractionid`.
    agent: Option<Text>,
    conversation: Option<Text>,
    what: What,
}

/// The event and its payload's inputs (see the module docs' table).
#[derive(Debug)]
enum What {
    WorkflowStarted {
        id: Text,
        name: Option<Text>,
    },
    AgentStarted {
        id: Option<Text>,
        name: Option<Text>,
        input: Option<Text>,
    },
    TurnStarted {
        turn: u64,
    },
    ToolCalled {
        tool: Option<Text>,
        call_id: Option<Text>,
        arguments: Option<Text>,
    },
    WorkflowCompleted {
        id: Text,
        failed: bool,
        duration_ms: Option<u64>,
    },
    AgentEnded {
        id: Option<Text>,
        output: Option<Text>,
        failure: Option<Failure>,
        duration_ms: Option<u64>,
    },
    TurnCompleted {
        turn: u64,
        input_tokens: Option<u64>,
        output_tokens: Option<u64>,
        duration_ms: Option<u64>,
    },
    ToolEnded {
        tool: Option<Text>,
        call_id: Option<Text>,
        result: Option<Text>,
        failure: Option<Failure>,
        duration_ms: Option<u64>,
    },
}

impl Later {
    /// Memory it holds while it waits, in bytes: itself and its shared
    /// text (what the deferred queue counts against `queue_bytes`).
    pub(crate) fn size(&self) -> usize {
        let s = &self.0;
        let failure = |f: Option<&Failure>| {
            f.map_or(0, |f| {
                f.message.as_deref().map_or(0, str::len) + heap(f.code.as_ref())
            })
        };
        let what = match &s.what {
            What::WorkflowStarted { id, name } => id.heap() + heap(name.as_ref()),
            What::AgentStarted { id, name, input } => {
                heap(id.as_ref()) + heap(name.as_ref()) + heap(input.as_ref())
            }
            What::TurnStarted { .. } | What::TurnCompleted { .. } => 0,
            What::ToolCalled {
                tool,
                call_id,
                arguments,
            } => heap(tool.as_ref()) + heap(call_id.as_ref()) + heap(arguments.as_ref()),
            What::WorkflowCompleted { id, .. } => id.heap(),
            What::AgentEnded {
                id,
                output,
                failure: f,
                ..
            } => heap(id.as_ref()) + heap(output.as_ref()) + failure(f.as_ref()),
            What::ToolEnded {
                tool,
                call_id,
                result,
                failure: f,
                ..
            } => {
                heap(tool.as_ref())
                    + heap(call_id.as_ref())
                    + heap(result.as_ref())
                    + failure(f.as_ref())
            }
        };
        std::mem::size_of::<Later>() + heap(s.agent.as_ref()) + heap(s.conversation.as_ref()) + what
    }

    /// Builds the event and hands it to `emit` (once).
    pub(crate) fn emit(self, emit: &mut dyn FnMut(EventBuilder<'_>)) {
        self.0.emit(emit);
    }
}

impl<S> Layer<S> for OssaLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    #[cfg(feature = "opentelemetry")]
    fn on_register_dispatch(&self, subscriber: &tracing::Dispatch) {
        let _ = self.dispatch.set(subscriber.downgrade());
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let meta = attrs.metadata();
        let named = Kind::parse(meta.name());
        if named.is_none() && meta.fields().field(OPERATION).is_none() {
            return; // not a GenAI span
        }
        let Some(span) = ctx.span(id) else { return };

        // What it takes from the GenAI span around it.
        let parent = span.scope().skip(1).find_map(|s| inherit(&s, self.key));
        // Another `OssaLayer` on the subscriber saw it first: the same ids,
        // unless that layer's filter hid the GenAI span around it that this
        // one sees (its ids are then in another trace than that span's).
        let other = span.extensions().get::<SpanState>().map(|s| s.ids);
        let ids = match other {
            Some(ids)
                if parent
                    .as_ref()
                    .is_none_or(|p| p.ids.trace_id() == ids.trace_id()) =>
            {
                ids
            }
            _ => self.ids_for(id, parent.as_ref().map(|p| &p.ids)),
        };
        let (agent, conversation, turns) = match parent {
            Some(p) => (p.agent, p.conversation, p.turns),
            None => (None, None, None),
        };
        let mut core = Core {
            named,
            ids,
            fields: Fields::default(),
            agent,
            conversation,
            entered: None,
            started: None,
        };
        let mut outcome = Outcome::default();
        attrs.record(&mut Recorder {
            core: &mut core,
            outcome: &mut outcome,
        });
        let turns = match core.kind() {
            Some(Kind::Agent) => Some(Arc::new(AtomicU64::new(0))),
            _ => turns,
        };
        let state = SpanState {
            ids,
            layer: self.key,
            next: None,
            core,
            outcome,
            turns,
            turn: 0,
            started: false,
            waiting: None,
            error: None,
            entered_panicking: false,
        };
        let mut ext = span.extensions_mut();
        match ext.get_mut::<SpanState>() {
            Some(first) => SpanState::append(first, state),
            None => ext.insert(state),
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut ext = span.extensions_mut();
        if let Some(state) = ext
            .get_mut::<SpanState>()
            .and_then(|s| SpanState::of(s, self.key))
        {
            values.record(&mut Recorder {
                core: &mut state.core,
                outcome: &mut state.outcome,
            });
        }
    }

    fn on_event(&self, event: &tracing::Event<'_>, ctx: Context<'_, S>) {
        if *event.metadata().level() != Level::ERROR || InCallback::now() {
            return;
        }
        let Some(span) = ctx.event_span(event) else {
            return;
        };
        let mut message = Message::default();
        event.record(&mut message);
        let text = message.text().unwrap_or_else(|| "error".to_owned());
        for s in span.scope() {
            let mut ext = s.extensions_mut();
            if let Some(state) = ext
                .get_mut::<SpanState>()
                .and_then(|s| SpanState::of(s, self.key))
            {
                if state.error.is_none() {
                    state.error = Some(text.clone().into_boxed_str());
                }
                // A span of an operation the layer does not map emits
                // nothing: a plain span for this, so the GenAI span around
                // it fails too.
                if state.core.kind().is_some() {
                    return;
                }
            }
        }
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let starts = {
            let mut ext = span.extensions_mut();
            let Some(state) = ext
                .get_mut::<SpanState>()
                .and_then(|s| SpanState::of(s, self.key))
            else {
                return;
            };
            state.entered_panicking = std::thread::panicking();
            if state.started {
                return;
            }
            if state.core.entered.is_none() {
                state.core.entered = Some(Instant::now());
            }
            let kind = match state.core.kind() {
                // A tool span that does not know its tool yet: started at
                // an exit once it does, or its close (see the module docs),
                // dated now.
                Some(Kind::Tool) if state.core.fields.tool.is_none() => None,
                kind => kind,
            };
            let Some(kind) = kind else {
                // Until then a span that starts inside it starts it first.
                if state.waiting.is_none() {
                    state.waiting = Some(Waiting::new(self.emitter.shared_arc().clone()));
                }
                return;
            };
            start(self.key, &span, state, kind)
        };
        self.put_off(starts);
    }

    fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let starts = {
            let mut ext = span.extensions_mut();
            let Some(state) = ext
                .get_mut::<SpanState>()
                .and_then(|s| SpanState::of(s, self.key))
            else {
                return;
            };
            // A panic unwinding out of the span: it failed (unless it was
            // entered during the unwinding, as a future dropped then is).
            if std::thread::panicking() && !state.entered_panicking && state.error.is_none() {
                state.error = Some("panicked".into());
            }
            if state.started || state.core.entered.is_none() {
                return;
            }
            let Some(kind) = state.core.kind() else {
                return;
            };
            // A tool span that still does not know its tool (an async tool
            // that records it after an `.await`) waits on: its next exit,
            // once it knows, or its close starts it (see the module docs).
            if kind == Kind::Tool && state.core.fields.tool.is_none() {
                return;
            }
            start(self.key, &span, state, kind)
        };
        self.put_off(starts);
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let Some(mut state) = SpanState::remove(&mut span.extensions_mut(), self.key) else {
            return;
        };
        unwait(&mut state);
        let (Some(_), Some(kind)) = (state.core.entered, state.core.kind()) else {
            return; // never entered: never started
        };
        let closed = Instant::now();
        if !state.started {
            let starts = start(self.key, &span, &mut state, kind);
            self.put_off(starts);
        }
        let end = End {
            error: state.error,
            outcome: state.outcome,
        };
        let end = state.core.end(kind, state.turn, closed, end);
        self.emitter.defer(Later(end));
    }
}

thread_local! {
    /// This thread runs an `on_undelivered` callback (see [`InCallback`]).
    static IN_CALLBACK: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Marks the thread as running an emitter's `on_undelivered` callback until
/// dropped: an ERROR event it logs (the event it was told of) is about the
/// emitter's delivery, not the work of the spans the thread is in, and
/// fails none of them.
pub(crate) struct InCallback(bool);

impl InCallback {
    pub(crate) fn enter() -> InCallback {
        InCallback(IN_CALLBACK.with(|c| c.replace(true)))
    }
    fn now() -> bool {
        IN_CALLBACK.with(std::cell::Cell::get)
    }
}

impl Drop for InCallback {
    fn drop(&mut self) {
        IN_CALLBACK.with(|c| c.set(self.0));
    }
}

/// The start events a span's start puts off: those of the spans around it
/// that were entered and had not started (outermost first), then its own.
struct Starts {
    around: Vec<Later>,
    own: Later,
}

/// GenAI spans entered and not started yet, over every `OssaLayer` (a tool
/// span that did not know its tool): a span that starts inside one, and an
/// `emit()` made inside one, start it first. While there is none, neither
/// looks for one.
static WAITING: AtomicUsize = AtomicUsize::new(0);

/// The emitter a span that waits to start puts its start off in (the
/// layer's: an `emit()` inside the span may be another emitter's). Counted
/// in [`WAITING`] while it lives: dropped when the span starts, or with
/// its state however that goes (a subscriber dropped with the span open).
struct Waiting(Arc<crate::worker::Shared>);

impl Waiting {
    fn new(sh: Arc<crate::worker::Shared>) -> Waiting {
        WAITING.fetch_add(1, Ordering::AcqRel);
        Waiting(sh)
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        WAITING.fetch_sub(1, Ordering::AcqRel);
    }
}

impl fmt::Debug for Waiting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Waiting")
    }
}

/// Starts span `span` (its state `state`, of layer `layer`) as `kind`.
/// What it takes from the GenAI span around it is read now, not when it
/// was created: an agent's name or a conversation id recorded on that span
/// in between is on its events too (and, once that span started, what its
/// start said). A span around it entered and not started yet (a tool span
/// that did not know its tool) starts first, so that its `tool.called`
/// comes before the events of the spans in it.
fn start<'a, R: LookupSpan<'a>>(
    layer: usize,
    span: &SpanRef<'a, R>,
    state: &mut SpanState,
    kind: Kind,
) -> Starts {
    let mut around = Vec::new();
    let parent = if WAITING.load(Ordering::Acquire) == 0 {
        span.scope().skip(1).find_map(|s| inherit(&s, layer))
    } else {
        // Outermost first, so that each span that waited takes what it
        // takes from the span around it as that one now says. Locks are
        // taken from a span to those around it, one at a time, as
        // everywhere in this layer.
        let scope: Vec<_> = span.scope().skip(1).collect();
        let mut parent = None;
        for s in scope.iter().rev() {
            let mut ext = s.extensions_mut();
            let Some(p) = ext
                .get_mut::<SpanState>()
                .and_then(|p| SpanState::of(p, layer))
            else {
                continue;
            };
            if !p.started
                && p.core.entered.is_some()
                && let Some(k) = p.core.kind()
            {
                around.push(start_in(parent.take(), p, k));
            }
            parent = Some(Inherited::of(p));
        }
        parent
    };
    Starts {
        around,
        own: start_in(parent, state, kind),
    }
}

/// Starts `state` as `kind`, inside a span that gives it `parent`.
fn start_in(parent: Option<Inherited>, state: &mut SpanState, kind: Kind) -> Later {
    let mut parent_turns = None;
    if let Some(p) = parent {
        state.core.agent = p.agent;
        state.core.conversation = p.conversation;
        parent_turns = p.turns;
    }
    state.turns = match kind {
        // An agent counts its own turns (one that became an agent by a late
        // `gen_ai.operation.name` gets its counter now).
        Kind::Agent => match state.turns.take() {
            Some(t) if !parent_turns.as_ref().is_some_and(|p| Arc::ptr_eq(p, &t)) => Some(t),
            _ => Some(Arc::new(AtomicU64::new(0))),
        },
        _ => parent_turns,
    };
    unwait(state);
    Later(state.start(kind))
}

/// `state` no longer waits to start.
fn unwait(state: &mut SpanState) {
    state.waiting = None;
}

impl OssaLayer {
    /// Puts the start events off, outermost first (never under a span's
    /// lock: building them may run an `on_undelivered` callback).
    fn put_off(&self, starts: Starts) {
        for later in starts.around {
            self.emitter.defer(later);
        }
        self.emitter.defer(starts.own);
    }
}

/// Before an `emit()`: starts the GenAI spans the calling thread is in that
/// were entered and have not started yet (a tool span that did not know
/// its tool: rig runs the tool in the span's first poll), outermost first,
/// so that an event emitted inside one comes after its `tool.called`.
/// Costs one atomic load while no span waits.
#[inline]
pub(crate) fn start_waiting_spans() {
    if WAITING.load(Ordering::Acquire) != 0 {
        start_waiting_spans_now();
    }
}

#[cold]
fn start_waiting_spans_now() {
    let mut starts: Vec<(Arc<crate::worker::Shared>, Later)> = Vec::new();
    tracing::dispatcher::get_default(|dispatch| {
        let Some(registry) = dispatch.downcast_ref::<tracing_subscriber::Registry>() else {
            return;
        };
        let current = dispatch.current_span();
        let Some(span) = current.id().and_then(|id| registry.span(id)) else {
            return;
        };
        // Outermost first, as `start` goes; per layer, what the span
        // around gives.
        let scope: Vec<_> = span.scope().collect();
        let mut parents: Vec<(usize, Inherited)> = Vec::new();
        for s in scope.iter().rev() {
            let mut ext = s.extensions_mut();
            let mut state = ext.get_mut::<SpanState>();
            // Every layer's state in the span.
            while let Some(st) = state {
                let at = parents.iter().position(|(l, _)| *l == st.layer);
                if !st.started
                    && st.core.entered.is_some()
                    && let Some(kind) = st.core.kind()
                    && let Some(Waiting(sh)) = &st.waiting
                {
                    let sh = sh.clone();
                    let parent = at.map(|i| parents.swap_remove(i).1);
                    starts.push((sh, start_in(parent, st, kind)));
                }
                let here = (st.layer, Inherited::of(st));
                match parents.iter_mut().find(|(l, _)| *l == st.layer) {
                    Some(p) => *p = here,
                    None => parents.push(here),
                }
                state = st.next.as_deref_mut();
            }
        }
    });
    // Put off once no span's lock is held.
    for (sh, later) in starts {
        sh.defer(later);
    }
}

/// What a new span takes from the GenAI span around it (its ids when it
/// is created; the rest again when it starts, as that span says then).
struct Inherited {
    ids: SpanIds,
    agent: Option<Text>,
    conversation: Option<Text>,
    turns: Option<Arc<AtomicU64>>,
}

fn inherit<'a, R: LookupSpan<'a>>(span: &SpanRef<'a, R>, layer: usize) -> Option<Inherited> {
    let ext = span.extensions();
    Some(Inherited::of(SpanState::of_ref(
        ext.get::<SpanState>()?,
        layer,
    )?))
}

impl Inherited {
    /// What a span inside the span of state `s` takes from it.
    fn of(s: &SpanState) -> Inherited {
        Inherited {
            ids: s.ids,
            agent: s.core.agent().cloned(),
            conversation: s.core.conversation().cloned(),
            turns: s.turns.clone(),
        }
    }
}

impl OssaLayer {
    /// The ids of new span `id`: OpenTelemetry's when it knows the span,
    /// else a new span id in the parent's trace (or a new trace).
    fn ids_for(&self, id: &Id, parent: Option<&SpanIds>) -> SpanIds {
        #[cfg(feature = "opentelemetry")]
        if let Some(dispatch) = self.dispatch.get().and_then(|d| d.upgrade())
            && let Some(ids) = crate::span_ids::otel_ids(&dispatch, id)
            // A no-op OpenTelemetry tracer hands a child its parent's
            // context: keep the trace, not the span id.
            && parent.is_none_or(|p| p.span_id() != ids.span_id())
        {
            return ids;
        }
        #[cfg(not(feature = "opentelemetry"))]
        let _ = id;
        match parent {
            Some(p) => p.child(),
            None => SpanIds::random(),
        }
    }
}

impl Snap {
    /// Builds its event and hands it to `out` (the emit pipeline: a refusal
    /// is counted and reported there).
    fn emit(self, out: &mut dyn FnMut(EventBuilder<'_>)) {
        let mut buf = String::new();
        match &self.what {
            What::WorkflowStarted { id, name } => self.out(
                out,
                &ossa::WorkflowStarted {
                    workflow_id: id,
                    name: name.as_deref(),
                    input: None,
                },
            ),
            What::AgentStarted { id, name, input } => self.out(
                out,
                &ossa::AgentStarted {
                    agent_id: unknown(id),
                    name: name.as_deref(),
                    version: None,
                    input: json(input.as_deref(), &mut buf),
                },
            ),
            What::TurnStarted { turn } => self.out(
                out,
                &ossa::TurnStarted {
                    turn: *turn,
                    input: None,
                },
            ),
            What::ToolCalled {
                tool,
                call_id,
                arguments,
            } => self.out(
                out,
                &ossa::ToolCalled {
                    tool: unknown(tool),
                    call_id: call_id.as_deref(),
                    arguments: json(arguments.as_deref(), &mut buf),
                },
            ),
            What::WorkflowCompleted {
                id,
                failed,
                duration_ms,
            } => self.out(
                out,
                &ossa::WorkflowCompleted {
                    workflow_id: id,
                    status: if *failed { "failed" } else { "success" },
                    output: None,
                    duration_ms: *duration_ms,
                },
            ),
            What::AgentEnded {
                id,
                output,
                failure,
                duration_ms,
            } => match failure {
                Some(f) => self.out(
                    out,
                    &ossa::AgentFailed {
                        agent_id: unknown(id),
                        error: f.info(),
                        duration_ms: *duration_ms,
                    },
                ),
                None => self.out(
                    out,
                    &ossa::AgentCompleted {
                        agent_id: unknown(id),
                        status: "success",
                        output: json(output.as_deref(), &mut buf),
                        duration_ms: *duration_ms,
                    },
                ),
            },
            What::TurnCompleted {
                turn,
                input_tokens,
                output_tokens,
                duration_ms,
            } => self.out(
                out,
                &ossa::TurnCompleted {
                    turn: *turn,
                    output: None,
                    usage: (input_tokens.is_some() || output_tokens.is_some()).then(|| {
                        ossa::TokenUsage {
                            input_tokens: input_tokens.unwrap_or(0),
                            output_tokens: output_tokens.unwrap_or(0),
                        }
                    }),
                    duration_ms: *duration_ms,
                },
            ),
            What::ToolEnded {
                tool,
                call_id,
                result,
                failure,
                duration_ms,
            } => match failure {
                Some(f) => self.out(
                    out,
                    &ossa::ToolFailed {
                        tool: unknown(tool),
                        call_id: call_id.as_deref(),
                        error: f.info(),
                        duration_ms: *duration_ms,
                    },
                ),
                None => self.out(
                    out,
                    &ossa::ToolCompleted {
                        tool: unknown(tool),
                        call_id: call_id.as_deref(),
                        result: json(result.as_deref(), &mut buf),
                        duration_ms: *duration_ms,
                    },
                ),
            },
        }
    }

    /// The event of `payload` with the span's OSSA context and time.
    fn out<P: ossa::Payload>(&self, out: &mut dyn FnMut(EventBuilder<'_>), payload: &P) {
        // Span fields that become attributes (`subject`, `ossaagentid`,
        // `ossainteractionid`) as CloudEvents Strings may hold them.
        let agent = attr_text(self.agent.as_deref());
        let conversation = attr_text(self.conversation.as_deref());
        let subject = payload
            .subject()
            .filter(|s| !is_valid_string(s))
            .and_then(|s| attr_text(Some(s)));
        // One `ossa_context` call, not a builder call per extension: each
        // by-value builder call that is not inlined copies the builder.
        let ctx = ossa::Context {
            agent_id: agent.as_deref(),
            interaction_id: conversation.as_deref(),
            trace_id: Some(self.ids.trace_id()),
            span_id: Some(self.ids.span_id()),
        };
        let time = crate::clock::wall_time(self.at);
        let mut b = EventBuilder::new()
            .ossa(payload)
            .ossa_context(&ctx)
            .time(time);
        if let Some(s) = subject.as_deref() {
            b = b.subject(s);
        }
        out(b);
    }
}

/// `v` as a CloudEvents String attribute value: the characters a String
/// must not hold (spec, "Type System": control characters, noncharacters),
/// which a span field may well hold (an agent name with a line break),
/// become U+FFFD. Untouched where the same text is data (JSON escapes
/// them): only the attribute changes, not the whole event refused.
fn attr_text(v: Option<&str>) -> Option<std::borrow::Cow<'_, str>> {
    let v = v?;
    if is_valid_string(v) {
        return Some(std::borrow::Cow::Borrowed(v));
    }
    let mut buf = [0u8; 4];
    Some(std::borrow::Cow::Owned(
        v.chars()
            .map(|c| {
                if is_valid_string(c.encode_utf8(&mut buf)) {
                    c
                } else {
                    char::REPLACEMENT_CHARACTER
                }
            })
            .collect(),
    ))
}

/// `t`, or "unknown" when the span did not say.
fn unknown(t: &Option<Text>) -> &str {
    t.as_deref().unwrap_or("unknown")
}

impl Failure {
    fn info(&self) -> ossa::ErrorInfo<'_> {
        ossa::ErrorInfo {
            message: self
                .message
                .as_deref()
                .or(self.code.as_deref())
                .unwrap_or("error"),
            code: self.code.as_deref(),
            retryable: None,
        }
    }
}

/// `text` as a JSON value: as it is when it is JSON, else as a JSON string
/// (written into `buf`).
fn json<'a>(text: Option<&'a str>, buf: &'a mut String) -> Option<RawJson<'a>> {
    let text = text?;
    if let Ok(raw) = RawJson::new(text) {
        return Some(raw);
    }
    buf.reserve(text.len() + 2);
    buf.push('"');
    for ch in text.chars() {
        match ch {
            '"' => buf.push_str("\\\""),
            '\\' => buf.push_str("\\\\"),
            '\n' => buf.push_str("\\n"),
            '\r' => buf.push_str("\\r"),
            '\t' => buf.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                use fmt::Write as _;
                let _ = write!(buf, "\\u{:04x}", u32::from(c));
            }
            c => buf.push(c),
        }
    }
    buf.push('"');
    RawJson::new(buf).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_from_names_and_operations() {
        assert_eq!(Kind::parse("invoke_agent"), Some(Kind::Agent));
        assert_eq!(Kind::parse("chat gpt-4o"), Some(Kind::Chat));
        assert_eq!(Kind::parse("execute_tool web_search"), Some(Kind::Tool));
        assert_eq!(Kind::parse("invoke_workflow"), Some(Kind::Workflow));
        assert_eq!(Kind::parse("chat_streaming"), None);
        assert_eq!(Kind::parse("embeddings"), None);
    }

    #[test]
    fn text_that_is_not_json_becomes_a_json_string() {
        let mut buf = String::new();
        let raw = json(Some("say \"hi\"\n\u{1}"), &mut buf).unwrap();
        assert_eq!(raw.as_str(), r#""say \"hi\"\n\u0001""#);
        let mut buf = String::new();
        assert_eq!(
            json(Some(r#"{"a":1}"#), &mut buf).unwrap().as_str(),
            r#"{"a":1}"#
        );
        assert!(buf.is_empty());
    }
}
