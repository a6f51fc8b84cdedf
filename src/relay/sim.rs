//! A simulated network for the relay: str0m client peers and the relay wired through memory, on
//! a virtual clock (every `Instant` comes from the caller). Used by the relay's tests and by the
//! forwarding benchmark (`benches/relay_forward.rs`); not part of the hub's runtime path.
#![allow(clippy::expect_used, missing_docs)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::net::UdpSocket;
use std::time::{Duration, Instant};

use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::media::{
    Direction, Frequency, MediaKind, MediaTime, Mid, Rid, Simulcast, SimulcastLayer,
};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event as RtcEvent, Input, Output, Rtc};
use uuid::Uuid;

use super::core::{Relay, RelayConfig};
use super::{CloseReason, Command, Event, Layer, PeerKey, Source};

pub const RELAY_ADDR: ([u8; 4], u16) = ([127, 0, 0, 1], 3480);
pub const STEP: Duration = Duration::from_millis(5);
/// One fake frame every 33 ms (30 fps); 1100 bytes: one RTP packet each.
pub const FRAME_EVERY: Duration = Duration::from_millis(33);

/// One frame a client received, as its decoder sees it.
#[derive(Debug, Clone, Copy)]
pub struct Got {
    pub mid: Mid,
    /// First and last RTP sequence number of the frame (extended).
    pub seq: (u64, u64),
    /// RTP time (extended ticks of the 90 kHz clock).
    pub time: u64,
    pub keyframe: bool,
    /// The sender's marker (the frame's second byte).
    pub marker: u8,
    /// The virtual time it arrived.
    pub at: Instant,
}

pub struct Client {
    pub key: PeerKey,
    pub addr: SocketAddr,
    pub rtc: Rtc,
    pub timeout: Instant,
    pub pending: Option<SdpPendingOffer>,
    /// Video mid this client publishes, once negotiated.
    pub send_mid: Option<Mid>,
    /// Frames received, per mid.
    pub frames: HashMap<Mid, Vec<Vec<u8>>>,
    /// Keyframe requests received (publisher side).
    pub keyframe_requests: usize,
    /// The RID of each keyframe request received, with when it arrived (publisher side).
    pub keyframe_rids: Vec<(Option<Rid>, Instant)>,
    /// Simulcast RIDs this client publishes (empty without simulcast).
    pub send_rids: Vec<Rid>,
    /// Every frame received, in order.
    pub got: Vec<Got>,
    /// NACKs received (publisher side, from str0m's egress stats).
    pub nacks: u64,
    /// Bytes this client put on the network.
    pub egress: u64,
    pub connected: bool,
}

/// Decides per datagram (from, to, bytes) whether the fake network drops it.
pub type DropRule = Box<dyn FnMut(SocketAddr, SocketAddr, &[u8]) -> bool>;

pub struct Net {
    pub now: Instant,
    pub relay: Relay,
    pub clients: Vec<Client>,
    pub drop: Option<DropRule>,
    pub next_port: u16,
    pub frame_no: u64,
    /// Wall time spent inside the relay (and sending its datagrams to `sink`).
    pub relay_time: Duration,
    /// When set, every relay datagram is also sent to this socket's peer (a loopback sink), so
    /// the benchmark pays the real `sendto` cost.
    pub sink: Option<UdpSocket>,
    /// Connections the relay closed on its own, with why, in order.
    pub closed: Vec<(PeerKey, CloseReason)>,
    /// The session new publishers' tracks are recorded for (`None`: not recorded).
    pub record: Option<Uuid>,
}

pub fn relay_addr() -> SocketAddr {
    SocketAddr::from(RELAY_ADDR)
}

impl Default for Net {
    fn default() -> Self {
        Net::new()
    }
}

