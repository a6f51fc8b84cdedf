// @ts-check
/**
 * The system check's relay test: does this computer's camera reach the hub's video relay?
 * The hub gives the candidate a check room of their own for ten minutes (no session: the
 * exam's timer does not start, and nobody watches it). A second {@link HubSocket} joins it,
 * a {@link MediaPublisher} publishes the camera there exactly as in the exam, and the test
 * passes when the publisher's state becomes `connected` (the relay answered, ICE and DTLS are
 * up). Then it stops publishing, leaves and closes; the camera it opened is released.
 *
 * The camera is opened again here (the publisher owns its tracks and stops them), so the
 * page's preview and this test never release each other's camera.
 */
import { HubSocket, MediaPublisher, ServerClock } from "./hub-client.js";
import { RELAY_TIMEOUT_MS } from "./check-verdicts.js";

/** @typedef {import("./check-verdicts.js").RelayResult} RelayResult */
/** @typedef {import("./hub-client.js").HubClient} HubClient */

/**
 * Runs the relay test.
 * @param {Pick<HubClient, "baseUrl" | "accessToken" | "refresh" | "api">} client the page's HubClient
 * @param {string} examId
 * @param {object} [options]
 * @param {number} [options.timeoutMs] from the room's creation to `connected`
 * @param {MediaDevices} [options.mediaDevices]
 * @param {() => number} [options.now] monotonic milliseconds
 * @returns {{result: Promise<RelayResult>, stop: () => void}} `stop` ends the test early
 *   (leaving the page) and releases everything; `result` then resolves as it stood
 */
export function testRelay(client, examId, options = {}) {
  const { timeoutMs = RELAY_TIMEOUT_MS, mediaDevices, now = () => performance.now() } = options;
  /** @type {RelayResult} */
  const found = { connected: false, stage: "room" };
  let finished = false;
  /** @type {HubSocket | null} */
  let socket = null;
  /** @type {MediaPublisher | null} */
  let publisher = null;
  /** @type {string | null} */
  let roomId = null;
  /** @type {(() => void)[]} */
  const off = [];
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let deadline;
  let started = 0;
  /** @type {(r: RelayResult) => void} */
  let resolve = () => {};
  /** @type {Promise<RelayResult>} */
  const result = new Promise((r) => (resolve = r));

  /** @param {Partial<RelayResult>} [extra] */
  function finish(extra = {}) {
    if (finished) return;
    finished = true;
    clearTimeout(deadline);
    for (const f of off) f();
    publisher?.stop();
    if (socket) {
      if (roomId) socket.leave(roomId);
      socket.stop();
    }
    resolve({ ...found, ...extra });
  }

  async function run() {
    try {
      /** @type {{roomId: string, expiresAt: string}} */
      const room = await client.api("POST", `/exams/${encodeURIComponent(examId)}/media-check`);
      roomId = room.roomId;
    } catch (e) {
      const err = /** @type {{status?: number, message?: string}} */ (e);
      finish({ status: err.status ?? 0, message: err.message });
      return;
    }
    if (finished) return;
    started = now();
    deadline = setTimeout(() => finish({ timedOut: true }), timeoutMs);
    found.stage = "socket";
    // A clock of its own, as the connection test's socket: the page's clock is the exam's.
    const auth = {
      baseUrl: client.baseUrl,
      clock: new ServerClock(),
      accessToken: () => client.accessToken(),
      refresh: () => client.refresh(),
    };
    const s = (socket = new HubSocket(auth, { window: null }));
    const room = roomId;
    off.push(
      s.on("state", (st) => {
        if (st.closeCode) found.closeCode = st.closeCode;
        if (st.state === "open" && found.stage === "socket") found.stage = "join";
      }),
      s.on("stopped", (st) => finish({ reason: st.reason, closeCode: st.code })),
      s.on("joined", (m) => {
        if (m.roomId === room && found.stage !== "camera" && found.stage !== "media") publish(s, room);
      }),
    );
    s.join(room); // sent once the socket is authenticated
    s.start();
  }

  /**
   * @param {HubSocket} s
   * @param {string} room
   */
  async function publish(s, room) {
    found.stage = "camera";
    const p = (publisher = new MediaPublisher(s, room, { mediaDevices }));
    off.push(
      p.on("state", ({ state }) => {
        if (state === "connected") finish({ connected: true, ms: Math.round(now() - started) });
      }),
      p.on("error", (e) => {
        found.message = e.message;
        if (e.source === "camera") finish();
      }),
    );
    const ok = await p.startCamera({ source: "camera" });
    // Stopped while the camera was opening: the publisher took the camera after its stop.
    if (finished) p.stop();
    else if (ok) found.stage = "media";
  }

  run();
  return { result, stop: () => finish() };
}
