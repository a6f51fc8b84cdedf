// @ts-check
/**
 * `#/admin/integrations`: the webhook endpoints. The list (each with its status — Active,
 * Failing since …, Disabled — and its actions: send a test ping, disable or enable, delete),
 * and the form that registers one. The signing secret comes back once, in the answer to the
 * registration: it is shown in a panel with a copy button until the admin hides it or leaves
 * the page, and never kept. One endpoint's page, with its deliveries, is admin-webhook.js.
 */
import { h, modal } from "./ui.js";
import { listWebhooks, createWebhook, updateWebhook, deleteWebhook, pingWebhook } from "./admin-api.js";
import { breadcrumb, busy, field, markInvalidField, showAdmin, showError, showProblems, uid } from "./admin-form.js";
import { EVENT_TYPES, LIMITS, endpointBody, endpointStatus, endpointTitle, formatStamp } from "./admin-webhook-rules.js";

/** @typedef {import("./admin-api.js").WebhookEndpoint} WebhookEndpoint */
/** @typedef {import("./admin-api.js").HubClient} HubClient */

/** @param {string} id */
export const endpointHash = (id) => `#/admin/integrations/${encodeURIComponent(id)}`;

/**
 * The status badge of an endpoint.
 * @param {WebhookEndpoint} e
 */
export function endpointBadge(e) {
  const s = endpointStatus(e);
  return h("span", { class: `badge ${s.tone} endpoint-status`, "data-state": s.state }, s.label);
}

/**
 * The actions on one endpoint, on the list and on its page: send a test ping (while enabled),
 * disable or enable, delete (after a confirmation that defaults to keeping it).
 * @param {object} o
 * @param {HubClient} o.client
 * @param {WebhookEndpoint} o.endpoint
 * @param {HTMLElement} o.status the page's role="status" region (what the last action did)
 * @param {HTMLElement} o.error the page's role="alert" region
 * @param {(e: WebhookEndpoint) => void} o.changed enabled or disabled: the new endpoint
 * @param {() => void} o.deleted
 * @param {(deliveryId: string) => void} o.pinged a test ping was queued
 * @returns {HTMLElement[]} the buttons
 */
export function endpointActions({ client, endpoint, status, error, changed, deleted, pinged }) {
  const title = endpointTitle(endpoint);
  const hidden = (/** @type {string} */ text) => h("span", { class: "visually-hidden" }, text);

  const ping = h(
    "button",
    {
      type: "button",
      class: "secondary small",
      "data-action": "ping",
      onclick: async () => {
        showError(error, null);
        try {
          const { deliveryId } = await busy(ping, "Sending…", () => pingWebhook(client, endpoint.id));
          status.textContent = `A test ping to ${title} was queued.`;
          pinged(deliveryId);
        } catch (e) {
          showError(error, e, "The test ping was not sent.");
        }
      },
    },
    "Send test ping",
    hidden(` to ${title}`),
  );

  const toggle = h(
    "button",
    {
      type: "button",
      class: "secondary small",
      "data-action": endpoint.enabled ? "disable" : "enable",
      onclick: async () => {
        showError(error, null);
        try {
          const updated = await busy(toggle, endpoint.enabled ? "Disabling…" : "Enabling…", () =>
            updateWebhook(client, endpoint.id, { enabled: !endpoint.enabled }),
          );
          status.textContent = updated.enabled
            ? `${title} is enabled again: the deliveries that waited are sent now.`
            : `${title} is disabled: nothing is sent to it, and new deliveries wait until it is enabled.`;
          changed(updated);
        } catch (e) {
          showError(error, e, `${title} was not changed.`);
          toggle.focus();
        }
      },
    },
    endpoint.enabled ? "Disable" : "Enable",
    hidden(` ${title}`),
  );

  const remove = h(
    "button",
    {
      type: "button",
      class: "danger small",
      "data-action": "delete",
      onclick: async () => {
        const { result } = modal({
          title: `Delete the endpoint “${title}”?`,
          body: [
            h("p", {}, `The hub stops sending to ${endpoint.url} and forgets every delivery to it, with their attempts.`),
            h("p", {}, "This cannot be undone. To stop sending for a while, disable the endpoint instead."),
          ],
          buttons: [
            { label: "Keep the endpoint", value: "cancel" },
            { label: "Delete endpoint", value: "ok", danger: true },
          ],
          focus: "cancel",
        });
        if ((await result) !== "ok") return remove.focus();
        showError(error, null);
        try {
          await busy(remove, "Deleting…", () => deleteWebhook(client, endpoint.id));
          status.textContent = `The endpoint ${title} was deleted.`;
          deleted();
        } catch (e) {
          showError(error, e, `${title} was not deleted.`);
          remove.focus();
        }
      },
    },
    "Delete…",
    hidden(` ${title}`),
  );

  return endpoint.enabled ? [ping, toggle, remove] : [toggle, remove];
}

