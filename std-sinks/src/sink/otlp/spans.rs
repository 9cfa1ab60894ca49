//! The span assembler: pairs started and end events into spans, finds each
//! span's parent, keeps open spans in a bounded table, and turns lone events
//! into span events or log-like spans.
//!
//! ```text
//!  started ──► open (table, at most max_open) ──end──► closed ──► request
//!                │   ▲                                   │
//!                │   └──────── reopened ◄── retry ───────┘
//!                ├──table full: oldest evicted──► unfinished ──► request
//!                └──sink dropped──────────────► unfinished ──► last request
//!  lone event ──► span event on its enclosing open span (held with it)
//!             └─► no open span: a log-like span ──► request
//! ```

use std::collections::{BTreeMap, HashMap, VecDeque};

use ossa_events_core::Event;
use ossa_events_core::trace::TraceParent;
use serde_json::Value;

use super::semconv::{self, END, FAIL, From, LONE, Op, Role, START};
use crate::ids::{FNV_START, fnv1a};

/// An attribute value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Val {
    Str(String),
    Int(i64),
}

/// Attributes, in the order they were set.
pub(crate) type Attrs = Vec<(&'static str, Val)>;

fn set(attrs: &mut Attrs, key: &'static str, v: Val) {
    if !attrs.iter().any(|(k, _)| *k == key) {
        attrs.push((key, v));
    }
}

/// A span event.
#[derive(Debug, Clone)]
pub(crate) struct SpanEvent {
    pub(crate) time_ns: u64,
    pub(crate) name: String,
    pub(crate) attrs: Attrs,
}

/// A span, open or finished.
#[derive(Debug, Clone)]
pub(crate) struct Span {
    pub(crate) trace: [u8; 16],
    pub(crate) id: [u8; 8],
    pub(crate) parent: Option<[u8; 8]>,
    pub(crate) trace_state: Option<String>,
    pub(crate) name: String,
    pub(crate) start_ns: u64,
    pub(crate) end_ns: u64,
    pub(crate) attrs: Attrs,
    pub(crate) events: Vec<SpanEvent>,
    /// `Some(message)`: status ERROR.
    pub(crate) error: Option<String>,
    /// Its table key, to reopen it (a request that will be retried).
    key: Option<Key>,
    op: Option<Op>,
    agent: Option<String>,
}

/// Why a span went out without its end event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unfinished {
    /// The open-span table was full: the oldest open span made room.
    Evicted,
    /// The sink was dropped (the emitter shut down) with the span open.
    Shutdown,
}

impl Unfinished {
    pub(crate) fn reason(self, max_open: usize) -> String {
        match self {
            Unfinished::Evicted => {
                format!("evicted: the open-span table was full ({max_open} spans)")
            }
            Unfinished::Shutdown => "shutdown: no end event before the sink closed".into(),
        }
    }
}

/// Identifies an open operation: trace, the span id its events carry, the
/// operation, and its key member (`call_id`, `turn`…).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    trace: [u8; 16],
    span: [u8; 8],
    op: Op,
    disc: u64,
}

/// One event, read for the assembler.
pub(crate) struct Input<'e> {
    pub(crate) ev: &'e Event<'e>,
    pub(crate) data: Option<Value>,
    pub(crate) time_ns: u64,
    trace: [u8; 16],
    span: [u8; 8],
    parent_hint: Option<[u8; 8]>,
}

impl<'e> Input<'e> {
    /// Reads `ev`; `now_ns` stands in for a missing `time`.
    pub(crate) fn new(ev: &'e Event<'e>, now_ns: u64) -> Input<'e> {
        let data = match ev.data() {
            Some(ossa_events_core::Data::Json(s)) => serde_json::from_str(s).ok(),
            _ => None,
        };
        let time_ns = ev.time().map_or(now_ns, |t| {
            match u64::try_from(t.unix_seconds()) {
                Ok(s) => s
                    .saturating_mul(1_000_000_000)
                    .saturating_add(u64::from(t.nanos())),
                // Before 1970: OTLP times are unsigned, so the epoch. Not
                // the whole seconds alone clamped, which put the fraction
                // after the epoch (and a start after its end).
                Err(_) => 0,
            }
        });
        let tp = ev.traceparent();
        let trace = ev
            .ossa_trace_id()
            .and_then(hex::<16>)
            .or_else(|| tp.as_ref().and_then(|t| hex::<16>(t.trace_id())))
            .unwrap_or_else(|| {
                let basis = ev
                    .ossa_trace_id()
                    .or(ev.ossa_interaction_id())
                    .unwrap_or(ev.source());
                hash16(basis.as_bytes())
            });
        let span = ev
            .ossa_span_id()
            .and_then(hex::<8>)
            .or_else(|| {
                tp.as_ref()
                    .and_then(|t: &TraceParent<'_>| hex::<8>(t.parent_id()))
            })
            .unwrap_or_else(|| match ev.ossa_span_id() {
                Some(s) => hash8(&[s.as_bytes()]),
                // No span id at all (an emitter with no span context): the
                // operation stands in, so that its started and its end event
                // get the same one (the type differs between them).
                None => {
                    let what = match semconv::role(ev.ty()) {
                        Role::Start(op) | Role::End(op) | Role::Fail(op) => op.operation(),
                        Role::Lone => ev.ty(),
                    };
                    hash8(&[what.as_bytes(), ev.ossa_agent_id().unwrap_or("").as_bytes()])
                }
            });
        let parent_hint = match ev.extension(PARENT_EXT) {
            Some(ossa_events_core::ExtValue::String(s)) => hex::<8>(s),
            _ => None,
        };
        Input {
            ev,
            data,
            time_ns,
            trace,
            span,
            parent_hint,
        }
    }

