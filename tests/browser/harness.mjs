// Starts the real `carnet` binary on a fresh data directory and drives Debian's
// chromium through Playwright. Shared by every browser test.

import { execFileSync, spawn } from "node:child_process";
import { createHmac } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { after, before } from "node:test";
import { chromium } from "playwright-core";

const root = resolve(import.meta.dirname, "../..");

/** The binary under test: CARNET_BIN, or the debug build. */
export const carnetBinary = process.env.CARNET_BIN ?? join(root, "target/debug/carnet");

/** Starts `carnet serve` on a free loopback port; resolves to { url, stop }. */
export async function startCarnet(extraEnv = {}) {
  const dataDir = mkdtempSync(join(tmpdir(), "carnet-browser-"));
  const env = { PATH: process.env.PATH, CARNET_DATA_DIR: join(dataDir, "data"), CARNET_LOG_FILTER: "warn", ...extraEnv };
  const child = spawn(carnetBinary, ["serve", "--listen", "127.0.0.1:0"], { env, stdio: ["ignore", "pipe", "inherit"] });
  const lines = createInterface({ input: child.stdout });
  const output = [];
  lines.on("line", (line) => output.push(line));
  const url = await new Promise((resolveUrl, reject) => {
    const timer = setTimeout(() => reject(new Error("carnet did not start within 30 s")), 30_000);
    child.once("exit", (code) => reject(new Error(`carnet exited early with code ${code}`)));
    lines.on("line", (line) => {
      const match = line.match(/^Carnet écoute sur (\S+?)\/?$/);
      if (match) {
        clearTimeout(timer);
        resolveUrl(match[1]);
      }
    });
  });
  const stop = async () => {
    if (child.exitCode === null) {
      const exited = new Promise((done) => child.once("exit", done));
      child.kill("SIGTERM");
      await exited;
    }
    rmSync(dataDir, { recursive: true, force: true });
  };
  /** Runs an operator command on the same instance; returns its standard output. */
  const run = (...args) => execFileSync(carnetBinary, args, { env, encoding: "utf8" });
  /** Waits for a line of the server's standard output matching `pattern`. */
  const waitForLine = async (pattern, timeoutMs = 10_000) => {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const found = output.find((line) => pattern.test(line));
      if (found) return found;
      await new Promise((done) => setTimeout(done, 50));
    }
    throw new Error(`no output line matched ${pattern}: ${output.join("\n")}`);
  };
  return { url, stop, run, waitForLine };
}

/** RFC 6238 TOTP (SHA-1, 30 s, 6 digits) from a base32 secret, at `unixSeconds`. */
export function totp(secretBase32, unixSeconds = Date.now() / 1000) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const char of secretBase32.replace(/=+$/, "").toUpperCase()) {
    bits += alphabet.indexOf(char).toString(2).padStart(5, "0");
  }
  const bytes = [];
  for (let index = 0; index + 8 <= bits.length; index += 8) {
    bytes.push(parseInt(bits.slice(index, index + 8), 2));
  }
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(unixSeconds / 30)));
  const digest = createHmac("sha1", Buffer.from(bytes)).update(counter).digest();
  const offset = digest[digest.length - 1] & 15;
  return ((digest.readUInt32BE(offset) & 0x7fffffff) % 1_000_000).toString().padStart(6, "0");
}

/** Launches headless chromium as the machine allows (root, closed network). */
export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_BIN ?? "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/**
 * Opens a page that records every Content-Security-Policy violation, whether reported
 * as a DOM event or as a console error.
 */
export async function openWatchedPage(browser) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const violations = [];
  await page.addInitScript(() => {
    window.__cspViolations = [];
    document.addEventListener("securitypolicyviolation", (event) => {
      window.__cspViolations.push(`${event.violatedDirective} ${event.blockedURI}`);
    });
  });
  page.on("console", (message) => {
    if (message.type() === "error" && /Content Security Policy|Refused to/i.test(message.text())) {
      violations.push(message.text());
    }
  });
  page.on("pageerror", (error) => violations.push(`page error: ${error.message}`));
  const allViolations = async () => [...violations, ...(await page.evaluate(() => window.__cspViolations ?? []))];
  return { context, page, allViolations };
}

/**
 * Starts Carnet (with `extraEnv`) and a browser before the calling file's tests and
 * stops both after them. Returns an object whose `carnet` and `browser` are set once the
 * tests run.
 */
export function carnetAndBrowser(extraEnv = {}) {
  const shared = {};
  before(async () => {
    shared.carnet = await startCarnet(extraEnv);
    shared.browser = await launchBrowser();
  });
  after(async () => {
    await shared.browser?.close();
    await shared.carnet?.stop();
  });
  return shared;
}

/**
 * Activates an account in the browser with its code, enrols TOTP, checks the 10
 * recovery codes and reaches "Mon espace". Returns the TOTP secret.
 */
export async function activateInBrowser(page, baseUrl, code, login, password) {
  await page.goto(`${baseUrl}/activation`);
  await page.fill("#f-code", code);
  await page.fill("#f-login", login);
  await page.fill("#f-password", password);
  await page.click("button[type=submit]");
  await page.waitForURL(/\/connexion\/enrolement$/);
  if ((await page.textContent("h1")) !== "Enregistrer votre second facteur") {
    throw new Error(`unexpected enrolment page: ${await page.textContent("main")}`);
  }
  if (!(await page.isVisible(".qr svg"))) throw new Error("the QR code is not shown");
  const secret = (await page.textContent("code.secret")).trim();
  await page.fill("#f-code", totp(secret));
  await page.click("button[type=submit]");
  if ((await page.textContent("h1")) !== "Vos codes de secours") throw new Error("no recovery codes page");
  if ((await page.locator("ol.codes li").count()) !== 10) throw new Error("not 10 recovery codes");
  await page.click("a.button");
  await page.waitForURL(/\/espace$/);
  return secret;
}

/** Waits until the next 30-second TOTP step starts (a used code cannot be replayed). */
export async function nextTotpStep() {
  const wait = 30_000 - (Date.now() % 30_000) + 500;
  await new Promise((done) => setTimeout(done, wait));
}

/** Signs in with login, password and a TOTP code from `secret`. */
export async function signInWithTotp(page, baseUrl, login, password, secret) {
  await page.goto(`${baseUrl}/connexion`);
  await page.fill("#f-login", login);
  await page.fill("#f-password", password);
  await page.click("button[type=submit]");
  await page.waitForURL(/\/connexion\/second-facteur$/);
  await page.fill("#f-code", totp(secret));
  await page.click("button[type=submit]");
}
