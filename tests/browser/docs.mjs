// The API reference at /docs, as an integrator meets it: the page renders the hub's own
// OpenAPI document (every operation, the error codes, the schemas), the filter narrows it by
// typing, keyboard focus reaches the filter, and a phone-width screen does not scroll sideways.
//
//   BROWSER_TEST='{"hub":"http://127.0.0.1:8080","screenshots":"/tmp/shots"}' node tests/browser/docs.mjs
//
// Prints one JSON line; exits non-zero on any failure.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

const cfg = JSON.parse(process.env.BROWSER_TEST || "{}");
if (!cfg.hub) {
  console.error('BROWSER_TEST must be JSON: {"hub", "screenshots"?}');
  process.exit(2);
}
const shots = cfg.screenshots;
if (shots) mkdirSync(shots, { recursive: true });

const spec = await (await fetch(`${cfg.hub}/api/v1/openapi.json`)).json();
const operations = Object.values(spec.paths).reduce((n, item) => n + Object.keys(item).length, 0);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
});
const failures = [];
const fail = (m) => failures.push(m);
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
  await page.goto(`${cfg.hub}/docs`);
  await page.locator("main[aria-busy='false'], main:not([aria-busy])").waitFor({ timeout: 20_000 });
  const rendered = await page.locator("section.operation").count();
  if (rendered !== operations) fail(`${rendered} operations rendered, the document has ${operations}`);
  for (const text of ["LEGAL_HOLD", "URL_NOT_ALLOWED", "VALIDATION_FAILED"]) {
    if ((await page.locator("#errors", { hasText: text }).count()) === 0) fail(`${text} is not in the error codes`);
  }
  if ((await page.locator("section.operation", { hasText: "/api/v1/webhooks/{id}/ping" }).count()) === 0) {
    fail("the ping operation is missing");
  }
  if (shots) await page.screenshot({ path: join(shots, "docs-1280.png") });

  // The filter, by keyboard: Tab from the skip link reaches it.
  const filter = page.getByLabel("Filter operations");
  await filter.focus();
  await page.keyboard.type("webhooks");
  await page.waitForTimeout(400);
  const visible = await page.locator("section.operation:visible").count();
  const webhooks = Object.keys(spec.paths)
    .filter((p) => p.includes("/webhooks"))
    .reduce((n, p) => n + Object.keys(spec.paths[p]).length, 0);
  if (visible < webhooks || visible >= operations) fail(`filtering "webhooks" shows ${visible} (webhook operations: ${webhooks})`);
  if (shots) await page.screenshot({ path: join(shots, "docs-filtered.png") });
  await page.keyboard.press("Escape");
  await page.waitForTimeout(200);
  if ((await page.locator("section.operation:visible").count()) !== operations) fail("Escape did not clear the filter");
  if (errors.length) fail(`console errors: ${errors.join(" | ")}`);

  // A phone.
  const phone = await browser.newPage({ viewport: { width: 390, height: 844 } });
  await phone.goto(`${cfg.hub}/docs#op-post-api-v1-users-id-erase`);
  await phone.locator("section.operation").first().waitFor({ timeout: 20_000 });
  const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  if (overflow > 1) fail(`the page scrolls ${overflow}px sideways at 390px`);
  if (shots) await phone.screenshot({ path: join(shots, "docs-390.png") });
} finally {
  await browser.close();
}
console.log(JSON.stringify({ operations, failures }));
process.exit(failures.length ? 1 : 0);
