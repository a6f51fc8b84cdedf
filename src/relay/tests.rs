//! The relay in memory, on a virtual clock, through [`super::sim`].

use std::time::Duration;

use str0m::media::{Direction, MediaKind};
use uuid::Uuid;

use super::sim::{relay_addr, Got, Net, FRAME_EVERY, STEP};
use super::{CloseReason, Command, Layer, Source};

fn fan_out(n: usize) -> (u64, Net) {
    let room = Uuid::new_v4();
    let mut net = Net::new();
    let publisher = net.publisher(room, Source::Camera);
    let subs: Vec<usize> = (0..n).map(|_| net.subscriber(room)).collect();
    net.connect();
    let before = net.clients[publisher].egress;
    net.stream(&[(publisher, 7)], Duration::from_secs(3));
    let egress = net.clients[publisher].egress - before;
    for &s in &subs {
        let got = net.frames_at(s);
        assert!(got >= 85, "subscriber got {got} of ~91 frames");
        assert!(net.clients[s].frames.values().flatten().all(|f| f[1] == 7));
    }
    (egress, net)
}

#[test]
fn fans_out_to_1_3_and_8_subscribers_with_flat_publisher_egress() {
    let (one, _) = fan_out(1);
    let (three, _) = fan_out(3);
    let (eight, net) = fan_out(8);
    let stats = net.relay.stats();
    assert_eq!(
        (stats.publishers, stats.subscribers, stats.tracks),
        (1, 8, 1)
    );
    // The publisher uploads once whatever the number of watchers (RTCP aside).
    for (n, e) in [(3, three), (8, eight)] {
        let ratio = e as f64 / one as f64;
        assert!(
            (0.9..1.1).contains(&ratio),
            "publisher egress with {n} subscribers is {ratio:.2}× that with 1"
        );
    }
    assert!(net.relay.counters().forwarded_frames >= 8 * 85);
}

#[test]
fn one_throttled_keyframe_request_per_subscriber_join() {
    let room = Uuid::new_v4();
    let mut net = Net::new();
    let publisher = net.publisher(room, Source::Camera);
    net.advance(Duration::from_millis(300));
    // Joins two seconds apart: one request each.
    for joined in 1..=3 {
        net.subscriber(room);
        net.stream(&[(publisher, 1)], Duration::from_secs(2));
        assert_eq!(net.clients[publisher].keyframe_requests, joined);
    }
    // Three joins within 100 ms: one request now, one coalesced after the interval.
    for _ in 0..3 {
        net.subscriber(room);
        net.advance(Duration::from_millis(30));
    }
    net.stream(&[(publisher, 1)], Duration::from_millis(700));
    assert!(net.clients[publisher].keyframe_requests <= 4);
    net.stream(&[(publisher, 1)], Duration::from_secs(2));
    assert_eq!(net.clients[publisher].keyframe_requests, 5);
    assert!(net.relay.counters().keyframe_requests_throttled >= 1);
}

#[test]
fn nacks_are_answered_from_the_relay_buffer() {
    let room = Uuid::new_v4();
    let mut net = Net::new();
    let publisher = net.publisher(room, Source::Camera);
    let sub = net.subscriber(room);
    net.connect();
    let sub_addr = net.clients[sub].addr;
    // Lose every 10th first-time video packet on the relay → subscriber link only.
    let mut n = 0u32;
    net.drop = Some(Box::new(move |from, to, bytes| {
        let rtp =
            bytes.len() > 12 && (128..192).contains(&bytes[0]) && !(192..224).contains(&bytes[1]);
        if from == relay_addr() && to == sub_addr && rtp && bytes[1] & 0x7f == 96 {
            n += 1;
            return n % 10 == 0;
        }
        false
    }));
    net.stream(&[(publisher, 3)], Duration::from_secs(4));
    net.drop = None;
    net.advance(Duration::from_millis(500));
    let got = net.frames_at(sub);
    assert!(
        got >= 115,
        "subscriber got {got} of ~122 frames despite 10% loss"
    );
    assert!(net.relay.counters().nacks_in > 0, "the subscriber NACKed");
    assert_eq!(net.clients[publisher].nacks, 0, "no NACK went upstream");
}

