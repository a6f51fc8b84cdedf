// The Integrations pages' pure parts: endpoint status badges (active, failing, disabled by an
// admin or by the hub), the create form's checks and body, deliveries and attempts in words,
// and the webhook routes the pages call.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  EVENT_TYPES,
  PING_EVENT,
  attemptResult,
  deliveryState,
  deliverySummary,
  endpointBody,
  endpointStatus,
  endpointTitle,
  eventLabel,
  isSettled,
  matchesFilter,
  orderEvents,
  prettyJson,
  secretProblem,
  urlProblem,
  watchDelay,
} from "../admin-webhook-rules.js";
import {
  createWebhook,
  deleteWebhook,
  getDelivery,
  listDeliveries,
  listWebhooks,
  pingWebhook,
  redeliver,
  updateWebhook,
} from "../admin-api.js";
import { describeError } from "../admin-form.js";
import { adminPath } from "../view-admin.js";
import { ApiError } from "../hub-client.js";

/** A formatter that keeps the instant as it is, so the sentences are stable in any zone. */
const fmt = (/** @type {string} */ s) => `<${s}>`;

const ENDPOINT = {
  enabled: true,
  disabledReason: null,
  disabledAt: null,
  failingSince: null,
};

test("the six event types, in the hub's order", () => {
  assert.deepEqual(
    EVENT_TYPES.map((e) => e.type),
    ["session.started", "session.ended", "session.flagged", "review.decided", "score.graded", "pairing.claimed"],
  );
  for (const e of EVENT_TYPES) assert.match(e.description, /\.$/);
  assert.equal(eventLabel(PING_EVENT), "Test ping");
  assert.equal(eventLabel("session.ended"), "session.ended");
});

test("an endpoint's status: active, failing, disabled by an admin, disabled by the hub", () => {
  const active = endpointStatus(ENDPOINT, fmt);
  assert.deepEqual([active.state, active.label, active.tone], ["active", "Active", "ok"]);

  const failing = endpointStatus({ ...ENDPOINT, failingSince: "2026-05-01T10:00:00Z" }, fmt);
  assert.equal(failing.state, "failing");
  assert.equal(failing.label, "Failing since <2026-05-01T10:00:00Z>");
  assert.equal(failing.tone, "warn");
  assert.match(failing.detail, /After a day of failures it disables the endpoint/);

  const byAdmin = endpointStatus(
    { ...ENDPOINT, enabled: false, disabledReason: "disabled by an admin", disabledAt: "2026-05-02T08:00:00Z" },
    fmt,
  );
  assert.equal(byAdmin.state, "disabled");
  assert.equal(byAdmin.label, "Disabled by an admin");
  assert.equal(byAdmin.tone, "muted");
  assert.match(byAdmin.detail, /on <2026-05-02T08:00:00Z>/);
  assert.match(byAdmin.detail, /wait until it is enabled/);

  // The hub's own reason: "failing since <UTC>", the time shown in the admin's terms.
  const auto = endpointStatus(
    {
      ...ENDPOINT,
      enabled: false,
      disabledReason: "failing since 2026-05-01T10:00:00Z",
      disabledAt: "2026-05-02T10:00:05Z",
      failingSince: "2026-05-01T10:00:00Z",
    },
    fmt,
  );
  assert.equal(auto.state, "auto-disabled");
  assert.equal(auto.label, "Disabled: failing since <2026-05-01T10:00:00Z>");
  assert.equal(auto.tone, "bad");
  assert.match(auto.detail, /Fix the receiver, then enable it/);

  // A reason the page does not know is shown as it is.
  const other = endpointStatus({ ...ENDPOINT, enabled: false, disabledReason: "moved to the new LMS" }, fmt);
  assert.equal(other.label, "Disabled: moved to the new LMS");
  // Disabled with no reason at all.
  assert.equal(endpointStatus({ ...ENDPOINT, enabled: false }, fmt).label, "Disabled by an admin");
});

test("an endpoint is named by its description, else its host and path", () => {
  assert.equal(endpointTitle({ url: "https://lms.example.edu/hooks", description: "  Moodle  " }), "Moodle");
  assert.equal(endpointTitle({ url: "https://lms.example.edu/hooks/p", description: "" }), "lms.example.edu/hooks/p");
  assert.equal(endpointTitle({ url: "https://lms.example.edu/", description: "" }), "lms.example.edu");
  assert.equal(endpointTitle({ url: "not a url", description: "" }), "not a url");
});

