//! Recording: every published track of a recorded session (exam `recordMedia`), written by
//! the relay's process as received into encrypted WebM segments, listed in Postgres.
//!
//! - The relay core captures each frame of a recorded track ([`Capture`], numbered per track)
//!   and its media task offers it to the recorder through a bounded queue ([`Sink`]): the
//!   forwarding path never waits; a full queue drops the frame, which the segmenter sees as a
//!   gap in the numbers (the segment is cut there and flagged).
//! - `segmenter.rs` (sans-IO) cuts a track into WebM segments with `webm` (libwebm).
//! - [`run`] is the recorder task: it feeds the segmenters, asks the relay for keyframes, and
//!   hands finished segments to the store task (bounded as well); `store.rs` encrypts them
//!   with the session's data key into the artifact store and lists them in `recordings`.
//!   Every failure becomes a SYSTEM event (`RECORDING_FAILED`, `RECORDING_GAP`) and a metric.

pub mod segmenter;
pub mod store;

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::events::system::SystemEvent;
use crate::relay::{self, PeerKey, Source};
use crate::state::AppState;
use segmenter::{Out, Recorded, Segmenter};

/// One published track being recorded.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TrackRef {
    /// The session it belongs to.
    pub session_id: Uuid,
    /// The room (the relay routes by it).
    pub room: Uuid,
    /// The publishing peer.
    pub publisher: Uuid,
    /// Its m-line.
    pub mid: String,
    /// What it shows.
    pub source: Source,
}

/// The codecs recorded (WebM's): VP8, VP9, Opus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// VP8 video.
    Vp8,
    /// VP9 video.
    Vp9,
    /// Opus audio.
    Opus,
}

impl Codec {
    /// True for audio.
    pub fn is_audio(self) -> bool {
        self == Codec::Opus
    }

    /// `video` or `audio`.
    pub fn kind(self) -> &'static str {
        if self.is_audio() {
            "audio"
        } else {
            "video"
        }
    }

    /// The WebM media type.
    pub fn content_type(self) -> &'static str {
        if self.is_audio() {
            "audio/webm"
        } else {
            "video/webm"
        }
    }

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Codec::Vp8 => "VP8",
            Codec::Vp9 => "VP9",
            Codec::Opus => "OPUS",
        }
    }
}

/// What the relay hands the recorder.
#[derive(Debug)]
pub enum Capture {
    /// A frame of a recorded track.
    Frame {
        /// The track.
        track: TrackRef,
        /// Its number in the track (a jump means frames were dropped on the way).
        seq: u64,
        /// Its codec.
        codec: Codec,
        /// RTP timestamp, extended (never wraps).
        rtp_time: u64,
        /// The RTP clock rate.
        clock_rate: u64,
        /// A keyframe.
        keyframe: bool,
        /// The simulcast layer recorded (the best one flowing).
        rid: Option<String>,
        /// The encoded frame (shared with the forwarding path, not copied).
        data: std::sync::Arc<[u8]>,
    },
    /// The track ended (its publisher left or renegotiated it away).
    Ended(TrackRef),
}

/// A frame as the segmenter takes it: a capture stamped with the wall clock on arrival.
#[derive(Debug, Clone)]
pub struct Frame {
    /// The track.
    pub track: TrackRef,
    /// Its number in the track.
    pub seq: u64,
    /// Its codec.
    pub codec: Codec,
    /// RTP timestamp, extended.
    pub rtp_time: u64,
    /// The RTP clock rate.
    pub clock_rate: u64,
    /// A keyframe.
    pub keyframe: bool,
    /// The simulcast layer.
    pub rid: Option<String>,
    /// The encoded frame.
    pub data: std::sync::Arc<[u8]>,
    /// When it reached the recorder.
    pub received: DateTime<Utc>,
}

/// The relay's end of the recorder's queue: offering never waits.
#[derive(Clone)]
pub struct Sink {
    tx: mpsc::Sender<Capture>,
}

