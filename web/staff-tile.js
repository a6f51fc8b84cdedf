// @ts-check
/**
 * One tile of the live grid: the candidate's camera thumbnail, name, flag, liveness, score and
 * last event. The whole tile is a link to the session's full view, so a click and Enter both
 * open it and the browser gives it its focus ring.
 *
 * Updates change text in place; the video element stays, so a score change never restarts the
 * thumbnail.
 */
import { h, formatTime } from "./ui.js";
import { showTrack } from "./staff-media.js";
import { eventName, deviceStateText, statusText, formatScore, isEnded, hasLostDevice } from "./staff-board.js";

/** @typedef {import("./staff-board.js").BoardEntry} BoardEntry */
/** @typedef {import("./staff-media.js").SubscriberState} SubscriberState */
/** @typedef {"off" | "unavailable" | SubscriberState} FeedState */

export class Tile {
  /** @param {BoardEntry} entry */
  constructor(entry) {
    this.id = entry.id;
    /** @type {FeedState} */
    this.feed = "off";
    this.hasTrack = false;
    this.playing = false;
    this.ended = false;
    this.video = h("video", { muted: true, autoplay: true, playsInline: true, class: "thumb-video" });
    this.note = h("span", { class: "thumb-note" });
    this.name = h("h2", { class: "tile-name" });
    this.flag = h("span", { class: "badge bad flag" }, "Flagged");
    this.status = h("span", { class: "badge muted tile-status" });
    this.score = h("dd", { class: "tile-score" });
    this.laptop = h("dd", { class: "liveness" });
    this.mobile = h("dd", { class: "liveness" });
    this.event = h("dd", { class: "tile-event" });
    this.link = h(
      "a",
      { class: "tile-link", href: `#/session/${encodeURIComponent(entry.id)}` },
      h("div", { class: "thumb" }, this.video, this.note),
      h(
        "div",
        { class: "tile-body" },
        h("div", { class: "tile-head" }, this.name, h("span", { class: "tile-badges" }, this.flag, this.status)),
        h(
          "dl",
          { class: "tile-facts" },
          h("dt", {}, "Score"),
          this.score,
          h("dt", {}, "Laptop"),
          this.laptop,
          h("dt", {}, "Phone"),
          this.mobile,
          h("dt", {}, "Last event"),
          this.event,
        ),
      ),
    );
    this.el = h("li", { class: "tile", "data-session": entry.id }, this.link);
    // "playing" comes with the first decoded frame; the tile shows the video from then on.
    this.video.addEventListener("playing", () => this.setPlaying(true));
    this.video.addEventListener("emptied", () => this.setPlaying(false));
    this.update(entry);
  }

  /** @param {BoardEntry} e */
  update(e) {
    this.ended = isEnded(e);
    const name = e.name || "Candidate (loading name…)";
    if (this.name.textContent !== name) this.name.textContent = name;
    this.video.setAttribute("aria-label", `Camera of ${e.name || "the candidate"}`);
    this.flag.hidden = !e.flagged;
    this.status.hidden = !this.ended;
    this.status.textContent = statusText(e.status);
    this.score.textContent = formatScore(e.violationScore);
    setLiveness(this.laptop, this.ended ? "ENDED" : e.liveness.laptop);
    setLiveness(this.mobile, this.ended ? "ENDED" : e.liveness.mobile);
    this.event.textContent = e.lastEvent ? `${eventName(e.lastEvent.eventType)} · ${formatTime(e.lastEvent.timestamp)}` : "None yet";
    const d = this.el.dataset;
    d.flagged = String(e.flagged);
    d.ended = String(this.ended);
    d.lost = String(hasLostDevice(e));
    d.status = e.status;
    this.renderVideo();
  }

  /**
   * The state of this tile's subscription ("off" when the tile is off screen).
   * @param {FeedState} state
   */
  setFeed(state) {
    this.feed = state;
    this.renderVideo();
  }

  /** @param {MediaStreamTrack | null} track */
  showVideo(track) {
    this.hasTrack = !!track;
    showTrack(this.video, track);
    if (!track) this.playing = false;
    this.renderVideo();
  }

  /**
   * @private
   * @param {boolean} playing
   */
  setPlaying(playing) {
    this.playing = playing && this.hasTrack;
    this.renderVideo();
  }

  /** @private the note over the thumbnail says why there is no picture */
  renderVideo() {
    /** @type {[string, string]} */
    let [state, text] = ["waiting", "Connecting video…"];
    if (this.ended) [state, text] = ["ended", "Session ended"];
    else if (this.playing) [state, text] = ["playing", ""];
    else if (this.feed === "off") [state, text] = ["off", "Video paused while off screen"];
    else if (this.feed === "unavailable") [state, text] = ["error", "Video unavailable"];
    else if (this.feed === "retrying") [state, text] = ["waiting", "Reconnecting video…"];
    else if (this.hasTrack) [state, text] = ["waiting", "Starting video…"];
    // Subscribed: the relay offers the camera as soon as the laptop publishes it.
    else if (this.feed === "negotiating" || this.feed === "connected") [state, text] = ["none", "No camera shared yet"];
    this.el.dataset.video = state;
    this.el.dataset.feed = this.feed;
    this.video.hidden = state !== "playing";
    this.note.hidden = !text;
    if (this.note.textContent !== text) this.note.textContent = text;
  }
}

/**
 * Liveness as a dot and words (never colour alone).
 * @param {HTMLElement} el
 * @param {string} state ONLINE, LOST, UNKNOWN, or ENDED (the session is over)
 */
export function setLiveness(el, state) {
  el.dataset.state = state;
  el.textContent = state === "ENDED" ? "Disconnected" : deviceStateText(state);
}
