// A whole exam day, through the pages only, as a university runs it (tests/browser_day.rs):
// 1. the admin logs in at /app, creates an exam open now for 30 minutes with one MCQ, one
//    CODING and one SUBJECTIVE question, publishes it and assigns both candidates by pasting
//    their emails;
// 2. both candidates log in, start the exam through the system check and turn on camera and
//    screen; candidate 1 pairs a phone (a phone-sized context opens the pairing link);
// 3. candidate 1 leaves its tab for 2.5 s, answers the questions, and loses the network for
//    10 s while answering (the page shows the answers queued), then comes back (shown saved);
// 4. the proctor opens the exam's live grid: both tiles decode video with the laptops online,
//    and candidate 1 is flagged (the harness sets the exam's `flagAt` low, so the tab-hidden
//    event flags it); the proctor warns candidate 1, whose page shows the warning;
// 5. the proctor terminates candidate 2 (its page shows the terminated end screen); candidate
//    1 submits with the confirmation ("Exam submitted");
// 6. the admin opens the review page, grades candidate 1's CODING and SUBJECTIVE answers and
//    approves the session with a reason; the page shows the decision.
//
//   BROWSER_TEST='{"hub":"http://127.0.0.1:18095","admin":{"email":"admin@demo.proctor",
//     "password":"demo-admin-pass"},"proctor":{"email":"proctor@demo.proctor","password":
//     "demo-proctor-pass"},"candidates":[{"email":"alice@demo.proctor","password":
//     "demo-alice-pass","name":"Alice Candidate"},{"email":"bob@demo.proctor","password":
//     "demo-bob-pass","name":"Bob Candidate"}],"screenshots":"/tmp/full-shots"}' \
//     node tests/browser/full_day.mjs
//
// One Chromium, one context per person (own storage: own device), launched with the fake
// camera and microphone and a screen share that picks the entire screen (as check.mjs). Each
// run creates its own exam. Candidate names come from `candidates[i].name`, else from the page's
// account line. Leaving the tab: headless Chromium keeps every page "visible" whatever is in
// front, so after bringing another page to the front the scenario checks the exam page's
// `visibilityState` and, if it stayed visible, makes it hidden the way web/test/proctoring.test.mjs
// does (`visibilityState` "hidden" and a `visibilitychange` event); `tabHidden.method` says
// which happened. Prints one JSON line with what the pages showed (`examId`, `ok`); exits
// non-zero on any failure. With `screenshots`, saves full-*.png there (1280×800; the phone's
// 390×844).
import { chromium } from "playwright-core";
import { answer, logIn, tileOf, visibleQuestion } from "./pages.mjs";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

const cfg = JSON.parse(process.env.BROWSER_TEST || "{}");
if (!cfg.hub || !cfg.admin?.email || !cfg.proctor?.email || !Array.isArray(cfg.candidates) || cfg.candidates.length < 2) {
  console.error(
    'BROWSER_TEST must be JSON: {"hub", "admin": {"email", "password"}, "proctor": {"email", "password"}, "candidates": [{"email", "password", "name"} ×2], "screenshots"?}',
  );
  process.exit(2);
}
// The flags of check.mjs: fake camera and microphone, no prompts, the entire screen shared
// without the picker.
const FLAGS = [
  "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
  "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
  "--allow-loopback-in-peer-connection",
  "--auto-select-desktop-capture-source=Entire screen",
];
const LAPTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
const HIDDEN_MS = 2_500;
const OFFLINE_MS = 10_000;
const WARNING = "Please keep this tab in front until you submit.";
const TERMINATION = "Someone else was answering for the candidate.";
const DECISION = "Answers reviewed; the tab switch was brief and explained.";
/** Grades given to candidate 1's CODING and SUBJECTIVE answers (of 10 and 5 points). */
const GRADES = { CODING: 8, SUBJECTIVE: 4 };

