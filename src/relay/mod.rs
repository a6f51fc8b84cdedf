//! The media relay (SFU): one task owns one UDP socket and every WebRTC peer connection of the
//! hub (str0m `Rtc`s), and forwards each publisher's tracks to the subscribers that asked for
//! them.
//!
//! - [`core`]: the sans-IO relay. It takes commands, datagrams and `now`, and returns datagrams to
//!   send and events for signaling. All of str0m is behind this module; the rest of the hub sees
//!   only [`Command`], [`Event`], [`Source`] and [`Layer`].
//! - [`run`]: the media task that drives the core with a real socket and clock.
//!
//! # What the relay must not do
//! It knows nothing about rooms' business rules: it never decides who may publish or subscribe.
//! The hub actor decides (from the token's role) and sends [`Command`]s; the relay only enforces
//! the list of sources it was told a publisher may send. It touches no store, shares no lock with
//! the WebSocket tasks and never blocks on the hub: events go out on an unbounded channel whose
//! traffic is signaling-rate (SDP), never media-rate.

pub mod core;
mod send;
#[doc(hidden)]
pub mod sim;

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub use self::core::{Relay, RelayConfig, RelayStats};

/// A peer connection of the relay: one WebSocket peer in one room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerKey {
    /// The room (fan-out never crosses rooms).
    pub room: Uuid,
    /// The WebSocket peer.
    pub peer: Uuid,
}

/// What a published track shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// The laptop's camera.
    Camera,
    /// The laptop's screen share.
    Screen,
    /// The laptop's microphone.
    Microphone,
    /// The phone's camera (the room view).
    PhoneCamera,
}

impl Source {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Camera => "camera",
            Source::Screen => "screen",
            Source::Microphone => "microphone",
            Source::PhoneCamera => "phone-camera",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Source> {
        Some(match s {
            "camera" => Source::Camera,
            "screen" => Source::Screen,
            "microphone" => Source::Microphone,
            "phone-camera" => Source::PhoneCamera,
            _ => return None,
        })
    }

    /// True for audio sources.
    pub fn is_audio(self) -> bool {
        matches!(self, Source::Microphone)
    }
}

/// Which simulcast layer a subscriber wants (when the publisher offers simulcast).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Layer {
    /// The small layer (grid thumbnails): RIDs `l`, `q`, `lo`, `low`.
    Low,
    /// The full layer: every other RID.
    #[default]
    High,
}

/// A request from the hub actor, which already checked that the peer may do it.
#[derive(Debug)]
pub enum Command {
    /// A publisher's offer (first or renegotiation); the relay answers with [`Event::Answer`].
    Publish {
        /// The publisher.
        key: PeerKey,
        /// The SDP offer.
        offer: String,
        /// What the client said each `mid` carries (optional; by order otherwise).
        declared: Vec<(String, Source)>,
        /// The sources this peer may publish (the hub's decision); others are not forwarded.
        allowed: Vec<Source>,
        /// The session whose recording its tracks go to (`None`: not recorded).
        record: Option<Uuid>,
    },
    /// A subscriber chooses what to receive; the relay offers it the matching tracks.
    Subscribe {
        /// The subscriber.
        key: PeerKey,
        /// Sources to receive; `None` for all.
        sources: Option<Vec<Source>>,
        /// Simulcast layer.
        layer: Layer,
    },
    /// A subscriber's answer to the relay's offer.
    Answer {
        /// The subscriber.
        key: PeerKey,
        /// The SDP answer.
        answer: String,
    },
    /// A trickled remote ICE candidate (`candidate:…` line).
    Ice {
        /// Publisher or subscriber.
        key: PeerKey,
        /// The candidate attribute.
        candidate: String,
    },
    /// The peer left the room or closed its socket: free everything it held.
    Leave {
        /// The peer.
        key: PeerKey,
    },
    /// The recorder asks for a keyframe of a publisher's track (a segment waits to start).
    Keyframe {
        /// The publisher.
        key: PeerKey,
        /// The track's `mid`.
        mid: String,
    },
    /// Counts, for tests and health.
    Stats(oneshot::Sender<RelayStats>),
}

/// A subscriber-side track as described in the relay's offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackInfo {
    /// The `mid` in the subscriber's session.
    pub mid: String,
    /// What it shows.
    pub source: Source,
    /// The publishing WebSocket peer.
    pub publisher: Uuid,
}

/// Something the relay tells a peer through signaling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The relay's answer to a publisher's offer.
    Answer {
        /// The publisher.
        key: PeerKey,
        /// SDP.
        sdp: String,
    },
    /// An offer to a subscriber (first one and every renegotiation).
    Offer {
        /// The subscriber.
        key: PeerKey,
        /// SDP.
        sdp: String,
        /// What each offered `mid` carries.
        tracks: Vec<TrackInfo>,
    },
    /// A request of the peer was refused (bad SDP, wrong order, …).
    Rejected {
        /// The peer.
        key: PeerKey,
        /// Human-readable reason (never internal error text).
        reason: &'static str,
    },
    /// The relay closed a connection on its own (its client had not left): the client should
    /// publish or subscribe again.
    Closed {
        /// The peer.
        key: PeerKey,
        /// Why.
        reason: CloseReason,
    },
}

