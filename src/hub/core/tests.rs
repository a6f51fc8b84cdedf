//! The hub core on a virtual clock: inputs in, outputs checked, no socket and no store.

use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use signaling::{CloseCode, PeerId, PeerRef, Role, RoomId, ServerMessage, SessionStatus, Signal};
use uuid::Uuid;

use super::{Core, Now, Output};
use crate::hub::{Effect, JoinError, Principal, ResumeClaim, SignalError};
use crate::state::HubSignal;
use crate::store::sessions_lookup::SessionFacts;

const HEARTBEAT: Duration = Duration::from_secs(5);
const RESUME_WINDOW: Duration = Duration::from_secs(30);

/// A core and a virtual clock.
struct Fixture {
    core: Core,
    t0: Instant,
    now: Duration,
}

impl Fixture {
    fn new(relay: bool) -> Fixture {
        let t0 = Instant::now();
        Fixture {
            core: Core::new(
                t0,
                HEARTBEAT,
                RESUME_WINDOW,
                crate::config::IceConfig::default(),
                relay,
            ),
            t0,
            now: Duration::ZERO,
        }
    }

    fn now(&self) -> Now {
        Now {
            at: self.t0 + self.now,
            wall: Utc.timestamp_opt(1_800_000_000, 0).unwrap()
                + chrono::Duration::from_std(self.now).unwrap(),
        }
    }

    fn advance(&mut self, by: Duration) {
        self.now += by;
    }

    fn register(&mut self, role: Role, user: Uuid, session: Option<Uuid>) -> PeerId {
        let peer = PeerId::new_v4();
        let now = self.now();
        self.core.register(
            Principal {
                peer_id: peer,
                user_id: user,
                role,
                session_id: session,
            },
            format!("token-{peer}"),
            now,
        );
        peer
    }

    /// A candidate's laptop in its session's room: (candidate, session, laptop).
    fn laptop(&mut self) -> (Uuid, SessionFacts, PeerId) {
        let candidate = Uuid::new_v4();
        let session = facts(candidate);
        let laptop = self.register(Role::Candidate, candidate, None);
        self.join(laptop, &session).unwrap();
        (candidate, session, laptop)
    }

    fn join(&mut self, peer: PeerId, facts: &SessionFacts) -> Result<ServerMessage, JoinError> {
        let now = self.now();
        self.core.join(peer, facts, now)
    }
}

fn facts(candidate: Uuid) -> SessionFacts {
    SessionFacts {
        id: Uuid::new_v4(),
        exam_id: Uuid::new_v4(),
        candidate_id: candidate,
        webrtc_room_id: Uuid::new_v4(),
        is_open: true,
        media_check: false,
        record_media: true,
    }
}

/// The message types delivered to `peer`, in order.
fn delivered(out: &[Output], peer: PeerId) -> Vec<String> {
    out.iter()
        .filter_map(|o| match o {
            Output::Deliver { peer: p, frame, .. } if *p == peer => {
                let v: serde_json::Value = serde_json::from_str(frame).unwrap();
                Some(v["type"].as_str().unwrap().to_string())
            }
            _ => None,
        })
        .collect()
}

fn closes(out: &[Output]) -> Vec<(PeerId, CloseCode)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Close { peer, code } => Some((*peer, *code)),
            _ => None,
        })
        .collect()
}

fn system_events(out: &[Output]) -> Vec<&'static str> {
    out.iter()
        .filter_map(|o| match o {
            Output::Effect(Effect::SystemEvent { event_type, .. }) => Some(*event_type),
            _ => None,
        })
        .collect()
}

