// @ts-check
/**
 * What the staff views add to the {@link HubSocket}: watching an exam across reconnects (the
 * socket rejoins rooms by itself, but a `watch` belongs to the old connection and must be sent
 * again after every `authed`), and the connection pill.
 */
import { h } from "./ui.js";

/** @typedef {import("./hub-client.js").HubSocket} HubSocket */

/**
 * Watches `examId` now (if open) and after every reconnect.
 * @param {HubSocket} socket
 * @param {string} examId
 * @returns {() => void} stops watching
 */
export function watchExam(socket, examId) {
  const off = socket.on("authed", () => socket.send({ type: "watch", examId }));
  socket.send({ type: "watch", examId });
  return () => {
    off();
    socket.send({ type: "unwatch", examId });
  };
}

const PILL = {
  idle: ["Connecting…", "connecting"],
  connecting: ["Connecting…", "connecting"],
  open: ["Live", "open"],
  reconnecting: ["Reconnecting…", "reconnecting"],
  stopped: ["Disconnected", "stopped"],
};

/**
 * The "Live / Reconnecting… / Disconnected" pill (app.css `.pill[data-state]`), announced
 * politely when it changes.
 * @param {HubSocket} socket
 * @returns {HTMLElement}
 */
export function connectionPill(socket) {
  const pill = h("p", { class: "pill", role: "status", "data-state": "connecting" }, "Connecting…");
  const render = () => {
    const [text, key] = !navigator.onLine && socket.state !== "open" ? ["Offline", "offline"] : PILL[socket.state];
    if (pill.textContent !== text) pill.textContent = text;
    pill.dataset.state = key;
  };
  socket.on("state", render);
  render();
  return pill;
}
