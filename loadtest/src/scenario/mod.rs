//! The scenarios, one module each, and what they share: the run context and the report.

pub mod autosave;
pub mod events;
pub mod exam;
pub mod fanout;
pub mod fixture;
pub mod idle;
pub mod media;
pub mod reconnect;
pub mod relay;
pub mod soak;

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use signaling::EventId;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use uuid::Uuid;

use crate::api::Api;
use crate::error::Result;
use crate::stats::{HubUsage, LatencySummary, Recorder, RunResult};
use crate::sys;
use crate::ws::Tx;

/// What every scenario gets.
pub struct Ctx {
    /// The hub's API.
    pub api: Api,
    /// An admin access token (for provisioning).
    pub admin: String,
    /// The admin's refresh token, for runs that outlive the access token (the soak).
    pub admin_refresh: Option<String>,
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

    /// A copy of this context with a fresh admin access token (for clean-up after a run longer
    /// than an access token lives). Without a refresh token, or when refreshing fails (said on
    /// stderr), a copy with the same token: the clean-up then reports what went wrong.
    pub async fn renewed(&self) -> Ctx {
        let (admin, admin_refresh) = match &self.admin_refresh {
            Some(r) => match self.api.refresh(r).await {
                Ok(t) => (t.access, Some(t.refresh)),
                Err(e) => {
                    eprintln!("warning: could not refresh the admin token: {e}");
                    (self.admin.clone(), None)
                }
            },
            None => (self.admin.clone(), None),
        };
        Ctx {
            api: self.api.clone(),
            admin,
            admin_refresh,
            hub_pid: self.hub_pid,
            out: self.out.clone(),
            run_id: self.run_id.clone(),
            command: self.command.clone(),
            quiet: self.quiet,
        }
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
    report_at(ctx, m).map(|(r, _)| r)
}

/// [`report`], also returning the result file's path (for scenarios that draw more plots).
pub fn report_at(ctx: &Ctx, m: Measured) -> Result<(RunResult, PathBuf)> {
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
    Ok((result, path))
}

/// The process-wide origin that intended send times are counted from (they travel inside
/// signals and event ids as microseconds since it).
pub fn origin() -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

/// Microseconds from [`origin`] to `t`.
pub fn micros(t: Instant) -> u64 {
    t.saturating_duration_since(origin()).as_micros() as u64
}

/// The instant `us` microseconds after [`origin`].
pub fn instant_of(us: u64) -> Instant {
    origin() + Duration::from_micros(us)
}

/// An open-loop schedule: operation `n` is due at `start + n / rate`, whatever happened to the
/// earlier ones, and latency counts from that intended time (no coordinated omission).
pub struct Pacer {
    start: Instant,
    rate: f64,
    n: u64,
}

impl Pacer {
    /// `rate` operations per second from now.
    pub fn new(rate: f64) -> Self {
        Pacer {
            start: Instant::now(),
            rate: rate.max(1e-3),
            n: 0,
        }
    }

    /// Waits until the next operation is due; returns (its index, its intended time).
    pub async fn next(&mut self) -> (u64, Instant) {
        let due = self.start + Duration::from_secs_f64(self.n as f64 / self.rate);
        // A due time in the past must not wait for a timer tick (that would cap the rate).
        if due > Instant::now() {
            tokio::time::sleep_until(due).await;
        }
        self.n += 1;
        (self.n - 1, due)
    }

    /// When the schedule started.
    pub fn start(&self) -> Instant {
        self.start
    }
}

/// A stop flag shared by a scenario's tasks (several scenarios' tasks, in the soak): tasks
/// poll it between operations or wait on it beside a timer.
#[derive(Clone)]
pub struct Stop(Arc<watch::Sender<bool>>);

impl Default for Stop {
    fn default() -> Self {
        Stop(Arc::new(watch::channel(false).0))
    }
}

impl Stop {
    /// Asks every task to stop.
    pub fn set(&self) {
        self.0.send_replace(true);
    }

