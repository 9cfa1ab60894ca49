//! Custom events: your own event types, a payload struct of your own
//! (`#[derive(Serialize)]`), and extension attributes of your own next to the
//! OSSA ones, written to stdout as JSON Lines.
//!
//! ```sh
//! cargo run -p ossa-events --example custom_events
//! ```
//!
//! Prints two events on stdout: `com.example.deploy.requested` (data from a
//! `DeployRequest` struct, a `dataschema`, and the extensions
//! `tenant: "acme"`, `priority: 2` as a CloudEvents Integer and
//! `dryrun: false` as a Boolean) and `com.example.deploy.approved`. Then it
//! tries an extension named `Tenant-ID`, which CloudEvents does not allow
//! (names are lower-case letters and digits), and prints on stderr:
//!
//! ```text
//! refused: invalid event: attribute `Tenant-ID`: attribute names must be 1+ characters of a-z and 0-9
//! emitted 2, rejected 1, delivered 2
//! ```

use std::error::Error;

use ossa_events::{Emitter, EventBuilder, ExtValue};
use serde::Serialize;

/// Your event types: reverse-DNS names, as CloudEvents recommends.
const DEPLOY_REQUESTED: &str = "com.example.deploy.requested";
const DEPLOY_APPROVED: &str = "com.example.deploy.approved";

/// Your payload: any `Serialize` type becomes the event's JSON `data`.
#[derive(Serialize)]
struct DeployRequest<'a> {
    service: &'a str,
    version: &'a str,
    replicas: u32,
    regions: &'a [&'a str],
    #[serde(skip_serializing_if = "Option::is_none")]
    change_ticket: Option<&'a str>,
}

#[derive(Serialize)]
struct DeployApproval<'a> {
    service: &'a str,
    version: &'a str,
    approved_by: Vec<String>,
}

fn main() -> Result<(), Box<dyn Error>> {
    let emitter = Emitter::builder("/agents/release-bot")
        .agent_id("release-bot")
        .build()?;

    let request = DeployRequest {
        service: "checkout",
        version: "2.14.0",
        replicas: 6,
        regions: &["eu-west-1", "us-east-1"],
        change_ticket: Some("CHG-1042"),
    };
    emitter.emit(
        EventBuilder::new()
            .ty(DEPLOY_REQUESTED)
            .subject("checkout")
            .data_serialize(&request)
            .dataschema("https://schemas.example.com/deploy/requested/v1.json")
            .extension_str("tenant", "acme")
            .extension("priority", ExtValue::Integer(2))
            .extension("dryrun", ExtValue::Boolean(false)),
    )?;

    let approval = DeployApproval {
        service: "checkout",
        version: "2.14.0",
        approved_by: vec!["alice".to_owned(), "ops-policy-bot".to_owned()],
    };
    emitter.emit(
        EventBuilder::new()
            .ty(DEPLOY_APPROVED)
            .subject("checkout")
            .data_serialize(&approval)
            .extension_str("tenant", "acme"),
    )?;

    // Every event is checked when emitted: a bad extension name is refused
    // here, with the attribute and the rule, and counted as rejected.
    let bad = EventBuilder::new()
        .ty(DEPLOY_APPROVED)
        .data_serialize(&approval)
        .extension_str("Tenant-ID", "acme");
    match emitter.emit(bad) {
        Ok(()) => return Err("an extension named `Tenant-ID` was accepted".into()),
        Err(e) => eprintln!("refused: {e}"),
    }

    emitter.flush()?;
    let m = emitter.metrics();
    eprintln!(
        "emitted {}, rejected {}, delivered {}",
        m.emitted, m.rejected, m.delivered
    );
    emitter.shutdown()?;
    Ok(())
}
