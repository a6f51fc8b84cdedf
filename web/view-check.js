// @ts-check
/**
 * The system check before an exam (`#/check/<examId>`, CANDIDATE). It runs on this device
 * only, before the session exists, so the exam's timer has not started:
 * - camera and microphone (a preview and a live level meter),
 * - screen sharing (a test share from a click, stopped at once),
 * - the live connection to the hub (auth, heartbeat round trips, the clock offset),
 * - sending to the proctor: once the camera passed, the camera is published for a few seconds
 *   into a check room of the candidate's own on the hub's relay (check-relay.js),
 * - the browser features the exam uses.
 *
 * "Continue to the exam" needs camera, microphone, screen, connection and sending to have passed;
 * otherwise "Continue anyway" says what the proctor will see missing. Leaving the page (either
 * way) releases every device and closes the test socket: the returned cleanup does it.
 */
import { h, show } from "./ui.js";
import { checkRow, STATE_LABELS } from "./check-row.js";
import { openCameraAndMicrophone, testScreenShare, watchLevel, browserSupport } from "./check-devices.js";
import { measureConnection } from "./check-connection.js";
import { testRelay } from "./check-relay.js";
import { isHeard } from "./check-level.js";
import { recordingNotice } from "./exam-media.js";
import {
  deviceVerdict,
  screenVerdict,
  connectionVerdict,
  relayVerdict,
  browserVerdict,
  readiness,
  continueAnywayText,
  CHECK_NAMES,
} from "./check-verdicts.js";

/** @typedef {import("./check-verdicts.js").Verdict} Verdict */
/** @typedef {import("./check-verdicts.js").CheckId} CheckId */
/** @typedef {import("./check-row.js").CheckRow} CheckRow */
/** @typedef {import("./hub-client.js").HubClient} HubClient */
/** @typedef {import("./hub-client.js").MyExam} MyExam */

const STYLESHEET = "/app/check.css";
/** @type {Promise<void> | null} */
let stylesheet = null;

/**
 * Adds the check's stylesheet to the page once, and waits for it (at most 2 s) so the page
 * does not flash unstyled. index.html is shared; this view brings its own styles.
 * @returns {Promise<void>}
 */
function loadStylesheet() {
  if (!stylesheet) {
    stylesheet = new Promise((resolve) => {
      const link = h("link", { rel: "stylesheet", href: STYLESHEET });
      link.addEventListener("load", () => resolve());
      link.addEventListener("error", () => resolve());
      setTimeout(resolve, 2000);
      document.head.append(link);
    });
  }
  return stylesheet;
}

/**
 * @param {HubClient} client
 * @param {string} examId
 * @returns {Promise<MyExam | null>} the exam as /me/exams has it; null when not there or not
 *   loadable (the exam page explains such problems; the check itself does not need it)
 */
async function findExam(client, examId) {
  try {
    return (await client.myExams()).items.find((x) => x.id === examId) || null;
  } catch {
    return null;
  }
}

