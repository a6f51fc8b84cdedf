// @ts-check
/**
 * The editor of one question, for adding and for editing while the exam is a draft:
 * - MCQ: the options, and which of them are correct (one or many: full points only for the
 *   exact set, CONTRACT);
 * - CODING: a rubric, the answer key a grader reads (candidates never see it);
 * - SUBJECTIVE: an optional rubric too.
 * Points for every type. The answer key of CODING and SUBJECTIVE questions is stored as
 * `{rubric: "…"}` (the contract leaves it free JSON; docs/EXAMS.md).
 */
import { h } from "./ui.js";
import { busy, field, markInvalidField, showError, uid } from "./admin-form.js";

/** @typedef {import("./admin-api.js").AdminQuestion} AdminQuestion */
/** @typedef {import("./admin-api.js").QuestionFields} QuestionFields */
/** @typedef {import("./hub-client.js").QuestionType} QuestionType */
/** @typedef {{id: string, text: string, correct: boolean}} OptionDraft */
/**
 * @typedef {object} QuestionDraft What the editor holds.
 * @property {QuestionType} type
 * @property {string} prompt
 * @property {string} points as typed
 * @property {OptionDraft[]} options MCQ only
 * @property {string} rubric CODING and SUBJECTIVE
 */

export const TYPE_NAMES = /** @type {Record<QuestionType, string>} */ ({
  MCQ: "Multiple choice",
  CODING: "Code",
  SUBJECTIVE: "Written answer",
});

/** @param {number} i @returns {string} "A", "B", … "Z", "27", … (how options are named to people) */
export function optionLetter(i) {
  return i < 26 ? String.fromCharCode(65 + i) : String(i + 1);
}

/**
 * An option id not in use: "a".."z", then "o27"… Ids stay with their option when others are
 * removed or added, so an answer key never points at the wrong text.
 * @param {string[]} used
 * @returns {string}
 */
export function nextOptionId(used) {
  const taken = new Set(used);
  for (let i = 0; ; i++) {
    const id = i < 26 ? String.fromCharCode(97 + i) : `o${i + 1}`;
    if (!taken.has(id)) return id;
  }
}

/**
 * @param {AdminQuestion | null} q null: a new question
 * @returns {QuestionDraft}
 */
export function draftOf(q) {
  if (!q) {
    return {
      type: "MCQ",
      prompt: "",
      points: "1",
      options: [
        { id: "a", text: "", correct: false },
        { id: "b", text: "", correct: false },
      ],
      rubric: "",
    };
  }
  const correct = new Set(q.type === "MCQ" && Array.isArray(q.answerKey?.correct) ? q.answerKey.correct : []);
  return {
    type: q.type,
    prompt: q.prompt,
    points: String(q.points),
    options: (q.options || []).map((o) => ({ id: o.id, text: o.text, correct: correct.has(o.id) })),
    rubric: rubricOf(q),
  };
}

/**
 * @param {AdminQuestion} q
 * @returns {string} the rubric of a CODING or SUBJECTIVE question ("" for none)
 */
export function rubricOf(q) {
  const key = q.answerKey;
  if (key == null || q.type === "MCQ") return "";
  if (typeof key === "string") return key;
  if (typeof key.rubric === "string") return key.rubric;
  return JSON.stringify(key); // written by something else: show it as it is
}

/**
 * Checks a draft and builds the request body; the hub checks again (422 naming the field).
 * @param {QuestionDraft} d
 * @returns {{fields: QuestionFields} | {field: string, message: string}}
 */