/// Why the relay closed a media connection that its client had not left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// ICE lost every candidate pair: the client stopped answering connectivity checks, or
    /// never answered them.
    IceLost,
    /// The connection failed (a DTLS or SRTP error).
    Failed,
    /// A bug in the connection's code, caught; only this connection was dropped.
    Panicked,
}

impl CloseReason {
    /// The label in metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::IceLost => "ice-lost",
            CloseReason::Failed => "failed",
            CloseReason::Panicked => "panicked",
        }
    }

    /// What the client is told.
    pub fn message(self) -> &'static str {
        match self {
            CloseReason::IceLost => {
                "media connection lost: no ICE candidate pair works; publish or subscribe again"
            }
            CloseReason::Failed => "media connection failed; publish or subscribe again",
            CloseReason::Panicked => {
                "media connection dropped after an internal error; publish or subscribe again"
            }
        }
    }
}

impl Command {
    /// The room a command is about (`None` for [`Command::Stats`]).
    fn room(&self) -> Option<Uuid> {
        match self {
            Command::Publish { key, .. }
            | Command::Subscribe { key, .. }
            | Command::Answer { key, .. }
            | Command::Ice { key, .. }
            | Command::Keyframe { key, .. }
            | Command::Leave { key } => Some(key.room),
            Command::Stats(_) => None,
        }
    }
}

/// The hub's way to the media tasks. Cheap to clone.
#[derive(Clone, Debug)]
pub struct RelayHandle {
    /// Each media task's mailbox; a room's commands always go to the same one.
    tasks: std::sync::Arc<[mpsc::Sender<Command>]>,
}

impl RelayHandle {
    /// The media task that holds `room`'s connections.
    fn task_of(&self, room: Uuid) -> &mpsc::Sender<Command> {
        let n = self.tasks.len() as u128;
        // Room ids are random (v4): their bits spread rooms evenly.
        &self.tasks[(room.as_u128() % n) as usize]
    }

    /// Queues a command without waiting (the hub actor never awaits); `false` when the relay is
    /// overloaded or stopped.
    pub fn try_send(&self, cmd: Command) -> bool {
        match cmd.room() {
            Some(room) => self.task_of(room).try_send(cmd).is_ok(),
            None => false,
        }
    }

    /// Current counts, summed over the media tasks.
    pub async fn stats(&self) -> RelayStats {
        let mut total = RelayStats::default();
        for task in self.tasks.iter() {
            let (tx, rx) = oneshot::channel();
            if task.send(Command::Stats(tx)).await.is_ok() {
                total.add(rx.await.unwrap_or_default());
            }
        }
        total
    }
}

/// The bound relay, ready to run.
pub struct MediaTask {
    /// The one UDP socket of every peer connection.
    socket: UdpSocket,
    /// The sans-IO relay.
    relay: Relay,
    /// Commands from the hub.
    commands: mpsc::Receiver<Command>,
}

/// Binds `tasks` media tasks, task `i` on `addr`'s port + `i` (each on a port of its own when
/// `addr`'s port is 0), with `buffer` bytes of receive and send buffer each. `public` are the
/// addresses advertised as host candidates, their ports offset by `i` likewise (the bound
/// address when empty; an unspecified IP is advertised as 127.0.0.1). Returns the handle that
/// routes each room to one task, the tasks, and their bound addresses.
pub async fn bind(
    addr: SocketAddr,
    public: &[SocketAddr],
    buffer: usize,
    tasks: usize,
) -> std::io::Result<(RelayHandle, Vec<MediaTask>, Vec<SocketAddr>)> {
    let mut senders = Vec::with_capacity(tasks);
    let mut bound = Vec::with_capacity(tasks);
    let mut locals = Vec::with_capacity(tasks);
    for i in 0..tasks.max(1) {
        let offset = u16::try_from(i).unwrap_or(u16::MAX);
        let shift = |a: SocketAddr| {
            if a.port() == 0 {
                a
            } else {
                SocketAddr::new(a.ip(), a.port().saturating_add(offset))
            }
        };
        let public: Vec<SocketAddr> = public.iter().map(|a| shift(*a)).collect();
        let (tx, task, local) = bind_one(shift(addr), &public, buffer)?;
        senders.push(tx);
        bound.push(task);
        locals.push(local);
    }
    Ok((
        RelayHandle {
            tasks: senders.into(),
        },
        bound,
        locals,
    ))
}

