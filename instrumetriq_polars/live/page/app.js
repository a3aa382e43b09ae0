// The live page: a snapshot (/v1/latest), then the stream after its seq (/v1/stream, EventSource,
// which resumes by itself with Last-Event-ID); firing alerts from /v1/alerts, refreshed on each
// event of /v1/alerts/stream. No library, no network beyond this server.
"use strict";
(function () {
  const FIELDS = "symbol,mid,spread_bps,change_24h_pct,score,sentiment_mean,posts_total,expired_ts";
  const SPARK = 40;                       // mids kept per symbol for its sparkline
  const token = new URLSearchParams(location.search).get("token");
  const state = { lastSeq: null, rows: new Map(), mids: new Map(), received: [], lastAppend: null,
                  hourTimes: [], stream: null, alertStream: null, retry: null };
  window.liveState = state;               // for tests and the curious

  function api(path, params) {
    const q = new URLSearchParams(params || {});
    if (token) q.set("token", token);
    const s = q.toString();
    return path + (s ? "?" + s : "");
  }
  const $ = (id) => document.getElementById(id);
  const fmt = (v, d) => (v === null || v === undefined || Number.isNaN(v)) ? "–" : Number(v).toFixed(d);
  function fmtMid(v) {
    if (v === null || v === undefined) return "–";
    const a = Math.abs(v);
    return a >= 1000 ? v.toFixed(2) : a >= 1 ? v.toFixed(4) : v.toPrecision(4);
  }
  function ago(seconds) {
    if (seconds === null) return "-";
    if (seconds < 90) return Math.round(seconds) + " s ago";
    if (seconds < 5400) return Math.round(seconds / 60) + " min ago";
    return (seconds / 3600).toFixed(1) + " h ago";
  }

  function spark(values) {
    const w = 120, h = 24;
    if (values.length < 2) return `<svg class="spark" width="${w}" height="${h}"></svg>`;
    const lo = Math.min(...values), hi = Math.max(...values), span = hi - lo || 1;
    const pts = values.map((v, i) => `${(i * (w - 2) / (values.length - 1) + 1).toFixed(1)},${(h - 2 - (v - lo) * (h - 4) / span).toFixed(1)}`);
    return `<svg class="spark" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}"><polyline points="${pts.join(" ")}"/></svg>`;
  }

  function render(symbol, fresh) {
    const row = state.rows.get(symbol);
    let tr = document.querySelector(`tr[data-symbol="${CSS.escape(symbol)}"]`);
    if (!tr) {
      tr = document.createElement("tr");
      tr.dataset.symbol = symbol;
      const rows = [...document.querySelectorAll("#latest tbody tr")];
      const after = rows.find((r) => r.dataset.symbol > symbol);
      $("latest").tBodies[0].insertBefore(tr, after || null);
      $("symbol-count").textContent = state.rows.size;
    }
    const chg = row.change_24h_pct;
    tr.innerHTML = `<td>${symbol}</td><td class="n">${fmtMid(row.mid)}</td><td>${spark(state.mids.get(symbol) || [])}</td>` +
      `<td class="n">${fmt(row.spread_bps, 1)}</td><td class="n ${chg > 0 ? "up" : chg < 0 ? "down" : ""}">${fmt(chg, 2)}%</td>` +
      `<td class="n">${fmt(row.score, 1)}</td><td class="n">${fmt(row.sentiment_mean, 2)}</td><td class="n">${row.posts_total ?? "–"}</td>` +
      `<td>${(row.expired_ts || "").replace("T", " ").slice(0, 19)}</td><td class="n">${row.seq}</td>`;
    tr.dataset.seq = row.seq;
    if (fresh) { tr.classList.remove("fresh"); void tr.offsetWidth; tr.classList.add("fresh"); }
  }

  function take(row, fresh) {
    if (state.lastSeq !== null && row.seq <= state.lastSeq) return;   // never twice
    state.lastSeq = row.seq;
    state.received.push(row.seq);
    if (state.received.length > 5000) state.received.splice(0, 1000);
    if (!row.symbol) return;
    const mids = state.mids.get(row.symbol) || [];
    if (row.mid !== null && row.mid !== undefined) mids.push(row.mid);
    if (mids.length > SPARK) mids.shift();
    state.mids.set(row.symbol, mids);
    state.rows.set(row.symbol, row);
    if (fresh) { state.lastAppend = Date.now() / 1000; state.hourTimes.push(state.lastAppend); }
    render(row.symbol, fresh);
    $("seq").textContent = state.lastSeq;
  }

  async function snapshot() {
    const latest = await (await fetch(api("v1/latest", { fields: FIELDS }))).json();
    // recent history for the sparklines, then the snapshot itself
    const from = Math.max(0, latest.seq - 2000);
    const text = await (await fetch(api("v1/entries", { after: from, limit: 2000, fields: "symbol,mid" }))).text();
    for (const line of text.split("\n")) {
      if (!line) continue;
      const r = JSON.parse(line);
      if (r.seq > latest.seq || !r.symbol) continue;
      const mids = state.mids.get(r.symbol) || [];
      if (r.mid !== null) mids.push(r.mid);
      if (mids.length > SPARK) mids.shift();
      state.mids.set(r.symbol, mids);
    }
    for (const row of latest.entries) { state.rows.set(row.symbol, row); render(row.symbol, false); }
    state.lastSeq = latest.seq;
    $("seq").textContent = latest.seq;
    const health = await (await fetch(api("v1/health"))).json();
    if (health.last_entry_age_s !== null) state.lastAppend = Date.now() / 1000 - health.last_entry_age_s;
    state.hourCount = health.entries_last_hour || 0;
  }

  function connect() {
    if (state.stream) state.stream.close();
    clearTimeout(state.retry);
    const es = new EventSource(api("v1/stream", { after: state.lastSeq ?? "", fields: FIELDS }));
    state.stream = es;
    es.addEventListener("open", () => { $("conn").dataset.state = "live"; $("conn").textContent = "live"; });
    es.addEventListener("entry", (e) => take(JSON.parse(e.data), true));
    es.addEventListener("heartbeat", (e) => {
      const d = JSON.parse(e.data);
      if (d.last_entry_age_s !== null) state.lastAppend = Date.now() / 1000 - d.last_entry_age_s;
    });
    es.addEventListener("overflow", () => { es.close(); state.retry = setTimeout(connect, 200); });
    es.addEventListener("error", () => {
      $("conn").dataset.state = "reconnecting"; $("conn").textContent = "reconnecting";
      if (es.readyState === EventSource.CLOSED) state.retry = setTimeout(resync, 2000);  // EventSource gave up (HTTP 4xx/5xx)
    });
  }

  // the stream refused our cursor (a new state folder: 409) or failed: take a fresh snapshot, then stream
  async function resync() {
    try {
      const probe = await fetch(api("v1/stream", { after: state.lastSeq ?? "" }), { method: "GET" });
      if (probe.status === 409 || probe.status === 410) { state.lastSeq = null; await snapshot(); }
      if (probe.body) probe.body.cancel();
    } catch (err) { state.retry = setTimeout(resync, 2000); return; }
    connect();
  }

  async function refreshAlerts() {
    try {
      const body = await (await fetch(api("v1/alerts"))).json();
      const firing = body.alerts.filter((a) => a.status === "firing");
      $("alert-count").textContent = firing.length;
      $("alerts").innerHTML = firing.length ? firing.map((a) =>
        `<li class="${a.severity}" data-rule="${a.rule}"><b>${a.rule}</b> ${a.summary.replace(/</g, "&lt;")}` +
        `<span class="when">since ${(a.fired_at || "").replace("T", " ").slice(0, 19)} · ${a.severity}</span></li>`).join("")
        : '<li class="none">none</li>';
    } catch (err) { /* the next event or tick tries again */ }
  }

  function connectAlerts() {
    const es = new EventSource(api("v1/alerts/stream"));
    state.alertStream = es;
    es.addEventListener("alert", refreshAlerts);
    es.addEventListener("open", refreshAlerts);
  }

  function tick() {
    const now = Date.now() / 1000;
    $("age").textContent = state.lastAppend === null ? "-" : ago(now - state.lastAppend);
    state.hourTimes = state.hourTimes.filter((t) => t > now - 3600);
    $("hour").textContent = (state.hourCount || 0) + state.hourTimes.length;
  }

  async function start() {
    try { await snapshot(); } catch (err) { setTimeout(start, 2000); return; }
    connect();
    connectAlerts();
    refreshAlerts();
    setInterval(tick, 1000);
    setInterval(refreshAlerts, 15000);
    tick();
  }
  start();
})();
