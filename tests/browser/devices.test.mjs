// Registered devices in the browser: a member signs in on a new browser and waits; the
// holder approves the device from their own browser and the waiting page turns into the
// app; the holder then blocks it, and the blocked browser's cookies, localStorage and
// IndexedDB are empty (Clear-Site-Data). Zero CSP violations.

import { test } from "node:test";
import assert from "node:assert/strict";
import { activateInBrowser, carnetAndBrowser, nextTotpStep, openWatchedPage, signInWithTotp } from "./harness.mjs";

const PASSWORD = "Tilleul-Marée-42-Orage!";
const shared = carnetAndBrowser();

test("approval turns the waiting page into the app; a block wipes the browser", { timeout: 180_000 }, async () => {
  const { carnet, browser } = shared;
  const practice = carnet
    .run("practice", "create", "--name", "Cabinet des Tilleuls", "--address", "3 rue des Lilas, 69003 Lyon", "--profession", "nurse")
    .trim();
  const codeOf = (output) => output.match(/code d'activation : (\S+)/)[1];
  const anneCode = codeOf(carnet.run("member", "add-holder", "--practice", practice, "--name", "Anne Martin", "--phone", "0612345678", "--professional-id", "10000005479"));
  const paulCode = codeOf(carnet.run("member", "add-holder", "--practice", practice, "--name", "Paul Durand", "--phone", "0622222222", "--professional-id", "10000001007"));

  const anne = await openWatchedPage(browser);
  await activateInBrowser(anne.page, carnet.url, anneCode, "anne.martin@example.fr", PASSWORD);
  const paulFirst = await openWatchedPage(browser);
  const paulSecret = await activateInBrowser(paulFirst.page, carnet.url, paulCode, "paul.durand@example.fr", PASSWORD);
  await paulFirst.context.close();

  // Paul on another browser: signed in, but the device waits for approval.
  const tablet = await openWatchedPage(browser);
  await nextTotpStep();
  await signInWithTotp(tablet.page, carnet.url, "paul.durand@example.fr", PASSWORD, paulSecret);
  await tablet.page.waitForSelector("text=Appareil en attente d'approbation");
  await tablet.page.goto(`${carnet.url}/appareils`);
  const mine = tablet.page.locator("tr", { hasText: "(cet appareil)" });
  await mine.locator("input[name=name]").fill("Tablette tournée");
  await mine.locator("button", { hasText: "Renommer" }).click();
  await tablet.page.waitForSelector("td:has-text('Tablette tournée')");

  // Anne approves it from her browser; Paul's page becomes the app.
  await anne.page.goto(`${carnet.url}/appareils/cabinet`);
  const row = anne.page.locator("tr", { hasText: "Tablette tournée" });
  await row.locator("button", { hasText: "Approuver" }).click();
  await anne.page.waitForURL(/\/appareils\/cabinet$/);
  assert.match(await anne.page.locator("tr", { hasText: "Tablette tournée" }).textContent(), /approuvé/);
  await tablet.page.goto(`${carnet.url}/espace`);
  assert.equal(await tablet.page.textContent("h1"), "Mon espace");

  // The tablet keeps things in the browser; Anne blocks it; it forgets everything.
  await tablet.page.evaluate(async () => {
    localStorage.setItem("brouillon", "note de tournée");
    await new Promise((done, fail) => {
      const opened = indexedDB.open("carnet-cache", 1);
      opened.onupgradeneeded = () => opened.result.createObjectStore("notes");
      opened.onsuccess = () => {
        opened.result.close();
        done();
      };
      opened.onerror = () => fail(opened.error);
    });
  });
  assert.ok((await tablet.context.cookies()).length >= 2, "session and device cookies before");
  await anne.page.locator("tr", { hasText: "Tablette tournée" }).locator("button", { hasText: "Bloquer" }).click();
  await anne.page.waitForURL(/\/appareils\/cabinet$/);
  assert.match(await anne.page.locator("tr", { hasText: "Tablette tournée" }).textContent(), /bloqué/);

  const response = await tablet.page.goto(`${carnet.url}/espace`);
  assert.equal(response.status(), 403);
  assert.equal(await tablet.page.textContent("h1"), "Appareil bloqué");
  assert.deepEqual(await tablet.context.cookies(), [], "no cookie left");
  const stored = await tablet.page.evaluate(async () => ({
    local: localStorage.length,
    databases: (await indexedDB.databases()).map((database) => database.name),
  }));
  assert.deepEqual(stored, { local: 0, databases: [] }, "localStorage and IndexedDB emptied");

  for (const watched of [anne, tablet]) {
    assert.deepEqual(await watched.allViolations(), [], "no CSP violation");
    await watched.context.close();
  }
});