    /// The event's identity, `source` and `id` (CloudEvents: events with
    /// both the same are duplicates), hashed.
    fn ident(&self) -> u64 {
        let h = fnv1a(FNV_START, self.ev.source().as_bytes());
        fnv1a(fnv1a(h, &[0xff]), self.ev.id().as_bytes())
    }

    fn str_at(&self, path: &[&str]) -> Option<&str> {
        self.at(path).and_then(Value::as_str)
    }

    fn at(&self, path: &[&str]) -> Option<&Value> {
        let mut v = self.data.as_ref()?;
        for p in path {
            v = v.get(p)?;
        }
        Some(v)
    }

    fn key(&self, op: Op) -> Key {
        let disc = match self.at(&[op.key_member()]) {
            Some(Value::String(s)) => fnv1a(FNV_START, s.as_bytes()),
            Some(v @ Value::Number(_)) => fnv1a(FNV_START, v.to_string().as_bytes()),
            // A tool call without a call id: its tool name.
            _ if op == Op::Tool => self
                .str_at(&["tool"])
                .map_or(0, |t| fnv1a(FNV_START, t.as_bytes())),
            _ => 0,
        };
        // From agent level down, two agents that share trace and span ids
        // (an emitter-wide context) still have their own turn 1 and call
        // ids: the agent is part of the key.
        let disc = match (op, self.ev.ossa_agent_id()) {
            (Op::Workflow, _) | (_, None) => disc,
            (_, Some(agent)) => fnv1a(disc, agent.as_bytes()),
        };
        Key {
            trace: self.trace,
            span: self.span,
            op,
            disc,
        }
    }

    /// The attributes `semconv::RULES` give this event of `op` in `phase`.
    fn attrs_into(&self, op: Option<Op>, phase: u8, attrs: &mut Attrs) {
        for rule in semconv::rules(op, phase) {
            if attrs.iter().any(|(k, _)| *k == rule.attr) {
                continue;
            }
            let v = match rule.from {
                From::Const(s) => Some(Val::Str(s.into())),
                From::Operation => op.map(|o| Val::Str(o.operation().into())),
                From::Ext(name) => match self.ev.extension(name) {
                    Some(ossa_events_core::ExtValue::String(s)) => Some(Val::Str(s.into())),
                    _ => None,
                },
                From::Str(path) => self.str_at(path).map(|s| Val::Str(s.into())),
                From::Int(path) => self.at(path).and_then(Value::as_i64).map(Val::Int),
                From::EventId => Some(Val::Str(self.ev.id().into())),
                From::Source => Some(Val::Str(self.ev.source().into())),
                From::Type => Some(Val::Str(self.ev.ty().into())),
            };
            if let Some(v) = v {
                attrs.push((rule.attr, v));
            }
        }
    }
}

/// The extension that names a span's parent outright (16 hex digits);
/// without it the parent is found by the rules in the sink's docs.
///
/// ```
/// use ossa_events::sink::otlp::PARENT_EXT;
/// use ossa_events::{ossa, Event, ExtValue};
/// let p = ossa::TurnStarted { turn: 1, ..Default::default() };
/// let ev = Event::builder()
///     .id("e-1")
///     .source("/agents/a")
///     .ossa(&p)
///     .extension(PARENT_EXT, ExtValue::String("00f067aa0ba902b7"))
///     .build()?;
/// assert!(ev.extension("ossaparentspanid").is_some());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub const PARENT_EXT: &str = "ossaparentspanid";

fn hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let b = s.as_bytes();
    if b.len() != 2 * N {
        return None;
    }
    let nib = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = (nib(b[2 * i])? << 4) | nib(b[2 * i + 1])?;
    }
    (out != [0u8; N]).then_some(out)
}

/// The parent `input` names ([`PARENT_EXT`]) for a span exported as `id`:
/// none when it names the span itself (a span is not its own parent; OTLP
/// `parent_span_id` is the id of another span), so the parent rules apply.
fn own_parent_hint(input: &Input<'_>, id: [u8; 8]) -> Option<[u8; 8]> {
    input.parent_hint.filter(|p| *p != id)
}

fn hash8(parts: &[&[u8]]) -> [u8; 8] {
    let h = parts
        .iter()
        .fold(FNV_START, |h, p| fnv1a(fnv1a(h, p), &[0xff]));
    (h | 1).to_be_bytes()
}

fn hash16(b: &[u8]) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&fnv1a(FNV_START, b).to_be_bytes());
    out[8..].copy_from_slice(&(fnv1a(FNV_START ^ 0x5bd1_e995, b) | 1).to_be_bytes());
    out
}

/// What became of one event in the assembler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fate {
    /// Held: a started event in the open table, or a span event on an open
    /// span. Delivered now; its span goes out later.
    Held,
    /// In the request being built (a closed span, or a log-like span).
    InRequest,
    /// Cannot be held (the span's event limit): failed with this reason.
    Refused(String),
}

/// Spans ready to go, and which event each depends on.
#[derive(Debug, Default)]
pub(crate) struct Request {
    /// Closed and log-like spans, each with the position of the event that
    /// put it here.
    pub(crate) spans: Vec<(Span, usize)>,
    /// Unfinished spans (evicted, or left at shutdown).
    pub(crate) unfinished: Vec<Span>,
}

impl Request {
    pub(crate) fn is_empty(&self) -> bool {
        self.spans.is_empty() && self.unfinished.is_empty()
    }
}

/// Open spans, bounded.
#[derive(Debug)]
pub(crate) struct Table {
    max_open: usize,
    max_events: usize,
    open: HashMap<Key, (u64, Span)>,
    /// Open order → key, for evicting the oldest.
    order: BTreeMap<u64, Key>,
    /// Open keys of each trace, in open order.
    by_trace: HashMap<[u8; 16], Vec<Key>>,
    next: u64,
    /// Recently closed or evicted operations (a later end is a lone
    /// event, and so is a start dated before their end), bounded by
    /// `max_open`, with the span id they were exported under.
    closed: VecDeque<(Key, [u8; 8])>,
    closed_set: HashMap<Key, Closed>,
    /// Span ids closed spans went out under, by trace (how many times), and
    /// in closing order: bounded by `max_open`, as `closed`.
    exported: HashMap<([u8; 16], [u8; 8]), u32>,
    exported_order: VecDeque<([u8; 16], [u8; 8])>,
}

