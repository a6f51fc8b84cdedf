// An admin's day, through the pages only, then a candidate pairing their phone:
// 1. the admin logs in at /app, creates an exam open now for 30 minutes, adds one MCQ, one
//    CODING and one SUBJECTIVE question, and publishes it;
// 2. assigns the candidates by pasting their emails, first with one unknown address (the page
//    must name it and assign nobody), then with the list fixed;
// 3. a candidate logs in (a new browser context) and sees the exam in "My exams";
// 4. the candidate opens the exam and presses "Show the pairing code"; a phone-sized page (a
//    new context, 390×844, fake camera) opens the pairing link; the laptop shows the confirm
//    code, the phone shows the same code and "Connected…", and its camera reaches the relay.
//
//   BROWSER_TEST='{"hub":"http://127.0.0.1:18093","admin":{"email":"admin@demo.proctor",
//     "password":"demo-admin-pass"},"candidates":[{"email":"alice@demo.proctor",
//     "password":"demo-alice-pass"},{"email":"bob@demo.proctor","password":"demo-bob-pass"}],
//     "screenshots":"/tmp/admin-shots"}' node tests/browser/admin_day.mjs
//
// The first candidate is the one who logs in and pairs. Each run creates a new exam, so runs
// do not disturb each other. The pairing link opens the phone page at `/pair`. Prints one JSON line; exits non-zero on any failure. With
// `screenshots`, saves PNGs there (1280×800; the phone's at 390×844).
import { chromium } from "playwright-core";
import { logIn } from "./pages.mjs";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

const cfg = JSON.parse(process.env.BROWSER_TEST || "{}");
if (!cfg.hub || !cfg.admin?.email || !Array.isArray(cfg.candidates) || !cfg.candidates[0]?.email) {
  console.error(
    'BROWSER_TEST must be JSON: {"hub", "admin": {"email", "password"}, "candidates": [{"email", "password"}, …], "screenshots"?}',
  );
  process.exit(2);
}
// The flags of tests/browser/run.mjs (fake camera and microphone, no prompts).
const FLAGS = [
  "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
  "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
  "--allow-loopback-in-peer-connection",
];
const LAPTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };

const started = Date.now();
const saw = { steps: [] };
const step = (name, extra = {}) => saw.steps.push({ name, t: Date.now() - started, ...extra });
const problems = [];

async function shot(page, name) {
  if (!cfg.screenshots) return;
  mkdirSync(cfg.screenshots, { recursive: true });
  await page.screenshot({ path: join(cfg.screenshots, `${name}.png`) });
}

/** A page in a new context (its own storage: a new device), with its errors collected. */
async function newPage(browser, name, options = {}) {
  const context = await browser.newContext({ viewport: LAPTOP, ...options });
  const page = await context.newPage();
  page.on("pageerror", (e) => problems.push(`${name}: page error: ${e}`));
  page.on("console", (m) => {
    if (process.env.BROWSER_DEBUG) console.error(`[${name}]`, m.type(), m.text());
    // A 4xx the page asked for on purpose (the wrong email's 422) logs a failed resource.
    if (m.type() === "error" && !/status of 4\d\d|WebSocket/.test(m.text())) problems.push(`${name}: console error: ${m.text()}`);
  });
  return page;
}

/**
 * From "Start exam" to the exam page: a system check may come first (#/check/<examId>); go on
 * with "Continue to the exam", or "Continue anyway" where headless Chromium cannot pass a check
 * (the fake devices have no screen to share).
 */
