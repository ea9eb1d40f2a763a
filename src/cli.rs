//! The command line, and nothing else: clap derive, where doc comments are the `--help` text.
//! `cmd` resolves these raw arguments (plus the config file) into plain settings before any work.

use crate::parse::Format;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Find abusive clients in nginx access logs and write firewall ban lists.
///
/// bouncer learns what a normal client does per minute from the log itself (rolling mean and
/// standard deviation), scores every IP by z-score, spike multiplier and error rate, and writes
/// decisions plus ready-to-load rulesets for iptables, ip6tables, ipset, nftables and CrowdSec.
///
/// Exit codes: 0 success, 1 usage or configuration error, 2 input error (no input could be read,
/// unwritable output), 3 partial: some inputs could not be read or held not one parseable line;
/// the others were analysed and the outputs written (`analyze --strict` makes this 2).
#[derive(Debug, Parser)]
#[command(
    name = "bouncer",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// TOML config file (sections [detect], [ingest], [output]); flags override it.
    #[arg(long, global = true, value_name = "FILE", env = "BOUNCER_CONFIG")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Analyse access logs: write decisions.json, decisions.csv and ban lists into --out
    ///
    /// Inputs may be plain files, gzip archives (detected by content) or `-` for stdin; several
    /// files (e.g. a rotated set in any order) are merged into one time-ordered stream.
    ///
    /// The format of each file is detected from its first lines (`bouncer formats FILE` shows
    /// what was found and why); a file that mixes formats is read line by line. Every input is
    /// reported; one that cannot be read is reported and the others are analysed (exit 3).
    ///
    /// Examples:
    ///   bouncer analyze /var/log/nginx/access.log /var/log/nginx/access.log.1 --out incident
    ///   iptables-restore --noflush < incident/bans.rules
    ///   bouncer analyze --nginx-conf /etc/nginx/nginx.conf
    ///   bouncer analyze --log-format vhost_combined /var/log/apache2/other_vhosts_access.log*
    ///   bouncer analyze --log-format '$remote_addr [$time_local] "$request" $status' access.log
    ///   docker logs nginx 2>&1 | bouncer analyze -
    #[command(verbatim_doc_comment)]
    Analyze(Box<AnalyzeArgs>),
    /// Print a ban list from a (reviewed) decisions.json.
    ///
    /// Example: bouncer export --format nft incident/decisions.json | nft -f -
    Export(ExportArgs),
    /// Tail live logs, ban abusers on the host firewall, lift bans on schedule.
    ///
    /// Uses the same detector as `analyze`. Without --enforce it only logs what it would do.
    /// Needs root or CAP_NET_ADMIN to enforce. Slack: set BOUNCER_SLACK_WEBHOOK.
    ///
    /// A status line goes to stderr every minute and on SIGUSR1 (`kill -USR1 PID`);
    /// `bouncer status --state DIR` shows the same from another shell; --listen serves a live
    /// dashboard and Prometheus metrics.
    ///
    /// Examples:
    ///   bouncer follow --enforce --state /var/lib/bouncer --audit /var/log/bouncer-audit.jsonl \
    ///     /var/log/nginx/access.log
    ///   bouncer follow --state /var/lib/bouncer --listen 127.0.0.1:9180 /var/log/nginx/access.log
    ///   # then open http://127.0.0.1:9180/ (e.g. through `ssh -L 9180:127.0.0.1:9180 host`)
    #[command(verbatim_doc_comment)]
    Follow(Box<FollowArgs>),
    /// Show what a `follow` is doing: running or not, uptime, lines/s, limits, active bans
    /// with time left, last events, Slack and firewall health (`--json` for scripts)
    ///
    /// Reads the state directory: `status.json` (rewritten by a running follow every 2 s) and the
    /// saved state (bans, also when follow is not running).
    ///
    /// Examples:
    ///   bouncer status --state /var/lib/bouncer
    ///   bouncer status --state /var/lib/bouncer --json | jq '.bans[].ip'
    #[command(verbatim_doc_comment)]
    Status(StatusArgs),
    /// Show the format detected in each file, why, and its first line read field by field
    ///
    /// Without files: list the preset formats `--log-format` takes by name.
    ///
    /// Examples:
    ///   bouncer formats /var/log/nginx/access.log /var/log/apache2/other_vhosts_access.log
    ///   bouncer formats --log-format "$(sed -n '/log_format *main/,/;/p' /etc/nginx/nginx.conf)" access.log
    ///   bouncer formats --nginx-conf /etc/nginx/nginx.conf
    #[command(verbatim_doc_comment)]
    Formats(Box<FormatsArgs>),
    /// Lift a ban now (through the running `follow`, or on the saved state and the kernel).
    Unban(UnbanArgs),
    /// Print shell completions: bouncer completions bash > /etc/bash_completion.d/bouncer
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// Access logs to read (`-` = stdin). Plain or gzip, any format bouncer reads (see
    /// `bouncer formats`).
    #[arg(required_unless_present = "nginx_conf", value_name = "LOG")]
    pub logs: Vec<PathBuf>,

    /// Read the access logs an nginx configuration writes, each in its own `log_format`
    /// (`include`s followed). LOG arguments are added; one named like a configured log or its
    /// rotation (`access.log.1`, `access.log.2.gz`) gets that log's format.
    #[arg(long, value_name = "FILE", help_heading = "Input")]
    pub nginx_conf: Option<PathBuf>,

    /// Any input that cannot be read, or holds not one parseable line, fails the run (exit 2)
    /// before anything is written. Without it, such an input is reported, the others are
    /// analysed, and the exit code is 3 (partial).
    #[arg(long, help_heading = "Input")]
    pub strict: bool,

    /// Output directory (created if missing) [default: bouncer-out]
    #[arg(short, long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// Keep checkpoints and detector state here; a re-run reads only new lines and gives the
    /// same decisions as one run over the whole log.
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,

    /// Memory for sorting an input that is not in time order (beyond --reorder-secs), e.g.
    /// 512M or 2G; sorted runs beyond it go to temporary files in $TMPDIR [default: 512M]
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub sort_memory: Option<usize>,

    #[command(flatten)]
    pub ingest: IngestArgs,

    #[command(flatten)]
    pub detect: DetectArgs,

    #[command(flatten)]
    pub output: OutputArgs,

    /// Write the HTML report here instead of DIR/report.html.
    #[arg(long, value_name = "PATH", help_heading = "Report")]
    pub report: Option<PathBuf>,

    /// Report templates: files in DIR named like the built-in ones (report.html, report.css)
    /// replace them; missing ones fall back to the built-in versions.
    #[arg(long, value_name = "DIR", help_heading = "Report")]
    pub template: Option<PathBuf>,

    /// Show times in the report in this zone: UTC or a fixed offset such as +02:00 or -0530
    /// (a fixed offset, not an IANA name: one clock for the whole incident) [default: UTC]
    // allow_hyphen_values: `--tz -0530` is a value, not an unknown flag.
    #[arg(
        long,
        value_name = "ZONE",
        help_heading = "Report",
        allow_hyphen_values = true
    )]
    pub tz: Option<String>,

    /// Don't write the HTML report (for timing runs with and without it).
    #[arg(long, hide = true)]
    pub no_report: bool,

    /// How many bans and alerts the terminal summary lists.
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub top: usize,

    /// No summary on stdout, no progress bar.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Input")]
