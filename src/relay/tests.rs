//! The relay in memory, on a virtual clock, through [`super::sim`].

use std::time::Duration;

use str0m::media::{Direction, MediaKind};
use uuid::Uuid;

use super::sim::{relay_addr, Net, STEP};
use super::{Command, Source};

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
