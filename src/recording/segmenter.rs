//! One recorded track cut into WebM segments (sans-IO: frames in, finished segments out; no
//! clock, no file, no store). Frames are written as received, never transcoded; a segment
//! starts on a keyframe (video), timestamps come from the RTP clock (so lost packets leave
//! the timeline right), and a segment ends at its maximum length (at the next keyframe, which
//! it asks for), when frames were dropped on the way here, when the simulcast layer changes,
//! or when the track ends. A reconnect is a new track, hence a new segment: gaps stay visible.

use std::io::Cursor;

use chrono::{DateTime, Utc};
use webm::mux::{AudioCodecId, Segment, SegmentBuilder, SegmentMode, VideoCodecId, Writer};

use super::{Codec, Frame, TrackRef};

/// What the segmenter asks of its driver.
#[derive(Debug)]
pub enum Out {
    /// A finished segment, to encrypt and store.
    Finished(Recorded),
    /// Ask the publisher for a keyframe (a segment is waiting to start).
    NeedKeyframe,
    /// Frames were lost before they reached the recorder: the segment was cut there.
    Gap {
        /// How many.
        missing: u64,
    },
    /// The muxer refused the track or a frame; nothing of it is recorded until the next
    /// keyframe.
    Failed(String),
}

/// A finished WebM segment of one track.
#[derive(Debug)]
pub struct Recorded {
    /// Whose track.
    pub track: TrackRef,
    /// The codec as recorded.
    pub codec: Codec,
    /// Wall-clock time of its first frame.
    pub started_at: DateTime<Utc>,
    /// `started_at` plus its duration on the RTP clock.
    pub ended_at: DateTime<Utc>,
    /// Its duration on the RTP clock, milliseconds.
    pub duration_ms: u64,
    /// Frames in it.
    pub frames: u64,
    /// The WebM file.
    pub bytes: Vec<u8>,
}

struct Open {
    segment: Segment<Cursor<Vec<u8>>>,
    track: u64,
    first_rtp: u64,
    clock: u64,
    last_ns: u64,
    started_at: DateTime<Utc>,
    rid: Option<String>,
    frames: u64,
    /// Past its maximum length: ends at the next keyframe.
    rotate: bool,
}

/// The segments of one track.
pub struct Segmenter {
    track: TrackRef,
    codec: Codec,
    max_len_ms: u64,
    open: Option<Open>,
    last_seq: Option<u64>,
    /// RTP time of the last keyframe request (one a second at most).
    asked_at: Option<u64>,
}

impl Segmenter {
    /// A track whose segments last at most `max_len_ms`.
    pub fn new(track: TrackRef, codec: Codec, max_len_ms: u64) -> Segmenter {
        Segmenter {
            track,
            codec,
            max_len_ms: max_len_ms.max(1000),
            open: None,
            last_seq: None,
            asked_at: None,
        }
    }

    /// The track.
    pub fn track(&self) -> &TrackRef {
        &self.track
    }

    /// True while a segment is open.
    pub fn is_open(&self) -> bool {
        self.open.is_some()
    }

    /// Takes one frame.
    pub fn push(&mut self, f: Frame) -> Vec<Out> {
        let mut out = Vec::new();
        if let Some(last) = self.last_seq {
            if f.seq != last + 1 {
                out.push(Out::Gap {
                    missing: f.seq.saturating_sub(last + 1),
                });
                self.finish(&mut out);
            }
        }
        self.last_seq = Some(f.seq);
        let audio = self.codec.is_audio();
        let keyframe = audio || f.keyframe;
        if let Some(open) = &self.open {
            let layer_changed = open.rid != f.rid;
            let age_ms = ms(f.rtp_time.saturating_sub(open.first_rtp), open.clock);
            let due = age_ms >= self.max_len_ms;
            if layer_changed || (due && keyframe) {
                self.finish(&mut out);
            } else if due && !open.rotate {
                if let Some(o) = &mut self.open {
                    o.rotate = true;
                }
                self.ask(&mut out, f.rtp_time, f.clock_rate);
            }
        }
        if self.open.is_none() {
            if !keyframe {
                self.ask(&mut out, f.rtp_time, f.clock_rate);
                return out;
            }
            match self.start(&f) {
                Ok(open) => self.open = Some(open),
                Err(e) => {
                    out.push(Out::Failed(e));
                    return out;
                }
            }
        }
        if let Some(open) = &mut self.open {
            let ns = nanos(f.rtp_time.saturating_sub(open.first_rtp), open.clock).max(open.last_ns);
            match open.segment.add_frame(open.track, &f.data, ns, keyframe) {
                Ok(()) => {
                    open.last_ns = ns;
                    open.frames += 1;
                }
                Err(e) => {
                    out.push(Out::Failed(format!("frame refused by the muxer: {e:?}")));
                    self.finish(&mut out);
                }
            }
        }
        out
    }

    /// The track ended: the open segment is finished.
    pub fn end(&mut self) -> Vec<Out> {
        let mut out = Vec::new();
        self.finish(&mut out);
        out
    }

