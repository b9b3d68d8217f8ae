// The live dashboard: tiles (TPS, average response, error rate, active count with the
// equalizer), their sparklines, and the services table (live columns from the push,
// range columns from /api/v1/services).

import { esc, fmtNum, fmtPct } from './api.js';
import { fmtMs } from './xview.js';

const $ = id => document.getElementById(id);

function spark(canvas, values, color) {
  const w = canvas.clientWidth, h = canvas.clientHeight;
  if (!w) return;
  canvas.width = w; canvas.height = h;
  const c = canvas.getContext('2d');
  const max = Math.max(1e-9, ...values);
  c.strokeStyle = color; c.lineWidth = 1.5; c.beginPath();
  values.forEach((v, i) => {
    const x = (i / Math.max(1, values.length - 1)) * (w - 2) + 1, y = h - 2 - (v / max) * (h - 4);
    i ? c.lineTo(x, y) : c.moveTo(x, y);
  });
  c.stroke();
}

export function eqBars(counts, big) {
  const max = Math.max(1, ...counts);
  const labels = ['<1s', '1-3s', '3-8s', '>8s'];
  if (!big) return `<span class="eq-mini" title="running: ${counts.map((c, i) => labels[i] + ' ' + c).join(', ')}">${counts.map(c => `<span style="height:${Math.round(2 + 16 * c / max)}px"></span>`).join('')}</span>`;
  return counts.map((c, i) => `<div class="band"><div class="bar" style="height:${Math.round(2 + 20 * c / max)}px"></div>${labels[i]}: ${c}</div>`).join('');
}

/** Shows one `tick` of /api/v1/live. */
export function showTick(t, state) {
  const svc = state.service ? t.services.find(s => s.service === state.service) : t.total;
  const r = svc || { tps: 0, avg_ms: 0, error_rate: 0, calls: 0 };
  $('tile-tps').textContent = fmtNum(r.tps, 1);
  $('tile-avg').textContent = r.calls ? fmtMs(r.avg_ms) : '–';
  $('tile-err').textContent = r.calls ? fmtPct(r.error_rate) : '–';
  const eq = state.service ? (t.active.services.find(s => s.service === state.service)?.counts || [0, 0, 0, 0]) : t.active.total;
  $('tile-active').textContent = eq.reduce((a, b) => a + b, 0);
  $('eq-total').innerHTML = eqBars(eq, true);
  const css = getComputedStyle(document.documentElement);
  let tps, avg, err;
  if (state.service) {
    // The push carries per-second history for all services only: one service's
    // sparklines are the tiles' own values, tick by tick, since the filter was set.
    if (hist.key !== state.service) Object.assign(hist, { key: state.service, tps: [], avg: [], err: [] });
    hist.tps.push(r.tps); hist.avg.push(r.avg_ms); hist.err.push(r.error_rate);
    for (const k of ['tps', 'avg', 'err']) if (hist[k].length > 60) hist[k].shift();
    ({ tps, avg, err } = hist);
  } else {
    hist.key = null;
    tps = t.seconds.map(s => s.calls); avg = t.seconds.map(s => s.avg_ms);
    err = t.seconds.map(s => (s.calls ? s.errors / s.calls : 0));
  }
  spark($('spark-tps'), tps, css.getPropertyValue('--accent'));
  spark($('spark-avg'), avg, css.getPropertyValue('--ok'));
  spark($('spark-err'), err, css.getPropertyValue('--err'));
}
const hist = { key: null, tps: [], avg: [], err: [] };

/** The services table: live numbers by service (from the last tick) beside the range's. */
export function showServices(tick, range, error) {
  const live = new Map((tick?.services || []).map(s => [s.service, s]));
  const eq = new Map((tick?.active.services || []).map(s => [s.service, s.counts]));
  const stored = new Map((range?.services || []).map(s => [s.service, s]));
  const names = [...new Set([...stored.keys(), ...live.keys(), ...eq.keys()])].sort();
  const head = `<tr><th>service</th><th class="num">TPS</th><th class="num">avg</th><th class="num">p95</th><th class="num">errors</th><th>active</th>
    <th class="num">calls (range)</th><th class="num">errors (range)</th><th class="num">avg ms (range)</th><th class="num">instances</th></tr>`;
  if (!names.length) {
    $('services').innerHTML = head + `<tr><td class="empty" colspan="10">${esc(error || 'No services yet: point an OpenTelemetry SDK or a Tern agent at the collector.')}</td></tr>`;
    return;
  }
  $('services').innerHTML = head + names.map(n => {
    const l = live.get(n), s = stored.get(n);
    return `<tr data-service="${esc(n)}"><td>${esc(n)}</td>
      <td class="num">${l ? fmtNum(l.tps, 1) : '0.0'}</td><td class="num">${l?.calls ? fmtMs(l.avg_ms) : '–'}</td>
      <td class="num">${l?.calls ? fmtMs(l.p95_ms) : '–'}</td><td class="num ${l?.errors ? 'err' : ''}">${l?.calls ? fmtPct(l.error_rate) : '–'}</td>
      <td>${eqBars(eq.get(n) || [0, 0, 0, 0], false)}</td>
      <td class="num" data-k="calls">${s ? s.calls : '–'}</td><td class="num" data-k="errors">${s ? s.errors : '–'}</td>
      <td class="num" data-k="avg_ms">${s ? fmtNum(s.avg_ms, 2) : '–'}</td><td class="num">${s ? s.instances : '–'}</td></tr>`;
  }).join('');
}
