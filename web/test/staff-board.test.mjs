// The live grid's model: merging the REST list with the socket's snapshot and updates, and the
// grid's sort orders and filters.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as board from "../staff-board.js";
import { SessionBoard, sortEntries, matchesFilter, filterCounts, hasLostDevice, eventName, formatScore } from "../staff-board.js";

/** A socket view (snapshot entry or session-update). */
const view = (id, over = {}) => ({
  sessionId: id,
  status: "STARTED",
  violationScore: 0,
  liveness: { laptop: "ONLINE", mobile: "UNKNOWN" },
  ...over,
});
/** A `GET /exams/{id}/sessions` item. */
const listed = (id, name, over = {}) => ({
  id,
  candidate: { id: `c-${id}`, name, email: `${name.toLowerCase()}@x` },
  status: "STARTED",
  reviewDecision: "PENDING",
  violationScore: 0,
  liveness: { laptop: "UNKNOWN", mobile: "UNKNOWN" },
  startedAt: "2026-01-01T10:00:00Z",
  expiresAt: "2026-01-01T11:00:00Z",
  ...over,
});

function boardOf(entries) {
  const b = new SessionBoard();
  for (const [id, name, v] of entries) {
    b.applyListItem(listed(id, name));
    b.applyView(view(id, v));
  }
  return b;
}

test("flagged-first puts flagged sessions on top, then the highest score, then the name", () => {
  const b = boardOf([
    ["1", "Dana", { violationScore: 3 }],
    ["2", "carl", { violationScore: 12, flagged: true }],
    ["3", "Bea", { violationScore: 20, flagged: true }],
    ["4", "Abe", { violationScore: 3 }],
    ["5", "Eve", { violationScore: 9 }],
  ]);
  const names = (key) => sortEntries(b.list(), key).map((e) => e.name);
  assert.deepEqual(names("flagged"), ["Bea", "carl", "Eve", "Abe", "Dana"]);
  assert.deepEqual(names("score"), ["Bea", "carl", "Eve", "Abe", "Dana"]);
  // By name: case does not matter; equal names would fall back to the id (stable across renders).
  assert.deepEqual(names("name"), ["Abe", "Bea", "carl", "Dana", "Eve"]);
});

test("score order ignores the flag; ties break by name, and unnamed sessions sort last", () => {
  const b = boardOf([
    ["1", "Zed", { violationScore: 5, flagged: true }],
    ["2", "Amy", { violationScore: 7 }],
    ["3", "Bob", { violationScore: 5 }],
  ]);
  b.applyView(view("4", { violationScore: 5 })); // heard on the socket, name not loaded yet
  assert.deepEqual(
    sortEntries(b.list(), "score").map((e) => e.id),
    ["2", "3", "1", "4"],
  );
  assert.deepEqual(sortEntries(b.list(), "name").map((e) => e.id), ["2", "3", "1", "4"]);
  // sortEntries does not reorder its input.
  assert.deepEqual(b.list().map((e) => e.id), ["1", "2", "3", "4"]);
});

test("filters: flagged, lost device (only while running), ended", () => {
  const b = boardOf([
    ["ok", "Ok", {}],
    ["flag", "Flag", { flagged: true, violationScore: 11 }],
    ["lostLaptop", "LL", { liveness: { laptop: "LOST", mobile: "UNKNOWN" } }],
    ["lostPhone", "LP", { liveness: { laptop: "ONLINE", mobile: "LOST" } }],
    ["done", "Done", { status: "SUBMITTED", liveness: { laptop: "LOST", mobile: "LOST" } }],
    ["term", "Term", { status: "TERMINATED", flagged: true }],
  ]);
  const ids = (f) => b.list().filter((e) => matchesFilter(e, f)).map((e) => e.id);
  assert.deepEqual(ids("all"), ["ok", "flag", "lostLaptop", "lostPhone", "done", "term"]);
  assert.deepEqual(ids("flagged"), ["flag", "term"]);
  // A submitted session whose devices went quiet has not "lost" anything.
  assert.deepEqual(ids("lost"), ["lostLaptop", "lostPhone"]);
  assert.deepEqual(ids("ended"), ["done", "term"]);
  assert.deepEqual(filterCounts(b.list()), { all: 6, flagged: 2, lost: 2, ended: 2 });
  assert.equal(hasLostDevice(b.get("done")), false);
});

