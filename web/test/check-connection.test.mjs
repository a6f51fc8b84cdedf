// The system check's connection test (check-connection.js) against a scripted WebSocket: it
// authenticates, pairs every heartbeat with its ack (the socket's own ones included), works
// out the clock offset, and always closes its socket.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ApiError } from "../hub-client.js";
import { RoundTripMeter, isHeartbeatFrame, measureConnection } from "../check-connection.js";
import { connectionVerdict } from "../check-verdicts.js";
import { FakeClock, FakeWebSocket, settle } from "./fakes.mjs";

/** The hub's clock runs this far ahead of the (fake) device clock. */
const HUB_AHEAD_MS = 90_000;

/** What the page's HubClient gives the test. */
function fakeClient({ refresh = async () => {} } = {}) {
  return { baseUrl: "http://hub.test", accessToken: async () => "access-1", refresh };
}

function start(clock, options = {}) {
  FakeWebSocket.reset();
  return measureConnection(fakeClient(options.client), {
    WebSocket: /** @type {any} */ (FakeWebSocket),
    timers: clock,
    now: clock.now,
    monotonic: clock.now,
    probes: 3,
    gapMs: 200,
    ...options,
  });
}

/** The hub's clock reading for the device's time now + `ms`. */
const serverNow = (clock, ms = 0) => new Date(clock.now() + HUB_AHEAD_MS + ms).toISOString();

async function authenticate(clock, heartbeatIntervalMs = 5_000) {
  const ws = FakeWebSocket.last();
  ws.open();
  await settle();
  assert.deepEqual(ws.sent[0], { type: "auth", token: "access-1" });
  ws.receive({ type: "authed", peerId: "p1", role: "CANDIDATE", serverNow: serverNow(clock), heartbeatIntervalMs });
  return ws;
}

const heartbeats = (ws) => ws.sent.filter((m) => m.type === "heartbeat").length;

test("the meter pairs acks with heartbeats in order and keeps the offset of the tightest sample", () => {
  let t = 1_000;
  const meter = new RoundTripMeter(() => t);
  meter.sent(); // t=1000
  t = 1_300;
  meter.sent(); // t=1300
  t = 1_400;
  // The hub read its clock mid-way (t=1200 for the first) and its clock is 5 s ahead.
  assert.deepEqual(meter.acked(new Date(1_200 + 5_000).toISOString()), { roundTripMs: 400, offsetMs: 5_000 });
  t = 1_340;
  assert.deepEqual(meter.acked(new Date(1_320 + 4_990).toISOString()), { roundTripMs: 40, offsetMs: 4_990 });
  assert.equal(meter.acked(new Date().toISOString()), null, "an ack with no heartbeat out is ignored");
  assert.deepEqual(meter.roundTrips(), [400, 40]);
  assert.equal(meter.bestOffset(), 4_990, "the 40 ms sample is the more precise one");
  meter.sent();
  meter.lost();
  assert.equal(meter.acked(new Date().toISOString()), null, "a replaced socket's heartbeats are forgotten");
});

test("isHeartbeatFrame recognises only the heartbeat message", () => {
  assert.equal(isHeartbeatFrame(JSON.stringify({ type: "heartbeat" })), true);
  assert.equal(isHeartbeatFrame(JSON.stringify({ type: "event", eventType: "X", meta: { note: "heartbeat" } })), false);
  assert.equal(isHeartbeatFrame("not json heartbeat"), false);
  assert.equal(isHeartbeatFrame(new ArrayBuffer(2)), false);
});

