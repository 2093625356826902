// The Add New Subscription / Edit form, stepped: progressive enhancement of a form that works
// without it (every step is shown and the server checks everything on submit).
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("subscription-form");
  if (form) subscriptionForm(form);
});

function subscriptionForm(form) {
  const data = JSON.parse(document.getElementById("catalogue-data").textContent);
  const steps = Array.from(form.querySelectorAll("fieldset.step"));
  const goto = (name) => {
    steps.forEach((s) => { s.hidden = s.dataset.step !== name; });
    form.querySelectorAll("[data-goto]").forEach((b) => {
      b.classList.toggle("current", b.dataset.goto === name);
    });
    form.dataset.step = name;
  };
  form.classList.add("stepped");
  form.querySelectorAll("[data-goto]").forEach((b) => b.addEventListener("click", () => goto(b.dataset.goto)));
  const entity = form.querySelector("#entity");
  const problems = formProblems(form, entity, goto);
  steps.forEach((step, index) => {
    // "Next" moves on only when the step's own checks pass; the server still judges all.
    step.querySelectorAll("button.next").forEach((b) => b.addEventListener("click", () => {
      if (problems.check(step.dataset.step)) goto(steps[index + 1].dataset.step);
    }));
    step.querySelectorAll("button.back").forEach((b) => b.addEventListener("click", () => goto(steps[index - 1].dataset.step)));
  });
  goto(form.dataset.step || "details");
  problems.focusSummary();

  const rows = () => Array.from(form.querySelectorAll(".trigger-row"));
  const triggersOf = (name) => data.entities[name] || [];

  const fillTriggers = () => {
    rows().forEach((row) => {
      const select = row.querySelector(".trigger-select");
      const chosen = select.value;
      select.replaceChildren(new Option("Choose the trigger event", ""));
      triggersOf(entity.value).forEach((t) => {
        const option = new Option(t.label, t.name, false, t.name === chosen);
        option.dataset.components = t.components.join(",");
        option.dataset.firesWhen = t.fires_when;
        select.add(option);
      });
    });
    showComponents();
  };
  const showComponents = () => {
    rows().forEach((row) => {
      const option = row.querySelector(".trigger-select").selectedOptions[0];
      const components = option && option.dataset.components ? option.dataset.components.split(",") : [];
      const firesWhen = row.querySelector(".fires-when");
      firesWhen.textContent = (option && option.dataset.firesWhen) || "";
      firesWhen.hidden = !firesWhen.textContent;
      row.querySelectorAll("fieldset.component").forEach((group) => {
        group.hidden = !components.includes(group.dataset.component);
      });
    });
    greyOut();
  };
  // Values chosen in another trigger of the same event are greyed out (the user guide).
  const greyOut = () => {
    const all = rows();
    const distinct = data.distinct[entity.value] || {};
    all.forEach((row, index) => {
      const trigger = row.querySelector(".trigger-select").value;
      const component = distinct[trigger] || "";
      const taken = { channels: new Set(), activity_types: new Set(), status_changes: new Set() };
      all.forEach((other, otherIndex) => {
        if (otherIndex === index || other.querySelector(".trigger-select").value !== trigger || !component) return;
        const pairs = Array.from(other.querySelectorAll(".pair")).map((pair) => {
          const from = pair.querySelector(".sc-from"), to = pair.querySelector(".sc-to");
          return from && to && to.value ? `${from.value}>${to.value}` : "";
        }).filter(Boolean);
        if (component === "activity_types") {
          other.querySelectorAll("[data-component=activity_types] input:checked").forEach((box) => {
            if (box.value !== "2" || pairs.length === 0) taken.activity_types.add(box.value);
          });
          pairs.forEach((p) => taken.status_changes.add(p));
        } else if (component === "channels") {
          other.querySelectorAll("[data-component=channels] input:checked").forEach((box) => taken.channels.add(box.value));
        }
      });
      ["channels", "activity_types"].forEach((name) => {
        row.querySelectorAll(`[data-component=${name}] input[type=checkbox]`).forEach((box) => {
          const off = taken[name].has(box.value) && !box.checked;
          box.disabled = off;
          box.closest("label").classList.toggle("taken", off);
        });
      });
      row.querySelectorAll(".pair").forEach((pair) => {
        const from = pair.querySelector(".sc-from"), to = pair.querySelector(".sc-to");
        if (!from || !to) return;
        // "Any status" overlaps every change to the same status (the service's rule).
        const clashes = (target) => Array.from(taken.status_changes).some((pair) => {
          const [source, chosen] = pair.split(">");
          return chosen === target && (source === from.value || source === "0" || from.value === "0");
        });
        Array.from(to.options).forEach((option) => {
          option.disabled = option.value !== "" && option.value !== to.value && clashes(option.value);
        });
      });
    });
  };
  entity.addEventListener("change", fillTriggers);
  form.addEventListener("change", (event) => {
    if (event.target.classList.contains("trigger-select")) showComponents();
    else if (event.target.closest(".trigger-row")) greyOut();
  });
  form.querySelectorAll(".add-pair, .add-parameter").forEach((button) => {
    button.addEventListener("click", () => {
      const pairs = button.parentElement.querySelectorAll(".pair");
      const last = pairs[pairs.length - 1];
      const copy = last.cloneNode(true);
      copy.querySelectorAll("input").forEach((input) => { input.value = ""; });
      copy.querySelectorAll("select").forEach((select) => { select.selectedIndex = 0; });
      last.after(copy);
      greyOut();
    });
  });
  channelRows(form);
  showComponents();

  const typeRadios = form.querySelectorAll("input[name='webhook.type']");
  const showType = () => {
    const soap = form.querySelector("input[name='webhook.type']:checked")?.value === "soap";
    document.getElementById("soap-settings").hidden = !soap;
    document.getElementById("format").textContent = soap ? "XML" : "JSON";
  };
  typeRadios.forEach((r) => r.addEventListener("change", showType));
  showType();

  const authRadios = form.querySelectorAll("input[name='authentication']");
  const showAuth = () => {
    const kind = form.querySelector("input[name='authentication']:checked")?.value || "none";
    form.querySelectorAll("fieldset.auth-kind").forEach((f) => { f.hidden = f.dataset.auth !== kind; });
  };
  authRadios.forEach((r) => r.addEventListener("change", showAuth));
  showAuth();
}

