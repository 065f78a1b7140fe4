//! Metrics under Fabric's names, rendered as Prometheus text.

use std::time::Duration;

use launch_fsm::Phase;
use parking_lot::Mutex;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LaunchLabels {
    chaincode: String,
    success: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChaincodeLabels {
    chaincode: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabels {
    phase: String,
}

fn launch_histogram() -> Histogram {
    // 5 ms .. ~160 s: an in-process launch up to a slow image build.
    Histogram::new(exponential_buckets(0.005, 2.0, 16))
}

/// The runtime's metrics: `chaincode_launch_duration{chaincode,success}`,
/// `chaincode_launch_failures`, `chaincode_launch_timeouts`,
/// `chaincode_execute_timeouts` (Fabric's names) and `chaincode_phase`, the
/// number of chaincodes in each phase.
///
/// Series labelled with a chaincode exist only while the runtime knows the
/// chaincode: they go when its entry is forgotten, so their number is
/// bounded by [`crate::SupportConfig::max_chaincodes`].
#[derive(Debug)]
pub struct Metrics {
    registry: Mutex<Registry>,
    launch_duration: Family<LaunchLabels, Histogram, fn() -> Histogram>,
    launch_failures: Family<ChaincodeLabels, Counter>,
    launch_timeouts: Family<ChaincodeLabels, Counter>,
    execute_timeouts: Family<ChaincodeLabels, Counter>,
    phases: Family<PhaseLabels, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Fresh metrics in their own registry.
    pub fn new() -> Self {
        let launch_duration: Family<LaunchLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(launch_histogram);
        let launch_failures = Family::<ChaincodeLabels, Counter>::default();
        let launch_timeouts = Family::<ChaincodeLabels, Counter>::default();
        let execute_timeouts = Family::<ChaincodeLabels, Counter>::default();
        let phases = Family::<PhaseLabels, Gauge>::default();
        let mut registry = Registry::default();
        registry.register(
            "chaincode_launch_duration",
            "The time to launch a chaincode, in seconds",
            launch_duration.clone(),
        );
        registry.register(
            "chaincode_launch_failures",
            "The number of chaincode launches that failed",
            launch_failures.clone(),
        );
        registry.register(
            "chaincode_launch_timeouts",
            "The number of chaincode launches that timed out",
            launch_timeouts.clone(),
        );
        registry.register(
            "chaincode_execute_timeouts",
            "The number of chaincode executions that timed out",
            execute_timeouts.clone(),
        );
        registry.register(
            "chaincode_phase",
            "The number of chaincodes in each launch phase",
            phases.clone(),
        );
        Self {
            registry: Mutex::new(registry),
            launch_duration,
            launch_failures,
            launch_timeouts,
            execute_timeouts,
            phases,
        }
    }

    pub(crate) fn launch_finished(
        &self,
        chaincode: &str,
        took: Duration,
        success: bool,
        timed_out: bool,
    ) {
        self.launch_duration
            .get_or_create(&LaunchLabels {
                chaincode: chaincode.to_owned(),
                success: success.to_string(),
            })
            .observe(took.as_secs_f64());
        let labels = ChaincodeLabels {
            chaincode: chaincode.to_owned(),
        };
        if !success {
            self.launch_failures.get_or_create(&labels).inc();
        }
        if timed_out {
            self.launch_timeouts.get_or_create(&labels).inc();
        }
    }

    pub(crate) fn execute_timed_out(&self, chaincode: &str) {
        self.execute_timeouts
            .get_or_create(&ChaincodeLabels {
                chaincode: chaincode.to_owned(),
            })
            .inc();
    }

    pub(crate) fn phase_changed(&self, from: Option<Phase>, to: Option<Phase>) {
        if let Some(from) = from {
            self.phases
                .get_or_create(&PhaseLabels {
                    phase: from.to_string(),
                })
                .dec();
        }
        if let Some(to) = to {
            self.phases
                .get_or_create(&PhaseLabels {
                    phase: to.to_string(),
                })
                .inc();
        }
    }

    /// Removes every series labelled with `chaincode` (its entry is gone).
    pub(crate) fn forget(&self, chaincode: &str) {
        for success in [true, false] {
            self.launch_duration.remove(&LaunchLabels {
                chaincode: chaincode.to_owned(),
                success: success.to_string(),
            });
        }
        let labels = ChaincodeLabels {
            chaincode: chaincode.to_owned(),
        };
        self.launch_failures.remove(&labels);
        self.launch_timeouts.remove(&labels);
        self.execute_timeouts.remove(&labels);
    }

    /// The metrics in OpenMetrics text (`application/openmetrics-text`):
    /// counters end in `_total`, the body in `# EOF`.
    pub fn render_openmetrics(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry.lock());
        text
    }

    /// The metrics in Prometheus text format 0.0.4
    /// (`text/plain; version=0.0.4`), as Fabric serves them: counters under
    /// Fabric's names (no `_total`), no `# EOF`.
    pub fn render(&self) -> String {
        to_prometheus_text(&self.render_openmetrics())
    }
}

/// Rewrites OpenMetrics text as Prometheus 0.0.4 text: a counter family's
/// `_total` samples take the family's own name, `_created` samples and
/// `# UNIT`/`# EOF` lines (which 0.0.4 has not) go.
fn to_prometheus_text(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    let mut counter: Option<&str> = None;
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            counter = match rest.split_once(' ') {
                Some((family, "counter")) => Some(family),
                _ => None,
            };
        } else if let Some(family) = counter
            && let Some(rest) = line.strip_prefix(family)
        {
            if let Some(sample) = rest.strip_prefix("_total") {
                out.push_str(family);
                out.push_str(sample);
                out.push('\n');
                continue;
            }
            if rest.starts_with("_created") {
                continue;
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_text_keeps_fabrics_counter_names_and_has_no_eof() {
        let metrics = Metrics::new();
        metrics.execute_timed_out("kv:1.0");
        let open = metrics.render_openmetrics();
        assert!(
            open.contains("chaincode_execute_timeouts_total{chaincode=\"kv:1.0\"} 1"),
            "{open}"
        );
        assert!(open.trim_end().ends_with("# EOF"), "{open}");

        let text = metrics.render();
        assert!(
            text.contains("# TYPE chaincode_execute_timeouts counter"),
            "{text}"
        );
        assert!(
            text.contains("\nchaincode_execute_timeouts{chaincode=\"kv:1.0\"} 1\n"),
            "{text}"
        );
        assert!(!text.contains("_total"), "{text}");
        assert!(!text.contains("# EOF"), "{text}");
        // Gauges and histograms are the same in both formats.
        for line in open.lines().filter(|l| l.starts_with("chaincode_phase")) {
            assert!(text.contains(line), "{line} missing from {text}");
        }
    }
}
