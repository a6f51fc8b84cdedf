// @ts-check
/**
 * What the live grid knows about an exam's sessions, kept apart from the DOM so it is tested
 * on its own: the merge of the REST list (names, times) with the socket's snapshot and
 * updates (status, score, liveness, flag, last event), and the grid's sorting and filtering.
 *
 * The socket is the fresher source: once a session was heard of there, a REST list that
 * arrives later (it is asked in parallel, and again when a new session appears) adds names
 * and times but does not roll status, score or liveness back.
 */

/** @typedef {import("./hub-client.js").SessionStatus} SessionStatus */
/** @typedef {import("./hub-client.js").SessionView} SessionView */
/** @typedef {"ONLINE" | "LOST" | "UNKNOWN" | string} DeviceState */
/** @typedef {{eventId: string, eventType: string, severity: number, timestamp: string}} LastEvent */
/**
 * @typedef {object} StaffSession One entry of `GET /exams/{id}/sessions`.
 * @property {string} id
 * @property {{id: string, name: string, email: string}} candidate
 * @property {SessionStatus} status
 * @property {"PENDING" | "APPROVED" | "REJECTED"} reviewDecision
 * @property {number} violationScore
 * @property {{laptop: DeviceState, mobile: DeviceState}} liveness
 * @property {string} startedAt
 * @property {string} expiresAt
 * @property {string | null} [submittedAt]
 */
/**
 * @typedef {object} BoardEntry A session as the grid shows it.
 * @property {string} id
 * @property {string} name the candidate's name ("" until the REST list has it)
 * @property {string} email
 * @property {string} candidateId
 * @property {SessionStatus} status
 * @property {number} violationScore
 * @property {boolean} flagged
 * @property {{laptop: DeviceState, mobile: DeviceState}} liveness
 * @property {LastEvent | null} lastEvent
 * @property {string} expiresAt "" until known
 * @property {boolean} live heard of on the socket (its status and score are the socket's)
 */
/**
 * @typedef {object} Change what an update did, so the view updates only what changed
 * @property {BoardEntry} entry
 * @property {boolean} added a session the grid did not have
 * @property {boolean} flaggedNow it just became flagged
 * @property {boolean} endedNow it just ended
 */

/** @typedef {"flagged" | "score" | "name"} SortKey */
/** @typedef {"all" | "flagged" | "lost" | "ended"} FilterKey */

export const SORTS = /** @type {const} */ ({
  flagged: "Flagged first",
  score: "Violation score",
  name: "Candidate name",
});

export const FILTERS = /** @type {const} */ ({
  all: "All",
  flagged: "Flagged",
  lost: "Lost device",
  ended: "Ended",
});

/**
 * @param {string} id
 * @returns {BoardEntry}
 */
function blank(id) {
  return {
    id,
    name: "",
    email: "",
    candidateId: "",
    status: "STARTED",
    violationScore: 0,
    flagged: false,
    liveness: { laptop: "UNKNOWN", mobile: "UNKNOWN" },
    lastEvent: null,
    expiresAt: "",
    live: false,
  };
}

/** @param {{status: SessionStatus}} s */
export function isEnded(s) {
  return s.status !== "STARTED";
}

/**
 * A device counts as lost only while the session runs: after the end every device goes quiet.
 * @param {BoardEntry} s
 */
export function hasLostDevice(s) {
  return !isEnded(s) && (s.liveness.laptop === "LOST" || s.liveness.mobile === "LOST");
}

/**
 * @param {BoardEntry} s
 * @param {FilterKey} filter
 */
export function matchesFilter(s, filter) {
  switch (filter) {
    case "flagged":
      return s.flagged;
    case "lost":
      return hasLostDevice(s);
    case "ended":
      return isEnded(s);
    default:
      return true;
  }
}

/**
 * @param {BoardEntry} a
 * @param {BoardEntry} b
 */
function byName(a, b) {
  return (a.name || "\uffff").localeCompare(b.name || "\uffff", undefined, { sensitivity: "base" }) || a.id.localeCompare(b.id);
}

/**
 * The grid's order. Every key ends on the name (then the id), so equal scores never swap
 * places between two renders.
 * - `flagged`: flagged sessions first, then by score (highest first), then by name
 * - `score`: by score, highest first, then by name
 * - `name`: by the candidate's name
 * @param {BoardEntry[]} list
 * @param {SortKey} key
 * @returns {BoardEntry[]} a new array
 */
export function sortEntries(list, key) {
  const out = [...list];
  out.sort((a, b) => {
    if (key === "flagged" && a.flagged !== b.flagged) return a.flagged ? -1 : 1;
    if (key !== "name" && a.violationScore !== b.violationScore) return b.violationScore - a.violationScore;
    return byName(a, b);
  });
  return out;
}

/**
 * @param {BoardEntry[]} list
 * @returns {Record<FilterKey, number>} how many each filter shows
 */
