// Care records in the browser: a platform administrator validates the holder's RPPS
// (setup link, passkey through Chromium's virtual authenticator); the holder reads the
// practice PIN, unlocks the records with it, creates a patient, finds her by name prefix,
// records a care act with vital signs and sees it in the record, uploads a PDF and opens
// it, then sends a second version from the document's versions page; a staff member unlocks
// too and sees the identity but no clinical part. Zero CSP violations.

import { test } from "node:test";
import assert from "node:assert/strict";
import { activateInBrowser, carnetAndBrowser, openWatchedPage } from "./harness.mjs";

const PASSWORD = "Tilleul-Marée-42-Orage!";
const shared = carnetAndBrowser();

/** Reads the PIN from the holders' page and types it at the PIN prompt of `page`. */
async function unlockWithPin(holderPage, page, baseUrl) {
  await holderPage.goto(`${baseUrl}/cabinet/code-pin`);
  const pin = (await holderPage.textContent("code.secret")).trim();
  assert.match(pin, /^[A-Z2-9]{4}$/);
  await page.goto(`${baseUrl}/code-pin`);
  await page.fill("#f-pin", pin.toLowerCase());
  await page.click("button[type=submit]");
  await page.waitForURL(/\/espace$/);
  assert.match(await page.textContent("main"), /déverrouillés pour cette session/);
}

