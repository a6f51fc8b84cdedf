//! S8: the soak. S1 (idle sockets heartbeating), S2 (relay round trips in rooms) and S5
//! (durable autosave) run together, each with its own open-loop schedule, until one shared
//! deadline (`--duration-secs`, an hour by default). Every `--window-secs` the hub's RSS and
//! CPU are sampled and each load's window of latencies is taken and restarted, so the result
//! holds p99 / p99.9 per window; the RSS drift is the slope of a least-squares line through the
//! windows' RSS after `--warmup-secs`, in % of the mean per hour. A timeline plot (p99.9 per
//! window and RSS against time) goes beside the usual latency plot.
//!
//! Access tokens live at most 15 minutes: the autosaving candidates' tokens are refreshed at
//! half their life while the soak runs, and the admin's before the clean-up.

use std::sync::atomic::Ordering;
use std::time::Duration;

use clap::Args;
use serde::Serialize;
use serde_json::json;
use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::plot::{timeline_svg, Line};
use crate::scenario::autosave::{self, AutosaveArgs};
use crate::scenario::fixture::Fixture;
use crate::scenario::idle::{IdleArgs, IdleLoad};
use crate::scenario::relay::{self, RelayRooms};
use crate::scenario::{hub_window, report_at, Ctx, Measured, Shared, Stop};
use crate::stats::{Recorder, RunResult};

/// Longest soak: the hub's refresh-token families live 12 h, exams at most 24 h.
const MAX_SECS: u64 = 11 * 3600;

/// Knobs of the soak.
#[derive(Debug, Clone, Args, Serialize)]
pub struct SoakArgs {
    /// How long the three loads run together, seconds (at most 11 h).
    #[arg(long, default_value_t = 3600)]
    pub duration_secs: u64,
    /// Sampling window, seconds: RSS and per-window percentiles at the end of each.
    #[arg(long, default_value_t = 60)]
    pub window_secs: u64,
    /// Windows ending before this are left out of the RSS fit (pools and caches fill first).
    #[arg(long, default_value_t = 300)]
    pub warmup_secs: u64,
    /// S1: idle sockets.
    #[arg(long, default_value_t = 1000)]
    pub idle_sockets: u64,
    /// S1: new sockets per second while ramping up.
    #[arg(long, default_value_t = 2000)]
    pub ramp_per_sec: u64,
    /// S1: heartbeat interval per socket, ms.
    #[arg(long, default_value_t = 5000)]
    pub heartbeat_ms: u64,
    /// S2: rooms of laptop + phone + proctors.
    #[arg(long, default_value_t = 50)]
    pub relay_rooms: usize,
    /// S2: proctors per room.
    #[arg(long, default_value_t = 3)]
    pub relay_proctors: usize,
    /// S2: round trips per second over all rooms.
    #[arg(long, default_value_t = 250)]
    pub relay_rate: u64,
    /// S5: sessions saving.
    #[arg(long, default_value_t = 100)]
    pub autosave_sessions: usize,
    /// S5: questions per exam.
    #[arg(long, default_value_t = 5)]
    pub questions: usize,
    /// S5: saves per second.
    #[arg(long, default_value_t = 200)]
    pub autosave_rate: u64,
    /// S5: requests in flight at most.
    #[arg(long, default_value_t = 256)]
    pub max_in_flight: usize,
    /// Candidate accounts at most, per load (S2 and S5 each provision their own).
    #[arg(long, default_value_t = 100)]
    pub candidates: usize,
}

impl SoakArgs {
    fn idle(&self) -> IdleArgs {
        IdleArgs {
            sockets: self.idle_sockets,
            ramp_per_sec: self.ramp_per_sec,
            heartbeat_ms: self.heartbeat_ms,
            duration_secs: self.duration_secs,
            login_email: None,
            login_password: String::new(),
        }
    }

    fn autosave(&self) -> AutosaveArgs {
        AutosaveArgs {
            sessions: self.autosave_sessions,
            questions: self.questions,
            rate: self.autosave_rate,
            duration_secs: self.duration_secs,
            max_in_flight: self.max_in_flight,
            answer_bytes: 200,
            candidates: self.candidates,
        }
    }
}

