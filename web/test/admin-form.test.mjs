// The admin views' pure parts: local date-times to RFC 3339, the pasted email list, error
// reports from ApiErrors, the exam and question bodies, reordering, and the admin routes.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ApiError } from "../hub-client.js";
import { describeError, fromLocalInput, parseEmails, toLocalInput, unknownEmails } from "../admin-form.js";
import { examFields, examValues, newExamValues } from "../admin-exam-form.js";
import { draftOf, nextOptionId, questionFields, rubricOf } from "../admin-question-form.js";
import { reorder } from "../admin-questions.js";
import { extraMinutes } from "../admin-assignments.js";
import { adminPath } from "../view-admin.js";
import { query } from "../admin-api.js";

test("datetime-local values are local wall-clock time, sent as UTC RFC 3339", () => {
  const local = new Date(2026, 11, 7, 14, 5); // 7 Dec 2026 14:05 here, whatever the zone
  assert.equal(toLocalInput(local), "2026-12-07T14:05");
  assert.equal(fromLocalInput("2026-12-07T14:05"), local.toISOString());
  assert.match(/** @type {string} */ (fromLocalInput("2026-12-07T14:05")), /^\d{4}-\d\d-\d\dT\d\d:\d\d:00\.000Z$/);
  assert.equal(fromLocalInput(toLocalInput("2026-03-29T01:30:00Z")), new Date(toLocalInput("2026-03-29T01:30:00Z")).toISOString());
  for (const bad of ["", "tomorrow", "2026-12-07", "07/12/2026 14:05", "2026-13-45T99:99"]) {
    assert.equal(fromLocalInput(bad), null, bad);
  }
});

test("a pasted list gives each address once, whatever separates them", () => {
  const pasted = `alice@demo.proctor
  Bob@Demo.Proctor, carol@x.org;dave@y.org  erin@z.org
  "Frank Q" <frank@w.org>, mailto:gina@v.org

  ALICE@demo.proctor`;
  assert.deepEqual(parseEmails(pasted), [
    "alice@demo.proctor",
    "Bob@Demo.Proctor",
    "carol@x.org",
    "dave@y.org",
    "erin@z.org",
    "frank@w.org",
    "gina@v.org",
  ]);
  assert.deepEqual(parseEmails("  \n , ; "), []);
});

test("the hub's 422 on emails names the addresses to fix", () => {
  assert.deepEqual(unknownEmails("emails: not active candidates: nobody@x.y, zed@q.q"), ["nobody@x.y", "zed@q.q"]);
  assert.deepEqual(unknownEmails("emails: between 1 and 5000 emails"), []);
});

test("errors say what happened, with status, code and field beside", () => {
  const v = describeError(new ApiError(422, "VALIDATION_FAILED", "endsAt: must be after startsAt", null, "endsAt"));
  assert.equal(v.text, "Must be after startsAt.", "the field is named in the detail, not the sentence");
  assert.equal(v.detail, "HTTP 422 · VALIDATION_FAILED · field endsAt");
  assert.equal(v.field, "endsAt");
  const taken = describeError(new ApiError(409, "EMAIL_TAKEN", "email already registered"));
  assert.equal(taken.text, "An account with this email already exists.");
  assert.equal(taken.detail, "HTTP 409 · EMAIL_TAKEN");
  assert.match(describeError(new ApiError(409, "EXAM_NOT_DRAFT", "x")).text, /no longer a draft/);
  assert.match(describeError(new ApiError(0, "NETWORK", "The hub could not be reached")).text, /cannot be reached/);
  assert.equal(describeError(new Error("boom")).text, "boom");
});

test("the exam form checks the window and the duration before asking the hub", () => {
  const ok = examFields({
    title: "  Final  ",
    instructions: "Be calm",
    durationMinutes: "30",
    startsAt: "2026-12-07T09:00",
    endsAt: "2026-12-07T09:30",
    randomizeQuestions: true,
    recordMedia: false,
  });
  assert.ok("fields" in ok);
  assert.equal(ok.fields.title, "Final");
  assert.equal(ok.fields.durationMinutes, 30);
  assert.equal(ok.fields.startsAt, new Date(2026, 11, 7, 9, 0).toISOString());
  assert.equal(ok.fields.randomizeQuestions, true);
  assert.equal(ok.fields.recordMedia, false, "recording can be turned off");
  const base = { title: "T", instructions: "", durationMinutes: "30", startsAt: "2026-12-07T09:00", endsAt: "2026-12-07T10:00", randomizeQuestions: false, recordMedia: true };
  assert.equal(/** @type {any} */ (examFields(base)).fields.recordMedia, true);
  assert.equal(/** @type {any} */ (examFields({ ...base, title: " " })).field, "title");
  assert.equal(/** @type {any} */ (examFields({ ...base, durationMinutes: "0" })).field, "durationMinutes");
  assert.equal(/** @type {any} */ (examFields({ ...base, durationMinutes: "2.5" })).field, "durationMinutes");
  assert.equal(/** @type {any} */ (examFields({ ...base, startsAt: "" })).field, "startsAt");
  assert.equal(/** @type {any} */ (examFields({ ...base, endsAt: "2026-12-07T09:00" })).field, "endsAt");
  const fresh = newExamValues(new Date(2026, 11, 7, 9, 7).getTime());
  assert.equal(fresh.startsAt, "2026-12-07T09:15", "a new exam opens at the next quarter hour");
  assert.equal(fresh.endsAt, "2026-12-07T11:15");
  assert.equal(fresh.recordMedia, true, "a new exam records media unless the admin unticks it");
  const exam = { id: "e", title: "T", instructions: "", status: "DRAFT", durationMinutes: 30, startsAt: "2026-12-07T09:00:00Z", endsAt: "2026-12-07T10:00:00Z", randomizeQuestions: false };
  assert.equal(examValues(exam).recordMedia, true, "a hub that does not say: on (its default)");
  assert.equal(examValues({ ...exam, recordMedia: false }).recordMedia, false);
});

