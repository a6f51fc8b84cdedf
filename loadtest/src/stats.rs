//! Latency recording (HDR histograms, microseconds), the result file and the one-line summary.

use std::path::{Path, PathBuf};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::error::Result;
use crate::sys::ProcSample;

/// Latencies of one kind of operation plus its success and failure counts.
#[derive(Debug, Clone)]
pub struct Recorder {
    /// Microseconds, 1 µs to 60 s, 3 significant digits.
    pub hist: Histogram<u64>,
    /// Operations that succeeded.
    pub ok: u64,
    /// Operations that failed.
    pub failed: u64,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder {
            hist: Histogram::new_with_bounds(1, 60_000_000, 3).expect("constant bounds are valid"),
            ok: 0,
            failed: 0,
        }
    }
}

impl Recorder {
    /// A success that took `latency`.
    pub fn ok(&mut self, latency: Duration) {
        self.ok += 1;
        let us = (latency.as_micros() as u64).clamp(1, 60_000_000);
        self.hist.saturating_record(us);
    }

    /// A failure.
    pub fn fail(&mut self) {
        self.failed += 1;
    }

    /// Folds another recorder into this one.
    pub fn merge(&mut self, other: &Recorder) {
        self.ok += other.ok;
        self.failed += other.failed;
        self.hist.add(&other.hist).expect("same bounds");
    }

    /// Percentile in milliseconds.
    pub fn ms(&self, q: f64) -> f64 {
        self.hist.value_at_quantile(q) as f64 / 1000.0
    }
}

/// Latency figures of one operation in the result file.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LatencySummary {
    /// Operation name.
    pub op: String,
    /// Successes.
    pub ok: u64,
    /// Failures.
    pub failed: u64,
    /// Milliseconds at p50.
    pub p50_ms: f64,
    /// p90.
    pub p90_ms: f64,
    /// p99.
    pub p99_ms: f64,
    /// p99.9.
    pub p999_ms: f64,
    /// Max.
    pub max_ms: f64,
    /// (percentile, ms) points for plotting.
    pub percentiles: Vec<(f64, f64)>,
}

impl LatencySummary {
    /// Summarises a recorder.
    pub fn of(op: &str, r: &Recorder) -> Self {
        let qs = [
            0.0, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 0.9995, 0.9999, 1.0,
        ];
        LatencySummary {
            op: op.to_string(),
            ok: r.ok,
            failed: r.failed,
            p50_ms: r.ms(0.5),
            p90_ms: r.ms(0.9),
            p99_ms: r.ms(0.99),
            p999_ms: r.ms(0.999),
            max_ms: r.hist.max() as f64 / 1000.0,
            percentiles: qs.iter().map(|q| (q * 100.0, r.ms(*q))).collect(),
        }
    }
}

/// Hub resource use over the measured phase.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HubUsage {
    /// CPU seconds the hub used.
    pub cpu_seconds: f64,
    /// CPU microseconds per measured operation.
    pub cpu_us_per_op: f64,
    /// RSS at the end, bytes.
    pub rss_bytes: u64,
    /// RSS growth over the run divided by connections, KB.
    pub rss_kb_per_connection: Option<f64>,
}

impl HubUsage {
    /// From two samples around the measured phase.
    pub fn between(
        before: ProcSample,
        after: ProcSample,
        ops: u64,
        connections: Option<u64>,
    ) -> Self {
        let cpu = after.cpu.saturating_sub(before.cpu);
        HubUsage {
            cpu_seconds: cpu.as_secs_f64(),
            cpu_us_per_op: if ops == 0 {
                0.0
            } else {
                cpu.as_micros() as f64 / ops as f64
            },
            rss_bytes: after.rss_bytes,
            rss_kb_per_connection: connections.filter(|c| *c > 0).map(|c| {
                after.rss_bytes.saturating_sub(before.rss_bytes) as f64 / 1024.0 / c as f64
            }),
        }
    }
}

/// The JSON result of one run.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunResult {
    /// Scenario name.
    pub scenario: String,
    /// The command line.
    pub command: String,
    /// When it started (RFC 3339).
    pub started_at: String,
    /// Wall time of the measured phase, seconds.
    pub duration_secs: f64,
    /// Scenario parameters.
    pub params: serde_json::Value,
    /// Operations per second over the measured phase (the scenario's main operation).
    pub throughput_per_sec: f64,
    /// Latency per operation kind.
    pub latencies: Vec<LatencySummary>,
    /// Hub resource use, when `--hub-pid` was given.
    pub hub: Option<HubUsage>,
    /// The one-line summary.
    pub summary: String,
    /// True when every operation succeeded.
    pub all_ok: bool,
}

impl RunResult {
    /// Writes `<dir>/<scenario>-<timestamp>.json` and returns its path.
    pub fn write(&self, dir: &Path) -> Result<PathBuf> {
        std::fs::create_dir_all(dir)?;
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S");
        let path = dir.join(format!("{}-{stamp}.json", self.scenario));
        std::fs::write(
            &path,
            serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?,
        )?;
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_merge() {
        let mut a = Recorder::default();
        for ms in 1..=100 {
            a.ok(Duration::from_millis(ms));
        }
        let mut b = Recorder::default();
        b.fail();
        a.merge(&b);
        assert_eq!((a.ok, a.failed), (100, 1));
        let s = LatencySummary::of("x", &a);
        assert!((s.p50_ms - 50.0).abs() < 1.0, "{}", s.p50_ms);
        assert!((s.max_ms - 100.0).abs() < 1.0);
    }
}
