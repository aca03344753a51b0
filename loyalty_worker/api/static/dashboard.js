// Live progress and ticking a page's rows only: the pages work without it (reload to see a run or a Sync Now move on).
// It polls the page's own JSON route (same session cookie) and updates the numbers in place.
(function () {
  "use strict";
  function poll(url, every, onData) {
    function tick() {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (data) { if (data && onData(data) !== false) { setTimeout(tick, every); } })
        .catch(function () { setTimeout(tick, every * 2); });
    }
    setTimeout(tick, every);
  }
  function text(id, value) {
    var el = document.getElementById(id);
    if (el && value !== undefined && value !== null) { el.textContent = String(value); }
  }
  document.addEventListener("DOMContentLoaded", function () {
    // "Select all on this page" ticks the rows' boxes (the server takes every row either way).
    var all = document.getElementById("select-all");
    if (all) {
      var picks = document.querySelectorAll("input.pick");
      all.addEventListener("change", function () {
        picks.forEach(function (box) { box.checked = all.checked; });
      });
      picks.forEach(function (box) {
        box.addEventListener("change", function () { if (!box.checked) { all.checked = false; } });
      });
    }
    var run = document.getElementById("progress");
    if (run && run.dataset.finished !== "true") {
      poll(run.dataset.url, 700, function (data) {
        text("run-status", data.status);
        text("run-done", data.done);
        text("run-failed", data.failed);
        if (data.listed !== null && data.listed !== undefined) { text("run-listed", data.listed); }
        var bar = document.getElementById("run-bar");
        if (bar) { bar.max = data.listed || 1; bar.value = data.done || 0; }
        if (data.finished) { window.location.replace(window.location.pathname); return false; }
        return true;
      });
    }
    var sync = document.getElementById("sync-result");
    if (sync && sync.dataset.done !== "true") {
      poll(sync.dataset.url, 500, function (data) {
        if (!data.done) { return true; }
        text("sync-state", data.state === "SUCCESS" ? "done" : "failed");
        if (data.state === "SUCCESS") {
          text("sync-detail", data.sync + ": " + data.points + " points, tier " + data.tier + ", " +
            data.loyaltyStatus + (data.reason ? " (" + data.reason + ")" : ""));
          text("points", data.points);
          text("status", data.loyaltyStatus);
        }
        sync.dataset.done = "true";
        return false;
      });
    }
  });
})();
