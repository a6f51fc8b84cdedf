// @ts-check
/**
 * The exam's countdown, by the server clock ({@link ServerClock}), never the device's: a
 * candidate who sets the computer's clock back gains nothing, and one whose clock is wrong
 * sees the right time left. Screen readers hear the time only at a few milestones (a live
 * timer that speaks every second is unusable).
 */
import { formatCountdown } from "./ui.js";

/** Minutes left at which the time is announced. */
const MILESTONES = [30, 10, 5, 1];

export class Countdown {
  /**
   * @param {import("./hub-client.js").ServerClock} clock
   * @param {HTMLElement} display the visible timer (role="timer")
   * @param {HTMLElement} announcer an aria-live region for the milestones
   * @param {() => void} onZero called once when the time runs out (and again after an
   *   extension runs out)
   */
  constructor(clock, display, announcer, onZero) {
    this.clock = clock;
    this.display = display;
    this.announcer = announcer;
    this.onZero = onZero;
    this.expiresAt = "";
    /** @type {number | null} */
    this.lastMilestone = null;
    this.fired = false;
    /** @type {ReturnType<typeof setInterval> | null} */
    this.interval = null;
  }

  /** @param {string} expiresAt RFC 3339, from the session or `time-extended` */
  set(expiresAt) {
    this.expiresAt = expiresAt;
    this.fired = false;
    this.lastMilestone = null;
    this.tick();
  }

  start() {
    // 4 Hz keeps the seconds digit within a quarter second of the truth.
    this.interval = setInterval(() => this.tick(), 250);
    this.tick();
  }

  stop() {
    if (this.interval != null) clearInterval(this.interval);
    this.interval = null;
  }

  /** @returns {number} milliseconds left by the server clock */
  left() {
    return this.clock.until(this.expiresAt);
  }

  /** @private */
  tick() {
    if (!this.expiresAt) return;
    const left = this.left();
    this.display.textContent = formatCountdown(left);
    this.display.dataset.urgency = left <= 60_000 ? "critical" : left <= 5 * 60_000 ? "low" : "normal";
    const minutes = Math.ceil(left / 60_000);
    const milestone = MILESTONES.find((m) => minutes === m && left > (m - 1) * 60_000 + 55_000);
    if (milestone != null && milestone !== this.lastMilestone) {
      this.lastMilestone = milestone;
      this.announcer.textContent = `${milestone} ${milestone === 1 ? "minute" : "minutes"} left.`;
    }
    if (left <= 0 && !this.fired) {
      this.fired = true;
      this.onZero();
    }
  }
}
