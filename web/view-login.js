// @ts-check
/** The login form, for every role. */
import { h, show, errorText } from "./ui.js";

/**
 * @param {import("./app.js").ViewContext} ctx
 * @param {string} next the hash to open after logging in ("" = the role's start page)
 */
export function loginView({ client, go }, next) {
  const email = h("input", { id: "login-email", type: "email", name: "email", autocomplete: "username", required: true });
  const password = h("input", {
    id: "login-password",
    type: "password",
    name: "password",
    autocomplete: "current-password",
    required: true,
  });
  const error = h("p", { class: "form-error", role: "alert" });
  const submit = h("button", { type: "submit", class: "primary" }, "Log in");
  const form = h(
    "form",
    {
      class: "card narrow",
      onsubmit: async (/** @type {SubmitEvent} */ e) => {
        e.preventDefault();
        error.textContent = "";
        submit.disabled = true;
        submit.textContent = "Logging in…";
        try {
          await client.login(email.value.trim(), password.value);
          go(next || "#/exams");
        } catch (err) {
          const e2 = /** @type {any} */ (err);
          error.textContent =
            e2.code === "INVALID_CREDENTIALS"
              ? "That email and password do not match an account."
              : e2.code === "RATE_LIMITED"
                ? `Too many attempts from this computer. Try again in ${Math.ceil(e2.retryAfter || 60)} seconds.`
                : errorText(err);
          submit.disabled = false;
          submit.textContent = "Log in";
          password.select();
        }
      },
    },
    h("div", { class: "field" }, h("label", { for: "login-email" }, "Email"), email),
    h("div", { class: "field" }, h("label", { for: "login-password" }, "Password"), password),
    error,
    submit,
  );
  show("Log in", h("h1", {}, "Log in"), h("p", { class: "lead" }, "Sign in to take or supervise an exam."), form);
  // The heading took focus for screen readers; the form is what a person wants first.
  email.focus();
}
