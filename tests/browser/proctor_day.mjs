// A proctor's exam day, through the pages only. Two candidates log in at /app, start the exam
// and turn on their camera and screen; a proctor opens the live grid, waits until both tiles
// decode video with the laptops online, opens one session's full view, warns that candidate
// (whose page shows the warning), extends their time by 5 minutes (whose countdown grows),
// terminates the other candidate (whose page shows the terminated end screen, and the grid the
// ended session), and opens the review queue.
//
//   BROWSER_TEST='{"hub":"http://127.0.0.1:18092","proctor":{"email":"proctor@demo.proctor",
//     "password":"demo-proctor-pass"},"examId":"<uuid>","candidates":[{"email":
//     "alice@demo.proctor","password":"demo-alice-pass"},{"email":"bob@demo.proctor",
//     "password":"demo-bob-pass"}],"screenshots":"/tmp/shots"}' node tests/browser/proctor_day.mjs
//
// The candidates need the exam open and not started yet (each run is a fresh browser profile,
// so a new device; a session started by an earlier run is bound to that run's device). Each
// participant gets its own Chromium (own profile, own storage), launched like exam_day.mjs.
// Prints one JSON line with what it saw; exits non-zero on any failure. With `screenshots`,
// saves grid, session, candidate-warned, terminate-confirm, grid-ended and review PNGs
// (1280×800) there.
import { chromium } from "playwright-core";
import { logIn, tileOf } from "./pages.mjs";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const cfg = JSON.parse(process.env.BROWSER_TEST || "{}");
if (!cfg.hub || !cfg.proctor?.email || !cfg.examId || !Array.isArray(cfg.candidates) || cfg.candidates.length < 2) {
  console.error('BROWSER_TEST must be JSON: {"hub", "proctor": {"email", "password"}, "examId", "candidates": [{"email", "password"} ×2], "screenshots"?}');
  process.exit(2);
}
// The flags of tests/browser/run.mjs (fake camera and microphone, no prompts).
const FLAGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
  "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
  "--allow-loopback-in-peer-connection",
];
const WARNING = "Please keep your eyes on your own screen.";
const EXTEND_MINUTES = 5;

const started = Date.now();
const saw = { steps: [] };
const step = (name, extra = {}) => saw.steps.push({ name, t: Date.now() - started, ...extra });
const problems = [];
/** @type {{context: any, dir: string}[]} */
const browsers = [];

async function shot(page, name) {
  if (!cfg.screenshots) return;
  mkdirSync(cfg.screenshots, { recursive: true });
  await page.screenshot({ path: join(cfg.screenshots, `${name}.png`) });
}

/** A fresh Chromium with its own profile, and its page; console errors are collected. */
async function openBrowser(label) {
  const dir = mkdtempSync(join(tmpdir(), `hub-proctor-day-${label}-`));
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: "/usr/bin/chromium",
    headless: true,
    ignoreDefaultArgs: true,
    args: [...FLAGS, `--user-data-dir=${dir}`, "--remote-debugging-pipe", "about:blank"],
    viewport: { width: 1280, height: 800 },
  });
  browsers.push({ context, dir });
  const page = context.pages()[0] || (await context.newPage());
  page.on("pageerror", (e) => problems.push(`${label}: page error: ${e}`));
  page.on("console", (m) => {
    if (process.env.BROWSER_DEBUG) console.error(`[${label}]`, m.type(), m.text());
    // A WebSocket closed by the hub at the end of a session logs an error by design.
    if (m.type() === "error" && !/WebSocket/.test(m.text())) problems.push(`${label}: console error: ${m.text()}`);
  });
  return page;
}

/** Seconds left on a candidate's countdown ("mm:ss" or "h:mm:ss"). */
async function secondsLeft(page) {
  const text = (await page.locator(".exam-bar .timer").textContent()) || "";
  return text.split(":").map(Number).reduce((acc, n) => acc * 60 + n, 0);
}

/**
 * A new start may go through the system check (#/check/<examId>) before the exam: continue
 * from it as a candidate would ("Continue to the exam" once everything passed, else "Continue
 * anyway"), then wait for the exam page.
 */