pub struct IngestArgs {
    /// Log format family; `auto` decides per file from its first lines and reads a file that
    /// mixes formats line by line [default: auto]
    #[arg(long, value_enum)]
    pub format: Option<Format>,

    /// Your server's own format: a preset (combined, common, vhost_combined, vhost_common,
    /// nginx-main, npm-proxy, npm-standard, traefik-clf) or the definition pasted from its
    /// config: nginx `log_format main '$remote_addr …';` (or just its quoted strings; `escape=`
    /// is honoured) or Apache `LogFormat "%h %l %u %t \"%r\" %>s %b" common`. Overrides
    /// --format. Syslog and Docker json-file wrapping is still recognised.
    #[arg(long, value_name = "FORMAT")]
    pub log_format: Option<String>,

    /// Zone of times logged without one (`[27/Jun/2013:11:55:44]`, ISO-8601 without offset):
    /// UTC or a fixed offset such as +02:00 [default: UTC]
    #[arg(long, value_name = "ZONE")]
    pub input_tz: Option<String>,

    /// Map a field to a JSON key, e.g. `--field ip=client --field time=@timestamp`. Fields: ip,
    /// time, status, path, request, bytes, user-agent, xff.
    #[arg(long = "field", value_name = "NAME=KEY")]
    pub fields: Vec<String>,

