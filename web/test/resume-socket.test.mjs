// Resuming a dropped socket (CONTRACT, "Resuming a dropped socket"): the reconnect offers the
// last resumeToken and the highest seq processed; `resumed: true` keeps the peer and its rooms
// (no rejoin) and the replayed messages reach the page once, in order; `resumed: false` is a
// new connection (rejoin, seq from 1 again); stop() forgets the resume.
import { test } from "node:test";
import assert from "node:assert/strict";
import { HubClient, HubSocket, ServerClock } from "../hub-client.js";
import { FakeClock, FakeStorage, FakeWebSocket, settle } from "./fakes.mjs";

const WINDOW_MS = 30_000;

/** A logged-in HubClient that never needs the network (its token lives 15 minutes). */
function loggedInClient(clock) {
  const client = new HubClient({
    baseUrl: "http://hub.test",
    storage: new FakeStorage(),
    fetch: async (url) => {
      throw new Error(`unexpected ${url}`);
    },
    timers: clock,
    clock: new ServerClock(clock.now),
  });
  client.setTokens({
    accessToken: "access-1",
    refreshToken: "refresh-1",
    expiresIn: 900,
    user: { id: "u1", email: "a@b", name: "A", role: "CANDIDATE" },
  });
  return client;
}

/** A socket on fakes, started, with every state and every `warning` it emitted recorded. */
function startedSocket() {
  const clock = new FakeClock();
  FakeWebSocket.reset();
  const socket = new HubSocket(loggedInClient(clock), {
    WebSocket: /** @type {any} */ (FakeWebSocket),
    timers: clock,
    random: () => 0,
    window: null,
  });
  const states = [];
  const warnings = [];
  socket.on("state", (s) => states.push(s));
  socket.on("warning", (m) => warnings.push(m.message));
  socket.join("room-1");
  socket.start();
  return { clock, socket, states, warnings };
}

/**
 * Opens the latest fake socket and answers its `auth` as the hub would.
 * @returns {Promise<{ws: FakeWebSocket, auth: any}>} the socket and the `auth` it sent
 */
async function answerAuth({ peerId = "p1", resumeToken = "resume-1", resumed = false } = {}) {
  const ws = FakeWebSocket.last();
  ws.open();
  await settle();
  const auth = ws.sent[0];
  assert.equal(auth?.type, "auth", "auth is the first frame");
  ws.receive({
    type: "authed",
    peerId,
    role: "CANDIDATE",
    serverNow: "2026-12-07T10:00:00Z",
    heartbeatIntervalMs: 5_000,
    resumeToken,
    resumeWindowMs: WINDOW_MS,
    resumed,
  });
  return { ws, auth };
}

/** The network goes: the socket closes without a close frame; the first retry comes 250 ms later. */
async function drop(clock, ws) {
  ws.serverClose(1006);
  await clock.advance(250);
}

const joins = (ws) => ws.sent.filter((m) => m.type === "join").map((m) => m.roomId);

test("resumed: true keeps the rooms (no rejoin) and delivers the missed messages once, in order", async () => {
  const { clock, socket, states, warnings } = startedSocket();
  const { ws: first } = await answerAuth();
  assert.deepEqual(joins(first), ["room-1"]);
  first.receive({ type: "joined", roomId: "room-1", peers: [], iceServers: [] });
  first.receive({ type: "warning", message: "one", seq: 1 });
  first.receive({ type: "warning", message: "two", seq: 2 });
  const eventId = socket.sendEvent("TAB_HIDDEN", 5); // sent, never acknowledged before the drop

  await drop(clock, first);
  const { ws: second, auth } = await answerAuth({ resumed: true });
  assert.deepEqual(auth, { type: "auth", token: "access-1", resume: { token: "resume-1", lastSeq: 2 } });
  // The hub replays from what it kept; "two" was processed already and must not come back.
  second.receive({ type: "warning", message: "two", seq: 2 });
  second.receive({ type: "warning", message: "three", seq: 3 });
  second.receive({ type: "warning", message: "four", seq: 4 });
  second.receive({ type: "warning", message: "three", seq: 3 }); // a stray repeat

  assert.deepEqual(warnings, ["one", "two", "three", "four"]);
  assert.deepEqual(joins(second), [], "a resumed connection is still in its rooms");
  assert.equal(states.at(-1).state, "open");
  assert.equal(states.at(-1).resumed, true);
  assert.equal(socket.lastSeq, 4);
  // The event's ack may have been lost with the old socket: it goes again (the hub dedupes).
  assert.deepEqual(second.sent.filter((m) => m.type === "event").map((m) => m.eventId), [eventId]);
});

test("resumed: false joins the rooms again and counts seq from 1 again", async () => {
  const { clock, socket, states, warnings } = startedSocket();
  const { ws: first } = await answerAuth();
  first.receive({ type: "joined", roomId: "room-1", peers: [], iceServers: [] });
  for (let seq = 1; seq <= 7; seq++) first.receive({ type: "warning", message: `old ${seq}`, seq });

  await drop(clock, first);
  const { ws: second, auth } = await answerAuth({ peerId: "p2", resumeToken: "resume-2", resumed: false });
  assert.deepEqual(auth.resume, { token: "resume-1", lastSeq: 7 });
  assert.deepEqual(joins(second), ["room-1"], "a new connection joins its rooms again");
  assert.equal(states.at(-1).resumed, false);
  // The new connection numbers its pushes from 1: they are new, not repeats of the old 1..7.
  second.receive({ type: "warning", message: "new 1", seq: 1 });
  second.receive({ type: "warning", message: "new 2", seq: 2 });
  assert.deepEqual(warnings.slice(-2), ["new 1", "new 2"]);
  assert.equal(socket.lastSeq, 2);

  // The next drop offers the new connection's token and its own count.
  await drop(clock, second);
  const { auth: third } = await answerAuth({ peerId: "p2", resumeToken: "resume-2", resumed: true });
  assert.deepEqual(third.resume, { token: "resume-2", lastSeq: 2 });
});

