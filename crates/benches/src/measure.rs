//! Same-run comparisons: a figure beside its baseline, the ratio, the target.

use std::fmt;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

/// Environment variable naming a file that every summary line is appended to.
pub const SUMMARY_FILE_ENV: &str = "CCLAUNCH_BENCH_SUMMARY";

/// Records what each call of an `iter_custom` routine measured, so that a
/// bench computes its figure from its own timings.
///
/// Criterion calls the routine during warm-up first, then exactly
/// `sample_size` times to measure: the last `sample_size` records are the
/// measurement.
#[derive(Debug, Clone, Default)]
pub struct Recorder {
    records: Arc<Mutex<Vec<(u64, Duration)>>>,
}

impl Recorder {
    /// An empty recorder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that `iterations` took `elapsed` in all, and hands `elapsed`
    /// back (what `iter_custom` returns).
    pub fn record(&self, iterations: u64, elapsed: Duration) -> Duration {
        self.records.lock().push((iterations, elapsed));
        elapsed
    }

    /// Mean time of one iteration over the last `samples` records (all of
    /// them when there are fewer); `None` before anything was recorded.
    pub fn per_iteration(&self, samples: usize) -> Option<Duration> {
        let records = self.records.lock();
        let measured = &records[records.len().saturating_sub(samples)..];
        let iterations: u64 = measured.iter().map(|(n, _)| n).sum();
        let elapsed: Duration = measured.iter().map(|(_, d)| *d).sum();
        let iterations = u32::try_from(iterations).ok().filter(|n| *n > 0)?;
        Some(elapsed / iterations)
    }

    /// Every per-iteration time of the last `samples` records, for medians
    /// and spreads.
    pub fn samples(&self, samples: usize) -> Vec<Duration> {
        let records = self.records.lock();
        records[records.len().saturating_sub(samples)..]
            .iter()
            .filter_map(|(n, d)| u32::try_from(*n).ok().filter(|n| *n > 0).map(|n| *d / n))
            .collect()
    }
}

/// One measured quantity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Figure {
    /// Time per operation: lower is better.
    Time(Duration),
    /// Operations per second: higher is better.
    Rate(f64),
}

impl Figure {
    fn value(self) -> f64 {
        match self {
            Self::Time(time) => time.as_secs_f64(),
            Self::Rate(rate) => rate,
        }
    }
}

impl fmt::Display for Figure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Time(time) => write!(f, "{}", human(*time)),
            Self::Rate(rate) => write!(f, "{rate:.0}/s"),
        }
    }
}

/// Formats a duration with three significant digits in a fitting unit.
pub fn human(time: Duration) -> String {
    let secs = time.as_secs_f64();
    if secs >= 1.0 {
        format!("{secs:.3} s")
    } else if secs >= 1e-3 {
        format!("{:.3} ms", secs * 1e3)
    } else if secs >= 1e-6 {
        format!("{:.3} µs", secs * 1e6)
    } else {
        format!("{:.1} ns", secs * 1e9)
    }
}

/// What the ratio `measured / baseline` must be.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    /// At most this (times: at most N× the baseline's time).
    AtMost(f64),
    /// At least this (rates: at least N× the baseline's rate).
    AtLeast(f64),
    /// No target: the figure is informative.
    None,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AtMost(limit) => write!(f, "≤ {limit}"),
            Self::AtLeast(limit) => write!(f, "≥ {limit}"),
            Self::None => f.write_str("none"),
        }
    }
}

/// A figure, its same-run baseline and the target of their ratio.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// What was measured.
    pub what: String,
    /// The figure of cclaunch.
    pub measured: Figure,
    /// The baseline, measured in the same run.
    pub baseline: Figure,
    /// What the ratio must be.
    pub target: Target,
}

impl Comparison {
    /// `measured / baseline`.
    pub fn ratio(&self) -> f64 {
        self.measured.value() / self.baseline.value()
    }

    /// Whether the ratio meets the target (always, without one).
    pub fn met(&self) -> bool {
        let ratio = self.ratio();
        match self.target {
            Target::AtMost(limit) => ratio <= limit,
            Target::AtLeast(limit) => ratio >= limit,
            Target::None => true,
        }
    }

    /// The one summary line.
    pub fn line(&self) -> String {
        let verdict = match (self.target, self.met()) {
            (Target::None, _) => "informative",
            (_, true) => "met",
            (_, false) => "not met",
        };
        format!(
            "summary: {}: {} vs baseline {}: ratio {:.2} (target {}): {verdict}",
            self.what,
            self.measured,
            self.baseline,
            self.ratio(),
            self.target
        )
    }

    /// Prints [`Self::line`] to stdout, and appends it to the file named by
    /// [`SUMMARY_FILE_ENV`] when that is set.
    pub fn print(&self) {
        let line = self.line();
        println!("{line}");
        append_summary(&line);
    }
}

