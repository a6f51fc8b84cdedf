//! Forwarding cost of the media relay (PERFORMANCE.md S7): one publisher to N subscribers.
//!
//! The relay runs in memory against str0m clients on a virtual clock (see `relay::sim`); every
//! datagram the relay produces is also sent with a real `sendto` to a loopback sink socket, so
//! the figure includes SRTP, packetization and the send syscall, but not the clients' work.
//! Reports forwarded RTP packets per second of relay CPU (one core) and frame loss.
//!
//! Run: `cargo bench --bench relay_forward` (release build). Not a test: it asserts nothing.

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use proctor_hub::relay::sim::{Net, FRAME_EVERY};
use proctor_hub::relay::Source;
use uuid::Uuid;

/// 5 RTP packets per frame (≈ 5.5 KB), like a 1.3 Mbit/s 30 fps camera.
const FRAME_BYTES: usize = 5 * 1100;
const FRAMES: usize = 300;

fn run(subscribers: usize) -> (f64, f64, f64) {
    let room = Uuid::new_v4();
    let mut net = Net::new();
    let sink = UdpSocket::bind("127.0.0.1:0").expect("bind the sink");
    let out = UdpSocket::bind("127.0.0.1:0").expect("bind the sender");
    out.connect(sink.local_addr().expect("sink address"))
        .expect("connect to the sink");
    let publisher = net.publisher(room, Source::Camera);
    let subs: Vec<usize> = (0..subscribers).map(|_| net.subscriber(room)).collect();
    net.connect();
    // Drain the sink in the background so the kernel never drops for a full buffer.
    std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while sink.recv(&mut buf).is_ok() {}
    });
    net.sink = Some(out);
    let before_frames: Vec<usize> = subs.iter().map(|&s| net.frames_at(s)).collect();
    let before_packets = net.relay.counters().subscriber_packets;
    net.relay_time = Duration::ZERO;
    let wall = Instant::now();
    for _ in 0..FRAMES {
        net.send_sized_frame(publisher, 1, FRAME_BYTES);
        net.advance(FRAME_EVERY);
    }
    net.advance(Duration::from_millis(300));
    let _total_wall = wall.elapsed();
    let packets = (net.relay.counters().subscriber_packets - before_packets) as f64;
    let pps = packets / net.relay_time.as_secs_f64();
    let received: usize = subs
        .iter()
        .zip(&before_frames)
        .map(|(&s, b)| net.frames_at(s) - b)
        .sum();
    let expected = (FRAMES * subscribers) as f64;
    let loss = 100.0 * (1.0 - received as f64 / expected).max(0.0);
    let us_per_packet = 1e6 * net.relay_time.as_secs_f64() / packets;
    (pps, loss, us_per_packet)
}

fn main() {
    // `cargo bench` passes `--bench`; any other argument is a list of subscriber counts.
    let counts: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let counts = if counts.is_empty() {
        vec![1, 10, 50]
    } else {
        counts
    };
    for n in counts {
        let mut runs: Vec<(f64, f64, f64)> = (0..3).map(|_| run(n)).collect();
        runs.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (pps, loss, us) = runs[1];
        println!(
            "S7 relay_forward subscribers={n} forwarded_packets_per_core_s={pps:.0} \
             cpu_us_per_packet={us:.2} frame_loss_pct={loss:.3} (median of 3)"
        );
    }
}
