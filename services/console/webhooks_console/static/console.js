// Progressive enhancement of the server-rendered pages: every page works without it.
"use strict";

// What only a page without scripts needs (round-trip buttons) hides once this runs.
document.documentElement.classList.add("js");

document.addEventListener("DOMContentLoaded", () => {
  autoSubmit();
  tabs();
  menus();
  localTimes();
  filterTimes();
  document.querySelectorAll(".picker").forEach(webhookPicker);
});

function autoSubmit() {
  document.querySelectorAll("input.auto-submit, select.auto-submit").forEach((box) => {
    box.addEventListener("change", () => box.form.submit());
  });
}

// Tabs (WAI-ARIA tabs pattern): one tab in the Tab order (roving tabindex), arrow keys,
// Home and End move between tabs and show their panel; a click does the same.
function tabs() {
  const root = document.querySelector(".tabs");
  if (!root) return;
  const list = root.querySelector(".tab-list");
  const all = Array.from(root.querySelectorAll("[data-tab]"));
  if (list) list.setAttribute("role", "tablist");
  all.forEach((tab) => {
    const panel = root.querySelector(`[data-panel="${tab.dataset.tab}"]`);
    tab.setAttribute("role", "tab");
    if (panel) {
      panel.setAttribute("role", "tabpanel");
      if (panel.id) tab.setAttribute("aria-controls", panel.id);
      if (tab.id) panel.setAttribute("aria-labelledby", tab.id);
      panel.tabIndex = 0;
    }
  });
  const show = (name, focus) => {
    root.querySelectorAll("[data-panel]").forEach((p) => { p.hidden = p.dataset.panel !== name; });
    all.forEach((t) => {
      const selected = t.dataset.tab === name;
      t.setAttribute("aria-selected", String(selected));
      t.tabIndex = selected ? 0 : -1;
      if (selected && focus) t.focus();
    });
  };
  all.forEach((tab, index) => {
    tab.addEventListener("click", (event) => { event.preventDefault(); show(tab.dataset.tab, true); });
    tab.addEventListener("keydown", (event) => {
      const moves = { ArrowRight: index + 1, ArrowLeft: index - 1, Home: 0, End: all.length - 1 };
      if (!(event.key in moves)) return;
      event.preventDefault();
      const next = all[(moves[event.key] + all.length) % all.length];
      show(next.dataset.tab, true);
    });
  });
  root.classList.add("enhanced");
  show(root.dataset.initial || "overview", false);
}

// Menus (<details class="menu">): one open at a time; Escape closes the open one (focus back
// on its button), a click or focus outside it closes it.
function menus() {
  const all = () => Array.from(document.querySelectorAll("details.menu"));
  all().forEach((menu) => {
    menu.addEventListener("toggle", () => {
      if (!menu.open) return;
      all().forEach((other) => { if (other !== menu) other.open = false; });
      const first = menu.querySelector(".menu-items a, .menu-items button");
      if (first && menu.dataset.keyboard === "1") first.focus();
    });
    const summary = menu.querySelector("summary");
    if (summary) {
      summary.setAttribute("aria-haspopup", "menu");
      summary.addEventListener("keydown", (event) => {
        menu.dataset.keyboard = event.key === "Enter" || event.key === " " ? "1" : "";
      });
      summary.addEventListener("pointerdown", () => { menu.dataset.keyboard = ""; });
    }
  });
  document.addEventListener("keydown", (event) => {
    if (event.key !== "Escape") return;
    all().forEach((menu) => {
      if (!menu.open) return;
      menu.open = false;
      const summary = menu.querySelector("summary");
      if (summary && menu.contains(document.activeElement)) summary.focus();
    });
  });
  const closeOutside = (event) => {
    all().forEach((menu) => { if (menu.open && !menu.contains(event.target)) menu.open = false; });
  };
  document.addEventListener("click", closeOutside);
  document.addEventListener("focusin", closeOutside);
}

// Times: the server writes UTC ("7 Dec 2026, 23:03 UTC"); shown in the viewer's own time
// zone and language, the UTC moment kept in the title.
function localTimes() {
  let format;
  try {
    format = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
  } catch (error) {
    return;
  }
  document.querySelectorAll("time[datetime]").forEach((node) => {
    const moment = new Date(node.getAttribute("datetime"));
    if (Number.isNaN(moment.getTime())) return;
    if (!node.title) node.title = node.textContent.trim();
    node.textContent = format.format(moment);
    node.classList.add("localised");
  });
}