/// Prints the comparison of two time recorders over their last `samples`
/// records, or a notice naming what was not measured (a criterion filter
/// can leave one out).
pub fn compare_times(
    what: &str,
    measured: &Recorder,
    baseline: &Recorder,
    samples: usize,
    target: Target,
) -> Option<Comparison> {
    match (
        measured.per_iteration(samples),
        baseline.per_iteration(samples),
    ) {
        (Some(m), Some(b)) => {
            let comparison = Comparison {
                what: what.to_owned(),
                measured: Figure::Time(m),
                baseline: Figure::Time(b),
                target,
            };
            comparison.print();
            Some(comparison)
        }
        _ => {
            notice(&format!("{what}: not measured in this run (filtered out)"));
            None
        }
    }
}

/// Like [`compare_times`] for rates: each iteration did `per_iteration`
/// operations, and the figures are operations per second.
pub fn compare_rates(
    what: &str,
    measured: &Recorder,
    baseline: &Recorder,
    samples: usize,
    per_iteration: u64,
    target: Target,
) -> Option<Comparison> {
    let rate = |recorder: &Recorder| {
        recorder
            .per_iteration(samples)
            .filter(|time| !time.is_zero())
            .map(|time| per_iteration as f64 / time.as_secs_f64())
    };
    match (rate(measured), rate(baseline)) {
        (Some(m), Some(b)) => {
            let comparison = Comparison {
                what: what.to_owned(),
                measured: Figure::Rate(m),
                baseline: Figure::Rate(b),
                target,
            };
            comparison.print();
            Some(comparison)
        }
        _ => {
            notice(&format!("{what}: not measured in this run (filtered out)"));
            None
        }
    }
}

/// Prints a notice (a skipped bench, a note on a figure) the same way as a
/// summary line.
pub fn notice(text: &str) {
    let line = format!("summary: {text}");
    println!("{line}");
    append_summary(&line);
}

fn append_summary(line: &str) {
    let Some(path) = std::env::var_os(SUMMARY_FILE_ENV) else {
        return;
    };
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut file| writeln!(file, "{line}"));
    if let Err(error) = written {
        eprintln!(
            "cannot append to {}: {error}",
            std::path::Path::new(&path).display()
        );
    }
}

/// The peak resident set size of this process (`VmHWM` in
/// `/proc/self/status`), in KiB; `None` where there is no such file.
pub fn peak_rss_kib() -> Option<u64> {
    status_field("VmHWM:")
}

/// The current resident set size (`VmRSS`), in KiB.
pub fn rss_kib() -> Option<u64> {
    status_field("VmRSS:")
}

fn status_field(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
}

/// The `q`-quantile (0.0–1.0) of `sorted`, by the nearest-rank rule.
pub fn quantile(sorted: &[Duration], q: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.saturating_sub(1)).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_samples_are_the_measurement() {
        let recorder = Recorder::new();
        recorder.record(1, Duration::from_millis(100)); // warm-up
        recorder.record(2, Duration::from_millis(20));
        recorder.record(4, Duration::from_millis(40));
        assert_eq!(recorder.per_iteration(2), Some(Duration::from_millis(10)));
        assert_eq!(
            recorder.per_iteration(10),
            Some(Duration::from_millis(160) / 7)
        );
        assert_eq!(recorder.samples(2).len(), 2);
        assert_eq!(Recorder::new().per_iteration(3), None);
    }

    #[test]
    fn ratios_are_judged_in_the_right_direction() {
        let time = Comparison {
            what: "t".into(),
            measured: Figure::Time(Duration::from_millis(3)),
            baseline: Figure::Time(Duration::from_millis(1)),
            target: Target::AtMost(2.0),
        };
        assert!(!time.met());
        assert!(time.line().ends_with("ratio 3.00 (target ≤ 2): not met"));
        let rate = Comparison {
            what: "r".into(),
            measured: Figure::Rate(800.0),
            baseline: Figure::Rate(1000.0),
            target: Target::AtLeast(0.7),
        };
        assert!(rate.met());
        assert!(rate.line().ends_with("ratio 0.80 (target ≥ 0.7): met"));
    }

    #[test]
    fn quantiles_use_the_nearest_rank() {
        let sorted: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(quantile(&sorted, 0.5), Some(Duration::from_millis(50)));
        assert_eq!(quantile(&sorted, 0.99), Some(Duration::from_millis(99)));
        assert_eq!(quantile(&sorted, 1.0), Some(Duration::from_millis(100)));
        assert_eq!(quantile(&[], 0.5), None);
    }

    #[test]
    fn this_process_has_a_peak_rss() {
        // The resident set only grows between the two reads, so read it first.
        let now = rss_kib().expect("linux has VmRSS");
        let peak = peak_rss_kib().expect("linux has VmHWM");
        assert!(peak >= now && now > 0, "peak {peak} KiB, now {now} KiB");
    }
}
