//! Settings, resolved in one place for every command: flags over the config file over the
//! defaults, into the plain structs the stages take (`DetectSettings`, `IngestOptions`,
//! `RulesetOptions`, `ReportOptions`, [`FollowSettings`]). Nothing past `cmd/` sees clap, and a
//! typo fails here, before any work starts.

use super::Failure;
use crate::cli::{AnalyzeArgs, DetectArgs, FollowArgs, IngestArgs, OutputArgs};
use crate::config::{validate_chain_name, ConfigFile};
use crate::detect::bans::Schedule;
use crate::detect::DetectSettings;
use crate::emit::firewall::{self, Backend, HookPlan, Ownership};
use crate::emit::report::{ReportOptions, Templates, Zone};
use crate::emit::rulesets::RulesetOptions;
use crate::ingest::IngestOptions;
use crate::parse::{FieldName, LogFormat, ParseOptions};
use anyhow::anyhow;
use ipnet::IpNet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A note about what `--nginx-conf` found: about one log file, or about the configuration.
pub(crate) type ConfNote = (Option<PathBuf>, String);

/// `--nginx-conf`: the logs it names join the LOG arguments, each with its format.
pub(crate) fn ingest_with_nginx_conf(
    args: &IngestArgs,
    nginx_conf: Option<&Path>,
    logs: &[PathBuf],
    config: &ConfigFile,
) -> Result<(IngestOptions, Vec<PathBuf>, Vec<ConfNote>), Failure> {
    let mut logs = logs.to_vec();
    let Some(conf) = nginx_conf else {
        return Ok((ingest_options(args, config)?, logs, Vec::new()));
    };
    let nginx = super::nginx_conf::load(conf).map_err(Failure::usage)?;
    let mut ingest = ingest_options_with(args, config, &nginx.formats)?;
    let mut notes = Vec::new();
    for (path, formats, at) in &nginx.files {
        if !logs.iter().any(|l| {
            crate::ingest::is_log_or_rotation(path, l) && l.file_name() == path.file_name()
        }) {
            logs.push(path.clone());
        }
        let names: Vec<&str> = formats.iter().map(|f| f.name.as_str()).collect();
        notes.push((
            Some(path.clone()),
            format!("--nginx-conf: log_format {} ({at})", names.join(" + ")),
        ));
        ingest.file_formats.push((path.clone(), formats.clone()));
    }
    notes.extend(
        nginx
            .skipped
            .iter()
            .map(|s| (None, format!("--nginx-conf: skipped {s}"))),
    );
    if logs.is_empty() {
        return Err(Failure::usage(anyhow!(
            "{}: no access_log writes a file bouncer can read{}",
            conf.display(),
            nginx
                .skipped
                .iter()
                .map(|s| format!("\n  {s}"))
                .collect::<String>()
        )));
    }
    Ok((ingest, logs, notes))
}

/// `--report`, `--template`, `--tz`, resolved before any work so a typo fails fast; `None` with
/// `--no-report`.
pub(crate) fn report_options(args: &AnalyzeArgs) -> Result<Option<ReportOptions>, Failure> {
    if args.no_report {
        return Ok(None);
    }
    let zone = match &args.tz {
        Some(tz) => Zone::parse(tz).map_err(|e| Failure::usage(anyhow!("--tz {e}")))?,
        None => Zone::utc(),
    };
    let templates = match &args.template {
        Some(dir) => Templates::load_dir(dir).map_err(Failure::usage)?,
        None => Templates::default(),
    };
    Ok(Some(ReportOptions {
        zone,
        templates,
        ..ReportOptions::default()
    }))
}

/// Config file, then flags.
pub(crate) fn detect_settings(
    a: &DetectArgs,
    config: &ConfigFile,
) -> Result<DetectSettings, Failure> {
    let mut s = config.detect.clone();
    macro_rules! set {
        ($($f:ident),*) => { $(if let Some(v) = a.$f { s.$f = v; })* };
    }
    set!(
        short_secs,
        window_secs,
        long_secs,
        asset_weight,
        baseline_secs,
        recompute_secs,
        warmup_secs,
        multiplier_threshold,
        z_threshold,
        error_surge_ratio,
        error_surge_factor,
        short_floor,
        minute_floor,
        long_floor,
        min_clients,
        global_min_requests,
        episode_gap_secs,
        ban_secs
    );
    for cidr in &a.allow {
        s.allowlist
            .push(parse_cidr(cidr).map_err(|e| Failure::usage(anyhow!("--allow {cidr}: {e}")))?);
    }
    s.allow_private |= a.allow_private;
    s.validate().map_err(|e| Failure::usage(anyhow!(e)))?;
    Ok(s)
}

