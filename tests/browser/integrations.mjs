// An admin's integrations and privacy work, through the pages only:
// 1. the admin logs in at /app, opens Administration → Integrations, submits the empty form
//    (the page names what to fix), tries a link-local URL (the hub refuses it: URL_NOT_ALLOWED
//    on the URL field), then registers an endpoint at the receiver with all six events;
// 2. the signing secret shows once (whsec_…, "it will not be shown again", a copy button);
//    after "hide" and after a reload it is nowhere in the page;
// 3. on the endpoint's page: "Send test ping", and the delivery turns DELIVERED by itself;
//    expanded, it shows the attempt (HTTP 2xx) and the JSON body; "Redeliver" adds a second
//    attempt; the state filter shows and hides it;
// 4. "Disable" (badge "Disabled by an admin", no ping button) and "Enable" (Active again);
// 5. a second endpoint is registered and deleted through the confirmation (first kept, then
//    deleted);
// 6. the same pages at 390 px wide: nothing wider than the screen;
// 7. on Users: a throwaway candidate is created; "Download data export" downloads
//    proctor-hub-export-<id>.json (JSON, about that user); the admin's own row offers no
//    erasure; the erase dialog refuses an empty reason and a wrong email, then erases the
//    throwaway user and shows the counts; the row becomes "Erased user".
//
//   BROWSER_TEST='{"hub":"http://127.0.0.1:18093","admin":{"email":"admin@demo.proctor",
//     "password":"demo-admin-pass"},"receiverUrl":"http://127.0.0.1:18094/hook",
//     "screenshots":"/tmp/integrations-shots"}' node tests/browser/integrations.mjs
//
// The receiver URL may come as `receiverUrl` in BROWSER_TEST or as RECEIVER_URL in the
// environment; it must answer 2xx to POST (the hub must accept loopback webhook URLs, and must
// refuse link-local ones, its default). Prints one JSON line (the endpoint's id, the
// delivery's id, the erased user's id, …); exits non-zero on any failure. With `screenshots`,
// saves PNGs there (1280×800; the `-phone` ones at 390×844).
import { chromium } from "playwright-core";
import { logIn } from "./pages.mjs";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const cfg = JSON.parse(process.env.BROWSER_TEST || "{}");
const receiverUrl = cfg.receiverUrl || process.env.RECEIVER_URL;
if (!cfg.hub || !cfg.admin?.email || !cfg.admin?.password || !receiverUrl) {
  console.error(
    'BROWSER_TEST must be JSON: {"hub", "admin": {"email", "password"}, "receiverUrl"?, "screenshots"?}; ' +
      "the receiver's URL as receiverUrl or in RECEIVER_URL",
  );
  process.exit(2);
}
const FLAGS = [
  "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];
const LAPTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
const EVENTS = ["session.started", "session.ended", "session.flagged", "review.decided", "score.graded", "pairing.claimed"];

const started = Date.now();
const stamp = new Date().toISOString().slice(0, 19).replace(/[-:T]/g, "");
const saw = { steps: [] };
const step = (name, extra = {}) => saw.steps.push({ name, t: Date.now() - started, ...extra });
const problems = [];
const downloads = mkdtempSync(join(tmpdir(), "hub-downloads-"));

async function shot(page, name) {
  if (!cfg.screenshots) return;
  mkdirSync(cfg.screenshots, { recursive: true });
  await page.screenshot({ path: join(cfg.screenshots, `${name}.png`) });
}

/** A page in a new context, with its errors collected. */
async function newPage(browser, name, options = {}) {
  const context = await browser.newContext({ viewport: LAPTOP, acceptDownloads: true, ...options });
  const page = await context.newPage();
  page.on("pageerror", (e) => problems.push(`${name}: page error: ${e}`));
  page.on("console", (m) => {
    if (process.env.BROWSER_DEBUG) console.error(`[${name}]`, m.type(), m.text());
    // The refusals the script asks for on purpose (422 URL_NOT_ALLOWED) log a failed resource.
    if (m.type() === "error" && !/status of 4\d\d/.test(m.text())) problems.push(`${name}: console error: ${m.text()}`);
  });
  return page;
}

const check = (ok, message) => {
  if (!ok) throw new Error(message);
};

/** Waits until `fn()` is truthy; `nudge` runs every `every` ms meanwhile (a refresh). */
async function until(what, fn, { timeout = 30_000, every = 5_000, nudge } = {}) {
  const end = Date.now() + timeout;
  let next = Date.now() + every;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    if (nudge && Date.now() > next) {
      await nudge().catch(() => {});
      next = Date.now() + every;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Nothing on the page is wider than the window (a 390 px phone must not scroll sideways). */
async function fitsWidth(page, name) {
  const m = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, width: window.innerWidth }));
  if (m.scroll > m.width + 1) problems.push(`${name}: the page is ${m.scroll} px wide in a ${m.width} px window`);
  return m;
}

