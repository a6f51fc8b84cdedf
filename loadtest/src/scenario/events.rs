//! S6: proctoring event ingest. Devices (laptops and paired phones) send `event`s over the
//! WebSocket open loop at `--rate` events/s; an event counts when its `event-ack` arrives (the
//! hub acks after the insert committed). Latency = ack arrival − intended send time.
//!
//! The contract also lists `POST /sessions/{id}/events` (batches); a probe finds out whether
//! this build serves it. When it does, the same rate is then sent over HTTP in batches of
//! `--batch`; the result says which paths were measured.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Args;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use signaling::{encode_client, ClientMessage, EventReport, EventType, Severity};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::scenario::fixture::{Fixture, Plan};
use crate::scenario::{
    count_acks, hub_window, report, run_tag, spawn_writer, stamped_event_id, Ctx, Measured, Pacer,
    Stop,
};
use crate::stats::{Recorder, RunResult};
use crate::ws::Socket;

/// Stay under the hub's 20 messages/s per socket.
const PER_SOCKET_RATE: f64 = 15.0;

/// Knobs of the event-ingest scenario.
#[derive(Debug, Clone, Args, serde::Serialize)]
pub struct EventsArgs {
    /// Device sockets (half laptops, half phones of the same sessions).
    #[arg(long, default_value_t = 200)]
    pub devices: usize,
    /// Events per second (open loop).
    #[arg(long, default_value_t = 1000)]
    pub rate: u64,
    /// Measured phase per path, seconds.
    #[arg(long, default_value_t = 20)]
    pub duration_secs: u64,
    /// Events per HTTP batch (when the HTTP path exists).
    #[arg(long, default_value_t = 50)]
    pub batch: usize,
    /// Candidate accounts at most.
    #[arg(long, default_value_t = 100)]
    pub candidates: usize,
}

fn report_of(tag: u32, seq: u64, due: Instant) -> EventReport {
    EventReport {
        event_id: stamped_event_id(tag, seq, due),
        event_type: EventType::new("FACE_NOT_VISIBLE").expect("valid"),
        severity: Severity::new(2).expect("valid"),
        timestamp: None,
        meta: Some(
            signaling::Meta::new(
                json!({"confidence": 0.93, "detector": "loadtest"})
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
            )
            .expect("small meta"),
        ),
        source: None,
        frame_ref: None,
    }
}