// Failed Events' From and To are typed in the viewer's time: the hidden tz input carries the
// offset from UTC (minutes east, at the date typed: summer and winter differ) and the labels
// say it. Without this the server reads them as UTC and the labels say so.
function filterTimes() {
  const form = document.getElementById("filters");
  const zone = form && form.elements.tz;
  if (!zone || !form.elements.since || !form.elements.until) return;
  const offset = () => {
    const typed = new Date(form.elements.since.value || form.elements.until.value);
    return -(Number.isNaN(typed.getTime()) ? new Date() : typed).getTimezoneOffset();
  };
  const text = (minutes) => {
    if (minutes === 0) return "UTC";
    const m = Math.abs(minutes);
    const two = (n) => String(n).padStart(2, "0");
    return `UTC${minutes < 0 ? "-" : "+"}${two(Math.floor(m / 60))}:${two(m % 60)}`;
  };
  const update = () => {
    const minutes = offset();
    zone.value = String(minutes);
    form.querySelectorAll(".time-zone").forEach((label) => { label.textContent = `(your time, ${text(minutes)})`; });
  };
  form.elements.since.addEventListener("change", update);
  form.elements.until.addEventListener("change", update);
  form.addEventListener("submit", update);
  update();
}

// The Failed Events webhook picker (WAI-ARIA combobox with a list box): as the user types,
// the console's /webhooks/search names up to 20 webhooks; arrows move, Enter picks (the
// hidden input gets the webhook's id), Escape closes. Without it the typed name is looked
// up by the server.
function webhookPicker(root) {
  const input = root.querySelector("input[role=combobox]");
  const hidden = root.querySelector("input[type=hidden]");
  const list = root.querySelector("[role=listbox]");
  const status = root.querySelector("[role=status]");
  if (!input || !hidden || !list) return;
  let options = [];
  let active = -1;
  let asked = 0;
  let timer = 0;

  const close = () => {
    list.hidden = true;
    input.setAttribute("aria-expanded", "false");
    input.removeAttribute("aria-activedescendant");
    active = -1;
  };
  const mark = (index) => {
    active = index;
    options.forEach((li, i) => li.setAttribute("aria-selected", String(i === index)));
    if (index >= 0) {
      input.setAttribute("aria-activedescendant", options[index].id);
      options[index].scrollIntoView({ block: "nearest" });
    } else {
      input.removeAttribute("aria-activedescendant");
    }
  };
  const pick = (li) => {
    input.value = li.dataset.name;
    hidden.value = li.dataset.id;
    close();
  };
  const show = (found, more) => {
    list.replaceChildren();
    options = found.map((w, i) => {
      const li = document.createElement("li");
      li.id = `webhook-option-${i}`;
      li.setAttribute("role", "option");
      li.dataset.id = w.id;
      li.dataset.name = w.name;
      li.textContent = w.name;
      li.addEventListener("mousedown", (event) => { event.preventDefault(); pick(li); });
      list.append(li);
      return li;
    });
    if (!found.length) {
      const li = document.createElement("li");
      li.className = "none";
      li.textContent = "No webhook's name contains this.";
      list.append(li);
    } else if (more) {
      const li = document.createElement("li");
      li.className = "more";
      li.textContent = "More match: type more of the name.";
      list.append(li);
    }
    list.hidden = false;
    input.setAttribute("aria-expanded", "true");
    mark(-1);
    if (status) status.textContent = found.length ? `${found.length}${more ? "+" : ""} webhooks found` : "No webhook found";
  };
  const search = async () => {
    const ask = ++asked;
    const url = `${root.dataset.search}?q=${encodeURIComponent(input.value.trim())}`;
    try {
      const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (!response.ok) return;
      const body = await response.json();
      if (ask === asked && document.activeElement === input) show(body.webhooks, body.more);
    } catch (error) {
      // Offline or signed out: the server resolves the typed name on Filter.
    }
  };
  input.addEventListener("input", () => {
    hidden.value = "";
    clearTimeout(timer);
    timer = setTimeout(search, 150);
  });
  input.addEventListener("focus", () => { if (!input.value) search(); });
  input.addEventListener("blur", () => setTimeout(close, 100));
  input.addEventListener("keydown", (event) => {
    const open = !list.hidden && options.length > 0;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      if (list.hidden) { search(); return; }
      if (!options.length) return;
      const step = event.key === "ArrowDown" ? 1 : -1;
      mark((active + step + options.length) % options.length);
    } else if (event.key === "Enter" && open && active >= 0) {
      event.preventDefault();
      pick(options[active]);
    } else if (event.key === "Escape" && !list.hidden) {
      event.preventDefault();
      event.stopPropagation();
      close();
    }
  });
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
