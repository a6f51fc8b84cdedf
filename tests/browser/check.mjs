// The system check before an exam, through the pages only: a candidate logs in at /app, presses
// "Start exam", lands on the check (#/check/<examId>, the timer not started), sees camera,
// microphone, connection, sending to the proctor (the camera published into the candidate's
// check room on the relay) and browser pass, tests screen sharing, continues to the exam page,
// and the check has released every device and closed its sockets on the way out; then "Resume
// exam" on My exams goes straight back to the running exam, without the check.
//
//   BROWSER_TEST='{"hub":"http://127.0.0.1:18094","candidate":{"email":"alice@demo.proctor",
//     "password":"demo-alice-pass"},"screenshots":"/tmp/shots"}' node tests/browser/check.mjs
//
// The candidate needs an exam they have not started (continuing starts it, so each run needs a
// fresh exam: drop the demo database and restart the hub). Headless Chromium shares a screen
// with --auto-select-desktop-capture-source; where it cannot, the screen check must say so as a
// problem and the run goes on with "Continue anyway" (reported as `screen: "problem"`).
// Prints one JSON line with what it saw; exits non-zero on any failure. With `screenshots`,
// saves check.png (1280×800, the check page once every check has a verdict) there.
import { chromium } from "playwright-core";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const cfg = JSON.parse(process.env.BROWSER_TEST || "{}");
if (!cfg.hub || !cfg.candidate?.email) {
  console.error('BROWSER_TEST must be JSON: {"hub", "candidate": {"email", "password"}, "screenshots"?}');
  process.exit(2);
}
// The flags of tests/browser/exam_day.mjs (fake camera and microphone, no prompts), and a screen
// share that picks the entire screen without the picker.
const FLAGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
  "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
  "--allow-loopback-in-peer-connection",
  "--auto-select-desktop-capture-source=Entire screen",
];

const saw = { steps: [] };
const started = Date.now();
const step = (name, extra = {}) => saw.steps.push({ name, t: Date.now() - started, ...extra });

async function shot(page, name) {
  if (!cfg.screenshots) return;
  mkdirSync(cfg.screenshots, { recursive: true });
  await page.screenshot({ path: join(cfg.screenshots, `${name}.png`) });
}

/**
 * Runs in the page before its scripts: remembers every media track and WebSocket the page
 * makes, so the scenario can tell that the check released them when it was left.
 */
function recordDevicesAndSockets() {
  const w = /** @type {any} */ (window);
  w.__tracks = [];
  w.__sockets = [];
  const md = navigator.mediaDevices;
  for (const name of ["getUserMedia", "getDisplayMedia"]) {
    const original = md[name].bind(md);
    md[name] = async (...args) => {
      const stream = await original(...args);
      for (const track of stream.getTracks()) w.__tracks.push({ via: name, kind: track.kind, track });
      return stream;
    };
  }
  const Original = window.WebSocket;
  window.WebSocket = class extends Original {
    constructor(...args) {
      super(...args);
      w.__sockets.push(this);
    }
  };
}

/** Each check row as the page shows it. */
const checkRows = (page) =>
  page.locator("li.check").evaluateAll((els) =>
    els.map((el) => ({
      check: el.dataset.check,
      state: el.dataset.state,
      label: el.querySelector(".check-label")?.textContent,
      text: el.querySelector(".check-text")?.textContent,
      fix: el.querySelector(".check-fix:not([hidden])")?.textContent || undefined,
    })),
  );

/** Waits until the row has a verdict (not waiting, not checking). */
const settled = (page, id, timeout = 20_000) =>
  page.waitForFunction(
    (check) => {
      const state = document.querySelector(`li.check[data-check="${check}"]`)?.getAttribute("data-state");
      return state === "passed" || state === "problem";
    },
    id,
    { timeout },
  );