/// Runs S6.
pub async fn run(ctx: &Ctx, args: EventsArgs) -> Result<RunResult> {
    if args.devices == 0 || args.rate == 0 || args.batch == 0 {
        return Err(Error::Usage(
            "devices, rate and batch must be positive".into(),
        ));
    }
    if args.rate as f64 / args.devices as f64 > PER_SOCKET_RATE {
        return Err(Error::Usage(format!(
            "--rate {} over {} devices exceeds {PER_SOCKET_RATE} events/s per socket (the hub \
             rate-limits at 20/s): add devices",
            args.rate, args.devices
        )));
    }
    crate::sys::ensure_fds(args.devices as u64)?;
    let fx = Fixture::provision(
        ctx,
        Plan {
            sessions: args.devices.div_ceil(2),
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

/// Whether this build serves `POST /sessions/{id}/events`: a 404 or 405 means no route.
async fn http_path(ctx: &Ctx, fx: &Fixture, tag: u32) -> Result<(bool, u16)> {
    let s = &fx.sessions[0];
    let ev = report_of(tag, u64::from(u32::MAX), Instant::now());
    let (status, _) = ctx
        .api
        .raw(
            Method::POST,
            &format!("/sessions/{}/events", s.s.id),
            s.phone.as_deref(),
            Some(json!({"events": [{
                "eventId": ev.event_id, "source": "MOBILE", "eventType": "FACE_NOT_VISIBLE",
                "severity": 2,
            }]})),
        )
        .await?;
    Ok((status == StatusCode::ACCEPTED, status.as_u16()))
}

async fn measure(ctx: &Ctx, args: &EventsArgs, fx: &Fixture) -> Result<RunResult> {
    let url = ctx.api.ws_url();
    let tag = run_tag();
    let stop = Stop::default();
    let (http, probe_status) = http_path(ctx, fx, tag).await?;
    let rss_before = ctx.sample();
    let bar = ctx.bar(args.devices as u64, "devices");
    let acked = Arc::new(AtomicU64::new(0));
    let mut outs: Vec<mpsc::UnboundedSender<String>> = Vec::new();
    let mut writers = Vec::new();
    let mut readers = Vec::new();
    for i in 0..args.devices {
        let s = &fx.sessions[i / 2];
        let token = if i % 2 == 0 {
            fx.laptop_token(i / 2)
        } else {
            s.phone.as_deref().unwrap_or_default()
        };
        let (sock, _) = Socket::connect(&url, token).await?;
        let (tx, rx) = sock.split();
        let (out, w) = spawn_writer(tx);
        outs.push(out);
        writers.push(w);
        readers.push(tokio::spawn(count_acks(
            rx,
            tag,
            acked.clone(),
            stop.clone(),
        )));
        bar.inc(1);
    }
    bar.finish();

    let cpu_before = ctx.sample();
    let total = args.rate * args.duration_secs;
    let bar = ctx.bar(total, "ws events");
    let mut pacer = Pacer::new(args.rate as f64);
    loop {
        let (i, due) = pacer.next().await;
        if i >= total {
            break;
        }
        let frame = encode_client(&ClientMessage::Event(report_of(tag, i, due)));
        let _ = outs[(i as usize) % outs.len()].send(frame);
        if i % 128 == 0 {
            bar.set_position(acked.load(Ordering::Relaxed));
        }
    }
    let until = Instant::now() + Duration::from_secs(30);
    while acked.load(Ordering::Relaxed) < total && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ws_time = pacer.start().elapsed();
    let cpu_after = ctx.sample();
    bar.finish();
    stop.set();
    drop(outs);
    for w in writers {
        let _ = w.await;
    }
    let mut ws = Recorder::default();
    for r in readers {
        ws.merge(
            &r.await
                .map_err(|e| Error::Usage(format!("device task: {e}")))?,
        );
    }
    // Refusals were counted as they came; what got neither an ack nor a refusal is lost.
    for _ in (ws.ok + ws.failed)..total {
        ws.fail();
    }

    let mut latencies = vec![("ws event→ack", ws.clone())];
    let mut params = serde_json::to_value(args).unwrap_or(Value::Null);
    params["httpProbeStatus"] = json!(probe_status);
    params["wsEventsPerSec"] = json!(ws.ok as f64 / ws_time.as_secs_f64());
    let mut path_note = format!("HTTP batch path absent in this build (probe: {probe_status})");
    if http {
        let h = http_phase(ctx, args, fx, tag).await;
        params["httpEventsPerSec"] = json!(h.1 as f64 / h.2.as_secs_f64());
        path_note = format!(
            "HTTP batches of {}: {:.0} events/s",
            args.batch,
            h.1 as f64 / h.2.as_secs_f64()
        );
        latencies.push(("http batch", h.0));
    }
    params["paths"] = json!(if http { "ws+http" } else { "ws" });
    report(
        ctx,
        Measured {
            scenario: "events",
            params,
            duration: ws_time,
            ops: ws.ok,
            latencies,
            hub: hub_window(rss_before, cpu_before, cpu_after, Some(args.devices as u64)),
            headline: format!(
                "WebSocket: {} of {total} events acked from {} devices; {path_note}",
                ws.ok, args.devices
            ),
        },
    )
}

/// The HTTP batch path at the same event rate: returns (batch latencies, events accepted, time).
async fn http_phase(
    ctx: &Ctx,
    args: &EventsArgs,
    fx: &Fixture,
    tag: u32,
) -> (Recorder, u64, Duration) {
    let rec = Arc::new(Mutex::new(Recorder::default()));
    let accepted = Arc::new(AtomicU64::new(0));
    let batches = (args.rate * args.duration_secs).div_ceil(args.batch as u64);
    let bar = ctx.bar(batches, "http batches");
    let mut pacer = Pacer::new(args.rate as f64 / args.batch as f64);
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        let (i, due) = pacer.next().await;
        if i >= batches {
            break;
        }
        let s = &fx.sessions[(i as usize) % fx.sessions.len()];
        let events: Vec<Value> = (0..args.batch as u64)
            .map(|k| {
                let ev = report_of(tag, (1 << 31) + i * args.batch as u64 + k, due);
                json!({"eventId": ev.event_id, "source": "MOBILE",
                       "eventType": "FACE_NOT_VISIBLE", "severity": 2})
            })
            .collect();
        let (api, token, id) = (ctx.api.clone(), s.phone.clone(), s.s.id);
        let (rec, accepted, bar) = (rec.clone(), accepted.clone(), bar.clone());
        tasks.spawn(async move {
            let r = api
                .raw(
                    Method::POST,
                    &format!("/sessions/{id}/events"),
                    token.as_deref(),
                    Some(json!({ "events": events })),
                )
                .await;
            let mut rec = rec.lock().expect("no panics while held");
            match r {
                Ok((StatusCode::ACCEPTED, v)) => {
                    rec.ok(due.elapsed());
                    accepted.fetch_add(v["accepted"].as_u64().unwrap_or(0), Ordering::Relaxed);
                }
                _ => rec.fail(),
            }
            bar.inc(1);
        });
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    bar.finish();
    let took = pacer.start().elapsed();
    let r = rec.lock().expect("no panics while held").clone();
    (r, accepted.load(Ordering::Relaxed), took)
}
