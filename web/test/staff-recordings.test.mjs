// The review player's timing rules: the session timeline built from the recordings list,
// which segment covers a time and where in its file, gaps (reconnects) and before/after,
// where an event sends the players, the shared clock, drift, and the segment cache.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  sessionTimeline,
  segmentAt,
  segmentOffset,
  coverageAt,
  gapsOf,
  eventSeekTime,
  eventTime,
  clampTime,
  clockPosition,
  needsResync,
  formatOffset,
  wantedSegments,
  SegmentCache,
  SEEK_LEAD_MS,
  RATES,
} from "../staff-recordings.js";

const T0 = Date.parse("2026-03-01T09:00:00Z");
const at = (ms) => new Date(T0 + ms).toISOString();
let n = 0;
/** A recording of `source` from `startMs` for `lengthMs` after T0. */
function rec(source, startMs, lengthMs, extra = {}) {
  n += 1;
  return {
    id: `rec-${n}`,
    source,
    kind: source === "microphone" ? "audio" : "video",
    startedAt: at(startMs),
    endedAt: at(startMs + lengthMs),
    durationMs: lengthMs,
    bytes: 1000,
    ...extra,
  };
}

// A session: the camera from 5 s, split at 5 min, reconnecting after a gap (310 s → 340 s);
// the screen from 0 s for 2 min; the microphone with the camera; the phone from 60 s to 400 s.
const camA = rec("camera", 5_000, 300_000);
const camB = rec("camera", 305_000, 5_000);
const camC = rec("camera", 340_000, 100_000);
const screen = rec("screen", 0, 120_000);
const mic = rec("microphone", 5_000, 435_000);
const phone = rec("phone-camera", 60_000, 340_000);
const all = [camC, screen, camA, mic, phone, camB]; // any order

test("the timeline starts at the earliest segment and places every segment on it", () => {
  const tl = sessionTimeline(all);
  assert.equal(tl.origin, T0);
  assert.equal(tl.duration, 440_000);
  assert.deepEqual(
    tl.tracks.camera.map((s) => [s.id, s.start, s.end]),
    [
      [camA.id, 5_000, 305_000],
      [camB.id, 305_000, 310_000],
      [camC.id, 340_000, 440_000],
    ],
  );
  assert.deepEqual(tl.tracks.screen.map((s) => [s.start, s.end, s.kind]), [[0, 120_000, "video"]]);
  assert.deepEqual(tl.tracks.microphone.map((s) => s.kind), ["audio"]);
  assert.equal(tl.tracks["phone-camera"][0].start, 60_000);
});

test("an empty list, unknown sources and unparsable times make no timeline", () => {
  const empty = sessionTimeline([]);
  assert.equal(empty.duration, 0);
  assert.deepEqual(empty.tracks, { camera: [], screen: [], "phone-camera": [], microphone: [] });
  const odd = sessionTimeline([rec("thermal", 0, 1000), rec("camera", 0, 1000, { startedAt: "yesterday" })]);
  assert.equal(odd.duration, 0);
});

test("a missing duration falls back to startedAt → endedAt, never negative", () => {
  const tl = sessionTimeline([rec("camera", 0, 8_000, { durationMs: 0 }), rec("screen", 1_000, 5_000, { durationMs: null, endedAt: at(500) })]);
  assert.equal(tl.tracks.camera[0].end, 8_000);
  assert.equal(tl.tracks.screen[0].end - tl.tracks.screen[0].start, 0);
});

test("timestamps with microseconds (as Postgres sends them) place segments to the millisecond", () => {
  const tl = sessionTimeline([
    rec("camera", 0, 1000, { startedAt: "2026-03-01T09:00:00.000250Z" }),
    rec("screen", 0, 1000, { startedAt: "2026-03-01T09:00:01.500999Z" }),
  ]);
  assert.equal(tl.tracks.screen[0].start - tl.tracks.camera[0].start, 1_500);
});

