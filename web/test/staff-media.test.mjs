// The proctor's media subscriber: join, then subscribe (never before `joined`: the hub closes a
// socket that subscribes outside a room with 4507), answer the relay's offers, map the offered
// mids to sources, start again on MEDIA_CLOSED by leaving and rejoining, leave on stop.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Emitter } from "../hub-client.js";
import { RoomSubscriber } from "../staff-media.js";
import { FakeClock, settle } from "./fakes.mjs";

/** The HubSocket surface the subscriber uses: on/emit, send, join, leave, state. */
class FakeSocket extends Emitter {
  constructor() {
    super();
    this.state = "open";
    this.sent = [];
  }
  send(msg) {
    if (this.state !== "open") return false;
    this.sent.push(msg);
    return true;
  }
  join(roomId) {
    this.send({ type: "join", roomId });
  }
  leave(roomId) {
    this.send({ type: "leave", roomId });
  }
  /** A server message, as HubSocket emits it. */
  push(msg) {
    this.emit(msg.type, msg);
  }
  types() {
    return this.sent.map((m) => m.type);
  }
}

/** An RTCPeerConnection whose "SDP" is a JSON list of mids. */
class FakePC {
  static all = [];
  constructor(config) {
    this.config = config;
    this.transceivers = [];
    this.closed = false;
    this.connectionState = "new";
    FakePC.all.push(this);
  }
  async setRemoteDescription(desc) {
    this.remote = desc;
    for (const mid of JSON.parse(desc.sdp).mids) {
      if (!this.transceivers.some((t) => t.mid === mid)) {
        this.transceivers.push({ mid, currentDirection: "recvonly", receiver: { track: { id: `track-${mid}`, kind: "video", readyState: "live", addEventListener() {} } } });
      }
    }
    for (const mid of JSON.parse(desc.sdp).stopped || []) {
      const t = this.transceivers.find((x) => x.mid === mid);
      if (t) t.currentDirection = "stopped";
    }
  }
  async createAnswer() {
    return { type: "answer", sdp: `answer:${this.remote.sdp}` };
  }
  async setLocalDescription(desc) {
    this.localDescription = desc;
  }
  getTransceivers() {
    return this.transceivers;
  }
  async addIceCandidate(c) {
    this.ice = c;
  }
  close() {
    this.closed = true;
  }
}

function setup(options = {}) {
  FakePC.all = [];
  const socket = new FakeSocket();
  const clock = new FakeClock();
  const sub = new RoomSubscriber(socket, "room-1", { RTCPeerConnection: FakePC, timers: clock, ...options });
  const events = { tracks: [], states: [], errors: [] };
  sub.on("tracks", ({ tracks }) => events.tracks.push(tracks.map((t) => `${t.source}:${t.mid}`)));
  sub.on("state", ({ state }) => events.states.push(state));
  sub.on("error", (e) => events.errors.push(e.code));
  return { socket, clock, sub, events };
}

const offer = (mids, tracks, extra = {}) => ({
  type: "signal",
  roomId: "room-1",
  from: "hub",
  data: { kind: "offer", sdp: JSON.stringify({ mids, ...extra }), tracks },
});
const joined = { type: "joined", roomId: "room-1", peers: [], iceServers: [{ urls: ["stun:stun.example:3478"] }] };

test("joins first, subscribes only after `joined`, with the layer and sources asked for", () => {
  const { socket, sub } = setup({ layer: "low", tracks: ["camera"] });
  sub.start();
  assert.deepEqual(socket.sent, [{ type: "join", roomId: "room-1" }]);
  assert.equal(FakePC.all.length, 0, "no connection before the room is joined");
  socket.push({ ...joined, roomId: "other-room" });
  assert.deepEqual(socket.types(), ["join"], "another room's joined is not ours");
  socket.push(joined);
  assert.deepEqual(socket.sent[1], { type: "subscribe", roomId: "room-1", layer: "low", tracks: ["camera"] });
  assert.equal(FakePC.all.length, 1);
  assert.deepEqual(FakePC.all[0].config.iceServers, joined.iceServers, "the ICE servers of `joined`");
  assert.equal(sub.state, "negotiating");
});

test("answers each offer and reports the offered tracks by source", async () => {
  const { socket, sub, events } = setup();
  sub.start();
  socket.push(joined);
  socket.push(offer(["0", "1"], [
    { mid: "0", source: "camera", peerId: "laptop" },
    { mid: "1", source: "screen", peerId: "laptop" },
  ]));
  await settle();
  const answer = socket.sent.at(-1);
  assert.equal(answer.type, "signal");
  assert.equal(answer.to, "hub");
  assert.equal(answer.data.kind, "answer");
  assert.match(answer.data.sdp, /^answer:/);
  assert.deepEqual(events.tracks.at(-1), ["camera:0", "screen:1"]);
  assert.equal(sub.tracks[0].peerId, "laptop");
  // The phone joins: the relay offers again with a third track; the screen share stops.
  socket.push(offer(["0", "1", "2"], [
    { mid: "0", source: "camera", peerId: "laptop" },
    { mid: "2", source: "phone-camera", peerId: "phone" },
  ], { stopped: ["1"] }));
  await settle();
  assert.deepEqual(events.tracks.at(-1), ["camera:0", "phone-camera:2"]);
  assert.equal(socket.sent.filter((m) => m.type === "signal" && m.data.kind === "answer").length, 2);
});

