// Carnet's page script: served from the binary as an ES module (CSP: script-src 'self').
// It only enhances pages; everything works without it.
document.documentElement.classList.add("js");