async function main() {
  const dir = mkdtempSync(join(tmpdir(), "hub-check-"));
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: "/usr/bin/chromium",
    headless: true,
    ignoreDefaultArgs: true,
    args: [...FLAGS, `--user-data-dir=${dir}`, "--remote-debugging-pipe", "about:blank"],
    viewport: { width: 1280, height: 800 },
  });
  const problems = [];
  try {
    await context.addInitScript(recordDevicesAndSockets);
    const page = context.pages()[0] || (await context.newPage());
    page.on("pageerror", (e) => problems.push(`page error: ${e}`));
    page.on("console", (m) => {
      if (process.env.BROWSER_DEBUG) console.error("[page]", m.type(), m.text());
      if (m.type() === "error") problems.push(`console error: ${m.text()}`);
    });

    // 1. Log in.
    await page.goto(`${cfg.hub}/app`);
    await page.getByLabel("Email").fill(cfg.candidate.email);
    await page.getByLabel("Password").fill(cfg.candidate.password);
    await page.getByRole("button", { name: "Log in" }).click();

    // 2. My exams: "Start exam" (not Resume: that one goes straight to the running exam).
    await page.getByRole("heading", { name: "My exams", level: 1 }).waitFor();
    const start = page.getByRole("button", { name: /^Start exam: / }).first();
    try {
      await start.waitFor({ timeout: 10_000 });
    } catch {
      throw new Error("no exam to start: this candidate has none open and unstarted (drop the demo database for a fresh one)");
    }
    saw.startButton = await start.textContent();
    await start.click();

    // 3. The check page, with the timer not started.
    await page.getByRole("heading", { name: "System check", level: 1 }).waitFor();
    saw.hash = await page.evaluate(() => location.hash);
    if (!/^#\/check\/[^/]+$/.test(saw.hash)) throw new Error(`Start went to ${saw.hash}, not the check`);
    const continueButton = page.getByRole("button", { name: "Continue to the exam" });
    if (!(await continueButton.isDisabled())) throw new Error("Continue is enabled before the checks passed");
    step("check-page", { hash: saw.hash });

    // 4. The checks that run by themselves.
    for (const id of ["camera", "microphone", "connection", "browser"]) await settled(page, id);
    // The relay check starts once the camera passed and may take up to 15 s.
    await settled(page, "relay", 30_000);
    step("automatic-checks-done");

    // 5. Screen sharing, from a click.
    await page.getByRole("button", { name: "Test screen sharing" }).click();
    await settled(page, "screen");
    step("screen-tested");

    // 6. The camera shows a picture, the microphone meter hears the fake device's beeps.
    await page.waitForFunction(() => {
      const v = /** @type {HTMLVideoElement | null} */ (document.querySelector("video.check-preview"));
      return v && !v.hidden && v.videoWidth > 0;
    }, null, { timeout: 10_000 });
    saw.preview = await page.locator("video.check-preview").evaluate((v) => `${v.videoWidth}x${v.videoHeight}`);
    await page.locator('.check-heard[data-heard="true"]').waitFor({ timeout: 10_000 });
    saw.micHeard = await page.locator(".check-heard").textContent();

    saw.checks = await checkRows(page);
    const state = Object.fromEntries(saw.checks.map((c) => [c.check, c.state]));
    saw.relay = state.relay;
    for (const id of ["camera", "microphone", "connection", "relay", "browser"]) {
      if (state[id] !== "passed") throw new Error(`${id} did not pass: ${JSON.stringify(saw.checks.find((c) => c.check === id))}`);
    }
    saw.continueStatus = await page.locator("#check-continue-status").textContent();
    // Wait for the meter to show a beep, for the screenshot.
    await page.waitForFunction(() => Number(document.querySelector(".check-meter")?.getAttribute("aria-valuenow")) > 0, null, { timeout: 5_000 }).catch(() => {});
    await shot(page, "check");

    // 7. The way on: the primary button when everything passed, else (the screen could not be
    //    shared headless) "Continue anyway", which must explain what the proctor will see.
    saw.screen = state.screen;
    if (state.screen === "passed") {
      if (await continueButton.isDisabled()) throw new Error("Continue stays disabled although every check passed");
      if (await page.getByRole("button", { name: "Continue anyway" }).isVisible()) throw new Error("Continue anyway shown although every check passed");
      await continueButton.click();
    } else {
      if (!(await continueButton.isDisabled())) throw new Error("Continue is enabled with the screen check failed");
      if (!/proctor will see that your screen is not shared/.test(saw.continueStatus || "")) {
        throw new Error(`Continue anyway does not explain what is missing: ${saw.continueStatus}`);
      }
      await page.getByRole("button", { name: "Continue anyway" }).click();
    }

    // 8. The exam page, and the check let go of everything.
    await page.locator(".exam-bar h1").waitFor({ timeout: 15_000 });
    saw.examHash = await page.evaluate(() => location.hash);
    saw.examTitle = await page.locator(".exam-bar h1").textContent();
    saw.released = await page.evaluate(() => {
      const w = /** @type {any} */ (window);
      return {
        tracks: w.__tracks.map((t) => `${t.via}:${t.kind}:${t.track.readyState}`),
        // The first socket is the connection check's, the second the relay check's; the exam
        // page opens its own after them.
        checkSocket: ["connecting", "open", "closing", "closed"][w.__sockets[0]?.readyState ?? -1] || "none",
        relaySocket: ["connecting", "open", "closing", "closed"][w.__sockets[1]?.readyState ?? -1] || "none",
        sockets: w.__sockets.length,
      };
    });
    const live = saw.released.tracks.filter((t) => !t.endsWith(":ended"));
    if (saw.released.tracks.length < 2 || live.length) throw new Error(`the check kept devices: ${saw.released.tracks}`);
    if (!["closing", "closed"].includes(saw.released.checkSocket)) throw new Error(`the check's socket is ${saw.released.checkSocket}`);
    if (!["closing", "closed"].includes(saw.released.relaySocket)) throw new Error(`the relay check's socket is ${saw.released.relaySocket}`);
    // The relay check opened a camera of its own (a second getUserMedia video track).
    if (saw.released.tracks.filter((t) => t.startsWith("getUserMedia:video")).length < 2) {
      throw new Error(`the relay check opened no camera: ${saw.released.tracks}`);
    }
    step("exam-page", { hash: saw.examHash });

    // 9. The session runs now: My exams offers "Resume", which skips the check.
    await page.evaluate(() => (location.hash = "#/exams"));
    const resume = page.getByRole("button", { name: /^Resume exam: / }).first();
    await resume.waitFor({ timeout: 10_000 });
    await resume.click();
    await page.locator(".exam-bar h1").waitFor({ timeout: 15_000 });
    saw.resumeHash = await page.evaluate(() => location.hash);
    if (saw.resumeHash !== saw.examHash) throw new Error(`Resume went to ${saw.resumeHash}`);
    step("resumed-without-check");

    if (problems.length) throw new Error(problems.join("; "));
  } catch (e) {
    const page = context.pages()[0];
    if (page && cfg.screenshots) await shot(page, "check-failure").catch(() => {});
    throw e;
  } finally {
    await context.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  () => {
    console.log(JSON.stringify({ ok: true, ...saw }));
    process.exit(0);
  },
  (e) => {
    console.log(JSON.stringify({ ok: false, error: String(e && e.message ? e.message : e), ...saw }));
    process.exit(1);
  },
);
