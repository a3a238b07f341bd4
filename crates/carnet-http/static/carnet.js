// Carnet's page script: served from the binary as an ES module (CSP: script-src 'self').
// Pages work without it; it adds the privacy blur and the idle reload on signed-in pages.
document.documentElement.classList.add("js");

const body = document.body;
const blurSeconds = Number(body.dataset.blurSeconds || 0);
const lockSeconds = Number(body.dataset.lockSeconds || 0);

if (blurSeconds > 0 || lockSeconds > 0) {
  const overlay = document.getElementById("privacy-blur");
  let lastActivity = Date.now();
  const hideOverlay = () => {
    if (overlay && !overlay.hidden) {
      overlay.hidden = true;
    }
  };
  const activity = () => {
    lastActivity = Date.now();
    hideOverlay();
  };
  // The blur is a privacy screen: one click or key removes it. The lock is enforced by
  // the server; when it is due, reloading shows the lock screen and drops the page.
  for (const type of ["mousedown", "keydown", "touchstart", "wheel"]) {
    window.addEventListener(type, activity, { passive: true, capture: true });
  }
  overlay?.addEventListener("click", activity);
  window.setInterval(() => {
    const idle = (Date.now() - lastActivity) / 1000;
    if (lockSeconds > 0 && idle >= lockSeconds) {
      window.location.reload();
    } else if (blurSeconds > 0 && idle >= blurSeconds && overlay) {
      overlay.hidden = false;
    }
  }, 500);
}

// Passkeys (WebAuthn): sign-in buttons and registration forms talk to the JSON API.
// The options and answers use WebAuthn's JSON forms, so no binary conversion is needed.
const showPasskeyError = (area, message) => {
  const slot = area.querySelector("[data-passkey-error]");
  if (slot) {
    slot.textContent = message;
    slot.hidden = false;
  }
};

const postJson = async (url, body) => {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json" },
    credentials: "same-origin",
    body: JSON.stringify(body ?? {}),
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new Error(data?.error?.message ?? "L'opération a échoué : réessayez.");
  }
  return data;
};

const browserRefusal = (error) =>
  error instanceof DOMException
    ? "Opération annulée ou refusée par le navigateur : réessayez."
    : error.message;

const supportsPasskeys = () =>
  typeof window.PublicKeyCredential === "function" &&
  typeof PublicKeyCredential.parseRequestOptionsFromJSON === "function";

for (const button of document.querySelectorAll("[data-passkey=sign-in]")) {
  const area = button.parentElement;
  button.addEventListener("click", async () => {
    if (!supportsPasskeys()) {
      showPasskeyError(area, "Ce navigateur ne prend pas en charge les clés d'accès.");
      return;
    }
    button.disabled = true;
    try {
      const { ceremony, options } = await postJson("/api/v1/auth/passkeys/sign-in");
      const credential = await navigator.credentials.get({
        publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(options.publicKey),
      });
      await postJson("/api/v1/auth/passkeys/sign-in/finish", { ceremony, credential: credential.toJSON() });
      window.location.assign(button.dataset.next || "/espace");
    } catch (error) {
      showPasskeyError(area, browserRefusal(error));
      button.disabled = false;
    }
  });
}

for (const form of document.querySelectorAll("form[data-passkey=register]")) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!supportsPasskeys()) {
      showPasskeyError(form, "Ce navigateur ne prend pas en charge les clés d'accès.");
      return;
    }
    const submit = form.querySelector("button[type=submit]");
    submit.disabled = true;
    try {
      const name = new FormData(form).get("name");
      const { ceremony, options } = await postJson("/api/v1/auth/passkeys/registration", { name });
      const credential = await navigator.credentials.create({
        publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(options.publicKey),
      });
      const done = await postJson("/api/v1/auth/passkeys/registration/finish", {
        ceremony,
        credential: credential.toJSON(),
      });
      if (Array.isArray(done.recovery_codes)) {
        const list = document.getElementById("recovery-codes");
        for (const code of done.recovery_codes) {
          const item = document.createElement("li");
          const text = document.createElement("code");
          text.textContent = code;
          item.append(text);
          list.append(item);
        }
        form.hidden = true;
        document.getElementById("recovery").hidden = false;
        document.querySelector("#recovery a")?.focus();
      } else {
        window.location.assign(form.dataset.next || "/cles-d-acces");
      }
    } catch (error) {
      showPasskeyError(form, browserRefusal(error));
      submit.disabled = false;
    }
  });
}

// A date-and-time field marked `data-now` starts at this device's local time (a care act
// is usually entered as it is done); the person can change it.
for (const input of document.querySelectorAll("input[data-now]")) {
  if (!input.value) {
    const now = new Date();
    now.setMinutes(now.getMinutes() - now.getTimezoneOffset());
    input.value = now.toISOString().slice(0, 16);
  }
}

// Document upload: the file is sent as it is (the server finds its type from its
// content), then the page is shown again with the new document.
for (const form of document.querySelectorAll("form[data-upload]")) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const error = form.querySelector("[data-upload-error]");
    const file = form.querySelector("input[type=file]").files[0];
    if (!file) return;
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    error.hidden = true;
    try {
      const name = encodeURIComponent(file.name.slice(0, 60));
      const response = await fetch(`${form.dataset.upload}?name=${name}`, {
        method: "POST",
        headers: { "content-type": "application/octet-stream" },
        body: file,
      });
      if (response.ok) {
        window.location.reload();
        return;
      }
      const body = await response.json().catch(() => null);
      error.textContent = body?.error?.message ?? "L'envoi a échoué.";
      error.hidden = false;
    } catch {
      error.textContent = "L'envoi a échoué : vérifiez la connexion.";
      error.hidden = false;
    } finally {
      button.disabled = false;
    }
  });
}
