// The users page's privacy actions, without a browser: the export's file name and download
// (with the bearer token, a refresh on 401, the hub's error), how an erased user is told
// apart, what the erase dialog accepts, and what an erasure did in words.
import { test } from "node:test";
import assert from "node:assert/strict";
import { eraseBody, erasureRows, exportFileName, isErased, REASON_MAX } from "../admin-privacy-rules.js";
import { eraseUser, userExport } from "../admin-api.js";
import { describeError } from "../admin-form.js";
import { FieldError } from "../staff-dialogs.js";
import { ApiError } from "../hub-client.js";

const ID = "0190f3a2-1b2c-7d3e-8f40-123456789abc";

/** @returns {FieldError} what `fn` threw */
function refused(/** @type {() => unknown} */ fn) {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof FieldError, `a FieldError, got ${e}`);
    return e;
  }
  assert.fail("expected a refusal");
}

test("the export is saved as proctor-hub-export-<id>.json", () => {
  assert.equal(exportFileName(ID), `proctor-hub-export-${ID}.json`);
  assert.equal(exportFileName("../x y"), "proctor-hub-export-.._x_y.json");
});

test("an erased user is told apart by the hub's pseudonymous address", () => {
  assert.equal(isErased({ email: `erased-${ID}@erased.invalid` }), true);
  assert.equal(isErased({ email: "ann@example.test" }), false);
  assert.equal(isErased({ email: "erased-ann@example.test" }), false);
});

test("erasing needs a reason and the user's email typed again", () => {
  const email = "Ann.Lee@Example.test";
  let e = refused(() => eraseBody({ reason: "  ", confirmEmail: email }, email));
  assert.equal(e.field, "reason");
  e = refused(() => eraseBody({ reason: "x".repeat(REASON_MAX + 1), confirmEmail: email }, email));
  assert.equal(e.field, "reason");
  assert.match(e.message, /at most 2000/);
  e = refused(() => eraseBody({ reason: "GDPR request #118", confirmEmail: "" }, email));
  assert.equal(e.field, "confirmEmail");
  assert.match(e.message, /Ann\.Lee@Example\.test/);
  e = refused(() => eraseBody({ reason: "GDPR request #118", confirmEmail: "ben@example.test" }, email));
  assert.equal(e.field, "confirmEmail");
  assert.match(e.message, /not this user's email/);
  // Any case, spaces around: the same address.
  assert.deepEqual(eraseBody({ reason: "  GDPR request #118 ", confirmEmail: " ann.lee@example.TEST " }, email), {
    reason: "GDPR request #118",
  });
});

test("what an erasure did, row by row", () => {
  const rows = erasureRows({
    userId: ID,
    sessions: 2,
    answers: 7,
    events: 40,
    artifacts: 3,
    recordings: 12,
    logins: 1,
    auditRows: 9,
    erasedAt: "2026-05-01T10:00:00Z",
  });
  assert.deepEqual(
    rows.map(([, n]) => n),
    [2, 7, 40, 3, 12, 1, 9],
  );
  assert.match(rows[0][0], /Sessions kept/);
  assert.match(rows[1][0], /Answers whose contents were removed/);
});

test("the hub's refusals, worded for an admin", () => {
  const text = (/** @type {number} */ status, /** @type {string} */ code) => describeError(new ApiError(status, code, "x")).text;
  assert.match(text(409, "LEGAL_HOLD"), /under review.*Decide the review first/);
  assert.match(text(409, "SESSION_ACTIVE"), /exam in progress/);
  assert.match(text(409, "ALREADY_ERASED"), /already erased/);
  assert.match(text(403, "CANNOT_ERASE_SELF"), /another administrator/);
});

/** A client whose fetch answers from a script, as HubClient's fields are used by userExport. */
function fakeClient(/** @type {((url: string, init: any) => Response)[]} */ answers) {
  const seen = /** @type {{url: string, auth: string}[]} */ ([]);
  let token = "t1";
  const client = {
    baseUrl: "http://hub.test",
    auth: { accessToken: token },
    refreshed: 0,
    accessToken: async () => token,
    refresh: async () => {
      client.refreshed += 1;
      token = "t2";
    },
    fetchImpl: async (/** @type {string} */ url, /** @type {any} */ init) => {
      seen.push({ url, auth: init.headers.authorization });
      const next = answers.shift();
      if (!next) throw new Error("no more answers");
      return next(url, init);
    },
    api: async (/** @type {string} */ m, /** @type {string} */ p, /** @type {unknown} */ b) => ({ m, p, b }),
  };
  return { client: /** @type {any} */ (client), seen };
}

test("the export is downloaded with the bearer token, refreshed once on 401", async () => {
  const doc = JSON.stringify({ format: "proctor-hub-export/1", user: { id: ID } });
  const { client, seen } = fakeClient([
    () => new Response(JSON.stringify({ error: { code: "TOKEN_EXPIRED", message: "expired" } }), { status: 401 }),
    () => new Response(doc, { status: 200, headers: { "content-type": "application/json" } }),
  ]);
  const blob = await userExport(client, ID);
  assert.equal(await blob.text(), doc);
  assert.equal(client.refreshed, 1);
  assert.deepEqual(seen, [
    { url: `http://hub.test/api/v1/users/${ID}/export`, auth: "Bearer t1" },
    { url: `http://hub.test/api/v1/users/${ID}/export`, auth: "Bearer t2" },
  ]);
});

test("an export the hub refuses is an ApiError with its code", async () => {
  const { client } = fakeClient([
    () => new Response(JSON.stringify({ error: { code: "NOT_FOUND", message: "user not found" } }), { status: 404 }),
  ]);
  await assert.rejects(userExport(client, ID), (e) => e instanceof ApiError && e.status === 404 && e.code === "NOT_FOUND");
  const offline = fakeClient([]);
  await assert.rejects(userExport(offline.client, ID), (e) => e instanceof ApiError && e.status === 0);
});

test("erasing posts the reason", async () => {
  const { client } = fakeClient([]);
  assert.deepEqual(await eraseUser(client, ID, "GDPR request #118"), {
    m: "POST",
    p: `/users/${ID}/erase`,
    b: { reason: "GDPR request #118" },
  });
});
