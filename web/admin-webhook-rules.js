// @ts-check
/**
 * The Integrations pages' rules, DOM-free and unit-tested (web/test/admin-webhooks.test.mjs):
 * the event types an endpoint may subscribe to, an endpoint's status (active, failing,
 * disabled by an admin or by the hub), a delivery's state and attempts in words, and the
 * create form's checks and request body (the hub checks everything again; these only save a
 * round trip and say what to fix in the admin's terms).
 */

/** @typedef {import("./admin-api.js").WebhookEndpoint} WebhookEndpoint */
/** @typedef {import("./admin-api.js").WebhookDelivery} WebhookDelivery */
/** @typedef {import("./admin-api.js").DeliveryAttempt} DeliveryAttempt */
/** @typedef {import("./admin-api.js").DeliveryState} DeliveryState */
/** @typedef {(when: string) => string} Formatter an instant (RFC 3339) as a person reads it */

/**
 * The event types, in the hub's order (`webhooks::EVENT_TYPES`), with what each one means.
 * @type {readonly {type: string, description: string}[]}
 */
export const EVENT_TYPES = Object.freeze([
  { type: "session.started", description: "A candidate started an exam." },
  { type: "session.ended", description: "A session ended: submitted, submitted when time ran out, or terminated." },
  { type: "session.flagged", description: "A session's violation score reached the flag threshold." },
  { type: "review.decided", description: "A reviewer approved or rejected a session." },
  { type: "score.graded", description: "A session's score became final (every question graded)." },
  { type: "pairing.claimed", description: "A candidate's phone joined a session as the second camera." },
]);

/** The message `POST /webhooks/{id}/ping` sends, outside the subscribable types. */
export const PING_EVENT = "webhook.ping";

/** What the hub writes as `disabledReason` when an admin disables an endpoint. */
export const DISABLED_BY_ADMIN = "disabled by an admin";

/**
 * @param {string} type
 * @returns {string} e.g. "Test ping" for `webhook.ping`, else the type itself
 */
export function eventLabel(type) {
  return type === PING_EVENT ? "Test ping" : type;
}

/** Instants with seconds, in this browser's language and time zone. @type {Formatter} */
export function formatStamp(when) {
  const d = new Date(when);
  if (Number.isNaN(d.getTime())) return when;
  return d.toLocaleString(undefined, {
    day: "numeric",
    month: "short",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  });
}

// --- endpoints -------------------------------------------------------------------------------

/**
 * @typedef {object} EndpointStatus
 * @property {"active" | "failing" | "disabled" | "auto-disabled"} state
 * @property {string} label the badge's text
 * @property {"ok" | "warn" | "bad" | "muted"} tone the badge's colour
 * @property {string} detail a sentence: what it means and what to do
 */

/**
 * An endpoint's status, as its badge and a sentence say it. `failingSince` is set while every
 * attempt since then failed; after a day of that the hub disables the endpoint with the
 * reason "failing since <UTC time>"; an admin's disable says "disabled by an admin".
 * @param {Pick<WebhookEndpoint, "enabled" | "disabledReason" | "disabledAt" | "failingSince">} e
 * @param {Formatter} [fmt]
 * @returns {EndpointStatus}
 */
export function endpointStatus(e, fmt = formatStamp) {
  if (e.enabled) {
    if (e.failingSince) {
      return {
        state: "failing",
        label: `Failing since ${fmt(e.failingSince)}`,
        tone: "warn",
        detail:
          `Every attempt since ${fmt(e.failingSince)} has failed; the hub keeps retrying. ` +
          "After a day of failures it disables the endpoint.",
      };
    }
    return { state: "active", label: "Active", tone: "ok", detail: "Events are sent as they happen." };
  }
  const reason = (e.disabledReason || "").trim();
  const since = e.disabledAt ? ` on ${fmt(e.disabledAt)}` : "";
  const failing = reason.match(/^failing since\s+(.+)$/i);
  if (failing || (!reason && e.failingSince)) {
    const from = failing ? failing[1] : /** @type {string} */ (e.failingSince);
    const when = Number.isNaN(Date.parse(from)) ? from : fmt(from);
    return {
      state: "auto-disabled",
      label: `Disabled: failing since ${when}`,
      tone: "bad",
      detail:
        `The hub disabled it${since} after every attempt failed for a day (since ${when}). ` +
        "Fix the receiver, then enable it: the deliveries that waited are sent at once.",
    };
  }
  if (!reason || reason.toLowerCase() === DISABLED_BY_ADMIN) {
    return {
      state: "disabled",
      label: "Disabled by an admin",
      tone: "muted",
      detail: `Disabled by an admin${since}: nothing is sent. New deliveries wait until it is enabled again.`,
    };
  }
  return {
    state: "disabled",
    label: `Disabled: ${reason}`,
    tone: "muted",
    detail: `Disabled${since} (${reason}): nothing is sent. New deliveries wait until it is enabled again.`,
  };
}

