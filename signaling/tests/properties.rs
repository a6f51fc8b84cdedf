//! Property tests: the decoder never panics and client messages survive encode → decode.

use chrono::{TimeZone, Utc};
use proptest::prelude::*;
use serde_json::{json, Map, Value};
use signaling::*;
use uuid::Uuid;

fn uuid() -> impl Strategy<Value = Uuid> {
    any::<u128>().prop_map(Uuid::from_u128)
}

fn timestamp() -> impl Strategy<Value = Timestamp> {
    (0i64..4_000_000_000, 0u32..1_000_000_000).prop_map(|(secs, nanos)| {
        let t = Utc.timestamp_opt(secs, nanos).single();
        // Every second count in this range with sub-second nanos is a valid UTC instant.
        Timestamp::from(t.expect("in range"))
    })
}

fn small_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "\\PC{0,20}".prop_map(Value::from),
    ]
}

fn object(max: usize) -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map("[a-zA-Z]{1,12}", small_value(), 0..max)
        .prop_map(|m| m.into_iter().collect())
}

fn signal_data() -> impl Strategy<Value = SignalData> {
    let sdp = ("(offer|answer)", "\\PC{0,300}", object(4)).prop_map(|(kind, sdp, mut m)| {
        m.insert("kind".into(), kind.into());
        m.insert("sdp".into(), sdp.into());
        m
    });
    let ice = (
        prop_oneof![Just(Value::Null), "\\PC{0,100}".prop_map(Value::from)],
        object(4),
    )
        .prop_map(|(candidate, mut m)| {
            m.insert("kind".into(), "ice".into());
            m.insert("candidate".into(), candidate);
            m
        });
    prop_oneof![sdp, ice].prop_map(|m| SignalData::new(m).expect("generated valid"))
}

fn client_message() -> impl Strategy<Value = ClientMessage> {
    let peer_ref = prop_oneof![
        Just(PeerRef::Hub),
        uuid().prop_map(|u| PeerRef::Peer(u.into()))
    ];
    let event = (
        uuid(),
        "[A-Z][A-Z0-9_]{0,63}",
        1u8..=10,
        prop::option::of(timestamp()),
        prop::option::of(object(6)),
        prop::option::of("[A-Za-z0-9_-]{1,32}"),
        prop::option::of("[a-z0-9/._-]{1,100}"),
    )
        .prop_map(|(id, ty, sev, ts, meta, source, frame)| {
            ClientMessage::Event(EventReport {
                event_id: id.into(),
                event_type: EventType::new(ty).expect("matches the pattern"),
                severity: Severity::new(sev).expect("in range"),
                timestamp: ts,
                meta: meta.map(|m| Meta::new(m).expect("small")),
                source: source.map(|s| EventSource::new(s).expect("matches the pattern")),
                frame_ref: frame.map(|f| FrameRef::new(f).expect("matches the pattern")),
            })
        });
    prop_oneof![
        (
            "[A-Za-z0-9._-]{1,300}",
            proptest::option::of(("[A-Za-z0-9_-]{1,128}", any::<u64>()))
        )
            .prop_map(|(t, resume)| ClientMessage::Auth(Auth {
                token: Token::new(t).expect("non-empty"),
                resume: resume.map(|(r, last_seq)| Resume {
                    token: ResumeToken::new(r),
                    last_seq,
                }),
            })),
        uuid().prop_map(|u| ClientMessage::Join(Join { room_id: u.into() })),
        uuid().prop_map(|u| ClientMessage::Leave(Leave { room_id: u.into() })),
        (uuid(), peer_ref, signal_data()).prop_map(|(r, to, data)| ClientMessage::Signal(Signal {
            room_id: r.into(),
            to,
            data
        })),
        Just(ClientMessage::Heartbeat),
        event,
        uuid().prop_map(|u| ClientMessage::Watch(Watch { exam_id: u.into() })),
        uuid().prop_map(|u| ClientMessage::Unwatch(Unwatch { exam_id: u.into() })),
        (uuid(), "[a-zA-Z0-9][\\PC]{0,200}").prop_map(|(s, m)| ClientMessage::Warn(Warn {
            session_id: s.into(),
            message: WarningText::new(m).expect("starts with a visible character"),
        })),
        Just(ClientMessage::PairingReject),
    ]
}