test("PIN, search, a care act with vital signs; staff see no clinical part", { timeout: 180_000 }, async () => {
  const { carnet, browser } = shared;
  const practice = carnet
    .run("practice", "create", "--name", "Cabinet des Tilleuls", "--address", "3 rue des Lilas, 69003 Lyon", "--profession", "nurse")
    .trim();
  const added = carnet.run("member", "add-holder", "--practice", practice, "--name", "Anne Martin", "--phone", "0612345678", "--professional-id", "10000005479");
  const holderId = added.match(/membre : (\S+)/)[1];
  const holderCode = added.match(/code d'activation : (\S+)/)[1];

  // The platform administrator validates Anne's RPPS.
  const link = (await carnet.waitForLine(/\/installation\?jeton=/)).trim();
  const admin = await openWatchedPage(browser);
  const cdp = await admin.context.newCDPSession(admin.page);
  await cdp.send("WebAuthn.enable");
  await cdp.send("WebAuthn.addVirtualAuthenticator", {
    options: { protocol: "ctap2", transport: "internal", hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
  });
  await admin.page.goto(link);
  await admin.page.fill("#f-name", "Claire Dubois");
  await admin.page.fill("#f-login", "claire.dubois@example.fr");
  await admin.page.fill("#f-password", PASSWORD);
  await admin.page.click("button[type=submit]");
  await admin.page.waitForURL(/\/connexion\/enrolement$/);
  await admin.page.fill("#f-name", "Clé de test");
  await admin.page.click("form[data-passkey=register] button[type=submit]");
  await admin.page.waitForSelector("#recovery:not([hidden])", { timeout: 20_000 });
  await admin.page.click("#recovery a.button");
  await admin.page.waitForURL(/\/espace$/);
  const decided = await admin.page.evaluate(async ([practiceId, memberId]) => {
    const response = await fetch(`/api/v1/practices/${practiceId}/members/${memberId}/professional-id-decisions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ decision: "validate", reason: "RPPS vérifié dans l'annuaire santé" }),
    });
    return response.status;
  }, [practice, holderId]);
  assert.equal(decided, 201, "the administrator validated the RPPS");

  // Anne: activation, PIN, a new patient.
  const anne = await openWatchedPage(browser);
  await activateInBrowser(anne.page, carnet.url, holderCode, "anne.martin@example.fr", PASSWORD);
  const pinPage = await anne.context.newPage();
  await unlockWithPin(pinPage, anne.page, carnet.url);
  await anne.page.click("text=Patients et dossiers de soins");
  await anne.page.waitForURL(/\/patients$/);
  await anne.page.click("text=Nouveau patient");
  await anne.page.fill("#f-birth_name", "Le Goff");
  await anne.page.fill("#f-first_names", "Jeanne Marie");
  await anne.page.fill("#f-birth_date", "1942-03-15");
  await anne.page.fill("#f-phone1", "06 12 34 56 78");
  await anne.page.click("button[type=submit]");
  await anne.page.waitForSelector("h1:has-text('LE GOFF Jeanne')");
  const patientUrl = anne.page.url();

  // Found again by a name prefix, accents and case ignored.
  await anne.page.goto(`${carnet.url}/cabinets/${practice}/patients`);
  await anne.page.fill("#f-nom", "le g");
  await anne.page.click("button[type=submit]");
  await anne.page.click("ul.patients a:has-text('LE GOFF Jeanne')");
  await anne.page.waitForURL(patientUrl);

  // A care act with vital signs, the date and time already filled in.
  assert.match(await anne.page.inputValue("#f-performed_at"), /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}$/);
  await anne.page.fill("#f-label", "Injection sous-cutanée");
  await anne.page.fill("#f-ngap", "AMI 1");
  await anne.page.fill("#f-temperature", "37,8");
  await anne.page.fill("#f-systolic", "135");
  await anne.page.fill("#f-diastolic", "85");
  await anne.page.fill("#f-pain", "2");
  await anne.page.click("form[action$='/actes'] button[type=submit]");
  await anne.page.waitForSelector("ol.timeline li:has-text('Injection sous-cutanée (AMI 1)')");
  assert.match(await anne.page.textContent("ol.timeline"), /T 37,8 °C · TA 135\/85 mmHg · douleur 2\/10/);

  // A PDF, uploaded and opened again.
  await anne.page.setInputFiles("#f-file", {
    name: "compte-rendu.pdf",
    mimeType: "application/pdf",
    buffer: Buffer.from("%PDF-1.4\n% compte-rendu de biologie\n%%EOF\n"),
  });
  await anne.page.click("form[data-upload] button[type=submit]");
  const documentLink = anne.page.locator("ul.documents a", { hasText: "compte-rendu.pdf" });
  await documentLink.waitFor();
  assert.match(await anne.page.textContent("ul.documents"), /PDF/);
  const opened = await anne.page.evaluate(async (href) => {
    const response = await fetch(href);
    return { status: response.status, type: response.headers.get("content-type"), text: await response.text() };
  }, await documentLink.getAttribute("href"));
  assert.equal(opened.status, 200);
  assert.equal(opened.type, "application/pdf");
  assert.match(opened.text, /compte-rendu de biologie/);

  // A second version, sent from the document's versions page; both stay listed.
  const recordUrl = anne.page.url();
  await anne.page.click("ul.documents a:has-text('versions')");
  await anne.page.waitForSelector("h1:has-text('Versions de')");
  await anne.page.setInputFiles("#f-file", {
    name: "compte-rendu-complet.png",
    mimeType: "image/png",
    buffer: Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.alloc(64, 7)]),
  });
  await anne.page.click("form[data-upload] button[type=submit]");
  await anne.page.waitForSelector("ol.revisions li:has-text('Version 2')");
  assert.match(await anne.page.textContent("ol.revisions"), /Version 2 — compte-rendu-complet\.png — image PNG[\s\S]*Version 1 — compte-rendu\.pdf — PDF/);
  await anne.page.goto(recordUrl);

  // A staff member: the identity, no clinical part.
  const staffCode = await anne.page.evaluate(async (practiceId) => {
    const created = await fetch(`/api/v1/practices/${practiceId}/members`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name: "Léa Petit", role: "staff", phone: "0633333333" }),
    }).then((response) => response.json());
    const code = await fetch(`/api/v1/practices/${practiceId}/members/${created.id}/activation-code`, { method: "POST" })
      .then((response) => response.json());
    return code.code;
  }, practice);
  const lea = await openWatchedPage(browser);
  await activateInBrowser(lea.page, carnet.url, staffCode, "lea.petit@example.fr", PASSWORD);
  await unlockWithPin(pinPage, lea.page, carnet.url);
  await lea.page.goto(patientUrl);
  await lea.page.waitForSelector("h1:has-text('LE GOFF Jeanne')");
  assert.match(await lea.page.textContent("main"), /0612345678/);
  assert.match(await lea.page.textContent("main"), /pas au contenu clinique/);
  assert.equal(await lea.page.locator("ol.timeline").count(), 0, "no timeline");
  assert.equal(await lea.page.locator("text=Injection").count(), 0, "no act shown");
  assert.equal(await lea.page.locator("ul.documents, form[data-upload]").count(), 0, "no documents");

  for (const watched of [admin, anne, lea]) {
    assert.deepEqual(await watched.allViolations(), [], "no CSP violation");
    await watched.context.close();
  }
});
