//! Firewall ban-list renderers: `iptables-restore`, `ip6tables-restore`,
//! `ipset restore`, `nft -f` and CrowdSec decision CSV.
//!
//! This module owns the *text* of every ban-list format `bouncer` writes. It
//! is pure: no I/O, no processes, std only. Callers decide where the text goes.
//!
//! # Invariants (all renderers)
//!
//! * Every address is an [`IpAddr`]; IPv4-mapped IPv6 (`::ffff:a.b.c.d`) is
//!   normalised to IPv4 *before* the family is chosen.
//! * Duplicates (after normalisation) are dropped, the first ban wins; output
//!   order is sorted by address, so the same input always renders identically.
//! * Comments come from log-derived text and are untrusted. In firewall files
//!   they are reduced to printable ASCII without `"`, `'`, `` ` `` or `\`,
//!   whitespace-collapsed and truncated (iptables/ipset 255, nft 128 chars),
//!   so a comment can never break the syntax of the file. An empty comment is
//!   omitted.
//! * Names from [`RulesetOptions`] are reduced to `[A-Za-z0-9_-]`, must start
//!   with a letter and are truncated to the kernel limits (chains 28, ipset
//!   base name 26 so that `<base>4_tmp` fits in 31); an unusable name falls
//!   back to the default.
//! * An empty ban list still renders a file that loads.
//!
//! # Reload semantics
//!
//! * [`nft`]: fully idempotent and atomic. `table inet <set_name> {}` +
//!   `delete table inet <set_name>` + the full definition are one `nft -f`
//!   transaction; the table owns its sets and its own base chain, so nothing
//!   outside the table is touched. `hook_chain` `DOCKER-USER`/`FORWARD` hooks
//!   the chain at `forward`, anything else at `input`. Above
//!   [`NFT_COMMENT_LIMIT`] bans the elements carry no comments (they are what
//!   makes a large `nft -f` slow); the file's header says so.
//! * [`ipset`]: each family is filled into `<base>N_tmp` (create -exist, flush,
//!   add), then atomically `swap`ped with the live set and the temporary set is
//!   destroyed; a reload is exact and there is no window with an empty set.
//!   The live sets are created first, so a set that exists with other options
//!   stops the load at line 1, before any temporary set exists.
//! * **The sets are `follow`'s sets.** `bans.ipset` and `bouncer follow
//!   --backend ipset` use the same names and the same `create` options, from
//!   one function ([`ipset_create_options`]: `hash:ip`, `maxelem` 1 Mi, the
//!   `timeout` and `comment` extensions). ipset's `create -exist` only accepts
//!   an *identical* existing set, so either may create the set and the other
//!   loads into it, in any order. Distinct names were the alternative; they
//!   were not taken because every documented command (removal, `status`, the
//!   match rules) names `bouncer4`/`bouncer6`, and because `follow` owns its
//!   entries one by one (it removes only entries it added, marked with the
//!   comment `bouncer`), so the file's entries are safe from it. The one
//!   interaction left is documented: loading the file replaces the set's
//!   content, and `follow` puts its own bans back at its next reconcile.
//!   `maxelem` is fixed (it is a limit, not an allocation), so it no longer
//!   changes with the number of bans; above 1 Mi bans in one family the
//!   temporary set is made larger and the live set takes its size on swap.
//! * **Ban lengths reach the kernel.** ipset entries and nft elements carry
//!   `timeout <duration_secs>`, so a loaded list expires by itself;
//!   `duration_secs` 0 is permanent. Timeouts are capped at
//!   [`MAX_KERNEL_TIMEOUT_SECS`] (2147483 s, 24 d 20 h 31 m 23 s), the
//!   largest ipset accepts; nft uses the same cap so both files expire the
//!   same entries at the same time. iptables rules cannot expire.
//! * [`iptables`] / [`ip6tables`]: the file declares (`:CHAIN - [0:0]`) and
//!   refills only the ban chain, which `iptables-restore --noflush` flushes
//!   and refills, so any number of loads leaves exactly one rule per IP. The
//!   file deliberately contains **no** rule in the hook chain.
//!
//! ## Why the jump from `INPUT` / `DOCKER-USER` is not in the restore file
//!
//! A restore file cannot idempotently own a single rule in a chain it does
//! not flush. Every failure-free operation `iptables-restore --noflush` can
//! apply to a built-in (or foreign user) chain changes its length by a fixed
//! amount (`-A`/`-I` +1, `-D` -1, `-R`/`-P`/`-Z` 0; declaring a built-in chain
//! only sets its policy, declaring a user chain flushes it), so the same file
//! cannot add the jump on the first load and add nothing on the second. The
//! only content-dependent operations are flushing the whole hook chain
//! (destroys other tools' rules: Docker, ufw, fail2ban, the admin) and
//! `-D`/`-C` of a missing rule, which aborts the restore with exit status 1.
//! Verified with iptables v1.8.9 (nf_tables) and ip6tables: `-I INPUT -j
//! BOUNCER` twice gives two jumps; `-D` of a missing jump fails ("line N
//! failed: Bad rule"); a later `*filter ... COMMIT` block failing does not
//! undo the earlier blocks, so a two-block "insert, then delete twice +
//! insert" file does converge to one jump, but only by exiting 1 on every
//! first load, which hides real errors; it is not used.
//!
//! The single edge is therefore installed next to the restore, idempotently:
//!
//! ```text
//! iptables-restore --noflush bans.rules
//! iptables -C INPUT -j BOUNCER 2>/dev/null || iptables -I INPUT -j BOUNCER
//! ```
//!
//! [`hook_rule`] returns that rule spec (`["INPUT", "-j", "BOUNCER"]`) for
//! `-C`/`-I`; the same command line is written into each file's header.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;

