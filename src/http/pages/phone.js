// The phone page (served as /app/phone.js; no inline script, so the pages run under a strict CSP).
"use strict";
window.pcs = [];
async function start() {
  const p = Hub.params();
  if (!p.t) throw new Error("open this page with a pairing token (/app/phone#t=…)");
  let fp = localStorage.getItem("fingerprint");
  if (!fp) { fp = "phone-" + Math.random().toString(36).slice(2); localStorage.setItem("fingerprint", fp); }
  const claimed = await Hub.api("/pairing/claim", { token: p.t, deviceFingerprint: fp });
  // The token is spent: keep it out of the history.
  history.replaceState(null, "", location.pathname);
  document.getElementById("status").textContent = "Paired. Confirm code: " + claimed.confirmCode;
  let conn;
  conn = await Hub.connect(claimed.accessToken, { signal: Hub.signalHandler(() => conn) });
  const joined = await Hub.join(conn, claimed.webrtcRoomId);
  const cam = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment", width: 640, height: 480 }, audio: false });
  document.getElementById("preview").srcObject = cam;
  const tracks = [{ track: cam.getVideoTracks()[0], source: "phone-camera" }];
  let pc = await Hub.publish(conn, claimed.webrtcRoomId, joined, tracks);
  window.pcs.push(pc);
  // The relay closed the connection on its own (ICE or DTLS lost): publish again.
  conn.onMediaClosed = async () => {
    pc.close();
    window.pcs = window.pcs.filter((x) => x !== pc);
    pc = await Hub.publish(conn, claimed.webrtcRoomId, joined, tracks);
    window.pcs.push(pc);
  };
  window.ready = true;
  Hub.log("publishing");
}
start().catch((e) => { document.getElementById("status").textContent = String(e); Hub.log("failed", String(e)); });