impl Net {
    pub fn new() -> Net {
        let now = Instant::now();
        Net {
            now,
            relay: Relay::new(RelayConfig {
                candidates: vec![relay_addr()],
                ..RelayConfig::default()
            }),
            clients: Vec::new(),
            drop: None,
            next_port: 10_000,
            frame_no: 0,
            relay_time: Duration::ZERO,
            sink: None,
            closed: Vec::new(),
            record: None,
        }
    }

    pub fn client(&mut self, room: Uuid) -> usize {
        self.next_port += 1;
        let addr = SocketAddr::from(([127, 0, 0, 2], self.next_port));
        let mut rtc = Rtc::builder()
            .set_stats_interval(Some(Duration::from_secs(1)))
            .build(self.now);
        rtc.add_local_candidate(Candidate::host(addr, "udp").expect("a host candidate"));
        self.clients.push(Client {
            key: PeerKey {
                room,
                peer: Uuid::new_v4(),
            },
            addr,
            rtc,
            timeout: self.now,
            pending: None,
            send_mid: None,
            frames: HashMap::new(),
            keyframe_requests: 0,
            keyframe_rids: Vec::new(),
            send_rids: Vec::new(),
            got: Vec::new(),
            nacks: 0,
            egress: 0,
            connected: false,
        });
        self.clients.len() - 1
    }

    /// A client that publishes one video track as `source`.
    pub fn publisher(&mut self, room: Uuid, source: Source) -> usize {
        let i = self.client(room);
        let c = &mut self.clients[i];
        let mut change = c.rtc.sdp_api();
        let mid = change.add_media(MediaKind::Video, Direction::SendOnly, None, None, None);
        let (offer, pending) = change.apply().expect("an offer");
        c.pending = Some(pending);
        c.send_mid = Some(mid);
        let key = c.key;
        self.relay.command(
            self.now,
            Command::Publish {
                record: self.record,
                key,
                offer: offer.to_sdp_string(),
                declared: vec![(mid.to_string(), source)],
                allowed: vec![source],
            },
        );
        self.pump();
        i
    }

    /// A client that publishes one simulcast video track as `source`, with layers `rids`.
    pub fn simulcast_publisher(&mut self, room: Uuid, source: Source, rids: &[&str]) -> usize {
        let i = self.client(room);
        let c = &mut self.clients[i];
        let mut simulcast = Simulcast::new();
        for rid in rids {
            simulcast.add_send_layer(SimulcastLayer::new(rid));
        }
        let mut change = c.rtc.sdp_api();
        let mid = change.add_media(
            MediaKind::Video,
            Direction::SendOnly,
            None,
            None,
            Some(simulcast),
        );
        let (offer, pending) = change.apply().expect("an offer");
        c.pending = Some(pending);
        c.send_mid = Some(mid);
        c.send_rids = rids.iter().map(|r| Rid::from(*r)).collect();
        let key = c.key;
        self.relay.command(
            self.now,
            Command::Publish {
                record: self.record,
                key,
                offer: offer.to_sdp_string(),
                declared: vec![(mid.to_string(), source)],
                allowed: vec![source],
            },
        );
        self.pump();
        i
    }

    pub fn subscriber(&mut self, room: Uuid) -> usize {
        self.subscriber_on(room, Layer::High)
    }

    /// A subscriber to every source of `room` that wants simulcast `layer`.
    pub fn subscriber_on(&mut self, room: Uuid, layer: Layer) -> usize {
        let i = self.client(room);
        self.set_layer(i, layer);
        i
    }

    /// Subscriber `i` (again) asks for every source on `layer`.
    pub fn set_layer(&mut self, i: usize, layer: Layer) {
        let key = self.clients[i].key;
        self.relay.command(
            self.now,
            Command::Subscribe {
                key,
                sources: None,
                layer,
            },
        );
        self.pump();
    }

    pub fn leave(&mut self, i: usize) {
        let key = self.clients[i].key;
        self.relay.command(self.now, Command::Leave { key });
        self.pump();
    }

    pub fn index_of(&self, key: PeerKey) -> Option<usize> {
        self.clients.iter().position(|c| c.key == key)
    }

