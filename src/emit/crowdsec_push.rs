//! What bouncer tells the CrowdSec LAPI ([`super::crowdsec`]), in a file of its own: follow's
//! state keeps the pushes not yet delivered, and the fuzz crate (which reads that state without
//! the HTTP client) compiles this file alone as its `emit::crowdsec`.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::net::IpAddr;

/// One thing to tell the LAPI.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Push {
    /// An alert with its decision; `until` (UNIX seconds, `None` = permanent) sets the duration
    /// when it is sent.
    Ban {
        ip: IpAddr,
        until: Option<i64>,
        alert: Value,
    },
    /// Delete bouncer's decisions for `ip`.
    Unban { ip: IpAddr },
}

impl Push {
    pub fn describe(&self) -> String {
        match self {
            Push::Ban { ip, alert, .. } => {
                format!("ban {ip} ({})", alert["scenario"].as_str().unwrap_or("?"))
            }
            Push::Unban { ip } => format!("unban {ip}"),
        }
    }
}
