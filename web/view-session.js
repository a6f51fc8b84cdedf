// @ts-check
/**
 * One session, full view (`#/session/<sessionId>`, staff): the camera, screen and phone camera
 * on the high simulcast layer, the status, the time left by the server clock, liveness and
 * score as the socket reports them, the event timeline (newest first, paged, with live
 * additions), the action log, and the actions themselves.
 */
import { HubSocket } from "./hub-client.js";
import { h, show, formatTime, formatDateTime, errorText } from "./ui.js";
import { Countdown } from "./exam-countdown.js";
import { RoomSubscriber, showTrack } from "./staff-media.js";
import { EventPager } from "./staff-timeline.js";
import { ACTIONS, ACTION_ORDER, runAction, actionText } from "./staff-actions.js";
import { getExam, allExamSessions, sessionEvents, sessionActions } from "./staff-api.js";
import { watchExam, connectionPill } from "./staff-socket.js";
import { setLiveness } from "./staff-tile.js";
import { eventName, statusText, formatScore, isEnded, metaText } from "./staff-board.js";

/** @typedef {import("./hub-client.js").Session} Session */
/** @typedef {import("./hub-client.js").SessionView} SessionView */
/** @typedef {import("./staff-api.js").AdminAction} AdminAction */
/** @typedef {import("./staff-api.js").ActionType} ActionType */
/** @typedef {import("./staff-timeline.js").TimelineEvent} TimelineEvent */
/** @typedef {import("./staff-media.js").TrackSource} TrackSource */

/** The panes, in the order they show. */
const PANES = /** @type {const} */ ([
  ["camera", "Camera"],
  ["screen", "Screen"],
  ["phone-camera", "Phone camera"],
]);

/** @param {import("./app.js").ViewContext} ctx */
export async function sessionView(ctx) {
  const { client, arg: sessionId } = ctx;
  show("Session", h("h1", {}, "Session"), h("p", { "aria-live": "polite" }, "Loading the session…"));
  /** @type {Session} */
  let session;
  try {
    session = await client.session(sessionId);
  } catch (e) {
    show(
      "Session",
      h("h1", {}, "Session"),
      h("p", { class: "form-error", role: "alert" }, `The session could not be loaded. ${errorText(e)}`),
      h(
        "div",
        { class: "button-row" },
        h("button", { type: "button", class: "primary", onclick: () => sessionView(ctx) }, "Try again"),
        h("a", { href: "#/exams", class: "button-link secondary" }, "Back to exams"),
      ),
    );
    return;
  }
  // The session body has neither the exam's title nor the candidate: ask for both (a failure
  // costs only the words).
  const [exam, listed] = await Promise.all([
    getExam(client, session.examId).catch(() => null),
    allExamSessions(client, session.examId)
      .then((items) => items.find((s) => s.id === sessionId) || null)
      .catch(() => null),
  ]);
  return watchSession(client, session, exam?.title || "Exam", listed);
}

/**
 * @param {import("./hub-client.js").HubClient} client
 * @param {Session} session
 * @param {string} examTitle
 * @param {import("./staff-board.js").StaffSession | null} listed the session's entry in the exam's list
 * @returns {() => void} cleanup
 */
