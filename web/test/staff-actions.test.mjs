// What the staff forms accept before anything is sent: the action dialogs (a reason always,
// whole minutes 1–600 for EXTEND_TIME, as the hub checks) and the review page's grading rules,
// and how the review page reads the current grades back from the audit log.
import { test } from "node:test";
import assert from "node:assert/strict";
import { actionBody, actionText, ACTION_ORDER, ACTIONS } from "../staff-actions.js";
import { gradesOf, mcqVerdict, parsePoints, answered } from "../staff-review.js";
import { FieldError } from "../staff-dialogs.js";
import { query } from "../staff-api.js";

/** @returns {FieldError} what `fn` threw */
function refused(fn) {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof FieldError, `a FieldError, got ${e}`);
    return e;
  }
  assert.fail("expected a refusal");
}

test("every action needs a reason; it is trimmed", () => {
  for (const type of ACTION_ORDER) {
    const e = refused(() => actionBody(type, { reason: "   ", minutes: "5" }));
    assert.equal(e.field, "reason");
  }
  assert.match(refused(() => actionBody("WARN", { reason: "" })).message, /message to the candidate/);
  assert.deepEqual(actionBody("WARN", { reason: "  Eyes on your own screen, please. " }), {
    actionType: "WARN",
    reason: "Eyes on your own screen, please.",
  });
  assert.deepEqual(actionBody("TERMINATE", { reason: "second phone on the desk" }), { actionType: "TERMINATE", reason: "second phone on the desk" });
  assert.equal(refused(() => actionBody("UNPAIR_MOBILE", { reason: "x".repeat(2001) })).field, "reason");
});

test("extending time takes whole minutes from 1 to 600, sent as payload.minutes", () => {
  assert.deepEqual(actionBody("EXTEND_TIME", { reason: "network outage", minutes: " 5 " }), {
    actionType: "EXTEND_TIME",
    reason: "network outage",
    payload: { minutes: 5 },
  });
  assert.deepEqual(actionBody("EXTEND_TIME", { reason: "r", minutes: "600" }).payload, { minutes: 600 });
  for (const bad of ["", "0", "601", "2.5", "-3", "five", "1e2"]) {
    assert.equal(refused(() => actionBody("EXTEND_TIME", { reason: "r", minutes: bad })).field, "minutes", `minutes ${JSON.stringify(bad)}`);
  }
  // Other actions carry no payload even if a minutes value is around.
  assert.equal(actionBody("WARN", { reason: "r", minutes: "5" }).payload, undefined);
});

test("terminate is the one destructive action, and comes last", () => {
  assert.deepEqual(ACTION_ORDER.filter((t) => ACTIONS[t].danger), ["TERMINATE"]);
  assert.equal(ACTION_ORDER.at(-1), "TERMINATE");
  assert.ok(ACTION_ORDER.every((t) => ACTIONS[t].button.endsWith("…")), "every button opens a dialog");
});

test("the action log reads like sentences", () => {
  const a = (actionType, payload = null) => ({ id: "1", sessionId: "s", actorId: null, actionType, reason: "", payload, createdAt: "" });
  assert.equal(actionText(a("EXTEND_TIME", { minutes: 5 })), "Time extended by 5 min");
  assert.equal(actionText(a("REVIEW", { decision: "APPROVED" })), "Reviewed: approved");
  assert.equal(actionText(a("AUTO_TERMINATE")), "Terminated automatically");
  assert.equal(actionText(a("SOMETHING_NEW")), "SOMETHING_NEW");
});

test("the grades shown are the ones the hub returns with the session", () => {
  const session = {
    grades: {
      q1: { points: 4.5, gradedAt: "2026-12-07T10:00:00Z", gradedBy: "admin" },
      q2: { points: 0, gradedAt: "2026-12-07T10:00:00Z", gradedBy: null },
    },
  };
  const g = gradesOf(/** @type {any} */ (session));
  assert.deepEqual([...g.entries()].sort(), [["q1", 4.5], ["q2", 0]]);
  assert.equal(gradesOf(/** @type {any} */ ({})).size, 0, "a candidate's view has none");
});

test("MCQ: full points only for the exact set of correct options", () => {
  assert.deepEqual(mcqVerdict(["a", "c"], ["c", "a"], 4), { verdict: "correct", points: 4 });
  assert.deepEqual(mcqVerdict(["a"], ["a", "c"], 4), { verdict: "incorrect", points: 0 }, "a subset is not enough");
  assert.deepEqual(mcqVerdict(["a", "b", "c"], ["a", "c"], 4), { verdict: "incorrect", points: 0 }, "a superset neither");
  assert.deepEqual(mcqVerdict([], ["a"], 4), { verdict: "unanswered", points: 0 });
  assert.deepEqual(mcqVerdict(undefined, ["a"], 4), { verdict: "unanswered", points: 0 });
  assert.deepEqual(mcqVerdict(["a"], undefined, 4), { verdict: "unknown", points: null });
});

test("grades: empty means not graded; 0..max; an unanswered question only 0", () => {
  assert.equal(parsePoints("", 10, true, "g"), null);
  assert.equal(parsePoints(" 7 ", 10, true, "g"), 7);
  assert.equal(parsePoints("2,5", 10, true, "g"), 2.5, "a decimal comma is read as a point");
  assert.equal(parsePoints("10", 10, true, "g"), 10);
  assert.equal(parsePoints("0", 10, false, "g"), 0);
  for (const bad of ["-1", "10.5", "abc", "Infinity"]) assert.equal(refused(() => parsePoints(bad, 10, true, "g1")).field, "g1");
  assert.match(refused(() => parsePoints("3", 10, false, "g2")).message, /unanswered/);
});

test("an answer counts as given only with content", () => {
  assert.equal(answered(undefined), false);
  assert.equal(answered({ selected: [] }), false);
  assert.equal(answered({ selected: ["a"] }), true);
  assert.equal(answered({ language: "rust", code: "  \n" }), false);
  assert.equal(answered({ language: "rust", code: "fn main() {}" }), true);
  assert.equal(answered({ text: "An answer." }), true);
});

test("query strings leave out what is not set", () => {
  assert.equal(query({ ended: true, reviewDecision: "PENDING", limit: 20, cursor: null }), "?ended=true&reviewDecision=PENDING&limit=20");
  assert.equal(query({ cursor: undefined, since: "" }), "");
  assert.equal(query({ until: "2026-01-01T00:00:00.000Z" }), "?until=2026-01-01T00%3A00%3A00.000Z");
});
