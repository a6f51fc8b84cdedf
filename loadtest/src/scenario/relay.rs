//! S2: signalling relay. R rooms of laptop + phone + P proctors; signals (ICE, as a browser
//! trickles them) go from A to B through the hub and B echoes each back to A. Round trip =
//! echo arrival − intended send time (open loop at `--rate` round trips per second over all
//! rooms), so the figure includes two passes through the hub plus the client's own scheduling.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use futures::{stream, StreamExt, TryStreamExt};
use indicatif::ProgressBar;
use serde_json::{json, Map, Value};
use signaling::{
    encode_client, ClientMessage, PeerId, PeerRef, RoomId, ServerMessage, Signal, SignalData,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::scenario::fixture::{Fixture, Plan};
use crate::scenario::{
    hub_window, instant_of, micros, report, spawn_writer, Ctx, Measured, Pacer, Shared, Stop,
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
    rtt: Shared,
    closing: Stop,
) {
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
                if !closing.is_set() {
                    rtt.fail();
                }
                return;
            }
        }
    }
}

/// Refuses a rate the hub's per-socket limit would throttle.
pub fn check_rate(rate: u64, rooms: usize) -> Result<()> {
    // A laptop takes part in at most one message per round trip of its room.
    if rate as f64 / rooms.max(1) as f64 > PER_SOCKET_RATE {
        return Err(Error::Usage(format!(
            "relay rate {rate} over {rooms} rooms exceeds {PER_SOCKET_RATE} messages/s per \
             socket (the hub rate-limits at 20/s): add rooms"
        )));
    }
    Ok(())
}

/// Runs S2.
pub async fn run(ctx: &Ctx, args: RelayArgs) -> Result<RunResult> {
    if args.rooms == 0 || args.rate == 0 || args.duration_secs == 0 {
        return Err(Error::Usage(
            "rooms, rate and duration must be positive".into(),
        ));
    }
    check_rate(args.rate, args.rooms)?;
    crate::sys::ensure_fds((args.rooms * (2 + args.proctors)) as u64)?;
    let fx = Fixture::provision(ctx, plan(args.rooms, args.proctors, args.candidates)).await?;
    let result = measure(ctx, &args, &fx).await;
    fx.cleanup(ctx).await?;
    result
}

/// What S2 provisions: one session per room with a paired phone, and a proctor account.
pub fn plan(rooms: usize, proctors: usize, candidates: usize) -> Plan {
    Plan {
        sessions: rooms,
        max_candidates: candidates,
        questions: 1,
        phones: true,
        proctor: proctors > 0,
    }
}

/// S2's rooms, every member joined and echoing: what `relay` measures alone and `soak` runs
/// beside S1 and S5.
pub struct RelayRooms {
    /// Members of each room in order laptop, phone, proctors.
    rooms: Vec<Vec<Member>>,
    room_ids: Vec<RoomId>,
    /// Directed (sender, echoer) pairs the rooms' rules allow.
    pairs: Vec<(usize, usize)>,
    readers: Vec<JoinHandle<()>>,
    writers: Vec<JoinHandle<()>>,
    /// Set by [`RelayRooms::close`]: sockets ending after it are not failures.
    closing: Stop,
    /// Echoes received so far.
    pub received: Arc<AtomicU64>,
    /// Round trips, from their intended send times.
    pub rtt: Shared,
    /// Connect + join time of every member.
    pub join: Recorder,
}