async function enterExam(page) {
  const bar = page.locator(".exam-bar h1");
  const onward = ["Continue to the exam", "Continue anyway"].map((name) => page.getByRole("button", { name, exact: true }));
  const end = Date.now() + 30_000;
  while (!(await bar.isVisible())) {
    if (Date.now() > end) throw new Error(`the exam page did not open: ${page.url()}`);
    for (const b of onward) {
      if ((await b.isVisible()) && (await b.isEnabled())) {
        saw.systemCheck = await b.textContent();
        await b.click({ timeout: 2_000 }).catch(() => {});
        break;
      }
    }
    await page.waitForTimeout(250);
  }
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

async function main() {
  const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", headless: true, args: FLAGS });
  try {
    // --- 1. the admin creates the exam ------------------------------------------------------
    const admin = await newPage(browser, "admin");
    await logIn(admin, cfg.hub, cfg.admin);
    await admin.goto(`${cfg.hub}/app#/admin`);
    await admin.getByRole("heading", { name: "Administration", level: 1 }).waitFor();
    await shot(admin, "admin-landing");
    await admin.getByRole("link", { name: /^Exams/ }).click();
    await admin.getByRole("heading", { name: "Exams", level: 1 }).waitFor();
    await admin.getByRole("button", { name: "Create an exam" }).click();
    await admin.getByRole("heading", { name: "New exam", level: 1 }).waitFor();

    const title = `Admin day ${new Date().toISOString().slice(0, 19).replace("T", " ")}`;
    // The window in the browser's local time, as the admin types it: from now, 30 minutes.
    const slot = await admin.evaluate(() => {
      const local = (d) => {
        const p = (n) => String(n).padStart(2, "0");
        return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
      };
      const opens = new Date();
      opens.setSeconds(0, 0); // the input takes minutes: this minute, so it is open already
      return { opens: local(opens), closes: local(new Date(opens.getTime() + 30 * 60_000)) };
    });
    await admin.getByLabel("Title").fill(title);
    await admin.getByLabel("Instructions for candidates").fill("Answer all three questions. Keep your phone paired as a second camera.");
    await admin.getByLabel("Duration (minutes)").fill("30");
    await admin.getByLabel("Window opens").fill(slot.opens);
    await admin.getByLabel("Window closes").fill(slot.closes);
    await shot(admin, "admin-new-exam");
    await admin.getByRole("button", { name: "Create exam" }).click();
    await admin.getByRole("heading", { name: title, level: 1 }).waitFor();
    saw.exam = { title, id: decodeURIComponent(admin.url().split("#/admin/exam/")[1] || ""), window: slot };
    step("exam-created", { id: saw.exam.id });

    // --- questions, one of each type --------------------------------------------------------
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
    // Open the editor for the last one and take its picture before saving.
    await admin.getByRole("button", { name: "Add a question" }).click();
    const essay = admin.locator("form.question-form");
    await essay.getByRole("radio", { name: "Written answer" }).check();
    await essay.getByLabel("Question", { exact: true }).fill("Explain when you would choose an actor over a mutex.");
    await essay.getByLabel("Points").fill("5");
    await essay.getByLabel("Rubric for graders (optional)").fill("Ownership of state, message passing, contention.");
    await essay.evaluate((el) => el.scrollIntoView({ block: "start" }));
    await shot(admin, "admin-question-form");
    await essay.getByRole("button", { name: "Add question" }).click();
    await essay.waitFor({ state: "detached" });
    const cards = admin.locator(".question-card");
    saw.questions = await cards.locator(".badge.muted").allTextContents();
    if (saw.questions.length !== 3) throw new Error(`expected 3 questions, the page shows ${saw.questions}`);
    await admin.locator(".question-list").scrollIntoViewIfNeeded();
    await shot(admin, "admin-questions");
    step("questions-added", { types: saw.questions });

    // --- publish ----------------------------------------------------------------------------
    await admin.getByRole("button", { name: "Publish exam…" }).click();
    const confirm = admin.getByRole("dialog", { name: `Publish “${title}”?` });
    await confirm.waitFor();
    await shot(admin, "admin-publish-confirm");
    await confirm.getByRole("button", { name: "Publish exam" }).click();
    await admin.getByText("The exam is published. Its questions are now read-only.").waitFor();
    saw.readOnlyNote = await admin.locator(".notice").first().textContent();
    if ((await admin.getByRole("button", { name: "Add a question" }).count()) !== 0) {
      throw new Error("a published exam still offers to add questions");
    }
    step("published");

    // --- assign by pasting emails: first with a wrong one, then fixed -------------------------
    const wrong = `nobody-${Date.now()}@example.org`;
    const emails = cfg.candidates.map((c) => c.email);
    const paste = admin.getByLabel("Candidate emails");
    await paste.fill([...emails, wrong].join("\n"));
    await admin.getByRole("button", { name: "Assign these candidates" }).click();
    const pasteError = admin.locator(".paste-form .form-error");
    await admin.waitForFunction((bad) => document.querySelector(".paste-form .form-error")?.textContent?.includes(bad), wrong);
    saw.assignError = (await pasteError.textContent()).trim();
    if (!/Nothing was assigned/.test(saw.assignError)) throw new Error(`the error does not say nothing was assigned: ${saw.assignError}`);
    if ((await admin.locator(".assignments-table tbody tr").count()) !== 0) throw new Error("candidates were assigned despite the error");
    if ((await paste.getAttribute("aria-invalid")) !== "true") throw new Error("the email list is not marked invalid");
    await paste.scrollIntoViewIfNeeded();
    await shot(admin, "admin-assign-error");
    step("assign-refused", { error: saw.assignError });

    await paste.fill(emails.join("\n"));
    await admin.getByRole("button", { name: "Assign these candidates" }).click();
    await admin.getByText(`Assigned ${emails.length} candidate`).waitFor();
    saw.assigned = await admin.locator(".assignments-table tbody tr td:nth-child(2)").allTextContents();
    for (const e of emails) {
      if (!saw.assigned.map((x) => x.toLowerCase()).includes(e.toLowerCase())) throw new Error(`${e} is not in the assigned list: ${saw.assigned}`);
    }
    await admin.locator(".assignments-table").scrollIntoViewIfNeeded();
    await shot(admin, "admin-assigned");
    step("assigned", { emails: saw.assigned });

    // --- 3. a candidate sees it ---------------------------------------------------------------
    const laptop = await newPage(browser, "candidate");
    await logIn(laptop, cfg.hub, cfg.candidates[0]);
    await laptop.getByRole("heading", { name: "My exams", level: 1 }).waitFor();
    const card = laptop.locator("article.exam-card", { has: laptop.getByRole("heading", { name: title }) });
    await card.waitFor();
    saw.candidateSees = (await card.locator(".badge").textContent()).trim();
    await card.scrollIntoViewIfNeeded();
    await shot(laptop, "candidate-my-exams");
    step("candidate-sees-exam", { status: saw.candidateSees });

    // --- 4. the candidate pairs a phone -------------------------------------------------------
    await card.getByRole("button", { name: `Start exam: ${title}` }).click();
    await enterExam(laptop);
    await laptop.getByRole("button", { name: "Show the pairing code" }).click();
    const link = laptop.locator(".pairing .pair-link");
    await link.waitFor();
    const pairingUrl = (await link.textContent()).replace(/^Pairing link:\s*/, "").trim();
    const fragment = pairingUrl.slice(pairingUrl.indexOf("#"));
    if (!/^#t=./.test(fragment)) throw new Error(`no token in the pairing link: ${pairingUrl}`);
    // The link's origin is the hub's public URL; open it on the hub under test.
    const pairPage = "/pair";
    saw.phonePage = pairPage;
    await laptop.locator(".pairing").evaluate((el) => el.scrollIntoView({ block: "start" }));
    await shot(laptop, "laptop-pairing-code");

    const phone = await newPage(browser, "phone", { viewport: PHONE, isMobile: true, hasTouch: true, deviceScaleFactor: 1 });
    await phone.goto(`${cfg.hub}${pairPage}${fragment}`);
    await phone.waitForFunction(() => /^Connected as the second camera/.test(document.getElementById("pair-status")?.textContent || ""), null, {
      timeout: 20_000,
    });
    saw.phoneStatus = (await phone.locator("#pair-status").textContent()).trim();
    saw.phoneUrlAfter = new URL(phone.url()).hash;
    if (saw.phoneUrlAfter.includes("t=")) throw new Error(`the token stayed in the phone's address: ${phone.url()}`);
    const phoneCode = (await phone.locator("#pair-code-value").textContent()).replace(/\s/g, "");
    const laptopCode = laptop.locator(".pairing .confirm-code");
    await laptopCode.waitFor({ timeout: 10_000 });
    saw.confirmCode = { laptop: (await laptopCode.textContent()).replace(/\s/g, ""), phone: phoneCode };
    if (!/^\d{6}$/.test(phoneCode) || saw.confirmCode.laptop !== phoneCode) {
      throw new Error(`confirm codes differ: ${JSON.stringify(saw.confirmCode)}`);
    }
    // The camera reaches the relay (window.ready, as the relay test reads it).
    await phone.waitForFunction(() => window.ready === true, null, { timeout: 20_000 });
    saw.phoneCamera = (await phone.locator("#pair-camera-state").textContent()).trim();
    await shot(phone, "phone-connected");
    await laptop.locator(".pairing").scrollIntoViewIfNeeded();
    await shot(laptop, "laptop-paired");
    step("phone-paired", { code: phoneCode, camera: saw.phoneCamera });

    if (problems.length) throw new Error(problems.join("; "));
  } catch (e) {
    if (cfg.screenshots) {
      for (const [i, ctx] of browser.contexts().entries()) {
        for (const [j, p] of ctx.pages().entries()) await shot(p, `failure-${i}-${j}`).catch(() => {});
      }
    }
    throw e;
  } finally {
    await browser.close();
  }
}

main().then(
  () => {
    console.log(JSON.stringify({ ok: true, ms: Date.now() - started, ...saw }));
    process.exit(0);
  },
  (e) => {
    console.log(JSON.stringify({ ok: false, error: String(e && e.message ? e.message : e), ...saw, problems }));
    process.exit(1);
  },
);
