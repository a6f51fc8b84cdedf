// @ts-check
/**
 * The recordings of one session on the review page: the camera (with the microphone), the
 * screen and the phone camera in step on one session timeline, one play/pause button, a
 * position slider and a speed selector for all of them, and the session's events as a list:
 * choosing one sends every player to just before it.
 *
 * One clock drives everything (a position advanced by the wall clock × the rate, see
 * staff-recordings.js); a few times a second each player is shown the segment covering the
 * clock's position — downloaded with the staff token and played from an object URL — seeked
 * back when it drifted, or hidden behind a note over a gap. The object URLs are revoked when
 * the panel is disposed (another session, leaving the page) and when a segment is no longer
 * near the position.
 */
import { h, formatTime, errorText } from "./ui.js";
import { sessionRecordings, recordingBlob } from "./staff-api.js";
import { eventName } from "./staff-board.js";
import {
  sessionTimeline,
  coverageAt,
  gapsOf,
  eventSeekTime,
  eventTime,
  clampTime,
  clockPosition,
  needsResync,
  formatOffset,
  wantedSegments,
  SegmentCache,
  RATES,
  SEEK_LEAD_MS,
} from "./staff-recordings.js";

/** @typedef {import("./hub-client.js").HubClient} HubClient */
/** @typedef {import("./staff-timeline.js").TimelineEvent} TimelineEvent */
/** @typedef {import("./staff-recordings.js").Timeline} Timeline */
/** @typedef {import("./staff-recordings.js").Segment} Segment */
/** @typedef {import("./staff-recordings.js").Coverage} Coverage */
/** @typedef {import("./staff-recordings.js").RecordingSource} RecordingSource */

/** The video panes, in the order they show; the microphone plays with the camera. */
const PANES = /** @type {const} */ ([
  ["camera", "Camera"],
  ["screen", "Screen"],
  ["phone-camera", "Phone camera"],
]);

/** How often the players are put in step with the clock while playing. */
const TICK_MS = 200;
/** A track's next segment is downloaded when it starts within this much playing time. */
const PREFETCH_MS = 30_000;
/** A segment whose download failed is tried again after this long (when still wanted). */
const RETRY_MS = 5_000;
/** The back/forward buttons' step. */
const STEP_MS = 10_000;

/**
 * @typedef {object} Player One track's media element and what it shows.
 * @property {RecordingSource} source
 * @property {string} label
 * @property {Segment[]} segments
 * @property {HTMLVideoElement | HTMLAudioElement} media
 * @property {HTMLElement} box carries `data-coverage`, `data-segment`, `data-offset-ms`
 * @property {HTMLElement} note what shows instead of the video (or next to the audio)
 * @property {string | null} wanted the segment being shown or downloaded
 * @property {string | null} loaded the segment the media element holds
 * @property {string | null} error why `wanted` could not be downloaded
 * @property {number} errorAt when (performance.now()): the download is tried again after a while
 * @property {boolean} seekPending the media element got a new segment: seek it when it can
 * @property {boolean} starting a play() is under way
 */

/**
 * @param {object} options
 * @param {HubClient} options.client
 * @param {string} options.sessionId
 * @param {string} options.name the candidate's, for the players' labels
 * @param {TimelineEvent[] | null} options.events oldest first; null: they could not be loaded
 * @param {boolean} [options.recordMedia] the exam's setting, when known
 * @returns {{el: HTMLElement, dispose: () => void}}
 */
