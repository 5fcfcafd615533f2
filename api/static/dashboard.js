// btcfs dashboard: REST for the state, /v1/stream (Server-Sent Events) to refresh after each
// publish. Everything it loads comes from this server (no CDN).
"use strict";

// The symbol shown: ?symbol= in the address (a link keeps it), else BTCUSDT; the picker lists
// the symbols the published warehouse serves (from /health) and switches without a reload.
let SYMBOL = new URLSearchParams(location.search).get("symbol") || "BTCUSDT";
const q = (s) => encodeURIComponent(s);
const BARS = 144;             // twelve hours of 5m bars: the forecast stays readable
const SIGNAL_BARS = 96;       // recent bars scored for the signal markers
const STEPS = 12;             // forecast steps
// A trade needs the predicted move to clear the round trip: 2 x (5 bps fee + 1 bps slippage).
const COST = 0.0012;

const $ = (id) => document.getElementById(id);
const seconds = (iso) => Math.floor(Date.parse(iso) / 1000);
const pct = (x, digits = 3) => (x === null || x === undefined ? "–" : `${(100 * x).toFixed(digits)} %`);
const num = (x, digits = 2) => (x === null || x === undefined ? "–" : Number(x).toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits }));
// A duration in words: 42 s, 12 min, 3.5 h, 2.0 days.
const age = (s) => (s < 90 ? `${Math.round(s)} s` : s < 5400 ? `${Math.round(s / 60)} min` : s < 172800 ? `${(s / 3600).toFixed(1)} h` : `${(s / 86400).toFixed(1)} days`);
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));

// A model that is not in production is labelled wherever its numbers are shown.
const STAGE_WORDS = { candidate: "CANDIDATE model (not promoted)", rejected: "REJECTED model (failed its gates)" };
const stageNote = (stage) => (stage === "production" ? "" : STAGE_WORDS[stage] || `${String(stage).toUpperCase()} model (not in production)`);
const stageTag = (stage) => (stage === "production" ? "" : ` — ${stageNote(stage)}`);

async function api(path, options) {
  const response = await fetch(path, options);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = new Error(body.detail || `${response.status} on ${path}`);
    error.status = response.status;
    throw error;
  }
  return body;
}

