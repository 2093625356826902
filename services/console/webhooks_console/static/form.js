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
  steps.forEach((step, index) => {
    step.querySelectorAll("button.next").forEach((b) => b.addEventListener("click", () => goto(steps[index + 1].dataset.step)));
    step.querySelectorAll("button.back").forEach((b) => b.addEventListener("click", () => goto(steps[index - 1].dataset.step)));
  });
  goto(form.dataset.step || "details");

  const entity = form.querySelector("#entity");
  const rows = () => Array.from(form.querySelectorAll(".trigger-row"));
  const triggersOf = (name) => data.entities[name] || [];

  const fillTriggers = () => {
    rows().forEach((row) => {
      const select = row.querySelector(".trigger-select");
      const chosen = select.value;
      select.replaceChildren(new Option("Choose the trigger event", ""));
      triggersOf(entity.value).forEach((t) => {
        const option = new Option(t.name, t.name, false, t.name === chosen);
        option.dataset.components = t.components.join(",");
        select.add(option);
      });
    });
    showComponents();
  };
  const showComponents = () => {
    rows().forEach((row) => {
      const option = row.querySelector(".trigger-select").selectedOptions[0];
      const components = option && option.dataset.components ? option.dataset.components.split(",") : [];
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