/**
 * The name an endpoint goes by: its description, else its URL's host and path.
 * @param {Pick<WebhookEndpoint, "url" | "description">} e
 */
export function endpointTitle(e) {
  const d = (e.description || "").trim();
  if (d) return d;
  try {
    const u = new URL(e.url);
    return `${u.host}${u.pathname === "/" ? "" : u.pathname}`;
  } catch {
    return e.url;
  }
}

// --- the create form -----------------------------------------------------------------------

/**
 * @typedef {object} EndpointForm what the admin typed and ticked
 * @property {string} url
 * @property {string} description
 * @property {string[]} events the ticked types
 * @property {string} secret empty: the hub generates one
 */
/**
 * @typedef {object} CreateWebhookBody `POST /webhooks`
 * @property {string} url
 * @property {string[]} events
 * @property {string} description
 * @property {string} [secret]
 */
/** @typedef {{field: string, message: string}} FormProblem a field (as the hub names it) and what to fix */

/** The hub's limits (src/http/webhooks.rs). */
export const LIMITS = Object.freeze({ url: 2048, description: 500, secretMinBytes: 24, secretMaxBytes: 64 });

/**
 * What is wrong with a URL the hub would refuse on its form alone (the hub also refuses
 * private and loopback addresses, which only it can resolve).
 * @param {string} raw
 * @returns {string | null}
 */
export function urlProblem(raw) {
  const value = raw.trim();
  if (!value) return "Enter the address the hub should send events to.";
  if (value.length > LIMITS.url) return `The address is too long (at most ${LIMITS.url} characters).`;
  let url;
  try {
    url = new URL(value);
  } catch {
    return "Enter the whole address, starting with https:// (or http://).";
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") return "The address must start with https:// (or http://).";
  if (!url.hostname) return "The address has no host name.";
  if (url.username || url.password) return "Leave the user name and password out of the address; verify the signature instead.";
  return null;
}

/**
 * What is wrong with a secret the admin chose: `whsec_` and the standard base64 (padded) of
 * 24 to 64 bytes, as the hub checks.
 * @param {string} raw
 * @returns {string | null} null when fine or empty
 */
export function secretProblem(raw) {
  const value = raw.trim();
  if (!value) return null;
  const what = `whsec_ followed by the base64 of ${LIMITS.secretMinBytes} to ${LIMITS.secretMaxBytes} random bytes`;
  if (!value.startsWith("whsec_")) return `The secret must start with whsec_ (${what}), or leave it empty.`;
  const b64 = value.slice("whsec_".length);
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 !== 0 || b64.length === 0) {
    return `The secret is not valid base64: it must be ${what}.`;
  }
  const bytes = (b64.length / 4) * 3 - (b64.endsWith("==") ? 2 : b64.endsWith("=") ? 1 : 0);
  if (bytes < LIMITS.secretMinBytes || bytes > LIMITS.secretMaxBytes) {
    return `The secret holds ${bytes} bytes: it must be ${what}.`;
  }
  return null;
}

/**
 * The subscribed types in the hub's order, each once; unknown ones left out.
 * @param {Iterable<string>} types
 * @returns {string[]}
 */
export function orderEvents(types) {
  const chosen = new Set(types);
  return EVENT_TYPES.map((e) => e.type).filter((t) => chosen.has(t));
}

/**
 * Checks the create form and builds `POST /webhooks`'s body: trimmed, the events in the hub's
 * order, no `secret` when left empty (the hub makes one).
 * @param {EndpointForm} form
 * @returns {{body: CreateWebhookBody, problems: FormProblem[]}} send only when `problems` is empty
 */