/// Percentiles of one load in one window.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WindowPercentiles {
    /// Operations that succeeded in the window.
    pub ok: u64,
    /// Operations that failed in the window.
    pub failed: u64,
    /// p99, ms.
    pub p99_ms: f64,
    /// p99.9, ms.
    pub p999_ms: f64,
}

impl WindowPercentiles {
    fn of(r: &Recorder) -> Self {
        WindowPercentiles {
            ok: r.ok,
            failed: r.failed,
            p99_ms: r.ms(0.99),
            p999_ms: r.ms(0.999),
        }
    }
}

/// One sampling window.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SoakWindow {
    /// Seconds from the start of the soak to the end of this window.
    pub end_secs: f64,
    /// The hub's RSS at the end of the window (with `--hub-pid`).
    pub rss_bytes: Option<u64>,
    /// Hub CPU seconds used in the window (with `--hub-pid`).
    pub hub_cpu_secs: Option<f64>,
    /// S2 round trips.
    pub relay: WindowPercentiles,
    /// S5 saves.
    pub autosave: WindowPercentiles,
    /// S1 heartbeats.
    pub heartbeat: WindowPercentiles,
}

/// A least-squares line through some points.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Fit {
    /// Slope, per unit of x.
    slope: f64,
    /// Mean of y.
    mean: f64,
    /// Standard error of the slope (`None` with fewer than three points).
    slope_se: Option<f64>,
}

/// The least-squares line through `points`; `None` with fewer than two distinct x.
fn fit(points: &[(f64, f64)]) -> Option<Fit> {
    let n = points.len() as f64;
    if points.len() < 2 {
        return None;
    }
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    if sxx <= 0.0 {
        return None;
    }
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let slope = sxy / sxx;
    let slope_se = (points.len() > 2).then(|| {
        let residuals: f64 = points
            .iter()
            .map(|p| (p.1 - my - slope * (p.0 - mx)).powi(2))
            .sum();
        (residuals / (n - 2.0) / sxx).sqrt()
    });
    Some(Fit {
        slope,
        mean: my,
        slope_se,
    })
}

/// RSS drift in % of the mean RSS per hour, with the half-width of its 95 % confidence
/// interval (1.96 standard errors of the slope; `None` with fewer than three windows), over the
/// windows ending after `warmup_secs` (all of them when fewer than two do); `None` without RSS
/// samples. Minute-to-minute RSS is autocorrelated (allocator pages come and go in runs), so
/// the interval is a lower bound on the real uncertainty.
pub fn rss_drift_pct_per_hour(
    windows: &[SoakWindow],
    warmup_secs: f64,
) -> Option<(f64, Option<f64>)> {
    let all: Vec<(f64, f64)> = windows
        .iter()
        .filter_map(|w| w.rss_bytes.map(|r| (w.end_secs, r as f64)))
        .collect();
    let late: Vec<(f64, f64)> = all.iter().copied().filter(|p| p.0 > warmup_secs).collect();
    let points = if late.len() >= 2 { late } else { all };
    let f = fit(&points)?;
    let per_hour = |per_sec: f64| per_sec * 3600.0 / f.mean * 100.0;
    (f.mean > 0.0).then(|| (per_hour(f.slope), f.slope_se.map(|se| 1.96 * per_hour(se))))
}

