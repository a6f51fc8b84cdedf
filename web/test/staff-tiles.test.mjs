// The grid's lazy subscriptions: a tile receives video only while on screen, and lets go of
// it a moment after it leaves, driven here by a fake IntersectionObserver and a fake clock.
import { test } from "node:test";
import assert from "node:assert/strict";
import { LazySubscriptions } from "../staff-tiles.js";
import { FakeClock } from "./fakes.mjs";

/** A scriptable IntersectionObserver: the test says which elements are on screen. */
function fakeObserver() {
  const o = { observed: new Set(), callback: null, disconnected: false };
  o.factory = (callback) => {
    o.callback = callback;
    return {
      observe: (el) => o.observed.add(el),
      unobserve: (el) => o.observed.delete(el),
      disconnect: () => {
        o.disconnected = true;
        o.observed.clear();
      },
    };
  };
  // Like the browser: entries only for observed elements.
  o.report = (els, visible) => o.callback(els.filter((el) => o.observed.has(el)).map((target) => ({ target, isIntersecting: visible })));
  return o;
}

/** Counts opens and closes per key. */
function recorder() {
  const r = { opened: [], closed: [], live: new Set() };
  r.open = (key) => {
    r.opened.push(key);
    r.live.add(key);
    return { close: () => (r.closed.push(key), r.live.delete(key)) };
  };
  return r;
}

function setup(n = 3) {
  const clock = new FakeClock();
  const obs = fakeObserver();
  const rec = recorder();
  const lazy = new LazySubscriptions({ open: rec.open, createObserver: obs.factory, closeDelayMs: 2_000, timers: clock });
  const els = Array.from({ length: n }, (_, i) => ({ name: `tile-${i}` }));
  els.forEach((el, i) => lazy.track(`s${i}`, el));
  return { clock, obs, rec, lazy, els };
}

test("a tile opens when it comes on screen, once, and not before", () => {
  const { obs, rec, lazy, els } = setup();
  assert.equal(obs.observed.size, 3);
  assert.deepEqual(rec.opened, [], "nothing opens before the observer reports");
  obs.report([els[0], els[2]], true);
  assert.deepEqual(rec.opened, ["s0", "s2"]);
  obs.report([els[0]], true); // reported again (a layout change)
  assert.deepEqual(rec.opened, ["s0", "s2"], "no second subscription for a tile already open");
  assert.deepEqual(lazy.openKeys().sort(), ["s0", "s2"]);
  assert.equal(lazy.isOpen("s1"), false);
});

test("a tile that leaves the screen closes after the delay; back in time, it stays open", async () => {
  const { clock, obs, rec, lazy, els } = setup();
  obs.report(els, true);
  obs.report([els[0], els[1]], false);
  await clock.advance(1_999);
  assert.deepEqual(rec.closed, [], "not closed before the delay");
  obs.report([els[1]], true); // scrolled back
  await clock.advance(1);
  assert.deepEqual(rec.closed, ["s0"]);
  await clock.advance(10_000);
  assert.deepEqual(rec.closed, ["s0"], "the tile that came back was never closed");
  assert.deepEqual(rec.opened, ["s0", "s1", "s2"], "…nor opened twice");
  assert.equal(lazy.isOpen("s0"), false);
  // Back on screen later: a new subscription.
  obs.report([els[0]], true);
  assert.deepEqual(rec.opened, ["s0", "s1", "s2", "s0"]);
});

test("untrack closes at once and forgets the element (an ended session)", async () => {
  const { clock, obs, rec, lazy, els } = setup();
  obs.report([els[1]], true);
  lazy.untrack("s1");
  assert.deepEqual(rec.closed, ["s1"]);
  assert.equal(obs.observed.has(els[1]), false);
  obs.callback([{ target: els[1], isIntersecting: true }]); // a late entry for the old element
  await clock.advance(5_000);
  assert.deepEqual(rec.opened, ["s1"], "a late entry does not reopen it");
  lazy.untrack("never-tracked"); // harmless
});

test("re-tracking a key with a new element observes the new one only", () => {
  const { obs, rec, lazy, els } = setup(1);
  const replacement = { name: "tile-0b" };
  lazy.track("s0", replacement);
  assert.equal(obs.observed.has(els[0]), false);
  assert.equal(obs.observed.has(replacement), true);
  obs.callback([{ target: els[0], isIntersecting: true }]);
  assert.deepEqual(rec.opened, []);
  obs.report([replacement], true);
  assert.deepEqual(rec.opened, ["s0"]);
});

test("50 candidates: only the tiles on screen receive, and scrolling moves the load", async () => {
  const { clock, obs, rec, lazy, els } = setup(50);
  obs.report(els.slice(0, 12), true);
  assert.equal(rec.live.size, 12);
  // Scroll down one screen: the first 12 leave, the next 12 come.
  obs.report(els.slice(0, 12), false);
  obs.report(els.slice(12, 24), true);
  assert.equal(rec.live.size, 24, "the ones that left stay open for the delay");
  await clock.advance(2_000);
  assert.deepEqual([...rec.live].sort(), els.slice(12, 24).map((_, i) => `s${i + 12}`).sort());
  assert.equal(rec.opened.length, 24);
  lazy.dispose();
  assert.equal(rec.live.size, 0);
  assert.equal(obs.disconnected, true);
});