function watchSession(client, session, examTitle, listed) {
  const name = listed?.candidate.name || "Candidate";
  const gridHash = `#/grid/${encodeURIComponent(session.examId)}`;
  const socket = new HubSocket(client);
  let status = session.status;
  let expiresAt = session.expiresAt;
  /** when the session ended (the hub's `submittedAt`, set for every ending) */
  let endedAt = session.submittedAt || null;
  let disposed = false;

  // --- the header -------------------------------------------------------------------------------
  const statusBadge = h("span", { class: "badge" });
  const timer = h("p", { class: "timer", role: "timer", "aria-label": "Time left", "data-urgency": "normal" }, "--:--");
  const endsAt = h("p", { class: "hint ends-at" });
  const timeLabel = h("dt", {}, "Time left");
  const laptop = h("span", { class: "liveness" });
  const mobile = h("span", { class: "liveness" });
  const score = h("span", { class: "score-value" });
  const flag = h("span", { class: "badge bad flag", hidden: true }, "Flagged");
  const pill = connectionPill(socket);
  const notice = h("div", { class: "notice", role: "status", hidden: true });

  // --- media ------------------------------------------------------------------------------------
  /** @type {Record<string, {video: HTMLVideoElement, note: HTMLElement, fig: HTMLElement, playing: boolean}>} */
  const panes = {};
  for (const [source, label] of PANES) {
    const video = h("video", { muted: true, autoplay: true, playsInline: true, "aria-label": `${label} of ${name}` });
    const note = h("p", { class: "stage-note" });
    const fig = h("figure", { class: "pane", "data-source": source }, h("div", { class: "stage" }, video, note), h("figcaption", {}, label));
    const pane = { video, note, fig, playing: false };
    // "playing" comes with the first decoded frame.
    video.addEventListener("playing", () => {
      pane.playing = true;
      renderPanes();
    });
    panes[source] = pane;
  }
  const audio = h("audio", { autoplay: true, muted: true });
  const listen = h(
    "button",
    {
      type: "button",
      class: "secondary small",
      "aria-pressed": "false",
      onclick: () => {
        audio.muted = !audio.muted;
        if (!audio.muted) audio.play().catch(() => {});
        renderPanes();
      },
    },
    "No microphone shared",
  );
  /** @type {RoomSubscriber | null} */
  let media = null;
  /** @type {import("./staff-media.js").SubscriberState} */
  let mediaState = "joining";
  /** @type {import("./staff-media.js").RemoteTrack[]} */
  let received = [];

  /** Each pane shows its video, or says why there is none. */
  function renderPanes() {
    const ended = isEnded({ status });
    for (const [source, label] of PANES) {
      const p = panes[source];
      const has = received.some((t) => t.source === source);
      /** @type {[string, string]} */
      let [state, text] = ["waiting", "Connecting…"];
      if (ended) [state, text] = ["ended", "The session has ended"];
      else if (has && p.playing) [state, text] = ["playing", ""];
      else if (has) text = "Starting video…";
      else if (mediaState === "retrying") text = "Reconnecting…";
      else if (mediaState === "negotiating" || mediaState === "connected") [state, text] = ["none", `No ${label.toLowerCase()} shared yet`];
      p.fig.dataset.video = state;
      p.video.hidden = state !== "playing";
      p.note.hidden = !text;
      p.note.textContent = text;
    }
    const mic = received.some((t) => t.source === "microphone");
    listen.disabled = !mic;
    listen.setAttribute("aria-pressed", String(mic && !audio.muted));
    listen.textContent = !mic ? "No microphone shared" : audio.muted ? "Listen to the microphone" : "Mute the microphone";
  }

  function startMedia() {
    media = new RoomSubscriber(socket, session.webrtcRoomId, { layer: "high", tracks: ["camera", "screen", "phone-camera", "microphone"] });
    media.on("tracks", ({ tracks }) => {
      received = tracks;
      for (const [source] of PANES) {
        const t = tracks.find((x) => x.source === source)?.track || null;
        const p = panes[source];
        if (!t || (p.video.srcObject instanceof MediaStream && p.video.srcObject.getTracks()[0] !== t)) p.playing = false;
        showTrack(p.video, t);
      }
      showTrack(audio, tracks.find((x) => x.source === "microphone")?.track || null);
      renderPanes();
    });
    media.on("state", ({ state }) => {
      mediaState = state;
      renderPanes();
    });
    media.on("error", ({ code, message }) => showNotice("bad", "Video problem.", ` ${code}: ${message}`));
    media.start();
  }

  function stopMedia() {
    media?.stop();
    media = null;
    received = [];
    for (const [source] of PANES) showTrack(panes[source].video, null);
    showTrack(audio, null);
    renderPanes();
  }

  // --- actions ----------------------------------------------------------------------------------
  const actionButtons = ACTION_ORDER.map((type) =>
    h("button", { type: "button", class: ACTIONS[type].danger ? "danger" : "secondary", "data-action": type, onclick: () => doAction(type) }, ACTIONS[type].button),
  );
  const actionsNote = h("p", { class: "note", hidden: true }, "The session has ended: no more actions can be taken.");
  const log = h("ol", { class: "action-log" });
  const logState = h("p", { class: "note", "aria-live": "polite" }, "Loading…");

  /** @param {ActionType} type */
  async function doAction(type) {
    const done = await runAction(client, session.id, name, type);
    if (!done || disposed) return;
    const minutes = done.payload?.minutes;
    const words = {
      WARN: ["Warning sent.", ` ${name} sees: “${done.reason}”`],
      EXTEND_TIME: ["Time extended.", ` ${name} has ${minutes} more minutes.`],
      UNPAIR_MOBILE: ["Phone unpaired.", ` ${name}'s phone was disconnected.`],
      ALLOW_DEVICE_CHANGE: ["Device change allowed.", ` ${name} may resume once on another computer.`],
      TERMINATE: ["Exam terminated.", ` ${name}'s exam has ended.`],
    }[type];
    showNotice(type === "TERMINATE" ? "warn" : "info", words[0], words[1]);
    loadLog();
    if (type === "EXTEND_TIME" || type === "TERMINATE") refreshSession(); // in case the socket is down
  }

  async function refreshSession() {
    try {
      const s = await client.session(session.id);
      if (disposed) return;
      if (s.expiresAt !== expiresAt) setExpiresAt(s.expiresAt);
      if (s.submittedAt) endedAt = s.submittedAt;
      if (s.status !== status) setStatus(s.status);
    } catch {
      // the socket will tell
    }
  }

  async function loadLog() {
    try {
      const actions = await sessionActions(client, session.id);
      if (disposed) return;
      const me = client.user?.id;
      log.replaceChildren(
        ...actions
          .slice()
          .reverse()
          .map((a) =>
            h(
              "li",
              { "data-action": a.actionType },
              h("p", { class: "log-head" }, h("strong", {}, actionText(a)), " ", h("time", { datetime: a.createdAt }, formatTime(a.createdAt))),
              a.reason ? h("p", { class: "log-reason" }, a.reason) : null,
              h("p", { class: "hint" }, a.actorId == null ? "By the hub (automatic)" : a.actorId === me ? "By you" : "By a proctor or admin"),
            ),
          ),
      );
      logState.textContent = actions.length ? "" : "No actions yet.";
      logState.hidden = !!actions.length;
    } catch (e) {
      logState.hidden = false;
      logState.textContent = `The action log could not be loaded: ${errorText(e)}`;
    }
  }

  // --- the timeline -----------------------------------------------------------------------------
  const pager = new EventPager({
    fetch: (q) => sessionEvents(client, session.id, q),
    startedAt: Date.parse(session.startedAt),
    now: () => client.clock.now(),
    pageSize: 25,
  });
  const timeline = h("ol", { class: "timeline" });
  const timelineState = h("p", { class: "note" });
  // Said once per page loaded, not on every live event (the count above changes with each).
  const timelineNews = h("p", { class: "visually-hidden", "aria-live": "polite" });
  const older = h("button", { type: "button", class: "secondary", onclick: () => loadOlder() }, "Show older events");

  async function loadOlder() {
    older.disabled = true;
    timelineState.textContent = "Loading events…";
    try {
      const added = await pager.loadOlder();
      if (disposed) return;
      renderTimeline();
      timelineNews.textContent = added.length ? `${added.length} older ${added.length === 1 ? "event" : "events"} loaded.` : "No older events.";
    } catch (e) {
      timelineState.textContent = `Events could not be loaded: ${errorText(e)}`;
    } finally {
      older.disabled = false;
    }
  }

  function renderTimeline() {
    timeline.replaceChildren(...pager.items.map(eventItem));
    older.hidden = pager.done;
    const n = pager.items.length;
    timelineState.textContent =
      n === 0 ? (pager.done ? "No events recorded." : "") : pager.done ? (n === 1 ? "The only event so far." : `All ${n} events shown.`) : `The newest ${n} events.`;
  }

  // --- status, time, liveness -------------------------------------------------------------------
  const announcer = h("p"); // not in the page: the proctor needs no spoken countdown milestones
  const countdown = new Countdown(client.clock, timer, announcer, () => {});

  /** @param {string} at */
  function setExpiresAt(at) {
    expiresAt = at;
    countdown.set(at);
    if (!isEnded({ status })) endsAt.textContent = `Ends ${formatDateTime(at)}`;
  }

  /** @param {import("./hub-client.js").SessionStatus} next */
  function setStatus(next) {
    const was = status;
    status = next;
    const ended = isEnded({ status });
    statusBadge.textContent = statusText(status);
    statusBadge.className = `badge ${ended ? (status === "TERMINATED" ? "bad" : "muted") : "ok"}`;
    statusBadge.dataset.status = status;
    timer.hidden = ended;
    timeLabel.textContent = ended ? "Ended" : "Time left";
    if (ended) endsAt.textContent = endedAt ? formatDateTime(endedAt) : "—";
    for (const b of actionButtons) b.disabled = ended;
    actionsNote.hidden = !ended;
    if (ended) {
      countdown.stop();
      setLiveness(laptop, "ENDED");
      setLiveness(mobile, "ENDED");
      stopMedia();
      if (was !== next && !isEnded({ status: was })) loadLog();
    }
  }

  /** @param {SessionView} v */
  function applyView(v) {
    score.textContent = formatScore(v.violationScore);
    if (typeof v.flagged === "boolean") flag.hidden = !v.flagged;
    if (!isEnded(v)) {
      setLiveness(laptop, v.liveness.laptop);
      setLiveness(mobile, v.liveness.mobile);
    }
    if (v.lastEvent && pager.addLive(v.lastEvent)) renderTimeline();
    if (v.status !== status) {
      if (isEnded(v) && !endedAt) endedAt = new Date(client.clock.now()).toISOString();
      setStatus(v.status);
    }
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

  // --- the page ---------------------------------------------------------------------------------
  show(
    `${name} — session`,
    h(
      "div",
      { class: "page-head" },
      h(
        "div",
        {},
        h("p", { class: "crumbs" }, h("a", { href: "#/exams" }, "Exams"), " › ", h("a", { href: gridHash }, `Live: ${examTitle}`)),
        h("h1", {}, name),
        listed ? h("p", { class: "note" }, listed.candidate.email) : null,
      ),
      h("div", { class: "page-head-side" }, pill),
    ),
    h(
      "dl",
      { class: "session-bar" },
      h("div", {}, h("dt", {}, "Status"), h("dd", {}, statusBadge)),
      h("div", {}, timeLabel, h("dd", {}, timer, endsAt)),
      h("div", {}, h("dt", {}, "Laptop"), h("dd", {}, laptop)),
      h("div", {}, h("dt", {}, "Phone"), h("dd", {}, mobile)),
      h("div", {}, h("dt", {}, "Violation score"), h("dd", {}, score, " ", flag)),
    ),
    notice,
    h(
      "div",
      { class: "session-layout" },
      h(
        "div",
        { class: "session-main" },
        h(
          "section",
          { class: "card media-panes", "aria-labelledby": "media-title" },
          h("div", { class: "section-head" }, h("h2", { id: "media-title" }, "Camera, screen and phone"), listen),
          h("div", { class: "panes" }, PANES.map(([source]) => panes[source].fig)),
          audio,
        ),
        h(
          "section",
          { class: "card", "aria-labelledby": "timeline-title" },
          h("h2", { id: "timeline-title" }, "Event timeline"),
          h("p", { class: "hint" }, "Newest first. New events appear at the top as they happen."),
          timeline,
          timelineState,
          timelineNews,
          older,
        ),
      ),
      h(
        "aside",
        { class: "session-side" },
        h(
          "section",
          { class: "card", "aria-labelledby": "actions-title" },
          h("h2", { id: "actions-title" }, "Actions"),
          h("div", { class: "action-buttons" }, actionButtons),
          actionsNote,
        ),
        h("section", { class: "card", "aria-labelledby": "log-title" }, h("h2", { id: "log-title" }, "Action log"), logState, log),
      ),
    ),
  );

  // --- wiring -----------------------------------------------------------------------------------
  score.textContent = formatScore(listed?.violationScore ?? 0);
  setLiveness(laptop, listed?.liveness.laptop || "UNKNOWN");
  setLiveness(mobile, listed?.liveness.mobile || "UNKNOWN");
  setExpiresAt(expiresAt);
  countdown.start();
  setStatus(status);
  if (!isEnded({ status })) startMedia();

  socket.on("session-snapshot", (m) => {
    const mine = m.sessions.find((s) => s.sessionId === session.id);
    if (mine) applyView(mine);
  });
  socket.on("session-update", (m) => {
    if (m.sessionId === session.id) applyView(m);
  });
  socket.on("time-extended", (m) => {
    if (m.sessionId === session.id) setExpiresAt(m.expiresAt);
  });
  const unwatch = watchExam(socket, session.examId);
  socket.start();
  loadLog();
  loadOlder();

  return () => {
    disposed = true;
    countdown.stop();
    media?.stop();
    unwatch();
    socket.stop();
  };
}

/**
 * @param {TimelineEvent} e
 * @returns {HTMLLIElement}
 */
function eventItem(e) {
  const meta = metaText(e.meta);
  return h(
    "li",
    { "data-severity": String(e.severity), "data-live": e.live ? "true" : null },
    h("time", { datetime: e.timestamp }, formatTime(e.timestamp)),
    h("span", { class: "ev-name" }, eventName(e.eventType)),
    h("span", { class: "ev-facts" }, `severity ${e.severity}${e.source ? ` · ${e.source.toLowerCase()}` : ""}`),
    meta ? h("span", { class: "ev-meta" }, meta.length > 160 ? `${meta.slice(0, 157)}…` : meta) : null,
  );
}