// WhatsApp channel ids, one per row (a datalist suggests the ones other webhooks use):
// "Add channel" adds an empty row here instead of the round trip it makes without scripts,
// which also needs an empty row on every page; each row has Remove.
function channelRows(form) {
  form.querySelectorAll("fieldset.whatsapp-channels").forEach((group) => {
    const list = group.querySelector(".channel-rows");
    const add = group.querySelector(".add-channel");
    if (!list || !add) return;
    const rows = () => Array.from(list.querySelectorAll(".channel-row"));
    const renumber = () => rows().forEach((row, index) => {
      row.querySelector("label .visually-hidden").textContent = `WhatsApp channel id ${index + 1}`;
      row.querySelector(".remove-channel").setAttribute("aria-label", `Remove WhatsApp channel id ${index + 1}`);
    });
    const wire = (row) => {
      const remove = row.querySelector(".remove-channel");
      remove.hidden = false;
      remove.addEventListener("click", () => {
        const before = rows();
        const index = before.indexOf(row);
        if (before.length === 1) {
          row.querySelector("input").value = "";
        } else {
          row.remove();
          renumber();
        }
        const left = rows();
        left[Math.min(index, left.length - 1)].querySelector("input").focus();
      });
    };
    const first = rows();
    const last = first[first.length - 1];
    if (first.length > 1 && !last.querySelector("input").value) last.remove();
    rows().forEach(wire);
    add.type = "button";
    add.addEventListener("click", () => {
      const copy = rows()[0].cloneNode(true);
      const input = copy.querySelector("input");
      input.value = "";
      input.removeAttribute("aria-invalid");
      input.removeAttribute("aria-describedby");
      list.append(copy);
      wire(copy);
      renumber();
      input.focus();
    });
    renumber();
  });
}