#[test]
fn a_thousand_join_leave_cycles_leave_nothing_behind() {
    let room = Uuid::new_v4();
    let mut net = Net::new();
    let publisher = net.publisher(room, Source::Camera);
    net.connect();
    for cycle in 0..1000 {
        let s = net.subscriber(room);
        if cycle % 100 == 0 {
            // Now and then, a fully connected subscriber that received media.
            net.stream(&[(publisher, 1)], Duration::from_millis(400));
            assert!(net.frames_at(s) > 0, "cycle {cycle}: media flowed");
        } else {
            net.advance(STEP);
        }
        net.leave(s);
        net.clients.pop();
        let stats = net.relay.stats();
        assert_eq!(
            (stats.subscribers, stats.subscriptions),
            (0, 0),
            "cycle {cycle}"
        );
    }
    net.leave(publisher);
    assert_eq!(net.relay.stats(), Default::default());
    assert_eq!(net.relay.next_timeout(), None);
}

#[test]
fn two_rooms_share_the_socket_without_cross_talk() {
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let mut net = Net::new();
    let pa = net.publisher(a, Source::Camera);
    let pb = net.publisher(b, Source::Camera);
    let sa = net.subscriber(a);
    let sb = net.subscriber(b);
    net.connect();
    net.stream(&[(pa, 0xaa), (pb, 0xbb)], Duration::from_secs(2));
    assert!(net.frames_at(sa) > 50 && net.frames_at(sb) > 50);
    assert_eq!(
        net.clients[sa].frames.len(),
        1,
        "room A's subscriber has one track"
    );
    assert!(net.clients[sa]
        .frames
        .values()
        .flatten()
        .all(|f| f[1] == 0xaa));
    assert!(net.clients[sb]
        .frames
        .values()
        .flatten()
        .all(|f| f[1] == 0xbb));
    assert_eq!(net.relay.stats().rooms, 2);
}

#[test]
fn a_publisher_leaving_ends_its_tracks_and_rights_are_enforced() {
    let room = Uuid::new_v4();
    let mut net = Net::new();
    // A phone may publish its camera only: a declared "screen" is not forwarded.
    let phone = net.client(room);
    let c = &mut net.clients[phone];
    let mut change = c.rtc.sdp_api();
    let mid = change.add_media(MediaKind::Video, Direction::SendOnly, None, None, None);
    let (offer, pending) = change.apply().expect("an offer");
    c.pending = Some(pending);
    c.send_mid = Some(mid);
    let key = c.key;
    net.relay.command(
        net.now,
        Command::Publish {
            record: None,
            key,
            offer: offer.to_sdp_string(),
            declared: vec![(mid.to_string(), Source::Screen)],
            allowed: vec![Source::PhoneCamera],
        },
    );
    net.pump();
    let laptop = net.publisher(room, Source::Camera);
    let sub = net.subscriber(room);
    net.connect();
    assert_eq!(
        net.relay.stats().tracks,
        1,
        "only the laptop's camera is a track"
    );
    net.stream(&[(laptop, 1), (phone, 2)], Duration::from_secs(1));
    assert!(net.clients[sub]
        .frames
        .values()
        .flatten()
        .all(|f| f[1] == 1));
    net.leave(laptop);
    net.advance(Duration::from_millis(100));
    let stats = net.relay.stats();
    assert_eq!((stats.tracks, stats.subscriptions), (0, 0));
}

const LOW: u8 = 0x1a;
const HIGH: u8 = 0x2b;

