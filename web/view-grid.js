// @ts-check
/**
 * The live grid of an exam (`#/grid/<examId>`, staff): one tile per session, updated from the
 * WebSocket (`watch` → `session-snapshot`, then `session-update`s), with a camera thumbnail
 * received only while the tile is on screen.
 *
 * Sources: the socket says how each session is doing; `GET /exams/{id}/sessions` gives the
 * candidates' names (asked at once, and again when a session the grid does not know starts);
 * `GET /sessions/{id}` gives a session's media room, asked the first time its tile is seen.
 * One socket carries every tile's media: a {@link RoomSubscriber} per visible tile, on the low
 * simulcast layer, camera only.
 */
import { HubSocket } from "./hub-client.js";
import { h, show, errorText } from "./ui.js";
import { SessionBoard, SORTS, FILTERS, sortEntries, matchesFilter, filterCounts, isEnded, statusText, formatScore } from "./staff-board.js";
import { LazySubscriptions } from "./staff-tiles.js";
import { RoomSubscriber } from "./staff-media.js";
import { Tile } from "./staff-tile.js";
import { getExam, allExamSessions } from "./staff-api.js";
import { watchExam, connectionPill } from "./staff-socket.js";

/** @typedef {import("./staff-board.js").SortKey} SortKey */
/** @typedef {import("./staff-board.js").FilterKey} FilterKey */
/** @typedef {import("./staff-board.js").Change} Change */

/** Re-sorting moves tiles under the pointer: at most this often while updates stream in. */
const RESORT_EVERY_MS = 1_500;
/** A burst of new sessions (a class starting together) costs one list request. */
const NAMES_DEBOUNCE_MS = 800;
/**
 * The list is read again this often: the socket announces a session once its laptop connects,
 * so a session started on a laptop whose socket never connects would otherwise not show, and
 * that candidate is the one a proctor most needs to see.
 */
const LIST_REFRESH_MS = 20_000;

