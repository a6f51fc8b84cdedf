// @ts-check
/**
 * The browser client of Proctor Hub: one ES module, no dependencies, that the hub's own pages
 * use and that an exam platform can import into its front end.
 *
 *   import { HubClient, AnswerQueue, ProctoringMonitor } from "/app/hub-client.js";
 *
 * What is in it (each part is usable on its own):
 * - {@link HubClient}: login, silent token refresh, logout, `api()` with {@link ApiError}s, and
 *   typed helpers for the candidate routes of docs/CONTRACT.md.
 * - {@link HubSocket}: the WebSocket (`auth` first, heartbeats, reconnect with backoff, rejoin,
 *   proctoring events queued until acknowledged).
 * - {@link ServerClock}: the server's clock, so countdowns never trust the device's clock.
 * - {@link AnswerQueue}: the durable autosave queue.
 * - {@link ProctoringMonitor}: tab, focus, fullscreen and clipboard signals.
 * - {@link MediaPublisher}: camera (simulcast), screen and microphone to the hub's media relay.
 *
 * Everything that touches time, storage or the network takes it as an option, so the logic
 * runs in Node's test runner with fakes (web/test/).
 */

// ---------------------------------------------------------------------------------------------
// Wire types (docs/CONTRACT.md; the Rust source of truth is signaling/src/message.rs)
// ---------------------------------------------------------------------------------------------

/** @typedef {"CANDIDATE" | "PROCTOR" | "ADMIN" | "MOBILE"} Role */
/** @typedef {{id: string, email: string, name: string, role: Role}} User */
/**
 * @typedef {object} TokenResponse `POST /auth/login` and `POST /auth/refresh`.
 * @property {string} accessToken
 * @property {string} refreshToken
 * @property {number} expiresIn seconds the access token lives
 * @property {string} [refreshExpiresAt]
 * @property {User} user
 */
/** @typedef {"MCQ" | "CODING" | "SUBJECTIVE"} QuestionType */
/** @typedef {{id: string, text: string}} McqOption */
/**
 * @typedef {object} Question A question as a candidate sees it (never with its answer key).
 * @property {string} id
 * @property {QuestionType} type
 * @property {string} prompt
 * @property {McqOption[] | null} options MCQ only
 * @property {number} points
 */
/** @typedef {{selected: string[]}} McqResponse */
/** @typedef {{language: string, code: string}} CodingResponse */
/** @typedef {{text: string}} SubjectiveResponse */
/** @typedef {McqResponse | CodingResponse | SubjectiveResponse} AnswerResponse */
/** @typedef {{response: AnswerResponse, version: number}} SavedAnswer */
/** @typedef {"STARTED" | "SUBMITTED" | "AUTO_SUBMITTED" | "TERMINATED"} SessionStatus */
/**
 * @typedef {object} Session `POST /exams/{id}/sessions`, `GET /sessions/{id}`.
 * @property {string} id
 * @property {string} examId
 * @property {SessionStatus} status
 * @property {string} startedAt
 * @property {string} expiresAt
 * @property {string | null} [submittedAt]
 * @property {string | null} [endedReason]
 * @property {string} [reviewDecision]
 * @property {string} serverNow
 * @property {string} webrtcRoomId
 * @property {boolean} [recordMedia] the relay records this session's camera, microphone, screen
 *   and phone camera for review (the exam's setting)
 * @property {Question[]} questions in this session's order
 * @property {Record<string, SavedAnswer>} answers by question id
 * @property {Record<string, {points: number, gradedAt: string, gradedBy: string | null}>} [grades]
 *   staff only: every graded answer by question id (`gradedBy` null for automatic MCQ scoring)
 */
/**
 * @typedef {object} MyExam One entry of `GET /me/exams`.
 * @property {string} id
 * @property {string} title
 * @property {string} instructions
 * @property {number} durationMinutes
 * @property {number} extraTimeMinutes
 * @property {string} startsAt
 * @property {string} endsAt
 * @property {{id: string, status: SessionStatus, expiresAt: string} | null} session
 * @property {boolean} [recordMedia] the exam records media for review; read when the hub sends
 *   it (the system check shows the recording notice then)
 */
/**
 * @typedef {object} Exam One entry of `GET /exams` (staff).
 * @property {string} id
 * @property {string} title
 * @property {string} [instructions]
 * @property {"DRAFT" | "PUBLISHED" | "ARCHIVED"} status
 * @property {number} durationMinutes
 * @property {string} startsAt
 * @property {string} endsAt
 */
/**
 * @template T
 * @typedef {{items: T[], nextCursor: string | null}} Page
 */
/** @typedef {{pairingUrl: string, expiresAt: string, qrSvg: string}} Pairing */
/** @typedef {{version: number, savedAt: string}} SaveResult */
/** @typedef {{status: SessionStatus, submittedAt: string}} SubmitResult */

/**
 * @typedef {object} EventReport A proctoring event (WebSocket `event` without its `type`).
 * @property {string} eventId client UUID; the server dedupes retries by it
 * @property {string} eventType `^[A-Z][A-Z0-9_]{0,63}$`
 * @property {number} severity 1..10
 * @property {string} [timestamp] RFC 3339, by the server clock
 * @property {Record<string, unknown>} [meta] at most 8 KiB serialized
 */

/** @typedef {{kind: "offer" | "answer" | "ice", sdp?: string, candidate?: RTCIceCandidateInit, tracks?: unknown}} SignalData */
/** @typedef {{urls: string[], username?: string, credential?: string}} IceServer */

/**
 * @typedef {{type: "auth", token: string, resume?: {token: string, lastSeq: number}}
 *   | {type: "join", roomId: string}
 *   | {type: "leave", roomId: string}
 *   | {type: "signal", roomId: string, to: string, data: SignalData}
 *   | {type: "heartbeat"}
 *   | ({type: "event"} & EventReport)
 *   | {type: "watch", examId: string}
 *   | {type: "unwatch", examId: string}
 *   | {type: "warn", sessionId: string, message: string}
 *   | {type: "pairing-reject"}
 *   | {type: "subscribe", roomId: string, tracks?: string[], layer?: "low" | "high"}
 * } ClientMessage
 */

/**
 * @typedef {object} AuthedMessage The reply to `auth`. The resume fields are absent when the
 *   hub has resuming turned off (`HUB_WS_RESUME_WINDOW_SECS=0`).
 * @property {"authed"} type
 * @property {string} peerId
 * @property {Role} role
 * @property {string} serverNow
 * @property {number} heartbeatIntervalMs
 * @property {string} [resumeToken] offer it in the next `auth` to continue this connection
 * @property {number} [resumeWindowMs] how long after a drop the hub keeps the connection
 * @property {boolean} [resumed] true: this socket continues the old connection (same peer,
 *   rooms kept, the missed messages follow); false: a new connection (join the rooms again)
 */
/** @typedef {{type: "joined", roomId: string, peers: {peerId: string, role: Role, userId: string}[], iceServers: IceServer[]}} JoinedMessage */
/** @typedef {{type: "peer-joined", roomId: string, peerId: string, role: Role, userId: string}} PeerJoinedMessage */
/** @typedef {{type: "peer-left", roomId: string, peerId: string}} PeerLeftMessage */
/** @typedef {{type: "signal", roomId: string, from: string, data: SignalData}} SignalMessage */
/** @typedef {{type: "heartbeat-ack", serverNow: string}} HeartbeatAckMessage */
/** @typedef {{type: "event-ack", eventId: string}} EventAckMessage */
/** @typedef {{type: "warning", message: string}} WarningMessage */
/** @typedef {{type: "time-up", sessionId: string, expiresAt: string, graceEndsAt: string}} TimeUpMessage */
/** @typedef {{type: "time-extended", sessionId: string, expiresAt: string}} TimeExtendedMessage */
/** @typedef {{type: "session-ended", status: SessionStatus, reason: string}} SessionEndedMessage */
/** @typedef {{type: "pairing-claimed", confirmCode: string, deviceFingerprint?: string}} PairingClaimedMessage */
/** @typedef {{type: "error", code: string, message: string, roomId?: string}} ErrorMessage */
/**
 * The node this socket reached is not the home of its exam: the hub closes the socket with
 * 4010 ("moved") right after, and {@link HubSocket} reconnects to `url` by itself.
 * @typedef {{type: "redirect", url: string}} RedirectMessage
 */
/**
 * @typedef {object} SessionView What a proctor sees of a session.
 * @property {string} sessionId
 * @property {SessionStatus} status
 * @property {number} violationScore
 * @property {{laptop: string, mobile: string}} liveness
 * @property {{eventId: string, eventType: string, severity: number, timestamp: string}} [lastEvent]
 * @property {boolean} [flagged]
 * @property {string} [candidateId]
 */
/** @typedef {{type: "session-update"} & SessionView} SessionUpdateMessage */
/** @typedef {{type: "session-snapshot", examId: string, sessions: SessionView[]}} SessionSnapshotMessage */
/**
 * @typedef {AuthedMessage | JoinedMessage | PeerJoinedMessage | PeerLeftMessage | SignalMessage
 *   | HeartbeatAckMessage | EventAckMessage | WarningMessage | TimeUpMessage | TimeExtendedMessage
 *   | SessionEndedMessage | PairingClaimedMessage | ErrorMessage | SessionUpdateMessage
 *   | SessionSnapshotMessage | RedirectMessage} ServerMessage
 */
/** @typedef {{[K in ServerMessage["type"]]: Extract<ServerMessage, {type: K}>}} ServerMessageMap */
/**
 * Every message the hub pushes (not the replies to this socket's own requests) carries `seq`,
 * increasing by 1 per connection from 1: what a resume counts from.
 * @typedef {{seq?: number}} Sequenced
 */

// ---------------------------------------------------------------------------------------------
// Small shared pieces
// ---------------------------------------------------------------------------------------------

/**
 * The Web Storage subset this module needs (localStorage, sessionStorage, or a test fake).
 * @typedef {{getItem(key: string): string | null, setItem(key: string, value: string): void, removeItem(key: string): void}} StorageLike
 */

/**
 * Timer functions, injectable so tests run on a fake clock.
 * @typedef {{setTimeout(fn: () => void, ms: number): unknown, clearTimeout(handle: unknown): void}} Timers
 */

/** @type {Timers} */
const realTimers = {
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (h) => globalThis.clearTimeout(/** @type {any} */ (h)),
};