impl Sink {
    /// Queues `c`; false (and counted) when the recorder is behind and it was dropped.
    pub fn offer(&self, c: Capture) -> bool {
        match self.tx.try_send(c) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(Capture::Ended(t))) => {
                // An ending must not be lost: it closes the segment. Hand it over off-path.
                let tx = self.tx.clone();
                tokio::spawn(async move {
                    let _ = tx.send(Capture::Ended(t)).await;
                });
                true
            }
            Err(_) => {
                metrics::counter!("recording_frames_dropped_total").increment(1);
                false
            }
        }
    }
}

/// The recorder's queue: the relay's sink and the recorder's receiver.
pub fn queue(frames: usize) -> (Sink, mpsc::Receiver<Capture>) {
    let (tx, rx) = mpsc::channel(frames.max(16));
    (Sink { tx }, rx)
}

/// Settings.
#[derive(Debug, Clone)]
pub struct RecordingConfig {
    /// Whether this hub records at all (`HUB_RECORDING`, default on); exams choose with
    /// `recordMedia`.
    pub enabled: bool,
    /// Longest segment (`HUB_RECORDING_SEGMENT_SECS`, default 120).
    pub segment: Duration,
    /// Frames queued between the relay and the recorder (`HUB_RECORDING_QUEUE_FRAMES`,
    /// default 4096).
    pub queue_frames: usize,
    /// Finished segments queued for the store (`HUB_RECORDING_STORE_QUEUE`, default 64); when
    /// it is full the recorder waits (its own frame queue then absorbs, and beyond it drops,
    /// frames: a gap, never a stall of forwarding), for at most [`STORE_WAIT`].
    pub store_queue: usize,
}

impl Default for RecordingConfig {
    fn default() -> Self {
        RecordingConfig {
            enabled: true,
            segment: Duration::from_secs(120),
            queue_frames: 4096,
            store_queue: 64,
        }
    }
}

/// How long the recorder waits for room in the store queue before giving a segment up.
pub const STORE_WAIT: Duration = Duration::from_secs(30);

/// Segments stored at once.
const STORE_CONCURRENCY: usize = 4;

/// A SYSTEM event about a session's recording.
fn system_event(
    state: &AppState,
    runtime: &tokio::runtime::Handle,
    session: Uuid,
    event_type: &'static str,
    meta: serde_json::Value,
) {
    let state = state.clone();
    let event = SystemEvent::new(session, event_type, 3, Some(meta));
    runtime.spawn(async move {
        if let Err(e) = crate::events::system::record(&state, &event).await {
            tracing::warn!(error = %e, "recording event not recorded");
        }
    });
}