/** @param {import("./app.js").ViewContext} ctx */
export function webhooksView({ client }) {
  /** @type {{cursor: string | null}} */
  const page = { cursor: null };
  const count = h("p", { class: "hint", role: "status" });
  const status = h("p", { class: "status-msg", role: "status" });
  const listError = h("p", { class: "form-error", role: "alert" });
  const list = h("ul", { class: "endpoint-list", "aria-labelledby": "endpoints-title" });
  const more = h("button", { type: "button", class: "secondary", hidden: true, onclick: () => load(true) }, "Show more endpoints");
  /** Where the signing secret shows, once, after a registration. */
  const secretSlot = h("div", { class: "secret-slot" });

  /** @param {boolean} append */
  async function load(append) {
    showError(listError, null);
    count.textContent = append ? "Loading more endpoints…" : "Loading endpoints…";
    try {
      const result = await listWebhooks(client, { cursor: append ? page.cursor : null });
      if (!append) list.replaceChildren();
      const items = result.items.map((e) => card(e));
      list.append(...items);
      if (append) /** @type {HTMLElement | null} */ (items[0]?.querySelector("a"))?.focus();
      page.cursor = result.nextCursor;
      more.hidden = !result.nextCursor;
      counted();
    } catch (e) {
      count.textContent = "";
      showError(listError, e, "The endpoints could not be loaded.");
    }
  }

  function counted() {
    const n = list.children.length;
    list.hidden = n === 0;
    count.textContent =
      n === 0
        ? "No endpoints yet. Register one to send events to another system."
        : `${n} endpoint${n === 1 ? "" : "s"}${more.hidden ? "" : " shown — more below"}.`;
  }

  /**
   * @param {WebhookEndpoint} e
   * @param {boolean} [fresh] just registered
   * @returns {HTMLLIElement}
   */
  function card(e, fresh = false) {
    const title = endpointTitle(e);
    const s = endpointStatus(e);
    const titleId = uid("endpoint");
    const li = h(
      "li",
      { class: `card endpoint${fresh ? " fresh" : ""}`, "data-endpoint": e.id, "data-state": s.state, "aria-labelledby": titleId },
      h(
        "div",
        { class: "endpoint-head" },
        h("h3", { id: titleId }, h("a", { href: endpointHash(e.id) }, title)),
        endpointBadge(e),
        fresh ? h("span", { class: "badge info new" }, "New") : null,
      ),
      h("p", { class: "endpoint-url" }, h("span", { class: "visually-hidden" }, "Address: "), h("code", {}, e.url)),
      h("p", { class: "hint" }, `Sends: ${e.events.join(", ")}. Registered ${formatStamp(e.createdAt)}.`),
      s.state === "active" ? null : h("p", { class: `endpoint-detail tone-${s.tone}` }, s.detail),
      h(
        "div",
        { class: "button-row" },
        endpointActions({
          client,
          endpoint: e,
          status,
          error: listError,
          changed: (updated) => {
            const next = card(updated);
            li.replaceWith(next);
            /** @type {HTMLElement | null} */ (next.querySelector(`[data-action="${updated.enabled ? "disable" : "enable"}"]`))?.focus();
          },
          deleted: () => {
            const sibling = /** @type {HTMLElement | null} */ (li.nextElementSibling || li.previousElementSibling);
            li.remove();
            counted();
            /** @type {HTMLElement | null} */ (sibling?.querySelector("a") || document.getElementById("endpoints-title"))?.focus();
          },
          pinged: () => {
            status.append(" ", h("a", { href: endpointHash(e.id) }, `Follow it in the deliveries of ${title}`), ".");
          },
        }),
        h("a", { class: "button-link small", href: endpointHash(e.id) }, "Deliveries", h("span", { class: "visually-hidden" }, ` of ${title}`)),
      ),
    );
    return li;
  }

  /**
   * The signing secret, shown once: copy it now, it will not be shown again.
   * @param {WebhookEndpoint} e
   * @param {string} secret
   */
  function showSecret(e, secret) {
    const title = endpointTitle(e);
    const value = h("input", {
      type: "text",
      id: "webhook-secret-value",
      class: "secret-value",
      readOnly: true,
      value: secret,
      spellcheck: "false",
      autocomplete: "off",
    });
    const copied = h("p", { class: "copy-status", role: "status" });
    const copy = h(
      "button",
      {
        type: "button",
        class: "primary",
        onclick: async () => {
          try {
            await navigator.clipboard.writeText(secret);
            copied.textContent = "Copied to the clipboard.";
          } catch {
            value.focus();
            value.select();
            copied.textContent = "This browser did not allow copying: the secret is selected, press Ctrl+C (⌘C on a Mac) to copy it.";
          }
        },
      },
      "Copy secret",
    );
    const heading = h("h2", { id: "webhook-secret-title", tabindex: "-1" }, `Signing secret for ${title}`);
    const panel = h(
      "section",
      { id: "webhook-secret", class: "secret-panel", "aria-labelledby": "webhook-secret-title" },
      heading,
      h("p", { class: "secret-warning" }, h("strong", {}, "Copy it now: it will not be shown again.")),
      h(
        "p",
        {},
        "Your receiver verifies each message's webhook-signature header with it (Standard Webhooks). " +
          "If it is lost, delete the endpoint and register it again.",
      ),
      h("div", { class: "secret-row" }, field("Signing secret", value), copy),
      copied,
      h(
        "button",
        {
          type: "button",
          class: "secondary",
          onclick: () => {
            value.value = "";
            panel.remove();
            status.textContent = "The signing secret is hidden; the hub will not show it again.";
            /** @type {HTMLElement | null} */ (list.querySelector(`[data-endpoint="${CSS.escape(e.id)}"] a`))?.focus();
          },
        },
        "I have stored it: hide the secret",
      ),
    );
    secretSlot.replaceChildren(panel);
    heading.focus();
  }

  // --- register ---
  const url = h("input", { type: "url", required: true, maxLength: LIMITS.url, autocomplete: "off", spellcheck: "false", "data-field": "url" });
  const description = h("input", { type: "text", maxLength: LIMITS.description, autocomplete: "off", "data-field": "description" });
  const secret = h("input", { type: "text", autocomplete: "off", spellcheck: "false", "data-field": "secret", class: "mono" });
  const boxes = EVENT_TYPES.map(({ type }) => h("input", { type: "checkbox", name: "events", value: type, id: uid("event") }));
  const events = h(
    "fieldset",
    { class: "event-choices", "data-field": "events", tabindex: "-1", "aria-describedby": "events-hint" },
    h("legend", {}, "Events to send"),
    h("p", { class: "hint", id: "events-hint" }, "Each ticked event is sent as it happens. A test ping can be sent whatever is ticked."),
    EVENT_TYPES.map(({ type, description: text }, i) =>
      h(
        "div",
        { class: "field check event-choice" },
        boxes[i],
        h("label", { for: boxes[i].id }, h("code", {}, type), h("span", { class: "event-desc" }, ` ${text}`)),
      ),
    ),
    h(
      "button",
      {
        type: "button",
        class: "secondary small",
        onclick: () => {
          const all = boxes.every((b) => b.checked);
          for (const b of boxes) b.checked = !all;
        },
      },
      "Tick or untick every event",
    ),
  );
  const createError = h("p", { class: "form-error", role: "alert" });
  const createButton = h("button", { type: "submit", class: "primary" }, "Register endpoint");
  const createForm = h(
    "form",
    {
      id: "webhook-create",
      class: "card form-grid",
      "aria-labelledby": "create-webhook-title",
      novalidate: true,
      onsubmit: async (/** @type {SubmitEvent} */ ev) => {
        ev.preventDefault();
        const { body, problems } = endpointBody({
          url: url.value,
          description: description.value,
          secret: secret.value,
          events: boxes.filter((b) => b.checked).map((b) => b.value),
        });
        showProblems(createForm, problems, createError, "The endpoint was not registered.");
        if (problems.length) return;
        try {
          const created = await busy(createButton, "Registering…", () => createWebhook(client, body));
          createForm.reset();
          const { secret: signing, ...endpoint } = created;
          list.append(card(endpoint, true));
          counted();
          status.textContent = `Registered ${endpointTitle(endpoint)}.`;
          showSecret(endpoint, signing);
        } catch (e) {
          showError(createError, e, "The endpoint was not registered.");
          markInvalidField(createForm, e, createError);
          const f = /** @type {{field?: string}} */ (e).field || "";
          if (f.startsWith("events")) boxes[0].focus();
        }
      },
    },
    h("h2", { id: "create-webhook-title" }, "Register an endpoint"),
    field(
      "Endpoint URL",
      url,
      "Where the hub POSTs each event: an https:// address of your system. Private and loopback addresses are refused.",
    ),
    field("Description (optional)", description, "What it is for, e.g. “Moodle gradebook”. It names the endpoint in these pages."),
    events,
    field(
      "Signing secret (optional)",
      secret,
      "Leave it empty and the hub makes one. Your own must be whsec_ followed by the base64 of 24 to 64 random bytes.",
    ),
    createError,
    h("div", { class: "button-row" }, createButton),
  );

  showAdmin(
    "Integrations",
    breadcrumb([["Administration", "#/admin"], ["Integrations", null]]),
    h("h1", {}, "Integrations"),
    h(
      "p",
      { class: "lead" },
      "Webhooks tell other systems (a learning platform, a gradebook) what happens in the hub as it happens: " +
        "the hub POSTs a signed JSON message to every endpoint subscribed to the event, and retries for a day when it cannot.",
    ),
    secretSlot,
    h(
      "div",
      { class: "admin-columns" },
      h(
        "section",
        { class: "admin-main", "aria-labelledby": "endpoints-title" },
        h("h2", { id: "endpoints-title", tabindex: "-1" }, "Webhook endpoints"),
        status,
        count,
        listError,
        list,
        more,
      ),
      h("aside", { class: "admin-side" }, createForm),
    ),
  );
  load(false);
  // Leaving the page forgets the secret with the panel (nothing else holds it).
  return () => secretSlot.replaceChildren();
}
