//! Enforcement: the host firewall as a set of banned addresses.
//!
//! [`Firewall`] is small on purpose: make sure our rules exist, make the kernel's ban set equal
//! a desired set, read back what the kernel has. The real backends run `ipset`, `iptables`,
//! `ip6tables` and their `restore` variants with argument vectors built from validated
//! [`IpAddr`]s and fixed names. No shell is ever spawned. Batches go through `ipset restore` /
//! `iptables-restore --noflush` on stdin. [`Recording`] keeps the same state in memory for unit
//! tests and `--dry-run`. Integration tests use the real tools in a network namespace.

use super::rulesets::{hook_rule, ipset_match_rule, RulesetOptions};
use std::collections::BTreeSet;
use std::io::Write;
use std::net::IpAddr;
use std::process::{Command, Stdio};

pub trait Firewall: Send {
    /// Create sets/chains and the rule that sends traffic through them; idempotent (also the
    /// repair step after someone flushed the firewall).
    fn ensure_setup(&mut self) -> Result<(), String>;
    /// Addresses the kernel currently drops.
    fn present(&mut self) -> Result<BTreeSet<IpAddr>, String>;
    fn add(&mut self, ips: &[IpAddr]) -> Result<(), String>;
    fn remove(&mut self, ips: &[IpAddr]) -> Result<(), String>;
    fn describe(&self) -> String;
}

