// @ts-check
/**
 * The "Candidates" section of an exam's admin page: who is assigned, with their extra time
 * (an accommodation, added to the duration), and two ways to add people:
 * - find one by name or email and assign them;
 * - paste a list of emails (`PUT /exams/{id}/assignments {emails}`). The hub assigns all of
 *   them or none: every address that is not an active candidate is named in one 422, shown
 *   next to the list so the admin can fix it and send it again.
 * Archived exams are frozen (409 `EXAM_ARCHIVED`): the list is read-only then.
 */
import { h, modal } from "./ui.js";
import { listAssignments, assign, unassign, listUsers } from "./admin-api.js";
import { busy, describeError, field, markInvalidField, parseEmails, showError, unknownEmails } from "./admin-form.js";

/** @typedef {import("./admin-api.js").Assignment} Assignment */
/** @typedef {import("./admin-api.js").AdminExam} AdminExam */

/**
 * Reads an extra-time input.
 * @param {string} value
 * @returns {number | null | undefined} minutes; null for empty (no change); undefined if invalid
 */
export function extraMinutes(value) {
  const v = value.trim();
  if (v === "") return null;
  const n = Number(v);
  return Number.isInteger(n) && n >= 0 && n <= 600 ? n : undefined;
}

/**
 * @param {object} options
 * @param {import("./hub-client.js").HubClient} options.client
 * @param {AdminExam} options.exam
 * @returns {HTMLElement}
 */
