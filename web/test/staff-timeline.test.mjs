// The event timeline's pager: newest first over an API that only lists oldest first, by
// walking back with since/until windows. Checked against a fake store with the API's exact
// semantics (order by (timestamp, id), since inclusive, until exclusive, limit + cursor).
import { test } from "node:test";
import assert from "node:assert/strict";
import { EventPager, timeKey, newestFirst, allPages } from "../staff-timeline.js";

const T0 = Date.parse("2026-03-01T09:00:00Z");

/**
 * A session's events as the hub stores them. `fetch` answers like GET /sessions/{id}/events.
 * Timestamps carry microseconds, as Postgres returns them.
 */
function store(events) {
  const sorted = [...events].sort((a, b) => (timeKey(a.timestamp) < timeKey(b.timestamp) ? -1 : timeKey(a.timestamp) > timeKey(b.timestamp) ? 1 : a.id < b.id ? -1 : 1));
  const s = { requests: [] };
  s.fetch = async (q) => {
    s.requests.push(q);
    assert.ok(q.limit >= 1 && q.limit <= 500, "limit within the API's range");
    let rows = sorted.filter((e) => (q.since == null || timeKey(e.timestamp) >= timeKey(q.since)) && timeKey(e.timestamp) < timeKey(q.until));
    const start = q.cursor ? Number(q.cursor) : 0;
    const page = rows.slice(start, start + q.limit);
    return { items: page, nextCursor: start + q.limit < rows.length ? String(start + q.limit) : null };
  };
  return s;
}

/** An event at `ms` after T0, with a microsecond part. */
let n = 0;
function ev(ms, micros = 0, type = "TAB_HIDDEN") {
  n += 1;
  const d = new Date(T0 + ms).toISOString().replace("Z", `${String(micros).padStart(3, "0")}Z`);
  return { id: `id-${String(n).padStart(5, "0")}`, eventId: `ev-${n}`, eventType: type, severity: 3, timestamp: d, source: "LAPTOP" };
}

async function drain(pager) {
  const pages = [];
  for (let i = 0; i < 200 && !pager.done; i++) pages.push(await pager.loadOlder());
  return pages;
}

test("timestamps order by their full precision", () => {
  assert.ok(timeKey("2026-03-01T09:00:58.9Z") > timeKey("2026-03-01T09:00:58.12Z"));
  assert.ok(timeKey("2026-03-01T09:00:58.928364Z") > timeKey("2026-03-01T09:00:58.928363Z"));
  assert.ok(timeKey("2026-03-01T09:01:00Z") > timeKey("2026-03-01T09:00:59.999999Z"));
  assert.equal(newestFirst({ timestamp: "2026-03-01T09:00:01Z" }, { timestamp: "2026-03-01T09:00:00Z" }), -1);
});

test("a quiet session: every event once, newest first, a page at a time", async () => {
  const events = Array.from({ length: 23 }, (_, i) => ev(i * 97_000, i));
  const s = store(events);
  const pager = new EventPager({ fetch: s.fetch, startedAt: T0, now: () => T0 + 40 * 60_000, pageSize: 10 });
  const first = await pager.loadOlder();
  assert.equal(first.length, 10);
  assert.equal(first[0].eventId, events[22].eventId, "the newest comes first");
  const pages = [first, ...(await drain(pager))];
  assert.deepEqual(pages.map((p) => p.length).filter(Boolean), [10, 10, 3]);
  assert.deepEqual(pager.items.map((e) => e.eventId), [...events].reverse().map((e) => e.eventId));
  assert.equal(pager.done, true);
  assert.deepEqual(await pager.loadOlder(), [], "nothing after the end");
  assert.ok(s.requests.length <= 12, `few requests (${s.requests.length})`);
  // The last request reached back past the session's start with no lower bound.
  assert.equal(s.requests.at(-1).since, undefined);
});

test("a burst larger than one request narrows the window; same-millisecond events are not lost", async () => {
  const events = [
    ev(0),
    // 700 events within 3 seconds, several sharing a millisecond (they differ in microseconds)
    ...Array.from({ length: 700 }, (_, i) => ev(5 * 60_000 + Math.floor(i / 3) * 13, i % 3)),
    ev(20 * 60_000),
    // a client clock skew: timestamped 2 h before the session started
    ev(-2 * 3600_000),
  ];
  const s = store(events);
  const pager = new EventPager({ fetch: s.fetch, startedAt: T0, now: () => T0 + 30 * 60_000, pageSize: 50 });
  const pages = await drain(pager);
  assert.ok(pages.every((p) => p.length <= 50));
  const ids = pager.items.map((e) => e.eventId);
  assert.equal(new Set(ids).size, ids.length, "no duplicates");
  assert.equal(ids.length, events.length, "nothing lost");
  const sorted = [...events].sort((a, b) => -newestFirst(a, b) || (a.id < b.id ? 1 : -1)).map((e) => e.eventId);
  for (let i = 1; i < pager.items.length; i++) {
    assert.ok(newestFirst(pager.items[i - 1], pager.items[i]) <= 0, `newest first at ${i}`);
  }
  assert.deepEqual(new Set(ids), new Set(sorted));
  // Never a request with more than 500 asked for; the crowded window was narrowed, not paged whole.
  assert.ok(s.requests.every((q) => q.limit === 500));
});

test("live events go on top, once; a stored copy is not shown twice", async () => {
  const events = [ev(1_000), ev(2_000)];
  const s = store(events);
  const pager = new EventPager({ fetch: s.fetch, startedAt: T0, now: () => T0 + 60_000, pageSize: 10 });
  await pager.loadOlder();
  const live = { eventId: "live-1", eventType: "COPY_PASTE", severity: 4, timestamp: new Date(T0 + 70_000).toISOString() };
  assert.equal(pager.addLive(live), true);
  assert.equal(pager.addLive(live), false, "the same update twice (a liveness change repeats lastEvent)");
  assert.equal(pager.addLive({ ...events[1] }), false, "already loaded");
  assert.deepEqual(pager.items.map((e) => e.eventId), ["live-1", events[1].eventId, events[0].eventId]);
  assert.equal(pager.items[0].live, true);
  // An update that is older than the newest shown goes in its place.
  pager.addLive({ eventId: "live-0", eventType: "X", severity: 1, timestamp: new Date(T0 + 1_500).toISOString() });
  assert.deepEqual(pager.items.map((e) => e.eventId), ["live-1", events[1].eventId, "live-0", events[0].eventId]);
});

test("an empty session ends after reaching back past its start", async () => {
  const s = store([]);
  const pager = new EventPager({ fetch: s.fetch, startedAt: T0, now: () => T0 + 5 * 60_000 });
  const pages = await drain(pager);
  assert.deepEqual(pages.flat(), []);
  assert.equal(pager.done, true);
  assert.ok(s.requests.length <= 8, `bounded (${s.requests.length} requests)`);
});

test("allPages follows cursors to the end", async () => {
  const pages = { null: { items: [1, 2], nextCursor: "a" }, a: { items: [3], nextCursor: "b" }, b: { items: [], nextCursor: null } };
  const seen = [];
  const all = await allPages(async (c) => (seen.push(c), pages[String(c)]));
  assert.deepEqual(all, [1, 2, 3]);
  assert.deepEqual(seen, [null, "a", "b"]);
});