/// One address to ban.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ban {
    pub ip: IpAddr,
    /// Free text, usually derived from the log; sanitised by every renderer.
    pub comment: String,
    /// Ban length: ipset/nft timeouts and the CrowdSec duration; 0 = permanent.
    pub duration_secs: u64,
}

/// Names used by the firewall renderers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RulesetOptions {
    /// Chain that jumps to ours: `INPUT` (default) or `DOCKER-USER`.
    pub hook_chain: String,
    /// Our chain, default `BOUNCER`.
    pub ban_chain: String,
    /// ipset/nft set base name, default `bouncer` -> `bouncer4` / `bouncer6`;
    /// also the nft table name.
    pub set_name: String,
}

impl Default for RulesetOptions {
    fn default() -> Self {
        Self {
            hook_chain: DEFAULT_HOOK_CHAIN.to_owned(),
            ban_chain: DEFAULT_BAN_CHAIN.to_owned(),
            set_name: DEFAULT_SET_NAME.to_owned(),
        }
    }
}

const DEFAULT_HOOK_CHAIN: &str = "INPUT";
const DEFAULT_BAN_CHAIN: &str = "BOUNCER";
const DEFAULT_SET_NAME: &str = "bouncer";
/// iptables chain names: XT_EXTENSION_MAXNAMELEN (29) minus the NUL.
const MAX_CHAIN_LEN: usize = 28;
/// ipset names are at most 31 bytes; we append `4_tmp` (5 bytes).
const MAX_SET_BASE_LEN: usize = 26;
/// `xt_comment` and ipset comments: 255 bytes.
const MAX_XT_COMMENT: usize = 255;
/// Above this many bans `bans.nft` has no per-element comments: with them `nft -f` of 100 000
/// bans took 0.9–1.2 s here, without them 0.3–0.45 s (`xtests/bench/run.sh`, BENCHMARKS.md).
pub const NFT_COMMENT_LIMIT: usize = 10_000;
/// nft comments: 128 bytes.
const MAX_NFT_COMMENT: usize = 128;
/// `maxelem` of bouncer's ipsets, in files and in `follow`: a limit, not an allocation.
pub const IPSET_MAXELEM: usize = 1 << 20;
/// Longest per-entry timeout `ipset` accepts (`0-2147483`); nft files use the same cap.
pub const MAX_KERNEL_TIMEOUT_SECS: u64 = 2_147_483;
/// CrowdSec has no permanent decision: a permanent ban is imported for 100 years.
const CSV_PERMANENT: &str = "876000h";

/// Rule spec (without `-C`/`-I` and without the binary) of the single jump
/// from the hook chain into the ban chain, e.g. `["INPUT", "-j", "BOUNCER"]`.
/// Install it with `iptables -C <spec> || iptables -I <spec>` (same for
/// ip6tables) after loading [`iptables`] / [`ip6tables`]; see the module doc.
pub fn hook_rule(o: &RulesetOptions) -> Vec<String> {
    let n = Names::new(o);
    vec![n.hook, "-j".to_owned(), n.chain]
}

/// Rule spec (without `-C`/`-I` and the binary) that drops sources in the
/// ipset of one family, e.g.
/// `["INPUT", "-m", "set", "--match-set", "bouncer4", "src", "-j", "DROP"]`.
/// Install it like [`hook_rule`], with iptables (`v6 == false`) or ip6tables.
pub fn ipset_match_rule(o: &RulesetOptions, v6: bool) -> Vec<String> {
    let n = Names::new(o);
    let set = if v6 { n.set6 } else { n.set4 };
    let mut v = vec![n.hook];
    v.extend(
        [
            "-m",
            "set",
            "--match-set",
            set.as_str(),
            "src",
            "-j",
            "DROP",
        ]
        .map(String::from),
    );
    v
}

/// Name of bouncer's ipset for one family (`bouncer4` / `bouncer6` by default),
/// as written in `bans.ipset` and used by `follow`.
pub fn ipset_set_name(o: &RulesetOptions, v6: bool) -> String {
    let n = Names::new(o);
    if v6 {
        n.set6
    } else {
        n.set4
    }
}

