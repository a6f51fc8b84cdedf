// @ts-check
/**
 * "Camera and screen": starts the {@link MediaPublisher} from a click (browsers share a screen
 * only in answer to a gesture), shows the camera preview, the state of the connection to the
 * relay, and what could not be shared, with a way to try again. Also the notice, shown when the
 * exam records media, that what is shared is recorded for review.
 */
import { MediaPublisher } from "./hub-client.js";
import { h } from "./ui.js";

const STATE_TEXT = {
  idle: "Not shared",
  negotiating: "Connecting to your proctor…",
  connected: "Shared with your proctor",
  retrying: "Connection lost — reconnecting…",
};

/**
 * @param {import("./hub-client.js").HubSocket} socket
 * @param {string} roomId
 * @param {boolean} [recorded] the session's `recordMedia`: say that what is shared is recorded
 * @returns {{el: HTMLElement, stop: () => void}}
 */
export function mediaPanel(socket, roomId, recorded = false) {
  const publisher = new MediaPublisher(socket, roomId);
  const status = h("p", { class: "media-state", "data-state": "idle", "aria-live": "polite" }, STATE_TEXT.idle);
  const problems = h("div", { class: "media-problems", "aria-live": "polite" });
  const preview = h("video", { class: "preview", muted: true, autoplay: true, playsInline: true, hidden: true, "aria-label": "Your camera" });
  const start = h(
    "button",
    {
      type: "button",
      class: "primary",
      onclick: async () => {
        start.disabled = true;
        problems.replaceChildren();
        const sources = await publisher.start();
        const cam = publisher.cameraStream();
        preview.hidden = !cam;
        preview.srcObject = cam;
        start.hidden = sources.length > 0;
        start.disabled = false;
      },
    },
    "Turn on camera and share screen",
  );

  /** @param {string} text */
  const problem = (text, /** @type {HTMLElement | null} */ action = null) =>
    problems.append(h("div", { class: "problem" }, h("p", { class: "form-error" }, text), action));
  const shareAgain = () =>
    h(
      "button",
      {
        type: "button",
        class: "secondary",
        onclick: async (/** @type {MouseEvent} */ e) => {
          const button = /** @type {HTMLButtonElement} */ (e.currentTarget);
          if (await publisher.shareScreen()) button.closest(".problem")?.remove();
        },
      },
      "Share your screen",
    );

  publisher.on("state", ({ state }) => {
    status.textContent = STATE_TEXT[state];
    status.dataset.state = state;
  });
  publisher.on("error", ({ source, message }) => {
    if (source === "screen") problem(`Your screen is not shared: ${message}`, shareAgain());
    else if (source === "camera") problem(`Your camera and microphone are not shared: ${message}`);
    else problem(`Sharing failed: ${message}`);
  });
  publisher.on("ended", ({ source }) => {
    if (source === "screen") problem("You stopped sharing your screen. Your proctor needs to see it.", shareAgain());
    else problem(`Your ${source} stopped. Check that no other program is using it.`);
  });

  const el = h(
    "section",
    { class: "card media", "aria-labelledby": "media-title" },
    h("h2", { id: "media-title" }, "Camera and screen"),
    h(
      "p",
      {},
      "Your proctor sees your camera and your screen and hears your microphone during the exam.",
      recorded ? " They are also recorded for later review." : null,
    ),
    preview,
    status,
    problems,
    start,
  );
  return { el, stop: () => publisher.stop() };
}

/**
 * The notice that an exam's media are recorded (the session's, or the exam's, `recordMedia`):
 * shown for the whole exam, and on the system check before it.
 * @returns {HTMLElement}
 */
export function recordingNotice() {
  return h(
    "p",
    { class: "recording-notice", role: "note", id: "recording-notice" },
    h("strong", {}, "Your camera, screen and phone camera are recorded. "),
    "While you take this exam, what your camera, microphone, screen and paired phone camera send is recorded, and exam staff may watch the recordings later when they review your exam.",
  );
}
