// @ts-check
/**
 * The "Questions" section of an exam's admin page. While the exam is a DRAFT: add, edit,
 * delete and reorder. Once published its questions are read-only: candidates may already
 * have them, and the hub refuses changes (409 `EXAM_NOT_DRAFT`); the section says so. If
 * that 409 comes anyway (published from another tab), the page reloads to show the truth.
 */
import { h, modal, richText } from "./ui.js";
import { listQuestions, createQuestion, updateQuestion, deleteQuestion } from "./admin-api.js";
import { busy, showError } from "./admin-form.js";
import { questionForm, rubricOf, optionLetter, TYPE_NAMES } from "./admin-question-form.js";

/** @typedef {import("./admin-api.js").AdminQuestion} AdminQuestion */
/** @typedef {import("./admin-api.js").AdminExam} AdminExam */

/**
 * The order of `questions` after moving the one at `from` to `to`, and the `orderIndex` each
 * question must get for it: only those whose index changes need a request.
 * @param {AdminQuestion[]} questions in their current order
 * @param {number} from
 * @param {number} to
 * @returns {{order: AdminQuestion[], changes: {id: string, orderIndex: number}[]}}
 */
export function reorder(questions, from, to) {
  const order = questions.slice();
  const [moved] = order.splice(from, 1);
  order.splice(to, 0, moved);
  const changes = order.flatMap((q, i) => (q.orderIndex === i ? [] : [{ id: q.id, orderIndex: i }]));
  return { order, changes };
}

/**
 * @param {object} options
 * @param {import("./hub-client.js").HubClient} options.client
 * @param {AdminExam} options.exam
 * @param {() => void} options.stale the exam changed under us (409 EXAM_NOT_DRAFT): reload the page
 * @param {(count: number) => void} [options.counted] tells the page how many questions there are
 * @returns {HTMLElement}
 */
