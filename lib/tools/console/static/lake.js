// Shared by the console's pages: calls to the console's API with its header, and following a
// run the console started until it ends, then saying its outcome in plain words.
"use strict";
window.lake = (function () {
  const script = document.querySelector("script[data-csrf-header]");
  const csrf = script ? script.dataset.csrfHeader : "X-Lake-Console";

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // {ok, status, body} for a request; a network failure or an answer that is not JSON
  // becomes {ok: false, body: {error, message}} in words a person can act on.
  async function api(method, url, body) {
    const headers = {};
    headers[csrf] = "1";
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let answer;
    try {
      answer = await fetch(url, {method, headers, body: body === undefined ? undefined : JSON.stringify(body)});
    } catch (e) {
      return {ok: false, status: 0, body: {error: "network", message: "the console could not be reached; check that lake serve is still running, then try again"}};
    }
    let parsed;
    try { parsed = await answer.json(); } catch (e) {
      parsed = {error: "http." + answer.status, message: "the console answered HTTP " + answer.status + " without an explanation; try again"};
    }
    return {ok: answer.ok, status: answer.status, body: parsed};
  }

  function plural(n, word) { return n + " " + word + (n === 1 ? "" : "s"); }

  function number(n) { return (n === null || n === undefined) ? "-" : Number(n).toLocaleString("en"); }

  function size(n) {
    if (n < 1024) return plural(n, "byte");
    const units = ["KiB", "MiB", "GiB"];
    let v = n / 1024, i = 0;
    while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return v.toFixed(1) + " " + units[i];
  }

  // The outcome of a finished run as one sentence and a link to its report.
  function outcome(target, o, job) {
    target.textContent = "";
    if (!o) { target.textContent = "the run of " + job + " ended"; return; }
    const t = o.totals || {};
    let text;
    if (o.run_id) {
      text = "Run of " + job + " " + o.status + (o.duration ? " in " + o.duration : "") + ": " +
        plural(t.uploads_processed || 0, "upload") + " processed" +
        (t.uploads_failed ? ", " + t.uploads_failed + " failed" : "") + "; " +
        number(t.rows_read) + " rows read, " + number(t.clean) + " clean, " +
        number(t.quarantined) + " quarantined. ";
    } else {
      text = "Run of " + job + ": " + (o.error || o.status) + ". ";
    }
    target.append(text);
    target.dataset.outcome = o.status || "";
    if (o.report_url) {
      const a = el("a", "run-report", "Its data-quality report");
      a.href = o.report_url;
      target.append(a);
    }
  }

  // Poll the dataset's current run every second until it ends; then say its outcome.
  function followRun(dataset, target, done) {
    const url = "/datasets/" + encodeURIComponent(dataset) + "/runs/current";
    let failures = 0;
    async function tick() {
      const answer = await api("GET", url);
      if (!answer.ok) {
        if (++failures > 5) {
          target.textContent = "Lost track of the run: " + answer.body.message + ". The Uploads page shows what became of each upload.";
          if (done) done(null);
          return;
        }
      } else if (!answer.body.running) {
        outcome(target, answer.body.outcome, answer.body.job);
        if (done) done(answer.body.outcome);
        return;
      }
      setTimeout(tick, 1000);
    }
    setTimeout(tick, 500);
  }

  return {api, el, size, number, plural, followRun};
})();
