//! S1: N authenticated sockets heartbeating. Heartbeats are open-loop: each socket sends at
//! fixed intended times and latency counts from the intended time, so a stalled hub cannot
//! hide its stall by slowing the senders (no coordinated omission).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use signaling::ServerMessage;
use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::scenario::{report, Ctx, Measured};
use crate::stats::{Recorder, RunResult};
use crate::ws::Socket;

/// Knobs of the idle scenario.
#[derive(Debug, Clone, Args, serde::Serialize)]
pub struct IdleArgs {
    /// Sockets to open.
    #[arg(long, default_value_t = 1000)]
    pub sockets: u64,
    /// New sockets per second while ramping up.
    #[arg(long, default_value_t = 2000)]
    pub ramp_per_sec: u64,
    /// Heartbeat interval per socket, ms.
    #[arg(long, default_value_t = 5000)]
    pub heartbeat_ms: u64,
    /// Measured phase after the ramp, seconds.
    #[arg(long, default_value_t = 30)]
    pub duration_secs: u64,
}

/// Runs S1.
pub async fn run(ctx: &Ctx, args: IdleArgs) -> Result<RunResult> {
    if args.sockets == 0 || args.ramp_per_sec == 0 || args.heartbeat_ms == 0 {
        return Err(Error::Usage(
            "sockets, ramp and heartbeat must be positive".into(),
        ));
    }
    crate::sys::ensure_fds(args.sockets)?;
    let (user, email, password) = ctx
        .api
        .create_user(&ctx.admin, "PROCTOR", &ctx.run_id)
        .await?;
    let token = ctx.api.login(&email, &password).await?;
    let url = ctx.api.ws_url();
    let before_connect = ctx.sample();

    let beats = Arc::new(AtomicU64::new(0));
    let stop = tokio_util_like::Stop::default();
    let connect_bar = ctx.bar(args.sockets, "connecting");
    let mut tasks = Vec::new();
    let gap = Duration::from_secs_f64(1.0 / args.ramp_per_sec as f64);
    let ramp_start = Instant::now();
    let interval = Duration::from_millis(args.heartbeat_ms);
    for i in 0..args.sockets {
        tokio::time::sleep_until(ramp_start + gap * i as u32).await;
        let (url, token, beats, stop, bar) = (
            url.clone(),
            token.clone(),
            beats.clone(),
            stop.clone(),
            connect_bar.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut connect = Recorder::default();
            let mut hb = Recorder::default();
            let started = Instant::now();
            let mut socket = match Socket::connect(&url, &token).await {
                Ok((s, _)) => {
                    connect.ok(started.elapsed());
                    s
                }
                Err(_) => {
                    connect.fail();
                    bar.inc(1);
                    return (connect, hb);
                }
            };
            bar.inc(1);
            // Spread the sockets' phases over one interval.
            let phase = interval.mul_f64((i % 1000) as f64 / 1000.0);
            let mut due = Instant::now() + phase;
            while !stop.is_set() {
                tokio::time::sleep_until(due).await;
                if stop.is_set() {
                    break;
                }
                if socket
                    .send_json(&serde_json::json!({"type": "heartbeat"}))
                    .await
                    .is_err()
                {
                    hb.fail();
                    break;
                }
                loop {
                    match socket.recv().await {
                        Ok(ServerMessage::HeartbeatAck { .. }) => {
                            hb.ok(due.elapsed());
                            beats.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                        Ok(_) => {}
                        Err(_) => {
                            hb.fail();
                            return (connect, hb);
                        }
                    }
                }
                due += interval;
            }
            socket.close().await;
            (connect, hb)
        }));
    }
    connect_bar.finish();
    let after_connect = ctx.sample();

    let phase_bar = ctx.bar(args.duration_secs, "measuring");
    let start_beats = beats.load(Ordering::Relaxed);
    let cpu_before = ctx.sample();
    let t0 = Instant::now();
    for _ in 0..args.duration_secs {
        tokio::time::sleep(Duration::from_secs(1)).await;
        phase_bar.inc(1);
    }
    let measured = t0.elapsed();
    let cpu_after = ctx.sample();
    let ops = beats.load(Ordering::Relaxed) - start_beats;
    phase_bar.finish();
    stop.set();

    let mut connect = Recorder::default();
    let mut hb = Recorder::default();
    for t in tasks {
        let (c, h) = t
            .await
            .map_err(|e| Error::Usage(format!("socket task: {e}")))?;
        connect.merge(&c);
        hb.merge(&h);
    }
    ctx.api.deactivate(&ctx.admin, user).await?;

    let hub = match (before_connect, after_connect, cpu_before, cpu_after) {
        (Some(b), Some(a), Some(c0), Some(c1)) => Some((
            crate::sys::ProcSample {
                cpu: c0.cpu,
                rss_bytes: b.rss_bytes,
            },
            crate::sys::ProcSample {
                cpu: c1.cpu,
                rss_bytes: a.rss_bytes,
            },
            Some(connect.ok),
        )),
        _ => None,
    };
    report(
        ctx,
        Measured {
            scenario: "idle",
            params: serde_json::to_value(&args).unwrap_or_default(),
            duration: measured,
            ops,
            latencies: vec![("heartbeat", hb), ("connect", connect.clone())],
            hub,
            headline: format!("{} sockets", connect.ok),
        },
    )
}

/// A tiny stop flag shared by socket tasks.
mod tokio_util_like {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    /// Set once; read by every task.
    #[derive(Clone, Default)]
    pub struct Stop(Arc<AtomicBool>);

    impl Stop {
        /// Asks every task to stop.
        pub fn set(&self) {
            self.0.store(true, Ordering::Relaxed);
        }

        /// Whether stop was asked.
        pub fn is_set(&self) -> bool {
            self.0.load(Ordering::Relaxed)
        }
    }
}
