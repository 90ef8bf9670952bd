// The upload page: each dropped or chosen file gets a card; its bytes go where POST /uploads
// says, with a progress bar; the card then follows the upload's status live (server-sent
// events) until it is ARCHIVED, REJECTED or FAILED.
"use strict";
(function () {
  const csrf = document.currentScript.dataset.csrfHeader;
  const cards = document.getElementById("cards");
  const zone = document.getElementById("dropzone");
  const input = document.getElementById("files");
  const dataset = document.getElementById("dataset");

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function card(file) {
    const c = el("div", "card");
    c.dataset.file = file.name;
    c.append(el("div", "name", file.name));
    const bar = el("progress"); bar.max = file.size || 1; bar.value = 0;
    const status = el("span", "status", "sending");
    const detail = el("div", "reason");
    const counts = el("div", "counts");
    c.append(bar, status, detail, counts);
    cards.prepend(c);
    return {c, bar, status, detail, counts};
  }

  function show(ui, record) {
    ui.status.textContent = record.status;
    ui.status.className = "status status-" + record.status;
    ui.c.dataset.status = record.status;
    ui.c.dataset.upload = record.upload_id;
    if (record.upload_id && !ui.c.querySelector("a.name")) {
      const link = el("a", "name", ui.c.dataset.file);
      link.href = "/ui/uploads/" + encodeURIComponent(record.upload_id);
      ui.c.querySelector("div.name").replaceWith(link);
    }
    const why = record.reason_code ? record.reason_code + ": " + record.reason
      : record.error_code ? record.error_code + ": " + record.error : "";
    ui.detail.textContent = why;
    if (record.status === "ARCHIVED" && record.run_id && !ui.c.querySelector("a.report")) {
      const link = el("a", "report", "data-quality report of run " + record.run_id);
      link.href = "/reports/" + encodeURIComponent(record.dataset) + "/" + encodeURIComponent(record.run_id);
      ui.c.append(link);
    }
    if (record.phase) ui.counts.textContent = "run: " + record.phase;
    if (record.rows_read !== null && record.rows_read !== undefined) {
      ui.counts.textContent = "read " + record.rows_read + ", clean " + record.clean +
        ", quarantined " + record.quarantined + ", duplicates " + record.duplicates_removed;
    }
  }

  function follow(ui, url) {
    const events = new EventSource(url);
    events.addEventListener("status", (e) => {
      const record = JSON.parse(e.data);
      show(ui, record);
      if (["ARCHIVED", "REJECTED", "FAILED"].includes(record.status)) events.close();
    });
  }

  async function send(file) {
    const ui = card(file);
    const headers = {"Content-Type": "application/json"};
    headers[csrf] = "1";
    const created = await fetch("/uploads", {method: "POST", headers, body: JSON.stringify(
      {dataset: dataset.value, file_name: file.name, size_bytes: file.size})});
    const body = await created.json();
    if (!created.ok) {
      show(ui, {status: "REJECTED", upload_id: "", reason_code: body.error, reason: body.message});
      ui.bar.value = 0;
      return;
    }
    show(ui, body);
    const xhr = new XMLHttpRequest();
    xhr.open(body.upload.method, body.upload.url);
    xhr.setRequestHeader(csrf, "1");
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) { ui.bar.max = e.total; ui.bar.value = e.loaded; } };
    xhr.onload = () => {
      ui.bar.value = ui.bar.max;
      const answer = JSON.parse(xhr.responseText);
      if (xhr.status >= 400) {
        show(ui, {status: "REJECTED", upload_id: body.upload_id, reason_code: answer.error, reason: answer.message});
      } else {
        show(ui, answer);
      }
      follow(ui, body.events_url);
    };
    xhr.send(file);
  }

  document.getElementById("upload-form").addEventListener("submit", (e) => e.preventDefault());

  function take(files) { for (const f of files) send(f); }
  input.addEventListener("change", () => { take(input.files); input.value = ""; });
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => { e.preventDefault(); zone.classList.remove("over"); take(e.dataTransfer.files); });

  document.getElementById("process").addEventListener("click", async () => {
    const headers = {}; headers[csrf] = "1";
    const answer = await fetch("/datasets/" + encodeURIComponent(dataset.value) + "/runs", {method: "POST", headers});
    const body = await answer.json();
    document.getElementById("run-status").textContent = answer.ok
      ? "run of " + body.job + " started" : body.error + ": " + body.message;
  });
})();