#[test]
fn a_laptop_and_a_proctor_meet_in_the_room_and_signal_each_other() {
    let mut f = Fixture::new(false);
    let (_, session, laptop) = f.laptop();
    let out = f.core.drain();
    // The laptop became the session's live laptop.
    assert!(out.iter().any(|o| matches!(
        o,
        Output::Effect(Effect::SocketId { peer: Some(p), .. }) if *p == laptop
    )));

    let proctor = f.register(Role::Proctor, Uuid::new_v4(), None);
    let ServerMessage::Joined { peers, .. } = f.join(proctor, &session).unwrap() else {
        panic!("joined expected");
    };
    assert_eq!(peers.len(), 1);
    assert_eq!(peers[0].peer_id, laptop);
    assert_eq!(delivered(&f.core.drain(), laptop), vec!["peer-joined"]);

    let offer = Signal {
        room_id: RoomId::from_uuid(session.webrtc_room_id),
        to: PeerRef::Peer(proctor),
        data: signaling::SignalData::relay_answer("v=0".into()).unwrap(),
    };
    assert!(f.core.signal(laptop, offer, f.now().at).unwrap().is_none());
    let out = f.core.drain();
    assert_eq!(delivered(&out, proctor), vec!["signal"]);
    let Output::Deliver { frame, seq, .. } = &out[0] else {
        panic!("a delivery expected");
    };
    assert!(frame.contains(&format!("\"from\":\"{laptop}\"")), "{frame}");
    // The first message numbered for the proctor (its `joined` was a reply, not numbered).
    assert_eq!(*seq, 1);
}

#[test]
fn a_candidate_cannot_join_someone_elses_room_and_nothing_changes() {
    let mut f = Fixture::new(false);
    let session = facts(Uuid::new_v4());
    let intruder = f.register(Role::Candidate, Uuid::new_v4(), None);
    assert_eq!(f.join(intruder, &session), Err(JoinError::Forbidden));
    assert!(f.core.drain().is_empty());
    assert_eq!(f.core.stats().rooms, 0);
    assert_eq!(f.core.stats().devices, 0);
}

#[test]
fn an_ended_session_refuses_its_devices_but_admits_staff() {
    let mut f = Fixture::new(false);
    let candidate = Uuid::new_v4();
    let mut session = facts(candidate);
    session.is_open = false;
    let laptop = f.register(Role::Candidate, candidate, None);
    assert_eq!(f.join(laptop, &session), Err(JoinError::SessionEnded));
    let proctor = f.register(Role::Admin, Uuid::new_v4(), None);
    assert!(f.join(proctor, &session).is_ok());
}

#[test]
fn a_second_laptop_replaces_the_first_with_4504_and_a_system_event() {
    let mut f = Fixture::new(false);
    let candidate = Uuid::new_v4();
    let session = facts(candidate);
    let first = f.register(Role::Candidate, candidate, None);
    f.join(first, &session).unwrap();
    f.core.drain();
    let second = f.register(Role::Candidate, candidate, None);
    f.join(second, &session).unwrap();
    let out = f.core.drain();
    assert!(closes(&out).contains(&(first, CloseCode::Replaced)));
    assert_eq!(system_events(&out), vec!["DUPLICATE_CONNECTION"]);
    assert_eq!(f.core.stats().devices, 1);
}

#[test]
fn heartbeats_stopping_for_the_ttl_is_a_loss_the_watchers_see_and_a_return_reconnects() {
    let mut f = Fixture::new(false);
    let (_, session, laptop) = f.laptop();
    let proctor = f.register(Role::Proctor, Uuid::new_v4(), None);
    f.core.watch(proctor, session.exam_id, Vec::new());
    let now = f.now();
    f.core.heartbeat(laptop, now);
    let out = f.core.drain();
    assert!(out
        .iter()
        .any(|o| matches!(o, Output::Effect(Effect::HeartbeatKey { .. }))));
    assert_eq!(
        delivered(&out, proctor),
        vec!["session-snapshot", "session-update"],
        "the first heartbeat makes the laptop ONLINE"
    );
    // The deadline is exactly TTL = 3 heartbeats later, and nothing happens before it.
    let deadline = f.core.next_deadline().unwrap();
    assert_eq!(
        deadline.duration_since(f.t0).as_millis(),
        (HEARTBEAT * 3).as_millis()
    );
    f.now = deadline.duration_since(f.t0) - Duration::from_millis(1);
    let now = f.now();
    f.core.poll_liveness(now);
    assert!(f.core.drain().is_empty());
    f.advance(Duration::from_millis(1));
    let now = f.now();
    f.core.poll_liveness(now);
    let out = f.core.drain();
    assert_eq!(system_events(&out), vec!["LAPTOP_HEARTBEAT_LOST"]);
    assert_eq!(delivered(&out, proctor), vec!["session-update"]);
    f.advance(Duration::from_secs(2));
    let now = f.now();
    f.core.heartbeat(laptop, now);
    let out = f.core.drain();
    assert_eq!(system_events(&out), vec!["LAPTOP_RECONNECTED"]);
}

