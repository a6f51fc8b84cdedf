// @ts-check
/**
 * `#/admin/exam/<id>`: one exam for an admin. Its details (editable while a draft), its
 * lifecycle (publish a draft, archive a published exam — each after a confirmation that says
 * what changes), its questions and its candidates.
 */
import { h, modal, formatDateTime } from "./ui.js";
import { getExam, updateExam, publishExam, archiveExam } from "./admin-api.js";
import { breadcrumb, busy, showError, showAdmin } from "./admin-form.js";
import { examForm, examValues } from "./admin-exam-form.js";
import { statusBadge } from "./admin-exams.js";
import { questionsSection } from "./admin-questions.js";
import { assignmentsSection } from "./admin-assignments.js";

/** @typedef {import("./admin-api.js").AdminExam} AdminExam */

/**
 * @param {import("./app.js").ViewContext} ctx
 * @param {string} examId
 * @param {string} [notice] a message to show at the top (what the last action did)
 */
export async function examAdminView(ctx, examId, notice = "") {
  const { client } = ctx;
  const trail = () => breadcrumb([["Administration", "#/admin"], ["Exams", "#/admin/exams"], ["Exam", null]]);
  showAdmin("Exam", trail(), h("h1", {}, "Exam"), h("p", { role: "status" }, "Loading the exam…"));
  /** @type {AdminExam} */
  let exam;
  try {
    exam = await getExam(client, examId);
  } catch (e) {
    const error = h("p", { class: "form-error", role: "alert" });
    showError(error, e, "The exam could not be loaded.");
    showAdmin(
      "Exam",
      trail(),
      h("h1", {}, "Exam"),
      error,
      h("button", { type: "button", class: "primary", onclick: () => examAdminView(ctx, examId) }, "Try again"),
    );
    return;
  }
  const reload = (/** @type {string} */ message = "") => examAdminView(ctx, examId, message);

  /** -1 until the questions are loaded: publishing is then left to the hub to refuse */
  let questionCount = -1;
  const actionError = h("p", { class: "form-error", role: "alert" });
  const details = h("div", { class: "exam-details" });

  function renderFacts() {
    details.replaceChildren(
      h(
        "dl",
        { class: "facts" },
        h("dt", {}, "Window"),
        h("dd", {}, `${formatDateTime(exam.startsAt)} – ${formatDateTime(exam.endsAt)}`),
        h("dt", {}, "Duration"),
        h("dd", {}, `${exam.durationMinutes} minutes per candidate`),
        h("dt", {}, "Question order"),
        h("dd", {}, exam.randomizeQuestions ? "Random, different for each candidate" : "As written"),
        h("dt", {}, "Recording"),
        h("dd", { id: "exam-record-media-fact" }, exam.recordMedia === false ? "Off: camera, screen and phone are not recorded" : "On: camera, screen and phone are recorded for later review"),
      ),
      exam.instructions ? h("p", { class: "instructions" }, exam.instructions) : h("p", { class: "hint" }, "No instructions."),
    );
  }

  const editButton = h(
    "button",
    {
      type: "button",
      class: "secondary",
      onclick: () => {
        editButton.hidden = true;
        details.replaceChildren(
          h("h3", { id: "edit-exam-title" }, "Edit the details"),
          examForm({
            values: examValues(exam),
            submitLabel: "Save details",
            busyLabel: "Saving…",
            titleId: "edit-exam-title",
            submit: async (fields) => {
              exam = await updateExam(client, exam.id, fields);
              closeEditor();
              heading.textContent = exam.title;
              document.title = `${exam.title} — Proctor Hub`;
              status.textContent = "The details were saved.";
            },
            cancel: closeEditor,
          }),
        );
        /** @type {HTMLElement | null} */ (details.querySelector("input"))?.focus();
      },
    },
    "Edit details",
  );
  function closeEditor() {
    editButton.hidden = false;
    renderFacts();
    editButton.focus();
  }

  const publishButton = h(
    "button",
    {
      type: "button",
      class: "primary",
      onclick: async () => {
        if (questionCount === 0) {
          actionError.textContent = "Add at least one question before publishing.";
          return;
        }
        const { result } = modal({
          title: `Publish “${exam.title}”?`,
          body: [
            h("p", {}, `Assigned candidates can take it between ${formatDateTime(exam.startsAt)} and ${formatDateTime(exam.endsAt)}.`),
            h("p", {}, "Its questions can no longer be added, changed or deleted after this."),
          ],
          buttons: [
            { label: "Not yet", value: "cancel" },
            { label: "Publish exam", value: "ok", primary: true },
          ],
          focus: "cancel",
        });
        if ((await result) !== "ok") return publishButton.focus();
        showError(actionError, null);
        try {
          await busy(publishButton, "Publishing…", () => publishExam(client, exam.id));
          reload("The exam is published. Its questions are now read-only.");
        } catch (e) {
          showError(actionError, e, "The exam was not published.");
        }
      },
    },
    "Publish exam…",
  );

  const archiveButton = h(
    "button",
    {
      type: "button",
      class: "danger",
      onclick: async () => {
        const { result } = modal({
          title: `Archive “${exam.title}”?`,
          body: [
            h("p", {}, "Candidates no longer see it in their exams, and nothing about it can change any more: not its details, questions or candidates."),
            h("p", {}, "This cannot be undone. Results and reviews stay available."),
          ],
          buttons: [
            { label: "Keep it published", value: "cancel" },
            { label: "Archive exam", value: "ok", danger: true },
          ],
          focus: "cancel",
        });
        if ((await result) !== "ok") return archiveButton.focus();
        showError(actionError, null);
        try {
          await busy(archiveButton, "Archiving…", () => archiveExam(client, exam.id));
          reload("The exam is archived.");
        } catch (e) {
          showError(actionError, e, "The exam was not archived.");
        }
      },
    },
    "Archive exam…",
  );

  const heading = h("h1", {}, exam.title);
  const status = h("p", { class: "status-msg", role: "status" }, notice);
  const lifecycleNote = {
    DRAFT: "A draft: candidates do not see it yet. Add questions and candidates, then publish it.",
    PUBLISHED: "Published: assigned candidates see it and can take it during its window.",
    ARCHIVED: "Archived: read-only.",
  }[exam.status];
  const enc = encodeURIComponent(exam.id);

  renderFacts();
  showAdmin(
    exam.title,
    breadcrumb([["Administration", "#/admin"], ["Exams", "#/admin/exams"], [exam.title, null]]),
    h("div", { class: "page-head" }, heading, statusBadge(exam.status)),
    h("p", { class: "lead" }, lifecycleNote),
    status,
    h(
      "section",
      { class: "admin-section card", "aria-labelledby": "details-title" },
      h("h2", { id: "details-title" }, "Details"),
      details,
      actionError,
      h(
        "div",
        { class: "button-row" },
        exam.status === "DRAFT" ? [editButton, publishButton] : null,
        exam.status === "PUBLISHED" ? [archiveButton] : null,
        exam.status !== "DRAFT"
          ? [h("a", { class: "button-link", href: `#/grid/${enc}` }, "Watch live"), h("a", { class: "button-link", href: `#/review/${enc}` }, "Review sessions")]
          : null,
      ),
    ),
    questionsSection({ client, exam, stale: () => reload(), counted: (n) => (questionCount = n) }),
    assignmentsSection({ client, exam }),
  );
}
