// The phone's pairing (web/pair.js, PhoneLink): the claim keeps the device token per session,
// a reload carries on with it, the access token is renewed before it expires and after a
// 4500, and the hub's refusals end the pairing with the right reason.
import { test } from "node:test";
import assert from "node:assert/strict";
import { HubSocket, ServerClock } from "../hub-client.js";
import { PhoneLink, pairingToken } from "../pair.js";
import { FakeClock, FakeStorage, FakeWebSocket, settle } from "./fakes.mjs";

/**
 * A fake hub for the two pairing routes. `renewAnswer()` decides each renewal.
 * @returns {{fetch: typeof fetch, calls: {path: string, body: any}[]}}
 */
function fakeHub(renewAnswer = () => ({ status: 200 })) {
  const calls = [];
  let issued = 0;
  const fetch = async (url, init) => {
    const path = new URL(url).pathname.replace("/api/v1", "");
    const body = JSON.parse(init.body);
    calls.push({ path, body });
    if (path === "/pairing/claim") {
      if (body.token !== "good-token") {
        return Response.json({ error: { code: "PAIRING_TOKEN_INVALID", message: "used or expired" } }, { status: 410 });
      }
      issued += 1;
      return Response.json({
        accessToken: `mobile-${issued}`,
        expiresIn: 900,
        sessionId: "11111111-2222-3333-4444-555555555555",
        webrtcRoomId: "room-1",
        confirmCode: "123456",
        deviceToken: "device-secret",
      });
    }
    if (path === "/pairing/renew") {
      const a = renewAnswer();
      if (a.status === 0) throw new TypeError("Failed to fetch");
      if (a.status !== 200) {
        return Response.json({ error: { code: a.code, message: a.message || "no" } }, { status: a.status });
      }
      issued += 1;
      return Response.json({ accessToken: `mobile-${issued}`, expiresIn: 900, sessionId: body.sessionId, webrtcRoomId: "room-1" });
    }
    throw new Error(`unexpected ${path}`);
  };
  return { fetch, calls };
}

function makeLink(clock, hub, storage = new FakeStorage()) {
  const link = new PhoneLink({
    baseUrl: "http://hub.test",
    storage,
    fetch: hub.fetch,
    timers: clock,
    now: clock.now,
    clock: new ServerClock(clock.now),
    fingerprint: "phone-fp",
  });
  const ends = [];
  link.on("ended", (e) => ends.push(e.reason));
  return { link, ends, storage };
}

test("the pairing token is read from the fragment", () => {
  assert.equal(pairingToken("#t=abc-DEF_123"), "abc-DEF_123");
  assert.equal(pairingToken("#x=1&t=tok%2Fen"), "tok/en");
  assert.equal(pairingToken(""), null);
  assert.equal(pairingToken("#/exams"), null);
});

test("a claim keeps the device token per session, and a reload carries on with it", async () => {
  const clock = new FakeClock();
  const hub = fakeHub();
  const { link, storage } = makeLink(clock, hub);
  const pairing = await link.claim("good-token");
  assert.equal(pairing.confirmCode, "123456");
  assert.deepEqual(hub.calls[0], { path: "/pairing/claim", body: { token: "good-token", deviceFingerprint: "phone-fp" } });
  assert.equal(await link.accessToken(), "mobile-1", "the claim's token is used while it lives");
  const kept = JSON.parse(storage.getItem("proctor-hub:phone:v1:11111111-2222-3333-4444-555555555555"));
  assert.equal(kept.deviceToken, "device-secret");
  link.stop();

  // The page reloads: no #t= any more, a new PhoneLink on the same storage.
  const again = makeLink(clock, hub, storage).link;
  const restored = again.restore();
  assert.equal(restored?.sessionId, "11111111-2222-3333-4444-555555555555");
  assert.equal(restored?.confirmCode, "123456");
  assert.equal(await again.accessToken(), "mobile-2", "no token in memory yet: renewed");
  assert.deepEqual(hub.calls.at(-1), {
    path: "/pairing/renew",
    body: { sessionId: "11111111-2222-3333-4444-555555555555", deviceToken: "device-secret", deviceFingerprint: "phone-fp" },
  });
  again.stop();
});

