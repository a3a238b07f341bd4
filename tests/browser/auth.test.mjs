// A holder activates their account in the browser, enrols TOTP, and reaches their
// space; the privacy blur appears and clears on click; the idle lock hides the page and
// unlocks with the password; sign-out and sign-in with TOTP. Zero CSP violations on
// every page visited.

import { test } from "node:test";
import assert from "node:assert/strict";
import { activateInBrowser, carnetAndBrowser, nextTotpStep, openWatchedPage, signInWithTotp } from "./harness.mjs";

const PASSWORD = "Tilleul-Marée-42-Orage!";
const LOGIN = "anne.martin@example.fr";

// The shortest settings the configuration allows: blur after 10 s, lock after 1 min.
const shared = carnetAndBrowser({ CARNET_BLUR_AFTER_SECONDS: "10", CARNET_IDLE_LOCK_MINUTES: "1" });

test("activation, TOTP enrolment, blur, idle lock, sign-out and sign-in", { timeout: 240_000 }, async () => {
  const practice = shared.carnet
    .run("practice", "create", "--name", "Cabinet des Tilleuls", "--address", "3 rue des Lilas, 69003 Lyon", "--profession", "nurse")
    .trim();
  const added = shared.carnet.run("member", "add-holder", "--practice", practice, "--name", "Anne Martin", "--phone", "0612345678", "--professional-id", "10000005479");
  const code = added.match(/code d'activation : (\S+)/)[1];

  const { context, page, allViolations } = await openWatchedPage(shared.browser);
  const secret = await activateInBrowser(page, shared.carnet.url, code, LOGIN, PASSWORD);
  assert.equal(await page.textContent("h1"), "Mon espace");

  // The privacy blur after 10 s without activity; one click removes it.
  const blur = page.locator("#privacy-blur");
  assert.equal(await blur.isVisible(), false);
  await page.waitForTimeout(11_500);
  assert.equal(await blur.isVisible(), true, "blurred after 10 s idle");
  await blur.click();
  assert.equal(await blur.isVisible(), false, "one click clears it");

  // The idle lock: after a minute, the page reloads into the lock screen.
  await page.waitForURL(/.*/, { waitUntil: "load" });
  await page.waitForSelector("text=Session verrouillée", { timeout: 90_000 });
  assert.equal(await page.locator("text=Mon espace").count(), 0, "nothing of the page stays on screen");
  await page.fill("#f-password", PASSWORD);
  await page.click("button[type=submit]");
  await page.waitForURL(/\/espace$/);
  assert.equal(await page.textContent("h1"), "Mon espace");

  // Sign out, then sign in with the password and a fresh TOTP code.
  await page.click("text=Se déconnecter");
  await page.waitForURL(/\/connexion$/);
  await nextTotpStep();
  await signInWithTotp(page, shared.carnet.url, LOGIN, PASSWORD, secret);
  await page.waitForURL(/\/espace$/);

  await page.goto(`${shared.carnet.url}/sessions`);
  assert.ok((await page.locator("table.journal tbody tr").count()) >= 2, "both sessions listed");

  assert.deepEqual(await allViolations(), [], "zero CSP violations on every page visited");
  await context.close();
});
