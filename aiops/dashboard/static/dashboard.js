/* AIOps dashboard. Plain ES2017, no build step, no third-party code but the vendored uPlot.
 *
 * Every value that comes from telemetry (paths, error messages, titles, descriptions) is untrusted:
 * it only ever reaches the DOM as text (textContent / createTextNode / SVG <text>), never as HTML.
 */
(function () {
  "use strict";

  // The page lives at <prefix>/aiops/dashboard/; every API is relative to <prefix>.
  var PREFIX = location.pathname.replace(/\/aiops\/dashboard\/?(index\.html)?$/, "");
  var KEY_STORE = "aiops.apiKey";
  var RANGE_STORE = "aiops.range_s";

  var state = {
    config: null,
    rangeS: 900,
    paused: false,
    timer: null,
    inflight: false,
    charts: {},          // route name -> {plot, el}
    features: {},        // feature -> false when its endpoint answered 404
    seenIncidents: {},
    metrics: {},
    docsOpen: {}         // incident id + doc -> true when the reader opened it
  };

  // ------------------------------------------------------------------ DOM helpers (text only)

  function $(id) { return document.getElementById(id); }

  /** el("div", {class: "x", "data-a": 1}, child, "text", ...): strings become text nodes. */
  function el(tag, attrs) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        var v = attrs[k];
        if (v === null || v === undefined || v === false) return;
        if (k === "text") node.textContent = String(v);
        else if (k === "onclick") node.addEventListener("click", v);
        else node.setAttribute(k, v === true ? "" : String(v));
      });
    }
    for (var i = 2; i < arguments.length; i++) append(node, arguments[i]);
    return node;
  }

  function append(node, child) {
    if (child === null || child === undefined || child === false) return;
    if (Array.isArray(child)) { child.forEach(function (c) { append(node, c); }); return; }
    node.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }

  function replace(node, children) {
    while (node.firstChild) node.removeChild(node.firstChild);
    append(node, children);
  }

  function svg(tag, attrs) {
    var node = document.createElementNS("http://www.w3.org/2000/svg", tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") node.textContent = String(attrs[k]);
      else node.setAttribute(k, String(attrs[k]));
    });
    return node;
  }

  function note(text) { return el("p", {class: "note", text: text}); }
  function unavailable(what) { return note(what + " not available in this deployment."); }

  function fmtMs(v) {
    if (v === null || v === undefined) return "–";
    return v >= 1000 ? (v / 1000).toFixed(2) + " s" : (v >= 100 ? v.toFixed(0) : v.toFixed(1)) + " ms";
  }
  function fmtPct(v) {
    if (v === null || v === undefined) return "–";
    var p = v * 100, a = Math.abs(p);
    return (p === 0 ? "0" : a < 0.1 ? p.toFixed(2) : a < 10 ? p.toFixed(1) : p.toFixed(0)) + "%";
  }
  function fmtNum(v, digits) {
    if (v === null || v === undefined || isNaN(v)) return "–";
    return Number(v).toFixed(digits === undefined ? 2 : digits);
  }
  /** A burn rate: 2 decimals below 10, 1 below 100, none above. */
  function fmtBurn(v) {
    if (typeof v !== "number") return "–";
    return v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0);
  }
  /** Budget left (a ratio of the window's budget): an overspent budget reads "exhausted", its figure in the title. */
  function fmtBudget(v) {
    if (typeof v !== "number") return "–";
    if (v >= 0) return fmtPct(v);
    return el("span", {class: "error nowrap", title: "budget left " + fmtPct(v) + " (overspent)", text: "exhausted"});
  }
  function fmtTime(iso) {
    if (!iso) return "";
    var d = new Date(iso);
    return isNaN(d) ? String(iso) : d.toLocaleTimeString();
  }
  function fmtAge(iso) {
    var d = new Date(iso);
    if (!iso || isNaN(d)) return "";
    var s = Math.max(0, (Date.now() - d.getTime()) / 1000);
    return s < 90 ? Math.round(s) + " s ago" : s < 5400 ? Math.round(s / 60) + " min ago" : Math.round(s / 3600) + " h ago";
  }

  // ------------------------------------------------------------------ HTTP

  function apiKey() { try { return sessionStorage.getItem(KEY_STORE) || ""; } catch (e) { return ""; } }
  function setApiKey(k) { try { if (k) sessionStorage.setItem(KEY_STORE, k); else sessionStorage.removeItem(KEY_STORE); } catch (e) { /* private mode */ } }

  /** -> {ok, status, data, absent}: absent is true when the endpoint does not exist (404 from the router). */
  function api(method, path, body) {
    var headers = {"Accept": "application/json"};
    var opts = {method: method, headers: headers, credentials: "same-origin", cache: "no-store"};
    // The key goes with every call once entered: the simulator guards its reads too (they say what is
    // being injected). Same origin only (connect-src 'self').
    var key = apiKey();
    if (key) headers["X-API-Key"] = key;
    if (method !== "GET") {
      headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body || {});
    }
    return fetch(PREFIX + path, opts).then(function (res) {
      return res.text().then(function (text) {
        var data = null;
        try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
        // "absent": the route does not exist here (the /aiops catch-all, or Flask's HTML 404), as opposed
        // to an existing endpoint saying that one object (an incident, a scenario) is not found.
        var absent = res.status === 404 && (!data || typeof data.error !== "string" || /^no such endpoint/i.test(data.error));
        var result = {ok: res.ok, status: res.status, data: data, absent: absent};
        // A refused change asks for the key; a refused read (polled every few seconds) only says so in its
        // panel, or the dialog would reopen and wipe what the user is typing.
        if (res.status === 401 && method !== "GET") onUnauthorized(result);
        return result;
      });
    }, function (err) {
      return {ok: false, status: 0, data: {error: "network error", detail: String(err && err.message || err)}, absent: false};
    });
  }

  function errorText(res) {
    var d = res.data || {};
    if (res.status === 0) return "The server did not answer (" + (d.detail || "network error") + ").";
    return (d.error || ("HTTP " + res.status)) + (d.detail ? ": " + d.detail : "");
  }

  // ------------------------------------------------------------------ API key

  function onUnauthorized(res) {
    var d = res.data || {};
    var msg = d.error === "missing API key"
      ? "This change needs the API key (AIOPS_API_KEY). Enter it to continue."
      : "The API key was rejected (" + (d.error || "401") + "). Check AIOPS_API_KEY and enter it again.";
    showBanner(msg);
    openKeyDialog(msg);
  }

  function openKeyDialog(message) {
    $("key-message").textContent = message || "";
    $("key-dialog").hidden = false;
    $("key-input").value = "";
    $("key-input").focus();
  }

  function closeKeyDialog() { $("key-dialog").hidden = true; }

  function updateKeyButton() {
    var btn = $("key-button");
    if (!state.config || !state.config.api_key_required) { btn.hidden = true; return; }
    btn.hidden = false;
    btn.textContent = apiKey() ? "API key ✓" : "Enter API key";
  }

  function setupKeyDialog() {
    $("key-form").addEventListener("submit", function (ev) {
      ev.preventDefault();
      var key = $("key-input").value.trim();
      if (!key) { $("key-message").textContent = "Type the key, or choose Read only."; return; }
      var previous = apiKey();
      setApiKey(key);
      $("key-message").textContent = "Checking…";
      api("POST", "/aiops/dashboard/auth").then(function (res) {
        if (res.ok) {
          closeKeyDialog();
          hideBanner();
          updateKeyButton();
          refreshSoon();  // panels whose reads need the key (the simulator) load now
          return;
        }
        setApiKey(previous);
        updateKeyButton();
        if (res.status !== 401) $("key-message").textContent = errorText(res);
      });
    });
    $("key-cancel").addEventListener("click", function () { closeKeyDialog(); updateKeyButton(); });
    $("key-button").addEventListener("click", function () { openKeyDialog(""); });
  }

  function showBanner(text) { var b = $("banner"); b.textContent = text; b.hidden = false; }
  function hideBanner() { $("banner").hidden = true; }

  // ------------------------------------------------------------------ refresh loop

  function refreshEveryMs() {
    var base = (state.config && state.config.refresh_s) || 5;
    // ranges longer than 15 min change slowly and cost more to read: poll every range / 180 (8 min at 24 h)
    return Math.max(base, state.rangeS > 900 ? state.rangeS / 180 : 0) * 1000;
  }

  function schedule() {
    if (state.timer) clearTimeout(state.timer);
    if (state.paused) return;
    state.timer = setTimeout(function () { refresh().then(schedule); }, refreshEveryMs());
  }

  function refresh() {
    if (state.inflight) return Promise.resolve();
    state.inflight = true;
    var jobs = [loadStatus(), loadHealthAndGraph(), loadIncidents(), loadChaos(), loadSlo(), loadAlerts(),
                loadScenarios()];
    return Promise.all(jobs.map(function (p) {
      return p.catch(function (e) { if (window.console) console.warn("dashboard panel failed", e); });
    })).then(function () {
      state.inflight = false;
      $("updated").textContent = "updated " + new Date().toLocaleTimeString();
      document.body.setAttribute("data-refreshed", String(Date.now()));
    });
  }

  function refreshSoon() { setTimeout(function () { refresh(); }, 50); }

  // ------------------------------------------------------------------ status pill

  function loadStatus() {
    return api("GET", "/aiops/status").then(function (res) {
      var pill = $("overall");
      if (!res.ok) { pill.textContent = "analysis unreachable"; pill.setAttribute("data-state", "bad"); return; }
      var s = res.data;
      var last = s.last_pass;
      pill.textContent = s.scheduler_running ? "analysing every " + s.interval_s + " s" : "analysis on demand";
      if (s.last_error) { pill.textContent = "last pass failed"; pill.title = s.last_error; }
      pill.setAttribute("data-state", s.last_error ? "bad" : "ok");
      if (last && last.at) pill.title = "last pass " + fmtAge(last.at) + ", " + last.spans_in_window + " spans in window";
    });
  }

  // ------------------------------------------------------------------ endpoint health + graph

  function loadHealthAndGraph() {
    var points = Math.min(180, Math.max(30, Math.round(state.rangeS / 10)));
    return Promise.all([
      api("GET", "/aiops/metrics?window_s=" + state.rangeS),
      api("GET", "/aiops/dashboard/series?range_s=" + state.rangeS + "&points=" + points),
      api("GET", "/aiops/dependencies"),
      api("GET", "/aiops/metrics")   // the analysis window (AIOPS_WINDOW_S): how each route is doing now
    ]).then(function (r) {
      var metrics = r[0].ok ? r[0].data.metrics : {};
      var now = r[3].ok ? r[3].data : {metrics: {}, window_s: null};
      state.metrics = metrics;
      renderHealth(metrics, r[1].ok ? r[1].data : null, r[0].ok ? null : errorText(r[0]), now);
      renderGraph(r[2].ok ? r[2].data : null, now.metrics, r[2].ok ? null : errorText(r[2]), now.window_s);
    });
  }

  function healthState(m) {
    if (!m) return "idle";
    var s = m.health && m.health.status;
    return s === "critical" ? "bad" : s === "degraded" ? "warn" : "ok";
  }

  function renderHealth(metrics, series, error, now) {
    var box = $("health-list");
    if (error) { replace(box, el("p", {class: "error", text: "Metrics unavailable: " + error})); return; }
    var names = Object.keys((series && series.routes) || {});
    Object.keys(metrics).forEach(function (n) { if (names.indexOf(n) < 0) names.push(n); });
    names.sort();
    if (!names.length) {
      replace(box, note("No requests recorded yet. Send traffic to the app; routes appear here."));
      Object.keys(state.charts).forEach(dropChart);
      return;
    }
    var keep = {};
    names.forEach(function (name) {
      keep[name] = true;
      var m = metrics[name];
      var s = series && series.routes[name];
      var card = box.querySelector('[data-route="' + cssEscape(name) + '"]');
      if (!card) {
        card = el("div", {class: "route", "data-route": name},
          el("div", {class: "head"}, el("span", {class: "name", title: name, text: name}), el("span", {class: "pill"})),
          el("div", {class: "red"}), el("div", {class: "spark"}), el("div", {class: "muted small base"}));
        box.appendChild(card);
      }
      var pill = card.querySelector(".pill");
      // the pill is the route's state now (the analysis window); the numbers and the chart cover the range
      var current = now.metrics[name];
      pill.textContent = current ? current.health.status + " " + Math.round(current.health.health_score) : "idle";
      pill.setAttribute("data-state", current ? current.health.status : "unknown");
      pill.title = "health over the last " + now.window_s + " s";
      replace(card.querySelector(".red"), [
        el("div", null, el("b", {text: m ? fmtNum(m.requests_per_s, 2) : "0"}), el("span", {text: "req/s"})),
        el("div", null, el("b", {text: m ? fmtPct(m.error_rate) : "–"}), el("span", {text: "errors"})),
        el("div", null, el("b", {text: m ? fmtMs(m.p50_latency_ms) : "–"}), el("span", {text: "p50"})),
        el("div", null, el("b", {text: m ? fmtMs(m.p95_latency_ms) : "–"}), el("span", {text: "p95"}))
      ]);
      var b = s && s.baseline;
      card.querySelector(".base").textContent = b
        ? "baseline " + fmtMs(b.p50_ms) + " (band " + fmtMs(b.band_low_ms) + "–" + fmtMs(b.band_high_ms) + "), errors " +
          fmtPct(b.error_ratio) + (b.ready ? "" : " · still learning (" + b.requests_learned + " requests)")
        : "no baseline yet";
      if (s && series) drawSpark(name, card.querySelector(".spark"), series.t, s);
    });
    Array.prototype.slice.call(box.querySelectorAll(".route")).forEach(function (card) {
      var name = card.getAttribute("data-route");
      if (!keep[name]) { dropChart(name); card.remove(); }
    });
  }

  function cssEscape(s) { return window.CSS && CSS.escape ? CSS.escape(s) : String(s).replace(/["\\]/g, "\\$&"); }

  function dropChart(name) {
    var c = state.charts[name];
    if (c) { c.plot.destroy(); delete state.charts[name]; }
  }

  function drawSpark(name, host, t, s) {
    if (typeof uPlot === "undefined") { replace(host, note("chart library failed to load")); return; }
    var b = s.baseline;
    var n = t.length;
    var low = [], high = [];
    for (var i = 0; i < n; i++) { low.push(b ? b.band_low_ms : null); high.push(b ? b.band_high_ms : null); }
    var data = [t, low, high, s.p50_ms, s.error_ratio];
    var width = Math.max(120, host.clientWidth || 280);
    var existing = state.charts[name];
    if (existing && existing.width === width && existing.host === host) { existing.plot.setData(data); return; }
    dropChart(name);
    replace(host, []);
    var opts = {
      width: width, height: 90, legend: {show: false}, cursor: {show: true, points: {show: false}, drag: {x: false, y: false}},
      select: {show: false},
      scales: {x: {time: true}, ms: {auto: true, range: function (u, min, max) { return [0, Math.max(max || 1, 1) * 1.1]; }},
               ratio: {range: [0, 1]}},
      axes: [
        {show: true, size: 18, font: "10px system-ui", stroke: "#66717e", grid: {show: false}, ticks: {size: 3}},
        {scale: "ms", show: true, size: 40, font: "10px system-ui", stroke: "#66717e", grid: {stroke: "#eef2f6"},
         values: function (u, vals) { return vals.map(function (v) { return v >= 1000 ? (v / 1000) + "s" : v + ""; }); }},
        {scale: "ratio", side: 1, show: false}
      ],
      series: [
        {},
        {label: "band low", scale: "ms", stroke: "rgba(120,130,140,0.5)", width: 1, points: {show: false}},
        {label: "band high", scale: "ms", stroke: "rgba(120,130,140,0.5)", width: 1, points: {show: false}},
        {label: "p50 ms", scale: "ms", stroke: "#2f6fdd", width: 1.5, spanGaps: false, points: {show: false}},
        {label: "errors", scale: "ratio", stroke: "#d64545", width: 1.2, fill: "rgba(214,69,69,0.12)", spanGaps: false,
         points: {show: false}}
      ],
      bands: [{series: [2, 1], fill: "rgba(120,130,140,0.15)"}]
    };
    var plot = new uPlot(opts, data, host);
    state.charts[name] = {plot: plot, width: width, host: host};
  }

  // Dependency graph: a layered SVG, callers left of callees.
  function renderGraph(deps, metrics, error, windowS) {
    var box = $("graph-box");
    if (error) { replace(box, el("p", {class: "error", text: "Dependencies unavailable: " + error})); return; }
    var byKey = {};
    var order = [];
    function add(service, route) {
      var k = service + " " + route;
      if (!byKey[k]) { byKey[k] = {service: service, route: route, key: k, callers: []}; order.push(k); }
      return byKey[k];
    }
    (deps.nodes || []).forEach(function (n) { add(n.service, n.route).baseline = n; });
    (deps.edges || []).forEach(function (e) {
      var callee = add(e.callee.service, e.callee.route);
      add(e.caller.service, e.caller.route);
      callee.callers.push(e.caller.service + " " + e.caller.route);
    });
    Object.keys(metrics).forEach(function (name) { var m = metrics[name]; add(m.service, m.route); });
    if (!order.length) { replace(box, note("No routes seen yet.")); return; }
    var services = {};
    order.forEach(function (k) { services[byKey[k].service] = true; });
    var multi = Object.keys(services).length > 1;
    var memo = {};
    function layer(k, seen) {
      if (memo[k] !== undefined) return memo[k];
      if (seen[k]) return 0;
      seen[k] = true;
      var d = 0;
      byKey[k].callers.forEach(function (c) { d = Math.max(d, layer(c, seen) + 1); });
      delete seen[k];
      memo[k] = d;
      return d;
    }
    var columns = [];
    order.sort().forEach(function (k) { var l = layer(k, {}); (columns[l] = columns[l] || []).push(k); });
    var colW = 170, rowH = 54, nodeW = 140, nodeH = 34, pad = 10;
    var rows = Math.max.apply(null, columns.map(function (c) { return c ? c.length : 0; }));
    var W = pad * 2 + columns.length * colW - (colW - nodeW), H = pad * 2 + rows * rowH - (rowH - nodeH);
    var pos = {};
    columns.forEach(function (col, ci) {
      (col || []).forEach(function (k, ri) {
        var offset = (rows - col.length) * rowH / 2;
        pos[k] = {x: pad + ci * colW, y: pad + offset + ri * rowH};
      });
    });
    var root = svg("svg", {viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": "dependency graph"});
    var defs = svg("defs");
    var marker = svg("marker", {id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto"});
    marker.appendChild(svg("path", {d: "M0,0 L10,5 L0,10 z", fill: "#9aa6b2"}));
    defs.appendChild(marker);
    root.appendChild(defs);
    (deps.edges || []).forEach(function (e) {
      var a = pos[e.caller.service + " " + e.caller.route], b = pos[e.callee.service + " " + e.callee.route];
      if (!a || !b) return;
      var bad = e.error_ratio >= 0.2 ? "#d64545" : e.error_ratio > 0.01 ? "#e0a100" : "#9aa6b2";
      var x1 = a.x + nodeW, y1 = a.y + nodeH / 2, x2 = b.x, y2 = b.y + nodeH / 2;
      if (b.x <= a.x) { x1 = a.x + nodeW / 2; y1 = a.y + nodeH; x2 = b.x + nodeW / 2; y2 = b.y; }
      var mid = (x1 + x2) / 2;
      var path = svg("path", {d: "M" + x1 + "," + y1 + " C" + mid + "," + y1 + " " + mid + "," + y2 + " " + x2 + "," + y2,
                              fill: "none", stroke: bad, "stroke-width": 1.6, "marker-end": "url(#arrow)"});
      path.appendChild(svg("title", {text: e.caller.route + " → " + e.callee.route + ": " + e.calls + " calls, " +
                                           fmtPct(e.error_ratio) + " errors (all time)"}));
      root.appendChild(path);
    });
    order.forEach(function (k) {
      var n = byKey[k], p = pos[k];
      var name = multi ? k : n.route;
      var m = metrics[name] || metrics[k];
      var latencyRatio = m && m.baseline_latency_ms ? m.p50_latency_ms / m.baseline_latency_ms : 1;
      var st = !m ? "idle" : (m.error_rate >= 0.2 || latencyRatio >= 3) ? "bad" :
        (m.error_rate >= 0.02 || latencyRatio >= 1.5) ? "warn" : "ok";
      var fill = {ok: "#e3f4ea", warn: "#fff4d6", bad: "#fde2e2", idle: "#eef1f4"}[st];
      var stroke = {ok: "#2e9e5b", warn: "#e0a100", bad: "#d64545", idle: "#a9b3bd"}[st];
      var g = svg("g", {"data-node": k, "data-state": st});
      g.appendChild(svg("rect", {x: p.x, y: p.y, width: nodeW, height: nodeH, rx: 5, fill: fill, stroke: stroke,
                                 "stroke-width": st === "bad" ? 2.5 : 1.5}));
      var label = name.length > 20 ? name.slice(0, 19) + "…" : name;
      g.appendChild(svg("text", {x: p.x + 6, y: p.y + 14, text: label}));
      g.appendChild(svg("text", {x: p.x + 6, y: p.y + 28, "font-size": 10, fill: "#66717e",
                                 text: m ? fmtPct(m.error_rate) + " err · " + fmtMs(m.p50_latency_ms) : "idle"}));
      g.appendChild(svg("title", {text: name + (m ? ": " + fmtPct(m.error_rate) + " errors, p50 " + fmtMs(m.p50_latency_ms) +
        (m.baseline_latency_ms ? " (baseline " + fmtMs(m.baseline_latency_ms) + ")" : "") + " over the last " + windowS + " s"
        : ": no traffic in the last " + windowS + " s")}));
      root.appendChild(g);
    });
    replace(box, root);
  }

  // ------------------------------------------------------------------ incidents

  var DOCS = [
    {name: "narrative", label: "Narrative", feature: "docs"},
    {name: "postmortem", label: "Postmortem", feature: "docs"},
    {name: "brief", label: "Brief", feature: "docs"},
    {name: "comms", label: "Comms", feature: "docs"},
    {name: "replay", label: "Replay", feature: "replay"}
  ];

  function loadIncidents() {
    return api("GET", "/aiops/incidents?status=all&limit=200").then(function (res) {
      var list = $("incident-list");
      if (!res.ok) { replace(list, el("p", {class: "error", text: "Incidents unavailable: " + errorText(res)})); return; }
      var since = Date.now() - state.rangeS * 1000;
      var all = res.data.active_incidents || [];
      var open = all.filter(function (i) { return i.status !== "resolved"; });
      var resolved = all.filter(function (i) {
        return i.status === "resolved" && i.resolved_at && new Date(i.resolved_at).getTime() >= since;
      });
      $("incident-count").textContent = open.length ? "(" + open.length + " open)" : "";
      $("resolved-count").textContent = "(" + resolved.length + ")";
      renderIncidentList(list, open, "No open incidents. All monitored routes look normal.");
      renderIncidentList($("resolved-list"), resolved, "Nothing resolved in this range.");
    });
  }

  function renderIncidentList(box, incidents, emptyText) {
    if (!incidents.length) { replace(box, note(emptyText)); return; }
    var keep = {};
    incidents.forEach(function (inc, idx) {
      keep[inc.id] = true;
      var card = box.querySelector('[data-incident="' + cssEscape(inc.id) + '"]');
      var fresh = incidentCard(inc);
      if (card) {
        // keep an opened document reader in place
        var reader = card.querySelector(".reader");
        var newReader = fresh.querySelector(".reader");
        if (reader && newReader) fresh.replaceChild(reader, newReader);
        var details = card.querySelector("details"), newDetails = fresh.querySelector("details");
        if (details && newDetails && details.open) newDetails.open = true;  // keep an opened timeline open
        box.replaceChild(fresh, card);
      } else {
        box.appendChild(fresh);
      }
    });
    Array.prototype.slice.call(box.children).forEach(function (c) {
      var id = c.getAttribute("data-incident");
      if (!id || !keep[id]) c.remove();
    });
    // order as given
    incidents.forEach(function (inc) {
      var c = box.querySelector('[data-incident="' + cssEscape(inc.id) + '"]');
      if (c) box.appendChild(c);
    });
  }

  function incidentCard(inc) {
    var rc = inc.root_cause || {};
    var affected = (inc.affected_endpoints || []).filter(function (e) { return e !== rc.endpoint; });
    var chain = el("div", {class: "chain", "aria-label": "affected chain"},
      el("span", {class: "muted small", text: "chain:"}),
      el("span", {class: "node root", title: "root cause", text: rc.endpoint || "?"}));
    affected.forEach(function (a) { append(chain, [el("span", {class: "muted", text: "→"}), el("span", {class: "node", text: a})]); });
    var tl = el("ol", {class: "timeline"});
    (inc.timeline || []).slice(-12).forEach(function (e) {
      tl.appendChild(el("li", null, el("time", {datetime: e.at, text: fmtTime(e.at)}), el("b", {text: e.event}),
                        e.detail ? " " + e.detail : ""));
    });
    var actions = el("div", {class: "row"});
    if (inc.status === "active") {
      actions.appendChild(el("button", {type: "button", class: "secondary", "data-action": "acknowledge",
                                        onclick: function () { transition(inc.id, "acknowledge"); }, text: "Acknowledge"}));
    }
    if (inc.status !== "resolved") {
      actions.appendChild(el("button", {type: "button", "data-action": "resolve",
                                        onclick: function () { transition(inc.id, "resolve"); }, text: "Resolve"}));
    }
    var links = el("div", {class: "links"});
    DOCS.forEach(function (d) {
      if (state.features[d.feature] === false) return;
      var href = PREFIX + "/aiops/incidents/" + encodeURIComponent(inc.id) + "/" + d.name;
      links.appendChild(el("a", {href: href, "data-doc": d.name, onclick: function (ev) {
        ev.preventDefault(); openDoc(inc.id, d, ev.currentTarget.closest(".incident"));
      }, text: d.label}));
    });
    if (state.features.docs === false && state.features.replay === false) {
      links.appendChild(el("span", {class: "note", text: "Narrative, postmortem and replay not available in this deployment."}));
    }
    var traces = ((inc.trace_correlation || {}).sample_traces || []).slice(0, 5);
    var traceLinks = el("div", {class: "links small"});
    if (traces.length) {
      traceLinks.appendChild(el("span", {class: "muted", text: "sample traces:"}));
      traces.forEach(function (t) {
        var tid = typeof t === "string" ? t : t && t.trace_id;
        if (!tid) return;
        traceLinks.appendChild(el("a", {href: PREFIX + "/aiops/traces/" + encodeURIComponent(tid), target: "_blank",
                                   rel: "noopener", "data-trace": tid, text: tid.slice(0, 8)}));
      });
    }
    var samples = [];
    (inc.anomalies || []).forEach(function (a) {
      (a.sample_errors || []).slice(0, 2).forEach(function (s) { if (samples.length < 3) samples.push(s); });
    });
    return el("article", {class: "incident", "data-incident": inc.id, "data-status": inc.status, "data-severity": inc.severity},
      el("div", {class: "head"},
        el("span", {class: "sev", "data-sev": inc.severity, text: inc.severity}),
        el("h3", {text: inc.title}),
        el("span", {class: "meta", text: inc.id + " · " + inc.status + " · since " + fmtTime(inc.first_detected) +
          (inc.resolved_at ? " · resolved " + fmtTime(inc.resolved_at) : "")})),
      el("p", {class: "small"}, el("b", {text: "Root cause: "}), (rc.endpoint || "?") +
        (rc.confidence !== undefined ? " (confidence " + fmtNum(rc.confidence, 2) + ")" : "") +
        (rc.description ? " — " + rc.description : "")),
      chain,
      samples.length ? el("ul", {class: "small"}, samples.map(function (s) {
        return el("li", null, el("code", {text: s.type || "error"}), " " + (s.message || "") + (s.count ? " ×" + s.count : ""));
      })) : null,
      traceLinks,
      el("details", null, el("summary", {class: "small", text: "Timeline (" + (inc.timeline || []).length + ((inc.timeline || []).length === 1 ? " event)" : " events)")}), tl),
      links,
      actions,
      el("div", {class: "reader"}));
  }

  function transition(id, action) {
    api("POST", "/aiops/incidents/" + encodeURIComponent(id) + "/" + action, {note: "from the dashboard"}).then(function (res) {
      if (!res.ok && res.status !== 401) showBanner("Could not " + action + " " + id + ": " + errorText(res));
      else if (res.ok) hideBanner();
      refreshSoon();
    });
  }

  function openDoc(id, doc, card) {
    var reader = card.querySelector(".reader");
    replace(reader, note("Loading " + doc.label.toLowerCase() + "…"));
    var query = doc.name === "replay" ? "?points=0" : "";
    api("GET", "/aiops/incidents/" + encodeURIComponent(id) + "/" + doc.name + query).then(function (res) {
      if (res.absent && res.status === 404) {
        state.features[doc.feature] = false;
        replace(reader, unavailable(doc.label));
        return;
      }
      if (res.status === 422 && res.data && res.data.error) {
        // the request was fine but this incident cannot be processed yet (a replay on a young store): say
        // why, plainly, as a note rather than a failure
        replace(reader, [el("div", {class: "row small muted"}, el("b", {text: doc.label}),
          el("button", {type: "button", class: "secondary", onclick: function () { replace(reader, []); }, text: "Close"})),
          el("p", {class: "small unavailable-doc"}, el("b", {text: res.data.error + ". "}), res.data.detail || "")]);
        return;
      }
      if (!res.ok) { replace(reader, el("p", {class: "error", text: errorText(res)})); return; }
      var d = res.data || {};
      // documents (llm/api.py) answer {text, source, model, ...}; the replay (aiops/replay_api.py) answers
      // {narrative: {markdown}, plots: {timeline}, ...}
      var text = typeof d.text === "string" ? d.text : d.narrative && typeof d.narrative.markdown === "string"
        ? d.narrative.markdown : JSON.stringify(d, null, 2);
      var children = [el("div", {class: "row small muted"}, el("b", {text: doc.label}),
        d.source ? "source: " + d.source + (d.model ? " (" + d.model + ")" : "") : "",
        el("a", {href: PREFIX + "/aiops/incidents/" + encodeURIComponent(id) + "/" + doc.name, target: "_blank",
                 rel: "noopener", text: "raw"}),
        el("button", {type: "button", class: "secondary", onclick: function () { replace(reader, []); }, text: "Close"})),
        el("pre", {class: "doc", text: text})];
      if (doc.name === "replay") {
        children.splice(1, 0, el("img", {class: "replay-img", alt: "resilience replay of " + id,
          src: PREFIX + "/aiops/incidents/" + encodeURIComponent(id) + "/replay.png"}));
      }
      replace(reader, children);
    });
  }

  // ------------------------------------------------------------------ chaos

  function loadChaos() {
    if (state.features.chaos === false) {
      $("chaos-form").hidden = true;
      replace($("chaos-faults"), unavailable("Chaos fault injection"));
      return Promise.resolve();
    }
    return api("GET", "/simulate/status").then(function (res) {
      var form = $("chaos-form"), list = $("chaos-faults");
      if (res.absent || (!res.ok && res.status === 404)) {
        form.hidden = true;
        replace(list, unavailable("Chaos fault injection"));
        return;
      }
      if (!res.ok) { replace(list, el("li", {class: "error", text: "Chaos status unavailable: " + errorText(res)})); return; }
      form.hidden = false;
      var s = res.data;
      var select = $("chaos-endpoint");
      var current = select.value;
      var have = Array.prototype.map.call(select.options, function (o) { return o.value; }).join("\n");
      if (have !== (s.endpoints || []).join("\n")) {
        replace(select, (s.endpoints || []).map(function (e) { return el("option", {value: e, text: e}); }));
        if (current && s.endpoints.indexOf(current) >= 0) select.value = current;
      }
      $("chaos-duration").max = s.max_duration_ms;
      if (!s.faults.length) { replace(list, el("li", {class: "note", "data-empty": "1", text: "No fault in force."})); return; }
      replace(list, s.faults.map(function (f) {
        var what = f.type === "error" ? fmtPct(f.rate) + " errors (HTTP " + f.status + ")"
          : f.type + " " + fmtMs(f.duration_ms);
        return el("li", {"data-fault": f.id, "data-endpoint": f.endpoint},
          el("span", null, el("span", {class: "pill", "data-state": "bad", text: f.type}), " ",
             el("code", {text: f.endpoint}), " " + what + " · applied " + f.applied_count + "×" +
             (f.expires_at ? " · expires " + fmtTime(f.expires_at) : "")),
          el("button", {type: "button", class: "secondary", "data-clear": f.endpoint,
                        onclick: function () { clearFaults(f.endpoint); }, text: "Clear"}));
      }));
    });
  }

  function syncChaosFields() {
    var type = $("chaos-type").value;
    Array.prototype.forEach.call($("chaos-form").querySelectorAll("label[data-for]"), function (l) {
      l.hidden = l.getAttribute("data-for").split(" ").indexOf(type) < 0;
    });
    if (type === "timeout" && $("chaos-duration").value === "500") $("chaos-duration").value = "2000";
  }

  function setupChaos() {
    $("chaos-type").addEventListener("change", syncChaosFields);
    syncChaosFields();
    $("chaos-form").addEventListener("submit", function (ev) {
      ev.preventDefault();
      var type = $("chaos-type").value;
      var body = {endpoint: $("chaos-endpoint").value};
      if (type !== "error") body.duration = Number($("chaos-duration").value);
      if (type === "error") { body.rate = Number($("chaos-rate").value); body.status = Number($("chaos-status").value); }
      if ($("chaos-expires").value) body.expires_in = Number($("chaos-expires").value);
      var msg = $("chaos-message");
      msg.className = "small";
      msg.textContent = "Applying…";
      api("POST", "/simulate/" + type, body).then(function (res) {
        if (res.ok) {
          msg.className = "small ok-text";
          msg.textContent = "Fault applied: " + type + " on " + res.data.fault.endpoint +
            (res.data.replaced ? " (replaced the previous one)" : "") + ". Send traffic to see it.";
        } else {
          msg.className = "small error";
          msg.textContent = res.status === 401 ? "Not applied: the API key is missing or wrong." : "Not applied: " + errorText(res);
        }
        refreshSoon();
      });
    });
    $("chaos-clear-all").addEventListener("click", function () { clearFaults(null); });
  }

  function clearFaults(endpoint) {
    var msg = $("chaos-message");
    api("POST", "/simulate/clear", endpoint ? {endpoint: endpoint} : {}).then(function (res) {
      if (res.ok) {
        msg.className = "small ok-text";
        msg.textContent = res.data.count ? "Cleared " + res.data.count + " fault(s)" + (endpoint ? " on " + endpoint : "") +
          ". Open incidents resolve on their own after healthy traffic (or resolve them above)." : "No fault to clear.";
      } else {
        msg.className = "small error";
        msg.textContent = res.status === 401 ? "Not cleared: the API key is missing or wrong." : "Not cleared: " + errorText(res);
      }
      refreshSoon();
    });
  }

  // ------------------------------------------------------------------ SLOs, alerts, scenarios (optional features)

  function asList(data, keys) {
    if (Array.isArray(data)) return data;
    if (!data) return [];
    for (var i = 0; i < keys.length; i++) if (Array.isArray(data[keys[i]])) return data[keys[i]];
    return [];
  }

  // SLOs (aiops/slo_api.py): GET /aiops/summary (risk per service) and GET /aiops/burn (every SLO's latest
  // burn snapshot). The release gate is checked on demand: each GET /aiops/release/<service> is recorded in
  // the gate's audit trail, so the page never polls it.
  function loadSlo() {
    var body = $("slo-body");
    if (state.features.slo === false) { replace(body, unavailable("SLOs and the release gate")); return Promise.resolve(); }
    return Promise.all([api("GET", "/aiops/summary"), api("GET", "/aiops/burn")]).then(function (r) {
      var summary = r[0], burn = r[1];
      if (summary.absent && burn.absent) { state.features.slo = false; replace(body, unavailable("SLOs and the release gate")); return; }
      if (!burn.ok) { replace(body, el("p", {class: "error", text: "SLOs unavailable: " + errorText(burn)})); return; }
      var services = (summary.ok && summary.data && summary.data.services) || [];
      var snaps = [];
      asList(burn.data, ["services"]).forEach(function (svc) { (svc.slos || []).forEach(function (x) { snaps.push(x); }); });
      var out = [];
      if (summary.ok && summary.data) {
        var s = summary.data;
        out.push(el("p", {class: "row"}, "Overall risk ", el("span", {class: "pill", "data-state": s.overall_risk, text: s.overall_risk || "?"}),
          el("span", {class: "muted small", text: (s.slos_within_budget !== undefined ? s.slos_within_budget + " of " + s.slo_count + " SLOs within budget · " : "") +
            (s.firing_alerts || 0) + " SLO alerts firing"})));
      }
      if (!snaps.length && !services.length) {
        out.push(note("No SLO defined yet (POST /aiops/slo/<service>/targets or AIOPS_SLO_FILE)."));
        replace(body, out);
        return;
      }
      if (snaps.length) {
        var table = el("table", null, el("thead", null, el("tr", null, ["SLO", "burn 5m / 1h / 24h", "budget left"].map(function (h) {
          return el("th", {text: h});
        }))));
        var tb = el("tbody");
        snaps.forEach(function (x) {
          var left = typeof x.error_budget_remaining === "number" ? x.error_budget_remaining : null;
          var barState = left === null ? "" : left < 0.2 ? "bad" : left < 0.5 ? "warn" : "";
          tb.appendChild(el("tr", {"data-slo": x.slo_name || ""},
            el("td", {class: "slo-name"}, el("b", {text: x.slo_name || "?"}), " ",
               el("span", {class: "pill", "data-state": x.risk_level || "", text: x.risk_level || "?"}),
               el("div", {class: "muted small", text: (x.service_name || "") + (x.route ? " " + x.route : "") +
                 (x.indicator ? " · " + x.indicator : "") + (x.target !== undefined ? " " + x.target : "")})),
            el("td", {class: "nowrap", text: fmtBurn(x.burn_rate_5m) + " / " + fmtBurn(x.burn_rate_1h) + " / " + fmtBurn(x.burn_rate_24h)}),
            el("td", {title: left === null ? "" : "error budget remaining over the SLO window: " + fmtPct(left)},
              left === null ? "–" : [el("div", {class: "bar"}, el("i", {"data-state": barState,
              class: "fill-" + Math.round(Math.max(0, Math.min(1, left)) * 20)})),
              fmtBudget(left)])));
        });
        table.appendChild(tb);
        out.push(el("div", {class: "table-wrap"}, table));
      }
      var gates = el("ul", {class: "plain"});
      services.forEach(function (svc) {
        var name = svc.service_name;
        var result = el("div", {class: "small", "data-gate": name});
        var previous = body.querySelector('[data-gate="' + cssEscape(name) + '"]');
        if (previous) replace(result, Array.prototype.slice.call(previous.childNodes));
        gates.appendChild(el("li", null,
          el("div", null, el("b", {text: name}), " ", el("span", {class: "pill", "data-state": svc.risk_level, text: svc.risk_level}),
             el("span", {class: "muted small", text: " burn " + fmtBurn(svc.composite_burn_rate) + " · budget "},
               fmtBudget(svc.error_budget_remaining)), result),
          el("button", {type: "button", class: "secondary", onclick: function () { checkGate(name, result); }, text: "Release gate"})));
      });
      if (services.length) out.push(el("h3", {text: "Release gate"}), gates);
      replace(body, out);
      sizeBars(body);
    });
  }

  function checkGate(service, box) {
    replace(box, note("Checking…"));
    api("GET", "/aiops/release/" + encodeURIComponent(service)).then(function (res) {
      if (!res.ok) { replace(box, el("span", {class: "error", text: errorText(res)})); return; }
      var g = res.data;
      var decision = g.decision || g.gate_decision;
      var pillState = decision === "approved" ? "allow" : decision === "blocked" ? "block" : "warn";
      replace(box, [el("span", {class: "pill", "data-state": pillState, text: decision}),
        g.overridden ? " (overridden)" : "", " at " + fmtTime(g.evaluated_at),
        el("ul", null, (g.blockers || []).map(function (t) { return el("li", {class: "error", text: t}); })
          .concat((g.cautions || []).map(function (t) { return el("li", {text: t}); })))]);
    });
  }

  function sizeBars(root) {
    Array.prototype.forEach.call(root.querySelectorAll(".bar > i"), function (i) {
      var m = /fill-(\d+)/.exec(i.className);
      if (m) i.style.width = (Number(m[1]) * 5) + "%";
    });
  }

  // Alert groups (aiops/alerts_api.py): GET /aiops/alerts/groups?status=open.
  function loadAlerts() {
    var body = $("alerts-body");
    if (state.features.alerts === false) { replace(body, unavailable("Alert groups")); return Promise.resolve(); }
    return api("GET", "/aiops/alerts/groups?status=open").then(function (res) {
      if (res.absent) { state.features.alerts = false; replace(body, unavailable("Alert groups")); return; }
      if (!res.ok) { replace(body, el("p", {class: "error", text: "Alert groups unavailable: " + errorText(res)})); return; }
      var groups = asList(res.data, ["groups"]);
      if (!groups.length) { replace(body, note("No open alert group.")); return; }
      var sevOf = {P1: "critical", P2: "high", P3: "medium", P4: "low"};
      replace(body, el("ul", {class: "plain"}, groups.slice(0, 30).map(function (g) {
        var reasons = (g.decisions || []).slice(-2).map(function (d) { return d.reason; }).filter(Boolean);
        return el("li", {"data-group": g.id},
          el("div", null,
            el("span", {class: "sev", "data-sev": sevOf[g.priority] || "low", text: g.priority || "?"}), " ",
            el("b", {text: (g.services || []).join(", ") || g.id}), " ",
            el("span", {class: "muted small", text: g.category || ""}),
            el("div", {class: "muted small", text: g.alert_count + " alert" + (g.alert_count === 1 ? "" : "s") +
              (g.users_affected ? " · users affected: " + g.users_affected : "") + (g.team ? " · team " + g.team : "") +
              (g.incident_id ? " · incident " + g.incident_id : "") + " · last " + fmtAge(g.last_at)}),
            reasons.length ? el("div", {class: "small", text: reasons.join("; ")}) : null),
          el("span", {class: "pill", "data-state": g.status === "resolved" ? "ok" : "warn", text: g.status}));
      })));
    });
  }

  // Scenarios (simulation/api.py, registered by Chaos; its reads need the API key too): GET /api/v1/simulator/scenarios (a list, read once), POST .../<id>/start in the
  // background mode (answers at once), GET /api/v1/simulator/simulations (polled) and POST .../<sim_id>/stop.
  function loadScenarios() {
    var body = $("scenarios-body");
    if (state.features.scenarios === false) { replace(body, unavailable("The scenario simulator")); return Promise.resolve(); }
    var catalogue = state.scenariosLoaded ? Promise.resolve() :
      api("GET", "/api/v1/simulator/scenarios").then(function (res) {
        if (res.absent) { state.features.scenarios = false; replace(body, unavailable("The scenario simulator")); return; }
        if (res.status === 401) { replace(body, keyNeeded("The scenario simulator", res)); return; }
        if (!res.ok) { replace(body, el("p", {class: "error", text: errorText(res)})); return; }
        var list = asList(res.data, ["scenarios", "items"]);
        state.scenariosLoaded = true;
        if (!list.length) { replace(body, note("No scenario registered.")); return; }
        replace(body, el("ul", {class: "plain"}, list.map(function (s) {
          var id = s.id || s.scenario_id;
          return el("li", {"data-scenario": id},
            el("div", null, el("b", {text: s.name || id}), " ", el("span", {class: "sev", "data-sev": s.severity, text: s.severity || ""}),
              el("div", {class: "muted small", text: (s.service ? s.service + " · " : "") + (s.difficulty || "") +
                (s.duration_seconds ? " · " + s.duration_seconds + " s" : "")}),
              s.description ? el("div", {class: "small", text: s.description}) : null),
            el("button", {type: "button", onclick: function () { startScenario(id); }, text: "Start"}));
        })));
      });
    return catalogue.then(function () {
      if (!state.scenariosLoaded || !hasRule("scenarios", "/api/v1/simulator/simulations")) return;
      return api("GET", "/api/v1/simulator/simulations").then(function (res) {
        var box = $("simulations");
        if (res.status === 401) { replace(box, keyNeeded("Recent simulations", res)); return; }
        if (!res.ok) { replace(box, el("p", {class: "error", text: "Simulations unavailable: " + errorText(res)})); return; }
        var runs = asList(res.data, ["simulations"]).slice(0, 5);
        replace(box, runs.length ? [el("h3", {text: "Recent simulations"}), el("ul", {class: "plain"}, runs.map(function (r) {
          var running = r.status === "running" || r.status === "pending";
          return el("li", {"data-simulation": r.simulation_id},
            el("span", null, el("code", {text: r.simulation_id}), " " + r.scenario_id + " · ",
              el("span", {class: "pill", "data-state": running ? "warn" : r.status === "completed" ? "ok" : "bad", text: r.status}),
              r.incident_id ? " · incident " + r.incident_id : "",
              r.validation && typeof r.validation.score === "number" ? " · score " + fmtNum(r.validation.score, 2) +
                (r.validation.passed ? " (passed)" : " (failed)") : "",
              " · started " + fmtTime(r.started_at)),
            running ? el("button", {type: "button", class: "secondary", onclick: function () { stopSimulation(r.simulation_id); },
                                    text: "Stop"}) : null);
        }))] : []);
      });
    });
  }

  /** A panel whose reads need the API key: says so, with a button to enter it. */
  function keyNeeded(what, res) {
    var wrong = res.data && res.data.error === "invalid API key";
    return el("p", {class: "note"}, what + (wrong ? " rejected the API key. " : " needs the API key (AIOPS_API_KEY), even to read. "),
      el("button", {type: "button", class: "secondary", "data-key": "1", onclick: function () { openKeyDialog(""); },
                    text: "Enter API key"}));
  }

  function hasRule(feature, rule) {
    var rules = state.config && state.config.features && state.config.features[feature];
    return !rules || rules.indexOf(rule) >= 0;
  }

  function startScenario(id) {
    var msg = $("scenario-message");
    msg.className = "small";
    msg.textContent = "Starting " + id + "…";
    api("POST", "/api/v1/simulator/scenarios/" + encodeURIComponent(id) + "/start", {execution_mode: "background"}).then(function (res) {
      if (res.ok) {
        var d = res.data || {};
        msg.className = "small ok-text";
        msg.textContent = "Started " + id + (d.simulation_id ? " as " + d.simulation_id : "") + (d.status ? " (" + d.status + ")" : "") +
          (d.incident_id ? ", incident " + d.incident_id : "") + ".";
      } else {
        msg.className = "small error";
        msg.textContent = res.status === 401 ? "Not started: the API key is missing or wrong." : "Not started: " + errorText(res);
      }
      refreshSoon();
    });
  }

  function stopSimulation(simId) {
    var msg = $("scenario-message");
    api("POST", "/api/v1/simulator/simulations/" + encodeURIComponent(simId) + "/stop").then(function (res) {
      msg.className = res.ok ? "small ok-text" : "small error";
      msg.textContent = res.ok ? "Stopped " + simId + "." :
        res.status === 401 ? "Not stopped: the API key is missing or wrong." : "Not stopped: " + errorText(res);
      refreshSoon();
    });
  }

  // ------------------------------------------------------------------ start

  function setupControls() {
    var range = $("range");
    var saved = null;
    try { saved = localStorage.getItem(RANGE_STORE); } catch (e) { saved = null; }
    if (saved && range.querySelector('option[value="' + cssEscape(saved) + '"]')) range.value = saved;
    state.rangeS = Number(range.value);
    range.addEventListener("change", function () {
      state.rangeS = Number(range.value);
      try { localStorage.setItem(RANGE_STORE, range.value); } catch (e) { /* ignore */ }
      refresh().then(schedule);
    });
    $("pause").addEventListener("click", function () {
      state.paused = !state.paused;
      $("pause").textContent = state.paused ? "Resume" : "Pause";
      $("pause").setAttribute("aria-pressed", String(state.paused));
      if (state.paused) { clearTimeout(state.timer); $("updated").textContent = "paused"; }
      else refresh().then(schedule);
    });
    var resizeTimer = null;
    window.addEventListener("resize", function () {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(function () {
        Object.keys(state.charts).forEach(function (name) {
          var c = state.charts[name];
          var w = Math.max(120, c.host.clientWidth || 280);
          if (w !== c.width) { c.plot.setSize({width: w, height: 90}); c.width = w; }
        });
      }, 150);
    });
  }

  function start() {
    setupControls();
    setupKeyDialog();
    setupChaos();
    api("GET", "/aiops/dashboard/config").then(function (res) {
      state.config = res.ok ? res.data : {refresh_s: 5, api_key_required: false};
      var f = state.config.features || {};
      Object.keys(f).forEach(function (name) { if (!f[name].length) state.features[name] = false; });
      updateKeyButton();
      if (state.config.api_key_required && !apiKey()) openKeyDialog("");
      return refresh();
    }).then(schedule);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