async function throughSystemCheck(page) {
  const deadline = Date.now() + 45_000;
  while (Date.now() < deadline) {
    if (await page.locator(".exam-bar h1").isVisible()) return;
    for (const name of ["Continue to the exam", "Continue anyway"]) {
      const button = page.getByRole("button", { name, exact: true });
      if ((await button.isVisible()) && (await button.isEnabled())) {
        await button.click();
        await page.locator(".exam-bar h1").waitFor({ timeout: 20_000 });
        return;
      }
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`the exam page did not open (at ${page.url()})`);
}

/** A candidate logs in, starts the exam and shares camera and screen. */
async function candidate(who, label) {
  const page = await openBrowser(label);
  await logIn(page, cfg.hub, who);
  await page.getByRole("heading", { name: "My exams", level: 1 }).waitFor();
  await page.getByRole("button", { name: /^(Start|Resume) exam: / }).first().click();
  await throughSystemCheck(page);
  await page.locator('.exam-bar .pill[data-state="open"]').waitFor({ timeout: 15_000 });
  const name = ((await page.locator(".account .who").textContent()) || "").split(" · ")[0];
  await page.getByRole("button", { name: "Turn on camera and share screen" }).click();
  await page.locator('.media-state[data-state="connected"]').waitFor({ timeout: 30_000 });
  const problemsShown = await page.locator(".media-problems").innerText();
  return { page, name, email: who.email, mediaProblems: problemsShown.trim() || null };
}

/** The grid's tile of a candidate. */

/** Waits until a tile's thumbnail decodes (its video has a size) and its laptop is online. */
async function tileLive(page, name) {
  const tile = tileOf(page, name);
  await tile.waitFor({ timeout: 30_000 });
  await page.waitForFunction(
    (n) => {
      const li = [...document.querySelectorAll("li.tile")].find((el) => el.querySelector(".tile-name")?.textContent === n);
      const v = li?.querySelector("video");
      const laptop = li?.querySelectorAll("dd.liveness")[0];
      return !!v && v.videoWidth > 0 && !v.hidden && laptop?.dataset.state === "ONLINE";
    },
    name,
    { timeout: 45_000 },
  );
  return tile.evaluate((li) => {
    const v = li.querySelector("video");
    const dds = li.querySelectorAll("dd.liveness");
    return {
      sessionId: li.dataset.session,
      video: { width: v.videoWidth, height: v.videoHeight, state: li.dataset.video },
      laptop: dds[0].dataset.state,
      phone: dds[1].dataset.state,
      score: li.querySelector(".tile-score").textContent,
    };
  });
}

async function main() {
  // 1. Two candidates start and share.
  const [a, b] = await Promise.all([candidate(cfg.candidates[0], "candidate-1"), candidate(cfg.candidates[1], "candidate-2")]);
  saw.candidates = [a, b].map((c) => ({ name: c.name, mediaProblems: c.mediaProblems }));
  step("candidates-sharing");

  // 2. The proctor: exams list → live grid.
  const proctor = await openBrowser("proctor");
  await logIn(proctor, cfg.hub, cfg.proctor);
  await proctor.getByRole("heading", { name: "Exams", level: 1 }).waitFor();
  await proctor.locator(`a[href="#/grid/${cfg.examId}"]`).click();
  await proctor.locator("ul.tiles").waitFor();
  const tileA = await tileLive(proctor, a.name);
  const tileB = await tileLive(proctor, b.name);
  saw.grid = { tiles: await proctor.locator("li.tile").count(), [a.name]: tileA, [b.name]: tileB };
  // A live update: candidate 1 copies something (a COPY_PASTE event); the tile shows it.
  await a.page.evaluate(() => document.dispatchEvent(new Event("copy")));
  await tileOf(proctor, a.name).locator(".tile-event", { hasText: "Copy paste" }).waitFor({ timeout: 15_000 });
  saw.grid.liveUpdate = await tileOf(proctor, a.name).evaluate((li) => ({
    lastEvent: li.querySelector(".tile-event").textContent,
    score: li.querySelector(".tile-score").textContent,
  }));
  await shot(proctor, "grid");
  step("grid-live");

  // 3. One session's full view, opened from its tile with the keyboard.
  await tileOf(proctor, a.name).locator("a.tile-link").focus();
  await proctor.keyboard.press("Enter");
  await proctor.getByRole("heading", { name: a.name, level: 1 }).waitFor();
  await proctor.waitForFunction(
    () => {
      const v = document.querySelector('figure[data-source="camera"] video');
      return !!v && v.videoWidth > 0;
    },
    null,
    { timeout: 45_000 },
  );
  // The full view asks for the high layer; the relay may start on the low one and switches on
  // the next keyframe: wait for a camera frame larger than the grid's thumbnail. A browser
  // short of CPU pauses its high layer, and the relay then keeps its subscribers on the low
  // one (RelayConfig::layer_pause; the relay's own tests cover the switching), so on a busy
  // machine the low layer is reported, not failed.
  saw.cameraLayer = await proctor
    .waitForFunction(
      (thumb) => (document.querySelector('figure[data-source="camera"] video')?.videoWidth || 0) > thumb,
      tileA.video.width,
      { timeout: 20_000 },
    )
    .then(() => "high")
    .catch(() => `low (${tileA.video.width} px wide: the publisher's high layer was paused)`);
  await proctor.locator(".timeline li").first().waitFor({ timeout: 10_000 });
  saw.session = await proctor.evaluate(() => ({
    url: location.hash,
    status: document.querySelector(".session-bar [data-status]")?.textContent,
    timeLeft: document.querySelector(".session-bar .timer")?.textContent,
    panes: Object.fromEntries(
      [...document.querySelectorAll("figure.pane")].map((f) => [f.dataset.source, { state: f.dataset.video, width: f.querySelector("video").videoWidth }]),
    ),
    laptop: document.querySelectorAll(".session-bar .liveness")[0]?.dataset.state,
    events: [...document.querySelectorAll(".timeline li .ev-name")].map((e) => e.textContent),
  }));
  await shot(proctor, "session");
  step("session-view", { panes: saw.session.panes });

  // 4. Warn: the candidate's page shows the message.
  await proctor.getByRole("button", { name: "Warn…" }).click();
  const warnDialog = proctor.getByRole("dialog", { name: /^Warn the candidate/ });
  await warnDialog.getByLabel("Message to the candidate").fill(WARNING);
  await warnDialog.getByRole("button", { name: "Send warning" }).click();
  await proctor.locator(".notice", { hasText: "Warning sent." }).waitFor({ timeout: 10_000 });
  const warned = a.page.getByRole("alertdialog", { name: "Message from your proctor" });
  await warned.waitFor({ timeout: 10_000 });
  saw.warning = { candidateSaw: (await warned.locator(".warning-text").textContent())?.trim() };
  if (saw.warning.candidateSaw !== WARNING) throw new Error(`the candidate saw ${JSON.stringify(saw.warning.candidateSaw)}`);
  await shot(a.page, "candidate-warned");
  await warned.getByRole("button", { name: "I understand" }).click();
  step("warned");

  // 5. Extend by 5 minutes: the candidate's countdown grows.
  const before = await secondsLeft(a.page);
  const beforeAt = Date.now();
  await proctor.getByRole("button", { name: "Extend time…" }).click();
  const extendDialog = proctor.getByRole("dialog", { name: /^Extend the time/ });
  await extendDialog.getByLabel("Extra minutes").fill(String(EXTEND_MINUTES));
  await extendDialog.getByLabel("Reason").fill("Lost time to a network outage.");
  await extendDialog.getByRole("button", { name: "Extend time" }).click();
  await proctor.locator(".notice", { hasText: "Time extended." }).waitFor({ timeout: 10_000 });
  await a.page.waitForFunction(
    ([min]) => {
      const t = document.querySelector(".exam-bar .timer")?.textContent || "";
      return t.split(":").map(Number).reduce((acc, n) => acc * 60 + n, 0) >= min;
    },
    [before + EXTEND_MINUTES * 60 - 5 - Math.ceil((Date.now() - beforeAt) / 1000)],
    { timeout: 10_000 },
  );
  const after = await secondsLeft(a.page);
  const elapsed = Math.round((Date.now() - beforeAt) / 1000);
  saw.extended = { beforeS: before, afterS: after, elapsedS: elapsed, grewS: after - before + elapsed };
  saw.extended.candidateNotice = (await a.page.locator(".notice").textContent())?.trim();
  if (Math.abs(saw.extended.grewS - EXTEND_MINUTES * 60) > 5) throw new Error(`the countdown grew by ${saw.extended.grewS} s`);
  saw.session.logAfterActions = await proctor.locator(".action-log li").allInnerTexts().then((l) => l.map((x) => x.split("\n")[0]));
  step("extended", saw.extended);

  // 6. Terminate the other candidate, from the grid.
  await proctor.getByRole("link", { name: /^Live: / }).click();
  await tileOf(proctor, b.name).waitFor();
  await tileOf(proctor, b.name).locator("a.tile-link").click();
  await proctor.getByRole("heading", { name: b.name, level: 1 }).waitFor();
  await proctor.getByRole("button", { name: "Terminate…" }).click();
  const terminateDialog = proctor.getByRole("dialog", { name: /^Terminate the exam/ });
  await terminateDialog.getByLabel("Reason").fill("A second person was in the room.");
  await terminateDialog.getByRole("button", { name: "Terminate exam…" }).click();
  const confirm = proctor.getByRole("dialog", { name: /Terminate .*'s exam\?/ });
  await confirm.waitFor();
  saw.terminateConfirmFocus = await proctor.evaluate(() => document.activeElement?.textContent);
  await shot(proctor, "terminate-confirm");
  await confirm.getByRole("button", { name: "Yes, terminate the exam" }).click();
  await proctor.locator(".notice", { hasText: "Exam terminated." }).waitFor({ timeout: 10_000 });
  await b.page.locator('[data-ending="TERMINATED"]').waitFor({ timeout: 15_000 });
  saw.terminated = { candidateEnd: (await b.page.getByRole("heading", { level: 1 }).textContent())?.trim() };
  saw.terminated.proctorStatus = await proctor.locator(".session-bar [data-status]").getAttribute("data-status");

  // 7. The grid shows it ended.
  await proctor.getByRole("link", { name: /^Live: / }).click();
  await proctor.waitForFunction(
    (n) => {
      const li = [...document.querySelectorAll("li.tile")].find((el) => el.querySelector(".tile-name")?.textContent === n);
      return li?.dataset.ended === "true";
    },
    b.name,
    { timeout: 15_000 },
  );
  saw.terminated.gridTile = await tileOf(proctor, b.name).evaluate((li) => ({
    ended: li.dataset.ended,
    status: li.querySelector(".tile-status")?.textContent,
    video: li.dataset.video,
  }));
  saw.terminated.endedFilterCount = await proctor.locator('label[for="grid-filter-ended"] .count').textContent();
  // Back on the grid, the running session's thumbnail comes back (a new subscription).
  await tileLive(proctor, a.name);
  await shot(proctor, "grid-ended");
  // The "Ended" filter shows only the terminated session.
  await proctor.locator('label[for="grid-filter-ended"]').click();
  saw.terminated.endedFilterShows = await proctor.locator("li.tile:not([hidden]) .tile-name").allTextContents();
  if (saw.terminated.endedFilterShows.join() !== b.name) throw new Error(`the Ended filter shows ${saw.terminated.endedFilterShows}`);
  step("terminated", saw.terminated);

  // 8. The review queue has the terminated session.
  await proctor.getByRole("link", { name: "Review ended sessions" }).click();
  await proctor.locator(".queue-item", { hasText: b.name }).waitFor({ timeout: 10_000 });
  await proctor.locator(".queue-item", { hasText: b.name }).click();
  await proctor.locator(".answers-review").waitFor({ timeout: 10_000 });
  saw.review = await proctor.evaluate(() => ({
    queue: [...document.querySelectorAll(".queue-item .queue-name")].map((e) => e.textContent),
    title: document.querySelector(".detail-title")?.textContent,
    answers: document.querySelectorAll(".answer-card").length,
    score: document.querySelector(".final-score")?.textContent || null,
  }));
  await shot(proctor, "review");
  step("review", saw.review);

  if (problems.length) throw new Error(problems.join("; "));
}

main()
  .then(
    () => ({ ok: true }),
    async (e) => {
      for (const { context } of browsers) {
        const page = context.pages()[0];
        if (page && cfg.screenshots) await shot(page, `failure-${browsers.findIndex((b) => b.context === context)}`).catch(() => {});
      }
      return { ok: false, error: String(e && e.message ? e.message : e) };
    },
  )
  .then(async (result) => {
    for (const { context, dir } of browsers) {
      await context.close().catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    }
    console.log(JSON.stringify({ ...result, ...saw, problems }));
    process.exit(result.ok ? 0 : 1);
  });
