// @ts-check
/**
 * Review (`#/review/<examId>`, staff): the queue of ended sessions waiting for a decision
 * (`GET /exams/{id}/sessions?ended=true&reviewDecision=PENDING`, paged), and for the one
 * chosen: its recordings (camera with microphone, screen, phone camera) in step with its event
 * timeline (staff-player.js), its answers next to the questions, the grading of CODING and
 * SUBJECTIVE answers (admins grade; proctors see the grades read-only), the score, the event
 * summary, and the decision — approve or reject, with a reason. Nothing here decides by itself.
 */
import { h, show, richText, formatDateTime, errorText } from "./ui.js";
import { getExam, examQuestions, examSessions, eventSummary, sessionActions, allSessionEvents, score as getScore, grade, decide } from "./staff-api.js";
import { gradesOf, mcqVerdict, parsePoints, answered } from "./staff-review.js";
import { FieldError } from "./staff-dialogs.js";
import { eventName, statusText, formatScore } from "./staff-board.js";
import { actionText } from "./staff-actions.js";
import { recordingsPanel } from "./staff-player.js";

/** @typedef {import("./hub-client.js").HubClient} HubClient */
/** @typedef {import("./hub-client.js").Session} Session */
/** @typedef {import("./hub-client.js").Question} Question */
/** @typedef {import("./staff-board.js").StaffSession} StaffSession */
/** @typedef {import("./staff-api.js").StaffQuestion} StaffQuestion */
/** @typedef {import("./staff-api.js").Score} Score */
/** @typedef {import("./staff-api.js").Decision} Decision */

const QUEUE_PAGE = 20;