export function recordingsPanel({ client, sessionId, name, events, recordMedia }) {
  let disposed = false;
  let stop = () => {};
  const body = h("div", { class: "recordings-body" }, h("p", { "aria-live": "polite" }, "Loading the recordings…"));
  const el = h(
    "section",
    { class: "card recordings", id: "recordings", "aria-labelledby": "recordings-title" },
    h("h3", { id: "recordings-title" }, "Recordings and events"),
    body,
  );

  async function load() {
    stop();
    stop = () => {};
    body.replaceChildren(h("p", { "aria-live": "polite" }, "Loading the recordings…"));
    try {
      const recordings = await sessionRecordings(client, sessionId);
      if (disposed) return;
      const timeline = sessionTimeline(recordings);
      if (timeline.duration <= 0) {
        body.replaceChildren(
          h(
            "p",
            { class: "note", id: "recordings-none" },
            recordMedia === false ? "This exam does not record camera, screen or phone." : "No recordings for this session.",
          ),
          eventsSection(events, null, () => {}),
        );
        return;
      }
      const player = playerFor(timeline);
      stop = player.dispose;
      body.replaceChildren(player.el);
    } catch (e) {
      if (disposed) return;
      body.replaceChildren(
        h("p", { class: "form-error", role: "alert" }, `The recordings could not be loaded: ${errorText(e)}`),
        h("button", { type: "button", class: "secondary", onclick: () => load() }, "Load the recordings again"),
        eventsSection(events, null, () => {}),
      );
    }
  }

  /**
   * @param {Timeline} timeline
   * @returns {{el: HTMLElement, dispose: () => void}}
   */
  function playerFor(timeline) {
    const { duration } = timeline;
    const cache = new SegmentCache({
      load: async (id, signal) => URL.createObjectURL(await recordingBlob(client, sessionId, id, signal)),
      release: (url) => URL.revokeObjectURL(url),
    });
    let playing = false;
    let rate = 1;
    /** the position when paused; the anchor's position while playing */
    let position = 0;
    let anchorWall = 0;
    /** @type {ReturnType<typeof setInterval> | null} */
    let ticker = null;
    /** @type {Set<string>} segments downloaded ahead (each only once) */
    const prefetched = new Set();

    // --- the players --------------------------------------------------------------------------
    /**
     * @param {RecordingSource} source
     * @param {string} label
     * @param {HTMLVideoElement | HTMLAudioElement} media
     * @param {HTMLElement} box
     * @param {HTMLElement} note
     * @returns {Player}
     */
    const player = (source, label, media, box, note) => ({
      source,
      label,
      segments: timeline.tracks[source],
      media,
      box,
      note,
      wanted: null,
      loaded: null,
      error: null,
      errorAt: 0,
      seekPending: false,
      starting: false,
    });
    /** @type {Player[]} */
    const players = PANES.map(([source, label]) => {
      const video = h("video", {
        id: `recording-video-${source}`,
        class: "recording-video",
        muted: true,
        playsInline: true,
        preload: "auto",
        hidden: true,
        "aria-label": `${label} recording of ${name}`,
      });
      const note = h("p", { class: "stage-note" });
      const fig = h(
        "figure",
        { class: "pane recording-pane", id: `recording-pane-${source}`, "data-source": source },
        h("div", { class: "stage" }, video, note),
        h("figcaption", {}, `${label} · ${coveredText(timeline.tracks[source], duration)}`),
      );
      return player(source, label, video, fig, note);
    });
    // The note (e.g. "plays with the camera") follows the coverage after a dash when it has text.
    const micNote = h("span", { class: "mic-note" });
    const audio = h("audio", { id: "recording-audio-microphone", preload: "auto" });
    const micLine = h(
      "p",
      { class: "hint mic-line", id: "recording-pane-microphone", "data-source": "microphone" },
      `Microphone · ${coveredText(timeline.tracks.microphone, duration)}`,
      micNote,
    );
    const mic = player("microphone", "Microphone", audio, micLine, micNote);
    players.push(mic);
    players[0].box.append(micLine, audio);

    // --- the controls -------------------------------------------------------------------------
    const playButton = h("button", { type: "button", class: "primary", id: "recording-play", onclick: () => (playing ? pause() : play()) }, "Play recordings");
    const back = h("button", { type: "button", class: "secondary", id: "recording-back", onclick: () => seek(now() - STEP_MS) }, "Back 10 seconds");
    const forward = h("button", { type: "button", class: "secondary", id: "recording-forward", onclick: () => seek(now() + STEP_MS) }, "Forward 10 seconds");
    const slider = h("input", {
      type: "range",
      id: "recording-position",
      min: "0",
      max: String(Math.ceil(duration / 1000)),
      step: "1",
      value: "0",
      oninput: () => seek(Number(slider.value) * 1000),
    });
    const clock = h("output", { id: "recording-clock", class: "recording-clock", for: "recording-position" });
    const rateSelect = h(
      "select",
      {
        id: "recording-rate",
        class: "select",
        onchange: () => setRate(Number(rateSelect.value)),
      },
      RATES.map((r) => h("option", { value: String(r), selected: r === 1 }, `${r}×`)),
    );
    const hear = h("input", {
      type: "checkbox",
      id: "recording-hear-microphone",
      checked: true,
      disabled: !mic.segments.length,
      onchange: () => (audio.muted = !hear.checked),
    });
    const news = h("p", { class: "visually-hidden", "aria-live": "polite", id: "recording-news" });

    // --- the clock ----------------------------------------------------------------------------
    const now = () => (playing ? clockPosition(position, anchorWall, performance.now(), rate, duration) : position);
    /** @param {number} t */
    function setPosition(t) {
      position = clampTime(t, duration);
      anchorWall = performance.now();
    }
    function play() {
      if (now() >= duration) setPosition(0);
      else setPosition(now());
      playing = true;
      if (!ticker) ticker = setInterval(tick, TICK_MS);
      sync(true);
    }
    function pause() {
      setPosition(now());
      playing = false;
      if (ticker) clearInterval(ticker);
      ticker = null;
      sync(true);
    }
    function tick() {
      if (playing && now() >= duration) {
        pause();
        news.textContent = "The end of the recordings.";
        return;
      }
      sync(false);
    }
    /** @param {number} t */
    function seek(t) {
      setPosition(t);
      sync(true);
    }
    /** @param {number} r */
    function setRate(r) {
      setPosition(now());
      rate = r;
      sync(false);
    }

    // --- keeping the players in step ----------------------------------------------------------
    /** @param {boolean} force seek every player to the clock (a seek, play, pause) */
    function sync(force) {
      const t = now();
      for (const p of players) showAt(p, coverageAt(p.segments, t), t, force);
      const keep = wantedSegments(timeline, t);
      for (const p of players) if (p.loaded) keep.add(p.loaded);
      cache.trim(keep);
      renderControls(t);
    }

    /**
     * @param {Player} p
     * @param {Coverage} c what covers the position
     * @param {number} t the position
     * @param {boolean} force
     */
    function showAt(p, c, t, force) {
      const isVideo = p.media instanceof HTMLVideoElement;
      p.box.dataset.coverage = c.state;
      if (!c.segment) {
        p.wanted = null;
        if (!p.media.paused) p.media.pause();
        if (isVideo) p.media.hidden = true;
        prefetch(c.next, t);
        p.box.removeAttribute("data-segment");
        p.box.removeAttribute("data-offset-ms");
        // An audio track's label already says it was not recorded at all.
        return setNote(p, isVideo || c.state !== "none" ? gapText(c, p.segments) : "");
      }
      const seg = c.segment;
      p.box.dataset.segment = seg.id;
      p.box.dataset.offsetMs = String(Math.round(c.offset));
      if (p.loaded !== seg.id) {
        if (isVideo) p.media.hidden = true;
        if (p.wanted !== seg.id || (p.error && performance.now() - p.errorAt > RETRY_MS)) fetchSegment(p, seg.id);
        p.box.dataset.coverage = p.error ? "error" : "loading";
        return setNote(p, p.error ? `The recording could not be loaded: ${p.error}` : "Loading the recording…");
      }
      setNote(p, isVideo ? "" : "plays with the camera");
      prefetch(c.next, t);
      if (isVideo) p.media.hidden = false;
      if (p.media.playbackRate !== rate) p.media.playbackRate = rate;
      if (p.media.readyState >= HTMLMediaElement.HAVE_METADATA) {
        if (force || p.seekPending || needsResync(p.media.currentTime * 1000, c.offset, rate)) p.media.currentTime = c.offset / 1000;
        p.seekPending = false;
      }
      if (playing && p.media.paused && !p.starting) {
        p.starting = true;
        p.media
          .play()
          .catch(() => {})
          .finally(() => (p.starting = false));
      } else if (!playing && !p.media.paused) {
        p.media.pause();
      }
    }

    /**
     * Downloads the segment that comes next on a track when it is near, so the switch does not
     * wait (once: a failed download is left to the player to try again when it gets there).
     * @param {Segment | null} next
     * @param {number} t
     */
    function prefetch(next, t) {
      if (!next || next.start - t > PREFETCH_MS * rate || cache.has(next.id) || prefetched.has(next.id)) return;
      prefetched.add(next.id);
      cache.get(next.id).catch(() => {});
    }

    /**
     * @param {Player} p
     * @param {string} id
     */
    function fetchSegment(p, id) {
      p.wanted = id;
      p.error = null;
      cache.get(id).then(
        (url) => {
          if (disposed || p.wanted !== id) return;
          p.media.src = url;
          p.loaded = id;
          p.seekPending = true;
          // Seek as soon as the file's length is known, not at the next tick.
          p.media.addEventListener("loadedmetadata", () => sync(false), { once: true });
          sync(false);
        },
        (e) => {
          if (disposed || p.wanted !== id) return;
          p.error = errorText(e);
          p.errorAt = performance.now();
          sync(false);
        },
      );
    }

    /**
     * @param {Player} p
     * @param {string} text
     */
    function setNote(p, text) {
      // The microphone's note runs on after its coverage on one line.
      const shown = text && p.source === "microphone" ? ` — ${text}` : text;
      if (p.note.textContent !== shown) p.note.textContent = shown;
      p.note.hidden = !text;
    }

    /** @param {number} t */
    function renderControls(t) {
      const seconds = String(Math.floor(t / 1000));
      if (slider.value !== seconds) slider.value = seconds;
      const text = `${formatOffset(t)} of ${formatOffset(duration)}`;
      slider.setAttribute("aria-valuetext", text);
      clock.textContent = text;
      const label = playing ? "Pause recordings" : "Play recordings";
      if (playButton.textContent !== label) playButton.textContent = label;
      el.dataset.positionMs = String(Math.round(t));
      el.dataset.playing = String(playing);
    }

    // --- the events ---------------------------------------------------------------------------
    const list = eventsSection(events, timeline, (e, button) => {
      const at = eventSeekTime(e.timestamp, timeline);
      seek(at);
      for (const b of list.querySelectorAll("button[aria-current]")) b.removeAttribute("aria-current");
      button.setAttribute("aria-current", "true");
      news.textContent = `At ${formatOffset(at)}, ${SEEK_LEAD_MS / 1000} seconds before ${eventName(e.eventType)}.`;
    });

    const ui = h(
      "div",
      { class: "recording-player" },
      h(
        "p",
        { class: "hint" },
        `The camera, screen and phone camera in step: 0:00 is when the first recording started (${formatTime(new Date(timeline.origin).toISOString())}). The camera plays the microphone. Gaps are times nothing was received, such as a reconnect.`,
      ),
      h("div", { class: "panes" }, players.slice(0, PANES.length).map((p) => p.box)),
      h(
        "div",
        { class: "recording-controls" },
        h(
          "div",
          { class: "field recording-seek" },
          h("label", { for: "recording-position" }, "Position in the session"),
          slider,
          clock,
        ),
        h("div", { class: "button-row" }, playButton, back, forward),
        h("div", { class: "field inline" }, h("label", { for: "recording-rate" }, "Playback speed"), rateSelect),
        h("div", { class: "field recording-hear" }, hear, h("label", { for: "recording-hear-microphone" }, "Hear the microphone")),
      ),
      news,
      list,
    );
    sync(true);

    return {
      el: ui,
      dispose() {
        playing = false;
        if (ticker) clearInterval(ticker);
        ticker = null;
        for (const p of players) {
          p.wanted = null;
          p.media.pause();
          p.media.removeAttribute("src");
          p.media.load();
        }
        cache.clear();
      },
    };
  }

  load();
  return {
    el,
    dispose() {
      disposed = true;
      stop();
    },
  };
}

