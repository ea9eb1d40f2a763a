//! Enforcement: the host firewall as a set of banned addresses, one address family at a time.
//!
//! [`Firewall`] is small on purpose: make sure our set (or chain) exists, make a hook chain jump
//! to it, read back what the kernel holds, add, remove. The real backends run `ipset`,
//! `iptables`, `ip6tables` and their `restore` variants with argument vectors built from
//! validated [`IpAddr`]s and fixed names; no shell is ever spawned. [`Recording`] keeps the same
//! state in memory for unit tests and `--dry-run`; integration tests use the real tools in a
//! network namespace (through [`Exec::wrapped`]).
//!
//! [`Enforcer`] drives a backend towards a desired ban set and owns three rules:
//!
//! 1. **Families are independent.** IPv4 and IPv6 are set up, read and changed separately, and
//!    each reports its own errors ([`Outcome`]): ip6tables failing (no `DOCKER-USER` in IPv6, no
//!    ip6tables module) never keeps an IPv4 ban out of the kernel.
//! 2. **Hooks** ([`HookPlan`]): by default the set is matched from `INPUT` (services on the host)
//!    *and*, in each family where Docker created it, from `DOCKER-USER` (published container
//!    ports, which never pass `INPUT`). Checked at every reconcile, so a Docker started later is
//!    picked up. `--chain` names the one chain to use instead. [`Enforcer::hooks`] says which
//!    hooks are in place.
//! 3. **Own what you add.** The enforcer removes only entries it added itself ([`Enforcer::owned`])
//!    and only while the kernel entry still carries bouncer's mark ([`MARK`], the entry's
//!    comment). Entries an admin added by hand, entries loaded from `bans.ipset` / `bans.rules`
//!    (their comments say why, never just `bouncer`), and bans of an earlier run that nobody
//!    wants any more are left alone: the kernel keeps them, as `follow` promises. An entry it
//!    wants that is already there with our mark (its own, from an earlier run) is adopted.
//!    [`Ownership::WholeSet`] (`follow --own-set`) is the deliberate opposite: bouncer's set or
//!    chain is bouncer's alone and anything in it that is not wanted is removed.
//!
//! The invariant a newcomer could break: never compute removals from "everything in the set";
//! always from [`Enforcer::owned`] (unless the operator chose [`Ownership::WholeSet`]).

use super::rulesets::{self, hook_rule, ipset_match_rule, RulesetOptions};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::Write;
use std::net::IpAddr;
use std::process::{Command, Stdio};

/// The comment bouncer puts on every entry it adds (ipset comment, iptables `-m comment`). Ban
/// lists written by `analyze` carry longer comments (`bouncer <time> <rules>: …`), so this exact
/// text marks `follow`'s own entries.
pub const MARK: &str = "bouncer";

/// The chain Docker creates for filtering published ports.
pub const DOCKER_USER: &str = "DOCKER-USER";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub const BOTH: [Family; 2] = [Family::V4, Family::V6];

    /// IPv4-mapped IPv6 counts as IPv4, as everywhere in bouncer.
    pub fn of(ip: &IpAddr) -> Family {
        if crate::parse::normalize_ip(*ip).is_ipv4() {
            Family::V4
        } else {
            Family::V6
        }
    }

    fn is_v6(self) -> bool {
        self == Family::V6
    }

    fn iptables(self) -> &'static str {
        match self {
            Family::V4 => "iptables",
            Family::V6 => "ip6tables",
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        })
    }
}

/// Which chains jump into bouncer's set or chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookPlan {
    /// `INPUT`, plus `DOCKER-USER` in each family where it exists (the default).
    Auto,
    /// Exactly this chain in both families (`--chain`); a family without it reports an error.
    Only(String),
}

/// Whose entries an [`Enforcer`] may remove.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Ownership {
    /// Only entries it added itself (the default).
    #[default]
    Ours,
    /// Everything in bouncer's set or chain (`follow --own-set`).
    WholeSet,
}

/// Who a kernel entry says it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// Carries [`MARK`]: added by `follow`.
    Bouncer,
    /// Another comment, or none where bouncer would have put one.
    Other,
    /// The set keeps no comments (made by an older bouncer); only [`Enforcer::owned`] can tell.
    Unknown,
}

/// The hooks in place after the last reconcile, per family: for the startup line and `status`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hooks {
    pub v4: Vec<String>,
    pub v6: Vec<String>,
}

impl Hooks {
    pub fn get(&self, family: Family) -> &[String] {
        match family {
            Family::V4 => &self.v4,
            Family::V6 => &self.v6,
        }
    }

