//! `follow --listen`: the live view. A dashboard (`/`, one IP at `/ip/IP`), Prometheus metrics
//! (`/metrics`) and the same data as JSON (`/api/state`, `/api/events`, `/api/ip/IP`), served from
//! threads of their own.
//!
//! What it owns: the HTTP side ([`start`]: routing, the token and host guard, security headers,
//! server-sent events) and, in [`hub`], everything it shows. It reads **only what the follow loop
//! publishes** — notes and per-tick snapshots, through [`hub::DashboardSink`] — never the
//! detector, the firewall or the state: the loop never waits on a browser.
//!
//! It must never act: every route is a read (GET/HEAD); there is no form, no POST, no unban over
//! HTTP. Every string that came from a log (paths, user agents, reasons, file names) is escaped
//! by minijinja in the pages and set with `textContent` by the page's script; the script and the
//! stylesheet are files served from the binary, so the Content-Security-Policy allows no inline
//! script or style at all.
//!
//! The invariant a newcomer could break: a non-loopback address is only served with a token (or
//! the explicit `--listen-insecure`), checked in constant time on every request, including the
//! event stream; without a token, only requests naming the host by address or `localhost` are
//! answered, so a web page elsewhere cannot read the dashboard through DNS rebinding.

mod guard;
pub mod hub;
mod metrics;
pub mod view;

pub use guard::Token;
pub use hub::{DashboardSink, Hub};

use hub::Which;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tiny_http::{Header, Method, Request, Response, StatusCode};

/// Threads answering requests (the event streams get one each, up to [`MAX_STREAMS`]).
const WORKERS: usize = 2;
/// Open event streams at most (each is a thread writing one page's updates).
const MAX_STREAMS: usize = 32;
/// An open stream gets an update at most this often, unless something happened (a ban).
const PUSH_EVERY: Duration = Duration::from_secs(1);
/// A comment line keeps idle proxies from closing a quiet stream.
const KEEPALIVE: Duration = Duration::from_secs(15);

/// Where and how to serve, resolved from `--listen`, `--listen-token`, `--listen-insecure`.
#[derive(Debug, Clone)]
pub struct Listen {
    pub addr: SocketAddr,
    pub token: Option<Token>,
}

impl Listen {
    /// `addr` is `IP:PORT`, `[IPv6]:PORT`, `localhost:PORT` or a port alone (loopback). A
    /// non-loopback address needs a token or `insecure`: refused with what to do instead.
    pub fn resolve(
        addr: &str,
        token_file: Option<&Path>,
        insecure: bool,
    ) -> Result<(Listen, Vec<String>), String> {
        let a = addr.trim();
        let sock = if let Ok(port) = a.parse::<u16>() {
            SocketAddr::from((Ipv4Addr::LOCALHOST, port))
        } else if let Some(port) = a.strip_prefix("localhost:") {
            let port = port.parse::<u16>().map_err(|_| bad_addr(a))?;
            SocketAddr::from((Ipv4Addr::LOCALHOST, port))
        } else {
            a.parse::<SocketAddr>().map_err(|_| bad_addr(a))?
        };
        let mut notes = Vec::new();
        let token = match token_file {
            Some(p) => {
                let (t, note) = Token::read(p)?;
                notes.extend(note);
                Some(t)
            }
            None => None,
        };
        if !sock.ip().is_loopback() && token.is_none() && !insecure {
            return Err(format!(
                "--listen {sock}: not a loopback address, and no --listen-token: anyone who \
                 reaches this port would see the bans, paths and user agents. Add \
                 --listen-token FILE (a secret every request must carry: \
                 `head -c 24 /dev/urandom | base64 > FILE`), or --listen-insecure for a network \
                 you fully trust; or listen on 127.0.0.1 and reach it through `ssh -L` or a \
                 reverse proxy"
            ));
        }
        if !sock.ip().is_loopback() && token.is_none() {
            notes.push(format!(
                "--listen-insecure: serving {sock} without a token: anyone who reaches it sees the dashboard"
            ));
        }
        Ok((Listen { addr: sock, token }, notes))
    }
}

fn bad_addr(a: &str) -> String {
    format!("--listen {a:?}: expected ADDRESS:PORT such as 127.0.0.1:9180 or [::1]:9180, or a port alone (loopback)")
}

/// The running server: its address (the real port when 0 was asked) and its threads.
pub struct Server {
    pub addr: SocketAddr,
    http: Arc<tiny_http::Server>,
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<()>>,
}