/// What [`Table`] remembers of a closed operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Closed {
    /// When its span ended.
    end_ns: u64,
    /// Its end event (`source` and `id`, hashed): the same event delivered
    /// again is a duplicate, even when a later span of the key is open.
    /// `None`: evicted unfinished, not ended by its end event.
    end_event: Option<u64>,
}

impl Table {
    pub(crate) fn new(max_open: usize, max_events: usize) -> Table {
        Table {
            max_open: max_open.max(1),
            max_events,
            open: HashMap::new(),
            order: BTreeMap::new(),
            by_trace: HashMap::new(),
            next: 0,
            closed: VecDeque::new(),
            closed_set: HashMap::new(),
            exported: HashMap::new(),
            exported_order: VecDeque::new(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.open.len()
    }

    pub(crate) fn max_open(&self) -> usize {
        self.max_open
    }

    /// Applies event `pos` to the table; what goes out now lands in `req`.
    pub(crate) fn apply(&mut self, input: &Input<'_>, pos: usize, req: &mut Request) -> Fate {
        match semconv::role(input.ev.ty()) {
            Role::Start(op) => self.start(input, op, pos, req),
            // A `completed` event whose `status` says `failed` (what
            // `OssaLayer` emits for a failed workflow, which has no
            // `failed` type) ends its span as a `failed` event does.
            Role::End(op) if input.str_at(&["status"]) != Some("failed") => {
                self.end(input, op, None, pos, req)
            }
            Role::End(op) | Role::Fail(op) => {
                let msg = input
                    .str_at(&["error", "message"])
                    .unwrap_or("failed")
                    .to_owned();
                self.end(input, op, Some(msg), pos, req)
            }
            Role::Lone => self.lone(input, None, pos, req),
        }
    }

    fn start(&mut self, input: &Input<'_>, op: Op, pos: usize, req: &mut Request) -> Fate {
        let key = input.key(op);
        if self.open.contains_key(&key) {
            return self.lone(input, Some("duplicate started event"), pos, req);
        }
        // A start dated no later than the end of the closed span of its key
        // is that span's (a duplicate, or out of order): not a new span with
        // the same id left open. A later one is a new operation that reuses
        // the key (ids set emitter-wide, a second run of the agent).
        if self
            .closed_set
            .get(&key)
            .is_some_and(|c| input.time_ns <= c.end_ns)
        {
            return self.lone(input, Some("started event of a closed span"), pos, req);
        }
        let agent = input.ev.ossa_agent_id().map(str::to_owned);
        let id = self.free_id(&key);
        let parent =
            own_parent_hint(input, id).or_else(|| self.parent_of(key.trace, op, agent.as_deref()));
        let mut attrs = Attrs::new();
        input.attrs_into(Some(op), START, &mut attrs);
        let span = Span {
            trace: key.trace,
            id,
            parent,
            trace_state: input.ev.tracestate().map(str::to_owned),
            name: String::new(),
            start_ns: input.time_ns,
            end_ns: input.time_ns,
            attrs,
            events: Vec::new(),
            error: None,
            key: Some(key),
            op: Some(op),
            agent,
        };
        while self.open.len() >= self.max_open {
            let Some(oldest) = self.order.first_key_value().map(|(_, k)| *k) else {
                break;
            };
            if let Some(mut s) = self.remove(&oldest) {
                s.end_ns = s.end_ns.max(input.time_ns);
                self.remember_closed(oldest, s.id, None, s.end_ns);
                req.unfinished
                    .push(finish_unfinished(s, Unfinished::Evicted, self.max_open));
            }
        }
        self.insert(key, span);
        Fate::Held
    }

    fn end(
        &mut self,
        input: &Input<'_>,
        op: Op,
        error: Option<String>,
        pos: usize,
        req: &mut Request,
    ) -> Fate {
        let key = input.key(op);
        let phase = if error.is_some() { FAIL } else { END };
        let ident = input.ident();
        // The end of a closed span delivered again (at-least-once), after a
        // later span of its key opened (a tool without call id called again):
        // a duplicate, not that later span's end.
        if self
            .closed_set
            .get(&key)
            .is_some_and(|c| c.end_event == Some(ident))
        {
            return self.lone(input, Some("duplicate end event"), pos, req);
        }
        let gone = self.closed_set.get(&key).map(|c| c.end_event.is_none());
        let mut span = match self.remove(&key) {
            Some(s) => s,
            None if gone.is_some() => {
                let why = if gone == Some(true) {
                    "end event after its span was evicted"
                } else {
                    "duplicate end event"
                };
                return self.lone(input, Some(why), pos, req);
            }
            None => {
                // An end without its start: a span from the end alone,
                // as long as the payload's duration_ms says.
                let dur = input
                    .at(&["duration_ms"])
                    .and_then(Value::as_u64)
                    .unwrap_or(0);
                let agent = input.ev.ossa_agent_id().map(str::to_owned);
                let id = self.free_id(&key);
                let parent = own_parent_hint(input, id)
                    .or_else(|| self.parent_of(key.trace, op, agent.as_deref()));
                let attrs = vec![("ossa.span.incomplete", Val::Str("no started event".into()))];
                Span {
                    trace: key.trace,
                    id,
                    parent,
                    trace_state: input.ev.tracestate().map(str::to_owned),
                    name: String::new(),
                    start_ns: input.time_ns.saturating_sub(dur.saturating_mul(1_000_000)),
                    end_ns: input.time_ns,
                    attrs,
                    events: Vec::new(),
                    error: None,
                    key: Some(key),
                    op: Some(op),
                    agent,
                }
            }
        };
        input.attrs_into(Some(op), phase, &mut span.attrs);
        span.end_ns = input.time_ns.max(span.start_ns);
        span.error = error;
        span.name = span_name(op, &span.attrs);
        self.remember_closed(key, span.id, Some(ident), span.end_ns);
        req.spans.push((span, pos));
        Fate::InRequest
    }

    fn lone(
        &mut self,
        input: &Input<'_>,
        why: Option<&'static str>,
        pos: usize,
        req: &mut Request,
    ) -> Fate {
        let mut attrs = Attrs::new();
        if let Some(why) = why {
            attrs.push(("ossa.lone.reason", Val::Str(why.into())));
        }
        input.attrs_into(None, LONE, &mut attrs);
        let agent = input.ev.ossa_agent_id();
        let event = SpanEvent {
            time_ns: input.time_ns,
            name: input.ev.ty().to_owned(),
            attrs,
        };
        if let Some(key) = self.enclosing(input.trace, input.span, agent) {
            let max = self.max_events;
            if let Some((_, span)) = self.open.get_mut(&key) {
                if span.events.len() >= max {
                    return Fate::Refused(format!(
                        "otlp: span {} has {max} span events already (the limit)",
                        hex_str(&span.id)
                    ));
                }
                span.end_ns = span.end_ns.max(input.time_ns);
                span.events.push(event);
                return Fate::Held;
            }
        }
        // No open span to hold it: a log-like span of its own, under the
        // span it names when that one closed lately.
        let id = hash8(&[input.ev.source().as_bytes(), input.ev.id().as_bytes()]);
        let parent = own_parent_hint(input, id).or_else(|| {
            self.closed
                .iter()
                .rev()
                .find(|(k, _)| k.trace == input.trace && k.span == input.span)
                .map(|(_, id)| *id)
        });
        let span = Span {
            trace: input.trace,
            id,
            parent,
            trace_state: input.ev.tracestate().map(str::to_owned),
            name: input.ev.ty().to_owned(),
            start_ns: input.time_ns,
            end_ns: input.time_ns,
            attrs: event.attrs.clone(),
            events: vec![event],
            error: None,
            key: None,
            op: None,
            agent: None,
        };
        // A duplicate started event settles here too (pos is its own).
        req.spans.push((span, pos));
        Fate::InRequest
    }

    /// The parent of a new `op` span in `trace`: the innermost open span of
    /// a lower operation (agent-level and below: of the same agent).
    fn parent_of(&self, trace: [u8; 16], op: Op, agent: Option<&str>) -> Option<[u8; 8]> {
        let keys = self.by_trace.get(&trace)?;
        let mut best: Option<(Op, [u8; 8])> = None;
        for k in keys.iter().rev() {
            let Some((_, s)) = self.open.get(k) else {
                continue;
            };
            let Some(sop) = s.op else { continue };
            if sop >= op || !same_agent(sop, s.agent.as_deref(), agent) {
                continue;
            }
            if best.is_none_or(|(b, _)| sop > b) {
                best = Some((sop, s.id));
            }
        }
        best.map(|(_, id)| id)
    }

    /// The open span a lone event belongs to: the one its span id names
    /// (innermost if several), else the innermost open span of its trace
    /// (of the same agent from agent level down).
    fn enclosing(&self, trace: [u8; 16], span: [u8; 8], agent: Option<&str>) -> Option<Key> {
        let keys = self.by_trace.get(&trace)?;
        let pick = |named: bool| {
            let mut best: Option<(Op, Key)> = None;
            for k in keys.iter().rev() {
                if named && k.span != span {
                    continue;
                }
                let Some((_, s)) = self.open.get(k) else {
                    continue;
                };
                // Named or not: agents that share an emitter-wide span id
                // carry the same one, and another agent's turn is no
                // enclosing span of this agent's event.
                if !same_agent(k.op, s.agent.as_deref(), agent) {
                    continue;
                }
                if best.is_none_or(|(b, _)| k.op > b) {
                    best = Some((k.op, *k));
                }
            }
            best.map(|(_, k)| k)
        };
        pick(true).or_else(|| pick(false))
    }

    /// The span id to export `key` under: its own, unless a span of its
    /// trace has it already, open or lately closed (then one derived from
    /// the key, and from the open order when that one is taken too).
    /// Closed spans count: operations one after another under one
    /// emitter-wide span id each found it free once the one before had
    /// closed, and went out with the same span id in one trace.
    fn free_id(&self, key: &Key) -> [u8; 8] {
        let taken = |id: [u8; 8]| {
            self.exported.contains_key(&(key.trace, id))
                || self.by_trace.get(&key.trace).is_some_and(|ks| {
                    ks.iter()
                        .any(|k| self.open.get(k).is_some_and(|(_, s)| s.id == id))
                })
        };
        if !taken(key.span) {
            return key.span;
        }
        let derived = hash8(&[&key.span, &[key.op as u8], &key.disc.to_be_bytes()]);
        let mut id = derived;
        // A key used again (a tool without call id, a second run): salted
        // with the open order, unique in the table; bounded all the same.
        let mut salt = self.next;
        while taken(id) && salt < self.next.saturating_add(64) {
            id = hash8(&[&derived, &salt.to_be_bytes()]);
            salt += 1;
        }
        id
    }

    fn insert(&mut self, key: Key, span: Span) {
        let seq = self.next;
        self.next += 1;
        self.order.insert(seq, key);
        self.by_trace.entry(key.trace).or_default().push(key);
        self.open.insert(key, (seq, span));
    }

    fn remove(&mut self, key: &Key) -> Option<Span> {
        let (seq, span) = self.open.remove(key)?;
        self.order.remove(&seq);
        if let Some(ks) = self.by_trace.get_mut(&key.trace) {
            ks.retain(|k| k != key);
            if ks.is_empty() {
                self.by_trace.remove(&key.trace);
            }
        }
        Some(span)
    }

    /// Remembers `key` closed: by its end event `end_event`, or evicted (`None`).
    fn remember_closed(&mut self, key: Key, id: [u8; 8], end_event: Option<u64>, end_ns: u64) {
        // The id it went out under, for `free_id`, as long as `closed`
        // remembers operations.
        *self.exported.entry((key.trace, id)).or_default() += 1;
        self.exported_order.push_back((key.trace, id));
        while self.exported_order.len() > self.max_open {
            if let Some(old) = self.exported_order.pop_front()
                && let Some(n) = self.exported.get_mut(&old)
            {
                *n -= 1;
                if *n == 0 {
                    self.exported.remove(&old);
                }
            }
        }
        if self
            .closed_set
            .insert(key, Closed { end_ns, end_event })
            .is_none()
        {
            self.closed.push_back((key, id));
        }
        while self.closed.len() > self.max_open {
            if let Some((k, _)) = self.closed.pop_front() {
                self.closed_set.remove(&k);
            }
        }
    }

    /// Puts back a span whose request failed and will be retried: its end
    /// event comes again. Log-like spans are rebuilt from their events.
    /// Evicts the oldest into `evicted` when the table is full.
    pub(crate) fn reopen(&mut self, mut span: Span, evicted: &mut Vec<Span>) {
        let Some(key) = span.key else { return };
        // A later start in the same failed request opened the key again:
        // the closed record (with its end event) stays, so that the
        // retried end is a duplicate, not the end of that later span.
        let reused = self.open.contains_key(&key);
        if span.attrs.iter().any(|(k, _)| *k == "ossa.span.incomplete") {
            // Made from the end alone: the retried end makes it again,
            // under the id it carries (not exported after all: it found
            // that id "taken" by itself, and went out under a derived one).
            self.forget_exported(key.trace, span.id);
            if !reused {
                self.forget_closed(&key);
            }
            return;
        }
        if !reused {
            self.forget_closed(&key);
        }
        // Back to what the started event made: the end's attributes go.
        span.error = None;
        span.name.clear();
        span.attrs.retain(|(k, _)| {
            !matches!(
                *k,
                "ossa.end_event_id"
                    | "ossa.status"
                    | "error.type"
                    | "gen_ai.usage.input_tokens"
                    | "gen_ai.usage.output_tokens"
            )
        });
        if reused {
            // A later start in the same failed request opened the span
            // again. This one holds a start that was answered delivered: it
            // goes out unfinished, as an evicted span, not nowhere (it was
            // dropped here, and its start event was silently lost).
            evicted.push(finish_unfinished(span, Unfinished::Evicted, self.max_open));
            return;
        }
        while self.open.len() >= self.max_open {
            let Some(oldest) = self.order.first_key_value().map(|(_, k)| *k) else {
                break;
            };
            if let Some(s) = self.remove(&oldest) {
                self.remember_closed(oldest, s.id, None, s.end_ns);
                evicted.push(finish_unfinished(s, Unfinished::Evicted, self.max_open));
            }
        }
        // Open again: its id is taken as an open span's, and remembered
        // again when it closes.
        self.forget_exported(key.trace, span.id);
        self.insert(key, span);
    }

    /// Undoes the last [`remember_closed`](Self::remember_closed) of span
    /// id `id` in `trace`, for a span whose request failed.
    fn forget_exported(&mut self, trace: [u8; 16], id: [u8; 8]) {
        let Some(at) = self.exported_order.iter().rposition(|e| *e == (trace, id)) else {
            return;
        };
        self.exported_order.remove(at);
        if let Some(n) = self.exported.get_mut(&(trace, id)) {
            *n -= 1;
            if *n == 0 {
                self.exported.remove(&(trace, id));
            }
        }
    }

    fn forget_closed(&mut self, key: &Key) {
        if self.closed_set.remove(key).is_some() {
            self.closed.retain(|(k, _)| k != key);
        }
    }

    /// Every open span, as unfinished (the sink is closing), oldest first.
    pub(crate) fn drain_unfinished(&mut self, now_ns: u64) -> Vec<Span> {
        let keys: Vec<Key> = self.order.values().copied().collect();
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            if let Some(mut s) = self.remove(&k) {
                s.end_ns = s.end_ns.max(now_ns);
                out.push(finish_unfinished(s, Unfinished::Shutdown, self.max_open));
            }
        }
        out
    }
}

impl Span {
    /// Span events on this span.
    pub(crate) fn event_count(&self) -> usize {
        self.events.len()
    }

