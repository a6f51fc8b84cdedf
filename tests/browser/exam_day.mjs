// Exam day, through the pages only: a candidate logs in at /app, opens their exam, answers the
// MCQ, CODING and SUBJECTIVE questions, loses the network for 10 s while answering (the page must
// show the answers queued), comes back (the page must show them saved), checks the hub really
// has them (a reload without the local copy shows them), submits with the confirmation and
// sees the end screen.
//
//   BROWSER_TEST='{"hub":"http://127.0.0.1:18091","candidate":{"email":"alice@demo.proctor",
//     "password":"demo-alice-pass"},"screenshots":"/tmp/shots"}' node tests/browser/exam_day.mjs
//
// The candidate needs an exam they have not started: each run uses a fresh browser profile,
// so a fresh device, and a session started by an earlier run is bound to that run's device
// (409 DEVICE_MISMATCH) or already submitted. Prints one JSON line with what it saw; exits
// non-zero on any failure. With `screenshots`, saves login, my-exams, exam, offline-queued and
// end PNGs (1280×800) there.
import { chromium } from "playwright-core";
import { answer, visibleQuestion } from "./pages.mjs";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const cfg = JSON.parse(process.env.BROWSER_TEST || "{}");
if (!cfg.hub || !cfg.candidate?.email) {
  console.error('BROWSER_TEST must be JSON: {"hub", "candidate": {"email", "password"}, "screenshots"?}');
  process.exit(2);
}
// The flags of tests/browser/run.mjs (fake camera and microphone, no prompts).
const FLAGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
  "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
  "--allow-loopback-in-peer-connection",
];
const OFFLINE_MS = 10_000;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const saw = { steps: [] };
const step = (name, extra = {}) => saw.steps.push({ name, t: Date.now() - started, ...extra });
const started = Date.now();

async function shot(page, name) {
  if (!cfg.screenshots) return;
  mkdirSync(cfg.screenshots, { recursive: true });
  await page.screenshot({ path: join(cfg.screenshots, `${name}.png`) });
}

/** The header's save summary: {state, queued, text}. */
const summary = (page) =>
  page.locator(".exam-bar .pill[data-queued]").evaluate((el) => ({
    state: el.dataset.state,
    queued: Number(el.dataset.queued),
    text: el.textContent,
  }));

