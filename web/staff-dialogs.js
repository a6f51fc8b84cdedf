// @ts-check
/**
 * A modal form for staff actions. ui.js's `modal()` closes on any button; a form that sends
 * something must stay open while it is sent and when the hub refuses it, with the error shown
 * inside the dialog next to what the person typed, so nothing is lost.
 */
import { h, errorText } from "./ui.js";

/** @typedef {import("./ui.js").Child} Child */

/** A refusal found before sending: the message, and the input to fix. */
export class FieldError extends Error {
  /**
   * @param {string} field the `name` of the input
   * @param {string} message
   */
  constructor(field, message) {
    super(message);
    this.field = field;
  }
}

/**
 * @param {object} options
 * @param {string} options.title
 * @param {Child} [options.intro]
 * @param {HTMLElement[]} options.fields the form's labelled inputs (each input with a `name`)
 * @param {string} options.submitLabel says what the button does ("Send warning")
 * @param {boolean} [options.danger] the submit button is red (terminate)
 * @param {(form: HTMLFormElement) => Promise<boolean | void>} options.submit sends; throw to
 *   show an error and stay open (a {@link FieldError} marks and focuses its input); resolve
 *   `false` to stay open without an error (a confirmation was declined)
 * @returns {Promise<boolean>} true once submitted, false when cancelled
 */
export function formDialog({ title, intro, fields, submitLabel, danger = false, submit }) {
  const titleId = `dlg-${Math.random().toString(36).slice(2)}`;
  const error = h("p", { class: "form-error", role: "alert" });
  const cancel = h("button", { type: "button", class: "secondary" }, "Cancel");
  const send = h("button", { type: "submit", class: danger ? "danger" : "primary" }, submitLabel);
  const form = h(
    "form",
    { class: "dialog-form", novalidate: true },
    intro ? h("div", { class: "dialog-body" }, intro) : null,
    fields,
    error,
    h("div", { class: "dialog-buttons" }, cancel, send),
  );
  const dialog = h(
    "dialog",
    { class: "dialog", role: "dialog", "aria-modal": "true", "aria-labelledby": titleId },
    h("h2", { id: titleId }, title),
    form,
  );
  return new Promise((resolve) => {
    let busy = false;
    const finish = (/** @type {boolean} */ done) => {
      dialog.close();
      dialog.remove();
      resolve(done);
    };
    cancel.addEventListener("click", () => {
      if (!busy) finish(false);
    });
    dialog.addEventListener("cancel", (e) => {
      e.preventDefault();
      if (!busy) finish(false);
    });
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      if (busy) return;
      busy = true;
      send.disabled = cancel.disabled = true;
      error.textContent = "";
      for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
      try {
        if ((await submit(form)) === false) {
          busy = false;
          send.disabled = cancel.disabled = false;
          return;
        }
        finish(true);
      } catch (err) {
        busy = false;
        send.disabled = cancel.disabled = false;
        error.textContent = errorText(err);
        const field = err instanceof FieldError ? err.field : /** @type {{field?: string}} */ (err)?.field;
        const input = field ? /** @type {HTMLElement | null} */ (form.querySelector(`[name="${field.replace(/^payload\./, "")}"]`)) : null;
        if (input) {
          input.setAttribute("aria-invalid", "true");
          input.focus();
        } else {
          send.focus();
        }
      }
    });
    document.body.append(dialog);
    dialog.showModal();
    /** @type {HTMLElement | null} */ (form.querySelector("input, textarea, select"))?.focus();
  });
}

/**
 * A labelled text area (`name` is also its id's stem).
 * @param {object} o
 * @param {string} o.name
 * @param {string} o.label
 * @param {string} [o.hint]
 * @param {string} [o.value]
 * @param {number} [o.rows]
 */
export function textField({ name, label, hint, value = "", rows = 3 }) {
  const id = `f-${name}-${Math.random().toString(36).slice(2, 8)}`;
  return h(
    "div",
    { class: "field" },
    h("label", { for: id }, label),
    hint ? h("p", { class: "hint", id: `${id}-hint` }, hint) : null,
    h("textarea", { id, name, rows: String(rows), maxlength: "2000", required: true, "aria-describedby": hint ? `${id}-hint` : null }, value),
  );
}

/**
 * A labelled number input.
 * @param {object} o
 * @param {string} o.name
 * @param {string} o.label
 * @param {number} o.min
 * @param {number} o.max
 * @param {number} [o.value]
 * @param {number} [o.step]
 */
export function numberField({ name, label, min, max, value, step = 1 }) {
  const id = `f-${name}-${Math.random().toString(36).slice(2, 8)}`;
  return h(
    "div",
    { class: "field" },
    h("label", { for: id }, label),
    h("input", {
      id,
      name,
      type: "number",
      inputmode: "numeric",
      min: String(min),
      max: String(max),
      step: String(step),
      required: true,
      value: value == null ? "" : String(value),
      class: "number",
    }),
  );
}
