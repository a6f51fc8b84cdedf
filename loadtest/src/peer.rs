//! A webrtc-rs peer connection on loopback: the client side of the hub's media relay, for
//! the `media` scenario and the hub's relay tests. webrtc-rs is an implementation independent
//! of the relay's (str0m), so every use is also an interop check (see MEDIA.md).
//!
//! Candidates are gathered on a loopback UDP port with mDNS off, and a description is handed
//! out only once gathering completed, so no trickle is needed.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rtc::ice::mdns::MulticastDnsMode;
use rtc::interceptor::Registry;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::{MediaEngine, MIME_TYPE_VP8};
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters,
    RtpCodecKind,
};
use tokio::sync::watch;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCIceConnectionState,
    RTCIceGatheringState, RTCPeerConnectionState, RTCStatsReportEntry, StatsSelector,
};

use crate::error::{Error, Result};

/// Loopback candidates are gathered at once; this only bounds a broken client.
const GATHER_TIMEOUT: Duration = Duration::from_secs(15);
/// RTP payload type of VP8 in the offers and answers of these peers.
pub const VP8_PT: u8 = 96;

/// What a peer's owner hears from it. Every method defaults to ignoring the event.
pub trait Observer: Send + Sync + 'static {
    /// The ICE connection state changed.
    fn ice_state(&self, _state: RTCIceConnectionState) {}
    /// The peer connection state changed (connected once ICE and DTLS are).
    fn connection_state(&self, _state: RTCPeerConnectionState) {}
    /// A remote track arrived; read its packets with `track.poll()`.
    fn track(&self, _track: Arc<dyn TrackRemote>) {}
}

/// An observer that ignores everything (a publisher's).
pub struct Ignore;

impl Observer for Ignore {}

struct Handler {
    gathered: watch::Sender<bool>,
    state: watch::Sender<RTCPeerConnectionState>,
    observer: Arc<dyn Observer>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            self.gathered.send_replace(true);
        }
    }

    async fn on_ice_connection_state_change(&self, state: RTCIceConnectionState) {
        self.observer.ice_state(state);
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        self.observer.connection_state(state);
        self.state.send_replace(state);
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        self.observer.track(track);
    }
}

/// The VP8 codec these peers offer and accept.
pub fn vp8() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_VP8.to_owned(),
        clock_rate: 90_000,
        channels: 0,
        sdp_fmtp_line: String::new(),
        rtcp_feedback: vec![],
    }
}

/// A VP8 camera track with a fixed SSRC, to be filled with `write_rtp`.
pub fn camera_track(stream_id: String, ssrc: u32) -> Arc<TrackLocalStaticRTP> {
    Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
        stream_id,
        "camera".into(),
        "camera".into(),
        RtpCodecKind::Video,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                ssrc: Some(ssrc),
                ..Default::default()
            },
            codec: vp8(),
            ..Default::default()
        }],
    )))
}

/// The start of a synthetic VP8 RTP payload: the payload descriptor (start of partition) and
/// a key frame header (640×480) or an inter frame header. Append the frame's bytes to it.
pub fn vp8_header(keyframe: bool) -> Vec<u8> {
    let mut p = vec![0x10];
    if keyframe {
        // Frame tag (key frame, shown), start code, 640×480.
        p.extend_from_slice(&[0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0xe0, 0x01]);
    } else {
        p.extend_from_slice(&[0x11, 0x02, 0x00]);
    }
    p
}

/// One RTP packet of a synthetic VP8 stream: one frame per packet, `seq` numbering both.
pub fn vp8_packet(ssrc: u32, seq: u64, timestamp: u32, payload: Bytes) -> rtc::rtp::Packet {
    rtc::rtp::Packet {
        header: rtc::rtp::header::Header {
            version: 2,
            marker: true,
            payload_type: VP8_PT,
            sequence_number: seq as u16,
            timestamp,
            ssrc,
            ..Default::default()
        },
        payload,
    }
}

fn rtc_err(e: impl std::fmt::Display) -> Error {
    Error::WebRtc(e.to_string())
}

/// A webrtc-rs peer on a loopback UDP port.
pub struct Peer {
    /// The connection itself.
    pub pc: Arc<dyn PeerConnection>,
    gathered: watch::Receiver<bool>,
    state: watch::Receiver<RTCPeerConnectionState>,
}