impl RelayRooms {
    /// Connects and joins laptop, phone and `proctors` proctors to every session of `fx`.
    pub async fn open(ctx: &Ctx, fx: &Fixture, proctors: usize) -> Result<RelayRooms> {
        let url = ctx.api.ws_url();
        let n_rooms = fx.sessions.len();
        let per_room = 2 + proctors;
        let bar = ctx.bar((n_rooms * per_room) as u64, "joining");
        // (room index, member index) for every member.
        let jobs: Vec<(usize, usize)> = (0..n_rooms)
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
        let closing = Stop::default();
        let received = Arc::new(AtomicU64::new(0));
        let rtt = Shared::default();
        let mut join = Recorder::default();
        let mut rooms: Vec<Vec<Member>> = (0..n_rooms).map(|_| Vec::new()).collect();
        let mut readers = Vec::new();
        let mut writers = Vec::new();
        for (r, peer, sock, took) in sockets {
            join.ok(took);
            let (tx, rx) = sock.split();
            let (out, writer) = spawn_writer(tx);
            writers.push(writer);
            readers.push(tokio::spawn(reader(
                rx,
                out.downgrade(),
                received.clone(),
                rtt.clone(),
                closing.clone(),
            )));
            rooms[r].push(Member { peer, out });
        }
        // Directed pairs allowed by the rooms' rules: laptop↔phone, staff↔each device.
        let mut pairs = vec![(0usize, 1usize), (1, 0)];
        for p in 2..per_room {
            pairs.extend([(p, 0), (0, p), (p, 1), (1, p)]);
        }
        let room_ids = fx
            .sessions
            .iter()
            .map(|s| RoomId::from_uuid(s.s.room))
            .collect();
        Ok(RelayRooms {
            rooms,
            room_ids,
            pairs,
            readers,
            writers,
            closing,
            received,
            rtt,
            join,
        })
    }

    /// Sends round trips open loop at `rate` per second over all rooms until `total` were sent
    /// or `stop` is set; returns how many were sent and when the schedule started.
    pub async fn drive(
        &self,
        rate: u64,
        total: u64,
        stop: &Stop,
        bar: &ProgressBar,
    ) -> (u64, Instant) {
        let n_rooms = self.rooms.len();
        let mut pacer = Pacer::new(rate as f64);
        let mut sent = 0u64;
        loop {
            let (i, due) = pacer.next().await;
            if i >= total || stop.is_set() {
                break;
            }
            let r = (i as usize) % n_rooms;
            let (a, b) = self.pairs[(i as usize / n_rooms) % self.pairs.len()];
            let room = &self.rooms[r];
            let _ = room[a]
                .out
                .send(ice(self.room_ids[r], room[b].peer, micros(due), false));
            sent += 1;
            if i % 256 == 0 {
                bar.set_position(i);
            }
        }
        (sent, pacer.start())
    }

    /// Waits (at most 5 s) for the echoes of the `sent` round trips.
    pub async fn drain(&self, sent: u64) {
        let drain_until = Instant::now() + Duration::from_secs(5);
        while self.received.load(Ordering::Relaxed) < sent && Instant::now() < drain_until {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Closes every socket and counts each of the `sent` round trips whose echo never came as
    /// a failure; returns the echoes received. Call [`RelayRooms::drain`] first.
    pub async fn close(self, sent: u64) -> Result<u64> {
        self.closing.set();
        drop(self.rooms);
        for w in self.writers {
            let _ = w.await;
        }
        for r in self.readers {
            r.await
                .map_err(|e| Error::Usage(format!("reader task: {e}")))?;
        }
        let got = self.received.load(Ordering::Relaxed);
        for _ in got..sent {
            self.rtt.fail();
        }
        Ok(got)
    }
}

async fn measure(ctx: &Ctx, args: &RelayArgs, fx: &Fixture) -> Result<RunResult> {
    let per_room = 2 + args.proctors;
    let rss_before = ctx.sample();
    let rooms = RelayRooms::open(ctx, fx, args.proctors).await?;
    let cpu_before = ctx.sample();
    let total = args.rate * args.duration_secs;
    let bar = ctx.bar(total, "relaying");
    let (sent, started) = rooms.drive(args.rate, total, &Stop::default(), &bar).await;
    let measured = started.elapsed();
    rooms.drain(sent).await;
    let cpu_after = ctx.sample();
    bar.finish();
    let (rtt, join) = (rooms.rtt.clone(), rooms.join.clone());
    let got = rooms.close(sent).await?;
    report(
        ctx,
        Measured {
            scenario: "relay",
            params: serde_json::to_value(args).unwrap_or(Value::Null),
            duration: measured,
            ops: got,
            latencies: vec![("round-trip", rtt.total()), ("join", join.clone())],
            hub: hub_window(rss_before, cpu_before, cpu_after, Some(join.ok)),
            headline: format!(
                "{} rooms × {per_room} peers, {got}/{sent} round trips",
                args.rooms
            ),
        },
    )
}
