// @ts-check
/**
 * The phone page (`/pair#t=<token>`, pair.html): a candidate's phone as the exam's second
 * camera, for the whole exam, without pairing again.
 *
 * 1. The laptop's QR code opens `…/pair#t=<token>`. The page takes the one-time token out of
 *    the address at once (it is a secret: not in the history, not in a bookmark), claims it
 *    (`POST /pairing/claim` with this browser's device id) and shows the six-digit code the
 *    laptop shows too, so the candidate can tell their phone from a stranger's.
 * 2. The claim gives a MOBILE access token and a `deviceToken`, kept in localStorage for that
 *    session. Access tokens are short-lived: the page renews its token
 *    (`POST /pairing/renew`) before it expires and whenever the hub refuses a reconnect with
 *    4500. A reload (no `#t=` any more) carries on with the stored device token.
 * 3. It joins the session's room through {@link HubSocket} (heartbeats, reconnects, resume)
 *    and publishes the rear camera through the relay with {@link MediaPublisher} as
 *    `phone-camera`; a button switches to the front camera.
 * 4. The Screen Wake Lock keeps the screen on (taken again when the page is shown again; the
 *    page says so when the browser has none).
 *
 * {@link PhoneLink} (the pairing and its tokens) has unit tests (web/test/pair-link.test.mjs);
 * the page itself is driven by tests/browser/admin_day.mjs and the relay test
 * (tests/browser/run.mjs), for which it keeps `window.pcs` and sets `window.ready`.
 */
import { ApiError, Emitter, HubSocket, MediaPublisher, ServerClock, deviceId } from "./hub-client.js";

/** @typedef {import("./hub-client.js").StorageLike} StorageLike */
/** @typedef {import("./hub-client.js").Timers} Timers */

/**
 * What the phone keeps of a pairing (localStorage, one entry per session).
 * @typedef {object} StoredPairing
 * @property {string} sessionId
 * @property {string} deviceToken the secret that renews the access token
 * @property {string} webrtcRoomId
 * @property {string} confirmCode shown again after a reload
 */

/**
 * - `unpaired`: the hub no longer knows this phone for the session (401
 *   `DEVICE_TOKEN_INVALID`: rejected on the laptop, unpaired by a proctor, replaced by another
 *   phone, or the pairing was lost); pair again
 * - `session-closed`: the exam session ended (409 `SESSION_CLOSED`)
 * @typedef {"unpaired" | "session-closed"} LinkEnd
 */
/** @typedef {{ended: {reason: LinkEnd, message: string}}} PhoneLinkEvents */

const KEY_PREFIX = "proctor-hub:phone:v1:";
const CURRENT_KEY = `${KEY_PREFIX}current`;

/**
 * @param {string} hash `location.hash`
 * @returns {string | null} the pairing token of `#t=<token>`
 */
