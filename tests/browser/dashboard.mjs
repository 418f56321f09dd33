// Drives the watcher's dashboard in a real browser (Debian's chromium through playwright-core)
// and reports what a person would see. Run by tests/tests/dashboard.rs; by hand:
//
//   node tests/browser/dashboard.mjs --url http://127.0.0.1:9657/ --expect safe
//   node tests/browser/dashboard.mjs --url … --expect byzantine --blknum 3000 --tx 0x…
//
// It waits (up to --timeout seconds) for the page to show the expected state, then checks it on a
// desktop viewport and on a 390 px phone (which must not scroll sideways), and prints one line
// `RESULT {json}`; it exits non-zero when anything expected is missing. With PLASMA_SCREENSHOTS=dir
// it writes dir/dashboard-<state>.png (the README's screenshots, docs/img/), and with
// PLASMA_SCREENSHOTS_PHONE=1 also dir/dashboard-<state>-phone.png (390 px wide).
import { chromium } from "playwright-core";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";

const CHROMIUM = process.env.PLASMA_CHROMIUM ?? "/usr/bin/chromium";
const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];

function parseArgs(argv) {
  const out = { timeout: 30 };
  for (let i = 0; i < argv.length; i += 2) {
    const k = argv[i].replace(/^--/, "");
    out[k] = argv[i + 1];
  }
  if (!out.url || !["safe", "byzantine", "stalled"].includes(out.expect)) {
    throw new Error("usage: dashboard.mjs --url URL --expect safe|byzantine|stalled [--blknum N] [--tx HASH] [--timeout S]");
  }
  out.timeout = Number(out.timeout) * 1000;
  return out;
}

/// What the page shows: the safety banner, the connection line, the events' and actions' rows
/// (kind, and the transaction hashes they show), and the page's width.
async function look(page) {
  return page.evaluate(() => {
    const rows = (id) =>
      [...document.querySelectorAll(`#${id} > li[data-kind]`)].map((li) => ({
        kind: li.dataset.kind,
        outcome: li.dataset.outcome ?? null,
        txs: [...li.querySelectorAll("code.tx")].map((c) => c.textContent),
        text: li.innerText,
      }));
    return {
      state: document.getElementById("safety").dataset.state,
      title: document.getElementById("safety-title").textContent,
      why: document.getElementById("safety-why").textContent,
      connection: document.getElementById("connection").dataset.state,
      events: rows("events"),
      actions: rows("actions"),
      queues: [...document.querySelectorAll("#queues li[data-position]")].map((li) => li.dataset.position),
      guarded: [...document.querySelectorAll("#guarded li[data-owner]")].map((li) => li.dataset.owner),
      scrollWidth: document.documentElement.scrollWidth,
      visibleText: document.body.innerText,
    };
  });
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (!existsSync(CHROMIUM)) {
    // The Rust test checks this first with the same message; this is for runs by hand.
    throw new Error(`${CHROMIUM} is missing: scripts/test installs it (ensure_chromium in scripts/lib.sh, Debian's chromium package)`);
  }
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true });
  const failures = [];
  const result = { expect: opts.expect };
  try {
    const title =
      opts.expect === "safe"
        ? "SAFE"
        : opts.expect === "stalled"
          ? "STALLED since"
          : `BYZANTINE since block ${opts.blknum ?? ""}`.trim();
    // A stalled banner ends with the time of the last completed step.
    const titleOk = (t) => (opts.expect === "stalled" ? t.startsWith(title) : t === title);
    const errors = [];
    const check = async (page, label) => {
      page.on("pageerror", (e) => errors.push(`${label}: ${e.message}`));
      page.on("console", (m) => m.type() === "error" && errors.push(`${label} console: ${m.text()}`));
      await page.goto(opts.url, { waitUntil: "load" });
      // Polling a condition with a deadline: the page updates itself every 2 s.
      await page
        .waitForFunction(
          ({ state, title }) => {
            const s = document.getElementById("safety");
            const conn = document.getElementById("connection");
            return (
              s?.dataset.state === state &&
              conn?.dataset.state === "live" &&
              (state === "safe" ||
                (state === "stalled"
                  ? document.getElementById("safety-title").textContent.startsWith(title)
                  : document.getElementById("safety-title").textContent === title))
            );
          },
          { state: opts.expect, title },
          { timeout: opts.timeout, polling: 250 },
        )
        .catch(() => failures.push(`${label}: the page never showed ${opts.expect} (${title})`));
      if (opts.tx) {
        await page
          .waitForFunction(
            (tx) => [...document.querySelectorAll("#actions code.tx")].some((c) => c.textContent === tx),
            opts.tx,
            { timeout: opts.timeout, polling: 250 },
          )
          .catch(() => failures.push(`${label}: the action with L1 tx ${opts.tx} never showed`));
      }
      return look(page);
    };

    const desktop = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    const seen = await check(desktop, "desktop");
    Object.assign(result, {
      state: seen.state,
      title: seen.title,
      why: seen.why,
      connection: seen.connection,
      events: seen.events.map(({ kind, txs }) => ({ kind, txs })),
      actions: seen.actions.map(({ kind, outcome, txs }) => ({ kind, outcome, txs })),
      queues: seen.queues,
      guarded: seen.guarded,
      txVisible: opts.tx ? seen.visibleText.includes(opts.tx) : null,
    });
    if (!titleOk(seen.title)) failures.push(`desktop: title "${seen.title}", expected "${title}"`);
    if (opts.tx && !seen.visibleText.includes(opts.tx)) failures.push(`desktop: ${opts.tx} is not visible`);
    if (process.env.PLASMA_SCREENSHOTS) {
      mkdirSync(process.env.PLASMA_SCREENSHOTS, { recursive: true });
      const file = join(process.env.PLASMA_SCREENSHOTS, `dashboard-${opts.expect}.png`);
      await desktop.screenshot({ path: file, fullPage: true });
      result.screenshot = file;
    }

    // A phone: 390 px wide (an iPhone 12–15), touch, two device pixels per CSS pixel.
    const phone = await browser.newPage({
      viewport: { width: 390, height: 844 },
      deviceScaleFactor: 2,
      isMobile: true,
      hasTouch: true,
    });
    const onPhone = await check(phone, "phone");
    if (process.env.PLASMA_SCREENSHOTS && process.env.PLASMA_SCREENSHOTS_PHONE) {
      await phone.screenshot({
        path: join(process.env.PLASMA_SCREENSHOTS, `dashboard-${opts.expect}-phone.png`),
        fullPage: true,
      });
    }
    result.phoneScrollWidth = onPhone.scrollWidth;
    if (onPhone.scrollWidth > 390) {
      failures.push(`phone: the page is ${onPhone.scrollWidth} px wide, it scrolls sideways at 390 px`);
    }
    if (!titleOk(onPhone.title)) failures.push(`phone: title "${onPhone.title}", expected "${title}"`);
    if (errors.length) failures.push(...errors);
  } finally {
    await browser.close();
  }
  result.failures = failures;
  console.log(`RESULT ${JSON.stringify(result)}`);
  process.exit(failures.length ? 1 : 0);
}

main().catch((e) => {
  console.log(`RESULT ${JSON.stringify({ failures: [String(e?.stack ?? e)] })}`);
  process.exit(2);
});
