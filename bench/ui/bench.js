// The X-View benchmark page (driven by bench/ui/xview_bench.mjs): 1,000,000 synthetic
// points, the UI's own renderer and box selection (collector/ui/points.js, xview.js)
// beside the alternatives a user would reach for: one fillRect()/arc() per point on a
// Canvas 2D, WebGL points, and Array.filter over point objects.

import { PointStore } from '/ui/points.js';
import { XView } from '/ui/xview.js';

const N = 1_000_000;
const T1 = Date.now(), T0 = T1 - 600_000;

let seed = 42;
const rnd = () => { seed ^= seed << 13; seed ^= seed >>> 17; seed ^= seed << 5; return (seed >>> 0) / 4294967296; };
const gauss = () => Math.sqrt(-2 * Math.log(rnd() + 1e-12)) * Math.cos(2 * Math.PI * rnd());

/** n points ending in [t0, t1): log-normal elapsed around 80 ms, 0.5 % slow, 1 % failed. */
function synth(n, t0, t1) {
  const end_ms = new Float64Array(n), elapsed_ms = new Float64Array(n), error = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    end_ms[i] = Math.floor(t0 + rnd() * (t1 - t0));
    const slow = rnd() < 0.005;
    elapsed_ms[i] = Math.round((slow ? 2000 + rnd() * 8000 : Math.exp(Math.log(80) + 0.8 * gauss())) * 1000) / 1000;
    error[i] = rnd() < 0.01 ? 1 : 0;
  }
  return { end_ms, elapsed_ms, error, id: null };
}

const store = new PointStore(N + 100_000, 2_000_000);
const t = performance.now();
store.append(synth(N, T0, T1));
const loadMs = performance.now() - t;
const xv = new XView(document.getElementById('xview'), store);
xv.setYMax(3000);

/** The view at frame f: zooming between 10 and 1 minutes while panning. */
function view(f, t1) {
  const span = 600_000 * (0.55 + 0.45 * Math.cos(f / 20));
  const center = t1 - 300_000 + 200_000 * Math.sin(f / 35);
  return [center - span / 2, center + span / 2];
}

// ---- the alternatives -----------------------------------------------------------------

function canvas2d(kind) {
  const c = document.createElement('canvas');
  c.className = 'alt'; c.width = xv.pw; c.height = xv.ph;
  c.style.left = '58px'; c.style.top = '8px';
  document.getElementById('xview').append(c);
  const ctx = c.getContext('2d');
  const draw = (x0, x1) => {
    ctx.clearRect(0, 0, c.width, c.height);
    const { x, y, err, n } = store, sx = c.width / (x1 - x0), sy = (c.height - 1) / 3000;
    for (let pass = 0; pass < 2; pass++) {
      ctx.fillStyle = pass ? '#d6336c' : '#1f6feb';
      for (let i = 0; i < n; i++) {
        if (err[i] !== pass) continue;
        const px = (x[i] - x0) * sx;
        if (px < 0 || px >= c.width) continue;
        const py = Math.max(0, c.height - 1 - y[i] * sy);
        if (kind === 'arc') { ctx.beginPath(); ctx.arc(px, py, 1, 0, 2 * Math.PI); ctx.fill(); } else ctx.fillRect(px, py, 2, 2);
      }
    }
  };
  return { draw, remove: () => c.remove() };
}

function webgl() {
  const c = document.createElement('canvas');
  c.className = 'alt'; c.width = xv.pw; c.height = xv.ph; c.style.left = '58px'; c.style.top = '8px';
  document.getElementById('xview').append(c);
  const gl = c.getContext('webgl2', { antialias: false, preserveDrawingBuffer: false });
  if (!gl) return null;
  const sh = (type, src) => { const s = gl.createShader(type); gl.shaderSource(s, src); gl.compileShader(s); return s; };
  const prog = gl.createProgram();
  gl.attachShader(prog, sh(gl.VERTEX_SHADER, `#version 300 es
    in float ax; in float ay; in float ae; uniform vec2 xr; uniform float ymax; out float e;
    void main() { e = ae; gl_Position = vec4((ax - xr.x) / (xr.y - xr.x) * 2.0 - 1.0, min(ay / ymax, 1.0) * 2.0 - 1.0, 0, 1); gl_PointSize = 2.0; }`));
  gl.attachShader(prog, sh(gl.FRAGMENT_SHADER, `#version 300 es
    precision mediump float; in float e; out vec4 o;
    void main() { o = e > 0.5 ? vec4(0.84, 0.2, 0.42, 1) : vec4(0.12, 0.44, 0.92, 1); }`));
  gl.linkProgram(prog); gl.useProgram(prog);
  const cap = 2_000_000;
  const bufs = {};
  for (const [name, size] of [['ax', 4], ['ay', 4], ['ae', 4]]) {
    const b = gl.createBuffer(); gl.bindBuffer(gl.ARRAY_BUFFER, b); gl.bufferData(gl.ARRAY_BUFFER, cap * size, gl.DYNAMIC_DRAW);
    const loc = gl.getAttribLocation(prog, name); gl.enableVertexAttribArray(loc); gl.vertexAttribPointer(loc, 1, gl.FLOAT, false, 0, 0);
    bufs[name] = b;
  }
  let uploaded = 0;
  const upload = () => {
    const from = uploaded, to = store.n;
    if (to <= from) return;
    const ax = new Float32Array(to - from), ay = new Float32Array(to - from), ae = new Float32Array(to - from);
    for (let i = from; i < to; i++) { ax[i - from] = store.x[i] - T0; ay[i - from] = store.y[i]; ae[i - from] = store.err[i]; }
    for (const [name, arr] of [['ax', ax], ['ay', ay], ['ae', ae]]) { gl.bindBuffer(gl.ARRAY_BUFFER, bufs[name]); gl.bufferSubData(gl.ARRAY_BUFFER, from * 4, arr); }
    uploaded = to;
  };
  const xr = gl.getUniformLocation(prog, 'xr'), ym = gl.getUniformLocation(prog, 'ymax');
  gl.uniform1f(ym, 3000);
  gl.clearColor(0, 0, 0, 0);
  const draw = (x0, x1) => {
    upload();
    gl.viewport(0, 0, c.width, c.height); gl.clear(gl.COLOR_BUFFER_BIT);
    gl.uniform2f(xr, x0 - T0, x1 - T0);
    gl.drawArrays(gl.POINTS, 0, store.n);
  };
  return { draw, remove: () => c.remove(), renderer: gl.getParameter(gl.RENDERER) };
}