export function pairingToken(hash) {
  const m = hash.match(/(?:^#|&)t=([^&]+)/);
  if (!m) return null;
  try {
    return decodeURIComponent(m[1]);
  } catch {
    return m[1];
  }
}

/**
 * The phone's pairing and its access tokens; what {@link HubSocket} asks for a token
 * (a {@link import("./hub-client.js").SocketAuth}).
 * @extends {Emitter<PhoneLinkEvents>}
 */
export class PhoneLink extends Emitter {
  /**
   * @param {object} [options]
   * @param {string} [options.baseUrl] the hub's origin; "" = this page's
   * @param {StorageLike} [options.storage] default localStorage
   * @param {typeof fetch} [options.fetch]
   * @param {Timers} [options.timers]
   * @param {() => number} [options.now] device clock, ms (only to renew ahead of expiry)
   * @param {ServerClock} [options.clock]
   * @param {string} [options.fingerprint] default: this browser's device id
   */
  constructor({ baseUrl = "", storage, fetch: fetchImpl, timers, now, clock, fingerprint } = {}) {
    super();
    this.baseUrl = baseUrl.replace(/\/$/, "");
    this.storage = storage || globalThis.localStorage;
    this.fetchImpl = fetchImpl || ((input, init) => globalThis.fetch(input, init));
    this.timers = timers || {
      setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
      clearTimeout: (h) => globalThis.clearTimeout(/** @type {any} */ (h)),
    };
    this.now = now || (() => Date.now());
    this.clock = clock || new ServerClock();
    this.fingerprint = fingerprint || deviceId(this.storage);
    /** @type {StoredPairing | null} */
    this.pairing = null;
    /** @type {{token: string, expiresAt: number} | null} */
    this.access = null;
    /** @type {Promise<string> | null} one renewal at a time */
    this.renewing = null;
    /** @type {unknown} */
    this.renewTimer = null;
    /** @type {LinkEnd | null} set once the pairing is over for good */
    this.ended = null;
  }

  /** @returns {StoredPairing | null} the pairing this phone holds (after a reload) */
  restore() {
    try {
      const sessionId = this.storage.getItem(CURRENT_KEY);
      const raw = sessionId ? this.storage.getItem(KEY_PREFIX + sessionId) : null;
      const p = raw ? /** @type {StoredPairing} */ (JSON.parse(raw)) : null;
      this.pairing = p && p.sessionId && p.deviceToken ? p : null;
    } catch {
      this.pairing = null;
    }
    return this.pairing;
  }

  /**
   * Claims a pairing token (410 `PAIRING_TOKEN_INVALID` when used, expired or unknown).
   * @param {string} token
   * @returns {Promise<StoredPairing>}
   */
  async claim(token) {
    /** @type {{accessToken: string, expiresIn?: number, deviceToken: string, sessionId: string, webrtcRoomId: string, confirmCode: string}} */
    const res = await this.post("/pairing/claim", { token, deviceFingerprint: this.fingerprint });
    this.ended = null;
    this.pairing = {
      sessionId: res.sessionId,
      deviceToken: res.deviceToken,
      webrtcRoomId: res.webrtcRoomId,
      confirmCode: res.confirmCode,
    };
    // Scoped by session: a phone paired for another exam later keeps the two apart.
    this.storage.setItem(KEY_PREFIX + res.sessionId, JSON.stringify(this.pairing));
    this.storage.setItem(CURRENT_KEY, res.sessionId);
    this.setAccess(res.accessToken, res.expiresIn);
    return this.pairing;
  }

  /**
   * A fresh access token from the device token. 401 `DEVICE_TOKEN_INVALID` and 409
   * `SESSION_CLOSED` end the pairing (`ended` event, stored pairing forgotten); other
   * failures (offline, 503) keep it for a later try.
   * @returns {Promise<string>}
   */
  renew() {
    if (this.renewing) return this.renewing;
    const p = this.pairing;
    if (!p) return Promise.reject(new ApiError(401, "DEVICE_TOKEN_INVALID", "This phone is not paired"));
    this.renewing = (async () => {
      try {
        /** @type {{accessToken: string, expiresIn?: number, webrtcRoomId: string}} */
        const res = await this.post("/pairing/renew", {
          sessionId: p.sessionId,
          deviceToken: p.deviceToken,
          deviceFingerprint: this.fingerprint,
        });
        this.setAccess(res.accessToken, res.expiresIn);
        return res.accessToken;
      } catch (e) {
        if (e instanceof ApiError && e.status === 401) this.end("unpaired", e.message);
        else if (e instanceof ApiError && e.status === 409 && e.code === "SESSION_CLOSED") this.end("session-closed", e.message);
        else this.schedule(10_000); // keep trying ahead of the next reconnect
        throw e;
      } finally {
        this.renewing = null;
      }
    })();
    return this.renewing;
  }

  /** @returns {Promise<string>} an access token that lives a few seconds more */
  async accessToken() {
    if (this.ended) throw new ApiError(401, "DEVICE_TOKEN_INVALID", "This phone is no longer paired");
    if (this.access && this.access.expiresAt - this.now() > 5_000) return this.access.token;
    return this.renew();
  }

  /** What {@link HubSocket} calls after a 4500: the token was refused, get a new one. */
  refresh() {
    return this.renew();
  }

  /** Stops renewing (the page is going away, or the pairing ended). */
  stop() {
    if (this.renewTimer != null) this.timers.clearTimeout(this.renewTimer);
    this.renewTimer = null;
  }

  /** Forgets the stored pairing (it ended: a reload must not try it again). */
  forget() {
    this.stop();
    const p = this.pairing;
    if (p) {
      this.storage.removeItem(KEY_PREFIX + p.sessionId);
      if (this.storage.getItem(CURRENT_KEY) === p.sessionId) this.storage.removeItem(CURRENT_KEY);
    }
    this.access = null;
  }

  /**
   * @private
   * @param {LinkEnd} reason
   * @param {string} message
   */
  end(reason, message) {
    if (this.ended) return;
    this.ended = reason;
    this.forget();
    this.emit("ended", { reason, message });
  }

  /**
   * @private
   * @param {string} token
   * @param {number} [expiresIn] seconds (the hub's access lifetime; 15 minutes if absent)
   */
  setAccess(token, expiresIn = 900) {
    this.access = { token, expiresAt: this.now() + expiresIn * 1000 };
    // Renew a minute early, or at three quarters of a short lifetime.
    const left = expiresIn * 1000;
    this.schedule(Math.max(1_000, left - Math.min(60_000, left / 4)));
  }

  /** @private @param {number} ms */
  schedule(ms) {
    this.stop();
    this.renewTimer = this.timers.setTimeout(() => {
      this.renewTimer = null;
      this.renew().catch(() => {});
    }, ms);
  }

  /**
   * @private
   * @template T
   * @param {string} path
   * @param {unknown} body
   * @returns {Promise<T>}
   */
  async post(path, body) {
    let res;
    try {
      res = await this.fetchImpl(`${this.baseUrl}/api/v1${path}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      });
    } catch {
      throw new ApiError(0, "NETWORK", "The hub could not be reached");
    }
    if (!res.ok) throw await ApiError.from(res);
    return /** @type {Promise<T>} */ (res.json());
  }
}

// ---------------------------------------------------------------------------------------------
// The page
// ---------------------------------------------------------------------------------------------

/** What each state of the camera's connection is called on the page. */
const CAMERA_TEXT = {
  idle: "Camera off",
  negotiating: "Camera: connecting to the proctor…",
  connected: "Camera: your proctor can see it",
  retrying: "Camera: connection lost — retrying…",
};

const UNPAIRED_TEXT = "This phone is no longer paired: scan the code on the laptop again.";
const ENDED_TEXT = "The exam has ended. You can close this page.";

/** @param {string} id */
function el(id) {
  return /** @type {HTMLElement} */ (document.getElementById(id));
}

/**
 * Keeps the screen on while the page is shown (Screen Wake Lock API): a sleeping phone stops
 * its camera. The lock is released by the browser whenever the page is hidden, so it is taken
 * again when the page is visible again.
 * @param {(text: string) => void} say
 * @returns {{stop: () => void}}
 */
function keepAwake(say) {
  const wakeLock = /** @type {any} */ (navigator).wakeLock;
  if (!wakeLock || typeof wakeLock.request !== "function") {
    say("This browser cannot keep the screen on by itself: turn off auto-lock, or touch the screen now and then.");
    return { stop: () => {} };
  }
  /** @type {any} */
  let lock = null;
  let wanted = true;
  const take = async () => {
    if (!wanted || document.visibilityState !== "visible" || lock) return;
    try {
      lock = await wakeLock.request("screen");
      say("The screen stays on while this page is open.");
      lock.addEventListener("release", () => {
        lock = null;
      });
    } catch (e) {
      // Refused (battery saver, no secure context, …): say what to do instead.
      say(`The screen may turn off (${String(/** @type {any} */ (e)?.message || e)}): turn off auto-lock, or touch the screen now and then.`);
    }
  };
  const onVisible = () => {
    if (document.visibilityState === "visible") take();
  };
  document.addEventListener("visibilitychange", onVisible);
  take();
  return {
    stop: () => {
      wanted = false;
      document.removeEventListener("visibilitychange", onVisible);
      lock?.release().catch(() => {});
      lock = null;
    },
  };
}

/**
 * Hooks for the browser tests, as the old phone page had them: `window.pcs` holds the current
 * RTCPeerConnection to the relay, `window.ready` turns true once the camera is published, and
 * `window.Hub.stats(pcs)` reads the figures tests/browser/run.mjs compares (the old page got
 * it from /app/media.js, which this page does not load).
 * @param {MediaPublisher} publisher
 */
function testHooks(publisher) {
  const w = /** @type {any} */ (window);
  w.pcs = [];
  w.ready = false;
  publisher.on("connection", ({ pc }) => {
    w.pcs = [pc];
  });
  publisher.on("state", ({ state }) => {
    if (state === "connected") w.ready = true;
  });
  w.Hub = w.Hub || {};
  w.Hub.stats ||= async (/** @type {RTCPeerConnection[]} */ pcs) => {
    const out = { inbound: /** @type {any[]} */ ([]), remotePorts: /** @type {number[]} */ ([]), outboundBytes: 0 };
    for (const pc of pcs) {
      const report = await pc.getStats();
      /** @type {Map<string, any>} */
      const byId = new Map();
      report.forEach((s) => byId.set(s.id, s));
      report.forEach((s) => {
        if (s.type === "inbound-rtp" && s.kind === "video") out.inbound.push({ mid: s.mid, framesDecoded: s.framesDecoded || 0 });
        if (s.type === "outbound-rtp") out.outboundBytes += s.bytesSent || 0;
        if (s.type === "transport" && s.selectedCandidatePairId) {
          const pair = byId.get(s.selectedCandidatePairId);
          const remote = pair && byId.get(pair.remoteCandidateId);
          if (remote) out.remotePorts.push(remote.port);
        }
      });
    }
    return out;
  };
}

/** Runs the page: pair (or carry on), connect, publish, keep awake. */
export async function startPhonePage() {
  const status = el("pair-status");
  const help = el("pair-help");
  const helpText = el("pair-help-text");
  const retry = /** @type {HTMLButtonElement} */ (el("pair-retry"));

  /**
   * @param {string} text
   * @param {"starting" | "connected" | "reconnecting" | "ended" | "error"} state
   */
  const setStatus = (text, state) => {
    status.textContent = text;
    status.dataset.state = state;
  };
  /**
   * A problem that stops the page, and what to do about it.
   * @param {string} text
   * @param {(() => void) | null} [again] offers "Try again"
   */
  const stopWith = (text, again = null) => {
    help.hidden = false;
    helpText.textContent = text;
    /** @type {HTMLElement} */ (retry.parentElement).hidden = !again;
    retry.onclick = again;
    if (again) retry.focus();
  };

  const link = new PhoneLink();
  const token = pairingToken(location.hash);
  // The token is a one-time secret: out of the address bar and the history before anything
  // else; kept in memory for a retry.
  if (token) history.replaceState(null, "", location.pathname + location.search);

  /** @returns {Promise<StoredPairing | null>} */
  const pair = async () => {
    help.hidden = true;
    if (token) {
      setStatus("Pairing with the laptop…", "starting");
      try {
        return await link.claim(token);
      } catch (e) {
        const stored = link.restore();
        if (e instanceof ApiError && e.status === 410 && stored) return carryOn(stored);
        setStatus("Not paired", "error");
        if (e instanceof ApiError && e.status === 410) {
          stopWith("This pairing code was already used or has expired. On the laptop, press “Show the pairing code” (or “Make a new pairing code”) and scan the new code.");
        } else if (e instanceof ApiError && e.code === "SESSION_CLOSED") {
          stopWith(ENDED_TEXT);
        } else {
          stopWith(`Pairing failed: ${describe(e)}`, () => run());
        }
        return null;
      }
    }
    const stored = link.restore();
    if (!stored) {
      setStatus("Not paired", "error");
      stopWith("To use this phone as the second camera, open the exam on the laptop, press “Show the pairing code” and scan the code with this phone.");
      return null;
    }
    return carryOn(stored);
  };

  /**
   * A reload (or a second scan of a spent code): renew with the stored device token.
   * @param {StoredPairing} stored
   */
  const carryOn = async (stored) => {
    setStatus("Reconnecting to the exam…", "starting");
    try {
      await link.renew();
      return stored;
    } catch (e) {
      setStatus(link.ended === "session-closed" ? "Ended" : "Not paired", link.ended === "session-closed" ? "ended" : "error");
      if (link.ended === "unpaired") stopWith(UNPAIRED_TEXT);
      else if (link.ended === "session-closed") stopWith(ENDED_TEXT);
      else stopWith(`The hub cannot be reached: ${describe(e)}`, () => run());
      return null;
    }
  };

  const run = async () => {
    const pairing = await pair();
    if (pairing) connect(link, pairing, setStatus, stopWith);
  };
  await run();
}

/**
 * @param {PhoneLink} link
 * @param {StoredPairing} pairing
 * @param {(text: string, state: "starting" | "connected" | "reconnecting" | "ended" | "error") => void} setStatus
 * @param {(text: string, again?: (() => void) | null) => void} stopWith
 */
function connect(link, pairing, setStatus, stopWith) {
  const code = pairing.confirmCode.replace(/^(\d{3})(\d{3})$/, "$1 $2");
  el("pair-code").hidden = false;
  el("pair-code-value").textContent = code;
  el("pair-code-value").setAttribute("aria-label", `Code ${pairing.confirmCode.split("").join(" ")}`);
  el("pair-camera").hidden = false;

  const preview = /** @type {HTMLVideoElement} */ (el("pair-preview"));
  const cameraState = el("pair-camera-state");
  const cameraError = el("pair-camera-error");
  const startButton = /** @type {HTMLButtonElement} */ (el("pair-camera-start"));
  const switchButton = /** @type {HTMLButtonElement} */ (el("pair-camera-switch"));
  const short = pairing.sessionId.slice(0, 8);

  const socket = new HubSocket(link);
  const publisher = new MediaPublisher(socket, pairing.webrtcRoomId, { simulcast: false });
  testHooks(publisher);
  const awake = keepAwake((text) => (el("pair-wake").textContent = text));
  let finished = false;

  /** @type {"environment" | "user"} */
  let facing = "environment";
  const startCamera = async () => {
    cameraError.textContent = "";
    startButton.hidden = true;
    const ok = await publisher.startCamera({ facingMode: facing, source: "phone-camera" });
    preview.srcObject = publisher.cameraStream("phone-camera");
    preview.dataset.facing = facing;
    startButton.hidden = ok;
    switchButton.hidden = !ok;
    switchButton.textContent = facing === "environment" ? "Use the front camera" : "Use the rear camera";
  };
  startButton.onclick = startCamera;
  switchButton.onclick = async () => {
    facing = facing === "environment" ? "user" : "environment";
    switchButton.disabled = true;
    await startCamera();
    switchButton.disabled = false;
    switchButton.focus();
  };

  publisher.on("state", ({ state }) => {
    cameraState.textContent = CAMERA_TEXT[state];
    cameraState.dataset.state = state;
  });
  publisher.on("error", ({ message }) => {
    cameraError.textContent = `The camera is not shared: ${message}`;
  });
  publisher.on("ended", () => {
    cameraError.textContent = "The camera stopped (another app may be using it).";
    startButton.hidden = false;
  });

  /**
   * Everything stops: the exam ended, the pairing is over, or the hub closed the connection.
   * @param {string} text the status line
   * @param {"ended" | "error"} state
   * @param {string} why what happened and what to do
   * @param {(() => void) | null} [again] offers "Try again"
   */
  const finish = (text, state, why, again = null) => {
    if (finished) return;
    finished = true;
    socket.stop();
    publisher.stop();
    awake.stop();
    link.stop();
    preview.srcObject = null;
    // The code and the camera belong to a pairing that is over.
    el("pair-camera").hidden = true;
    el("pair-code").hidden = true;
    setStatus(text, state);
    stopWith(why, again);
  };

  let everOpen = false;
  socket.on("state", ({ state, retryInMs }) => {
    if (finished) return;
    if (state === "open") {
      everOpen = true;
      setStatus(`Connected as the second camera of session ${short}`, "connected");
    } else if (state === "reconnecting") {
      setStatus(`Connection lost — retrying${retryInMs ? ` in ${Math.ceil(retryInMs / 1000)} s` : ""}…`, "reconnecting");
    } else if (state === "connecting" && !everOpen) {
      setStatus("Connecting to the exam…", "starting");
    }
  });
  socket.on("session-ended", () => finish("Ended", "ended", ENDED_TEXT));
  link.on("ended", ({ reason }) =>
    reason === "session-closed" ? finish("Ended", "ended", ENDED_TEXT) : finish("Not paired any more", "error", UNPAIRED_TEXT),
  );
  socket.on("stopped", async ({ reason, code }) => {
    if (finished) return;
    // 4503 and 4504 do not say why; the hub's answer to a renewal does: 401 — rejected on the
    // laptop, unpaired by a proctor or replaced by another phone; 409 — the session ended.
    // The socket can close a moment before the hub forgets the phone, so ask a few times.
    for (let i = 0; i < 3 && !link.ended; i++) {
      if (i) await new Promise((r) => setTimeout(r, 1_500));
      await link.renew().catch(() => {});
    }
    if (link.ended) return; // its `ended` event said it
    const reload = () => location.reload();
    if (reason === "replaced") {
      finish("Disconnected", "error", "This camera page was opened again somewhere else. To use this phone, press “Try again”.", reload);
    } else {
      finish("Disconnected", "error", `The hub closed this phone's connection (${reason}, ${code}).`, reload);
    }
  });

  // The camera starts once the room is joined (as the old phone page did): an offer made
  // while the socket is still joining would be made again on `joined`, and two offers in
  // flight cost a failed negotiation and a retry.
  const offJoined = socket.on("joined", () => {
    offJoined();
    startCamera();
  });
  socket.join(pairing.webrtcRoomId);
  socket.start();
}

/** @param {unknown} e */
function describe(e) {
  if (e instanceof ApiError) return e.status === 0 ? "no connection." : `${e.message} (${e.code}).`;
  return String(e);
}

if (typeof document !== "undefined" && document.getElementById("pair-app")) {
  // A new code scanned while this page is open may land here as a fragment change only (same
  // page, no load): start over with it, as a fresh load would.
  window.addEventListener("hashchange", () => {
    if (pairingToken(location.hash)) location.reload();
  });
  startPhonePage();
}