/// Sends frames `from..to` on both layers of simulcast publisher `p` (the low layer first, as
/// the subscriber would least like it), 33 ms apart; `keyframe(rid, n)` says which are keyframes.
fn simulcast_frames(
    net: &mut Net,
    p: usize,
    frames: std::ops::Range<u64>,
    keyframe: impl Fn(&str, u64) -> bool,
) {
    layered_frames(net, p, &[("l", LOW), ("h", HIGH)], frames, keyframe);
}

/// Sends frames `from..to` on each `(rid, marker)` layer of publisher `p`, in that order.
fn layered_frames(
    net: &mut Net,
    p: usize,
    layers: &[(&str, u8)],
    frames: std::ops::Range<u64>,
    keyframe: impl Fn(&str, u64) -> bool,
) {
    for n in frames {
        for &(rid, marker) in layers {
            net.send_layer_frame(p, rid, n, keyframe(rid, n), marker);
        }
        net.advance(FRAME_EVERY);
    }
}

/// Asserts what a subscriber's decoder needs across layer switches: one RTP stream whose
/// sequence numbers follow each other without a gap and whose time moves forward by about a
/// frame each time (the sender's 3000 ticks; at most two frames' worth at a switch).
fn assert_one_continuous_stream(got: &[Got]) {
    assert!(got.iter().all(|g| g.mid == got[0].mid), "one track");
    for w in got.windows(2) {
        assert_eq!(
            w[1].seq.0,
            w[0].seq.1 + 1,
            "sequence numbers continue from {:?} to {:?}",
            w[0],
            w[1]
        );
        let step = w[1].time.wrapping_sub(w[0].time);
        assert!(
            (1..=6000).contains(&step),
            "RTP time moves forward by about a frame from {:?} to {:?}",
            w[0],
            w[1]
        );
    }
}

/// Where the frames with `marker` start again in `got`, looking from `from`.
fn resumes_at(got: &[Got], from: usize, marker: u8, what: &str) -> usize {
    from + got[from..]
        .iter()
        .position(|g| g.marker == marker)
        .expect(what)
}

/// A connected room with an `l`/`h` simulcast publisher, a High and a Low subscriber.
fn simulcast_room() -> (Net, usize, usize, usize) {
    let room = Uuid::new_v4();
    let mut net = Net::new();
    let publisher = net.simulcast_publisher(room, Source::Camera, &["l", "h"]);
    let high = net.subscriber_on(room, Layer::High);
    let low = net.subscriber_on(room, Layer::Low);
    net.connect();
    (net, publisher, high, low)
}

#[test]
fn simulcast_subscribers_receive_only_the_layer_they_chose() {
    let (mut net, publisher, high, low) = simulcast_room();
    simulcast_frames(&mut net, publisher, 0..90, |_, n| n % 30 == 0);
    for (sub, marker) in [(high, HIGH), (low, LOW)] {
        let got = &net.clients[sub].got;
        assert!(got.len() >= 85, "subscriber got {} of 90 frames", got.len());
        assert!(
            got.iter().all(|g| g.marker == marker),
            "only the chosen layer: {:?}",
            got.iter().map(|g| g.marker).collect::<Vec<_>>()
        );
        assert!(got[0].keyframe, "decoding starts on a keyframe");
        assert_one_continuous_stream(got);
    }
}

#[test]
fn with_two_full_layers_the_subscriber_stays_on_the_fullest_one() {
    // Chrome's f/h/q: `f` and `h` are both "high"; a full-view subscriber must get `f` alone,
    // not hop between `f` and `h` on every keyframe (and ask for keyframes of both).
    let room = Uuid::new_v4();
    let mut net = Net::new();
    let layers = [("q", 0x51_u8), ("h", 0x52_u8), ("f", 0x53_u8)];
    let publisher = net.simulcast_publisher(room, Source::Camera, &["q", "h", "f"]);
    let full = net.subscriber_on(room, Layer::High);
    let thumb = net.subscriber_on(room, Layer::Low);
    net.connect();
    let start = net.now;
    layered_frames(&mut net, publisher, &layers, 0..120, |_, n| n % 30 == 0);
    for (sub, marker) in [(full, 0x53), (thumb, 0x51)] {
        let got = &net.clients[sub].got;
        assert!(
            got.len() >= 115,
            "subscriber got {} of 120 frames",
            got.len()
        );
        assert!(
            got.iter().all(|g| g.marker == marker),
            "one layer only: {:?}",
            got.iter().map(|g| g.marker).collect::<Vec<_>>()
        );
        assert_one_continuous_stream(got);
    }
    let asked_h = net.clients[publisher]
        .keyframe_rids
        .iter()
        .filter(|(rid, at)| rid.as_deref() == Some("h") && *at >= start)
        .count();
    assert_eq!(asked_h, 0, "nobody wants the half layer");
}

