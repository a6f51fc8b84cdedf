// @ts-check
/**
 * Receiving a session's media from the hub's relay, for proctors and admins: the ES-module
 * successor of `Hub.subscribe` and its signal/`MEDIA_CLOSED` handling in the old harness
 * (src/http/pages/media.js, proctor.js).
 *
 * The protocol (docs/CONTRACT.md, "Media relay"): join the session's room, send
 * `{"type":"subscribe","roomId","tracks"?,"layer"}`; the relay then sends `signal` from "hub"
 * with an offer whose `data.tracks` lists `{mid, source, peerId}`, and offers again whenever
 * tracks come and go; we answer each offer. The relay's ICE candidates are in its SDP; ours go
 * to "hub" as `kind: "ice"`. One RTCPeerConnection per room, in receive-only mode.
 *
 * Leaving the room (`leave`) is how a subscription ends: the hub then drops this socket's media
 * connection in that room, so the grid can let go of tiles that scroll out of view.
 */
import { Emitter, backoffDelay } from "./hub-client.js";

/** @typedef {import("./hub-client.js").HubSocket} HubSocket */
/** @typedef {import("./hub-client.js").IceServer} IceServer */
/** @typedef {import("./hub-client.js").SignalMessage} SignalMessage */
/** @typedef {"camera" | "screen" | "microphone" | "phone-camera"} TrackSource */
/** @typedef {"low" | "high"} Layer */
/**
 * @typedef {object} RemoteTrack One track the relay forwards to us.
 * @property {string} mid
 * @property {TrackSource} source
 * @property {string} peerId the publishing device's peer (laptop or phone)
 * @property {MediaStreamTrack} track
 */
/**
 * - `joining`: waiting for `joined` (the socket may be connecting)
 * - `negotiating`: subscribed; waiting for the relay's offer or for ICE/DTLS
 * - `connected`: media flows (or can: the room may have no tracks yet)
 * - `retrying`: the relay closed the connection or it failed; starting again soon
 * - `stopped`: {@link RoomSubscriber.stop} was called
 * @typedef {"joining" | "negotiating" | "connected" | "retrying" | "stopped"} SubscriberState
 */
/**
 * @typedef {object} RoomSubscriberEvents
 * @property {{tracks: RemoteTrack[]}} tracks the live tracks after every (re)negotiation
 * @property {{state: SubscriberState}} state
 * @property {{code: string, message: string}} error the relay refused (MEDIA_FORBIDDEN, …)
 */
/**
 * The part of RTCPeerConnection used here, so tests can pass a fake.
 * @typedef {new (config: RTCConfiguration) => RTCPeerConnection} PeerConnectionClass
 */

/**
 * One room's media, received over a {@link HubSocket}. Several subscribers may share a socket
 * (the grid has one per visible tile); each handles only its room's signals.
 *
 * It follows the socket like the publisher does: every `joined` for its room (the first, and
 * the rejoin after a reconnect that was not a resume, when the hub has forgotten the old
 * connection) subscribes afresh on a new RTCPeerConnection. A resumed socket keeps the relay
 * connection, and the media keep flowing. `MEDIA_CLOSED`, `RELAY_UNAVAILABLE` or a failed
 * connection start again after a backoff by leaving and rejoining the room: leaving makes the
 * relay drop whatever it still holds of the old connection, so the next `subscribe` gets a
 * complete offer for the new RTCPeerConnection (a `subscribe` on a connection the relay still
 * holds would only offer what changed).
 * @extends {Emitter<RoomSubscriberEvents>}
 */
export class RoomSubscriber extends Emitter {
  /**
   * @param {HubSocket} socket
   * @param {string} roomId the session's `webrtcRoomId`
   * @param {object} [options]
   * @param {Layer} [options.layer] simulcast layer: "low" for thumbnails (default "high")
   * @param {TrackSource[]} [options.tracks] sources to receive (default: all)
   * @param {PeerConnectionClass} [options.RTCPeerConnection]
   * @param {import("./hub-client.js").Timers} [options.timers]
   */
  constructor(socket, roomId, { layer = "high", tracks, RTCPeerConnection: PC, timers } = {}) {
    super();
    this.socket = socket;
    this.roomId = roomId;
    /** @type {Layer} */
    this.layer = layer;
    this.sources = tracks;
    this.PC = PC || globalThis.RTCPeerConnection;
    this.timers = timers || {
      setTimeout: (/** @type {() => void} */ fn, /** @type {number} */ ms) => globalThis.setTimeout(fn, ms),
      clearTimeout: (/** @type {any} */ t) => globalThis.clearTimeout(t),
    };
    /** @type {RTCPeerConnection | null} */
    this.pc = null;
    /** @type {IceServer[]} */
    this.iceServers = [];
    /** @type {SubscriberState} */
    this.state = "joining";
    /** @type {RemoteTrack[]} */
    this.tracks = [];
    this.failures = 0;
    /** @type {unknown} */
    this.retryTimer = null;
    /** offers are answered one after the other: a second offer must wait for the first answer */
    this.negotiation = Promise.resolve();
    /** @type {(() => void)[]} */
    this.off = [];
  }