/// Runs S8.
pub async fn run(ctx: &Ctx, args: SoakArgs) -> Result<RunResult> {
    if args.duration_secs == 0 || args.window_secs == 0 {
        return Err(Error::Usage("duration and window must be positive".into()));
    }
    if args.duration_secs > MAX_SECS {
        return Err(Error::Usage(format!(
            "--duration-secs at most {MAX_SECS}: the hub's refresh-token families live 12 h"
        )));
    }
    if args.idle_sockets == 0
        || args.relay_rooms == 0
        || args.relay_rate == 0
        || args.ramp_per_sec == 0
        || args.heartbeat_ms == 0
    {
        return Err(Error::Usage(
            "idle sockets, ramp, heartbeat, relay rooms and relay rate must be positive".into(),
        ));
    }
    relay::check_rate(args.relay_rate, args.relay_rooms)?;
    autosave::check(&args.autosave())?;
    crate::sys::ensure_fds(
        args.idle_sockets
            + (args.relay_rooms * (2 + args.relay_proctors)) as u64
            + args.max_in_flight as u64,
    )?;
    // Sessions must outlast the soak (and its set-up).
    let minutes = (args.duration_secs / 60 + 30).min(24 * 60) as u32;
    let relay_fx = Fixture::provision_for(
        ctx,
        relay::plan(args.relay_rooms, args.relay_proctors, args.candidates),
        minutes,
    )
    .await?;
    let save_fx = match Fixture::provision_for(ctx, autosave::plan(&args.autosave()), minutes).await
    {
        Ok(fx) => fx,
        Err(e) => {
            relay_fx.cleanup(ctx).await?;
            return Err(e);
        }
    };
    let (result, fresh) = soak(ctx, &args, &relay_fx, &save_fx).await;
    relay_fx.cleanup(&fresh).await?;
    save_fx.cleanup(&fresh).await?;
    result
}

/// The soak itself; also returns a context whose admin token is fresh, for the clean-up.
async fn soak(
    ctx: &Ctx,
    args: &SoakArgs,
    relay_fx: &Fixture,
    save_fx: &Fixture,
) -> (Result<RunResult>, Ctx) {
    let stop = Stop::default();
    let account = match IdleLoad::account(ctx, &args.idle()).await {
        Ok(a) => a,
        Err(e) => return (Err(e), ctx.renewed().await),
    };
    let rss_before = ctx.sample();
    let idle = match IdleLoad::start(ctx, &args.idle(), account, &stop).await {
        Ok(l) => l,
        Err(e) => return (Err(e), ctx.renewed().await),
    };
    let rooms = match RelayRooms::open(ctx, relay_fx, args.relay_proctors).await {
        Ok(r) => r,
        Err(e) => {
            stop.set();
            let fresh = ctx.renewed().await;
            let _ = idle.finish(&fresh).await;
            return (Err(e), fresh);
        }
    };
    let saves = Shared::default();
    let save_args = args.autosave();
    let hidden = indicatif::ProgressBar::hidden();
    let total = Duration::from_secs(args.duration_secs);
    let window = Duration::from_secs(args.window_secs);
    let beats0 = idle.beats.load(Ordering::Relaxed);
    let cpu_before = ctx.sample();
    let t0 = Instant::now();
    let deadline = t0 + total;

    // The three loads and the sampler, until the shared deadline.
    let relay_load = rooms.drive(
        args.relay_rate,
        args.relay_rate * args.duration_secs,
        &stop,
        &hidden,
    );
    let save_load = autosave::drive(
        ctx,
        &save_args,
        save_fx,
        args.autosave_rate * args.duration_secs,
        &saves,
        &stop,
        &hidden,
    );
    let refresher = async {
        let every = (save_fx.token_ttl() / 2).max(Duration::from_secs(5));
        let mut failures = 0u64;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {
                    if save_fx.refresh_tokens(ctx).await.is_err() {
                        failures += 1;
                    }
                }
                _ = stop.wait() => break,
            }
        }
        failures
    };
    let sampler = async {
        let bar = ctx.bar(args.duration_secs, "soaking");
        let mut windows = Vec::new();
        let mut last_cpu = cpu_before;
        let mut next = t0 + window;
        loop {
            let now = Instant::now();
            let wake = (now + Duration::from_secs(1)).min(next).min(deadline);
            tokio::time::sleep_until(wake).await;
            let now = Instant::now();
            bar.set_position(now.saturating_duration_since(t0).as_secs());
            if now >= next || now >= deadline {
                let s = ctx.sample();
                windows.push(SoakWindow {
                    end_secs: now.saturating_duration_since(t0).as_secs_f64(),
                    rss_bytes: s.map(|s| s.rss_bytes),
                    hub_cpu_secs: s
                        .zip(last_cpu)
                        .map(|(s, l)| s.cpu.saturating_sub(l.cpu).as_secs_f64()),
                    relay: WindowPercentiles::of(&rooms.rtt.take_window()),
                    autosave: WindowPercentiles::of(&saves.take_window()),
                    heartbeat: WindowPercentiles::of(&idle.heartbeat.take_window()),
                });
                last_cpu = s.or(last_cpu);
                next += window;
            }
            if now >= deadline {
                break;
            }
        }
        stop.set();
        bar.finish();
        windows
    };
    let ((relay_sent, _), saved, refresh_failures, windows) =
        tokio::join!(relay_load, save_load, refresher, sampler);
    let measured = t0.elapsed();
    rooms.drain(relay_sent).await;
    let cpu_after = ctx.sample();
    let beats = idle.beats.load(Ordering::Relaxed) - beats0;
    let (rtt, join, heartbeat) = (
        rooms.rtt.clone(),
        rooms.join.clone(),
        idle.heartbeat.clone(),
    );
    let fresh = ctx.renewed().await;
    let closed = rooms.close(relay_sent).await;
    let connected = idle.finish(&fresh).await;
    let result = match (closed, connected, saved) {
        (Ok(got), Ok(connect), Ok((saves_offered, _))) => finish(
            ctx,
            args,
            Totals {
                measured,
                windows,
                relay_sent,
                relay_got: got,
                saves_offered,
                beats,
                refresh_failures,
                rtt: rtt.total(),
                saves: saves.total(),
                heartbeat: heartbeat.total(),
                join,
                connect,
                hub: hub_window(rss_before, cpu_before, cpu_after, None),
            },
        ),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => Err(e),
    };
    (result, fresh)
}

