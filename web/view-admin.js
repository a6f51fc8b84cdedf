// @ts-check
/**
 * Administration, for ADMIN users (app.js routes `#/admin…` here):
 *
 *   #/admin               the landing page: Users, Exams, Integrations
 *   #/admin/users         accounts: list, search, create, deactivate,
 *                         data export and erasure                        (admin-users.js,
 *                                                                         admin-privacy.js)
 *   #/admin/exams         every exam                                     (admin-exams.js)
 *   #/admin/exams/new     create an exam                                 (admin-exams.js)
 *   #/admin/exam/<id>     one exam: details, publish/archive, questions,
 *                         candidates                                     (admin-exam.js)
 *   #/admin/integrations  webhook endpoints: list, register (the secret
 *                         shown once), ping, disable/enable, delete      (admin-webhooks.js)
 *   #/admin/integrations/<id>  one endpoint and its deliveries           (admin-webhook.js)
 *
 * app.js passes only the segment after "admin"; deeper paths are read from the hash here.
 */
import { h } from "./ui.js";
import { showAdmin } from "./admin-form.js";
import { usersView } from "./admin-users.js";
import { examsView, newExamView } from "./admin-exams.js";
import { examAdminView } from "./admin-exam.js";
import { webhooksView } from "./admin-webhooks.js";
import { webhookView } from "./admin-webhook.js";

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
  if (what === "integrations" && id) return webhookView(ctx, id);
  if (what === "integrations") return webhooksView(ctx);
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
    h("p", { class: "lead" }, "Set up the people, the exams and the systems the hub reports to. Watching candidates live and reviewing sessions start from the exams list."),
    h(
      "ul",
      { class: "landing" },
      card(
        "Users",
        "#/admin/users",
        "Create accounts for candidates, proctors and administrators; find, deactivate and reactivate them; export or erase a person's data.",
      ),
      card("Exams", "#/admin/exams", "Write exams and their questions, assign candidates, publish and archive."),
      card(
        "Integrations",
        "#/admin/integrations",
        "Send sessions, reviews and scores to other systems as signed webhooks; follow every delivery and send again.",
      ),
    ),
  );
}