    fn ask(&mut self, out: &mut Vec<Out>, rtp: u64, clock: u64) {
        let recent = self
            .asked_at
            .is_some_and(|t| rtp >= t && ms(rtp - t, clock) < 1000);
        if !recent {
            self.asked_at = Some(rtp);
            out.push(Out::NeedKeyframe);
        }
    }

    fn start(&self, f: &Frame) -> Result<Open, String> {
        let bad = |e: webm::mux::Error| format!("the muxer refused the track: {e:?}");
        let builder = SegmentBuilder::new(Writer::new(Cursor::new(Vec::new())))
            .and_then(|b| b.set_mode(SegmentMode::File))
            .and_then(|b| b.set_writing_app("proctor-hub"))
            .map_err(bad)?;
        let (builder, track) = match self.codec {
            Codec::Vp8 | Codec::Vp9 => {
                let (w, h) = vp8_size(&f.data).unwrap_or((640, 480));
                let id = if self.codec == Codec::Vp8 {
                    VideoCodecId::VP8
                } else {
                    VideoCodecId::VP9
                };
                let (b, t) = builder.add_video_track(w, h, id, None).map_err(bad)?;
                (b, t.into())
            }
            Codec::Opus => {
                let (b, t) = builder
                    .add_audio_track(48_000, 2, AudioCodecId::Opus, None)
                    .map_err(bad)?;
                let track: u64 = t.into();
                let b = b.set_codec_private(track, &opus_head()).map_err(bad)?;
                (b, track)
            }
        };
        Ok(Open {
            segment: builder.build(),
            track,
            first_rtp: f.rtp_time,
            clock: f.clock_rate.max(1),
            last_ns: 0,
            started_at: f.received,
            rid: f.rid.clone(),
            frames: 0,
            rotate: false,
        })
    }

    fn finish(&mut self, out: &mut Vec<Out>) {
        let Some(open) = self.open.take() else {
            return;
        };
        if open.frames == 0 {
            return;
        }
        let duration_ms = open.last_ns / 1_000_000;
        match open.segment.finalize(Some(duration_ms.max(1))) {
            Ok(writer) => out.push(Out::Finished(Recorded {
                track: self.track.clone(),
                codec: self.codec,
                started_at: open.started_at,
                ended_at: open.started_at
                    + chrono::Duration::milliseconds(i64::try_from(duration_ms).unwrap_or(0)),
                duration_ms,
                frames: open.frames,
                bytes: writer.into_inner().into_inner(),
            })),
            Err(_) => out.push(Out::Failed("the muxer could not finish a segment".into())),
        }
    }
}

fn nanos(ticks: u64, clock: u64) -> u64 {
    u64::try_from(u128::from(ticks) * 1_000_000_000 / u128::from(clock.max(1))).unwrap_or(u64::MAX)
}

fn ms(ticks: u64, clock: u64) -> u64 {
    nanos(ticks, clock) / 1_000_000
}

/// Width and height of a VP8 keyframe (RFC 6386 §9.1), when `frame` is one.
fn vp8_size(frame: &[u8]) -> Option<(u32, u32)> {
    if frame.len() < 10 || frame[0] & 1 != 0 || frame[3..6] != [0x9d, 0x01, 0x2a] {
        return None;
    }
    let w = u32::from(u16::from_le_bytes([frame[6], frame[7]]) & 0x3fff);
    let h = u32::from(u16::from_le_bytes([frame[8], frame[9]]) & 0x3fff);
    (w > 0 && h > 0).then_some((w, h))
}

