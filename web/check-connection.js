// @ts-check
/**
 * The system check's connection test: open a {@link HubSocket} the way the exam will, see the
 * hub accept its `auth`, time a few heartbeats (heartbeat → heartbeat-ack) and compare this
 * device's clock with the hub's `serverNow`. Then close the socket again.
 *
 * The socket joins no room, so the hub does not tie it to any session: the test is invisible
 * to proctors and cannot replace the exam's own connection.
 */
import { HubSocket, ServerClock } from "./hub-client.js";

/** @typedef {import("./check-verdicts.js").ConnectionResult} ConnectionResult */
/** @typedef {import("./hub-client.js").Timers} Timers */
/** @typedef {{roundTripMs: number, offsetMs: number | null}} RoundTripSample */

/**
 * Pairs heartbeats with their acks. The hub answers a socket's requests in order, so the n-th
 * ack answers the n-th heartbeat sent on that socket, whoever sent it (the socket's own
 * periodic ones or the test's extra ones): counting every heartbeat that leaves keeps the
 * pairing exact.
 */
export class RoundTripMeter {
  /** @param {() => number} [now] epoch milliseconds (the device clock, to compare with the hub's) */
  constructor(now = () => Date.now()) {
    this.now = now;
    /** @type {number[]} when each unanswered heartbeat left, oldest first */
    this.inFlight = [];
    /** @type {RoundTripSample[]} */
    this.samples = [];
  }

  /** A heartbeat left now. */
  sent() {
    this.inFlight.push(this.now());
  }

  /**
   * An ack arrived now.
   * @param {string} serverNow the hub's clock when it answered (RFC 3339)
   * @returns {RoundTripSample | null} null for an ack without a known heartbeat
   */
  acked(serverNow) {
    const sentAt = this.inFlight.shift();
    if (sentAt === undefined) return null;
    const roundTripMs = Math.max(0, this.now() - sentAt);
    const server = Date.parse(serverNow);
    // The hub read its clock somewhere during the round trip: the midpoint is the best guess.
    const offsetMs = Number.isNaN(server) ? null : server - (sentAt + roundTripMs / 2);
    const sample = { roundTripMs, offsetMs };
    this.samples.push(sample);
    return sample;
  }

  /** The socket was replaced: the heartbeats in flight on the old one will never be answered. */
  lost() {
    this.inFlight = [];
  }

  /** @returns {number[]} */
  roundTrips() {
    return this.samples.map((s) => s.roundTripMs);
  }

  /**
   * @returns {number | null} hub clock minus device clock, from the sample with the shortest
   *   round trip (its midpoint guess is the least uncertain)
   */
  bestOffset() {
    let best = null;
    for (const s of this.samples) {
      if (s.offsetMs != null && (best == null || s.roundTripMs < best.roundTripMs)) best = s;
    }
    return best ? best.offsetMs : null;
  }
}

/**
 * @param {unknown} data a frame about to be sent
 * @returns {boolean} whether it is a `heartbeat`
 */
export function isHeartbeatFrame(data) {
  if (typeof data !== "string" || !data.includes("heartbeat")) return false;
  try {
    return JSON.parse(data).type === "heartbeat";
  } catch {
    return false;
  }
}

/**
 * A WebSocket class that reports each heartbeat frame as it leaves. HubSocket takes its
 * WebSocket class as an option, so the test sees the socket's own heartbeats too without
 * reaching into its internals.
 * @param {typeof WebSocket} Base
 * @param {() => void} onHeartbeat
 * @returns {typeof WebSocket}
 */
export function heartbeatTimingSocket(Base, onHeartbeat) {
  return class extends Base {
    /** @param {Parameters<WebSocket["send"]>[0]} data */
    send(data) {
      if (isHeartbeatFrame(data)) onHeartbeat();
      super.send(data);
    }
  };
}

/**
 * Runs the connection test.
 * @param {{baseUrl: string, accessToken: () => Promise<string>, refresh: () => Promise<unknown>}} client
 *   the page's HubClient
 * @param {object} [options]
 * @param {number} [options.probes] heartbeats to time (the socket's first one included)
 * @param {number} [options.gapMs] pause between probes
 * @param {number} [options.timeoutMs] give up (and report what was measured) after this
 * @param {typeof WebSocket} [options.WebSocket]
 * @param {Timers} [options.timers]
 * @param {() => number} [options.now] device clock, epoch ms
 * @param {() => number} [options.monotonic] for the socket's private ServerClock
 * @returns {{result: Promise<ConnectionResult>, stop: () => void}} `stop` ends the test early
 *   (leaving the page); `result` then resolves with what was measured so far
 */
export function measureConnection(client, options = {}) {
  const {
    probes = 5,
    gapMs = 200,
    timeoutMs = 10_000,
    WebSocket: WS = globalThis.WebSocket,
    timers = { setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms), clearTimeout: (t) => globalThis.clearTimeout(/** @type {any} */ (t)) },
    now = () => Date.now(),
    monotonic,
  } = options;
  const meter = new RoundTripMeter(now);
  // The socket gets a clock of its own, not the page's: the extra heartbeats sent here would
  // upset the socket's own pairing of heartbeats and acks, and its clock samples with them.
  // The exam's countdown must never see those.
  const auth = {
    baseUrl: client.baseUrl,
    clock: new ServerClock(monotonic),
    accessToken: () => client.accessToken(),
    refresh: () => client.refresh(),
  };
  const socket = new HubSocket(auth, { WebSocket: heartbeatTimingSocket(WS, () => meter.sent()), timers, window: null });

  let authed = false;
  /** @type {string | undefined} */
  let stopReason;
  /** @type {number | undefined} */
  let closeCode;
  let finished = false;
  /** @type {unknown} */
  let probeTimer = null;
  /** @type {(r: ConnectionResult) => void} */
  let resolve = () => {};
  /** @type {Promise<ConnectionResult>} */
  const result = new Promise((r) => (resolve = r));

  /** One more heartbeat when none is in flight or due (acks come one by one, so probes never pile up). */
  const pump = () => {
    if (finished || probeTimer != null || meter.inFlight.length > 0) return;
    probeTimer = timers.setTimeout(() => {
      probeTimer = null;
      if (!finished && socket.state === "open") socket.send({ type: "heartbeat" });
    }, gapMs);
  };

  const off = [
    socket.on("state", (s) => {
      if (s.closeCode) closeCode = s.closeCode;
      if (s.state === "connecting") meter.lost();
      if (s.state === "open") {
        authed = true;
        // The socket heartbeats at once on `authed`; should it ever not, start the probes here.
        timers.setTimeout(pump, 0);
      }
    }),
    socket.on("heartbeat-ack", (m) => {
      meter.acked(m.serverNow);
      if (meter.samples.length >= probes) finish();
      else pump();
    }),
    socket.on("stopped", (s) => {
      stopReason = s.reason;
      closeCode = s.code;
      finish();
    }),
  ];
  const deadline = timers.setTimeout(() => finish(), timeoutMs);

  function finish() {
    if (finished) return;
    finished = true;
    timers.clearTimeout(deadline);
    if (probeTimer != null) timers.clearTimeout(probeTimer);
    for (const f of off) f();
    socket.stop();
    resolve({ authed, stopReason, closeCode, roundTripsMs: meter.roundTrips(), offsetMs: meter.bestOffset() });
  }

  socket.start();
  return { result, stop: finish };
}