test("seq is tracked across several resumes of one connection", async () => {
  const { clock, warnings } = startedSocket();
  const { ws: a } = await answerAuth();
  a.receive({ type: "joined", roomId: "room-1", peers: [], iceServers: [] });
  a.receive({ type: "warning", message: "1", seq: 1 });
  a.receive({ type: "warning", message: "2", seq: 2 });

  await drop(clock, a);
  const { ws: b, auth: authB } = await answerAuth({ resumed: true });
  assert.equal(authB.resume.lastSeq, 2);
  b.receive({ type: "warning", message: "3", seq: 3 });

  await drop(clock, b);
  const { ws: c, auth: authC } = await answerAuth({ resumed: true });
  assert.deepEqual(authC.resume, { token: "resume-1", lastSeq: 3 });
  for (const seq of [2, 3, 4, 5]) c.receive({ type: "warning", message: String(seq), seq });
  // Replies to the socket's own requests carry no seq and are never taken for repeats.
  c.receive({ type: "heartbeat-ack", serverNow: "2026-12-07T10:00:01Z" });

  assert.deepEqual(warnings, ["1", "2", "3", "4", "5"]);
  assert.deepEqual(joins(b).concat(joins(c)), [], "no rejoin on any resume");
});

test("after the window expired the hub says resumed: false; the socket rejoins and takes the new seq", async () => {
  const { clock, socket, warnings } = startedSocket();
  const { ws: first } = await answerAuth();
  first.receive({ type: "joined", roomId: "room-1", peers: [], iceServers: [] });
  first.receive({ type: "warning", message: "before", seq: 41 });
  const eventId = socket.sendEvent("WINDOW_BLUR", 3);

  // Down for longer than the window: every try fails (connection refused) until then.
  first.serverClose(1006);
  const backAt = clock.t + WINDOW_MS + 15_000;
  for (;;) {
    const tries = FakeWebSocket.instances.length;
    while (FakeWebSocket.instances.length === tries) await clock.advance(500);
    if (clock.t >= backAt) break;
    FakeWebSocket.last().serverClose(1006);
  }

  // Only the hub knows when it let the connection go: the offer still goes, and is refused.
  const { ws: back, auth } = await answerAuth({ peerId: "p9", resumeToken: "resume-9", resumed: false });
  assert.deepEqual(auth.resume, { token: "resume-1", lastSeq: 41 });
  assert.deepEqual(joins(back), ["room-1"], "the rooms are joined again");
  assert.deepEqual(back.sent.filter((m) => m.type === "event").map((m) => m.eventId), [eventId]);
  back.receive({ type: "warning", message: "after", seq: 1 });
  assert.deepEqual(warnings, ["before", "after"]);
  assert.equal(socket.resume?.token, "resume-9");
});

test("rooms joined or left while down are joined or left after a resume", async () => {
  const { clock, socket } = startedSocket();
  const { ws: first } = await answerAuth();
  first.receive({ type: "joined", roomId: "room-1", peers: [], iceServers: [] });
  first.serverClose(1006);
  socket.join("room-2");
  socket.leave("room-1");
  await clock.advance(250);
  const { ws: second } = await answerAuth({ resumed: true });
  assert.deepEqual(
    second.sent.filter((m) => m.type === "join" || m.type === "leave"),
    [{ type: "join", roomId: "room-2" }, { type: "leave", roomId: "room-1" }],
  );
});

test("stop() forgets the resume: the next start is a new connection", async () => {
  const { socket } = startedSocket();
  const { ws: first } = await answerAuth();
  first.receive({ type: "warning", message: "x", seq: 3 });
  socket.stop();
  assert.equal(first.closedWith, 1000, "closed with a close frame: the hub forgets it at once");
  socket.start();
  const { auth } = await answerAuth();
  assert.deepEqual(auth, { type: "auth", token: "access-1" });
  assert.equal(socket.lastSeq, 0);
});

test("a hub with resuming off (no resumeToken) gets a plain auth and the rooms every time", async () => {
  const { clock } = startedSocket();
  const ws = FakeWebSocket.last();
  ws.open();
  await settle();
  ws.receive({ type: "authed", peerId: "p1", role: "CANDIDATE", serverNow: "2026-12-07T10:00:00Z", heartbeatIntervalMs: 5_000 });
  ws.receive({ type: "warning", message: "x", seq: 5 });
  await drop(clock, ws);
  const next = FakeWebSocket.last();
  next.open();
  await settle();
  assert.deepEqual(next.sent[0], { type: "auth", token: "access-1" });
  next.receive({ type: "authed", peerId: "p2", role: "CANDIDATE", serverNow: "2026-12-07T10:00:00Z", heartbeatIntervalMs: 5_000 });
  assert.deepEqual(joins(next), ["room-1"]);
});
