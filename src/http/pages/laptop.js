// The laptop page (served as /app/laptop.js; no inline script, so the pages run under a strict CSP).
"use strict";
window.pcs = [];
async function start(token, room, opts) {
  let conn;
  conn = await Hub.connect(token, { signal: Hub.signalHandler(() => conn) });
  const joined = await Hub.join(conn, room);
  const cam = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: true });
  let screen;
  if (opts.screen === "display") {
    try { screen = (await navigator.mediaDevices.getDisplayMedia({ video: true })).getVideoTracks()[0]; } catch (e) { Hub.log("no screen capture", String(e)); }
  }
  if (!screen) screen = Hub.canvasTrack("screen");
  for (const t of [cam.getVideoTracks()[0], screen]) {
    const v = document.createElement("video");
    v.muted = true; v.autoplay = true; v.srcObject = new MediaStream([t]);
    document.getElementById("previews").appendChild(v);
  }
  const tracks = [
    { track: cam.getVideoTracks()[0], source: "camera", simulcast: opts.simulcast === "1" },
    { track: screen, source: "screen" },
    { track: cam.getAudioTracks()[0], source: "microphone" },
  ];
  let pc = await Hub.publish(conn, room, joined, tracks);
  window.pcs.push(pc);
  // The relay closed the connection on its own (ICE or DTLS lost): publish again.
  conn.onMediaClosed = async () => {
    pc.close();
    window.pcs = window.pcs.filter((x) => x !== pc);
    pc = await Hub.publish(conn, room, joined, tracks);
    window.pcs.push(pc);
    Hub.log("publishing again");
  };
  window.ready = true;
  Hub.log("publishing");
}
const p = Hub.params();
if (p.token && p.room) start(p.token, p.room, p).catch((e) => Hub.log("failed", String(e)));
document.getElementById("login").onsubmit = async (e) => {
  e.preventDefault();
  const token = await Hub.login(document.getElementById("email").value, document.getElementById("password").value);
  start(token, document.getElementById("room").value, p).catch((e) => Hub.log("failed", String(e)));
};