export function assignmentsSection({ client, exam }) {
  const editable = exam.status !== "ARCHIVED";
  /** @type {Map<string, Assignment>} by candidate id */
  const assigned = new Map();
  /** @type {string | null} */
  let cursor = null;

  const summary = h("p", { class: "hint" });
  const status = h("p", { class: "status-msg", role: "status" });
  const error = h("p", { class: "form-error", role: "alert" });
  const tbody = h("tbody");
  const table = h(
    "table",
    { class: "table assignments-table", hidden: true },
    h("caption", { class: "visually-hidden" }, "Assigned candidates"),
    h(
      "thead",
      {},
      h("tr", {}, ["Name", "Email", "Extra time", editable ? "Action" : null].filter(Boolean).map((t) => h("th", { scope: "col" }, t))),
    ),
    tbody,
  );
  const more = h("button", { type: "button", class: "secondary", hidden: true, onclick: () => load(true) }, "Show more candidates");

  /** @param {boolean} append */
  async function load(append) {
    try {
      const page = await listAssignments(client, exam.id, { cursor: append ? cursor : null });
      if (!append) assigned.clear();
      for (const a of page.items) assigned.set(a.candidateId, a);
      cursor = page.nextCursor;
      render();
      // "Show more" hides itself on the last page: keep the keyboard on the first new row.
      if (append && page.items[0]) {
        /** @type {HTMLElement | null} */ (tbody.querySelector(`[data-candidate="${page.items[0].candidateId}"] input`))?.focus();
      }
    } catch (e) {
      showError(error, e, "The candidates could not be loaded.");
    }
  }

  /** @param {Assignment[]} items every assignment (the PUT answers them all) */
  function replaceAll(items) {
    assigned.clear();
    for (const a of items) assigned.set(a.candidateId, a);
    cursor = null;
    render();
  }

  function render() {
    const n = assigned.size;
    summary.textContent = n
      ? `${n} candidate${n === 1 ? "" : "s"} assigned${cursor ? " so far (more below)" : ""}.`
      : "No candidates yet. Only assigned candidates see the exam.";
    table.hidden = n === 0;
    more.hidden = !cursor;
    tbody.replaceChildren(...[...assigned.values()].map(row));
    refreshResults();
  }

  /** @param {Assignment} a */
  function row(a) {
    const minutes = h("input", {
      type: "number",
      min: "0",
      max: "600",
      step: "1",
      inputMode: "numeric",
      value: String(a.extraTimeMinutes),
      class: "minutes",
      disabled: !editable,
      "aria-label": `Extra minutes for ${a.name}`,
    });
    const save = h(
      "button",
      {
        type: "button",
        class: "secondary small",
        onclick: async () => {
          const m = extraMinutes(minutes.value);
          if (m == null) {
            error.textContent = `Extra time for ${a.name} is a whole number of minutes from 0 to 600.`;
            minutes.setAttribute("aria-invalid", "true");
            minutes.focus();
            return;
          }
          minutes.removeAttribute("aria-invalid");
          showError(error, null);
          try {
            const page = await busy(save, "Saving…", () => assign(client, exam.id, { candidateIds: [a.candidateId] }, m));
            replaceAll(page.items);
            status.textContent = `${a.name} now has ${m} extra minute${m === 1 ? "" : "s"}.`;
            /** @type {HTMLElement | null} */ (tbody.querySelector(`[data-candidate="${a.candidateId}"] input`))?.focus();
          } catch (e) {
            showError(error, e, `The extra time of ${a.name} was not changed.`);
          }
        },
      },
      "Save",
      h("span", { class: "visually-hidden" }, ` extra time for ${a.name}`),
    );
    const remove = h(
      "button",
      {
        type: "button",
        class: "secondary small",
        onclick: async () => {
          const { result } = modal({
            title: `Remove ${a.name} from this exam?`,
            body: h(
              "p",
              {},
              `${a.email} will no longer see “${exam.title}” in their exams. A session they already started is not ended by this.`,
            ),
            buttons: [
              { label: "Keep them", value: "cancel" },
              { label: "Remove", value: "ok", danger: true },
            ],
            focus: "cancel",
          });
          if ((await result) !== "ok") return remove.focus();
          showError(error, null);
          try {
            await unassign(client, exam.id, a.candidateId);
            assigned.delete(a.candidateId);
            render();
            status.textContent = `${a.name} was removed from the exam.`;
            pasteBox.focus();
          } catch (e) {
            showError(error, e, `${a.name} was not removed.`);
          }
        },
      },
      "Remove",
      h("span", { class: "visually-hidden" }, ` ${a.name}`),
    );
    return h(
      "tr",
      { "data-candidate": a.candidateId },
      h("td", {}, a.name),
      h("td", {}, a.email),
      h("td", {}, h("span", { class: "inline-edit" }, minutes, h("span", { "aria-hidden": "true" }, "min"), editable ? save : null)),
      editable ? h("td", {}, remove) : null,
    );
  }

  // --- find and assign one ---
  const searchInput = h("input", { type: "search", autocomplete: "off", maxLength: 100 });
  const results = h("ul", { class: "search-results", "aria-label": "Candidates found" });
  const searchStatus = h("p", { class: "hint", role: "status" });
  /** @type {import("./admin-api.js").AdminUser[]} */
  let found = [];

  const searchForm = h(
    "form",
    {
      role: "search",
      "aria-label": "Find candidates",
      class: "inline-form",
      onsubmit: async (/** @type {SubmitEvent} */ e) => {
        e.preventDefault();
        const q = searchInput.value.trim();
        searchStatus.textContent = "Searching…";
        try {
          found = (await listUsers(client, { role: "CANDIDATE", q, limit: 20 })).items.filter((u) => u.isActive);
          refreshResults();
          searchStatus.textContent = found.length
            ? `${found.length} active candidate${found.length === 1 ? "" : "s"} found${found.length === 20 ? " (the first 20: narrow the search)" : ""}.`
            : "No active candidate matches.";
        } catch (err) {
          searchStatus.textContent = "";
          showError(error, err, "The search failed.");
        }
      },
    },
    field("Find a candidate by name or email", searchInput),
    h("button", { type: "submit", class: "secondary" }, "Search candidates"),
  );

  function refreshResults() {
    results.replaceChildren(
      ...found.map((u) => {
        const already = assigned.has(u.id);
        const button = h(
          "button",
          {
            type: "button",
            class: "secondary small",
            disabled: already,
            onclick: async () => {
              showError(error, null);
              try {
                const page = await busy(button, "Assigning…", () => assign(client, exam.id, { candidateIds: [u.id] }));
                replaceAll(page.items);
                status.textContent = `${u.name} is assigned.`;
                searchInput.focus();
              } catch (e) {
                showError(error, e, `${u.name} was not assigned.`);
              }
            },
          },
          already ? "Assigned" : "Assign",
          h("span", { class: "visually-hidden" }, ` ${u.name}`),
        );
        return h("li", {}, h("span", {}, u.name, h("span", { class: "hint" }, ` — ${u.email}`)), button);
      }),
    );
  }

  // --- paste a list ---
  const pasteBox = h("textarea", { rows: 6, "data-field": "emails", spellcheck: "false", autocomplete: "off" });
  const pasteExtra = h("input", {
    type: "number",
    min: "0",
    max: "600",
    step: "1",
    inputMode: "numeric",
    class: "minutes",
    "data-field": "extraTimeMinutes",
  });
  const pasteError = h("div", { class: "form-error", role: "alert" });
  const pasteButton = h("button", { type: "submit", class: "primary" }, "Assign these candidates");
  const pasteForm = h(
    "form",
    {
      class: "paste-form",
      "aria-labelledby": "paste-title",
      novalidate: true,
      onsubmit: async (/** @type {SubmitEvent} */ e) => {
        e.preventDefault();
        showError(pasteError, null);
        markInvalidField(pasteForm, null, pasteError);
        const emails = parseEmails(pasteBox.value);
        const extra = extraMinutes(pasteExtra.value);
        if (emails.length === 0) {
          return localError("emails", "Paste at least one email address.");
        }
        if (extra === undefined) {
          return localError("extraTimeMinutes", "Extra time is a whole number of minutes from 0 to 600, or empty.");
        }
        try {
          const page = await busy(pasteButton, "Assigning…", () => assign(client, exam.id, { emails }, extra));
          replaceAll(page.items);
          pasteBox.value = "";
          pasteExtra.value = "";
          status.textContent = `Assigned ${emails.length} candidate${emails.length === 1 ? "" : "s"}${extra ? ` with ${extra} extra minutes` : ""}.`;
        } catch (err) {
          const bad = /** @type {any} */ (err)?.field === "emails" ? unknownEmails(/** @type {any} */ (err).message) : [];
          if (bad.length) {
            // Nothing was assigned: say which addresses to fix, and keep the list as it is.
            pasteError.replaceChildren(
              h("span", {}, `Nothing was assigned. ${bad.length === 1 ? "This address is not an active candidate" : "These addresses are not active candidates"}: `),
              h("span", { class: "bad-emails" }, bad.join(", ")),
              h("span", {}, `. Fix or remove ${bad.length === 1 ? "it" : "them"}, then assign again.`),
              h("span", { class: "error-detail" }, ` (${describeError(err).detail})`),
            );
          } else {
            showError(pasteError, err, "Nothing was assigned.");
          }
          markInvalidField(pasteForm, err, pasteError);
        }
      },
    },
    h("h3", { id: "paste-title" }, "Paste a list of emails"),
    field("Candidate emails", pasteBox, "One per line, or separated by commas. Case and extra spaces do not matter."),
    // Right under the list: what is wrong is almost always an address in it.
    pasteError,
    field("Extra time for these candidates (minutes)", pasteExtra, "Optional. Empty keeps each one's current extra time (0 for new ones)."),
    h("div", { class: "button-row" }, pasteButton),
  );

  /**
   * @param {string} fieldName
   * @param {string} message
   */
  function localError(fieldName, message) {
    pasteError.textContent = message;
    markInvalidField(pasteForm, { status: 422, code: "VALIDATION_FAILED", message, field: fieldName }, pasteError);
  }

  load(false);
  return h(
    "section",
    { class: "admin-section", "aria-labelledby": "assign-title" },
    h("h2", { id: "assign-title" }, "Candidates"),
    summary,
    editable ? null : h("p", { class: "notice", "data-tone": "info" }, "This exam is archived: its candidates can no longer change."),
    status,
    error,
    table,
    more,
    editable
      ? h(
          "div",
          { class: "assign-forms" },
          h("div", { class: "card" }, h("h3", {}, "Find and assign"), searchForm, searchStatus, results),
          h("div", { class: "card" }, pasteForm),
        )
      : null,
  );
}
