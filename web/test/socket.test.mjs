// The reconnect policy: the backoff curve, and the socket's behaviour on each close code
// (reconnect, refresh-then-reconnect, stop), rejoining rooms, resending unacknowledged events,
// the heartbeat watchdog, and the server clock it feeds.
import { test } from "node:test";
import assert from "node:assert/strict";
import { backoffDelay, HubClient, HubSocket, ServerClock } from "../hub-client.js";
import { FakeClock, FakeStorage, FakeWebSocket, settle } from "./fakes.mjs";

test("backoff doubles from the base, is capped, and its jitter stays in the upper half of each step", () => {
  const low = () => 0;
  const high = () => 0.999999;
  const opts = { baseMs: 500, maxMs: 15_000 };
  assert.deepEqual(
    [0, 1, 2, 3, 4, 5, 6, 20].map((n) => backoffDelay(n, { ...opts, random: low })),
    [250, 500, 1_000, 2_000, 4_000, 7_500, 7_500, 7_500],
  );
  assert.deepEqual(
    [0, 1, 2, 5, 20].map((n) => backoffDelay(n, { ...opts, random: high })),
    [500, 1_000, 2_000, 15_000, 15_000],
  );
  // A crowd that dropped at once spreads over the step rather than coming back in one wave.
  const spread = new Set(Array.from({ length: 200 }, () => backoffDelay(4, opts)));
  assert.ok(spread.size > 50, `jitter spreads retries (${spread.size} distinct delays)`);
  for (const d of spread) assert.ok(d >= 4_000 && d <= 8_000);
});

/** A HubClient logged in, whose refresh endpoint is `refreshAnswer()`. */
function loggedInClient(clock, refreshAnswer = () => ({ status: 200 })) {
  const refreshes = [];
  const fetch = async (url, init) => {
    if (url.endsWith("/auth/refresh")) {
      refreshes.push(JSON.parse(init.body));
      const a = refreshAnswer();
      if (a.status !== 200) {
        return new Response(JSON.stringify({ error: { code: a.code, message: "no" } }), { status: a.status });
      }
      return Response.json({
        accessToken: `access-${refreshes.length + 1}`,
        refreshToken: `refresh-${refreshes.length + 1}`,
        expiresIn: 900,
        user: { id: "u1", email: "a@b", name: "A", role: "CANDIDATE" },
      });
    }
    throw new Error(`unexpected ${url}`);
  };
  const client = new HubClient({
    baseUrl: "http://hub.test",
    storage: new FakeStorage(),
    fetch,
    timers: clock,
    clock: new ServerClock(clock.now),
  });
  client.setTokens({
    accessToken: "access-1",
    refreshToken: "refresh-1",
    expiresIn: 900,
    user: { id: "u1", email: "a@b", name: "A", role: "CANDIDATE" },
  });
  return { client, refreshes };
}

function makeSocket(clock, client, win = null) {
  FakeWebSocket.reset();
  const socket = new HubSocket(client, {
    WebSocket: /** @type {any} */ (FakeWebSocket),
    timers: clock,
    random: () => 0,
    window: win,
  });
  const states = [];
  const stops = [];
  socket.on("state", (s) => states.push(s));
  socket.on("stopped", (s) => stops.push(s));
  return { socket, states, stops };
}

/** Opens the latest fake socket and answers its `auth`. */
async function accept(clock, serverNow = "2026-12-07T10:00:00Z", heartbeatIntervalMs = 5_000) {
  const ws = FakeWebSocket.last();
  ws.open();
  await settle();
  assert.equal(ws.sent[0]?.type, "auth", "auth is the first frame");
  ws.receive({ type: "authed", peerId: "p1", role: "CANDIDATE", serverNow, heartbeatIntervalMs });
  return ws;
}

