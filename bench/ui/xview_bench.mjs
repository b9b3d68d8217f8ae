// The X-View benchmark in headless Chromium (Debian's, via playwright-core):
//   node bench/ui/xview_bench.mjs
// 1,000,000 synthetic points: frames per second while panning and zooming, with and
// without 5,000 appended points per second, and box-selection time, for the UI's
// renderer (ImageData pixel buffer) and selection (typed arrays) beside the
// alternatives (one fillRect()/arc() per point on Canvas 2D, WebGL points,
// Array.filter over objects). Needs `scripts/setup.sh` (chromium, playwright-core).
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { dirname, join, normalize } from 'node:path';
import { launch } from '../../collector/tests/ui/browser.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const uiDir = join(here, '../../collector/ui');
const types = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css' };
const server = createServer(async (req, res) => {
  const path = normalize(new URL(req.url, 'http://x').pathname);
  const file = path.startsWith('/ui/') ? join(uiDir, path.slice(4)) : join(here, path.slice(1));
  try {
    const body = await readFile(file);
    res.writeHead(200, { 'content-type': types[file.slice(file.lastIndexOf('.'))] || 'application/octet-stream' });
    res.end(body);
  } catch { res.writeHead(404); res.end(); }
});
await new Promise(r => server.listen(0, '127.0.0.1', r));
const url = `http://127.0.0.1:${server.address().port}/bench.html`;

const browser = await launch();
const row = (what, r) => console.log(`${what.padEnd(46)} ${r ? `${r.fps.toFixed(1).padStart(6)} fps  ${r.draw_ms.toFixed(1).padStart(8)} ms/frame` + (r.appended ? `  ${Math.round(r.appended_per_s)} appends/s (${r.append_ms_per_s.toFixed(1)} ms/s)` : '') : 'not available'}`);
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 600 } });
  page.on('pageerror', e => console.error('page error:', e));
  await page.goto(url);
  await page.waitForFunction(() => window.benchReady, null, { timeout: 120000 });
  const info = await page.evaluate(() => window.bench.info());
  const ua = await page.evaluate(() => navigator.userAgent);
  console.log(`X-View benchmark: ${info.points.toLocaleString()} points, plot ${info.plot.join('×')} px, ${ua.match(/Chrome\/[\d.]+/)?.[0]}, flags --headless --disable-gpu`);
  console.log(`(loading 1M points into typed arrays: ${info.load_ms.toFixed(0)} ms)\n`);
  console.log('pan/zoom, every frame a new view over all points:');
  row('  Tern: ImageData pixel buffer', await page.evaluate(() => window.bench.imagedata(5000, 0)));
  row('  Tern: ImageData, + 5,000 appends/s', await page.evaluate(() => window.bench.imagedata(5000, 5000)));
  await page.evaluate(() => window.bench.trim());
  const gl = await page.evaluate(() => window.bench.webgl(5000, 0));
  row(`  WebGL points (${gl?.renderer ?? 'none'})`, gl);
  row('  WebGL points, + 5,000 appends/s', await page.evaluate(() => window.bench.webgl(5000, 5000)));
  await page.evaluate(() => window.bench.trim());
  row('  Canvas 2D, one fillRect() per point', await page.evaluate(() => window.bench.canvas('rect', 5000)));
  row('  Canvas 2D, one arc() per point', await page.evaluate(() => window.bench.canvas('arc', 5000)));
  const s = await page.evaluate(() => window.bench.selection(15));
  console.log(`\nbox selection over ${s.points.toLocaleString()} points (${s.selected.toLocaleString()} inside; median / max of 15):`);
  console.log(`  Tern: typed arrays                           ${s.typed_median_ms.toFixed(1)} / ${s.typed_max_ms.toFixed(1)} ms`);
  console.log(`  Array.filter over point objects              ${s.naive_median_ms.toFixed(1)} / ${s.naive_max_ms.toFixed(1)} ms (${s.naive_selected.toLocaleString()} inside)`);
} finally {
  await browser.close();
  server.close();
}
