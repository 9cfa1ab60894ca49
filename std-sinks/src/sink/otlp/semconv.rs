//! The one table that maps OSSA lifecycle events to OpenTelemetry spans:
//! which events open and close which operation, the span's name, and every
//! attribute with where its value comes from.
//!
//! Versioned against the OpenTelemetry semantic conventions
//! [`SEMCONV_VERSION`] (the GenAI agent and tool spans, status
//! "Development"; `invoke_workflow` is new in that line). The README's OTLP
//! section prints this table; change both together.

use ossa_events_core::ossa;

/// The OpenTelemetry semantic-conventions release the mapping follows.
///
/// ```
/// assert_eq!(ossa_events::sink::otlp::SEMCONV_VERSION, "1.41.0");
/// ```
pub const SEMCONV_VERSION: &str = "1.41.0";

/// The schema URL of [`SEMCONV_VERSION`], written as the `schemaUrl` of
/// every scope the sink exports.
///
/// ```
/// use ossa_events::sink::otlp::{SCHEMA_URL, SEMCONV_VERSION};
/// assert!(SCHEMA_URL.ends_with(SEMCONV_VERSION));
/// ```
pub const SCHEMA_URL: &str = "https://opentelemetry.io/schemas/1.41.0";

/// The operation a started/ended pair stands for, innermost last: a span's
/// parent is an open span of a lower operation (see the sink's docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Op {
    Workflow = 0,
    Agent = 1,
    Turn = 2,
    Tool = 3,
}

impl Op {
    /// `gen_ai.operation.name`, also the first word of the span name.
    pub(crate) fn operation(self) -> &'static str {
        match self {
            Op::Workflow => "invoke_workflow",
            Op::Agent => "invoke_agent",
            Op::Turn => "chat",
            Op::Tool => "execute_tool",
        }
    }

    /// The attribute whose value follows the operation in the span name
    /// (`invoke_agent Research Agent`, `execute_tool web_search`).
    pub(crate) fn name_attribute(self) -> Option<&'static str> {
        match self {
            Op::Workflow => Some("gen_ai.workflow.name"),
            Op::Agent => Some("gen_ai.agent.name"),
            Op::Turn => None,
            Op::Tool => Some("gen_ai.tool.name"),
        }
    }

    /// The payload member that tells two operations of this kind apart
    /// under one span id (a started and an end event pair only when it is
    /// the same in both).
    pub(crate) fn key_member(self) -> &'static str {
        match self {
            Op::Workflow => "workflow_id",
            Op::Agent => "agent_id",
            Op::Turn => "turn",
            Op::Tool => "call_id",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// What an event does to spans.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// Opens the span of an operation.
    Start(Op),
    /// Closes it, successfully.
    End(Op),
    /// Closes it with an error status.
    Fail(Op),
    /// Opens and closes nothing: a span event (`state.updated`, other types).
    Lone,
}

/// The role of each OSSA event type; other types are [`Role::Lone`].
const ROLES: [(&str, Role); 11] = [
    (ossa::WORKFLOW_STARTED, Role::Start(Op::Workflow)),
    (ossa::WORKFLOW_COMPLETED, Role::End(Op::Workflow)),
    (ossa::AGENT_STARTED, Role::Start(Op::Agent)),
    (ossa::AGENT_COMPLETED, Role::End(Op::Agent)),
    (ossa::AGENT_FAILED, Role::Fail(Op::Agent)),
    (ossa::TURN_STARTED, Role::Start(Op::Turn)),
    (ossa::TURN_COMPLETED, Role::End(Op::Turn)),
    (ossa::TOOL_CALLED, Role::Start(Op::Tool)),
    (ossa::TOOL_COMPLETED, Role::End(Op::Tool)),
    (ossa::TOOL_FAILED, Role::Fail(Op::Tool)),
    (ossa::STATE_UPDATED, Role::Lone),
];

/// The role of event type `ty`.
pub(crate) fn role(ty: &str) -> Role {
    ROLES
        .iter()
        .find(|(t, _)| *t == ty)
        .map_or(Role::Lone, |(_, r)| *r)
}

/// Which events a [`Rule`] reads: operations (a bit each) and phases.
pub(crate) const START: u8 = 1;
pub(crate) const END: u8 = 2;
pub(crate) const FAIL: u8 = 4;
/// A lone event (its attributes go on its span event, or its log-like span).
pub(crate) const LONE: u8 = 8;
const CLOSE: u8 = END | FAIL;
const PAIR: u8 = START | END | FAIL;
const EVERY_PHASE: u8 = PAIR | LONE;

const WF: u8 = 1 << Op::Workflow as u8;
const AGENT: u8 = 1 << Op::Agent as u8;
const TURN: u8 = 1 << Op::Turn as u8;
const TOOL: u8 = 1 << Op::Tool as u8;
const ALL_OPS: u8 = WF | AGENT | TURN | TOOL;

/// Where an attribute's value comes from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum From {
    /// A fixed string.
    Const(&'static str),
    /// The operation's `gen_ai.operation.name`.
    Operation,
    /// A CloudEvents extension (string).
    Ext(&'static str),
    /// A string member of `data`, by path.
    Str(&'static [&'static str]),
    /// An integer member of `data`, by path.
    Int(&'static [&'static str]),
    /// The event's `id`.
    EventId,
    /// The event's `source`.
    Source,
    /// The event's `type`.
    Type,
}

