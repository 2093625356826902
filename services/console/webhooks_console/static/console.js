// Progressive enhancement of the server-rendered pages: every page works without it.
"use strict";

// What only a page without scripts needs (round-trip buttons) hides once this runs.
document.documentElement.classList.add("js");

document.addEventListener("DOMContentLoaded", () => {
  autoSubmit();
  tabs();
});

function autoSubmit() {
  document.querySelectorAll("input.auto-submit").forEach((box) => {
    box.addEventListener("change", () => box.form.submit());
  });
}

function tabs() {
  const root = document.querySelector(".tabs");
  if (!root) return;
  const show = (name) => {
    root.querySelectorAll("[data-panel]").forEach((p) => { p.hidden = p.dataset.panel !== name; });
    root.querySelectorAll("[data-tab]").forEach((t) => {
      t.setAttribute("aria-selected", String(t.dataset.tab === name));
    });
  };
  root.querySelectorAll("[data-tab]").forEach((tab) => {
    tab.addEventListener("click", (event) => { event.preventDefault(); show(tab.dataset.tab); });
  });
  root.classList.add("enhanced");
  show(root.dataset.initial || "overview");
}

// The one-time signing secret: a Copy button (the text stays selectable without it), and
// nothing left to show when the page comes back from the browser's back/forward cache.
document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("button.copy[data-copy]").forEach((button) => {
    const source = document.getElementById(button.dataset.copy);
    const status = button.parentElement.querySelector(".copy-status");
    if (!source) return;
    button.hidden = false;
    button.addEventListener("click", async () => {
      const text = source.textContent.trim();
      let copied = false;
      try {
        await navigator.clipboard.writeText(text);
        copied = true;
      } catch (error) {
        const range = document.createRange();
        range.selectNodeContents(source);
        const selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
        copied = document.execCommand && document.execCommand("copy");
      }
      if (status) status.textContent = copied ? "Copied." : "Selected: press Ctrl+C to copy.";
    });
  });
});

window.addEventListener("pagehide", () => {
  const secret = document.getElementById("signing-secret");
  if (secret) secret.textContent = "(shown once: no longer shown)";
});

window.addEventListener("pageshow", (event) => {
  if (event.persisted && document.getElementById("signing-secret-page")) window.location.reload();
});