/// The commands that load the ban lists written in `dir` (README's "Applying the ban lists"),
/// one list per way: iptables (restore + the hook line, per family), ipset (restore + one match
/// rule per family), nft. IPv6 lines only with `v6` (there are IPv6 bans). `dir` is a path as
/// the user gave it; `""` means the current directory. Paths are shell-quoted.
pub fn apply_commands(o: &RulesetOptions, dir: &str, v6: bool) -> ApplyCommands {
    let file = |name: &str| {
        if dir.is_empty() {
            name.to_owned()
        } else {
            format!("{}/{name}", shell_quote(dir.trim_end_matches('/')))
        }
    };
    // `-C … || -I …`: add the rule only if it is missing, so a re-run adds nothing.
    let once = |bin: &str, spec: Vec<String>| {
        let spec = spec.join(" ");
        format!("{bin} -C {spec} 2>/dev/null || {bin} -I {spec}")
    };
    let mut iptables = vec![
        format!("iptables-restore --noflush < {}", file("bans.rules")),
        once("iptables", hook_rule(o)),
    ];
    let mut ipset = vec![
        format!("ipset restore < {}", file("bans.ipset")),
        once("iptables", ipset_match_rule(o, false)),
    ];
    if v6 {
        iptables.push(format!(
            "ip6tables-restore --noflush < {}",
            file("bans6.rules")
        ));
        iptables.push(once("ip6tables", hook_rule(o)));
        ipset.push(once("ip6tables", ipset_match_rule(o, true)));
    }
    ApplyCommands {
        iptables,
        ipset,
        nft: vec![format!("nft -f {}", file("bans.nft"))],
    }
}

/// See [`apply_commands`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyCommands {
    pub iptables: Vec<String>,
    pub ipset: Vec<String>,
    pub nft: Vec<String>,
}

/// `s` as one shell word: unchanged when it is plain, else single-quoted.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+,:@".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// `iptables-restore --noflush` input with the IPv4 bans: declares and refills
/// the ban chain only (see the module doc for the hook jump).
pub fn iptables(bans: &[Ban], o: &RulesetOptions) -> String {
    xtables(bans, o, false)
}

/// `ip6tables-restore --noflush` input with the IPv6 bans; as [`iptables`].
pub fn ip6tables(bans: &[Ban], o: &RulesetOptions) -> String {
    xtables(bans, o, true)
}

fn xtables(bans: &[Ban], o: &RulesetOptions, v6: bool) -> String {
    let n = Names::new(o);
    let (bin, prefix) = if v6 {
        ("ip6tables", 128)
    } else {
        ("iptables", 32)
    };
    let list: Vec<&Ban> = normalised(bans)
        .into_iter()
        .filter(|(ip, _)| ip.is_ipv6() == v6)
        .map(|(_, b)| b)
        .collect();
    let mut out = String::new();
    let _ = writeln!(out, "# bouncer {bin}-restore input: {} bans", list.len());
    let _ = writeln!(
        out,
        "# load: {bin}-restore --noflush FILE (flushes and refills chain {} only)",
        n.chain
    );
    let _ = writeln!(
        out,
        "# hook once: {bin} -C {spec} 2>/dev/null || {bin} -I {spec}",
        spec = hook_rule(o).join(" ")
    );
    out.push_str("*filter\n");
    let _ = writeln!(out, ":{} - [0:0]", n.chain);
    for b in list {
        let _ = write!(out, "-A {} -s {}/{prefix}", n.chain, canonical(b.ip));
        let c = sanitize_comment(&b.comment, MAX_XT_COMMENT);
        if !c.is_empty() {
            let _ = write!(out, " -m comment --comment \"{c}\"");
        }
        out.push_str(" -j DROP\n");
    }
    out.push_str("COMMIT\n");
    out
}

/// `create` options (after the set name) of bouncer's ipset for one family:
/// `hash:ip family inet maxelem 1048576 timeout 0 comment`. The one definition
/// used by `bans.ipset` and by `follow`, so a set either made is one the other
/// accepts (ipset's `create -exist` tolerates only identical options).
pub fn ipset_create_options(v6: bool) -> Vec<String> {
    ipset_options(v6, IPSET_MAXELEM)
}

fn ipset_options(v6: bool, maxelem: usize) -> Vec<String> {
    let family = if v6 { "inet6" } else { "inet" };
    [
        "hash:ip",
        "family",
        family,
        "maxelem",
        &maxelem.to_string(),
        "timeout",
        "0",
        "comment",
    ]
    .map(String::from)
    .to_vec()
}

/// A ban's kernel timeout: its length, capped at [`MAX_KERNEL_TIMEOUT_SECS`];
/// 0 (permanent) stays 0.
pub fn kernel_timeout(duration_secs: u64) -> u64 {
    duration_secs.min(MAX_KERNEL_TIMEOUT_SECS)
}

