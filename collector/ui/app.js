// Wiring: state in the URL, the live push, the X-View, the tabs.

import { api, readState, writeState, rangeOf, filters, esc } from './api.js';
import { PointStore } from './points.js';
import { XView } from './xview.js';
import { showTick, showServices } from './dashboard.js';
import { showTransaction, showTrace } from './calltree.js';
import { table, equalizers, TX_COLS, ENDPOINT_COLS, SQL_COLS, EXT_COLS, ERROR_COLS, ACTIVE_COLS } from './tables.js';

const $ = id => document.getElementById(id);
const S = readState();
const store = new PointStore();
let lastTick = null, rangeServices = null, rangeError = null, loadSeq = 0;
const xv = new XView($('xview'), store, { onSelect: select, onView: viewChanged });
/** For the browser tests and the curious: the live state of the page. */
const tern = (window.tern = { store, xv, state: S, lastTick: null, loads: 0, selection: null, errors: [] });

function banner(msg) {
  $('banner').hidden = !msg;
  $('banner').textContent = msg || '';
  if (msg) tern.errors.push(msg);
}

function following() { return S.range !== 'custom'; }

function syncControls() {
  $('range').value = S.range;
  $('custom').hidden = S.range !== 'custom';
  const [f, t] = rangeOf(S);
  const local = ms => new Date(ms - new Date(ms).getTimezoneOffset() * 6e4).toISOString().slice(0, 19);
  $('from').value = local(f); $('to').value = local(t);
  $('instance').value = S.instance; $('endpoint').value = S.endpoint; $('errors').checked = S.errors;
  $('ymax').value = S.ymax;
  if (![...$('service').options].some(o => o.value === S.service)) $('service').add(new Option(S.service, S.service));
  $('service').value = S.service;
  $('live').classList.toggle('on', following());
  document.querySelectorAll('#tabs a').forEach(a => a.classList.toggle('on', a.dataset.tab === S.tab));
  for (const t of ['dashboard', 'active', 'stats']) $('tab-' + t).hidden = S.tab !== t;
  xv.setYMax(S.ymax === 'auto' ? null : +S.ymax);
  writeState(S);
}

// ---- X-View data -------------------------------------------------------------------

// Live points and stored points overlap by a few seconds (the store lags the live push
// by the writer's flush; a new stream starts with 15 s of backfill): ids of the newest
// points are remembered and repeats skipped. While a load runs, live points wait.
const RECENT_MS = 30000;
let recent = new Set(), pending = null;

function rememberRecent() {
  recent = new Set();
  const cutoff = Date.now() - RECENT_MS;
  for (let i = 0; i < store.n; i++) if (store.x[i] >= cutoff) recent.add(store.ids[i]);
}

function infoText(d) {
  return `${store.n.toLocaleString()} points` + (d?.reduced ? ` (stored range reduced: ${d.returned.toLocaleString()} of ${d.total.toLocaleString()}, every error and every one ≥ p99 kept, the rest sampled ${(d.reduction.sample_ratio * 100).toFixed(1)} %)` : '');
}
let lastLoad = null;

async function loadPoints() {
  const seq = ++loadSeq;
  pending = pending || [];
  const [from, to] = rangeOf(S);
  xv.setView(from, Math.min(to, Math.max(Date.now(), from + 1000)));
  xv.setEmpty('loading…');
  try {
    const d = await api('xview', { from: Math.floor(from), to: Math.ceil(to), ...filters(S) });
    if (seq !== loadSeq) return;
    store.clear();
    store.append(d.points);
    rememberRecent();
    const waiting = pending; pending = null;
    for (const p of waiting) appendLive(p);
    tern.loads++;
    lastLoad = d;
    $('xv-info').textContent = infoText(d);
    xv.setEmpty(store.n ? '' : 'No transactions in this range' + (S.service || S.instance || S.endpoint || S.errors ? ' with these filters.' : '.'));
    banner('');
    if (S.sel) await select(S.sel, true);
  } catch (e) {
    if (seq !== loadSeq) return;
    pending = null;
    xv.setEmpty('');
    banner(e.message);
  }
}

