// @ts-check
/**
 * The system check's judgement: from what was measured on this device to a verdict a
 * candidate can act on ("passed", or "problem" with what went wrong and how to fix it). No
 * DOM and no devices here, so every rule is unit-tested (web/test/check-verdicts.test.mjs).
 */

/**
 * - `waiting`: needs the candidate first (screen sharing needs a click)
 * - `checking`: under way
 * - `passed`: fine for the exam
 * - `problem`: not fine; `fix` says what to do
 * @typedef {"waiting" | "checking" | "passed" | "problem"} CheckState
 */
/**
 * @typedef {object} Verdict
 * @property {CheckState} state
 * @property {string} text what was found, in one or two sentences
 * @property {string} [fix] what to do about a problem
 */
/** @typedef {"camera" | "microphone" | "screen" | "connection" | "relay" | "browser"} CheckId */

/** A round trip above this makes the connection a problem: saves and warnings would lag. */
export const HIGH_RTT_MS = 1000;
/** A device clock this far from the hub's is worth mentioning (it does not fail anything). */
export const CLOCK_NOTE_MS = 2000;

/** The checks that must pass for "Continue to the exam"; the others only inform. */
export const REQUIRED = /** @type {const} */ (["camera", "microphone", "screen", "connection", "relay"]);

/** What the proctor notices when a required check is skipped, for "Continue anyway". */
const PROCTOR_SEES = {
  camera: "your camera is off",
  microphone: "your microphone is off",
  screen: "your screen is not shared",
  connection: "your connection may be unreliable",
  relay: "your camera and screen may not reach them",
};

/** The names the page gives the required checks, for sentences. */
export const CHECK_NAMES = {
  camera: "Camera",
  microphone: "Microphone",
  screen: "Screen sharing",
  connection: "Connection to the hub",
  relay: "Sending to your proctor",
  browser: "Browser support",
};

// --- camera and microphone --------------------------------------------------------------------

/**
 * The verdict on the camera or the microphone, from what getUserMedia did.
 * @param {"camera" | "microphone"} device
 * @param {{label?: string, errorName?: string, errorMessage?: string, ended?: boolean}} outcome
 *   `label`: the device works (its name, when the browser gives one); `errorName`: the
 *   DOMException's name; `ended`: it worked, then stopped
 * @returns {Verdict}
 */
export function deviceVerdict(device, outcome) {
  const settings = device === "camera" ? "camera" : "microphone";
  const others = device === "camera" ? "video calls, another browser tab, the camera app" : "video calls, another browser tab, voice recorders";
  if (outcome.ended) {
    return {
      state: "problem",
      text: `Your ${device} stopped working during the check.`,
      fix: `Check it is still connected and that no other program took it (${others}), then press "Check camera and microphone again".`,
    };
  }
  switch (outcome.errorName) {
    case undefined:
      return { state: "passed", text: outcome.label ? `Working: ${outcome.label}.` : `Your ${device} works.` };
    case "NotAllowedError":
    case "PermissionDeniedError": // older Chrome
    case "SecurityError":
      return {
        state: "problem",
        text: `Permission to use your ${device} was refused.`,
        fix: `Allow the ${settings} for this site: select the icon at the left of the address bar (or the browser's site settings), choose Allow, then press "Check camera and microphone again". On a Mac, also allow your browser under System Settings → Privacy & Security → ${device === "camera" ? "Camera" : "Microphone"}.`,
      };
    case "NotFoundError":
    case "DevicesNotFoundError":
    case "OverconstrainedError":
      return {
        state: "problem",
        text: `No ${device} was found on this computer.`,
        fix: `Connect a ${device} (or switch it on, or open a laptop's lid), then press "Check camera and microphone again".`,
      };
    case "NotReadableError":
    case "TrackStartError":
    case "AbortError":
      return {
        state: "problem",
        text: `Your ${device} is in use by another program, or could not be started.`,
        fix: `Close other programs that may use it (${others}), then press "Check camera and microphone again". If that does not help, restart the browser.`,
      };
    case "Unsupported":
      return {
        state: "problem",
        text: `This browser cannot use a ${device} on this page.`,
        fix: "Use a current version of Chrome, Edge or Firefox, and open the exam at its https:// address.",
      };
    default:
      return {
        state: "problem",
        text: `Your ${device} could not be used${outcome.errorMessage ? `: ${outcome.errorMessage}` : "."}`,
        fix: `Press "Check camera and microphone again". If it keeps failing, restart the browser.`,
      };
  }
}