test("URLs: whole http(s) addresses without credentials", () => {
  assert.equal(urlProblem("https://lms.example.edu/hooks"), null);
  assert.equal(urlProblem(" http://127.0.0.1:9000/hook "), null, "the hub, not the page, decides on addresses");
  assert.match(/** @type {string} */ (urlProblem("")), /Enter the address/);
  assert.match(/** @type {string} */ (urlProblem("lms.example.edu/hooks")), /starting with https:\/\//);
  assert.match(/** @type {string} */ (urlProblem("ftp://lms.example.edu/")), /must start with https/);
  assert.match(/** @type {string} */ (urlProblem("https://u:p@lms.example.edu/")), /user name and password/);
  assert.match(/** @type {string} */ (urlProblem(`https://x.y/${"a".repeat(2050)}`)), /too long/);
});

test("secrets: empty (the hub makes one) or whsec_ and the base64 of 24 to 64 bytes", () => {
  const b64 = (/** @type {number} */ n) => Buffer.alloc(n, 7).toString("base64");
  assert.equal(secretProblem(""), null);
  assert.equal(secretProblem("   "), null);
  assert.equal(secretProblem(`whsec_${b64(24)}`), null);
  assert.equal(secretProblem(`whsec_${b64(32)}`), null);
  assert.equal(secretProblem(`whsec_${b64(64)}`), null);
  assert.match(/** @type {string} */ (secretProblem(`whsec_${b64(23)}`)), /holds 23 bytes/);
  assert.match(/** @type {string} */ (secretProblem(`whsec_${b64(65)}`)), /holds 65 bytes/);
  assert.match(/** @type {string} */ (secretProblem(b64(32))), /must start with whsec_/);
  assert.match(/** @type {string} */ (secretProblem("whsec_not*base64!")), /not valid base64/);
  assert.match(/** @type {string} */ (secretProblem(`whsec_${b64(32).slice(0, -1)}`)), /not valid base64/, "unpadded");
  assert.match(/** @type {string} */ (secretProblem("whsec_")), /not valid base64/);
});

test("the create form's body: trimmed, the events in the hub's order, no secret when empty", () => {
  const { body, problems } = endpointBody({
    url: "  https://lms.example.edu/hooks ",
    description: "  Gradebook ",
    events: ["score.graded", "session.started", "nonsense", "score.graded"],
    secret: "  ",
  });
  assert.deepEqual(problems, []);
  assert.deepEqual(body, {
    url: "https://lms.example.edu/hooks",
    events: ["session.started", "score.graded"],
    description: "Gradebook",
  });
  assert.equal("secret" in body, false);

  const secret = `whsec_${Buffer.alloc(32, 1).toString("base64")}`;
  assert.equal(endpointBody({ url: "https://a.b/", description: "", events: ["review.decided"], secret }).body.secret, secret);

  const bad = endpointBody({ url: "nope", description: "x".repeat(501), events: [], secret: "whsec_x" });
  assert.deepEqual(
    bad.problems.map((p) => p.field),
    ["url", "description", "events", "secret"],
    "every problem at once, named as the hub names the fields",
  );
  assert.match(bad.problems[2].message, /at least one event/);
  assert.deepEqual(orderEvents(["pairing.claimed", "session.ended"]), ["session.ended", "pairing.claimed"]);
});

test("a delivery's state and summary", () => {
  assert.deepEqual(deliveryState("DELIVERED"), { label: "Delivered", tone: "ok" });
  assert.deepEqual(deliveryState("PENDING"), { label: "Pending", tone: "info" });
  assert.deepEqual(deliveryState("FAILED"), { label: "Failed", tone: "bad" });
  assert.equal(deliveryState("ODD").label, "ODD");

  const base = {
    id: "d1",
    messageId: "m1",
    eventType: "webhook.ping",
    sessionId: null,
    state: /** @type {const} */ ("PENDING"),
    attempts: 0,
    nextAttemptAt: "2026-05-01T10:00:01Z",
    lastStatus: null,
    lastError: null,
    deliveredAt: null,
    createdAt: "2026-05-01T10:00:00Z",
  };
  assert.equal(deliverySummary(base, fmt), "Not tried yet. Next attempt <2026-05-01T10:00:01Z>.");
  assert.equal(
    deliverySummary({ ...base, attempts: 3, lastStatus: 503, lastError: "HTTP 503", nextAttemptAt: "2026-05-01T10:00:09Z" }, fmt),
    "3 attempts, last answer HTTP 503. Next attempt <2026-05-01T10:00:09Z>.",
  );
  assert.equal(
    deliverySummary({ ...base, attempts: 2, lastError: "cannot connect: Connection refused (os error 111)" }, fmt),
    "2 attempts, last error: cannot connect: Connection refused (os error 111). Next attempt <2026-05-01T10:00:01Z>.",
  );
  assert.equal(
    deliverySummary({ ...base, state: "DELIVERED", attempts: 1, lastStatus: 204, nextAttemptAt: null, deliveredAt: "2026-05-01T10:00:02Z" }, fmt),
    "1 attempt, last answer HTTP 204. Delivered <2026-05-01T10:00:02Z>.",
  );
  assert.equal(
    deliverySummary({ ...base, state: "FAILED", attempts: 20, lastError: "timed out", nextAttemptAt: null }, fmt),
    "20 attempts, last error: timed out. Given up after retrying for a day.",
  );
  assert.equal(isSettled(base), false);
  assert.equal(isSettled({ ...base, state: "DELIVERED" }), true);
  assert.equal(isSettled({ ...base, state: "FAILED" }), true);
  assert.equal(matchesFilter(base, ""), true);
  assert.equal(matchesFilter(base, "PENDING"), true);
  assert.equal(matchesFilter(base, "DELIVERED"), false);
});

test("attempts in words", () => {
  const at = "2026-05-01T10:00:00Z";
  assert.deepEqual(attemptResult({ attemptedAt: at, status: 204, error: null, durationMs: 12.4, node: "hub-1" }), {
    ok: true,
    text: "HTTP 204, in 12 ms",
  });
  assert.deepEqual(attemptResult({ attemptedAt: at, status: 503, error: "HTTP 503", durationMs: 40, node: "hub-1" }), {
    ok: false,
    text: "HTTP 503, in 40 ms",
  });
  assert.deepEqual(attemptResult({ attemptedAt: at, status: null, error: "timed out", durationMs: 10000, node: "hub-2" }), {
    ok: false,
    text: "No answer: timed out, after 10000 ms",
  });
});

test("watching a delivery: quick at first, never more often than every 5 s later", () => {
  const delays = [0, 1, 2, 3, 4, 10, 50].map(watchDelay);
  assert.deepEqual(delays, [750, 1500, 3000, 5000, 5000, 5000, 5000]);
});

test("the JSON body, indented", () => {
  const body = { type: "webhook.ping", timestamp: "2026-05-01T10:00:00Z", data: { endpointId: "e1" } };
  assert.equal(prettyJson(body), JSON.stringify(body, null, 2));
  assert.equal(prettyJson(JSON.stringify(body)), JSON.stringify(body, null, 2));
  assert.equal(prettyJson("not json"), "not json");
  assert.equal(prettyJson(null), "null");
});

test("the webhook routes: paths, methods and bodies", async () => {
  /** @type {[string, string, unknown][]} */
  const calls = [];
  const client = /** @type {any} */ ({
    api: async (/** @type {string} */ m, /** @type {string} */ p, /** @type {unknown} */ b) => {
      calls.push([m, p, b]);
      return { items: [], nextCursor: null };
    },
  });
  await listWebhooks(client);
  await listWebhooks(client, { cursor: "c2" });
  await createWebhook(client, { url: "https://a.b/", events: ["session.ended"], description: "" });
  await updateWebhook(client, "e/1", { enabled: false });
  await deleteWebhook(client, "e1");
  await pingWebhook(client, "e1");
  await listDeliveries(client, "e1", { state: "DELIVERED" });
  await listDeliveries(client, "e1", { state: "", cursor: "next one" });
  await getDelivery(client, "e1", "d1");
  await redeliver(client, "e1", "d1");
  assert.deepEqual(calls, [
    ["GET", "/webhooks?limit=100", undefined],
    ["GET", "/webhooks?cursor=c2&limit=100", undefined],
    ["POST", "/webhooks", { url: "https://a.b/", events: ["session.ended"], description: "" }],
    ["PATCH", "/webhooks/e%2F1", { enabled: false }],
    ["DELETE", "/webhooks/e1", undefined],
    ["POST", "/webhooks/e1/ping", undefined],
    ["GET", "/webhooks/e1/deliveries?state=DELIVERED&limit=25", undefined],
    ["GET", "/webhooks/e1/deliveries?cursor=next+one&limit=25", undefined],
    ["GET", "/webhooks/e1/deliveries/d1", undefined],
    ["POST", "/webhooks/e1/deliveries/d1/redeliver", undefined],
  ]);
});

test("the hub's webhook errors, for an admin", () => {
  const url = describeError(new ApiError(422, "URL_NOT_ALLOWED", "url: 127.0.0.1 is not a public address", null, "url"));
  assert.equal(url.text, "127.0.0.1 is not a public address.");
  assert.equal(url.field, "url");
  assert.equal(url.detail, "HTTP 422 · URL_NOT_ALLOWED · field url");
  assert.match(describeError(new ApiError(409, "WEBHOOK_DISABLED", "enable the endpoint before pinging it")).text, /enable it before sending a test ping/);
});

test("the integrations routes", () => {
  assert.deepEqual(adminPath("#/admin/integrations"), ["integrations"]);
  assert.deepEqual(adminPath("#/admin/integrations/0190f3a2-1b2c-7d3e-8f40-123456789abc"), [
    "integrations",
    "0190f3a2-1b2c-7d3e-8f40-123456789abc",
  ]);
});