const started = Date.now();
const saw = { examId: null, steps: [] };
const step = (name, extra = {}) => saw.steps.push({ name, t: Date.now() - started, ...extra });
const problems = [];
/** Holds an action for a while (a hidden tab, a lost network): never an assertion. */
const hold = (ms) => new Promise((r) => setTimeout(r, ms));
/** @type {import("playwright-core").Browser | null} */
let browser = null;
/** label → page, for failure screenshots */
const pages = new Map();

async function shot(page, name) {
  if (!cfg.screenshots) return;
  mkdirSync(cfg.screenshots, { recursive: true });
  await page.screenshot({ path: join(cfg.screenshots, `full-${name}.png`) });
}

/** A page in a new context (its own storage: a new device), with its errors collected. */
async function newPage(label, options = {}) {
  const context = await browser.newContext({ viewport: LAPTOP, ...options });
  const page = await context.newPage();
  pages.set(label, page);
  page.on("pageerror", (e) => problems.push(`${label}: page error: ${e}`));
  page.on("console", (m) => {
    if (process.env.BROWSER_DEBUG) console.error(`[${label}]`, m.type(), m.text());
    // Offline requests fail by design, and a WebSocket closed by the hub (offline, the end of
    // a session) logs an error by design; anything else is a problem.
    if (m.type() === "error" && !/ERR_INTERNET_DISCONNECTED|ERR_NETWORK_CHANGED|WebSocket/.test(m.text())) {
      problems.push(`${label}: console error: ${m.text()}`);
    }
  });
  return page;
}

/** Adds one question through the editor; `fill` fills the type's own inputs. */
async function addQuestion(page, type, prompt, points, fill) {
  await page.getByRole("button", { name: "Add a question" }).click();
  const form = page.locator("form.question-form");
  await form.getByRole("radio", { name: type }).check();
  await form.getByLabel("Question", { exact: true }).fill(prompt);
  await form.getByLabel("Points").fill(String(points));
  await fill(form);
  await form.getByRole("button", { name: "Add question" }).click();
  await form.waitFor({ state: "detached" });
}

// --- 1. the admin ---------------------------------------------------------------------------

