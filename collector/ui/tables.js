// Tables: the selected transactions, the statistics (sortable), the active services.

import { esc, fmtNum, fmtPct, fmtTime } from './api.js';
import { fmtMs } from './xview.js';
import { eqBars } from './dashboard.js';

/**
 * A sortable table. `cols`: [{k, label, num, fmt}]; clicking a header sorts by it
 * (again: reverses). `onRow(row)` makes rows clickable.
 */
export function table(el, cols, rows, { empty = 'Nothing in this range.', onRow, sort } = {}) {
  const st = el._sort || sort || null;
  el._sort = st;
  const sorted = st ? [...rows].sort((a, b) => {
    const x = a[st.k], y = b[st.k];
    const c = typeof x === 'number' && typeof y === 'number' ? x - y : String(x).localeCompare(String(y));
    return st.desc ? -c : c;
  }) : rows;
  const head = '<tr>' + cols.map(c => `<th class="sortable${c.num ? ' num' : ''}" data-k="${c.k}">${esc(c.label)}${st && st.k === c.k ? (st.desc ? ' ▾' : ' ▴') : ''}</th>`).join('') + '</tr>';
  const body = sorted.length ? sorted.map((r, i) => `<tr data-i="${i}"${onRow ? ' class="click"' : ''}>` + cols.map(c => {
    const v = r[c.k];
    const cls = [c.num ? 'num' : '', c.wrap ? 'wrap' : '', c.err && c.err(r) ? 'err' : ''].join(' ').trim();
    return `<td${cls ? ` class="${cls}"` : ''} data-k="${c.k}">${c.fmt ? c.fmt(v, r) : esc(v)}</td>`;
  }).join('') + '</tr>').join('') : `<tr><td class="empty" colspan="${cols.length}">${esc(empty)}</td></tr>`;
  el.innerHTML = head + body;
  el.querySelectorAll('th').forEach(th => (th.onclick = () => {
    const k = th.dataset.k;
    el._sort = { k, desc: el._sort && el._sort.k === k ? !el._sort.desc : true };
    table(el, cols, rows, { empty, onRow });
  }));
  if (onRow) el.querySelectorAll('tr[data-i]').forEach(tr => (tr.onclick = () => {
    el.querySelectorAll('tr.picked').forEach(x => x.classList.remove('picked'));
    tr.classList.add('picked');
    onRow(sorted[+tr.dataset.i]);
  }));
}

const ms = v => (v == null ? '–' : fmtNum(v, 2));
const n0 = v => (v == null ? '–' : String(v));

export const TX_COLS = [
  { k: 'end_ms', label: 'time', fmt: fmtTime },
  { k: 'service', label: 'service' }, { k: 'instance', label: 'instance' }, { k: 'endpoint', label: 'endpoint' },
  { k: 'elapsed_ms', label: 'elapsed ms', num: true, fmt: ms },
  { k: 'sql_ms', label: 'SQL ms', num: true, fmt: ms }, { k: 'external_ms', label: 'external ms', num: true, fmt: ms },
  { k: 'cpu_ms', label: 'CPU ms', num: true, fmt: ms },
  { k: 'error', label: 'error', fmt: (v, r) => (v ? esc(r.error_type || 'error') : ''), err: r => r.error },
  { k: 'client_address', label: 'client' },
  { k: 'txid', label: 'txid', fmt: v => `<code>${esc(v.slice(0, 12))}…</code>` },
];

export const ENDPOINT_COLS = [
  { k: 'service', label: 'service' }, { k: 'endpoint', label: 'endpoint' },
  { k: 'calls', label: 'calls', num: true, fmt: n0 }, { k: 'errors', label: 'failures', num: true, fmt: n0, err: r => r.errors > 0 },
  { k: 'error_rate', label: 'error rate', num: true, fmt: fmtPct },
  { k: 'avg_ms', label: 'avg ms', num: true, fmt: ms }, { k: 'max_ms', label: 'max ms', num: true, fmt: ms },
  { k: 'p95_ms', label: 'p95 ms', num: true, fmt: ms }, { k: 'p99_ms', label: 'p99 ms', num: true, fmt: ms },
  { k: 'tps', label: 'TPS', num: true, fmt: v => fmtNum(v, 2) },
];

export const SQL_COLS = [
  { k: 'fingerprint', label: 'statement', wrap: true, fmt: v => `<code>${esc(v)}</code>` },
  { k: 'service', label: 'service' }, { k: 'target', label: 'database' },
  { k: 'calls', label: 'calls', num: true, fmt: n0 }, { k: 'errors', label: 'errors', num: true, fmt: n0 },
  { k: 'total_ms', label: 'total ms', num: true, fmt: ms }, { k: 'avg_ms', label: 'avg ms', num: true, fmt: ms },
  { k: 'max_ms', label: 'max ms', num: true, fmt: ms },
];

export const EXT_COLS = [
  { k: 'service', label: 'service' }, { k: 'target', label: 'target' },
  { k: 'calls', label: 'calls', num: true, fmt: n0 }, { k: 'errors', label: 'errors', num: true, fmt: n0 },
  { k: 'total_ms', label: 'total ms', num: true, fmt: ms }, { k: 'avg_ms', label: 'avg ms', num: true, fmt: ms },
  { k: 'max_ms', label: 'max ms', num: true, fmt: ms },
];

export const ERROR_COLS = [
  { k: 'service', label: 'service' }, { k: 'error_type', label: 'type', err: () => true },
  { k: 'message', label: 'message', wrap: true }, { k: 'count', label: 'count', num: true, fmt: n0 },
  { k: 'last_ms', label: 'last', fmt: fmtTime },
];

export const ACTIVE_COLS = [
  { k: 'service', label: 'service' }, { k: 'instance', label: 'instance' }, { k: 'endpoint', label: 'endpoint' },
  { k: 'elapsed_ms', label: 'running for', num: true, fmt: v => fmtMs(v), err: r => r.elapsed_ms >= 8000 },
  { k: 'current_kind', label: 'doing now' },
  { k: 'current_detail', label: 'detail', wrap: true, fmt: v => `<code>${esc(v)}</code>` },
  { k: 'current_elapsed_ms', label: 'for', num: true, fmt: v => (v ? fmtMs(v) : '') },
  { k: 'worker', label: 'worker' }, { k: 'client_address', label: 'client' },
];

/** The equalizer per service, big. */
export function equalizers(el, tick) {
  const list = tick?.active.services || [];
  el.innerHTML = list.length
    ? list.map(s => `<div class="svc"><b>${esc(s.service)}</b> <span class="muted">${s.counts.reduce((a, b) => a + b, 0)} running</span><div class="eq">${eqBars(s.counts, true).replace(/<div class="band">/g, '<div class="band">')}</div></div>`).join('')
    : '';
}