/// `ipset restore` input: one `hash:ip` set per family, refilled through a
/// temporary set and an atomic `swap`, so a reload is exact. Each entry
/// carries its ban length as `timeout` (0 = permanent).
pub fn ipset(bans: &[Ban], o: &RulesetOptions) -> String {
    let n = Names::new(o);
    let list = normalised(bans);
    let v6_count = list.iter().filter(|(ip, _)| ip.is_ipv6()).count();
    let capped = list
        .iter()
        .filter(|(_, b)| b.duration_secs > MAX_KERNEL_TIMEOUT_SECS)
        .count();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# bouncer ipset restore input: {} bans ({} IPv4, {v6_count} IPv6); load: ipset restore < FILE",
        list.len(),
        list.len() - v6_count
    );
    let _ = writeln!(
        out,
        "# entries expire after their ban length (timeout, 0 = permanent, at most {MAX_KERNEL_TIMEOUT_SECS} s){}",
        if capped > 0 {
            format!("; {capped} longer bans are capped")
        } else {
            String::new()
        }
    );
    let _ = writeln!(
        out,
        "# sets {} and {} are also bouncer follow's (same options); this load replaces their content",
        n.set4, n.set6
    );
    for v6 in [false, true] {
        let bin = if v6 { "ip6tables" } else { "iptables" };
        let _ = writeln!(
            out,
            "# match once: {bin} -C {spec} 2>/dev/null || {bin} -I {spec}",
            spec = ipset_match_rule(o, v6).join(" ")
        );
    }
    // Live sets first: an incompatible existing set fails here, before any temporary set.
    for (v6, set) in [(false, &n.set4), (true, &n.set6)] {
        let _ = writeln!(
            out,
            "create {set} {} -exist",
            ipset_create_options(v6).join(" ")
        );
    }
    for (v6, set) in [(false, &n.set4), (true, &n.set6)] {
        let members: Vec<(IpAddr, &Ban)> = list
            .iter()
            .filter(|(ip, _)| ip.is_ipv6() == v6)
            .copied()
            .collect();
        let maxelem = members.len().next_power_of_two().max(IPSET_MAXELEM);
        let tmp = format!("{set}_tmp");
        let _ = writeln!(
            out,
            "create {tmp} {} -exist",
            ipset_options(v6, maxelem).join(" ")
        );
        let _ = writeln!(out, "flush {tmp}");
        for (ip, b) in members {
            let _ = write!(
                out,
                "add {tmp} {ip} timeout {}",
                kernel_timeout(b.duration_secs)
            );
            let c = sanitize_comment(&b.comment, MAX_XT_COMMENT);
            if !c.is_empty() {
                let _ = write!(out, " comment \"{c}\"");
            }
            out.push_str(" -exist\n");
        }
        let _ = writeln!(out, "swap {tmp} {set}");
        let _ = writeln!(out, "destroy {tmp}");
    }
    out
}

/// `nft -f` input: table `inet <set_name>` with sets `<set_name>4`/`6` and its
/// own base chain; recreated in one transaction, so a reload is exact.
pub fn nft(bans: &[Ban], o: &RulesetOptions) -> String {
    let n = Names::new(o);
    let list = normalised(bans);
    let hook = if ["DOCKER-USER", "FORWARD"]
        .iter()
        .any(|h| n.hook.eq_ignore_ascii_case(h))
    {
        "forward"
    } else {
        "input"
    };
    let table = &n.set_base;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# bouncer nft ruleset: {} bans; load: nft -f FILE",
        list.len()
    );
    let comments = list.len() <= NFT_COMMENT_LIMIT;
    if !comments {
        let _ = writeln!(
            out,
            "# over {NFT_COMMENT_LIMIT} bans: no per-address comments (they triple the load \
             time); the reasons are in decisions.json"
        );
    }
    let _ = writeln!(
        out,
        "# elements expire after their ban length (timeout; none = permanent; at most \
         {MAX_KERNEL_TIMEOUT_SECS} s, as in bans.ipset)"
    );
    let _ = writeln!(out, "table inet {table} {{}}");
    let _ = writeln!(out, "delete table inet {table}");
    let _ = writeln!(out, "table inet {table} {{");
    for (v6, set, ty) in [(false, &n.set4, "ipv4_addr"), (true, &n.set6, "ipv6_addr")] {
        let _ = writeln!(out, "\tset {set} {{");
        let _ = writeln!(out, "\t\ttype {ty}");
        out.push_str("\t\tflags timeout\n");
        let elems: Vec<String> = list
            .iter()
            .filter(|(ip, _)| ip.is_ipv6() == v6)
            .map(|(ip, b)| {
                let mut e = ip.to_string();
                match kernel_timeout(b.duration_secs) {
                    0 => {}
                    t => {
                        let _ = write!(e, " timeout {t}s");
                    }
                }
                let c = if comments {
                    sanitize_comment(&b.comment, MAX_NFT_COMMENT)
                } else {
                    String::new()
                };
                if !c.is_empty() {
                    let _ = write!(e, " comment \"{c}\"");
                }
                e
            })
            .collect();
        if !elems.is_empty() {
            let _ = writeln!(
                out,
                "\t\telements = {{\n\t\t\t{}\n\t\t}}",
                elems.join(",\n\t\t\t")
            );
        }
        out.push_str("\t}\n");
    }
    let _ = writeln!(out, "\tchain {} {{", n.chain);
    let _ = writeln!(
        out,
        "\t\ttype filter hook {hook} priority filter - 10; policy accept;"
    );
    let _ = writeln!(out, "\t\tip saddr @{} drop", n.set4);
    let _ = writeln!(out, "\t\tip6 saddr @{} drop", n.set6);
    out.push_str("\t}\n}\n");
    out
}

/// CrowdSec `cscli decisions import --format csv` input:
/// `duration,reason,scope,type,value`, one `Ip`/`ban` decision per address;
/// a permanent ban (`duration_secs` 0) is imported for 100 years.
pub fn crowdsec_csv(bans: &[Ban]) -> String {
    let mut out = String::from("duration,reason,scope,type,value\n");
    for (ip, b) in normalised(bans) {
        let _ = writeln!(
            out,
            "{},{},Ip,ban,{ip}",
            format_duration(b.duration_secs),
            csv_field(&b.comment)
        );
    }
    out
}

