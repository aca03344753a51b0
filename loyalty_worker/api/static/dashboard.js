// Live progress and ticking a page's rows only: the pages work without it (reload to see a run
// or a Sync Now move on). It polls the page's own JSON route (same session cookie) and updates
// the numbers in place; a Sync Now that ends puts the customer's fresh panel in place
// (?fragment=panel).
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
  // The customer's panel: the fresh one (#panel of a page's HTML) in place of the one shown.
  function swapPanel(html) {
    var panel = document.getElementById("panel");
    var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("panel");
    if (!panel || !fresh) { return false; }
    panel.replaceWith(document.importNode(fresh, true));
    watchSync();
    return true;
  }
  // A Sync Now going: poll its task; once it ends, fetch the panel (?fragment=panel: its
  // numbers, order list and the sync's result) and put it in place. No reload.
  function watchSync() {
    var sync = document.getElementById("sync-result");
    if (!sync || sync.dataset.done === "true" || sync.dataset.watched === "true") { return; }
    sync.dataset.watched = "true";
    poll(sync.dataset.url, 500, function (data) {
      if (!data.done) { return true; }
      text("sync-state", data.state === "SUCCESS" ? "done" : "failed");
      sync.dataset.done = "true";
      fetch(sync.dataset.panel, { credentials: "same-origin", headers: { Accept: "text/html" } })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) { if (html) { swapPanel(html); } });
      return false;
    });
  }
  // Sync Now posted from the page: the answer (the page with the task's state) gives the
  // panel, and the address names the task, as the form's redirect would have. A refused post
  // is made again the ordinary way, to show the refusal.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form || form.id !== "sync-form" || !window.fetch || !window.URLSearchParams) { return; }
    event.preventDefault();
    var button = document.getElementById("sync-now");
    if (button) { button.disabled = true; }
    fetch(form.action, {
      method: "POST",
      credentials: "same-origin",
      headers: { Accept: "text/html" },
      body: new URLSearchParams(new FormData(form))
    }).then(function (r) {
      if (!r.ok || !r.redirected) { throw new Error("refused"); }
      return r.text().then(function (html) {
        window.history.replaceState(null, "", r.url);
        if (!swapPanel(html)) { window.location.assign(r.url); }
      });
    }).catch(function () { form.submit(); });
  });
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
    watchSync();
  });
})();
