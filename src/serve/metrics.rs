//! `/metrics`: Prometheus' text format (0.0.4) through `prometheus-client`. Counters and gauges
//! are read from the hub's state at scrape time (a [`Collector`]), so they always equal what the
//! dashboard and `status.json` show; the two histograms are observed by the hub as notes and
//! snapshots arrive. Every name is listed, with its meaning, in README ("Metrics").

use super::hub::HubState;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use std::sync::{Arc, RwLock};

pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

pub struct Metrics {
    registry: Registry,
    pub detection_latency: Histogram,
    pub tick_duration: Histogram,
}

impl Metrics {
    pub fn new(state: Arc<RwLock<HubState>>) -> Metrics {
        let mut registry = Registry::default();
        let detection_latency =
            Histogram::new([0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0, 300.0]);
        let tick_duration = Histogram::new([
            0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
        ]);
        registry.register(
            "bouncer_build",
            "The bouncer version running",
            Info::new(vec![(
                "version".to_string(),
                env!("CARGO_PKG_VERSION").to_string(),
            )]),
        );
        registry.register(
            "bouncer_detection_latency_seconds",
            "From the log time of the request that crossed a limit (whole seconds) to its ban being published",
            detection_latency.clone(),
        );
        registry.register(
            "bouncer_tick_duration_seconds",
            "Wall time of one tick of the follow loop (decisions, notes, snapshot, state save)",
            tick_duration.clone(),
        );
        registry.register_collector(Box::new(FromState(state)));
        Metrics {
            registry,
            detection_latency,
            tick_duration,
        }
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry);
        out
    }
}

#[derive(Debug)]
struct FromState(Arc<RwLock<HubState>>);

impl std::fmt::Debug for HubState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HubState")
    }
}

/// One metric family: its name (counters without `_total`, which the encoder adds), help,
/// type, and (labels, value) series.
struct Family<'a> {
    name: &'static str,
    help: &'static str,
    kind: MetricType,
    series: Vec<(Vec<(&'static str, &'a str)>, f64)>,
}