test("the access token is renewed a minute before it expires, again and again", async () => {
  const clock = new FakeClock();
  const hub = fakeHub();
  const { link } = makeLink(clock, hub);
  await link.claim("good-token");
  await clock.advance(839_000);
  assert.equal(hub.calls.filter((c) => c.path === "/pairing/renew").length, 0);
  await clock.advance(1_000);
  assert.equal(hub.calls.filter((c) => c.path === "/pairing/renew").length, 1);
  assert.equal(await link.accessToken(), "mobile-2");
  await clock.advance(840_000);
  assert.equal(hub.calls.filter((c) => c.path === "/pairing/renew").length, 2);
  link.stop();
});

test("401 DEVICE_TOKEN_INVALID ends the pairing as `unpaired` and forgets it", async () => {
  const clock = new FakeClock();
  const hub = fakeHub(() => ({ status: 401, code: "DEVICE_TOKEN_INVALID" }));
  const { link, ends, storage } = makeLink(clock, hub);
  await link.claim("good-token");
  await assert.rejects(link.renew(), { status: 401, code: "DEVICE_TOKEN_INVALID" });
  assert.deepEqual(ends, ["unpaired"]);
  assert.equal(storage.getItem("proctor-hub:phone:v1:current"), null);
  assert.equal(makeLink(clock, hub, storage).link.restore(), null, "a reload does not try it again");
  await assert.rejects(link.accessToken(), { status: 401 });
});

test("409 SESSION_CLOSED ends the pairing as `session-closed`", async () => {
  const clock = new FakeClock();
  const hub = fakeHub(() => ({ status: 409, code: "SESSION_CLOSED" }));
  const { link, ends } = makeLink(clock, hub);
  await link.claim("good-token");
  await assert.rejects(link.renew(), { code: "SESSION_CLOSED" });
  assert.deepEqual(ends, ["session-closed"]);
});

test("a renewal that gets no answer keeps the pairing and tries again 10 s later", async () => {
  const clock = new FakeClock();
  let offline = true;
  const hub = fakeHub(() => (offline ? { status: 0 } : { status: 200 }));
  const { link, ends } = makeLink(clock, hub);
  await link.claim("good-token");
  await assert.rejects(link.renew(), { status: 0, code: "NETWORK" });
  assert.deepEqual(ends, []);
  offline = false;
  await clock.advance(10_000);
  assert.equal(hub.calls.filter((c) => c.path === "/pairing/renew").length, 2);
  assert.equal(await link.accessToken(), "mobile-2");
  link.stop();
});

test("a spent pairing token is refused with 410 and nothing is stored", async () => {
  const clock = new FakeClock();
  const hub = fakeHub();
  const { link, storage } = makeLink(clock, hub);
  await assert.rejects(link.claim("spent-token"), { status: 410, code: "PAIRING_TOKEN_INVALID" });
  assert.equal(storage.getItem("proctor-hub:phone:v1:current"), null);
});

test("the phone's socket: a 4500 renews and reconnects with the new token; a refused renewal stops it", async () => {
  const clock = new FakeClock();
  let refuse = false;
  const hub = fakeHub(() => (refuse ? { status: 401, code: "DEVICE_TOKEN_INVALID" } : { status: 200 }));
  const { link, ends } = makeLink(clock, hub);
  await link.claim("good-token");
  FakeWebSocket.reset();
  const socket = new HubSocket(link, { WebSocket: /** @type {any} */ (FakeWebSocket), timers: clock, random: () => 0, window: null });
  const stops = [];
  socket.on("stopped", (s) => stops.push(s.reason));
  socket.join("room-1");
  socket.start();
  assert.equal(FakeWebSocket.last().url, "ws://hub.test/ws");
  FakeWebSocket.last().open();
  await settle();
  assert.deepEqual(FakeWebSocket.last().sent[0], { type: "auth", token: "mobile-1" });

  FakeWebSocket.last().serverClose(4500); // the token was refused (say, it expired while asleep)
  await clock.advance(1_000);
  FakeWebSocket.last().open();
  await settle();
  assert.deepEqual(FakeWebSocket.last().sent[0], { type: "auth", token: "mobile-2" });

  refuse = true; // the laptop rejected this phone meanwhile
  FakeWebSocket.last().serverClose(4500);
  await clock.advance(60_000);
  assert.deepEqual(stops, ["unauthenticated"]);
  assert.deepEqual(ends, ["unpaired"]);
  link.stop();
});
