// An upload's page: "Reprocess" runs the dataset's current job on one upload again, then says
// how the run ended.
"use strict";
(function () {
  const status = document.getElementById("reprocess-status");
  for (const button of document.querySelectorAll("button.reprocess")) {
    button.addEventListener("click", async () => {
      const all = document.querySelectorAll("button.reprocess");
      all.forEach((b) => { b.disabled = true; });
      status.textContent = "Starting a run…";
      const answer = await lake.api("POST", "/uploads/" + encodeURIComponent(button.dataset.upload) + "/reprocess");
      if (!answer.ok) {
        status.textContent = answer.body.message;
        all.forEach((b) => { b.disabled = false; });
        return;
      }
      status.textContent = "Run of " + answer.body.job + " started: reprocessing…";
      lake.followRun(button.dataset.dataset, status, () => {
        all.forEach((b) => { b.disabled = false; });
        const again = lake.el("a", "", " Reload this page");
        again.href = window.location.pathname;
        status.append(" ", again, " to see the upload as it is now.");
      });
    });
  }
})();