test("the socket wins over a REST list that arrives later; the list adds names and times", () => {
  const b = new SessionBoard();
  b.applyView(view("s1", { status: "TERMINATED", violationScore: 14, flagged: true, liveness: { laptop: "LOST", mobile: "ONLINE" } }));
  assert.deepEqual(b.unnamed(), ["s1"]);
  // The list was read before the termination: it must not roll the session back.
  b.applyListItem(listed("s1", "Alice", { status: "STARTED", violationScore: 2 }));
  const e = b.get("s1");
  assert.equal(e.name, "Alice");
  assert.equal(e.email, "alice@x");
  assert.equal(e.expiresAt, "2026-01-01T11:00:00Z");
  assert.equal(e.status, "TERMINATED");
  assert.equal(e.violationScore, 14);
  assert.deepEqual(e.liveness, { laptop: "LOST", mobile: "ONLINE" });
  assert.deepEqual(b.unnamed(), []);
  // A session only the list knows takes the list's status.
  b.applyListItem(listed("s2", "Bob", { status: "SUBMITTED", violationScore: 1.5 }));
  assert.equal(b.get("s2").status, "SUBMITTED");
  assert.equal(b.get("s2").violationScore, 1.5);
});

test("an update says what changed: a new session, a new flag, an ending", () => {
  const b = new SessionBoard();
  let c = b.applyView(view("s1", { violationScore: 4 }));
  assert.deepEqual([c.added, c.flaggedNow, c.endedNow], [true, false, false]);
  c = b.applyView(view("s1", { violationScore: 10, flagged: true, lastEvent: { eventId: "e1", eventType: "TAB_HIDDEN", severity: 5, timestamp: "2026-01-01T10:05:00Z" } }));
  assert.deepEqual([c.added, c.flaggedNow, c.endedNow], [false, true, false]);
  assert.equal(c.entry.lastEvent.eventId, "e1");
  // A liveness update without `flagged` or `lastEvent` keeps both.
  c = b.applyView(view("s1", { violationScore: 10, liveness: { laptop: "LOST", mobile: "UNKNOWN" } }));
  assert.equal(c.entry.flagged, true);
  assert.equal(c.entry.lastEvent.eventId, "e1");
  assert.equal(c.flaggedNow, false, "still flagged is not newly flagged");
  c = b.applyView(view("s1", { status: "TERMINATED", violationScore: 10 }));
  assert.equal(c.endedNow, true);
  c = b.applyView(view("s1", { status: "TERMINATED", violationScore: 10 }));
  assert.equal(c.endedNow, false, "an ending is reported once");
  // Entries are replaced, not mutated: an earlier change's entry is what it was.
  assert.equal(b.extend("s1", "2026-01-01T12:00:00Z").expiresAt, "2026-01-01T12:00:00Z");
  assert.equal(b.extend("nope", "2026-01-01T12:00:00Z"), undefined);
});

test("event names and scores read like words", () => {
  assert.equal(eventName("TAB_HIDDEN"), "Tab hidden");
  assert.equal(eventName("MOBILE_HEARTBEAT_LOST"), "Mobile heartbeat lost");
  assert.equal(eventName("X"), "X");
  assert.equal(formatScore(12), "12");
  assert.equal(formatScore(2.25), "2.3");
});

test("event details read as words, zero counters left out", () => {
  const { metaText } = board;
  assert.equal(metaText({ cut: 0, copy: 1, paste: 0, pastedChars: 0 }), "copy 1");
  assert.equal(metaText({ hiddenAfterMs: 1000 }), "hidden after ms 1000");
  assert.equal(metaText({ cause: "heartbeat store unreachable" }), "cause heartbeat store unreachable");
  assert.equal(metaText({ copy: 0 }), "copy 0", "all zero: shown as they are");
  assert.equal(metaText({ device: { id: "x" } }), 'device {"id":"x"}');
  assert.equal(metaText(undefined), "");
});