// ---- measurements ---------------------------------------------------------------------

/** Frames per second over `ms` of requestAnimationFrame, moving the view every frame;
 *  with `appendPerSec`, that many new points arrive per second meanwhile. */
function fps(draw, ms, appendPerSec = 0) {
  return new Promise(resolve => {
    let frames = 0, work = 0, appended = 0, appendMs = 0;
    const start = performance.now();
    const t1Start = T1;
    const frame = now => {
      const elapsed = performance.now() - start;
      if (appendPerSec) {
        const due = Math.floor(elapsed / 1000 * appendPerSec) - appended;
        if (due > 0) {
          const t1 = t1Start + elapsed;
          const a = performance.now();
          store.append(synth(due, t1 - 1000, t1));
          appendMs += performance.now() - a;
          appended += due;
        }
      }
      const t0 = performance.now();
      const [x0, x1] = view(frames, t1Start + elapsed);
      draw(x0, x1);
      work += performance.now() - t0;
      frames++;
      if (now - start < ms) requestAnimationFrame(frame);
      else {
        const secs = (performance.now() - start) / 1000;
        resolve({ fps: frames / secs, frames, draw_ms: work / frames, appended, appended_per_s: appended / secs, append_ms_per_s: appendMs / secs, points: store.n });
      }
    };
    requestAnimationFrame(frame);
  });
}

function median(a) { const s = [...a].sort((x, y) => x - y); return s[Math.floor(s.length / 2)]; }

function selection(reps = 15) {
  const from = T0 + 200_000, to = T0 + 400_000, lo = 50_000, hi = 400_000;
  const typed = [];
  let count = 0;
  for (let r = 0; r < reps; r++) { const a = performance.now(); count = store.select(from, to, lo, hi).length; typed.push(performance.now() - a); }
  const objects = [];
  for (let i = 0; i < store.n; i++) objects.push({ end_ms: store.x[i], elapsed_ms: store.y[i], error: store.err[i] === 1, id: '' });
  const naive = [];
  let naiveCount = 0;
  for (let r = 0; r < reps; r++) {
    const a = performance.now();
    naiveCount = objects.filter(p => p.end_ms >= from && p.end_ms < to && p.elapsed_ms * 1000 >= lo && p.elapsed_ms * 1000 <= hi).length;
    naive.push(performance.now() - a);
  }
  return { points: store.n, selected: count, naive_selected: naiveCount, typed_median_ms: median(typed), typed_max_ms: Math.max(...typed), naive_median_ms: median(naive), naive_max_ms: Math.max(...naive) };
}

// While an alternative is measured, the UI's own render loop stays idle.
const ownRender = xv.render.bind(xv);
const idle = async f => { xv.render = () => 0; try { return await f(); } finally { xv.render = ownRender; } };

window.bench = {
  info: () => ({ points: store.n, load_ms: loadMs, plot: [xv.pw, xv.ph] }),
  imagedata: (ms, append) => fps((x0, x1) => { xv.setView(x0, x1); ownRender(); }, ms, append),
  canvas: (kind, ms) => idle(async () => { const r = canvas2d(kind); try { return await fps(r.draw, ms); } finally { r.remove(); } }),
  webgl: (ms, append) => idle(async () => { const r = webgl(); if (!r) return null; try { return { ...(await fps(r.draw, ms, append)), renderer: r.renderer }; } finally { r.remove(); } }),
  selection,
  trim: () => { if (store.n > N) store.dropOldest(store.n - N); return store.n; },
};
window.benchReady = true;
