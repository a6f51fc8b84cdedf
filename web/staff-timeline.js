// @ts-check
/**
 * A session's event timeline, newest first, a page at a time.
 *
 * `GET /sessions/{id}/events` lists events oldest first (by `(timestamp, id)`) and pages
 * forward with a cursor; it has no "newest first". So the pager walks back in time with
 * `since`/`until` windows: it asks for the window just below what it has shown, narrows the
 * window when it holds more than one request can return (above the oldest events that request
 * returned, or at least by half), and widens it (×4) while windows come
 * back sparse, until the window reaches back past the earliest moment an event of the session
 * can carry (its start minus the contract's 24 h of accepted clock skew): that last request has
 * no lower bound and ends the timeline. A session with a handful of events takes one or two
 * requests per page; a busy one never loads more than it shows plus one window.
 *
 * Live additions (the `lastEvent` of `session-update`s) go on top; events are deduplicated by
 * their `eventId`.
 */

/**
 * @typedef {object} TimelineEvent What the timeline shows (a stored event, or a live one).
 * @property {string} eventId
 * @property {string} eventType
 * @property {number} severity
 * @property {string} timestamp RFC 3339
 * @property {string} [source] LAPTOP, MOBILE or SYSTEM (live additions do not say)
 * @property {Record<string, unknown>} [meta]
 * @property {boolean} [live] came from the socket, not from the store
 */
/** @typedef {{since?: string, until: string, limit: number, cursor?: string}} EventQuery */
/**
 * @template T
 * @typedef {import("./hub-client.js").Page<T>} Page
 */

/** Below this width a crowded window is read whole (following cursors) instead of narrowed. */
const MIN_WINDOW_MS = 1_000;
/** Events may be timestamped up to 24 h before they are received (CONTRACT, issue 5). */
const MAX_EVENT_AGE_MS = 24 * 3600_000;
/** … and up to 30 s ahead of the server's clock. */
const MAX_EVENT_LEAD_MS = 30_000;

/**
 * A total order key for RFC 3339 UTC timestamps with any number of fraction digits (string
 * comparison of the raw text would put "…58.9Z" after "…58.92Z").
 * @param {string} ts
 * @returns {string}
 */
export function timeKey(ts) {
  const seconds = Math.floor(Date.parse(ts) / 1000);
  const frac = (/\.(\d+)/.exec(ts)?.[1] || "").padEnd(9, "0").slice(0, 9);
  return `${String(seconds).padStart(14, "0")}.${frac}`;
}

/**
 * @param {TimelineEvent} a
 * @param {TimelineEvent} b
 * @returns {number} newest first
 */
export function newestFirst(a, b) {
  const ka = timeKey(a.timestamp);
  const kb = timeKey(b.timestamp);
  return ka < kb ? 1 : ka > kb ? -1 : 0;
}

export class EventPager {
  /**
   * @param {object} options
   * @param {(query: EventQuery) => Promise<Page<TimelineEvent>>} options.fetch one request
   *   (`GET /sessions/{id}/events` with these parameters)
   * @param {number} options.startedAt the session's start, epoch ms
   * @param {() => number} [options.now] the server's clock, epoch ms
   * @param {number} [options.pageSize] events per page (default 50)
   * @param {number} [options.maxPerRequest] the API's `limit` (default 500, its maximum)
   * @param {number} [options.firstWindowMs] the first window's width (default 10 min)
   */
  constructor({ fetch, startedAt, now = () => Date.now(), pageSize = 50, maxPerRequest = 500, firstWindowMs = 10 * 60_000 }) {
    this.fetch = fetch;
    this.floorMs = startedAt - MAX_EVENT_AGE_MS;
    this.now = now;
    this.pageSize = pageSize;
    this.maxPerRequest = maxPerRequest;
    this.width = firstWindowMs;
    /** @type {number | null} exclusive upper bound of what is left to load; null before the first page */
    this.upperMs = null;
    /** @type {TimelineEvent[]} newest first */
    this.items = [];
    /** @type {Set<string>} */
    this.seen = new Set();
    /** no older events are left */
    this.done = false;
    this.loading = false;
  }

  /**
   * Loads the next page of older events.
   * @returns {Promise<TimelineEvent[]>} the events added (newest first); empty at the end
   */
  async loadOlder() {
    if (this.done || this.loading) return [];
    this.loading = true;
    try {
      /** @type {TimelineEvent[]} */
      const added = [];
      let upper = this.upperMs ?? this.now() + MAX_EVENT_LEAD_MS + 1;
      let width = this.width;
      while (added.length < this.pageSize && !this.done) {
        const lower = upper - width;
        const unbounded = lower <= this.floorMs;
        /** @type {EventQuery} */
        const query = { until: iso(upper), limit: this.maxPerRequest };
        if (!unbounded) query.since = iso(lower);
        const first = await this.fetch(query);
        if (first.nextCursor && width > MIN_WINDOW_MS) {
          // Crowded: narrow and ask again. The page holds the window's oldest events, so the
          // newest ones lie above the last of them; at least halve, so a burst within one
          // millisecond still converges.
          const oldest = Date.parse(first.items[first.items.length - 1].timestamp);
          width = Math.max(MIN_WINDOW_MS, Math.min(Math.floor(width / 2), upper - oldest));
          continue;
        }
        let items = first.items;
        for (let cursor = first.nextCursor; cursor; ) {
          const more = await this.fetch({ ...query, cursor });
          items = items.concat(more.items);
          cursor = more.nextCursor;
        }
        const fresh = items.filter((e) => !this.seen.has(e.eventId)).sort(newestFirst);
        const take = fresh.slice(0, this.pageSize - added.length);
        for (const e of take) {
          this.seen.add(e.eventId);
          added.push(e);
        }
        if (take.length < fresh.length) {
          // The page filled inside this window: resume just above the oldest shown event (+1 ms,
          // so events sharing its millisecond are not skipped; the dedup drops the shown ones).
          upper = Date.parse(take[take.length - 1].timestamp) + 1;
        } else {
          upper = lower;
          if (unbounded) this.done = true;
          else if (items.length < this.maxPerRequest / 4) width *= 4; // sparse: look further back
        }
      }
      this.upperMs = upper;
      this.width = width;
      this.items.push(...added);
      return added;
    } finally {
      this.loading = false;
    }
  }

  /**
   * Adds an event heard live. Ignored when already shown.
   * @param {TimelineEvent} event
   * @returns {boolean} whether it was added
   */
  addLive(event) {
    if (this.seen.has(event.eventId)) return false;
    this.seen.add(event.eventId);
    const e = { ...event, live: true };
    const at = this.items.findIndex((x) => newestFirst(e, x) <= 0);
    if (at === -1) this.items.push(e);
    else this.items.splice(at, 0, e);
    return true;
  }
}

/** @param {number} ms */
function iso(ms) {
  return new Date(ms).toISOString();
}

/**
 * Reads every page of a short list (a session's actions, an exam's sessions).
 * @template T
 * @param {(cursor: string | null) => Promise<Page<T>>} fetchPage
 * @param {number} [maxPages] a bound against a server that keeps returning cursors
 * @returns {Promise<T[]>}
 */
export async function allPages(fetchPage, maxPages = 100) {
  /** @type {T[]} */
  const out = [];
  let cursor = null;
  for (let i = 0; i < maxPages; i++) {
    const page = await fetchPage(cursor);
    out.push(...page.items);
    cursor = page.nextCursor;
    if (!cursor) break;
  }
  return out;
}
