//! S3: room fan-out. N sessions' laptops send `event`s at a rate (open loop); W proctors watch
//! the sessions' exams and get one `session-update` per event each. Measured at the proctors:
//! delivered messages/s and event→session-update latency (from the event's intended send time,
//! carried in its id). The rate ramps in steps until p99 exceeds `--p99-bound-ms` or the last
//! step; the figure is the highest rate whose p99 held.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Args;
use futures::{stream, StreamExt, TryStreamExt};
use serde_json::{json, Value};
use signaling::{
    encode_client, ClientMessage, EventReport, EventType, ExamId, ServerMessage, Severity, Watch,
};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::scenario::fixture::{Fixture, Plan};
use crate::scenario::{
    count_acks, hub_window, intended_of, report, run_tag, spawn_writer, stamped_event_id, Ctx,
    Measured, Pacer, Stop,
};
use crate::stats::{Recorder, RunResult};
use crate::ws::{Rx, Socket};

/// Stay under the hub's 20 messages/s per socket.
const PER_SOCKET_RATE: f64 = 15.0;

/// Knobs of the fan-out scenario.
#[derive(Debug, Clone, Args, serde::Serialize)]
pub struct FanoutArgs {
    /// Sessions whose laptops send events.
    #[arg(long, default_value_t = 200)]
    pub sessions: usize,
    /// Proctor sockets watching every exam of those sessions.
    #[arg(long, default_value_t = 20)]
    pub watchers: usize,
    /// Events per second in the first step.
    #[arg(long, default_value_t = 250)]
    pub start_rate: u64,
    /// Added to the rate at each step.
    #[arg(long, default_value_t = 250)]
    pub step_rate: u64,
    /// Highest events per second tried.
    #[arg(long, default_value_t = 3000)]
    pub max_rate: u64,
    /// Seconds per step.
    #[arg(long, default_value_t = 5)]
    pub step_secs: u64,
    /// The step holds while event→update p99 stays at or under this.
    #[arg(long, default_value_t = 5.0)]
    pub p99_bound_ms: f64,
    /// Candidate accounts at most.
    #[arg(long, default_value_t = 100)]
    pub candidates: usize,
}

/// One step's outcome.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Step {
    events_per_sec: u64,
    sent: u64,
    delivered: u64,
    delivered_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    held: bool,
}

/// A watcher: counts and times `session-update`s per step.
async fn watcher(
    mut rx: Rx,
    tag: u32,
    steps: Arc<Mutex<Vec<Recorder>>>,
    step: Arc<AtomicU64>,
    stop: Stop,
) -> u64 {
    let mut failed = 0;
    loop {
        match rx.recv().await {
            Ok(ServerMessage::SessionUpdate(view)) => {
                if let Some(t) = view
                    .last_event
                    .as_ref()
                    .and_then(|e| intended_of(tag, &e.event_id))
                {
                    let k = step.load(Ordering::Relaxed) as usize;
                    let mut s = steps.lock().expect("no panics while held");
                    if let Some(r) = s.get_mut(k) {
                        r.ok(t.elapsed());
                    }
                }
            }
            Ok(_) => {}
            Err(_) => {
                if !stop.is_set() {
                    failed += 1;
                }
                return failed;
            }
        }
    }
}

/// Runs S3.
pub async fn run(ctx: &Ctx, args: FanoutArgs) -> Result<RunResult> {
    if args.sessions == 0 || args.watchers == 0 || args.start_rate == 0 || args.step_secs == 0 {
        return Err(Error::Usage(
            "sessions, watchers, rate and step must be positive".into(),
        ));
    }
    if args.max_rate as f64 / args.sessions as f64 > PER_SOCKET_RATE {
        return Err(Error::Usage(format!(
            "--max-rate {} over {} laptops exceeds {PER_SOCKET_RATE} events/s per socket (the \
             hub rate-limits at 20/s): add sessions",
            args.max_rate, args.sessions
        )));
    }
    crate::sys::ensure_fds((args.sessions + args.watchers) as u64)?;
    let fx = Fixture::provision(
        ctx,
        Plan {
            sessions: args.sessions,
            max_candidates: args.candidates,
            questions: 1,
            phones: false,
            proctor: true,
        },
    )
    .await?;
    let result = measure(ctx, &args, &fx).await;
    fx.cleanup(ctx).await?;
    result
}

