// The system check's device probes (check-devices.js) with fake mediaDevices: which device
// failed when the joint request fails (without prompting again after a refusal), the test
// screen share is read and stopped, and what counts as browser support.
import { test } from "node:test";
import assert from "node:assert/strict";
import { openCameraAndMicrophone, testScreenShare, browserSupport } from "../check-devices.js";
import { deviceVerdict, screenVerdict } from "../check-verdicts.js";

class FakeTrack {
  constructor(kind, label, settings = {}) {
    this.kind = kind;
    this.label = label;
    this.settings = settings;
    this.readyState = "live";
  }
  getSettings() {
    return this.settings;
  }
  stop() {
    this.readyState = "ended";
  }
}

class FakeStream {
  constructor(tracks) {
    this.tracks = tracks;
  }
  getTracks() {
    return this.tracks;
  }
  getVideoTracks() {
    return this.tracks.filter((t) => t.kind === "video");
  }
  getAudioTracks() {
    return this.tracks.filter((t) => t.kind === "audio");
  }
}

const domError = (name) => Object.assign(new Error(`${name} happened`), { name });

/**
 * mediaDevices whose camera and microphone each either work or fail with an error name; a
 * request for both fails with the first failure, as browsers do.
 */
function fakeDevices({ camera = null, microphone = null } = {}) {
  const calls = [];
  return {
    calls,
    async getUserMedia(constraints) {
      const wants = [constraints.video ? "camera" : null, constraints.audio ? "microphone" : null].filter(Boolean);
      calls.push(wants.join("+"));
      const failures = { camera, microphone };
      const failing = wants.find((w) => failures[w]);
      if (failing) throw domError(failures[failing]);
      return new FakeStream(
        wants.map((w) => (w === "camera" ? new FakeTrack("video", "Built-in Camera") : new FakeTrack("audio", "Built-in Microphone"))),
      );
    },
  };
}

/** navigator.permissions answering from a table. */
const fakePermissions = (states) => ({
  async query({ name }) {
    if (!(name in states)) throw new TypeError(`unknown permission ${name}`);
    return { state: states[name] };
  },
});

test("both devices work: one request, both tracks, both pass", async () => {
  const devices = fakeDevices();
  const { camera, microphone } = await openCameraAndMicrophone(devices, undefined);
  assert.deepEqual(devices.calls, ["camera+microphone"], "one request, so one permission prompt");
  assert.equal(camera.label, "Built-in Camera");
  assert.equal(camera.track.kind, "video");
  assert.equal(microphone.track.kind, "audio");
  assert.equal(deviceVerdict("camera", camera).state, "passed");
});

test("no camera: the microphone is still opened on its own and the camera gets the blame", async () => {
  const devices = fakeDevices({ camera: "NotFoundError" });
  const { camera, microphone } = await openCameraAndMicrophone(devices, undefined);
  assert.deepEqual(devices.calls, ["camera+microphone", "camera", "microphone"]);
  assert.equal(camera.errorName, "NotFoundError");
  assert.equal(camera.track, undefined);
  assert.equal(microphone.label, "Built-in Microphone");
  assert.match(deviceVerdict("camera", camera).text, /No camera was found/);
  assert.equal(deviceVerdict("microphone", microphone).state, "passed");
});

test("microphone in use by another program: only the microphone is a problem", async () => {
  const devices = fakeDevices({ microphone: "NotReadableError" });
  const { camera, microphone } = await openCameraAndMicrophone(devices, undefined);
  assert.equal(camera.label, "Built-in Camera");
  assert.equal(microphone.errorName, "NotReadableError");
  assert.match(deviceVerdict("microphone", microphone).text, /microphone is in use/);
});