test("auth first, then the rooms; after a 4001 drop it reconnects with growing delays and rejoins", async () => {
  const clock = new FakeClock();
  const { client } = loggedInClient(clock);
  const { socket, states } = makeSocket(clock, client);
  socket.join("room-1"); // before the socket is open: remembered
  socket.start();
  assert.equal(FakeWebSocket.last().url, "ws://hub.test/ws");
  const first = await accept(clock);
  assert.deepEqual(first.sent[0], { type: "auth", token: "access-1" });
  assert.deepEqual(first.sent.slice(1, 2), [{ type: "join", roomId: "room-1" }]);
  assert.equal(socket.state, "open");

  // The hub restarts: 4001, and the first tries fail (connection refused = 1006).
  first.serverClose(4001);
  const retries = [];
  for (let i = 0; i < 3; i++) {
    const s = states.at(-1);
    assert.equal(s.state, "reconnecting");
    retries.push(s.retryInMs);
    const before = FakeWebSocket.instances.length;
    await clock.advance(s.retryInMs - 1);
    assert.equal(FakeWebSocket.instances.length, before, "not before the delay");
    await clock.advance(1);
    assert.equal(FakeWebSocket.instances.length, before + 1);
    if (i < 2) FakeWebSocket.last().serverClose(1006);
  }
  assert.deepEqual(retries, [250, 500, 1_000]);
  const again = await accept(clock);
  assert.deepEqual(again.types().slice(0, 2), ["auth", "join"], "the room is joined again");
  assert.equal(states.at(-1).attempt, 0, "a success resets the backoff");
});

test("1013 (store busy at auth) backs off without logging in again", async () => {
  const clock = new FakeClock();
  const { client, refreshes } = loggedInClient(clock);
  const { socket, states } = makeSocket(clock, client);
  socket.start();
  FakeWebSocket.last().open();
  await settle();
  FakeWebSocket.last().serverClose(1013);
  await settle();
  assert.equal(states.at(-1).state, "reconnecting");
  assert.equal(states.at(-1).closeCode, 1013);
  assert.equal(refreshes.length, 0);
});

test("4500 refreshes the token and reconnects with the new one", async () => {
  const clock = new FakeClock();
  const { client, refreshes } = loggedInClient(clock);
  const { socket } = makeSocket(clock, client);
  socket.start();
  FakeWebSocket.last().open();
  await settle();
  FakeWebSocket.last().serverClose(4500);
  await clock.advance(1_000);
  assert.deepEqual(refreshes, [{ refreshToken: "refresh-1" }]);
  const ws = FakeWebSocket.last();
  ws.open();
  await settle();
  assert.deepEqual(ws.sent[0], { type: "auth", token: "access-2" });
});

test("4500 with a refresh that is refused stops with `unauthenticated`", async () => {
  const clock = new FakeClock();
  const { client } = loggedInClient(clock, () => ({ status: 401, code: "REFRESH_TOKEN_REUSED" }));
  const auth = [];
  client.on("auth", (a) => auth.push(a));
  const { socket, stops } = makeSocket(clock, client);
  socket.start();
  FakeWebSocket.last().open();
  await settle();
  const count = FakeWebSocket.instances.length;
  FakeWebSocket.last().serverClose(4500);
  await clock.advance(60_000);
  assert.deepEqual(stops, [{ reason: "unauthenticated", code: 4500 }]);
  assert.equal(FakeWebSocket.instances.length, count, "no reconnect");
  assert.deepEqual(auth.map((a) => [a.user, a.reason]), [[null, "expired"]]);
  assert.equal(client.user, null);
});

for (const [code, reason] of [[4503, "session-ended"], [4504, "replaced"]]) {
  test(`${code} stops for good with the reason \`${reason}\``, async () => {
    const clock = new FakeClock();
    const { client } = loggedInClient(clock);
    const { socket, stops } = makeSocket(clock, client);
    socket.start();
    await accept(clock);
    FakeWebSocket.last().serverClose(code);
    await clock.advance(60_000);
    assert.deepEqual(stops, [{ reason, code }]);
    assert.equal(socket.state, "stopped");
    assert.equal(FakeWebSocket.instances.length, 1);
  });
}

test("going `online` reconnects at once instead of waiting out the backoff", async () => {
  const clock = new FakeClock();
  const { client } = loggedInClient(clock);
  const win = new EventTarget();
  const { socket } = makeSocket(clock, client, win);
  socket.start();
  await accept(clock);
  socket.attempt = 6; // as if it had been failing for a while
  FakeWebSocket.last().serverClose(1006);
  assert.equal(FakeWebSocket.instances.length, 1);
  win.dispatchEvent(new Event("online"));
  assert.equal(FakeWebSocket.instances.length, 2);
});