  /** Joins the room; the `joined` reply starts the subscription. */
  start() {
    if (this.off.length) return;
    this.off = [
      this.socket.on("joined", (m) => {
        if (m.roomId !== this.roomId) return;
        this.iceServers = m.iceServers || [];
        this.subscribe();
      }),
      this.socket.on("signal", (m) => this.onSignal(m)),
      this.socket.on("error", (m) => {
        // MEDIA_CLOSED and MEDIA_REJECTED name their room. A refused `subscribe`
        // (RELAY_UNAVAILABLE, MEDIA_FORBIDDEN) names none: it concerns every subscriber still
        // waiting for its first offer.
        if (m.roomId ? m.roomId !== this.roomId : !(this.state === "negotiating" && !this.tracks.length)) return;
        if (!m.code.startsWith("MEDIA_") && m.code !== "RELAY_UNAVAILABLE") return;
        if (m.code !== "MEDIA_CLOSED") this.emit("error", { code: m.code, message: m.message });
        // Forbidden stays forbidden; anything else may work on a fresh connection.
        if (m.code !== "MEDIA_FORBIDDEN") this.retry();
      }),
      // A resumed socket keeps its rooms and its relay connections, and no `joined` comes. If
      // ours was closed while the socket was down (a retry came due), start afresh now.
      this.socket.on("authed", (m) => {
        if (m.resumed && !this.pc && this.state !== "stopped") this.rejoin();
      }),
    ];
    this.setState("joining");
    this.socket.join(this.roomId);
  }

  /**
   * Switches the simulcast layer in place (the relay changes it on the next keyframe).
   * @param {Layer} layer
   */
  setLayer(layer) {
    if (layer === this.layer) return;
    this.layer = layer;
    if (this.pc) this.sendSubscribe();
  }

  /** Stops receiving and leaves the room (the relay drops our connection there). */
  stop() {
    if (this.state === "stopped") return;
    for (const off of this.off) off();
    this.off = [];
    this.clearRetry();
    this.closePc();
    this.setTracks([]);
    this.socket.leave(this.roomId);
    this.setState("stopped");
  }

  /** @private a fresh connection, then `subscribe` */
  subscribe() {
    this.clearRetry();
    this.closePc();
    this.setTracks([]);
    if (this.socket.state !== "open") {
      this.setState("joining");
      return;
    }
    const pc = new this.PC({ iceServers: this.iceServers, bundlePolicy: "max-bundle" });
    this.pc = pc;
    this.negotiation = Promise.resolve();
    pc.onicecandidate = (e) => {
      if (e.candidate && this.pc === pc) {
        this.socket.send({ type: "signal", roomId: this.roomId, to: "hub", data: { kind: "ice", candidate: e.candidate.toJSON() } });
      }
    };
    pc.onconnectionstatechange = () => {
      if (this.pc !== pc) return;
      if (pc.connectionState === "connected") {
        this.failures = 0;
        this.setState("connected");
      } else if (pc.connectionState === "failed") {
        this.retry();
      }
    };
    // A track that ends (the relay stopped its m-line) drops out of the list.
    pc.ontrack = (e) => e.track.addEventListener("ended", () => this.setTracks(this.tracks.filter((t) => t.track !== e.track)));
    this.setState("negotiating");
    this.sendSubscribe();
  }

  /** @private */
  sendSubscribe() {
    /** @type {{type: "subscribe", roomId: string, layer: Layer, tracks?: string[]}} */
    const msg = { type: "subscribe", roomId: this.roomId, layer: this.layer };
    if (this.sources) msg.tracks = this.sources;
    this.socket.send(msg);
  }