/// JSON objects shaped like client messages but with random field values, to get deep into the
/// per-type validation rather than failing at the envelope.
fn message_like_json() -> impl Strategy<Value = String> {
    let ty = prop::sample::select(
        ClientMessage::TYPES
            .iter()
            .copied()
            .chain(["", "x", "AUTH"])
            .collect::<Vec<_>>(),
    );
    let field = prop::sample::select(vec![
        "token",
        "roomId",
        "to",
        "data",
        "eventId",
        "eventType",
        "severity",
        "timestamp",
        "meta",
        "source",
        "frameRef",
        "examId",
        "sessionId",
        "message",
        "kind",
        "sdp",
        "candidate",
    ]);
    let value = prop_oneof![
        small_value(),
        uuid().prop_map(|u| Value::from(u.to_string())),
        object(3).prop_map(Value::Object),
        Just(json!({"kind": "offer", "sdp": "v=0"})),
        Just(json!({"kind": "ice"})),
        (0i64..20).prop_map(Value::from),
    ];
    (ty, prop::collection::vec((field, value), 0..8)).prop_map(|(ty, fields)| {
        let mut m = Map::new();
        m.insert("type".into(), ty.into());
        for (k, v) in fields {
            m.insert(k.into(), v);
        }
        Value::Object(m).to_string()
    })
}

/// Every outcome is either a message or an error with a stable code.
fn check_total(text: &str) {
    match decode_client(text) {
        Ok(m) => assert!(ClientMessage::TYPES.contains(&m.type_name())),
        Err(e) => {
            assert!(
                ["BAD_REQUEST", "UNKNOWN_TYPE", "INVALID_FIELD", "TOO_LARGE"].contains(&e.code())
            );
            assert!(!e.to_string().is_empty());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_string_decodes_or_errors(s in "\\PC*") {
        check_total(&s);
    }

    #[test]
    fn any_bytes_decode_or_error(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        check_total(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn message_like_json_decodes_or_errors(s in message_like_json()) {
        check_total(&s);
    }

    #[test]
    fn client_messages_roundtrip(m in client_message()) {
        let text = encode_client(&m);
        prop_assert_eq!(decode_client(&text), Ok(m));
    }

    #[test]
    fn connection_never_panics(frames in prop::collection::vec(
        prop_oneof![
            message_like_json().prop_map(Inbound::Text),
            "\\PC{0,50}".prop_map(Inbound::Text),
            (0usize..100_000).prop_map(|len| Inbound::Binary { len }),
            Just(Inbound::Ping),
            Just(Inbound::Pong),
        ],
        0..40,
    ), step_ms in 0u64..2000) {
        let mut conn = Connection::new(Limits::default(), std::time::Duration::ZERO);
        let mut now = std::time::Duration::ZERO;
        let auth = Inbound::Text(r#"{"type":"auth","token":"t"}"#.to_owned());
        if let Action::Authenticate(_) = conn.on_frame(auth, now) {
            let ts = Timestamp::parse("2025-01-01T00:00:00Z").expect("valid literal");
            conn.accept(PeerId::new_v4(), Role::Mobile, ts, None);
        }
        for frame in frames {
            now += std::time::Duration::from_millis(step_ms);
            if let Some(deadline) = conn.next_timeout() {
                if now >= deadline {
                    conn.on_timeout(now);
                }
            }
            if let Action::Authenticate(_) = conn.on_frame(frame, now) {
                prop_assert!(false, "auth accepted twice");
            }
        }
    }
}