/** @param {import("./app.js").ViewContext} ctx */
export async function gridView(ctx) {
  const { client, arg: examId } = ctx;
  show("Live grid", h("h1", {}, "Live grid"), h("p", { "aria-live": "polite" }, "Loading the exam…"));
  let exam;
  try {
    exam = await getExam(client, examId);
  } catch (e) {
    show(
      "Live grid",
      h("h1", {}, "Live grid"),
      h("p", { class: "form-error", role: "alert" }, `The exam could not be loaded. ${errorText(e)}`),
      h(
        "div",
        { class: "button-row" },
        h("button", { type: "button", class: "primary", onclick: () => gridView(ctx) }, "Try again"),
        h("a", { href: "#/exams", class: "button-link secondary" }, "Back to exams"),
      ),
    );
    return;
  }

  const board = new SessionBoard();
  const socket = new HubSocket(client);
  /** @type {Map<string, Tile>} */
  const tiles = new Map();
  /** @type {Map<string, Promise<string>>} session id → its media room */
  const rooms = new Map();
  /** @type {SortKey} */
  let sortKey = "flagged";
  /** @type {FilterKey} */
  let filter = "all";
  let lastSort = 0;
  /** @type {ReturnType<typeof setTimeout> | null} */
  let sortTimer = null;
  /** @type {ReturnType<typeof setTimeout> | null} */
  let namesTimer = null;
  /** @type {ReturnType<typeof setInterval> | null} */
  let listTimer = null;
  let disposed = false;

  // --- the page ---------------------------------------------------------------------------------
  const list = h("ul", { class: "tiles", "aria-label": "Candidates" });
  const empty = h("p", { class: "note empty" });
  const problem = h("p", { class: "form-error", role: "alert" });
  const announcer = h("p", { class: "visually-hidden", "aria-live": "polite" });
  /** @type {Record<FilterKey, HTMLElement>} */
  const counts = /** @type {any} */ ({});
  const filters = h(
    "fieldset",
    { class: "segmented" },
    h("legend", {}, "Show"),
    /** @type {FilterKey[]} */ (Object.keys(FILTERS)).map((key) => {
      counts[key] = h("span", { class: "count" }, "0");
      const id = `grid-filter-${key}`;
      return h(
        "span",
        { class: "segment" },
        h("input", {
          type: "radio",
          name: "grid-filter",
          id,
          value: key,
          checked: key === filter,
          onchange: () => {
            filter = key;
            render(true);
          },
        }),
        h("label", { for: id }, FILTERS[key], " ", counts[key]),
      );
    }),
  );
  const sortSelect = h(
    "select",
    {
      id: "grid-sort",
      class: "select",
      onchange: () => {
        sortKey = /** @type {SortKey} */ (sortSelect.value);
        render(true);
      },
    },
    /** @type {SortKey[]} */ (Object.keys(SORTS)).map((key) => h("option", { value: key, selected: key === sortKey }, SORTS[key])),
  );
  const pill = connectionPill(socket);

  show(
    `Live: ${exam.title}`,
    h(
      "div",
      { class: "page-head" },
      h("div", {}, h("p", { class: "crumbs" }, h("a", { href: "#/exams" }, "Exams")), h("h1", {}, `Live: ${exam.title}`)),
      h("div", { class: "page-head-side" }, pill, h("a", { href: `#/review/${encodeURIComponent(examId)}`, class: "button-link secondary" }, "Review ended sessions")),
    ),
    h("div", { class: "grid-controls" }, filters, h("div", { class: "field inline" }, h("label", { for: "grid-sort" }, "Sort by"), sortSelect)),
    problem,
    announcer,
    list,
    empty,
  );

  // --- media: lazily, per visible tile ----------------------------------------------------------
  /** @param {string} id */
  function roomOf(id) {
    let room = rooms.get(id);
    if (!room) {
      room = client.session(id).then((s) => s.webrtcRoomId);
      room.catch(() => rooms.delete(id)); // ask again next time the tile shows
      rooms.set(id, room);
    }
    return room;
  }

  const lazy = new LazySubscriptions({
    open: (id) => {
      const tile = tiles.get(id);
      /** @type {RoomSubscriber | null} */
      let sub = null;
      let closed = false;
      tile?.setFeed("joining");
      roomOf(id).then(
        (roomId) => {
          if (closed || !tile) return;
          sub = new RoomSubscriber(socket, roomId, { layer: "low", tracks: ["camera"] });
          sub.on("tracks", ({ tracks }) => tile.showVideo(tracks.find((t) => t.source === "camera")?.track || null));
          sub.on("state", ({ state }) => tile.setFeed(state));
          sub.start();
        },
        () => {
          if (!closed) tile?.setFeed("unavailable");
        },
      );
      return {
        close() {
          closed = true;
          sub?.stop();
          tile?.showVideo(null);
          tile?.setFeed("off");
        },
      };
    },
  });

  // --- the model → the tiles --------------------------------------------------------------------
  /**
   * @param {Change} change
   * @param {boolean} announce tell screen readers (live updates; not the first snapshot)
   */
  function applied({ entry, added, flaggedNow, endedNow }, announce) {
    let tile = tiles.get(entry.id);
    if (!tile) {
      tile = new Tile(entry);
      tiles.set(entry.id, tile);
      list.append(tile.el);
    } else {
      tile.update(entry);
    }
    // An ended session publishes nothing more: let its video go.
    if (isEnded(entry)) lazy.untrack(entry.id);
    else lazy.track(entry.id, tile.el);
    if (!announce) return;
    const who = entry.name || "A candidate";
    if (added) say(`${who} started the exam.`);
    if (flaggedNow) say(`${who} is flagged, score ${formatScore(entry.violationScore)}.`);
    if (endedNow) say(`${who}: ${statusText(entry.status).toLowerCase()}.`);
  }

  /** @param {string} text */
  function say(text) {
    announcer.textContent = text;
  }

  /**
   * Counts, filter, order. Moving tiles is throttled unless the person asked (`now`).
   * @param {boolean} [now]
   */
  function render(now = false) {
    const entries = board.list();
    const c = filterCounts(entries);
    for (const key of /** @type {FilterKey[]} */ (Object.keys(c))) counts[key].textContent = String(c[key]);
    for (const e of entries) {
      const tile = tiles.get(e.id);
      if (tile) tile.el.hidden = !matchesFilter(e, filter);
    }
    const shown = c[filter];
    empty.hidden = shown > 0;
    empty.textContent = entries.length === 0 ? "No candidate has started this exam yet. New sessions appear here as they start." : `No sessions match “${FILTERS[filter]}”.`;
    const wait = lastSort + RESORT_EVERY_MS - Date.now();
    if (now || wait <= 0) reorder();
    else if (!sortTimer) sortTimer = setTimeout(reorder, wait);
  }

  /** Puts the tiles in the sort order, keeping the keyboard focus where it was. */
  function reorder() {
    if (sortTimer) clearTimeout(sortTimer);
    sortTimer = null;
    lastSort = Date.now();
    const order = sortEntries(board.list(), sortKey).map((e) => /** @type {Tile} */ (tiles.get(e.id)).el);
    const current = [...list.children];
    if (order.length === current.length && order.every((el, i) => el === current[i])) return;
    const focused = document.activeElement instanceof HTMLElement && list.contains(document.activeElement) ? document.activeElement : null;
    list.append(...order);
    focused?.focus({ preventScroll: true });
    // Moving a video element may pause it; the thumbnails are muted, so play() is allowed.
    for (const el of order) {
      const v = el.querySelector("video");
      if (v && v.srcObject && v.paused) v.play().catch(() => {});
    }
  }

  /** Names for sessions that appeared on the socket before the list knew them. */
  function loadNamesSoon() {
    if (namesTimer) return;
    namesTimer = setTimeout(() => {
      namesTimer = null;
      loadList();
    }, NAMES_DEBOUNCE_MS);
  }

  let listLoaded = false;
  async function loadList() {
    try {
      const items = await allExamSessions(client, examId);
      if (disposed) return;
      // After the first load, a session only the list knows has just started: say so.
      for (const item of items) applied(board.applyListItem(item), listLoaded);
      listLoaded = true;
      problem.textContent = "";
      render(true);
    } catch (e) {
      if (!disposed) problem.textContent = `The list of candidates could not be loaded: ${errorText(e)}`;
    }
  }

  // --- the socket -------------------------------------------------------------------------------
  socket.on("session-snapshot", (m) => {
    if (m.examId !== examId) return;
    for (const view of m.sessions) applied(board.applyView(view), false);
    if (board.unnamed().length) loadNamesSoon();
    render(true);
  });
  socket.on("session-update", (m) => {
    const change = board.applyView(m);
    applied(change, true);
    if (!change.entry.name) loadNamesSoon();
    render();
  });
  socket.on("time-extended", (m) => {
    board.extend(m.sessionId, m.expiresAt);
  });
  socket.on("error", (m) => {
    if (m.code === "EXAM_NOT_FOUND" || m.code === "FORBIDDEN") problem.textContent = `The hub refused to show this exam live: ${m.message}`;
  });
  socket.on("stopped", ({ reason }) => {
    if (reason !== "closed") problem.textContent = "The live connection was closed. Reload the page to watch again.";
  });
  const unwatch = watchExam(socket, examId);
  socket.start();
  loadList();
  listTimer = setInterval(loadList, LIST_REFRESH_MS);
  render(true);

  return () => {
    disposed = true;
    if (sortTimer) clearTimeout(sortTimer);
    if (namesTimer) clearTimeout(namesTimer);
    if (listTimer) clearInterval(listTimer);
    lazy.dispose();
    unwatch();
    socket.stop();
  };
}
