/**
 * The status page in a real browser: Debian's Chromium, driven headless by playwright-core,
 * against a real server. It watches a key through the page's own Connect Watch, sees a Bump
 * made by the TS client, bumps from the page, and asks for a token when the server wants one.
 * A screenshot of each run is saved in the test's temp dir.
 */
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { cleanupsAfterEach } from "./helpers/cleanups.js";
import { startTestServer } from "./helpers/test-server.js";

const CHROMIUM = process.env.SYNCGEN_TEST_CHROMIUM ?? "/usr/bin/chromium";
const HTTP = { host: "127.0.0.1", port: 0 };
/** Generous: a headless browser on a busy 2-core host. */
const BROWSER_MS = 30_000;

const cleanups = cleanupsAfterEach();
let browser: Browser;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "syncgen-status-page-"));
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"], timeout: BROWSER_MS });
});

afterAll(async () => {
  await browser?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A new page, failing the test on any script error in it. */
async function openPage(url: string): Promise<Page> {
  const context = await browser.newContext();
  cleanups.push(() => context.close());
  const page = await context.newPage();
  const problems: string[] = [];
  page.on("pageerror", (error) => problems.push(error.message));
  page.on("console", (message) => {
    if (message.type() === "error") problems.push(message.text());
  });
  cleanups.push(() => expect(problems, "errors in the page").toEqual([]));
  await page.goto(url, { timeout: BROWSER_MS });
  return page;
}

/** Waits until the cell of `key`'s generation reads `text`. */
async function generationShown(page: Page, key: string, text: string): Promise<void> {
  await page.waitForSelector(`tr[data-key=${JSON.stringify(key)}] td.generation:text-is(${JSON.stringify(text)})`, {
    timeout: BROWSER_MS,
  });
}

describe("the status page", () => {
  test("shows the replica, watches a key live, sees a Bump from the TS client, and bumps it itself", async () => {
    const ts = await startTestServer({ httpListen: HTTP }, { cleanups });
    const page = await openPage(ts.httpUrl);
    await page.waitForSelector("#health.serving", { timeout: BROWSER_MS });
    expect(await page.textContent("#summary")).toMatch(/^v\d+\.\d+\.\d+ · memory \(one replica\) \(ready\) · up /);

    await page.fill("#keys", "status/a, status/b");
    await page.click("#watchForm button[type=submit]");
    await generationShown(page, "status/a", "0 (absent)");
    await page.waitForSelector("#watchState:text('live')", { timeout: BROWSER_MS });

    const generation = await ts.client.bump("status/a");
    await generationShown(page, "status/a", String(generation));

    await page.click('tr[data-key="status/b"] button:text("Bump")');
    await expect.poll(() => ts.client.get("status/b", { peek: true }), { timeout: BROWSER_MS }).not.toBe(0n);
    await generationShown(page, "status/b", String(await ts.client.get("status/b", { peek: true })));

    // The page's own Watch is one stream; the next snapshot counts it.
    await page.waitForSelector('#watchStreams:text-is("1")', { timeout: BROWSER_MS });
    const screenshot = join(dir, "status-page.png");
    await page.screenshot({ path: screenshot, fullPage: true });
    expect(statSync(screenshot).size).toBeGreaterThan(10_000);
  });

  test("on a server with tokens: says what is missing, then watches with the token typed in", async () => {
    const authFile = join(dir, "tokens.json");
    writeFileSync(
      authFile,
      JSON.stringify({
        tokens: [{ name: "ops", token: "ops-token-0123456789abcdef", read: ["ops/"], write: ["ops/"] }],
      }),
    );
    const ts = await startTestServer({ httpListen: HTTP, authFile }, { cleanups });
    const page = await openPage(ts.httpUrl);
    await page.fill("#keys", "ops/a");
    await page.click("#watchForm button[type=submit]");
    await page.waitForSelector("#watchState.error:text('this server requires a token')", { timeout: BROWSER_MS });

    await page.fill("#token", "ops-token-0123456789abcdef");
    await page.click("#watchForm button[type=submit]");
    await generationShown(page, "ops/a", "0 (absent)");
    await page.click('tr[data-key="ops/a"] button:text("Bump")');
    const ops = ts.newClient({ token: "ops-token-0123456789abcdef" });
    await expect.poll(() => ops.get("ops/a", { peek: true }), { timeout: BROWSER_MS }).not.toBe(0n);
  });
});