    fn set(&mut self, family: Family, chains: Vec<String>) {
        match family {
            Family::V4 => self.v4 = chains,
            Family::V6 => self.v6 = chains,
        }
    }
}

/// `IPv4 from INPUT, DOCKER-USER; IPv6 from INPUT` (or `IPv6 not hooked`).
impl fmt::Display for Hooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, family) in Family::BOTH.into_iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            match self.get(family) {
                [] => write!(f, "{family} not hooked")?,
                chains => write!(f, "{family} from {}", chains.join(", "))?,
            }
        }
        Ok(())
    }
}

/// What one reconcile did in one family.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FamilyOutcome {
    pub added: usize,
    pub removed: usize,
    /// Chains that jump into bouncer's set or chain.
    pub hooks: Vec<String>,
    /// What failed; empty means this family's kernel state is what bouncer wants.
    pub errors: Vec<String>,
}

/// What one reconcile did, per family.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    pub v4: FamilyOutcome,
    pub v6: FamilyOutcome,
}

impl Outcome {
    pub fn get(&self, family: Family) -> &FamilyOutcome {
        match family {
            Family::V4 => &self.v4,
            Family::V6 => &self.v6,
        }
    }

    fn get_mut(&mut self, family: Family) -> &mut FamilyOutcome {
        match family {
            Family::V4 => &mut self.v4,
            Family::V6 => &mut self.v6,
        }
    }

    pub fn added(&self) -> usize {
        self.v4.added + self.v6.added
    }

    pub fn removed(&self) -> usize {
        self.v4.removed + self.v6.removed
    }

    /// Every failure, with its family.
    pub fn errors(&self) -> impl Iterator<Item = (Family, &str)> {
        Family::BOTH
            .into_iter()
            .flat_map(move |f| self.get(f).errors.iter().map(move |e| (f, e.as_str())))
    }

    pub fn is_ok(&self) -> bool {
        self.errors().next().is_none()
    }
}

/// One backend, one family at a time. Every method is idempotent.
pub trait Firewall: Send {
    /// Create bouncer's set (or chain) for `family` if it is missing.
    fn ensure_set(&mut self, family: Family) -> Result<(), String>;
    /// Whether `chain` exists in `family`'s filter table.
    fn chain_exists(&mut self, family: Family, chain: &str) -> bool;
    /// Make `chain` send traffic through bouncer's set or chain, once.
    fn ensure_hook(&mut self, family: Family, chain: &str) -> Result<(), String>;
    /// Addresses the kernel currently drops through bouncer's set or chain, with their mark.
    fn present(&mut self, family: Family) -> Result<BTreeMap<IpAddr, Mark>, String>;
    /// Add `ips` (all of `family`) with bouncer's mark.
    fn add(&mut self, family: Family, ips: &[IpAddr]) -> Result<(), String>;
    /// Remove `ips` (all of `family`); a missing entry is not an error.
    fn remove(&mut self, family: Family, ips: &[IpAddr]) -> Result<(), String>;
    fn describe(&self) -> String;
}

/// A boxed backend is a backend (what `follow` holds: the backend is chosen at run time).
impl<F: Firewall + ?Sized> Firewall for Box<F> {
    fn ensure_set(&mut self, family: Family) -> Result<(), String> {
        (**self).ensure_set(family)
    }
    fn chain_exists(&mut self, family: Family, chain: &str) -> bool {
        (**self).chain_exists(family, chain)
    }
    fn ensure_hook(&mut self, family: Family, chain: &str) -> Result<(), String> {
        (**self).ensure_hook(family, chain)
    }
    fn present(&mut self, family: Family) -> Result<BTreeMap<IpAddr, Mark>, String> {
        (**self).present(family)
    }
    fn add(&mut self, family: Family, ips: &[IpAddr]) -> Result<(), String> {
        (**self).add(family, ips)
    }
    fn remove(&mut self, family: Family, ips: &[IpAddr]) -> Result<(), String> {
        (**self).remove(family, ips)
    }
    fn describe(&self) -> String {
        (**self).describe()
    }
}

/// Drives a [`Firewall`] towards a desired ban set, family by family, removing only what it
/// owns (see the module doc).
pub struct Enforcer<F: Firewall = Box<dyn Firewall>> {
    fw: F,
    plan: HookPlan,
    ownership: Ownership,
    owned: BTreeSet<IpAddr>,
    hooks: Hooks,
}

impl<F: Firewall> Enforcer<F> {
    pub fn new(fw: F, plan: HookPlan, ownership: Ownership) -> Enforcer<F> {
        Enforcer {
            fw,
            plan,
            ownership,
            owned: BTreeSet::new(),
            hooks: Hooks::default(),
        }
    }

