// @ts-check
/**
 * The system check's probes of this computer: camera and microphone (getUserMedia), a test
 * screen share (getDisplayMedia), the microphone's level (Web Audio), and the browser features
 * the exam relies on. They only measure; check-verdicts.js judges what they found.
 */
import { rms, toDbfs, barFraction, nextBarHeight } from "./check-level.js";

/**
 * What became of one device: `label` when it works, `errorName` (a DOMException name, or
 * "Unsupported") when not.
 * @typedef {{track?: MediaStreamTrack, label?: string, errorName?: string, errorMessage?: string}} DeviceOutcome
 */

/** The camera the exam asks for (MediaPublisher.start), so the check tests the same request. */
const VIDEO = { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { max: 30 } };

/**
 * @param {MediaStreamTrack | undefined} track
 * @returns {DeviceOutcome}
 */
function working(track) {
  return track ? { track, label: track.label } : { errorName: "NotFoundError" };
}

/**
 * @param {unknown} e
 * @returns {DeviceOutcome}
 */
function failed(e) {
  const err = /** @type {{name?: string, message?: string}} */ (e);
  return { errorName: err?.name || "Error", errorMessage: err?.message || String(e) };
}

/**
 * Asks for the camera and the microphone together (one permission prompt). When that fails,
 * the error does not say which device failed, so each is tried on its own — except after a
 * refusal, where asking again would prompt again: then the Permissions API says which one was
 * refused, and only a device already allowed is opened alone.
 * @param {MediaDevices | undefined} devices
 * @param {Permissions | undefined} [permissions]
 * @returns {Promise<{camera: DeviceOutcome, microphone: DeviceOutcome}>} working devices hold their track
 */
export async function openCameraAndMicrophone(devices, permissions = globalThis.navigator?.permissions) {
  if (!devices || typeof devices.getUserMedia !== "function") {
    return { camera: { errorName: "Unsupported" }, microphone: { errorName: "Unsupported" } };
  }
  try {
    const stream = await devices.getUserMedia({ video: VIDEO, audio: true });
    return { camera: working(stream.getVideoTracks()[0]), microphone: working(stream.getAudioTracks()[0]) };
  } catch (e) {
    const together = failed(e);
    /** @param {"camera" | "microphone"} device */
    const alone = async (device) => {
      if (together.errorName === "NotAllowedError" && (await permissionState(permissions, device)) !== "granted") {
        return together;
      }
      try {
        const stream = await devices.getUserMedia(device === "camera" ? { video: VIDEO } : { audio: true });
        return working(device === "camera" ? stream.getVideoTracks()[0] : stream.getAudioTracks()[0]);
      } catch (e2) {
        return failed(e2);
      }
    };
    // One after the other: some browsers show one prompt at a time.
    const camera = await alone("camera");
    const microphone = await alone("microphone");
    return { camera, microphone };
  }
}

/**
 * @param {Permissions | undefined} permissions
 * @param {"camera" | "microphone"} device
 * @returns {Promise<string>} "granted", "denied", "prompt", or "unknown" where the browser does not say
 */
async function permissionState(permissions, device) {
  try {
    if (!permissions) return "unknown";
    return (await permissions.query({ name: /** @type {PermissionName} */ (device) })).state;
  } catch {
    return "unknown";
  }
}

/**
 * Shares the screen once, reads what was shared, and stops the share at once: the check only
 * needs to know that a full screen can be shared. Call from a click (browsers allow a share only
 * in answer to a gesture).
 * @param {MediaDevices | undefined} devices
 * @returns {Promise<{surface?: string, errorName?: string, errorMessage?: string, unsupported?: boolean}>}
 */
export async function testScreenShare(devices) {
  if (!devices || typeof devices.getDisplayMedia !== "function") return { unsupported: true };
  /** @type {MediaStream} */
  let stream;
  try {
    // `displaySurface: "monitor"` only preselects "Entire screen" in the browser's picker.
    stream = await devices.getDisplayMedia({ video: { displaySurface: "monitor" }, audio: false });
  } catch (e) {
    return failed(e);
  }
  const track = stream.getVideoTracks()[0];
  const surface = track ? track.getSettings().displaySurface : undefined;
  for (const t of stream.getTracks()) t.stop();
  if (!track) return { errorName: "NotReadableError" };
  return surface ? { surface } : {};
}

/**
 * Feeds the microphone's level to `onLevel` once per animation frame until stopped. The
 * microphone goes to an AnalyserNode only, never to the speakers (no echo).
 * @param {MediaStreamTrack} track the microphone
 * @param {(level: {bar: number, db: number}) => void} onLevel `bar` 0..1 (smoothed), `db` the raw dBFS
 * @returns {() => void} stops the meter and closes its AudioContext
 */
export function watchLevel(track, onLevel) {
  const Ctx = globalThis.AudioContext || /** @type {any} */ (globalThis).webkitAudioContext;
  if (!Ctx) return () => {};
  /** @type {AudioContext} */
  const audio = new Ctx();
  const source = audio.createMediaStreamSource(new MediaStream([track]));
  const analyser = audio.createAnalyser();
  analyser.fftSize = 1024;
  source.connect(analyser);
  const samples = new Float32Array(analyser.fftSize);
  let shown = 0;
  let last = performance.now();
  let frame = requestAnimationFrame(draw);

  /** @param {number} t */
  function draw(t) {
    analyser.getFloatTimeDomainData(samples);
    const db = toDbfs(rms(samples));
    shown = nextBarHeight(shown, barFraction(db), t - last);
    last = t;
    onLevel({ bar: shown, db });
    frame = requestAnimationFrame(draw);
  }

  // A browser may keep an AudioContext suspended until the page gets a click or a key.
  const wake = () => {
    if (audio.state === "suspended") audio.resume().catch(() => {});
  };
  wake();
  document.addEventListener("pointerdown", wake);
  document.addEventListener("keydown", wake);

  return () => {
    cancelAnimationFrame(frame);
    document.removeEventListener("pointerdown", wake);
    document.removeEventListener("keydown", wake);
    source.disconnect();
    audio.close().catch(() => {});
  };
}

/**
 * What the browser offers of what the exam uses.
 * @param {{RTCPeerConnection?: unknown, localStorage?: Storage, document?: {fullscreenEnabled?: boolean}}} [env]
 *   the page's globals (a test passes fakes)
 * @returns {import("./check-verdicts.js").BrowserSupport}
 */
export function browserSupport(env = /** @type {any} */ (globalThis)) {
  return {
    webrtc: typeof env.RTCPeerConnection === "function",
    localStorage: storageWorks(env),
    fullscreen: !!env.document?.fullscreenEnabled,
  };
}

/**
 * Present is not enough: private modes and blocked site data throw on access or on write.
 * @param {{localStorage?: Storage}} env
 */
function storageWorks(env) {
  const key = "proctor-hub:check-probe";
  try {
    const s = env.localStorage;
    if (!s) return false;
    s.setItem(key, "1");
    const ok = s.getItem(key) === "1";
    s.removeItem(key);
    return ok;
  } catch {
    return false;
  }
}