async function main() {
  const dir = mkdtempSync(join(tmpdir(), "hub-exam-day-"));
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: "/usr/bin/chromium",
    headless: true,
    ignoreDefaultArgs: true,
    args: [...FLAGS, `--user-data-dir=${dir}`, "--remote-debugging-pipe", "about:blank"],
    viewport: { width: 1280, height: 800 },
  });
  const problems = [];
  try {
    const page = context.pages()[0] || (await context.newPage());
    page.on("pageerror", (e) => problems.push(`page error: ${e}`));
    page.on("console", (m) => {
      if (process.env.BROWSER_DEBUG) console.error("[page]", m.type(), m.text());
      // Offline fetches log network errors by design; anything else is a problem.
      if (m.type() === "error" && !/ERR_INTERNET_DISCONNECTED|WebSocket/.test(m.text())) {
        problems.push(`console error: ${m.text()}`);
      }
    });

    // 1. Log in.
    await page.goto(`${cfg.hub}/app`);
    await page.getByLabel("Email").waitFor();
    await shot(page, "login");
    await page.getByLabel("Email").fill(cfg.candidate.email);
    await page.getByLabel("Password").fill(cfg.candidate.password);
    await page.getByRole("button", { name: "Log in" }).click();

    // 2. My exams.
    await page.getByRole("heading", { name: "My exams", level: 1 }).waitFor();
    const open = page.getByRole("button", { name: /^(Start|Resume) exam: / }).first();
    await open.waitFor();
    saw.examButton = await open.textContent();
    step("my-exams", { button: saw.examButton });
    await shot(page, "my-exams");
    await open.click();

    // The system check comes first when starting (tests/browser/check.mjs covers it): this
    // scenario's browser shares no screen, so it goes on with "Continue anyway".
    if (saw.examButton.startsWith("Start")) {
      await page.getByRole("heading", { name: "System check", level: 1 }).waitFor();
      const anyway = page.getByRole("button", { name: "Continue anyway" });
      await anyway.waitFor({ timeout: 20_000 });
      await anyway.click();
    }

    // 3. The exam page.
    await page.locator(".exam-bar h1").waitFor();
    await page.waitForFunction(() => /\d\d:\d\d/.test(document.querySelector(".timer")?.textContent || ""));
    await page.locator('.pill[data-state="open"]').waitFor({ timeout: 15_000 }); // socket authed
    saw.title = await page.locator(".exam-bar h1").textContent();
    saw.timer = await page.locator(".timer").textContent();
    saw.banner = await page.locator(".banner").textContent();
    const navButtons = page.getByRole("navigation", { name: "Questions" }).getByRole("button");
    const count = await navButtons.count();
    const order = [];
    for (let i = 0; i < count; i++) {
      await navButtons.nth(i).click();
      order.push((await visibleQuestion(page)).type);
    }
    saw.questions = order;
    for (const t of ["MCQ", "CODING", "SUBJECTIVE"]) {
      if (!order.includes(t)) throw new Error(`the exam shows no ${t} question: ${order}`);
    }
    step("exam-open", { questions: order });

    // 4. Answer the first question online and see it saved.
    const answered = [];
    await navButtons.nth(0).click();
    answered.push(await answer(page, "online"));
    await page.locator("section.question:not([hidden]) .save-status[data-status=saved]").waitFor({ timeout: 10_000 });
    await shot(page, "exam");
    step("first-answer-saved");

    // 5. Offline for 10 s while answering the rest.
    await context.setOffline(true);
    const offlineAt = Date.now();
    for (let i = 1; i < count; i++) {
      await navButtons.nth(i).click();
      answered.push(await answer(page, "offline"));
    }
    await page.waitForFunction(
      (n) => {
        const el = document.querySelector(".exam-bar .pill[data-queued]");
        return el && el.dataset.state === "offline" && Number(el.dataset.queued) === n;
      },
      count - 1,
      { timeout: 8_000 },
    );
    saw.offline = await summary(page);
    saw.offlineStatusLine = await page.locator("section.question:not([hidden]) .save-status").textContent();
    if (!/Offline — \d+ queued/.test(saw.offlineStatusLine)) throw new Error(`status line offline: ${saw.offlineStatusLine}`);
    await shot(page, "offline-queued");
    step("offline-queued", saw.offline);
    await sleep(Math.max(0, OFFLINE_MS - (Date.now() - offlineAt)));

    // 6. Back online: everything saves.
    await context.setOffline(false);
    const onlineAt = Date.now();
    await page.waitForFunction(
      () => {
        const el = document.querySelector(".exam-bar .pill[data-queued]");
        return el && el.dataset.state === "saved" && el.dataset.queued === "0";
      },
      null,
      { timeout: 30_000 },
    );
    saw.savedAfterOnlineMs = Date.now() - onlineAt;
    saw.online = await summary(page);
    const lines = await page.locator(".save-status").evaluateAll((els) => els.map((e) => e.dataset.status));
    if (lines.some((s) => s !== "saved")) throw new Error(`not every question saved: ${lines}`);
    step("saved-after-online", { ms: saw.savedAfterOnlineMs });

    // 7. The hub has them: drop the local copy, reload, and the answers are still there.
    await page.evaluate(() => {
      for (const k of Object.keys(localStorage)) if (k.startsWith("proctor-hub:answers:")) localStorage.removeItem(k);
    });
    await page.reload();
    await page.locator(".exam-bar h1").waitFor();
    const restored = [];
    for (let i = 0; i < count; i++) {
      await navButtons.nth(i).click();
      const { section, type } = await visibleQuestion(page);
      if (type === "MCQ") restored.push(await section.getByRole("checkbox").evaluateAll((b) => b.filter((x) => x.checked).map((x) => x.value)));
      else if (type === "CODING") restored.push(await section.getByLabel("Your code").inputValue());
      else restored.push(await section.getByLabel("Your answer").inputValue());
    }
    answered.forEach((a, i) => {
      const want = a.type === "MCQ" ? [a.selected] : a.type === "CODING" ? a.code : a.text;
      if (JSON.stringify(restored[i]) !== JSON.stringify(want)) {
        throw new Error(`question ${i + 1} after reload: ${JSON.stringify(restored[i])} != ${JSON.stringify(want)}`);
      }
    });
    saw.restoredFromHub = restored.length;
    step("restored-from-hub");

    // 8. Submit with the confirmation, and the end screen.
    await page.getByRole("button", { name: "Submit exam…" }).click();
    const confirm = page.getByRole("dialog", { name: "Submit your exam?" });
    await confirm.waitFor();
    saw.confirmText = (await confirm.innerText()).replace(/\s+/g, " ").trim();
    await confirm.getByRole("button", { name: "Submit exam" }).click();
    await page.locator('[data-ending="SUBMITTED"]').waitFor({ timeout: 20_000 });
    saw.end = await page.getByRole("heading", { level: 1 }).textContent();
    await shot(page, "end");
    step("ended", { heading: saw.end });

    if (problems.length) throw new Error(problems.join("; "));
  } catch (e) {
    const page = context.pages()[0];
    if (page && cfg.screenshots) await shot(page, "failure").catch(() => {});
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
