// The system check's verdicts (check-verdicts.js): from what was measured on the device to
// "passed" or "problem" with a fix, and when the candidate may continue.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  deviceVerdict,
  screenVerdict,
  connectionVerdict,
  browserVerdict,
  clockNote,
  formatDuration,
  median,
  readiness,
  continueAnywayText,
  joinList,
  relayVerdict,
  HIGH_RTT_MS,
  RELAY_TIMEOUT_MS,
} from "../check-verdicts.js";

test("a working device passes and names itself", () => {
  assert.deepEqual(deviceVerdict("camera", { label: "FaceTime HD Camera" }), {
    state: "passed",
    text: "Working: FaceTime HD Camera.",
  });
  assert.equal(deviceVerdict("microphone", { label: "" }).text, "Your microphone works.", "no label without permission details");
});

test("each getUserMedia failure says which device, what happened and how to fix it", () => {
  const denied = deviceVerdict("microphone", { errorName: "NotAllowedError" });
  assert.equal(denied.state, "problem");
  assert.match(denied.text, /microphone was refused/);
  assert.match(denied.fix ?? "", /Allow the microphone/);
  assert.match(denied.fix ?? "", /Privacy & Security → Microphone/);
  assert.match(denied.fix ?? "", /Check camera and microphone again/, "names the button that retries");

  const missing = deviceVerdict("camera", { errorName: "NotFoundError" });
  assert.match(missing.text, /No camera was found/);
  assert.match(missing.fix ?? "", /Connect a camera/);
  assert.equal(deviceVerdict("camera", { errorName: "OverconstrainedError" }).text, missing.text);

  const busy = deviceVerdict("camera", { errorName: "NotReadableError" });
  assert.match(busy.text, /camera is in use by another program/);
  assert.match(busy.fix ?? "", /video calls/);
  assert.equal(deviceVerdict("camera", { errorName: "TrackStartError" }).text, busy.text, "older Chrome's name");

  assert.match(deviceVerdict("camera", { errorName: "Unsupported" }).fix ?? "", /https:\/\//);
  const odd = deviceVerdict("camera", { errorName: "WeirdError", errorMessage: "driver crashed" });
  assert.equal(odd.state, "problem");
  assert.match(odd.text, /driver crashed/);

  const ended = deviceVerdict("camera", { ended: true, label: "cam" });
  assert.equal(ended.state, "problem", "a device that stopped is a problem even though it once worked");
  assert.match(ended.text, /stopped working/);
});

test("screen: a full screen passes; a window or a tab is a problem; refusals say how to retry", () => {
  assert.equal(screenVerdict({ surface: "monitor" }).state, "passed");
  const unknown = screenVerdict({});
  assert.equal(unknown.state, "passed", "a browser that does not say what was shared is given the benefit");
  assert.match(unknown.text, /choose your entire screen/);

  const window = screenVerdict({ surface: "window" });
  assert.equal(window.state, "problem");
  assert.match(window.text, /one window, not your entire screen/);
  assert.match(window.fix ?? "", /"Entire screen"/);
  assert.match(screenVerdict({ surface: "browser" }).text, /one browser tab/);

  const cancelled = screenVerdict({ errorName: "NotAllowedError" });
  assert.equal(cancelled.state, "problem");
  assert.match(cancelled.text, /cancelled or refused/);
  assert.match(cancelled.fix ?? "", /Screen Recording/);
  assert.match(screenVerdict({ errorName: "NotReadableError" }).fix ?? "", /Test screen sharing" again/);
  assert.match(screenVerdict({ unsupported: true }).text, /cannot share a screen/);
});

/** A connection result with some round trips. */
const measured = (roundTripsMs, offsetMs = 120) => ({ authed: true, roundTripsMs, offsetMs });

test("connection: passes with the median round trip; fails when very slow, not authenticated or unreachable", () => {
  const ok = connectionVerdict(measured([40, 35, 900, 38, 41]));
  assert.equal(ok.state, "passed", "one slow heartbeat does not fail the check");
  assert.match(ok.text, /Round trip 40 ms \(median of 5\)/);
  assert.match(ok.text, /clock agrees with the hub's/);

  const slow = connectionVerdict(measured([1500, 1300, 1400]));
  assert.equal(slow.state, "problem");
  assert.match(slow.text, /very slow\. Round trip 1400 ms/);
  assert.match(slow.fix ?? "", /Test the connection again/);
  assert.equal(connectionVerdict(measured([HIGH_RTT_MS])).state, "passed", "the threshold itself still passes");
  assert.equal(connectionVerdict(measured([HIGH_RTT_MS + 1])).state, "problem");

  const refused = connectionVerdict({ authed: false, stopReason: "unauthenticated", closeCode: 4500, roundTripsMs: [], offsetMs: null });
  assert.equal(refused.state, "problem");
  assert.match(refused.fix ?? "", /log in again/);

  const blocked = connectionVerdict({ authed: false, closeCode: 1006, roundTripsMs: [], offsetMs: null });
  assert.match(blocked.text, /could not open a live connection to the hub \(code 1006\)/);
  assert.match(blocked.fix ?? "", /firewall or proxy/);

  const silent = connectionVerdict({ authed: true, roundTripsMs: [], offsetMs: null });
  assert.equal(silent.state, "problem", "authed but no heartbeat answered");
});

test("the clock note: silent on small offsets, says behind/ahead and that it does not matter", () => {
  assert.equal(clockNote(null), "");
  assert.equal(clockNote(1999), "Your computer's clock agrees with the hub's.");
  assert.equal(clockNote(-1999), "Your computer's clock agrees with the hub's.");
  assert.equal(clockNote(185_000), "Your computer's clock is 3 min 5 s behind the hub's. That is fine: the exam timer follows the hub's clock.");
  assert.match(clockNote(-4_000), /4 s ahead of the hub's/);
  assert.match(connectionVerdict(measured([30], -7_200_000)).text, /2 h ahead of the hub's/);
});

test("formatDuration and median", () => {
  assert.deepEqual([4_000, 60_000, 185_000, 3_600_000, 3_660_000].map(formatDuration), ["4 s", "1 min", "3 min 5 s", "1 h", "1 h 1 min"]);
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.ok(Number.isNaN(median([])));
});

test("browser support: everything present passes; each missing feature is named with its reason", () => {
  assert.equal(browserVerdict({ webrtc: true, localStorage: true, fullscreen: true }).state, "passed");
  const noStorage = browserVerdict({ webrtc: true, localStorage: false, fullscreen: true });
  assert.equal(noStorage.state, "problem");
  assert.match(noStorage.text, /site storage, which keeps your answers safe/);
  assert.match(noStorage.fix ?? "", /private browsing/);
  assert.doesNotMatch(noStorage.fix ?? "", /Chrome/, "a browser setting, not another browser");
  const old = browserVerdict({ webrtc: false, localStorage: true, fullscreen: false });
  assert.match(old.text, /live video \(WebRTC\).* and full screen mode\./);
  assert.match(old.fix ?? "", /Chrome, Edge or Firefox/);
});

test("readiness: camera, microphone, screen, connection and relay must pass; browser support does not gate", () => {
  const all = { camera: "passed", microphone: "passed", screen: "passed", connection: "passed", relay: "passed" };
  assert.deepEqual(readiness(all), { ready: true, missing: [] });
  assert.deepEqual(readiness({ ...all, browser: "problem" }), { ready: true, missing: [] });
  assert.deepEqual(readiness({ ...all, screen: "waiting", connection: "checking" }), {
    ready: false,
    missing: ["screen", "connection"],
  });
  assert.deepEqual(readiness({ ...all, relay: "waiting" }), { ready: false, missing: ["relay"] });
  assert.deepEqual(readiness({}).missing, ["camera", "microphone", "screen", "connection", "relay"]);
});

test("'Continue anyway' says what is missing and what the proctor will see", () => {
  assert.equal(continueAnywayText([]), "");
  assert.equal(
    continueAnywayText(["camera", "screen"]),
    "Not passed yet: Camera and Screen sharing. If you continue anyway, your exam and its timer start now, and your proctor will see that your camera is off and your screen is not shared.",
  );
  assert.equal(
    continueAnywayText(["relay"]),
    "Not passed yet: Sending to your proctor. If you continue anyway, your exam and its timer start now, and your proctor will see that your camera and screen may not reach them.",
  );
  assert.equal(joinList(["a", "b", "c"]), "a, b and c");
  assert.equal(joinList(["a"]), "a");
  assert.equal(joinList([]), "");
});

test("relay: a connected camera passes and says how long it took", () => {
  assert.deepEqual(relayVerdict({ connected: true, stage: "media", ms: 1234 }), {
    state: "passed",
    text: "Your camera reached the hub's video relay in 1.2 s: your proctor will be able to see you. The test has stopped.",
  });
  assert.equal(relayVerdict({ connected: true, stage: "media" }).state, "passed", "without a duration too");
});

test("relay: media that never connects blames UDP and suggests another network", () => {
  assert.equal(RELAY_TIMEOUT_MS, 15_000);
  const v = relayVerdict({ connected: false, stage: "media", timedOut: true });
  assert.equal(v.state, "problem");
  assert.equal(v.text, "Your camera could not reach the hub's video relay within 15 s. The live connection works, but live video does not get through.");
  assert.match(v.fix ?? "", /UDP/);
  assert.match(v.fix ?? "", /another network/);
  assert.match(v.fix ?? "", /"Test sending again"/);
  const unavailable = relayVerdict({ connected: false, stage: "media", timedOut: true, message: "RELAY_UNAVAILABLE: no relay" });
  assert.match(unavailable.text, /not available right now/);
  assert.doesNotMatch(unavailable.fix ?? "", /UDP/, "the relay's fault, not the network's");
});

test("relay: each earlier stage that fails says what failed and what to do", () => {
  assert.match(relayVerdict({ connected: false, stage: "room", status: 404 }).text, /no test room for you/);
  assert.match(relayVerdict({ connected: false, stage: "room", status: 0 }).text, /could not be reached/);
  assert.match(relayVerdict({ connected: false, stage: "room", status: 503, message: "busy" }).text, /could not prepare the test: busy/);
  const socket = relayVerdict({ connected: false, stage: "socket", timedOut: true, closeCode: 1006 });
  assert.equal(socket.text, "The live connection for the test could not be opened within 15 s (code 1006).");
  assert.match(socket.fix ?? "", /WebSockets/);
  assert.match(relayVerdict({ connected: false, stage: "join", reason: "forbidden", closeCode: 4507 }).text, /refused the test room/);
  assert.match(relayVerdict({ connected: false, stage: "socket", reason: "unauthenticated" }).fix ?? "", /log in again/);
  const camera = relayVerdict({ connected: false, stage: "camera", message: "The device is in use by another program." });
  assert.equal(camera.text, "Your camera could not be opened for the test: The device is in use by another program.");
  for (const stage of /** @type {const} */ (["room", "socket", "join", "camera", "media"])) {
    const v = relayVerdict({ connected: false, stage });
    assert.equal(v.state, "problem", stage);
    assert.ok(v.fix, `${stage} has a fix`);
  }
});
