//! Settings from a TOML file, resolved with the command line into plain structs before work
//! starts (CLI > config file > default). Unknown keys are errors, so a typo never silently keeps
//! a default.
//!
//! The file may hold a secret (`[follow] slack_webhook`), so an error about it never shows the
//! file's text: toml's own message quotes the offending line, which for a misplaced or unquoted
//! webhook *is* the webhook. Errors say where (line, column, key) and what, with any quoted value
//! redacted ([`describe_toml_error`]).

use crate::detect::DetectSettings;
use crate::parse::Format;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The whole config file. Every section and key is optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConfigFile {
    pub detect: DetectSettings,
    pub ingest: IngestConfig,
    pub output: OutputConfig,
    pub follow: FollowConfig,
}

/// `[follow]`: the live side.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FollowConfig {
    /// Ban length by strike, e.g. "10m,30m,2h,permanent".
    pub ban_schedule: String,
    pub strike_decay_secs: u64,
    pub reconcile_secs: u64,
    pub audit: Option<PathBuf>,
    /// Incoming-webhook URL; `BOUNCER_SLACK_WEBHOOK` wins. Keep this file private.
    pub slack_webhook: Option<String>,
    /// As `--listen`: serve the dashboard and `/metrics` here.
    pub listen: Option<String>,
    /// As `--listen-token`: the file holding the token every request must carry.
    pub listen_token: Option<PathBuf>,
    /// As `--listen-insecure`.
    pub listen_insecure: bool,
}