test("signals from peers or for other rooms are not ours; relay ICE is added", async () => {
  const { socket, sub } = setup();
  sub.start();
  socket.push(joined);
  const before = socket.sent.length;
  socket.push({ ...offer(["0"], [{ mid: "0", source: "camera", peerId: "x" }]), from: "some-peer" });
  socket.push({ ...offer(["0"], [{ mid: "0", source: "camera", peerId: "x" }]), roomId: "room-2" });
  await settle();
  assert.equal(socket.sent.length, before, "no answer sent");
  socket.push({ type: "signal", roomId: "room-1", from: "hub", data: { kind: "ice", candidate: { candidate: "c" } } });
  await settle();
  assert.deepEqual(FakePC.all[0].ice, { candidate: "c" });
});

test("MEDIA_CLOSED: close, wait, leave and rejoin, then subscribe on a new connection", async () => {
  const { socket, clock, sub, events } = setup();
  sub.start();
  socket.push(joined);
  socket.push(offer(["0"], [{ mid: "0", source: "camera", peerId: "laptop" }]));
  await settle();
  socket.push({ type: "error", code: "MEDIA_CLOSED", message: "ice failed", roomId: "room-2" });
  assert.equal(sub.state, "negotiating", "another room's closing is not ours");
  socket.push({ type: "error", code: "MEDIA_CLOSED", message: "ice failed", roomId: "room-1" });
  assert.equal(sub.state, "retrying");
  assert.equal(FakePC.all[0].closed, true);
  assert.deepEqual(events.tracks.at(-1), [], "the tracks went with the connection");
  const sentBefore = socket.sent.length;
  await clock.advance(2_000); // past the first backoff step (≤ 1 s)
  assert.deepEqual(socket.sent.slice(sentBefore).map((m) => m.type), ["leave", "join"]);
  socket.push(joined);
  assert.equal(FakePC.all.length, 2);
  assert.equal(socket.sent.at(-1).type, "subscribe");
  assert.deepEqual(events.errors, [], "MEDIA_CLOSED is handled, not reported");
});

test("a refused subscribe without a room concerns only subscribers still waiting", () => {
  const { socket, sub, events } = setup();
  sub.start();
  socket.push({ type: "error", code: "MEDIA_FORBIDDEN", message: "no" }); // before our subscribe
  assert.deepEqual(events.errors, []);
  socket.push(joined);
  socket.push({ type: "error", code: "MEDIA_FORBIDDEN", message: "no" });
  assert.deepEqual(events.errors, ["MEDIA_FORBIDDEN"]);
  assert.equal(sub.state, "negotiating", "forbidden is not retried");
  socket.push({ type: "error", code: "RELAY_UNAVAILABLE", message: "overloaded" });
  assert.equal(sub.state, "retrying");
});

test("a reconnect that is not a resume rejoins (by the socket) and subscribes afresh; a resume keeps the connection", async () => {
  const { socket, clock, sub } = setup();
  sub.start();
  socket.push(joined);
  const pc1 = FakePC.all[0];
  socket.push({ type: "authed", peerId: "p", role: "PROCTOR", serverNow: "", heartbeatIntervalMs: 1, resumed: true });
  assert.equal(pc1.closed, false, "resumed: the relay still holds our connection");
  assert.equal(FakePC.all.length, 1);
  socket.push(joined); // a new connection: HubSocket rejoined the room
  assert.equal(pc1.closed, true);
  assert.equal(FakePC.all.length, 2);
  // A retry that came due while the socket was down: the resumed socket starts afresh.
  socket.push({ type: "error", code: "MEDIA_CLOSED", message: "", roomId: "room-1" });
  socket.state = "reconnecting";
  await clock.advance(2_000);
  socket.state = "open";
  const sentBefore = socket.sent.length;
  socket.push({ type: "authed", peerId: "p", role: "PROCTOR", serverNow: "", heartbeatIntervalMs: 1, resumed: true });
  assert.deepEqual(socket.sent.slice(sentBefore).map((m) => m.type), ["leave", "join"]);
});

test("stop leaves the room, closes the connection and ignores what comes after", async () => {
  const { socket, sub, events } = setup();
  sub.start();
  socket.push(joined);
  sub.stop();
  assert.equal(socket.sent.at(-1).type, "leave");
  assert.equal(FakePC.all[0].closed, true);
  assert.equal(events.states.at(-1), "stopped");
  const count = socket.sent.length;
  socket.push(joined);
  socket.push(offer(["0"], [{ mid: "0", source: "camera", peerId: "x" }]));
  await settle();
  assert.equal(socket.sent.length, count, "no subscribe or answer after stop");
  assert.equal(FakePC.all.length, 1);
});

test("setLayer re-sends subscribe on the same connection", () => {
  const { socket, sub } = setup({ layer: "low" });
  sub.start();
  sub.setLayer("high"); // before joined: remembered only
  assert.equal(socket.types().filter((t) => t === "subscribe").length, 0);
  socket.push(joined);
  assert.equal(socket.sent.at(-1).layer, "high");
  sub.setLayer("low");
  assert.equal(socket.sent.at(-1).layer, "low");
  assert.equal(FakePC.all.length, 1);
});