// What is wrong, at each field and in the error summary: the server's answer as rendered,
// and the checks "Next" makes on its own step (the same sentences as the server's).
const KEPT_IDS = new Set(["entity"]);
const slug = (name) => name.replace(/[^A-Za-z0-9]+/g, "-").replace(/^-+|-+$/g, "");
const fieldId = (name) => (KEPT_IDS.has(name) ? name : `f-${slug(name)}`);
const errorId = (name) => `err-${slug(name)}`;
const URL_LIMIT = 2048;
const RATE_LIMIT = 10000;
const CHANNEL_ID = /^[A-Za-z0-9_.:-]{1,128}$/;
const CHANNEL_ID_SENTENCE = "Each WhatsApp channel id has 1 to 128 characters: letters, digits and _ . : - only.";
const LOOPBACK = /^http:\/\/(localhost|127\.[0-9.]+|\[::1\])(:[0-9]+)?(\/|$)/i;

function summaryLine(label, sentence) {
  const text = sentence.replace(/\.$/, "");
  if (!label || text.startsWith(label)) return text;
  const first = text.split(" ", 1)[0];
  const lower = first.length > 1 && first[0] === first[0].toUpperCase() && first.slice(1) === first.slice(1).toLowerCase();
  return `${label}: ${lower ? text[0].toLowerCase() + text.slice(1) : text}`;
}

function wholeNumber(input, low, high) {
  const text = input.value.trim();
  if (input.validity && input.validity.badInput) return false;
  return /^-?[0-9]{1,12}$/.test(text) && Number(text) >= low && Number(text) <= high;
}

