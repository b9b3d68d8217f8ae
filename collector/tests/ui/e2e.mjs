// End-to-end checks of the web UI in Debian's Chromium (run by collector/tests/ui_browser.rs):
//   node e2e.mjs <api-url> <seeds.json> <screenshot-dir> <otlp-http-url>
// Prints "ok <check>" per passed check; exits 1 on the first failure.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { launch } from './browser.mjs';

const [api, seedsFile, shots, otlpHttp] = process.argv.slice(2);
const seeds = JSON.parse(readFileSync(seedsFile, 'utf8'));
const fail = msg => { console.log('FAIL ' + msg); process.exitCode = 1; throw new Error(msg); };
const ok = msg => console.log('ok ' + msg);
const get = async path => { const r = await fetch(api + path); if (!r.ok) fail(`${path}: HTTP ${r.status}`); return r.json(); };

const browser = await launch();
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const consoleErrors = [];
  page.on('console', m => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  page.on('pageerror', e => consoleErrors.push(String(e)));
  page.on('response', r => { if (r.status() >= 400) consoleErrors.push(`HTTP ${r.status()} ${r.url()}`); });

  // ---- dashboard ----------------------------------------------------------------
  await page.goto(`${api}/ui/#range=15m`);
  await page.waitForFunction(() => window.tern && window.tern.loads >= 1 && window.tern.ticks >= 1 && window.tern.servicesLoaded >= 1, null, { timeout: 20000 });
  const range = await page.evaluate(() => { const s = window.tern.state; return s; });
  const services = await get(`/api/v1/services?from=${Date.now() - 900000}&to=${Date.now() + 1000}`);
  if (services.services.length !== 2) fail(`expected 2 services in the API, got ${JSON.stringify(services)}`);
  const cells = await page.evaluate(() => [...document.querySelectorAll('#services tr[data-service]')].map(tr => ({
    service: tr.dataset.service,
    calls: tr.querySelector('[data-k=calls]').textContent, errors: tr.querySelector('[data-k=errors]').textContent,
    avg: tr.querySelector('[data-k=avg_ms]').textContent,
  })));
  for (const s of services.services) {
    const row = cells.find(c => c.service === s.service);
    if (!row) fail(`service ${s.service} missing from the dashboard table: ${JSON.stringify(cells)}`);
    if (row.calls !== String(s.calls) || row.errors !== String(s.errors) || row.avg !== s.avg_ms.toFixed(2))
      fail(`dashboard row ${JSON.stringify(row)} does not match the API ${JSON.stringify(s)}`);
  }
  ok('dashboard services table matches /api/v1/services');

  const tiles = await page.evaluate(() => ({
    tps: document.getElementById('tile-tps').textContent, active: document.getElementById('tile-active').textContent,
    tick: window.tern.lastTick,
  }));
  if (tiles.tps !== tiles.tick.total.tps.toFixed(1)) fail(`TPS tile ${tiles.tps} vs tick ${tiles.tick.total.tps}`);
  const activeCount = tiles.tick.active.total.reduce((a, b) => a + b, 0);
  if (tiles.active !== String(activeCount) || activeCount !== 2) fail(`active tile ${tiles.active} vs tick ${JSON.stringify(tiles.tick.active)}`);
  const now = await get('/api/v1/live/now');
  if (JSON.stringify(now.active.total) !== JSON.stringify([1, 0, 1, 0])) fail(`equalizer bands: ${JSON.stringify(now.active)}`);
  ok('live tiles match the last tick');

  // ---- X-View dots ----------------------------------------------------------------
  const xv = await page.evaluate(() => ({ n: window.tern.store.n, drawn: window.tern.xv.render() }));
  if (xv.n !== seeds.length || xv.drawn !== seeds.length) fail(`x-view holds ${xv.n} points, drew ${xv.drawn}; seeded ${seeds.length}`);
  const pixels = await page.evaluate(() => {
    const c = window.tern.xv.plot, d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let lit = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) lit++;
    return lit;
  });
  if (pixels < seeds.length) fail(`only ${pixels} pixels lit for ${seeds.length} points`);
  await page.screenshot({ path: join(shots, 'dashboard.png'), fullPage: true });
  ok('x-view draws every seeded point');

  // ---- a transaction sent now arrives through the live push ---------------------------
  const endNs = BigInt(Date.now()) * 1000000n;
  const liveSpan = {
    traceId: '0123456789abcdef0123456789abcdef', spanId: '0123456789abcdef', name: 'GET /api/live', kind: 2,
    startTimeUnixNano: String(endNs - 42000000n), endTimeUnixNano: String(endNs),
    attributes: [{ key: 'http.request.method', value: { stringValue: 'GET' } }, { key: 'url.path', value: { stringValue: '/api/live' } }],
  };
  const body = { resourceSpans: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: 'shop' } }] }, scopeSpans: [{ spans: [liveSpan] }] }] };
  const posted = await fetch(otlpHttp + '/v1/traces', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (!posted.ok) fail(`OTLP/JSON post: HTTP ${posted.status}`);
  await page.waitForFunction(n => window.tern.store.n === n + 1, seeds.length, { timeout: 10000 });
  await page.waitForFunction(() => window.tern.lastTick.total.calls >= 1 && document.getElementById('tile-tps').textContent !== '0.0', null, { timeout: 10000 });
  const liveTick = await page.evaluate(() => ({ tps: document.getElementById('tile-tps').textContent, t: window.tern.lastTick.total }));
  if (liveTick.tps !== liveTick.t.tps.toFixed(1) || Math.abs(liveTick.t.avg_ms - 42) > 0.01) fail(`live tile after a new transaction: ${JSON.stringify(liveTick)}`);
  ok(`a transaction sent while the page is open arrives live (TPS tile ${liveTick.tps}, avg ${liveTick.t.avg_ms} ms)`);

  // ---- drag-select ----------------------------------------------------------------
  const ends = seeds.map(s => s.end_ms).sort((a, b) => a - b);
  const t0 = ends[Math.floor(ends.length * 0.3)], t1 = ends[Math.floor(ends.length * 0.7)];
  const corners = await page.evaluate(([t0, t1]) => {
    const v = window.tern.xv, r = v.over.getBoundingClientRect(), L = 58, T = 8;
    return { ax: r.left + L + v.px(t0), bx: r.left + L + v.px(t1), ay: r.top + T + v.py(700), by: r.top + T + v.py(150) };
  }, [t0, t1]);
  await page.mouse.move(corners.ax, corners.ay);
  await page.mouse.down();
  await page.mouse.move((corners.ax + corners.bx) / 2, (corners.ay + corners.by) / 2, { steps: 4 });
  await page.mouse.move(corners.bx, corners.by, { steps: 4 });
  await page.mouse.up();
  await page.waitForFunction(() => window.tern.selection, null, { timeout: 10000 });
  const sel = await page.evaluate(() => ({
    ...window.tern.selection, hash: location.hash,
    tableRows: document.querySelectorAll('#sel-table tr[data-i]').length,
  }));
  const box = sel.box;
  const inside = seeds.filter(s => s.end_ms >= box.from && s.end_ms < box.to && s.elapsed_us >= box.lo && (box.hi == null || s.elapsed_us <= box.hi));
  const want = new Set(inside.map(s => s.txid)), got = new Set(sel.rows.map(r => r.txid));
  if (!inside.length || inside.length === seeds.length) fail(`the box ${JSON.stringify(box)} should hold some but not all seeds (${inside.length})`);
  if (want.size !== got.size || [...want].some(id => !got.has(id)))
    fail(`box ${JSON.stringify(box)}: listed ${got.size} transactions, the seeds inside are ${want.size}`);
  if (sel.tableRows !== want.size) fail(`table shows ${sel.tableRows} rows, want ${want.size}`);
  if (sel.clientCount !== want.size) fail(`client-side box selection found ${sel.clientCount}, want ${want.size}`);
  if (!sel.hash.includes('sel=')) fail(`selection not in the URL: ${sel.hash}`);
  ok(`drag-select lists exactly the seeded transactions inside the box (${want.size} of ${seeds.length}, box ${box.from}..${box.to} ms × ${box.lo}..${box.hi} µs)`);

  // ---- call tree ------------------------------------------------------------------
  const first = sel.rows[0];
  const seed = seeds.find(s => s.txid === first.txid);
  await page.click('#sel-table tr[data-i="0"]');
  await page.waitForSelector('#calltree .row[data-category="sql"]', { timeout: 10000 });
  const tree = await page.textContent('#detail');
  if (!tree.includes(seed.sql)) fail(`call tree of ${seed.txid} lacks "${seed.sql}": ${tree.slice(0, 400)}`);
  if (!tree.includes('payments.internal')) fail('call tree lacks the external call URL');
  await page.screenshot({ path: join(shots, 'calltree.png'), fullPage: true });
  ok(`call tree shows the transaction's SQL (${seed.sql})`);

  // ---- URL keeps the view -----------------------------------------------------------
  const url = page.url();
  if (!url.includes('tx=')) fail(`open transaction not in the URL: ${url}`);
  const page2 = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  await page2.goto(url);
  await page2.waitForSelector('#calltree .row[data-category="sql"]', { timeout: 15000 });
  await page2.waitForFunction(() => window.tern.selection, null, { timeout: 10000 });
  const again = await page2.evaluate(() => ({ n: window.tern.selection.rows.length, tree: document.getElementById('detail').textContent }));
  if (again.n !== want.size || !again.tree.includes(seed.sql)) fail(`reloaded view: ${again.n} rows, tree has SQL: ${again.tree.includes(seed.sql)}`);
  await page2.close();
  ok('the URL restores the selection and the call tree');

  await page.click('#detail [data-trace]');
  await page.waitForFunction(() => location.hash.includes('trace=') && document.querySelector('#detail h2')?.textContent === 'Trace' && document.querySelectorAll('#detail .tree .row').length >= 3, null, { timeout: 10000 });
  const traceText = await page.textContent('#detail');
  if (!traceText.includes(seed.sql) || !traceText.includes('3 spans')) fail(`whole trace: ${traceText.slice(0, 300)}`);
  ok('the whole trace opens from the call tree');

  // ---- statistics -------------------------------------------------------------------
  await page.click('#tabs a[data-tab=stats]');
  await page.waitForFunction(() => window.tern.statsLoaded >= 1, null, { timeout: 15000 });
  const eps = await get(`/api/v1/endpoints?from=${Date.now() - 900000}&to=${Date.now() + 1000}`);
  const shown = await page.evaluate(() => [...document.querySelectorAll('#st-endpoints tr[data-i]')].map(tr => ({
    service: tr.querySelector('[data-k=service]').textContent, endpoint: tr.querySelector('[data-k=endpoint]').textContent,
    calls: tr.querySelector('[data-k=calls]').textContent, errors: tr.querySelector('[data-k=errors]').textContent,
  })));
  if (shown.length !== eps.endpoints.length) fail(`statistics show ${shown.length} endpoints, the API ${eps.endpoints.length}`);
  for (const e of eps.endpoints) {
    const r = shown.find(x => x.service === e.service && x.endpoint === e.endpoint);
    if (!r || r.calls !== String(e.calls) || r.errors !== String(e.errors)) fail(`endpoint ${JSON.stringify(e)} shown as ${JSON.stringify(r)}`);
  }
  await page.click('#st-endpoints th[data-k=avg_ms]');
  const avgs = await page.evaluate(() => [...document.querySelectorAll('#st-endpoints tr[data-i] td[data-k=avg_ms]')].map(td => +td.textContent));
  if (avgs.length < 2 || avgs.some((v, i) => i && v > avgs[i - 1])) fail(`sorting by avg ms (descending): ${avgs}`);
  const sqlText = await page.textContent('#st-sql');
  if (!sqlText.includes('SELECT * FROM orders WHERE id = ?')) fail(`top SQL lacks the fingerprint: ${sqlText.slice(0, 300)}`);
  await page.screenshot({ path: join(shots, 'statistics.png'), fullPage: true });
  ok('statistics match /api/v1/endpoints and sort by a clicked column');

  // ---- active services ---------------------------------------------------------------
  await page.click('#tabs a[data-tab=active]');
  await page.waitForFunction(() => document.querySelectorAll('#active-table tr[data-i]').length === 2, null, { timeout: 10000 });
  const act = await page.textContent('#active-table');
  if (!act.includes('SELECT SLEEP(5)') || !act.includes('GET /api/slow/2')) fail(`active table: ${act.slice(0, 300)}`);
  await page.waitForTimeout(1200);
  await page.screenshot({ path: join(shots, 'active.png'), fullPage: true });
  ok('active services list the agent\'s running transactions');

  // ---- dark theme, empty state ----------------------------------------------------------
  const dark = await browser.newPage({ viewport: { width: 1400, height: 1000 }, colorScheme: 'dark' });
  await dark.goto(url);
  await dark.waitForSelector('#calltree .row', { timeout: 15000 });
  await dark.screenshot({ path: join(shots, 'dashboard-dark.png'), fullPage: true });
  await dark.goto(`${api}/ui/#range=5m&service=nobody`);
  // same document (only the hash changed): wait for the reload that follows
  await dark.waitForFunction(() => window.tern.state.service === 'nobody' && document.querySelector('#xview .empty').textContent !== 'loading…', null, { timeout: 10000 });
  const empty = await dark.textContent('#xview .empty');
  if (!empty.includes('No transactions')) fail(`empty state: "${empty}"`);
  const leftovers = await dark.evaluate(() => [document.getElementById('selection').hidden, document.getElementById('detail').hidden]);
  if (leftovers.some(h => !h)) fail(`a new URL without a selection still shows the old one: ${leftovers}`);
  await dark.screenshot({ path: join(shots, 'empty-dark.png') });
  ok('empty state and dark theme render');

  // ---- filters narrow the X-View -------------------------------------------------------
  const filt = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  await filt.goto(`${api}/ui/#range=15m&service=billing&errors=1`);
  await filt.waitForFunction(() => window.tern.loads >= 1, null, { timeout: 10000 });
  const billingErrors = seeds.filter(x => x.service === 'billing' && x.error).length;
  let n = await filt.evaluate(() => window.tern.store.n);
  if (n !== billingErrors) fail(`service=billing&errors=1 shows ${n} points, want ${billingErrors}`);
  await filt.selectOption('#service', 'shop');
  await filt.waitForFunction(() => window.tern.loads >= 2, null, { timeout: 10000 });
  n = await filt.evaluate(() => window.tern.store.n);
  const shopErrors = seeds.filter(x => x.service === 'shop' && x.error).length;
  if (n !== shopErrors || !filt.url().includes('service=shop')) fail(`service=shop&errors=1 shows ${n} points, want ${shopErrors}; url ${filt.url()}`);
  await filt.close();
  ok(`filters narrow the X-View (billing errors ${billingErrors}, shop errors ${shopErrors})`);

  // ---- wheel zoom: a custom range in the URL, loaded from the store --------------------
  const zoom = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  await zoom.goto(`${api}/ui/#range=15m`);
  await zoom.waitForFunction(() => window.tern.loads >= 1, null, { timeout: 10000 });
  const r = await zoom.evaluate(() => window.tern.xv.over.getBoundingClientRect().toJSON());
  await zoom.mouse.move(r.x + r.width * 0.9, r.y + r.height / 2);
  for (let i = 0; i < 4; i++) await zoom.mouse.wheel(0, -100);
  await zoom.waitForFunction(() => window.tern.loads >= 2 && location.hash.includes('from='), null, { timeout: 10000 });
  const z = await zoom.evaluate(() => ({ s: window.tern.state, n: window.tern.store.n, hash: location.hash }));
  if (z.s.range !== 'custom' || !(z.s.to - z.s.from < 900000)) fail(`zoom: ${JSON.stringify(z)}`);
  const inView = seeds.filter(x => x.end_ms >= Math.floor(z.s.from) && x.end_ms < Math.ceil(z.s.to)).length;
  if (z.n < inView) fail(`zoomed view holds ${z.n} points, the seeds in it are ${inView}`);
  await zoom.close();
  ok(`wheel zoom keeps the view in the URL and loads it (${Math.round((z.s.to - z.s.from) / 1000)} s, ${z.n} points)`);

  // ---- an API error is shown, not swallowed -------------------------------------------
  const bad = await browser.newPage({ viewport: { width: 1400, height: 700 } });
  await bad.goto(`${api}/ui/#from=2000&to=1000`);
  await bad.waitForSelector('#banner:not([hidden])', { timeout: 10000 });
  const bannerText = await bad.textContent('#banner');
  if (!bannerText.includes('must be before to')) fail(`error banner: "${bannerText}"`);
  await bad.screenshot({ path: join(shots, 'error.png') });
  ok('an API error shows in a banner');

  if (consoleErrors.length) fail('console errors: ' + consoleErrors.join(' | '));
} catch (e) {
  if (!process.exitCode) { console.log('FAIL ' + (e.stack || e)); process.exitCode = 1; }
} finally {
  await browser.close();
}