/// Largest exact unit: 14400 -> `4h`, 600 -> `10m`, 90 -> `90s`; 0 (permanent)
/// -> 100 years, CrowdSec having no permanent decision.
fn format_duration(secs: u64) -> String {
    match secs {
        0 => CSV_PERMANENT.to_owned(),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// Control characters become spaces (one record per line); the field is
/// quoted (RFC 4180, `"` doubled) when it holds `,`, `"` or edge spaces.
fn csv_field(s: &str) -> String {
    let s: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if s.contains([',', '"']) || s.starts_with(' ') || s.ends_with(' ') {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// IPv4-mapped IPv6 -> IPv4; everything else unchanged.
fn canonical(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

/// Canonical, deduplicated (first wins), sorted by address.
fn normalised(bans: &[Ban]) -> Vec<(IpAddr, &Ban)> {
    let mut map: BTreeMap<IpAddr, &Ban> = BTreeMap::new();
    for b in bans {
        map.entry(canonical(b.ip)).or_insert(b);
    }
    map.into_iter().collect()
}

/// Printable ASCII only, without `"`, `'`, `` ` `` and `\`; whitespace and
/// control characters become single spaces, other characters `_`; trimmed
/// and truncated to `max` bytes.
fn sanitize_comment(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max));
    let mut space = false;
    for c in s.chars() {
        let m = match c {
            '"' | '\'' | '`' | '\\' => '_',
            c if c.is_whitespace() || c.is_control() => ' ',
            ' '..='~' => c,
            _ => '_',
        };
        if m == ' ' {
            space = !out.is_empty();
            continue;
        }
        if space {
            out.push(' ');
            space = false;
        }
        if out.len() >= max {
            break;
        }
        out.push(m);
    }
    out.truncate(max);
    out.trim_end().to_owned()
}

/// `[A-Za-z0-9_-]`, starting with a letter, at most `max` bytes; else `default`.
fn sanitize_name(s: &str, max: usize, default: &str) -> String {
    let n: String = s
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .take(max)
        .collect();
    if n.starts_with(|c: char| c.is_ascii_alphabetic()) {
        n
    } else {
        default.to_owned()
    }
}

struct Names {
    hook: String,
    chain: String,
    set_base: String,
    set4: String,
    set6: String,
}

impl Names {
    fn new(o: &RulesetOptions) -> Self {
        let set_base = sanitize_name(&o.set_name, MAX_SET_BASE_LEN, DEFAULT_SET_NAME);
        Self {
            hook: sanitize_name(&o.hook_chain, MAX_CHAIN_LEN, DEFAULT_HOOK_CHAIN),
            chain: sanitize_name(&o.ban_chain, MAX_CHAIN_LEN, DEFAULT_BAN_CHAIN),
            set4: format!("{set_base}4"),
            set6: format!("{set_base}6"),
            set_base,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn ban(ip: &str, comment: &str) -> Ban {
        Ban {
            ip: ip.parse().unwrap(),
            comment: comment.to_owned(),
            duration_secs: 3600,
        }
    }

    fn sample() -> Vec<Ban> {
        vec![
            ban("192.0.2.20", "scanner"),
            ban("2001:db8::1", "v6 probe"),
            ban("127.0.1.7", "loopback test"),
            ban("::ffff:198.51.100.5", "mapped"),
            ban("192.0.2.20", "duplicate, must lose"),
        ]
    }

    fn body_lines(s: &str) -> Vec<&str> {
        s.lines().filter(|l| !l.starts_with('#')).collect()
    }

    #[test]
    fn iptables_shape() {
        let o = RulesetOptions::default();
        let out = iptables(&sample(), &o);
        assert_eq!(
            body_lines(&out),
            [
                "*filter",
                ":BOUNCER - [0:0]",
                "-A BOUNCER -s 127.0.1.7/32 -m comment --comment \"loopback test\" -j DROP",
                "-A BOUNCER -s 192.0.2.20/32 -m comment --comment \"scanner\" -j DROP",
                "-A BOUNCER -s 198.51.100.5/32 -m comment --comment \"mapped\" -j DROP",
                "COMMIT",
            ]
        );
        assert!(out.ends_with("COMMIT\n"));
        assert!(
            !body_lines(&out).iter().any(|l| l.contains("INPUT")),
            "restore file must not touch INPUT"
        );
        assert!(out.contains("iptables -C INPUT -j BOUNCER"));
    }

    #[test]
    fn ip6tables_shape() {
        let out = ip6tables(&sample(), &RulesetOptions::default());
        assert_eq!(
            body_lines(&out),
            [
                "*filter",
                ":BOUNCER - [0:0]",
                "-A BOUNCER -s 2001:db8::1/128 -m comment --comment \"v6 probe\" -j DROP",
                "COMMIT",
            ]
        );
        assert!(out.contains("ip6tables -C INPUT"));
    }

    #[test]
    fn v4_v6_split_and_mapped() {
        let bans = sample();
        let v4 = iptables(&bans, &RulesetOptions::default());
        let v6 = ip6tables(&bans, &RulesetOptions::default());
        assert!(!v4.contains("2001:db8"));
        assert!(!v6.contains("192.0.2.20") && !v6.contains("ffff"));
        assert!(v4.contains("198.51.100.5/32"));
        // `::1` and IPv4-compatible `::a.b.c.d` are IPv6, not IPv4.
        let odd = [ban("::1", ""), ban("::192.0.2.1", "")];
        assert!(!body_lines(&iptables(&odd, &RulesetOptions::default()))
            .iter()
            .any(|l| l.starts_with("-A")));
        assert_eq!(
            body_lines(&ip6tables(&odd, &RulesetOptions::default()))
                .iter()
                .filter(|l| l.starts_with("-A"))
                .count(),
            2
        );
    }

    #[test]
    fn dedup_first_wins_and_sorted() {
        let bans = [
            ban("192.0.2.9", "first"),
            ban("192.0.2.1", "a"),
            ban("::ffff:192.0.2.9", "second"),
        ];
        let out = iptables(&bans, &RulesetOptions::default());
        let rules: Vec<_> = out.lines().filter(|l| l.starts_with("-A")).collect();
        assert_eq!(rules.len(), 2);
        assert!(rules[0].contains("192.0.2.1/32"));
        assert!(rules[1].contains("\"first\""));
    }

    #[test]
    fn comment_sanitising() {
        assert_eq!(sanitize_comment("\"; rm -rf /", 255), "_; rm -rf /");
        assert_eq!(sanitize_comment("a\nb\r\n\tc", 255), "a b c");
        assert_eq!(sanitize_comment("it's `x` \\y", 255), "it_s _x_ _y");
        assert_eq!(sanitize_comment("naïve ☃ 日本", 255), "na_ve _ __");
        assert_eq!(sanitize_comment("\u{0}\u{7f}\u{1b}[31m", 255), "[31m");
        assert_eq!(sanitize_comment("  \n ", 255), "");
        assert_eq!(sanitize_comment(&"x".repeat(300), 255).len(), 255);
        assert_eq!(sanitize_comment(&"é".repeat(300), 128).len(), 128);
        assert_eq!(sanitize_comment("ab    cd", 3), "ab");
        for c in sanitize_comment("\"'`\\\u{2028}ä\u{0}\n", 255).chars() {
            assert!(c.is_ascii_graphic() || c == ' ', "{c:?}");
        }
    }

    #[test]
    fn hostile_comment_stays_on_one_quoted_field() {
        let bans = [ban("192.0.2.1", "x\"\n-A INPUT -j ACCEPT\n\"; rm -rf / ☃")];
        let o = RulesetOptions::default();
        for out in [iptables(&bans, &o), ipset(&bans, &o), nft(&bans, &o)] {
            let line = out.lines().find(|l| l.contains("192.0.2.1")).unwrap();
            assert_eq!(line.matches('"').count(), 2, "{line}");
            assert!(line.contains("-A INPUT -j ACCEPT _; rm -rf / _"), "{line}");
            assert!(!out.lines().any(|l| l.starts_with("-A INPUT")));
        }
    }

    #[test]
    fn empty_comment_is_omitted() {
        let o = RulesetOptions::default();
        let bans = [ban("192.0.2.1", "\n\t")];
        assert!(iptables(&bans, &o).contains("-A BOUNCER -s 192.0.2.1/32 -j DROP\n"));
        assert!(ipset(&bans, &o).contains("add bouncer4_tmp 192.0.2.1 timeout 3600 -exist\n"));
        assert!(nft(&bans, &o).contains("\t\t\t192.0.2.1 timeout 3600s\n"));
    }

    #[test]
    fn empty_lists() {
        let o = RulesetOptions::default();
        assert_eq!(
            body_lines(&iptables(&[], &o)),
            ["*filter", ":BOUNCER - [0:0]", "COMMIT"]
        );
        assert_eq!(
            body_lines(&ip6tables(&[], &o)),
            ["*filter", ":BOUNCER - [0:0]", "COMMIT"]
        );
        let s = ipset(&[], &o);
        assert!(s.contains(
            "create bouncer4 hash:ip family inet maxelem 1048576 timeout 0 comment -exist\n"
        ));
        assert!(s.contains("swap bouncer6_tmp bouncer6\n"));
        assert!(!s.contains("add "));
        let n = nft(&[], &o);
        assert!(!n.contains("elements ="));
        assert!(n.contains("set bouncer4 {") && n.contains("set bouncer6 {"));
        assert_eq!(crowdsec_csv(&[]), "duration,reason,scope,type,value\n");
    }

    #[test]
    fn ipset_shape() {
        let out = ipset(&sample(), &RulesetOptions::default());
        let lines: Vec<_> = body_lines(&out);
        let o4 = "hash:ip family inet maxelem 1048576 timeout 0 comment";
        let o6 = "hash:ip family inet6 maxelem 1048576 timeout 0 comment";
        assert_eq!(
            lines,
            [
                format!("create bouncer4 {o4} -exist"),
                format!("create bouncer6 {o6} -exist"),
                format!("create bouncer4_tmp {o4} -exist"),
                "flush bouncer4_tmp".into(),
                "add bouncer4_tmp 127.0.1.7 timeout 3600 comment \"loopback test\" -exist".into(),
                "add bouncer4_tmp 192.0.2.20 timeout 3600 comment \"scanner\" -exist".into(),
                "add bouncer4_tmp 198.51.100.5 timeout 3600 comment \"mapped\" -exist".into(),
                "swap bouncer4_tmp bouncer4".into(),
                "destroy bouncer4_tmp".into(),
                format!("create bouncer6_tmp {o6} -exist"),
                "flush bouncer6_tmp".into(),
                "add bouncer6_tmp 2001:db8::1 timeout 3600 comment \"v6 probe\" -exist".into(),
                "swap bouncer6_tmp bouncer6".into(),
                "destroy bouncer6_tmp".into(),
            ]
        );
        assert!(out.contains(
            "# match once: iptables -C INPUT -m set --match-set bouncer4 src -j DROP 2>/dev/null || \
             iptables -I INPUT -m set --match-set bouncer4 src -j DROP\n"
        ));
        assert!(out.contains("ip6tables -I INPUT -m set --match-set bouncer6 src -j DROP\n"));
        // The live sets are created with exactly the options follow uses.
        for v6 in [false, true] {
            let live = format!(
                "create bouncer{} {} -exist",
                if v6 { 6 } else { 4 },
                ipset_create_options(v6).join(" ")
            );
            assert!(lines.contains(&live.as_str()), "{live}");
        }
    }

    #[test]
    fn ban_lengths_become_kernel_timeouts() {
        let mut bans = vec![
            ban("192.0.2.1", "an hour"),
            ban("192.0.2.2", "permanent"),
            ban("192.0.2.3", "a year"),
            ban("2001:db8::3", "ten minutes"),
        ];
        bans[1].duration_secs = 0;
        bans[2].duration_secs = 365 * 86_400;
        bans[3].duration_secs = 600;
        let o = RulesetOptions::default();
        let set = ipset(&bans, &o);
        assert!(set.contains("add bouncer4_tmp 192.0.2.1 timeout 3600 comment"));
        assert!(set.contains("add bouncer4_tmp 192.0.2.2 timeout 0 comment"));
        assert!(set.contains("add bouncer4_tmp 192.0.2.3 timeout 2147483 comment"));
        assert!(set.contains("add bouncer6_tmp 2001:db8::3 timeout 600 comment"));
        assert!(set.contains("; 1 longer bans are capped"), "{set}");
        let n = nft(&bans, &o);
        assert!(n.contains("\t\t\t192.0.2.1 timeout 3600s comment \"an hour\",\n"));
        assert!(
            n.contains("\t\t\t192.0.2.2 comment \"permanent\",\n"),
            "{n}"
        );
        assert!(n.contains("\t\t\t192.0.2.3 timeout 2147483s comment \"a year\"\n"));
        assert!(n.contains("\t\t\t2001:db8::3 timeout 600s comment \"ten minutes\"\n"));
        assert_eq!(n.matches("\t\tflags timeout\n").count(), 2);
        let csv = crowdsec_csv(&bans);
        assert!(
            csv.contains("876000h,permanent,Ip,ban,192.0.2.2\n"),
            "{csv}"
        );
        assert!(csv.contains("8760h,a year,Ip,ban,192.0.2.3\n"), "{csv}");
    }

    #[test]
    fn ipset_maxelem_is_fixed_unless_one_family_outgrows_it() {
        let many = |n: u32| -> Vec<Ban> {
            (0..n)
                .map(|i| Ban {
                    ip: IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)),
                    comment: String::new(),
                    duration_secs: 60,
                })
                .collect()
        };
        let maxelems = |n: u32| -> Vec<usize> {
            let out = ipset(&many(n), &RulesetOptions::default());
            body_lines(&out)
                .iter()
                .filter(|l| l.starts_with("create "))
                .map(|l| {
                    let tail = l.split("maxelem ").nth(1).unwrap();
                    tail.split(' ').next().unwrap().parse().unwrap()
                })
                .collect()
        };
        // Order: bouncer4, bouncer6, bouncer4_tmp, bouncer6_tmp.
        let m = IPSET_MAXELEM;
        assert_eq!(maxelems(0), [m, m, m, m]);
        assert_eq!(maxelems(70_000), [m, m, m, m], "no longer sized by count");
        assert_eq!(maxelems(m as u32 + 1), [m, m, 2 * m, m]);
    }

    #[test]
    fn nft_shape() {
        let out = nft(&sample(), &RulesetOptions::default());
        assert!(out
            .contains("table inet bouncer {}\ndelete table inet bouncer\ntable inet bouncer {\n"));
        assert!(out.contains("\t\t\t127.0.1.7 timeout 3600s comment \"loopback test\",\n"));
        assert!(out.contains("\t\t\t198.51.100.5 timeout 3600s comment \"mapped\"\n"));
        assert!(out.contains("\t\t\t2001:db8::1 timeout 3600s comment \"v6 probe\"\n"));
        assert!(out.contains("type filter hook input priority filter - 10; policy accept;"));
        assert!(
            out.contains("ip saddr @bouncer4 drop") && out.contains("ip6 saddr @bouncer6 drop")
        );
        assert_eq!(out.matches('{').count(), out.matches('}').count());
        let docker = RulesetOptions {
            hook_chain: "DOCKER-USER".into(),
            ..RulesetOptions::default()
        };
        assert!(nft(&[], &docker).contains("hook forward"));
    }

    #[test]
    fn large_nft_lists_drop_element_comments() {
        let many: Vec<Ban> = (0..=NFT_COMMENT_LIMIT as u32)
            .map(|i| {
                ban(
                    &std::net::Ipv4Addr::from(0xc612_0000 + i).to_string(),
                    "why",
                )
            })
            .collect();
        let o = RulesetOptions::default();
        let big = nft(&many, &o);
        assert!(!big.contains("comment \""));
        assert!(big.contains("the reasons are in decisions.json"));
        assert_eq!(big.matches("\t\t\t198.").count(), NFT_COMMENT_LIMIT + 1);
        let small = nft(&many[..NFT_COMMENT_LIMIT], &o);
        assert_eq!(small.matches(" comment \"why\"").count(), NFT_COMMENT_LIMIT);
    }

    #[test]
    fn names_are_sanitised() {
        let o = RulesetOptions {
            hook_chain: "DOCKER-USER".into(),
            ban_chain: "BAN\"; flush ruleset".into(),
            set_name: "9bad".into(),
        };
        assert_eq!(hook_rule(&o), ["DOCKER-USER", "-j", "BANflushruleset"]);
        assert_eq!(ipset_match_rule(&o, true)[4], "bouncer6");
        let long = RulesetOptions {
            ban_chain: "C".repeat(40),
            set_name: "s".repeat(40),
            ..RulesetOptions::default()
        };
        assert_eq!(hook_rule(&long)[2].len(), 28);
        let s = ipset(&[], &long);
        let line = s.lines().find(|l| l.contains("4_tmp ")).unwrap();
        let tmp = line.split(' ').nth(1).unwrap();
        assert_eq!(tmp.len(), 31, "{tmp}");
        assert_eq!(
            ipset_match_rule(&RulesetOptions::default(), false),
            [
                "INPUT",
                "-m",
                "set",
                "--match-set",
                "bouncer4",
                "src",
                "-j",
                "DROP"
            ]
        );
    }

    #[test]
    fn apply_commands_are_readmes() {
        let o = RulesetOptions::default();
        let c = apply_commands(&o, "out dir/", true);
        assert_eq!(
            c.iptables,
            [
                "iptables-restore --noflush < 'out dir'/bans.rules",
                "iptables -C INPUT -j BOUNCER 2>/dev/null || iptables -I INPUT -j BOUNCER",
                "ip6tables-restore --noflush < 'out dir'/bans6.rules",
                "ip6tables -C INPUT -j BOUNCER 2>/dev/null || ip6tables -I INPUT -j BOUNCER",
            ]
        );
        assert_eq!(
            c.ipset,
            [
                "ipset restore < 'out dir'/bans.ipset",
                "iptables -C INPUT -m set --match-set bouncer4 src -j DROP 2>/dev/null || \
                 iptables -I INPUT -m set --match-set bouncer4 src -j DROP",
                "ip6tables -C INPUT -m set --match-set bouncer6 src -j DROP 2>/dev/null || \
                 ip6tables -I INPUT -m set --match-set bouncer6 src -j DROP",
            ]
        );
        assert_eq!(c.nft, ["nft -f 'out dir'/bans.nft"]);
        let docker = RulesetOptions {
            hook_chain: "DOCKER-USER".into(),
            ..o
        };
        let c = apply_commands(&docker, "", false);
        assert_eq!(c.iptables.len(), 2, "no IPv6 lines without IPv6 bans");
        assert_eq!(c.iptables[0], "iptables-restore --noflush < bans.rules");
        assert!(c.ipset[1].starts_with("iptables -C DOCKER-USER -m set --match-set bouncer4"));
        // Every command README shows is one of them.
        let readme = include_str!("../../README.md");
        let all = apply_commands(&RulesetOptions::default(), "bouncer-out", true);
        for cmd in all.iptables.iter().chain(&all.ipset).chain(&all.nft) {
            assert!(readme.contains(cmd.as_str()), "README lacks {cmd}");
        }
        assert_eq!(shell_quote("bouncer-out"), "bouncer-out");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
    }

    #[test]
    fn csv_quoting_and_durations() {
        let mut bans = vec![
            ban("192.0.2.1", "plain"),
            ban("192.0.2.2", "a, b"),
            ban("192.0.2.3", "say \"hi\"\nbye"),
            ban("2001:db8::2", "☃ ok"),
            ban("::ffff:192.0.2.1", "dup"),
        ];
        bans[1].duration_secs = 600;
        bans[2].duration_secs = 90;
        bans[3].duration_secs = 7200;
        assert_eq!(
            crowdsec_csv(&bans),
            "duration,reason,scope,type,value\n\
             1h,plain,Ip,ban,192.0.2.1\n\
             10m,\"a, b\",Ip,ban,192.0.2.2\n\
             90s,\"say \"\"hi\"\" bye\",Ip,ban,192.0.2.3\n\
             2h,☃ ok,Ip,ban,2001:db8::2\n"
        );
        assert_eq!(format_duration(14_400), "4h");
        assert_eq!(format_duration(5_400), "90m");
        assert_eq!(format_duration(61), "61s");
    }

    #[test]
    fn mapped_is_normalised_everywhere() {
        let m = IpAddr::V6(Ipv4Addr::new(192, 0, 2, 77).to_ipv6_mapped());
        let b = [Ban {
            ip: m,
            comment: String::new(),
            duration_secs: 1,
        }];
        let o = RulesetOptions::default();
        assert!(ipset(&b, &o).contains("add bouncer4_tmp 192.0.2.77 timeout 1 -exist"));
        assert!(nft(&b, &o).contains("\t\t\t192.0.2.77 timeout 1s\n"));
        assert!(crowdsec_csv(&b).ends_with(",192.0.2.77\n"));
        assert_eq!(
            canonical(IpAddr::V6(Ipv6Addr::LOCALHOST)),
            IpAddr::V6(Ipv6Addr::LOCALHOST)
        );
    }
}