test("authenticates, times the heartbeats (the socket's own one first), then closes the socket", async () => {
  const clock = new FakeClock();
  const test = start(clock);
  const ws = await authenticate(clock);
  assert.equal(heartbeats(ws), 1, "the socket heartbeats at once on authed");

  await clock.advance(30);
  ws.receive({ type: "heartbeat-ack", serverNow: serverNow(clock, -15) });
  assert.equal(heartbeats(ws), 1, "the next probe waits for the gap");
  await clock.advance(200);
  assert.equal(heartbeats(ws), 2, "one probe after the gap");
  await clock.advance(50);
  ws.receive({ type: "heartbeat-ack", serverNow: serverNow(clock, -25) });
  await clock.advance(200);
  assert.equal(heartbeats(ws), 3);
  await clock.advance(40);
  ws.receive({ type: "heartbeat-ack", serverNow: serverNow(clock, -20) });

  const result = await test.result;
  assert.deepEqual(result, {
    authed: true,
    stopReason: undefined,
    closeCode: undefined,
    roundTripsMs: [30, 50, 40],
    offsetMs: HUB_AHEAD_MS,
  });
  assert.equal(ws.closedWith, 1000, "the test socket is closed when done");
  assert.equal(connectionVerdict(result).state, "passed");
  assert.match(connectionVerdict(result).text, /Round trip 40 ms.*1 min 30 s behind the hub's/);
});

test("a periodic heartbeat of the socket while a probe is in flight does not mix up the pairing", async () => {
  const clock = new FakeClock();
  const test = start(clock);
  const ws = await authenticate(clock, 1_000); // t=0: the socket's heartbeat
  await clock.advance(100);
  ws.receive({ type: "heartbeat-ack", serverNow: serverNow(clock) }); // 100 ms
  await clock.advance(200); // t=300: probe
  await clock.advance(700); // t=1000: the socket's own periodic heartbeat, probe still out
  assert.equal(heartbeats(ws), 3);
  await clock.advance(50);
  ws.receive({ type: "heartbeat-ack", serverNow: serverNow(clock) }); // answers the t=300 probe
  await clock.advance(10);
  ws.receive({ type: "heartbeat-ack", serverNow: serverNow(clock) }); // answers the t=1000 one
  const result = await test.result;
  assert.deepEqual(result.roundTripsMs, [100, 750, 60]);
});

test("a refused login stops at once with the reason, and the verdict says to log in again", async () => {
  const clock = new FakeClock();
  const test = start(clock, {
    client: {
      refresh: async () => {
        throw new ApiError(401, "INVALID_REFRESH_TOKEN", "no");
      },
    },
  });
  const ws = FakeWebSocket.last();
  ws.open();
  await settle();
  ws.serverClose(4500);
  const result = await test.result;
  assert.equal(result.authed, false);
  assert.equal(result.stopReason, "unauthenticated");
  assert.equal(result.closeCode, 4500);
  assert.match(connectionVerdict(result).fix ?? "", /log in again/);
});

test("an unreachable hub: retries until the deadline, then reports the close code and stops retrying", async () => {
  const clock = new FakeClock();
  const test = start(clock, { timeoutMs: 5_000 });
  let done = false;
  test.result.then(() => (done = true));
  while (!done) {
    FakeWebSocket.last().serverClose(1006);
    await clock.advance(100);
  }
  const result = await test.result;
  assert.equal(result.authed, false);
  assert.equal(result.closeCode, 1006);
  assert.deepEqual(result.roundTripsMs, []);
  assert.ok(FakeWebSocket.instances.length > 2, "it kept trying meanwhile");
  const tries = FakeWebSocket.instances.length;
  await clock.advance(60_000);
  assert.equal(FakeWebSocket.instances.length, tries, "no more tries after the test ended");
  assert.match(connectionVerdict(result).text, /could not open a live connection to the hub \(code 1006\)/);
});

test("stop() (leaving the page) ends the test with what was measured and closes the socket", async () => {
  const clock = new FakeClock();
  const test = start(clock);
  const ws = await authenticate(clock);
  await clock.advance(20);
  ws.receive({ type: "heartbeat-ack", serverNow: serverNow(clock) });
  test.stop();
  const result = await test.result;
  assert.deepEqual(result.roundTripsMs, [20]);
  assert.equal(result.authed, true);
  assert.equal(ws.closedWith, 1000);
  const sent = ws.sent.length;
  await clock.advance(10_000);
  assert.equal(ws.sent.length, sent, "no probe after stop");
});