// --- screen sharing ---------------------------------------------------------------------------

/**
 * The verdict on the test share.
 * @param {{surface?: string, errorName?: string, errorMessage?: string, unsupported?: boolean}} outcome
 *   `surface`: the shared track's `displaySurface` (absent when the browser does not say)
 * @returns {Verdict}
 */
export function screenVerdict(outcome) {
  const again = 'Press "Test screen sharing" again';
  if (outcome.unsupported) {
    return {
      state: "problem",
      text: "This browser cannot share a screen.",
      fix: "Use a computer (not a phone or tablet) with a current version of Chrome, Edge or Firefox.",
    };
  }
  switch (outcome.errorName) {
    case undefined:
      break;
    case "NotAllowedError":
      return {
        state: "problem",
        text: "Screen sharing was cancelled or refused.",
        fix: `${again}, choose "Entire screen" and then Share. If the choice never appears, allow screen recording for your browser (on a Mac: System Settings → Privacy & Security → Screen Recording) and restart the browser.`,
      };
    case "NotReadableError":
    case "AbortError":
      return {
        state: "problem",
        text: "Your screen could not be captured.",
        fix: 'Close other programs that record or share the screen, then press "Test screen sharing" again.',
      };
    default:
      return {
        state: "problem",
        text: `Your screen could not be shared${outcome.errorMessage ? `: ${outcome.errorMessage}` : "."}`,
        fix: `${again}. If it keeps failing, restart the browser.`,
      };
  }
  if (outcome.surface === undefined || outcome.surface === "monitor") {
    return {
      state: "passed",
      text:
        outcome.surface === "monitor"
          ? "Your entire screen can be shared. The test share has been stopped."
          : "Screen sharing works. Your browser does not say what was shared: in the exam, choose your entire screen. The test share has been stopped.",
    };
  }
  const what = outcome.surface === "window" ? "one window" : outcome.surface === "browser" ? "one browser tab" : `a ${outcome.surface}`;
  return {
    state: "problem",
    text: `You shared ${what}, not your entire screen. Your proctor needs to see the whole screen.`,
    fix: `${again} and choose "Entire screen".`,
  };
}

// --- the connection ---------------------------------------------------------------------------

/**
 * @typedef {object} ConnectionResult what the connection test measured (check-connection.js)
 * @property {boolean} authed whether the hub accepted the socket's `auth`
 * @property {string} [stopReason] the socket's stop reason, when it gave up
 * @property {number} [closeCode] the last close code seen
 * @property {number[]} roundTripsMs heartbeat → heartbeat-ack round trips
 * @property {number | null} offsetMs hub clock minus this device's clock, from the most
 *   precise sample (null without one)
 */

/**
 * @param {number[]} values
 * @returns {number} the median (NaN for none): one slow heartbeat does not fail the check
 */