function appendLive(p) {
  if (!following() || !p.end_ms.length) return;
  if (pending) { pending.push(p); return; }
  const keep = i => !recent.has(p.id[i]) && (!S.service || p.service[i] === S.service) && (!S.instance || p.instance[i] === S.instance)
    && (!S.endpoint || p.endpoint[i] === S.endpoint) && (!S.errors || p.error[i]);
  store.append(p, keep);
  for (const id of p.id) recent.add(id);
  if (store.n) { xv.setEmpty(''); $('xv-info').textContent = infoText(lastLoad); }
}

let reloadTimer = 0;
function viewChanged(x0, x1, settled) {
  S.range = 'custom'; S.from = x0; S.to = x1;
  $('live').classList.remove('on'); $('range').value = 'custom'; $('custom').hidden = false;
  clearTimeout(reloadTimer);
  if (settled) reloadTimer = setTimeout(() => { syncControls(); loadPoints(); }, 300);
}

// ---- selection → table → call tree ---------------------------------------------------

async function select(box, restoring) {
  S.sel = box; if (!restoring) S.tx = '';
  writeState(S);
  xv.setBox(box);
  const t0 = performance.now();
  const idx = store.select(box.from, box.to, box.lo, box.hi == null ? Infinity : box.hi);
  const selectMs = performance.now() - t0;
  $('selection').hidden = false;
  $('sel-info').textContent = `${idx.length} points in the box here (${selectMs.toFixed(1)} ms) · loading rows…`;
  const params = { from: box.from, to: box.to, min_elapsed_ms: box.lo / 1000, ...filters(S), limit: 1000 };
  if (box.hi != null) params.max_elapsed_ms = box.hi / 1000;
  try {
    const d = await api('transactions', params);
    tern.selection = { box, clientCount: idx.length, selectMs, total: d.total, rows: d.transactions };
    $('sel-info').textContent = `${d.total} transactions in the box` + (d.truncated ? `, the first ${d.returned} listed` : '') + ` · ${idx.length} of them drawn here`;
    table($('sel-table'), TX_COLS, d.transactions, { empty: 'No transactions in the box.', onRow: r => openTx(r.txid) });
    if (S.tx) openTx(S.tx);
  } catch (e) {
    $('sel-info').textContent = '';
    banner(e.message);
  }
}

function clearSelection() {
  S.sel = null; S.tx = ''; S.trace = ''; xv.setBox(null);
  $('selection').hidden = true; $('detail').hidden = true; tern.selection = null;
  writeState(S);
}

function closeDetail() { S.tx = ''; S.trace = ''; $('detail').hidden = true; writeState(S); }

function openTx(txid) {
  S.tx = txid; S.trace = ''; writeState(S);
  showTransaction($('detail'), txid, { onOpen: openTx, onTrace: openTrace, onClose: closeDetail })
    .then(() => $('detail').scrollIntoView({ block: 'nearest' }));
}

function openTrace(id) {
  S.trace = id; writeState(S);
  showTrace($('detail'), id, { onClose: closeDetail });
}

// ---- live push ------------------------------------------------------------------------

function connectLive() {
  const es = new EventSource('/api/v1/live?backfill_secs=15');
  es.addEventListener('tick', ev => {
    const t = JSON.parse(ev.data);
    lastTick = tern.lastTick = t;
    $('livestate').textContent = 'live'; $('livestate').className = 'pill up';
    if (S.tab === 'dashboard') {
      showTick(t, S);
      showServices(t, rangeServices, rangeError);
    }
    if (S.tab === 'active') equalizers($('eq-services'), t);
    appendLive(t.points);
    tern.ticks = (tern.ticks || 0) + 1;
  });
  es.onerror = () => { $('livestate').textContent = 'live: reconnecting…'; $('livestate').className = 'pill down'; };
}

// ---- range statistics, services list ------------------------------------------------

async function loadServices() {
  const [from, to] = rangeOf(S);
  try {
    const d = await api('services', { from: Math.floor(from), to: Math.ceil(to) });
    rangeServices = d; rangeError = null;
    const sel = $('service');
    const names = d.services.map(s => s.service);
    for (const n of names) if (![...sel.options].some(o => o.value === n)) sel.add(new Option(n, n));
    tern.servicesLoaded = (tern.servicesLoaded || 0) + 1;
  } catch (e) { rangeError = e.message; }
  showServices(lastTick, rangeServices, rangeError);
}