#[test]
fn a_dropped_peer_resumes_with_what_it_missed_and_a_close_asked_meanwhile() {
    let mut f = Fixture::new(false);
    let (candidate, session, laptop) = f.laptop();
    f.core.drain();
    let now = f.now();
    f.core.detach(laptop, now);
    // Ended while its socket is gone: the message is kept, the close waits.
    f.core.hub_signal(HubSignal::SessionEnded {
        session_id: session.id,
        exam_id: session.exam_id,
        status: SessionStatus::Terminated,
        reason: "test".into(),
    });
    let out = f.core.drain();
    assert!(delivered(&out, laptop).is_empty());
    assert!(closes(&out).is_empty());
    f.advance(Duration::from_secs(5));
    let claim = ResumeClaim {
        token: format!("token-{laptop}"),
        last_seq: 0,
        user_id: candidate,
        role: Role::Candidate,
    };
    let now = f.now();
    assert_eq!(f.core.claim_resume(&claim, now), Some(laptop));
    assert!(f.core.reattach(laptop, 0));
    let out = f.core.drain();
    assert_eq!(delivered(&out, laptop), vec!["session-ended"]);
    assert_eq!(closes(&out), vec![(laptop, CloseCode::SessionEnded)]);
}

#[test]
fn a_resume_by_another_user_is_refused_and_a_window_that_passes_lets_the_peer_go() {
    let mut f = Fixture::new(false);
    let (_, _, laptop) = f.laptop();
    let now = f.now();
    f.core.detach(laptop, now);
    let stranger = ResumeClaim {
        token: format!("token-{laptop}"),
        last_seq: 0,
        user_id: Uuid::new_v4(),
        role: Role::Candidate,
    };
    assert_eq!(f.core.claim_resume(&stranger, now), None);
    f.core.drain();
    f.advance(RESUME_WINDOW - Duration::from_millis(1));
    let now = f.now();
    f.core.expire_detached(now);
    assert!(f.core.has_peer(laptop));
    f.advance(Duration::from_millis(1));
    let now = f.now();
    f.core.expire_detached(now);
    assert!(!f.core.has_peer(laptop));
    let out = f.core.drain();
    assert!(out
        .iter()
        .any(|o| matches!(o, Output::Release { peer } if *peer == laptop)));
    assert_eq!(f.core.stats(), crate::hub::HubStats::default());
}

#[test]
fn a_resume_while_the_old_socket_is_open_displaces_that_socket() {
    let mut f = Fixture::new(false);
    let candidate = Uuid::new_v4();
    let laptop = f.register(Role::Candidate, candidate, None);
    let claim = ResumeClaim {
        token: format!("token-{laptop}"),
        last_seq: 0,
        user_id: candidate,
        role: Role::Candidate,
    };
    let now = f.now();
    assert_eq!(f.core.claim_resume(&claim, now), Some(laptop));
    let out = f.core.drain();
    assert!(matches!(
        out.as_slice(),
        [Output::Displace { peer, code: CloseCode::Replaced }] if *peer == laptop
    ));
    // Not reattached within the deadline: let go.
    f.advance(super::REATTACH_DEADLINE);
    let now = f.now();
    f.core.expire_detached(now);
    assert!(!f.core.has_peer(laptop));
}