#[test]
fn a_layer_switch_waits_for_a_keyframe_of_the_new_layer_and_asks_for_one() {
    let room = Uuid::new_v4();
    let mut net = Net::new();
    let publisher = net.simulcast_publisher(room, Source::Camera, &["l", "h"]);
    let sub = net.subscriber_on(room, Layer::High);
    net.connect();
    // Keyframes only when the test says so.
    simulcast_frames(&mut net, publisher, 0..30, |_, n| n == 0);
    let on_high = net.clients[sub].got.len();
    assert!(on_high >= 28);

    // High → low. Until the low layer's keyframe, the high layer keeps flowing and nothing of
    // the low layer arrives; the relay asks the publisher for a low keyframe at once.
    let asked = net.now;
    net.set_layer(sub, Layer::Low);
    simulcast_frames(&mut net, publisher, 30..60, |_, _| false);
    let c = &net.clients[sub];
    assert!(
        c.got.len() >= on_high + 28,
        "the old layer keeps flowing while the switch waits"
    );
    assert!(c.got.iter().all(|g| g.marker == HIGH), "no low frame yet");
    let pli_low = |net: &Net, since| {
        net.clients[publisher]
            .keyframe_rids
            .iter()
            .filter(|(rid, at)| rid.as_deref() == Some("l") && *at >= since)
            .count()
    };
    assert!(
        pli_low(&net, asked) >= 1,
        "a keyframe request for the low layer went upstream: {:?}",
        net.clients[publisher].keyframe_rids
    );
    let high_plis = |net: &Net, since| {
        net.clients[publisher]
            .keyframe_rids
            .iter()
            .filter(|(rid, at)| rid.as_deref() == Some("h") && *at >= since)
            .count()
    };
    assert_eq!(high_plis(&net, asked), 0, "nothing asked of the old layer");

    // The low keyframe (frame 60) switches it; from then on, low only.
    simulcast_frames(&mut net, publisher, 60..90, |rid, n| rid == "l" && n == 60);
    let got = &net.clients[sub].got;
    let first_low = resumes_at(got, 0, LOW, "switched to low");
    assert!(got[first_low].keyframe, "the switch happens on a keyframe");
    assert!(got[..first_low].iter().all(|g| g.marker == HIGH));
    assert!(got[first_low..].iter().all(|g| g.marker == LOW));
    assert!(got.len() - first_low >= 28, "the low layer flows");

    // And back to high, on the high layer's next keyframe (frame 100).
    let asked = net.now;
    net.set_layer(sub, Layer::High);
    simulcast_frames(&mut net, publisher, 90..130, |rid, n| {
        rid == "h" && n == 100
    });
    assert!(high_plis(&net, asked) >= 1, "asked for a high keyframe");
    let got = &net.clients[sub].got;
    let back = resumes_at(got, first_low, HIGH, "switched back");
    assert!(got[back].keyframe);
    assert!(got[back..].iter().all(|g| g.marker == HIGH));
    assert!(got.len() - back >= 28);

    // One stream for the decoder throughout, although the layers' RTP times start far apart.
    assert_one_continuous_stream(got);
}

