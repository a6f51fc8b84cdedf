// @ts-check
/**
 * One check on the system check page: its name, its state in words with an icon (never by
 * colour alone), what was found, what to do about a problem, and the check's own controls.
 */
import { h } from "./ui.js";

/** @typedef {import("./check-verdicts.js").Verdict} Verdict */
/** @typedef {import("./check-verdicts.js").CheckState} CheckState */
/** @typedef {import("./ui.js").Child} Child */

/** The state as words, and a mark that is decoration only (the words say it). */
export const STATE_LABELS = {
  waiting: { text: "Not tested yet", mark: "○" },
  checking: { text: "Checking", mark: "…" },
  passed: { text: "Passed", mark: "✓" },
  problem: { text: "Problem", mark: "!" },
};

/**
 * @typedef {object} CheckRow
 * @property {HTMLLIElement} el
 * @property {CheckState} state
 * @property {(verdict: Verdict) => void} set shows a verdict
 */

/**
 * @param {object} options
 * @param {string} options.id used for the element ids and `data-check`
 * @param {string} options.title
 * @param {string} options.intro what the check is for, always shown
 * @param {Child} [options.body] the check's own content (a preview, a meter)
 * @param {Child} [options.actions] its buttons
 * @param {Verdict} options.initial
 * @returns {CheckRow}
 */
export function checkRow({ id, title, intro, body, actions, initial }) {
  const mark = h("span", { class: "check-mark", "aria-hidden": "true" });
  const label = h("span", { class: "check-label" });
  const text = h("p", { class: "check-text" });
  const fixText = h("span", {});
  const fix = h("p", { class: "check-fix" }, h("strong", {}, "What to do: "), fixText);
  const el = h(
    "li",
    { class: "card check", "data-check": id, "aria-labelledby": `check-${id}-title` },
    h(
      "div",
      { class: "check-head" },
      h("h2", { id: `check-${id}-title` }, title),
      h("p", { class: "check-state" }, mark, label),
    ),
    h("p", { class: "check-intro" }, intro),
    body,
    text,
    fix,
    actions ? h("div", { class: "button-row check-actions" }, actions) : null,
  );

  /** @type {CheckRow} */
  const row = {
    el,
    state: initial.state,
    set(verdict) {
      row.state = verdict.state;
      el.dataset.state = verdict.state;
      mark.textContent = STATE_LABELS[verdict.state].mark;
      label.textContent = STATE_LABELS[verdict.state].text;
      text.textContent = verdict.text;
      fixText.textContent = verdict.fix || "";
      fix.hidden = !verdict.fix;
    },
  };
  row.set(initial);
  return row;
}
