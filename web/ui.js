// @ts-check
/**
 * Small DOM helpers shared by the app's views. No framework: views build elements with `h()`
 * and replace the main region with `show()`. Text from the server always goes in as text
 * nodes, never as HTML, so a prompt or a warning cannot inject markup.
 */

/** @typedef {string | number | Node | null | undefined | false} Leaf */
/** @typedef {Leaf | Leaf[] | (Leaf | Leaf[])[]} Child  what `h()` accepts as a child: nested arrays are flattened */

/**
 * Creates an element. `props`: `class`, `on<event>` listeners, DOM properties for non-string
 * values (`disabled: true`, `checked`, `value`), attributes otherwise.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Record<string, any>} [props]
 * @param {...Child} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value == null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (key === "class") {
      el.className = value;
    } else if (typeof value !== "string" && key in el) {
      /** @type {any} */ (el)[key] = value;
    } else {
      el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

/**
 * @param {Element} el
 * @param {Child[]} children
 */
function append(el, children) {
  for (const child of children) {
    if (child == null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(typeof child === "number" ? String(child) : child);
  }
}

/**
 * Renders text in which `backticks` mark code, as the exam prompts are written.
 * @param {string} text
 * @returns {Leaf[]}
 */
export function richText(text) {
  return text.split("`").map((part, i) => (i % 2 ? h("code", {}, part) : part));
}

/** @returns {HTMLElement} the app's main region */
export function mainRegion() {
  return /** @type {HTMLElement} */ (document.getElementById("main"));
}

/**
 * Replaces the main region with a view and moves focus to its heading, so keyboard and screen
 * reader users start at the top of the new view.
 * @param {string} title the document title's first part
 * @param {...Child} children
 */
export function show(title, ...children) {
  const main = mainRegion();
  main.replaceChildren();
  append(main, children);
  document.title = `${title} — Proctor Hub`;
  const heading = main.querySelector("h1");
  if (heading) {
    heading.setAttribute("tabindex", "-1");
    heading.focus({ preventScroll: false });
  }
}

/**
 * A modal dialog on `<dialog>` (focus is trapped and restored by the browser).
 * @param {object} options
 * @param {string} options.title
 * @param {Child} options.body
 * @param {{label: string, value: string, primary?: boolean, danger?: boolean}[]} options.buttons
 * @param {boolean} [options.alert] role="alertdialog", and Escape does not close it (it must
 *   be acknowledged with a button)
 * @param {string} [options.focus] the value of the button that gets the focus (default: the
 *   primary one); a confirmation of something final focuses the safe choice, so a stray Enter
 *   does no harm
 * @returns {{dialog: HTMLDialogElement, result: Promise<string>}} resolves with the button's value
 */
export function modal({ title, body, buttons, alert = false, focus }) {
  const titleId = `dlg-${Math.random().toString(36).slice(2)}`;
  const dialog = h("dialog", {
    class: "dialog",
    role: alert ? "alertdialog" : "dialog",
    "aria-modal": "true",
    "aria-labelledby": titleId,
  });
  const result = new Promise((resolve) => {
    const close = (/** @type {string} */ value) => {
      dialog.close();
      dialog.remove();
      resolve(value);
    };
    dialog.append(
      h("h2", { id: titleId }, title),
      h("div", { class: "dialog-body" }, body),
      h(
        "div",
        { class: "dialog-buttons" },
        buttons.map((b) =>
          h(
            "button",
            {
              type: "button",
              class: b.danger ? "danger" : b.primary ? "primary" : "secondary",
              "data-value": b.value,
              onclick: () => close(b.value),
            },
            b.label,
          ),
        ),
      ),
    );
    dialog.addEventListener("cancel", (e) => {
      if (alert) e.preventDefault();
      else resolve("cancel");
    });
  });
  document.body.append(dialog);
  dialog.showModal();
  // Focus the chosen button, else the primary action, rather than whatever the browser picks.
  const chosen = focus ? dialog.querySelector(`button[data-value="${focus}"]`) : null;
  const target = /** @type {HTMLElement | null} */ (chosen || dialog.querySelector("button.primary, button.danger, button"));
  target?.focus();
  return { dialog, result };
}

/**
 * @param {string | number | Date} when
 * @returns {string} e.g. "Mon 7 Dec, 14:05"
 */
export function formatDateTime(when) {
  return new Date(when).toLocaleString(undefined, {
    weekday: "short",
    day: "numeric",
    month: "short",
    hour: "2-digit",
    minute: "2-digit",
  });
}

/**
 * @param {string | number | Date} when
 * @returns {string} e.g. "14:05:09"
 */
export function formatTime(when) {
  return new Date(when).toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

/**
 * @param {number} ms
 * @returns {string} "1:05:09" or "05:09"; never negative
 */
export function formatCountdown(ms) {
  const total = Math.max(0, Math.ceil(ms / 1000));
  const hours = Math.floor(total / 3600);
  const mm = String(Math.floor((total % 3600) / 60)).padStart(2, "0");
  const ss = String(total % 60).padStart(2, "0");
  return hours ? `${hours}:${mm}:${ss}` : `${mm}:${ss}`;
}

/**
 * A message for an error thrown by the client, fit for a person.
 * @param {unknown} e
 * @returns {string}
 */
export function errorText(e) {
  const err = /** @type {{status?: number, code?: string, message?: string}} */ (e);
  if (err && err.status === 0) return "The hub cannot be reached. Check your connection and try again.";
  if (err && err.message) return err.message;
  return String(e);
}
