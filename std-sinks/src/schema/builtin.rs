//! The JSON Schemas of the 11 OSSA payloads, shipped in the crate
//! (`schemas/*.json`, compiled into the binary with `include_str!`).

use ossa_events_core::ossa;

/// `(event type, schema text)` of each built-in schema.
pub(super) const SCHEMAS: [(&str, &str); 11] = [
    (
        ossa::AGENT_STARTED,
        include_str!("../../schemas/dev.ossa.agent.started.json"),
    ),
    (
        ossa::AGENT_COMPLETED,
        include_str!("../../schemas/dev.ossa.agent.completed.json"),
    ),
    (
        ossa::AGENT_FAILED,
        include_str!("../../schemas/dev.ossa.agent.failed.json"),
    ),
    (
        ossa::TOOL_CALLED,
        include_str!("../../schemas/dev.ossa.tool.called.json"),
    ),
    (
        ossa::TOOL_COMPLETED,
        include_str!("../../schemas/dev.ossa.tool.completed.json"),
    ),
    (
        ossa::TOOL_FAILED,
        include_str!("../../schemas/dev.ossa.tool.failed.json"),
    ),
    (
        ossa::TURN_STARTED,
        include_str!("../../schemas/dev.ossa.turn.started.json"),
    ),
    (
        ossa::TURN_COMPLETED,
        include_str!("../../schemas/dev.ossa.turn.completed.json"),
    ),
    (
        ossa::STATE_UPDATED,
        include_str!("../../schemas/dev.ossa.state.updated.json"),
    ),
    (
        ossa::WORKFLOW_STARTED,
        include_str!("../../schemas/dev.ossa.workflow.started.json"),
    ),
    (
        ossa::WORKFLOW_COMPLETED,
        include_str!("../../schemas/dev.ossa.workflow.completed.json"),
    ),
];

/// The text of the built-in schema of OSSA event type `ty`.
///
/// ```
/// use ossa_events::{ossa, schema};
/// let text = schema::builtin_schema(ossa::TOOL_CALLED).unwrap_or_default();
/// assert!(text.contains(r#""$id": "https://ossa.dev/schemas/events/v1/dev.ossa.tool.called.json""#));
/// assert_eq!(schema::builtin_schema("com.example.other"), None);
/// ```
pub fn builtin_schema(ty: &str) -> Option<&'static str> {
    SCHEMAS.iter().find(|(t, _)| *t == ty).map(|(_, s)| *s)
}