async function loadEndpointsList() {
  const [from, to] = rangeOf(S);
  try {
    const d = await api('endpoints', { from: Math.floor(from), to: Math.ceil(to), service: S.service, limit: 500 });
    $('endpoints').innerHTML = d.endpoints.map(e => `<option value="${esc(e.endpoint)}">`).join('');
  } catch { /* the list is a convenience */ }
}

async function loadStats() {
  const [from, to] = rangeOf(S);
  const p = { from: Math.floor(from), to: Math.ceil(to), service: S.service };
  const one = async (path, el, cols, key, extra = {}) => {
    try {
      const d = await api(path, { ...p, ...extra });
      table($(el), cols, d[key], { empty: 'Nothing in this range.', onRow: extra.onRow });
    } catch (e) { $(el).innerHTML = `<tr><td class="empty err">${esc(e.message)}</td></tr>`; }
  };
  await Promise.all([
    one('endpoints', 'st-endpoints', ENDPOINT_COLS, 'endpoints', { endpoint: S.endpoint }),
    one('sql', 'st-sql', SQL_COLS, 'statements'),
    one('external', 'st-external', EXT_COLS, 'external'),
    one('errors', 'st-errors', ERROR_COLS, 'errors'),
  ]);
  tern.statsLoaded = (tern.statsLoaded || 0) + 1;
}

async function loadActive() {
  try {
    const d = await api('active', { service: S.service });
    $('active-info').textContent = `${d.count} running`;
    table($('active-table'), ACTIVE_COLS, d.active, { empty: 'Nothing running now (active transactions come from Tern agents).' });
  } catch (e) { $('active-table').innerHTML = `<tr><td class="empty err">${esc(e.message)}</td></tr>`; }
}

// ---- controls ---------------------------------------------------------------------------

function reloadAll() {
  syncControls();
  loadServices(); loadEndpointsList();
  if (S.tab === 'dashboard') loadPoints();
  if (S.tab === 'stats') loadStats();
  if (S.tab === 'active') loadActive();
}

function filterChanged() {
  S.service = $('service').value; S.instance = $('instance').value.trim();
  S.endpoint = $('endpoint').value.trim(); S.errors = $('errors').checked;
  clearSelection();
  reloadAll();
}

$('range').onchange = () => {
  const v = $('range').value;
  if (v === 'custom') { const [f, t] = rangeOf(S); S.from = f; S.to = t; } else { S.from = S.to = null; }
  S.range = v; clearSelection(); reloadAll();
};
$('apply').onclick = () => {
  const f = new Date($('from').value).getTime(), t = new Date($('to').value).getTime();
  if (!(f < t)) { banner('the custom range needs a start before its end'); return; }
  S.range = 'custom'; S.from = f; S.to = t; clearSelection(); reloadAll();
};
for (const id of ['service', 'errors']) $(id).onchange = filterChanged;
for (const id of ['instance', 'endpoint']) $(id).onchange = filterChanged;
$('ymax').onchange = () => { S.ymax = $('ymax').value; syncControls(); };
$('live').onclick = () => { if (!following()) { S.range = '15m'; S.from = S.to = null; clearSelection(); reloadAll(); } };
$('sel-clear').onclick = clearSelection;
addEventListener('keydown', e => { if (e.key === 'Escape' && S.sel) clearSelection(); });
document.querySelectorAll('#tabs a').forEach(a => (a.onclick = e => { e.preventDefault(); S.tab = a.dataset.tab; reloadAll(); }));
// A new URL typed or pasted (the page's own changes replace history, firing nothing).
addEventListener('hashchange', () => {
  Object.assign(S, readState());
  if (!S.sel) { xv.setBox(null); $('selection').hidden = true; tern.selection = null; }
  if (!S.tx && !S.trace) $('detail').hidden = true;
  reloadAll();
  if (S.trace) openTrace(S.trace); else if (S.tx && !S.sel) openTx(S.tx);
});

// The live view scrolls with time.
setInterval(() => {
  if (following() && S.tab === 'dashboard') { const [f] = rangeOf(S); xv.setView(f, Date.now()); }
}, 250);
setInterval(() => { if (S.tab === 'active') loadActive(); }, 1000);
setInterval(() => { if (!pending) rememberRecent(); }, 10000);
setInterval(() => { loadServices(); if (S.tab === 'stats' && following()) loadStats(); }, 10000);

reloadAll();
connectLive();
if (S.tx && !S.sel) openTx(S.tx);
if (S.trace) openTrace(S.trace);
