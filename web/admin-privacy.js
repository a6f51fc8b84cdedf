// @ts-check
/**
 * A user's data rights on the users page: "Download data export" (`GET /users/{id}/export`,
 * fetched with the bearer token and saved as `proctor-hub-export-<id>.json`, since a plain link
 * cannot carry the token) and "Erase personal data…" (`POST /users/{id}/erase`): a dialog that
 * says what is removed and what is kept, asks for the reason and for the user's email typed
 * again, and then shows what the hub removed. The rules are in admin-privacy-rules.js.
 */
import { h, modal } from "./ui.js";
import { userExport, eraseUser, getUser } from "./admin-api.js";
import { busy, describeError, showError } from "./admin-form.js";
import { formDialog, textField, FieldError } from "./staff-dialogs.js";
import { eraseBody, erasureRows, exportFileName, REASON_MAX } from "./admin-privacy-rules.js";

/** @typedef {import("./admin-api.js").AdminUser} AdminUser */
/** @typedef {import("./admin-api.js").Erasure} Erasure */
/** @typedef {import("./admin-api.js").HubClient} HubClient */

/**
 * Saves a blob as a file through the browser's downloads.
 * @param {Blob} blob
 * @param {string} name
 */
export function saveBlob(blob, name) {
  const url = URL.createObjectURL(blob);
  const a = h("a", { href: url, download: name, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  // Long enough for the download to start from it; then the memory is given back.
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

/**
 * "Download data export" for one user.
 * @param {object} o
 * @param {HubClient} o.client
 * @param {AdminUser} o.user
 * @param {HTMLElement} o.status the page's role="status" region
 * @param {HTMLElement} o.error the page's role="alert" region
 * @returns {HTMLButtonElement}
 */
export function exportButton({ client, user, status, error }) {
  const button = h(
    "button",
    {
      type: "button",
      class: "secondary small",
      "data-action": "export",
      onclick: async () => {
        showError(error, null);
        try {
          const blob = await busy(button, "Preparing the export…", () => userExport(client, user.id));
          const name = exportFileName(user.id);
          saveBlob(blob, name);
          status.textContent = `The data export of ${user.name} was saved as ${name}.`;
        } catch (e) {
          showError(error, e, `The data export of ${user.name} was not downloaded.`);
        }
        button.focus();
      },
    },
    "Download data export",
    h("span", { class: "visually-hidden" }, ` of ${user.name}`),
  );
  return button;
}

/**
 * "Erase personal data…" for one user (not for oneself: the hub refuses, another admin must).
 * @param {object} o
 * @param {HubClient} o.client
 * @param {AdminUser} o.user
 * @param {HTMLElement} o.status
 * @param {(updated: AdminUser, erasure: Erasure) => void} o.erased the user as they are now
 * @returns {HTMLButtonElement}
 */
export function eraseButton({ client, user, status, erased }) {
  const button = h(
    "button",
    {
      type: "button",
      class: "danger small",
      "data-action": "erase",
      onclick: async () => {
        const result = await eraseDialog(client, user);
        if (!result) return button.focus();
        /** @type {AdminUser} */
        let now;
        try {
          now = await getUser(client, user.id);
        } catch {
          now = { ...user, name: "Erased user", email: `erased-${user.id}@erased.invalid`, isActive: false };
        }
        status.textContent = `The personal data of ${user.email} was erased.`;
        await showErasure(result, user);
        erased(now, result);
      },
    },
    "Erase personal data…",
    h("span", { class: "visually-hidden" }, ` of ${user.name}`),
  );
  return button;
}

/**
 * The confirmation: what is removed and what is kept, the reason, the email typed again.
 * @param {HubClient} client
 * @param {AdminUser} user
 * @returns {Promise<Erasure | null>} null when cancelled
 */
async function eraseDialog(client, user) {
  /** @type {Erasure | null} */
  let done = null;
  const confirmId = `f-confirm-email-${Math.random().toString(36).slice(2, 8)}`;
  const confirm = h(
    "div",
    { class: "field" },
    h("label", { for: confirmId }, "Type the user's email to confirm"),
    h("p", { class: "hint", id: `${confirmId}-hint` }, "Type ", h("strong", { class: "confirm-email" }, user.email), "."),
    h("input", {
      id: confirmId,
      name: "confirmEmail",
      type: "text",
      inputmode: "email",
      autocomplete: "off",
      spellcheck: "false",
      required: true,
      "aria-describedby": `${confirmId}-hint`,
    }),
  );
  const sent = await formDialog({
    title: `Erase the personal data of ${user.name}?`,
    intro: [
      h("p", {}, `This removes what identifies ${user.name} (${user.email}) for good. It cannot be undone.`),
      h("h3", {}, "Removed"),
      h(
        "ul",
        { class: "erase-list" },
        h("li", {}, "Name, email and password: the account becomes “Erased user”, is deactivated, and every login ends."),
        h("li", {}, "The device fingerprints and IP addresses of their sessions."),
        h("li", {}, "The contents of their answers."),
        h("li", {}, "The details of their proctoring events, their stored files and their recordings (camera, screen, phone)."),
        h("li", {}, "Their name and email in the audit log."),
      ),
      h("h3", {}, "Kept, on a pseudonymous id"),
      h(
        "ul",
        { class: "erase-list" },
        h("li", {}, "Scores and review decisions."),
        h("li", {}, "The types, severities and times of proctoring events."),
      ),
      h(
        "p",
        { class: "hint" },
        "The hub refuses while one of their sessions is in progress or under review: decide the review first.",
      ),
    ],
    fields: [
      textField({
        name: "reason",
        label: "Reason for erasing",
        hint: `E.g. the request's reference (up to ${REASON_MAX} characters). It is kept in the audit log, without the person's name or email.`,
      }),
      confirm,
    ],
    submitLabel: "Erase personal data",
    danger: true,
    submit: async (form) => {
      const value = (/** @type {string} */ name) =>
        /** @type {HTMLInputElement | HTMLTextAreaElement | null} */ (form.elements.namedItem(name))?.value ?? "";
      const body = eraseBody({ reason: value("reason"), confirmEmail: value("confirmEmail") }, user.email);
      try {
        done = await eraseUser(client, user.id, body.reason);
      } catch (e) {
        const { text, field } = describeError(e);
        throw field ? new FieldError(field, text) : new Error(text);
      }
    },
  });
  return sent ? done : null;
}

/**
 * What the erasure removed, until the admin closes it.
 * @param {Erasure} e
 * @param {AdminUser} user as they were
 */
async function showErasure(e, user) {
  const { result } = modal({
    title: "Personal data erased",
    body: [
      h("p", {}, `${user.email} is now “Erased user” (erased-${e.userId}@erased.invalid). Scores and review decisions stay on this id.`),
      h(
        "dl",
        { class: "facts erasure-counts" },
        erasureRows(e).map(([label, n]) => [h("dt", {}, label), h("dd", {}, String(n))]),
      ),
    ],
    buttons: [{ label: "Close", value: "ok", primary: true }],
  });
  await result;
}
