//! Resuming a dropped socket (sans-IO). Every message the hub pushes to a peer (not the replies
//! to its requests) gets the next `seq` of that peer and is kept in a bounded ring; a socket
//! that comes back within the resume window with `{resume: {token, lastSeq}}` continues the
//! same peer (same id, rooms, watches, media) and gets every kept message after `lastSeq`, in
//! order. When the ring no longer holds `lastSeq + 1` the resume is refused and the client
//! starts afresh: it never silently misses a message.

use std::collections::VecDeque;
use std::sync::Arc;

/// Messages kept per peer for a resume.
pub const RING_FRAMES: usize = 256;
/// Bytes kept per peer for a resume.
pub const RING_BYTES: usize = 256 * 1024;

/// One peer's sequence numbers and its most recent messages.
#[derive(Debug, Default)]
pub struct Replay {
    /// The `seq` the next message gets (the first is 1).
    last_seq: u64,
    /// The kept messages, oldest first.
    ring: VecDeque<(u64, Arc<str>)>,
    /// Their total length.
    bytes: usize,
}

impl Replay {
    /// Numbers `frame` and keeps it (dropping the oldest beyond the bounds); returns its `seq`.
    pub fn record(&mut self, frame: &Arc<str>) -> u64 {
        self.last_seq += 1;
        self.ring.push_back((self.last_seq, frame.clone()));
        self.bytes += frame.len();
        while self.ring.len() > RING_FRAMES || (self.bytes > RING_BYTES && self.ring.len() > 1) {
            if let Some((_, old)) = self.ring.pop_front() {
                self.bytes -= old.len();
            }
        }
        self.last_seq
    }

    /// The `seq` of the newest message (0: none yet).
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// Every kept message after `last_seq`, oldest first; `None` when some of them are no
    /// longer kept, or when `last_seq` is one this peer never sent.
    pub fn after(&self, last_seq: u64) -> Option<Vec<(u64, Arc<str>)>> {
        if last_seq > self.last_seq {
            return None;
        }
        let first_kept = self.ring.front().map_or(self.last_seq + 1, |(s, _)| *s);
        if last_seq + 1 < first_kept {
            return None;
        }
        Some(
            self.ring
                .iter()
                .filter(|(s, _)| *s > last_seq)
                .cloned()
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(i: usize) -> Arc<str> {
        Arc::from(format!("{{\"type\":\"warning\",\"message\":\"{i}\"}}"))
    }

    #[test]
    fn numbers_from_one_and_replays_what_follows() {
        let mut r = Replay::default();
        assert_eq!(r.after(0), Some(vec![]));
        for i in 1..=5 {
            assert_eq!(r.record(&frame(i)), i as u64);
        }
        let seqs: Vec<u64> = r.after(2).unwrap().iter().map(|(s, _)| *s).collect();
        assert_eq!(seqs, vec![3, 4, 5]);
        assert_eq!(r.after(5), Some(vec![]));
        assert_eq!(r.after(6), None, "a seq never sent");
    }

    #[test]
    fn a_gap_refuses_the_resume_instead_of_hiding_it() {
        let mut r = Replay::default();
        for i in 0..RING_FRAMES + 10 {
            r.record(&frame(i));
        }
        assert_eq!(r.ring.len(), RING_FRAMES);
        assert!(r.after(5).is_none(), "messages 6..=10 are gone");
        assert_eq!(r.after(10).unwrap().len(), RING_FRAMES);
    }

    #[test]
    fn bytes_are_bounded_too() {
        let mut r = Replay::default();
        let big: Arc<str> = Arc::from("x".repeat(RING_BYTES / 4 + 1));
        for _ in 0..8 {
            r.record(&big);
        }
        assert!(r.bytes <= RING_BYTES);
        assert_eq!(r.ring.len(), 3);
        assert_eq!(r.last_seq(), 8);
    }
}