function rows(target, pairs) {
  target.innerHTML = pairs.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`).join("");
}

// ------------------------------------------------------------------------------- chart

const chart = LightweightCharts.createChart($("chart"), {
  autoSize: true,
  layout: { background: { color: "#111c33" }, textColor: "#cbd5e1" },
  grid: { vertLines: { color: "#1e293b" }, horzLines: { color: "#1e293b" } },
  timeScale: { timeVisible: true, secondsVisible: false },
  rightPriceScale: { borderColor: "#1e293b" },
});
const candles = chart.addSeries(LightweightCharts.CandlestickSeries, {
  upColor: "#22c55e", downColor: "#ef4444", wickUpColor: "#22c55e", wickDownColor: "#ef4444", borderVisible: false,
});
// The p10-p90 band: an area down from p90 with a cut-out below p10 in the panel's colour, both
// only over the forecast's own hours (no price lines, which would run over the whole history).
const quiet = { priceLineVisible: false, lastValueVisible: false, crosshairMarkerVisible: false };
const upper = chart.addSeries(LightweightCharts.AreaSeries, { ...quiet, lineColor: "rgba(245,158,11,0.6)", lineWidth: 1, lineStyle: 2, topColor: "rgba(245,158,11,0.18)", bottomColor: "rgba(245,158,11,0.18)" });
const lower = chart.addSeries(LightweightCharts.AreaSeries, { ...quiet, lineColor: "rgba(245,158,11,0.6)", lineWidth: 1, lineStyle: 2, topColor: "#111c33", bottomColor: "#111c33" });
const path = chart.addSeries(LightweightCharts.LineSeries, { color: "#f59e0b", lineWidth: 2, title: "predicted", priceLineVisible: false });
const markers = LightweightCharts.createSeriesMarkers(candles, []);
// What was drawn, for the browser test (and the curious console user).
window.btcfsDashboard = { bars: 0, pathPoints: 0, bandPoints: 0, scored: 0, markers: 0 };

const candleData = (bars) => bars.map((b) => ({ time: seconds(b.open_time), open: b.open, high: b.high, low: b.low, close: b.close }));

function drawBars(bars) {
  drawnBars = bars;
  candles.setData(candleData(bars));
  window.btcfsDashboard.bars = bars.length;
  window.btcfsDashboard.lastClose = bars.length ? bars[bars.length - 1].close : null;
}

const BAR_SECONDS = 300;
let drawnBars = [];

// The forecast on a real time axis: the time scale has one slot per 5m bar, so the future is
// filled with empty 5m slots up to the last step and each step sits at its own hour (a 12 x 1h
// path spans 12 hours, not 12 slots). The band covers the forecast's hours only.
function drawForecast(forecast, lastBar) {
  const start = { time: seconds(forecast.available_at), value: forecast.close };
  const steps = forecast.path.map((p) => ({ time: Math.max(seconds(p.at), start.time + BAR_SECONDS), point: p }));
  const last = steps.length ? steps[steps.length - 1].time : start.time;
  const barTimes = drawnBars.map((b) => seconds(b.open_time));
  const from = barTimes.length ? barTimes[barTimes.length - 1] + BAR_SECONDS : start.time;
  const future = [];
  for (let t = from; t <= last; t += BAR_SECONDS) future.push({ time: t });
  candles.setData([...candleData(drawnBars), ...future]);
  path.setData([start, ...steps.map((s) => ({ time: s.time, value: s.point.price }))]);
  path.applyOptions({ title: forecast.model_stage === "production" ? "predicted" : `predicted (${forecast.model_stage})` });
  const band = steps.filter((s) => s.point.lower_price !== null);
  upper.setData(band.length ? [start, ...band.map((s) => ({ time: s.time, value: s.point.upper_price }))] : []);
  lower.setData(band.length ? [start, ...band.map((s) => ({ time: s.time, value: s.point.lower_price }))] : []);
  Object.assign(window.btcfsDashboard, {
    pathPoints: forecast.path.length + 1, bandPoints: band.length ? band.length + 1 : 0,
    pathTimes: [start.time, ...steps.map((s) => s.time)], futureSlots: future.length,
    forecastHorizon: forecast.horizon, forecastStage: forecast.model_stage,
    bandStart: band.length ? start.time : null,
  });
  const legend = $("chart-legend");
  legend.textContent =
    `${forecast.model} ${forecast.model_version} (${forecast.model_stage}), ${forecast.steps} × ${forecast.horizon} to ${forecast.path.length ? forecast.path[forecast.path.length - 1].at : "–"}; last bar ${lastBar ? lastBar.open_time : "–"}${stageTag(forecast.model_stage)}`;
  legend.className = forecast.model_stage === "production" ? "muted" : "warn";
}
// for the browser test: draw any forecast (e.g. a 12 x 1h path) on the current bars
window.btcfsDrawForecast = (forecast) => drawForecast(forecast, drawnBars[drawnBars.length - 1]);
window.btcfsChart = chart;

// The 1h forecast when a 1h model of the symbol is served (12 x 1h: the next 12 hours), else the
// primary model's horizon.
async function loadForecast() {
  try { return await api(`/v1/forecast?symbol=${q(SYMBOL)}&steps=${STEPS}&horizon=1h`); } catch (error) {
    if (error.status !== 404 && error.status !== 422) throw error;
  }
  return api(`/v1/forecast?symbol=${q(SYMBOL)}&steps=${STEPS}`);
}

// ------------------------------------------------------------------------------- live
// Every LIVE_MS: /v1/live (the state file `btcfs live` writes; the API calls no exchange). The
// open 1m bar's price is shown as such, never as a bar; the badge gives the age of the newest
// published bar on the exchange's clock and turns red when the loop is behind or stopped.

const LIVE_MS = 2000;
const live = { timer: null, line: null, openPositions: 0 };
window.btcfsDashboard.liveTicks = 0;

function showLive(l) {
  const quote = l.quotes.find((x) => x.market === l.price_market);
  const price = $("live-price");
  price.textContent = `${l.symbol} ${num(l.price)} USD`;
  price.title = l.price_label;
  price.dataset.price = String(l.price);
  price.dataset.source = l.price_source;
  const what = l.price_source === "open-bar" ? `open ${quote ? quote.open_time.slice(11, 16) : ""} 1m bar (${l.price_market}, not closed)` : "newest published 5m close (no live price)";
  $("live-source").textContent = `${what}, ${age(l.price_age_seconds)} old${l.is_stale ? " · STALE" : ""}`;
  const badge = $("freshness");
  const behind = l.status === "behind" || (l.loop && l.loop.problem);
  const newest = l.freshness_seconds === null ? "no published bar" : `newest bar ${age(l.freshness_seconds)} old (${l.clock} clock)`;
  badge.textContent = l.status === "no-live-loop" ? `no live loop · ${newest}` : `${behind ? "live: behind" : "live"} · ${newest}`;
  badge.className = `badge ${l.status === "live" ? "ok" : l.status === "behind" ? "bad" : "warn"}`;
  badge.dataset.status = l.status;
  badge.title = [l.loop && l.loop.problem, ...l.warnings].filter(Boolean).join("\n");
  // the open bar's price as a line on the chart (the candles stay the landed bars)
  if (live.line) candles.removePriceLine(live.line);
  live.line = l.price_source === "open-bar" ? candles.createPriceLine({ price: l.price, color: l.is_stale ? "#ef4444" : "#38bdf8", lineWidth: 1, lineStyle: 1, axisLabelVisible: true, title: "open bar" }) : null;
  window.btcfsDashboard.livePrice = l.price;
  window.btcfsDashboard.liveStatus = l.status;
  window.btcfsDashboard.liveTicks += 1;
}

async function tickLive() {
  clearTimeout(live.timer);
  try {
    showLive(await api(`/v1/live?symbol=${q(SYMBOL)}`));
    if (live.openPositions) await loadPaper();  // marked to the new price
    // /health says degraded while the loop is behind: its badge follows every 5th tick
    if (window.btcfsDashboard.liveTicks % 5 === 0) showHealthBadge(await api("/health"));
  } catch (error) {
    const badge = $("freshness");
    badge.textContent = `live: ${error.message}`;
    badge.className = "badge bad";
    badge.dataset.status = "error";
  }
  live.timer = setTimeout(tickLive, LIVE_MS);
}

// ------------------------------------------------------------------------------- panels

async function loadSignals(model) {
  // Score the recent feature rows with the served model (POST /v1/predict), mark the bars
  // whose predicted move clears the round-trip cost.
  const features = await api(`/v1/features?symbol=${q(SYMBOL)}&interval=5m&limit=${SIGNAL_BARS}`);
  if (!features.rows.length) return;
  const instances = features.rows.map((r) => Object.fromEntries(model.features.map((f) => [f, r.values[f]])));
  const scored = await api("/v1/predict", {
    method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ instances, horizon: model.horizon, symbol: SYMBOL }),
  });
  let longs = 0, shorts = 0;
  const marks = [];
  scored.predictions.forEach((p, i) => {
    const time = seconds(features.rows[i].open_time);
    if (p.predicted_return > COST) { longs++; marks.push({ time, position: "belowBar", color: "#22c55e", shape: "arrowUp", text: "L" }); }
    if (p.predicted_return < -COST) { shorts++; marks.push({ time, position: "aboveBar", color: "#ef4444", shape: "arrowDown", text: "S" }); }
  });
  markers.setMarkers(marks);
  window.btcfsDashboard.scored = scored.predictions.length;
  window.btcfsDashboard.markers = marks.length;
  $("signals-summary").textContent =
    `last ${scored.predictions.length} bars: ${longs} long, ${shorts} short (|predicted ${model.horizon} return| > ${pct(COST, 2)} round-trip cost)${stageTag(model.stage)}`;
}

function showPrediction(p) {
  const b = p.barrier_probabilities;
  rows($("prediction"), [
    ["horizon", `${p.horizon} (${p.model} ${p.model_version}, ${p.model_stage})${stageTag(p.model_stage)}`],
    ["as of bar", p.as_of],
    ["close", `${num(p.close)} USD`],
    ["predicted return", pct(p.predicted_return)],
    ["predicted price", `${num(p.predicted_price)} USD`],
    ["p10 / p50 / p90", p.quantiles ? `${pct(p.quantiles.p10)} / ${pct(p.quantiles.p50)} / ${pct(p.quantiles.p90)}` : "–"],
    ["barriers ↓ / – / ↑", b ? `${pct(b.down, 1)} / ${pct(b.flat, 1)} / ${pct(b.up, 1)} (${b.model} ${b.model_version}, ${b.model_stage})${stageTag(b.model_stage)}` : "no barrier model"],
    ["feature age", age(p.feature_age_seconds)],
  ]);
  const side = p.predicted_return > COST ? "long" : p.predicted_return < -COST ? "short" : "flat";
  const now = $("signal-now");
  now.textContent = `${side.toUpperCase()} · ${pct(p.predicted_return)} over ${p.horizon}${stageTag(p.model_stage)}`;
  now.className = `signal ${side}`;
}

function showQA(qa) {
  const pub = qa.published;
  const counts = Object.entries(pub.counts).map(([k, v]) => `${v} ${k}`).join(", ");
  const status = $("qa-status");
  status.textContent = `${pub.failed ? "FAILED" : "PASS"}: ${counts} (published build ${String(pub.invocation_id).slice(0, 8)})`;
  status.className = pub.failed ? "bad" : "ok";
  const problems = pub.gates.filter((g) => g.status !== "pass" && g.status !== "success");
  const items = problems.map((g) => `<li>${esc(g.status)} ${esc(g.name)}${g.failures ? ` (${g.failures})` : ""}</li>`);
  if (qa.last_build && qa.last_build.invocation_id !== pub.invocation_id) {
    items.push(`<li class="${qa.last_build.failed ? "bad" : "warn"}">newest build ${esc(String(qa.last_build.invocation_id).slice(0, 8))}: ${qa.last_build.failed ? "failed its gates, not published" : "not published yet"}</li>`);
  }
  $("qa-problems").innerHTML = items.join("");
}

function showModel(m) {
  const s = m.metrics, bt = (m.backtest && m.backtest.strategy) || {};
  rows($("model"), [
    ["version", `${m.model} ${m.version}`],
    ["stage", `${m.stage}${stageTag(m.stage)}`],
    ["target", `${m.target} ${m.horizon || ""}`],
    ["trained on", m.training_window.rows ? `${(m.symbols || []).join(", ")}: ${m.training_window.rows} rows to ${m.training_window.last_open_time}` : "–"],
    ["rank IC (t)", `${num(s.rank_ic, 3)} (${num(s.rank_ic_tstat, 2)})`],
    ["RMSE skill vs 0", num(s.rmse_skill_vs_zero, 4)],
    ["directional acc.", pct(s.directional_accuracy, 1)],
    ["p10–p90 coverage", pct(s.coverage, 1)],
    ["backtest return", `${pct(bt.total_return, 2)}, Sharpe ${num(bt.sharpe, 2)}`],
    ["gates", m.gates.passed ? "all passed" : `${(m.gates.failures || []).length} failed`],
  ]);
}

function showHealthBadge(h) {
  const badge = $("health");
  badge.textContent = h.status;
  badge.className = `badge ${h.status === "ok" ? "ok" : h.status === "degraded" ? "warn" : "bad"}`;
  badge.title = h.reasons.join("\n");
  badge.dataset.status = h.status;
}

function showHealth(h) {
  showHealthBadge(h);
  $("published").textContent = h.published_at ? `published ${h.published_at} · dbt ${String(h.dbt_invocation_id).slice(0, 8)}` : "";
  showSymbols(h.freshness.map((f) => f.symbol));
}

function showSymbols(served) {
  const picker = $("symbol");
  const symbols = served.includes(SYMBOL) ? served : [SYMBOL, ...served];
  picker.innerHTML = symbols.map((s) => `<option value="${esc(s)}">${esc(s)}</option>`).join("");
  picker.value = SYMBOL;
  document.title = `btcfs · ${SYMBOL} forecast`;
}

$("symbol").addEventListener("change", () => {
  SYMBOL = $("symbol").value;
  const url = new URL(location.href);
  url.searchParams.set("symbol", SYMBOL);
  history.replaceState(null, "", url);
  refresh().then(tickLive);
});

// The newest positions: the list is paginated in id order, the totals cover them all.
const PAPER_ROWS = 50;

// Paper writes need the admin token when the API listens beyond loopback: the one this tab
// keeps for jobs goes with them if there is one.
function paperHeaders(headers = {}) {
  const token = sessionStorage.getItem("btcfs.adminToken");
  return token ? { ...headers, authorization: `Bearer ${token}` } : headers;
}

async function loadPaper() {
  let book = await api(`/v1/paper/positions?limit=${PAPER_ROWS}`);
  if (book.total > PAPER_ROWS) book = await api(`/v1/paper/positions?limit=${PAPER_ROWS}&offset=${book.total - PAPER_ROWS}`);
  live.openPositions = book.open_count;
  const shown = book.total > book.positions.length ? ` · the newest ${book.positions.length} of ${book.total} shown` : "";
  const marks = book.marks.map((m) => `${esc(m.symbol)} ${esc(m.market)} ${num(m.price)} (${m.source === "open-bar" ? "live" : "published close"}, ${age(m.age_seconds)} old${m.is_stale ? ", STALE" : ""})`).join(" · ");
  $("paper-totals").innerHTML =
    `invested <b>${num(book.invested_usd)} USD</b> · value <b>${num(book.value_usd)} USD</b> · P&amp;L <b class="${book.pnl_usd >= 0 ? "long" : "short"}">${num(book.pnl_usd)} USD</b> (realised ${num(book.realised_pnl_usd)} USD, unrealised ${num(book.unrealised_pnl_usd)} USD, fees ${num(book.fees_usd)} USD)${shown}${marks ? `<br><span class="muted">marked at ${marks}</span>` : ""}`;
  const body = $("paper-table").querySelector("tbody");
  if (!book.positions.length) {
    body.innerHTML = `<tr><td colspan="8" class="empty">No paper positions yet: open one above (it fills at the live price, fees and slippage included).</td></tr>`;
    return;
  }
  const source = (s) => (s === "open-bar" ? "live open bar" : s === "published-close" ? "published 5m close" : s);
  body.innerHTML = book.positions.map((p) => `
    <tr data-position="${p.id}"${p.warnings.length ? ` title="${esc(p.warnings.join("\n"))}"` : ""}><td>${p.id}</td>
        <td><span class="${p.side === "long" ? "long" : "short"}">${esc(p.side)}</span> ${esc(p.symbol)} ${esc(p.market)} · ${esc(p.status)}${p.warnings.length ? ' <span class="warn">⚠</span>' : ""}</td>
        <td>${num(p.amount_usd)} ${esc(p.currency)}</td><td>${num(p.units, 6)}</td>
        <td title="${esc(source(p.entry_price_source))} at ${esc(p.entry_price_at)}; ${p.slippage_bps} bps slippage, ${p.fee_bps} bps fee">${num(p.entry_price)} ${esc(p.currency)}<br><span class="muted">${esc(source(p.entry_price_source))}, price ${age(p.entry_price_age_seconds)} old at the fill</span></td>
        <td class="mark${p.mark_is_stale ? " bad" : ""}">${num(p.mark_price)} ${esc(p.currency)}<br><span class="muted">${p.status === "open" ? `${esc(source(p.mark_source))}${p.mark_age_seconds !== null ? `, ${age(p.mark_age_seconds)} old` : ""}${p.mark_is_stale ? " · STALE" : ""}` : "exit"}</span></td>
        <td class="${p.pnl_usd >= 0 ? "long" : "short"}">${num(p.pnl_usd)} ${esc(p.currency)} (${pct(p.pnl_pct, 2)})<br><span class="muted">${p.status === "open" ? `if closed now ${num(p.pnl_if_closed_usd)}` : "realised"}, fees ${num(p.fees_usd)}</span></td>
        <td>${p.status === "open" ? `<button data-close="${p.id}">close</button>` : ""}</td></tr>`).join("");
}

function paperMessage(error) {
  $("paper-message").textContent = error.message;
  $("paper-message").className = "bad";
}

$("paper-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    const position = await api("/v1/paper/positions", { method: "POST", headers: paperHeaders({ "content-type": "application/json" }),
      body: JSON.stringify({ amount_usd: Number($("paper-amount").value), symbol: SYMBOL, market: $("paper-market").value,
                             side: $("paper-side").value, accept_stale: $("paper-stale").checked }) });
    $("paper-message").textContent = `opened #${position.id} at ${num(position.entry_price)} USD${position.warnings.length ? ` — ${position.warnings.join("; ")}` : ""}`;
    $("paper-message").className = position.warnings.length ? "warn" : "muted";
  } catch (error) { paperMessage(error); }
  await loadPaper();
});

