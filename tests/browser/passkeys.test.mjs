// The first platform administrator: the setup link printed by `carnet serve`, the
// mandatory passkey registered through Chromium's virtual authenticator (CDP
// WebAuthn domain), recovery codes, then sign-out and sign-in with the passkey alone.
// Passkeys are bound to a host name, so the pages are opened on localhost. Zero CSP
// violations on every page visited.

import { test } from "node:test";
import assert from "node:assert/strict";
import { carnetAndBrowser, openWatchedPage } from "./harness.mjs";

const shared = carnetAndBrowser();

test("setup link, passkey enrolment, passkey sign-in", { timeout: 120_000 }, async () => {
  const link = (await shared.carnet.waitForLine(/\/installation\?jeton=/)).trim();
  assert.match(link, /^http:\/\/localhost:\d+\/installation\?jeton=[A-Za-z0-9_-]{43}$/);

  const { context, page, allViolations } = await openWatchedPage(shared.browser);
  const cdp = await context.newCDPSession(page);
  await cdp.send("WebAuthn.enable");
  const { authenticatorId } = await cdp.send("WebAuthn.addVirtualAuthenticator", {
    options: {
      protocol: "ctap2",
      transport: "internal",
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });

  await page.goto(link);
  assert.equal(await page.textContent("h1"), "Installation de Carnet");
  await page.fill("#f-name", "Claire Dubois");
  await page.fill("#f-login", "claire.dubois@example.fr");
  await page.fill("#f-password", "Tilleul-Marée-42-Orage!");
  await page.click("button[type=submit]");

  await page.waitForURL(/\/connexion\/enrolement$/);
  assert.equal(await page.textContent("h1"), "Enregistrer votre clé d'accès");
  await page.fill("#f-name", "Clé de test");
  await page.click("form[data-passkey=register] button[type=submit]");
  await page.waitForSelector("#recovery:not([hidden])", { timeout: 20_000 });
  assert.equal(await page.locator("#recovery-codes li").count(), 10);
  const { credentials } = await cdp.send("WebAuthn.getCredentials", { authenticatorId });
  assert.equal(credentials.length, 1, "one credential in the authenticator");
  assert.equal(credentials[0].isResidentCredential, true, "a discoverable passkey");
  await page.click("#recovery a.button");
  await page.waitForURL(/\/espace$/);
  assert.match(await page.textContent("main"), /administrateur de la plateforme/);

  await page.click("text=Mes clés d'accès");
  await page.waitForURL(/\/cles-d-acces$/);
  assert.equal(await page.locator("td", { hasText: "Clé de test" }).count(), 1);
  await page.click("text=Retour à mon espace");

  // Sign out, then sign in with the passkey alone: no login, no password.
  await page.click("text=Se déconnecter");
  await page.waitForURL(/\/connexion$/);
  await page.click("[data-passkey=sign-in]");
  await page.waitForURL(/\/espace$/, { timeout: 20_000 });
  assert.equal(await page.textContent("h1"), "Mon espace");
  const { credentials: used } = await cdp.send("WebAuthn.getCredentials", { authenticatorId });
  assert.ok(used[0].signCount >= 1, "the authenticator signed");

  assert.deepEqual(await allViolations(), [], "no CSP violation");
  await context.close();
});
