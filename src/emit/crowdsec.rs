//! bouncer as a CrowdSec watcher: every ban goes to a CrowdSec Local API (LAPI) as an alert
//! carrying its decision, so every node's `crowdsec-firewall-bouncer` (or any other bouncer of
//! that LAPI) enforces it; every unban deletes it.
//!
//! - **Login**: `POST /v1/watchers/login` with the machine id and password (`cscli machines add`)
//!   gives a token (JWT) for the other calls; a 401 logs in again.
//! - **Ban**: `POST /v1/alerts` with one alert: scenario `bouncer/<rule>` ([`scenario`]), the
//!   decision's explanation as the message, the window's numbers as metadata and as one event,
//!   the client as source (scope `Ip`), and one decision (type `ban`, scope `Ip`, the strike's
//!   remaining length; 100 years for a permanent ban, as in `decisions.csv`). The decision's
//!   origin is `crowdsec`, as the LAPI's own agent writes it: that is what `cscli decisions
//!   list` shows by default (other origins only with `-a`); `machine_id` says it was bouncer.
//! - **Unban**: `DELETE /v1/decisions?ip=…&scenario=bouncer/<rule>` for each of bouncer's
//!   scenarios (the set is closed: [`SCENARIOS`]), so decisions other watchers made for the same
//!   address stay.
//!
//! Pushes run on their own thread through a bounded queue ([`QUEUE_CAP`]) and are retried with
//! backoff (at most [`MAX_BACKOFF`] apart) until the LAPI takes them, so a LAPI that is down or
//! slow never delays detection or local enforcement. The queue is saved in `follow`'s state
//! ([`CrowdsecHandle::pending`]), so a restart loses nothing: delivery is at least once (a push
//! made between the last save and a crash is made again). A ban that has expired by the time it
//! can be delivered is skipped.
//!
//! The password is a [`Secret`]: never printed, never in an error, never in the state file.
//! Errors name the LAPI's host only.

pub use super::crowdsec_push::Push;
use super::sink::{CrowdsecNote, Note, Sink};
use crate::detect::bans::ActiveBan;
use crate::detect::live::Event;
use crate::detect::{DecidedBy, Decision, Rule};
use crate::parse::format_time;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Pushes waiting at most (bans are rare; this bounds memory and the state file).
pub const QUEUE_CAP: usize = 10_000;
/// Retries back off from 250 ms to this.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// CrowdSec has no permanent decision: 100 years, as `decisions.csv` writes it.
const PERMANENT: &str = "876000h";

/// bouncer's scenarios: `bouncer/<rule>` of the most telling rule of a ban.
pub const SCENARIOS: [&str; 4] = [
    "bouncer/breadth",
    "bouncer/error_surge",
    "bouncer/crowd",
    "bouncer/multiplier",
];

/// A password: `Debug` and `Display` never show it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: String) -> Secret {
        Secret(s)
    }
    fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Secret, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

/// Where and as whom bouncer pushes.
#[derive(Debug, Clone)]
pub struct LapiSettings {
    /// The LAPI's base URL, e.g. `http://127.0.0.1:8080/` (never with credentials in it).
    pub url: reqwest::Url,
    pub machine_id: String,
    pub password: Secret,
}

impl LapiSettings {
    /// Check the URL: http(s), no user or password in it (those go in the config or env).
    pub fn new(url: &str, machine_id: String, password: Secret) -> Result<LapiSettings, String> {
        let mut u = reqwest::Url::parse(url)
            .map_err(|_| "--crowdsec-lapi: not a URL (e.g. http://127.0.0.1:8080)".to_string())?;
        if !matches!(u.scheme(), "http" | "https") {
            return Err("--crowdsec-lapi: an http(s) URL".into());
        }
        if !u.username().is_empty() || u.password().is_some() {
            return Err("--crowdsec-lapi: no credentials in the URL; set [crowdsec] machine_id and password, or BOUNCER_CROWDSEC_MACHINE_ID and BOUNCER_CROWDSEC_PASSWORD".into());
        }
        if machine_id.is_empty() || password.expose().is_empty() {
            return Err("--crowdsec-lapi needs a machine id and password: [crowdsec] machine_id and password in the config file, or BOUNCER_CROWDSEC_MACHINE_ID and BOUNCER_CROWDSEC_PASSWORD (`cscli machines add NAME --password …` makes them)".into());
        }
        if !u.path().ends_with('/') {
            let p = format!("{}/", u.path());
            u.set_path(&p);
        }
        Ok(LapiSettings {
            url: u,
            machine_id,
            password,
        })
    }

    fn host(&self) -> String {
        match (self.url.host_str(), self.url.port_or_known_default()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            _ => "the LAPI".into(),
        }
    }
}

