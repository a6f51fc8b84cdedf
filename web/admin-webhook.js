// @ts-check
/**
 * `#/admin/integrations/<id>`: one webhook endpoint. Its status (with what to do when it is
 * failing or disabled), its address and events, its actions (test ping, disable/enable,
 * delete), and its deliveries, newest first: filtered by state, in pages ("Load more
 * deliveries"), each one expandable to its attempts and the JSON body sent, and redeliverable.
 * A delivery this page queued (a test ping, a redelivery) is watched until it is delivered or
 * failed, so its row changes by itself; "Refresh deliveries" reloads the list.
 */
import { h } from "./ui.js";
import { getWebhook, listDeliveries, getDelivery, redeliver } from "./admin-api.js";
import { breadcrumb, busy, select, showAdmin, showError, uid, field } from "./admin-form.js";
import { endpointActions, endpointBadge } from "./admin-webhooks.js";
import {
  STATE_FILTER,
  attemptResult,
  deliveryState,
  deliverySummary,
  endpointStatus,
  endpointTitle,
  eventLabel,
  formatStamp,
  isSettled,
  matchesFilter,
  prettyJson,
  watchDelay,
} from "./admin-webhook-rules.js";

/** @typedef {import("./admin-api.js").WebhookEndpoint} WebhookEndpoint */
/** @typedef {import("./admin-api.js").WebhookDelivery} WebhookDelivery */
/** @typedef {import("./admin-api.js").WebhookDeliveryDetail} WebhookDeliveryDetail */
/**
 * @typedef {object} DeliveryRow one delivery on the page
 * @property {HTMLLIElement} li
 * @property {WebhookDelivery} delivery the latest seen
 * @property {(d: WebhookDelivery | WebhookDeliveryDetail) => void} update
 * @property {() => boolean} expanded
 */

/** Rounds a watched delivery is looked at before the page stops (about 3 minutes). */
const WATCH_ROUNDS = 40;

/**
 * @param {import("./app.js").ViewContext} ctx
 * @param {string} endpointId
 * @returns {Promise<void | (() => void)>} the cleanup (stops the watches)
 */
