// @ts-check
/**
 * Taking an exam (CANDIDATE): start or resume the session, answer the questions with
 * autosave, the countdown, the proctor's messages, phone pairing, submit, and the end screen.
 *
 * The pieces it wires together come from hub-client.js: the {@link AnswerQueue} keeps every
 * edit in localStorage until the hub has it; the {@link HubSocket} carries `time-up`,
 * `time-extended`, `warning`, `session-ended` and `pairing-claimed`; the
 * {@link ProctoringMonitor} reports tab, focus, fullscreen and clipboard signals.
 */
import { AnswerQueue, HubSocket, ProctoringMonitor } from "./hub-client.js";
import { h, show, modal, formatTime, errorText } from "./ui.js";
import { questionPanel, typeName, isAnswered } from "./exam-question.js";
import { Countdown } from "./exam-countdown.js";
import { pairingPanel } from "./exam-pairing.js";
import { mediaPanel, recordingNotice } from "./exam-media.js";
import { endView } from "./view-end.js";

/** @typedef {import("./hub-client.js").Session} Session */
/** @typedef {import("./hub-client.js").HubClient} HubClient */
/** @typedef {import("./view-end.js").Ending} Ending */

/** The hub accepts saves this long after `expiresAt` (CONTRACT: HUB_AUTOSAVE_GRACE_SECS). */
const DEFAULT_GRACE_MS = 5_000;

/** @param {import("./app.js").ViewContext} ctx */
export async function examView(ctx) {
  const { client, go, arg: examId } = ctx;
  show("Opening exam", h("h1", {}, "Opening your exam…"));
  // The session body has no title; /me/exams has it (asked in parallel: no extra wait).
  const titled = client.myExams().then(
    (page) => page.items.find((x) => x.id === examId)?.title || "Your exam",
    () => "Your exam",
  );
  /** @type {Session} */
  let session;
  try {
    session = await client.startSession(examId);
  } catch (e) {
    return startFailed(ctx, e);
  }
  if (session.status !== "STARTED") {
    endView(go, { status: session.status, reason: session.endedReason, at: session.submittedAt });
    return;
  }
  return takeExam(client, go, session, await titled);
}

/**
 * Why the session could not be opened, in words a candidate can act on.
 * @param {import("./app.js").ViewContext} ctx
 * @param {unknown} e
 */
async function startFailed(ctx, e) {
  const { client, go, arg: examId } = ctx;
  const err = /** @type {{status?: number, code?: string}} */ (e);
  if (err.code === "SESSION_CLOSED") {
    // Ended already: find out how, for the right end screen.
    const mine = await client.myExams().catch(() => null);
    const s = mine?.items.find((x) => x.id === examId)?.session;
    if (s && s.status !== "STARTED") return endView(go, { status: s.status });
  }
  const messages = {
    DEVICE_MISMATCH: [
      "This exam was started on another computer",
      "An exam stays on the computer it was started on. Ask your proctor to allow the change to this computer, then try again.",
    ],
    EXAM_NOT_OPEN: ["This exam is not open now", "Check the exam's window on My exams."],
    NOT_ASSIGNED: ["This exam is not assigned to you", "Check with your exam organiser."],
    NOT_FOUND: ["This exam was not found", "It may have been withdrawn. Check My exams."],
    SESSION_CLOSED: ["This exam has ended", "You can no longer open it."],
  };
  const [title, text] = messages[/** @type {keyof typeof messages} */ (err.code)] || [
    "The exam could not be opened",
    errorText(e),
  ];
  show(
    title,
    h(
      "section",
      { class: "card narrow", "data-error": err.code || "UNKNOWN" },
      h("h1", {}, title),
      h("p", {}, text),
      h(
        "div",
        { class: "button-row" },
        h("button", { type: "button", class: "primary", onclick: () => examView(ctx) }, "Try again"),
        h("button", { type: "button", class: "secondary", onclick: () => go("#/exams") }, "Back to my exams"),
      ),
    ),
  );
}

