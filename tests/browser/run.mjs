// The browser scenario of MEDIA.md (test 3), driven by tests/api/browser.rs, which starts the
// hub, seeds a session and passes everything in BROWSER_TEST (JSON):
//   {hub, room, laptopToken, pairingUrl, proctorTokens: [3 tokens], mediaPort}
// A laptop page publishes camera + screen (+ microphone), a phone page its camera, proctor pages
// subscribe. Checks: every video track decodes at every proctor; every selected ICE pair uses the
// hub's one UDP port; the laptop's outbound bitrate with 1 vs 3 proctors is within ±20%.
// Prints one JSON line with the figures; exits non-zero on any failure.
import { chromium } from "playwright-core";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const cfg = JSON.parse(process.env.BROWSER_TEST);
const FLAGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
  "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
  "--allow-loopback-in-peer-connection",
];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function until(what, fn, ms = 45000) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    last = await fn();
    if (last && last.ok) return last;
    await sleep(250);
  }
  throw new Error(`timed out: ${what}: ${JSON.stringify(last)}`);
}

const stats = (page) => page.evaluate(() => Hub.stats(window.pcs));

async function laptopRate(page, ms) {
  const a = await stats(page);
  await sleep(ms);
  const b = await stats(page);
  return ((b.outboundBytes - a.outboundBytes) * 8) / (ms / 1000);
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), "hub-chromium-"));
  const browser = await chromium.launchPersistentContext(dir, {
    executablePath: "/usr/bin/chromium",
    headless: true,
    ignoreDefaultArgs: true,
    // Exactly the flags of MEDIA.md, plus the fresh profile and the pipe Playwright talks over.
    args: [...FLAGS, `--user-data-dir=${dir}`, "--remote-debugging-pipe", "about:blank"],
  });
  const result = {};
  try {
    const open = async (url, name) => {
      const page = await browser.newPage();
      page.on("console", (m) => { if (process.env.BROWSER_DEBUG) console.error(`[${name}]`, m.text()); });
      page.on("pageerror", (e) => console.error(`[${name}] page error`, String(e)));
      await page.goto(url);
      await page.waitForFunction(() => window.ready === true, null, { timeout: 20000 });
      return page;
    };
    const laptop = await open(`${cfg.hub}/app/laptop#token=${cfg.laptopToken}&room=${cfg.room}`, "laptop");
    const phone = await open(cfg.pairingUrl, "phone");
    const proctorUrl = (t) => `${cfg.hub}/app/proctor#token=${t}&rooms=${cfg.room}`;
    const proctors = [await open(proctorUrl(cfg.proctorTokens[0]), "proctor-1")];

    const decoding = async (page) => {
      const s = await stats(page);
      const tiles = await page.evaluate(() => Object.values(window.tiles).map((t) => t.source));
      const video = s.inbound.filter((x) => x.framesDecoded > 0);
      return { ok: video.length >= 3 && tiles.includes("camera") && tiles.includes("screen") && tiles.includes("phone-camera"), tiles, inbound: s.inbound };
    };
    await until("proctor 1 decodes camera, screen and phone camera", () => decoding(proctors[0]));
    // Let the laptop's bandwidth estimate settle, then measure with one proctor.
    await sleep(6000);
    result.bitrate1 = await laptopRate(laptop, 5000);
    proctors.push(await open(proctorUrl(cfg.proctorTokens[1]), "proctor-2"));
    proctors.push(await open(proctorUrl(cfg.proctorTokens[2]), "proctor-3"));
    for (const [i, p] of proctors.entries()) {
      await until(`proctor ${i + 1} decodes every track`, () => decoding(p));
    }
    await sleep(3000);
    result.bitrate3 = await laptopRate(laptop, 5000);
    result.ratio = result.bitrate3 / result.bitrate1;

    result.ports = [];
    for (const page of [laptop, phone, ...proctors]) {
      result.ports.push(...(await stats(page)).remotePorts);
    }
    result.frames = [];
    for (const p of proctors) result.frames.push((await stats(p)).inbound.map((x) => x.framesDecoded));
    console.log(JSON.stringify(result));

    const failures = [];
    if (result.ports.length < 5 || result.ports.some((p) => p !== cfg.mediaPort)) {
      failures.push(`ICE pairs not all on the hub's port ${cfg.mediaPort}: ${result.ports}`);
    }
    if (!(result.ratio > 0.8 && result.ratio < 1.2)) {
      failures.push(`laptop bitrate 1 vs 3 proctors: ${result.bitrate1.toFixed(0)} vs ${result.bitrate3.toFixed(0)} bit/s`);
    }
    for (const [i, f] of result.frames.entries()) {
      if (f.length < 3 || f.some((n) => n <= 0)) failures.push(`proctor ${i + 1} frames decoded: ${f}`);
    }
    if (failures.length) throw new Error(failures.join("; "));
  } finally {
    await browser.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  () => { console.log("browser scenario passed"); process.exit(0); },
  (e) => { console.error("browser scenario failed:", e.message); process.exit(1); },
);
