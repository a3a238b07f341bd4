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