/// Bind `listen` and answer from `hub`'s published state.
pub fn start(listen: &Listen, hub: Arc<Hub>) -> Result<Server, String> {
    let http = tiny_http::Server::http(listen.addr)
        .map_err(|e| format!("--listen {}: cannot listen: {e}", listen.addr))?;
    let addr = http.server_addr().to_ip().unwrap_or(listen.addr);
    let http = Arc::new(http);
    let stop = Arc::new(AtomicBool::new(false));
    let ctx = Arc::new(Ctx {
        hub,
        token: listen.token.clone(),
        stop: stop.clone(),
        streams: Arc::new(AtomicUsize::new(0)),
    });
    let mut workers = Vec::new();
    for i in 0..WORKERS {
        let (http, ctx) = (http.clone(), ctx.clone());
        let w = std::thread::Builder::new()
            .name(format!("http-{i}"))
            .spawn(move || {
                while !ctx.stop.load(Ordering::Relaxed) {
                    match http.recv_timeout(Duration::from_millis(500)) {
                        Ok(Some(rq)) => handle(rq, &ctx),
                        Ok(None) => {}
                        Err(_) => break,
                    }
                }
            })
            .map_err(|e| format!("cannot start the HTTP threads: {e}"))?;
        workers.push(w);
    }
    Ok(Server {
        addr,
        http,
        stop,
        workers,
    })
}

impl Server {
    /// Stop answering; event streams end at their next wake-up (≤ 1 s).
    pub fn stop(&mut self, grace: Duration) {
        self.stop.store(true, Ordering::Relaxed);
        for _ in 0..WORKERS {
            self.http.unblock();
        }
        let deadline = Instant::now() + grace;
        for w in self.workers.drain(..) {
            while !w.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if w.is_finished() {
                let _ = w.join();
            }
        }
    }
}

struct Ctx {
    hub: Arc<Hub>,
    token: Option<Token>,
    stop: Arc<AtomicBool>,
    /// Open event streams.
    streams: Arc<AtomicUsize>,
}

/// No inline script or style anywhere; nothing from another origin; no framing, no forms.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const JS: &str = include_str!("../../reports/live/live.js");
const CSS: &str = include_str!("../../reports/live/live.css");

fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("ASCII header")
}

/// Headers every answer carries.
fn secure<R: std::io::Read>(r: Response<R>) -> Response<R> {
    r.with_header(header("Content-Security-Policy", CSP))
        .with_header(header("X-Content-Type-Options", "nosniff"))
        .with_header(header("Referrer-Policy", "no-referrer"))
        .with_header(header("X-Frame-Options", "DENY"))
        .with_header(header("Cache-Control", "no-store"))
}

fn text(
    status: u16,
    content_type: &str,
    body: impl Into<String>,
) -> Response<std::io::Cursor<Vec<u8>>> {
    secure(
        Response::from_string(body)
            .with_status_code(StatusCode(status))
            .with_header(header("Content-Type", content_type)),
    )
}

const HTML: &str = "text/html; charset=utf-8";
const PLAIN: &str = "text/plain; charset=utf-8";
const JSON: &str = "application/json";

fn handle(rq: Request, ctx: &Ctx) {
    let resp = match route(&rq, ctx) {
        Route::Reply(r) => r,
        Route::Stream(which) => return stream(rq, ctx, which),
    };
    // A client that went away is not our problem.
    let _ = rq.respond(resp);
}

enum Route {
    Reply(Response<std::io::Cursor<Vec<u8>>>),
    Stream(Which),
}