export function questionFields(d) {
  const prompt = d.prompt.trim();
  if (!prompt) return { field: "prompt", message: "Write the question." };
  const points = Number(d.points);
  if (d.points.trim() === "" || !Number.isInteger(points) || points < 0 || points > 1000) {
    return { field: "points", message: "Points are a whole number from 0 to 1000." };
  }
  if (d.type !== "MCQ") {
    const rubric = d.rubric.trim();
    return {
      fields: { type: d.type, prompt, points, options: [], answerKey: rubric ? { rubric } : null },
    };
  }
  if (d.options.length < 2) return { field: "options", message: "A multiple-choice question needs at least two options." };
  if (d.options.length > 50) return { field: "options", message: "A multiple-choice question has at most 50 options." };
  const empty = d.options.findIndex((o) => !o.text.trim());
  if (empty >= 0) {
    return {
      field: `options[${empty}].text`,
      message: `Option ${optionLetter(empty)} is empty: write it or remove it.`,
    };
  }
  const correct = d.options.filter((o) => o.correct).map((o) => o.id);
  if (correct.length === 0) {
    return { field: "answerKey.correct", message: "Tick the correct option (one or more)." };
  }
  return {
    fields: {
      type: "MCQ",
      prompt,
      points,
      options: d.options.map((o) => ({ id: o.id, text: o.text.trim() })),
      answerKey: { correct },
    },
  };
}

/**
 * @param {object} options
 * @param {AdminQuestion | null} options.question null: a new question
 * @param {string} options.heading "New question" or "Edit question 2"
 * @param {string} options.submitLabel
 * @param {(fields: QuestionFields) => Promise<void>} options.submit throws an ApiError to show
 * @param {() => void} options.cancel
 * @returns {HTMLFormElement}
 */
