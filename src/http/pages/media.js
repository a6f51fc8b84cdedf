// Shared helpers of the hub's minimal media pages: login, the WebSocket protocol, and
// publishing to / subscribing from the hub's media relay (signal with to: "hub").
"use strict";

const Hub = {};

Hub.params = function () {
  const out = {};
  const raw = (location.hash || "").replace(/^#/, "");
  for (const part of raw.split("&")) {
    if (!part) continue;
    const i = part.indexOf("=");
    const k = decodeURIComponent(i < 0 ? part : part.slice(0, i));
    out[k] = i < 0 ? "" : decodeURIComponent(part.slice(i + 1));
  }
  for (const [k, v] of new URLSearchParams(location.search)) out[k] = v;
  return out;
};

Hub.log = function (...args) {
  const el = document.getElementById("log");
  const line = args.map((a) => (typeof a === "string" ? a : JSON.stringify(a))).join(" ");
  if (el) el.textContent = line + "\n" + el.textContent.slice(0, 4000);
  console.log(line);
};

Hub.api = async function (path, body, token) {
  const headers = { "content-type": "application/json" };
  if (token) headers.authorization = "Bearer " + token;
  const r = await fetch("/api/v1" + path, { method: "POST", headers, body: JSON.stringify(body) });
  const json = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error((json.error && json.error.code) || "HTTP " + r.status);
  return json;
};

Hub.login = async function (email, password) {
  const r = await Hub.api("/auth/login", { email, password });
  return r.accessToken;
};

// One authenticated socket. `handlers[type](msg)` receives server messages.
Hub.connect = function (token, handlers) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws");
    const conn = {
      ws,
      send: (m) => ws.send(JSON.stringify(m)),
      waiters: [],
    };
    conn.next = (type) => new Promise((res) => conn.waiters.push({ type, res }));
    ws.onopen = () => conn.send({ type: "auth", token });
    ws.onclose = (e) => Hub.log("socket closed", e.code, e.reason);
    ws.onerror = () => reject(new Error("socket error"));
    ws.onmessage = (e) => {
      const msg = JSON.parse(e.data);
      const w = conn.waiters.findIndex((x) => x.type === msg.type);
      if (w >= 0) conn.waiters.splice(w, 1)[0].res(msg);
      if (msg.type === "authed") {
        conn.peerId = msg.peerId;
        setInterval(() => conn.send({ type: "heartbeat" }), msg.heartbeatIntervalMs || 5000);
        resolve(conn);
      } else if (msg.type === "error") {
        Hub.log("error", msg.code, msg.message);
        if (msg.code === "MEDIA_CLOSED" && conn.onMediaClosed) conn.onMediaClosed(msg.roomId);
      }
      const h = handlers && handlers[msg.type];
      if (h) h(msg);
    };
  });
};

Hub.join = async function (conn, roomId) {
  const joined = conn.next("joined");
  conn.send({ type: "join", roomId });
  return joined;
};

function iceConfig(joined) {
  return { iceServers: joined.iceServers || [], bundlePolicy: "max-bundle" };
}

// Publishes `tracks` ([{track, source, simulcast}]) to the hub's relay in `roomId`.
Hub.publish = async function (conn, roomId, joined, tracks) {
  const pc = new RTCPeerConnection(iceConfig(joined));
  pc.onicecandidate = (e) => {
    if (e.candidate) conn.send({ type: "signal", roomId, to: "hub", data: { kind: "ice", candidate: e.candidate.toJSON() } });
  };
  pc.onconnectionstatechange = () => Hub.log("publish", pc.connectionState);
  const declared = [];
  for (const t of tracks) {
    const init = { direction: "sendonly", streams: [] };
    if (t.simulcast) {
      init.sendEncodings = [
        { rid: "l", scaleResolutionDownBy: 2, maxBitrate: 150000 },
        { rid: "h", maxBitrate: 600000 },
      ];
    }
    declared.push({ tr: pc.addTransceiver(t.track, init), source: t.source });
  }
  const offer = await pc.createOffer();
  await pc.setLocalDescription(offer);
  const map = {};
  for (const d of declared) map[d.tr.mid] = d.source;
  const answered = new Promise((resolve) => {
    conn.onHubSignal = async (msg) => {
      if (msg.data.kind === "answer") {
        await pc.setRemoteDescription({ type: "answer", sdp: msg.data.sdp });
        resolve();
      }
    };
  });
  conn.send({ type: "signal", roomId, to: "hub", data: { kind: "offer", sdp: pc.localDescription.sdp, tracks: map } });
  await answered;
  return pc;
};

