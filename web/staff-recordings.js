// @ts-check
/**
 * The timing rules of a session's recordings, apart from the DOM (the player is
 * staff-player.js).
 *
 * The relay records each published track (camera, screen, microphone, phone camera) into WebM
 * segments: a track that reconnected has several, with a gap between them, and a long track is
 * split every few minutes. `GET /sessions/{id}/recordings` lists them by `startedAt`. Here they
 * become one **session timeline**: t = 0 at the earliest segment's start, every time in
 * milliseconds from there; each track is its segments in order, each segment covering
 * `[start, end]` of the timeline. A player shows, for a time t, the segment covering it at
 * `t - start` into its file, or says why there is none (before the track's first segment, in a
 * gap, after its last).
 *
 * Also here: the clock that drives every player (a position advanced by the wall clock times
 * the playback rate, clamped to the timeline), when a player has drifted far enough from it to
 * be put back, where an event sends the players, and a small cache of the downloaded segments
 * (object URLs, revoked when evicted).
 */

/** @typedef {"camera" | "screen" | "microphone" | "phone-camera"} RecordingSource */
/**
 * @typedef {object} Recording One item of `GET /sessions/{id}/recordings`.
 * @property {string} id
 * @property {RecordingSource} source
 * @property {"video" | "audio"} kind
 * @property {string} startedAt RFC 3339
 * @property {string} endedAt RFC 3339
 * @property {number} durationMs
 * @property {number} bytes
 */
/**
 * @typedef {object} Segment A recording placed on the session timeline.
 * @property {string} id the recording's id
 * @property {RecordingSource} source
 * @property {"video" | "audio"} kind
 * @property {number} start ms from the timeline's origin
 * @property {number} end ms from the timeline's origin (`start` + the file's length)
 * @property {number} bytes
 */
/**
 * @typedef {object} Timeline
 * @property {number} origin epoch ms of t = 0 (the earliest segment's `startedAt`); 0 when there
 *   are no recordings
 * @property {number} duration ms, up to the latest segment's end
 * @property {Record<RecordingSource, Segment[]>} tracks each ordered by start
 */
/**
 * What a player shows at a time:
 * - `playing`: `segment` covers the time, `offset` ms into its file
 * - `before`: the track's first segment starts later (`next`)
 * - `gap`: between two segments (`next` is the one after)
 * - `after`: past the track's last segment
 * - `none`: the track has no segment at all
 * @typedef {{state: "playing", segment: Segment, offset: number, next: Segment | null}
 *   | {state: "before" | "gap" | "after" | "none", segment: null, offset: 0, next: Segment | null}} Coverage
 */

/** The sources, in the order the player shows them. */
export const SOURCES = /** @type {const} */ (["camera", "screen", "phone-camera", "microphone"]);

/** An event seeks this long before its timestamp, to see what led to it. */
export const SEEK_LEAD_MS = 2_000;

/** The playback rates offered; 1 is the default. */
export const RATES = /** @type {const} */ ([1, 1.5, 2, 3, 4]);

/**
 * Builds the session timeline from the API's list (in any order). Items of an unknown source,
 * or with times that do not parse, are left out.
 * @param {Recording[]} recordings
 * @returns {Timeline}
 */
export function sessionTimeline(recordings) {
  const valid = recordings.filter((r) => SOURCES.includes(r.source) && Number.isFinite(Date.parse(r.startedAt)));
  /** @type {Record<RecordingSource, Segment[]>} */
  const tracks = { camera: [], screen: [], "phone-camera": [], microphone: [] };
  if (!valid.length) return { origin: 0, duration: 0, tracks };
  const origin = Math.min(...valid.map((r) => Date.parse(r.startedAt)));
  let duration = 0;
  for (const r of valid) {
    const start = Date.parse(r.startedAt) - origin;
    const end = start + lengthOf(r);
    tracks[r.source].push({ id: r.id, source: r.source, kind: r.kind, start, end, bytes: r.bytes });
    duration = Math.max(duration, end);
  }
  for (const list of Object.values(tracks)) list.sort((a, b) => a.start - b.start || a.end - b.end);
  return { origin, duration, tracks };
}

