// @ts-check
/**
 * `#/admin/exams`: every exam, in pages, by status; each opens its page (`#/admin/exam/<id>`).
 * `#/admin/exams/new`: the form that creates a draft.
 */
import { h, formatDateTime } from "./ui.js";
import { listExams, createExam } from "./admin-api.js";
import { breadcrumb, field, select, showError, showAdmin } from "./admin-form.js";
import { examForm, newExamValues } from "./admin-exam-form.js";

/** @typedef {import("./admin-api.js").AdminExam} AdminExam */

/** @type {Record<string, {label: string, tone: string}>} */
export const EXAM_STATUS = {
  DRAFT: { label: "Draft", tone: "muted" },
  PUBLISHED: { label: "Published", tone: "info" },
  ARCHIVED: { label: "Archived", tone: "muted archived" },
};

/** @param {string} status */
export function statusBadge(status) {
  const s = EXAM_STATUS[status] || { label: status, tone: "muted" };
  return h("span", { class: `badge ${s.tone}` }, s.label);
}

/** @param {import("./app.js").ViewContext} ctx */
export function examsView({ client, go }) {
  /** @type {{status: string, cursor: string | null}} */
  const filter = { status: "", cursor: null };
  const status = h("p", { class: "hint", role: "status" });
  const error = h("p", { class: "form-error", role: "alert" });
  const tbody = h("tbody");
  const table = h(
    "table",
    { class: "table" },
    h("caption", { class: "visually-hidden" }, "Exams"),
    h("thead", {}, h("tr", {}, ["Title", "Status", "Window", "Duration"].map((t) => h("th", { scope: "col" }, t)))),
    tbody,
  );
  const more = h("button", { type: "button", class: "secondary", hidden: true, onclick: () => load(true) }, "Show more exams");
  const statusFilter = select(
    [["", "All"], ["DRAFT", "Drafts"], ["PUBLISHED", "Published"], ["ARCHIVED", "Archived"]],
    "",
    {
      onchange: () => {
        filter.status = statusFilter.value;
        load(false);
      },
    },
  );

  /** @param {boolean} append */
  async function load(append) {
    showError(error, null);
    status.textContent = "Loading exams…";
    try {
      const page = await listExams(client, { status: filter.status, cursor: append ? filter.cursor : null });
      if (!append) tbody.replaceChildren();
      const rows = page.items.map(row);
      tbody.append(...rows);
      // "Show more" hides itself on the last page: keep the keyboard on the first new exam.
      if (append) rows[0]?.querySelector("a")?.focus();
      filter.cursor = page.nextCursor;
      more.hidden = !page.nextCursor;
      const n = tbody.rows.length;
      table.hidden = n === 0;
      status.textContent = n === 0 ? (filter.status ? "No exam has this status." : "No exams yet: create the first one.") : `${n} exam${n === 1 ? "" : "s"} shown.`;
    } catch (e) {
      status.textContent = "";
      showError(error, e, "The exams could not be loaded.");
    }
  }

  /** @param {AdminExam} exam */
  function row(exam) {
    return h(
      "tr",
      {},
      h("td", {}, h("a", { href: `#/admin/exam/${encodeURIComponent(exam.id)}` }, exam.title)),
      h("td", {}, statusBadge(exam.status)),
      h("td", {}, `${formatDateTime(exam.startsAt)} – ${formatDateTime(exam.endsAt)}`),
      h("td", {}, `${exam.durationMinutes} min`),
    );
  }

  showAdmin(
    "Exams — administration",
    breadcrumb([["Administration", "#/admin"], ["Exams", null]]),
    h(
      "div",
      { class: "page-head" },
      h("h1", {}, "Exams"),
      h("button", { type: "button", class: "primary", onclick: () => go("#/admin/exams/new") }, "Create an exam"),
    ),
    h("div", { class: "filters" }, field("Status", statusFilter)),
    status,
    error,
    table,
    more,
  );
  load(false);
}

/** @param {import("./app.js").ViewContext} ctx */
export function newExamView({ client, go }) {
  const form = examForm({
    values: newExamValues(client.clock.now()),
    submitLabel: "Create exam",
    busyLabel: "Creating…",
    titleId: "new-exam-title",
    submit: async (fields) => {
      const exam = await createExam(client, fields);
      go(`#/admin/exam/${encodeURIComponent(exam.id)}`);
    },
    cancel: () => go("#/admin/exams"),
  });
  showAdmin(
    "New exam",
    breadcrumb([["Administration", "#/admin"], ["Exams", "#/admin/exams"], ["New exam", null]]),
    h("h1", { id: "new-exam-title" }, "New exam"),
    h(
      "p",
      { class: "lead" },
      "The exam starts as a draft: add its questions and candidates, then publish it. Candidates see it only once it is published.",
    ),
    h("div", { class: "card form-card" }, form),
  );
}