test("the segment for a time: inclusive bounds, the later one where two touch", () => {
  const cam = sessionTimeline(all).tracks.camera;
  assert.equal(segmentAt(cam, 4_999), null);
  assert.equal(segmentAt(cam, 5_000)?.id, camA.id);
  assert.equal(segmentAt(cam, 200_000)?.id, camA.id);
  assert.equal(segmentAt(cam, 305_000)?.id, camB.id, "the split point plays the next segment");
  assert.equal(segmentAt(cam, 310_000)?.id, camB.id);
  assert.equal(segmentAt(cam, 320_000), null, "the reconnect gap");
  assert.equal(segmentAt(cam, 440_000)?.id, camC.id, "the very end shows the last frame");
  assert.equal(segmentAt(cam, 440_001), null);
  assert.equal(segmentAt([], 0), null);
});

test("overlapping segments (a reconnect before the old one was closed): the newer one plays", () => {
  const tl = sessionTimeline([rec("camera", 0, 10_000), rec("camera", 8_000, 10_000)]);
  const [first, second] = tl.tracks.camera;
  assert.equal(segmentAt(tl.tracks.camera, 7_999)?.id, first.id);
  assert.equal(segmentAt(tl.tracks.camera, 9_000)?.id, second.id);
  assert.deepEqual(gapsOf(tl.tracks.camera, tl.duration), []);
});

test("a time maps to an offset into its segment's file, clamped to the file", () => {
  const seg = sessionTimeline(all).tracks.camera[2]; // 340 s → 440 s
  assert.equal(segmentOffset(seg, 340_000), 0);
  assert.equal(segmentOffset(seg, 352_500), 12_500);
  assert.equal(segmentOffset(seg, 440_000), 100_000);
  assert.equal(segmentOffset(seg, 500_000), 100_000);
  assert.equal(segmentOffset(seg, 0), 0);
});

test("coverage says what a player shows: the segment, or before / gap / after / none", () => {
  const tl = sessionTimeline(all);
  const cam = tl.tracks.camera;
  const before = coverageAt(cam, 1_000);
  assert.equal(before.state, "before");
  assert.equal(before.next?.id, camA.id);
  const playing = coverageAt(cam, 65_000);
  assert.equal(playing.state, "playing");
  assert.equal(playing.segment?.id, camA.id);
  assert.equal(playing.offset, 60_000);
  assert.equal(playing.next?.id, camB.id);
  const gap = coverageAt(cam, 330_000);
  assert.equal(gap.state, "gap");
  assert.equal(gap.segment, null);
  assert.equal(gap.next?.id, camC.id);
  const screenAfter = coverageAt(tl.tracks.screen, 200_000);
  assert.equal(screenAfter.state, "after");
  assert.equal(screenAfter.next, null);
  assert.equal(coverageAt([], 5).state, "none");
});

test("gaps: before the first segment, between segments, after the last", () => {
  const tl = sessionTimeline(all);
  assert.deepEqual(gapsOf(tl.tracks.camera, tl.duration), [
    { start: 0, end: 5_000 },
    { start: 310_000, end: 340_000 },
  ]);
  assert.deepEqual(gapsOf(tl.tracks.screen, tl.duration), [{ start: 120_000, end: 440_000 }]);
  assert.deepEqual(gapsOf(tl.tracks["phone-camera"], tl.duration), [
    { start: 0, end: 60_000 },
    { start: 400_000, end: 440_000 },
  ]);
  assert.deepEqual(gapsOf([], 1000), [{ start: 0, end: 1000 }]);
  assert.deepEqual(gapsOf([], 0), []);
});

test("an event seeks a couple of seconds before it, within the timeline", () => {
  const tl = sessionTimeline(all);
  assert.equal(SEEK_LEAD_MS, 2_000);
  assert.equal(eventSeekTime(at(100_000), tl), 98_000);
  assert.equal(eventSeekTime("2026-03-01T09:01:40.123456Z", tl), 98_123);
  assert.equal(eventSeekTime(at(1_000), tl), 0, "before the recordings started plus the lead: 0");
  assert.equal(eventSeekTime(at(-60_000), tl), 0);
  assert.equal(eventSeekTime(at(900_000), tl), 440_000, "after the recordings: their end");
  assert.equal(eventSeekTime(at(100_000), tl, 5_000), 95_000);
  assert.equal(eventSeekTime("not a time", tl), 0);
  assert.equal(eventTime(at(-3_000), tl), -3_000);
  // Each player then shows its own segment at that time: the camera 93 s into its first file.
  const c = coverageAt(tl.tracks.camera, eventSeekTime(at(100_000), tl));
  assert.equal(c.segment?.id, camA.id);
  assert.equal(c.offset, 93_000);
  assert.equal(coverageAt(tl.tracks.screen, 98_000).offset, 98_000);
  assert.equal(coverageAt(tl.tracks["phone-camera"], 98_000).offset, 38_000);
});