/// The `OpusHead` a WebM Opus track carries as its codec private data (RFC 7845 §5.1):
/// WebRTC's Opus is 48 kHz, stereo-capable, no pre-skip, mapping family 0.
fn opus_head() -> Vec<u8> {
    let mut h = b"OpusHead".to_vec();
    h.push(1); // version
    h.push(2); // channels
    h.extend_from_slice(&0u16.to_le_bytes()); // pre-skip
    h.extend_from_slice(&48_000u32.to_le_bytes()); // input sample rate
    h.extend_from_slice(&0i16.to_le_bytes()); // output gain
    h.push(0); // mapping family
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relay::Source;
    use uuid::Uuid;

    fn track() -> TrackRef {
        TrackRef {
            session_id: Uuid::new_v4(),
            room: Uuid::new_v4(),
            publisher: Uuid::new_v4(),
            mid: "0".into(),
            source: Source::Camera,
        }
    }

    fn vp8(keyframe: bool) -> Vec<u8> {
        let mut f = if keyframe {
            vec![0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0xe0, 0x01]
        } else {
            vec![0x11, 0x02, 0x00]
        };
        f.resize(500, 7);
        f
    }

    /// Frame `n` of a 30 fps VP8 stream (90 kHz clock), a keyframe every `gop`.
    fn frame(t: &TrackRef, n: u64, gop: u64) -> Frame {
        Frame {
            track: t.clone(),
            seq: n,
            codec: Codec::Vp8,
            rtp_time: 1_000_000 + n * 3000,
            clock_rate: 90_000,
            keyframe: n % gop == 0,
            rid: None,
            data: vp8(n % gop == 0).into(),
            received: DateTime::from_timestamp(1_800_000_000, 0).unwrap()
                + chrono::Duration::milliseconds(i64::try_from(n * 33).unwrap()),
        }
    }

    fn finished(out: Vec<Out>) -> Vec<Recorded> {
        out.into_iter()
            .filter_map(|o| match o {
                Out::Finished(r) => Some(r),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_stream_becomes_one_webm_segment_timed_by_the_rtp_clock() {
        let t = track();
        let mut s = Segmenter::new(t.clone(), Codec::Vp8, 60_000);
        for n in 0..300 {
            assert!(finished(s.push(frame(&t, n, 30))).is_empty());
        }
        let done = finished(s.end());
        assert_eq!(done.len(), 1);
        let r = &done[0];
        assert_eq!(r.frames, 300);
        // 299 frame intervals of 3000 ticks at 90 kHz.
        assert_eq!(r.duration_ms, 9966);
        assert_eq!(&r.bytes[..4], &[0x1a, 0x45, 0xdf, 0xa3], "an EBML header");
        assert!(r.bytes.len() > 300 * 500);
    }

    #[test]
    fn a_segment_starts_on_a_keyframe_and_asks_for_one() {
        let t = track();
        let mut s = Segmenter::new(t.clone(), Codec::Vp8, 60_000);
        // Joining mid-GOP: frames 1..29 are not keyframes.
        let out = s.push(frame(&t, 1, 30));
        assert!(matches!(out.as_slice(), [Out::NeedKeyframe]));
        assert!(!s.is_open());
        // Asked at most once a second.
        assert!(s.push(frame(&t, 2, 30)).is_empty());
        for n in 3..30 {
            s.push(frame(&t, n, 30));
        }
        s.push(frame(&t, 30, 30));
        assert!(s.is_open());
    }

    #[test]
    fn long_tracks_are_cut_at_the_first_keyframe_past_the_maximum_length() {
        let t = track();
        let mut s = Segmenter::new(t.clone(), Codec::Vp8, 2_000);
        let mut all = Vec::new();
        let mut asked = 0;
        for n in 0..200 {
            for o in s.push(frame(&t, n, 90)) {
                match o {
                    Out::Finished(r) => all.push(r),
                    Out::NeedKeyframe => asked += 1,
                    other => panic!("{other:?}"),
                }
            }
        }
        all.extend(finished(s.end()));
        // Keyframes at 0, 90, 180: segments [0, 90), [90, 180), [180, 200).
        assert_eq!(
            all.iter().map(|r| r.frames).collect::<Vec<_>>(),
            vec![90, 90, 20]
        );
        assert!(asked >= 2, "each overdue segment asked for a keyframe");
        assert_eq!(
            all[1].started_at - all[0].started_at,
            chrono::Duration::milliseconds(90 * 33)
        );
    }

    #[test]
    fn frames_lost_on_the_way_cut_the_segment_and_the_next_one_waits_for_a_keyframe() {
        let t = track();
        let mut s = Segmenter::new(t.clone(), Codec::Vp8, 60_000);
        for n in 0..40 {
            s.push(frame(&t, n, 30));
        }
        // 10 frames dropped before the recorder.
        let out = s.push(frame(&t, 50, 30));
        let mut gap = None;
        let mut segments = 0;
        for o in out {
            match o {
                Out::Gap { missing } => gap = Some(missing),
                Out::Finished(r) => {
                    segments += 1;
                    assert_eq!(r.frames, 40);
                }
                Out::NeedKeyframe => {}
                Out::Failed(e) => panic!("{e}"),
            }
        }
        assert_eq!((gap, segments), (Some(10), 1));
        assert!(!s.is_open(), "frame 50 is no keyframe");
        for n in 51..=60 {
            s.push(frame(&t, n, 30));
        }
        assert!(s.is_open(), "frame 60 is");
    }

    #[test]
    fn opus_needs_no_keyframe_and_carries_its_head() {
        let t = track();
        let mut s = Segmenter::new(t.clone(), Codec::Opus, 60_000);
        for n in 0..50u64 {
            let out = s.push(Frame {
                track: t.clone(),
                seq: n,
                codec: Codec::Opus,
                rtp_time: n * 960,
                clock_rate: 48_000,
                keyframe: false,
                rid: None,
                data: vec![0xfc; 80].into(),
                received: Utc::now(),
            });
            assert!(finished(out).is_empty());
        }
        let done = finished(s.end());
        assert_eq!(done[0].duration_ms, 980);
        let head = opus_head();
        assert!(done[0].bytes.windows(head.len()).any(|w| w == head));
    }

    #[test]
    fn vp8_keyframes_give_their_size() {
        assert_eq!(vp8_size(&vp8(true)), Some((640, 480)));
        assert_eq!(vp8_size(&vp8(false)), None);
    }
}