    /// Whether stop was asked.
    pub fn is_set(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once stop is asked (at once if it already was).
    pub async fn wait(&self) {
        let mut rx = self.0.subscribe();
        let _ = rx.wait_for(|s| *s).await;
    }
}

/// A recorder that many tasks feed and that keeps two views: the whole run, and the current
/// window, which [`Shared::take_window`] hands over and restarts (the soak's per-interval
/// percentiles). A std mutex: held for one histogram update, never across an `.await`.
#[derive(Clone, Default)]
pub struct Shared(Arc<Mutex<(Recorder, Recorder)>>);

impl Shared {
    fn with(&self, f: impl Fn(&mut Recorder)) {
        let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut g.0);
        f(&mut g.1);
    }

    /// A success that took `latency`.
    pub fn ok(&self, latency: Duration) {
        self.with(|r| r.ok(latency));
    }

    /// A failure.
    pub fn fail(&self) {
        self.with(|r| r.fail());
    }

    /// Folds a task's own recorder in.
    pub fn merge(&self, other: &Recorder) {
        self.with(|r| r.merge(other));
    }

    /// The current window's recorder; a new window starts empty.
    pub fn take_window(&self) -> Recorder {
        let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::take(&mut g.1)
    }

    /// Everything recorded since the start.
    pub fn total(&self) -> Recorder {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).0.clone()
    }
}

/// An event id that carries its intended send time, so whoever receives it (the ack, a
/// proctor's `session-update`) can compute latency without a shared table: the high half is
/// this run's tag and a sequence number (unique), the low half the intended time in µs.
pub fn stamped_event_id(tag: u32, seq: u64, intended: Instant) -> EventId {
    let hi = (u64::from(tag) << 32) | (seq & 0xffff_ffff);
    EventId::from_uuid(Uuid::from_u64_pair(hi, micros(intended)))
}

/// The intended send time inside an id made by [`stamped_event_id`] with `tag`.
pub fn intended_of(tag: u32, id: &EventId) -> Option<Instant> {
    let (hi, lo) = id.as_uuid().as_u64_pair();
    ((hi >> 32) as u32 == tag).then(|| instant_of(lo))
}

/// A random tag for [`stamped_event_id`].
pub fn run_tag() -> u32 {
    (Uuid::new_v4().as_u64_pair().0 >> 32) as u32
}

/// Drives a socket's sending half from a channel of encoded frames, so several tasks (a
/// scheduler, the reader echoing) can send on it; closes the socket when every sender is gone.
pub fn spawn_writer(mut tx: Tx) -> (mpsc::UnboundedSender<String>, JoinHandle<()>) {
    let (send, mut recv) = mpsc::unbounded_channel::<String>();
    let task = tokio::spawn(async move {
        while let Some(text) = recv.recv().await {
            if tx.send_text(text).await.is_err() {
                break;
            }
        }
        tx.close().await;
    });
    (send, task)
}

/// Hub CPU between two samples and RSS growth from `rss_from`, for [`Measured::hub`].
pub fn hub_window(
    rss_from: Option<sys::ProcSample>,
    cpu_from: Option<sys::ProcSample>,
    to: Option<sys::ProcSample>,
    connections: Option<u64>,
) -> Option<(sys::ProcSample, sys::ProcSample, Option<u64>)> {
    match (rss_from, cpu_from, to) {
        (Some(r), Some(c), Some(t)) => Some((
            sys::ProcSample {
                cpu: c.cpu,
                rss_bytes: r.rss_bytes,
            },
            t,
            connections,
        )),
        _ => None,
    }
}

/// A device's reader: times every `event-ack` from the event's intended send time (its id
/// carries it), counts acks, and counts errors and unexpected ends as failures.
pub async fn count_acks(
    mut rx: crate::ws::Rx,
    tag: u32,
    acked: std::sync::Arc<std::sync::atomic::AtomicU64>,
    stop: Stop,
) -> Recorder {
    let mut r = Recorder::default();
    loop {
        match rx.recv().await {
            Ok(signaling::ServerMessage::EventAck { event_id }) => {
                if let Some(t) = intended_of(tag, &event_id) {
                    r.ok(t.elapsed());
                    acked.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok(signaling::ServerMessage::Error { .. }) => r.fail(),
            Ok(_) => {}
            Err(_) => {
                if !stop.is_set() {
                    r.fail();
                }
                return r;
            }
        }
    }
}