async function adminCreatesExam() {
  const admin = await newPage("admin");
  await logIn(admin, cfg.hub, cfg.admin);
  await admin.goto(`${cfg.hub}/app#/admin`);
  await admin.getByRole("heading", { name: "Administration", level: 1 }).waitFor();
  await admin.getByRole("link", { name: /^Exams/ }).click();
  await admin.getByRole("heading", { name: "Exams", level: 1 }).waitFor();
  await admin.getByRole("button", { name: "Create an exam" }).click();
  await admin.getByRole("heading", { name: "New exam", level: 1 }).waitFor();

  const title = `Full day ${new Date().toISOString().slice(0, 19).replace("T", " ")}`;
  // The window in the browser's local time, as the admin types it: from this minute, 30 minutes.
  const slot = await admin.evaluate(() => {
    const local = (d) => {
      const p = (n) => String(n).padStart(2, "0");
      return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
    };
    const opens = new Date();
    opens.setSeconds(0, 0);
    return { opens: local(opens), closes: local(new Date(opens.getTime() + 30 * 60_000)) };
  });
  await admin.getByLabel("Title").fill(title);
  await admin.getByLabel("Instructions for candidates").fill("Answer all three questions. Keep your camera and screen shared.");
  await admin.getByLabel("Duration (minutes)").fill("30");
  await admin.getByLabel("Window opens").fill(slot.opens);
  await admin.getByLabel("Window closes").fill(slot.closes);
  await admin.getByRole("button", { name: "Create exam" }).click();
  await admin.getByRole("heading", { name: title, level: 1 }).waitFor();
  const examId = decodeURIComponent(admin.url().split("#/admin/exam/")[1] || "");
  if (!/^[0-9a-f-]{36}$/i.test(examId)) throw new Error(`no exam id in the admin's address: ${admin.url()}`);
  saw.examId = examId;
  saw.exam = { title, window: slot };
  step("exam-created", { examId });

  await addQuestion(admin, "Multiple choice", "Which of these types are `Copy`?", 2, async (form) => {
    await form.getByLabel("Option A", { exact: true }).fill("u32");
    await form.getByLabel("Option B", { exact: true }).fill("String");
    await form.getByRole("button", { name: "Add an option" }).click();
    await form.getByLabel("Option C", { exact: true }).fill("&str");
    await form.getByRole("checkbox", { name: "Correct (option A)" }).check();
    await form.getByRole("checkbox", { name: "Correct (option C)" }).check();
  });
  await addQuestion(admin, "Code", "Write `fn median(v: &mut [i64]) -> Option<f64>`.", 10, async (form) => {
    await form.getByLabel("Rubric (answer key)").fill("Sorts; None for an empty slice; averages the two middle values for an even length.");
  });
  await addQuestion(admin, "Written answer", "Explain when you would choose an actor over a mutex.", 5, async (form) => {
    await form.getByLabel("Rubric for graders (optional)").fill("Ownership of state, message passing, contention.");
  });
  saw.exam.questions = await admin.locator(".question-card .badge.muted").allTextContents();
  if (saw.exam.questions.length !== 3) throw new Error(`expected 3 questions, the page shows ${saw.exam.questions}`);
  step("questions-added", { types: saw.exam.questions });

  await admin.getByRole("button", { name: "Publish exam…" }).click();
  const confirm = admin.getByRole("dialog", { name: `Publish “${title}”?` });
  await confirm.getByRole("button", { name: "Publish exam" }).click();
  await admin.getByText("The exam is published. Its questions are now read-only.").waitFor();
  step("published");

  const emails = cfg.candidates.slice(0, 2).map((c) => c.email);
  await admin.getByLabel("Candidate emails").fill(emails.join("\n"));
  await admin.getByRole("button", { name: "Assign these candidates" }).click();
  await admin.getByText(`Assigned ${emails.length} candidate`).waitFor();
  saw.exam.assigned = await admin.locator(".assignments-table tbody tr td:nth-child(2)").allTextContents();
  for (const e of emails) {
    if (!saw.exam.assigned.some((x) => x.toLowerCase() === e.toLowerCase())) throw new Error(`${e} is not in the assigned list: ${saw.exam.assigned}`);
  }
  step("assigned", { emails: saw.exam.assigned });
  return { page: admin, title, examId };
}

// --- 2. the candidates ----------------------------------------------------------------------

/** Waits until a check row has a verdict (not waiting, not checking). */
const settled = (page, id, timeout) =>
  page.waitForFunction(
    (check) => ["passed", "problem"].includes(document.querySelector(`li.check[data-check="${check}"]`)?.getAttribute("data-state") || ""),
    id,
    { timeout },
  );

/**
 * The system check (#/check/<examId>): the automatic checks, a test screen share, then on to
 * the exam ("Continue to the exam" when everything passed, else "Continue anyway").
 */
async function throughSystemCheck(page) {
  await page.getByRole("heading", { name: "System check", level: 1 }).waitFor({ timeout: 20_000 });
  for (const id of ["camera", "microphone", "connection", "browser"]) await settled(page, id, 45_000);
  await page.getByRole("button", { name: "Test screen sharing" }).click();
  await settled(page, "screen", 30_000);
  const rows = await page
    .locator("li.check")
    .evaluateAll((els) => Object.fromEntries(els.map((el) => [el.dataset.check, el.dataset.state])));
  const onward = page.getByRole("button", { name: "Continue to the exam", exact: true });
  let used = "Continue to the exam";
  if (await onward.isEnabled()) await onward.click();
  else {
    used = "Continue anyway";
    await page.getByRole("button", { name: used, exact: true }).click();
  }
  await page.locator(".exam-bar h1").waitFor({ timeout: 30_000 });
  return { checks: rows, continued: used };
}

