// The autosave queue: versions, order, persistence across a reload, retries and their timing,
// and the two ways the hub stops it (409 SESSION_CLOSED, 4xx validation). Everything runs on a
// fake clock; the transport is a script the test controls.
import { test } from "node:test";
import assert from "node:assert/strict";
import { AnswerQueue, ApiError } from "../hub-client.js";
import { FakeClock, FakeStorage, settle } from "./fakes.mjs";

const SESSION = "11111111-1111-4111-8111-111111111111";

/**
 * A transport that records every call and answers from `script(call)`: a value to resolve,
 * an Error to reject, or undefined for "saved as sent".
 */
function recordingTransport(clock, script = () => undefined) {
  const calls = [];
  const transport = async (questionId, body) => {
    const call = { at: clock.now(), questionId, ...body };
    calls.push(call);
    const out = await script(call);
    if (out instanceof Error) throw out;
    return out ?? { version: body.version, savedAt: new Date(clock.now()).toISOString() };
  };
  return { calls, transport };
}

function makeQueue({ clock, storage = new FakeStorage(), transport, sendDelayMs = 400 }) {
  return new AnswerQueue({
    sessionId: SESSION,
    transport,
    storage,
    timers: clock,
    now: clock.now,
    random: () => 0, // the lowest jitter, so retry times are exact
    sendDelayMs,
  });
}

const offline = () => new ApiError(0, "NETWORK", "no network");

test("each edit takes the next version; only the newest is sent after the typing pause", async () => {
  const clock = new FakeClock();
  const { calls, transport } = recordingTransport(clock);
  const q = makeQueue({ clock, transport });
  assert.equal(q.edit("q1", { text: "a" }), 1);
  await clock.advance(100);
  assert.equal(q.edit("q1", { text: "ab" }), 2);
  await clock.advance(100);
  assert.equal(q.edit("q1", { text: "abc" }), 3);
  assert.equal(q.status("q1"), "queued");
  await clock.advance(399);
  assert.equal(calls.length, 0, "nothing is sent while typing");
  await clock.advance(1);
  assert.deepEqual(
    calls.map((c) => [c.questionId, c.version, c.response.text]),
    [["q1", 3, "abc"]],
  );
  assert.equal(calls[0].latencyMs, 400, "latencyMs is how long the version waited");
  assert.equal(q.status("q1"), "saved");
  assert.equal(q.summary().queued, 0);
});

test("an edit while its question is in flight is sent next with a higher version", async () => {
  const clock = new FakeClock();
  let release;
  const { calls, transport } = recordingTransport(clock, (c) =>
    c.version === 1 ? new Promise((r) => (release = r)) : undefined,
  );
  const q = makeQueue({ clock, transport, sendDelayMs: 0 });
  q.edit("q1", { text: "first" });
  await clock.advance(0);
  assert.equal(q.status("q1"), "saving");
  q.edit("q1", { text: "second" });
  assert.equal(q.get("q1").version, 2);
  release({ version: 1, savedAt: "x" });
  await clock.advance(0);
  assert.deepEqual(
    calls.map((c) => [c.version, c.response.text]),
    [[1, "first"], [2, "second"]],
  );
  assert.equal(q.status("q1"), "saved");
  assert.equal(q.get("q1").savedVersion, 2);
});

test("after an outage, questions flush in the order of their oldest unsaved edit, newest version each", async () => {
  const clock = new FakeClock();
  let down = true;
  const { calls, transport } = recordingTransport(clock, () => (down ? offline() : undefined));
  const q = makeQueue({ clock, transport, sendDelayMs: 0 });
  q.edit("q2", { text: "b1" });
  await clock.advance(0); // q2 fails: the queue is offline now
  q.edit("q1", { selected: ["o1"] });
  q.edit("q3", { language: "rust", code: "fn main() {}" });
  q.edit("q2", { text: "b2" });
  q.edit("q1", { selected: ["o1", "o2"] });
  assert.equal(q.status("q1"), "offline");
  assert.equal(q.summary().queued, 3);
  assert.equal(q.summary().offline, true);
  calls.length = 0;
  down = false;
  q.wake(); // the browser said `online`
  await clock.advance(0);
  assert.deepEqual(
    calls.map((c) => [c.questionId, c.version]),
    [["q2", 2], ["q1", 2], ["q3", 1]],
  );
  assert.deepEqual(calls[1].response, { selected: ["o1", "o2"] });
  assert.equal(q.summary().queued, 0);
  assert.equal(q.summary().offline, false);
});

