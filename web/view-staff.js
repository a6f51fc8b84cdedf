// @ts-check
/**
 * Proctors and admins: the exams they can see. Deliberately minimal for now: the live grid,
 * reviews and authoring are separate views (the grid is at /app/proctor).
 */
import { h, show, formatDateTime, errorText } from "./ui.js";

/** @param {import("./app.js").ViewContext} ctx */
export async function staffView({ client }) {
  show("Exams", h("h1", {}, "Exams"), h("p", { "aria-live": "polite" }, "Loading exams…"));
  let exams;
  try {
    exams = (await client.exams()).items;
  } catch (e) {
    show("Exams", h("h1", {}, "Exams"), h("p", { class: "form-error", role: "alert" }, errorText(e)));
    return;
  }
  show(
    "Exams",
    h("h1", {}, "Exams"),
    h(
      "p",
      { class: "note" },
      "Live monitoring of candidates (cameras, screens, warnings) is at ",
      h("a", { href: "/app/proctor" }, "/app/proctor"),
      ". The views for monitoring, review and authoring here are still to come.",
    ),
    exams.length === 0
      ? h("p", {}, "No exams yet.")
      : h(
          "table",
          { class: "table" },
          h("caption", { class: "visually-hidden" }, "Exams"),
          h(
            "thead",
            {},
            h("tr", {}, ["Title", "Status", "Window", "Duration"].map((t) => h("th", { scope: "col" }, t))),
          ),
          h(
            "tbody",
            {},
            exams.map((e) =>
              h(
                "tr",
                {},
                h("td", {}, e.title),
                h("td", {}, h("span", { class: `badge ${e.status === "PUBLISHED" ? "info" : "muted"}` }, e.status)),
                h("td", {}, `${formatDateTime(e.startsAt)} – ${formatDateTime(e.endsAt)}`),
                h("td", {}, `${e.durationMinutes} min`),
              ),
            ),
          ),
        ),
  );
}