    /// Whether this span holds an event already answered delivered (a
    /// started event): losing it then loses that event's record.
    pub(crate) fn holds_delivered(&self) -> bool {
        self.op.is_some() && !self.attrs.iter().any(|(k, _)| *k == "ossa.span.incomplete")
    }

    /// Whether this span went out without its end event.
    pub(crate) fn is_unfinished(&self) -> bool {
        self.attrs.iter().any(|(k, _)| *k == "ossa.span.unfinished")
    }
}

fn finish_unfinished(mut s: Span, why: Unfinished, max_open: usize) -> Span {
    set(
        &mut s.attrs,
        "ossa.span.unfinished",
        Val::Str(why.reason(max_open)),
    );
    if let Some(op) = s.op {
        s.name = span_name(op, &s.attrs);
    }
    s.key = None;
    s
}

/// Agent-level spans and below belong to one agent: a candidate of
/// `cand_op` with agent `cand` fits an event of agent `agent` when either
/// has none, or they are the same; a workflow fits every agent.
fn same_agent(cand_op: Op, cand: Option<&str>, agent: Option<&str>) -> bool {
    cand_op == Op::Workflow
        || match (cand, agent) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        }
}

fn span_name(op: Op, attrs: &Attrs) -> String {
    let value = op.name_attribute().and_then(|n| {
        attrs.iter().find_map(|(k, v)| match v {
            Val::Str(s) if *k == n => Some(s.as_str()),
            _ => None,
        })
    });
    match value {
        Some(v) => format!("{} {v}", op.operation()),
        None => op.operation().to_owned(),
    }
}