test("questions: MCQ options with the correct set, rubrics for the others", () => {
  const mcq = questionFields({
    type: "MCQ",
    prompt: " Which are `Copy`? ",
    points: "4",
    options: [
      { id: "a", text: "u32", correct: true },
      { id: "b", text: " String ", correct: false },
      { id: "c", text: "&str", correct: true },
    ],
    rubric: "ignored",
  });
  assert.deepEqual(mcq, {
    fields: {
      type: "MCQ",
      prompt: "Which are `Copy`?",
      points: 4,
      options: [{ id: "a", text: "u32" }, { id: "b", text: "String" }, { id: "c", text: "&str" }],
      answerKey: { correct: ["a", "c"] },
    },
  });
  const coding = questionFields({ type: "CODING", prompt: "Write median", points: "10", options: [], rubric: " sorts; handles empty " });
  assert.deepEqual(coding, { fields: { type: "CODING", prompt: "Write median", points: 10, options: [], answerKey: { rubric: "sorts; handles empty" } } });
  const essay = questionFields({ type: "SUBJECTIVE", prompt: "Explain", points: "5", options: [], rubric: "" });
  assert.deepEqual(essay, { fields: { type: "SUBJECTIVE", prompt: "Explain", points: 5, options: [], answerKey: null } });

  const bad = (/** @type {any} */ d) => /** @type {any} */ (questionFields({ type: "MCQ", prompt: "P", points: "1", options: [], rubric: "", ...d })).field;
  assert.equal(bad({ prompt: "  " }), "prompt");
  assert.equal(bad({ points: "-1" }), "points");
  assert.equal(bad({ points: "" }), "points");
  assert.equal(bad({ options: [{ id: "a", text: "x", correct: true }] }), "options");
  assert.equal(bad({ options: [{ id: "a", text: "x", correct: true }, { id: "b", text: " ", correct: false }] }), "options[1].text");
  assert.equal(bad({ options: [{ id: "a", text: "x", correct: false }, { id: "b", text: "y", correct: false }] }), "answerKey.correct");
});

test("an edited question starts from what the hub has", () => {
  const q = {
    id: "q1",
    examId: "e1",
    type: /** @type {const} */ ("MCQ"),
    prompt: "2+2?",
    options: [{ id: "a", text: "3" }, { id: "b", text: "4" }],
    answerKey: { correct: ["b"] },
    points: 2,
    orderIndex: 0,
  };
  assert.deepEqual(draftOf(q).options, [
    { id: "a", text: "3", correct: false },
    { id: "b", text: "4", correct: true },
  ]);
  assert.equal(rubricOf({ ...q, type: "CODING", answerKey: { rubric: "look for X" } }), "look for X");
  assert.equal(rubricOf({ ...q, type: "CODING", answerKey: null }), "");
  assert.equal(rubricOf({ ...q, type: "SUBJECTIVE", answerKey: { points: [1, 2] } }), '{"points":[1,2]}');
  assert.equal(nextOptionId(["a", "b", "d"]), "c");
  assert.equal(nextOptionId("abcdefghijklmnopqrstuvwxyz".split("")), "o27");
});

test("moving a question changes only the order indexes that differ", () => {
  const qs = ["q0", "q1", "q2", "q3"].map((id, i) => /** @type {any} */ ({ id, orderIndex: i }));
  const down = reorder(qs, 1, 2);
  assert.deepEqual(down.order.map((q) => q.id), ["q0", "q2", "q1", "q3"]);
  assert.deepEqual(down.changes, [{ id: "q2", orderIndex: 1 }, { id: "q1", orderIndex: 2 }]);
  // Gaps or ties left by deletions are closed up on the way.
  const gappy = [{ id: "a", orderIndex: 0 }, { id: "b", orderIndex: 5 }, { id: "c", orderIndex: 5 }].map((q) => /** @type {any} */ (q));
  assert.deepEqual(reorder(gappy, 2, 0).changes, [{ id: "c", orderIndex: 0 }, { id: "a", orderIndex: 1 }, { id: "b", orderIndex: 2 }]);
});

test("extra time, routes and query strings", () => {
  assert.equal(extraMinutes(""), null);
  assert.equal(extraMinutes(" 15 "), 15);
  assert.equal(extraMinutes("601"), undefined);
  assert.equal(extraMinutes("1.5"), undefined);
  assert.deepEqual(adminPath("#/admin"), []);
  assert.deepEqual(adminPath("#/admin/exam/3f2a%2Fx"), ["exam", "3f2a/x"]);
  assert.deepEqual(adminPath("#/admin/exams/new"), ["exams", "new"]);
  assert.equal(query({ role: "", q: "al ice", cursor: null, limit: 50 }), "?q=al+ice&limit=50");
  assert.equal(query({}), "");
});