#[test]
fn signals_to_the_hub_become_relay_commands_by_role() {
    let mut f = Fixture::new(true);
    let candidate = Uuid::new_v4();
    let session = facts(candidate);
    let room = RoomId::from_uuid(session.webrtc_room_id);
    let laptop = f.register(Role::Candidate, candidate, None);
    f.join(laptop, &session).unwrap();
    let proctor = f.register(Role::Proctor, Uuid::new_v4(), None);
    f.join(proctor, &session).unwrap();
    let mut offer = serde_json::Map::new();
    offer.insert("kind".into(), "offer".into());
    offer.insert("sdp".into(), "v=0".into());
    offer.insert(
        "tracks".into(),
        serde_json::json!({"0": "camera", "1": "screen"}),
    );
    let offer = signaling::SignalData::new(offer).unwrap();
    let at = f.now().at;
    let cmd = f
        .core
        .signal(
            laptop,
            Signal {
                room_id: room,
                to: PeerRef::Hub,
                data: offer.clone(),
            },
            at,
        )
        .unwrap();
    let Some(crate::relay::Command::Publish {
        declared, allowed, ..
    }) = cmd
    else {
        panic!("a publish expected");
    };
    assert_eq!(declared.len(), 2);
    assert_eq!(allowed.len(), 3, "camera, screen and microphone");
    // A proctor may not publish.
    let refused = f.core.signal(
        proctor,
        Signal {
            room_id: room,
            to: PeerRef::Hub,
            data: offer,
        },
        at,
    );
    assert_eq!(refused.unwrap_err(), SignalError::MediaForbidden);
    f.core.refuse(proctor, SignalError::MediaForbidden);
    let out = f.core.drain();
    assert!(out.iter().any(|o| matches!(
        o,
        Output::Reply { peer, frame } if *peer == proctor && frame.contains("MEDIA_FORBIDDEN")
    )));
}

#[test]
fn without_a_relay_a_signal_to_the_hub_is_refused() {
    let mut f = Fixture::new(false);
    let (_, session, laptop) = f.laptop();
    let at = f.now().at;
    let r = f.core.signal(
        laptop,
        Signal {
            room_id: RoomId::from_uuid(session.webrtc_room_id),
            to: PeerRef::Hub,
            data: signaling::SignalData::relay_answer("v=0".into()).unwrap(),
        },
        at,
    );
    assert_eq!(r.unwrap_err(), SignalError::NoRelay);
}

#[test]
fn leaving_tells_the_relay_and_the_room() {
    let mut f = Fixture::new(true);
    let (_, session, laptop) = f.laptop();
    let proctor = f.register(Role::Proctor, Uuid::new_v4(), None);
    f.join(proctor, &session).unwrap();
    f.core.drain();
    f.core.unregister(proctor);
    let out = f.core.drain();
    assert!(out.iter().any(|o| matches!(
        o,
        Output::Relay(crate::relay::Command::Leave { key }) if key.peer == proctor.as_uuid()
    )));
    assert_eq!(delivered(&out, laptop), vec!["peer-left"]);
}

#[test]
fn a_deactivated_user_is_closed_with_4500_and_a_warning_reaches_only_the_laptop() {
    let mut f = Fixture::new(false);
    let (candidate, session, laptop) = f.laptop();
    let phone = f.register(Role::Mobile, candidate, Some(session.id));
    f.core.drain();
    f.core.hub_signal(HubSignal::Warn {
        session_id: session.id,
        message: "eyes on the screen".into(),
    });
    let out = f.core.drain();
    assert_eq!(delivered(&out, laptop), vec!["warning"]);
    assert!(delivered(&out, phone).is_empty());
    f.core
        .hub_signal(HubSignal::UserRevoked { user_id: candidate });
    let mut got = closes(&f.core.drain());
    got.sort_by_key(|(p, _)| *p);
    let mut want = vec![
        (laptop, CloseCode::InvalidToken),
        (phone, CloseCode::InvalidToken),
    ];
    want.sort_by_key(|(p, _)| *p);
    assert_eq!(got, want);
}
