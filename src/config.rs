//! Settings from a TOML file, resolved with the command line into plain structs before work
//! starts (CLI > config file > default). Unknown keys are errors, so a typo never silently keeps
//! a default.

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
}

impl Default for FollowConfig {
    fn default() -> Self {
        FollowConfig {
            ban_schedule: "10m,30m,2h,permanent".into(),
            strike_decay_secs: 86_400,
            reconcile_secs: 5,
            audit: None,
            slack_webhook: None,
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
        let cfg: ConfigFile = toml::from_str(text).map_err(|e| e.to_string())?;
        cfg.detect.validate()?;
        validate_chain_name(&cfg.output.chain)?;
        validate_chain_name(&cfg.output.ban_chain)?;
        validate_chain_name(&cfg.output.set_name)?;
        Ok(cfg)
    }
}

/// Chain and set names end up in rulesets: allow only what iptables/ipset/nft accept unquoted.
pub fn validate_chain_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 28
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid chain/set name {name:?}: use 1–28 letters, digits, '-' or '_'"
        ))
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
