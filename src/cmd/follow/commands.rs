//! `bouncer status` and `bouncer unban`: they work on a follow's state directory, through the
//! running follower when there is one.

use super::state::{self, UnbanRequest};
use super::wall_now;
use crate::cli::{StatusArgs, UnbanArgs};
use crate::cmd::settings::{crowdsec_settings, ruleset_options};
use crate::cmd::Failure;
use crate::config::ConfigFile;
use crate::emit::crowdsec::{Lapi, Push};
use crate::emit::firewall::{self, Backend, Exec};
use crate::emit::snapshot::{Snapshot, STATUS_FILE};
use crate::emit::status::{self, SavedBan};
use anyhow::anyhow;
use std::io::Write;
use std::net::IpAddr;
use std::time::Duration;

/// `bouncer status`: a table for humans (or JSON with `--json`) from the saved state (the bans)
/// and the follower's last `status.json` (counters, limits, firewall, Slack, events).
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
    // A missing or unreadable status.json (an older follow, a crash mid-write) is not an error:
    // the bans come from the state.
    let snapshot: Option<Snapshot> = std::fs::read(args.state.join(STATUS_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let bans: Vec<SavedBan> = st
        .bans
        .active()
        .iter()
        .map(|(ip, b)| SavedBan {
            ip: *ip,
            since: b.since,
            until: b.until,
            strike: b.strike,
            reason: b.reason.clone(),
        })
        .collect();
    let pid = state::running_pid(&args.state);
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", status::json(&bans, snapshot.as_ref(), pid, now))?;
    } else {
        write!(out, "{}", status::table(&bans, snapshot.as_ref(), pid, now))?;
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
    unban_crowdsec(&args, &config, &mut st, &ips)?;
    state::save_bans(dir, &st).map_err(Failure::input)?;
    for ip in ips {
        eprintln!("unbanned {ip}");
    }
    Ok(())
}

/// Delete the CrowdSec decisions of `ips` now; what cannot be deleted (the LAPI is down) is
/// queued in the state for the next `follow`. Without `--crowdsec-lapi`, unbans are queued only
/// if the state shows pushes still waiting (a follow that pushes will send them).
fn unban_crowdsec(
    args: &UnbanArgs,
    config: &ConfigFile,
    st: &mut state::Bans,
    ips: &[IpAddr],
) -> Result<(), Failure> {
    let Some(settings) = crowdsec_settings(&args.crowdsec, config)? else {
        if !st.crowdsec.is_empty() {
            st.crowdsec
                .extend(ips.iter().map(|ip| Push::Unban { ip: *ip }));
        }
        return Ok(());
    };
    let mut lapi = Lapi::new(settings).map_err(|e| Failure::input(anyhow!(e)))?;
    for ip in ips {
        match lapi.unban_now(*ip, wall_now()) {
            Ok(()) => eprintln!("crowdsec: decisions for {ip} deleted"),
            Err(e) => {
                eprintln!("crowdsec: {e}; the next `bouncer follow` deletes the decision for {ip}");
                st.crowdsec.push(Push::Unban { ip: *ip });
            }
        }
    }
    Ok(())
}