    /// Moves everything that can move now: client output, relay output, signaling.
    pub fn pump(&mut self) {
        loop {
            let mut moved = false;
            for i in 0..self.clients.len() {
                loop {
                    let out = self.clients[i].rtc.poll_output().expect("client output");
                    match out {
                        Output::Timeout(t) => {
                            self.clients[i].timeout = t;
                            break;
                        }
                        Output::Transmit(t) => {
                            moved = true;
                            self.clients[i].egress += t.contents.len() as u64;
                            let from = self.clients[i].addr;
                            let dropped = self
                                .drop
                                .as_mut()
                                .is_some_and(|d| d(from, t.destination, &t.contents));
                            if !dropped && t.destination == relay_addr() {
                                let started = Instant::now();
                                self.relay.receive(self.now, from, &t.contents);
                                self.relay_time += started.elapsed();
                            }
                        }
                        Output::Event(e) => {
                            moved = true;
                            let c = &mut self.clients[i];
                            match e {
                                RtcEvent::Connected => c.connected = true,
                                RtcEvent::MediaData(d) => {
                                    c.got.push(Got {
                                        mid: d.mid,
                                        seq: (**d.seq_range.start(), **d.seq_range.end()),
                                        time: d.time.numer(),
                                        keyframe: d.is_keyframe(),
                                        marker: d.data.get(1).copied().unwrap_or(0),
                                        at: self.now,
                                    });
                                    c.frames.entry(d.mid).or_default().push(d.data.to_vec())
                                }
                                RtcEvent::KeyframeRequest(r) => {
                                    c.keyframe_requests += 1;
                                    c.keyframe_rids.push((r.rid, self.now));
                                }
                                RtcEvent::MediaEgressStats(s) => c.nacks = c.nacks.max(s.nacks),
                                _ => {}
                            }
                        }
                    }
                }
            }
            let started = Instant::now();
            let transmits = self.relay.take_transmits();
            if let Some(sink) = &self.sink {
                for t in &transmits {
                    let _ = sink.send(&t.contents);
                }
            }
            self.relay_time += started.elapsed();
            for t in transmits {
                moved = true;
                let dropped = self
                    .drop
                    .as_mut()
                    .is_some_and(|d| d(relay_addr(), t.destination, &t.contents));
                if dropped {
                    continue;
                }
                if let Some(c) = self.clients.iter_mut().find(|c| c.addr == t.destination) {
                    let input = Input::Receive(
                        self.now,
                        Receive {
                            proto: Protocol::Udp,
                            source: relay_addr(),
                            destination: c.addr,
                            contents: (&t.contents[..]).try_into().expect("a datagram"),
                        },
                    );
                    c.rtc.handle_input(input).expect("client input");
                }
            }
            for e in self.relay.take_events() {
                moved = true;
                self.signal(e);
            }
            if !moved {
                break;
            }
        }
    }

    pub fn signal(&mut self, e: Event) {
        match e {
            Event::Answer { key, sdp } => {
                let Some(i) = self.index_of(key) else { return };
                let c = &mut self.clients[i];
                let answer = SdpAnswer::from_sdp_string(&sdp).expect("relay answer parses");
                let pending = c.pending.take().expect("an offer was pending");
                c.rtc
                    .sdp_api()
                    .accept_answer(pending, answer)
                    .expect("answer accepted");
            }
            Event::Offer { key, sdp, .. } => {
                let Some(i) = self.index_of(key) else { return };
                let c = &mut self.clients[i];
                let offer = SdpOffer::from_sdp_string(&sdp).expect("relay offer parses");
                let answer = c.rtc.sdp_api().accept_offer(offer).expect("offer accepted");
                let sdp = answer.to_sdp_string();
                self.relay
                    .command(self.now, Command::Answer { key, answer: sdp });
            }
            Event::Rejected { key, reason } => panic!("relay rejected {key:?}: {reason}"),
            Event::Closed { key, reason } => self.closed.push((key, reason)),
        }
    }