fn route(rq: &Request, ctx: &Ctx) -> Route {
    use Route::Reply;
    if !matches!(rq.method(), Method::Get | Method::Head) {
        return Reply(
            text(
                405,
                PLAIN,
                "405: the live view is read-only (GET and HEAD only)\n",
            )
            .with_header(header("Allow", "GET, HEAD")),
        );
    }
    let headers: Vec<(&str, &str)> = rq
        .headers()
        .iter()
        .map(|h| (h.field.as_str().as_str(), h.value.as_str()))
        .collect();
    match guard::check(ctx.token.as_ref(), &headers) {
        guard::Verdict::Allow => {}
        guard::Verdict::Unauthorized => {
            return Reply(
                text(
                    401,
                    PLAIN,
                    "401: this bouncer needs its token: `Authorization: Bearer TOKEN`, or basic \
                     auth with the token as password\n",
                )
                .with_header(header(
                    "WWW-Authenticate",
                    "Basic realm=\"bouncer\", charset=\"UTF-8\"",
                )),
            )
        }
        guard::Verdict::BadHost => return Reply(text(
            421,
            PLAIN,
            "421: without --listen-token, ask for this server by address (http://127.0.0.1:PORT/) \
                 or as localhost: other host names are refused (DNS rebinding)\n",
        )),
    }
    let (path, query) = rq.url().split_once('?').unwrap_or((rq.url(), ""));
    let hub = &ctx.hub;
    let ip_of = |rest: &str| rest.parse::<IpAddr>().ok();
    match path {
        "/" => Reply(text(200, HTML, hub.page(&Which::Site))),
        "/static/live.js" => Reply(text(200, "text/javascript; charset=utf-8", JS)),
        "/static/live.css" => Reply(text(200, "text/css; charset=utf-8", CSS)),
        "/metrics" => Reply(text(200, metrics::CONTENT_TYPE, hub.metrics_text())),
        "/api/state" => Reply(text(200, JSON, hub.state_json())),
        "/api/events" => {
            let since = query
                .split('&')
                .find_map(|kv| kv.strip_prefix("since="))
                .and_then(|v| v.parse::<i64>().ok());
            Reply(text(200, JSON, hub.events_json(since)))
        }
        "/api/stream" if *rq.method() == Method::Head => Reply(text(200, "text/event-stream", "")),
        "/api/stream" => {
            let which = match query.split('&').find_map(|kv| kv.strip_prefix("ip=")) {
                None => Which::Site,
                Some(v) => match ip_of(&v.replace("%3A", ":").replace("%3a", ":")) {
                    Some(ip) => Which::Ip(ip),
                    None => return Reply(text(404, PLAIN, "404: not an IP address\n")),
                },
            };
            Route::Stream(which)
        }
        "/favicon.ico" => Reply(text(204, PLAIN, "")),
        _ => {
            if let Some(ip) = path.strip_prefix("/ip/").and_then(ip_of) {
                return Reply(text(200, HTML, hub.page(&Which::Ip(ip))));
            }
            if let Some(ip) = path.strip_prefix("/api/ip/").and_then(ip_of) {
                return Reply(text(200, JSON, hub.ip_json(&ip)));
            }
            Reply(text(
                404,
                PLAIN,
                "404: no such page (/, /ip/IP, /metrics, /api/state, /api/events)\n",
            ))
        }
    }
}

/// Server-sent events: the page's view as JSON, at most once a second, and at once after a ban
/// or any other event. One thread per stream, so a stalled browser stalls only itself.
fn stream(rq: Request, ctx: &Ctx, which: Which) {
    if ctx.streams.fetch_add(1, Ordering::SeqCst) >= MAX_STREAMS {
        ctx.streams.fetch_sub(1, Ordering::SeqCst);
        let _ = rq.respond(text(503, PLAIN, "503: too many open dashboards\n"));
        return;
    }
    let (hub, stop, streams) = (ctx.hub.clone(), ctx.stop.clone(), ctx.streams.clone());
    let spawned = std::thread::Builder::new()
        .name("http-stream".into())
        .spawn(move || {
            // Ends when the browser goes away (a write fails) or the server stops.
            let _ = push_loop(rq, &hub, &which, &stop);
            streams.fetch_sub(1, Ordering::SeqCst);
        });
    if spawned.is_err() {
        ctx.streams.fetch_sub(1, Ordering::SeqCst);
    }
}

fn push_loop(rq: Request, hub: &Hub, which: &Which, stop: &AtomicBool) -> std::io::Result<()> {
    let mut w = rq.into_writer();
    write!(
        w,
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\n\
         X-Content-Type-Options: nosniff\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )?;
    w.flush()?;
    let mut sent = 0u64;
    let mut last_push: Option<Instant> = None;
    let mut last_write = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let due = last_push.map_or(Instant::now(), |t| t + PUSH_EVERY);
        let (gen, urgent) = hub.wait(sent, Duration::from_millis(500));
        let now = Instant::now();
        if gen > sent && (urgent > sent || now >= due) {
            let json = hub.view_json(which);
            chunk(&mut w, &format!("data: {json}\n\n"))?;
            sent = gen;
            last_push = Some(now);
            last_write = now;
        } else if gen > sent {
            // Something changed, nothing urgent: wait for the second to be up (or a ban).
            hub.wait_urgent(sent, due - now);
        } else if now - last_write >= KEEPALIVE {
            chunk(&mut w, ": keepalive\n\n")?;
            last_write = now;
        }
    }
    w.write_all(b"0\r\n\r\n")?;
    w.flush()
}

fn chunk(w: &mut impl Write, s: &str) -> std::io::Result<()> {
    write!(w, "{:x}\r\n{s}\r\n", s.len())?;
    w.flush()
}
