// Smoke test: a person opens Carnet's home page in chromium; the page renders in French
// with its stylesheet and script, carries the security headers, and the browser
// reports no Content-Security-Policy violation.

import { test } from "node:test";
import assert from "node:assert/strict";
import { carnetAndBrowser, openWatchedPage } from "./harness.mjs";

const shared = carnetAndBrowser();

test("the home page loads in French with zero CSP violations and the security headers", async () => {
  const { context, page, allViolations } = await openWatchedPage(shared.browser);
  const response = await page.goto(`${shared.carnet.url}/`, { waitUntil: "load" });
  assert.equal(response.status(), 200);

  const headers = response.headers();
  assert.match(headers["content-security-policy"], /default-src 'none'/);
  assert.match(headers["content-security-policy"], /script-src 'self'/);
  assert.match(headers["content-security-policy"], /frame-ancestors 'none'/);
  assert.doesNotMatch(headers["content-security-policy"], /unsafe-inline|unsafe-eval/);
  assert.equal(headers["x-content-type-options"], "nosniff");
  assert.equal(headers["referrer-policy"], "no-referrer");
  assert.equal(headers["cross-origin-opener-policy"], "same-origin");
  assert.equal(headers["cross-origin-resource-policy"], "same-origin");

  assert.equal(await page.getAttribute("html", "lang"), "fr");
  assert.equal(await page.textContent("h1"), "Bienvenue sur Carnet");
  // The stylesheet applied (served from the binary under style-src 'self').
  const headerColour = await page.$eval(".site-header", (element) => getComputedStyle(element).backgroundColor);
  assert.equal(headerColour, "rgb(11, 92, 138)");
  // The module script ran (served from the binary under script-src 'self').
  assert.equal(await page.evaluate(() => document.documentElement.classList.contains("js")), true);

  // Keyboard users reach the skip link first.
  await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement?.textContent), "Aller au contenu");

  assert.deepEqual(await allViolations(), []);
  await context.close();
});

test("the harness notices a CSP violation (so a clean result means something)", async () => {
  const { context, page, allViolations } = await openWatchedPage(shared.browser);
  await page.goto(`${shared.carnet.url}/`, { waitUntil: "load" });
  // An inline style attribute injected after load must be refused by the policy.
  await page.evaluate(() => {
    const element = document.createElement("div");
    element.setAttribute("style", "color: red");
    document.body.append(element);
  });
  await page.waitForTimeout(200);
  const violations = await allViolations();
  assert.ok(violations.length > 0, "the injected inline style was reported");
  await context.close();
});
