// @ts-check
/**
 * What the admin forms share: labelled fields, local date-time inputs sent as RFC 3339, the
 * pasted email list, and error messages built from an {@link ApiError} that say what went
 * wrong and which field to fix. The pure functions here have unit tests
 * (web/test/admin-form.test.mjs).
 */
import { h, show, errorText } from "./ui.js";

let idCounter = 0;
/** @param {string} prefix @returns {string} an id unique in the page, for label/aria links */
export function uid(prefix) {
  idCounter += 1;
  return `${prefix}-${idCounter}`;
}

// --- dates ---------------------------------------------------------------------------------

/** @param {number} n */
const two = (n) => String(n).padStart(2, "0");

/**
 * The value a `<input type="datetime-local">` shows for an instant: the local wall-clock time
 * to the minute, which is what the admin thinks in.
 * @param {string | number | Date} when
 * @returns {string} "YYYY-MM-DDTHH:MM"
 */
export function toLocalInput(when) {
  const d = new Date(when);
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())}T${two(d.getHours())}:${two(d.getMinutes())}`;
}

/**
 * A datetime-local value (local time, no zone) as the RFC 3339 UTC instant the hub wants.
 * @param {string} value "YYYY-MM-DDTHH:MM" (seconds optional)
 * @returns {string | null} null when empty or not a date
 */
export function fromLocalInput(value) {
  // new Date("YYYY-MM-DDTHH:MM") reads a zoneless date-time as local time (ECMAScript spec);
  // the explicit shape check keeps out what Date.parse would guess at.
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/.test(value.trim())) return null;
  const d = new Date(value.trim());
  return Number.isNaN(d.getTime()) ? null : d.toISOString();
}

/** @returns {string} this browser's time zone, to say which local time the inputs are in */
export function localZoneName() {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || "this computer's time zone";
  } catch {
    return "this computer's time zone";
  }
}

// --- emails --------------------------------------------------------------------------------

/**
 * The addresses in a pasted list: one per line, or separated by commas, semicolons or spaces;
 * "Name <address>" as mail programs copy them counts as the address. Repeats (any case) once.
 * The hub checks each one; this only splits.
 * @param {string} text
 * @returns {string[]}
 */
export function parseEmails(text) {
  const out = [];
  const seen = new Set();
  for (const entry of text.split(/[\n,;]+/)) {
    const bracketed = entry.match(/<([^<>]+)>/);
    const words = bracketed ? [bracketed[1]] : entry.split(/\s+/);
    for (const raw of words) {
      const email = raw.trim().replace(/^mailto:/i, "");
      if (!email) continue;
      const key = email.toLowerCase();
      if (seen.has(key)) continue;
      seen.add(key);
      out.push(email);
    }
  }
  return out;
}

/**
 * The addresses a 422 on `emails` names ("emails: not active candidates: a@x, b@y").
 * @param {string} message
 * @returns {string[]}
 */
export function unknownEmails(message) {
  const m = message.match(/not active candidates:\s*(.*)$/);
  return m ? m[1].split(",").map((s) => s.trim()).filter(Boolean) : [];
}

// --- errors --------------------------------------------------------------------------------

/** What to tell an admin for the codes that have a clearer wording than the hub's message. */
const CODE_TEXT = /** @type {Record<string, string>} */ ({
  EMAIL_TAKEN: "An account with this email already exists.",
  CANNOT_DEMOTE_SELF: "You cannot deactivate or demote your own account.",
  EXAM_NOT_DRAFT: "This exam is no longer a draft, so its questions cannot change.",
  EXAM_ARCHIVED: "This exam is archived: nothing about it can change.",
  EXAM_NOT_PUBLISHED: "Only a published exam can be archived.",
  FORBIDDEN: "Your account may not do this.",
  NOT_FOUND: "It no longer exists (someone may have deleted it).",
  WEBHOOK_DISABLED: "This endpoint is disabled: enable it before sending a test ping.",
  LEGAL_HOLD:
    "A session of this user is under review (a legal hold). Decide the review first (approve or reject it), then erase.",
  SESSION_ACTIVE: "This user has an exam in progress. Erase once the session has ended.",
  ALREADY_ERASED: "This user's personal data was already erased.",
  CANNOT_ERASE_SELF: "You cannot erase your own account: another administrator must do it.",
});

/**
 * @typedef {object} ErrorReport
 * @property {string} text the sentence to show
 * @property {string} detail status · code · field, for whoever has to look into it
 * @property {string | undefined} field the request field at fault (422), if any
 */

/**
 * An error of an admin action, fit for a person: the hub's own message (it names the rule
 * broken) or a clearer one for the known codes, and the technical detail beside it.
 * @param {unknown} e usually an {@link import("./hub-client.js").ApiError}
 * @returns {ErrorReport}
 */
export function describeError(e) {
  const err = /** @type {{status?: number, code?: string, message?: string, field?: string}} */ (e) || {};
  if (typeof err.status !== "number" || !err.code) return { text: errorText(e), detail: "", field: undefined };
  // A 422's message starts with its field ("endsAt: must be after startsAt"); the field is
  // marked on the form and named in the detail, so the sentence leaves it out.
  let message = err.message || err.code;
  if (err.field && message.startsWith(`${err.field}: `)) message = message.slice(err.field.length + 2);
  const text = err.status === 0 ? errorText(e) : CODE_TEXT[err.code] || sentence(message);
  const detail = [err.status ? `HTTP ${err.status}` : "", err.code, err.field ? `field ${err.field}` : ""]
    .filter(Boolean)
    .join(" · ");
  return { text, detail, field: err.field };
}

/** @param {string} s @returns {string} capitalised, with a final full stop */
function sentence(s) {
  const t = s.trim();
  if (!t) return t;
  return t[0].toUpperCase() + t.slice(1) + (/[.!?]$/.test(t) ? "" : ".");
}

/**
 * Fills an error region (role="alert", so it is announced) with an error's text and detail;
 * empties it for null.
 * @param {HTMLElement} box
 * @param {unknown} e
 * @param {string} [prefix] what failed, e.g. "The user was not created."
 */
export function showError(box, e, prefix = "") {
  if (e == null) {
    box.replaceChildren();
    return;
  }
  const { text, detail } = describeError(e);
  box.replaceChildren(h("span", {}, prefix ? `${prefix} ${text}` : text));
  if (detail) box.append(h("span", { class: "error-detail" }, ` (${detail})`));
}

/**
 * Marks the input a 422 names (`data-field` on it) as invalid, links it to the error text, and
 * moves the focus there so the admin can fix it at once. Clears earlier marks in `form`.
 * @param {HTMLElement} form
 * @param {unknown} e
 * @param {HTMLElement} box the error region (its id is what the input points to)
 * @returns {boolean} whether a field was marked
 */
export function markInvalidField(form, e, box) {
  for (const el of form.querySelectorAll("[aria-invalid]")) {
    el.removeAttribute("aria-invalid");
    el.removeAttribute("aria-errormessage");
  }
  const field = describeError(e).field;
  if (!field) return false;
  // "options[1].text" → the field "options[1].text", else its root "options".
  const root = field.split(/[.[]/)[0];
  const input = /** @type {HTMLElement | null} */ (
    form.querySelector(`[data-field="${CSS.escape(field)}"]`) || form.querySelector(`[data-field="${CSS.escape(root)}"]`)
  );
  if (!input) return false;
  if (!box.id) box.id = uid("error");
  input.setAttribute("aria-invalid", "true");
  input.setAttribute("aria-errormessage", box.id);
  input.focus();
  return true;
}

/**
 * Marks every field a form's own checks found wrong (`data-field`, as the hub names fields),
 * lists the problems in the error region, and moves the focus to the first one. Clears
 * earlier marks in `form`; with no problems, only clears.
 * @param {HTMLElement} form
 * @param {{field: string, message: string}[]} problems
 * @param {HTMLElement} box the error region (role="alert")
 * @param {string} [prefix] what did not happen, e.g. "The endpoint was not registered."
 */
export function showProblems(form, problems, box, prefix = "") {
  for (const el of form.querySelectorAll("[aria-invalid]")) {
    el.removeAttribute("aria-invalid");
    el.removeAttribute("aria-errormessage");
  }
  box.replaceChildren();
  if (problems.length === 0) return;
  if (!box.id) box.id = uid("error");
  /** @type {HTMLElement | null} */
  let first = null;
  for (const p of problems) {
    const input = /** @type {HTMLElement | null} */ (form.querySelector(`[data-field="${CSS.escape(p.field)}"]`));
    if (!input) continue;
    input.setAttribute("aria-invalid", "true");
    input.setAttribute("aria-errormessage", box.id);
    first = first || input;
  }
  if (prefix) box.append(h("span", {}, prefix));
  box.append(
    problems.length === 1
      ? h("span", {}, `${prefix ? " " : ""}${problems[0].message}`)
      : h("ul", {}, problems.map((p) => h("li", {}, p.message))),
  );
  // A group (the events' fieldset) takes the focus on its first control.
  const target = first && first.matches("fieldset") ? /** @type {HTMLElement | null} */ (first.querySelector("input")) : first;
  target?.focus();
}

// --- fields --------------------------------------------------------------------------------

/**
 * A labelled field: the label, an optional hint (linked with aria-describedby) and the input.
 * @param {string} label
 * @param {HTMLInputElement | HTMLTextAreaElement | HTMLSelectElement} input
 * @param {string} [hint]
 * @returns {HTMLDivElement}
 */
export function field(label, input, hint) {
  if (!input.id) input.id = uid("f");
  const hintEl = hint ? h("p", { class: "hint", id: uid("hint") }, hint) : null;
  if (hintEl) input.setAttribute("aria-describedby", hintEl.id);
  return h("div", { class: "field" }, h("label", { for: input.id }, label), hintEl, input);
}

/**
 * A checkbox with its label after it.
 * @param {string} label
 * @param {HTMLInputElement} box
 * @returns {HTMLDivElement}
 */
export function checkField(label, box) {
  if (!box.id) box.id = uid("f");
  return h("div", { class: "field check" }, box, h("label", { for: box.id }, label));
}

/**
 * A `<select>` from `[value, label]` pairs.
 * @param {[string, string][]} choices
 * @param {string} selected
 * @param {Record<string, any>} [props]
 * @returns {HTMLSelectElement}
 */
export function select(choices, selected, props = {}) {
  return h(
    "select",
    props,
    choices.map(([value, label]) => h("option", { value, selected: value === selected }, label)),
  );
}

/**
 * Runs an action from a button: disabled, with a "…ing" label, while it runs (so a double
 * click does not send it twice); restored after.
 * @template T
 * @param {HTMLButtonElement} button
 * @param {string} busyText
 * @param {() => Promise<T>} action
 * @returns {Promise<T>}
 */
export async function busy(button, busyText, action) {
  // The children, not the text: a visually hidden part of the name ("Deactivate <name>")
  // must come back hidden.
  const children = [...button.childNodes];
  button.disabled = true;
  button.textContent = busyText;
  try {
    return await action();
  } finally {
    button.disabled = false;
    button.replaceChildren(...children);
  }
}

/**
 * Shows an admin page: {@link show} with the content in `.admin`, the scope of admin.css.
 * @param {string} title
 * @param {...import("./ui.js").Child} children
 */
export function showAdmin(title, ...children) {
  show(title, h("div", { class: "admin" }, ...children));
}

/**
 * The breadcrumb above an admin page.
 * @param {[string, string | null][]} trail `[label, hash]`; the last (null hash) is the page
 * @returns {HTMLElement}
 */
export function breadcrumb(trail) {
  return h(
    "nav",
    { class: "breadcrumb", "aria-label": "Breadcrumb" },
    h(
      "ol",
      {},
      trail.map(([label, hash]) =>
        h("li", {}, hash ? h("a", { href: hash }, label) : h("span", { "aria-current": "page" }, label)),
      ),
    ),
  );
}