    /// Believe X-Forwarded-For from these proxies (CIDR, repeatable); the chain is walked from
    /// the right, skipping trusted hops. Without this, XFF is ignored. The same rule picks the
    /// client from an address list logged in front of the line (`10.0.0.2, 10.0.0.1, 85.181.35.98
    /// - - [...]`): its last entry is the peer.
    #[arg(long = "trusted-proxy", value_name = "CIDR")]
    pub trusted_proxies: Vec<String>,

    /// Put lines back in order when they are at most this late (seconds); an input with lines
    /// later than that is sorted as a whole [default: 1800]
    // `follow` replaces this help with its own meaning and default (FollowArgs).
    #[arg(long, value_name = "SECS")]
    pub reorder_secs: Option<i64>,

    /// Longer lines are reported and skipped [default: 65536]
    #[arg(long, value_name = "BYTES")]
    pub max_line_bytes: Option<usize>,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Detection (defaults in README; all also settable in [detect])")]
pub struct DetectArgs {
    /// Never ban this network (CIDR, repeatable). Loopback is always allowed.
    #[arg(long = "allow", value_name = "CIDR")]
    pub allow: Vec<String>,
    /// Never ban private ranges (RFC 1918, CGNAT, ULA, link-local).
    #[arg(long)]
    pub allow_private: bool,
    /// Short window (floods), seconds [default: 10]
    #[arg(long, value_name = "SECS")]
    pub short_secs: Option<u32>,
    /// Minute window (scrapers, brute force, fast scans), seconds [default: 60]
    #[arg(long, value_name = "SECS")]
    pub window_secs: Option<u32>,
    /// Long window (low-and-slow scans, through the error surge), seconds [default: 600]
    #[arg(long, value_name = "SECS")]
    pub long_secs: Option<u32>,
    /// What an asset request (static file, HEAD, 304, 206) costs relative to a page [default: 0.1]
    #[arg(long, value_name = "W")]
    pub asset_weight: Option<f64>,
    /// Recent log time the per-client levels cover (pooled with the same hour on previous days),
    /// seconds [default: 86400]
    #[arg(long, value_name = "SECS")]
    pub baseline_secs: Option<u32>,
    /// How often the levels are recomputed, seconds of log time [default: 300]
    #[arg(long, value_name = "SECS")]
    pub recompute_secs: Option<u32>,
    /// No decisions during the first SECS of log time [default: 120]
    #[arg(long, value_name = "SECS")]
    pub warmup_secs: Option<u32>,
    /// Ban above this multiple of the learned level (the busiest normal clients) [default: 6]
    #[arg(long, value_name = "X")]
    pub multiplier_threshold: Option<f64>,
    /// …and, for a client with a history, above this z-score against its own usual load
    /// [default: 3]
    #[arg(long, value_name = "Z")]
    pub z_threshold: Option<f64>,
    /// Error share ≥ RATIO × the site's share is an error surge [default: 3]
    #[arg(long, value_name = "RATIO")]
    pub error_surge_ratio: Option<f64>,
    /// Thresholds are multiplied by this during an error surge [default: 0.7]
    #[arg(long, value_name = "FACTOR")]
    pub error_surge_factor: Option<f64>,
    /// Safety-net limit of the short window, whatever was learned [default: 20]
    #[arg(long, value_name = "LOAD")]
    pub short_floor: Option<f64>,
    /// Safety-net limit of the minute window [default: 40]
    #[arg(long, value_name = "LOAD")]
    pub minute_floor: Option<f64>,
    /// Safety-net limit of the long window [default: 60]
    #[arg(long, value_name = "LOAD")]
    pub long_floor: Option<f64>,
    /// Until the baseline holds this many client-hours, the limits are the floors × 3
    /// [default: 300]
    #[arg(long, value_name = "N")]
    pub min_clients: Option<u64>,
    /// No site-wide alert below this many requests per minute window [default: 200]
    #[arg(long, value_name = "N")]
    pub global_min_requests: Option<u32>,
    /// Quiet time that ends a ban or alert episode, seconds [default: 600]
    #[arg(long, value_name = "SECS")]
    pub episode_gap_secs: Option<u32>,
    /// Ban length written into the ban lists, seconds [default: 14400]
    #[arg(long, value_name = "SECS")]
    pub ban_secs: Option<u64>,
}

#[derive(Debug, Args, Clone)]
#[command(next_help_heading = "Ban lists")]
pub struct OutputArgs {
    /// Chain that jumps to bouncer's chain: INPUT, or DOCKER-USER for published Docker ports
    /// [default: INPUT]
    #[arg(long, value_name = "CHAIN")]
    pub chain: Option<String>,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Output format.
    #[arg(long, value_enum)]
    pub format: ExportFormat,
    /// decisions.json written by `bouncer analyze` (`-` = stdin).
    #[arg(value_name = "DECISIONS.json")]
    pub decisions: PathBuf,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// iptables-restore input (IPv4): `iptables-restore --noflush < bans.rules`
    Iptables,
    /// ip6tables-restore input (IPv6)
    Ip6tables,
    /// ipset restore input (both families)
    Ipset,
    /// nft -f input (own table, both families)
    Nft,
    /// CrowdSec: cscli decisions import -i decisions.csv
    Csv,
}

/// `follow` does not hold lines back (a flood is banned within its first second): a line up to
/// this late is counted in its own second, an older one is counted as late and left out.
#[derive(Debug, Args)]
#[command(mut_arg("reorder_secs", |a| a.help(
    "Count a line up to this late (seconds) in its own second; older lines are counted as late and left out [default: 60]"
)))]
pub struct FollowArgs {
    /// Access logs to follow (may not exist yet; rotation is followed); `-` reads stdin
    /// (`docker logs -f nginx 2>&1 | bouncer follow -`, `journalctl -f -o cat | bouncer follow -`).
    #[arg(required_unless_present = "nginx_conf", value_name = "LOG")]
    pub logs: Vec<PathBuf>,

