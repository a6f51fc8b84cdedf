//! S4: reconnect storm. C device sockets (laptops and paired phones, joined to their rooms)
//! each send an event and get its ack; then every socket drops at once (no close handshake, as
//! when a network flaps) and every client reconnects at once: connect, re-auth with its token,
//! re-join, send an event and wait for its ack. Figures: time until all are back (the slowest
//! client's join after the drop), failures after retries, and events acked before and after
//! (an acked event is committed, so no ack missing means no event lost).

use std::time::Duration;

use clap::Args;
use futures::{stream, StreamExt, TryStreamExt};
use serde_json::{json, Value};
use signaling::{ClientMessage, EventReport, EventType, ServerMessage, Severity};
use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::scenario::fixture::{Fixture, Plan};
use crate::scenario::{hub_window, report, run_tag, stamped_event_id, Ctx, Measured};
use crate::stats::{Recorder, RunResult};
use crate::ws::Socket;

/// Knobs of the reconnect scenario.
#[derive(Debug, Clone, Args, serde::Serialize)]
pub struct ReconnectArgs {
    /// Connected clients (half laptops, half phones of the same sessions).
    #[arg(long, default_value_t = 200)]
    pub clients: usize,
    /// Connection attempts per client after the drop (jittered back-off between them).
    #[arg(long, default_value_t = 5)]
    pub attempts: u32,
    /// Give up on the storm after this many seconds.
    #[arg(long, default_value_t = 60)]
    pub timeout_secs: u64,
    /// Candidate accounts at most.
    #[arg(long, default_value_t = 200)]
    pub candidates: usize,
}

/// Sends one event and waits for its ack.
async fn event(s: &mut Socket, tag: u32, seq: u64) -> Result<()> {
    let id = stamped_event_id(tag, seq, Instant::now());
    s.send(&ClientMessage::Event(EventReport {
        event_id: id,
        event_type: EventType::new("NETWORK_CHECK").expect("valid"),
        severity: Severity::new(1).expect("valid"),
        timestamp: None,
        meta: None,
        source: None,
        frame_ref: None,
    }))
    .await?;
    loop {
        match s.recv().await? {
            ServerMessage::EventAck { event_id } if event_id == id => return Ok(()),
            ServerMessage::Error { code, message, .. } => {
                return Err(Error::Usage(format!("event refused: {code}: {message}")))
            }
            _ => {}
        }
    }
}

/// Connect, auth, join, event: one client's way in.
async fn come_in(url: &str, token: &str, room: uuid::Uuid, tag: u32, seq: u64) -> Result<Socket> {
    let (mut s, _) = Socket::connect(url, token).await?;
    s.join(room).await?;
    event(&mut s, tag, seq).await?;
    Ok(s)
}

/// A short name for what went wrong, for the result's tally of errors.
fn error_kind(e: &Error) -> String {
    let text = e.to_string();
    text.chars().take(80).collect()
}

/// Runs S4.
pub async fn run(ctx: &Ctx, args: ReconnectArgs) -> Result<RunResult> {
    if args.clients == 0 || args.attempts == 0 {
        return Err(Error::Usage("clients and attempts must be positive".into()));
    }
    // Old and new sockets may overlap briefly.
    crate::sys::ensure_fds(args.clients as u64 * 2)?;
    let fx = Fixture::provision(
        ctx,
        Plan {
            sessions: args.clients.div_ceil(2),
            max_candidates: args.candidates,
            questions: 1,
            phones: true,
            proctor: false,
        },
    )
    .await?;
    let result = measure(ctx, &args, &fx).await;
    fx.cleanup(ctx).await?;
    result
}

