// One transaction's call tree (nested timeline bars with SQL text, URLs and errors) and
// the whole trace across services, from /api/v1/transactions/{trace}/{span} and
// /api/v1/traces/{id}.

import { api, esc, fmtTime, fmtNum } from './api.js';
import { fmtMs } from './xview.js';

function bar(n, total, depth, extraText) {
  const left = total > 0 ? Math.max(0, n.start_offset_ms) / total * 100 : 0;
  const width = total > 0 ? Math.max(0.2, n.elapsed_ms / total * 100) : 100;
  const failed = n.status === 'error' || n.error_type;
  const cls = `bar ${esc(n.category)}${failed ? ' error' : ''}`;
  const text = n.sql || n.url || '';
  const err = failed ? ` <span class="err">${esc(n.error_type || 'error')}${n.status_message ? ': ' + esc(n.status_message) : ''}</span>` : '';
  return `<div class="row" data-category="${esc(n.category)}">
    <div class="name" style="padding-left:${depth * 14}px" title="${esc(n.name)}"><span class="kind">${esc(n.category)}</span>${esc(extraText || '')}${esc(n.name)}${err}</div>
    <div class="track"><div class="${cls}" style="left:${left}%;width:${Math.min(width, 100 - left)}%"></div></div>
    <div class="ms">${fmtMs(n.elapsed_ms)}</div>
    ${text ? `<div class="text" style="padding-left:${depth * 14 + 16}px">${esc(text)}</div>` : ''}
  </div>`;
}

function walk(n, total, depth, out) {
  out.push(bar(n, total, depth));
  for (const c of n.children || []) walk(c, total, depth + 1, out);
  for (const l of n.calls_into || []) {
    out.push(`<div class="row"><div class="name" style="padding-left:${(depth + 1) * 14}px">→ <a href="#" data-tx="${esc(l.txid)}">${esc(l.service)}: ${esc(l.name)}</a></div><div></div><div class="ms">${fmtMs(l.elapsed_ms)}</div></div>`);
  }
}

/** Renders transaction `txid` into `el`; `onOpen(txid)` / `onTrace(id)` follow links. */
export async function showTransaction(el, txid, { onOpen, onTrace, onClose }) {
  el.hidden = false;
  el.innerHTML = `<div class="muted">loading ${esc(txid)}…</div>`;
  const [trace, span] = txid.split(':');
  let d;
  try { d = await api(`transactions/${trace}/${span}`); } catch (e) {
    el.innerHTML = `<div class="panel-head"><h2>Transaction</h2><span class="spacer"></span><button data-close>Close</button></div><div class="err">${esc(e.message)}</div>`;
    el.querySelector('[data-close]').onclick = onClose;
    return;
  }
  const t = d.transaction;
  const rows = [];
  walk(d.call_tree, t.elapsed_ms, 0, rows);
  el.innerHTML = `<div class="panel-head"><h2>Transaction</h2><span class="muted">${esc(t.service)} · ${esc(t.endpoint)}</span>
      <span class="spacer"></span><a href="#" data-trace="${esc(t.trace_id)}">whole trace across services</a><button data-close>Close</button></div>
    <dl class="kv">
      <dt>txid</dt><dd>${esc(t.txid)}</dd>
      <dt>ended</dt><dd>${new Date(t.end_ms).toLocaleString()} · ${fmtMs(t.elapsed_ms)}</dd>
      <dt>instance</dt><dd>${esc(t.instance)}</dd>
      <dt>HTTP</dt><dd>${esc(t.http_method)} ${t.http_status || ''} from ${esc(t.client_address || '–')}</dd>
      <dt>SQL</dt><dd>${t.sql_count} calls, ${fmtNum(t.sql_ms, 2)} ms · external ${t.external_count} calls, ${fmtNum(t.external_ms, 2)} ms · CPU ${fmtNum(t.cpu_ms, 2)} ms</dd>
      ${t.error ? `<dt>error</dt><dd class="err">${esc(t.error_type)} ${esc(t.error_message)}</dd>` : ''}
    </dl>
    <div class="tree" id="calltree">${rows.join('')}</div>`;
  el.querySelector('[data-close]').onclick = onClose;
  el.querySelector('[data-trace]').onclick = e => { e.preventDefault(); onTrace(t.trace_id); };
  el.querySelectorAll('[data-tx]').forEach(a => (a.onclick = e => { e.preventDefault(); onOpen(a.dataset.tx); }));
}

/** Renders a whole trace (every service's spans, depth-first) into `el`. */
export async function showTrace(el, traceId, { onClose }) {
  el.hidden = false;
  el.innerHTML = `<div class="muted">loading trace ${esc(traceId)}…</div>`;
  let d;
  try { d = await api(`traces/${traceId}`); } catch (e) {
    el.innerHTML = `<div class="err">${esc(e.message)}</div>`;
    return;
  }
  const rows = d.spans.map(s => bar(s, d.elapsed_ms, s.depth, s.service + ' · '));
  el.innerHTML = `<div class="panel-head"><h2>Trace</h2><span class="muted">${esc(d.trace_id)} · ${d.span_count} spans · ${esc(d.services.join(', '))} · ${fmtMs(d.elapsed_ms)} · started ${fmtTime(d.start_us / 1000)}</span>
    <span class="spacer"></span><button data-close>Close</button></div><div class="tree">${rows.join('')}</div>`;
  el.querySelector('[data-close]').onclick = onClose;
}