test("clamping a time to the timeline", () => {
  assert.equal(clampTime(-5, 100), 0);
  assert.equal(clampTime(50, 100), 50);
  assert.equal(clampTime(150, 100), 100);
  assert.equal(clampTime(NaN, 100), 0);
  assert.equal(clampTime(10, -1), 0);
});

test("the shared clock runs at the playback rate and stops at the end", () => {
  assert.equal(clockPosition(10_000, 1_000, 3_000, 1, 60_000), 12_000);
  assert.equal(clockPosition(10_000, 1_000, 3_000, 4, 60_000), 18_000);
  assert.equal(clockPosition(10_000, 1_000, 3_000, 1.5, 60_000), 13_000);
  assert.equal(clockPosition(59_000, 0, 10_000, 2, 60_000), 60_000);
  assert.equal(clockPosition(10_000, 5_000, 4_000, 1, 60_000), 10_000, "a wall clock behind the anchor does not run backwards");
  assert.deepEqual(RATES, [1, 1.5, 2, 3, 4]);
});

test("small drift is left alone; larger drift (more at higher rates) is put back", () => {
  assert.equal(needsResync(10_000, 10_300, 1), false);
  assert.equal(needsResync(10_000, 11_000, 1), true);
  assert.equal(needsResync(10_000, 11_000, 4), false);
  assert.equal(needsResync(10_000, 12_000, 4), true);
  assert.equal(needsResync(12_000, 10_000, 1), true, "ahead counts as much as behind");
});

test("positions read as m:ss, or h:mm:ss past the hour", () => {
  assert.equal(formatOffset(0), "0:00");
  assert.equal(formatOffset(9_999), "0:09");
  assert.equal(formatOffset(249_000), "4:09");
  assert.equal(formatOffset(3_909_000), "1:05:09");
  assert.equal(formatOffset(-5), "0:00");
  assert.equal(formatOffset(NaN), "0:00");
});

test("the wanted segments: the one playing and the next on every track", () => {
  const tl = sessionTimeline(all);
  assert.deepEqual([...wantedSegments(tl, 100_000)].sort(), [camA.id, camB.id, screen.id, mic.id, phone.id].sort());
  assert.deepEqual([...wantedSegments(tl, 320_000)].sort(), [camC.id, mic.id, phone.id].sort());
});

/** A cache over a fake download: `pending` holds the downloads not answered yet. */
function fakeCache(capacity) {
  const released = [];
  const pending = new Map();
  const loads = [];
  const cache = new SegmentCache({
    capacity,
    release: (url) => released.push(url),
    load: (id, signal) =>
      new Promise((resolve, reject) => {
        loads.push(id);
        pending.set(id, { resolve: () => resolve(`blob:${id}`), reject, signal });
      }),
  });
  return { cache, released, pending, loads };
}

test("the cache downloads a segment once and revokes the least recently used beyond its capacity", async () => {
  const { cache, released, pending, loads } = fakeCache(2);
  const a = cache.get("a");
  assert.equal(cache.get("a"), a, "a second ask shares the download");
  pending.get("a").resolve();
  assert.equal(await a, "blob:a");
  cache.get("b");
  pending.get("b").resolve();
  cache.get("c");
  pending.get("c").resolve();
  await cache.get("c");
  cache.get("a"); // used again: now b is the oldest
  cache.trim(new Set());
  await Promise.resolve();
  await Promise.resolve();
  assert.deepEqual(released, ["blob:b"]);
  assert.deepEqual(loads, ["a", "b", "c"]);
  assert.ok(cache.has("a") && cache.has("c") && !cache.has("b"));
});

test("the cache never evicts a wanted segment, aborts an evicted download and revokes its URL", async () => {
  const { cache, released, pending } = fakeCache(1);
  cache.get("x");
  cache.get("y");
  cache.trim(new Set(["x", "y"]));
  assert.ok(cache.has("x") && cache.has("y"), "both wanted: over capacity is allowed");
  cache.trim(new Set(["y"]));
  assert.ok(!cache.has("x"));
  assert.equal(pending.get("x").signal.aborted, true);
  pending.get("x").resolve(); // a download that finished anyway
  await new Promise((r) => setTimeout(r, 0));
  assert.deepEqual(released, ["blob:x"]);
});

