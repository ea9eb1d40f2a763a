//! The forensic HTML report (`report.html`): what happened, who did it, why they were banned and
//! what to run now, in one self-contained file that opens offline (CSS inline, plots as inline
//! SVG, no script, no font, no image fetched from anywhere).
//!
//! * [`render`] is pure: an [`Analysis`] and [`ReportOptions`] in, HTML out. `cmd` writes it.
//! * Templates are in `reports/` and compiled into the binary; `--template DIR` overrides any of
//!   them by file name ([`Templates::load_dir`]). They get the context built in [`view`].
//! * **Escaping.** Every log-derived string (paths, user agents, referers, file names, error
//!   examples) is attacker-controlled. Templates are named `*.html`, so minijinja's HTML
//!   auto-escaping is on for every `{{ … }}`; the only values a template may mark `|safe` are the
//!   plot SVGs, and those are drawn from numbers alone ([`plots`] never receives log text).
//!   `xtests/report.rs` loads a report built from hostile lines in real headless Chromium and
//!   checks that nothing ran.

mod figures;
pub mod plots;
pub mod view;
pub mod zone;

use crate::emit::rulesets::RulesetOptions;
use crate::emit::Analysis;
use std::collections::BTreeMap;
use std::path::Path;
pub use zone::Zone;

/// The embedded templates, by file name (the names `--template DIR` may override).
pub const TEMPLATES: [(&str, &str); 2] = [
    ("report.html", include_str!("../../../reports/report.html")),
    ("report.css", include_str!("../../../reports/report.css")),
];

/// The template rendered first; it includes the others.
const MAIN: &str = "report.html";

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("report template: {0:#}")]
    Template(#[from] minijinja::Error),
    #[error(transparent)]
    Plot(#[from] plots::PlotError),
    #[error("{path}: cannot read template: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}: no report template in it (expected one of: {1})")]
    NoTemplates(String, String),
}

/// Template sources that replace embedded ones, by file name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Templates {
    overrides: BTreeMap<String, String>,
}

impl Templates {
    /// Files in `dir` named like an embedded template replace it; missing ones fall back to the
    /// embedded version. A directory with none of them is an error (a typo, most likely).
    pub fn load_dir(dir: &Path) -> Result<Templates, ReportError> {
        let mut overrides = BTreeMap::new();
        for (name, _) in TEMPLATES {
            let path = dir.join(name);
            match std::fs::read_to_string(&path) {
                Ok(text) => {
                    overrides.insert(name.to_string(), text);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(ReportError::Read {
                        path: path.display().to_string(),
                        source,
                    })
                }
            }
        }
        if overrides.is_empty() {
            let names: Vec<&str> = TEMPLATES.iter().map(|t| t.0).collect();
            return Err(ReportError::NoTemplates(
                dir.display().to_string(),
                names.join(", "),
            ));
        }
        Ok(Templates { overrides })
    }

    /// Replace one template (tests; embedders).
    pub fn with(mut self, name: &str, source: &str) -> Templates {
        self.overrides.insert(name.to_string(), source.to_string());
        self
    }

    fn source(&self, name: &'static str, embedded: &'static str) -> &str {
        self.overrides.get(name).map_or(embedded, String::as_str)
    }
}

/// How to render: the clock to show times on, templates, and what the ban-list commands need.
#[derive(Debug, Clone)]
pub struct ReportOptions {
    pub zone: Zone,
    pub templates: Templates,
    /// Chain and set names, so the commands shown match the files written.
    pub rules: RulesetOptions,
    /// Directory holding the ban lists (the commands are run from there).
    pub out_dir: String,
    /// Banned IPs with a full section and plot (by score: the highest multiplier of their
    /// bans); the others are rows in one table.
    pub plot_limit: usize,
}

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions {
            zone: Zone::utc(),
            templates: Templates::default(),
            rules: RulesetOptions::default(),
            out_dir: "bouncer-out".into(),
            plot_limit: view::DEFAULT_PLOT_LIMIT,
        }
    }
}

/// Render the report. Pure: no I/O, no clock.
pub fn render(a: &Analysis, o: &ReportOptions) -> Result<String, ReportError> {
    let ctx = view::build(a, o)?;
    let mut env = minijinja::Environment::new();
    // `*.html` → HTML auto-escaping (minijinja's default callback); say it explicitly so a
    // renamed template can't silently lose it.
    env.set_auto_escape_callback(|name| {
        if name.ends_with(".css") {
            minijinja::AutoEscape::None
        } else {
            minijinja::AutoEscape::Html
        }
    });
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    for (name, embedded) in TEMPLATES {
        env.add_template(name, o.templates.source(name, embedded))?;
    }
    let html = env.get_template(MAIN)?.render(&ctx)?;
    Ok(html)
}

#[cfg(test)]
mod tests;
