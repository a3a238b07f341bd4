//! The process's metrics in Prometheus' text format, on a listener of their own
//! (`metrics_listen`, off by default).
//!
//! A small recorder for the `metrics` facade: counters and gauges kept in atomics, read
//! when scraped (histograms are not used by Carnet and are dropped). What is exported
//! carries no personal data (backup outcomes per target name); the endpoint has no
//! authentication, so the configuration accepts only loopback and private addresses.
//! The HTTP side is `carnet_http::serve::serve_metrics`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
}

/// One series: a metric name and its labels, in the order given.
type Series = (String, Vec<(String, String)>);

/// Counters and gauges by series.
#[derive(Default)]
pub struct PrometheusRecorder {
    series: Mutex<BTreeMap<Series, (Kind, Arc<AtomicU64>)>>,
}

impl PrometheusRecorder {
    fn cell(&self, key: &Key, kind: Kind) -> Arc<AtomicU64> {
        let series = (
            key.name().to_owned(),
            key.labels()
                .map(|label| (label.key().to_owned(), label.value().to_owned()))
                .collect(),
        );
        let mut all = self
            .series
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        all.entry(series)
            .or_insert_with(|| (kind, Arc::new(AtomicU64::new(0))))
            .1
            .clone()
    }

    /// The text exposition format: one `# TYPE` line per metric, then its series.
    pub fn render(&self) -> String {
        let all = self
            .series
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut text = String::new();
        let mut previous: Option<&str> = None;
        for ((name, labels), (kind, cell)) in all.iter() {
            if previous != Some(name.as_str()) {
                let kind_name = match kind {
                    Kind::Counter => "counter",
                    Kind::Gauge => "gauge",
                };
                let _ = writeln!(text, "# TYPE {name} {kind_name}");
                previous = Some(name.as_str());
            }
            text.push_str(name);
            if !labels.is_empty() {
                text.push('{');
                for (index, (key, value)) in labels.iter().enumerate() {
                    if index > 0 {
                        text.push(',');
                    }
                    let _ = write!(text, "{key}=\"{}\"", escape(value));
                }
                text.push('}');
            }
            let raw = cell.load(Ordering::Relaxed);
            let _ = match kind {
                Kind::Counter => writeln!(text, " {raw}"),
                // The facade stores a gauge's f64 as its bits.
                Kind::Gauge => writeln!(text, " {}", f64::from_bits(raw)),
            };
        }
        text
    }
}

/// A label value in the exposition format: backslash, double quote and newline escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Recorder for PrometheusRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(self.cell(key, Kind::Counter))
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(self.cell(key, Kind::Gauge))
    }

    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

/// Installs a [`PrometheusRecorder`] as the process's recorder and serves it on
/// `address` (through `carnet-http`, which alone speaks HTTP) until the task is aborted.
pub async fn serve(address: SocketAddr) -> std::io::Result<()> {
    let recorder = Arc::new(PrometheusRecorder::default());
    if metrics::set_global_recorder(recorder.clone()).is_err() {
        tracing::warn!("a metrics recorder was already installed: /metrics stays empty");
    }
    let listener = tokio::net::TcpListener::bind(address).await?;
    tracing::info!(%address, "metrics listening");
    carnet_http::serve::serve_metrics(listener, move || recorder.render()).await
}

#[cfg(test)]
mod tests {
    use super::PrometheusRecorder;

    #[test]
    fn counters_and_gauges_render_in_the_text_format() {
        let recorder = PrometheusRecorder::default();
        metrics::with_local_recorder(&recorder, || {
            let labels = [("target", "disque \"A\"")];
            metrics::counter!("carnet_backup_failures_total", &labels).increment(2);
            metrics::counter!("carnet_backup_failures_total", &labels).increment(1);
            metrics::gauge!("carnet_backup_bytes_added", &labels).set(1536.5);
        });
        assert_eq!(
            recorder.render(),
            "# TYPE carnet_backup_bytes_added gauge\n\
             carnet_backup_bytes_added{target=\"disque \\\"A\\\"\"} 1536.5\n\
             # TYPE carnet_backup_failures_total counter\n\
             carnet_backup_failures_total{target=\"disque \\\"A\\\"\"} 3\n"
        );
    }
}