/**
 * The session's events, oldest first; with a timeline each is a button that seeks to it.
 * @param {TimelineEvent[] | null} events
 * @param {Timeline | null} timeline
 * @param {(e: TimelineEvent, button: HTMLButtonElement) => void} onSeek
 * @returns {HTMLElement}
 */
function eventsSection(events, timeline, onSeek) {
  const head = h("h4", { id: "recording-events-title" }, "Event timeline");
  if (!events) return h("div", { class: "recording-events-box" }, head, h("p", { class: "note" }, "The events could not be loaded."));
  if (!events.length) return h("div", { class: "recording-events-box" }, head, h("p", { class: "note" }, "No events were recorded."));
  return h(
    "div",
    { class: "recording-events-box" },
    head,
    timeline ? h("p", { class: "hint" }, `Oldest first. Choose an event to watch every recording from ${SEEK_LEAD_MS / 1000} seconds before it.`) : h("p", { class: "hint" }, "Oldest first."),
    h(
      "ol",
      { class: "recording-events", id: "recording-events", "aria-labelledby": "recording-events-title" },
      events.map((e) => {
        const facts = `severity ${e.severity}${e.source ? ` · ${e.source.toLowerCase()}` : ""} · ${formatTime(e.timestamp)}`;
        if (!timeline) {
          return h(
            "li",
            { "data-severity": String(e.severity) },
            h("span", { class: "ev-name" }, eventName(e.eventType)),
            " ",
            h("span", { class: "ev-facts" }, facts),
          );
        }
        const at = eventTime(e.timestamp, timeline);
        const button = h(
          "button",
          {
            type: "button",
            class: "event-seek",
            "data-event-id": e.eventId,
            "data-seek-ms": String(Math.round(eventSeekTime(e.timestamp, timeline))),
            onclick: () => onSeek(e, button),
          },
          h("span", { class: "visually-hidden" }, "Watch from "),
          h("time", { datetime: e.timestamp }, at < 0 ? `−${formatOffset(-at)}` : formatOffset(at)),
          h("span", { class: "ev-name" }, eventName(e.eventType)),
          h("span", { class: "ev-facts" }, facts),
        );
        return h("li", { "data-severity": String(e.severity) }, button);
      }),
    ),
  );
}

/**
 * @param {Segment[]} segments
 * @param {number} duration
 * @returns {string} "recorded 38:20 of 45:00, 2 gaps"
 */
function coveredText(segments, duration) {
  if (!segments.length) return "not recorded";
  const gaps = gapsOf(segments, duration);
  const missing = gaps.reduce((sum, g) => sum + g.end - g.start, 0);
  const inside = gaps.filter((g) => g.start > segments[0].start && g.end < duration).length;
  return `recorded ${formatOffset(duration - missing)} of ${formatOffset(duration)}${inside ? `, ${inside} ${inside === 1 ? "gap" : "gaps"}` : ""}`;
}

/**
 * What a player says when it has no segment at the position.
 * @param {Coverage} c
 * @param {Segment[]} segments
 * @returns {string}
 */
function gapText(c, segments) {
  if (c.state === "none") return "Not recorded";
  if (c.state === "before") return `No recording yet: it starts at ${formatOffset(c.next?.start ?? 0)}`;
  if (c.state === "after") return `No recording: it ended at ${formatOffset(Math.max(...segments.map((s) => s.end)))}`;
  return `No recording (gap): it resumes at ${formatOffset(c.next?.start ?? 0)}`;
}