export function questionForm({ question, heading, submitLabel, submit, cancel }) {
  const draft = draftOf(question);
  const headingId = uid("qform");
  const typeName = uid("qtype");

  const typeRadios = /** @type {QuestionType[]} */ (["MCQ", "CODING", "SUBJECTIVE"]).map((t) => {
    const id = uid("qtype");
    return h(
      "div",
      { class: "radio" },
      h("input", {
        type: "radio",
        id,
        name: typeName,
        value: t,
        checked: draft.type === t,
        onchange: () => {
          sync();
          draft.type = t;
          renderType();
        },
      }),
      h("label", { for: id }, TYPE_NAMES[t]),
    );
  });
  const prompt = h("textarea", { rows: 4, required: true, maxLength: 20000, "data-field": "prompt" }, draft.prompt);
  const points = h("input", {
    type: "number",
    min: "0",
    max: "1000",
    step: "1",
    required: true,
    inputMode: "numeric",
    value: draft.points,
    "data-field": "points",
  });

  // MCQ options: re-rendered from `draft.options` on add/remove, so letters stay in order.
  const optionRows = h("div", { class: "option-rows" });
  const addOption = h(
    "button",
    {
      type: "button",
      class: "secondary small",
      onclick: () => {
        sync();
        draft.options.push({ id: nextOptionId(draft.options.map((o) => o.id)), text: "", correct: false });
        renderOptions();
        /** @type {HTMLInputElement | null} */ (optionRows.querySelector(".option-row:last-child input[type=text]"))?.focus();
      },
    },
    "Add an option",
  );
  const mcqBlock = h(
    "fieldset",
    { class: "mcq-options", "data-field": "options", tabindex: "-1" },
    h("legend", {}, "Options — tick every correct one"),
    h("p", { class: "hint" }, "A candidate gets the points only for exactly the ticked set."),
    optionRows,
    addOption,
  );

  const rubric = h("textarea", { rows: 4, maxLength: 60000, "data-field": "answerKey" }, draft.rubric);
  const rubricLabel = h("label", { for: uid("rubric") });
  rubric.id = rubricLabel.htmlFor;
  const rubricHint = h("p", { class: "hint", id: uid("hint") });
  rubric.setAttribute("aria-describedby", rubricHint.id);
  const rubricBlock = h("div", { class: "field" }, rubricLabel, rubricHint, rubric);

  const error = h("p", { class: "form-error", role: "alert" });
  const save = h("button", { type: "submit", class: "primary" }, submitLabel);

  /** Reads what the inputs hold back into `draft`. */
  function sync() {
    draft.prompt = prompt.value;
    draft.points = points.value;
    draft.rubric = rubric.value;
    const rows = optionRows.querySelectorAll(".option-row");
    draft.options = [...rows].map((row) => ({
      id: /** @type {HTMLElement} */ (row).dataset.id || "",
      text: /** @type {HTMLInputElement} */ (row.querySelector("input[type=text]")).value,
      correct: /** @type {HTMLInputElement} */ (row.querySelector("input[type=checkbox]")).checked,
    }));
  }

  function renderOptions() {
    optionRows.replaceChildren(
      ...draft.options.map((o, i) => {
        const letter = optionLetter(i);
        const textId = uid("opt");
        const boxId = uid("correct");
        return h(
          "div",
          { class: "option-row", "data-id": o.id },
          h("label", { for: textId, class: "option-letter" }, `Option ${letter}`),
          h("input", { type: "text", id: textId, value: o.text, maxLength: 2000, "data-field": `options[${i}].text` }),
          h(
            "span",
            { class: "correct" },
            h("input", { type: "checkbox", id: boxId, checked: o.correct, "data-field": i === 0 ? "answerKey.correct" : null }),
            h("label", { for: boxId }, "Correct", h("span", { class: "visually-hidden" }, ` (option ${letter})`)),
          ),
          h(
            "button",
            {
              type: "button",
              class: "secondary small",
              disabled: draft.options.length <= 2,
              onclick: () => {
                sync();
                draft.options.splice(i, 1);
                renderOptions();
                /** @type {HTMLElement | null} */ (optionRows.querySelectorAll("input[type=text]")[Math.max(0, i - 1)])?.focus();
              },
            },
            "Remove",
            h("span", { class: "visually-hidden" }, ` option ${letter}`),
          ),
        );
      }),
    );
    addOption.disabled = draft.options.length >= 50;
  }

  function renderType() {
    mcqBlock.hidden = draft.type !== "MCQ";
    rubricBlock.hidden = draft.type === "MCQ";
    if (draft.type === "MCQ" && draft.options.length < 2) {
      while (draft.options.length < 2) draft.options.push({ id: nextOptionId(draft.options.map((o) => o.id)), text: "", correct: false });
    }
    renderOptions();
    if (draft.type === "CODING") {
      rubricLabel.textContent = "Rubric (answer key)";
      rubricHint.textContent = "What a grader looks for: a model solution, the cases it must handle, how points are split. Candidates never see it.";
    } else {
      rubricLabel.textContent = "Rubric for graders (optional)";
      rubricHint.textContent = "What a good answer contains. Candidates never see it.";
    }
  }

  const form = h(
    "form",
    {
      class: "card question-form",
      "aria-labelledby": headingId,
      novalidate: true,
      onsubmit: async (/** @type {SubmitEvent} */ e) => {
        e.preventDefault();
        sync();
        showError(error, null);
        const checked = questionFields(draft);
        if (!("fields" in checked)) {
          error.textContent = checked.message;
          markInvalidField(form, { status: 422, code: "VALIDATION_FAILED", message: checked.message, field: checked.field }, error);
          return;
        }
        try {
          await busy(save, "Saving…", () => submit(checked.fields));
        } catch (err) {
          showError(error, err, "The question was not saved.");
          markInvalidField(form, err, error);
        }
      },
    },
    h("h3", { id: headingId }, heading),
    h("fieldset", { class: "radios" }, h("legend", {}, "Type"), typeRadios),
    field("Question", prompt, "What the candidate reads. Put code in `backticks`."),
    field("Points", points),
    mcqBlock,
    rubricBlock,
    error,
    h(
      "div",
      { class: "button-row" },
      save,
      h("button", { type: "button", class: "secondary", onclick: cancel }, "Cancel"),
    ),
  );
  renderType();
  return form;
}