export function questionsSection({ client, exam, stale, counted = () => {} }) {
  const editable = exam.status === "DRAFT";
  /** @type {AdminQuestion[]} */
  let questions = [];
  const summary = h("p", { class: "hint" });
  const status = h("p", { class: "status-msg", role: "status" });
  const error = h("p", { class: "form-error", role: "alert" });
  const list = h("ol", { class: "question-list" });
  /** where a new question's editor goes (an edited one replaces its card) */
  const editorSlot = h("div");
  /**
   * The one open editor: `id` null for a new question. While it is open the other questions'
   * buttons are disabled, so nothing moves under it and no second editor drops its edits.
   * @type {{id: string | null, form: HTMLFormElement} | null}
   */
  let editor = null;
  const addButton = h(
    "button",
    { type: "button", class: "primary", hidden: !editable, onclick: () => openEditor(null) },
    "Add a question",
  );

  /** The exam left DRAFT under us (published from another tab): say so, then show it as it is. */
  function reloadSoon() {
    error.textContent =
      "This exam was published meanwhile, so its questions are read-only now. The page reloads in a moment to show it as it is.";
    setTimeout(stale, 3000);
  }

  /**
   * An action's error.
   * @param {unknown} e
   * @param {string} what
   */
  function failed(e, what) {
    if (/** @type {any} */ (e)?.code === "EXAM_NOT_DRAFT") reloadSoon();
    else showError(error, e, what);
  }

  async function load() {
    try {
      questions = (await listQuestions(client, exam.id)).items.sort((a, b) => a.orderIndex - b.orderIndex);
      render();
    } catch (e) {
      showError(error, e, "The questions could not be loaded.");
    }
  }

  function render() {
    const total = questions.reduce((sum, q) => sum + q.points, 0);
    summary.textContent = questions.length
      ? `${questions.length} question${questions.length === 1 ? "" : "s"}, ${total} point${total === 1 ? "" : "s"} in all.`
      : editable
        ? "No questions yet. An exam needs at least one to be published."
        : "This exam has no questions.";
    list.replaceChildren(
      ...questions.map((q, i) => h("li", { "data-question": q.id }, editor && editor.id === q.id ? editor.form : questionCard(q, i))),
    );
    editorSlot.replaceChildren(...(editor && editor.id === null ? [editor.form] : []));
    addButton.hidden = !editable || !!editor;
    counted(questions.length);
  }

  /**
   * @param {AdminQuestion} q
   * @param {number} i position
   */
  function questionCard(q, i) {
    const n = i + 1;
    const correct = new Set(q.type === "MCQ" ? q.answerKey?.correct || [] : []);
    const rubric = rubricOf(q);
    return h(
      "article",
      { class: "card question-card", "aria-labelledby": `q-${q.id}` },
      h(
        "div",
        { class: "question-card-head" },
        h("h3", { id: `q-${q.id}` }, `Question ${n}`),
        h("span", { class: "badge muted" }, TYPE_NAMES[q.type] || q.type),
        h("span", { class: "points" }, `${q.points} point${q.points === 1 ? "" : "s"}`),
      ),
      h("p", { class: "prompt-text" }, richText(q.prompt)),
      q.type === "MCQ"
        ? h(
            "ul",
            { class: "option-list", "aria-label": `Options of question ${n}` },
            q.options.map((o, j) =>
              h(
                "li",
                { class: correct.has(o.id) ? "correct" : "" },
                h("span", { class: "option-letter" }, `${optionLetter(j)}.`),
                ` ${o.text}`,
                correct.has(o.id) ? h("span", { class: "badge ok" }, "Correct") : null,
              ),
            ),
          )
        : h(
            "div",
            { class: "rubric" },
            h("p", { class: "rubric-title" }, q.type === "CODING" ? "Rubric (answer key)" : "Rubric for graders"),
            rubric ? h("p", { class: "rubric-text" }, rubric) : h("p", { class: "hint" }, "None."),
          ),
      editable ? actions(q, i) : null,
    );
  }

  /**
   * @param {AdminQuestion} q
   * @param {number} i
   */
  function actions(q, i) {
    const n = i + 1;
    const named = (/** @type {string} */ verb) => [verb, h("span", { class: "visually-hidden" }, ` question ${n}`)];
    const busyEditing = !!editor;
    return h(
      "div",
      { class: "button-row question-actions" },
      h("button", { type: "button", class: "secondary small", disabled: busyEditing, onclick: () => openEditor(q) }, named("Edit")),
      h(
        "button",
        {
          type: "button",
          class: "secondary small",
          disabled: busyEditing || i === 0,
          onclick: (/** @type {MouseEvent} */ e) => move(i, i - 1, e),
        },
        named("Move up"),
      ),
      h(
        "button",
        {
          type: "button",
          class: "secondary small",
          disabled: busyEditing || i === questions.length - 1,
          onclick: (/** @type {MouseEvent} */ e) => move(i, i + 1, e),
        },
        named("Move down"),
      ),
      h("button", { type: "button", class: "secondary small", disabled: busyEditing, onclick: () => remove(q, n) }, named("Delete")),
    );
  }

  /**
   * @param {number} from
   * @param {number} to
   * @param {MouseEvent} e
   */
  async function move(from, to, e) {
    const button = /** @type {HTMLButtonElement} */ (e.currentTarget);
    const upOrDown = to < from ? "Move up" : "Move down";
    showError(error, null);
    const { order, changes } = reorder(questions, from, to);
    try {
      await busy(button, "Moving…", async () => {
        for (const c of changes) {
          const saved = await updateQuestion(client, exam.id, c.id, { orderIndex: c.orderIndex });
          const q = order.find((x) => x.id === c.id);
          if (q) q.orderIndex = saved.orderIndex;
        }
      });
      questions = order;
      render();
      status.textContent = `Question ${from + 1} is now question ${to + 1}.`;
      // Keep the keyboard on the question that moved, on the same kind of button.
      const moved = list.children[to];
      const again = [...moved.querySelectorAll("button")].find((b) => b.textContent?.startsWith(upOrDown) && !b.disabled);
      (again || moved.querySelector("button"))?.focus();
    } catch (err) {
      failed(err, "The order was not changed.");
      load();
    }
  }

  /**
   * @param {AdminQuestion} q
   * @param {number} n
   */
  async function remove(q, n) {
    const { result } = modal({
      title: `Delete question ${n}?`,
      body: h("p", { class: "prompt-text" }, q.prompt),
      buttons: [
        { label: "Keep it", value: "cancel" },
        { label: "Delete question", value: "ok", danger: true },
      ],
      focus: "cancel",
    });
    if ((await result) !== "ok") return;
    showError(error, null);
    try {
      await deleteQuestion(client, exam.id, q.id);
      questions = questions.filter((x) => x.id !== q.id);
      render();
      status.textContent = `Question ${n} was deleted.`;
      addButton.focus();
    } catch (e) {
      failed(e, "The question was not deleted.");
    }
  }

  /** @param {AdminQuestion | null} q null: a new one */
  function openEditor(q) {
    showError(error, null);
    const n = q ? questions.indexOf(q) + 1 : questions.length + 1;
    const close = () => {
      editor = null;
      render();
    };
    const form = questionForm({
      question: q,
      heading: q ? `Edit question ${n}` : `New question ${n}`,
      submitLabel: q ? `Save question ${n}` : "Add question",
      cancel: () => {
        close();
        // Back to where the editor was opened: the question's Edit button, or "Add a question".
        const back = q ? list.querySelector(`[data-question="${q.id}"] .question-actions button`) : addButton;
        /** @type {HTMLElement | null} */ (back)?.focus();
      },
      submit: async (fields) => {
        /** @type {AdminQuestion} */
        let saved;
        try {
          saved = q ? await updateQuestion(client, exam.id, q.id, fields) : await createQuestion(client, exam.id, fields);
        } catch (e) {
          // The form shows the error; a 409 "no longer a draft" also reloads the page.
          if (/** @type {any} */ (e)?.code === "EXAM_NOT_DRAFT") reloadSoon();
          throw e;
        }
        questions = q ? questions.map((x) => (x.id === q.id ? saved : x)) : [...questions, saved];
        close();
        status.textContent = q ? `Question ${n} was saved.` : `Question ${n} was added.`;
        // Focus the question just saved, so the keyboard carries on from there.
        const heading = /** @type {HTMLElement | null} */ (list.querySelector(`[data-question="${saved.id}"] h3`));
        heading?.setAttribute("tabindex", "-1");
        heading?.focus();
      },
    });
    editor = { id: q ? q.id : null, form };
    render();
    form.querySelector("textarea")?.focus();
  }

  load();
  return h(
    "section",
    { class: "admin-section", "aria-labelledby": "questions-title" },
    h("h2", { id: "questions-title" }, "Questions"),
    summary,
    editable
      ? null
      : h(
          "p",
          { class: "notice", "data-tone": "info" },
          exam.status === "PUBLISHED"
            ? "This exam is published, so its questions are read-only: candidates may already have them, and changing a question now would grade them on something they did not see."
            : "This exam is archived: its questions are read-only.",
        ),
    status,
    error,
    list,
    editorSlot,
    addButton,
  );
}
