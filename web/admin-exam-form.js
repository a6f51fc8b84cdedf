// @ts-check
/**
 * The exam's details form, for creating an exam and for editing a draft: title, instructions,
 * duration, the window (local time in the inputs, RFC 3339 UTC on the wire), whether each
 * candidate gets the questions in their own order, and whether the sessions' camera, screen and
 * phone camera are recorded for review.
 */
import { h } from "./ui.js";
import { busy, checkField, field, fromLocalInput, localZoneName, markInvalidField, showError, toLocalInput } from "./admin-form.js";

/** @typedef {import("./admin-api.js").AdminExam} AdminExam */
/** @typedef {import("./admin-api.js").ExamFields} ExamFields */

/**
 * @typedef {object} ExamFormValues What the inputs hold, as strings.
 * @property {string} title
 * @property {string} instructions
 * @property {string} durationMinutes
 * @property {string} startsAt datetime-local
 * @property {string} endsAt datetime-local
 * @property {boolean} randomizeQuestions
 * @property {boolean} recordMedia
 */

/**
 * Checks the form and builds the request body. The hub checks again (422 naming the field);
 * this catches the common slips before a round trip and says which input to fix.
 * @param {ExamFormValues} v
 * @returns {{fields: ExamFields} | {field: string, message: string}}
 */
export function examFields(v) {
  const title = v.title.trim();
  if (!title) return { field: "title", message: "Give the exam a title." };
  if (title.length > 200) return { field: "title", message: "The title is at most 200 characters." };
  const duration = Number(v.durationMinutes);
  if (!Number.isInteger(duration) || duration < 1 || duration > 1440) {
    return { field: "durationMinutes", message: "The duration is a whole number of minutes, from 1 to 1440 (24 hours)." };
  }
  const startsAt = fromLocalInput(v.startsAt);
  if (!startsAt) return { field: "startsAt", message: "Enter when the window opens (date and time)." };
  const endsAt = fromLocalInput(v.endsAt);
  if (!endsAt) return { field: "endsAt", message: "Enter when the window closes (date and time)." };
  if (Date.parse(endsAt) <= Date.parse(startsAt)) {
    return { field: "endsAt", message: "The window must close after it opens." };
  }
  return {
    fields: {
      title,
      instructions: v.instructions,
      durationMinutes: duration,
      startsAt,
      endsAt,
      randomizeQuestions: v.randomizeQuestions,
      recordMedia: v.recordMedia,
    },
  };
}

/**
 * Defaults for a new exam: the window opens at the next quarter hour and lasts two hours.
 * @param {number} now epoch ms
 * @returns {ExamFormValues}
 */
export function newExamValues(now) {
  const quarter = 15 * 60_000;
  const start = Math.ceil(now / quarter) * quarter;
  return {
    title: "",
    instructions: "",
    durationMinutes: "60",
    startsAt: toLocalInput(start),
    endsAt: toLocalInput(start + 2 * 3600_000),
    randomizeQuestions: false,
    recordMedia: true,
  };
}

/** @param {AdminExam} exam @returns {ExamFormValues} */
export function examValues(exam) {
  return {
    title: exam.title,
    instructions: exam.instructions || "",
    durationMinutes: String(exam.durationMinutes),
    startsAt: toLocalInput(exam.startsAt),
    endsAt: toLocalInput(exam.endsAt),
    randomizeQuestions: exam.randomizeQuestions,
    recordMedia: exam.recordMedia !== false,
  };
}

/**
 * @param {object} options
 * @param {ExamFormValues} options.values
 * @param {string} options.submitLabel "Create exam" or "Save details"
 * @param {string} options.busyLabel
 * @param {(fields: ExamFields) => Promise<void>} options.submit throws an ApiError to show
 * @param {() => void} [options.cancel]
 * @param {string} options.titleId the id of the heading that names the form
 * @returns {HTMLFormElement}
 */
export function examForm({ values, submitLabel, busyLabel, submit, cancel, titleId }) {
  const title = h("input", { type: "text", required: true, maxLength: 200, value: values.title, "data-field": "title" });
  const instructions = h(
    "textarea",
    { rows: 4, maxLength: 20000, "data-field": "instructions" },
    values.instructions,
  );
  const duration = h("input", {
    type: "number",
    min: "1",
    max: "1440",
    step: "1",
    required: true,
    value: values.durationMinutes,
    inputMode: "numeric",
    "data-field": "durationMinutes",
  });
  const startsAt = h("input", { type: "datetime-local", required: true, value: values.startsAt, "data-field": "startsAt" });
  const endsAt = h("input", { type: "datetime-local", required: true, value: values.endsAt, "data-field": "endsAt" });
  const randomize = h("input", { type: "checkbox", checked: values.randomizeQuestions, "data-field": "randomizeQuestions" });
  const record = h("input", { type: "checkbox", id: "exam-record-media", checked: values.recordMedia, "data-field": "recordMedia", "aria-describedby": "exam-record-media-hint" });
  const error = h("p", { class: "form-error", role: "alert" });
  const save = h("button", { type: "submit", class: "primary" }, submitLabel);
  const zone = localZoneName();

  const form = h(
    "form",
    {
      class: "exam-form",
      "aria-labelledby": titleId,
      // The browser's own bubbles would come first and differ per browser; ours name the rule.
      novalidate: true,
      onsubmit: async (/** @type {SubmitEvent} */ e) => {
        e.preventDefault();
        showError(error, null);
        const checked = examFields({
          title: title.value,
          instructions: instructions.value,
          durationMinutes: duration.value,
          startsAt: startsAt.value,
          endsAt: endsAt.value,
          randomizeQuestions: randomize.checked,
          recordMedia: record.checked,
        });
        if (!("fields" in checked)) {
          const local = { status: 422, code: "VALIDATION_FAILED", message: checked.message, field: checked.field };
          error.textContent = checked.message;
          markInvalidField(form, local, error);
          return;
        }
        try {
          await busy(save, busyLabel, () => submit(checked.fields));
        } catch (err) {
          showError(error, err, "Not saved.");
          markInvalidField(form, err, error);
        }
      },
    },
    field("Title", title),
    field("Instructions for candidates", instructions, "Shown on the candidate's exam list before they start. Optional."),
    h(
      "div",
      { class: "field-row" },
      field("Duration (minutes)", duration, "From when each candidate starts."),
      field("Window opens", startsAt, `Local time (${zone}).`),
      field("Window closes", endsAt, `Local time (${zone}).`),
    ),
    h("p", { class: "hint" }, "Candidates can start between the opening and the close; a candidate's time also ends at the close, even if they started late."),
    checkField("Give each candidate the questions in their own random order", randomize),
    checkField("Record camera, screen and phone for later review", record),
    h(
      "p",
      { class: "hint", id: "exam-record-media-hint" },
      "The hub keeps each session's camera (with its microphone), screen and phone camera, for reviewers to watch beside the events. Candidates are told during the exam.",
    ),
    error,
    h(
      "div",
      { class: "button-row" },
      save,
      cancel ? h("button", { type: "button", class: "secondary", onclick: cancel }, "Cancel") : null,
    ),
  );
  return form;
}