$("paper-market").addEventListener("change", () => {
  // spot is long-only: a short needs the perpetual
  const spot = $("paper-market").value === "spot";
  $("paper-side").querySelector("option[value=short]").disabled = spot;
  if (spot) $("paper-side").value = "long";
});

$("paper-table").addEventListener("click", async (event) => {
  const id = event.target.dataset && event.target.dataset.close;
  if (!id) return;
  try {
    await api(`/v1/paper/positions/${id}/close`, { method: "POST", headers: paperHeaders({ "content-type": "application/json" }),
      body: JSON.stringify({ accept_stale: $("paper-stale").checked }) });
  } catch (error) { paperMessage(error); }
  await loadPaper();
});

// --------------------------------------------------------------------------- pipeline jobs
// The admin token lives in this tab only: in memory and in sessionStorage (gone with the tab),
// never in localStorage or a cookie, and it is sent only with the /v1/jobs requests (reading
// jobs needs it too) and the paper writes (which need it when the API listens beyond loopback).

const TOKEN_KEY = "btcfs.adminToken";
const jobs = { token: sessionStorage.getItem(TOKEN_KEY) || "", selected: null, timer: null };
$("job-token").value = jobs.token;
window.btcfsDashboard.jobs = 0;

function duration(job) {
  if (job.duration_seconds !== null) return `${job.duration_seconds.toFixed(1)} s`;
  if (!job.started_at) return "–";
  return `${((Date.now() - Date.parse(job.started_at)) / 1000).toFixed(0)} s…`;
}

