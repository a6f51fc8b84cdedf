// @ts-check
/** The screen after an exam, for every way it can end. */
import { h, show, formatTime } from "./ui.js";

/**
 * @typedef {object} Ending
 * @property {import("./hub-client.js").SessionStatus} status
 * @property {string | null} [reason] the hub's reason (the proctor's words for TERMINATED)
 * @property {string | null} [at] when it ended
 * @property {number} [unsaved] answers changed after their last save that never reached the hub
 */

/**
 * @param {(hash: string) => void} go
 * @param {Ending} ending
 */
export function endView(go, ending) {
  const { title, lines, tone } = describe(ending);
  show(
    title,
    h(
      "section",
      { class: `card end ${tone}`, "data-ending": ending.status },
      h("h1", {}, title),
      lines.map((l) => h("p", {}, l)),
      ending.unsaved
        ? h(
            "p",
            { class: "form-error" },
            `${ending.unsaved} ${ending.unsaved === 1 ? "answer was" : "answers were"} changed after the last save and could not be saved before the exam ended.`,
          )
        : null,
      h("button", { type: "button", class: "primary", onclick: () => go("#/exams") }, "Back to my exams"),
    ),
  );
}

/**
 * @param {Ending} e
 * @returns {{title: string, lines: string[], tone: string}}
 */
function describe(e) {
  const at = e.at ? ` at ${formatTime(e.at)}` : "";
  switch (e.status) {
    case "SUBMITTED":
      return {
        title: "Exam submitted",
        lines: [`Your answers were submitted${at}.`, "You can close this window."],
        tone: "ok",
      };
    case "AUTO_SUBMITTED":
      return {
        title: "Time is up",
        lines: [`Your exam was submitted automatically${at} with every answer that was saved.`, "You can close this window."],
        tone: "ok",
      };
    case "TERMINATED":
      return {
        title: "Your exam was ended",
        lines: [
          `A proctor ended this exam${at}.`,
          `Reason: ${sentence(e.reason && e.reason.trim() ? e.reason.trim() : "none given")}`,
          "Contact your exam organiser if you think this is a mistake.",
        ],
        tone: "bad",
      };
    default:
      return { title: "Exam in progress", lines: ["This exam has not ended."], tone: "info" };
  }
}

/** @param {string} text @returns {string} the text ending with a full stop (once) */
function sentence(text) {
  return /[.!?]$/.test(text) ? text : `${text}.`;
}
