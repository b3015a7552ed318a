// Upload images from the computer: drag and drop or choose many files; each file is sent alone
// (XMLHttpRequest for its upload progress) so a refused file is listed with the service's
// error and the others still go through. Reloads the project page when all are done.
"use strict";

(function () {
  const form = document.getElementById("upload-form");
  if (!form) return;
  const input = document.getElementById("up-files");
  const zone = document.getElementById("drop-zone");
  const bar = document.getElementById("up-progress");
  const summary = document.getElementById("up-summary");
  const results = document.getElementById("up-results");

  function sendOne(file, onProgress) {
    return new Promise((resolve) => {
      const data = new FormData();
      data.append("dataset_type", form.elements.dataset_type.value);
      data.append("bucket", form.elements.bucket.value);
      data.append("image", file, file.name);
      const xhr = new XMLHttpRequest();
      xhr.open("POST", form.action);
      xhr.setRequestHeader("X-CSRF-Token", form.dataset.csrf);
      xhr.setRequestHeader("HX-Request", "true");  // errors come back as a short fragment
      xhr.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded / e.total); };
      xhr.onload = () => resolve({ ok: xhr.status === 200 && xhr.responseText.startsWith("{"), text: xhr.responseText });
      xhr.onerror = () => resolve({ ok: false, text: "network error" });
      xhr.send(data);
    });
  }

  function note(file, ok, html) {
    const li = document.createElement("li");
    li.className = ok ? "ok" : "error";
    const name = document.createElement("strong");
    name.textContent = file.name;  // a file name is text, never HTML
    li.append(name, document.createTextNode(ok ? ": uploaded" : ": "));
    if (!ok) {
      const reason = document.createElement("span");
      reason.textContent = new DOMParser().parseFromString(html, "text/html").body.textContent.trim();
      li.append(reason);
    }
    results.append(li);
  }

  async function upload(files) {
    if (!form.reportValidity() || !files.length) return;
    results.replaceChildren();
    bar.hidden = false;
    let done = 0, good = 0;
    for (const file of files) {
      const r = await sendOne(file, (f) => { bar.value = (done + f) / files.length; });
      done += 1;
      bar.value = done / files.length;
      if (r.ok) good += 1;
      note(file, r.ok, r.text);
      summary.textContent = `${done} of ${files.length} sent · ${good} added · ${done - good} refused`;
    }
    if (good && good === files.length) window.location.reload();
  }

  form.addEventListener("submit", (e) => { e.preventDefault(); upload(Array.from(input.files)); });
  ["dragenter", "dragover"].forEach((t) => zone.addEventListener(t, (e) => { e.preventDefault(); zone.classList.add("over"); }));
  ["dragleave", "drop"].forEach((t) => zone.addEventListener(t, () => zone.classList.remove("over")));
  zone.addEventListener("drop", (e) => { e.preventDefault(); upload(Array.from(e.dataTransfer.files)); });
})();