test("a reload (a new queue on the same storage) keeps queued edits, their order and versions", async () => {
  const clock = new FakeClock();
  const storage = new FakeStorage();
  const dead = recordingTransport(clock, () => offline());
  const before = makeQueue({ clock, storage, transport: dead.transport, sendDelayMs: 0 });
  before.seed({ q1: { response: { text: "saved on the hub" }, version: 4 } });
  before.edit("q3", { text: "c" });
  before.edit("q1", { text: "typed offline" });
  await clock.advance(0);
  before.stop(); // the tab crashed

  const live = recordingTransport(clock);
  const after = makeQueue({ clock, storage, transport: live.transport, sendDelayMs: 0 });
  assert.deepEqual(after.get("q1").response, { text: "typed offline" }, "the page shows the local edit");
  assert.equal(after.status("q1"), "queued");
  // The resumed session still has version 4 of q1: the local version 5 must stay queued.
  after.seed({ q1: { response: { text: "saved on the hub" }, version: 4 } });
  await clock.advance(0);
  assert.deepEqual(
    live.calls.map((c) => [c.questionId, c.version, c.response.text]),
    [["q3", 1, "c"], ["q1", 5, "typed offline"]],
  );
  assert.equal(after.edit("q1", { text: "next" }), 6);
});

test("seeding takes the hub's answer when it is as new as the local one (its reply was lost)", async () => {
  const clock = new FakeClock();
  const storage = new FakeStorage();
  const dead = recordingTransport(clock, () => offline());
  const before = makeQueue({ clock, storage, transport: dead.transport, sendDelayMs: 0 });
  before.edit("q1", { text: "x" });
  await clock.advance(0);
  before.stop();
  const live = recordingTransport(clock);
  const after = makeQueue({ clock, storage, transport: live.transport, sendDelayMs: 0 });
  after.seed({ q1: { response: { text: "x" }, version: 1 } });
  await clock.advance(0);
  assert.equal(after.status("q1"), "saved");
  assert.equal(live.calls.length, 0, "nothing to resend");
});

test("no answer: offline, retried with doubling backoff until it goes through", async () => {
  const clock = new FakeClock();
  let failuresLeft = 4;
  const { calls, transport } = recordingTransport(clock, () => (failuresLeft-- > 0 ? offline() : undefined));
  const q = makeQueue({ clock, transport, sendDelayMs: 0 });
  const start = clock.now();
  q.edit("q1", { text: "a" });
  await clock.advance(60_000);
  // backoff 1 s base, random 0 → half of each step: 0.5, 1, 2, 4 s after each failure.
  assert.deepEqual(
    calls.map((c) => c.at - start),
    [0, 500, 1_500, 3_500, 7_500],
  );
  assert.equal(q.status("q1"), "saved");
  assert.equal(q.summary().offline, false);
});

test("backoff stops growing at its cap", async () => {
  const clock = new FakeClock();
  const { calls, transport } = recordingTransport(clock, () => offline());
  const q = makeQueue({ clock, transport, sendDelayMs: 0 });
  q.edit("q1", { text: "a" });
  await clock.advance(10 * 60_000);
  const gaps = calls.slice(1).map((c, i) => c.at - calls[i].at);
  assert.equal(Math.max(...gaps), 15_000, "30 s cap, half with the lowest jitter");
  assert.ok(gaps.slice(-5).every((g) => g === 15_000));
  assert.equal(q.status("q1"), "offline");
});

test("503 with Retry-After: retried exactly then, and the question shows queued, not offline", async () => {
  const clock = new FakeClock();
  let n = 0;
  const { calls, transport } = recordingTransport(clock, () =>
    n++ === 0 ? new ApiError(503, "STORE_UNAVAILABLE", "store down", 3) : undefined,
  );
  const q = makeQueue({ clock, transport, sendDelayMs: 0 });
  const start = clock.now();
  q.edit("q1", { text: "a" });
  await clock.advance(0);
  assert.equal(q.status("q1"), "queued");
  assert.equal(q.summary().retryAt, start + 3_000);
  await clock.advance(2_999);
  assert.equal(calls.length, 1, "not before Retry-After");
  await clock.advance(1);
  assert.equal(calls.length, 2);
  assert.equal(calls[1].version, 1, "the retry sends the same version");
  assert.equal(q.status("q1"), "saved");
});

