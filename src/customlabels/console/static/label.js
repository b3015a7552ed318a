// The labelling page: Annotorious (vendored) draws, moves, resizes and deletes boxes; this file
// wires it to the page (label choice, keyboard, zoom) and saves every change at once.
// Annotorious reports an edited box when it is deselected (click elsewhere, Escape, n/p or
// leaving the page): that is when it is saved.
// Saves carry the revision the page started from: a stale one (another tab saved) is refused by
// the server and shown, never overwritten.
"use strict";

function startLabeller() {
  const root = document.getElementById("labeller");
  if (!root || !window.Annotorious) return;
  const ds = root.dataset;
  const colours = JSON.parse(ds.colours);
  const size = JSON.parse(ds.size);
  const detection = ds.detection === "yes";
  const stateEl = document.getElementById("save-state");
  const messages = document.getElementById("messages");
  const img = document.getElementById("label-image");
  const extra = ["#e6194b", "#3cb44b", "#f58231", "#911eb4", "#46f0f0", "#f032e6", "#bcf60c"];
  let revision = ds.revision;
  let saving = Promise.resolve();
  let zoom = 1;
  let nextId = 0;

  const colourOf = (name) => colours[name] || extra[Object.keys(colours).length % extra.length];
  const labelOf = (a) => ((a.bodies || []).find((b) => b.purpose === "tagging") || {}).value || "";
  const current = () => (document.querySelector("input[name=current-label]:checked") || {}).value || "";

  function toAnnotation(box) {
    const id = `box-${nextId++}`;
    return {
      id,
      bodies: [{ id: `${id}-label`, annotation: id, purpose: "tagging", value: box.label }],
      target: {
        annotation: id,
        selector: {
          type: "RECTANGLE",
          geometry: {
            x: box.left, y: box.top, w: box.width, h: box.height,
            bounds: { minX: box.left, minY: box.top, maxX: box.left + box.width, maxY: box.top + box.height },
          },
        },
      },
    };
  }

  const anno = window.Annotorious.createImageAnnotator(img, {
    drawingEnabled: true,
    drawingMode: "drag",
  });

  function say(text) { stateEl.textContent = text; }

  function boxes() {
    return anno.getAnnotations().map((a) => {
      const g = a.target.selector.geometry;
      return { label: labelOf(a), left: g.x, top: g.y, width: g.w, height: g.h };
    });
  }

  function imageLabels() {
    return Array.from(document.querySelectorAll("input[name=image-label]:checked")).map((i) => i.value);
  }

  // Detection datasets save boxes; image-level labels are saved once the person touches them
  // (or always in a dataset without boxes: classification).
  let imageLabelsTouched = !detection;
  let hasBoxes = JSON.parse(ds.boxes).length > 0;  // once true, deleting the last box is saved
  function save() {
    const body = { revision: null };
    const drawn = boxes();
    hasBoxes = hasBoxes || drawn.length > 0;
    if (hasBoxes) {
      body.boxes = drawn;
      body.size_wh = size[0] ? size : [img.naturalWidth, img.naturalHeight];
    }
    if (imageLabelsTouched) body.image_labels = imageLabels();
    say("Saving…");
    saving = saving.then(async () => {
      body.revision = revision;
      const r = await fetch(ds.saveUrl, {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": ds.csrf, "HX-Request": "true" },
        body: JSON.stringify(body),
        keepalive: true,  // a save started while the page unloads still reaches the server
      });
      if (r.ok) {
        const result = await r.json();
        revision = result.Revision;
        say(body.boxes ? `Saved: ${result.Boxes} box(es).` : `Saved: ${body.image_labels.join(", ") || "no label"}.`);
      } else {
        messages.innerHTML = await r.text();  // the server's escaped error fragment
        say("Not saved: see the message above.");
      }
    });
  }

  // Label colours: Annotorious' own `style` option writes style attributes, which the CSP
  // refuses; setting the properties through CSSOM is allowed, so paint each shape here.
  function paint() {
    const byId = new Map(anno.getAnnotations().map((a) => [a.id, colourOf(labelOf(a))]));
    root.querySelectorAll("g.a9s-annotation[data-id]").forEach((g) => {
      const colour = byId.get(g.dataset.id);
      g.querySelectorAll(".a9s-inner").forEach((shape) => {
        if (colour && shape.style.stroke !== colour) shape.style.stroke = colour;
      });
    });
  }
  new MutationObserver(paint).observe(root, { childList: true, subtree: true });

  anno.setAnnotations(JSON.parse(ds.boxes).map(toAnnotation), true);

  anno.on("createAnnotation", (a) => {
    const label = current();
    if (!label) {
      anno.removeAnnotation(a.id);
      say("Add a label first, then draw.");
      return;
    }
    a.bodies = [{ id: `${a.id}-label`, annotation: a.id, purpose: "tagging", value: label }];
    anno.updateAnnotation(a);
    paint();
    save();
  });
  anno.on("updateAnnotation", () => save());
  anno.on("deleteAnnotation", () => save());

  function relabelSelected(label) {
    const selected = anno.getSelected();
    selected.forEach((a) => {
      a.bodies = [{ id: `${a.id}-label`, annotation: a.id, purpose: "tagging", value: label }];
      anno.updateAnnotation(a);
    });
    paint();
    if (selected.length) save();
  }

  function deleteSelected() {
    const selected = anno.getSelected();
    selected.forEach((a) => anno.removeAnnotation(a.id));
    if (selected.length) save();
  }

  function setZoom(z) {
    zoom = Math.min(8, Math.max(1, z));
    img.style.width = `${zoom * 100}%`;  // CSSOM, allowed by the CSP (no inline style attribute)
    img.style.maxWidth = "none";
    document.getElementById("zoom-level").textContent = `${Math.round(zoom * 100)}%`;
  }

  function addLabel() {
    const input = document.getElementById("new-label");
    const name = input.value.trim();
    if (!name) return;
    const group = document.getElementById("label-choices");
    const exists = Array.from(group.querySelectorAll("input")).find((i) => i.value === name);
    if (!exists) {
      const label = document.createElement("label");
      label.className = "choice";
      const radio = document.createElement("input");
      radio.type = "radio"; radio.name = "current-label"; radio.value = name;
      label.append(radio, document.createTextNode(` ${name}`));  // text node: never parsed as HTML
      group.append(label);
      colours[name] = colourOf(name);
      radio.checked = true;
      const box = document.createElement("label");
      box.className = "choice";
      const check = document.createElement("input");
      check.type = "checkbox"; check.name = "image-label"; check.value = name;
      box.append(check, document.createTextNode(` ${name}`));
      document.getElementById("image-label-choices").append(box);
    } else {
      exists.checked = true;
    }
    input.value = "";
    say(`Label “${name}” ready: draw a box with it.`);
  }

  document.getElementById("add-label").addEventListener("click", addLabel);
  document.getElementById("new-label").addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); addLabel(); } });
  document.getElementById("zoom-in").addEventListener("click", () => setZoom(zoom * 1.5));
  document.getElementById("zoom-out").addEventListener("click", () => setZoom(zoom / 1.5));
  document.getElementById("delete-box").addEventListener("click", deleteSelected);
  document.getElementById("image-labels").addEventListener("change", () => { imageLabelsTouched = true; save(); });
  document.getElementById("label-choices").addEventListener("change", (e) => relabelSelected(e.target.value));

  document.addEventListener("keydown", (e) => {
    if (e.target instanceof HTMLInputElement && e.target.type !== "radio") return;
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (/^[1-9]$/.test(e.key)) {
      const radios = document.querySelectorAll("input[name=current-label]");
      const radio = radios[Number(e.key) - 1];
      if (radio) { radio.checked = true; relabelSelected(radio.value); }
    } else if (e.key === "Escape") {
      anno.cancelSelected();  // ends the edit: Annotorious then reports it and it is saved
    } else if (e.key === "Delete" || e.key === "Backspace") {
      e.preventDefault(); deleteSelected();
    } else if (e.key === "+" || e.key === "=") {
      setZoom(zoom * 1.5);
    } else if (e.key === "-") {
      setZoom(zoom / 1.5);
    } else if (e.key === "n" && ds.next) {
      leave(ds.next);
    } else if (e.key === "p" && ds.prev) {
      leave(ds.prev);
    }
  });
  // Annotorious reports a moved/resized box when it is deselected: deselect before leaving so
  // the edit is saved, then go once every save has answered.
  function leave(url) {
    anno.cancelSelected();
    setTimeout(() => saving.then(() => { window.location.href = url; }), 0);
  }
  window.addEventListener("beforeunload", () => anno.cancelSelected());
}

// Annotorious scales its drawing layer by the image's natural size: start once the image has
// loaded (before that its size is 0, and every box and handle would be drawn at Infinity).
(function () {
  const img = document.getElementById("label-image");
  if (!img) return;
  const failed = () => {
    document.getElementById("save-state").textContent = "The image did not load: nothing can be labelled.";
  };
  if (img.complete) {
    if (img.naturalWidth) startLabeller(); else failed();
  } else {
    img.addEventListener("load", startLabeller, { once: true });
    img.addEventListener("error", failed, { once: true });
  }
})();