export function median(values) {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/**
 * @param {ConnectionResult} result
 * @returns {Verdict}
 */
export function connectionVerdict(result) {
  if (!result.authed) {
    if (result.stopReason === "unauthenticated") {
      return {
        state: "problem",
        text: "The hub did not accept your login for the live connection.",
        fix: 'Log out, log in again, then press "Test the connection again".',
      };
    }
    return {
      state: "problem",
      text: `This computer could not open a live connection to the hub${result.closeCode ? ` (code ${result.closeCode})` : ""}.`,
      fix: 'Check your internet connection. On a school or office network a firewall or proxy may block live connections (WebSockets): try another network, then press "Test the connection again".',
    };
  }
  if (result.roundTripsMs.length === 0) {
    return {
      state: "problem",
      text: "The hub accepted the connection but did not answer its heartbeats in time.",
      fix: 'Your connection may be overloaded: close programs that use the network, then press "Test the connection again".',
    };
  }
  const rtt = Math.round(median(result.roundTripsMs));
  const measured = `Round trip ${rtt} ms (median of ${result.roundTripsMs.length}).`;
  if (rtt > HIGH_RTT_MS) {
    return {
      state: "problem",
      text: `Your connection to the hub is very slow. ${measured}`,
      fix: 'Use a cable or move closer to the Wi-Fi router, and close programs that use the network (video calls, downloads), then press "Test the connection again".',
    };
  }
  return { state: "passed", text: `Connected. ${measured} ${clockNote(result.offsetMs)}`.trim() };
}

/**
 * How this device's clock compares with the hub's. Only informative: the exam's timer follows
 * the hub's clock (ServerClock), so a wrong device clock changes nothing.
 * @param {number | null} offsetMs hub minus device
 * @returns {string}
 */
export function clockNote(offsetMs) {
  if (offsetMs == null || !Number.isFinite(offsetMs)) return "";
  if (Math.abs(offsetMs) < CLOCK_NOTE_MS) return "Your computer's clock agrees with the hub's.";
  const direction = offsetMs > 0 ? "behind" : "ahead of";
  return `Your computer's clock is ${formatDuration(Math.abs(offsetMs))} ${direction} the hub's. That is fine: the exam timer follows the hub's clock.`;
}

/**
 * @param {number} ms
 * @returns {string} e.g. "4 s", "3 min 5 s", "2 h 1 min"
 */
export function formatDuration(ms) {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return s % 60 ? `${m} min ${s % 60} s` : `${m} min`;
  return m % 60 ? `${Math.floor(m / 60)} h ${m % 60} min` : `${Math.floor(m / 60)} h`;
}

// --- sending to the proctor (the relay) -------------------------------------------------------

/** How long the camera may take to reach the relay (room, socket, join, ICE and DTLS). */
export const RELAY_TIMEOUT_MS = 15_000;

/**
 * @typedef {object} RelayResult what the relay test found (check-relay.js)
 * @property {boolean} connected the relay answered and the camera's connection to it is up
 * @property {"room" | "socket" | "join" | "camera" | "media"} stage how far the test got:
 *   creating the check room, opening the live connection, joining the room, opening the
 *   camera, connecting the media
 * @property {number} [ms] how long it took to connect
 * @property {boolean} [timedOut] gave up after {@link RELAY_TIMEOUT_MS}
 * @property {number} [status] the HTTP status when the room could not be created (0: no answer)
 * @property {string} [reason] the socket's stop reason, when it gave up
 * @property {number} [closeCode] the socket's last close code
 * @property {string} [message] the last error reported (camera or relay)
 */

/**
 * @param {RelayResult} result
 * @returns {Verdict}
 */
export function relayVerdict(result) {
  const again = 'press "Test sending again"';
  if (result.connected) {
    const took = result.ms == null ? "" : ` in ${(result.ms / 1000).toFixed(1)} s`;
    return {
      state: "passed",
      text: `Your camera reached the hub's video relay${took}: your proctor will be able to see you. The test has stopped.`,
    };
  }
  const waited = formatDuration(RELAY_TIMEOUT_MS);
  switch (result.stage) {
    case "room":
      if (result.status === 404) {
        return {
          state: "problem",
          text: "The hub has no test room for you in this exam.",
          fix: "Go back to My exams and open the exam from there. If this keeps happening, tell your proctor.",
        };
      }
      if (result.status === 0 || result.status === undefined) {
        return {
          state: "problem",
          text: "The hub could not be reached to prepare the test.",
          fix: `Check your internet connection, then ${again}.`,
        };
      }
      return {
        state: "problem",
        text: `The hub could not prepare the test${result.message ? `: ${result.message}` : "."}`,
        fix: `Wait a minute, then ${again}. If it keeps failing, tell your proctor.`,
      };
    case "socket":
    case "join":
      if (result.reason === "unauthenticated") {
        return {
          state: "problem",
          text: "The hub did not accept your login for the test.",
          fix: `Log out, log in again, then ${again}.`,
        };
      }
      if (result.reason === "forbidden") {
        return {
          state: "problem",
          text: "The hub refused the test room.",
          fix: `Go back to My exams, open the exam again and ${again}. If it keeps failing, tell your proctor.`,
        };
      }
      return {
        state: "problem",
        text: `The live connection for the test could not be opened${result.timedOut ? ` within ${waited}` : ""}${result.closeCode ? ` (code ${result.closeCode})` : ""}.`,
        fix: `See "Connection to the hub" above. A firewall or proxy may block live connections (WebSockets): try another network, then ${again}.`,
      };
    case "camera":
      return {
        state: "problem",
        text: `Your camera could not be opened for the test${result.message ? `: ${result.message}` : "."}`,
        fix: `Close other programs that may use the camera, then ${again}.`,
      };
    default:
      if (result.message && /RELAY_UNAVAILABLE/.test(result.message)) {
        return {
          state: "problem",
          text: `The hub's video relay did not take your camera${result.timedOut ? ` within ${waited}` : ""}: it is not available right now.`,
          fix: `Wait a minute, then ${again}. If it keeps failing, tell your proctor.`,
        };
      }
      return {
        state: "problem",
        text: `Your camera could not reach the hub's video relay${result.timedOut ? ` within ${waited}` : ""}. The live connection works, but live video does not get through.`,
        fix: `A firewall or the network probably blocks live video, which uses UDP. Try another network (a phone's hotspot, for example), or ask the network's administrator to allow UDP to the hub, then ${again}.`,
      };
  }
}

// --- browser support --------------------------------------------------------------------------

/**
 * @typedef {object} BrowserSupport
 * @property {boolean} webrtc RTCPeerConnection: camera and screen reach the proctor over it
 * @property {boolean} localStorage usable (not just present): the answer queue keeps unsent
 *   answers there
 * @property {boolean} fullscreen the Fullscreen API is enabled for this page
 */

/**
 * @param {BrowserSupport} support
 * @returns {Verdict}
 */
export function browserVerdict(support) {
  /** @type {string[]} */
  const missing = [];
  /** @type {string[]} */
  const fixes = [];
  if (!support.webrtc) missing.push("live video (WebRTC), which sends your camera and screen to your proctor");
  if (!support.localStorage) {
    missing.push("site storage, which keeps your answers safe while the connection is down");
    fixes.push("Allow this site to store data (leave private browsing, or allow cookies and site data for it).");
  }
  if (!support.fullscreen) missing.push("full screen mode");
  if (missing.length === 0) return { state: "passed", text: "This browser has everything the exam uses." };
  if (!support.webrtc || !support.fullscreen) fixes.push("Use a current version of Chrome, Edge or Firefox.");
  return {
    state: "problem",
    text: `This browser lacks ${joinList(missing)}.`,
    fix: fixes.join(" "),
  };
}

// --- the way on -------------------------------------------------------------------------------

/**
 * Whether the candidate can go on, and what is missing.
 * @param {Partial<Record<CheckId, CheckState>>} states
 * @returns {{ready: boolean, missing: (typeof REQUIRED)[number][]}} `missing`: the required
 *   checks not passed, in page order
 */
export function readiness(states) {
  const missing = REQUIRED.filter((id) => states[id] !== "passed");
  return { ready: missing.length === 0, missing };
}

/**
 * What "Continue anyway" means, in one sentence.
 * @param {(typeof REQUIRED)[number][]} missing
 * @returns {string}
 */
export function continueAnywayText(missing) {
  if (missing.length === 0) return "";
  return `Not passed yet: ${joinList(missing.map((id) => CHECK_NAMES[id]))}. If you continue anyway, your exam and its timer start now, and your proctor will see that ${joinList(missing.map((id) => PROCTOR_SEES[id]))}.`;
}

/**
 * @param {string[]} items
 * @returns {string} "a", "a and b", "a, b and c"
 */
export function joinList(items) {
  if (items.length <= 1) return items.join("");
  return `${items.slice(0, -1).join(", ")} and ${items[items.length - 1]}`;
}