/// One row of the mapping: for events of `ops` in `phases`, set `attr` from
/// `from`. Rows apply in order and the first value found for an attribute
/// wins (later rows with the same name are fallbacks); an end event adds the
/// attributes its started event did not set.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rule {
    pub(crate) ops: u8,
    pub(crate) phases: u8,
    pub(crate) attr: &'static str,
    pub(crate) from: From,
}

const fn r(ops: u8, phases: u8, attr: &'static str, from: From) -> Rule {
    Rule {
        ops,
        phases,
        attr,
        from,
    }
}

/// THE mapping (semantic conventions [`SEMCONV_VERSION`]). The span status
/// is the other output: ERROR on `*.failed`, its message `data.error.message`.
pub(crate) const RULES: &[Rule] = &[
    r(ALL_OPS, PAIR, "gen_ai.operation.name", From::Operation),
    r(
        ALL_OPS,
        EVERY_PHASE,
        "gen_ai.conversation.id",
        From::Ext(ossa::EXT_INTERACTION_ID),
    ),
    r(WF, START, "ossa.workflow.id", From::Str(&["workflow_id"])),
    r(WF, START, "gen_ai.workflow.name", From::Str(&["name"])),
    r(
        WF,
        PAIR,
        "gen_ai.workflow.name",
        From::Str(&["workflow_id"]),
    ),
    r(AGENT, START, "gen_ai.agent.name", From::Str(&["name"])),
    r(AGENT, PAIR, "gen_ai.agent.name", From::Str(&["agent_id"])),
    r(
        AGENT | TURN | TOOL,
        PAIR,
        "gen_ai.agent.id",
        From::Ext(ossa::EXT_AGENT_ID),
    ),
    r(AGENT, PAIR, "gen_ai.agent.id", From::Str(&["agent_id"])),
    r(
        AGENT,
        START,
        "gen_ai.agent.version",
        From::Str(&["version"]),
    ),
    r(TURN, PAIR, "ossa.turn", From::Int(&["turn"])),
    r(
        TURN,
        CLOSE,
        "gen_ai.usage.input_tokens",
        From::Int(&["usage", "input_tokens"]),
    ),
    r(
        TURN,
        CLOSE,
        "gen_ai.usage.output_tokens",
        From::Int(&["usage", "output_tokens"]),
    ),
    r(TOOL, PAIR, "gen_ai.tool.name", From::Str(&["tool"])),
    r(TOOL, PAIR, "gen_ai.tool.call.id", From::Str(&["call_id"])),
    r(ALL_OPS, CLOSE, "ossa.status", From::Str(&["status"])),
    r(ALL_OPS, FAIL, "error.type", From::Str(&["error", "code"])),
    r(ALL_OPS, FAIL, "error.type", From::Const("_OTHER")),
    r(ALL_OPS, START, "cloudevents.event_id", From::EventId),
    r(ALL_OPS, START, "cloudevents.event_source", From::Source),
    r(ALL_OPS, CLOSE, "ossa.end_event_id", From::EventId),
    r(ALL_OPS, LONE, "cloudevents.event_id", From::EventId),
    r(ALL_OPS, LONE, "cloudevents.event_type", From::Type),
    r(ALL_OPS, LONE, "cloudevents.event_source", From::Source),
    r(
        ALL_OPS,
        LONE,
        "gen_ai.agent.id",
        From::Ext(ossa::EXT_AGENT_ID),
    ),
    r(ALL_OPS, LONE, "ossa.state.key", From::Str(&["key"])),
];

/// The rules that apply to an event of `op` (any operation when `None`, for
/// lone events) in `phase`.
pub(crate) fn rules(op: Option<Op>, phase: u8) -> impl Iterator<Item = &'static Rule> {
    let ops = op.map_or(ALL_OPS, Op::bit);
    RULES
        .iter()
        .filter(move |r| r.ops & ops != 0 && r.phases & phase != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_ossa_type_has_a_role_and_pairs_are_complete() {
        for ty in ossa::EVENT_TYPES {
            let _ = role(ty);
        }
        for op in [Op::Workflow, Op::Agent, Op::Turn, Op::Tool] {
            assert!(ROLES.iter().any(|(_, r)| *r == Role::Start(op)));
            assert!(ROLES.iter().any(|(_, r)| *r == Role::End(op)));
        }
        assert_eq!(role("com.example.other"), Role::Lone);
    }

    #[test]
    fn the_genai_attributes_are_all_mapped() {
        for name in [
            "gen_ai.operation.name",
            "gen_ai.agent.name",
            "gen_ai.agent.id",
            "gen_ai.agent.version",
            "gen_ai.workflow.name",
            "gen_ai.tool.name",
            "gen_ai.tool.call.id",
            "gen_ai.conversation.id",
            "gen_ai.usage.input_tokens",
            "gen_ai.usage.output_tokens",
            "error.type",
        ] {
            assert!(RULES.iter().any(|r| r.attr == name), "{name}");
        }
    }
}
