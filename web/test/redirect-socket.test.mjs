// Several hub nodes: a socket that reached a node that is not its exam's home gets
// `{"type":"redirect","url":…}` and a 4010 close. The socket follows at once with a fresh
// `auth` (never the old node's resume token), joins its rooms again and lets pages re-send
// their watches; it caps redirects in a row, ignores targets that are not WebSocket URLs, and
// falls back to the entry URL when the redirected node fails.
import { test } from "node:test";
import assert from "node:assert/strict";
import { HubClient, HubSocket, ServerClock, redirectTarget } from "../hub-client.js";
import { FakeClock, FakeStorage, FakeWebSocket, settle } from "./fakes.mjs";

const ENTRY = "ws://hub.test/ws";
const NODE_B = "ws://node-b.test:9001/ws";
const NODE_C = "ws://node-c.test:9002/ws";

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

/**
 * A socket on fakes in room-1, started, recording its states; `watches` counts the `watch`
 * frames a page (as web/staff-socket.js does) sends after every `authed`.
 */
function startedSocket({ rooms = ["room-1"] } = {}) {
  const clock = new FakeClock();
  FakeWebSocket.reset();
  const socket = new HubSocket(loggedInClient(clock), {
    WebSocket: /** @type {any} */ (FakeWebSocket),
    timers: clock,
    random: () => 0,
    window: null,
  });
  const states = [];
  socket.on("state", (s) => states.push(s));
  socket.on("authed", () => socket.send({ type: "watch", examId: "exam-1" }));
  for (const room of rooms) socket.join(room);
  socket.start();
  return { clock, socket, states };
}

/**
 * Opens the latest fake socket and answers its `auth`.
 * @returns {Promise<{ws: any, auth: any}>}
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
    resumeWindowMs: 30_000,
    resumed,
  });
  return { ws, auth };
}

/** The node says the exam lives elsewhere, then closes with 4010. */
function redirect(ws, url) {
  ws.receive({ type: "redirect", url });
  ws.serverClose(4010);
}

const urls = () => FakeWebSocket.instances.map((ws) => ws.url);
const joins = (ws) => ws.sent.filter((m) => m.type === "join").map((m) => m.roomId);
const watches = (ws) => ws.sent.filter((m) => m.type === "watch").length;

test("a redirect is followed at once, with a fresh auth (no resume token) and the rooms and watches again", async () => {
  const { clock, socket, states } = startedSocket();
  const warnings = [];
  socket.on("warning", (m) => warnings.push(m.message));
  const { ws: a } = await answerAuth();
  assert.equal(a.url, ENTRY);
  a.receive({ type: "joined", roomId: "room-1", peers: [], iceServers: [] });
  a.receive({ type: "warning", message: "a1", seq: 1 });
  a.receive({ type: "warning", message: "a2", seq: 2 });
  const eventId = socket.sendEvent("TAB_HIDDEN", 5); // never acknowledged by node A

  redirect(a, NODE_B);
  // At once: no backoff, no timer to wait for.
  assert.deepEqual(urls(), [ENTRY, NODE_B]);
  assert.equal(a.closedWith, 1000, "the moved socket is not kept for a resume");
  const moving = states.find((s) => s.state === "reconnecting");
  assert.deepEqual(moving, { state: "reconnecting", attempt: 0, retryInMs: 0, closeCode: 4010, redirected: true });
  assert.equal(states.at(-1).state, "connecting");

  const { ws: b, auth } = await answerAuth({ peerId: "p2", resumeToken: "resume-b" });
  assert.deepEqual(auth, { type: "auth", token: "access-1" }, "node A's resume token never reaches node B");
  assert.equal(states.at(-1).state, "open");
  assert.equal(states.at(-1).resumed, false);
  assert.deepEqual(joins(b), ["room-1"], "the room is joined again on the new node");
  assert.equal(watches(b), 1, "`authed` lets the page watch its exam again");
  assert.deepEqual(b.sent.filter((m) => m.type === "event").map((m) => m.eventId), [eventId]);
  // Node B numbers its pushes from 1: they are new, not repeats of node A's.
  b.receive({ type: "warning", message: "b1", seq: 1 });
  assert.deepEqual(warnings, ["a1", "a2", "b1"]);

  // A plain drop on node B retries node B, and resumes there with node B's token.
  b.serverClose(1006);
  await clock.advance(250);
  assert.equal(FakeWebSocket.last().url, NODE_B);
  const { auth: again } = await answerAuth({ peerId: "p2", resumeToken: "resume-b", resumed: true });
  assert.deepEqual(again.resume, { token: "resume-b", lastSeq: 1 });
});

test("a redirect that comes before `authed` is followed too", async () => {
  const { states } = startedSocket();
  const a = FakeWebSocket.last();
  a.open();
  await settle();
  redirect(a, NODE_B);
  assert.deepEqual(urls(), [ENTRY, NODE_B]);
  assert.equal(states.filter((s) => s.redirected).length, 1);
  const { auth } = await answerAuth();
  assert.deepEqual(auth, { type: "auth", token: "access-1" });
});