#[test]
fn per_room_bitrate_is_measured_while_media_flows_and_dropped_with_the_room() {
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let mut net = Net::new();
    let pa = net.publisher(a, Source::Camera);
    let sa = [net.subscriber(a), net.subscriber(a)];
    let pb = net.publisher(b, Source::Camera);
    let sb = net.subscriber(b);
    net.connect();
    net.stream(&[(pa, 1), (pb, 2)], Duration::from_secs(3));
    let rates = net.relay.room_bitrates();
    assert_eq!(rates.len(), 2, "{rates:?}");
    // ~28 frames of 1100 bytes a second to each subscriber, plus headers and RTCP.
    let (ra, rb) = (rates[&a], rates[&b]);
    assert!((200_000..400_000).contains(&rb), "room B: {rb} bit/s");
    let ratio = ra as f64 / rb as f64;
    assert!(
        (1.8..2.2).contains(&ratio),
        "room A has two subscribers: {ra} vs {rb} bit/s"
    );

    // Room A closes: its meter goes; room B's stays.
    for i in [pa, sa[0], sa[1]] {
        net.leave(i);
    }
    net.stream(&[(pb, 2)], Duration::from_secs(2));
    let rates = net.relay.room_bitrates();
    assert!(!rates.contains_key(&a), "{rates:?}");
    assert!(rates[&b] > 0);
    assert_eq!(net.relay.stats().metered_rooms, 1);

    net.leave(pb);
    net.leave(sb);
    assert!(net.relay.room_bitrates().is_empty());
    assert_eq!(net.relay.stats(), Default::default());
    assert_eq!(net.relay.next_timeout(), None, "no meter left to sample");
}

#[test]
fn a_panicking_peer_is_dropped_alone_and_freed() {
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let mut net = Net::new();
    let pa = net.publisher(a, Source::Camera);
    let doomed = net.subscriber(a);
    let sa = net.subscriber(a);
    let pb = net.publisher(b, Source::Camera);
    let sb = net.subscriber(b);
    net.connect();
    net.stream(&[(pa, 0xaa), (pb, 0xbb)], Duration::from_secs(1));
    assert!(net.frames_at(doomed) > 20);

    // A subscriber's connection panics while a frame is written to it.
    let key = net.clients[doomed].key;
    net.relay.inject_panic(key);
    net.stream(&[(pa, 0xaa), (pb, 0xbb)], Duration::from_millis(100));
    assert_eq!(net.relay.counters().panics, 1);
    assert!(
        !net.relay.holds(key),
        "nothing of the panicked peer is left"
    );
    let stats = net.relay.stats();
    assert_eq!(
        (
            stats.publishers,
            stats.subscribers,
            stats.tracks,
            stats.subscriptions,
            stats.rooms
        ),
        (2, 2, 2, 2, 2)
    );
    let before = [sa, sb, doomed].map(|i| net.frames_at(i));
    net.stream(&[(pa, 0xaa), (pb, 0xbb)], Duration::from_secs(1));
    let after = [sa, sb, doomed].map(|i| net.frames_at(i));
    assert!(after[0] >= before[0] + 25, "the same room keeps receiving");
    assert!(after[1] >= before[1] + 25, "the other room keeps receiving");
    assert_eq!(after[2], before[2], "the dropped peer gets nothing more");

    // A publisher's connection panics on its next datagram: its track ends for its subscriber,
    // the other room keeps flowing.
    let key = net.clients[pb].key;
    net.relay.inject_panic(key);
    net.stream(&[(pa, 0xaa), (pb, 0xbb)], Duration::from_millis(300));
    assert_eq!(net.relay.counters().panics, 2);
    assert!(!net.relay.holds(key));
    let stats = net.relay.stats();
    assert_eq!(
        (stats.publishers, stats.tracks, stats.subscriptions),
        (1, 1, 1)
    );
    let before = net.frames_at(sa);
    net.stream(&[(pa, 0xaa)], Duration::from_secs(1));
    assert!(net.frames_at(sa) >= before + 25);
    assert!(net.clients[sa]
        .frames
        .values()
        .flatten()
        .all(|f| f[1] == 0xaa));

    for i in [pa, sa, sb] {
        net.leave(i);
    }
    assert_eq!(net.relay.stats(), Default::default());
    // Both clients were told why; the ones that left were not.
    assert_eq!(
        net.closed,
        vec![
            (net.clients[doomed].key, CloseReason::Panicked),
            (net.clients[pb].key, CloseReason::Panicked)
        ]
    );
}