/** A Storage kept in memory: the fallback where the browser refuses Web Storage. */
export class MemoryStorage {
  constructor() {
    /** @type {Map<string, string>} */
    this.map = new Map();
  }
  /** @param {string} key */
  getItem(key) {
    return this.map.has(key) ? /** @type {string} */ (this.map.get(key)) : null;
  }
  /** @param {string} key @param {string} value */
  setItem(key, value) {
    this.map.set(key, String(value));
  }
  /** @param {string} key */
  removeItem(key) {
    this.map.delete(key);
  }
}

/**
 * Web Storage can throw on access (privacy modes, sandboxed frames): fall back to memory.
 * @param {"localStorage" | "sessionStorage"} name
 * @returns {StorageLike}
 */
function webStorage(name) {
  try {
    const s = /** @type {any} */ (globalThis)[name];
    if (s) {
      s.getItem("proctor-hub:probe");
      return s;
    }
  } catch {
    // fall through
  }
  return new MemoryStorage();
}

/**
 * An EventTarget whose events carry a typed `detail`. `on()` returns the unsubscribe function,
 * which keeps page code free of handler bookkeeping.
 * @template {object} M map of event name → detail type
 */
export class Emitter extends EventTarget {
  /**
   * @template {keyof M & string} K
   * @param {K} type
   * @param {(detail: M[K]) => void} listener
   * @returns {() => void} removes the listener
   */
  on(type, listener) {
    /** @param {Event} e */
    const handler = (e) => listener(/** @type {CustomEvent<M[K]>} */ (e).detail);
    this.addEventListener(type, handler);
    return () => this.removeEventListener(type, handler);
  }

  /**
   * @template {keyof M & string} K
   * @param {K} type
   * @param {M[K]} detail
   */
  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}

/**
 * An HTTP error from the hub: `{error: {code, message}}` plus the status. `status` 0 with code
 * `NETWORK` means no answer at all (offline, DNS, connection reset).
 */
export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {string} code stable UPPER_SNAKE code from the contract
   * @param {string} message
   * @param {number | null} [retryAfter] seconds, from `Retry-After` (429, 503)
   * @param {string} [field] the invalid field of a 422 `VALIDATION_FAILED`
   */
  constructor(status, code, message, retryAfter = null, field) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
    this.field = field;
  }

  /** True when the request may succeed later unchanged: no answer, 429 or a 5xx. */
  get retryable() {
    return this.status === 0 || this.status === 429 || this.status >= 500;
  }

  /**
   * Builds the error from a failed response.
   * @param {Response} res
   */
  static async from(res) {
    /** @type {any} */
    let body = null;
    try {
      body = await res.json();
    } catch {
      // not JSON (a proxy's error page): the status says enough
    }
    const err = body && typeof body === "object" ? body.error : null;
    return new ApiError(
      res.status,
      (err && err.code) || `HTTP_${res.status}`,
      (err && err.message) || res.statusText || `HTTP ${res.status}`,
      parseRetryAfter(res.headers.get("retry-after")),
      err && err.field,
    );
  }
}

/**
 * `Retry-After` is either seconds or an HTTP date.
 * @param {string | null} value
 * @returns {number | null} seconds
 */
export function parseRetryAfter(value) {
  if (value == null || value.trim() === "") return null;
  const secs = Number(value);
  if (Number.isFinite(secs)) return Math.max(0, secs);
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, (at - Date.now()) / 1000);
}

/**
 * The delay before retry number `attempt` (0 = the first retry): exponential growth capped at
 * `maxMs`, with "equal jitter" — a random point in the upper half of the step. The jitter
 * spreads a class of candidates whose sockets all dropped at once (a hub restart sends 4001 to
 * everyone) over time instead of reconnecting in one wave; keeping the lower half out means a
 * retry never comes right back at the server that just failed.
 * @param {number} attempt
 * @param {{baseMs?: number, maxMs?: number, random?: () => number}} [options]
 * @returns {number} milliseconds
 */
export function backoffDelay(attempt, { baseMs = 500, maxMs = 30_000, random = Math.random } = {}) {
  const step = Math.min(maxMs, baseMs * 2 ** Math.min(Math.max(0, attempt), 30));
  return Math.round(step / 2 + (random() * step) / 2);
}