/// Lowercase hex of `b`.
fn hex_str(b: &[u8]) -> String {
    const H: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for &x in b {
        s.push(char::from(H[usize::from(x >> 4)]));
        s.push(char::from(H[usize::from(x & 15)]));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use ossa_events_core::Scratch;

    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

    /// Applies events `(type, span id, agent, data, extra JSON members)` in
    /// order; the spans that went out, and the table.
    fn run(max_open: usize, evs: &[(&str, &str, &str, &str, &str)]) -> (Vec<Span>, Table) {
        let lines: Vec<String> = evs
            .iter()
            .enumerate()
            .map(|(i, (ty, span, agent, data, extra))| {
                format!(
                    r#"{{"specversion":"1.0","id":"e{i}","source":"/s","type":"{ty}","time":"2026-01-01T00:00:{i:02}Z","ossatraceid":"{TRACE}","ossaspanid":"{span}","ossaagentid":"{agent}"{extra},"data":{data}}}"#
                )
            })
            .collect();
        run_lines(max_open, &lines)
    }

    /// [`run`] of whole JSON events.
    fn run_lines(max_open: usize, lines: &[String]) -> (Vec<Span>, Table) {
        let mut t = Table::new(max_open, 8);
        let mut req = Request::default();
        for (i, line) in lines.iter().enumerate() {
            let mut buf = vec![0u8; line.len()];
            let ev = ossa_events_core::parse::json::parse_event(
                line.as_bytes(),
                &mut Scratch::new(&mut buf),
            )
            .unwrap();
            let _ = t.apply(&Input::new(&ev, 0), i, &mut req);
        }
        let mut out: Vec<Span> = req.spans.into_iter().map(|(s, _)| s).collect();
        out.extend(req.unfinished);
        (out, t)
    }

    fn id(s: &str) -> [u8; 8] {
        hex::<8>(s).unwrap()
    }

    fn find<'s>(spans: &'s [Span], span: &str) -> &'s Span {
        spans.iter().find(|s| s.id == id(span)).unwrap()
    }

    fn attr<'s>(s: &'s Span, key: &str) -> Option<&'s Val> {
        s.attrs.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// An event of `ty` for agent `agent` at second `sec`, with no trace or
    /// span ids (an emitter with no span context).
    fn bare(ty: &str, agent: &str, sec: u32, data: &str) -> String {
        format!(
            r#"{{"specversion":"1.0","id":"{ty}-{sec}","source":"/s","type":"{ty}","time":"2026-01-01T00:00:{sec:02}Z","ossaagentid":"{agent}","data":{data}}}"#
        )
    }

    #[test]
    fn events_without_span_ids_pair_by_their_operation() {
        let (spans, t) = run_lines(
            16,
            &[
                bare("dev.ossa.agent.started", "a", 1, r#"{"agent_id":"a"}"#),
                bare(
                    "dev.ossa.tool.called",
                    "a",
                    2,
                    r#"{"tool":"x","call_id":"c"}"#,
                ),
                bare(
                    "dev.ossa.tool.completed",
                    "a",
                    3,
                    r#"{"tool":"x","call_id":"c"}"#,
                ),
                bare("dev.ossa.agent.completed", "a", 4, r#"{"agent_id":"a"}"#),
            ],
        );
        // Before: each end made an incomplete span of its own, and each
        // start stayed open (2 more spans, unfinished, at shutdown).
        assert_eq!(spans.len(), 2, "{spans:#?}");
        assert_eq!(t.len(), 0, "nothing left open");
        assert!(
            spans
                .iter()
                .all(|s| attr(s, "ossa.span.incomplete").is_none())
        );
        let agent = spans.iter().find(|s| s.op == Some(Op::Agent)).unwrap();
        let tool = spans.iter().find(|s| s.op == Some(Op::Tool)).unwrap();
        assert_eq!(tool.parent, Some(agent.id));
        // Its start and its end: one second apart.
        assert_eq!(tool.end_ns - tool.start_ns, 1_000_000_000);
    }

    #[test]
    fn a_start_dated_before_its_closed_span_ended_opens_nothing() {
        let call = r#"{"tool":"x","call_id":"c"}"#;
        // The end first, its start late (out of order, or sent again):
        // the start is a lone event, not a second span left open with
        // the same id. A start after that end is a new call.
        let (spans, t) = run_lines(
            16,
            &[
                bare("dev.ossa.tool.completed", "a", 5, call),
                bare("dev.ossa.tool.called", "a", 3, call),
            ],
        );
        assert_eq!(t.len(), 0, "no phantom span left open");
        assert_eq!(spans.len(), 2, "{spans:#?}");
        assert!(attr(&spans[0], "ossa.span.incomplete").is_some());
        assert_eq!(
            attr(&spans[1], "ossa.lone.reason"),
            Some(&Val::Str("started event of a closed span".into()))
        );
        let (_, t) = run_lines(
            16,
            &[
                bare("dev.ossa.tool.called", "a", 1, call),
                bare("dev.ossa.tool.completed", "a", 2, call),
                bare("dev.ossa.tool.called", "a", 3, call),
            ],
        );
        assert_eq!(t.len(), 1, "a later start of the same key opens a span");
    }

    /// A request carried the first call's span (closed by its end) and
    /// failed, and a later call of the same key (a tool without call id)
    /// opened in that batch. The first span was reopened as unfinished,
    /// its closed record forgotten, and the retried end then closed the
    /// later call (at its start) whose own end became a "duplicate end".
    #[test]
    fn a_retried_end_does_not_close_a_later_span_of_its_key() {
        let call = r#"{"tool":"x"}"#;
        let line = |ty, sec| bare(ty, "a", sec, call);
        let mut t = Table::new(16, 8);
        let mut req = Request::default();
        let apply = |t: &mut Table, req: &mut Request, l: &str| {
            let mut buf = vec![0u8; l.len()];
            let ev = ossa_events_core::parse::json::parse_event(
                l.as_bytes(),
                &mut Scratch::new(&mut buf),
            )
            .unwrap();
            t.apply(&Input::new(&ev, 0), 0, req)
        };
        apply(&mut t, &mut req, &line("dev.ossa.tool.called", 1));
        apply(&mut t, &mut req, &line("dev.ossa.tool.completed", 2));
        apply(&mut t, &mut req, &line("dev.ossa.tool.called", 3));
        // The request fails, to be retried: its spans are reopened.
        let mut evicted = Vec::new();
        for (s, _) in std::mem::take(&mut req.spans) {
            t.reopen(s, &mut evicted);
        }
        assert_eq!(evicted.len(), 1, "the first call goes out unfinished");
        // The retried end of the first call, then the second call's own.
        apply(&mut t, &mut req, &line("dev.ossa.tool.completed", 2));
        apply(&mut t, &mut req, &line("dev.ossa.tool.completed", 4));
        let tools: Vec<(u64, u64)> = req
            .spans
            .iter()
            .filter(|(s, _)| s.op == Some(Op::Tool))
            .map(|(s, _)| {
                let sec = |ns: u64| (ns / 1_000_000_000) % 60;
                (sec(s.start_ns), sec(s.end_ns))
            })
            .collect();
        assert_eq!(tools, [(3, 4)], "{:#?}", req.spans);
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn two_agents_sharing_span_ids_keep_their_own_turns() {
        let shared = "00000000000000a1";
        let (spans, t) = run(
            16,
            &[
                (
                    "dev.ossa.agent.started",
                    shared,
                    "a",
                    r#"{"agent_id":"a"}"#,
                    "",
                ),
                (
                    "dev.ossa.agent.started",
                    shared,
                    "b",
                    r#"{"agent_id":"b"}"#,
                    "",
                ),
                ("dev.ossa.turn.started", shared, "a", r#"{"turn":1}"#, ""),
                ("dev.ossa.turn.started", shared, "b", r#"{"turn":1}"#, ""),
                ("dev.ossa.turn.completed", shared, "a", r#"{"turn":1}"#, ""),
                ("dev.ossa.turn.completed", shared, "b", r#"{"turn":1}"#, ""),
                (
                    "dev.ossa.agent.completed",
                    shared,
                    "a",
                    r#"{"agent_id":"a"}"#,
                    "",
                ),
                (
                    "dev.ossa.agent.completed",
                    shared,
                    "b",
                    r#"{"agent_id":"b"}"#,
                    "",
                ),
            ],
        );
        // Before: b's turn was a "duplicate started event" and a
        // "duplicate end event" on a's span: 3 spans.
        assert_eq!(t.len(), 0);
        assert_eq!(spans.len(), 4, "{spans:#?}");
        for agent in ["a", "b"] {
            let mine = |op| {
                spans
                    .iter()
                    .find(|s| s.op == Some(op) && s.agent.as_deref() == Some(agent))
                    .unwrap_or_else(|| panic!("{agent} {op:?}: {spans:#?}"))
            };
            assert_eq!(mine(Op::Turn).parent, Some(mine(Op::Agent).id), "{agent}");
            assert!(mine(Op::Turn).events.is_empty(), "{agent}");
        }
    }

    #[test]
    fn tool_calls_go_under_their_own_agents_turn() {
        let (spans, t) = run(
            16,
            &[
                (
                    "dev.ossa.workflow.started",
                    "00000000000000a0",
                    "",
                    r#"{"workflow_id":"w"}"#,
                    "",
                ),
                (
                    "dev.ossa.agent.started",
                    "00000000000000a1",
                    "a",
                    r#"{"agent_id":"a"}"#,
                    "",
                ),
                (
                    "dev.ossa.agent.started",
                    "00000000000000b1",
                    "b",
                    r#"{"agent_id":"b"}"#,
                    "",
                ),
                (
                    "dev.ossa.turn.started",
                    "00000000000000a2",
                    "a",
                    r#"{"turn":1}"#,
                    "",
                ),
                (
                    "dev.ossa.turn.started",
                    "00000000000000b2",
                    "b",
                    r#"{"turn":1}"#,
                    "",
                ),
                // Agent a's tool call, after b's turn opened.
                (
                    "dev.ossa.tool.called",
                    "00000000000000a3",
                    "a",
                    r#"{"tool":"x","call_id":"c"}"#,
                    "",
                ),
                (
                    "dev.ossa.tool.completed",
                    "00000000000000a3",
                    "a",
                    r#"{"tool":"x","call_id":"c"}"#,
                    "",
                ),
                (
                    "dev.ossa.turn.completed",
                    "00000000000000b2",
                    "b",
                    r#"{"turn":1}"#,
                    "",
                ),
            ],
        );
        assert_eq!(spans.len(), 2);
        assert_eq!(
            find(&spans, "00000000000000a3").parent,
            Some(id("00000000000000a2"))
        );
        assert_eq!(
            find(&spans, "00000000000000b2").parent,
            Some(id("00000000000000b1"))
        );
        assert_eq!(t.len(), 4);
    }

    #[test]
    fn an_explicit_parent_wins_and_an_end_alone_spans_its_duration() {
        let (spans, _) = run(
            16,
            &[
                (
                    "dev.ossa.agent.started",
                    "00000000000000a1",
                    "a",
                    r#"{"agent_id":"a"}"#,
                    "",
                ),
                (
                    "dev.ossa.turn.started",
                    "00000000000000a2",
                    "a",
                    r#"{"turn":1}"#,
                    r#","ossaparentspanid":"00000000000000ff""#,
                ),
                (
                    "dev.ossa.turn.completed",
                    "00000000000000a2",
                    "a",
                    r#"{"turn":1}"#,
                    "",
                ),
                (
                    "dev.ossa.tool.failed",
                    "00000000000000a4",
                    "a",
                    r#"{"tool":"x","call_id":"z","duration_ms":2500,"error":{"message":"m"}}"#,
                    "",
                ),
            ],
        );
        assert_eq!(
            find(&spans, "00000000000000a2").parent,
            Some(id("00000000000000ff"))
        );
        let tool = find(&spans, "00000000000000a4");
        assert_eq!(tool.parent, Some(id("00000000000000a1")));
        assert_eq!(tool.end_ns - tool.start_ns, 2_500_000_000);
        assert_eq!(tool.error.as_deref(), Some("m"));
        assert_eq!(
            attr(tool, "ossa.span.incomplete"),
            Some(&Val::Str("no started event".into()))
        );
        assert_eq!(attr(tool, "error.type"), Some(&Val::Str("_OTHER".into())));
    }

    #[test]
    fn a_second_end_is_a_span_event_and_a_second_start_too() {
        let (spans, t) = run(
            16,
            &[
                (
                    "dev.ossa.agent.started",
                    "00000000000000a1",
                    "a",
                    r#"{"agent_id":"a"}"#,
                    "",
                ),
                (
                    "dev.ossa.agent.started",
                    "00000000000000a1",
                    "a",
                    r#"{"agent_id":"a"}"#,
                    "",
                ),
                (
                    "dev.ossa.turn.started",
                    "00000000000000a2",
                    "a",
                    r#"{"turn":1}"#,
                    "",
                ),
                (
                    "dev.ossa.turn.completed",
                    "00000000000000a2",
                    "a",
                    r#"{"turn":1}"#,
                    "",
                ),
                (
                    "dev.ossa.turn.completed",
                    "00000000000000a2",
                    "a",
                    r#"{"turn":1}"#,
                    "",
                ),
            ],
        );
        // The turn went out once; the duplicates are span events on the agent.
        assert_eq!(spans.len(), 1);
        assert_eq!(t.len(), 1);
        let mut t = t;
        let mut drained = t.drain_unfinished(0);
        let agent = drained.remove(0);
        let reasons: Vec<_> = agent
            .events
            .iter()
            .map(|e| {
                e.attrs
                    .iter()
                    .find(|(k, _)| *k == "ossa.lone.reason")
                    .map(|(_, v)| v.clone())
            })
            .collect();
        assert_eq!(
            reasons,
            [
                Some(Val::Str("duplicate started event".into())),
                Some(Val::Str("duplicate end event".into()))
            ]
        );
    }

    #[test]
    fn the_oldest_open_span_is_evicted_at_the_bound() {
        let evs: Vec<(&str, String)> = (1..=5)
            .map(|n| ("dev.ossa.turn.started", format!("{n:016x}")))
            .collect();
        let datas: Vec<String> = (1..=5).map(|n| format!(r#"{{"turn":{n}}}"#)).collect();
        let rows: Vec<(&str, &str, &str, &str, &str)> = evs
            .iter()
            .zip(&datas)
            .map(|((ty, span), d)| (*ty, span.as_str(), "a", d.as_str(), ""))
            .collect();
        let (spans, t) = run(2, &rows);
        assert_eq!(t.len(), 2);
        let evicted: Vec<[u8; 8]> = spans.iter().map(|s| s.id).collect();
        assert_eq!(
            evicted,
            [
                id("0000000000000001"),
                id("0000000000000002"),
                id("0000000000000003")
            ]
        );
        assert!(spans.iter().all(Span::is_unfinished));
    }

    #[test]
    fn an_end_after_its_span_was_evicted_is_a_lone_event() {
        let (spans, _) = run(
            1,
            &[
                (
                    "dev.ossa.tool.called",
                    "0000000000000001",
                    "a",
                    r#"{"tool":"x","call_id":"1"}"#,
                    "",
                ),
                (
                    "dev.ossa.tool.called",
                    "0000000000000002",
                    "a",
                    r#"{"tool":"x","call_id":"2"}"#,
                    "",
                ),
                (
                    "dev.ossa.tool.completed",
                    "0000000000000001",
                    "a",
                    r#"{"tool":"x","call_id":"1"}"#,
                    "",
                ),
            ],
        );
        // The first call went out unfinished; its late end is a span event
        // on the open span of its trace, not a second span with its id.
        assert_eq!(spans.len(), 1);
        assert!(spans[0].is_unfinished());
    }

    #[test]
    fn ids_that_are_not_w3c_shaped_still_pair() {
        let (spans, _) = run(
            16,
            &[
                ("dev.ossa.tool.called", "span-1", "a", r#"{"tool":"x"}"#, ""),
                (
                    "dev.ossa.tool.completed",
                    "span-1",
                    "a",
                    r#"{"tool":"x"}"#,
                    "",
                ),
            ],
        );
        assert_eq!(spans.len(), 1);
        assert_eq!(spans[0].id, hash8(&[b"span-1"]));
        assert_eq!(spans[0].name, "execute_tool x");
    }

    #[test]
    fn hex_ids_are_w3c_shaped_or_none() {
        assert_eq!(hex::<2>("0a1f"), Some([0x0a, 0x1f]));
        assert_eq!(hex::<2>("0A1F"), None);
        assert_eq!(hex::<2>("0000"), None);
        assert_eq!(hex::<2>("0a1"), None);
        assert_eq!(hex_str(&[0x0a, 0x1f]), "0a1f");
        assert_ne!(hash16(b"x"), [0u8; 16]);
    }
}
