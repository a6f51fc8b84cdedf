//! S2: signalling relay. R rooms of laptop + phone + P proctors; signals (ICE, as a browser
//! trickles them) go from A to B through the hub and B echoes each back to A. Round trip =
//! echo arrival − intended send time (open loop at `--rate` round trips per second over all
//! rooms), so the figure includes two passes through the hub plus the client's own scheduling.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use futures::{stream, StreamExt, TryStreamExt};
use serde_json::{json, Map, Value};
use signaling::{
    encode_client, ClientMessage, PeerId, PeerRef, RoomId, ServerMessage, Signal, SignalData,
};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::scenario::fixture::{Fixture, Plan};
use crate::scenario::{
    hub_window, instant_of, micros, report, spawn_writer, Ctx, Measured, Pacer, Stop,
};
use crate::stats::{Recorder, RunResult};
use crate::ws::{Rx, Socket};

/// The hub's sustained inbound rate per socket is 20 messages/s; stay under it.
const PER_SOCKET_RATE: f64 = 15.0;

/// Knobs of the relay scenario.
#[derive(Debug, Clone, Args, serde::Serialize)]
pub struct RelayArgs {
    /// Rooms (sessions), each with a laptop and a phone.
    #[arg(long, default_value_t = 100)]
    pub rooms: usize,
    /// Proctors joined to each room.
    #[arg(long, default_value_t = 3)]
    pub proctors: usize,
    /// Round trips per second over all rooms.
    #[arg(long, default_value_t = 500)]
    pub rate: u64,
    /// Measured phase, seconds.
    #[arg(long, default_value_t = 20)]
    pub duration_secs: u64,
    /// Candidate accounts at most (each takes sessions in several exams).
    #[arg(long, default_value_t = 100)]
    pub candidates: usize,
}

/// A room's members in order laptop, phone, proctors.
struct Member {
    peer: PeerId,
    out: mpsc::UnboundedSender<String>,
}

fn peer_of(authed: &ServerMessage) -> Result<PeerId> {
    match authed {
        ServerMessage::Authed { peer_id, .. } => Ok(*peer_id),
        other => Err(Error::Usage(format!("expected authed, got {other:?}"))),
    }
}

async fn member(url: &str, token: &str, room: uuid::Uuid) -> Result<(PeerId, Socket)> {
    let (mut s, authed) = Socket::connect(url, token).await?;
    s.join(room).await?;
    Ok((peer_of(&authed)?, s))
}

fn ice(room: RoomId, to: PeerId, t_us: u64, echo: bool) -> String {
    let mut data = Map::new();
    data.insert("kind".into(), json!("ice"));
    data.insert(
        "candidate".into(),
        json!("candidate:842163049 1 udp 1677729535 192.0.2.10 50123 typ srflx raddr 10.0.0.5 rport 50123 generation 0"),
    );
    data.insert("sdpMid".into(), json!("0"));
    data.insert("sdpMLineIndex".into(), json!(0));
    data.insert("lt".into(), json!({"t": t_us, "echo": echo}));
    encode_client(&ClientMessage::Signal(Signal {
        room_id: room,
        to: PeerRef::Peer(to),
        data: SignalData::new(data).expect("a valid ICE signal"),
    }))
}

/// Reads one member's socket: echoes pings back to their sender, records echoes' round trips.
async fn reader(
    mut rx: Rx,
    out: mpsc::WeakUnboundedSender<String>,
    received: Arc<AtomicU64>,
    stop: Stop,
) -> Recorder {
    let mut rtt = Recorder::default();
    loop {
        match rx.recv().await {
            Ok(ServerMessage::Signal {
                room_id,
                from: PeerRef::Peer(from),
                data,
            }) => {
                let lt = data.fields().get("lt");
                let t = lt.and_then(|l| l["t"].as_u64()).unwrap_or(0);
                if lt.and_then(|l| l["echo"].as_bool()) == Some(true) {
                    rtt.ok(instant_of(t).elapsed());
                    received.fetch_add(1, Ordering::Relaxed);
                } else {
                    if let Some(out) = out.upgrade() {
                        let _ = out.send(ice(room_id, from, t, true));
                    }
                }
            }
            Ok(ServerMessage::Error { .. }) => rtt.fail(),
            Ok(_) => {}
            Err(_) => {
                if !stop.is_set() {
                    rtt.fail();
                }
                return rtt;
            }
        }
    }
}

