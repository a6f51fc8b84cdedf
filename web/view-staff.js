// @ts-check
/**
 * Proctors and admins: the exams they can see, and the way to each exam's live grid
 * (`#/grid/<id>`), its review queue (`#/review/<id>`) and, for admins, its editor
 * (`#/admin/exam/<id>`, in view-admin.js).
 */
import { h, show, formatDateTime, errorText } from "./ui.js";

/** @typedef {import("./hub-client.js").Exam} Exam */

/** @param {import("./app.js").ViewContext} ctx */
export async function staffView(ctx) {
  const { client } = ctx;
  show("Exams", h("h1", {}, "Exams"), h("p", { "aria-live": "polite" }, "Loading exams…"));
  let exams;
  try {
    exams = (await client.exams()).items;
  } catch (e) {
    show(
      "Exams",
      h("h1", {}, "Exams"),
      h("p", { class: "form-error", role: "alert" }, `The exams could not be loaded. ${errorText(e)}`),
      h("button", { type: "button", class: "primary", onclick: () => staffView(ctx) }, "Try again"),
    );
    return;
  }
  const admin = client.user?.role === "ADMIN";
  show(
    "Exams",
    h("h1", {}, "Exams"),
    exams.length === 0
      ? h("p", {}, "No exams yet.")
      : h(
          "table",
          { class: "table exams-table" },
          h("caption", { class: "visually-hidden" }, "Exams"),
          h(
            "thead",
            {},
            h("tr", {}, ["Title", "Status", "Window", "Duration", "Open"].map((t) => h("th", { scope: "col" }, t))),
          ),
          h("tbody", {}, exams.map((e) => examRow(e, admin))),
        ),
  );
}

/**
 * @param {Exam} e
 * @param {boolean} admin
 */
function examRow(e, admin) {
  const id = encodeURIComponent(e.id);
  // Each link names its exam for screen readers, whose link lists lose the table's rows. The
  // visible words come first in the name, so speech input ("click Watch live") still finds it.
  const link = (/** @type {string} */ href, /** @type {string} */ text, /** @type {string} */ cls) =>
    h("a", { href, class: `button-link ${cls}`, "aria-label": `${text}: ${e.title}` }, text);
  return h(
    "tr",
    {},
    h("th", { scope: "row" }, e.title),
    h("td", {}, h("span", { class: `badge ${e.status === "PUBLISHED" ? "info" : "muted"}` }, statusName(e.status))),
    h("td", {}, `${formatDateTime(e.startsAt)} – ${formatDateTime(e.endsAt)}`),
    h("td", {}, `${e.durationMinutes} min`),
    h(
      "td",
      {},
      h(
        "div",
        { class: "row-links" },
        link(`#/grid/${id}`, "Watch live", "primary"),
        link(`#/review/${id}`, "Review", "secondary"),
        admin ? link(`#/admin/exam/${id}`, "Edit", "secondary") : null,
      ),
    ),
  );
}

/** @param {string} status */
function statusName(status) {
  return { DRAFT: "Draft", PUBLISHED: "Published", ARCHIVED: "Archived" }[status] || status;
}
