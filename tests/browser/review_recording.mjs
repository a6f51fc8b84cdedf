// A proctor reviews a recorded session, through the pages only: opens the review queue, chooses
// the session, waits until its camera recording can play, plays it (the shared clock and the
// video both advance), changes the speed to 2×, then chooses the session's events in the event
// timeline — one with the mouse, one with the keyboard — each of which must send the player to
// 2 s before the event (clamped at the start of the recordings).
//
//   BROWSER_TEST='{"hub":"http://127.0.0.1:18094","examId":"<uuid>","sessionId":"<uuid>",
//     "proctor":{"email":"reviewer@example.test","password":"password-123"},
//     "events":[{"eventId":"<uuid>","eventType":"TAB_HIDDEN","atMs":1000},
//       {"eventId":"<uuid>","eventType":"FULLSCREEN_EXIT","atMs":4000}],
//     "screenshots":"/tmp/review-shots"}' node tests/browser/review_recording.mjs
//
// The session must be ended and waiting for a decision, with one camera recording (about 6 s
// long) starting at t = 0 of its timeline; `atMs` is each event's offset from that start.
// tests/browser_review.rs prepares all of it. Prints one JSON line with what it saw
// ({"ok": true, "duration", "seeks": […]}); exits non-zero on any failure, printing the reason
// and the page's console errors. With `screenshots`, saves review-recording.png (1280×800).
import { chromium } from "playwright-core";
import { logIn } from "./pages.mjs";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const cfg = JSON.parse(process.env.BROWSER_TEST || "{}");
if (!cfg.hub || !cfg.examId || !cfg.sessionId || !cfg.proctor?.email || !Array.isArray(cfg.events) || cfg.events.length < 2) {
  console.error(
    'BROWSER_TEST must be JSON: {"hub", "examId", "sessionId", "proctor": {"email", "password"}, "events": [{"eventId", "eventType", "atMs"} ×2], "screenshots"?}',
  );
  process.exit(2);
}
// The flags of tests/browser/run.mjs (fake camera and microphone, no prompts).
const FLAGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
  "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
  "--allow-loopback-in-peer-connection",
];
/** The test video's length (ffmpeg testsrc, -t 6), and how far the browser's may be from it. */
const VIDEO_S = 6;
const VIDEO_SLACK_S = 1;
/** An event seeks the players this long before it (SEEK_LEAD_MS in web/staff-recordings.js). */
const SEEK_LEAD_MS = 2_000;
/** How close the shared clock (ms) and the video (s) must come to where a paused seek sent them. */
const POSITION_SLACK_MS = 400;
const VIDEO_SLACK_TIME_S = 0.5;

const started = Date.now();
const saw = { duration: null, seeks: [], steps: [] };
const step = (name, extra = {}) => saw.steps.push({ name, t: Date.now() - started, ...extra });
const problems = [];
const consoleErrors = [];
let context = null;
let profile = null;
let page = null;

async function shot(name) {
  if (!cfg.screenshots || !page) return;
  mkdirSync(cfg.screenshots, { recursive: true });
  await page.screenshot({ path: join(cfg.screenshots, `${name}.png`) });
}

/** What the player shows now: the shared clock, the camera pane and its video. */
function measure() {
  return page.evaluate(() => {
    const section = document.querySelector("#recordings");
    const pane = document.querySelector("#recording-pane-camera");
    const video = document.querySelector("video#recording-video-camera");
    return {
      positionMs: section?.dataset.positionMs == null ? null : Number(section.dataset.positionMs),
      playing: section?.dataset.playing ?? null,
      coverage: pane?.dataset.coverage ?? null,
      segment: pane?.dataset.segment ?? null,
      offsetMs: pane?.dataset.offsetMs == null ? null : Number(pane.dataset.offsetMs),
      note: pane?.querySelector(".stage-note")?.textContent || null,
      readyState: video ? video.readyState : null,
      duration: video ? video.duration : null,
      currentTime: video ? video.currentTime : null,
      paused: video ? video.paused : null,
      playbackRate: video ? video.playbackRate : null,
      videoError: video?.error ? `${video.error.code}: ${video.error.message}` : null,
      current: [...document.querySelectorAll("#recording-events button.event-seek[aria-current='true']")].map((b) => b.dataset.eventId),
    };
  });
}

/**
 * Polls measure() until `ok` holds for it; throws naming `what` and the last measurement when
 * it does not within `timeout` ms. Returns the measurement that passed.
 */
