// @ts-check
/**
 * "Pair your phone": the phone is the exam's second camera. The laptop asks for a one-time
 * pairing link (`POST /sessions/{id}/pairing`), shows it as a QR code and as text; when a phone
 * claims it, the hub sends `pairing-claimed` with a six-digit code that the phone shows too, so
 * the candidate can tell their own phone from someone else's and reject a stranger
 * (`pairing-reject`).
 */
import { h, formatTime, errorText } from "./ui.js";

/**
 * @param {import("./hub-client.js").HubClient} client
 * @param {import("./hub-client.js").HubSocket} socket
 * @param {string} sessionId
 * @returns {{el: HTMLElement, claimed: (msg: import("./hub-client.js").PairingClaimedMessage) => void}}
 */
export function pairingPanel(client, socket, sessionId) {
  const body = h("div", { class: "pairing-body", "aria-live": "polite" });
  const el = h(
    "section",
    { class: "card pairing", "aria-labelledby": "pairing-title" },
    h("h2", { id: "pairing-title" }, "Pair your phone"),
    body,
  );

  const idle = (/** @type {string} */ note = "") =>
    body.replaceChildren(
      note ? h("p", { class: "note" }, note) : "",
      h("p", {}, "Your phone is the exam's second camera. Place it where it can see you and your desk."),
      h("button", { type: "button", class: "secondary", onclick: requestCode }, "Show the pairing code"),
    );

  async function requestCode() {
    body.replaceChildren(h("p", {}, "Getting a pairing code…"));
    try {
      const p = await client.pairing(sessionId);
      body.replaceChildren(
        h("p", {}, "Scan this code with your phone's camera, or open the link on your phone."),
        h("img", {
          class: "qr",
          src: `data:image/svg+xml;charset=utf-8,${encodeURIComponent(p.qrSvg)}`,
          alt: "QR code that opens the pairing link on your phone",
          width: 200,
          height: 200,
        }),
        h("p", { class: "pair-link" }, h("span", { class: "visually-hidden" }, "Pairing link: "), p.pairingUrl),
        h("p", { class: "hint" }, `The code works once, until ${formatTime(p.expiresAt)}.`),
        h("button", { type: "button", class: "secondary", onclick: requestCode }, "Make a new pairing code"),
      );
    } catch (e) {
      body.replaceChildren(
        h("p", { class: "form-error", role: "alert" }, `No pairing code: ${errorText(e)}`),
        h("button", { type: "button", class: "secondary", onclick: requestCode }, "Try again to get a pairing code"),
      );
    }
  }

  /** @param {import("./hub-client.js").PairingClaimedMessage} msg */
  function claimed(msg) {
    const code = msg.confirmCode.replace(/^(\d{3})(\d{3})$/, "$1 $2");
    const reject = h(
      "button",
      {
        type: "button",
        class: "danger",
        onclick: () => {
          if (socket.rejectPairing()) idle("The phone was disconnected. Pair your own phone again.");
          else reject.after(h("p", { class: "form-error", role: "alert" }, "Not connected to the hub: try again in a moment."));
        },
      },
      "This is not my phone — disconnect it",
    );
    body.replaceChildren(
      h("p", { class: "ok-text" }, "A phone is connected."),
      h("p", {}, "Check that your phone shows this code:"),
      h("p", { class: "confirm-code", "aria-label": `Code ${msg.confirmCode.split("").join(" ")}` }, code),
      h("p", { class: "hint" }, "If it shows a different code, or you did not scan the code just now, disconnect it."),
      reject,
    );
  }

  idle();
  return { el, claimed };
}