pub(crate) fn ingest_options(
    a: &IngestArgs,
    config: &ConfigFile,
) -> Result<IngestOptions, Failure> {
    ingest_options_with(a, config, &[])
}

/// [`ingest_options`], where `--log-format NAME` may also name one of `defined` (the
/// `log_format`s of `--nginx-conf`).
pub(crate) fn ingest_options_with(
    a: &IngestArgs,
    config: &ConfigFile,
    defined: &[Arc<LogFormat>],
) -> Result<IngestOptions, Failure> {
    let c = &config.ingest;
    let mut parse = ParseOptions::default();
    if let Some(def) = a.log_format.as_ref().or(c.log_format.as_ref()) {
        let f = match defined.iter().find(|f| f.name == def.trim()) {
            Some(f) => f.clone(),
            None => Arc::new(
                LogFormat::from_arg(def)
                    .map_err(|e| Failure::usage(anyhow!("--log-format: {e}")))?,
            ),
        };
        parse.log_format = Some(f);
    }
    let tz = a.input_tz.as_ref().unwrap_or(&c.input_tz);
    parse.input_offset_secs = Zone::parse(tz)
        .map_err(|e| Failure::usage(anyhow!("--input-tz {e}")))?
        .offset_secs();
    let field_args =
        c.fields
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .chain(a.fields.iter().map(|f| {
                let (k, v) = f.split_once('=').unwrap_or((f, ""));
                (k.to_string(), v.to_string())
            }));
    for (name, key) in field_args {
        let field = FieldName::from_name(&name).ok_or_else(|| {
            let names: Vec<_> = FieldName::ALL.iter().map(|f| f.name()).collect();
            Failure::usage(anyhow!(
                "--field {name}={key}: unknown field {name:?} (fields: {})",
                names.join(", ")
            ))
        })?;
        if key.is_empty() {
            return Err(Failure::usage(anyhow!("--field {name}: expected NAME=KEY")));
        }
        parse.fields.set(field, key);
    }
    for p in c.trusted_proxies.iter().chain(&a.trusted_proxies) {
        parse
            .trusted_proxies
            .push(parse_cidr(p).map_err(|e| Failure::usage(anyhow!("--trusted-proxy {p}: {e}")))?);
    }
    let reorder_secs = a.reorder_secs.unwrap_or(c.reorder_secs);
    if reorder_secs < 0 {
        return Err(Failure::usage(anyhow!("--reorder-secs must be ≥ 0")));
    }
    let max_line_bytes = a.max_line_bytes.unwrap_or(c.max_line_bytes);
    if max_line_bytes < 64 {
        return Err(Failure::usage(anyhow!(
            "--max-line-bytes must be at least 64"
        )));
    }
    Ok(IngestOptions {
        format: a.format.unwrap_or(c.format),
        parse,
        file_formats: Vec::new(),
        reorder_secs,
        max_line_bytes,
    })
}

pub(crate) fn ruleset_options(
    a: &OutputArgs,
    config: &ConfigFile,
) -> Result<RulesetOptions, Failure> {
    let hook = a
        .chain
        .clone()
        .unwrap_or_else(|| config.output.chain.clone());
    validate_chain_name(&hook).map_err(|e| Failure::usage(anyhow!("--chain: {e}")))?;
    Ok(RulesetOptions {
        hook_chain: hook,
        ban_chain: config.output.ban_chain.clone(),
        set_name: config.output.set_name.clone(),
    })
}

/// A CIDR, or a bare address meaning a single host.
pub(crate) fn parse_cidr(s: &str) -> Result<IpNet, String> {
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
        .map_err(|_| "not a CIDR (e.g. 203.0.113.0/24, 2001:db8::/32) or address".to_string())
}

