// The console's own JavaScript (served from the package; no inline script under the CSP).
// - a confidence slider that hides detections below it, on the "try it" result (no request);
// - a threshold slider per label on the evaluation page that recomputes precision, recall and
//   F1 from the stored test predictions (each row carries [confidence, is true positive] pairs
//   and the number of ground-truth objects), moving the dot on the label's PR curve;
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

function fmt(x) { return Number.isFinite(x) ? x.toFixed(3) : "–"; }

function applyThreshold(slider) {
  const row = slider.closest("tr");
  const scores = JSON.parse(row.dataset.scores);
  const gt = Number(row.dataset.gt);
  const t = Number(slider.value) / 100;
  let tp = 0, fp = 0;
  scores.forEach(([confidence, isTp]) => {
    if (confidence >= t - 1e-9) { if (isTp) tp += 1; else fp += 1; }
  });
  const p = tp + fp ? tp / (tp + fp) : NaN;
  const r = gt ? tp / gt : NaN;
  const f1 = p + r > 0 ? (2 * p * r) / (p + r) : (tp + fp + gt ? 0 : NaN);
  row.querySelector(".p").textContent = fmt(p);
  row.querySelector(".r").textContent = fmt(r);
  row.querySelector(".f1").textContent = fmt(f1);
  row.querySelector(".counts").textContent = `${tp} / ${fp} / ${gt - tp}`;
  row.querySelector(".t-value").textContent = slider.value;
  row.querySelector(".t-save").value = String(t);
  // the dot on the label's precision–recall curve (SVG units: 0–100, y down)
  const dot = document.querySelector(`#${row.dataset.curve} circle.at`);
  if (dot && tp + fp && gt) {
    dot.setAttribute("cx", (r * 100).toFixed(2));
    dot.setAttribute("cy", (100 - p * 100).toFixed(2));
  }
}

document.addEventListener("input", (event) => {
  const el = event.target;
  if (el instanceof HTMLInputElement && el.classList.contains("threshold")) applyThreshold(el);
});

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("input.threshold").forEach(applyThreshold);
});