function jobResult(job) {
  if (job.state === "failed" || job.state === "cancelled") {
    const gate = job.failed_gate ? `${job.failed_gate.kind} gate: ` : "";
    return `${gate}${job.error || "failed"}`;
  }
  const r = job.result || {}, parts = [];
  if (r.ingest) parts.push(`${r.ingest.rows_landed.toLocaleString("en-US")} rows landed`);
  if (r.gates && r.gates.failed) parts.push(`gates ${r.gates.failed.length ? `failed: ${r.gates.failed.join(", ")}` : `passed (${r.gates.passed})`}`);
  if (r.model) parts.push(`${r.model.model} ${r.model.version} (${r.model.stage})`);
  if (r.published) parts.push(`published ${String(r.published.dbt_invocation_id).slice(0, 8)}`);
  if (r.forecast) parts.push(`forecast ${r.forecast.steps} × ${r.forecast.horizon}`);
  return parts.join(" · ") || "–";
}

const jobHeaders = () => (jobs.token ? { authorization: `Bearer ${jobs.token}` } : {});

async function showJobLog(id) {
  jobs.selected = id;
  const job = await api(`/v1/jobs/${id}?lines=40`, { headers: jobHeaders() });
  const log = $("job-log");
  const following = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
  log.textContent = `job ${job.id} (${job.pipeline}, ${job.state}${job.step ? `, step ${job.step}` : ""})\n${job.log.join("\n")}`;
  if (following) log.scrollTop = log.scrollHeight;  // keep the newest lines in view
  document.querySelectorAll("#jobs-table tbody tr").forEach((tr) => tr.classList.toggle("selected", tr.dataset.job === String(id)));
}

