// @ts-check
/**
 * The app at /app: one page, hash routes, one view at a time.
 *
 *   #/login              log in (every role)
 *   #/exams              a candidate's exams, or the exams a proctor/admin can see
 *   #/check/<examId>     a candidate's system check before an exam      (view-check.js)
 *   #/exam/<examId>      a candidate takes (starts or resumes) an exam
 *   #/grid/<examId>      staff: the live grid of an exam's sessions   (view-grid.js)
 *   #/session/<id>       staff: one session, full view and actions    (view-session.js)
 *   #/review/<examId>    staff: the review queue, grading, decisions  (view-review.js)
 *   #/admin[/<what>]     admins: users, exams, questions, assignments (view-admin.js)
 *
 * Staff and admin views are loaded on first use (dynamic import), so a candidate's page loads
 * none of them.
 * A view is a function that renders into <main> and may return a cleanup function (sockets,
 * timers), which runs before the next view renders.
 */
import { HubClient } from "./hub-client.js";
import { h } from "./ui.js";
import { loginView } from "./view-login.js";
import { myExamsView } from "./view-my-exams.js";
import { examView } from "./view-exam.js";
import { staffView } from "./view-staff.js";

/** @typedef {{client: HubClient, go: (hash: string) => void, arg: string}} ViewContext */
/** @typedef {(ctx: ViewContext) => (void | (() => void) | Promise<void | (() => void)>)} View */

/** @type {Record<string, () => Promise<View>>} */
const STAFF_VIEWS = {
  grid: async () => (await import("./view-grid.js")).gridView,
  session: async () => (await import("./view-session.js")).sessionView,
  review: async () => (await import("./view-review.js")).reviewView,
};

const client = new HubClient();
/** @type {(() => void) | null} */
let cleanup = null;
/** bumped on every route change, so a slow view that finishes late does not keep its cleanup */
let generation = 0;

/** @param {string} hash */
function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

async function route() {
  const mine = ++generation;
  if (cleanup) {
    const done = cleanup;
    cleanup = null;
    done();
  }
  renderAccount();
  const [name = "", arg = ""] = location.hash.replace(/^#\/?/, "").split("/");
  const user = client.user;
  /** @type {View} */
  let view;
  if (!user) {
    // Come back to where the candidate was (a reload after the login expired mid-exam).
    const next = name && name !== "login" ? location.hash : "";
    view = (ctx) => loginView(ctx, next);
  } else if (name === "exam" && arg && user.role === "CANDIDATE") {
    view = examView;
  } else if (name === "check" && arg && user.role === "CANDIDATE") {
    view = (await import("./view-check.js")).checkView;
  } else if (name === "exams") {
    view = user.role === "CANDIDATE" ? myExamsView : staffView;
  } else if (STAFF_VIEWS[name] && user.role !== "CANDIDATE") {
    view = await STAFF_VIEWS[name]();
  } else if (name === "admin" && user.role === "ADMIN") {
    view = (await import("./view-admin.js")).adminView;
  } else {
    go("#/exams");
    return;
  }
  const result = await view({ client, go, arg: decodeURIComponent(arg) });
  if (typeof result === "function") {
    if (mine === generation) cleanup = result;
    else result();
  }
}

/** The header's account area: who is logged in, and the way out. */
function renderAccount() {
  const box = /** @type {HTMLElement} */ (document.getElementById("account"));
  const user = client.user;
  box.replaceChildren(
    ...(user
      ? [
          h("span", { class: "who" }, `${user.name} · ${roleName(user.role)}`),
          h(
            "button",
            {
              type: "button",
              class: "secondary small",
              onclick: async () => {
                await client.logout();
                go("#/login");
              },
            },
            "Log out",
          ),
        ]
      : []),
  );
}

/** @param {string} role */
function roleName(role) {
  return { CANDIDATE: "Candidate", PROCTOR: "Proctor", ADMIN: "Administrator" }[role] || role;
}

// The login ended under us (refresh token expired or revoked): back to the login, then here.
client.on("auth", ({ user, reason }) => {
  if (!user && reason === "expired") route();
});

// The skip link cannot be a plain #main link: the hash is the router's.
document.querySelector(".skip-link")?.addEventListener("click", (e) => {
  e.preventDefault();
  document.getElementById("main")?.focus();
});

window.addEventListener("hashchange", route);
route();