export function endpointBody(form) {
  /** @type {FormProblem[]} */
  const problems = [];
  const url = form.url.trim();
  const description = form.description.trim();
  const secret = form.secret.trim();
  const events = orderEvents(form.events);
  const u = urlProblem(url);
  if (u) problems.push({ field: "url", message: u });
  if ([...description].length > LIMITS.description) {
    problems.push({ field: "description", message: `The description is too long (at most ${LIMITS.description} characters).` });
  }
  if (events.length === 0) problems.push({ field: "events", message: "Choose at least one event to send." });
  const s = secretProblem(secret);
  if (s) problems.push({ field: "secret", message: s });
  /** @type {CreateWebhookBody} */
  const body = { url, events, description };
  if (secret) body.secret = secret;
  return { body, problems };
}

// --- deliveries ------------------------------------------------------------------------------

/** @type {Record<DeliveryState, {label: string, tone: "ok" | "info" | "bad"}>} */
export const DELIVERY_STATES = {
  PENDING: { label: "Pending", tone: "info" },
  DELIVERED: { label: "Delivered", tone: "ok" },
  FAILED: { label: "Failed", tone: "bad" },
};

/** The state filter's choices: `[value, label]`, "" for all. @type {[string, string][]} */
export const STATE_FILTER = [
  ["", "All states"],
  ["PENDING", "Pending"],
  ["DELIVERED", "Delivered"],
  ["FAILED", "Failed (given up)"],
];

/**
 * @param {string} state
 * @returns {{label: string, tone: string}}
 */
export function deliveryState(state) {
  return DELIVERY_STATES[/** @type {DeliveryState} */ (state)] || { label: state, tone: "muted" };
}

/**
 * One sentence on where a delivery stands: attempts, the last answer, what happens next.
 * @param {WebhookDelivery} d
 * @param {Formatter} [fmt]
 * @returns {string}
 */
export function deliverySummary(d, fmt = formatStamp) {
  const tries = d.attempts === 0 ? "Not tried yet" : `${d.attempts} attempt${d.attempts === 1 ? "" : "s"}`;
  const last =
    d.attempts === 0
      ? ""
      : d.lastStatus != null
        ? `, last answer HTTP ${d.lastStatus}${d.lastError && !/^HTTP \d+$/i.test(d.lastError) ? ` (${d.lastError})` : ""}`
        : d.lastError
          ? `, last error: ${d.lastError}`
          : "";
  let next = "";
  if (d.state === "DELIVERED" && d.deliveredAt) next = `. Delivered ${fmt(d.deliveredAt)}`;
  else if (d.state === "PENDING" && d.nextAttemptAt) next = `. Next attempt ${fmt(d.nextAttemptAt)}`;
  else if (d.state === "FAILED") next = ". Given up after retrying for a day";
  return `${tries}${last}${next}.`;
}

/**
 * One attempt in words: the answer (or why there was none) and how long it took.
 * @param {DeliveryAttempt} a
 * @returns {{ok: boolean, text: string}}
 */
export function attemptResult(a) {
  const ok = a.status != null && a.status >= 200 && a.status < 300 && !a.error;
  const took = `${Math.max(0, Math.round(a.durationMs))} ms`;
  if (a.status != null) {
    const why = a.error && !/^HTTP \d+$/i.test(a.error) ? `: ${a.error}` : "";
    return { ok, text: `HTTP ${a.status}${why}, in ${took}` };
  }
  return { ok: false, text: `No answer: ${a.error || "unknown error"}, after ${took}` };
}

/** @param {WebhookDelivery} d whether it will change no more without an admin */
export function isSettled(d) {
  return d.state !== "PENDING";
}

/**
 * How long to wait before looking at a watched delivery again: quick at first (a ping to a
 * live receiver lands within a second), then slower, so a down receiver is not polled hard.
 * @param {number} round 0, 1, 2, …
 * @returns {number} ms
 */
export function watchDelay(round) {
  return Math.min(5_000, 750 * 2 ** Math.min(round, 3));
}

/**
 * Whether a delivery belongs in the list under a state filter ("" = all).
 * @param {Pick<WebhookDelivery, "state">} d
 * @param {string} filter
 */
export function matchesFilter(d, filter) {
  return !filter || d.state === filter;
}

/**
 * A JSON body as the admin reads it: indented two spaces; a string that holds JSON is parsed.
 * @param {unknown} body
 * @returns {string}
 */
export function prettyJson(body) {
  if (typeof body === "string") {
    try {
      return JSON.stringify(JSON.parse(body), null, 2);
    } catch {
      return body;
    }
  }
  return JSON.stringify(body, null, 2) ?? "";
}