/// What the soak measured.
struct Totals {
    measured: Duration,
    windows: Vec<SoakWindow>,
    relay_sent: u64,
    relay_got: u64,
    saves_offered: u64,
    beats: u64,
    refresh_failures: u64,
    rtt: Recorder,
    saves: Recorder,
    heartbeat: Recorder,
    join: Recorder,
    connect: Recorder,
    hub: Option<(crate::sys::ProcSample, crate::sys::ProcSample, Option<u64>)>,
}

/// The report: the result file, the latency plot, the timeline plot.
fn finish(ctx: &Ctx, args: &SoakArgs, t: Totals) -> Result<RunResult> {
    let drift = rss_drift_pct_per_hour(&t.windows, args.warmup_secs as f64);
    let worst = |pick: fn(&SoakWindow) -> f64| t.windows.iter().map(pick).fold(0.0, f64::max);
    let worst_relay = worst(|w| w.relay.p999_ms);
    let worst_save = worst(|w| w.autosave.p999_ms);
    let per_room = 2 + args.relay_proctors;
    let drift_text = match drift {
        None => "RSS drift n/a (needs --hub-pid)".to_string(),
        Some((d, None)) => format!("RSS drift {d:+.2} %/h"),
        Some((d, Some(ci))) => format!("RSS drift {d:+.2} ± {ci:.2} %/h (95 %)"),
    };
    let headline = format!(
        "{} s, {} idle sockets + {} rooms × {per_room} relaying {}/s + autosave {}/s, {} windows \
         of {} s, {drift_text}, worst-window p99.9 relay {worst_relay:.3} ms autosave \
         {worst_save:.3} ms",
        t.measured.as_secs(),
        t.connect.ok,
        args.relay_rooms,
        args.relay_rate,
        args.autosave_rate,
        t.windows.len(),
        args.window_secs,
    );
    let params = json!({
        "args": args,
        "rssDriftPctPerHour": drift.map(|d| d.0),
        "rssDriftCi95PctPerHour": drift.and_then(|d| d.1),
        "worstWindowP999Ms": {"relay": worst_relay, "autosave": worst_save},
        "relaySent": t.relay_sent,
        "relayReceived": t.relay_got,
        "savesOffered": t.saves_offered,
        "heartbeats": t.beats,
        "tokenRefreshFailures": t.refresh_failures,
        "windows": t.windows,
    });
    let ops = t.relay_got + t.saves.ok + t.beats;
    let (result, path) = report_at(
        ctx,
        Measured {
            scenario: "soak",
            params,
            duration: t.measured,
            ops,
            latencies: vec![
                ("relay round-trip", t.rtt),
                ("autosave", t.saves),
                ("heartbeat", t.heartbeat),
                ("relay join", t.join),
                ("idle connect", t.connect),
            ],
            hub: t.hub,
            headline,
        },
    )?;
    let line = |name: &str, pick: fn(&SoakWindow) -> f64| Line {
        name: name.to_string(),
        points: t.windows.iter().map(|w| (w.end_secs, pick(w))).collect(),
    };
    let rss = t
        .windows
        .iter()
        .all(|w| w.rss_bytes.is_some())
        .then(|| Line {
            name: "hub RSS (MB, right)".into(),
            points: t
                .windows
                .iter()
                .filter_map(|w| w.rss_bytes.map(|r| (w.end_secs, r as f64 / 1e6)))
                .collect(),
        });
    let timeline = timeline_svg(
        &path,
        "soak: p99.9 per window and hub RSS",
        "p99.9 per window (ms)",
        &[
            line("relay round-trip p99.9", |w| w.relay.p999_ms),
            line("autosave p99.9", |w| w.autosave.p999_ms),
            line("heartbeat p99.9", |w| w.heartbeat.p999_ms),
        ],
        rss.as_ref(),
    )?;
    println!("timeline: {}", timeline.display());
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(end_secs: f64, rss: u64) -> SoakWindow {
        let p = WindowPercentiles {
            ok: 1,
            failed: 0,
            p99_ms: 1.0,
            p999_ms: 1.0,
        };
        SoakWindow {
            end_secs,
            rss_bytes: Some(rss),
            hub_cpu_secs: None,
            relay: p.clone(),
            autosave: p.clone(),
            heartbeat: p,
        }
    }

    #[test]
    fn drift_is_the_slope_after_warm_up() {
        // Flat after the warm-up, whatever happened during it.
        let flat = [w(60.0, 10), w(120.0, 1000), w(180.0, 1000), w(240.0, 1000)];
        assert_eq!(rss_drift_pct_per_hour(&flat, 100.0), Some((0.0, Some(0.0))));
        // +1 % of the mean per hour, exactly on a line: no uncertainty.
        let rising = [w(0.0, 99_500), w(1800.0, 100_000), w(3600.0, 100_500)];
        let (d, ci) = rss_drift_pct_per_hour(&rising, -1.0).unwrap();
        assert!((d - 1.0).abs() < 1e-9, "{d}");
        assert!(ci.unwrap() < 1e-9);
        // Noise around a flat line widens the interval, not the slope.
        let noisy = [
            w(0.0, 100_000),
            w(60.0, 103_000),
            w(120.0, 103_000),
            w(180.0, 100_000),
        ];
        let (d, ci) = rss_drift_pct_per_hour(&noisy, -1.0).unwrap();
        assert!(d.abs() < 1e-9, "{d}");
        // Residuals ∓1 500 around 101 500, Σx² = 18 000: se = sqrt(9e6 / 2 / 18 000) B/s.
        let expected = 1.96 * (9e6_f64 / 2.0 / 18_000.0).sqrt() * 3600.0 / 101_500.0 * 100.0;
        assert!(
            (ci.unwrap() - expected).abs() < 1e-6,
            "{ci:?} vs {expected}"
        );
        // Too few windows after the warm-up: all of them.
        assert!(rss_drift_pct_per_hour(&rising, 3000.0).is_some());
        assert_eq!(rss_drift_pct_per_hour(&rising[..1], 0.0), None);
    }
}
