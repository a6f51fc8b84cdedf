// The proctor page (served as /app/proctor.js; no inline script, so the pages run under a strict CSP).
"use strict";
window.pcs = [];
window.tiles = {};
function show(room, list) {
  const grid = document.getElementById("grid");
  const keep = new Set();
  for (const t of list) {
    const id = room + "/" + t.mid;
    keep.add(id);
    if (window.tiles[id]) continue;
    const fig = document.createElement("figure");
    const v = document.createElement("video");
    v.autoplay = true; v.muted = true; v.playsInline = true;
    v.srcObject = new MediaStream([t.track]);
    const cap = document.createElement("figcaption");
    cap.textContent = t.source + " · " + t.peerId.slice(0, 8) + " · room " + room.slice(0, 8);
    fig.append(v, cap);
    grid.appendChild(fig);
    window.tiles[id] = { fig, source: t.source, kind: t.track.kind };
  }
  for (const id of Object.keys(window.tiles)) {
    if (id.startsWith(room + "/") && !keep.has(id)) { window.tiles[id].fig.remove(); delete window.tiles[id]; }
  }
}
async function start(token, rooms, layer) {
  let conn;
  const subs = {};
  const subscribe = (room, joined) => {
    subs[room] = { joined, pc: Hub.subscribe(conn, room, joined, { layer }, (list) => show(room, list)) };
    window.pcs.push(subs[room].pc);
  };
  // The relay closed a room's connection on its own (ICE or DTLS lost): start it again.
  const error = (msg) => {
    const sub = msg.code === "MEDIA_CLOSED" && subs[msg.roomId];
    if (!sub) return;
    sub.pc.close();
    window.pcs = window.pcs.filter((pc) => pc !== sub.pc);
    show(msg.roomId, []);
    subscribe(msg.roomId, sub.joined);
  };
  conn = await Hub.connect(token, { signal: Hub.signalHandler(() => conn), error });
  for (const room of rooms) subscribe(room, await Hub.join(conn, room));
  window.ready = true;
}
const p = Hub.params();
if (p.token && p.rooms) start(p.token, p.rooms.split(","), p.layer || "high").catch((e) => Hub.log("failed", String(e)));
document.getElementById("login").onsubmit = async (e) => {
  e.preventDefault();
  const token = await Hub.login(document.getElementById("email").value, document.getElementById("password").value);
  start(token, document.getElementById("rooms").value.split(",").map((s) => s.trim()).filter(Boolean), document.getElementById("layer").value)
    .catch((e) => Hub.log("failed", String(e)));
};