/**
 * A recording's length on the timeline: its file's `durationMs`, or when that is missing the
 * span from `startedAt` to `endedAt`; never negative.
 * @param {Recording} r
 * @returns {number} ms
 */
function lengthOf(r) {
  if (Number.isFinite(r.durationMs) && r.durationMs > 0) return r.durationMs;
  const span = Date.parse(r.endedAt) - Date.parse(r.startedAt);
  return Number.isFinite(span) && span > 0 ? span : 0;
}

/**
 * The segment covering time `t`: `start <= t <= end`. Where two touch or overlap (a new
 * segment starting as, or before, the previous one ended), the later one wins.
 * @param {Segment[]} segments ordered by start
 * @param {number} t ms on the timeline
 * @returns {Segment | null}
 */
export function segmentAt(segments, t) {
  for (let i = segments.length - 1; i >= 0; i--) {
    const s = segments[i];
    if (s.start <= t && t <= s.end) return s;
  }
  return null;
}

/**
 * Where in a segment's file the timeline's time `t` is.
 * @param {Segment} segment
 * @param {number} t ms on the timeline
 * @returns {number} ms into the file, from 0 to its length
 */
export function segmentOffset(segment, t) {
  return clamp(t - segment.start, 0, segment.end - segment.start);
}

/**
 * What a track shows at time `t`.
 * @param {Segment[]} segments ordered by start
 * @param {number} t
 * @returns {Coverage}
 */
export function coverageAt(segments, t) {
  const next = segments.find((s) => s.start > t) || null;
  const segment = segmentAt(segments, t);
  if (segment) return { state: "playing", segment, offset: segmentOffset(segment, t), next };
  /** @type {"before" | "gap" | "after" | "none"} */
  let state = "gap";
  if (!segments.length) state = "none";
  else if (t < segments[0].start) state = "before";
  else if (!next) state = "after";
  return { state, segment: null, offset: 0, next };
}

/**
 * The stretches of `[0, duration]` no segment of a track covers: before its first segment,
 * between segments (reconnects), after its last. Touching or overlapping segments leave no gap.
 * @param {Segment[]} segments ordered by start
 * @param {number} duration the timeline's length
 * @returns {{start: number, end: number}[]}
 */
export function gapsOf(segments, duration) {
  /** @type {{start: number, end: number}[]} */
  const gaps = [];
  let covered = 0;
  for (const s of segments) {
    if (s.start > covered) gaps.push({ start: covered, end: Math.min(s.start, duration) });
    covered = Math.max(covered, s.end);
  }
  if (covered < duration) gaps.push({ start: covered, end: duration });
  return gaps.filter((g) => g.end > g.start);
}

/**
 * Where an event sends the players: {@link SEEK_LEAD_MS} before its timestamp, within the
 * timeline.
 * @param {string} timestamp the event's, RFC 3339
 * @param {Timeline} timeline
 * @param {number} [leadMs]
 * @returns {number} ms on the timeline
 */
export function eventSeekTime(timestamp, timeline, leadMs = SEEK_LEAD_MS) {
  const at = Date.parse(timestamp) - timeline.origin;
  if (!Number.isFinite(at)) return 0;
  return clampTime(at - leadMs, timeline.duration);
}

/**
 * Where an event falls on the timeline (not clamped: it may be before or after the recordings).
 * @param {string} timestamp
 * @param {Timeline} timeline
 * @returns {number} ms from the origin
 */
export function eventTime(timestamp, timeline) {
  return Date.parse(timestamp) - timeline.origin;
}

/**
 * @param {number} t
 * @param {number} duration
 * @returns {number} t within `[0, duration]` (0 for NaN)
 */
export function clampTime(t, duration) {
  return Number.isFinite(t) ? clamp(t, 0, Math.max(0, duration)) : 0;
}

/**
 * The shared clock's position: it was at `anchorPos` at wall time `anchorWall` and has run
 * since at `rate` (a paused clock is re-anchored, so this is only asked while playing).
 * @param {number} anchorPos ms on the timeline
 * @param {number} anchorWall ms (performance.now() at the anchor)
 * @param {number} now ms (performance.now())
 * @param {number} rate playback rate
 * @param {number} duration the timeline's length
 * @returns {number}
 */
