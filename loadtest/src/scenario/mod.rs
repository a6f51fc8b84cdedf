//! The scenarios, one module each, and what they share: the run context and the report.

pub mod idle;

use std::path::PathBuf;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::api::Api;
use crate::error::Result;
use crate::stats::{HubUsage, LatencySummary, Recorder, RunResult};
use crate::sys;

/// What every scenario gets.
pub struct Ctx {
    /// The hub's API.
    pub api: Api,
    /// An admin access token (for provisioning).
    pub admin: String,
    /// The hub's pid, to sample its CPU and memory.
    pub hub_pid: Option<u32>,
    /// Where results go.
    pub out: PathBuf,
    /// A short id of this run (tags provisioned data).
    pub run_id: String,
    /// The command line, for the result file.
    pub command: String,
    /// Hide progress bars (CI logs).
    pub quiet: bool,
}

impl Ctx {
    /// A progress bar of `len` steps.
    pub fn bar(&self, len: u64, what: &str) -> ProgressBar {
        if self.quiet {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new(len);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} {msg:<14} [{bar:40}] {pos}/{len} {elapsed_precise} {per_sec}",
            )
            .expect("constant template")
            .progress_chars("=> "),
        );
        bar.set_message(what.to_string());
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    }

    /// A sample of the hub, when its pid is known.
    pub fn sample(&self) -> Option<sys::ProcSample> {
        self.hub_pid.and_then(|p| sys::sample(p).ok())
    }
}

/// What a scenario measured, before it becomes a [`RunResult`].
pub struct Measured {
    /// Scenario name.
    pub scenario: &'static str,
    /// Parameters.
    pub params: serde_json::Value,
    /// Measured wall time.
    pub duration: Duration,
    /// Main operations completed in it.
    pub ops: u64,
    /// Latencies by operation.
    pub latencies: Vec<(&'static str, Recorder)>,
    /// Hub samples around the measured phase, plus the connection count for RSS per connection.
    pub hub: Option<(sys::ProcSample, sys::ProcSample, Option<u64>)>,
    /// The headline figure in words, e.g. "50000 sockets".
    pub headline: String,
}

/// Writes the JSON result and the plot, prints the summary line, returns the result.
pub fn report(ctx: &Ctx, m: Measured) -> Result<RunResult> {
    let throughput = m.ops as f64 / m.duration.as_secs_f64().max(1e-9);
    let hub = m
        .hub
        .map(|(a, b, conns)| HubUsage::between(a, b, m.ops, conns));
    let all_ok = m.latencies.iter().all(|(_, r)| r.failed == 0);
    let failures: u64 = m.latencies.iter().map(|(_, r)| r.failed).sum();
    let main = m
        .latencies
        .first()
        .map(|(op, r)| (op, r.ms(0.5), r.ms(0.99), r.ms(0.999)));
    let mut summary = format!("{}: {}, {:.0} ops/s", m.scenario, m.headline, throughput);
    if let Some((op, p50, p99, p999)) = main {
        summary.push_str(&format!(
            ", {op} p50 {p50:.3} ms p99 {p99:.3} ms p99.9 {p999:.3} ms"
        ));
    }
    if let Some(h) = &hub {
        summary.push_str(&format!(", hub {:.1} µs CPU/op", h.cpu_us_per_op));
        if let Some(kb) = h.rss_kb_per_connection {
            summary.push_str(&format!(", {kb:.1} KB/connection"));
        }
    }
    summary.push_str(&format!(", {failures} failures"));
    let result = RunResult {
        scenario: m.scenario.to_string(),
        command: ctx.command.clone(),
        started_at: chrono::Utc::now().to_rfc3339(),
        duration_secs: m.duration.as_secs_f64(),
        params: m.params,
        throughput_per_sec: throughput,
        latencies: m
            .latencies
            .iter()
            .map(|(op, r)| LatencySummary::of(op, r))
            .collect(),
        hub,
        summary: summary.clone(),
        all_ok,
    };
    let path = result.write(&ctx.out)?;
    let svg =
        crate::plot::latency_svg(&path, &format!("{} latency", m.scenario), &result.latencies)?;
    println!("{summary}");
    println!("result: {}  plot: {}", path.display(), svg.display());
    Ok(result)
}