/// `follow`'s tolerance for late lines: a line up to this much older than the newest is counted
/// in its own second (nginx logs at completion, Apache at the start of a request).
pub const FOLLOW_TOLERANCE_SECS: i64 = 60;

/// Everything `follow` needs, resolved.
#[derive(Debug)]
pub struct FollowSettings {
    pub detect: DetectSettings,
    pub ingest: Arc<IngestOptions>,
    /// The logs to follow (`-` = stdin), with notes from `--nginx-conf`.
    pub logs: Vec<PathBuf>,
    pub conf_notes: Vec<ConfNote>,
    pub rules: RulesetOptions,
    pub schedule: Schedule,
    pub decay_secs: u64,
    pub reconcile_secs: u64,
    /// Lines up to this late count in their own second.
    pub tolerance_secs: i64,
    pub enforce: bool,
    pub backend: Backend,
    pub hooks: HookPlan,
    pub ownership: Ownership,
    pub state: Option<PathBuf>,
    pub audit: Option<PathBuf>,
    /// The webhook (from BOUNCER_SLACK_WEBHOOK or the config file; never printed).
    pub slack_webhook: Option<String>,
    /// Send Slack messages in a dry run too (marked as such).
    pub slack_in_dry_run: bool,
    pub from_start: bool,
    /// `--listen`: the live view's address and token.
    pub listen: Option<crate::serve::Listen>,
}

impl FollowSettings {
    pub fn resolve(args: &FollowArgs, config: &ConfigFile) -> Result<FollowSettings, Failure> {
        let detect = detect_settings(&args.detect, config)?;
        let (ingest, logs, conf_notes) =
            ingest_with_nginx_conf(&args.ingest, args.nginx_conf.as_deref(), &args.logs, config)?;
        if logs.is_empty() {
            return Err(Failure::usage(anyhow!(
                "name the logs to follow (or --nginx-conf FILE)"
            )));
        }
        let fc = &config.follow;
        let schedule_text = args.ban_schedule.as_deref().unwrap_or(&fc.ban_schedule);
        let schedule = Schedule::parse(schedule_text)
            .map_err(|e| Failure::usage(anyhow!("--ban-schedule: {e}")))?;
        let rules = ruleset_options(&args.output, config)?;
        // INPUT and, where Docker made it, DOCKER-USER; `--chain` names the only one.
        let hooks = match &args.output.chain {
            Some(_) => HookPlan::Only(rules.hook_chain.clone()),
            None => HookPlan::Auto,
        };
        let listen = match args.listen.as_ref().or(fc.listen.as_ref()) {
            Some(addr) => {
                let token = args.listen_token.as_ref().or(fc.listen_token.as_ref());
                let insecure = args.listen_insecure || fc.listen_insecure;
                let (l, notes) =
                    crate::serve::Listen::resolve(addr, token.map(|p| p.as_path()), insecure)
                        .map_err(|e| Failure::usage(anyhow!(e)))?;
                for n in notes {
                    eprintln!("bouncer: note: {n}");
                }
                Some(l)
            }
            None => None,
        };
        let webhook = std::env::var("BOUNCER_SLACK_WEBHOOK")
            .ok()
            .filter(|s| !s.is_empty())
            .or_else(|| fc.slack_webhook.clone());
        Ok(FollowSettings {
            detect,
            ingest: Arc::new(ingest),
            logs,
            conf_notes,
            rules,
            schedule,
            decay_secs: args.strike_decay_secs.unwrap_or(fc.strike_decay_secs),
            reconcile_secs: args.reconcile_secs.unwrap_or(fc.reconcile_secs).max(1),
            tolerance_secs: args.ingest.reorder_secs.unwrap_or(FOLLOW_TOLERANCE_SECS),
            enforce: args.enforce,
            backend: args.backend.unwrap_or_else(firewall::default_backend),
            hooks,
            ownership: if args.own_set {
                Ownership::WholeSet
            } else {
                Ownership::Ours
            },
            state: args.state.clone(),
            audit: args.audit.clone().or_else(|| fc.audit.clone()),
            slack_webhook: webhook,
            slack_in_dry_run: args.slack_in_dry_run,
            from_start: args.from_start,
            listen,
        })
    }
}