function formProblems(form, entity, goto) {
  const summary = document.getElementById("error-summary");
  const value = (name) => (form.elements[name] ? String(form.elements[name].value || "").trim() : "");
  const checks = {
    details() {
      const found = [];
      const names = ["name", "entity"];
      const name = value("name");
      if (!name) found.push(["name", "Enter a name."]);
      else if (name.length > 200) found.push(["name", "Name can be at most 200 characters."]);
      if (!entity.value) found.push(["entity", "Choose the entity."]);
      form.querySelectorAll(".trigger-row").forEach((row) => {
        const input = `triggers[${row.dataset.index}].trigger`;
        names.push(input);
        if (entity.value && !value(input)) found.push([input, "Choose the trigger event."]);
        const channels = row.querySelector("fieldset.whatsapp-channels");
        if (!channels) return;
        const field = `triggers[${row.dataset.index}].whatsapp_channels`;
        names.push(field);
        const bad = Array.from(channels.querySelectorAll("input")).filter((box) => {
          const id = box.value.trim();
          const wrong = !channels.hidden && id !== "" && !CHANNEL_ID.test(id);
          if (wrong) {
            box.setAttribute("aria-invalid", "true");
            box.setAttribute("aria-describedby", errorId(field));
          } else {
            box.removeAttribute("aria-invalid");
            box.removeAttribute("aria-describedby");
          }
          return wrong;
        });
        if (bad.length) found.push([field, CHANNEL_ID_SENTENCE]);
      });
      return [names, found];
    },
    webhook() {
      const found = [];
      const url = value("webhook.url");
      if (!url) found.push(["webhook.url", "Enter the webhook URL, starting with https://."]);
      else if (!/^https:\/\/[^\s/]+/i.test(url) && !LOOPBACK.test(url)) found.push(["webhook.url", "Webhook URL must start with https://"]);
      else if (url.length > URL_LIMIT) found.push(["webhook.url", `Webhook URL can be at most ${URL_LIMIT} characters; it has ${url.length}.`]);
      const soap = form.querySelector("input[name='webhook.type']:checked")?.value === "soap";
      if (soap && !value("webhook.soap.operation")) found.push(["webhook.soap.operation", "Enter the SOAP operation."]);
      const rate = form.elements["webhook.rate_limit_per_second"];
      if ((rate.value.trim() || (rate.validity && rate.validity.badInput)) && !wholeNumber(rate, 0, RATE_LIMIT)) {
        found.push(["webhook.rate_limit_per_second", `Rate limit must be from 0 (no limit) to ${RATE_LIMIT} deliveries a second.`]);
      }
      return [["webhook.url", "webhook.soap.operation", "webhook.rate_limit_per_second"], found];
    },
    authentication() {
      const found = [];
      const names = [];
      const kind = form.querySelector("input[name='authentication']:checked")?.value || "none";
      form.querySelectorAll(`fieldset.auth-kind[data-auth='${kind}'] input[data-required]`).forEach((input) => {
        names.push(input.name);
        if (!input.value.trim() && input.dataset.stored !== "yes") {
          found.push([input.name, `Enter the ${input.dataset.required}.`]);
        }
      });
      return [names, found];
    },
    retries() {
      const found = [];
      if (!wholeNumber(form.elements["retry_policy.retries"], 0, 5)) found.push(["retry_policy.retries", "Number of retries must be from 0 to 5."]);
      if (!wholeNumber(form.elements["retry_policy.interval_seconds"], 1, 86400)) {
        found.push(["retry_policy.interval_seconds", "Interval between retries must be a whole number of seconds, at most 86400."]);
      }
      return [["retry_policy.retries", "retry_policy.interval_seconds"], found];
    },
  };
  const show = (name, sentence) => {
    const shown = document.getElementById(errorId(name));
    const input = document.getElementById(fieldId(name));
    if (!shown) return;
    shown.textContent = sentence;
    shown.hidden = !sentence;
    if (!input) return;
    if (sentence) {
      input.setAttribute("aria-invalid", "true");
      input.setAttribute("aria-describedby", shown.id);
    } else {
      input.removeAttribute("aria-invalid");
      input.removeAttribute("aria-describedby");
    }
  };
  // The summary lists every error shown at a field, in the page's order, and the problems
  // of the whole form the server gave; each step's button counts its own.
  const refresh = () => {
    const list = summary.querySelector("ul");
    const general = Array.from(list.querySelectorAll("li .general")).map((span) => span.closest("li"));
    const items = [...general];
    const counts = {};
    form.querySelectorAll(".field-error").forEach((shown) => {
      const text = shown.textContent.trim();
      if (shown.hidden || !text) return;
      const step = shown.closest("fieldset.step")?.dataset.step || "";
      counts[step] = (counts[step] || 0) + 1;
      const link = document.createElement("a");
      link.href = `#${fieldId(shown.dataset.for)}`;
      link.dataset.step = step;
      link.textContent = summaryLine(shown.dataset.label, text);
      const item = document.createElement("li");
      item.append(link);
      items.push(item);
    });
    list.replaceChildren(...items);
    const n = items.length;
    summary.querySelector("h2").textContent = n === 1 ? "There is 1 problem" : `There are ${n} problems`;
    // Nothing was sent yet: the page's own checks found these.
    summary.querySelector("p").textContent = "Each problem is also shown at its field:";
    summary.hidden = n === 0;
    form.querySelectorAll("[data-step-errors]").forEach((mark) => {
      const count = counts[mark.dataset.stepErrors] || 0;
      mark.textContent = count === 1 ? "1 problem" : `${count} problems`;
      mark.hidden = count === 0;
    });
  };
  summary.addEventListener("click", (event) => {
    const link = event.target.closest("a[href^='#']");
    const target = link && document.getElementById(link.getAttribute("href").slice(1));
    if (!target) return;
    event.preventDefault();
    const step = target.closest("fieldset.step");
    if (step) goto(step.dataset.step);
    target.focus();
    target.scrollIntoView({ block: "center" });
  });
  return {
    check(step) {
      if (!checks[step]) return true;
      const [names, found] = checks[step]();
      names.forEach((name) => show(name, ""));
      found.forEach(([name, sentence]) => show(name, sentence));
      refresh();
      if (found.length) summary.focus();
      return found.length === 0;
    },
    focusSummary() {
      if (!summary.hidden) summary.focus();
    },
  };
}
