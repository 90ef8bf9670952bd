// The upload page. Each dropped or chosen file gets a card: its size, a bar that fills while
// its bytes go where POST /uploads says, then a "checking" state while the server checks the
// whole file, then its outcome, followed live (server-sent events) until it is ARCHIVED,
// REJECTED or FAILED. A refused or failed send can be retried, a card removed; the summary
// line counts the drop's files by outcome. "Process now" runs the dataset's job and says how
// the run ended.
"use strict";
(function () {
  const {api, el, size, plural, followRun} = window.lake;
  const csrf = document.querySelector("script[data-csrf-header]").dataset.csrfHeader;
  const cards = document.getElementById("cards");
  const zone = document.getElementById("dropzone");
  const input = document.getElementById("files");
  const choose = document.getElementById("choose");
  const dataset = document.getElementById("dataset");
  const info = document.getElementById("dataset-info");
  const notice = document.getElementById("notice");
  const process = document.getElementById("process");
  const runStatus = document.getElementById("run-status");
  const summary = document.getElementById("summary");
  const FINAL = ["ARCHIVED", "REJECTED", "FAILED"];
  const WORDS = {
    waiting: "waiting", sending: "sending", checking: "checking the whole file…",
    RECEIVED: "received", ACCEPTED: "accepted: waiting for a run (Process now)",
    PROCESSING: "processing", PROCESSED: "processed", ARCHIVED: "loaded",
    REJECTED: "rejected", FAILED: "failed", error: "not sent",
  };
  const BUCKETS = {ARCHIVED: "loaded", PROCESSED: "loaded", ACCEPTED: "accepted",
    PROCESSING: "processing", REJECTED: "rejected", FAILED: "failed", error: "not sent"};
  let running = false;

  function chosen() { return dataset.selectedOptions[0] && dataset.value ? dataset.selectedOptions[0] : null; }

  function say(text) {
    notice.hidden = !text;
    notice.textContent = text || "";
  }

  function updateSummary() {
    const all = cards.querySelectorAll(".card");
    if (!all.length) { summary.textContent = ""; return; }
    let bytes = 0;
    const counts = {};
    for (const c of all) {
      bytes += Number(c.dataset.size || 0);
      const bucket = BUCKETS[c.dataset.status] || "in progress";
      counts[bucket] = (counts[bucket] || 0) + 1;
    }
    const parts = ["loaded", "accepted", "processing", "in progress", "rejected", "failed", "not sent"]
      .filter((k) => counts[k]).map((k) => counts[k] + " " + k);
    summary.textContent = plural(all.length, "file") + " (" + size(bytes) + "): " + parts.join(", ") + ".";
    summary.dataset.files = String(all.length);
  }

  function card(file, ds) {
    const c = el("article", "card");
    c.dataset.file = file.name;
    c.dataset.size = String(file.size);
    c.dataset.dataset = ds;
    const head = el("div", "card-head");
    const name = el("span", "name", file.name);
    const meta = el("span", "meta", size(file.size) + " · " + ds);
    head.append(name, meta);
    const bar = el("div", "bar");
    bar.setAttribute("role", "progressbar");
    bar.setAttribute("aria-label", "upload of " + file.name);
    bar.setAttribute("aria-valuemin", "0");
    bar.setAttribute("aria-valuemax", "100");
    const fill = el("span");
    bar.append(fill);
    const line = el("div", "line");
    const status = el("span", "status");
    const percent = el("span", "percent");
    line.append(status, percent);
    const detail = el("div", "reason");
    const counts = el("div", "counts");
    const buttons = el("div", "buttons");
    c.append(head, bar, line, detail, counts, buttons);
    cards.prepend(c);
    const ui = {c, bar, fill, status, percent, detail, counts, buttons, file, ds};
    state(ui, "waiting");
    progress(ui, 0);
    return ui;
  }

  function progress(ui, fraction) {
    const pct = Math.round(fraction * 100);
    ui.fill.style.width = pct + "%";
    ui.bar.setAttribute("aria-valuenow", String(pct));
    ui.percent.textContent = pct + "% of " + size(ui.file.size);
  }

  function state(ui, s, phase) {
    ui.c.dataset.status = s;
    ui.status.textContent = (WORDS[s] || s) + (phase ? ": " + phase : "");
    ui.status.className = "status status-" + s;
    updateSummary();
  }

  function buttonsFor(ui, status) {
    ui.buttons.textContent = "";
    if (status === "REJECTED" || status === "error") {
      const retry = el("button", "retry", "Retry");
      retry.type = "button";
      retry.setAttribute("aria-label", "retry " + ui.file.name);
      retry.addEventListener("click", () => { ui.c.remove(); send(ui.file, chosen() ? dataset.value : ui.ds); });
      ui.buttons.append(retry);
    }
    if (FINAL.includes(status) || status === "error" || status === "ACCEPTED") {
      const remove = el("button", "remove secondary", "Remove from list");
      remove.type = "button";
      remove.setAttribute("aria-label", "remove " + ui.file.name + " from the list");
      remove.addEventListener("click", () => { ui.c.remove(); updateSummary(); choose.focus(); });
      ui.buttons.append(remove);
    }
  }

  function show(ui, record) {
    state(ui, record.status, record.status === "PROCESSING" ? record.phase : null);
    if (record.upload_id) {
      ui.c.dataset.upload = record.upload_id;
      if (!ui.c.querySelector("a.name")) {
        const link = el("a", "name", ui.file.name);
        link.href = "/ui/uploads/" + encodeURIComponent(record.upload_id);
        ui.c.querySelector("span.name").replaceWith(link);
      }
    }
    ui.detail.textContent = "";
    const code = record.reason_code || record.error_code;
    if (code) {
      const words = record.explained || {};
      const meaning = words.meaning ? words.meaning.charAt(0).toUpperCase() + words.meaning.slice(1) + "." : "";
      ui.detail.append(el("b", "", meaning), " ",
        words.action ? "What to do: " + words.action + ". " : "",
        el("span", "detail", record.reason || record.error || ""), " ", el("code", "code", code));
    }
    if (record.original_id) {
      const link = el("a", "original", "Open the earlier upload (Reprocess is there)");
      link.href = "/ui/uploads/" + encodeURIComponent(record.original_id);
      ui.detail.append(" ", link);
    }
    if (record.warnings && record.warnings.length) ui.detail.append(el("div", "warning", record.warnings.join("; ")));
    if (record.status === "ARCHIVED" && record.run_id && !ui.c.querySelector("a.report")) {
      const link = el("a", "report", "Data-quality report of its run");
      link.href = "/reports/" + encodeURIComponent(record.dataset) + "/" + encodeURIComponent(record.run_id);
      ui.counts.after(link);
    }
    if (record.rows_read !== null && record.rows_read !== undefined) {
      ui.counts.textContent = "read " + record.rows_read + ", clean " + record.clean +
        ", quarantined " + record.quarantined + ", duplicates " + record.duplicates_removed;
    }
    buttonsFor(ui, record.status);
  }

  function failed(ui, message) {
    state(ui, "error");
    ui.detail.textContent = message;
    buttonsFor(ui, "error");
  }

  function follow(ui, url) {
    const events = new EventSource(url);
    events.addEventListener("status", (e) => {
      const record = JSON.parse(e.data);
      show(ui, record);
      if (FINAL.includes(record.status)) events.close();
    });
    events.onerror = () => {
      if (events.readyState === EventSource.CLOSED) {
        ui.counts.textContent = "Lost the live status; the Uploads page shows what became of this file.";
      }
    };
  }

  async function send(file, ds) {
    const ui = card(file, ds);
    state(ui, "sending");
    const created = await api("POST", "/uploads", {dataset: ds, file_name: file.name, size_bytes: file.size});
    if (!created.ok) {
      if (created.status === 0) { failed(ui, created.body.message); return; }
      show(ui, {status: "REJECTED", upload_id: "", reason_code: created.body.error,
        reason: created.body.message, explained: created.body.explained});
      return;
    }
    const body = created.body;
    ui.c.dataset.upload = body.upload_id;
    const xhr = new XMLHttpRequest();
    xhr.open(body.upload.method, body.upload.url);
    xhr.setRequestHeader(csrf, "1");
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) {
        progress(ui, e.total ? e.loaded / e.total : 1);
        if (e.loaded >= e.total) state(ui, "checking");
      }
    };
    xhr.upload.onload = () => { progress(ui, 1); state(ui, "checking"); };
    xhr.onerror = () => failed(ui, "The connection to the console broke while sending " + file.name + "; check that lake serve is still running, then Retry.");
    xhr.ontimeout = xhr.onerror;
    xhr.onload = () => {
      progress(ui, 1);
      let answer;
      try { answer = JSON.parse(xhr.responseText); } catch (e) {
        failed(ui, "The console answered HTTP " + xhr.status + " without an explanation; Retry.");
        return;
      }
      if (xhr.status >= 400) {
        show(ui, {status: "REJECTED", upload_id: body.upload_id, reason_code: answer.error,
          reason: answer.message, explained: answer.explained});
      } else {
        show(ui, answer);
      }
      if (!FINAL.includes(ui.c.dataset.status)) follow(ui, body.events_url);
    };
    xhr.send(file);
  }

  function take(files) {
    if (!chosen()) {
      say("Choose a dataset first: the files were not sent. Each dataset takes its own format and columns.");
      dataset.focus();
      return;
    }
    say("");
    for (const f of files) send(f, dataset.value);
  }

  async function checkRun() {
    if (!chosen()) return;
    const answer = await api("GET", "/datasets/" + encodeURIComponent(dataset.value) + "/runs/current");
    if (answer.ok && answer.body.running) runFollow(dataset.value, answer.body.job);
  }

  function runFollow(ds, job) {
    running = true;
    process.disabled = true;
    runStatus.textContent = "Run of " + job + " in progress…";
    delete runStatus.dataset.outcome;
    followRun(ds, runStatus, () => { running = false; process.disabled = !chosen(); });
  }

  function pick() {
    const option = chosen();
    for (const o of document.querySelectorAll(".offer")) o.hidden = !option || o.dataset.dataset !== option.value;
    zone.dataset.disabled = option ? "false" : "true";
    process.disabled = !option || running;
    if (option) {
      input.accept = option.dataset.accept;
      info.hidden = true;  // the dataset's offer below says what it takes
      dataset.setAttribute("aria-describedby", "offer-" + option.value);
      say("");
      checkRun();
    } else {
      info.hidden = false;
      dataset.setAttribute("aria-describedby", "dataset-info");
    }
  }

  document.getElementById("upload-form").addEventListener("submit", (e) => e.preventDefault());
  dataset.addEventListener("change", pick);
  choose.addEventListener("click", () => {
    if (!chosen()) { take([]); return; }
    input.click();
  });
  input.addEventListener("change", () => { take(input.files); input.value = ""; });
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => { e.preventDefault(); zone.classList.remove("over"); take(e.dataTransfer.files); });

  process.addEventListener("click", async () => {
    if (!chosen()) return;
    const ds = dataset.value;
    process.disabled = true;
    runStatus.textContent = "Starting a run of " + ds + "…";
    const answer = await api("POST", "/datasets/" + encodeURIComponent(ds) + "/runs");
    if (!answer.ok) {
      runStatus.textContent = answer.body.message;
      runStatus.dataset.outcome = answer.body.error;
      process.disabled = !chosen();
      if (answer.body.error === "run.busy") runFollow(ds, ds);
      return;
    }
    runFollow(ds, answer.body.job);
  });
  pick();
})();