impl Peer {
    /// A new peer that tells `observer` what happens to it.
    pub async fn new(observer: Arc<dyn Observer>) -> Result<Peer> {
        let mut media = MediaEngine::default();
        media
            .register_codec(
                RTCRtpCodecParameters {
                    rtp_codec: vp8(),
                    payload_type: VP8_PT,
                },
                RtpCodecKind::Video,
            )
            .map_err(rtc_err)?;
        let registry =
            register_default_interceptors(Registry::new(), &mut media).map_err(rtc_err)?;
        let settings = SettingEngineBuilder::new()
            .with_include_loopback_candidate(true)
            .with_multicast_dns_mode(MulticastDnsMode::Disabled)
            .build();
        let (gathered_tx, gathered) = watch::channel(false);
        let (state_tx, state) = watch::channel(RTCPeerConnectionState::New);
        let pc = PeerConnectionBuilder::new()
            .with_configuration(RTCConfigurationBuilder::new().build())
            .with_media_engine(media)
            .with_setting_engine(settings)
            .with_interceptor_registry(registry)
            .with_handler(Arc::new(Handler {
                gathered: gathered_tx,
                state: state_tx,
                observer,
            }))
            .with_udp_addrs(vec!["127.0.0.1:0".to_string()])
            .build()
            .await
            .map_err(rtc_err)?;
        Ok(Peer {
            pc: Arc::new(pc),
            gathered,
            state,
        })
    }

    /// Adds a local track to send.
    pub async fn add_track(&self, track: Arc<TrackLocalStaticRTP>) -> Result<()> {
        self.pc
            .add_track(track as Arc<dyn TrackLocal>)
            .await
            .map(|_| ())
            .map_err(rtc_err)
    }

    /// An offer, with every candidate in it.
    pub async fn offer(&self) -> Result<String> {
        let offer = self.pc.create_offer(None).await.map_err(rtc_err)?;
        self.local_sdp(offer).await
    }

    /// Applies the remote `offer` and returns the answer, with every candidate in it.
    pub async fn answer(&self, offer: String) -> Result<String> {
        self.pc
            .set_remote_description(RTCSessionDescription::offer(offer).map_err(rtc_err)?)
            .await
            .map_err(rtc_err)?;
        let answer = self.pc.create_answer(None).await.map_err(rtc_err)?;
        self.local_sdp(answer).await
    }

    /// Applies the remote answer to this peer's offer.
    pub async fn accept_answer(&self, answer: String) -> Result<()> {
        self.pc
            .set_remote_description(RTCSessionDescription::answer(answer).map_err(rtc_err)?)
            .await
            .map_err(rtc_err)
    }

    /// Sets the local description and returns it once every candidate is in it.
    async fn local_sdp(&self, desc: RTCSessionDescription) -> Result<String> {
        self.pc.set_local_description(desc).await.map_err(rtc_err)?;
        let mut gathered = self.gathered.clone();
        tokio::time::timeout(GATHER_TIMEOUT, gathered.wait_for(|g| *g))
            .await
            .map_err(|_| Error::WebRtc("ICE gathering did not complete".into()))?
            .map_err(rtc_err)?;
        self.pc
            .local_description()
            .await
            .map(|d| d.sdp)
            .ok_or_else(|| Error::WebRtc("no local description".into()))
    }

    /// Waits until connected; fails on `Failed` or `Closed`.
    pub async fn connected(&self) -> Result<()> {
        let mut state = self.state.clone();
        let s = state
            .wait_for(|s| {
                matches!(
                    s,
                    RTCPeerConnectionState::Connected
                        | RTCPeerConnectionState::Failed
                        | RTCPeerConnectionState::Closed
                )
            })
            .await
            .map_err(rtc_err)?;
        match *s {
            RTCPeerConnectionState::Connected => Ok(()),
            other => Err(Error::WebRtc(format!("connection {other}"))),
        }
    }

    /// Bytes of every datagram this peer sent (media, RTCP, STUN, DTLS).
    pub async fn transport_bytes_sent(&self) -> u64 {
        let report = self
            .pc
            .get_stats(std::time::Instant::now(), StatsSelector::None)
            .await;
        report
            .iter()
            .map(|e| match e {
                RTCStatsReportEntry::Transport(t) => t.bytes_sent,
                _ => 0,
            })
            .sum()
    }

    /// Closes the connection (bounded: a stuck close does not hang the caller).
    pub async fn close(&self) {
        let _ = tokio::time::timeout(Duration::from_secs(5), self.pc.close()).await;
    }
}

/// The first `a=mid:` of an SDP.
pub fn first_mid(sdp: &str) -> Option<&str> {
    sdp.lines()
        .find_map(|l| l.strip_prefix("a=mid:"))
        .map(str::trim)
}