    /// Continue from the [`Enforcer::owned`] an earlier run saved.
    pub fn with_owned(mut self, owned: BTreeSet<IpAddr>) -> Enforcer<F> {
        self.owned = owned.into_iter().map(crate::parse::normalize_ip).collect();
        self
    }

    /// Entries this enforcer added and still finds in the kernel with its mark: what a restart
    /// must get back ([`Enforcer::with_owned`]) to lift them when their bans end.
    pub fn owned(&self) -> &BTreeSet<IpAddr> {
        &self.owned
    }

    /// The backend (tests look into a [`Recording`] through it).
    pub fn firewall(&mut self) -> &mut F {
        &mut self.fw
    }

    /// Hooks in place after the last reconcile (empty before the first).
    pub fn hooks(&self) -> &Hooks {
        &self.hooks
    }

    /// `ipset bouncer4/bouncer6` etc., plus the ownership mode.
    pub fn describe(&self) -> String {
        match self.ownership {
            Ownership::Ours => self.fw.describe(),
            Ownership::WholeSet => format!("{} (owning all of it: --own-set)", self.fw.describe()),
        }
    }

    /// Make the kernel drop `desired`: per family, set and hooks first (also the repair after a
    /// flush), then add what is missing and remove what is ours and no longer wanted.
    pub fn reconcile(&mut self, desired: &BTreeSet<IpAddr>) -> Outcome {
        let mut outcome = Outcome::default();
        for family in Family::BOTH {
            let want: BTreeSet<IpAddr> = desired
                .iter()
                .map(|ip| crate::parse::normalize_ip(*ip))
                .filter(|ip| Family::of(ip) == family)
                .collect();
            let out = outcome.get_mut(family);
            self.reconcile_family(family, &want, out);
            self.hooks.set(family, out.hooks.clone());
        }
        outcome
    }

    fn reconcile_family(
        &mut self,
        family: Family,
        want: &BTreeSet<IpAddr>,
        out: &mut FamilyOutcome,
    ) {
        if let Err(e) = self.fw.ensure_set(family) {
            out.errors.push(e);
            return;
        }
        for chain in self.chains(family) {
            match self.fw.ensure_hook(family, &chain) {
                Ok(()) => out.hooks.push(chain),
                Err(e) => out.errors.push(e),
            }
        }
        let present = match self.fw.present(family) {
            Ok(p) => p,
            Err(e) => {
                out.errors.push(e);
                return;
            }
        };
        self.adopt(family, &present, want);
        let add: Vec<IpAddr> = want
            .iter()
            .filter(|ip| !present.contains_key(ip))
            .copied()
            .collect();
        let remove: Vec<IpAddr> = present
            .keys()
            .filter(|ip| !want.contains(ip))
            .filter(|ip| self.ownership == Ownership::WholeSet || self.owned.contains(ip))
            .copied()
            .collect();
        if !add.is_empty() {
            match self.fw.add(family, &add) {
                Ok(()) => {
                    out.added = add.len();
                    self.owned.extend(&add);
                }
                Err(e) => {
                    out.errors.push(e);
                    // Part of a batch may have landed: those carry our mark, so they are ours.
                    if let Ok(now) = self.fw.present(family) {
                        let landed = add.iter().filter(|ip| now.get(ip) == Some(&Mark::Bouncer));
                        self.owned.extend(landed);
                    }
                }
            }
        }
        if !remove.is_empty() {
            match self.fw.remove(family, &remove) {
                Ok(()) => {
                    out.removed = remove.len();
                    for ip in &remove {
                        self.owned.remove(ip);
                    }
                }
                Err(e) => out.errors.push(e),
            }
        }
    }

    /// Forget owned entries that are gone or no longer carry our mark (flushed, removed by
    /// hand, replaced by a `bans.ipset` load); adopt wanted entries that carry our mark.
    fn adopt(&mut self, family: Family, present: &BTreeMap<IpAddr, Mark>, want: &BTreeSet<IpAddr>) {
        self.owned.retain(|ip| {
            Family::of(ip) != family
                || matches!(present.get(ip), Some(Mark::Bouncer | Mark::Unknown))
        });
        let ours = want
            .iter()
            .filter(|ip| present.get(ip) == Some(&Mark::Bouncer));
        self.owned.extend(ours);
    }