/** @param {import("./app.js").ViewContext} ctx */
export async function checkView({ client, go, arg: examId }) {
  const route = location.hash;
  show("System check", h("h1", {}, "System check"), h("p", { "aria-live": "polite" }, "Preparing the check…"));
  const [, exam] = await Promise.all([loadStylesheet(), findExam(client, examId)]);
  // The candidate may have moved on while this loaded: do not draw over the next view.
  if (location.hash !== route) return;

  let closed = false;
  const examHash = `#/exam/${encodeURIComponent(examId)}`;

  // --- announcements: one polite log, so each change is read out in turn ---------------------
  const log = h("div", { class: "visually-hidden", role: "log", "aria-live": "polite" });
  /** @param {string} text */
  const announce = (text) => {
    log.append(h("p", {}, text));
    while (log.childElementCount > 8) log.firstElementChild?.remove();
  };

  // --- camera and microphone -----------------------------------------------------------------
  const preview = h("video", {
    class: "check-preview",
    muted: true,
    autoplay: true,
    playsInline: true,
    hidden: true,
    "aria-label": "Your camera's picture",
  });
  const meterBar = h("span", { class: "check-meter-bar" });
  const meter = h(
    "div",
    {
      class: "check-meter",
      role: "meter",
      "aria-labelledby": "check-mic-level",
      "aria-valuemin": "0",
      "aria-valuemax": "100",
      "aria-valuenow": "0",
    },
    meterBar,
  );
  const heardText = h("p", { class: "check-heard" }, "Say a few words: the bar should move.");
  // Shown only while there is a microphone to measure.
  const micLevel = h(
    "div",
    { class: "check-level", hidden: true },
    h("p", { id: "check-mic-level", class: "check-meter-label" }, "Microphone level"),
    meter,
    heardText,
  );
  const devicesAgain = () =>
    h("button", { type: "button", class: "secondary", hidden: true, onclick: () => checkDevices() }, "Check camera and microphone again");
  const cameraAgain = devicesAgain();
  const micAgain = devicesAgain();

  /** @type {MediaStreamTrack | null} */
  let camTrack = null;
  /** @type {MediaStreamTrack | null} */
  let micTrack = null;
  let stopMeter = () => {};
  let devicesBusy = false;
  let screenBusy = false;
  let heard = false;
  let meterAnnouncedAt = 0;

  // --- screen --------------------------------------------------------------------------------
  const screenButton = h("button", { type: "button", class: "primary", onclick: () => checkScreen() }, "Test screen sharing");

  // --- connection ----------------------------------------------------------------------------
  const connectionAgain = h(
    "button",
    { type: "button", class: "secondary", hidden: true, onclick: () => checkConnection() },
    "Test the connection again",
  );
  /** @type {{stop: () => void} | null} */
  let connection = null;

  // --- sending to the proctor ----------------------------------------------------------------
  const relayAgain = h(
    "button",
    { type: "button", class: "secondary", hidden: true, onclick: () => checkRelay() },
    "Test sending again",
  );
  /** @type {{stop: () => void} | null} */
  let relay = null;
  /** @type {Verdict} */
  const relayWaiting = { state: "waiting", text: "Starts once the camera check has passed." };

  // Known at once (no device or network involved).
  const browserFound = browserVerdict(browserSupport());

  /** @type {Record<CheckId, CheckRow>} */
  const rows = {
    camera: checkRow({
      id: "camera",
      title: CHECK_NAMES.camera,
      intro: "Your proctor sees you through it.",
      body: preview,
      actions: cameraAgain,
      initial: { state: "checking", text: "Asking for your camera. Your browser may ask you to allow it." },
    }),
    microphone: checkRow({
      id: "microphone",
      title: CHECK_NAMES.microphone,
      intro: "Your proctor hears the room through it.",
      body: micLevel,
      actions: micAgain,
      initial: { state: "checking", text: "Asking for your microphone. Your browser may ask you to allow it." },
    }),
    screen: checkRow({
      id: "screen",
      title: CHECK_NAMES.screen,
      intro: "Your proctor sees your whole screen.",
      actions: screenButton,
      initial: {
        state: "waiting",
        text: 'Press "Test screen sharing", choose "Entire screen", then Share. The test share stops again at once.',
      },
    }),
    connection: checkRow({
      id: "connection",
      title: CHECK_NAMES.connection,
      intro: "Answers, timer and messages travel over it.",
      actions: connectionAgain,
      initial: { state: "checking", text: "Opening a live connection to the hub and timing a few heartbeats." },
    }),
    relay: checkRow({
      id: "relay",
      title: CHECK_NAMES.relay,
      intro: "Your camera and screen travel to your proctor through the hub's video relay.",
      actions: relayAgain,
      initial: relayWaiting,
    }),
    browser: checkRow({
      id: "browser",
      title: CHECK_NAMES.browser,
      intro: "Live video, answer storage, full screen.",
      initial: browserFound,
    }),
  };

  // --- the way on ----------------------------------------------------------------------------
  const continueStatus = h("p", { id: "check-continue-status", class: "check-continue-status" });
  const continueButton = h(
    "button",
    { type: "button", class: "primary", "aria-describedby": "check-continue-status", onclick: () => go(examHash) },
    "Continue to the exam",
  );
  const anywayButton = h(
    "button",
    { type: "button", class: "secondary", "aria-describedby": "check-continue-status", onclick: () => go(examHash) },
    "Continue anyway",
  );
  let wasReady = false;

  /**
   * Shows a check's new verdict, says it out loud, and updates the way on.
   * @param {CheckId} id
   * @param {Verdict} verdict
   */
  function update(id, verdict) {
    rows[id].set(verdict);
    if (verdict.state === "passed" || verdict.state === "problem") {
      announce(`${CHECK_NAMES[id]}: ${STATE_LABELS[verdict.state].text}. ${verdict.text}${verdict.fix ? ` What to do: ${verdict.fix}` : ""}`);
    }
    refreshContinue();
  }

  function refreshContinue() {
    const states = Object.fromEntries(Object.entries(rows).map(([id, row]) => [id, row.state]));
    const { ready, missing } = readiness(states);
    continueButton.disabled = !ready;
    // The last check passed while "Continue anyway" had the focus: hand it to the real thing.
    const moveFocus = ready && document.activeElement === anywayButton;
    anywayButton.hidden = ready;
    if (moveFocus) continueButton.focus();
    continueStatus.dataset.ready = String(ready);
    continueStatus.textContent = ready
      ? "Everything the exam needs works. Your exam and its timer start when you continue."
      : continueAnywayText(missing);
    if (ready && !wasReady) announce("All checks passed. You can continue to the exam.");
    wasReady = ready;
  }

  // --- buttons that keep the keyboard's place -------------------------------------------------
  // A check's button stays focusable while its check runs (aria-disabled, not disabled: a
  // disabled button drops the focus to the top of the page), and when it is hidden after a
  // pass, the focus moves to its check's heading rather than to nowhere.

  /**
   * @param {HTMLButtonElement} button
   * @param {boolean} on
   */
  function busy(button, on) {
    if (on) button.setAttribute("aria-disabled", "true");
    else button.removeAttribute("aria-disabled");
  }

  /**
   * @param {HTMLButtonElement} button
   * @param {CheckId} id
   */
  function showOnProblem(button, id) {
    const hide = rows[id].state !== "problem";
    if (hide && document.activeElement === button) {
      const heading = /** @type {HTMLElement | null} */ (rows[id].el.querySelector("h2"));
      heading?.setAttribute("tabindex", "-1");
      heading?.focus();
    }
    button.hidden = hide;
  }

  // --- the checks ----------------------------------------------------------------------------
  function releaseDevices() {
    stopMeter();
    stopMeter = () => {};
    camTrack?.stop();
    micTrack?.stop();
    camTrack = micTrack = null;
    preview.srcObject = null;
    preview.hidden = true;
    micLevel.hidden = true;
  }

  async function checkDevices() {
    if (devicesBusy) return;
    devicesBusy = true;
    releaseDevices();
    busy(cameraAgain, true);
    busy(micAgain, true);
    rows.camera.set({ state: "checking", text: "Asking for your camera. Your browser may ask you to allow it." });
    rows.microphone.set({ state: "checking", text: "Asking for your microphone. Your browser may ask you to allow it." });
    refreshContinue();
    const { camera, microphone } = await openCameraAndMicrophone(navigator.mediaDevices);
    if (closed) {
      camera.track?.stop();
      microphone.track?.stop();
      return;
    }
    if (camera.track) {
      const track = (camTrack = camera.track);
      preview.srcObject = new MediaStream([track]);
      preview.hidden = false;
      stoppedAlarm(track, "camera", cameraAgain);
    }
    if (microphone.track) {
      const track = (micTrack = microphone.track);
      heard = false;
      heardText.textContent = "Say a few words: the bar should move.";
      delete heardText.dataset.heard;
      stopMeter = watchLevel(track, showLevel);
      micLevel.hidden = false;
      stoppedAlarm(track, "microphone", micAgain);
    }
    update("camera", deviceVerdict("camera", camera));
    update("microphone", deviceVerdict("microphone", microphone));
    busy(cameraAgain, false);
    busy(micAgain, false);
    showOnProblem(cameraAgain, "camera");
    showOnProblem(micAgain, "microphone");
    devicesBusy = false;
    // Once is enough: a camera checked again does not change the way to the relay.
    if (rows.camera.state === "passed" && rows.relay.state !== "passed") checkRelay();
  }

  /**
   * A device that stops on its own (unplugged, taken by another program) is a problem again.
   * `track.stop()` from this page fires no `ended`, so releasing does not come here.
   * @param {MediaStreamTrack} track
   * @param {"camera" | "microphone"} device
   * @param {HTMLButtonElement} again
   */
  function stoppedAlarm(track, device, again) {
    track.addEventListener("ended", () => {
      if (closed || (track !== camTrack && track !== micTrack)) return;
      update(device, deviceVerdict(device, { ended: true }));
      showOnProblem(again, device);
    });
  }

  /** @param {{bar: number, db: number}} level */
  function showLevel({ bar, db }) {
    const percent = Math.round(bar * 100);
    meterBar.style.width = `${percent}%`;
    // The bar moves every frame; its accessible value is updated calmly.
    const now = performance.now();
    if (now - meterAnnouncedAt > 500) {
      meterAnnouncedAt = now;
      meter.setAttribute("aria-valuenow", String(percent));
    }
    if (!heard && isHeard(db)) {
      heard = true;
      heardText.textContent = "We can hear you.";
      heardText.dataset.heard = "true";
      announce("Microphone: we can hear you.");
    }
  }

  async function checkScreen() {
    if (screenBusy) return;
    screenBusy = true;
    busy(screenButton, true);
    update("screen", { state: "checking", text: 'Choose "Entire screen" in the window your browser shows, then Share.' });
    const outcome = await testScreenShare(navigator.mediaDevices);
    if (closed) return;
    screenBusy = false;
    busy(screenButton, false);
    screenButton.textContent = "Test screen sharing again";
    screenButton.className = "secondary";
    update("screen", screenVerdict(outcome));
  }

  async function checkConnection() {
    if (connection) return;
    busy(connectionAgain, true);
    rows.connection.set({ state: "checking", text: "Opening a live connection to the hub and timing a few heartbeats." });
    refreshContinue();
    const test = measureConnection(client);
    connection = test;
    const result = await test.result;
    if (closed || connection !== test) return;
    connection = null;
    update("connection", connectionVerdict(result));
    busy(connectionAgain, false);
    showOnProblem(connectionAgain, "connection");
  }

  async function checkRelay() {
    if (relay || closed) return;
    if (rows.camera.state !== "passed") {
      rows.relay.set(relayWaiting);
      refreshContinue();
      return;
    }
    busy(relayAgain, true);
    rows.relay.set({
      state: "checking",
      text: "Sending your camera's picture to the hub's video relay for a few seconds. Nobody watches it.",
    });
    refreshContinue();
    const test = testRelay(client, examId);
    relay = test;
    const result = await test.result;
    if (closed || relay !== test) return;
    relay = null;
    update("relay", relayVerdict(result));
    busy(relayAgain, false);
    showOnProblem(relayAgain, "relay");
  }

  // --- the page ------------------------------------------------------------------------------
  const title = exam ? exam.title : "your exam";
  const status = exam?.session?.status;
  show(
    "System check",
    h(
      "div",
      { class: "check-page" },
      h("h1", {}, "System check"),
      h(
        "p",
        { class: "lead" },
        `Before ${exam ? `“${title}”` : title}, check that this computer is ready. `,
        status === "STARTED"
          ? null
          : "The exam's timer has not started: it starts when you continue. Your microphone and screen stay on this computer during the check; your camera is sent to the hub for a few seconds to test the way to your proctor, and nobody watches it.",
      ),
      status === "STARTED"
        ? h("p", { class: "notice", "data-tone": "warn" }, "This exam is already in progress: its timer keeps running while you check.")
        : null,
      exam?.recordMedia === true ? recordingNotice() : null,
      log,
      h(
        "ul",
        { class: "check-list", "aria-label": "Checks" },
        Object.values(rows).map((row) => row.el),
      ),
      // Kept in view at the bottom of the window (check.css): the way on and why it is closed.
      h(
        "section",
        { class: "card check-continue", "aria-labelledby": "check-continue-title" },
        h("div", { class: "check-continue-text" }, h("h2", { id: "check-continue-title" }, "Ready?"), continueStatus),
        h(
          "div",
          { class: "button-row" },
          continueButton,
          anywayButton,
          h("button", { type: "button", class: "secondary", onclick: () => go("#/exams") }, "Back to my exams"),
        ),
      ),
    ),
  );
  refreshContinue();
  if (browserFound.state === "problem") update("browser", browserFound); // to be announced too

  checkDevices();
  checkConnection();

  return () => {
    closed = true;
    releaseDevices();
    connection?.stop();
    connection = null;
    relay?.stop();
    relay = null;
  };
}