test("409 SESSION_CLOSED stops the queue and reports what was not saved", async () => {
  const clock = new FakeClock();
  const { calls, transport } = recordingTransport(clock, () =>
    new ApiError(409, "SESSION_CLOSED", "the session has ended"),
  );
  const q = makeQueue({ clock, transport, sendDelayMs: 0 });
  const closed = [];
  q.on("closed", (d) => closed.push(d));
  q.edit("q1", { text: "a" });
  q.edit("q2", { text: "b" });
  await clock.advance(60_000);
  assert.equal(calls.length, 1, "one refusal is enough");
  assert.equal(closed.length, 1);
  assert.equal(closed[0].code, "SESSION_CLOSED");
  assert.deepEqual(closed[0].unsaved, ["q1", "q2"]);
  assert.equal(q.status("q1"), "error");
  assert.throws(() => q.edit("q1", { text: "late" }), /closed/);
  // A reload keeps knowing it: nothing is sent again.
  const again = makeQueue({ clock, storage: q.storage, transport, sendDelayMs: 0 });
  again.wake();
  await clock.advance(10_000);
  assert.equal(calls.length, 1);
});

test("a validation error marks that version, the others go on, a new edit retries", async () => {
  const clock = new FakeClock();
  const { calls, transport } = recordingTransport(clock, (c) =>
    c.questionId === "q1" && c.version === 1
      ? new ApiError(422, "VALIDATION_FAILED", "not an option of this question", null, "response.selected[0]")
      : undefined,
  );
  const q = makeQueue({ clock, transport, sendDelayMs: 0 });
  const errors = [];
  q.on("error", (e) => errors.push(e));
  q.edit("q1", { selected: ["nope"] });
  q.edit("q2", { text: "fine" });
  await clock.advance(0);
  assert.equal(q.status("q1"), "error");
  assert.equal(q.status("q2"), "saved");
  assert.deepEqual(errors.map((e) => [e.questionId, e.status, e.code]), [["q1", 422, "VALIDATION_FAILED"]]);
  await clock.advance(60_000);
  assert.equal(calls.filter((c) => c.questionId === "q1").length, 1, "the refused version is not retried");
  q.edit("q1", { selected: ["o1"] });
  await clock.advance(0);
  assert.equal(q.status("q1"), "saved");
  assert.deepEqual(calls.map((c) => [c.questionId, c.version]), [["q1", 1], ["q2", 1], ["q1", 2]]);
});

test("status events go queued → saving → saved, and the summary counts what is queued", async () => {
  const clock = new FakeClock();
  const { transport } = recordingTransport(clock);
  const q = makeQueue({ clock, transport });
  const statuses = [];
  const queued = [];
  q.on("status", (s) => statuses.push(`${s.questionId}:${s.status}`));
  q.on("change", (s) => queued.push(s.queued));
  q.edit("q1", { text: "a" });
  q.edit("q2", { text: "b" });
  await clock.advance(1_000);
  assert.deepEqual(statuses, ["q1:queued", "q2:queued", "q1:saving", "q1:saved", "q2:saving", "q2:saved"]);
  assert.equal(Math.max(...queued), 2);
  assert.equal(queued.at(-1), 0);
});

test("drain flushes at once and resolves true when everything is saved, false when it cannot be", async () => {
  const clock = new FakeClock();
  const { calls, transport } = recordingTransport(clock);
  const q = makeQueue({ clock, transport, sendDelayMs: 5_000 });
  q.edit("q1", { text: "a" });
  const drained = q.drain(1_000);
  await clock.advance(0);
  assert.equal(calls.length, 1, "drain skips the typing pause");
  assert.equal(await drained, true);

  const clock2 = new FakeClock();
  const dead = recordingTransport(clock2, () => offline());
  const q2 = makeQueue({ clock: clock2, transport: dead.transport });
  q2.edit("q1", { text: "a" });
  const timedOut = q2.drain(2_000);
  await clock2.advance(2_000);
  assert.equal(await timedOut, false);
});

test("a storage that refuses writes is reported, and the queue still saves from memory", async () => {
  const clock = new FakeClock();
  const storage = new FakeStorage();
  storage.setItem = () => {
    throw new Error("QuotaExceededError");
  };
  const { calls, transport } = recordingTransport(clock);
  const q = makeQueue({ clock, storage, transport, sendDelayMs: 0 });
  const errors = [];
  q.on("error", (e) => errors.push(e.code));
  q.edit("q1", { text: "a" });
  await settle();
  await clock.advance(0);
  assert.ok(errors.includes("STORAGE_FAILED"));
  assert.equal(calls.length, 1);
  assert.equal(q.status("q1"), "saved");
});
