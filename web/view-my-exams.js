// @ts-check
/** A candidate's exams: the window, the state of their session, and the way in. */
import { h, show, formatDateTime, errorText } from "./ui.js";

/** @typedef {import("./hub-client.js").MyExam} MyExam */

/** @param {import("./app.js").ViewContext} ctx */
export async function myExamsView({ client, go }) {
  show("My exams", h("h1", {}, "My exams"), h("p", { "aria-live": "polite" }, "Loading your exams…"));
  let exams;
  try {
    exams = (await client.myExams()).items;
  } catch (e) {
    show(
      "My exams",
      h("h1", {}, "My exams"),
      h("p", { class: "form-error", role: "alert" }, `Your exams could not be loaded. ${errorText(e)}`),
      h("button", { type: "button", class: "primary", onclick: () => myExamsView({ client, go, arg: "" }) }, "Try again"),
    );
    return;
  }
  const now = Date.now();
  show(
    "My exams",
    h("h1", {}, "My exams"),
    exams.length === 0
      ? h("p", {}, "No exams are assigned to you right now.")
      : h("ul", { class: "exam-list" }, exams.map((exam) => h("li", {}, examCard(exam, now, go)))),
  );
}

/**
 * @param {MyExam} exam
 * @param {number} now
 * @param {(hash: string) => void} go
 */
function examCard(exam, now, go) {
  const { label, tone, action } = examState(exam, now);
  const minutes = exam.durationMinutes + exam.extraTimeMinutes;
  return h(
    "article",
    { class: "card exam-card", "aria-labelledby": `exam-${exam.id}` },
    h("h2", { id: `exam-${exam.id}` }, exam.title),
    h(
      "dl",
      { class: "facts" },
      h("dt", {}, "Window"),
      h("dd", {}, `${formatDateTime(exam.startsAt)} – ${formatDateTime(exam.endsAt)}`),
      h("dt", {}, "Duration"),
      h("dd", {}, `${minutes} minutes${exam.extraTimeMinutes ? ` (${exam.extraTimeMinutes} extra)` : ""}`),
      h("dt", {}, "Status"),
      h("dd", {}, h("span", { class: `badge ${tone}` }, label)),
    ),
    exam.instructions ? h("p", { class: "instructions" }, exam.instructions) : null,
    action
      ? h(
          "button",
          {
            type: "button",
            class: "primary",
            // A new start goes through the system check first (the timer starts only after it);
            // a running session goes straight back to the exam, whose timer is already running.
            onclick: () => go(`#/${action === "start" ? "check" : "exam"}/${encodeURIComponent(exam.id)}`),
          },
          action === "start" ? `Start exam: ${exam.title}` : `Resume exam: ${exam.title}`,
        )
      : null,
  );
}

/**
 * What the card says and offers. The window is judged by this device's clock only to choose
 * the wording; the hub decides (409 EXAM_NOT_OPEN).
 * @param {MyExam} exam
 * @param {number} now
 * @returns {{label: string, tone: string, action: "start" | "resume" | null}}
 */
export function examState(exam, now) {
  const s = exam.session;
  if (s) {
    switch (s.status) {
      case "STARTED":
        return { label: `In progress — time ends ${formatDateTime(s.expiresAt)}`, tone: "info", action: "resume" };
      case "SUBMITTED":
        return { label: "Submitted", tone: "ok", action: null };
      case "AUTO_SUBMITTED":
        return { label: "Submitted automatically (time was up)", tone: "ok", action: null };
      case "TERMINATED":
        return { label: "Ended by a proctor", tone: "bad", action: null };
    }
  }
  if (now < Date.parse(exam.startsAt)) return { label: "Not open yet", tone: "muted", action: null };
  if (now > Date.parse(exam.endsAt)) return { label: "Closed", tone: "muted", action: null };
  return { label: "Open — not started", tone: "info", action: "start" };
}