    fn chains(&mut self, family: Family) -> Vec<String> {
        match &self.plan {
            HookPlan::Only(chain) => vec![chain.clone()],
            HookPlan::Auto => {
                let mut v = vec!["INPUT".to_owned()];
                if self.fw.chain_exists(family, DOCKER_USER) {
                    v.push(DOCKER_USER.to_owned());
                }
                v
            }
        }
    }
}

/// Remove `ips` from the kernel now, whoever added them: `bouncer unban` when no `follow` runs
/// (the operator named them). Both families are tried; the errors are joined.
pub fn lift(fw: &mut dyn Firewall, ips: &[IpAddr]) -> Result<(), String> {
    let mut errors = Vec::new();
    for family in Family::BOTH {
        let list: Vec<IpAddr> = ips
            .iter()
            .map(|ip| crate::parse::normalize_ip(*ip))
            .filter(|ip| Family::of(ip) == family)
            .collect();
        if !list.is_empty() {
            if let Err(e) = fw.remove(family, &list) {
                errors.push(format!("{family}: {e}"));
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// ipset sets bouncer4/bouncer6 and one match rule per family and hook (scales to 100 k+ bans).
    Ipset,
    /// Own chain with one DROP rule per IP (no ipset needed).
    Iptables,
}

/// The real backend for `backend`.
pub fn kernel(backend: Backend, opts: RulesetOptions, exec: Exec) -> Box<dyn Firewall> {
    match backend {
        Backend::Ipset => Box::new(Ipset::new(opts, exec)),
        Backend::Iptables => Box::new(Iptables::new(opts, exec)),
    }
}

/// How the firewall tools are started: directly, or under a wrapper such as
/// `ip netns exec NAME` (the integration tests run every command inside their namespace).
#[derive(Debug, Clone, Default)]
pub struct Exec {
    wrapper: Vec<String>,
}

impl Exec {
    pub fn host() -> Exec {
        Exec::default()
    }

    /// Start every tool as `wrapper… tool args…`.
    pub fn wrapped(wrapper: Vec<String>) -> Exec {
        Exec { wrapper }
    }

    /// Run a command (never a shell), optionally feeding stdin; error text names the command.
    fn run(&self, cmd: &str, args: &[&str], stdin: Option<&str>) -> Result<String, String> {
        let mut c = match self.wrapper.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(cmd);
                c
            }
            None => Command::new(cmd),
        };
        c.args(args).stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = c.spawn().map_err(|e| format!("{cmd}: cannot run: {e}"))?;
        if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(text.as_bytes())
                .map_err(|e| format!("{cmd}: writing input: {e}"))?;
        }
        let out = child
            .wait_with_output()
            .map_err(|e| format!("{cmd}: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!(
                "{cmd} {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    fn chain_exists(&self, family: Family, chain: &str) -> bool {
        self.run(family.iptables(), &["-w", "-S", chain], None)
            .is_ok()
    }

    /// `bin -C spec || bin -I spec`: one copy of the rule, at the top of its chain.
    fn ensure_rule(&self, family: Family, spec: &[String]) -> Result<(), String> {
        let bin = family.iptables();
        let spec: Vec<&str> = spec.iter().map(String::as_str).collect();
        let mut check = vec!["-w", "-C"];
        check.extend(&spec);
        if self.run(bin, &check, None).is_ok() {
            return Ok(());
        }
        let mut insert = vec!["-w", "-I"];
        insert.extend(&spec);
        self.run(bin, &insert, None).map(|_| ())
    }
}

/// `opts` with `chain` as the hook chain.
fn hooked_from(opts: &RulesetOptions, chain: &str) -> RulesetOptions {
    RulesetOptions {
        hook_chain: chain.to_owned(),
        ..opts.clone()
    }
}

/// Backend `ipset`: sets `<name>4`/`<name>6`, created with exactly the options `bans.ipset`
/// uses ([`rulesets::ipset_create_options`]), so either may come first; one match rule per
/// family and hook.
pub struct Ipset {
    opts: RulesetOptions,
    exec: Exec,
    /// Per family, once checked: what the live set supports. A set made by an older bouncer
    /// may keep no comments (entries then go in without our mark) or no timeouts.
    features: BTreeMap<Family, SetFeatures>,
}

/// Extensions of an existing ipset that bouncer uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SetFeatures {
    comments: bool,
    timeouts: bool,
}

impl SetFeatures {
    /// Ours: [`rulesets::ipset_create_options`].
    const OURS: SetFeatures = SetFeatures {
        comments: true,
        timeouts: true,
    };
}

impl Ipset {
    pub fn new(opts: RulesetOptions, exec: Exec) -> Ipset {
        Ipset {
            opts,
            exec,
            features: BTreeMap::new(),
        }
    }

    fn set(&self, family: Family) -> String {
        rulesets::ipset_set_name(&self.opts, family.is_v6())
    }

    fn features(&self, family: Family) -> SetFeatures {
        self.features
            .get(&family)
            .copied()
            .unwrap_or(SetFeatures::OURS)
    }

    /// An existing set we did not create with our options: usable when it is a `hash:ip` of the
    /// right family. Returns the extensions it has.
    fn adopt_existing(&self, family: Family) -> Result<SetFeatures, String> {
        let set = self.set(family);
        let header = self.exec.run("ipset", &["list", "-t", &set], None)?;
        let field = |name: &str| {
            header
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(str::trim)
                .unwrap_or("")
                .to_owned()
        };
        let (kind, head) = (field("Type:"), field("Header:"));
        let words: Vec<&str> = head.split_whitespace().collect();
        let family_ok = words
            .windows(2)
            .any(|w| w == ["family", if family.is_v6() { "inet6" } else { "inet" }]);
        if kind != "hash:ip" || !family_ok {
            return Err(format!(
                "ipset {set} exists as {kind} ({head}), not as bouncer's hash:ip {family} set; \
                 rename or destroy it"
            ));
        }
        Ok(SetFeatures {
            comments: words.contains(&"comment"),
            timeouts: words.contains(&"timeout"),
        })
    }
}

impl Firewall for Ipset {
    fn ensure_set(&mut self, family: Family) -> Result<(), String> {
        let set = self.set(family);
        let mut args = vec!["-exist".to_owned(), "create".to_owned(), set];
        args.extend(rulesets::ipset_create_options(family.is_v6()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let features = match self.exec.run("ipset", &args, None) {
            Ok(_) => SetFeatures::OURS,
            // Exists with other options (an older bouncer's set): use it as it is.
            Err(create) => self
                .adopt_existing(family)
                .map_err(|e| format!("{create}; {e}"))?,
        };
        self.features.insert(family, features);
        Ok(())
    }

    fn chain_exists(&mut self, family: Family, chain: &str) -> bool {
        self.exec.chain_exists(family, chain)
    }

    fn ensure_hook(&mut self, family: Family, chain: &str) -> Result<(), String> {
        let spec = ipset_match_rule(&hooked_from(&self.opts, chain), family.is_v6());
        self.exec.ensure_rule(family, &spec)
    }

    fn present(&mut self, family: Family) -> Result<BTreeMap<IpAddr, Mark>, String> {
        let set = self.set(family);
        let comments = self.features(family).comments;
        let out = self
            .exec
            .run("ipset", &["list", &set, "-output", "save"], None)?;
        Ok(out
            .lines()
            .filter_map(|l| {
                let rest = l.strip_prefix("add ")?;
                let ip: IpAddr = rest.split_whitespace().nth(1)?.parse().ok()?;
                let mark = if !comments {
                    Mark::Unknown
                } else if rest.contains(&format!(" comment \"{MARK}\"")) {
                    Mark::Bouncer
                } else {
                    Mark::Other
                };
                Some((ip, mark))
            })
            .collect())
    }

    fn add(&mut self, family: Family, ips: &[IpAddr]) -> Result<(), String> {
        let set = self.set(family);
        // Permanent in the kernel: follow lifts its bans itself, on its schedule.
        let features = self.features(family);
        let mut extra = String::new();
        if features.timeouts {
            extra.push_str(" timeout 0");
        }
        if features.comments {
            extra.push_str(&format!(" comment \"{MARK}\""));
        }
        let script: String = ips
            .iter()
            .map(|ip| format!("add {set} {ip}{extra} -exist\n"))
            .collect();
        self.exec
            .run("ipset", &["restore"], Some(&script))
            .map(|_| ())
    }

    fn remove(&mut self, family: Family, ips: &[IpAddr]) -> Result<(), String> {
        let set = self.set(family);
        let script: String = ips
            .iter()
            .map(|ip| format!("del {set} {ip} -exist\n"))
            .collect();
        self.exec
            .run("ipset", &["restore"], Some(&script))
            .map(|_| ())
    }

    fn describe(&self) -> String {
        format!("ipset {}/{}", self.set(Family::V4), self.set(Family::V6))
    }
}

/// Backend `iptables`: chain `BOUNCER` with one DROP per IP, jumped to from each hook chain.
pub struct Iptables {
    opts: RulesetOptions,
    exec: Exec,
}

impl Iptables {
    pub fn new(opts: RulesetOptions, exec: Exec) -> Iptables {
        Iptables { opts, exec }
    }

    fn chain(&self) -> String {
        hook_rule(&self.opts)[2].clone()
    }

    fn prefix(family: Family) -> u8 {
        if family.is_v6() {
            128
        } else {
            32
        }
    }
}

impl Firewall for Iptables {
    fn ensure_set(&mut self, family: Family) -> Result<(), String> {
        let chain = self.chain();
        if self.exec.chain_exists(family, &chain) {
            return Ok(());
        }
        self.exec
            .run(family.iptables(), &["-w", "-N", &chain], None)
            .map(|_| ())
    }

    fn chain_exists(&mut self, family: Family, chain: &str) -> bool {
        self.exec.chain_exists(family, chain)
    }

    fn ensure_hook(&mut self, family: Family, chain: &str) -> Result<(), String> {
        self.exec
            .ensure_rule(family, &hook_rule(&hooked_from(&self.opts, chain)))
    }

    fn present(&mut self, family: Family) -> Result<BTreeMap<IpAddr, Mark>, String> {
        let chain = self.chain();
        let out = self
            .exec
            .run(family.iptables(), &["-w", "-S", &chain], None)?;
        let marked = format!(" -m comment --comment {MARK} -j DROP");
        let marked_quoted = format!(" -m comment --comment \"{MARK}\" -j DROP");
        Ok(out
            .lines()
            .filter(|l| l.starts_with("-A ") && l.ends_with(" -j DROP"))
            .filter_map(|l| {
                let src = l.split_whitespace().skip_while(|w| *w != "-s").nth(1)?;
                let ip: IpAddr = src.split('/').next()?.parse().ok()?;
                let mark = if l.ends_with(&marked) || l.ends_with(&marked_quoted) {
                    Mark::Bouncer
                } else {
                    Mark::Other
                };
                Some((ip, mark))
            })
            .collect())
    }

    fn add(&mut self, family: Family, ips: &[IpAddr]) -> Result<(), String> {
        let chain = self.chain();
        let prefix = Self::prefix(family);
        let body: String = ips
            .iter()
            .map(|ip| format!("-A {chain} -s {ip}/{prefix} -m comment --comment {MARK} -j DROP\n"))
            .collect();
        let bin = format!("{}-restore", family.iptables());
        self.exec
            .run(
                &bin,
                &["-w", "--noflush"],
                Some(&format!("*filter\n{body}COMMIT\n")),
            )
            .map(|_| ())
    }

    fn remove(&mut self, family: Family, ips: &[IpAddr]) -> Result<(), String> {
        // One by one, so a rule already gone cannot abort the others.
        let chain = self.chain();
        for ip in ips {
            let src = format!("{ip}/{}", Self::prefix(family));
            let _ = self.exec.run(
                family.iptables(),
                &[
                    "-w",
                    "-D",
                    &chain,
                    "-s",
                    &src,
                    "-m",
                    "comment",
                    "--comment",
                    MARK,
                    "-j",
                    "DROP",
                ],
                None,
            );
        }
        Ok(())
    }

    fn describe(&self) -> String {
        format!("iptables chain {}", self.chain())
    }
}

/// In-memory firewall: `--dry-run` and unit tests. Records every change.
#[derive(Debug)]
pub struct Recording {
    /// What the "kernel" holds, with marks.
    pub set: BTreeMap<IpAddr, Mark>,
    /// Chains that exist, per family (`INPUT` in both by default).
    pub chains: BTreeSet<(Family, String)>,
    /// Hooks installed.
    pub hooks: BTreeSet<(Family, String)>,
    /// Families whose every operation fails (to test that the other family goes on).
    pub broken: BTreeSet<Family>,
    pub calls: Vec<String>,
}

impl Default for Recording {
    fn default() -> Self {
        Recording {
            set: BTreeMap::new(),
            chains: Family::BOTH
                .into_iter()
                .map(|f| (f, "INPUT".to_owned()))
                .collect(),
            hooks: BTreeSet::new(),
            broken: BTreeSet::new(),
            calls: Vec::new(),
        }
    }
}

impl Recording {
    fn check(&self, family: Family, what: &str) -> Result<(), String> {
        if self.broken.contains(&family) {
            Err(format!("{what}: {family} is broken"))
        } else {
            Ok(())
        }
    }
}

impl Firewall for Recording {
    fn ensure_set(&mut self, family: Family) -> Result<(), String> {
        self.check(family, "ensure_set")
    }

    fn chain_exists(&mut self, family: Family, chain: &str) -> bool {
        self.chains.contains(&(family, chain.to_owned()))
    }

    fn ensure_hook(&mut self, family: Family, chain: &str) -> Result<(), String> {
        self.check(family, "ensure_hook")?;
        if !self.chain_exists(family, chain) {
            return Err(format!(
                "{family} {chain}: No chain/target/match by that name"
            ));
        }
        self.hooks.insert((family, chain.to_owned()));
        Ok(())
    }

    fn present(&mut self, family: Family) -> Result<BTreeMap<IpAddr, Mark>, String> {
        self.check(family, "present")?;
        Ok(self
            .set
            .iter()
            .filter(|(ip, _)| Family::of(ip) == family)
            .map(|(ip, m)| (*ip, *m))
            .collect())
    }

    fn add(&mut self, family: Family, ips: &[IpAddr]) -> Result<(), String> {
        self.check(family, "add")?;
        self.calls.push(format!("add {ips:?}"));
        self.set.extend(ips.iter().map(|ip| (*ip, Mark::Bouncer)));
        Ok(())
    }

    fn remove(&mut self, family: Family, ips: &[IpAddr]) -> Result<(), String> {
        self.check(family, "remove")?;
        self.calls.push(format!("remove {ips:?}"));
        for ip in ips {
            self.set.remove(ip);
        }
        Ok(())
    }

    fn describe(&self) -> String {
        "dry run (nothing is touched)".into()
    }
}

/// ipset when the tool is there, else iptables.
pub fn default_backend() -> Backend {
    if Exec::host().run("ipset", &["version"], None).is_ok() {
        Backend::Ipset
    } else {
        Backend::Iptables
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn enforcer(fw: Recording, plan: HookPlan, ownership: Ownership) -> Enforcer<Recording> {
        Enforcer::new(fw, plan, ownership)
    }

    #[test]
    fn reconcile_adds_missing_and_removes_what_it_added() {
        let mut e = enforcer(Recording::default(), HookPlan::Auto, Ownership::Ours);
        let a = ip("203.0.113.1");
        let b = ip("2001:db8::2");
        let out = e.reconcile(&[a, b].into());
        assert_eq!((out.added(), out.removed()), (2, 0));
        assert!(out.is_ok());
        assert_eq!(e.owned(), &[a, b].into());
        let out = e.reconcile(&[a].into());
        assert_eq!((out.added(), out.removed()), (0, 1));
        assert_eq!(e.firewall().set.keys().copied().collect::<Vec<_>>(), [a]);
        assert_eq!(
            e.reconcile(&[a].into()),
            {
                let mut same = Outcome::default();
                same.v4.hooks = vec!["INPUT".into()];
                same.v6.hooks = vec!["INPUT".into()];
                same
            },
            "idempotent"
        );
    }

    #[test]
    fn bans_it_did_not_add_are_left_alone() {
        // Regression (issue 12, 5): follow without state emptied the set at start, and every
        // reconcile removed entries an admin had added by hand.
        let admin = ip("198.51.100.7");
        let file = ip("198.51.100.8");
        let earlier_run = ip("198.51.100.9");
        let mut fw = Recording::default();
        fw.set.insert(admin, Mark::Other);
        fw.set.insert(file, Mark::Other);
        fw.set.insert(earlier_run, Mark::Bouncer);
        let mut e = enforcer(fw, HookPlan::Auto, Ownership::Ours);
        let out = e.reconcile(&BTreeSet::new());
        assert_eq!((out.added(), out.removed()), (0, 0));
        let mine = ip("203.0.113.1");
        e.reconcile(&[mine].into());
        let out = e.reconcile(&BTreeSet::new());
        assert_eq!(out.removed(), 1);
        let left: Vec<IpAddr> = e.firewall().set.keys().copied().collect();
        assert_eq!(left, [admin, file, earlier_run]);
    }

    #[test]
    fn a_wanted_entry_loaded_from_a_file_stays_the_files() {
        let x = ip("192.0.2.10");
        let mut fw = Recording::default();
        fw.set.insert(x, Mark::Other);
        let mut e = enforcer(fw, HookPlan::Auto, Ownership::Ours);
        assert_eq!(e.reconcile(&[x].into()).added(), 0, "already dropped");
        assert!(e.owned().is_empty(), "not ours");
        assert_eq!(e.reconcile(&BTreeSet::new()).removed(), 0);
        assert!(e.firewall().set.contains_key(&x));
    }

    #[test]
    fn our_marked_wanted_entries_are_adopted_and_replaced_ones_are_forgotten() {
        let x = ip("192.0.2.10");
        let mut fw = Recording::default();
        fw.set.insert(x, Mark::Bouncer); // an earlier run's ban, still wanted after a restart
        let mut e = enforcer(fw, HookPlan::Auto, Ownership::Ours);
        e.reconcile(&[x].into());
        assert_eq!(e.owned(), &[x].into());
        // A `bans.ipset` load replaced the entry (now the file's): no longer ours.
        e.firewall().set.insert(x, Mark::Other);
        e.reconcile(&[x].into());
        assert!(e.owned().is_empty());
        assert_eq!(e.reconcile(&BTreeSet::new()).removed(), 0);
        assert!(e.firewall().set.contains_key(&x));
    }

    #[test]
    fn own_set_takes_over_everything() {
        let mut fw = Recording::default();
        fw.set.insert(ip("198.51.100.7"), Mark::Other);
        let mut e = enforcer(fw, HookPlan::Auto, Ownership::WholeSet);
        let keep = ip("203.0.113.1");
        let out = e.reconcile(&[keep].into());
        assert_eq!((out.added(), out.removed()), (1, 1));
        assert_eq!(e.firewall().set.keys().copied().collect::<Vec<_>>(), [keep]);
    }

    #[test]
    fn one_family_failing_never_stops_the_other() {
        // Regression (issue 12, 2): an ip6tables error aborted the whole reconcile.
        let mut fw = Recording::default();
        fw.broken.insert(Family::V6);
        let mut e = enforcer(fw, HookPlan::Auto, Ownership::Ours);
        let v4 = ip("203.0.113.1");
        let v6 = ip("2001:db8::1");
        let out = e.reconcile(&[v4, v6].into());
        assert_eq!(out.v4.added, 1);
        assert!(out.v4.errors.is_empty());
        assert_eq!(out.v6.added, 0);
        assert_eq!(
            out.errors().map(|(f, _)| f).collect::<Vec<_>>(),
            [Family::V6]
        );
        assert!(e.firewall().set.contains_key(&v4));
        assert_eq!(e.hooks().to_string(), "IPv4 from INPUT; IPv6 not hooked");
    }

    #[test]
    fn docker_user_is_hooked_next_to_input_where_it_exists() {
        // Regression (issue 12, 1): DOCKER-USER replaced INPUT, leaving host services open.
        let mut fw = Recording::default();
        fw.chains.insert((Family::V4, DOCKER_USER.into()));
        let mut e = enforcer(fw, HookPlan::Auto, Ownership::Ours);
        let out = e.reconcile(&[ip("203.0.113.1")].into());
        assert!(out.is_ok(), "{out:?}");
        assert_eq!(out.v4.hooks, ["INPUT", DOCKER_USER]);
        assert_eq!(out.v6.hooks, ["INPUT"]);
        assert_eq!(
            e.hooks().to_string(),
            "IPv4 from INPUT, DOCKER-USER; IPv6 from INPUT"
        );
        assert_eq!(e.firewall().hooks.len(), 3);
    }

    #[test]
    fn an_explicit_chain_missing_in_one_family_is_that_familys_error() {
        let mut fw = Recording::default();
        fw.chains.insert((Family::V4, DOCKER_USER.into()));
        let mut e = enforcer(fw, HookPlan::Only(DOCKER_USER.into()), Ownership::Ours);
        let out = e.reconcile(&[ip("203.0.113.1"), ip("2001:db8::1")].into());
        assert_eq!(out.v4.hooks, [DOCKER_USER]);
        assert!(out.v4.errors.is_empty());
        assert_eq!(out.v6.added, 1, "the set is filled even while unhooked");
        assert!(out.v6.errors[0].contains("No chain"), "{out:?}");
    }

    #[test]
    fn mapped_addresses_are_ipv4() {
        let mut e = enforcer(Recording::default(), HookPlan::Auto, Ownership::Ours);
        let out = e.reconcile(&[ip("::ffff:192.0.2.1")].into());
        assert_eq!((out.v4.added, out.v6.added), (1, 0));
        assert!(e.firewall().set.contains_key(&ip("192.0.2.1")));
        assert_eq!(Family::of(&ip("::ffff:192.0.2.1")), Family::V4);
    }

    #[test]
    fn lift_removes_named_entries_in_both_families() {
        let mut fw = Recording::default();
        fw.set.insert(ip("192.0.2.1"), Mark::Other);
        fw.set.insert(ip("2001:db8::1"), Mark::Bouncer);
        lift(&mut fw, &[ip("192.0.2.1"), ip("2001:db8::1")]).unwrap();
        assert!(fw.set.is_empty());
        fw.broken.insert(Family::V6);
        let e = lift(&mut fw, &[ip("2001:db8::1")]).unwrap_err();
        assert!(e.starts_with("IPv6: "), "{e}");
    }
}
