// The proctoring signals' debouncing rules (SIGNALS in hub-client.js), on a fake page.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ProctoringMonitor, SIGNALS } from "../hub-client.js";
import { FakeClock } from "./fakes.mjs";

/** A document and window that the test switches between states. */
function fakePage() {
  const doc = Object.assign(new EventTarget(), {
    visibilityState: "visible",
    fullscreenElement: null,
    focused: true,
    hasFocus() {
      return this.focused;
    },
  });
  const win = new EventTarget();
  return {
    doc,
    win,
    hide() {
      doc.visibilityState = "hidden";
      doc.focused = false;
      win.dispatchEvent(new Event("blur"));
      doc.dispatchEvent(new Event("visibilitychange"));
    },
    show() {
      doc.visibilityState = "visible";
      doc.focused = true;
      doc.dispatchEvent(new Event("visibilitychange"));
      win.dispatchEvent(new Event("focus"));
    },
    blur() {
      doc.focused = false;
      win.dispatchEvent(new Event("blur"));
    },
    focus() {
      doc.focused = true;
      win.dispatchEvent(new Event("focus"));
    },
    clip(type) {
      doc.dispatchEvent(new Event(type));
    },
  };
}

function monitor() {
  const clock = new FakeClock();
  const page = fakePage();
  const reports = [];
  const m = new ProctoringMonitor({
    report: (type, severity, meta) => reports.push({ at: clock.now(), type, severity, meta }),
    document: /** @type {any} */ (page.doc),
    window: /** @type {any} */ (page.win),
    timers: clock,
    now: clock.now,
  });
  m.start();
  return { clock, page, reports, m };
}

test("a tab hidden for less than a second is not reported; longer is reported once, as TAB_HIDDEN only", async () => {
  const { clock, page, reports } = monitor();
  page.hide();
  await clock.advance(900);
  page.show();
  await clock.advance(5_000);
  assert.equal(reports.length, 0);
  page.hide();
  await clock.advance(30_000);
  assert.deepEqual(reports.map((r) => [r.type, r.severity]), [["TAB_HIDDEN", SIGNALS.TAB_HIDDEN.severity]]);
});

test("window blur counts after 2 s of a visible but unfocused page", async () => {
  const { clock, page, reports } = monitor();
  page.blur();
  await clock.advance(1_500);
  page.focus();
  await clock.advance(5_000);
  assert.equal(reports.length, 0, "a short blur (a notification) is ignored");
  page.blur();
  await clock.advance(2_000);
  assert.deepEqual(reports.map((r) => r.type), ["WINDOW_BLUR"]);
});

test("copy/paste: the first at once, then one summed event per 10 s window", async () => {
  const { clock, page, reports } = monitor();
  page.clip("paste");
  assert.deepEqual(reports.map((r) => [r.type, r.meta.paste]), [["COPY_PASTE", 1]]);
  for (let i = 0; i < 5; i++) {
    await clock.advance(1_000);
    page.clip(i % 2 ? "copy" : "paste");
  }
  assert.equal(reports.length, 1, "the window holds the rest back");
  await clock.advance(5_000);
  assert.equal(reports.length, 2);
  assert.deepEqual({ copy: reports[1].meta.copy, paste: reports[1].meta.paste }, { copy: 2, paste: 3 });
  await clock.advance(30_000);
  assert.equal(reports.length, 2, "a quiet window reports nothing");
  page.clip("cut");
  assert.equal(reports.length, 3, "after a quiet window the next one is at once again");
});

test("leaving fullscreen is reported at once, at most once per 5 s; stop() removes every listener", async () => {
  const { clock, page, reports, m } = monitor();
  const enter = () => {
    page.doc.fullscreenElement = {};
    page.doc.dispatchEvent(new Event("fullscreenchange"));
  };
  const exit = () => {
    page.doc.fullscreenElement = null;
    page.doc.dispatchEvent(new Event("fullscreenchange"));
  };
  exit(); // never was fullscreen: nothing
  enter();
  exit();
  enter();
  await clock.advance(1_000);
  exit();
  assert.deepEqual(reports.map((r) => r.type), ["FULLSCREEN_EXIT"]);
  m.stop();
  enter();
  await clock.advance(10_000);
  exit();
  page.hide();
  await clock.advance(10_000);
  assert.equal(reports.length, 1);
});