async function waitUntil(what, ok, timeout = 10_000) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const m = await measure();
    if (ok(m)) return m;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeout} ms; the player shows ${JSON.stringify(m)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The event button of one of cfg.events. */
const eventButton = (e) => page.locator(`#recording-events button.event-seek[data-event-id="${e.eventId}"]`);

/**
 * Chooses an event (`how`: "click" or "Enter" on the focused button) while the player is
 * paused, and checks that the clock and the video went to 2 s before it.
 */
async function seekTo(e, how) {
  const button = eventButton(e);
  await button.waitFor({ timeout: 10_000 });
  const seekMs = Number(await button.getAttribute("data-seek-ms"));
  const expected = Math.max(0, e.atMs - SEEK_LEAD_MS);
  if (!(Math.abs(seekMs - expected) <= 100)) throw new Error(`${e.eventType}'s button seeks to ${seekMs} ms, not ${expected} ms`);
  if (how === "click") {
    await button.click();
  } else {
    await button.focus();
    await page.keyboard.press("Enter");
  }
  const m = await waitUntil(
    `${how} on ${e.eventType} (seek to ${seekMs} ms)`,
    (m) =>
      m.playing === "false" &&
      Math.abs(m.positionMs - seekMs) <= POSITION_SLACK_MS &&
      m.coverage === "playing" &&
      Math.abs(m.currentTime - seekMs / 1000) <= VIDEO_SLACK_TIME_S &&
      m.current.length === 1 &&
      m.current[0] === e.eventId,
  );
  const seek = { eventId: e.eventId, eventType: e.eventType, how, seekMs, positionMs: m.positionMs, offsetMs: m.offsetMs, currentTime: m.currentTime };
  saw.seeks.push(seek);
  step(`seek-${e.eventType}`);
}

async function main() {
  profile = mkdtempSync(join(tmpdir(), "hub-review-recording-"));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: "/usr/bin/chromium",
    headless: true,
    ignoreDefaultArgs: true,
    args: [...FLAGS, `--user-data-dir=${profile}`, "--remote-debugging-pipe", "about:blank"],
    viewport: { width: 1280, height: 800 },
  });
  page = context.pages()[0] || (await context.newPage());
  page.setDefaultTimeout(15_000);
  page.on("pageerror", (e) => problems.push(`page error: ${e}`));
  page.on("console", (m) => {
    if (process.env.BROWSER_DEBUG) console.error("[page]", m.type(), m.text());
    if (m.type() !== "error") return;
    consoleErrors.push(m.text());
    // A 4xx the page may ask for (a proctor is not shown the answer keys) logs a failed resource.
    if (!/status of 4\d\d|WebSocket/.test(m.text())) problems.push(`console error: ${m.text()}`);
  });

  // 1. Log in, open the review queue and choose the session; wait until its camera can play.
  await logIn(page, cfg.hub, cfg.proctor);
  step("logged-in");
  await page.goto(`${cfg.hub}/app#/review/${encodeURIComponent(cfg.examId)}`);
  const item = page.locator(`button.queue-item[data-session="${cfg.sessionId}"]`);
  await item.waitFor({ timeout: 15_000 });
  await item.click();
  await page.locator("#recordings").waitFor({ timeout: 15_000 });
  await page.locator("#recording-pane-camera").waitFor({ timeout: 15_000 });
  const loaded = await waitUntil("the camera recording loads", (m) => m.coverage != null && m.coverage !== "loading", 20_000);
  if (loaded.coverage !== "playing") throw new Error(`the camera pane shows "${loaded.coverage}" (${loaded.note}), not the recording`);
  const ready = await waitUntil("the camera video's metadata", (m) => m.readyState >= 1 || m.videoError != null, 15_000);
  if (ready.videoError) throw new Error(`the camera video failed: ${ready.videoError}`);
  saw.duration = ready.duration;
  if (!(Math.abs(ready.duration - VIDEO_S) <= VIDEO_SLACK_S)) throw new Error(`the camera video lasts ${ready.duration} s, not about ${VIDEO_S} s`);
  if (ready.positionMs !== 0 || ready.playing !== "false") throw new Error(`the player did not start paused at 0: ${JSON.stringify(ready)}`);
  saw.loaded = { coverage: ready.coverage, segment: ready.segment, readyState: ready.readyState, duration: ready.duration };
  step("loaded", saw.loaded);

  // 2. Play: the clock and the video advance; 2× speeds the video up.
  await page.locator("#recording-play").click();
  await waitUntil("the player plays", (m) => m.playing === "true", 5_000);
  await page.waitForTimeout(1_500);
  const played = await waitUntil(
    "the clock and the video advance",
    (m) => m.playing === "true" && m.positionMs > 500 && m.currentTime > 0.3 && !m.paused,
    5_000,
  );
  saw.played = { positionMs: played.positionMs, currentTime: played.currentTime, button: (await page.locator("#recording-play").textContent())?.trim() };
  step("played", saw.played);
  await page.selectOption("#recording-rate", "2");
  const faster = await waitUntil("the video plays at 2×", (m) => m.playbackRate === 2, 5_000);
  saw.rate = { selected: await page.locator("#recording-rate").inputValue(), playbackRate: faster.playbackRate };
  step("rate", saw.rate);
  // Pause, so the seeks are exact. The clock pauses by itself at the end of the recordings, so
  // the button is pressed only while playing, checked in the page in one go (no tick between).
  await page.evaluate(() => {
    if (document.querySelector("#recordings")?.dataset.playing === "true") document.querySelector("#recording-play")?.click();
  });
  const paused = await waitUntil("the player pauses", (m) => m.playing === "false" && m.paused, 5_000);
  step("paused", { positionMs: paused.positionMs, currentTime: paused.currentTime });

  // 3. The events: the later one with the mouse (to 2 s before it), the earlier one with the
  //    keyboard (2 s before it is before the recordings: clamped to 0).
  const byTime = [...cfg.events].sort((a, b) => a.atMs - b.atMs);
  const late = cfg.events.find((e) => e.eventType === "FULLSCREEN_EXIT") || byTime[byTime.length - 1];
  const early = cfg.events.find((e) => e.eventType === "TAB_HIDDEN") || byTime[0];
  await seekTo(late, "click");
  await seekTo(early, "Enter");

  // 4. What the reviewer sees.
  await page.locator("#recordings").scrollIntoViewIfNeeded();
  await shot("review-recording");

  if (problems.length) throw new Error(problems.join("; "));
}

main()
  .then(
    () => ({ ok: true }),
    async (e) => {
      await shot("review-recording-failure").catch(() => {});
      return { ok: false, error: String(e && e.message ? e.message : e) };
    },
  )
  .then(async (result) => {
    if (context) await context.close().catch(() => {});
    if (profile) rmSync(profile, { recursive: true, force: true });
    console.log(JSON.stringify({ ...result, ms: Date.now() - started, ...saw, consoleErrors }));
    process.exit(result.ok ? 0 : 1);
  });