export function filterCounts(list) {
  /** @type {Record<FilterKey, number>} */
  const counts = { all: 0, flagged: 0, lost: 0, ended: 0 };
  for (const s of list) {
    for (const f of /** @type {FilterKey[]} */ (Object.keys(counts))) if (matchesFilter(s, f)) counts[f] += 1;
  }
  return counts;
}

/** The sessions of one exam, merged from the REST list and the socket. */
export class SessionBoard {
  constructor() {
    /** @type {Map<string, BoardEntry>} */
    this.entries = new Map();
  }

  /** @returns {BoardEntry[]} */
  list() {
    return [...this.entries.values()];
  }

  /** @param {string} id */
  get(id) {
    return this.entries.get(id);
  }

  /**
   * @param {StaffSession} item
   * @returns {Change}
   */
  applyListItem(item) {
    const before = this.entries.get(item.id);
    const e = before ? { ...before } : blank(item.id);
    e.name = item.candidate.name;
    e.email = item.candidate.email;
    e.candidateId = item.candidate.id;
    e.expiresAt = item.expiresAt;
    if (!e.live) {
      e.status = item.status;
      e.violationScore = item.violationScore;
      e.liveness = { ...item.liveness };
    }
    return this.store(before, e);
  }

  /**
   * A `session-snapshot` entry or a `session-update`.
   * @param {SessionView} view
   * @returns {Change}
   */
  applyView(view) {
    const before = this.entries.get(view.sessionId);
    const e = before ? { ...before } : blank(view.sessionId);
    e.live = true;
    e.status = view.status;
    e.violationScore = view.violationScore;
    if (view.liveness) e.liveness = { ...view.liveness };
    // The hub sends `flagged` once the exam's policy has a threshold; it never unflags.
    if (typeof view.flagged === "boolean") e.flagged = view.flagged;
    if (view.lastEvent) e.lastEvent = view.lastEvent;
    if (view.candidateId) e.candidateId = view.candidateId;
    return this.store(before, e);
  }

  /**
   * `time-extended`: the session's new end.
   * @param {string} id
   * @param {string} expiresAt
   * @returns {BoardEntry | undefined}
   */
  extend(id, expiresAt) {
    const e = this.entries.get(id);
    if (!e) return undefined;
    const next = { ...e, expiresAt };
    this.entries.set(id, next);
    return next;
  }

  /** @returns {string[]} sessions whose candidate's name is still unknown */
  unnamed() {
    return this.list()
      .filter((e) => !e.name)
      .map((e) => e.id);
  }

  /**
   * @private
   * @param {BoardEntry | undefined} before
   * @param {BoardEntry} e
   * @returns {Change}
   */
  store(before, e) {
    this.entries.set(e.id, e);
    return {
      entry: e,
      added: !before,
      flaggedNow: e.flagged && !(before && before.flagged),
      endedNow: isEnded(e) && !!before && !isEnded(before),
    };
  }
}

/**
 * "TAB_HIDDEN" → "Tab hidden": event types as people read them.
 * @param {string} type
 */
export function eventName(type) {
  const words = type.toLowerCase().split("_").filter(Boolean);
  if (!words.length) return type;
  const text = words.join(" ");
  return text[0].toUpperCase() + text.slice(1);
}

/**
 * @param {DeviceState} state ONLINE, LOST, UNKNOWN (no heartbeat seen: not connected yet, or
 *   no phone paired)
 * @returns {string}
 */
export function deviceStateText(state) {
  if (state === "ONLINE") return "Online";
  if (state === "LOST") return "Lost";
  return "Not seen";
}

/** @param {SessionStatus} status */
export function statusText(status) {
  return (
    {
      STARTED: "In progress",
      SUBMITTED: "Submitted",
      AUTO_SUBMITTED: "Submitted (time up)",
      TERMINATED: "Terminated",
    }[status] || status
  );
}

/**
 * An event's `meta` in a line: "copy 1, pasted chars 12". Zero counts are left out when
 * something else is set (a clipboard event lists every counter); nested values stay JSON.
 * @param {Record<string, unknown> | null | undefined} meta
 * @returns {string}
 */
export function metaText(meta) {
  if (!meta || typeof meta !== "object") return "";
  const entries = Object.entries(meta).filter(([, v]) => v !== null && v !== undefined && v !== "");
  const nonZero = entries.filter(([, v]) => v !== 0 && v !== false);
  return (nonZero.length ? nonZero : entries)
    .map(([k, v]) => {
      const key = k.replace(/([a-z0-9])([A-Z])/g, "$1 $2").replace(/_/g, " ").toLowerCase();
      return `${key} ${typeof v === "object" ? JSON.stringify(v) : String(v)}`;
    })
    .join(", ");
}

/**
 * Violation scores are sums of weighted severities: one decimal is enough.
 * @param {number} score
 */
export function formatScore(score) {
  return Number.isInteger(score) ? String(score) : score.toFixed(1);
}