    /// Advances the virtual clock by `d` in small steps, feeding every timer.
    pub fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            self.now += STEP;
            let now = self.now;
            for c in &mut self.clients {
                if c.timeout <= now {
                    c.rtc
                        .handle_input(Input::Timeout(now))
                        .expect("client timeout");
                }
            }
            if self.relay.next_timeout().is_some_and(|t| t <= now) {
                let started = Instant::now();
                self.relay.timeout(now);
                self.relay_time += started.elapsed();
            }
            self.pump();
        }
    }

    /// Sends one fake VP8 frame from publisher `i`; `marker` is written into the payload so
    /// receivers can tell publishers apart. Every 30th frame is a keyframe.
    pub fn send_frame(&mut self, i: usize, marker: u8) {
        self.send_sized_frame(i, marker, 1100);
    }

    /// Like [`Net::send_frame`] with a frame of `size` bytes (several RTP packets when large).
    pub fn send_sized_frame(&mut self, i: usize, marker: u8, size: usize) {
        self.frame_no += 1;
        let n = self.frame_no;
        let c = &mut self.clients[i];
        let mid = c.send_mid.expect("a publisher");
        let mut frame = vec![marker; size];
        // VP8 frame tag: bit 0 clear = keyframe.
        frame[0] = if n % 30 == 1 { 0x10 } else { 0x11 };
        frame[1] = marker;
        let writer = c.rtc.writer(mid).expect("a writer");
        let pt = writer
            .payload_params()
            .find(|p| p.spec().codec == str0m::format::Codec::Vp8)
            .expect("VP8 negotiated")
            .pt();
        writer
            .write(
                pt,
                self.now,
                MediaTime::new(n * 3000, Frequency::NINETY_KHZ),
                frame,
            )
            .expect("write");
        self.pump();
    }

    /// Sends frame `n` of simulcast layer `rid` from publisher `i`: a keyframe when `keyframe`,
    /// `marker` in its second byte. Each layer's RTP time starts at its own origin, as separate
    /// RTP streams do (RFC 3550), and advances 3000 ticks (33 ms at 90 kHz) per frame.
    pub fn send_layer_frame(&mut self, i: usize, rid: &str, n: u64, keyframe: bool, marker: u8) {
        let c = &mut self.clients[i];
        let mid = c.send_mid.expect("a publisher");
        let layer = c
            .send_rids
            .iter()
            .position(|r| **r == *rid)
            .expect("a declared layer") as u64;
        let mut frame = vec![marker; 600];
        // VP8 frame tag: bit 0 clear = keyframe.
        frame[0] = if keyframe { 0x10 } else { 0x11 };
        frame[1] = marker;
        let origin = 0x3000_0000 * (layer + 1);
        let writer = c.rtc.writer(mid).expect("a writer").rid(Rid::from(rid));
        let pt = writer
            .payload_params()
            .find(|p| p.spec().codec == str0m::format::Codec::Vp8)
            .expect("VP8 negotiated")
            .pt();
        writer
            .write(
                pt,
                self.now,
                MediaTime::new(origin + n * 3000, Frequency::NINETY_KHZ),
                frame,
            )
            .expect("write");
        self.pump();
    }

    /// Publishers `pubs` send frames for `d`.
    pub fn stream(&mut self, pubs: &[(usize, u8)], d: Duration) {
        let end = self.now + d;
        while self.now < end {
            for &(i, marker) in pubs {
                self.send_frame(i, marker);
            }
            self.advance(FRAME_EVERY);
        }
    }

    pub fn frames_at(&self, i: usize) -> usize {
        self.clients[i].frames.values().map(Vec::len).sum()
    }

    pub fn connect(&mut self) {
        self.advance(Duration::from_millis(600));
        for c in &self.clients {
            assert!(c.connected, "client {:?} connected", c.key);
        }
    }
}