test("redirect targets: only ws: and wss: URLs are followed (and never wss: down to ws:)", () => {
  assert.equal(redirectTarget("ws://node-b:9001/ws", ENTRY), "ws://node-b:9001/ws");
  assert.equal(redirectTarget("wss://node-b.example/ws", ENTRY), "wss://node-b.example/ws");
  assert.equal(redirectTarget("wss://node-b.example/ws", "wss://hub.example/ws"), "wss://node-b.example/ws");
  assert.equal(redirectTarget("WSS://Node-B.example/ws", ENTRY), "wss://node-b.example/ws");
  for (const bad of [
    "http://node-b:9001/ws",
    "https://node-b/ws",
    "javascript:alert(1)",
    "data:text/plain,hi",
    "/ws",
    "node-b:9001/ws",
    "not a url",
    "",
    "ws://user:secret@node-b/ws",
    null,
    undefined,
    42,
    { href: "ws://node-b/ws" },
  ]) {
    assert.equal(redirectTarget(bad, ENTRY), null, `ignored: ${JSON.stringify(bad)}`);
  }
  assert.equal(redirectTarget("ws://node-b/ws", "wss://hub.example/ws"), null, "no downgrade from wss:");
});

test("an invalid redirect is ignored: its 4010 goes back to the entry URL after the backoff", async () => {
  for (const url of ["http://node-b:9001/ws", "javascript:alert(1)", 7]) {
    const { clock, states } = startedSocket();
    const { ws: a } = await answerAuth();
    redirect(a, url);
    assert.equal(FakeWebSocket.instances.length, 1, `not followed: ${url}`);
    const s = states.at(-1);
    assert.equal(s.state, "reconnecting");
    assert.equal(s.closeCode, 4010);
    assert.equal(s.redirected, undefined);
    await clock.advance(s.retryInMs);
    assert.deepEqual(urls(), [ENTRY, ENTRY]);
  }
});

test("a redirect message without a 4010 close is not followed", async () => {
  const { clock, states } = startedSocket();
  const { ws: a } = await answerAuth();
  a.receive({ type: "redirect", url: NODE_B });
  a.serverClose(1006);
  assert.equal(FakeWebSocket.instances.length, 1);
  assert.equal(states.at(-1).redirected, undefined);
  await clock.advance(250);
  assert.deepEqual(urls(), [ENTRY, ENTRY]);
});

test("4010 without a redirect message reconnects to the entry URL with the normal backoff", async () => {
  const { clock, states } = startedSocket();
  const { ws: a } = await answerAuth();
  a.serverClose(4010);
  assert.equal(FakeWebSocket.instances.length, 1, "not at once");
  assert.deepEqual(states.at(-1), { state: "reconnecting", attempt: 1, retryInMs: 250, closeCode: 4010 });
  await clock.advance(249);
  assert.equal(FakeWebSocket.instances.length, 1);
  await clock.advance(1);
  assert.deepEqual(urls(), [ENTRY, ENTRY]);

  // From a redirected node too: a 4010 with nothing to follow goes back to the entry URL.
  await answerAuth();
  redirect(FakeWebSocket.last(), NODE_B);
  await answerAuth();
  FakeWebSocket.last().serverClose(4010);
  await clock.advance(states.at(-1).retryInMs);
  assert.deepEqual(urls(), [ENTRY, ENTRY, NODE_B, ENTRY]);
});

test("at most 5 redirects in a row are followed at once; then they wait out a growing backoff", async () => {
  const { clock, states } = startedSocket();
  const nodes = [NODE_B, NODE_C];
  const delays = [];
  for (let i = 0; i < 8; i++) {
    const before = FakeWebSocket.instances.length;
    // Two nodes that disagree: each authenticates, then sends the socket to the other.
    await answerAuth();
    redirect(FakeWebSocket.last(), nodes[i % 2]);
    const s = states.findLast((x) => x.state === "reconnecting");
    assert.equal(s.redirected, true);
    assert.equal(s.closeCode, 4010);
    delays.push(s.retryInMs);
    if (s.retryInMs > 0) {
      assert.equal(FakeWebSocket.instances.length, before, "waits");
      await clock.advance(s.retryInMs - 1);
      assert.equal(FakeWebSocket.instances.length, before);
      await clock.advance(1);
    }
    assert.equal(FakeWebSocket.instances.length, before + 1);
    assert.equal(FakeWebSocket.last().url, nodes[i % 2], "still where the redirect said");
  }
  assert.deepEqual(delays, [0, 0, 0, 0, 0, 250, 500, 1_000]);

  // A node that takes the room is a steady state: the next redirect is followed at once again.
  const { ws } = await answerAuth();
  ws.receive({ type: "joined", roomId: "room-1", peers: [], iceServers: [] });
  redirect(ws, NODE_C);
  assert.equal(states.findLast((x) => x.state === "reconnecting").retryInMs, 0);
  assert.equal(FakeWebSocket.last().url, NODE_C);
});