export async function webhookView(ctx, endpointId) {
  const { client, go } = ctx;
  const trail = (/** @type {string} */ last) =>
    breadcrumb([["Administration", "#/admin"], ["Integrations", "#/admin/integrations"], [last, null]]);
  showAdmin("Webhook endpoint", trail("Endpoint"), h("h1", {}, "Webhook endpoint"), h("p", { role: "status" }, "Loading the endpoint…"));
  /** @type {WebhookEndpoint} */
  let endpoint;
  try {
    endpoint = await getWebhook(client, endpointId);
  } catch (e) {
    const error = h("p", { class: "form-error", role: "alert" });
    showError(error, e, "The endpoint could not be loaded.");
    showAdmin(
      "Webhook endpoint",
      trail("Endpoint"),
      h("h1", {}, "Webhook endpoint"),
      error,
      h(
        "div",
        { class: "button-row" },
        h("button", { type: "button", class: "primary", onclick: () => webhookView(ctx, endpointId) }, "Try again"),
        h("a", { class: "button-link", href: "#/admin/integrations" }, "Back to the integrations"),
      ),
    );
    return;
  }

  let alive = true;
  /** @type {Set<ReturnType<typeof setTimeout>>} */
  const timers = new Set();
  /** delivery ids being watched */
  const watching = new Set();
  /** @type {Map<string, DeliveryRow>} */
  const rows = new Map();
  /** @type {{state: string, cursor: string | null}} */
  const filter = { state: "", cursor: null };

  const status = h("p", { class: "status-msg", role: "status" });
  const actionError = h("p", { class: "form-error", role: "alert" });
  const heading = h("h1", {}, endpointTitle(endpoint));
  const badgeSlot = h("span", { class: "badge-slot" });
  const stateNote = h("div", { class: "endpoint-note" });
  const facts = h("dl", { class: "facts endpoint-facts" });
  const actions = h("div", { class: "button-row" });

  function renderEndpoint() {
    const s = endpointStatus(endpoint);
    heading.textContent = endpointTitle(endpoint);
    document.title = `${endpointTitle(endpoint)} — Proctor Hub`;
    badgeSlot.replaceChildren(endpointBadge(endpoint));
    stateNote.replaceChildren();
    if (s.state !== "active") {
      stateNote.append(h("p", { class: "notice", "data-tone": s.tone === "bad" ? "bad" : s.tone === "warn" ? "warn" : "info" }, s.detail));
    }
    facts.replaceChildren(
      h("dt", {}, "Address"),
      h("dd", {}, h("code", { class: "endpoint-url" }, endpoint.url)),
      h("dt", {}, "Events"),
      h("dd", {}, h("ul", { class: "event-list" }, endpoint.events.map((t) => h("li", {}, h("code", {}, t))))),
      h("dt", {}, "Status"),
      h("dd", {}, s.state === "active" ? s.detail : s.label),
      h("dt", {}, "Registered"),
      h("dd", {}, formatStamp(endpoint.createdAt)),
    );
    actions.replaceChildren(
      ...endpointActions({
        client,
        endpoint,
        status,
        error: actionError,
        changed: (updated) => {
          const wasEnabled = endpoint.enabled;
          endpoint = updated;
          renderEndpoint();
          /** @type {HTMLElement | null} */ (actions.querySelector(`[data-action="${updated.enabled ? "disable" : "enable"}"]`))?.focus();
          // Enabled again: what waited is due now; follow what the page shows of it.
          if (!wasEnabled && updated.enabled) {
            for (const r of rows.values()) if (r.delivery.state === "PENDING") watch(r.delivery.id);
          }
        },
        deleted: () => go("#/admin/integrations"),
        pinged: (deliveryId) => watch(deliveryId, "The test ping"),
      }),
    );
  }

  // --- deliveries ---
  const count = h("p", { class: "hint", role: "status" });
  const listError = h("p", { class: "form-error", role: "alert" });
  const list = h("ol", { class: "delivery-list", "aria-labelledby": "deliveries-title" });
  const more = h("button", { type: "button", class: "secondary", hidden: true, onclick: () => load(true) }, "Load more deliveries");
  const stateFilter = select(STATE_FILTER, "", {
    name: "state",
    onchange: () => {
      filter.state = stateFilter.value;
      load(false);
    },
  });
  const refresh = h("button", { type: "button", class: "secondary", onclick: () => load(false) }, "Refresh deliveries");

  /** @param {boolean} append */
  async function load(append) {
    showError(listError, null);
    count.textContent = append ? "Loading more deliveries…" : "Loading deliveries…";
    try {
      const page = await busy(append ? more : refresh, append ? "Loading…" : "Refreshing…", () =>
        listDeliveries(client, endpoint.id, { state: filter.state, cursor: append ? filter.cursor : null }),
      );
      if (!alive) return;
      if (!append) {
        list.replaceChildren();
        rows.clear();
      }
      const added = page.items.filter((d) => !rows.has(d.id)).map((d) => row(d));
      list.append(...added.map((r) => r.li));
      if (append) /** @type {HTMLElement | null} */ (added[0]?.li.querySelector("button"))?.focus();
      filter.cursor = page.nextCursor;
      more.hidden = !page.nextCursor;
      counted();
    } catch (e) {
      count.textContent = "";
      showError(listError, e, "The deliveries could not be loaded.");
    }
  }

  function counted() {
    const n = list.children.length;
    list.hidden = n === 0;
    count.textContent =
      n === 0
        ? filter.state
          ? `No ${deliveryState(filter.state).label.toLowerCase()} deliveries.`
          : "Nothing was sent to this endpoint yet. Send a test ping to try it."
        : `${n} deliver${n === 1 ? "y" : "ies"} shown, newest first${more.hidden ? "" : " — more below"}.`;
  }

  /**
   * @param {WebhookDelivery} first
   * @returns {DeliveryRow}
   */
  function row(first) {
    let delivery = first;
    const panelId = uid("delivery-detail");
    const head = h("div", { class: "delivery-head" });
    const summary = h("p", { class: "delivery-summary" });
    const panel = h("div", { class: "delivery-detail", id: panelId, hidden: true });
    const label = () => `${eventLabel(delivery.eventType)} of ${formatStamp(delivery.createdAt)}`;
    const toggle = h(
      "button",
      {
        type: "button",
        class: "secondary small",
        "aria-expanded": "false",
        "aria-controls": panelId,
        "data-action": "expand",
        onclick: () => {
          const open = toggle.getAttribute("aria-expanded") !== "true";
          setOpen(open);
          if (open) loadDetail();
        },
      },
    );
    const again = h(
      "button",
      {
        type: "button",
        class: "secondary small",
        "data-action": "redeliver",
        onclick: async () => {
          showError(listError, null);
          try {
            await busy(again, "Queuing…", () => redeliver(client, endpoint.id, delivery.id));
            status.textContent = `${label()} is queued again: it is sent now${endpoint.enabled ? "" : ", once the endpoint is enabled"}.`;
            update({ ...delivery, state: "PENDING", nextAttemptAt: null });
            watch(delivery.id, label());
          } catch (e) {
            showError(listError, e, `${label()} was not queued again.`);
          }
          again.focus();
        },
      },
    );
    const li = h(
      "li",
      { class: "card delivery", "data-delivery": delivery.id },
      head,
      summary,
      h("div", { class: "button-row" }, toggle, again),
      panel,
    );

    /** @param {boolean} open */
    function setOpen(open) {
      toggle.setAttribute("aria-expanded", String(open));
      panel.hidden = !open;
      renderButtons();
    }

    function renderButtons() {
      const open = toggle.getAttribute("aria-expanded") === "true";
      toggle.replaceChildren(
        open ? "Hide attempts and body" : "Show attempts and body",
        h("span", { class: "visually-hidden" }, ` of the ${label()}`),
      );
      again.replaceChildren("Redeliver", h("span", { class: "visually-hidden" }, ` the ${label()}`));
    }

    /** @param {WebhookDelivery | WebhookDeliveryDetail} d */
    function update(d) {
      delivery = {
        id: d.id,
        messageId: d.messageId,
        eventType: d.eventType,
        sessionId: d.sessionId,
        state: d.state,
        attempts: d.attempts,
        nextAttemptAt: d.nextAttemptAt,
        lastStatus: d.lastStatus,
        lastError: d.lastError,
        deliveredAt: d.deliveredAt,
        createdAt: d.createdAt,
      };
      const st = deliveryState(delivery.state);
      li.dataset.state = delivery.state;
      li.dataset.event = delivery.eventType;
      head.replaceChildren(
        h("h3", {}, delivery.eventType === "webhook.ping" ? "Test ping" : h("code", {}, delivery.eventType)),
        h("span", { class: `badge ${st.tone} delivery-state` }, st.label),
        h("span", { class: "hint delivery-time" }, `Created ${formatStamp(delivery.createdAt)}`),
      );
      summary.replaceChildren(deliverySummary(delivery));
      if (delivery.sessionId) summary.append(h("span", { class: "hint" }, " Session ", h("code", {}, delivery.sessionId), "."));
      renderButtons();
      if ("attemptsMade" in d) renderDetail(d);
      else if (toggle.getAttribute("aria-expanded") === "true") loadDetail();
    }

    async function loadDetail() {
      if (!panel.hasChildNodes()) panel.replaceChildren(h("p", { class: "hint", role: "status" }, "Loading the attempts…"));
      try {
        const d = await getDelivery(client, endpoint.id, delivery.id);
        if (alive) update(d);
      } catch (e) {
        const error = h("p", { class: "form-error", role: "alert" });
        showError(error, e, "The attempts could not be loaded.");
        panel.replaceChildren(error);
      }
    }

    /** @param {WebhookDeliveryDetail} d */
    function renderDetail(d) {
      const bodyId = uid("body");
      panel.replaceChildren(
        h("h4", {}, `Attempts (${d.attemptsMade.length})`),
        d.attemptsMade.length === 0
          ? h("p", { class: "hint" }, "No attempt yet.")
          : h(
              "ol",
              { class: "attempt-list" },
              d.attemptsMade.map((a, i) => {
                const r = attemptResult(a);
                return h(
                  "li",
                  { class: "attempt", "data-ok": String(r.ok) },
                  h("span", { class: `badge ${r.ok ? "ok" : "bad"}` }, r.ok ? "Accepted" : "Failed"),
                  h("span", {}, ` Attempt ${i + 1}, ${formatStamp(a.attemptedAt)}: ${r.text}`),
                  h("span", { class: "hint" }, ` (sent by ${a.node})`),
                );
              }),
            ),
        h("h4", { id: bodyId }, "Body sent (JSON)"),
        // Scrollable, so it takes the keyboard focus to scroll with the arrow keys.
        h("pre", { class: "json-body", tabindex: "0", role: "region", "aria-labelledby": bodyId }, h("code", {}, prettyJson(d.body))),
        h(
          "p",
          { class: "hint" },
          "Sent with the headers webhook-id ",
          h("code", {}, `msg_${d.messageId.replace(/-/g, "")}`),
          ", webhook-timestamp and webhook-signature.",
        ),
      );
    }

    update(first);
    /** @type {DeliveryRow} */
    const r = {
      li,
      update,
      expanded: () => toggle.getAttribute("aria-expanded") === "true",
      get delivery() {
        return delivery;
      },
    };
    rows.set(first.id, r);
    return r;
  }

  /**
   * Follows a delivery this page queued until it is delivered or failed: its row changes by
   * itself (a new one is put at the top when the filter shows it), and the outcome is said.
   * @param {string} deliveryId
   * @param {string} [what] named in the outcome ("The test ping"); nothing said without it
   */
  function watch(deliveryId, what) {
    if (watching.has(deliveryId)) return;
    watching.add(deliveryId);
    /** @param {number} round */
    const look = async (round) => {
      if (!alive) return;
      try {
        const d = await getDelivery(client, endpoint.id, deliveryId);
        if (!alive) return;
        const known = rows.get(d.id);
        if (known) known.update(d);
        else if (matchesFilter(d, filter.state)) {
          const r = row(d);
          list.prepend(r.li);
          counted();
        }
        if (isSettled(d)) {
          watching.delete(deliveryId);
          if (what) {
            status.textContent =
              d.state === "DELIVERED"
                ? `${what} was delivered${d.lastStatus != null ? ` (HTTP ${d.lastStatus})` : ""}.`
                : `${what} failed: the hub gave up after retrying for a day.`;
          }
          return;
        }
      } catch {
        // A blip: look again later; a lasting problem shows on "Refresh deliveries".
      }
      if (round + 1 >= WATCH_ROUNDS) {
        watching.delete(deliveryId);
        return;
      }
      const t = setTimeout(() => {
        timers.delete(t);
        look(round + 1);
      }, watchDelay(round));
      timers.add(t);
    };
    look(0);
  }

  renderEndpoint();
  showAdmin(
    endpointTitle(endpoint),
    trail(endpointTitle(endpoint)),
    h("div", { class: "page-head" }, heading, badgeSlot),
    stateNote,
    status,
    h(
      "section",
      { class: "admin-section card", "aria-labelledby": "endpoint-details-title" },
      h("h2", { id: "endpoint-details-title" }, "Endpoint"),
      facts,
      actionError,
      actions,
    ),
    h(
      "section",
      { class: "admin-section", "aria-labelledby": "deliveries-title" },
      h("h2", { id: "deliveries-title" }, "Deliveries"),
      h(
        "p",
        { class: "hint" },
        "Every message to this endpoint, newest first. One that cannot be delivered is retried with growing pauses " +
          "for a day, then given up (Failed). Redeliver sends one again now.",
      ),
      h("div", { class: "filters delivery-filters" }, field("State", stateFilter), refresh),
      count,
      listError,
      list,
      more,
    ),
  );
  await load(false);
  return () => {
    alive = false;
    for (const t of timers) clearTimeout(t);
    timers.clear();
  };
}