    /// Follow the logs nginx writes: the `access_log` files of this configuration (and its
    /// `include`s), each read with its `log_format`.
    #[arg(long, value_name = "FILE")]
    pub nginx_conf: Option<PathBuf>,

    /// Apply bans to the host firewall (root or CAP_NET_ADMIN).
    #[arg(long, conflicts_with = "dry_run")]
    pub enforce: bool,

    /// Log what would be done, touch nothing (the default without --enforce). Everything it
    /// prints and writes says "dry run"; Slack is not used unless --slack-in-dry-run.
    #[arg(long)]
    pub dry_run: bool,

    /// Send Slack messages in a dry run too (each marked as a dry run).
    #[arg(long)]
    pub slack_in_dry_run: bool,

    /// Keep checkpoints, detector state and bans here: a restart re-reads nothing, misses
    /// nothing, and re-applies active bans.
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,

    /// Append BAN / UNBAN / GLOBAL_ANOMALY / BASELINE_UPDATE records (JSON lines) to FILE.
    #[arg(long, value_name = "FILE")]
    pub audit: Option<PathBuf>,

    /// Firewall backend [default: ipset when installed, else iptables]
    #[arg(long, value_enum)]
    pub backend: Option<crate::emit::firewall::Backend>,

    /// Ban length by strike [default: 10m,30m,2h,permanent]
    #[arg(long, value_name = "LIST")]
    pub ban_schedule: Option<String>,

    /// Strikes are forgotten after this long without a ban [default: 86400]
    #[arg(long, value_name = "SECS")]
    pub strike_decay_secs: Option<u64>,

    /// Treat everything in bouncer's set or chain as bouncer's: remove any entry it does not
    /// want banned (bans of an earlier run without --state, `bans.ipset` loads, entries added by
    /// hand). Without it, only entries this follow added are ever removed.
    #[arg(long)]
    pub own_set: bool,

    /// Check the kernel's ban set this often and repair it [default: 5]
    #[arg(long, value_name = "SECS")]
    pub reconcile_secs: Option<u64>,

    /// Read existing lines too (default: start at the end, or at the saved checkpoint).
    #[arg(long)]
    pub from_start: bool,

    /// Replay the files through the follow path with a clock that follows log time, touch
    /// nothing, print the decisions as JSON and exit (compare with `analyze`).
    #[arg(long)]
    pub replay: bool,