/// The most telling rule of a ban, as a CrowdSec scenario name (one of [`SCENARIOS`]).
pub fn scenario(d: &Decision) -> &'static str {
    if d.fired(Rule::Breadth) {
        SCENARIOS[0]
    } else if d.fired(Rule::ErrorSurge) {
        SCENARIOS[1]
    } else if d.fired(Rule::Crowd) {
        SCENARIOS[2]
    } else {
        SCENARIOS[3]
    }
}

/// The alert for a ban (its decision is added when it is sent).
pub fn alert(ip: IpAddr, ban: &ActiveBan, d: &Decision) -> Value {
    let status: Vec<String> = d
        .status_mix
        .iter()
        .map(|(s, n)| format!("{s}:{n}"))
        .collect();
    let meta: Vec<Value> = [
        ("window", d.window.name().to_string()),
        ("window_secs", d.window_secs.to_string()),
        ("requests_in_window", d.requests_in_window.to_string()),
        ("rate_per_sec", format!("{:.2}", d.rate_per_sec)),
        ("measured_load", format!("{:.1}", d.measured)),
        ("limit", format!("{:.1}", d.limit)),
        (
            "decided_by",
            match d.decided_by {
                DecidedBy::Learned => "learned",
                DecidedBy::Floor => "floor",
            }
            .into(),
        ),
        ("error_share", format!("{:.3}", d.error_share)),
        ("rules", d.rules_text(",")),
        ("status_mix", status.join(",")),
        ("strike", ban.strike.to_string()),
        ("log_time", format_time(d.at)),
    ]
    .into_iter()
    .map(|(k, v)| json!({"key": k, "value": v}))
    .collect();
    let start = format_time(d.at - d.window_secs as i64);
    let stop = format_time(d.at);
    json!({
        "scenario": scenario(d),
        "scenario_hash": "",
        "scenario_version": env!("CARGO_PKG_VERSION"),
        "message": d.reason,
        "events_count": d.requests_in_window.min(i32::MAX as u64),
        "start_at": start,
        "stop_at": stop,
        "capacity": d.limit.round().clamp(0.0, i32::MAX as f64) as i64,
        "leakspeed": format!("{}s", d.window_secs),
        "simulated": false,
        "remediation": true,
        "events": [{"timestamp": stop, "meta": meta.clone()}],
        "meta": meta,
        "labels": null,
        "source": {"scope": "Ip", "value": ip.to_string(), "ip": ip.to_string()},
    })
}

/// Why a push did not go through.
#[derive(Debug)]
enum Failed {
    /// Try again later (down, slow, 5xx, 429, login refused).
    Retry(String),
    /// Retrying will not help (the LAPI refused this push: 4xx): dropped.
    Drop(String),
}

/// The LAPI client (used by the sender thread, and once by `bouncer unban`).
pub struct Lapi {
    s: LapiSettings,
    client: reqwest::blocking::Client,
    token: Option<String>,
}