function noJobs(summary) {
  window.btcfsDashboard.jobs = 0;
  $("jobs-summary").textContent = summary;
  $("jobs-table").querySelector("tbody").innerHTML = "";
  $("job-log").textContent = "";
}

async function loadJobs() {
  if (!jobs.token) return noJobs("enter the admin token to see the jobs");
  let listed;
  try { listed = await api("/v1/jobs?limit=10&lines=0", { headers: jobHeaders() }); } catch (error) {
    if (error.status === 401) return noJobs(`401 ${error.message}`);
    throw error;
  }
  window.btcfsDashboard.jobs = listed.jobs.length;
  const active = listed.jobs.find((j) => j.id === listed.active);
  $("jobs-summary").textContent = active
    ? `job ${active.id} (${active.pipeline}) is ${active.state}${active.step ? `: step ${active.step}` : ""}`
    : listed.jobs.length ? "no job running" : "no jobs yet";
  $("jobs-table").querySelector("tbody").innerHTML = listed.jobs.map((j) => `
    <tr data-job="${j.id}" data-state="${esc(j.state)}"><td>${j.id}</td><td>${esc(j.pipeline)}</td>
        <td class="${esc(j.state)}">${esc(j.state)}</td><td>${esc(j.step || "–")}</td>
        <td>${esc(j.created_at.slice(0, 19).replace("T", " "))}</td><td>${duration(j)}</td>
        <td class="result">${esc(jobResult(j))}</td></tr>`).join("");
  const shown = jobs.selected !== null && listed.jobs.some((j) => j.id === jobs.selected) ? jobs.selected : listed.jobs.length ? listed.jobs[0].id : null;
  if (shown !== null) await showJobLog(shown);
  // Poll quickly while a job runs, slowly otherwise.
  clearTimeout(jobs.timer);
  jobs.timer = setTimeout(() => loadJobs().catch(() => {}), active ? 1500 : 10000);
}