#[test]
fn a_silent_client_is_closed_told_and_freed() {
    let room = Uuid::new_v4();
    let mut net = Net::new();
    let publisher = net.publisher(room, Source::Camera);
    let steady = net.subscriber(room);
    let lost = net.subscriber(room);
    net.connect();
    net.stream(&[(publisher, 7)], Duration::from_secs(1));
    assert!(net.frames_at(lost) > 20);

    // One subscriber's network goes away after it connected, and a new one never gets
    // through: neither answers a connectivity check again.
    let never = net.subscriber(room);
    let silent = [net.clients[lost].addr, net.clients[never].addr];
    net.drop = Some(Box::new(move |from, to, _| {
        silent.contains(&from) || silent.contains(&to)
    }));
    net.stream(&[(publisher, 7)], Duration::from_secs(45));

    let (lost_key, never_key) = (net.clients[lost].key, net.clients[never].key);
    assert_eq!(net.closed.len(), 2, "closed: {:?}", net.closed);
    assert!(net.closed.contains(&(lost_key, CloseReason::IceLost)));
    assert!(net.closed.contains(&(never_key, CloseReason::IceLost)));
    assert!(!net.relay.holds(lost_key) && !net.relay.holds(never_key));
    assert_eq!(net.frames_at(never), 0);
    // The rest of the room did not notice.
    let before = net.frames_at(steady);
    net.stream(&[(publisher, 7)], Duration::from_secs(1));
    assert!(net.frames_at(steady) >= before + 25);
    let stats = net.relay.stats();
    assert_eq!((stats.publishers, stats.subscribers), (1, 1));

    net.leave(publisher);
    net.leave(steady);
    assert_eq!(net.relay.stats(), Default::default());
    assert_eq!(net.closed.len(), 2, "leaving is not closing");
}

#[test]
fn an_answer_rejecting_every_section_gets_an_empty_bundle_group() {
    use super::core::bundle_if_all_rejected;
    let rejected = "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n\
                    m=video 0 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\n";
    let fixed = bundle_if_all_rejected(rejected);
    assert_eq!(
        fixed,
        "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE\r\n\
         m=video 0 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\n"
    );
    // Anything else passes untouched: a live section, an existing group, no media at all.
    for sdp in [
        "v=0\r\ns=-\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\n",
        "v=0\r\ns=-\r\na=group:BUNDLE\r\nm=video 0 UDP/TLS/RTP/SAVPF 96\r\n",
        "v=0\r\ns=-\r\n",
    ] {
        assert_eq!(bundle_if_all_rejected(sdp), sdp);
    }
}

#[test]
fn socket_drops_are_read_from_the_kernel_table_by_port() {
    let table = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n\
  1: 0100007F:4706 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1 2 0000000000000000 90\n\
  2: 0100007F:D431 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 3 2 0000000000000000 7\n";
    assert_eq!(super::drops_in(table, 18182), Some(90));
    assert_eq!(super::drops_in(table, 54321), Some(7));
    assert_eq!(super::drops_in(table, 1), None);
}

#[tokio::test]
async fn the_media_socket_gets_the_buffer_asked_for() {
    let asked = 1 << 20;
    let (_handle, tasks, local) = super::bind("127.0.0.1:0".parse().unwrap(), &[], asked, 1)
        .await
        .unwrap();
    assert_ne!(local[0].port(), 0);
    let sock = socket2::SockRef::from(&tasks[0].socket);
    // The kernel grants at most its maximum, and reports twice what it granted.
    let max = |f: &str| -> usize {
        std::fs::read_to_string(f)
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(asked)
    };
    let rmem = asked.min(max("/proc/sys/net/core/rmem_max"));
    let wmem = asked.min(max("/proc/sys/net/core/wmem_max"));
    assert_eq!(sock.recv_buffer_size().unwrap(), 2 * rmem);
    assert_eq!(sock.send_buffer_size().unwrap(), 2 * wmem);
}