    /// Serve the live view on ADDR (`127.0.0.1:9180`, `[::1]:9180`, or a port alone for
    /// loopback): the dashboard at `/`, one IP at `/ip/IP`, Prometheus metrics at `/metrics`, JSON
    /// at `/api/state` and `/api/events`. Read-only: nothing can be changed over HTTP. An address
    /// other than loopback needs --listen-token (or --listen-insecure). Also `[follow] listen`.
    #[arg(long, value_name = "ADDR", help_heading = "Live view")]
    pub listen: Option<String>,

    /// Require this secret (read from FILE, at least 16 characters) on every request: a bearer
    /// token (`Authorization: Bearer …`; Prometheus: `authorization: {credentials_file: FILE}`),
    /// or basic auth with any user name and the token as password (browsers ask for it).
    /// Make one with `head -c 24 /dev/urandom | base64 > FILE`. Also `[follow] listen_token`.
    #[arg(long, value_name = "FILE", help_heading = "Live view")]
    pub listen_token: Option<PathBuf>,

    /// Serve a non-loopback --listen address without a token: anyone who reaches the port
    /// sees the bans, paths and user agents. For a network you fully trust.
    #[arg(long, help_heading = "Live view")]
    pub listen_insecure: bool,

    #[command(flatten)]
    pub ingest: IngestArgs,

    #[command(flatten)]
    pub detect: DetectArgs,

    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct FormatsArgs {
    /// Files to look at (`-` = stdin); only their first 64 KiB are read.
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,

    /// Look at the access logs an nginx configuration writes, with their formats.
    #[arg(long, value_name = "FILE")]
    pub nginx_conf: Option<PathBuf>,

    #[command(flatten)]
    pub ingest: IngestArgs,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The state directory `follow` uses.
    #[arg(long, value_name = "DIR")]
    pub state: PathBuf,
    /// One JSON object for scripts instead of the table: `running`, `pid`, `uptime_secs`,
    /// `bans` (each with ip, since, until, remaining_secs, strike, reason — the objects older
    /// versions printed one per line) and `status` (the follower's last status.json, or null).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct UnbanArgs {
    /// The state directory `follow` uses.
    #[arg(long, value_name = "DIR")]
    pub state: PathBuf,
    /// The IP to unban.
    #[arg(value_name = "IP", conflicts_with = "all")]
    pub ip: Option<std::net::IpAddr>,
    /// Unban every IP.
    #[arg(long)]
    pub all: bool,
    /// Firewall backend when follow is not running [default: the one follow used]
    #[arg(long, value_enum)]
    pub backend: Option<crate::emit::firewall::Backend>,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `64K`, `512M`, `2G` or plain bytes.
fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let (digits, unit) = match t.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => (&t[..i], t[i..].trim()),
        None => (t, ""),
    };
    let shift = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        _ => return Err(format!("{s:?}: a size such as 64K, 512M or 2G")),
    };
    let n: usize = digits
        .parse()
        .map_err(|_| format!("{s:?}: a size such as 64K, 512M or 2G"))?;
    n.checked_shl(shift)
        .filter(|b| b >> shift == n && *b >= 64 << 10)
        .ok_or_else(|| format!("{s:?}: between 64K and what the machine has"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// Every `[default: N]` a detection flag's help promises is the default the detector uses.
    #[test]
    fn detect_help_defaults_are_the_real_defaults() {
        #[derive(Parser)]
        struct Probe {
            #[command(flatten)]
            detect: DetectArgs,
        }
        let defaults = serde_json::to_value(crate::detect::DetectSettings::default())
            .expect("settings serialize");
        let mut checked = 0;
        for arg in Probe::command().get_arguments() {
            let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
            let Some(start) = help.find("[default: ") else {
                continue;
            };
            let promised = help[start + 10..].trim_end_matches(']').trim();
            let key = arg.get_id().as_str();
            let real = defaults
                .get(key)
                .unwrap_or_else(|| panic!("--{key} has no detect setting"));
            let real: f64 = real.as_f64().expect("numeric default");
            let promised: f64 = promised.parse().expect("numeric help default");
            assert_eq!(
                real, promised,
                "--{key}: help says {promised}, default is {real}"
            );
            checked += 1;
        }
        assert!(checked >= 15, "only {checked} defaults checked");
    }
}