async fn measure(ctx: &Ctx, args: &ReconnectArgs, fx: &Fixture) -> Result<RunResult> {
    let url = ctx.api.ws_url();
    let tag = run_tag();
    let client = |i: usize| -> (String, uuid::Uuid) {
        let s = &fx.sessions[i / 2];
        let token = if i % 2 == 0 {
            fx.laptop_token(i / 2).to_string()
        } else {
            s.phone.clone().unwrap_or_default()
        };
        (token, s.s.room)
    };
    let rss_before = ctx.sample();
    let bar = ctx.bar(args.clients as u64, "connecting");
    let mut before = Recorder::default();
    let sockets: Vec<Socket> = stream::iter(0..args.clients)
        .map(|i| {
            let (url, bar) = (&url, bar.clone());
            let (token, room) = client(i);
            async move {
                let started = Instant::now();
                let s = come_in(url, &token, room, tag, 2 * i as u64).await?;
                bar.inc(1);
                Ok::<_, Error>((s, started.elapsed()))
            }
        })
        .buffered(64)
        .try_collect::<Vec<_>>()
        .await?
        .into_iter()
        .map(|(s, took)| {
            before.ok(took);
            s
        })
        .collect();
    bar.finish();

    // The storm: everyone drops, then everyone comes back at once.
    let cpu_before = ctx.sample();
    drop(sockets);
    let t0 = Instant::now();
    let bar = ctx.bar(args.clients as u64, "reconnecting");
    let mut tasks = Vec::with_capacity(args.clients);
    for i in 0..args.clients {
        let (url, bar) = (url.clone(), bar.clone());
        let (token, room) = client(i);
        let attempts = args.attempts;
        tasks.push(tokio::spawn(async move {
            let mut tries = 0;
            let mut errors = Vec::new();
            loop {
                tries += 1;
                match come_in(&url, &token, room, tag, 2 * i as u64 + 1).await {
                    Ok(s) => {
                        bar.inc(1);
                        return (Some(t0.elapsed()), tries, Some(s), errors);
                    }
                    Err(e) if tries < attempts => {
                        errors.push(error_kind(&e));
                        // Jittered back-off, as a real client does.
                        let ms = 100 * u64::from(tries) + (i as u64 * 37) % 100;
                        tokio::time::sleep(Duration::from_millis(ms)).await;
                    }
                    Err(e) => {
                        errors.push(error_kind(&e));
                        return (None, tries, None, errors);
                    }
                }
            }
        }));
    }
    let mut back = Recorder::default();
    let mut retries = 0u64;
    let mut kept = Vec::new();
    let mut kinds: std::collections::BTreeMap<String, u64> = Default::default();
    let deadline = t0 + Duration::from_secs(args.timeout_secs);
    for t in tasks {
        match tokio::time::timeout_at(deadline, t).await {
            Ok(Ok((Some(took), tries, s, errors))) => {
                for e in errors {
                    *kinds.entry(e).or_default() += 1;
                }
                back.ok(took);
                retries += u64::from(tries - 1);
                kept.extend(s);
            }
            Ok(Ok((None, tries, _, errors))) => {
                for e in errors {
                    *kinds.entry(e).or_default() += 1;
                }
                back.fail();
                retries += u64::from(tries - 1);
            }
            Ok(Err(_)) | Err(_) => back.fail(),
        }
    }
    let all_back = t0.elapsed();
    let cpu_after = ctx.sample();
    bar.finish();
    for s in kept {
        s.close().await;
    }
    let all_back_ms = back.hist.max() as f64 / 1000.0;
    let mut params = serde_json::to_value(args).unwrap_or(Value::Null);
    params["allBackMs"] = json!(all_back_ms);
    params["retries"] = json!(retries);
    params["errors"] = json!(kinds);
    params["eventsAckedBefore"] = json!(before.ok);
    params["eventsAckedAfter"] = json!(back.ok);
    let headline = format!(
        "{}/{} clients back in {:.0} ms (all back), {} retries, events acked {} before + {} after",
        back.ok, args.clients, all_back_ms, retries, before.ok, back.ok
    );
    report(
        ctx,
        Measured {
            scenario: "reconnect",
            params,
            duration: all_back,
            ops: back.ok,
            latencies: vec![
                ("back (join + event ack)", back),
                ("first connect (join + event ack)", before),
            ],
            hub: hub_window(rss_before, cpu_before, cpu_after, None),
            headline,
        },
    )
}