#[test]
fn a_paused_layer_moves_its_subscribers_to_one_that_flows_and_back() {
    // Browsers pause simulcast layers when their uplink or CPU is short; a proctor watching
    // the paused layer must not freeze.
    let (mut net, publisher, high, low) = simulcast_room();
    let every_second = |_: &str, n: u64| n % 30 == 0;
    simulcast_frames(&mut net, publisher, 0..30, every_second);
    assert!(net.clients[high].got.iter().all(|g| g.marker == HIGH));

    // The high layer stops for 4 s: after the pause bound (2 s) its subscriber takes the low
    // layer from its next keyframe.
    layered_frames(&mut net, publisher, &[("l", LOW)], 30..150, every_second);
    let got = &net.clients[high].got;
    let first_low = resumes_at(got, 0, LOW, "moved to the flowing layer");
    assert!(got[first_low].keyframe, "the move happens on a keyframe");
    assert!(got[first_low..].iter().all(|g| g.marker == LOW));
    assert!(
        got.len() - first_low >= 25,
        "the low layer flows to it: {} frames",
        got.len() - first_low
    );

    // The high layer comes back: the subscriber returns to it on its next keyframe.
    simulcast_frames(&mut net, publisher, 150..240, every_second);
    let got = &net.clients[high].got;
    let back = resumes_at(got, first_low, HIGH, "back on the high layer");
    assert!(got[back].keyframe);
    assert!(got[back..].iter().all(|g| g.marker == HIGH));
    assert!(got.len() - back >= 55);
    // One stream throughout: sequence numbers continue, time only moves forward.
    for w in got.windows(2) {
        assert_eq!(w[1].seq.0, w[0].seq.1 + 1, "{:?} → {:?}", w[0], w[1]);
        assert!(w[1].time > w[0].time, "{:?} → {:?}", w[0], w[1]);
    }

    // The low subscriber never noticed.
    let low_got = &net.clients[low].got;
    assert!(low_got.iter().all(|g| g.marker == LOW));
    assert!(low_got.len() >= 235, "{} of 240 frames", low_got.len());
}

#[tokio::test]
async fn media_tasks_get_consecutive_ports_and_each_room_one_task() {
    // Find a free pair of ports, then bind two tasks from the first.
    let probe = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let base = probe.local_addr().unwrap().port();
    drop(probe);
    let addr: std::net::SocketAddr = format!("127.0.0.1:{base}").parse().unwrap();
    let public: std::net::SocketAddr = format!("192.0.2.7:{base}").parse().unwrap();
    let Ok((handle, tasks, local)) = super::bind(addr, &[public], 1 << 16, 2).await else {
        return; // the next port was taken meanwhile: nothing to learn from this run
    };
    assert_eq!(tasks.len(), 2);
    assert_eq!(
        local.iter().map(|a| a.port()).collect::<Vec<_>>(),
        vec![base, base + 1]
    );
    assert_eq!(
        tasks[1].relay.config().candidates,
        vec![format!("192.0.2.7:{}", base + 1).parse().unwrap()]
    );
    // Every command of a room goes to the same task, and rooms spread over both.
    let mut used = std::collections::HashSet::new();
    for _ in 0..64 {
        let room = uuid::Uuid::new_v4();
        let a = handle.task_of(room) as *const _;
        let b = handle.task_of(room) as *const _;
        assert_eq!(a, b);
        used.insert(a);
    }
    assert_eq!(used.len(), 2);
}