// Subscribes to a room's tracks; `onTracks(list)` gets [{mid, source, peerId, track}] after
// every (re)negotiation.
Hub.subscribe = function (conn, roomId, joined, options, onTracks) {
  const pc = new RTCPeerConnection(iceConfig(joined));
  pc.onicecandidate = (e) => {
    if (e.candidate) conn.send({ type: "signal", roomId, to: "hub", data: { kind: "ice", candidate: e.candidate.toJSON() } });
  };
  pc.onconnectionstatechange = () => Hub.log("subscribe", roomId, pc.connectionState);
  let queue = Promise.resolve();
  conn.onRoomSignal = conn.onRoomSignal || {};
  conn.onRoomSignal[roomId] = (msg) => {
    if (msg.data.kind !== "offer") return;
    queue = queue.then(async () => {
      await pc.setRemoteDescription({ type: "offer", sdp: msg.data.sdp });
      const answer = await pc.createAnswer();
      await pc.setLocalDescription(answer);
      conn.send({ type: "signal", roomId, to: "hub", data: { kind: "answer", sdp: pc.localDescription.sdp } });
      const list = [];
      for (const t of msg.data.tracks || []) {
        const tr = pc.getTransceivers().find((x) => x.mid === t.mid);
        if (tr) list.push({ mid: t.mid, source: t.source, peerId: t.peerId, track: tr.receiver.track });
      }
      onTracks(list);
    }).catch((e) => Hub.log("negotiation failed", String(e)));
  };
  const msg = { type: "subscribe", roomId, layer: options.layer || "high" };
  if (options.tracks) msg.tracks = options.tracks;
  conn.send(msg);
  return pc;
};

// Routes `signal` messages from the hub to the publisher or the per-room subscriber.
Hub.signalHandler = function (connRef) {
  return (msg) => {
    const conn = connRef();
    if (msg.from !== "hub" || !conn) return;
    if (conn.onRoomSignal && conn.onRoomSignal[msg.roomId]) return conn.onRoomSignal[msg.roomId](msg);
    if (conn.onHubSignal) conn.onHubSignal(msg);
  };
};

// Numbers the browser test reads: per inbound video track, frames decoded; the remote ports of
// the selected candidate pairs; outbound bytes.
Hub.stats = async function (pcs) {
  const out = { inbound: [], remotePorts: [], outboundBytes: 0 };
  for (const pc of pcs) {
    const report = await pc.getStats();
    const byId = new Map();
    report.forEach((s) => byId.set(s.id, s));
    report.forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "video") out.inbound.push({ mid: s.mid, framesDecoded: s.framesDecoded || 0 });
      if (s.type === "outbound-rtp") out.outboundBytes += s.bytesSent || 0;
      if (s.type === "transport" && s.selectedCandidatePairId) {
        const pair = byId.get(s.selectedCandidatePairId);
        const remote = pair && byId.get(pair.remoteCandidateId);
        if (remote) out.remotePorts.push(remote.port);
      }
    });
  }
  return out;
};

// A moving test pattern, for a screen share where the browser cannot capture the screen.
Hub.canvasTrack = function (label) {
  const c = document.createElement("canvas");
  c.width = 640;
  c.height = 360;
  const g = c.getContext("2d");
  let n = 0;
  setInterval(() => {
    n++;
    g.fillStyle = "#123";
    g.fillRect(0, 0, c.width, c.height);
    g.fillStyle = "#fc0";
    g.fillRect((n * 7) % c.width, 100, 80, 80);
    g.font = "32px sans-serif";
    g.fillText(label + " " + n, 20, 50);
  }, 66);
  return c.captureStream(15).getVideoTracks()[0];
};

window.Hub = Hub;