/// One media task on its own socket.
fn bind_one(
    addr: SocketAddr,
    public: &[SocketAddr],
    buffer: usize,
) -> std::io::Result<(mpsc::Sender<Command>, MediaTask, SocketAddr)> {
    let socket = udp_socket(addr, buffer)?;
    let local = socket.local_addr()?;
    let mut candidates: Vec<SocketAddr> = public
        .iter()
        .map(|a| {
            // Port 0 means "the bound port" (useful when binding port 0 in tests).
            SocketAddr::new(
                a.ip(),
                if a.port() == 0 {
                    local.port()
                } else {
                    a.port()
                },
            )
        })
        .collect();
    if candidates.is_empty() {
        let ip = if local.ip().is_unspecified() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            local.ip()
        };
        candidates.push(SocketAddr::new(ip, local.port()));
    }
    let relay = Relay::new(RelayConfig {
        candidates,
        ..RelayConfig::default()
    });
    let (tx, commands) = mpsc::channel(4096);
    Ok((
        tx,
        MediaTask {
            socket,
            relay,
            commands,
        },
        local,
    ))
}

/// How often the kernel's drop count of the media socket is read.
const DROPS_CHECK_EVERY: Duration = Duration::from_secs(5);

/// Datagrams the kernel dropped on this process's UDP socket(s) bound to `port` because the
/// receive buffer was full (`/proc/self/net/udp{,6}`; `None` where that does not exist).
fn socket_drops(port: u16) -> Option<u64> {
    ["/proc/self/net/udp", "/proc/self/net/udp6"]
        .iter()
        .filter_map(|t| std::fs::read_to_string(t).ok())
        .filter_map(|table| drops_in(&table, port))
        .reduce(|a, b| a + b)
}

/// The `drops` column (the last) summed over the rows of a `/proc/net/udp` table whose local
/// address has `port`; `None` when no row has it.
pub(crate) fn drops_in(table: &str, port: u16) -> Option<u64> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let mut cols = line.split_whitespace();
            let local = cols.nth(1)?;
            let (_, p) = local.rsplit_once(':')?;
            (u16::from_str_radix(p, 16).ok()? == port).then(|| cols.last()?.parse::<u64>().ok())?
        })
        .reduce(|a, b| a + b)
}

/// A non-blocking UDP socket bound to `addr` with `buffer` bytes of receive and send buffer.
/// Every connection's handshakes and media share this one socket: with the kernel's default
/// (about 200 KB) a burst of connection set-ups overflows it, and lost handshake packets
/// delay or fail the set-up.
fn udp_socket(addr: SocketAddr, buffer: usize) -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    // Best effort: the kernel caps both at net.core.{r,w}mem_max.
    let _ = socket.set_recv_buffer_size(buffer);
    let _ = socket.set_send_buffer_size(buffer);
    // Linux reports twice the usable size it granted.
    let granted = socket.recv_buffer_size().unwrap_or(0) / 2;
    if granted < buffer {
        tracing::warn!(
            asked = buffer,
            granted,
            "the media socket's receive buffer is smaller than HUB_MEDIA_SOCKET_BUFFER; raise \
             net.core.rmem_max"
        );
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}

impl MediaTask {
    /// Runs the media loop until `shutdown`: read datagrams, commands and timers, feed the core,
    /// send what it produced.
    /// Frames of recorded tracks go to `recorder` (never waiting: a full queue drops them).
    pub async fn run(
        self,
        events: mpsc::UnboundedSender<Event>,
        recorder: Option<crate::recording::Sink>,
        shutdown: CancellationToken,
    ) {
        let MediaTask {
            socket,
            mut relay,
            mut commands,
        } = self;
        relay.set_recording(recorder.is_some());
        let mut buf = vec![0u8; 2048];
        let port = socket.local_addr().map(|a| a.port()).unwrap_or(0);
        let mut drops_check = tokio::time::interval(DROPS_CHECK_EVERY);
        loop {
            let deadline = relay
                .next_timeout()
                .map(tokio::time::Instant::from_std)
                .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(1));
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                cmd = commands.recv() => match cmd {
                    Some(cmd) => relay.command(std::time::Instant::now(), cmd),
                    None => break,
                },
                r = socket.recv_from(&mut buf) => match r {
                    Ok((n, source)) => {
                        relay.receive(std::time::Instant::now(), source, &buf[..n]);
                        // Take what else is already queued before sending, so bursts are
                        // handled with one clock read each and no extra wake-ups.
                        for _ in 0..64 {
                            match socket.try_recv_from(&mut buf) {
                                Ok((n, source)) => relay.receive(std::time::Instant::now(), source, &buf[..n]),
                                Err(_) => break,
                            }
                        }
                    }
                    // ICMP port unreachable from a gone client surfaces here on some systems.
                    Err(e) => tracing::debug!(error = %e, "relay recv"),
                },
                () = tokio::time::sleep_until(deadline) => relay.timeout(std::time::Instant::now()),
                _ = drops_check.tick() => {
                    if let Some(d) = socket_drops(port) {
                        metrics::counter!("relay_socket_drops_total", "port" => port.to_string())
                            .absolute(d);
                    }
                }
            }
            send::send_all(&socket, &relay.take_transmits()).await;
            for e in relay.take_events() {
                let _ = events.send(e);
            }
            let captures = relay.take_captures();
            if let Some(recorder) = &recorder {
                for c in captures {
                    recorder.offer(c);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
