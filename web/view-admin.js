// @ts-check
/**
 * Administration, for ADMIN users (app.js routes `#/admin…` here):
 *
 *   #/admin               the landing page: Users, Exams
 *   #/admin/users         accounts: list, search, create, deactivate     (admin-users.js)
 *   #/admin/exams         every exam                                     (admin-exams.js)
 *   #/admin/exams/new     create an exam                                 (admin-exams.js)
 *   #/admin/exam/<id>     one exam: details, publish/archive, questions,
 *                         candidates                                     (admin-exam.js)
 *
 * app.js passes only the segment after "admin"; deeper paths are read from the hash here.
 */
import { h } from "./ui.js";
import { showAdmin } from "./admin-form.js";
import { usersView } from "./admin-users.js";
import { examsView, newExamView } from "./admin-exams.js";
import { examAdminView } from "./admin-exam.js";

/**
 * @param {string} hash e.g. "#/admin/exam/3f2a…"
 * @returns {string[]} the segments after "admin", decoded
 */
export function adminPath(hash) {
  const parts = hash.replace(/^#\/?/, "").split("/").filter(Boolean);
  return parts.slice(1).map((p) => {
    try {
      return decodeURIComponent(p);
    } catch {
      return p;
    }
  });
}

/** @param {import("./app.js").ViewContext} ctx */
export function adminView(ctx) {
  const [what = "", id = ""] = adminPath(location.hash);
  if (what === "users") return usersView(ctx);
  if (what === "exams" && id === "new") return newExamView(ctx);
  if (what === "exams") return examsView(ctx);
  if (what === "exam" && id) return examAdminView(ctx, id);
  return landing();
}

function landing() {
  /**
   * @param {string} title
   * @param {string} hash
   * @param {string} text
   */
  const card = (title, hash, text) =>
    h("li", {}, h("a", { class: "card landing-card", href: hash }, h("h2", {}, title), h("p", {}, text)));
  showAdmin(
    "Administration",
    h("h1", {}, "Administration"),
    h("p", { class: "lead" }, "Set up the people and the exams. Watching candidates live and reviewing sessions start from the exams list."),
    h(
      "ul",
      { class: "landing" },
      card("Users", "#/admin/users", "Create accounts for candidates, proctors and administrators; find, deactivate and reactivate them."),
      card("Exams", "#/admin/exams", "Write exams and their questions, assign candidates, publish and archive."),
    ),
  );
}
