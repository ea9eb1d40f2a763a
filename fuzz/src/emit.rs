//! bouncer's `emit`, as far as `decisions.json` and the ban lists go (paths are relative to
//! this file's directory).

#[path = "../../src/emit/decisions.rs"]
pub mod decisions;
#[path = "../../src/emit/rulesets.rs"]
pub mod rulesets;
/// The CrowdSec pushes follow's state keeps (not the client that sends them).
#[path = "../../src/emit/crowdsec_push.rs"]
pub mod crowdsec;
