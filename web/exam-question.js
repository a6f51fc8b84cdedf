// @ts-check
/**
 * One question of the exam page: its prompt, the inputs for its type, and its save status
 * line. The inputs report every change through `onEdit(response)`; the autosave queue decides
 * when to send.
 *
 * MCQ uses checkboxes even when one option is correct: the client cannot know how many are
 * (answer keys never reach it), and the response is a set `{selected: [...]}` either way.
 */
import { h, richText } from "./ui.js";

/** @typedef {import("./hub-client.js").Question} Question */
/** @typedef {import("./hub-client.js").AnswerResponse} AnswerResponse */

const TYPE_NAMES = { MCQ: "Multiple choice", CODING: "Coding", SUBJECTIVE: "Written answer" };

/** @param {Question} q */
export function typeName(q) {
  return TYPE_NAMES[q.type] || q.type;
}

/**
 * @param {AnswerResponse | undefined} r
 * @returns {boolean} whether the response holds an answer at all
 */
export function isAnswered(r) {
  if (!r) return false;
  if ("selected" in r) return r.selected.length > 0;
  if ("code" in r) return r.code.trim() !== "";
  if ("text" in r) return r.text.trim() !== "";
  return false;
}

/**
 * @param {object} options
 * @param {Question} options.question
 * @param {number} options.index 0-based position in the session's order
 * @param {number} options.total
 * @param {AnswerResponse | undefined} options.initial the newest local response (queue)
 * @param {(response: AnswerResponse) => void} options.onEdit
 * @returns {{el: HTMLElement, heading: HTMLElement, status: HTMLElement}}
 */
export function questionPanel({ question: q, index, total, initial, onEdit }) {
  const id = `q-${q.id}`;
  const heading = h("h2", { id: `${id}-title`, tabindex: "-1" }, `Question ${index + 1} of ${total}`);
  const status = h("p", { class: "save-status", id: `${id}-status`, "aria-live": "polite", "data-status": "none" });
  let body;
  if (q.type === "MCQ") body = mcqInputs(q, id, initial, onEdit);
  else if (q.type === "CODING") body = codingInputs(id, initial, onEdit);
  else body = subjectiveInputs(id, initial, onEdit);
  const el = h(
    "section",
    { class: "question card", id, "aria-labelledby": `${id}-title`, "data-type": q.type, hidden: true },
    h(
      "div",
      { class: "question-head" },
      heading,
      h("p", { class: "question-meta" }, `${typeName(q)} · ${q.points} ${q.points === 1 ? "point" : "points"}`),
    ),
    h("p", { class: "prompt", id: `${id}-prompt` }, richText(q.prompt)),
    body,
    status,
  );
  return { el, heading, status };
}

/**
 * @param {Question} q
 * @param {string} id
 * @param {AnswerResponse | undefined} initial
 * @param {(r: AnswerResponse) => void} onEdit
 */
function mcqInputs(q, id, initial, onEdit) {
  const selected = new Set(initial && "selected" in initial ? initial.selected : []);
  const options = q.options || [];
  /** @type {HTMLInputElement[]} */
  const boxes = [];
  const changed = () => onEdit({ selected: boxes.filter((b) => b.checked).map((b) => b.value) });
  return h(
    "fieldset",
    { class: "options", "aria-describedby": `${id}-prompt` },
    h("legend", {}, "Choose every answer that applies"),
    options.map((opt) => {
      const box = h("input", {
        type: "checkbox",
        id: `${id}-opt-${opt.id}`,
        name: id,
        value: opt.id,
        checked: selected.has(opt.id),
        onchange: changed,
      });
      boxes.push(box);
      return h("div", { class: "option" }, box, h("label", { for: box.id }, richText(opt.text)));
    }),
  );
}

/**
 * @param {string} id
 * @param {AnswerResponse | undefined} initial
 * @param {(r: AnswerResponse) => void} onEdit
 */
function codingInputs(id, initial, onEdit) {
  const start = initial && "code" in initial ? initial : { language: "", code: "" };
  const language = h("input", {
    id: `${id}-language`,
    type: "text",
    value: start.language,
    list: "languages",
    autocomplete: "off",
    spellcheck: "false",
    placeholder: "e.g. Rust",
  });
  const code = h("textarea", {
    id: `${id}-code`,
    class: "code",
    rows: 12,
    spellcheck: "false",
    autocapitalize: "off",
    autocomplete: "off",
    wrap: "off",
    "aria-describedby": `${id}-prompt ${id}-code-hint`,
  });
  code.value = start.code;
  const changed = () => onEdit({ language: language.value, code: code.value });
  language.addEventListener("input", changed);
  code.addEventListener("input", changed);
  return h(
    "div",
    { class: "answer" },
    h("div", { class: "field inline" }, h("label", { for: language.id }, "Programming language"), language),
    h("datalist", { id: "languages" }, ["Rust", "Python", "JavaScript", "TypeScript", "Go", "Java", "C", "C++"].map((l) => h("option", { value: l }))),
    h("div", { class: "field" }, h("label", { for: code.id }, "Your code"), code),
    h("p", { class: "hint", id: `${id}-code-hint` }, "Tab moves to the next control; indent with spaces."),
  );
}

/**
 * @param {string} id
 * @param {AnswerResponse | undefined} initial
 * @param {(r: AnswerResponse) => void} onEdit
 */
function subjectiveInputs(id, initial, onEdit) {
  const text = h("textarea", { id: `${id}-text`, rows: 10, "aria-describedby": `${id}-prompt` });
  text.value = initial && "text" in initial ? initial.text : "";
  text.addEventListener("input", () => onEdit({ text: text.value }));
  return h("div", { class: "answer" }, h("div", { class: "field" }, h("label", { for: text.id }, "Your answer"), text));
}