/** @returns {string} a random UUID (crypto.randomUUID needs a secure context; fall back) */
export function uuid() {
  const c = globalThis.crypto;
  if (c && typeof c.randomUUID === "function") {
    try {
      return c.randomUUID();
    } catch {
      // insecure context (plain http on a LAN address): build one below
    }
  }
  const b = new Uint8Array(16);
  c.getRandomValues(b);
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/**
 * This browser's device id, sent as `deviceFingerprint`. A session stays with the laptop that
 * started it (409 `DEVICE_MISMATCH` elsewhere), so the id must survive reloads and restarts:
 * it is a random UUID kept in localStorage, not a fingerprint of the hardware (which would be
 * both unstable and invasive). Clearing site data makes a new device; a proctor then allows the
 * change (`ALLOW_DEVICE_CHANGE`).
 * @param {StorageLike} [storage]
 */
export function deviceId(storage = webStorage("localStorage")) {
  const key = "proctor-hub:device-id";
  let id = storage.getItem(key);
  if (!id) {
    id = uuid();
    storage.setItem(key, id);
  }
  return id;
}

// ---------------------------------------------------------------------------------------------
// ServerClock
// ---------------------------------------------------------------------------------------------

/**
 * The server's clock, estimated from `serverNow` samples. It runs on the monotonic
 * `performance.now()`, not `Date.now()`, so a candidate who changes the computer's clock
 * changes nothing, and it keeps the sample with the shortest round trip (the most precise),
 * letting a kept sample's precision decay slowly so a drifting device clock is corrected.
 */
export class ServerClock {
  /** @param {() => number} [monotonic] milliseconds from any fixed origin */
  constructor(monotonic = () => globalThis.performance.now()) {
    this.monotonic = monotonic;
    /** server epoch ms minus monotonic ms; until a sample arrives, the device clock */
    this.offsetMs = Date.now() - monotonic();
    /** half the round trip of the kept sample, aged; Infinity before any sample */
    this.uncertaintyMs = Infinity;
    this.sampledAt = 0;
  }

  /**
   * Takes a sample: the server said `serverNow` in a reply to a request sent at `sentAt` and
   * received at `receivedAt` (both from {@link ServerClock.monotonic}). The server read its
   * clock somewhere in between; the midpoint is the best guess.
   * @param {string} serverNow RFC 3339
   * @param {number} sentAt
   * @param {number} [receivedAt]
   * @returns {boolean} whether the sample was kept
   */
  sample(serverNow, sentAt, receivedAt = this.monotonic()) {
    const server = Date.parse(serverNow);
    if (Number.isNaN(server)) return false;
    const half = Math.max(0, receivedAt - sentAt) / 2;
    // A kept sample loses 1 ms of precision per second of age (1000 ppm: far more than any
    // crystal drifts, so a fresher sample always wins eventually).
    const aged = this.uncertaintyMs + (receivedAt - this.sampledAt) / 1000;
    if (half > aged) return false;
    this.offsetMs = server - (sentAt + half);
    this.uncertaintyMs = half;
    this.sampledAt = receivedAt;
    return true;
  }

  /** @returns {number} the server's time now, epoch milliseconds */
  now() {
    return this.monotonic() + this.offsetMs;
  }

  /**
   * @param {string} iso an instant from the server
   * @returns {number} milliseconds until then by the server clock (negative once past)
   */
  until(iso) {
    return Date.parse(iso) - this.now();
  }
}

// ---------------------------------------------------------------------------------------------
// HubClient: auth and HTTP
// ---------------------------------------------------------------------------------------------

/**
 * @typedef {object} StoredAuth What sessionStorage keeps so a reload stays logged in.
 * @property {string} accessToken
 * @property {string} refreshToken
 * @property {number} accessExpiresAt epoch ms (device clock: only used to refresh early)
 * @property {User} user
 */

/**
 * @typedef {object} HubClientEvents
 * @property {{user: User | null, reason: "login" | "restored" | "refreshed" | "logout" | "expired"}} auth
 *   the login changed; `user: null` means the page must show the login again
 */

const AUTH_KEY = "proctor-hub:auth";

/**
 * Login, tokens and HTTP. Tokens live in sessionStorage: a reload keeps the login, closing the
 * tab ends it, and other tabs never share (and so never race to rotate) a refresh token.
 * @extends {Emitter<HubClientEvents>}
 */
export class HubClient extends Emitter {
  /**
   * @param {object} [options]
   * @param {string} [options.baseUrl] the hub's origin; "" = this page's
   * @param {StorageLike} [options.storage] where tokens live (default sessionStorage)
   * @param {typeof fetch} [options.fetch]
   * @param {ServerClock} [options.clock]
   * @param {Timers} [options.timers]
   */
  constructor({ baseUrl = "", storage, fetch: fetchImpl, clock, timers } = {}) {
    super();
    this.baseUrl = baseUrl.replace(/\/$/, "");
    this.storage = storage || webStorage("sessionStorage");
    this.fetchImpl = fetchImpl || ((input, init) => globalThis.fetch(input, init));
    this.clock = clock || new ServerClock();
    this.timers = timers || realTimers;
    /** @type {StoredAuth | null} */
    this.auth = null;
    /** @type {Promise<StoredAuth> | null} one refresh at a time: rotation spends the old token */
    this.refreshing = null;
    /** @type {unknown} */
    this.refreshTimer = null;
    this.restore();
  }

  /** @returns {User | null} */
  get user() {
    return this.auth ? this.auth.user : null;
  }

  /** Reads the tokens a previous load of this tab kept. */
  restore() {
    try {
      const raw = this.storage.getItem(AUTH_KEY);
      const auth = raw ? /** @type {StoredAuth} */ (JSON.parse(raw)) : null;
      if (auth && auth.refreshToken && auth.user) {
        this.auth = auth;
        this.scheduleRefresh();
      }
    } catch {
      this.storage.removeItem(AUTH_KEY);
    }
  }

  /**
   * @param {string} email
   * @param {string} password
   * @returns {Promise<User>}
   */
  async login(email, password) {
    /** @type {TokenResponse} */
    const res = await this.request("POST", "/auth/login", { email, password }, false);
    this.setTokens(res);
    this.emit("auth", { user: res.user, reason: "login" });
    return res.user;
  }

  /** Revokes the refresh token (best effort) and forgets the login. */
  async logout() {
    const auth = this.auth;
    this.clearTokens();
    this.emit("auth", { user: null, reason: "logout" });
    if (auth) {
      await this.request("POST", "/auth/logout", { refreshToken: auth.refreshToken }, false).catch(() => {});
    }
  }

  /**
   * Rotates the tokens. Concurrent callers share one request, because the hub spends the old
   * refresh token: a second request with it would look like a stolen token
   * (`REFRESH_TOKEN_REUSED`) and revoke the whole login.
   * @returns {Promise<StoredAuth>}
   */
  refresh() {
    if (this.refreshing) return this.refreshing;
    const auth = this.auth;
    if (!auth) return Promise.reject(new ApiError(401, "NOT_LOGGED_IN", "Not logged in"));
    this.refreshing = (async () => {
      try {
        /** @type {TokenResponse} */
        const res = await this.request("POST", "/auth/refresh", { refreshToken: auth.refreshToken }, false);
        this.setTokens(res);
        this.emit("auth", { user: res.user, reason: "refreshed" });
        return /** @type {StoredAuth} */ (this.auth);
      } catch (e) {
        // 401/410: the refresh token is spent, revoked or expired; only a new login helps.
        // Anything else (offline, 503) keeps the tokens for a later try.
        if (e instanceof ApiError && (e.status === 401 || e.status === 410)) {
          this.clearTokens();
          this.emit("auth", { user: null, reason: "expired" });
        } else {
          this.scheduleRefresh(10_000);
        }
        throw e;
      } finally {
        this.refreshing = null;
      }
    })();
    return this.refreshing;
  }

  /**
   * A usable access token, refreshed first when it is about to expire (the WebSocket's
   * `auth` needs one that lives a few seconds more).
   * @returns {Promise<string>}
   */
  async accessToken() {
    if (!this.auth) throw new ApiError(401, "NOT_LOGGED_IN", "Not logged in");
    if (this.auth.accessExpiresAt - Date.now() < 5_000) await this.refresh();
    return /** @type {StoredAuth} */ (this.auth).accessToken;
  }

  /**
   * Calls `/api/v1` + `path` with the access token. A 401 refreshes the tokens and retries
   * once (the token may have expired in flight, or the device clock may be off).
   * @template T
   * @param {string} method
   * @param {string} path e.g. "/me/exams"
   * @param {unknown} [body] sent as JSON
   * @returns {Promise<T>}
   * @throws {ApiError}
   */
  api(method, path, body) {
    return this.request(method, path, body, true);
  }

  /**
   * @template T
   * @param {string} method
   * @param {string} path
   * @param {unknown} body
   * @param {boolean} authed
   * @param {boolean} [retried]
   * @returns {Promise<T>}
   */
  async request(method, path, body, authed, retried = false) {
    /** @type {Record<string, string>} */
    const headers = {};
    if (body !== undefined) headers["content-type"] = "application/json";
    if (authed) headers.authorization = `Bearer ${await this.accessToken()}`;
    let res;
    try {
      res = await this.fetchImpl(`${this.baseUrl}/api/v1${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch {
      throw new ApiError(0, "NETWORK", "The hub could not be reached");
    }
    if (res.status === 401 && authed && !retried && this.auth) {
      await this.refresh();
      return this.request(method, path, body, authed, true);
    }
    if (!res.ok) throw await ApiError.from(res);
    if (res.status === 204) return /** @type {T} */ (undefined);
    return /** @type {Promise<T>} */ (res.json());
  }

  /**
   * Like {@link api}, and takes the body's `serverNow` as a clock sample.
   * @template {{serverNow: string}} T
   * @param {string} method
   * @param {string} path
   * @param {unknown} [body]
   * @returns {Promise<T>}
   */
  async timed(method, path, body) {
    const sentAt = this.clock.monotonic();
    /** @type {T} */
    const res = await this.api(method, path, body);
    this.clock.sample(res.serverNow, sentAt);
    return res;
  }

  // Typed helpers for the routes the pages use.

  /** @returns {Promise<Page<MyExam>>} */
  myExams() {
    return this.api("GET", "/me/exams");
  }
  /** @returns {Promise<Page<Exam>>} */
  exams() {
    return this.api("GET", "/exams");
  }
  /**
   * Starts the session, or resumes the STARTED one (409 `DEVICE_MISMATCH` on another laptop).
   * @param {string} examId
   * @param {string} [fingerprint]
   * @returns {Promise<Session>}
   */
  startSession(examId, fingerprint = deviceId()) {
    return this.timed("POST", `/exams/${encodeURIComponent(examId)}/sessions`, { deviceFingerprint: fingerprint });
  }
  /** @param {string} sessionId @returns {Promise<Session>} */
  session(sessionId) {
    return this.timed("GET", `/sessions/${encodeURIComponent(sessionId)}`);
  }
  /**
   * @param {string} sessionId
   * @param {string} questionId
   * @param {{response: AnswerResponse, version: number, latencyMs?: number}} body
   * @returns {Promise<SaveResult>}
   */
  saveAnswer(sessionId, questionId, body) {
    return this.api("PUT", `/sessions/${encodeURIComponent(sessionId)}/answers/${encodeURIComponent(questionId)}`, body);
  }
  /** @param {string} sessionId @returns {Promise<SubmitResult>} */
  submit(sessionId) {
    return this.api("POST", `/sessions/${encodeURIComponent(sessionId)}/submit`);
  }
  /** @param {string} sessionId @returns {Promise<Pairing>} */
  pairing(sessionId) {
    return this.api("POST", `/sessions/${encodeURIComponent(sessionId)}/pairing`);
  }

  /** @param {TokenResponse} res */
  setTokens(res) {
    this.auth = {
      accessToken: res.accessToken,
      refreshToken: res.refreshToken,
      accessExpiresAt: Date.now() + res.expiresIn * 1000,
      user: res.user,
    };
    this.storage.setItem(AUTH_KEY, JSON.stringify(this.auth));
    this.scheduleRefresh();
  }

  clearTokens() {
    this.auth = null;
    this.storage.removeItem(AUTH_KEY);
    if (this.refreshTimer != null) this.timers.clearTimeout(this.refreshTimer);
    this.refreshTimer = null;
  }

  /**
   * Refreshes ahead of expiry: a minute early, or at three quarters of a short lifetime.
   * @param {number} [inMs] override (a retry after a failed refresh)
   */
  scheduleRefresh(inMs) {
    if (this.refreshTimer != null) this.timers.clearTimeout(this.refreshTimer);
    this.refreshTimer = null;
    const auth = this.auth;
    if (!auth) return;
    const left = auth.accessExpiresAt - Date.now();
    const delay = inMs ?? Math.max(0, left - Math.min(60_000, left / 4));
    this.refreshTimer = this.timers.setTimeout(() => {
      this.refreshTimer = null;
      this.refresh().catch(() => {});
    }, delay);
  }
}

// ---------------------------------------------------------------------------------------------
// HubSocket: the WebSocket
// ---------------------------------------------------------------------------------------------

/**
 * - `connecting`: opening, or open and waiting for `authed`
 * - `open`: authenticated; rooms joined, events flowing
 * - `reconnecting`: dropped; the next try is in `retryInMs` (with `redirected: true` when the
 *   hub moved the connection to another of its servers: "moving to another server…")
 * - `stopped`: given up for good (see the `stopped` event)
 * @typedef {"idle" | "connecting" | "open" | "reconnecting" | "stopped"} SocketState
 */
/**
 * - `session-ended` (4503): the session is over; the page shows its end screen
 * - `replaced` (4504): the same session was opened in another tab or window
 * - `unauthenticated` (4500 and the refresh failed): log in again
 * - `forbidden` (4507), `protocol` (4501, 1009): a bug or a misuse; reconnecting cannot help
 * - `closed`: {@link HubSocket.stop} was called
 * @typedef {"session-ended" | "replaced" | "unauthenticated" | "forbidden" | "protocol" | "closed"} StopReason
 */
/**
 * @typedef {ServerMessageMap & {
 *   state: {state: SocketState, attempt: number, retryInMs?: number, closeCode?: number, resumed?: boolean, redirected?: boolean},
 *   stopped: {reason: StopReason, code: number},
 *   message: ServerMessage,
 *   "events-pending": {pending: number},
 * }} HubSocketEvents
 */

/** The close code a client sends on a socket it will resume (the hub keeps the connection). */
const RECONNECTING = 4000;

/** The close code after a `redirect`: this node is not the home of the socket's exam. */
const MOVED = 4010;

/** The close code of a node that shuts down. */
const GOING_AWAY = 4001;

/**
 * Redirects followed at once in a row without reaching a steady state (a `joined` or a
 * `session-snapshot`, or a connection that ended some other way after `authed`); beyond them
 * each redirect waits out the backoff, so two nodes that disagree cannot ping-pong a client
 * at full speed.
 */
const MAX_REDIRECTS = 5;

/** Close codes after which reconnecting is pointless, and what they mean. */
const STOP_CODES = /** @type {Record<number, StopReason>} */ ({
  4503: "session-ended",
  4504: "replaced",
  4507: "forbidden",
  4501: "protocol",
  1009: "protocol",
});

/**
 * What the socket needs from the login: the hub's address, a usable access token, a new one
 * after a 4500, and the server clock to feed. A {@link HubClient} is one; the phone page
 * (web/pair.js) brings its own, renewed from its device token.
 * @typedef {object} SocketAuth
 * @property {string} baseUrl
 * @property {ServerClock} clock
 * @property {() => Promise<string>} accessToken
 * @property {() => Promise<unknown>} refresh rejects with an {@link ApiError} 401/410 when
 *   only a new login (or pairing) can help
 */

/**
 * The hub's WebSocket with the exam-day behaviour of the contract:
 * - `auth` is the first frame; `authed` gives the heartbeat interval and a clock sample.
 * - Heartbeats every `heartbeatIntervalMs`; each `heartbeat-ack` is a clock sample. No frame
 *   for three intervals means the connection is dead even if the browser has not noticed (a
 *   laptop that changed Wi-Fi can keep a dead TCP connection for minutes): it is dropped and
 *   reconnected.
 * - Reconnect with {@link backoffDelay} on drops (network, 4001 going away, 1013 try later,
 *   4013 rate limited, …), at once when the browser says it is back `online`; on 4500 refresh
 *   the token first; stop on 4503/4504 (and on codes that retrying cannot fix).
 * - Rooms joined are joined again after every reconnect that is not a resume.
 * - Several nodes: a node that is not the home of the socket's exam sends `redirect` with the
 *   home's URL and closes with 4010; the socket reconnects there at once (state `reconnecting`
 *   with `redirected: true`) with a fresh `auth` (a resume belongs to the node that issued
 *   it), then joins its rooms again (and `authed` tells pages to re-send their `watch`es).
 *   After {@link MAX_REDIRECTS} redirects in a row without a steady state, redirects wait out
 *   the backoff. The entry URL is kept: when a redirected node fails (closed before `authed`,
 *   or 4001 going away) or a 4010 comes without a valid `redirect`, the next try goes to the
 *   entry URL, whose node redirects again, so a dead node never strands the client.
 * - Resume (CONTRACT, "Resuming a dropped socket"): a reconnect offers the last `resumeToken`
 *   and the highest `seq` processed. `resumed: true` continues the same peer with its rooms (no
 *   rejoin) and the hub replays what was missed; `resumed: false` is a new connection: the rooms
 *   are joined again and `seq` counts from 1 again. A pushed message whose `seq` is not above
 *   the last one processed was handled already and is not emitted again.
 * - Proctoring events are kept until their `event-ack` and resent after a reconnect (and after
 *   10 s without an ack); the hub dedupes by `eventId`, so a resend is always safe.
 * @extends {Emitter<HubSocketEvents>}
 */
export class HubSocket extends Emitter {
  /**
   * @param {SocketAuth} client usually the page's {@link HubClient}
   * @param {object} [options]
   * @param {string} [options.url] the entry URL; default: this page's origin + /ws
   * @param {typeof WebSocket} [options.WebSocket]
   * @param {Timers} [options.timers]
   * @param {() => number} [options.random]
   * @param {{addEventListener: EventTarget["addEventListener"], removeEventListener: EventTarget["removeEventListener"]} | null} [options.window]
   *   where `online` is heard; null for none
   * @param {{baseMs?: number, maxMs?: number}} [options.backoff]
   */
  constructor(client, { url, WebSocket: WS, timers, random, window: win, backoff } = {}) {
    super();
    this.client = client;
    /** where every fresh start goes, and where the socket falls back when a redirected node fails */
    this.entryUrl = url || socketUrl(client.baseUrl);
    /** the URL of the current (or next) connection: the entry URL or a redirect target */
    this.url = this.entryUrl;
    /** @type {string | null} a valid `redirect` target received on the current connection */
    this.redirectUrl = null;
    /** redirects followed since the last steady state (see {@link MAX_REDIRECTS}) */
    this.redirects = 0;
    /** whether the current connection got its `authed` */
    this.connAuthed = false;
    this.WS = WS || globalThis.WebSocket;
    this.timers = timers || realTimers;
    this.random = random || Math.random;
    this.backoff = { baseMs: 500, maxMs: 15_000, ...backoff };
    this.win = win === undefined ? (typeof window === "undefined" ? null : window) : win;
    /** @type {SocketState} */
    this.state = "idle";
    /** failed tries since the last `authed` */
    this.attempt = 0;
    /** @type {WebSocket | null} */
    this.ws = null;
    /** @type {Set<string>} */
    this.rooms = new Set();
    /** @type {Map<string, JoinedMessage>} the latest `joined` per room (its ICE servers) */
    this.joinedRooms = new Map();
    /** @type {Map<string, {report: EventReport, sentAt: number, sends: number}>} */
    this.events = new Map();
    /** @type {number[]} when each unanswered heartbeat left (acks come back in order) */
    this.heartbeatsSent = [];
    this.heartbeatMs = 10_000;
    this.lastFrameAt = 0;
    /** @type {AuthedMessage | null} */
    this.authed = null;
    /** @type {number | undefined} when the last `auth` left (monotonic): a clock sample */
    this.authSentAt = undefined;
    /**
     * @type {{token: string, windowMs: number, url: string} | null} how to resume the last
     *   connection; offered only to the URL (node) that issued it
     */
    this.resume = null;
    /** whether the last `auth` offered a resume (only then can `resumed: true` be believed) */
    this.resumeOffered = false;
    /** the highest pushed `seq` processed on the current connection (0: none yet) */
    this.lastSeq = 0;
    /** @type {Set<string>} rooms whose `joined` came on the current connection (kept by a resume) */
    this.serverRooms = new Set();
    /** @type {Set<string>} rooms left while down: a resumed connection still holds them */
    this.leftWhileDown = new Set();
    /** @type {Record<string, unknown>} */
    this.timer = {};
    this.onOnline = () => {
      if (this.state === "reconnecting") this.connect();
    };
  }

  /** Opens the socket (and keeps it open until {@link stop} or a stop code). */
  start() {
    if (this.state !== "idle" && this.state !== "stopped") return;
    this.attempt = 0;
    this.url = this.entryUrl;
    this.redirects = 0;
    this.win?.addEventListener("online", this.onOnline);
    this.connect();
  }

  /** Closes for good. */
  stop() {
    this.halt("closed", 1000);
  }

  /**
   * Sends now if authenticated. Messages are not queued (a stale `signal` or `join` after a
   * reconnect does more harm than good); use {@link join} and {@link sendEvent} for what must
   * survive a drop.
   * @param {ClientMessage} msg
   * @returns {boolean} whether it was sent
   */
  send(msg) {
    if (this.state !== "open" || !this.ws) return false;
    this.ws.send(JSON.stringify(msg));
    return true;
  }

  /** @param {string} roomId joined now if open, and after every reconnect that is not a resume */
  join(roomId) {
    this.rooms.add(roomId);
    this.leftWhileDown.delete(roomId);
    this.send({ type: "join", roomId });
  }

  /** @param {string} roomId */
  leave(roomId) {
    this.rooms.delete(roomId);
    this.joinedRooms.delete(roomId);
    this.serverRooms.delete(roomId);
    if (!this.send({ type: "leave", roomId })) this.leftWhileDown.add(roomId);
  }

  /** Laptop: reject the phone that just paired (it is closed with 4503). */
  rejectPairing() {
    return this.send({ type: "pairing-reject" });
  }

  /**
   * Queues a proctoring event until the hub acknowledges it.
   * @param {string} eventType
   * @param {number} severity 1..10
   * @param {Record<string, unknown>} [meta]
   * @returns {string} the eventId
   */
  sendEvent(eventType, severity, meta) {
    /** @type {EventReport} */
    const report = {
      eventId: uuid(),
      eventType,
      severity,
      timestamp: new Date(this.client.clock.now()).toISOString(),
    };
    if (meta) report.meta = meta;
    // Bounded: a laptop offline for hours must not grow without limit; the oldest go first.
    if (this.events.size >= 500) {
      const oldest = this.events.keys().next().value;
      if (oldest !== undefined) this.events.delete(oldest);
    }
    this.events.set(report.eventId, { report, sentAt: 0, sends: 0 });
    this.flushEvents();
    this.emit("events-pending", { pending: this.events.size });
    return report.eventId;
  }

  /** @private */
  connect() {
    this.clearTimer("retry");
    this.detach();
    this.redirectUrl = null;
    this.connAuthed = false;
    this.setState("connecting");
    let ws;
    try {
      ws = new this.WS(this.url);
    } catch {
      this.dropped(1006);
      return;
    }
    this.ws = ws;
    ws.onopen = async () => {
      try {
        const token = await this.client.accessToken();
        if (this.ws !== ws) return;
        this.authSentAt = this.client.clock.monotonic();
        /** @type {ClientMessage} */
        const auth = { type: "auth", token };
        // Always offer the resume we hold, even long after the drop: only the hub knows when
        // it noticed the drop (a silent one can take it a ping timeout), and a stale offer
        // just gets `resumed: false`. But only to the node that issued it: another node (after
        // a redirect, or back at the entry URL) has no state to resume, so a fresh `auth` there.
        const resume = this.resume && this.resume.url === this.url ? this.resume : null;
        this.resumeOffered = !!resume;
        if (resume) auth.resume = { token: resume.token, lastSeq: this.lastSeq };
        ws.send(JSON.stringify(auth));
      } catch (e) {
        if (this.ws !== ws) return;
        if (e instanceof ApiError && e.status === 401) this.halt("unauthenticated", 4500);
        else this.dropped(1006); // refresh failed for now (offline, 503): try again later
      }
    };
    ws.onmessage = (e) => this.receive(typeof e.data === "string" ? e.data : "");
    ws.onclose = (e) => {
      if (this.ws === ws) this.closed(e.code);
    };
    ws.onerror = () => {}; // a close event always follows
    // The hub closes a socket that has not authenticated within 10 s (4502); do the same on
    // our side so a connection stuck in the handshake does not hang forever.
    this.setTimer("auth", 12_000, () => {
      if (this.ws === ws && this.state === "connecting") this.dropped(4502);
    });
  }

  /**
   * @private
   * @param {string} text
   */
  receive(text) {
    /** @type {ServerMessage} */
    let msg;
    try {
      msg = JSON.parse(text);
    } catch {
      return;
    }
    const now = this.client.clock.monotonic();
    this.lastFrameAt = now;
    // After a resume the hub replays what this socket missed; anything at or below the last
    // seq processed was handled before the drop and must not reach the page twice.
    const seq = /** @type {Sequenced} */ (msg).seq;
    if (typeof seq === "number") {
      if (seq <= this.lastSeq) return;
      this.lastSeq = seq;
    }
    switch (msg.type) {
      case "authed": {
        const resumed = this.resumeOffered && msg.resumed === true;
        this.authed = msg;
        this.connAuthed = true;
        this.resume = msg.resumeToken
          ? { token: msg.resumeToken, windowMs: msg.resumeWindowMs ?? 0, url: this.url }
          : null;
        this.client.clock.sample(msg.serverNow, this.authSentAt ?? now, now);
        this.attempt = 0;
        this.clearTimer("auth");
        this.heartbeatMs = msg.heartbeatIntervalMs || 10_000;
        this.heartbeatsSent = [];
        if (!resumed) {
          // A new connection: its pushes number from 1, and it is in no room yet.
          this.lastSeq = 0;
          this.serverRooms.clear();
          this.leftWhileDown.clear();
        }
        this.setState("open", { resumed });
        // A resumed connection kept its rooms: join only those asked for while down.
        for (const room of this.rooms) {
          if (!resumed || !this.serverRooms.has(room)) this.send({ type: "join", roomId: room });
        }
        for (const room of this.leftWhileDown) this.send({ type: "leave", roomId: room });
        this.leftWhileDown.clear();
        // Acks may have been lost with the old socket, resumed or not: the hub dedupes by eventId.
        for (const pending of this.events.values()) pending.sentAt = 0; // resend all now
        this.flushEvents();
        this.heartbeat();
        break;
      }
      case "heartbeat-ack": {
        const sentAt = this.heartbeatsSent.shift();
        if (sentAt !== undefined) this.client.clock.sample(msg.serverNow, sentAt, now);
        break;
      }
      case "event-ack":
        if (this.events.delete(msg.eventId)) this.emit("events-pending", { pending: this.events.size });
        break;
      case "joined":
        this.joinedRooms.set(msg.roomId, msg);
        this.serverRooms.add(msg.roomId);
        this.redirects = 0; // this node took the room: a steady state
        break;
      case "session-snapshot":
        this.redirects = 0; // this node took the `watch`: a steady state
        break;
      case "redirect":
        // Followed when the 4010 close comes; a target that is not a WebSocket URL is ignored
        // (the 4010 then goes back to the entry URL).
        this.redirectUrl = redirectTarget(msg.url, this.entryUrl);
        break;
    }
    this.emit("message", msg);
    this.emit(msg.type, /** @type {any} */ (msg));
  }

  /** @private sends a heartbeat, checks the connection is alive, and schedules the next */
  heartbeat() {
    if (this.state !== "open") return;
    const now = this.client.clock.monotonic();
    if (now - this.lastFrameAt > 3 * this.heartbeatMs) {
      this.dropped(4012);
      return;
    }
    this.heartbeatsSent.push(now);
    if (this.heartbeatsSent.length > 10) this.heartbeatsSent.shift();
    this.send({ type: "heartbeat" });
    this.flushEvents(10_000);
    this.setTimer("heartbeat", this.heartbeatMs, () => this.heartbeat());
  }

  /**
   * @private
   * @param {number} [olderThanMs] resend only those sent at least this long ago
   */
  flushEvents(olderThanMs = 0) {
    if (this.state !== "open") return;
    const now = this.client.clock.monotonic();
    for (const [id, pending] of this.events) {
      if (pending.sentAt && now - pending.sentAt < olderThanMs) continue;
      // An event the hub keeps refusing (its error replies carry no eventId) is dropped after
      // 20 sends instead of being retried for ever.
      if (pending.sends >= 20) {
        this.events.delete(id);
        continue;
      }
      pending.sentAt = now;
      pending.sends += 1;
      this.send({ type: "event", ...pending.report });
    }
  }

  /**
   * @private the socket closed
   * @param {number} code
   */
  async closed(code) {
    this.detach();
    const redirect = this.redirectUrl;
    this.redirectUrl = null;
    const stop = STOP_CODES[code];
    if (stop) return this.halt(stop, code);
    if (code === MOVED && redirect) return this.follow(redirect);
    // A connection that worked and ended some other way breaks a chain of redirects.
    if (this.connAuthed && code !== MOVED) this.redirects = 0;
    if (code === 4500) {
      // The token was refused: refresh, then reconnect. A failed refresh that is not an auth
      // failure (offline) falls back to the backoff.
      try {
        await this.client.refresh();
      } catch (e) {
        if (e instanceof ApiError && (e.status === 401 || e.status === 410)) {
          return this.halt("unauthenticated", code);
        }
      }
    }
    this.dropped(code);
  }

  /**
   * @private schedules the next try
   * @param {number} code
   */
  dropped(code) {
    if (this.state === "stopped") return;
    // A redirected node that failed before `authed` or is going away (or any 4010 without a
    // redirect to follow): back to the entry URL, whose node knows where to go now. An
    // authenticated connection that merely dropped retries its node, where it can resume.
    if (this.url !== this.entryUrl && (!this.connAuthed || code === GOING_AWAY || code === MOVED)) {
      this.url = this.entryUrl;
    }
    this.retryLater(code);
  }

  /**
   * @private reconnects to `url`, where a `redirect` sent this socket: at once, or after the
   *   backoff once {@link MAX_REDIRECTS} redirects came in a row
   * @param {string} url
   */
  follow(url) {
    if (this.state === "stopped") return;
    this.redirects += 1;
    this.url = url;
    // The new node has nothing to resume; the old one handed the connection over.
    this.resume = null;
    if (this.redirects > MAX_REDIRECTS) {
      // `authed` resets `attempt`, so a redirect after it would always wait the shortest
      // step: let the length of the chain grow the delay instead.
      this.attempt = Math.max(this.attempt, this.redirects - MAX_REDIRECTS - 1);
      this.retryLater(MOVED, true);
      return;
    }
    this.setState("reconnecting", { retryInMs: 0, closeCode: MOVED, redirected: true });
    this.connect();
  }

  /**
   * @private schedules the next try after the backoff
   * @param {number} code
   * @param {boolean} [redirected]
   */
  retryLater(code, redirected = false) {
    this.detach(RECONNECTING);
    const retryInMs = backoffDelay(this.attempt, { ...this.backoff, random: this.random });
    this.attempt += 1;
    this.setState("reconnecting", { retryInMs, closeCode: code, ...(redirected && { redirected }) });
    this.setTimer("retry", retryInMs, () => this.connect());
  }

  /**
   * @private
   * @param {StopReason} reason
   * @param {number} code
   */
  halt(reason, code) {
    if (this.state === "stopped") return;
    this.detach();
    this.clearTimer("retry");
    this.win?.removeEventListener("online", this.onOnline);
    // Stopped for good (or closed with a close frame, which the hub forgets at once): a later
    // start() is a new connection.
    this.resume = null;
    this.lastSeq = 0;
    this.serverRooms.clear();
    this.leftWhileDown.clear();
    this.setState("stopped", { closeCode: code });
    this.emit("stopped", { reason, code });
  }

  /**
   * @private forgets the current socket (closing it) and its timers
   * @param {number} [closeCode] 1000 when this connection is over; 4000 ("reconnecting")
   *   when a new socket will resume it, so the hub keeps it for the resume window
   */
  detach(closeCode = 1000) {
    const ws = this.ws;
    this.ws = null;
    this.clearTimer("heartbeat");
    this.clearTimer("auth");
    if (ws) {
      ws.onopen = null;
      ws.onmessage = null;
      ws.onclose = null;
      ws.onerror = null;
      try {
        ws.close(closeCode);
      } catch {
        // already closed
      }
    }
  }

  /**
   * @private
   * @param {SocketState} state
   * @param {{retryInMs?: number, closeCode?: number, resumed?: boolean, redirected?: boolean}} [extra]
   */
  setState(state, extra = {}) {
    this.state = state;
    this.emit("state", { state, attempt: this.attempt, ...extra });
  }

  /**
   * @private
   * @param {string} name
   * @param {number} ms
   * @param {() => void} fn
   */
  setTimer(name, ms, fn) {
    this.clearTimer(name);
    this.timer[name] = this.timers.setTimeout(() => {
      delete this.timer[name];
      fn();
    }, ms);
  }

  /** @private @param {string} name */
  clearTimer(name) {
    if (name in this.timer) this.timers.clearTimeout(this.timer[name]);
    delete this.timer[name];
  }
}

/**
 * A `redirect` target the socket may follow: a ws: or wss: URL, and not ws: when the entry
 * is wss: (the token would then travel in clear, and a secure page cannot open it anyway).
 * @param {unknown} url
 * @param {string} entryUrl
 * @returns {string | null} the URL to follow, or null to ignore the redirect
 */
export function redirectTarget(url, entryUrl) {
  if (typeof url !== "string" || url === "") return null;
  let u;
  try {
    u = new URL(url);
  } catch {
    return null;
  }
  if (u.protocol !== "ws:" && u.protocol !== "wss:") return null;
  if (u.protocol === "ws:" && /^wss:/i.test(entryUrl)) return null;
  if (u.username || u.password) return null;
  return u.href;
}

/** @param {string} baseUrl */
function socketUrl(baseUrl) {
  if (baseUrl) return `${baseUrl.replace(/^http/, "ws")}/ws`;
  const loc = globalThis.location;
  return `${loc.protocol === "https:" ? "wss:" : "ws:"}//${loc.host}/ws`;
}

// ---------------------------------------------------------------------------------------------
// AnswerQueue: durable autosave
// ---------------------------------------------------------------------------------------------

/**
 * - `saved`: the newest version is stored by the hub
 * - `saving`: a request for it is in flight
 * - `queued`: waiting its turn, the typing pause, or a retry after 503/429
 * - `offline`: the last try got no answer; retrying with backoff
 * - `error`: the hub refused this version (4xx other than 409 `SESSION_CLOSED`); a new edit
 *   tries again
 * @typedef {"saved" | "saving" | "queued" | "offline" | "error"} AnswerStatus
 */
/**
 * @typedef {object} AnswerEntry What is kept per question (in storage, as JSON).
 * @property {AnswerResponse} response the newest local response
 * @property {number} version its version (per question, increasing)
 * @property {number} savedVersion the newest version the hub confirmed
 * @property {number | null} pendingSince edit sequence number of the oldest unsaved edit
 *   (orders the flush), null when saved
 * @property {number} editedAt when the newest version was made (queue clock, ms)
 * @property {{version: number, status: number, code: string, message: string} | null} error
 */
/**
 * @typedef {object} QueueSummary
 * @property {number} queued questions whose newest version is not saved yet
 * @property {boolean} saving a request is in flight
 * @property {boolean} offline the last try got no answer
 * @property {boolean} closed the session refused saves (409 SESSION_CLOSED): nothing more is sent
 * @property {number | null} retryAt when the next retry is due (queue clock), if waiting
 */
/**
 * @typedef {object} AnswerQueueEvents
 * @property {{questionId: string, status: AnswerStatus, version: number, savedVersion: number}} status
 * @property {QueueSummary} change
 * @property {{questionId: string, status: number, code: string, message: string}} error
 *   a save refused for good (validation); the question shows `error`
 * @property {{code: string, message: string, unsaved: string[]}} closed the session ended:
 *   `unsaved` lists the questions whose newest version never reached the hub
 */
/**
 * Sends one save. Resolves with the hub's answer, rejects with something carrying `status`
 * (0 = no answer), `code` and `retryAfter` seconds — an {@link ApiError}.
 * @typedef {(questionId: string, body: {response: AnswerResponse, version: number, latencyMs?: number}) => Promise<SaveResult>} SaveTransport
 */

/**
 * The autosave queue. Every edit is written to storage first (localStorage by default), then
 * sent; so a reload, a crashed tab or a long offline stretch loses nothing, and a new queue on
 * the same storage (the reloaded page) picks up where the old one stopped.
 *
 * Rules:
 * - Each edit takes the next version of its question. Only the newest version of a question is
 *   sent; the hub never lets an older version overwrite a newer one, so skipped versions do no
 *   harm and retries with the same version are safe.
 * - One request at a time, questions in the order of their oldest unsaved edit, so what was
 *   typed first is saved first. A question is sent `sendDelayMs` after its last edit (typing
 *   is not a request per key), or at once after {@link flushNow}.
 * - No answer (offline) → status `offline`, retry with {@link backoffDelay}; {@link wake}
 *   retries at once (call it on the browser's `online` event).
 * - 503/429/5xx → `queued`, retry after `Retry-After` when given, else with backoff.
 * - 409 `SESSION_CLOSED` → stop; the `closed` event lists what was not saved.
 * - Any other 4xx → that version is `error` and reported; the queue goes on with the others.
 * @extends {Emitter<AnswerQueueEvents>}
 */
export class AnswerQueue extends Emitter {
  /**
   * @param {object} options
   * @param {string} options.sessionId
   * @param {SaveTransport} options.transport
   * @param {StorageLike} [options.storage] default localStorage
   * @param {Timers} [options.timers]
   * @param {() => number} [options.now] ms clock for delays (default Date.now)
   * @param {() => number} [options.random] jitter source
   * @param {number} [options.sendDelayMs] pause after the last edit before sending (default 400)
   * @param {{baseMs?: number, maxMs?: number}} [options.backoff] default 1 s doubling to 30 s
   */
  constructor({ sessionId, transport, storage, timers, now, random, sendDelayMs = 400, backoff }) {
    super();
    this.sessionId = sessionId;
    this.transport = transport;
    this.storage = storage || webStorage("localStorage");
    this.timers = timers || realTimers;
    this.now = now || (() => Date.now());
    this.random = random || Math.random;
    this.sendDelayMs = sendDelayMs;
    this.backoff = { baseMs: 1_000, maxMs: 30_000, ...backoff };
    this.key = `proctor-hub:answers:v1:${sessionId}`;
    /** @type {Record<string, AnswerEntry>} */
    this.entries = {};
    /** edit counter: orders the flush across questions */
    this.seq = 0;
    /** @type {string | null} question whose save is in flight */
    this.inFlight = null;
    /** failed tries in a row (network or store); reset by any success */
    this.failures = 0;
    this.offline = false;
    this.closed = false;
    this.stopped = false;
    /** ignore the typing pause until the queue is empty ({@link flushNow}) */
    this.urgent = false;
    /** @type {number | null} */
    this.retryAt = null;
    /** @type {unknown} */
    this.timer = null;
    /** @type {Set<() => void>} */
    this.idleWaiters = new Set();
    this.load();
  }

  /** @private reads what an earlier page left */
  load() {
    try {
      const raw = this.storage.getItem(this.key);
      if (!raw) return;
      const data = JSON.parse(raw);
      this.entries = data.entries || {};
      this.seq = data.seq || 0;
      this.closed = !!data.closed;
    } catch {
      // unreadable: start empty; the hub still has everything that was saved
    }
  }

  /** @private */
  persist() {
    try {
      this.storage.setItem(this.key, JSON.stringify({ seq: this.seq, closed: this.closed, entries: this.entries }));
    } catch (e) {
      // Storage full or refused: the queue still works from memory; the page should know that
      // a crash would now lose the unsaved edits.
      this.emit("error", { questionId: "", status: 0, code: "STORAGE_FAILED", message: String(e) });
    }
  }

  /**
   * Merges the answers the hub returned with the session (start or resume). The hub's answer
   * wins when it is as new as ours or newer (ours was saved, maybe by a request whose reply we
   * never got); a newer local edit stays queued.
   * @param {Record<string, SavedAnswer>} answers
   */
  seed(answers) {
    for (const [qid, saved] of Object.entries(answers || {})) {
      if (!saved || saved.response == null) continue;
      const e = this.entries[qid];
      if (!e || saved.version >= e.version) {
        this.entries[qid] = {
          response: saved.response,
          version: saved.version,
          savedVersion: saved.version,
          pendingSince: null,
          editedAt: this.now(),
          error: null,
        };
      } else {
        e.savedVersion = Math.max(e.savedVersion, saved.version);
      }
    }
    this.persist();
    this.changed();
    this.pump();
  }

  /**
   * @param {string} questionId
   * @returns {AnswerEntry | undefined} the newest local state (what the page should show)
   */
  get(questionId) {
    return this.entries[questionId];
  }

  /**
   * Records an edit (persisted before this returns) and schedules its save.
   * @param {string} questionId
   * @param {AnswerResponse} response
   * @returns {number} the version it got
   */
  edit(questionId, response) {
    if (this.closed) throw new Error("the session is closed: answers can no longer be saved");
    const e = this.entries[questionId];
    const version = e ? Math.max(e.version, e.savedVersion) + 1 : 1;
    this.seq += 1;
    this.entries[questionId] = {
      response,
      version,
      savedVersion: e ? e.savedVersion : 0,
      pendingSince: e && e.pendingSince != null ? e.pendingSince : this.seq,
      editedAt: this.now(),
      error: null,
    };
    this.persist();
    this.statusChanged(questionId);
    this.pump();
    return version;
  }

  /**
   * @param {string} questionId
   * @returns {AnswerStatus}
   */
  status(questionId) {
    const e = this.entries[questionId];
    if (!e || e.version <= e.savedVersion) return "saved";
    if (this.inFlight === questionId) return "saving";
    if (this.closed || (e.error && e.error.version === e.version)) return "error";
    if (this.offline) return "offline";
    return "queued";
  }

  /** @returns {string[]} questions whose newest version is not saved, in flush order */
  pendingIds() {
    return Object.entries(this.entries)
      .filter(([, e]) => e.version > e.savedVersion)
      .sort(([, a], [, b]) => (a.pendingSince ?? 0) - (b.pendingSince ?? 0))
      .map(([id]) => id);
  }

  /** @returns {QueueSummary} */
  summary() {
    return {
      queued: this.pendingIds().length,
      saving: this.inFlight != null,
      offline: this.offline,
      closed: this.closed,
      retryAt: this.retryAt,
    };
  }

  /** Retries now, skipping the backoff wait (the browser went `online`, the hub is back). */
  wake() {
    this.retryAt = null;
    this.pump();
  }

  /** Sends everything now, without the typing pause (leaving a question, before submit). */
  flushNow() {
    this.urgent = true;
    this.wake();
  }

  /**
   * Flushes and waits until nothing is pending.
   * @param {number} [timeoutMs]
   * @returns {Promise<boolean>} true when everything is saved; false on timeout or when the
   *   session closed with unsaved answers
   */
  drain(timeoutMs = 10_000) {
    this.flushNow();
    return new Promise((resolve) => {
      /** @type {unknown} */
      let timer = null;
      const check = () => {
        const pending = this.pendingIds();
        // Done when nothing is pending, or when what is left cannot be sent (the session
        // closed, or the hub refused those versions).
        const blocked = pending.every((id) => this.status(id) === "error");
        if (pending.length === 0 || blocked) finish(pending.length === 0);
      };
      /** @param {boolean} ok */
      const finish = (ok) => {
        this.idleWaiters.delete(check);
        if (timer != null) this.timers.clearTimeout(timer);
        resolve(ok);
      };
      this.idleWaiters.add(check);
      timer = this.timers.setTimeout(() => finish(false), timeoutMs);
      check();
    });
  }

  /** Stops sending (the page is going away); what is queued stays in storage. */
  stop() {
    this.stopped = true;
    if (this.timer != null) this.timers.clearTimeout(this.timer);
    this.timer = null;
  }

  /** Forgets the stored state: call once the session ended and nothing is left to send. */
  discard() {
    this.stop();
    this.storage.removeItem(this.key);
  }

  /**
   * @private runs {@link pump} after `ms`
   * @param {number} ms
   */
  schedule(ms) {
    if (this.timer != null) this.timers.clearTimeout(this.timer);
    this.timer = this.timers.setTimeout(() => {
      this.timer = null;
      this.pump();
    }, Math.max(0, ms));
  }

  /** @private sends the next due save, or sleeps until one is due */
  pump() {
    if (this.stopped || this.closed || this.inFlight != null) return;
    const now = this.now();
    if (this.retryAt != null && this.retryAt > now) return this.schedule(this.retryAt - now);
    this.retryAt = null;
    const pending = this.pendingIds();
    if (pending.length === 0) {
      this.urgent = false;
      return;
    }
    let wakeAt = Infinity;
    for (const qid of pending) {
      const e = this.entries[qid];
      if (e.error && e.error.version === e.version) continue; // refused; waits for a new edit
      const dueAt = this.urgent ? now : e.editedAt + this.sendDelayMs;
      if (dueAt <= now) {
        this.send(qid);
        return;
      }
      wakeAt = Math.min(wakeAt, dueAt);
    }
    if (wakeAt !== Infinity) this.schedule(wakeAt - now);
  }

  /**
   * @private
   * @param {string} qid
   */
  async send(qid) {
    const sent = this.entries[qid];
    const version = sent.version;
    this.inFlight = qid;
    this.statusChanged(qid);
    try {
      const res = await this.transport(qid, {
        response: sent.response,
        version,
        // How long this version waited on the device (typing pause, queue, offline): the hub
        // keeps it for its save-latency metrics, which the contract bounds to 10 minutes.
        latencyMs: Math.min(600_000, Math.max(0, Math.round(this.now() - sent.editedAt))),
      });
      this.saved(qid, version, res);
    } catch (err) {
      this.failed(qid, version, /** @type {any} */ (err));
    } finally {
      this.inFlight = null;
      this.persist();
      this.statusChanged(qid);
      for (const check of [...this.idleWaiters]) check();
      this.pump();
    }
  }

  /**
   * @private
   * @param {string} qid
   * @param {number} version the version sent
   * @param {SaveResult} res
   */
  saved(qid, version, res) {
    this.failures = 0;
    this.offline = false;
    const e = this.entries[qid];
    // The hub answers with the version it now holds: ours, or a newer one it already had.
    e.savedVersion = Math.max(e.savedVersion, version);
    if (typeof res?.version === "number" && res.version > e.version) {
      // The hub holds a version we never made (storage was lost and restarted at 1): number
      // the next edit above it so it is not ignored as older.
      e.version = e.savedVersion = res.version;
    }
    if (e.version <= e.savedVersion) e.pendingSince = null;
  }

  /**
   * @private
   * @param {string} qid
   * @param {number} version
   * @param {{status?: number, code?: string, message?: string, retryAfter?: number | null}} err
   */
  failed(qid, version, err) {
    const status = typeof err?.status === "number" ? err.status : 0;
    const code = err?.code || (status === 0 ? "NETWORK" : `HTTP_${status}`);
    const message = err?.message || String(err);
    if (status === 409 && code === "SESSION_CLOSED") {
      this.closed = true;
      this.emit("closed", { code, message, unsaved: this.pendingIds() });
      return;
    }
    if (status === 0 || status === 429 || status >= 500) {
      this.offline = status === 0;
      const wait =
        status !== 0 && typeof err.retryAfter === "number"
          ? err.retryAfter * 1000
          : backoffDelay(this.failures, { ...this.backoff, random: this.random });
      this.failures += 1;
      this.retryAt = this.now() + wait;
      return;
    }
    // Refused for good (422 validation, 413 too large, 404, …): retrying the same body cannot
    // help. Mark this version; a new edit of the question gets a new chance.
    this.entries[qid].error = { version, status, code, message };
    this.emit("error", { questionId: qid, status, code, message });
  }

  /** @private @param {string} qid */
  statusChanged(qid) {
    const e = this.entries[qid];
    this.emit("status", {
      questionId: qid,
      status: this.status(qid),
      version: e ? e.version : 0,
      savedVersion: e ? e.savedVersion : 0,
    });
    this.changed();
  }

  /** @private */
  changed() {
    this.emit("change", this.summary());
  }
}

// ---------------------------------------------------------------------------------------------
// ProctoringMonitor: what the laptop reports by itself
// ---------------------------------------------------------------------------------------------

/**
 * The signals, their severities (1–10, what the hub multiplies by the exam policy's weight) and
 * their debouncing. The thresholds keep out what a candidate does not do on purpose: an OS
 * notification that steals focus for a moment, a window manager animation.
 *
 * | event             | severity | reported when                                               |
 * |-------------------|----------|-------------------------------------------------------------|
 * | `TAB_HIDDEN`      | 5        | the page stays hidden ≥ 1 s (another tab, minimised); once per hide, while still hidden, meta `{hiddenAfterMs}` |
 * | `WINDOW_BLUR`     | 3        | the window loses focus ≥ 2 s while the page stays visible (another app on top); not when the page is hidden (that is `TAB_HIDDEN`) |
 * | `FULLSCREEN_EXIT` | 4        | the page leaves fullscreen it had entered; at once, at most once per 5 s |
 * | `COPY_PASTE`      | 4        | copy, cut or paste in the page: the first at once, later ones in the next 10 s (the hub's coalescing window) summed into one event at the window's end; meta `{copy, cut, paste}` counts and `pastedChars`, never the text |
 */
export const SIGNALS = Object.freeze({
  TAB_HIDDEN: { severity: 5, afterMs: 1_000 },
  WINDOW_BLUR: { severity: 3, afterMs: 2_000 },
  FULLSCREEN_EXIT: { severity: 4, minGapMs: 5_000 },
  COPY_PASTE: { severity: 4, windowMs: 10_000 },
});

/** @typedef {(eventType: keyof typeof SIGNALS, severity: number, meta: Record<string, unknown>) => void} SignalSink */

/**
 * Watches the page and reports {@link SIGNALS} through `report` (usually
 * `(t, s, m) => socket.sendEvent(t, s, m)`).
 */
export class ProctoringMonitor {
  /**
   * @param {object} options
   * @param {SignalSink} options.report
   * @param {Document} [options.document]
   * @param {Window} [options.window]
   * @param {Timers} [options.timers]
   * @param {() => number} [options.now]
   */
  constructor({ report, document: doc, window: win, timers, now }) {
    this.report = report;
    this.doc = doc || globalThis.document;
    this.win = win || globalThis.window;
    this.timers = timers || realTimers;
    this.now = now || (() => Date.now());
    /** @type {Record<string, unknown>} */
    this.pending = {};
    this.lastFullscreenExit = -Infinity;
    this.wasFullscreen = !!this.doc.fullscreenElement;
    /** @type {{copy: number, cut: number, paste: number, pastedChars: number} | null} */
    this.clipboard = null;
    /** @type {[EventTarget, string, (e: any) => void][]} */
    this.listeners = [
      [this.doc, "visibilitychange", () => this.onVisibility()],
      [this.win, "blur", () => this.onBlur()],
      [this.win, "focus", () => this.cancel("blur")],
      [this.doc, "fullscreenchange", () => this.onFullscreen()],
      [this.doc, "copy", () => this.onClipboard("copy", 0)],
      [this.doc, "cut", () => this.onClipboard("cut", 0)],
      [this.doc, "paste", (e) => this.onClipboard("paste", pastedLength(e))],
    ];
  }

  start() {
    for (const [target, type, fn] of this.listeners) target.addEventListener(type, fn);
  }

  stop() {
    for (const [target, type, fn] of this.listeners) target.removeEventListener(type, fn);
    for (const name of Object.keys(this.pending)) this.cancel(name);
  }

  /** @private */
  onVisibility() {
    if (this.doc.visibilityState === "hidden") {
      this.cancel("blur");
      const { severity, afterMs } = SIGNALS.TAB_HIDDEN;
      this.later("hidden", afterMs, () => {
        if (this.doc.visibilityState === "hidden") this.report("TAB_HIDDEN", severity, { hiddenAfterMs: afterMs });
      });
    } else {
      this.cancel("hidden");
    }
  }

  /** @private */
  onBlur() {
    const { severity, afterMs } = SIGNALS.WINDOW_BLUR;
    this.later("blur", afterMs, () => {
      if (this.doc.visibilityState !== "hidden" && !this.doc.hasFocus()) {
        this.report("WINDOW_BLUR", severity, { blurredAfterMs: afterMs });
      }
    });
  }

  /** @private */
  onFullscreen() {
    const now = !!this.doc.fullscreenElement;
    const exited = this.wasFullscreen && !now;
    this.wasFullscreen = now;
    if (!exited) return;
    const { severity, minGapMs } = SIGNALS.FULLSCREEN_EXIT;
    if (this.now() - this.lastFullscreenExit < minGapMs) return;
    this.lastFullscreenExit = this.now();
    this.report("FULLSCREEN_EXIT", severity, {});
  }

  /**
   * @private
   * @param {"copy" | "cut" | "paste"} action
   * @param {number} chars
   */
  onClipboard(action, chars) {
    if (this.clipboard) {
      // Inside a window: count now, report the sum when the window ends.
      this.clipboard[action] += 1;
      this.clipboard.pastedChars += chars;
      return;
    }
    const first = { copy: 0, cut: 0, paste: 0, pastedChars: chars };
    first[action] = 1;
    this.report("COPY_PASTE", SIGNALS.COPY_PASTE.severity, first);
    this.openClipboardWindow();
  }

  /**
   * @private starts a window; at its end, what it counted is reported as one event, which
   * opens the next window — so a steady stream of pastes makes one event per window, and the
   * first one after a quiet window is reported at once.
   */
  openClipboardWindow() {
    this.clipboard = { copy: 0, cut: 0, paste: 0, pastedChars: 0 };
    this.later("clipboard", SIGNALS.COPY_PASTE.windowMs, () => {
      const summed = this.clipboard;
      this.clipboard = null;
      if (summed && summed.copy + summed.cut + summed.paste > 0) {
        this.report("COPY_PASTE", SIGNALS.COPY_PASTE.severity, summed);
        this.openClipboardWindow();
      }
    });
  }

  /**
   * @private
   * @param {string} name
   * @param {number} ms
   * @param {() => void} fn
   */
  later(name, ms, fn) {
    this.cancel(name);
    this.pending[name] = this.timers.setTimeout(() => {
      delete this.pending[name];
      fn();
    }, ms);
  }

  /** @private @param {string} name */
  cancel(name) {
    if (name in this.pending) this.timers.clearTimeout(this.pending[name]);
    delete this.pending[name];
  }
}

/** @param {ClipboardEvent} e */
function pastedLength(e) {
  try {
    return e.clipboardData ? e.clipboardData.getData("text").length : 0;
  } catch {
    return 0;
  }
}

// ---------------------------------------------------------------------------------------------
// MediaPublisher: camera, microphone and screen to the hub's media relay
// ---------------------------------------------------------------------------------------------

/** @typedef {"camera" | "screen" | "microphone" | "phone-camera"} MediaSource `phone-camera`: a paired phone's */
/**
 * - `idle`: nothing published
 * - `negotiating`: offer sent, waiting for the relay's answer or for ICE/DTLS
 * - `connected`: media flows to the relay
 * - `retrying`: the connection failed or the socket dropped; publishing again soon
 * @typedef {"idle" | "negotiating" | "connected" | "retrying"} MediaState
 */
/**
 * @typedef {object} MediaPublisherEvents
 * @property {{state: MediaState}} state
 * @property {{source: MediaSource}} ended the browser or the person stopped a track (e.g. the
 *   "Stop sharing" bar of a screen share); the page should offer to share again
 * @property {{source: MediaSource | "relay", message: string}} error a source could not be
 *   captured, or the relay refused
 * @property {{pc: RTCPeerConnection}} connection a new RTCPeerConnection to the relay (each
 *   publish makes one and closes the previous): for pages and tests that read its stats
 */

/**
 * Publishes the laptop's camera (simulcast: a low and a high layer, so a proctor's grid pulls the
 * small one), microphone and screen to the hub's media relay, as the contract's extension
 * describes: `signal` to `"hub"` with an offer whose `tracks` map each m-line's `mid` to its
 * source; the relay answers; ICE candidates go the same way.
 *
 * It follows the socket: after a reconnect (a new `joined` for the room) or a relay
 * `MEDIA_CLOSED`, or when the connection fails, it publishes the same tracks again on a fresh
 * RTCPeerConnection (simpler and sturdier than an ICE restart, and the relay drops the old
 * one with the old socket anyway). A resumed socket keeps its relay connection, so nothing is
 * published again then, unless a retry came due while the socket was down.
 *
 * A phone publishes its one camera with {@link startCamera} and source `phone-camera`.
 * @extends {Emitter<MediaPublisherEvents>}
 */
export class MediaPublisher extends Emitter {
  /**
   * @param {HubSocket} socket joined (or joining) `roomId`
   * @param {string} roomId the session's `webrtcRoomId`
   * @param {object} [options]
   * @param {boolean} [options.simulcast] camera in two layers (default true)
   * @param {MediaDevices} [options.mediaDevices]
   */
  constructor(socket, roomId, { simulcast = true, mediaDevices } = {}) {
    super();
    this.socket = socket;
    this.roomId = roomId;
    this.simulcast = simulcast;
    this.devices = mediaDevices || globalThis.navigator?.mediaDevices;
    /** @type {{track: MediaStreamTrack, source: MediaSource}[]} */
    this.tracks = [];
    /** @type {RTCPeerConnection | null} */
    this.pc = null;
    /** @type {IceServer[]} */
    this.iceServers = socket.joinedRooms?.get(roomId)?.iceServers || [];
    /** @type {MediaState} */
    this.state = "idle";
    this.failures = 0;
    /** @type {ReturnType<typeof setTimeout> | null} */
    this.retryTimer = null;
    /** @type {(() => void)[]} */
    this.unsubscribe = [
      socket.on("joined", (m) => {
        if (m.roomId !== this.roomId) return;
        this.iceServers = m.iceServers || [];
        // A (re)join means a new socket: the relay forgot the old connection.
        if (this.tracks.length) this.publish();
      }),
      // A resumed socket sends no `joined` (its rooms and relay connection were kept); publish
      // only what a retry could not publish while the socket was down.
      socket.on("authed", (m) => {
        if (m.resumed && this.tracks.length && !this.pc) this.publish();
      }),
      socket.on("signal", (m) => this.onSignal(m)),
      socket.on("error", (m) => {
        if (m.roomId && m.roomId !== this.roomId) return;
        if (m.code === "MEDIA_CLOSED") this.retry();
        else if (m.code.startsWith("MEDIA_") || m.code === "RELAY_UNAVAILABLE") {
          this.emit("error", { source: "relay", message: `${m.code}: ${m.message}` });
          if (m.code === "RELAY_UNAVAILABLE") this.retry();
        }
      }),
    ];
  }

  /**
   * Captures what is asked and publishes it. Call from a click: browsers allow a screen share
   * only in answer to a user gesture. A source that cannot be captured is reported through
   * `error` and the others go ahead.
   * @param {{camera?: boolean, microphone?: boolean, screen?: boolean}} [what]
   * @returns {Promise<MediaSource[]>} the sources now published
   */
  async start({ camera = true, microphone = true, screen = true } = {}) {
    this.stopTracks();
    if (camera || microphone) {
      try {
        const stream = await this.devices.getUserMedia({
          video: camera ? { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { max: 30 } } : false,
          audio: microphone,
        });
        for (const t of stream.getVideoTracks()) this.add(t, "camera");
        for (const t of stream.getAudioTracks()) this.add(t, "microphone");
      } catch (e) {
        this.emit("error", { source: "camera", message: mediaError(e) });
      }
    }
    if (screen) await this.shareScreen(false);
    if (this.tracks.length) this.publish();
    return this.tracks.map((t) => t.source);
  }

  /**
   * Shares the screen (again, after it was stopped). Call from a click.
   * @param {boolean} [republish] publish at once (false while {@link start} gathers tracks)
   */
  async shareScreen(republish = true) {
    try {
      const stream = await this.devices.getDisplayMedia({ video: { frameRate: { max: 15 } }, audio: false });
      this.tracks = this.tracks.filter((t) => t.source !== "screen");
      for (const t of stream.getVideoTracks()) this.add(t, "screen");
      if (republish) this.publish();
      return true;
    } catch (e) {
      this.emit("error", { source: "screen", message: mediaError(e) });
      return false;
    }
  }

  /**
   * Captures one camera (video only) and publishes it as `source`, in place of the one that
   * source had: a phone switching between its rear and front cameras.
   * @param {object} [options]
   * @param {"user" | "environment"} [options.facingMode] the camera wanted (front or rear);
   *   an `ideal`, so a device with one camera still gives that one
   * @param {"camera" | "phone-camera"} [options.source]
   * @returns {Promise<boolean>} whether the camera is now published
   */
  async startCamera({ facingMode, source = "camera" } = {}) {
    // Release the old camera first: most phones cannot open the front and rear ones at once.
    for (const t of this.tracks) if (t.source === source) t.track.stop();
    this.tracks = this.tracks.filter((t) => t.source !== source);
    try {
      const stream = await this.devices.getUserMedia({
        video: {
          ...(facingMode ? { facingMode: { ideal: facingMode } } : {}),
          width: { ideal: 1280 },
          height: { ideal: 720 },
          frameRate: { max: 30 },
        },
        audio: false,
      });
      for (const t of stream.getVideoTracks()) this.add(t, source);
      this.publish();
      return true;
    } catch (e) {
      this.emit("error", { source, message: mediaError(e) });
      if (this.tracks.length) this.publish();
      else this.closePc();
      return false;
    }
  }

  /**
   * @param {MediaSource} [source] `camera`, or `phone-camera` on a phone
   * @returns {MediaStream | null} that camera, for a local preview
   */
  cameraStream(source = "camera") {
    const cam = this.tracks.find((t) => t.source === source);
    return cam ? new MediaStream([cam.track]) : null;
  }

  /** Stops publishing and releases the camera, microphone and screen. */
  stop() {
    for (const off of this.unsubscribe) off();
    this.unsubscribe = [];
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.closePc();
    this.stopTracks();
    this.setState("idle");
  }

  /**
   * @private
   * @param {MediaStreamTrack} track
   * @param {MediaSource} source
   */
  add(track, source) {
    track.addEventListener("ended", () => {
      this.tracks = this.tracks.filter((t) => t.track !== track);
      this.emit("ended", { source });
      if (this.tracks.length) this.publish();
      else this.closePc();
    });
    this.tracks.push({ track, source });
  }

  /** @private offers every current track on a fresh connection */
  async publish() {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.closePc();
    if (!this.tracks.length || this.socket.state !== "open") return; // `joined` brings us back
    const pc = new RTCPeerConnection({ iceServers: this.iceServers, bundlePolicy: "max-bundle" });
    this.pc = pc;
    this.emit("connection", { pc });
    this.setState("negotiating");
    pc.onicecandidate = (e) => {
      if (e.candidate && this.pc === pc) {
        this.socket.send({ type: "signal", roomId: this.roomId, to: "hub", data: { kind: "ice", candidate: e.candidate.toJSON() } });
      }
    };
    pc.onconnectionstatechange = () => {
      if (this.pc !== pc) return;
      if (pc.connectionState === "connected") {
        this.failures = 0;
        this.setState("connected");
      } else if (pc.connectionState === "failed") {
        this.retry();
      }
    };
    /** @type {{tr: RTCRtpTransceiver, source: MediaSource}[]} */
    const sent = [];
    for (const { track, source } of this.tracks) {
      /** @type {RTCRtpTransceiverInit} */
      const init = { direction: "sendonly" };
      if (source === "camera" && this.simulcast) {
        // RID "l" is the relay's low layer, anything else its high one (CONTRACT, media relay).
        init.sendEncodings = [
          { rid: "l", scaleResolutionDownBy: 4, maxBitrate: 150_000 },
          { rid: "h", maxBitrate: 1_200_000 },
        ];
      }
      sent.push({ tr: pc.addTransceiver(track, init), source });
    }
    try {
      await pc.setLocalDescription(await pc.createOffer());
      /** @type {Record<string, MediaSource>} */
      const map = {};
      for (const { tr, source } of sent) if (tr.mid != null) map[tr.mid] = source;
      const sdp = pc.localDescription?.sdp || "";
      if (this.pc !== pc) return;
      this.socket.send({ type: "signal", roomId: this.roomId, to: "hub", data: { kind: "offer", sdp, tracks: map } });
    } catch (e) {
      this.emit("error", { source: "relay", message: String(e) });
      this.retry();
    }
  }

  /**
   * @private
   * @param {SignalMessage} m
   */
  async onSignal(m) {
    const pc = this.pc;
    if (!pc || m.from !== "hub" || m.roomId !== this.roomId || m.data.kind !== "answer") return;
    try {
      await pc.setRemoteDescription({ type: "answer", sdp: m.data.sdp });
    } catch (e) {
      if (this.pc === pc) {
        this.emit("error", { source: "relay", message: String(e) });
        this.retry();
      }
    }
  }

  /** @private publishes again after a backoff */
  retry() {
    if (!this.tracks.length) return;
    this.closePc();
    this.setState("retrying");
    const delay = backoffDelay(this.failures++, { baseMs: 1_000, maxMs: 30_000 });
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.publish(), delay);
  }

  /** @private */
  closePc() {
    const pc = this.pc;
    this.pc = null;
    if (pc) {
      pc.onicecandidate = null;
      pc.onconnectionstatechange = null;
      pc.close();
    }
  }

  /** @private */
  stopTracks() {
    for (const { track } of this.tracks) track.stop();
    this.tracks = [];
  }

  /**
   * @private
   * @param {MediaState} state
   */
  setState(state) {
    if (this.state === state) return;
    this.state = state;
    this.emit("state", { state });
  }
}

/**
 * @param {unknown} e a getUserMedia/getDisplayMedia failure
 * @returns {string} what a person should be told
 */
function mediaError(e) {
  const name = /** @type {{name?: string}} */ (e)?.name;
  if (name === "NotAllowedError") return "Permission was refused. Allow it in the browser's address bar, then try again.";
  if (name === "NotFoundError") return "No such device was found.";
  if (name === "NotReadableError") return "The device is in use by another program.";
  return String(/** @type {{message?: string}} */ (e)?.message || e);
}
