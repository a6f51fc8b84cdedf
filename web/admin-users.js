// @ts-check
/**
 * `#/admin/users`: the accounts. A list in pages (`nextCursor`, "Show more users"), filtered
 * by role and searched by part of a name or email (`GET /users?role=&q=`); a form to create
 * one; deactivate (which logs the person out everywhere, so it asks first) and reactivate;
 * download a person's data export, and erase their personal data (admin-privacy.js). An erased
 * user stays in the list as "Erased user", with only the export left to do.
 */
import { h, modal } from "./ui.js";
import { listUsers, createUser, setUserActive } from "./admin-api.js";
import { breadcrumb, busy, field, markInvalidField, select, showError, showAdmin } from "./admin-form.js";
import { exportButton, eraseButton } from "./admin-privacy.js";
import { isErased } from "./admin-privacy-rules.js";

/** @typedef {import("./admin-api.js").AdminUser} AdminUser */

export const ROLE_NAMES = /** @type {Record<string, string>} */ ({
  CANDIDATE: "Candidate",
  PROCTOR: "Proctor",
  ADMIN: "Administrator",
});

/** @param {import("./app.js").ViewContext} ctx */
export function usersView({ client }) {
  const me = client.user?.id;
  /** @type {{role: string, q: string, cursor: string | null}} */
  const filter = { role: "", q: "", cursor: null };

  /** what the list shows (counts, loading) */
  const count = h("p", { class: "hint", role: "status" });
  /** what the last action did */
  const status = h("p", { class: "status-msg", role: "status" });
  const listError = h("p", { class: "form-error", role: "alert" });
  const tbody = h("tbody");
  const table = h(
    "table",
    { class: "table users-table stack-table" },
    h("caption", { class: "visually-hidden" }, "Users"),
    h("thead", {}, h("tr", {}, ["Name", "Email", "Role", "Status", "Actions"].map((t) => h("th", { scope: "col" }, t)))),
    tbody,
  );
  const more = h("button", { type: "button", class: "secondary", hidden: true, onclick: () => load(true) }, "Show more users");

  // --- search and filter ---
  const q = h("input", { type: "search", name: "q", autocomplete: "off", maxLength: 100 });
  const role = select(
    [["", "All roles"], ["CANDIDATE", "Candidates"], ["PROCTOR", "Proctors"], ["ADMIN", "Administrators"]],
    "",
    { name: "role", onchange: () => search() },
  );
  const searchForm = h(
    "form",
    {
      class: "filters",
      role: "search",
      "aria-label": "Find users",
      onsubmit: (/** @type {SubmitEvent} */ e) => {
        e.preventDefault();
        search();
      },
    },
    field("Search by name or email", q),
    field("Role", role),
    h("button", { type: "submit", class: "secondary" }, "Search users"),
  );

  function search() {
    status.textContent = "";
    filter.q = q.value.trim();
    filter.role = role.value;
    load(false);
  }

  /** @param {boolean} append the next page, or the first page again */
  async function load(append) {
    showError(listError, null);
    count.textContent = append ? "Loading more users…" : "Loading users…";
    try {
      const page = await listUsers(client, { role: filter.role, q: filter.q, cursor: append ? filter.cursor : null });
      if (!append) tbody.replaceChildren();
      const rows = page.items.map((u) => row(u));
      tbody.append(...rows);
      // "Show more" hides itself on the last page: keep the keyboard on the first new row.
      if (append) /** @type {HTMLElement | null} */ (rows[0]?.querySelector("button"))?.focus();
      filter.cursor = page.nextCursor;
      more.hidden = !page.nextCursor;
      const shown = tbody.rows.length;
      count.textContent =
        shown === 0
          ? filter.q || filter.role
            ? "No user matches this search."
            : "No users yet."
          : `${shown} user${shown === 1 ? "" : "s"} shown${page.nextCursor ? " — more below" : ""}.`;
      table.hidden = shown === 0;
    } catch (e) {
      count.textContent = "";
      showError(listError, e, "The users could not be loaded.");
    }
  }

  /**
   * @param {AdminUser} user
   * @param {boolean} [fresh] just created: marked so the admin sees where it went
   * @returns {HTMLTableRowElement}
   */
  function row(user, fresh = false) {
    const erased = isErased(user);
    const self = user.id === me;
    const tr = h(
      "tr",
      { class: fresh ? "fresh" : "", "data-user": user.id, "data-erased": erased ? "true" : null },
      h("td", { "data-label": "Name" }, user.name, fresh ? h("span", { class: "badge info new" }, "New") : null),
      h("td", { "data-label": "Email", class: "user-email" }, user.email),
      h("td", { "data-label": "Role" }, ROLE_NAMES[user.role] || user.role),
      h(
        "td",
        { "data-label": "Status" },
        erased
          ? h("span", { class: "badge muted" }, "Erased")
          : h("span", { class: `badge ${user.isActive ? "ok" : "muted"}` }, user.isActive ? "Active" : "Deactivated"),
      ),
      h(
        "td",
        { "data-label": "Actions" },
        h(
          "div",
          { class: "row-actions" },
          self ? h("span", { class: "hint" }, "You") : erased ? null : activeButton(user),
          exportButton({ client, user, status, error: listError }),
          self || erased
            ? null
            : eraseButton({
                client,
                user,
                status,
                erased: (updated) => {
                  const next = row(updated);
                  tr.replaceWith(next);
                  /** @type {HTMLElement | null} */ (next.querySelector("button"))?.focus();
                },
              }),
        ),
      ),
    );
    return tr;
  }

  /** @param {AdminUser} user */
  function activeButton(user) {
    const label = user.isActive ? "Deactivate" : "Reactivate";
    const button = h(
      "button",
      {
        type: "button",
        class: "secondary small",
        onclick: async () => {
          if (user.isActive) {
            const { result } = modal({
              title: `Deactivate ${user.name}?`,
              body: h(
                "p",
                {},
                `${user.email} is logged out everywhere at once and can no longer log in. ` +
                  "Their exams, answers and history stay. You can reactivate the account later.",
              ),
              buttons: [
                { label: "Keep the account active", value: "cancel" },
                { label: "Deactivate", value: "ok", danger: true },
              ],
              focus: "cancel",
            });
            if ((await result) !== "ok") return button.focus();
          }
          showError(listError, null);
          try {
            const updated = await busy(button, user.isActive ? "Deactivating…" : "Reactivating…", () =>
              setUserActive(client, user.id, !user.isActive),
            );
            const tr = row(updated);
            button.closest("tr")?.replaceWith(tr);
            status.textContent = `${updated.name} is ${updated.isActive ? "active again" : "deactivated"}.`;
            tr.querySelector("button")?.focus();
          } catch (e) {
            showError(listError, e, `${user.name} was not changed.`);
            button.focus();
          }
        },
      },
      label,
      h("span", { class: "visually-hidden" }, ` ${user.name}`),
    );
    return button;
  }

  // --- create ---
  const name = h("input", { type: "text", required: true, maxLength: 200, autocomplete: "off", "data-field": "name" });
  const email = h("input", { type: "email", required: true, maxLength: 320, autocomplete: "off", "data-field": "email" });
  const password = h("input", {
    type: "password",
    required: true,
    minLength: 8,
    maxLength: 256,
    autocomplete: "new-password",
    "data-field": "password",
  });
  const newRole = select(
    [["CANDIDATE", "Candidate"], ["PROCTOR", "Proctor"], ["ADMIN", "Administrator"]],
    "CANDIDATE",
    { "data-field": "role" },
  );
  const createError = h("p", { class: "form-error", role: "alert" });
  const createButton = h("button", { type: "submit", class: "primary" }, "Create user");
  const createForm = h(
    "form",
    {
      class: "card form-grid",
      "aria-labelledby": "create-user-title",
      // The hub's 422 names the field and the rule; the browser's bubbles would differ per browser.
      novalidate: true,
      onsubmit: async (/** @type {SubmitEvent} */ e) => {
        e.preventDefault();
        showError(createError, null);
        try {
          const user = await busy(createButton, "Creating…", () =>
            createUser(client, {
              name: name.value.trim(),
              email: email.value.trim(),
              password: password.value,
              role: /** @type {import("./admin-api.js").UserRole} */ (newRole.value),
            }),
          );
          createForm.reset();
          markInvalidField(createForm, null, createError);
          tbody.prepend(row(user, true));
          table.hidden = false;
          status.textContent = `Created ${user.name} (${ROLE_NAMES[user.role]}, ${user.email}).`;
          name.focus();
        } catch (err) {
          showError(createError, err, "The user was not created.");
          if (!markInvalidField(createForm, err, createError) && /** @type {any} */ (err).code === "EMAIL_TAKEN") {
            email.setAttribute("aria-invalid", "true");
            email.focus();
          }
        }
      },
    },
    h("h2", { id: "create-user-title" }, "Create a user"),
    field("Full name", name),
    field("Email", email),
    field("Password", password, "At least 8 characters. Give it to the person in a safe way."),
    field("Role", newRole),
    createError,
    h("div", { class: "button-row" }, createButton),
  );

  showAdmin(
    "Users",
    breadcrumb([["Administration", "#/admin"], ["Users", null]]),
    h("h1", {}, "Users"),
    h(
      "div",
      { class: "admin-columns" },
      h(
        "section",
        { class: "admin-main", "aria-labelledby": "users-list-title" },
        h("h2", { id: "users-list-title" }, "All users"),
        searchForm,
        count,
        status,
        listError,
        table,
        more,
      ),
      h("aside", { class: "admin-side" }, createForm),
    ),
  );
  load(false);
}