/**
 * @param {HubClient} client
 * @param {(hash: string) => void} go
 * @param {Session} session
 * @param {string} title
 * @returns {() => void} cleanup
 */
function takeExam(client, go, session, title) {
  const questions = session.questions;
  const queue = new AnswerQueue({
    sessionId: session.id,
    transport: (questionId, body) => client.saveAnswer(session.id, questionId, body),
  });
  queue.seed(session.answers);
  const socket = new HubSocket(client);
  const monitor = new ProctoringMonitor({ report: (type, severity, meta) => socket.sendEvent(type, severity, meta) });

  let current = 0;
  let ended = false;
  let timeUp = false;
  let submitting = false;
  /** @type {ReturnType<typeof setTimeout> | null} */
  let endPoll = null;
  /** @type {HTMLDialogElement[]} */
  const openDialogs = [];

  // --- the page -------------------------------------------------------------------------------
  const timer = h("p", { class: "timer", role: "timer", "aria-label": "Time left", "data-urgency": "normal" }, "--:--");
  const announcer = h("p", { class: "visually-hidden", "aria-live": "assertive" });
  const connection = h("p", { class: "pill", "data-state": "connecting" }, "Connecting…");
  const saveSummary = h("p", { class: "pill", "data-queued": "0", "data-state": "saved" }, "All answers saved");
  const notice = h("div", { class: "notice", role: "status", hidden: true });
  const fullscreen = h(
    "button",
    {
      type: "button",
      class: "secondary small",
      hidden: !document.fullscreenEnabled,
      onclick: () => document.documentElement.requestFullscreen().catch(() => {}),
    },
    "Enter full screen",
  );
  const submitButton = h("button", { type: "button", class: "primary", onclick: () => submitFlow() }, "Submit exam…");

  const panels = questions.map((question, index) =>
    questionPanel({
      question,
      index,
      total: questions.length,
      initial: queue.get(question.id)?.response,
      onEdit: (response) => {
        if (timeUp || ended) return;
        queue.edit(question.id, response);
      },
    }),
  );
  const navButtons = questions.map((q, i) =>
    h(
      "button",
      { type: "button", class: "q-link", onclick: () => showQuestion(i, true) },
      h("span", { class: "q-num" }, `${i + 1}`),
      h("span", { class: "q-type" }, typeName(q)),
      h("span", { class: "q-state" }),
    ),
  );
  const prev = h("button", { type: "button", class: "secondary", onclick: () => showQuestion(current - 1, true) }, "← Previous question");
  const next = h("button", { type: "button", class: "secondary", onclick: () => showQuestion(current + 1, true) }, "Next question →");
  const answers = h("fieldset", { class: "answers" }, h("legend", { class: "visually-hidden" }, "Your answers"), panels.map((p) => p.el));
  const pairing = pairingPanel(client, socket, session.id);
  const recorded = session.recordMedia === true;
  const media = mediaPanel(socket, session.webrtcRoomId, recorded);

  show(
    "Exam",
    h(
      "div",
      { class: "exam-bar" },
      h("h1", {}, title),
      h(
        "div",
        { class: "exam-bar-status" },
        timer,
        recorded ? h("p", { class: "pill", "data-state": "recording", id: "recording-pill" }, "Recorded for review") : null,
        connection,
        saveSummary,
        fullscreen,
        submitButton,
      ),
    ),
    announcer,
    h(
      "p",
      { class: "banner", role: "note" },
      h("strong", {}, session.recordMedia === false ? "This exam is proctored. " : "This exam is proctored and recorded. "),
      "Your proctor sees your camera and screen once you share them, sees when you leave this tab, switch windows, leave full screen, or copy and paste, and may send you messages here.",
    ),
    recorded ? recordingNotice() : null,
    notice,
    h(
      "div",
      { class: "exam-layout" },
      h(
        "nav",
        { class: "q-nav card", "aria-label": "Questions" },
        h("h2", {}, "Questions"),
        h("ol", {}, navButtons.map((b) => h("li", {}, b))),
      ),
      h("div", { class: "q-main" }, answers, h("div", { class: "q-pager" }, prev, next)),
      h("aside", { class: "q-side" }, media.el, pairing.el),
    ),
  );

  /**
   * @param {number} i
   * @param {boolean} moveFocus move focus to the question's heading (a keyboard user asked)
   */
  function showQuestion(i, moveFocus) {
    if (i < 0 || i >= questions.length) return;
    if (i !== current) queue.flushNow(); // leaving a question: save it without the typing pause
    current = i;
    panels.forEach((p, j) => (p.el.hidden = j !== i));
    navButtons.forEach((b, j) => (j === i ? b.setAttribute("aria-current", "step") : b.removeAttribute("aria-current")));
    prev.disabled = i === 0;
    next.disabled = i === questions.length - 1;
    if (moveFocus) panels[i].heading.focus();
  }
  showQuestion(0, false);

  // --- saving -----------------------------------------------------------------------------------
  const STATUS_TEXT = {
    saved: "Saved",
    saving: "Saving…",
    queued: "Waiting to save",
    offline: "Offline",
    error: "Not saved",
  };

  /** Every status line and the summary: cheap for a few dozen questions, and never stale. */
  function renderSaveState() {
    const sum = queue.summary();
    const errors = questions.filter((q) => queue.status(q.id) === "error").length;
    questions.forEach((q, i) => {
      const entry = queue.get(q.id);
      const status = entry ? queue.status(q.id) : "none";
      let text = "Not answered yet";
      if (status === "saved") text = "Saved";
      else if (status === "saving") text = "Saving…";
      else if (status === "offline") text = `Offline — ${sum.queued} queued. Your answers are kept on this computer and saved when you are back online.`;
      else if (status === "queued") text = sum.retryAt ? `Waiting for the hub — ${sum.queued} queued` : "Saving soon…";
      else if (status === "error") {
        const err = entry?.error;
        text = queue.closed
          ? "Not saved: the exam has ended."
          : `Not saved: ${err ? err.message : "refused"}. Change the answer to try again.`;
      }
      const line = panels[i].status;
      if (line.textContent !== text) line.textContent = text;
      line.dataset.status = status;
      const mark = /** @type {HTMLElement} */ (navButtons[i].querySelector(".q-state"));
      const answered = isAnswered(entry?.response);
      mark.textContent = status === "none" || status === "saved" ? (answered ? "Answered" : "Not answered") : STATUS_TEXT[status];
      navButtons[i].dataset.status = status;
      navButtons[i].dataset.answered = String(answered);
    });
    let summary = "All answers saved";
    let state = "saved";
    if (sum.closed && sum.queued) [summary, state] = [`${sum.queued} not saved`, "error"];
    else if (sum.offline) [summary, state] = [`Offline — ${sum.queued} queued`, "offline"];
    else if (sum.saving) [summary, state] = ["Saving…", "saving"];
    else if (errors) [summary, state] = [`${errors} not saved`, "error"];
    else if (sum.queued) [summary, state] = [`${sum.queued} queued`, "queued"];
    saveSummary.textContent = summary;
    saveSummary.dataset.state = state;
    saveSummary.dataset.queued = String(sum.queued);
  }
  queue.on("change", renderSaveState);
  queue.on("closed", () => {
    answers.disabled = true;
    renderSaveState();
  });
  renderSaveState();

  // --- time -------------------------------------------------------------------------------------
  let expiresAt = session.expiresAt;
  const countdown = new Countdown(client.clock, timer, announcer, () => {
    // The server's time-up is the authority; this covers a socket that is down right now.
    enterTimeUp(new Date(Date.parse(expiresAt) + DEFAULT_GRACE_MS).toISOString());
  });
  countdown.set(expiresAt);
  countdown.start();

  /** @param {string} graceEndsAt */
  function enterTimeUp(graceEndsAt) {
    if (ended) return;
    const first = !timeUp;
    timeUp = true;
    answers.disabled = true;
    submitButton.disabled = true;
    queue.flushNow();
    showNotice(
      "warn",
      "Time is up.",
      ` You can no longer change your answers. Answers not saved yet are being sent until ${formatTime(graceEndsAt)}; then your exam is submitted automatically.`,
    );
    if (first) announcer.textContent = "Time is up. You can no longer change your answers.";
    // If `session-ended` does not arrive (socket down), ask the hub how the session ended.
    scheduleEndPoll(Math.max(0, client.clock.until(graceEndsAt)) + 5_000);
  }

  /** @param {string} newExpiresAt */
  function extendTime(newExpiresAt) {
    expiresAt = newExpiresAt;
    countdown.set(expiresAt);
    if (timeUp && client.clock.until(expiresAt) > 0) {
      timeUp = false;
      answers.disabled = queue.closed;
      submitButton.disabled = false;
      if (endPoll) clearTimeout(endPoll);
    }
    showNotice("info", "You have more time.", ` Your exam now ends at ${formatTime(expiresAt)}.`);
    announcer.textContent = `You have more time. Your exam now ends at ${formatTime(expiresAt)}.`;
  }

  /** @param {number} ms */
  function scheduleEndPoll(ms) {
    if (endPoll) clearTimeout(endPoll);
    endPoll = setTimeout(async () => {
      try {
        const s = await client.session(session.id);
        if (s.status !== "STARTED") return finish({ status: s.status, reason: s.endedReason, at: s.submittedAt });
        if (s.expiresAt !== expiresAt) extendTime(s.expiresAt);
      } catch {
        // offline: ask again below
      }
      if (!ended && timeUp) scheduleEndPoll(5_000);
    }, ms);
  }

  /**
   * @param {"warn" | "info" | "bad"} tone
   * @param {string} strong
   * @param {string} rest
   */
  function showNotice(tone, strong, rest) {
    notice.hidden = false;
    notice.dataset.tone = tone;
    notice.replaceChildren(h("strong", {}, strong), rest);
  }

  // --- the socket -------------------------------------------------------------------------------
  socket.join(session.webrtcRoomId);
  /** The connection pill: the browser's own offline flag first (it knows before the socket). */
  function renderConnection() {
    const state = socket.state;
    const [text, key] = !navigator.onLine
      ? ["Offline", "offline"]
      : state === "open"
        ? ["Connected", "open"]
        : state === "stopped"
          ? ["Disconnected", "stopped"]
          : state === "reconnecting"
            ? ["Reconnecting…", "reconnecting"]
            : ["Connecting…", "connecting"];
    connection.textContent = text;
    connection.dataset.state = key;
  }
  socket.on("state", renderConnection);
  socket.on("time-up", (m) => {
    if (m.sessionId === session.id) enterTimeUp(m.graceEndsAt);
  });
  socket.on("time-extended", (m) => {
    if (m.sessionId === session.id) extendTime(m.expiresAt);
  });
  socket.on("session-ended", (m) => finish({ status: m.status, reason: m.reason, at: new Date(client.clock.now()).toISOString() }));
  socket.on("pairing-claimed", (m) => pairing.claimed(m));
  socket.on("warning", (m) => warn(m.message));
  socket.on("stopped", async ({ reason }) => {
    if (ended) return;
    if (reason === "session-ended") {
      // The close came without (or before) its `session-ended` message: read the ending.
      const s = await client.session(session.id).catch(() => null);
      finish({ status: s && s.status !== "STARTED" ? s.status : "SUBMITTED", reason: s?.endedReason, at: s?.submittedAt });
    } else if (reason === "replaced") {
      replaced();
    }
    // `unauthenticated`: the client's `auth` event takes the app to the login.
  });
  socket.start();
  monitor.start();

  /** Warnings queue up; each must be acknowledged before the next shows. */
  let warnings = Promise.resolve();
  /** @param {string} message */
  function warn(message) {
    warnings = warnings.then(async () => {
      if (ended) return;
      const { dialog, result } = modal({
        title: "Message from your proctor",
        body: h("p", { class: "warning-text" }, message),
        buttons: [{ label: "I understand", value: "ok", primary: true }],
        alert: true,
      });
      openDialogs.push(dialog);
      await result;
    });
  }

  async function replaced() {
    const { dialog, result } = modal({
      title: "This exam is open somewhere else",
      body: h("p", {}, "Your exam was opened in another tab or window, which took over. Only one can be used at a time."),
      buttons: [
        { label: "Use this window", value: "here", primary: true },
        { label: "Back to my exams", value: "leave" },
      ],
      alert: true,
    });
    openDialogs.push(dialog);
    if ((await result) === "here") socket.start();
    else go("#/exams");
  }

  // --- submitting -------------------------------------------------------------------------------
  async function submitFlow() {
    if (submitting || ended || timeUp) return;
    const unanswered = questions.filter((q) => !isAnswered(queue.get(q.id)?.response)).length;
    const ask = modal({
      title: "Submit your exam?",
      body: [
        h("p", {}, `You answered ${questions.length - unanswered} of ${questions.length} questions.`),
        unanswered ? h("p", { class: "form-error" }, `${unanswered} ${unanswered === 1 ? "question is" : "questions are"} not answered.`) : null,
        h("p", {}, "After you submit, you cannot change your answers."),
      ],
      buttons: [
        { label: "Keep working", value: "cancel" },
        { label: "Submit exam", value: "submit", primary: true },
      ],
      focus: "cancel",
    });
    openDialogs.push(ask.dialog);
    if ((await ask.result) !== "submit") return;
    submitting = true;
    submitButton.disabled = true;
    submitButton.textContent = "Submitting…";
    try {
      // Every answer first: a submit ends the session, and saves after it are refused.
      if (!(await queue.drain(15_000)) && !queue.closed) {
        const left = queue.summary().queued;
        const again = modal({
          title: "Some answers are not saved yet",
          body: h(
            "p",
            {},
            `${left} ${left === 1 ? "answer has" : "answers have"} not reached the hub${queue.summary().offline ? " because you are offline" : ""}. If you submit now, ${left === 1 ? "it is" : "they are"} left out.`,
          ),
          buttons: [
            { label: "Wait and keep trying", value: "wait", primary: true },
            { label: "Submit without them", value: "submit", danger: true },
          ],
          focus: "wait",
        });
        openDialogs.push(again.dialog);
        if ((await again.result) !== "submit") return;
      }
      const res = await client.submit(session.id);
      finish({ status: res.status, at: res.submittedAt });
    } catch (e) {
      showNotice("bad", "The exam was not submitted.", ` ${errorText(e)} Your answers are kept; try again.`);
    } finally {
      submitting = false;
      if (!ended) {
        submitButton.disabled = timeUp;
        submitButton.textContent = "Submit exam…";
      }
    }
  }

  // --- the end ----------------------------------------------------------------------------------
  /** @param {Ending} ending */
  function finish(ending) {
    if (ended) return;
    ended = true;
    const unsaved = queue.pendingIds().length;
    teardown();
    // Nothing can be saved once the session ended: the local copy has done its job.
    queue.discard();
    endView(go, { ...ending, unsaved });
  }

  const onOnline = () => {
    renderConnection();
    queue.wake();
  };
  const onOffline = () => renderConnection();
  const onPageHide = () => queue.flushNow();
  // Offer full screen only while not in it (leaving it is reported as FULLSCREEN_EXIT).
  const onFullscreen = () => (fullscreen.hidden = !document.fullscreenEnabled || !!document.fullscreenElement);
  document.addEventListener("fullscreenchange", onFullscreen);
  window.addEventListener("online", onOnline);
  window.addEventListener("offline", onOffline);
  window.addEventListener("pagehide", onPageHide);

  function teardown() {
    media.stop();
    socket.stop();
    monitor.stop();
    queue.stop();
    countdown.stop();
    if (endPoll) clearTimeout(endPoll);
    document.removeEventListener("fullscreenchange", onFullscreen);
    window.removeEventListener("online", onOnline);
    window.removeEventListener("offline", onOffline);
    window.removeEventListener("pagehide", onPageHide);
    for (const d of openDialogs) if (d.isConnected) d.remove();
  }

  return () => {
    if (!ended) teardown();
  };
}