test("a connection silent for three heartbeat intervals is dropped and replaced", async () => {
  const clock = new FakeClock();
  const { client } = loggedInClient(clock);
  const { socket, states } = makeSocket(clock, client);
  socket.start();
  const ws = await accept(clock, "2026-12-07T10:00:00Z", 1_000);
  await clock.advance(3_500); // heartbeats go out; no ack comes back (the network died)
  assert.ok(ws.types().filter((t) => t === "heartbeat").length >= 3);
  await clock.advance(1_000);
  assert.equal(ws.closedWith, 4000, "the dead socket is closed as one to resume");
  assert.ok(states.some((s) => s.state === "reconnecting" && s.closeCode === 4012));
});

test("events are queued while down, resent after reconnect, and forgotten once acknowledged", async () => {
  const clock = new FakeClock();
  const { client } = loggedInClient(clock);
  const { socket } = makeSocket(clock, client);
  const pending = [];
  socket.on("events-pending", (p) => pending.push(p.pending));
  socket.start();
  const id = socket.sendEvent("TAB_HIDDEN", 5, { hiddenAfterMs: 1000 });
  assert.match(id, /^[0-9a-f-]{36}$/);
  const ws1 = await accept(clock);
  const sent1 = ws1.sent.filter((m) => m.type === "event");
  assert.equal(sent1.length, 1);
  assert.equal(sent1[0].eventId, id);
  assert.equal(sent1[0].eventType, "TAB_HIDDEN");
  assert.equal(sent1[0].severity, 5);
  ws1.serverClose(1006); // dropped before the ack
  await clock.advance(250);
  const ws2 = await accept(clock);
  assert.deepEqual(ws2.sent.filter((m) => m.type === "event").map((m) => m.eventId), [id], "same eventId again");
  ws2.receive({ type: "event-ack", eventId: id });
  assert.equal(socket.events.size, 0);
  assert.equal(pending.at(-1), 0);
  await clock.advance(30_000);
  assert.equal(ws2.sent.filter((m) => m.type === "event").length, 1, "not resent after the ack");
});

test("server messages arrive as typed events; heartbeat acks feed the server clock", async () => {
  const clock = new FakeClock();
  const { client } = loggedInClient(clock);
  const { socket } = makeSocket(clock, client);
  const seen = [];
  socket.on("time-up", (m) => seen.push(["time-up", m.graceEndsAt]));
  socket.on("time-extended", (m) => seen.push(["time-extended", m.expiresAt]));
  socket.on("warning", (m) => seen.push(["warning", m.message]));
  socket.start();
  const ws = await accept(clock, "2030-01-01T00:00:00.000Z", 1_000);
  // authed arrived at the instant it was "sent" (fake time): the server clock reads that time.
  assert.equal(new Date(client.clock.now()).toISOString(), "2030-01-01T00:00:00.000Z");
  ws.receive({ type: "warning", message: "Eyes on your screen" });
  ws.receive({ type: "time-up", sessionId: "s", expiresAt: "2030-01-01T01:00:00Z", graceEndsAt: "2030-01-01T01:00:05Z" });
  ws.receive({ type: "time-extended", sessionId: "s", expiresAt: "2030-01-01T01:10:00Z" });
  assert.deepEqual(seen, [
    ["warning", "Eyes on your screen"],
    ["time-up", "2030-01-01T01:00:05Z"],
    ["time-extended", "2030-01-01T01:10:00Z"],
  ]);
});

test("the server clock keeps the tightest sample and ignores the device's wall clock", () => {
  let mono = 0;
  const clock = new ServerClock(() => mono);
  // Sent at 0, answered at 400: the server read its clock at about 200 (±200 ms), so when the
  // reply lands it is 200 ms later than the server said.
  assert.equal(clock.sample("2030-01-01T00:00:10.000Z", 0, 400), true);
  mono = 400;
  assert.equal(clock.now(), Date.parse("2030-01-01T00:00:10.000Z") + 200);
  mono = 1_000;
  // A sloppier sample (±1 s) right after does not replace it.
  assert.equal(clock.sample("2030-01-01T00:00:50.000Z", 0, 2_000), false);
  // A tighter one does: the server said 10.9 s at mono 1000±20.
  assert.equal(clock.sample("2030-01-01T00:00:10.900Z", 980, 1_020), true);
  mono = 61_020;
  assert.equal(new Date(clock.now()).toISOString(), "2030-01-01T00:01:10.920Z");
  assert.equal(clock.until("2030-01-01T00:01:20.920Z"), 10_000);
});