/// Runs S2.
pub async fn run(ctx: &Ctx, args: RelayArgs) -> Result<RunResult> {
    if args.rooms == 0 || args.rate == 0 || args.duration_secs == 0 {
        return Err(Error::Usage(
            "rooms, rate and duration must be positive".into(),
        ));
    }
    // A laptop takes part in at most one message per round trip of its room.
    if args.rate as f64 / args.rooms as f64 > PER_SOCKET_RATE {
        return Err(Error::Usage(format!(
            "--rate {} over {} rooms exceeds {PER_SOCKET_RATE} messages/s per socket (the hub \
             rate-limits at 20/s): add rooms",
            args.rate, args.rooms
        )));
    }
    let per_room = 2 + args.proctors;
    crate::sys::ensure_fds((args.rooms * per_room) as u64)?;
    let fx = Fixture::provision(
        ctx,
        Plan {
            sessions: args.rooms,
            max_candidates: args.candidates,
            questions: 1,
            phones: true,
            proctor: args.proctors > 0,
        },
    )
    .await?;
    let result = measure(ctx, &args, &fx).await;
    fx.cleanup(ctx).await?;
    result
}

async fn measure(ctx: &Ctx, args: &RelayArgs, fx: &Fixture) -> Result<RunResult> {
    let url = ctx.api.ws_url();
    let per_room = 2 + args.proctors;
    let rss_before = ctx.sample();
    let bar = ctx.bar((args.rooms * per_room) as u64, "joining");
    let mut connect = Recorder::default();
    // (room index, socket) for every member.
    let jobs: Vec<(usize, usize)> = (0..args.rooms)
        .flat_map(|r| (0..per_room).map(move |m| (r, m)))
        .collect();
    let sockets: Vec<(usize, PeerId, Socket, Duration)> = stream::iter(jobs)
        .map(|(r, m)| {
            let (url, bar) = (&url, bar.clone());
            async move {
                let s = &fx.sessions[r];
                let token = match m {
                    0 => fx.laptop_token(r),
                    1 => s.phone.as_deref().unwrap_or_default(),
                    _ => fx.proctor.as_ref().expect("a proctor").1.as_str(),
                };
                let t0 = Instant::now();
                let (peer, sock) = member(url, token, s.s.room).await?;
                bar.inc(1);
                Ok::<_, Error>((r, peer, sock, t0.elapsed()))
            }
        })
        .buffered(64)
        .try_collect()
        .await?;
    bar.finish();
    let stop = Stop::default();
    let received = Arc::new(AtomicU64::new(0));
    let mut rooms: Vec<Vec<Member>> = (0..args.rooms).map(|_| Vec::new()).collect();
    let mut readers = Vec::new();
    let mut writers = Vec::new();
    for (r, peer, sock, took) in sockets {
        connect.ok(took);
        let (tx, rx) = sock.split();
        let (out, writer) = spawn_writer(tx);
        writers.push(writer);
        readers.push(tokio::spawn(reader(
            rx,
            out.downgrade(),
            received.clone(),
            stop.clone(),
        )));
        rooms[r].push(Member { peer, out });
    }
    // Directed pairs allowed by the rooms' rules: laptop↔phone, staff↔each device.
    let mut pairs = vec![(0usize, 1usize), (1, 0)];
    for p in 2..per_room {
        pairs.extend([(p, 0), (0, p), (p, 1), (1, p)]);
    }
    let room_ids: Vec<RoomId> = fx
        .sessions
        .iter()
        .map(|s| RoomId::from_uuid(s.s.room))
        .collect();

    let cpu_before = ctx.sample();
    let total = args.rate * args.duration_secs;
    let bar = ctx.bar(total, "relaying");
    let mut pacer = Pacer::new(args.rate as f64);
    let mut sent = 0u64;
    loop {
        let (i, due) = pacer.next().await;
        if i >= total {
            break;
        }
        let r = (i as usize) % args.rooms;
        let (a, b) = pairs[(i as usize / args.rooms) % pairs.len()];
        let room = &rooms[r];
        let _ = room[a]
            .out
            .send(ice(room_ids[r], room[b].peer, micros(due), false));
        sent += 1;
        if i % 256 == 0 {
            bar.set_position(i);
        }
    }
    let measured = pacer.start().elapsed();
    // Let the last echoes arrive.
    let drain_until = Instant::now() + Duration::from_secs(5);
    while received.load(Ordering::Relaxed) < sent && Instant::now() < drain_until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let cpu_after = ctx.sample();
    bar.finish();
    stop.set();
    drop(rooms);
    for w in writers {
        let _ = w.await;
    }
    let mut rtt = Recorder::default();
    for r in readers {
        let part = r
            .await
            .map_err(|e| Error::Usage(format!("reader task: {e}")))?;
        rtt.merge(&part);
    }
    let got = received.load(Ordering::Relaxed);
    for _ in got..sent {
        rtt.fail();
    }
    report(
        ctx,
        Measured {
            scenario: "relay",
            params: serde_json::to_value(args).unwrap_or(Value::Null),
            duration: measured,
            ops: got,
            latencies: vec![("round-trip", rtt), ("join", connect.clone())],
            hub: hub_window(rss_before, cpu_before, cpu_after, Some(connect.ok)),
            headline: format!(
                "{} rooms × {per_room} peers, {got}/{sent} round trips",
                args.rooms
            ),
        },
    )
}