/** @param {import("./app.js").ViewContext} ctx */
export async function reviewView(ctx) {
  const { client, arg: examId } = ctx;
  show("Review", h("h1", {}, "Review"), h("p", { "aria-live": "polite" }, "Loading the review queue…"));
  /** @type {import("./staff-api.js").ExamDetail} */
  let exam;
  /** @type {StaffQuestion[]} */
  let keys = [];
  try {
    [exam, keys] = await Promise.all([getExam(client, examId), examQuestions(client, examId).catch(() => [])]);
  } catch (e) {
    show(
      "Review",
      h("h1", {}, "Review"),
      h("p", { class: "form-error", role: "alert" }, `The exam could not be loaded. ${errorText(e)}`),
      h(
        "div",
        { class: "button-row" },
        h("button", { type: "button", class: "primary", onclick: () => reviewView(ctx) }, "Try again"),
        h("a", { href: "#/exams", class: "button-link secondary" }, "Back to exams"),
      ),
    );
    return;
  }
  const keyOf = new Map(keys.map((q) => [q.id, q]));
  const isAdmin = client.user?.role === "ADMIN";

  /** @type {StaffSession[]} */
  let queue = [];
  /** @type {string | null} */
  let cursor = null;
  /** @type {string | null} */
  let selected = null;
  let disposed = false;
  /** bumped per selection, so a slow load of an earlier choice does not land */
  let generation = 0;
  /** @type {{el: HTMLElement, dispose: () => void} | null} the shown session's recordings */
  let player = null;

  const queueList = h("ul", { class: "queue" });
  const queueState = h("p", { class: "note", "aria-live": "polite" }, "Loading…");
  const more = h("button", { type: "button", class: "secondary", hidden: true, onclick: () => loadQueue() }, "Load more sessions");
  const decided = h("div", { class: "notice", role: "status", hidden: true });
  const detail = h(
    "section",
    { class: "review-detail", "aria-label": "Session under review" },
    h("div", { class: "card" }, h("p", { class: "note" }, "Choose a session from the queue to review it.")),
  );

  show(
    `Review: ${exam.title}`,
    h(
      "div",
      { class: "page-head" },
      h("div", {}, h("p", { class: "crumbs" }, h("a", { href: "#/exams" }, "Exams")), h("h1", {}, `Review: ${exam.title}`)),
      h("div", { class: "page-head-side" }, h("a", { href: `#/grid/${encodeURIComponent(examId)}`, class: "button-link secondary" }, "Watch live")),
    ),
    h("p", { class: "lead" }, "Ended sessions waiting for a decision. A person decides every one: nothing is rejected automatically."),
    decided,
    h(
      "div",
      { class: "review-layout" },
      h("section", { class: "card review-queue", "aria-labelledby": "queue-title" }, h("h2", { id: "queue-title" }, "Waiting for a decision"), queueState, queueList, more),
      detail,
    ),
  );

  // --- the queue --------------------------------------------------------------------------------
  async function loadQueue(reset = false) {
    more.disabled = true;
    try {
      const page = await examSessions(client, examId, { ended: true, reviewDecision: "PENDING", limit: QUEUE_PAGE, cursor: reset ? null : cursor });
      if (disposed) return;
      queue = reset ? page.items : queue.concat(page.items.filter((s) => !queue.some((q) => q.id === s.id)));
      cursor = page.nextCursor;
      renderQueue();
    } catch (e) {
      queueState.textContent = `The queue could not be loaded: ${errorText(e)}`;
    } finally {
      more.disabled = false;
    }
  }

  function renderQueue() {
    queueList.replaceChildren(
      ...queue.map((s) =>
        h(
          "li",
          {},
          h(
            "button",
            {
              type: "button",
              class: "queue-item",
              "aria-current": s.id === selected ? "true" : null,
              "data-session": s.id,
              onclick: () => select(s),
            },
            h("span", { class: "queue-name" }, s.candidate.name),
            h("span", { class: "queue-facts" }, `${statusText(s.status)} · violation score ${formatScore(s.violationScore)}`),
          ),
        ),
      ),
    );
    more.hidden = !cursor;
    queueState.textContent = queue.length === 0 ? "No ended session is waiting for a decision." : `${queue.length}${cursor ? "+" : ""} waiting.`;
  }

  // --- one session ------------------------------------------------------------------------------
  /** @param {StaffSession} s */
  async function select(s) {
    selected = s.id;
    const mine = ++generation;
    player?.dispose();
    player = null;
    renderQueue();
    detail.replaceChildren(h("div", { class: "card" }, h("p", { "aria-live": "polite" }, `Loading ${s.candidate.name}'s session…`)));
    try {
      // Events up to now and a little after (the hub accepts timestamps 30 s ahead of its clock).
      const until = new Date(client.clock.now() + 60_000).toISOString();
      const [session, score, summary, actions, events] = await Promise.all([
        client.session(s.id),
        getScore(client, s.id).catch(() => null),
        eventSummary(client, s.id).catch(() => null),
        sessionActions(client, s.id).catch(() => []),
        allSessionEvents(client, s.id, until).catch(() => null),
      ]);
      if (disposed || mine !== generation) return;
      renderDetail(s, session, score, summary, gradesOf(session), actions, events);
    } catch (e) {
      if (mine !== generation) return;
      detail.replaceChildren(h("div", { class: "card" }, h("p", { class: "form-error", role: "alert" }, `The session could not be loaded: ${errorText(e)}`)));
    }
  }

  /**
   * @param {StaffSession} s
   * @param {Session} session
   * @param {Score | null} score
   * @param {import("./staff-api.js").EventSummary | null} summary
   * @param {Map<string, number>} grades
   * @param {import("./staff-api.js").AdminAction[]} actions
   * @param {import("./staff-timeline.js").TimelineEvent[] | null} events oldest first; null: not loaded
   */
  function renderDetail(s, session, score, summary, grades, actions, events) {
    const heading = h("h2", { tabindex: "-1", class: "detail-title" }, s.candidate.name);
    const scoreBox = h("div", { class: "score-box" });
    const renderScore = (/** @type {Score | null} */ sc) =>
      scoreBox.replaceChildren(
        sc
          ? h(
              "dl",
              { class: "facts" },
              h("dt", {}, "Final score"),
              h("dd", { class: "final-score" }, `${formatScore(sc.finalScore)} of ${maxPoints}`),
              h("dt", {}, "Automatic (MCQ)"),
              h("dd", {}, formatScore(sc.objectiveScore)),
              h("dt", {}, "Graded by people"),
              h("dd", {}, formatScore(sc.subjectiveScore)),
              h("dt", {}, "Grading"),
              h("dd", {}, sc.gradedAt ? `Complete (${formatDateTime(sc.gradedAt)})` : "Not complete: some answers are not graded yet"),
            )
          : h("p", { class: "note" }, "No score yet."),
      );
    const maxPoints = session.questions.reduce((sum, q) => sum + q.points, 0);
    renderScore(score);

    // Answers, with grade inputs for admins.
    /** @type {{question: Question, input: HTMLInputElement, answered: boolean}[]} */
    const gradeInputs = [];
    const answers = session.questions.map((q, i) => {
      const saved = session.answers[q.id];
      const response = saved?.response;
      const key = keyOf.get(q.id);
      /** @type {import("./ui.js").Child} */
      let body;
      /** @type {import("./ui.js").Child} */
      let points;
      if (q.type === "MCQ") {
        const selectedIds = response && "selected" in response ? response.selected : [];
        const correct = key?.answerKey?.correct;
        const v = mcqVerdict(selectedIds, correct, q.points);
        body = h(
          "ul",
          { class: "mcq-review" },
          (q.options || []).map((o) => {
            const picked = selectedIds.includes(o.id);
            const right = !!correct?.includes(o.id);
            return h(
              "li",
              { "data-picked": String(picked), "data-correct": String(right) },
              h("span", { class: "opt-text" }, richText(o.text)),
              picked ? h("span", { class: "badge info" }, "Chosen") : null,
              right ? h("span", { class: "badge ok" }, "Correct answer") : null,
            );
          }),
        );
        const words = { correct: "Correct", incorrect: "Incorrect", unanswered: "Not answered", unknown: "Scored automatically" }[v.verdict];
        points = h("p", { class: `verdict ${v.verdict}` }, v.points == null ? words : `${words}: ${v.points} of ${q.points} points (automatic)`);
      } else {
        const isAnswered = answered(response);
        if (!isAnswered) body = h("p", { class: "note" }, "No answer.");
        else if (response && "code" in response) body = [h("p", { class: "hint" }, `Language: ${response.language || "not given"}`), h("pre", { class: "code-answer" }, h("code", {}, response.code))];
        else body = h("p", { class: "text-answer" }, response && "text" in response ? response.text : "");
        const current = grades.get(q.id);
        if (isAdmin) {
          const id = `grade-${q.id}`;
          const input = h("input", { id, name: `grade-${q.id}`, type: "number", min: "0", max: String(q.points), step: "0.5", class: "number", value: current == null ? "" : String(current) });
          gradeInputs.push({ question: q, input, answered: saved != null });
          points = h("div", { class: "field inline grade-field" }, h("label", { for: id }, `Points (0–${q.points})`), input);
        } else {
          points = h("p", { class: "verdict" }, current == null ? `Not graded yet (out of ${q.points})` : `Graded: ${formatScore(current)} of ${q.points} points`);
        }
      }
      return h(
        "li",
        { class: "answer-card", "data-type": q.type },
        h("h4", {}, `Question ${i + 1} · ${typeName(q.type)} · ${q.points} ${q.points === 1 ? "point" : "points"}`),
        h("div", { class: "answer-grid" }, h("div", { class: "answer-q" }, h("p", { class: "prompt" }, richText(q.prompt))), h("div", { class: "answer-a" }, body, points)),
      );
    });

    const gradeError = h("p", { class: "form-error", role: "alert" });
    const gradeStatus = h("p", { class: "ok-text", role: "status" });
    const saveGrades = h("button", { type: "button", class: "primary" }, "Save grades");
    saveGrades.addEventListener("click", async () => {
      gradeError.textContent = "";
      gradeStatus.textContent = "";
      for (const g of gradeInputs) g.input.removeAttribute("aria-invalid");
      /** @type {{questionId: string, points: number}[]} */
      const body = [];
      try {
        for (const g of gradeInputs) {
          const p = parsePoints(g.input.value, g.question.points, g.answered, g.input.name);
          if (p != null && p !== grades.get(g.question.id)) body.push({ questionId: g.question.id, points: p });
        }
      } catch (e) {
        gradeError.textContent = errorText(e);
        const input = e instanceof FieldError ? /** @type {HTMLInputElement | null} */ (detail.querySelector(`[name="${e.field}"]`)) : null;
        input?.setAttribute("aria-invalid", "true");
        input?.focus();
        return;
      }
      if (!body.length) {
        gradeStatus.textContent = "No grade changed.";
        return;
      }
      saveGrades.disabled = true;
      try {
        const sc = await grade(client, s.id, body);
        for (const g of body) grades.set(g.questionId, g.points);
        renderScore(sc);
        gradeStatus.textContent = `Saved ${body.length} ${body.length === 1 ? "grade" : "grades"}. Final score ${formatScore(sc.finalScore)} of ${maxPoints}.`;
      } catch (e) {
        gradeError.textContent = `The grades were not saved: ${errorText(e)}`;
      } finally {
        saveGrades.disabled = false;
      }
    });

    // The decision.
    const reasonId = `decision-reason-${s.id}`;
    const reason = h("textarea", { id: reasonId, name: "reason", rows: "3", maxlength: "2000", required: true, "aria-describedby": `${reasonId}-hint` });
    const decisionError = h("p", { class: "form-error", role: "alert" });
    /** @param {Decision} d */
    const decideWith = async (d) => {
      decisionError.textContent = "";
      reason.removeAttribute("aria-invalid");
      const text = reason.value.trim();
      if (!text) {
        decisionError.textContent = "Give a reason for the decision: it is kept with the session.";
        reason.setAttribute("aria-invalid", "true");
        reason.focus();
        return;
      }
      approve.disabled = reject.disabled = true;
      try {
        await decide(client, s.id, d, text);
        if (disposed) return;
        done(s, d);
      } catch (e) {
        decisionError.textContent = `The decision was not recorded: ${errorText(e)}`;
        approve.disabled = reject.disabled = false;
      }
    };
    const approve = h("button", { type: "button", class: "primary", onclick: () => decideWith("APPROVED") }, "Approve session");
    const reject = h("button", { type: "button", class: "danger", onclick: () => decideWith("REJECTED") }, "Reject session");

    const byType = summary ? Object.entries(summary.byType).sort((a, b) => b[1] - a[1]) : [];
    player = recordingsPanel({ client, sessionId: s.id, name: s.candidate.name, events, recordMedia: exam.recordMedia });
    detail.replaceChildren(
      h(
        "div",
        { class: "card" },
        heading,
        h("p", { class: "note" }, s.candidate.email),
        h(
          "dl",
          { class: "facts" },
          h("dt", {}, "Status"),
          h("dd", {}, statusText(session.status)),
          h("dt", {}, "Started"),
          h("dd", {}, formatDateTime(session.startedAt)),
          h("dt", {}, "Ended"),
          h("dd", {}, session.submittedAt ? formatDateTime(session.submittedAt) : "—"),
          session.endedReason ? [h("dt", {}, "Reason given"), h("dd", {}, session.endedReason)] : null,
          h("dt", {}, "Violation score"),
          h("dd", {}, formatScore(summary?.violationScore ?? s.violationScore)),
        ),
        h("a", { href: `#/session/${encodeURIComponent(s.id)}` }, "Open the session's timeline and action log"),
      ),
      player.el,
      h("section", { class: "card", "aria-labelledby": "score-title" }, h("h3", { id: "score-title" }, "Score"), scoreBox),
      h(
        "section",
        { class: "card", "aria-labelledby": "summary-title" },
        h("h3", { id: "summary-title" }, "Events"),
        !summary
          ? h("p", { class: "note" }, "The event summary could not be loaded.")
          : summary.total === 0
            ? h("p", {}, "No events were recorded.")
            : [
                h("p", {}, `${summary.total} ${summary.total === 1 ? "event" : "events"}: ${Object.entries(summary.bySource).map(([k, n]) => `${n} from ${k.toLowerCase()}`).join(", ")}.`),
                h(
                  "table",
                  { class: "table compact" },
                  h("caption", { class: "visually-hidden" }, "Events by type"),
                  h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Event"), h("th", { scope: "col", class: "num" }, "Count"))),
                  h("tbody", {}, byType.map(([t, n]) => h("tr", {}, h("td", {}, eventName(t)), h("td", { class: "num" }, String(n))))),
                ),
              ],
        actions.length
          ? h("details", {}, h("summary", {}, `Action log (${actions.length})`), h("ul", { class: "plain" }, actions.map((a) => h("li", {}, `${formatDateTime(a.createdAt)} — ${actionText(a)}${a.reason ? `: ${a.reason}` : ""}`))))
          : null,
      ),
      h(
        "section",
        { class: "card", "aria-labelledby": "answers-title" },
        h("h3", { id: "answers-title" }, "Answers"),
        isAdmin ? h("p", { class: "hint" }, "Grade the coding and written answers, then save. MCQ answers are scored automatically.") : h("p", { class: "hint" }, "Only administrators grade answers; grades are shown here once given."),
        h("ol", { class: "answers-review" }, answers),
        isAdmin && gradeInputs.length ? h("div", { class: "grade-actions" }, gradeError, gradeStatus, saveGrades) : null,
      ),
      h(
        "section",
        { class: "card decision", "aria-labelledby": "decision-title" },
        h("h3", { id: "decision-title" }, "Decision"),
        h("div", { class: "field" }, h("label", { for: reasonId }, "Reason for the decision"), h("p", { class: "hint", id: `${reasonId}-hint` }, "Required. Kept with the session and in the audit log."), reason),
        decisionError,
        h("div", { class: "button-row" }, approve, reject),
      ),
    );
    heading.focus();
  }

  /**
   * @param {StaffSession} s
   * @param {Decision} d
   */
  function done(s, d) {
    const index = queue.findIndex((q) => q.id === s.id);
    queue = queue.filter((q) => q.id !== s.id);
    decided.hidden = false;
    decided.dataset.tone = d === "APPROVED" ? "info" : "warn";
    decided.replaceChildren(h("strong", {}, `${s.candidate.name}: ${d === "APPROVED" ? "approved" : "rejected"}.`), queue.length ? " The next session is open." : " The queue is empty.");
    const next = queue[Math.min(index, queue.length - 1)];
    if (next) select(next);
    else {
      selected = null;
      player?.dispose();
      player = null;
      renderQueue();
      detail.replaceChildren(h("div", { class: "card" }, h("p", {}, "Every ended session has a decision.")));
      if (cursor) loadQueue(true);
    }
  }

  loadQueue(true);
  return () => {
    disposed = true;
    player?.dispose();
    player = null;
  };
}

/** @param {string} type */
function typeName(type) {
  return { MCQ: "Multiple choice", CODING: "Coding", SUBJECTIVE: "Written answer" }[type] || type;
}
