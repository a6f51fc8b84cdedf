//! S1: N authenticated sockets heartbeating. Heartbeats are open-loop: each socket sends at
//! fixed intended times and latency counts from the intended time, so a stalled hub cannot
//! hide its stall by slowing the senders (no coordinated omission).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use signaling::ServerMessage;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::scenario::{report, Ctx, Measured, Shared, Stop};
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
    /// Log the sockets in as this existing account instead of creating a proctor: for a
    /// server without the user admin API (the Node baseline's seeded `proctor@example.test`).
    #[arg(long)]
    pub login_email: Option<String>,
    /// The password of `--login-email`.
    #[arg(long, default_value = "Passw0rd!")]
    #[serde(skip)]
    pub login_password: String,
}

/// Who the idle sockets are.
pub struct Account {
    /// The proctor created for the run (none with `--login-email`), deactivated at the end.
    user: Option<Uuid>,
    /// Its access token.
    token: String,
}

/// S1's sockets heartbeating in the background until the [`Stop`] given to
/// [`IdleLoad::start`] is set: what `idle` measures alone and `soak` runs beside S2 and S5.
pub struct IdleLoad {
    /// One task per socket; each returns its connect time.
    tasks: Vec<JoinHandle<Recorder>>,
    /// Heartbeat round trips, timed from their intended send times.
    pub heartbeat: Shared,
    /// Heartbeats acknowledged so far.
    pub beats: Arc<AtomicU64>,
    /// The proctor account created for the sockets (none with `--login-email`).
    user: Option<Uuid>,
}

impl IdleLoad {
    /// The account the sockets log in as: `args.login_email`, or a proctor created for the run.
    /// Logging in hashes a password (argon2 takes ~19 MiB for a moment), so a caller measuring
    /// memory per socket samples the hub after this, not before.
    pub async fn account(ctx: &Ctx, args: &IdleArgs) -> Result<Account> {
        let (user, email, password) = match &args.login_email {
            Some(email) => (None, email.clone(), args.login_password.clone()),
            None => {
                let (user, email, password) = ctx
                    .api
                    .create_user(&ctx.admin, "PROCTOR", &ctx.run_id)
                    .await?;
                (Some(user), email, password)
            }
        };
        let token = ctx.api.login(&email, &password).await?;
        Ok(Account { user, token })
    }

    /// Ramps up `args.sockets` sockets logged in as `account` at `args.ramp_per_sec`; each
    /// heartbeats every `args.heartbeat_ms` (open loop) until `stop`. Returns once every
    /// socket was started (`args.duration_secs` is the caller's business).
    pub async fn start(
        ctx: &Ctx,
        args: &IdleArgs,
        account: Account,
        stop: &Stop,
    ) -> Result<IdleLoad> {
        if args.sockets == 0 || args.ramp_per_sec == 0 || args.heartbeat_ms == 0 {
            return Err(Error::Usage(
                "sockets, ramp and heartbeat must be positive".into(),
            ));
        }
        let Account { user, token } = account;
        let url = ctx.api.ws_url();
        let beats = Arc::new(AtomicU64::new(0));
        let heartbeat = Shared::default();
        let connect_bar = ctx.bar(args.sockets, "connecting");
        let mut tasks = Vec::new();
        let gap = Duration::from_secs_f64(1.0 / args.ramp_per_sec as f64);
        let ramp_start = Instant::now();
        let interval = Duration::from_millis(args.heartbeat_ms);
        for i in 0..args.sockets {
            tokio::time::sleep_until(ramp_start + gap * i as u32).await;
            if stop.is_set() {
                break;
            }
            let (url, token, beats, stop, bar, hb) = (
                url.clone(),
                token.clone(),
                beats.clone(),
                stop.clone(),
                connect_bar.clone(),
                heartbeat.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let mut connect = Recorder::default();
                let started = Instant::now();
                let socket = match Socket::connect(&url, &token).await {
                    Ok((s, _)) => {
                        connect.ok(started.elapsed());
                        s
                    }
                    Err(_) => {
                        connect.fail();
                        bar.inc(1);
                        return connect;
                    }
                };
                bar.inc(1);
                // Spread the sockets' phases over one interval.
                let phase = interval.mul_f64((i % 1000) as f64 / 1000.0);
                heartbeat_until(socket, Instant::now() + phase, interval, &hb, &beats, &stop).await;
                connect
            }));
        }
        connect_bar.finish();
        Ok(IdleLoad {
            tasks,
            heartbeat,
            beats,
            user,
        })
    }

    /// Waits for every socket to close (call after setting the stop flag), deactivates the
    /// account it created; returns the connect times.
    pub async fn finish(self, ctx: &Ctx) -> Result<Recorder> {
        let mut connect = Recorder::default();
        for t in self.tasks {
            let c = t
                .await
                .map_err(|e| Error::Usage(format!("socket task: {e}")))?;
            connect.merge(&c);
        }
        if let Some(user) = self.user {
            ctx.api.deactivate(&ctx.admin, user).await?;
        }
        Ok(connect)
    }
}

/// One socket's life after connecting: a heartbeat at `due`, `due + interval`, … each timed
/// from its intended time, until `stop` (which also cuts a wait for an ack short).
async fn heartbeat_until(
    mut socket: Socket,
    mut due: Instant,
    interval: Duration,
    hb: &Shared,
    beats: &AtomicU64,
    stop: &Stop,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(due) => {}
            _ = stop.wait() => break,
        }
        if socket
            .send_json(&serde_json::json!({"type": "heartbeat"}))
            .await
            .is_err()
        {
            hb.fail();
            return;
        }
        let acked = async {
            loop {
                match socket.recv().await {
                    Ok(ServerMessage::HeartbeatAck { .. }) => return true,
                    Ok(_) => {}
                    Err(_) => return false,
                }
            }
        };
        tokio::select! {
            ok = acked => {
                if !ok {
                    hb.fail();
                    return;
                }
                hb.ok(due.elapsed());
                beats.fetch_add(1, Ordering::Relaxed);
            }
            _ = stop.wait() => break,
        }
        due += interval;
    }
    socket.close().await;
}

/// Runs S1.
pub async fn run(ctx: &Ctx, args: IdleArgs) -> Result<RunResult> {
    crate::sys::ensure_fds(args.sockets)?;
    let account = IdleLoad::account(ctx, &args).await?;
    // Let the allocator settle after the login's password hash before the memory baseline.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before_connect = ctx.sample();
    let stop = Stop::default();
    let load = IdleLoad::start(ctx, &args, account, &stop).await?;
    let after_connect = ctx.sample();

    let phase_bar = ctx.bar(args.duration_secs, "measuring");
    let start_beats = load.beats.load(Ordering::Relaxed);
    let cpu_before = ctx.sample();
    let t0 = Instant::now();
    for _ in 0..args.duration_secs {
        tokio::time::sleep(Duration::from_secs(1)).await;
        phase_bar.inc(1);
    }
    let measured = t0.elapsed();
    let cpu_after = ctx.sample();
    let ops = load.beats.load(Ordering::Relaxed) - start_beats;
    phase_bar.finish();
    stop.set();

    let heartbeat = load.heartbeat.clone();
    let connect = load.finish(ctx).await?;
    let hb = heartbeat.total();

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