$("jobs-table").addEventListener("click", (event) => {
  const row = event.target.closest("tr[data-job]");
  if (row) showJobLog(Number(row.dataset.job)).catch((error) => { $("job-message").textContent = error.message; });
});

$("job-token").addEventListener("change", () => {
  jobs.token = $("job-token").value.trim();
  if (jobs.token) sessionStorage.setItem(TOKEN_KEY, jobs.token); else sessionStorage.removeItem(TOKEN_KEY);
  loadJobs().catch(() => {});
});

$("job-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const message = $("job-message");
  jobs.token = $("job-token").value.trim();
  if (jobs.token) sessionStorage.setItem(TOKEN_KEY, jobs.token);
  let params;
  try { params = JSON.parse($("job-params").value || "{}"); } catch (error) { message.textContent = `params: ${error.message}`; return; }
  try {
    const job = await api("/v1/jobs", {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${jobs.token}` },
      body: JSON.stringify({ pipeline: $("job-pipeline").value, params }),
    });
    message.textContent = `started job ${job.id}`;
    jobs.selected = job.id;
  } catch (error) { message.textContent = `${error.status || ""} ${error.message}`.trim(); }
  await loadJobs().catch(() => {});
});

// ------------------------------------------------------------------------------- refresh

async function refresh() {
  const failures = [];
  // A panel whose request fails says why in place of its content (the API's detail names the
  // command that fills it), never "loading…" forever.
  const attempt = async (name, fn, panel) => {
    try { await fn(); } catch (error) {
      failures.push(`${name}: ${error.message}`);
      if (panel) $(panel).innerHTML = `<dd class="empty">${esc(error.message)}</dd>`;
    }
  };
  let lastBar = null;
  await attempt("health", async () => showHealth(await api("/health")));
  await attempt("bars", async () => { const bars = (await api(`/v1/bars?symbol=${q(SYMBOL)}&interval=5m&limit=${BARS}`)).bars; lastBar = bars[bars.length - 1]; drawBars(bars); });
  await attempt("forecast", async () => drawForecast(await loadForecast(), lastBar));
  await attempt("prediction", async () => showPrediction(await api(`/v1/predictions/latest?symbol=${q(SYMBOL)}`)), "prediction");
  await attempt("qa", async () => showQA(await api("/v1/qa")));
  await attempt("model", async () => { const model = await api(`/v1/model?symbol=${q(SYMBOL)}`); showModel(model); await loadSignals(model); }, "model");
  await attempt("paper", loadPaper);
  await attempt("jobs", loadJobs);
  chart.timeScale().fitContent();
  document.body.dataset.errors = failures.join("; ");
  document.body.dataset.state = failures.length ? "partial" : "ready";
  document.body.dataset.refreshes = String(Number(document.body.dataset.refreshes || 0) + 1);
}

function connect() {
  const status = $("stream-status");
  const source = new EventSource("/v1/stream");
  source.addEventListener("hello", () => { status.textContent = "stream: connected"; status.className = "badge ok"; });
  source.addEventListener("publish", (event) => {
    const data = JSON.parse(event.data);
    status.textContent = `stream: publish ${String(data.dbt_invocation_id).slice(0, 8)} received`;
    refresh();
  });
  source.onerror = () => { status.textContent = "stream: reconnecting"; status.className = "badge warn"; };
}

refresh().then(() => { connect(); tickLive(); });
