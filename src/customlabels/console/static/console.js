// The console's own JavaScript (served from the package; no inline script under the CSP).
// - a confidence slider that hides detections below it, on the "try it" result (no request);
// - nothing else: forms and htmx attributes do the rest.
"use strict";

function applyConfidence(slider) {
  const root = document.querySelector(slider.dataset.filter).closest(".try");
  const min = Number(slider.value);
  let shown = 0, all = 0;
  root.querySelectorAll("[data-confidence]").forEach((el) => {
    const keep = Number(el.dataset.confidence) >= min;
    el.classList.toggle("hidden", !keep);
    if (el.tagName === "LI") { all += 1; shown += keep ? 1 : 0; }
  });
  root.querySelector("#conf-value").textContent = String(min);
  root.querySelector("#try-shown").textContent = `${shown} of ${all} detection(s) at or above ${min}%`;
}

document.addEventListener("input", (event) => {
  const el = event.target;
  if (el instanceof HTMLInputElement && el.type === "range" && el.dataset.filter) {
    applyConfidence(el);
  }
});

document.addEventListener("htmx:afterSettle", () => {
  document.querySelectorAll("input[type=range][data-filter]").forEach(applyConfidence);
});