impl Lapi {
    pub fn new(s: LapiSettings) -> Result<Lapi, String> {
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(5))
            .connect_timeout(Duration::from_secs(2))
            .user_agent(concat!("bouncer/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Lapi {
            s,
            client,
            token: None,
        })
    }

    fn url(&self, path: &str) -> reqwest::Url {
        self.s.url.join(path).unwrap_or_else(|_| self.s.url.clone())
    }

    /// A connection error without the URL.
    fn net_error(&self, e: &reqwest::Error) -> String {
        format!("{} ({})", super::slack::failure_kind(e), self.s.host())
    }

    fn login(&mut self) -> Result<String, Failed> {
        let body = json!({
            "machine_id": self.s.machine_id,
            "password": self.s.password.expose(),
            "scenarios": SCENARIOS,
        });
        let r = self
            .client
            .post(self.url("v1/watchers/login"))
            .json(&body)
            .send()
            .map_err(|e| Failed::Retry(self.net_error(&e)))?;
        let status = r.status();
        if !status.is_success() {
            // 401/403: wrong machine id or password, or not validated yet (`cscli machines
            // validate`): an admin can fix it while we retry.
            return Err(Failed::Retry(format!(
                "login as machine {:?} refused: HTTP {} ({})",
                self.s.machine_id,
                status.as_u16(),
                self.s.host()
            )));
        }
        let v: Value = r
            .json()
            .map_err(|_| Failed::Retry(format!("login: unreadable answer ({})", self.s.host())))?;
        let token = v["token"]
            .as_str()
            .ok_or_else(|| Failed::Retry(format!("login: no token ({})", self.s.host())))?
            .to_string();
        self.token = Some(token.clone());
        Ok(token)
    }

    /// One HTTP call with the token, logging in first or again (once, on a 401).
    fn call(
        &mut self,
        what: &str,
        make: impl Fn(&reqwest::blocking::Client, &str) -> reqwest::blocking::RequestBuilder,
    ) -> Result<Value, Failed> {
        for attempt in 0..2 {
            let token = match self.token.clone() {
                Some(t) => t,
                None => self.login()?,
            };
            let r = make(&self.client, &token)
                .send()
                .map_err(|e| Failed::Retry(self.net_error(&e)))?;
            let status = r.status().as_u16();
            match status {
                200..=299 => return Ok(r.json().unwrap_or(Value::Null)),
                401 if attempt == 0 => self.token = None,
                429 | 500..=599 | 401 => {
                    return Err(Failed::Retry(format!(
                        "{what}: HTTP {status} ({})",
                        self.s.host()
                    )))
                }
                _ => {
                    let msg: Value = r.json().unwrap_or(Value::Null);
                    return Err(Failed::Drop(format!(
                        "{what}: HTTP {status} ({}): {}",
                        self.s.host(),
                        msg["message"].as_str().unwrap_or("refused")
                    )));
                }
            }
        }
        Err(Failed::Retry(format!("{what}: not authorised")))
    }

    /// Deliver one push at wall time `now`. `Ok(false)`: nothing to do (the ban expired).
    fn push(&mut self, p: &Push, now: i64) -> Result<bool, Failed> {
        match p {
            Push::Ban { ip, until, alert } => {
                let duration = match until {
                    None => PERMANENT.to_string(),
                    Some(u) if *u <= now => return Ok(false),
                    Some(u) => format!("{}s", u - now),
                };
                let mut alert = alert.clone();
                alert["decisions"] = json!([{
                    "origin": "crowdsec",
                    "type": "ban",
                    "scope": "Ip",
                    "value": ip.to_string(),
                    "duration": duration,
                    "scenario": alert["scenario"],
                }]);
                let body = json!([alert]);
                let url = self.url("v1/alerts");
                self.call("push alert", |c, t| {
                    c.post(url.clone()).bearer_auth(t).json(&body)
                })?;
                Ok(true)
            }
            Push::Unban { ip } => {
                for sc in SCENARIOS {
                    let mut url = self.url("v1/decisions");
                    url.query_pairs_mut()
                        .append_pair("ip", &ip.to_string())
                        .append_pair("scenario", sc);
                    self.call("delete decision", |c, t| {
                        c.delete(url.clone()).bearer_auth(t)
                    })?;
                }
                Ok(true)
            }
        }
    }

    /// `bouncer unban` when no follower runs: delete now (one try).
    pub fn unban_now(&mut self, ip: IpAddr, now: i64) -> Result<(), String> {
        self.push(&Push::Unban { ip }, now)
            .map(|_| ())
            .map_err(|e| match e {
                Failed::Retry(e) | Failed::Drop(e) => e,
            })
    }
}

#[derive(Default)]
struct Queue {
    items: VecDeque<Push>,
    stop: bool,
    notes: Vec<CrowdsecNote>,
    failing: Option<String>,
}

struct Shared {
    q: Mutex<Queue>,
    cv: Condvar,
}

/// What `follow` saves: the pushes not yet delivered (the one in flight included).
#[derive(Clone)]
pub struct CrowdsecHandle(Arc<Shared>);

impl CrowdsecHandle {
    pub fn pending(&self) -> Vec<Push> {
        self.0
            .q
            .lock()
            .expect("crowdsec queue")
            .items
            .iter()
            .cloned()
            .collect()
    }
}

/// `follow`'s CrowdSec sink: BAN → alert + decision, UNBAN → delete; never blocks the loop.
pub struct CrowdsecSink {
    shared: Arc<Shared>,
    worker: Option<JoinHandle<()>>,
}

impl CrowdsecSink {
    /// Start the sender with the pushes a previous run left (`pending`, from the state).
    pub fn start(s: LapiSettings, pending: Vec<Push>) -> Result<CrowdsecSink, String> {
        let lapi = Lapi::new(s)?;
        let shared = Arc::new(Shared {
            q: Mutex::new(Queue {
                items: pending.into_iter().take(QUEUE_CAP).collect(),
                ..Default::default()
            }),
            cv: Condvar::new(),
        });
        let sh = shared.clone();
        let worker = std::thread::Builder::new()
            .name("crowdsec".into())
            .spawn(move || send_loop(lapi, &sh))
            .map_err(|e| format!("cannot start the CrowdSec thread: {e}"))?;
        Ok(CrowdsecSink {
            shared,
            worker: Some(worker),
        })
    }

    pub fn handle(&self) -> CrowdsecHandle {
        CrowdsecHandle(self.shared.clone())
    }