test("a failed download is forgotten (tried again on the next ask); clear revokes everything", async () => {
  const { cache, released, pending, loads } = fakeCache(8);
  const failed = cache.get("f");
  pending.get("f").reject(new Error("503"));
  await assert.rejects(failed);
  await Promise.resolve();
  assert.equal(cache.has("f"), false);
  cache.get("f");
  assert.deepEqual(loads, ["f", "f"]);
  pending.get("f").resolve();
  await cache.get("f");
  cache.get("g");
  pending.get("g").resolve();
  await cache.get("g");
  cache.clear();
  await new Promise((r) => setTimeout(r, 0));
  assert.deepEqual(released.sort(), ["blob:f", "blob:g"]);
  assert.equal(cache.entries.size, 0);
});

/** A logged-in staff client over a fake hub: `answer(url, init)` gives each response. */
async function staffClient(answer) {
  const { HubClient } = await import("../hub-client.js");
  const { FakeStorage } = await import("./fakes.mjs");
  const calls = [];
  const fetch = async (url, init = {}) => {
    calls.push({ url, auth: init.headers?.authorization, signal: init.signal });
    if (url.endsWith("/auth/refresh")) {
      return new Response(JSON.stringify({ accessToken: "access-2", refreshToken: "refresh-2", expiresIn: 900, user: { id: "p", email: "p@x", name: "P", role: "PROCTOR" } }), { status: 200 });
    }
    return answer(url, init, calls.length);
  };
  const client = new HubClient({ baseUrl: "http://hub.test", storage: new FakeStorage(), fetch });
  client.setTokens({ accessToken: "access-1", refreshToken: "refresh-1", expiresIn: 900, user: { id: "p", email: "p@x", name: "P", role: "PROCTOR" } });
  return { client, calls };
}

test("a segment is downloaded with the bearer token; a 401 refreshes and tries once more", async () => {
  const { recordingBlob } = await import("../staff-api.js");
  const { client, calls } = await staffClient((url, init) =>
    init.headers.authorization === "Bearer access-1"
      ? new Response(JSON.stringify({ error: { code: "UNAUTHENTICATED", message: "expired" } }), { status: 401 })
      : new Response(new Uint8Array([0x1a, 0x45, 0xdf, 0xa3]), { status: 200, headers: { "content-type": "video/webm" } }),
  );
  const signal = new AbortController().signal;
  const blob = await recordingBlob(client, "s 1", "r/1", signal);
  assert.equal(blob.type, "video/webm");
  assert.equal(blob.size, 4);
  assert.deepEqual(
    calls.map((c) => [c.url, c.auth]),
    [
      ["http://hub.test/api/v1/sessions/s%201/recordings/r%2F1", "Bearer access-1"],
      ["http://hub.test/api/v1/auth/refresh", undefined],
      ["http://hub.test/api/v1/sessions/s%201/recordings/r%2F1", "Bearer access-2"],
    ],
  );
  assert.equal(calls[0].signal, signal);
  client.clearTokens();
});

test("a refused download is an ApiError with the hub's code; the list is the items", async () => {
  const { recordingBlob, sessionRecordings } = await import("../staff-api.js");
  const { ApiError } = await import("../hub-client.js");
  const { client, calls } = await staffClient((url) =>
    url.endsWith("/recordings")
      ? new Response(JSON.stringify({ items: [rec("camera", 0, 1000)] }), { status: 200 })
      : new Response(JSON.stringify({ error: { code: "NOT_FOUND", message: "no such recording" } }), { status: 404 }),
  );
  await assert.rejects(recordingBlob(client, "s1", "gone"), (e) => e instanceof ApiError && e.status === 404 && e.code === "NOT_FOUND");
  const items = await sessionRecordings(client, "s1");
  assert.equal(items.length, 1);
  assert.equal(items[0].source, "camera");
  assert.equal(calls.at(-1).url, "http://hub.test/api/v1/sessions/s1/recordings");
  client.clearTokens();
});