/** A candidate logs in, starts the exam through the system check and shares camera and screen. */
async function candidateStarts(who, label, title) {
  const page = await newPage(label);
  await logIn(page, cfg.hub, who);
  await page.getByRole("heading", { name: "My exams", level: 1 }).waitFor();
  const card = page.locator("article.exam-card", { has: page.getByRole("heading", { name: title }) });
  await card.waitFor({ timeout: 15_000 });
  const status = (await card.locator(".badge").textContent())?.trim();
  await card.getByRole("button", { name: `Start exam: ${title}` }).click();
  const check = await throughSystemCheck(page);
  await page.locator('.exam-bar .pill[data-state="open"]').waitFor({ timeout: 30_000 });
  const account = ((await page.locator("#account .who").textContent()) || "").split(" · ")[0].trim();
  await page.getByRole("button", { name: "Turn on camera and share screen" }).click();
  await page.locator('.media-state[data-state="connected"]').waitFor({ timeout: 60_000 });
  const mediaProblems = (await page.locator(".media-problems").innerText()).trim() || null;
  if (mediaProblems) throw new Error(`${label}: the page says ${JSON.stringify(mediaProblems)}`);
  const media = (await page.locator(".media-state").textContent())?.trim();
  return { page, label, name: who.name || account, account, seen: { myExams: status, ...check, media } };
}