/** Fills and submits the registration form. */
async function register(page, { url, description, events }) {
  const form = page.locator("#webhook-create");
  await form.getByLabel("Endpoint URL").fill(url);
  await form.getByLabel("Description (optional)").fill(description);
  for (const type of EVENTS) {
    const box = form.getByRole("checkbox", { name: type });
    if (events.includes(type)) await box.check();
    else await box.uncheck();
  }
  await form.getByRole("button", { name: "Register endpoint" }).click();
}

async function main() {
  const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", headless: true, args: FLAGS });
  try {
    const admin = await newPage(browser, "admin");
    await admin.context().grantPermissions(["clipboard-read", "clipboard-write"], { origin: new URL(cfg.hub).origin });
    await logIn(admin, cfg.hub, cfg.admin);
    await admin.goto(`${cfg.hub}/app#/admin`);
    await admin.getByRole("heading", { name: "Administration", level: 1 }).waitFor();
    await admin.getByRole("link", { name: /^Integrations/ }).click();
    await admin.getByRole("heading", { name: "Integrations", level: 1 }).waitFor();
    await admin.locator(".admin-main p.hint[role=status]").filter({ hasText: /endpoint/ }).waitFor();
    step("integrations-open");

    // --- 1. the form's own checks, then the hub's URL guard -----------------------------------
    const form = admin.locator("#webhook-create");
    const formError = form.locator(".form-error");
    await form.getByRole("button", { name: "Register endpoint" }).click();
    await until("the empty form's problems", async () => /Enter the address/.test((await formError.textContent()) || ""));
    saw.emptyForm = (await formError.textContent()).trim();
    check(/at least one event/.test(saw.emptyForm), `the empty form does not ask for an event: ${saw.emptyForm}`);
    check((await form.getByLabel("Endpoint URL").getAttribute("aria-invalid")) === "true", "the URL is not marked invalid");
    check((await form.locator("fieldset.event-choices").getAttribute("aria-invalid")) === "true", "the events are not marked invalid");
    check(await form.getByLabel("Endpoint URL").evaluate((el) => el === document.activeElement), "the focus is not on the URL");

    await register(admin, { url: "http://169.254.169.254/latest/meta-data", description: "Metadata", events: ["session.ended"] });
    await until("the hub's URL_NOT_ALLOWED", async () => /URL_NOT_ALLOWED/.test((await formError.textContent()) || ""));
    saw.urlRefused = (await formError.textContent()).trim();
    check((await form.getByLabel("Endpoint URL").getAttribute("aria-invalid")) === "true", "the refused URL is not marked invalid");
    check((await admin.locator("li.endpoint", { hasText: "Metadata" }).count()) === 0, "a refused endpoint is listed");
    step("form-checks", { refused: saw.urlRefused });

    // --- 2. register; the secret, once ---------------------------------------------------------
    const description = `Browser receiver ${stamp}`;
    await register(admin, { url: receiverUrl, description, events: EVENTS });
    const panel = admin.locator("#webhook-secret");
    await panel.waitFor();
    const secret = await admin.locator("#webhook-secret-value").inputValue();
    check(/^whsec_[A-Za-z0-9+/]+={0,2}$/.test(secret), `not a whsec_ secret: ${secret}`);
    const panelText = await panel.textContent();
    check(/Copy it now: it will not be shown again/.test(panelText), `the panel does not say it is shown once: ${panelText}`);
    const card = admin.locator("li.endpoint", { hasText: description });
    await card.waitFor();
    saw.endpoint = { id: await card.getAttribute("data-endpoint"), description, url: receiverUrl };
    check((await card.locator(".endpoint-status").textContent()).trim() === "Active", "a new endpoint is not Active");
    await panel.getByRole("button", { name: "Copy secret" }).click();
    const copyStatus = panel.locator(".copy-status");
    await until("the copy's outcome", async () => ((await copyStatus.textContent()) || "").trim() !== "");
    saw.copy = (await copyStatus.textContent()).trim();
    saw.clipboardHasSecret = await admin.evaluate(() => navigator.clipboard.readText()).then((t) => t === secret, () => null);
    await shot(admin, "integrations-secret");
    await panel.getByRole("button", { name: /hide the secret/ }).click();
    await panel.waitFor({ state: "detached" });
    check(!(await admin.content()).includes(secret), "the secret is still in the page after hiding it");
    await admin.reload();
    await admin.getByRole("heading", { name: "Integrations", level: 1 }).waitFor();
    await card.waitFor();
    check((await admin.locator("#webhook-secret").count()) === 0, "the secret panel came back");
    check(!(await admin.content()).includes(secret), "the secret is in the page after a reload");
    await shot(admin, "integrations-list");
    step("registered", { id: saw.endpoint.id, copy: saw.copy });

    // --- 3. the endpoint's page: ping, delivered, attempts and body, redeliver ---------------
    await card.getByRole("link", { name: description, exact: true }).click();
    await admin.getByRole("heading", { name: description, level: 1 }).waitFor();
    await admin.locator(".delivery-list, .admin-section p.hint[role=status]").first().waitFor();
    await admin.getByRole("button", { name: /^Send test ping/ }).click();
    const ping = admin.locator('li.delivery[data-event="webhook.ping"]').first();
    const refresh = () => admin.getByRole("button", { name: "Refresh deliveries" }).click();
    await until("the test ping shows DELIVERED", async () => (await ping.getAttribute("data-state").catch(() => null)) === "DELIVERED", {
      timeout: 45_000,
      nudge: refresh,
    });
    saw.delivery = {
      id: await ping.getAttribute("data-delivery"),
      state: await ping.getAttribute("data-state"),
      badge: (await ping.locator(".delivery-state").textContent()).trim(),
      summary: (await ping.locator(".delivery-summary").textContent()).trim(),
    };
    check(saw.delivery.badge === "Delivered", `the badge says ${saw.delivery.badge}`);
    await until("the page says the ping was delivered", async () => /test ping to .* was delivered|The test ping was delivered/i.test((await admin.locator(".status-msg").textContent()) || ""), {
      timeout: 10_000,
    }).catch(() => problems.push("the status line did not say the ping was delivered"));
    step("ping-delivered", saw.delivery);

    const expand = ping.getByRole("button", { name: /^Show attempts and body/ });
    await expand.click();
    await ping.locator(".attempt").first().waitFor();
    check((await ping.getByRole("button", { name: /^Hide attempts and body/ }).getAttribute("aria-expanded")) === "true", "not aria-expanded");
    const attempt = (await ping.locator(".attempt").first().textContent()).trim();
    check(/HTTP 2\d\d/.test(attempt), `the attempt does not show a 2xx: ${attempt}`);
    const body = JSON.parse(await ping.locator(".json-body").textContent());
    check(body.type === "webhook.ping", `the body sent is not a ping: ${JSON.stringify(body)}`);
    saw.attempt = attempt;
    saw.body = body;
    await ping.evaluate((el) => el.scrollIntoView({ block: "start" }));
    await shot(admin, "integrations-deliveries");
    step("attempt-shown", { attempt });

    await ping.getByRole("button", { name: /^Redeliver/ }).click();
    await until("a second attempt", async () => (await ping.locator(".attempt").count()) >= 2 && (await ping.getAttribute("data-state")) === "DELIVERED", {
      timeout: 45_000,
      nudge: async () => {
        // A refresh collapses the rows: open this one again.
        await refresh();
        const again = admin.locator(`li.delivery[data-delivery="${saw.delivery.id}"]`);
        await again.getByRole("button", { name: /^Show attempts and body/ }).click({ timeout: 5_000 });
      },
    });
    saw.redelivered = await ping.locator(".attempt").count();
    step("redelivered", { attempts: saw.redelivered });

    const stateFilter = admin.getByLabel("State", { exact: true });
    await stateFilter.selectOption("FAILED");
    await until("no failed deliveries", async () => (await admin.locator("li.delivery").count()) === 0);
    await stateFilter.selectOption("DELIVERED");
    await admin.locator(`li.delivery[data-delivery="${saw.delivery.id}"]`).waitFor();
    await stateFilter.selectOption("");
    await admin.locator(`li.delivery[data-delivery="${saw.delivery.id}"]`).waitFor();
    step("filtered");

    // --- 4. disable and enable ----------------------------------------------------------------
    const badge = admin.locator(".page-head .endpoint-status");
    await admin.getByRole("button", { name: /^Disable/ }).click();
    await until("Disabled by an admin", async () => ((await badge.textContent()) || "").trim() === "Disabled by an admin");
    check((await admin.getByRole("button", { name: /^Send test ping/ }).count()) === 0, "a disabled endpoint offers a ping");
    saw.disabledNote = (await admin.locator(".endpoint-note").textContent()).trim();
    await admin.evaluate(() => window.scrollTo(0, 0));
    await shot(admin, "integrations-disabled");
    await admin.getByRole("button", { name: /^Enable/ }).click();
    await until("Active again", async () => ((await badge.textContent()) || "").trim() === "Active");
    await admin.getByRole("button", { name: /^Send test ping/ }).waitFor();
    step("disabled-and-enabled", { note: saw.disabledNote });

    // --- 5. a second endpoint, deleted --------------------------------------------------------
    await admin.getByRole("link", { name: "Integrations", exact: true }).click();
    await admin.getByRole("heading", { name: "Integrations", level: 1 }).waitFor();
    const doomedName = `To delete ${stamp}`;
    await register(admin, { url: receiverUrl, description: doomedName, events: ["score.graded"] });
    await admin.locator("#webhook-secret").waitFor();
    await admin.locator("#webhook-secret").getByRole("button", { name: /hide the secret/ }).click();
    const doomed = admin.locator("li.endpoint", { hasText: doomedName });
    await doomed.getByRole("button", { name: /^Delete…/ }).click();
    let confirm = admin.getByRole("dialog", { name: `Delete the endpoint “${doomedName}”?` });
    await confirm.waitFor();
    await confirm.getByRole("button", { name: "Keep the endpoint" }).click();
    await confirm.waitFor({ state: "detached" });
    check((await doomed.count()) === 1, "cancelling deleted the endpoint");
    await doomed.getByRole("button", { name: /^Delete…/ }).click();
    confirm = admin.getByRole("dialog", { name: `Delete the endpoint “${doomedName}”?` });
    await confirm.getByRole("button", { name: "Delete endpoint" }).click();
    await doomed.waitFor({ state: "detached" });
    await admin.reload();
    await admin.locator("li.endpoint", { hasText: description }).waitFor();
    check((await admin.locator("li.endpoint", { hasText: doomedName }).count()) === 0, "the deleted endpoint is listed after a reload");
    step("deleted-second");

    // --- 6. 390 px wide ------------------------------------------------------------------------
    const phone = await newPage(browser, "phone", { viewport: PHONE, isMobile: true, hasTouch: true, deviceScaleFactor: 1 });
    await logIn(phone, cfg.hub, cfg.admin);
    await phone.goto(`${cfg.hub}/app#/admin/integrations`);
    await phone.locator("li.endpoint", { hasText: description }).waitFor();
    saw.phone = { list: await fitsWidth(phone, "integrations at 390 px") };
    await shot(phone, "integrations-list-phone");
    await phone.goto(`${cfg.hub}/app#/admin/integrations/${encodeURIComponent(saw.endpoint.id)}`);
    const phonePing = phone.locator(`li.delivery[data-delivery="${saw.delivery.id}"]`);
    await phonePing.waitFor();
    await phonePing.getByRole("button", { name: /^Show attempts and body/ }).click();
    await phonePing.locator(".attempt").first().waitFor();
    saw.phone.deliveries = await fitsWidth(phone, "deliveries at 390 px");
    await phonePing.evaluate((el) => el.scrollIntoView({ block: "start" }));
    await shot(phone, "integrations-deliveries-phone");
    step("phone-width", saw.phone);

    // --- 7. users: export and erase -------------------------------------------------------------
    await admin.goto(`${cfg.hub}/app#/admin/users`);
    await admin.getByRole("heading", { name: "Users", level: 1 }).waitFor();
    const who = { name: `Erase Me ${stamp}`, email: `erase-me-${stamp}@example.test` };
    const create = admin.locator("form", { has: admin.getByRole("heading", { name: "Create a user" }) });
    await create.getByLabel("Full name").fill(who.name);
    await create.getByLabel("Email").fill(who.email);
    await create.getByLabel("Password").fill("password-123");
    await create.getByRole("button", { name: "Create user" }).click();
    const row = admin.locator("tr", { hasText: who.email });
    await row.waitFor();
    who.id = await row.getAttribute("data-user");

    const [download] = await Promise.all([
      admin.waitForEvent("download", { timeout: 30_000 }),
      row.getByRole("button", { name: /^Download data export/ }).click(),
    ]);
    saw.export = { file: download.suggestedFilename() };
    check(saw.export.file === `proctor-hub-export-${who.id}.json`, `the export is named ${saw.export.file}`);
    const saved = join(downloads, saw.export.file);
    await download.saveAs(saved);
    const exported = JSON.parse(readFileSync(saved, "utf8"));
    saw.export.format = exported.format;
    saw.export.email = exported.user?.email;
    check(String(exported.user?.email).toLowerCase() === who.email.toLowerCase(), `the export is about ${exported.user?.email}`);
    await until("the page says the export was saved", async () => /was saved as/.test((await admin.locator(".status-msg").textContent()) || ""));
    step("exported", saw.export);

    // The admin's own row: an export, never an erasure.
    const search = admin.getByRole("search", { name: "Find users" });
    await search.getByLabel("Search by name or email").fill(cfg.admin.email);
    await search.getByRole("button", { name: "Search users" }).click();
    const mine = admin.locator("tr", { hasText: cfg.admin.email });
    await mine.waitFor();
    await until("the search shows only the admin", async () => (await admin.locator(".users-table tbody tr").count()) >= 1);
    check((await mine.getByRole("button", { name: /^Erase personal data/ }).count()) === 0, "the admin's own row offers an erasure");
    check((await mine.getByRole("button", { name: /^Download data export/ }).count()) === 1, "the admin's own row offers no export");

    await search.getByLabel("Search by name or email").fill(who.email);
    await search.getByRole("button", { name: "Search users" }).click();
    await until("the search shows the throwaway user", async () => (await admin.locator(".users-table tbody tr").count()) === 1 && (await row.count()) === 1);
    await row.getByRole("button", { name: /^Erase personal data/ }).click();
    const dialog = admin.getByRole("dialog", { name: `Erase the personal data of ${who.name}?` });
    await dialog.waitFor();
    const dialogText = await dialog.textContent();
    check(/Scores and review decisions/.test(dialogText) && /pseudonymous/.test(dialogText), "the dialog does not say what is kept");
    await shot(admin, "erase-dialog");
    const dialogError = dialog.locator(".form-error");
    const submit = dialog.getByRole("button", { name: "Erase personal data" });
    await submit.click();
    await until("a reason is asked for", async () => /reason/i.test((await dialogError.textContent()) || ""));
    const reason = dialog.getByLabel("Reason for erasing");
    check((await reason.getAttribute("aria-invalid")) === "true", "the reason is not marked invalid");
    await reason.fill("Browser test: a data-subject request");
    const typed = dialog.getByLabel("Type the user's email to confirm");
    await typed.fill(cfg.admin.email);
    await submit.click();
    await until("the wrong email is refused", async () => /not this user's email/.test((await dialogError.textContent()) || ""));
    check((await typed.getAttribute("aria-invalid")) === "true", "the email is not marked invalid");
    saw.eraseRefusal = (await dialogError.textContent()).trim();
    await shot(admin, "erase-dialog-validation");
    step("erase-validation", { refusal: saw.eraseRefusal });

    await typed.fill(who.email);
    await submit.click();
    const report = admin.getByRole("dialog", { name: "Personal data erased" });
    await report.waitFor();
    saw.erasure = await report.locator("dl dd").allTextContents();
    await shot(admin, "erase-done");
    await report.getByRole("button", { name: "Close" }).click();
    const erasedRow = admin.locator(`tr[data-user="${who.id}"]`);
    await until("the row shows the erased user", async () => (await erasedRow.getAttribute("data-erased")) === "true");
    const erasedText = await erasedRow.textContent();
    check(erasedText.includes("Erased user") && erasedText.includes(`erased-${who.id}@erased.invalid`), `the row shows ${erasedText}`);
    check((await erasedRow.getByRole("button", { name: /^Erase personal data/ }).count()) === 0, "an erased user can be erased again");
    saw.erased = { id: who.id, email: who.email, counts: saw.erasure };
    step("erased", saw.erased);

    await phone.goto(`${cfg.hub}/app#/admin/users`);
    await phone.locator(".users-table tbody tr").first().waitFor();
    saw.phone.users = await fitsWidth(phone, "users at 390 px");
    await shot(phone, "users-phone");

    if (problems.length) throw new Error(problems.join("; "));
  } catch (e) {
    if (cfg.screenshots) {
      for (const [i, ctx] of browser.contexts().entries()) {
        for (const [j, p] of ctx.pages().entries()) await shot(p, `integrations-failure-${i}-${j}`).catch(() => {});
      }
    }
    throw e;
  } finally {
    await browser.close();
    rmSync(downloads, { recursive: true, force: true });
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
