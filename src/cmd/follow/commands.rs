//! `bouncer status` and `bouncer unban`: they work on a follow's state directory, through the
//! running follower when there is one.

use super::state::{self, UnbanRequest};
use super::wall_now;
use crate::cli::{StatusArgs, UnbanArgs};
use crate::cmd::settings::ruleset_options;
use crate::cmd::Failure;
use crate::config::ConfigFile;
use crate::emit::firewall::{self, Backend, Exec};
use crate::parse::format_time;
use anyhow::anyhow;
use std::io::Write;
use std::net::IpAddr;
use std::time::Duration;

/// `bouncer status`: active bans from the state, one JSON object per line.
pub fn status(args: StatusArgs) -> Result<(), Failure> {
    let st = state::load_bans(&args.state)
        .map_err(Failure::input)?
        .ok_or_else(|| {
            Failure::input(anyhow!(
                "{}: no follow state here (start `bouncer follow --state {}`)",
                args.state.display(),
                args.state.display()
            ))
        })?;
    let now = wall_now();
    let mut out = std::io::stdout().lock();
    for (ip, b) in st.bans.active() {
        let line = serde_json::json!({
            "ip": ip, "since": format_time(b.since), "until": b.until.map(format_time),
            "remaining_secs": b.until.map(|u| (u - now).max(0)), "strike": b.strike, "reason": b.reason,
        });
        writeln!(out, "{line}")?;
    }
    if let Some(pid) = state::running_pid(&args.state) {
        eprintln!(
            "follow is running (pid {pid}); {} active ban(s)",
            st.bans.active().len()
        );
    } else {
        eprintln!(
            "follow is not running; {} active ban(s) in the saved state",
            st.bans.active().len()
        );
    }
    Ok(())
}

/// `bouncer unban`: through the running follower when there is one, else on the saved state
/// and the kernel directly.
pub fn unban(args: UnbanArgs, config: ConfigFile) -> Result<(), Failure> {
    if args.ip.is_none() && !args.all {
        return Err(Failure::usage(anyhow!("name an IP or use --all")));
    }
    let dir = &args.state;
    if state::running_pid(dir).is_some() {
        let req = UnbanRequest {
            ip: args.ip,
            all: args.all,
        };
        let path = state::post_unban(dir, &req, wall_now()).map_err(Failure::input)?;
        for _ in 0..50 {
            if !path.exists() {
                eprintln!("unban handed to the running follow; it lifts the ban within a second");
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        return Err(Failure::input(anyhow!(
            "the running follow did not pick up the request within 5 s ({} is still queued)",
            path.display()
        )));
    }
    let mut st = state::load_bans(dir)
        .map_err(Failure::input)?
        .ok_or_else(|| Failure::input(anyhow!("{}: no follow state here", dir.display())))?;
    // The detector's episodes of these IPs end when follow next starts (it ends the episode of
    // every IP that is no longer banned).
    let ips: Vec<IpAddr> = match args.ip {
        Some(ip) => st.bans.unban(&ip).map(|_| ip).into_iter().collect(),
        None => st.bans.unban_all().into_iter().map(|(ip, _)| ip).collect(),
    };
    let rules = ruleset_options(&args.output, &config)?;
    let backend = args.backend.unwrap_or(match st.backend.as_deref() {
        Some("iptables") => Backend::Iptables,
        _ => Backend::Ipset,
    });
    let mut fw = firewall::kernel(backend, rules, Exec::host());
    firewall::lift(&mut fw, &ips).map_err(|e| Failure::input(anyhow!(e)))?;
    for ip in &ips {
        st.owned.remove(ip);
    }
    state::save_bans(dir, &st).map_err(Failure::input)?;
    for ip in ips {
        eprintln!("unbanned {ip}");
    }
    Ok(())
}