/** Candidate 1 pairs a phone: the laptop's pairing link opened in a phone-sized context. */
async function pairPhone(laptop) {
  await laptop.getByRole("button", { name: "Show the pairing code" }).click();
  const link = laptop.locator(".pairing .pair-link");
  await link.waitFor({ timeout: 15_000 });
  const pairingUrl = (await link.textContent()).replace(/^Pairing link:\s*/, "").trim();
  const fragment = pairingUrl.slice(pairingUrl.indexOf("#"));
  if (!/^#t=./.test(fragment)) throw new Error(`no token in the pairing link: ${pairingUrl}`);
  const phone = await newPage("phone", { viewport: PHONE, isMobile: true, hasTouch: true, deviceScaleFactor: 1 });
  // The link's origin is the hub's public URL; open it on the hub under test.
  await phone.goto(`${cfg.hub}/pair${fragment}`);
  await phone.waitForFunction(() => /^Connected as the second camera/.test(document.getElementById("pair-status")?.textContent || ""), null, {
    timeout: 30_000,
  });
  const status = (await phone.locator("#pair-status").textContent()).trim();
  const phoneCode = (await phone.locator("#pair-code-value").textContent()).replace(/\s/g, "");
  const laptopCode = laptop.locator(".pairing .confirm-code");
  await laptopCode.waitFor({ timeout: 15_000 });
  const codes = { laptop: (await laptopCode.textContent()).replace(/\s/g, ""), phone: phoneCode };
  if (!/^\d{6}$/.test(codes.phone) || codes.laptop !== codes.phone) throw new Error(`confirm codes differ: ${JSON.stringify(codes)}`);
  // The phone's camera reaches the relay.
  await phone.waitForFunction(() => window.ready === true, null, { timeout: 45_000 });
  const camera = (await phone.locator("#pair-camera-state").textContent())?.trim();
  await shot(phone, "phone-connected");
  return { phone, seen: { status, codes, camera, laptopSays: (await laptop.locator(".pairing .ok-text").textContent())?.trim() } };
}

// --- 3. candidate 1 leaves the tab, answers, goes offline -----------------------------------

/**
 * Candidate 1 switches to another tab for HIDDEN_MS: a second page of the same context comes
 * to the front. Headless Chromium keeps every page visible, so if the exam page did not become
 * hidden, it is made hidden as web/test/proctoring.test.mjs does: `visibilityState` "hidden"
 * (and `hidden`) on the document and a `visibilitychange` event; then visible again.
 */
async function leaveTab(page) {
  const other = await page.context().newPage();
  await other.goto("about:blank");
  await other.bringToFront();
  const realHide = await page
    .waitForFunction(() => document.visibilityState === "hidden", null, { timeout: 1_000 })
    .then(() => true)
    .catch(() => false);
  if (!realHide) {
    await page.evaluate(() => {
      Object.defineProperty(document, "visibilityState", { configurable: true, get: () => "hidden" });
      Object.defineProperty(document, "hidden", { configurable: true, get: () => true });
      document.dispatchEvent(new Event("visibilitychange"));
    });
  }
  await hold(HIDDEN_MS);
  await page.bringToFront();
  if (!realHide) {
    await page.evaluate(() => {
      // The document's own properties go; the prototype's real getters answer again.
      delete document.visibilityState;
      delete document.hidden;
      document.dispatchEvent(new Event("visibilitychange"));
    });
  }
  await other.close();
  const after = await page.evaluate(() => document.visibilityState);
  if (after !== "visible") throw new Error(`the exam page stayed ${after}`);
  return {
    method: realHide ? "bringToFront (the page became hidden)" : "dispatched visibilitychange (headless kept the page visible after bringToFront)",
    hiddenMs: HIDDEN_MS,
    visibleAgain: after,
  };
}

/** The header's save summary. */
const saveSummary = (page) =>
  page.locator(".exam-bar .pill[data-queued]").evaluate((el) => ({ state: el.dataset.state, queued: Number(el.dataset.queued), text: el.textContent }));

async function answerWithOutage(page) {
  const nav = page.getByRole("navigation", { name: "Questions" }).getByRole("button");
  const count = await nav.count();
  const answered = [];
  // The first one online, saved.
  await nav.nth(0).click();
  answered.push(await answer(page, "online"));
  await page.locator("section.question:not([hidden]) .save-status[data-status=saved]").waitFor({ timeout: 20_000 });
  const firstSaved = await saveSummary(page);

  // The rest offline: queued.
  await page.context().setOffline(true);
  const offlineAt = Date.now();
  for (let i = 1; i < count; i++) {
    await nav.nth(i).click();
    answered.push(await answer(page, "offline"));
  }
  await page.waitForFunction(
    (n) => {
      const el = document.querySelector(".exam-bar .pill[data-queued]");
      return el?.dataset.state === "offline" && Number(el.dataset.queued) === n;
    },
    count - 1,
    { timeout: 9_000 },
  );
  const offline = await saveSummary(page);
  const offlineLine = (await page.locator("section.question:not([hidden]) .save-status").textContent())?.trim();
  if (!/Offline — \d+ queued/.test(offlineLine || "")) throw new Error(`the status line offline says ${offlineLine}`);
  const connection = await page.locator(".exam-bar .pill:not([data-queued])").first().textContent();
  await shot(page, "candidate-offline-queued");
  await hold(Math.max(0, OFFLINE_MS - (Date.now() - offlineAt)));

  // Back online: everything saves.
  await page.context().setOffline(false);
  const onlineAt = Date.now();
  await page.waitForFunction(
    () => {
      const el = document.querySelector(".exam-bar .pill[data-queued]");
      return el?.dataset.state === "saved" && el.dataset.queued === "0";
    },
    null,
    { timeout: 45_000 },
  );
  const lines = await page.locator(".save-status").evaluateAll((els) => els.map((e) => e.dataset.status));
  if (lines.some((s) => s !== "saved")) throw new Error(`not every question saved: ${lines}`);
  return {
    answered,
    seen: {
      firstSaved,
      offline: { ...offline, connection: connection?.trim(), statusLine: offlineLine, heldMs: Date.now() - offlineAt },
      online: { ...(await saveSummary(page)), savedAfterMs: Date.now() - onlineAt, lines },
    },
  };
}

// --- 4. the proctor's grid ------------------------------------------------------------------

/** The grid's tile of a candidate. */

/** Waits until a tile's thumbnail decodes (its video has a size) and its laptop is online. */
async function tileLive(page, name) {
  await tileOf(page, name).waitFor({ timeout: 30_000 });
  await page.waitForFunction(
    (n) => {
      const li = [...document.querySelectorAll("li.tile")].find((el) => el.querySelector(".tile-name")?.textContent === n);
      const v = li?.querySelector("video");
      const laptop = li?.querySelectorAll("dd.liveness")[0];
      return !!v && v.videoWidth > 0 && !v.hidden && laptop?.dataset.state === "ONLINE";
    },
    name,
    { timeout: 90_000 },
  );
  return tileFacts(page, name);
}

const tileFacts = (page, name) =>
  tileOf(page, name).evaluate((li) => {
    const v = li.querySelector("video");
    const dds = li.querySelectorAll("dd.liveness");
    return {
      sessionId: li.dataset.session,
      video: { width: v.videoWidth, height: v.videoHeight, state: li.dataset.video },
      laptop: dds[0].dataset.state,
      phone: dds[1].dataset.state,
      flagged: li.dataset.flagged === "true",
      flagShown: !li.querySelector(".flag").hidden,
      score: li.querySelector(".tile-score").textContent,
      lastEvent: li.querySelector(".tile-event").textContent,
    };
  });

// --- the day --------------------------------------------------------------------------------

async function main() {
  browser = await chromium.launch({ executablePath: "/usr/bin/chromium", headless: true, args: FLAGS });

  // 1.
  const admin = await adminCreatesExam();

  // 2. Both candidates at once; then candidate 1's phone.
  const [c1, c2] = await Promise.all([
    candidateStarts(cfg.candidates[0], "candidate-1", admin.title),
    candidateStarts(cfg.candidates[1], "candidate-2", admin.title),
  ]);
  saw.candidates = [c1, c2].map((c) => ({ name: c.name, account: c.account, ...c.seen }));
  step("candidates-sharing");
  const { seen: phoneSeen } = await pairPhone(c1.page);
  saw.phone = phoneSeen;
  await c1.page.locator(".pairing").scrollIntoViewIfNeeded();
  await shot(c1.page, "candidate-paired");
  step("phone-paired", { code: phoneSeen.codes.phone });

  // 3. Candidate 1: another tab for a while, then the answers, with a network outage.
  saw.tabHidden = await leaveTab(c1.page);
  step("tab-hidden", { method: saw.tabHidden.method });
  const { answered, seen: answersSeen } = await answerWithOutage(c1.page);
  saw.answers = answersSeen;
  step("answers-saved-after-outage", { ms: answersSeen.online.savedAfterMs });

  // 4. The proctor: exams list → the live grid; both tiles live, candidate 1 flagged.
  const proctor = await newPage("proctor");
  await logIn(proctor, cfg.hub, cfg.proctor);
  await proctor.getByRole("heading", { name: "Exams", level: 1 }).waitFor();
  await proctor.locator(`a[href="#/grid/${admin.examId}"]`).click();
  await proctor.locator("ul.tiles").waitFor();
  saw.grid = { hash: await proctor.evaluate(() => location.hash) };
  if (saw.grid.hash !== `#/grid/${admin.examId}`) throw new Error(`the grid opened at ${saw.grid.hash}`);
  await tileLive(proctor, c1.name);
  await tileLive(proctor, c2.name);
  await proctor.waitForFunction(
    (n) => {
      const li = [...document.querySelectorAll("li.tile")].find((el) => el.querySelector(".tile-name")?.textContent === n);
      return li?.dataset.flagged === "true" && !li.querySelector(".flag")?.hidden;
    },
    c1.name,
    { timeout: 30_000 },
  );
  saw.grid.tiles = await proctor.locator("li.tile").count();
  saw.grid[c1.name] = await tileFacts(proctor, c1.name);
  saw.grid[c2.name] = await tileFacts(proctor, c2.name);
  saw.grid.flaggedFilterCount = (await proctor.locator('label[for="grid-filter-flagged"] .count').textContent())?.trim();
  if (saw.grid.tiles !== 2) throw new Error(`the grid shows ${saw.grid.tiles} tiles`);
  await shot(proctor, "grid");
  step("grid-live-and-flagged", { flagged: c1.name, score: saw.grid[c1.name].score });

  // The warning, from candidate 1's session view.
  await tileOf(proctor, c1.name).locator("a.tile-link").click();
  await proctor.getByRole("heading", { name: c1.name, level: 1 }).waitFor();
  await proctor.locator(".timeline li").first().waitFor({ timeout: 15_000 });
  saw.grid.timelineOfFlagged = await proctor.locator(".timeline li .ev-name").allTextContents();
  if (!saw.grid.timelineOfFlagged.some((t) => /tab/i.test(t))) {
    throw new Error(`candidate 1's timeline has no tab event: ${saw.grid.timelineOfFlagged}`);
  }
  await proctor.getByRole("button", { name: "Warn…" }).click();
  const warnDialog = proctor.getByRole("dialog", { name: /^Warn the candidate/ });
  await warnDialog.getByLabel("Message to the candidate").fill(WARNING);
  await warnDialog.getByRole("button", { name: "Send warning" }).click();
  await proctor.locator(".notice", { hasText: "Warning sent." }).waitFor({ timeout: 15_000 });
  const warned = c1.page.getByRole("alertdialog", { name: "Message from your proctor" });
  await warned.waitFor({ timeout: 15_000 });
  saw.warning = {
    proctorSaw: (await proctor.locator(".notice", { hasText: "Warning sent." }).textContent())?.trim(),
    candidateSaw: (await warned.locator(".warning-text").textContent())?.trim(),
  };
  if (saw.warning.candidateSaw !== WARNING) throw new Error(`candidate 1 saw ${JSON.stringify(saw.warning.candidateSaw)}`);
  await shot(c1.page, "candidate-warned");
  await warned.getByRole("button", { name: "I understand" }).click();
  await warned.waitFor({ state: "hidden" });
  step("warned");

  // 5. Terminate candidate 2, from the grid.
  await proctor.getByRole("link", { name: /^Live: / }).click();
  await tileOf(proctor, c2.name).locator("a.tile-link").click();
  await proctor.getByRole("heading", { name: c2.name, level: 1 }).waitFor();
  await proctor.getByRole("button", { name: "Terminate…" }).click();
  const terminateDialog = proctor.getByRole("dialog", { name: /^Terminate the exam/ });
  await terminateDialog.getByLabel("Reason").fill(TERMINATION);
  await terminateDialog.getByRole("button", { name: "Terminate exam…" }).click();
  const confirmTerminate = proctor.getByRole("dialog", { name: /Terminate .*'s exam\?/ });
  await confirmTerminate.getByRole("button", { name: "Yes, terminate the exam" }).click();
  await proctor.locator(".notice", { hasText: "Exam terminated." }).waitFor({ timeout: 15_000 });
  await c2.page.locator('[data-ending="TERMINATED"]').waitFor({ timeout: 30_000 });
  saw.terminated = {
    candidateEnd: (await c2.page.getByRole("heading", { level: 1 }).textContent())?.trim(),
    candidateText: (await c2.page.locator('[data-ending="TERMINATED"]').innerText()).replace(/\s+/g, " ").trim(),
    proctorStatus: await proctor.locator(".session-bar [data-status]").getAttribute("data-status"),
  };
  if (saw.terminated.candidateEnd !== "Your exam was ended") throw new Error(`candidate 2's end screen says ${saw.terminated.candidateEnd}`);
  await shot(c2.page, "candidate-terminated");
  step("terminated", { end: saw.terminated.candidateEnd });

  // Candidate 1 submits, with the confirmation.
  await c1.page.getByRole("button", { name: "Submit exam…" }).click();
  const confirmSubmit = c1.page.getByRole("dialog", { name: "Submit your exam?" });
  await confirmSubmit.waitFor();
  saw.submitted = { confirmText: (await confirmSubmit.innerText()).replace(/\s+/g, " ").trim() };
  await confirmSubmit.getByRole("button", { name: "Submit exam" }).click();
  await c1.page.locator('[data-ending="SUBMITTED"]').waitFor({ timeout: 30_000 });
  saw.submitted.candidateEnd = (await c1.page.getByRole("heading", { level: 1 }).textContent())?.trim();
  if (saw.submitted.candidateEnd !== "Exam submitted") throw new Error(`candidate 1's end screen says ${saw.submitted.candidateEnd}`);
  await shot(c1.page, "candidate-submitted");
  step("submitted", { end: saw.submitted.candidateEnd });

  // 6. The admin reviews: grades candidate 1's CODING and SUBJECTIVE answers, approves.
  const review = admin.page;
  await review.goto(`${cfg.hub}/app#/review/${admin.examId}`);
  await review.getByRole("heading", { name: `Review: ${admin.title}`, level: 1 }).waitFor();
  const item = review.locator(".queue-item", { has: review.locator(".queue-name", { hasText: c1.name }) });
  await item.waitFor({ timeout: 20_000 });
  saw.review = { queue: await review.locator(".queue-item").allInnerTexts().then((l) => l.map((x) => x.replace(/\s+/g, " ").trim())) };
  await item.click();
  await review.locator(".detail-title", { hasText: c1.name }).waitFor({ timeout: 20_000 });
  await review.locator(".answers-review").waitFor();
  // The answers the hub stored are the ones typed (two of them while offline).
  const stored = await review.locator(".answer-card").evaluateAll((cards) =>
    cards.map((c) => ({
      type: c.dataset.type,
      code: c.querySelector(".code-answer")?.textContent ?? undefined,
      text: c.querySelector(".text-answer")?.textContent ?? undefined,
      chosen: c.querySelectorAll('li[data-picked="true"]').length || undefined,
    })),
  );
  for (const a of answered) {
    const s = stored.find((x) => x.type === a.type);
    const ok = a.type === "MCQ" ? s?.chosen === 1 : a.type === "CODING" ? s?.code === a.code : s?.text === a.text;
    if (!ok) throw new Error(`the review shows candidate 1's ${a.type} answer as ${JSON.stringify(s)}`);
  }
  saw.review.answersShown = stored.map((s) => s.type);
  for (const [type, points] of Object.entries(GRADES)) {
    await review.locator(`.answer-card[data-type="${type}"] input[type="number"]`).fill(String(points));
  }
  await review.getByRole("button", { name: "Save grades" }).click();
  await review.locator(".grade-actions .ok-text", { hasText: "Saved 2 grades." }).waitFor({ timeout: 15_000 });
  saw.review.gradeStatus = (await review.locator(".grade-actions .ok-text").textContent())?.trim();
  saw.review.finalScore = (await review.locator(".final-score").textContent())?.trim();
  await review.locator(".answers-review").scrollIntoViewIfNeeded();
  await shot(review, "review-graded");
  step("graded", { finalScore: saw.review.finalScore });

  await review.getByLabel("Reason for the decision").fill(DECISION);
  await review.getByRole("button", { name: "Approve session" }).click();
  const decided = review.locator(".notice", { hasText: `${c1.name}: approved.` });
  await decided.waitFor({ timeout: 15_000 });
  saw.review.decision = (await decided.textContent())?.trim();
  await review.evaluate(() => window.scrollTo(0, 0));
  await shot(review, "review-approved");
  step("approved", { decision: saw.review.decision });

  if (problems.length) throw new Error(problems.join("; "));
}

main()
  .then(
    () => ({ ok: true }),
    async (e) => {
      if (cfg.screenshots) {
        for (const [label, page] of pages) await shot(page, `failure-${label}`).catch(() => {});
      }
      return { ok: false, error: String(e && e.message ? e.message : e) };
    },
  )
  .then(async (result) => {
    await browser?.close().catch(() => {});
    console.log(JSON.stringify({ ms: Date.now() - started, ...saw, problems, ...result }));
    process.exit(result.ok ? 0 : 1);
  });