test("after a refusal it does not prompt again: the Permissions API says which one was refused", async () => {
  const devices = fakeDevices({ camera: "NotAllowedError" });
  const { camera, microphone } = await openCameraAndMicrophone(devices, fakePermissions({ camera: "denied", microphone: "granted" }));
  assert.deepEqual(devices.calls, ["camera+microphone", "microphone"], "only the allowed device is asked for again");
  assert.equal(camera.errorName, "NotAllowedError");
  assert.equal(microphone.label, "Built-in Microphone");
});

test("a refusal where the browser cannot say which device: both are reported refused, no new prompt", async () => {
  const devices = fakeDevices({ camera: "NotAllowedError", microphone: "NotAllowedError" });
  const { camera, microphone } = await openCameraAndMicrophone(devices, fakePermissions({}));
  assert.deepEqual(devices.calls, ["camera+microphone"]);
  assert.equal(camera.errorName, "NotAllowedError");
  assert.equal(microphone.errorName, "NotAllowedError");
  assert.match(deviceVerdict("microphone", microphone).text, /microphone was refused/);
});

test("no mediaDevices (an insecure page or an old browser): Unsupported for both", async () => {
  const { camera, microphone } = await openCameraAndMicrophone(undefined, undefined);
  assert.equal(camera.errorName, "Unsupported");
  assert.equal(microphone.errorName, "Unsupported");
});

/** getDisplayMedia that shares a surface of the given kind (or fails). */
function fakeDisplay(result) {
  const asked = [];
  const tracks = [];
  return {
    asked,
    tracks,
    async getDisplayMedia(constraints) {
      asked.push(constraints);
      if (result instanceof Error) throw result;
      const track = new FakeTrack("video", "screen:0", result === undefined ? {} : { displaySurface: result });
      tracks.push(track);
      return new FakeStream([track]);
    },
  };
}

test("the test share reads the shared surface and always stops the share", async () => {
  const monitor = fakeDisplay("monitor");
  assert.deepEqual(await testScreenShare(monitor), { surface: "monitor" });
  assert.equal(monitor.tracks[0].readyState, "ended", "the test share does not stay on");
  assert.equal(monitor.asked[0].video.displaySurface, "monitor", "asks the picker to preselect the entire screen");
  assert.equal(monitor.asked[0].audio, false);

  const window = fakeDisplay("window");
  const shared = await testScreenShare(window);
  assert.deepEqual(shared, { surface: "window" });
  assert.equal(window.tracks[0].readyState, "ended");
  assert.equal(screenVerdict(shared).state, "problem");

  assert.deepEqual(await testScreenShare(fakeDisplay(undefined)), {}, "the browser does not say");
});

test("a cancelled share, and a browser without getDisplayMedia", async () => {
  const cancelled = await testScreenShare(fakeDisplay(domError("NotAllowedError")));
  assert.equal(cancelled.errorName, "NotAllowedError");
  assert.match(screenVerdict(cancelled).text, /cancelled or refused/);
  assert.deepEqual(await testScreenShare({}), { unsupported: true });
  assert.deepEqual(await testScreenShare(undefined), { unsupported: true });
});

test("browser support: storage must really work, not just exist", () => {
  const good = new Map();
  const storage = {
    setItem: (k, v) => good.set(k, v),
    getItem: (k) => good.get(k) ?? null,
    removeItem: (k) => good.delete(k),
  };
  assert.deepEqual(
    browserSupport({ RTCPeerConnection: class {}, localStorage: /** @type {any} */ (storage), document: { fullscreenEnabled: true } }),
    { webrtc: true, localStorage: true, fullscreen: true },
  );
  assert.equal(good.size, 0, "the probe cleans up after itself");

  const full = { ...storage, setItem: () => { throw domError("QuotaExceededError"); } };
  assert.deepEqual(browserSupport({ localStorage: /** @type {any} */ (full), document: {} }), {
    webrtc: false,
    localStorage: false,
    fullscreen: false,
  });
  const blocked = {
    get localStorage() {
      throw domError("SecurityError");
    },
  };
  assert.equal(browserSupport(/** @type {any} */ (blocked)).localStorage, false, "access itself may throw");
});
