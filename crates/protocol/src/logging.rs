//! Provider logs in the form Terraform reads from a plugin's stderr: one
//! hclog JSON object per line (`@level`, `@message`, `@module`,
//! `@timestamp`, plus fields). Terraform shows them under `TF_LOG` /
//! `TF_LOG_PROVIDER` at their own level.
//!
//! Never log configuration, plan or state values: they may hold secrets.
//! The service layer logs RPC names and resource types only.

use std::io::Write;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::Registry;

/// Crates whose debug chatter (frames, handshakes) would drown ours.
const NOISY: [&str; 6] = ["h2", "hyper", "hyper_util", "tonic", "tower", "rustls"];

/// The level asked for by `TF_LOG_PROVIDER`, else `TF_LOG`; `OFF` (or
/// neither set) means no logs, an unrecognised value means trace, as
/// Terraform treats it.
pub fn level_from_env() -> LevelFilter {
    let v = std::env::var("TF_LOG_PROVIDER")
        .ok()
        .filter(|v| !v.is_empty())
        .or_else(|| std::env::var("TF_LOG").ok().filter(|v| !v.is_empty()));
    match v.map(|v| v.to_ascii_uppercase()).as_deref() {
        None | Some("OFF") => LevelFilter::OFF,
        Some("ERROR") => LevelFilter::ERROR,
        Some("WARN") => LevelFilter::WARN,
        Some("INFO") => LevelFilter::INFO,
        Some("DEBUG") => LevelFilter::DEBUG,
        Some(_) => LevelFilter::TRACE,
    }
}

/// Installs the stderr logger as the global subscriber. A second call (or
/// another subscriber already set) is a no-op.
pub fn init(module: &str, level: LevelFilter) {
    let layer = HclogLayer {
        module: format!("provider.{module}"),
        level,
    };
    let _ = tracing::subscriber::set_global_default(Registry::default().with(layer));
}

/// Formats events as hclog JSON lines on stderr.
pub struct HclogLayer {
    module: String,
    level: LevelFilter,
}

impl HclogLayer {
    /// A layer for `provider.<module>` at `level`.
    pub fn new(module: &str, level: LevelFilter) -> Self {
        Self {
            module: format!("provider.{module}"),
            level,
        }
    }

    fn wanted(&self, meta: &tracing::Metadata<'_>) -> bool {
        if *meta.level() > self.level {
            return false;
        }
        let target = meta.target();
        let noisy = NOISY
            .iter()
            .any(|n| target == *n || target.starts_with(&format!("{n}::")));
        !noisy || *meta.level() <= Level::WARN
    }

    /// Renders one event as a JSON line (without the newline).
    pub fn render(&self, event: &Event<'_>) -> String {
        let mut fields = JsonFields(serde_json::Map::new());
        event.record(&mut fields);
        let mut obj = fields.0;
        let message = obj
            .remove("message")
            .unwrap_or(serde_json::Value::String(String::new()));
        obj.insert("@message".into(), message);
        obj.insert("@level".into(), level_name(event.metadata().level()).into());
        obj.insert("@module".into(), self.module.clone().into());
        obj.insert("@timestamp".into(), timestamp().into());
        serde_json::Value::Object(obj).to_string()
    }
}

impl<S: Subscriber> Layer<S> for HclogLayer {
    fn enabled(&self, meta: &tracing::Metadata<'_>, _ctx: Context<'_, S>) -> bool {
        self.wanted(meta)
    }

    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        if !self.wanted(event.metadata()) {
            return;
        }
        let mut line = self.render(event);
        line.push('\n');
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(self.level)
    }
}

fn level_name(l: &Level) -> &'static str {
    match *l {
        Level::TRACE => "trace",
        Level::DEBUG => "debug",
        Level::INFO => "info",
        Level::WARN => "warn",
        _ => "error",
    }
}

/// hclog's timestamp layout, which the host parses strictly:
/// `2006-01-02T15:04:05.000000Z07:00`.
fn timestamp() -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");
    time::OffsetDateTime::now_utc().format(&fmt).unwrap_or_default()
}

struct JsonFields(serde_json::Map<String, serde_json::Value>);

impl Visit for JsonFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        let mut s = value.to_string();
        let mut src = value.source();
        while let Some(e) = src {
            s.push_str(": ");
            s.push_str(&e.to_string());
            src = e.source();
        }
        self.0.insert(field.name().into(), s.into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().into(), format!("{value:?}").into());
    }
}