export function clockPosition(anchorPos, anchorWall, now, rate, duration) {
  return clampTime(anchorPos + Math.max(0, now - anchorWall) * rate, duration);
}

/**
 * Whether a player is far enough from where the clock wants it to be put back (a seek costs a
 * stutter, so small drift is left alone; at a higher rate the clock moves further per check).
 * @param {number} currentMs the player's position in its file
 * @param {number} wantedMs where the clock wants it
 * @param {number} rate
 * @returns {boolean}
 */
export function needsResync(currentMs, wantedMs, rate) {
  return Math.abs(currentMs - wantedMs) > 400 + 250 * rate;
}

/**
 * A position on the timeline, for people: "4:09", "1:05:09".
 * @param {number} ms
 * @returns {string}
 */
export function formatOffset(ms) {
  const total = Math.max(0, Math.floor((Number.isFinite(ms) ? ms : 0) / 1000));
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const ss = String(total % 60).padStart(2, "0");
  return hours ? `${hours}:${String(minutes).padStart(2, "0")}:${ss}` : `${minutes}:${ss}`;
}

/**
 * The segments worth having downloaded at time `t`: the one playing on each track, and the next
 * one (so a switch does not wait for the download).
 * @param {Timeline} timeline
 * @param {number} t
 * @returns {Set<string>} recording ids
 */
export function wantedSegments(timeline, t) {
  /** @type {Set<string>} */
  const ids = new Set();
  for (const list of Object.values(timeline.tracks)) {
    const c = coverageAt(list, t);
    if (c.segment) ids.add(c.segment.id);
    if (c.next) ids.add(c.next.id);
  }
  return ids;
}

/**
 * @param {number} x
 * @param {number} lo
 * @param {number} hi
 */
function clamp(x, lo, hi) {
  return Math.min(hi, Math.max(lo, x));
}

/**
 * Downloaded segments as object URLs, the least recently used revoked once more than
 * `capacity` are held (the wanted ones are never evicted). A download evicted before it ends
 * is aborted, and its URL revoked as soon as it exists.
 */
export class SegmentCache {
  /**
   * @param {object} options
   * @param {(id: string, signal: AbortSignal) => Promise<string>} options.load downloads one
   *   segment and makes its object URL
   * @param {(url: string) => void} options.release revokes an object URL
   * @param {number} [options.capacity] segments kept (default 8)
   */
  constructor({ load, release, capacity = 8 }) {
    this.load = load;
    this.release = release;
    this.capacity = capacity;
    /** @type {Map<string, {url: Promise<string>, abort: AbortController}>} in use order, oldest first */
    this.entries = new Map();
  }

  /**
   * The segment's object URL (downloaded once; a failed download is forgotten, to be tried again).
   * @param {string} id
   * @returns {Promise<string>}
   */
  get(id) {
    const had = this.entries.get(id);
    if (had) {
      this.entries.delete(id);
      this.entries.set(id, had);
      return had.url;
    }
    const abort = new AbortController();
    const url = this.load(id, abort.signal);
    const entry = { url, abort };
    this.entries.set(id, entry);
    // (an entry evicted while downloading is released by evict())
    url.catch(() => {
      if (this.entries.get(id) === entry) this.entries.delete(id);
    });
    return url;
  }

  /** @param {string} id @returns {boolean} */
  has(id) {
    return this.entries.has(id);
  }

  /**
   * Evicts the least recently used entries beyond the capacity, never one of `keep`.
   * @param {Set<string>} keep
   */
  trim(keep) {
    for (const id of [...this.entries.keys()]) {
      if (this.entries.size <= this.capacity) break;
      if (!keep.has(id)) this.evict(id);
    }
  }

  /** Evicts everything (leaving the page, another session). */
  clear() {
    for (const id of [...this.entries.keys()]) this.evict(id);
  }

  /** @param {string} id */
  evict(id) {
    const entry = this.entries.get(id);
    if (!entry) return;
    this.entries.delete(id);
    entry.abort.abort();
    entry.url.then(
      (u) => this.release(u),
      () => {},
    );
  }
}