/// Make the kernel match `desired`: setup, then add what is missing and remove what is extra.
/// Returns (added, removed).
pub fn reconcile(
    fw: &mut dyn Firewall,
    desired: &BTreeSet<IpAddr>,
) -> Result<(usize, usize), String> {
    fw.ensure_setup()?;
    let present = fw.present()?;
    let add: Vec<IpAddr> = desired.difference(&present).copied().collect();
    let remove: Vec<IpAddr> = present.difference(desired).copied().collect();
    if !add.is_empty() {
        fw.add(&add)?;
    }
    if !remove.is_empty() {
        fw.remove(&remove)?;
    }
    Ok((add.len(), remove.len()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// ipset sets bouncer4/bouncer6 and one match rule per family (scales to 100 k+ bans).
    Ipset,
    /// Own chain with one DROP rule per IP (no ipset needed).
    Iptables,
}

/// Run a command (never a shell), optionally feeding stdin; error text names the command.
fn run(cmd: &str, args: &[&str], stdin: Option<&str>) -> Result<String, String> {
    let mut c = Command::new(cmd);
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

fn ensure_rule(bin: &str, spec: &[String]) -> Result<(), String> {
    let spec: Vec<&str> = spec.iter().map(String::as_str).collect();
    let mut check = vec!["-w", "-C"];
    check.extend(&spec);
    if run(bin, &check, None).is_ok() {
        return Ok(());
    }
    let mut insert = vec!["-w", "-I"];
    insert.extend(&spec);
    run(bin, &insert, None).map(|_| ())
}

fn split(ips: &[IpAddr]) -> (Vec<IpAddr>, Vec<IpAddr>) {
    ips.iter()
        .copied()
        .map(crate::parse::normalize_ip)
        .partition(|ip| ip.is_ipv4())
}

/// Backend `ipset`: sets `<name>4`/`<name>6` (hash:ip, maxelem 1 Mi) and a match rule.
pub struct Ipset {
    pub opts: RulesetOptions,
}

impl Ipset {
    fn set(&self, v6: bool) -> String {
        format!("{}{}", self.opts.set_name, if v6 { 6 } else { 4 })
    }

    /// One `ipset restore` batch: `op` (`add`/`del`) every address into its family's set.
    fn script(&self, op: &str, ips: &[IpAddr]) -> String {
        let (v4, v6) = split(ips);
        let mut script = String::new();
        for (list, is6) in [(v4, false), (v6, true)] {
            for ip in list {
                script.push_str(&format!("{op} {} {ip} -exist\n", self.set(is6)));
            }
        }
        script
    }
}

impl Firewall for Ipset {
    fn ensure_setup(&mut self) -> Result<(), String> {
        for v6 in [false, true] {
            let family = if v6 { "inet6" } else { "inet" };
            run(
                "ipset",
                &[
                    "-exist",
                    "create",
                    &self.set(v6),
                    "hash:ip",
                    "family",
                    family,
                    "maxelem",
                    "1048576",
                ],
                None,
            )?;
            ensure_rule(
                if v6 { "ip6tables" } else { "iptables" },
                &ipset_match_rule(&self.opts, v6),
            )?;
        }
        Ok(())
    }

    fn present(&mut self) -> Result<BTreeSet<IpAddr>, String> {
        let mut all = BTreeSet::new();
        for v6 in [false, true] {
            let out = run("ipset", &["list", &self.set(v6), "-output", "save"], None)?;
            all.extend(out.lines().filter_map(|l| {
                l.strip_prefix("add ")?
                    .split_whitespace()
                    .nth(1)?
                    .parse::<IpAddr>()
                    .ok()
            }));
        }
        Ok(all)
    }

    fn add(&mut self, ips: &[IpAddr]) -> Result<(), String> {
        run("ipset", &["restore"], Some(&self.script("add", ips))).map(|_| ())
    }

    fn remove(&mut self, ips: &[IpAddr]) -> Result<(), String> {
        run("ipset", &["restore"], Some(&self.script("del", ips))).map(|_| ())
    }

    fn describe(&self) -> String {
        format!(
            "ipset {}/{} matched from {}",
            self.set(false),
            self.set(true),
            self.opts.hook_chain
        )
    }
}

/// Backend `iptables`: chain `BOUNCER` with one DROP per IP, jumped to from the hook chain.
pub struct Iptables {
    pub opts: RulesetOptions,
}

impl Iptables {
    fn restore(&self, v6: bool, body: &str) -> Result<(), String> {
        let bin = if v6 {
            "ip6tables-restore"
        } else {
            "iptables-restore"
        };
        run(
            bin,
            &["-w", "--noflush"],
            Some(&format!("*filter\n{body}COMMIT\n")),
        )
        .map(|_| ())
    }

    fn rule(&self, op: &str, ip: &IpAddr) -> String {
        let prefix = if ip.is_ipv4() { 32 } else { 128 };
        format!(
            "{op} {} -s {ip}/{prefix} -m comment --comment bouncer -j DROP\n",
            self.opts.ban_chain
        )
    }
}

impl Firewall for Iptables {
    fn ensure_setup(&mut self) -> Result<(), String> {
        for bin in ["iptables", "ip6tables"] {
            if run(bin, &["-w", "-S", &self.opts.ban_chain], None).is_err() {
                run(bin, &["-w", "-N", &self.opts.ban_chain], None)?;
            }
            ensure_rule(bin, &hook_rule(&self.opts))?;
        }
        Ok(())
    }

    fn present(&mut self) -> Result<BTreeSet<IpAddr>, String> {
        let mut all = BTreeSet::new();
        for bin in ["iptables", "ip6tables"] {
            let out = run(bin, &["-w", "-S", &self.opts.ban_chain], None)?;
            for l in out
                .lines()
                .filter(|l| l.starts_with("-A ") && l.contains(" -j DROP"))
            {
                let mut words = l.split_whitespace();
                if let Some(src) = words.by_ref().skip_while(|w| *w != "-s").nth(1) {
                    if let Some(ip) = src.split('/').next().and_then(|s| s.parse::<IpAddr>().ok()) {
                        all.insert(ip);
                    }
                }
            }
        }
        Ok(all)
    }

    fn add(&mut self, ips: &[IpAddr]) -> Result<(), String> {
        let (v4, v6) = split(ips);
        for (list, is6) in [(v4, false), (v6, true)] {
            if !list.is_empty() {
                self.restore(
                    is6,
                    &list
                        .iter()
                        .map(|ip| self.rule("-A", ip))
                        .collect::<String>(),
                )?;
            }
        }
        Ok(())
    }

    fn remove(&mut self, ips: &[IpAddr]) -> Result<(), String> {
        // Delete one by one so an already-missing rule cannot abort the whole batch.
        for ip in ips {
            let bin = if ip.is_ipv4() {
                "iptables"
            } else {
                "ip6tables"
            };
            let prefix = if ip.is_ipv4() { "32" } else { "128" };
            let src = format!("{ip}/{prefix}");
            let _ = run(
                bin,
                &[
                    "-w",
                    "-D",
                    &self.opts.ban_chain,
                    "-s",
                    &src,
                    "-m",
                    "comment",
                    "--comment",
                    "bouncer",
                    "-j",
                    "DROP",
                ],
                None,
            );
        }
        Ok(())
    }

    fn describe(&self) -> String {
        format!(
            "iptables chain {} jumped to from {}",
            self.opts.ban_chain, self.opts.hook_chain
        )
    }
}

/// In-memory firewall: `--dry-run` and unit tests. Records every call.
#[derive(Debug, Default)]
pub struct Recording {
    pub set: BTreeSet<IpAddr>,
    pub calls: Vec<String>,
}

impl Firewall for Recording {
    fn ensure_setup(&mut self) -> Result<(), String> {
        Ok(())
    }

    fn present(&mut self) -> Result<BTreeSet<IpAddr>, String> {
        Ok(self.set.clone())
    }

    fn add(&mut self, ips: &[IpAddr]) -> Result<(), String> {
        self.calls.push(format!("add {ips:?}"));
        self.set.extend(ips.iter().copied());
        Ok(())
    }

    fn remove(&mut self, ips: &[IpAddr]) -> Result<(), String> {
        self.calls.push(format!("remove {ips:?}"));
        ips.iter().for_each(|ip| {
            self.set.remove(ip);
        });
        Ok(())
    }

    fn describe(&self) -> String {
        "dry run (nothing is touched)".into()
    }
}

/// `DOCKER-USER` when Docker created it, else `INPUT`.
pub fn default_hook_chain() -> String {
    if run("iptables", &["-w", "-S", "DOCKER-USER"], None).is_ok() {
        "DOCKER-USER".into()
    } else {
        "INPUT".into()
    }
}

/// ipset when the tool is there, else iptables.
pub fn default_backend() -> Backend {
    if run("ipset", &["version"], None).is_ok() {
        Backend::Ipset
    } else {
        Backend::Iptables
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconcile_adds_missing_and_removes_extra() {
        let mut fw = Recording::default();
        let a: IpAddr = "203.0.113.1".parse().unwrap();
        let b: IpAddr = "2001:db8::2".parse().unwrap();
        fw.set.insert(b);
        let desired: BTreeSet<IpAddr> = [a].into();
        assert_eq!(reconcile(&mut fw, &desired).unwrap(), (1, 1));
        assert_eq!(fw.set, desired);
        assert_eq!(reconcile(&mut fw, &desired).unwrap(), (0, 0), "idempotent");
    }
}