  /**
   * @private
   * @param {SignalMessage} m
   */
  onSignal(m) {
    const pc = this.pc;
    if (!pc || m.from !== "hub" || m.roomId !== this.roomId) return;
    const data = m.data;
    if (data.kind === "ice" && data.candidate) {
      pc.addIceCandidate(data.candidate).catch(() => {});
      return;
    }
    if (data.kind !== "offer") return;
    this.negotiation = this.negotiation
      .then(async () => {
        if (this.pc !== pc) return;
        await pc.setRemoteDescription({ type: "offer", sdp: data.sdp });
        await pc.setLocalDescription(await pc.createAnswer());
        if (this.pc !== pc) return;
        this.socket.send({ type: "signal", roomId: this.roomId, to: "hub", data: { kind: "answer", sdp: pc.localDescription?.sdp || "" } });
        this.setTracks(liveTracks(pc, data.tracks));
        // An offer without tracks (nothing published yet) still means the relay is ready.
        if (this.state === "negotiating" && !this.tracks.length) this.setState("connected");
      })
      .catch((e) => {
        if (this.pc !== pc) return;
        this.emit("error", { code: "NEGOTIATION_FAILED", message: String(e) });
        this.retry();
      });
  }

  /** @private starts again after a backoff */
  retry() {
    if (this.state === "stopped") return;
    this.closePc();
    this.setTracks([]);
    this.setState("retrying");
    const delay = backoffDelay(this.failures++, { baseMs: 1_000, maxMs: 15_000 });
    this.clearRetry();
    this.retryTimer = this.timers.setTimeout(() => {
      this.retryTimer = null;
      this.rejoin();
    }, delay);
  }

  /** @private leave (the relay drops its side) and join again; `joined` subscribes */
  rejoin() {
    this.clearRetry();
    this.closePc();
    this.setTracks([]);
    this.setState("joining");
    this.socket.leave(this.roomId);
    this.socket.join(this.roomId);
  }

  /** @private */
  clearRetry() {
    if (this.retryTimer != null) this.timers.clearTimeout(this.retryTimer);
    this.retryTimer = null;
  }

  /** @private */
  closePc() {
    const pc = this.pc;
    this.pc = null;
    if (pc) {
      pc.onicecandidate = null;
      pc.onconnectionstatechange = null;
      pc.ontrack = null;
      pc.close();
    }
  }

  /**
   * @private
   * @param {RemoteTrack[]} tracks
   */
  setTracks(tracks) {
    const same = tracks.length === this.tracks.length && tracks.every((t, i) => t.track === this.tracks[i].track && t.source === this.tracks[i].source);
    this.tracks = tracks;
    if (!same) this.emit("tracks", { tracks });
  }

  /**
   * @private
   * @param {SubscriberState} state
   */
  setState(state) {
    if (this.state === state) return;
    this.state = state;
    this.emit("state", { state });
  }
}

/**
 * The offer's track list matched to the connection's live receivers. The relay keeps a
 * stopped m-line's mid in the SDP; its transceiver is stopped and its track has ended.
 * @param {RTCPeerConnection} pc
 * @param {unknown} declared `data.tracks` of the offer: `[{mid, source, peerId}]`
 * @returns {RemoteTrack[]}
 */
export function liveTracks(pc, declared) {
  if (!Array.isArray(declared)) return [];
  const transceivers = pc.getTransceivers();
  /** @type {RemoteTrack[]} */
  const out = [];
  for (const d of declared) {
    if (!d || typeof d.mid !== "string") continue;
    const tr = transceivers.find((x) => x.mid === d.mid);
    if (!tr || tr.currentDirection === "stopped" || tr.receiver.track.readyState === "ended") continue;
    out.push({ mid: d.mid, source: d.source, peerId: String(d.peerId || ""), track: tr.receiver.track });
  }
  return out;
}

/**
 * Shows `track` in a media element, replacing what it showed only when the track changed
 * (a new srcObject restarts decoding and flashes black).
 * @param {HTMLMediaElement} el
 * @param {MediaStreamTrack | null} track
 */
export function showTrack(el, track) {
  const current = el.srcObject instanceof MediaStream ? el.srcObject.getTracks()[0] : null;
  if (current === track) return;
  el.srcObject = track ? new MediaStream([track]) : null;
  if (track) el.play().catch(() => {}); // muted video autoplays; audio waits for a click
}