/// The recorder: segments every recorded track on a thread of its own at a lower
/// scheduling priority (so on a busy machine the media tasks' forwarding comes first), and
/// hands finished segments to the store task; it ends when the relay's sinks are gone
/// (shutdown), after finishing what is open.
pub async fn run(
    state: AppState,
    captures: mpsc::Receiver<Capture>,
    relay: relay::RelayHandle,
    config: RecordingConfig,
) {
    let (store_tx, store_rx) = mpsc::channel::<Recorded>(config.store_queue.max(1));
    let storing = tokio::spawn(store::run(state.clone(), store_rx, STORE_CONCURRENCY));
    let max_len_ms = u64::try_from(config.segment.as_millis()).unwrap_or(u64::MAX);
    let runtime = tokio::runtime::Handle::current();
    let segmenting = std::thread::Builder::new()
        .name("recorder".into())
        .spawn(move || {
            lower_priority();
            segment(&state, &runtime, captures, &relay, &store_tx, max_len_ms);
        });
    match segmenting {
        Ok(thread) => {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
        Err(e) => tracing::error!(error = %e, "the recorder thread did not start"),
    }
    let _ = storing.await;
}

/// Nice 10 for the calling thread (Linux threads have their own): the scheduler then
/// prefers the media tasks and the sockets whenever both want a core.
fn lower_priority() {
    // SAFETY: setpriority(2) on the calling thread's id; no memory is involved.
    let rc = unsafe {
        libc::setpriority(
            libc::PRIO_PROCESS,
            u32::try_from(libc::gettid()).unwrap_or(0),
            10,
        )
    };
    if rc != 0 {
        tracing::debug!("the recorder thread keeps the default priority");
    }
}

/// The segmenting loop (blocking: runs on the recorder thread).
fn segment(
    state: &AppState,
    runtime: &tokio::runtime::Handle,
    mut captures: mpsc::Receiver<Capture>,
    relay: &relay::RelayHandle,
    store: &mpsc::Sender<Recorded>,
    max_len_ms: u64,
) {
    let mut tracks: HashMap<(Uuid, String), Segmenter> = HashMap::new();
    while let Some(capture) = captures.blocking_recv() {
        let (track, outs) = match capture {
            Capture::Frame {
                track,
                seq,
                codec,
                rtp_time,
                clock_rate,
                keyframe,
                rid,
                data,
            } => {
                let key = (track.publisher, track.mid.clone());
                let s = tracks
                    .entry(key)
                    .or_insert_with(|| Segmenter::new(track.clone(), codec, max_len_ms));
                let outs = s.push(Frame {
                    track: track.clone(),
                    seq,
                    codec,
                    rtp_time,
                    clock_rate,
                    keyframe,
                    rid,
                    data,
                    received: Utc::now(),
                });
                (track, outs)
            }
            Capture::Ended(track) => {
                let outs = tracks
                    .remove(&(track.publisher, track.mid.clone()))
                    .map(|mut s| s.end())
                    .unwrap_or_default();
                (track, outs)
            }
        };
        for out in outs {
            handle(state, runtime, relay, store, &track, out);
        }
    }
    // The relay is gone (shutdown): what is open is finished and stored.
    for (_, mut s) in tracks.drain() {
        let track = s.track().clone();
        for out in s.end() {
            handle(state, runtime, relay, store, &track, out);
        }
    }
}

/// Queues a finished segment for the store, waiting up to [`STORE_WAIT`] for room; gives
/// the segment back when it could not be queued.
fn enqueue(store: &mpsc::Sender<Recorded>, mut r: Recorded) -> Option<Recorded> {
    let deadline = std::time::Instant::now() + STORE_WAIT;
    loop {
        match store.try_send(r) {
            Ok(()) => return None,
            Err(mpsc::error::TrySendError::Closed(back)) => return Some(back),
            Err(mpsc::error::TrySendError::Full(back)) => {
                if std::time::Instant::now() >= deadline {
                    return Some(back);
                }
                r = back;
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

fn handle(
    state: &AppState,
    runtime: &tokio::runtime::Handle,
    relay: &relay::RelayHandle,
    store: &mpsc::Sender<Recorded>,
    track: &TrackRef,
    out: Out,
) {
    match out {
        Out::Finished(r) => {
            metrics::counter!("recording_segments_total").increment(1);
            if let Some(r) = enqueue(store, r) {
                metrics::counter!("recording_failures_total", "stage" => "queue").increment(1);
                system_event(
                    state,
                    runtime,
                    r.track.session_id,
                    "RECORDING_FAILED",
                    serde_json::json!({
                        "source": r.track.source.as_str(),
                        "startedAt": r.started_at,
                        "endedAt": r.ended_at,
                        "cause": "the recording store cannot keep up",
                    }),
                );
            }
        }
        Out::NeedKeyframe => {
            let key = PeerKey {
                room: track.room,
                peer: track.publisher,
            };
            let _ = relay.try_send(relay::Command::Keyframe {
                key,
                mid: track.mid.clone(),
            });
        }
        Out::Gap { missing } => {
            metrics::counter!("recording_gaps_total").increment(1);
            system_event(
                state,
                runtime,
                track.session_id,
                "RECORDING_GAP",
                serde_json::json!({"source": track.source.as_str(), "missingFrames": missing}),
            );
        }
        Out::Failed(cause) => {
            metrics::counter!("recording_failures_total", "stage" => "mux").increment(1);
            system_event(
                state,
                runtime,
                track.session_id,
                "RECORDING_FAILED",
                serde_json::json!({"source": track.source.as_str(), "cause": cause}),
            );
        }
    }
}
