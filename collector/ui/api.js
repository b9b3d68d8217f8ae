// The query API (docs/api.md) and the view's state in the URL hash, so a view can be shared.

export class ApiError extends Error {}

/** GET /api/v1/<path>?<params>; rejects with the API's own error message. */
export async function api(path, params = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '' && v !== false) q.set(k, v);
  const url = `/api/v1/${path}${q.toString() ? '?' + q : ''}`;
  let r;
  try { r = await fetch(url); } catch (e) { throw new ApiError(`cannot reach the collector (${e.message})`); }
  let body;
  try { body = await r.json(); } catch { throw new ApiError(`${url}: answer is not JSON (HTTP ${r.status})`); }
  if (!r.ok) throw new ApiError(`${url}: ${body.error || 'HTTP ' + r.status}`);
  return body;
}

export const PRESETS = { '5m': 3e5, '15m': 9e5, '1h': 36e5, '6h': 216e5, '24h': 864e5 };

/** The view: tab, range (preset or from/to), filters, selection box, open transaction. */
export function readState() {
  const h = new URLSearchParams(location.hash.slice(1));
  const num = k => (h.has(k) && h.get(k) !== '' && isFinite(+h.get(k)) ? +h.get(k) : null);
  const sel = (h.get('sel') || '').split(',');
  return {
    tab: h.get('tab') || 'dashboard',
    range: PRESETS[h.get('range')] ? h.get('range') : (num('from') != null && num('to') != null ? 'custom' : '15m'),
    from: num('from'), to: num('to'),
    service: h.get('service') || '', instance: h.get('instance') || '', endpoint: h.get('endpoint') || '',
    errors: h.get('errors') === '1',
    ymax: h.get('ymax') || 'auto',
    sel: sel.length === 4 && sel.slice(0, 3).every(s => s !== '' && isFinite(+s))
      ? { from: +sel[0], to: +sel[1], lo: +sel[2], hi: sel[3] === '' ? null : +sel[3] } : null,
    tx: h.get('tx') || '', trace: h.get('trace') || '',
  };
}

export function writeState(s) {
  const h = new URLSearchParams();
  if (s.tab !== 'dashboard') h.set('tab', s.tab);
  if (s.range === 'custom') { h.set('from', Math.round(s.from)); h.set('to', Math.round(s.to)); } else h.set('range', s.range);
  for (const k of ['service', 'instance', 'endpoint']) if (s[k]) h.set(k, s[k]);
  if (s.errors) h.set('errors', '1');
  if (s.ymax !== 'auto') h.set('ymax', s.ymax);
  if (s.sel) h.set('sel', [s.sel.from, s.sel.to, s.sel.lo, s.sel.hi ?? ''].join(','));
  if (s.tx) h.set('tx', s.tx);
  if (s.trace) h.set('trace', s.trace);
  const next = '#' + h.toString();
  if (next !== location.hash) history.replaceState(null, '', next);
}

/** [from, to] in Unix ms for the state's range. */
export function rangeOf(s, now = Date.now()) {
  if (s.range === 'custom' && s.from != null && s.to != null) return [s.from, s.to];
  return [now - PRESETS[s.range], now + 1000];
}

/** The filter parameters every API call shares. */
export function filters(s) {
  return { service: s.service, instance: s.instance, endpoint: s.endpoint, errors_only: s.errors ? 'true' : '' };
}

export const esc = v => String(v ?? '').replace(/[&<>"']/g, c => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));

export function fmtTime(ms) {
  const d = new Date(ms);
  return d.toLocaleTimeString([], { hour12: false }) + '.' + String(d.getMilliseconds()).padStart(3, '0');
}

export const fmtNum = (v, d = 1) => (v == null || !isFinite(v) ? '–' : Number(v).toFixed(d));
export const fmtPct = v => (v == null || !isFinite(v) ? '–' : (v * 100).toFixed(1) + ' %');