    fn enqueue(&self, p: Push) {
        let mut q = self.shared.q.lock().expect("crowdsec queue");
        if q.items.len() >= QUEUE_CAP {
            q.notes.push(CrowdsecNote::Dropped { what: p.describe() });
            return;
        }
        q.items.push_back(p);
        drop(q);
        self.shared.cv.notify_one();
    }
}

fn wall_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn send_loop(mut lapi: Lapi, sh: &Shared) {
    let mut backoff = Duration::from_millis(250);
    loop {
        let item = {
            let mut q = sh.q.lock().expect("crowdsec queue");
            while q.items.is_empty() && !q.stop {
                q = sh.cv.wait(q).expect("crowdsec queue");
            }
            if q.stop {
                return;
            }
            q.items.front().cloned().expect("not empty")
        };
        let started = Instant::now();
        let result = lapi.push(&item, wall_now());
        let mut q = sh.q.lock().expect("crowdsec queue");
        match result {
            Ok(sent) => {
                q.items.pop_front();
                backoff = Duration::from_millis(250);
                if q.failing.take().is_some() {
                    let pending = q.items.len();
                    q.notes.push(CrowdsecNote::Recovered { pending });
                }
                q.notes.push(CrowdsecNote::Delivered {
                    what: item.describe(),
                    skipped: !sent,
                    ms: started.elapsed().as_millis() as u64,
                });
            }
            Err(Failed::Drop(error)) => {
                q.items.pop_front();
                q.notes.push(CrowdsecNote::Dropped {
                    what: format!("{}: {error}", item.describe()),
                });
            }
            Err(Failed::Retry(error)) => {
                if q.failing.as_ref() != Some(&error) {
                    q.failing = Some(error.clone());
                    let pending = q.items.len();
                    q.notes.push(CrowdsecNote::Failing { error, pending });
                }
                // Wait, but wake up at once on shutdown.
                let (guard, _) = sh.cv.wait_timeout(q, backoff).expect("crowdsec queue");
                q = guard;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
        drop(q);
    }
}

impl Sink for CrowdsecSink {
    fn name(&self) -> &'static str {
        "crowdsec"
    }

    fn note(&mut self, note: &Note, _now: i64) {
        match note {
            Note::Core(Event::Ban { ip, ban, decision }) => self.enqueue(Push::Ban {
                ip: *ip,
                until: ban.until,
                alert: alert(*ip, ban, decision),
            }),
            Note::Core(Event::Unban { ip, .. }) => self.enqueue(Push::Unban { ip: *ip }),
            _ => {}
        }
    }

    fn take_notes(&mut self) -> Vec<Note> {
        std::mem::take(&mut self.shared.q.lock().expect("crowdsec queue").notes)
            .into_iter()
            .map(Note::Crowdsec)
            .collect()
    }

    /// Stop at once: what is not delivered stays in the queue, which the state keeps (the loop
    /// saves it before the sinks stop). A push in flight finishes (at most the 5-s timeout).
    fn shutdown(&mut self, grace: Duration) {
        self.shared.q.lock().expect("crowdsec queue").stop = true;
        self.shared.cv.notify_all();
        super::sink::join_within(self.worker.take(), grace);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_is_never_shown() {
        let s = LapiSettings::new(
            "http://127.0.0.1:8080",
            "node1".into(),
            Secret::new("hunter2-very-secret".into()),
        )
        .unwrap();
        let shown = format!("{s:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert_eq!(s.url.as_str(), "http://127.0.0.1:8080/");
        let e = LapiSettings::new(
            "http://u:hunter2@127.0.0.1:8080",
            "node1".into(),
            Secret::new("x".into()),
        )
        .unwrap_err();
        assert!(!e.contains("hunter2"), "{e}");
        assert!(LapiSettings::new("http://127.0.0.1:8080", "n".into(), Secret::default()).is_err());
    }

    /// A LAPI that does not answer: the error names the host, never the password, and the push
    /// is kept for a retry.
    #[test]
    fn a_dead_lapi_is_a_retry_without_the_password() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port(); // bound, then dropped: nobody listens there
        let s = LapiSettings::new(
            &format!("http://127.0.0.1:{port}"),
            "node1".into(),
            Secret::new("hunter2".into()),
        )
        .unwrap();
        let mut lapi = Lapi::new(s).unwrap();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        match lapi.push(&Push::Unban { ip }, 0) {
            Err(Failed::Retry(e)) => {
                assert!(
                    e.contains(&format!("127.0.0.1:{port}")) && !e.contains("hunter2"),
                    "{e}"
                )
            }
            other => panic!("{other:?}"),
        }
        // An expired ban is not sent at all.
        let p = Push::Ban {
            ip,
            until: Some(10),
            alert: json!({"scenario": "bouncer/multiplier"}),
        };
        assert!(matches!(lapi.push(&p, 11), Ok(false)));
    }
}