impl Collector for FromState {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let st = self.0.read().unwrap_or_else(|e| e.into_inner());
        let s = &st.snapshot;
        if s.now == 0 {
            return Ok(()); // nothing published yet
        }
        let c = &st.counters;
        let window_names: Vec<&str> = s.limits.iter().map(|l| l.window.name()).collect();
        let bans: Vec<(String, &str, u64)> = c
            .bans
            .iter()
            .map(|((r, w), n)| (r.clone(), *w, *n))
            .collect();
        let slack = s.slack.as_ref();
        let fw = s.firewall.as_ref();
        let one = |v: f64| vec![(Vec::new(), v)];
        let families = vec![
            Family {
                name: "bouncer_lines",
                help: "Lines read from each input since follow started (after its checkpoint)",
                kind: MetricType::Counter,
                series: s
                    .inputs
                    .iter()
                    .map(|f| (vec![("file", f.name.as_str())], f.lines as f64))
                    .collect(),
            },
            Family {
                name: "bouncer_requests",
                help: "Requests parsed from each input",
                kind: MetricType::Counter,
                series: s
                    .inputs
                    .iter()
                    .map(|f| (vec![("file", f.name.as_str())], f.requests as f64))
                    .collect(),
            },
            Family {
                name: "bouncer_parse_errors",
                help: "Lines of each input that could not be read, by reason",
                kind: MetricType::Counter,
                series: s
                    .inputs
                    .iter()
                    .flat_map(|f| {
                        f.error_kinds.iter().map(|(reason, n)| {
                            (
                                vec![("file", f.name.as_str()), ("reason", reason.as_str())],
                                *n as f64,
                            )
                        })
                    })
                    .collect(),
            },
            Family {
                name: "bouncer_late_lines",
                help: "Lines more than the tolerance late, counted and left out of detection",
                kind: MetricType::Counter,
                series: one(s.late as f64),
            },
            Family {
                name: "bouncer_requests_per_second",
                help: "Requests read per second, over the last 10 seconds",
                kind: MetricType::Gauge,
                series: one(super::view::requests_per_sec(s, 10)),
            },
            Family {
                name: "bouncer_log_time_seconds",
                help: "The log time (UNIX) the detector has reached",
                kind: MetricType::Gauge,
                series: s.log_now.map(|t| one(t as f64)).unwrap_or_default(),
            },
            Family {
                name: "bouncer_warmed_up",
                help: "1 once the warm-up is over and the rules are in force",
                kind: MetricType::Gauge,
                series: one(if s.warmed_up { 1.0 } else { 0.0 }),
            },
            Family {
                name: "bouncer_baseline_level",
                help: "Learned per-client level of each window (load: pages + asset_weight x assets)",
                kind: MetricType::Gauge,
                series: s
                    .limits
                    .iter()
                    .zip(&window_names)
                    .map(|(l, w)| (vec![("window", *w)], l.level))
                    .collect(),
            },
            Family {
                name: "bouncer_baseline_limit",
                help: "Per-client limit in force for each window (load per window; above it the rules ban)",
                kind: MetricType::Gauge,
                series: s
                    .limits
                    .iter()
                    .zip(&window_names)
                    .map(|(l, w)| (vec![("window", *w)], l.limit))
                    .collect(),
            },
            Family {
                name: "bouncer_site_baseline_requests",
                help: "Site baseline: median requests per minute window, and its robust deviation",
                kind: MetricType::Gauge,
                series: s
                    .site
                    .map(|b| vec![(vec![("stat", "median")], b.mean), (vec![("stat", "deviation")], b.std)])
                    .unwrap_or_default(),
            },
            Family {
                name: "bouncer_site_alert_limit_requests",
                help: "Requests per minute window above which the site-wide rule can raise an alert",
                kind: MetricType::Gauge,
                series: s.site_limit.map(one).unwrap_or_default(),
            },
            Family {
                name: "bouncer_bans_active",
                help: "Active bans",
                kind: MetricType::Gauge,
                series: one(s.bans.len() as f64),
            },
            Family {
                name: "bouncer_bans_enforced",
                help: "Active bans the kernel holds (0 in a dry run)",
                kind: MetricType::Gauge,
                series: one(s.bans.iter().filter(|b| b.enforced).count() as f64),
            },
            Family {
                name: "bouncer_bans",
                help: "Bans since follow started, by the rules that fired and the window",
                kind: MetricType::Counter,
                series: bans
                    .iter()
                    .map(|(r, w, n)| (vec![("rules", r.as_str()), ("window", *w)], *n as f64))
                    .collect(),
            },
            Family {
                name: "bouncer_unbans",
                help: "Bans lifted since follow started, by why (expired, manual)",
                kind: MetricType::Counter,
                series: c
                    .unbans
                    .iter()
                    .map(|(why, n)| (vec![("why", *why)], *n as f64))
                    .collect(),
            },
            Family {
                name: "bouncer_alerts",
                help: "Site-wide alerts since follow started",
                kind: MetricType::Counter,
                series: one(s.alerts_total as f64),
            },
            Family {
                name: "bouncer_firewall_repairs",
                help: "Reconciles that put lost bans back into the kernel (a flush, an admin)",
                kind: MetricType::Counter,
                series: fw.map(|f| one(f.repairs as f64)).unwrap_or_default(),
            },
            Family {
                name: "bouncer_firewall_failures",
                help: "Times the kernel did not hold what bouncer believes is banned, by family",
                kind: MetricType::Counter,
                series: c
                    .firewall_failures
                    .iter()
                    .map(|(f, n)| (vec![("family", f.as_str())], *n as f64))
                    .collect(),
            },
            Family {
                name: "bouncer_firewall_failing",
                help: "Address families whose firewall is failing now",
                kind: MetricType::Gauge,
                series: fw.map(|f| one(f.errors.len() as f64)).unwrap_or_default(),
            },
            Family {
                name: "bouncer_slack_messages",
                help: "Slack messages, by outcome (sent, failed after retries, dropped: queue full)",
                kind: MetricType::Counter,
                series: slack
                    .map(|sl| {
                        vec![
                            (vec![("outcome", "sent")], sl.sent as f64),
                            (vec![("outcome", "failed")], sl.failed as f64),
                            (vec![("outcome", "dropped")], sl.dropped as f64),
                        ]
                    })
                    .unwrap_or_default(),
            },
            Family {
                name: "bouncer_state_save_failing",
                help: "1 while the state cannot be saved (bans are enforced from memory)",
                kind: MetricType::Gauge,
                series: one(if s.state_error.is_some() { 1.0 } else { 0.0 }),
            },
            Family {
                name: "bouncer_start_time_seconds",
                help: "When this follow started (UNIX time)",
                kind: MetricType::Gauge,
                series: one(s.started as f64),
            },
            Family {
                name: "bouncer_dashboard_dropped_updates",
                help: "Updates the live view missed because its queue was full",
                kind: MetricType::Counter,
                series: one(c.dropped as f64),
            },
        ];
        for f in families {
            if f.series.is_empty() {
                continue;
            }
            let mut m = enc.encode_descriptor(f.name, f.help, None, f.kind)?;
            for (labels, v) in &f.series {
                let labels: &[(&str, &str)] = labels;
                let e = m.encode_family(&labels)?;
                match f.kind {
                    // Every counter here is a whole number.
                    MetricType::Counter => ConstCounter::new(*v as u64).encode(e)?,
                    _ => ConstGauge::new(*v).encode(e)?,
                }
            }
        }
        Ok(())
    }
}