#[test]
fn recorded_tracks_are_captured_numbered_on_the_best_layer_and_ended() {
    use crate::recording::{Capture, Codec};
    let room = Uuid::new_v4();
    let session = Uuid::new_v4();
    let mut net = Net::new();
    net.record = Some(session);
    let publisher = net.simulcast_publisher(room, Source::Camera, &["l", "h"]);
    let _low = net.subscriber_on(room, Layer::Low);
    net.connect();
    let _ = net.relay.take_captures();
    simulcast_frames(&mut net, publisher, 0..60, |_, n| n % 30 == 0);
    let captures = net.relay.take_captures();
    let frames: Vec<(u64, Option<String>, bool, Codec, Uuid)> = captures
        .iter()
        .filter_map(|c| match c {
            Capture::Frame {
                track,
                seq,
                rid,
                keyframe,
                codec,
                ..
            } => Some((*seq, rid.clone(), *keyframe, *codec, track.session_id)),
            Capture::Ended(_) => None,
        })
        .collect();
    assert!(frames.len() >= 55, "{} of 60 frames captured", frames.len());
    // Only the high layer (the best flowing), even though the only subscriber takes the low.
    assert!(
        frames.iter().all(|f| f.1.as_deref() == Some("h")),
        "{frames:?}"
    );
    assert!(frames.iter().all(|f| f.3 == Codec::Vp8 && f.4 == session));
    let seqs: Vec<u64> = frames.iter().map(|f| f.0).collect();
    assert_eq!(
        seqs,
        (0..frames.len() as u64).collect::<Vec<_>>(),
        "numbered"
    );
    assert!(frames[0].2, "the first keyframe is marked");
    // The publisher leaves: its track's recording ends.
    net.leave(publisher);
    let ended = net.relay.take_captures();
    assert!(
        matches!(ended.as_slice(), [Capture::Ended(t)] if t.session_id == session),
        "{ended:?}"
    );
    // Without a recorder nothing is captured.
    let mut quiet = Net::new();
    quiet.record = Some(session);
    quiet.relay.set_recording(false);
    let p = quiet.publisher(room, Source::Camera);
    let _s = quiet.subscriber(room);
    quiet.connect();
    quiet.stream(&[(p, 7)], Duration::from_secs(1));
    assert!(quiet.relay.take_captures().is_empty());
}

/// The relay's answer to an offer of every codec str0m knows (H.264 and VP8 among them).
fn answer_to_a_full_offer(recording: bool) -> String {
    let mut relay = super::core::Relay::new(super::core::RelayConfig {
        candidates: vec![relay_addr()],
        ..super::core::RelayConfig::default()
    });
    relay.set_recording(recording);
    let mut client = str0m::Rtc::new(std::time::Instant::now());
    let mut change = client.sdp_api();
    change.add_media(MediaKind::Video, Direction::SendOnly, None, None, None);
    let (offer, _) = change.apply().expect("an offer");
    assert!(
        offer.to_sdp_string().contains("H264"),
        "the case under test"
    );
    let key = super::PeerKey {
        room: Uuid::new_v4(),
        peer: Uuid::new_v4(),
    };
    relay.command(
        std::time::Instant::now(),
        Command::Publish {
            key,
            offer: offer.to_sdp_string(),
            declared: Vec::new(),
            allowed: vec![Source::Camera],
            record: Some(Uuid::new_v4()),
        },
    );
    relay
        .take_events()
        .into_iter()
        .find_map(|e| match e {
            super::Event::Answer { sdp, .. } => Some(sdp),
            _ => None,
        })
        .expect("an answer")
}

#[test]
fn a_recording_relay_negotiates_only_codecs_a_recording_holds() {
    let recorded = answer_to_a_full_offer(true);
    assert!(recorded.contains("VP8"), "{recorded}");
    assert!(!recorded.contains("H264"), "{recorded}");
    let forwarded_only = answer_to_a_full_offer(false);
    assert!(forwarded_only.contains("H264"), "{forwarded_only}");
}