async fn measure(ctx: &Ctx, args: &FanoutArgs, fx: &Fixture) -> Result<RunResult> {
    let url = ctx.api.ws_url();
    let tag = run_tag();
    let stop = Stop::default();
    let max_steps =
        1 + (args.max_rate.saturating_sub(args.start_rate) / args.step_rate.max(1)) as usize;
    let step_recs = Arc::new(Mutex::new(vec![Recorder::default(); max_steps]));
    let step_now = Arc::new(AtomicU64::new(0));
    let rss_before = ctx.sample();

    // Watchers first, so that every event finds them.
    let proctor = &fx.proctor.as_ref().expect("a proctor").1;
    let bar = ctx.bar(args.watchers as u64, "watching");
    let mut watchers = Vec::new();
    let mut watcher_writers = Vec::new();
    for _ in 0..args.watchers {
        let (mut s, _) = Socket::connect(&url, proctor).await?;
        for exam in &fx.exams {
            s.send(&ClientMessage::Watch(Watch {
                exam_id: ExamId::from_uuid(*exam),
            }))
            .await?;
            loop {
                match s.recv().await? {
                    ServerMessage::SessionSnapshot { .. } => break,
                    ServerMessage::Error { code, message, .. } => {
                        return Err(Error::Usage(format!("watch refused: {code}: {message}")))
                    }
                    _ => {}
                }
            }
        }
        let (tx, rx) = s.split();
        watcher_writers.push(spawn_writer(tx));
        watchers.push(tokio::spawn(watcher(
            rx,
            tag,
            step_recs.clone(),
            step_now.clone(),
            stop.clone(),
        )));
        bar.inc(1);
    }
    bar.finish();

    let bar = ctx.bar(args.sessions as u64, "laptops");
    let acked = Arc::new(AtomicU64::new(0));
    let socks: Vec<Socket> = stream::iter(0..args.sessions)
        .map(|i| {
            let (url, bar) = (&url, bar.clone());
            async move {
                let (s, _) = Socket::connect(url, fx.laptop_token(i)).await?;
                bar.inc(1);
                Ok::<_, Error>(s)
            }
        })
        .buffered(64)
        .try_collect()
        .await?;
    bar.finish();
    let mut outs: Vec<mpsc::UnboundedSender<String>> = Vec::new();
    let mut writers = Vec::new();
    let mut laptops = Vec::new();
    for s in socks {
        let (tx, rx) = s.split();
        let (out, w) = spawn_writer(tx);
        outs.push(out);
        writers.push(w);
        laptops.push(tokio::spawn(count_acks(
            rx,
            tag,
            acked.clone(),
            stop.clone(),
        )));
    }

    let cpu_before = ctx.sample();
    let t0 = Instant::now();
    let mut steps: Vec<Step> = Vec::new();
    let mut sent_total = 0u64;
    let mut seq = 0u64;
    let event_type = EventType::new("TAB_HIDDEN").expect("valid");
    let severity = Severity::new(3).expect("valid");
    for k in 0..max_steps {
        let rate = args.start_rate + k as u64 * args.step_rate;
        step_now.store(k as u64, Ordering::Relaxed);
        let n = rate * args.step_secs;
        let bar = ctx.bar(n, &format!("{rate} ev/s"));
        let mut pacer = Pacer::new(rate as f64);
        let step_start = Instant::now();
        loop {
            let (i, due) = pacer.next().await;
            if i >= n {
                break;
            }
            let frame = encode_client(&ClientMessage::Event(EventReport {
                event_id: stamped_event_id(tag, seq, due),
                event_type: event_type.clone(),
                severity,
                timestamp: None,
                meta: None,
                source: None,
                frame_ref: None,
            }));
            seq += 1;
            let _ = outs[(seq as usize) % outs.len()].send(frame);
            if i % 128 == 0 {
                bar.set_position(i);
            }
        }
        sent_total += n;
        // Wait for this step's acks (bounded) so the next step starts clean.
        let until = Instant::now() + Duration::from_secs(5);
        while acked.load(Ordering::Relaxed) < sent_total && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Updates trail acks by a hop through the hub actor.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let elapsed = step_start.elapsed().as_secs_f64();
        bar.finish();
        let r = step_recs.lock().expect("no panics while held")[k].clone();
        let held = r.ok > 0 && r.ms(0.99) <= args.p99_bound_ms;
        steps.push(Step {
            events_per_sec: rate,
            sent: n,
            delivered: r.ok,
            delivered_per_sec: r.ok as f64 / elapsed,
            p50_ms: r.ms(0.5),
            p99_ms: r.ms(0.99),
            held,
        });
        if !held {
            break;
        }
    }
    step_now.store(max_steps as u64, Ordering::Relaxed);
    let measured = t0.elapsed();
    let cpu_after = ctx.sample();
    stop.set();
    drop(outs);
    for w in writers {
        let _ = w.await;
    }
    let mut ack = Recorder::default();
    for l in laptops {
        ack.merge(
            &l.await
                .map_err(|e| Error::Usage(format!("laptop task: {e}")))?,
        );
    }
    for _ in (ack.ok + ack.failed)..sent_total {
        ack.fail();
    }
    for (out, w) in watcher_writers {
        drop(out);
        let _ = w.await;
    }
    let mut update = Recorder::default();
    for w in watchers {
        let failed = w
            .await
            .map_err(|e| Error::Usage(format!("watcher task: {e}")))?;
        for _ in 0..failed {
            update.fail();
        }
    }
    for r in step_recs.lock().expect("no panics while held").iter() {
        update.merge(r);
    }
    let best = steps
        .iter()
        .filter(|s| s.held)
        .max_by_key(|s| s.events_per_sec);
    let headline = match best {
        Some(b) => format!(
            "held {} events/s × {} watchers = {:.0} delivered/s at p99 {:.2} ms (bound {} ms)",
            b.events_per_sec, args.watchers, b.delivered_per_sec, b.p99_ms, args.p99_bound_ms
        ),
        None => format!("no step held p99 ≤ {} ms", args.p99_bound_ms),
    };
    let mut params = serde_json::to_value(args).unwrap_or(Value::Null);
    params["steps"] = json!(steps);
    params["bestEventsPerSec"] = json!(best.map(|b| b.events_per_sec));
    params["bestDeliveredPerSec"] = json!(best.map(|b| b.delivered_per_sec));
    report(
        ctx,
        Measured {
            scenario: "fanout",
            params,
            duration: measured,
            ops: update.ok,
            latencies: vec![("event→update", update), ("event→ack", ack)],
            hub: hub_window(rss_before, cpu_before, cpu_after, None),
            headline,
        },
    )
}