impl Default for FollowConfig {
    fn default() -> Self {
        FollowConfig {
            ban_schedule: "10m,30m,2h,permanent".into(),
            strike_decay_secs: 86_400,
            reconcile_secs: 5,
            audit: None,
            slack_webhook: None,
            listen: None,
            listen_token: None,
            listen_insecure: false,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    pub format: Format,
    /// As `--log-format`: a preset name or a pasted nginx `log_format` / Apache `LogFormat`.
    pub log_format: Option<String>,
    /// As `--input-tz`: the zone of times logged without one.
    pub input_tz: String,
    /// field name → JSON key, as `--field`.
    pub fields: BTreeMap<String, String>,
    pub trusted_proxies: Vec<String>,
    pub reorder_secs: i64,
    pub max_line_bytes: usize,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            format: Format::Auto,
            log_format: None,
            input_tz: "UTC".into(),
            fields: BTreeMap::new(),
            trusted_proxies: Vec::new(),
            reorder_secs: 1800,
            max_line_bytes: 64 * 1024,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutputConfig {
    pub dir: PathBuf,
    /// Chain that jumps into bouncer's chain (`INPUT` or `DOCKER-USER`).
    pub chain: String,
    /// bouncer's own iptables chain.
    pub ban_chain: String,
    /// Base name of the ipset/nft sets (`<name>4`, `<name>6`).
    pub set_name: String,
}

impl Default for OutputConfig {
    fn default() -> Self {
        OutputConfig {
            dir: PathBuf::from("bouncer-out"),
            chain: "INPUT".into(),
            ban_chain: "BOUNCER".into(),
            set_name: "bouncer".into(),
        }
    }
}

/// The documented defaults, as a config file (shipped in README and `config.example.toml`).
pub const EXAMPLE: &str = include_str!("../config.example.toml");

impl ConfigFile {
    /// Read a config file; errors name the file and the offending key.
    pub fn load(path: &Path) -> Result<ConfigFile, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{}: cannot read config: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> Result<ConfigFile, String> {
        let cfg: ConfigFile = toml::from_str(text).map_err(|e| describe_toml_error(text, &e))?;
        cfg.detect.validate()?;
        validate_chain_name(&cfg.output.chain).map_err(|e| format!("[output] chain: {e}"))?;
        validate_chain_name(&cfg.output.ban_chain)
            .map_err(|e| format!("[output] ban_chain: {e}"))?;
        validate_chain_name(&cfg.output.set_name).map_err(|e| format!("[output] set_name: {e}"))?;
        Ok(cfg)
    }
}

/// `line L, column C: <toml's message>` without the source excerpt toml would print, and with
/// every quoted value in the message redacted (`invalid type: string "…", expected u64`).
/// Key names (identifiers in backticks) stay, so a typo is still easy to find.
fn describe_toml_error(text: &str, e: &toml::de::Error) -> String {
    let at = e
        .span()
        .and_then(|span| text.get(..span.start))
        .map(|before| {
            let line = before.matches('\n').count() + 1;
            let start = before.rfind('\n').map_or(0, |i| i + 1);
            let column = before[start..].chars().count() + 1;
            format!("line {line}, column {column}: ")
        })
        .unwrap_or_default();
    format!(
        "{at}{} (the line is not shown: it may hold the Slack webhook)",
        redact_quoted(e.message().trim())
    )
}

/// Text between `"…"` or `` `…` `` becomes `…`, unless it is a short identifier (a key name
/// such as `z_treshold`) or short punctuation (`"` in "expected `\"`").
fn redact_quoted(msg: &str) -> String {
    let harmless = |inner: &str| {
        inner.len() <= 40
            && (inner
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
                || (inner.len() <= 3 && !inner.chars().any(|c| c.is_alphanumeric())))
    };
    let mut out = String::with_capacity(msg.len());
    let mut rest = msg;
    while let Some(open) = rest.find(['"', '`']) {
        let quote = rest[open..].chars().next().unwrap_or('"');
        let after = &rest[open + 1..];
        // The closing quote; a backtick pair may hold a `"` (toml writes expected `"`).
        let Some(close) = after.find(quote) else {
            out.push_str(&rest[..open]);
            out.push(quote);
            out.push('…');
            return out;
        };
        let inner = &after[..close];
        out.push_str(&rest[..=open]);
        out.push_str(if harmless(inner) { inner } else { "…" });
        out.push(quote);
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
}

/// Chain and set names end up in rulesets: allow only what iptables/ipset/nft accept unquoted.
pub fn validate_chain_name(name: &str) -> Result<(), String> {
    // The name is not echoed: from a config file it could be a misplaced secret.
    let ok = !name.is_empty()
        && name.len() <= 28
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err("invalid chain/set name: use 1–28 letters, digits, '-' or '_'".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_config_is_the_defaults() {
        let cfg = ConfigFile::parse(EXAMPLE).unwrap();
        assert_eq!(cfg.detect, DetectSettings::default());
        assert_eq!(
            cfg.ingest.reorder_secs,
            IngestConfig::default().reorder_secs
        );
        assert_eq!(cfg.output.chain, "INPUT");
    }

    /// Slack's documented example shape: what a real webhook looks like.
    const WEBHOOK: &str =
        "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX";

    #[test]
    fn a_misplaced_or_unquoted_webhook_is_never_echoed() {
        // Regression (issue 12, 16): toml's error quoted the offending line, i.e. the webhook.
        let cases = [
            (
                format!("[follow]\nslack_webhook = {WEBHOOK}\n"),
                "line 2, column 17",
                "quoted",
            ),
            (
                format!("slack_webhook = \"{WEBHOOK}\"\n"),
                "line 1, column 1",
                "`slack_webhook`",
            ),
            (
                format!("[follow]\nreconcile_secs = \"{WEBHOOK}\"\n"),
                "line 2",
                "expected u64",
            ),
            (
                format!("[follow]\nslack_webhook = \"{WEBHOOK}\n"),
                "line 2",
                "string",
            ),
            (
                format!("[output]\nchain = \"{WEBHOOK}\"\n"),
                "[output] chain",
                "invalid chain",
            ),
            (
                format!("[detect]\nallowlist = [\"{WEBHOOK}\"]\n"),
                "line 2",
                "",
            ),
            (
                format!("[follow]\n\"{WEBHOOK}\" = 1\n"),
                "line 2",
                "unknown field",
            ),
            (format!("{WEBHOOK}\n"), "line 1", ""),
        ];
        for (text, at, what) in cases {
            let e = ConfigFile::parse(&text).unwrap_err();
            for secret in ["hooks.slack.com", "XXXXXXXX", "T00000000", "B00000000"] {
                assert!(!e.contains(secret), "{text:?} -> {e}");
            }
            assert!(e.contains(at) && e.contains(what), "{text:?} -> {e}");
        }
        let ok = ConfigFile::parse(&format!("[follow]\nslack_webhook = \"{WEBHOOK}\"\n")).unwrap();
        assert_eq!(ok.follow.slack_webhook.as_deref(), Some(WEBHOOK));
    }

    #[test]
    fn redaction_keeps_key_names() {
        assert_eq!(
            redact_quoted("unknown field `z_treshold`, expected one of `window_secs`"),
            "unknown field `z_treshold`, expected one of `window_secs`"
        );
        assert_eq!(
            redact_quoted("invalid type: string \"a b\", expected u64"),
            "invalid type: string \"…\", expected u64"
        );
        assert_eq!(redact_quoted("expected `\"`, `'`"), "expected `\"`, `'`");
        assert_eq!(redact_quoted("dangling \"secret"), "dangling \"…");
    }

    #[test]
    fn typos_and_bad_values_are_errors() {
        let e = ConfigFile::parse("[detect]\nz_treshold = 2.0\n").unwrap_err();
        assert!(e.contains("z_treshold"), "{e}");
        let e = ConfigFile::parse("[detect]\nwindow_secs = 0\n").unwrap_err();
        assert!(e.contains("window_secs"), "{e}");
        let e = ConfigFile::parse("[output]\nchain = \"INPUT; rm -rf /\"\n").unwrap_err();
        assert!(e.contains("invalid chain"), "{e}");
        let cfg =
            ConfigFile::parse("[detect]\nallowlist = [\"203.0.113.0/24\", \"2001:db8::/32\"]\n")
                .unwrap();
        assert_eq!(cfg.detect.allowlist.len(), 2);
    }
}
