// zerodq dashboard: live updates over server-sent events, actions through
// fetch on the same origin, and the time-zone and theme toggles. No inline
// script: the page's Content-Security-Policy allows this file only.
(function () {
  "use strict";

  var body = document.body;
  var prefix = body.dataset.prefix || "";
  var queue = body.dataset.queue || "";
  var store = {
    get: function (k) { try { return window.localStorage.getItem(k); } catch (e) { return null; } },
    set: function (k, v) { try { window.localStorage.setItem(k, v); } catch (e) { /* private mode */ } }
  };

  // Times: rendered in UTC by the server; shown in the browser's zone when
  // the toggle says so. Times of a cron entry (class "zoned") keep their
  // entry's zone.
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function fmtLocal(d) {
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " +
      pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
  }
  function fmtUTC(d) {
    return d.getUTCFullYear() + "-" + pad(d.getUTCMonth() + 1) + "-" + pad(d.getUTCDate()) + " " +
      pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes()) + ":" + pad(d.getUTCSeconds()) + " UTC";
  }
  function zoneName() {
    try { return Intl.DateTimeFormat().resolvedOptions().timeZone || "local"; } catch (e) { return "local"; }
  }
  function tzMode() { return store.get("zerodq.tz") === "local" ? "local" : "utc"; }
  function showTime(el) {
    var d = new Date(el.getAttribute("datetime"));
    if (isNaN(d.getTime())) { return; }
    el.textContent = tzMode() === "local" ? fmtLocal(d) : fmtUTC(d);
    el.title = d.toISOString();
  }
  function showTimes(root) {
    var els = (root || document).querySelectorAll("time[datetime]:not(.zoned)");
    for (var i = 0; i < els.length; i++) { showTime(els[i]); }
    var name = document.getElementById("tz-name");
    if (name) { name.textContent = tzMode() === "local" ? zoneName() : "UTC"; }
    var btn = document.getElementById("tz-toggle");
    if (btn) { btn.textContent = tzMode() === "local" ? zoneName() : "UTC"; }
  }
  function setupTZ() {
    var btn = document.getElementById("tz-toggle");
    if (btn) {
      btn.addEventListener("click", function () {
        store.set("zerodq.tz", tzMode() === "local" ? "utc" : "local");
        showTimes();
      });
    }
    showTimes();
  }

  // Theme: follows the system unless the toggle pins light or dark.
  var themes = ["auto", "light", "dark"];
  function applyTheme() {
    var t = store.get("zerodq.theme") || "auto";
    if (t === "auto") { document.documentElement.removeAttribute("data-theme"); }
    else { document.documentElement.setAttribute("data-theme", t); }
    var btn = document.getElementById("theme-toggle");
    if (btn) { btn.textContent = t; }
  }
  function setupTheme() {
    var btn = document.getElementById("theme-toggle");
    if (btn) {
      btn.addEventListener("click", function () {
        var t = store.get("zerodq.theme") || "auto";
        store.set("zerodq.theme", themes[(themes.indexOf(t) + 1) % themes.length]);
        applyTheme();
      });
    }
    applyTheme();
  }

  function fmtMs(v) {
    return v >= 1000 ? (v / 1000).toFixed(2) + " s" : v.toFixed(1) + " ms";
  }
  function setText(id, text) {
    var el = document.getElementById(id);
    if (el) { el.textContent = text; }
  }
  function notice(text, bad) {
    var el = document.getElementById("notice");
    if (!el) {
      el = document.createElement("p");
      el.id = "notice";
      var main = document.querySelector("main");
      main.insertBefore(el, main.firstChild);
    }
    el.className = bad ? "notice bad" : "notice";
    el.textContent = text;
  }

  // Live updates.
  function onLateness(ev) {
    var v = JSON.parse(ev.data);
    if (v.queue && queue && v.queue !== queue) { return; }
    var sec = document.getElementById("lateness");
    if (!sec) { return; }
    sec.dataset.count = String(v.count);
    sec.dataset.updated = v.at;
    setText("lat-count", String(v.count));
    setText("lat-min", fmtMs(v.min_ms));
    setText("lat-p50", fmtMs(v.p50_ms));
    setText("lat-p99", fmtMs(v.p99_ms));
    setText("lat-max", fmtMs(v.max_ms));
    var upd = document.getElementById("lat-updated");
    if (upd) {
      upd.textContent = "";
      var t = document.createElement("time");
      t.setAttribute("datetime", v.at);
      upd.appendChild(t);
      showTime(t);
    }
    drawChart(v.buckets || []);
  }

  // drawChart resizes the histogram's bars (laid out by the server) to the
  // new counts.
  function drawChart(buckets) {
    var svg = document.getElementById("lateness-chart");
    if (!svg) { return; }
    var max = 0;
    for (var i = 0; i < buckets.length; i++) { if (buckets[i] > max) { max = buckets[i]; } }
    var top = 10, plot = 220 - 10 - 28;
    var bars = svg.querySelectorAll("rect[data-bucket]");
    for (var j = 0; j < bars.length; j++) {
      var b = Number(bars[j].getAttribute("data-bucket"));
      var c = buckets[b] || 0;
      var h = max > 0 ? plot * c / max : 0;
      bars[j].setAttribute("y", String(top + plot - h));
      bars[j].setAttribute("height", String(h));
      var title = bars[j].querySelector("title");
      if (title) { title.textContent = title.textContent.replace(/: \d+$/, ": " + c); }
    }
  }

  function onOverview(ev) {
    var v = JSON.parse(ev.data);
    if (v.queue && queue && v.queue !== queue) { return; }
    if (body.dataset.page !== "overview") { return; }
    var states = ["ready", "delayed", "reserved", "buried"];
    (v.tubes || []).forEach(function (t) {
      var rows = document.querySelectorAll("#counts tbody tr");
      for (var i = 0; i < rows.length; i++) {
        if (rows[i].dataset.node === t.node && rows[i].dataset.tube === t.tube) {
          states.forEach(function (s) {
            var cell = rows[i].querySelector('td[data-count="' + s + '"]');
            if (cell) { cell.textContent = String(t[s] || 0); }
          });
        }
      }
    });
    var total = document.querySelector("#counts tr[data-total]");
    if (total && v.total) {
      states.forEach(function (s) {
        var cell = total.querySelector('td[data-count="' + s + '"]');
        if (cell) { cell.textContent = String(v.total[s] || 0); }
      });
    }
    setText("ov-consumers", String(v.consumers));
    setText("ov-inflight", String(v.in_flight));
    setText("ov-held", String(v.held));
    setText("ov-dead", String(v.dead_letters));
    var alerts = document.getElementById("alerts");
    if (alerts) {
      alerts.textContent = "";
      (v.alerts || []).forEach(function (a) {
        var p = document.createElement("p");
        p.className = "alert";
        p.dataset.alert = a.name;
        p.textContent = a.text;
        alerts.appendChild(p);
      });
    }
    var rows = document.querySelectorAll("#outcomes tbody tr");
    for (var k = 0; k < rows.length; k++) {
      var name = rows[k].dataset.outcome;
      var tot = rows[k].querySelector('td[data-field="total"]');
      if (tot) { tot.textContent = String((v.outcomes || {})[name] || 0); }
      var rate = rows[k].querySelector('td[data-field="rate"]');
      if (rate && v.rates_known) { rate.textContent = ((v.rates || {})[name] || 0).toFixed(2) + "/s"; }
    }
  }

  function setupEvents() {
    var page = body.dataset.page;
    if ((page !== "overview" && page !== "lateness") || !window.EventSource) { return; }
    var q = queue ? "?q=" + encodeURIComponent(queue) : "";
    var es = new EventSource(prefix + "/api/events" + q);
    es.addEventListener("lateness", onLateness);
    es.addEventListener("overview", onOverview);
  }

  // Actions: POST with fetch on the same origin.
  function post(path, payload) {
    var q = queue ? "?q=" + encodeURIComponent(queue) : "";
    return fetch(prefix + path + q, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-Requested-With": "zerodq" },
      body: JSON.stringify(payload || {})
    }).then(function (res) {
      return res.json().catch(function () { return {}; }).then(function (v) {
        if (!res.ok) { throw new Error(v.error || res.status + " " + res.statusText); }
        return v;
      });
    });
  }

  function watchOp(id) {
    var el = document.getElementById("op");
    if (!el) { return; }
    el.dataset.op = id;
    el.dataset.finished = "false";
    function tick() {
      fetch(prefix + "/api/ops/" + encodeURIComponent(id) + (queue ? "?q=" + encodeURIComponent(queue) : ""), {
        credentials: "same-origin"
      }).then(function (res) { return res.json(); }).then(function (op) {
        if (op.error) { el.textContent = op.error; return; }
        // data-done is the entries worked through: acted on or skipped.
        el.dataset.done = String((op.done || 0) + (op.skipped || 0));
        el.dataset.matched = String(op.matched);
        el.dataset.finished = String(!!op.finished);
        el.textContent = op.verb + " by " + op.by + ": " + op.done + " done, " + (op.skipped || 0) +
          " skipped, of " + op.matched + (op.finished ? "; finished" : "") + (op.err ? "; stopped: " + op.err : "");
        if (!op.finished) { window.setTimeout(tick, 500); }
      }).catch(function (e) { el.textContent = String(e); });
    }
    tick();
  }

  function confirmed(text) {
    return window.confirm ? window.confirm(text) : true;
  }

  function onAction(btn) {
    var act = btn.dataset.action, id = btn.dataset.id;
    var run;
    switch (act) {
      case "revoke":
        if (!confirmed("Revoke job " + id + "?")) { return; }
        run = post("/api/jobs/" + encodeURIComponent(id) + "/revoke").then(function () {
          notice("Revoked " + id + ".");
        });
        break;
      case "retry":
      case "delete":
        // Deleting is the one action that loses jobs: ask first.
        if (act === "delete" && !confirmed("Delete dead letter " + id + "? Its job will never run.")) { return; }
        run = post("/api/dead/" + act, { ids: [id] }).then(function (v) {
          notice((act === "retry" ? "Retrying " : "Deleting ") + id + ".");
          watchOp(v.op_id);
        });
        break;
      case "retry-all":
      case "delete-all":
        var verb = act === "retry-all" ? "retry" : "delete";
        if (verb === "delete" && !confirmed("Delete all " + btn.dataset.count + " matching dead letters?")) { return; }
        run = post("/api/dead/" + verb, { all: true, match: btn.dataset.match || "", since: btn.dataset.since || "" })
          .then(function (v) { watchOp(v.op_id); });
        break;
      case "pause":
      case "resume":
        run = post("/api/" + act).then(function () { notice("Queue " + (act === "pause" ? "paused." : "resumed.")); });
        break;
      default:
        return;
    }
    btn.disabled = true;
    run.catch(function (e) { notice(String(e.message || e), true); })
      .then(function () { btn.disabled = false; });
  }

  function setupActions() {
    document.addEventListener("click", function (ev) {
      var btn = ev.target.closest ? ev.target.closest("button[data-action]") : null;
      if (btn) { ev.preventDefault(); onAction(btn); }
    });
    var op = document.getElementById("op");
    if (op && op.dataset.op && op.dataset.finished !== "true") { watchOp(op.dataset.op); }
  }

  setupTheme();
  setupTZ();
  setupEvents();
  setupActions();
})();