test("a watch answered (session-snapshot) or a connection that ended otherwise also ends a chain of redirects", async () => {
  const { clock, socket, states } = startedSocket({ rooms: [] });
  for (let i = 0; i < 5; i++) {
    await answerAuth();
    redirect(FakeWebSocket.last(), i % 2 ? NODE_C : NODE_B);
  }
  assert.equal(socket.redirects, 5);
  const { ws } = await answerAuth();
  ws.receive({ type: "session-snapshot", examId: "exam-1", sessions: [] });
  assert.equal(socket.redirects, 0);

  for (let i = 0; i < 5; i++) {
    await answerAuth();
    redirect(FakeWebSocket.last(), i % 2 ? NODE_C : NODE_B);
  }
  assert.equal(socket.redirects, 5);
  const { ws: steady } = await answerAuth();
  steady.serverClose(1006); // worked, then the network dropped: not a redirect loop
  await clock.advance(states.at(-1).retryInMs);
  await answerAuth();
  redirect(FakeWebSocket.last(), NODE_B);
  assert.equal(states.findLast((x) => x.state === "reconnecting").retryInMs, 0);
});

test("a redirected node that cannot be reached sends the next try to the entry URL", async () => {
  const { clock, states } = startedSocket();
  const { ws: a } = await answerAuth();
  redirect(a, NODE_B);
  const b = FakeWebSocket.last();
  assert.equal(b.url, NODE_B);
  b.serverClose(1006); // connection refused: node B is dead
  const s = states.at(-1);
  assert.equal(s.state, "reconnecting");
  assert.equal(s.redirected, undefined);
  assert.equal(FakeWebSocket.instances.length, 2, "with the normal backoff");
  await clock.advance(s.retryInMs);
  assert.deepEqual(urls(), [ENTRY, NODE_B, ENTRY]);
  // The entry node redirects again, now to the new home.
  await answerAuth();
  redirect(FakeWebSocket.last(), NODE_C);
  const { auth } = await answerAuth();
  assert.deepEqual(urls(), [ENTRY, NODE_B, ENTRY, NODE_C]);
  assert.deepEqual(auth, { type: "auth", token: "access-1" });
});

test("a redirected node that never answers `auth` sends the next try to the entry URL", async () => {
  const { clock, states } = startedSocket();
  const { ws: a } = await answerAuth();
  redirect(a, NODE_B);
  FakeWebSocket.last().open(); // node B accepts the TCP connection but hangs
  await clock.advance(12_000);
  assert.equal(states.at(-1).closeCode, 4502);
  await clock.advance(states.at(-1).retryInMs);
  assert.deepEqual(urls(), [ENTRY, NODE_B, ENTRY]);
});

test("4001 from a redirected node goes back to the entry URL, without node B's resume token", async () => {
  const { clock, states } = startedSocket();
  const { ws: a } = await answerAuth({ resumeToken: "resume-a" });
  redirect(a, NODE_B);
  const { ws: b } = await answerAuth({ peerId: "p2", resumeToken: "resume-b" });
  b.receive({ type: "joined", roomId: "room-1", peers: [], iceServers: [] });
  b.receive({ type: "warning", message: "b1", seq: 1 });
  b.serverClose(4001); // node B shuts down
  await clock.advance(states.at(-1).retryInMs);
  assert.deepEqual(urls(), [ENTRY, NODE_B, ENTRY]);
  const { ws: back, auth } = await answerAuth({ peerId: "p3", resumeToken: "resume-a2" });
  assert.deepEqual(auth, { type: "auth", token: "access-1" }, "node B's token is not offered to the entry node");
  assert.deepEqual(joins(back), ["room-1"]);
  assert.equal(watches(back), 1);
});

test("4001 from the entry node retries the entry URL (and resumes there)", async () => {
  const { clock, states } = startedSocket();
  const { ws: a } = await answerAuth({ resumeToken: "resume-a" });
  a.receive({ type: "warning", message: "a1", seq: 1 });
  a.serverClose(4001);
  await clock.advance(states.at(-1).retryInMs);
  const { auth } = await answerAuth({ resumeToken: "resume-a", resumed: true });
  assert.deepEqual(urls(), [ENTRY, ENTRY]);
  assert.deepEqual(auth.resume, { token: "resume-a", lastSeq: 1 });
});

test("stop() and start() begin at the entry URL again", async () => {
  const { socket } = startedSocket();
  const { ws: a } = await answerAuth();
  redirect(a, NODE_B);
  await answerAuth();
  socket.stop();
  socket.start();
  assert.equal(FakeWebSocket.last().url, ENTRY);
  assert.equal(socket.redirects, 0);
});
