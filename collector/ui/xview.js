// The X-View scatter: x = end time, y = elapsed. Points are drawn into one ImageData
// (a Uint32Array over its pixels, one putImageData per frame); axes, grid and the
// selection box go on a second canvas above it. Drag selects a box, the wheel zooms
// time around the cursor, shift+drag pans.

const M = { left: 58, right: 12, top: 8, bottom: 24 };

function cssColor(name, fallback) {
  const v = getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;
  const c = document.createElement('canvas').getContext('2d');
  c.fillStyle = v; c.fillRect(0, 0, 1, 1);
  const [r, g, b] = c.getImageData(0, 0, 1, 1).data;
  return { css: v, u32: (255 << 24 | b << 16 | g << 8 | r) >>> 0 };
}

function niceStep(span, target) {
  const raw = span / Math.max(1, target);
  const p = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 2.5, 5, 10]) if (raw <= m * p) return m * p;
  return 10 * p;
}

const TIME_STEPS = [1e3, 2e3, 5e3, 1e4, 15e3, 3e4, 6e4, 12e4, 3e5, 6e5, 9e5, 18e5, 36e5, 72e5, 108e5, 216e5, 432e5, 864e5];

export function fmtMs(ms) {
  if (ms >= 10000) return (ms / 1000).toFixed(0) + ' s';
  if (ms >= 1000) return (ms / 1000).toFixed(1) + ' s';
  if (ms >= 10) return ms.toFixed(0) + ' ms';
  return ms.toFixed(1) + ' ms';
}

export class XView {
  /**
   * @param {HTMLElement} el container (sized by CSS)
   * @param {import('./points.js').PointStore} store
   * @param {{onSelect?: Function, onView?: Function}} hooks
   */
  constructor(el, store, hooks = {}) {
    this.el = el; this.store = store; this.hooks = hooks;
    this.plot = document.createElement('canvas');
    this.over = document.createElement('canvas');
    this.emptyEl = document.createElement('div'); this.emptyEl.className = 'empty'; this.emptyEl.hidden = true;
    el.append(this.plot, this.over, this.emptyEl);
    this.x0 = Date.now() - 6e5; this.x1 = Date.now();
    this.yFixed = null; this.ymax = 1000;
    this.box = null; this.drag = null;
    this.dirty = true; this.lastVersion = -1; this.frames = 0;
    this.colors();
    this.resize();
    new ResizeObserver(() => { this.resize(); this.dirty = true; }).observe(el);
    matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => { this.colors(); this.dirty = true; });
    this.bind();
    const loop = () => { if (this.dirty || this.store.version !== this.lastVersion) this.render(); requestAnimationFrame(loop); };
    requestAnimationFrame(loop);
  }

  colors() {
    this.cOk = cssColor('--accent', '#1f6feb'); this.cErr = cssColor('--err', '#d6336c');
    this.cFg = cssColor('--muted', '#6b7685'); this.cLine = cssColor('--line', '#dde2e8');
    this.cSel = cssColor('--sel', 'rgba(31,111,235,.15)');
  }

  resize() {
    const w = Math.max(100, this.el.clientWidth), h = Math.max(100, this.el.clientHeight);
    this.W = w; this.H = h;
    this.pw = w - M.left - M.right; this.ph = h - M.top - M.bottom;
    Object.assign(this.over, { width: w, height: h });
    Object.assign(this.plot, { width: this.pw, height: this.ph });
    this.plot.style.left = M.left + 'px'; this.plot.style.top = M.top + 'px';
    this.ctx = this.plot.getContext('2d');
    this.octx = this.over.getContext('2d');
    this.img = this.ctx.createImageData(this.pw, this.ph);
    this.buf = new Uint32Array(this.img.data.buffer);
  }

  setView(x0, x1) { this.x0 = x0; this.x1 = Math.max(x1, x0 + 1000); this.dirty = true; }
  setYMax(v) { this.yFixed = v; this.dirty = true; }
  setBox(box) { this.box = box; this.dirty = true; }
  setEmpty(text) { this.emptyEl.textContent = text || ''; this.emptyEl.hidden = !text; }

  // data ↔ pixel (plot area)
  px(x) { return (x - this.x0) * this.pw / (this.x1 - this.x0); }
  py(y) { return this.ph - 1 - y * (this.ph - 1) / this.ymax; }
  dx(px) { return this.x0 + px * (this.x1 - this.x0) / this.pw; }
  dy(py) { return (this.ph - 1 - py) * this.ymax / (this.ph - 1); }

  autoY() {
    if (this.yFixed) return this.yFixed;
    const q = this.store.quantileY(0.995, this.x0, this.x1) * 1.15;
    const step = niceStep(Math.max(q, 10), 4);
    return Math.ceil(Math.max(q, 10) / step) * step;
  }

  /** Draws every point in view; returns the number drawn. */
  render() {
    this.dirty = false; this.lastVersion = this.store.version; this.frames++;
    if (this.store.version !== this.yVersion || this.x0 !== this.yx0 || this.x1 !== this.yx1 || this.yFixed) {
      this.ymax = this.autoY(); this.yVersion = this.store.version; this.yx0 = this.x0; this.yx1 = this.x1;
    }
    const drawn = drawPoints(this.store, this.buf, this.pw, this.ph, this.x0, this.x1, this.ymax, this.cOk.u32, this.cErr.u32);
    this.ctx.putImageData(this.img, 0, 0);
    this.drawAxes();
    this.drawn = drawn;
    return drawn;
  }

  drawAxes() {
    const c = this.octx, { W, H, pw, ph } = this;
    c.clearRect(0, 0, W, H);
    c.font = '11px system-ui, sans-serif'; c.fillStyle = this.cFg.css; c.strokeStyle = this.cLine.css; c.lineWidth = 1;
    // y grid
    const ys = niceStep(this.ymax, 5);
    c.textAlign = 'right'; c.textBaseline = 'middle';
    for (let v = 0; v <= this.ymax + 1e-9; v += ys) {
      const y = Math.round(M.top + this.py(v)) + .5;
      c.beginPath(); c.moveTo(M.left, y); c.lineTo(M.left + pw, y); c.stroke();
      c.fillText(fmtMs(v), M.left - 6, y);
    }
    // x grid
    const span = this.x1 - this.x0;
    const xs = TIME_STEPS.find(s => span / s <= Math.max(2, pw / 90)) || 864e5;
    c.textAlign = 'center'; c.textBaseline = 'top';
    const tz = new Date().getTimezoneOffset() * 6e4;
    for (let t = Math.ceil((this.x0 - tz) / xs) * xs + tz; t < this.x1; t += xs) {
      const x = Math.round(M.left + this.px(t)) + .5;
      c.beginPath(); c.moveTo(x, M.top); c.lineTo(x, M.top + ph); c.stroke();
      const d = new Date(t);
      const label = xs >= 864e5 ? d.toLocaleDateString() : d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: xs < 6e4 ? '2-digit' : undefined });
      c.fillText(label, x, M.top + ph + 5);
    }
    const box = this.drag && this.drag.mode === 'select' ? this.drag.box : this.box;
    if (box) {
      const x0 = M.left + Math.max(0, this.px(box.from)), x1 = M.left + Math.min(pw, this.px(box.to));
      const y1 = M.top + (box.hi == null ? 0 : Math.max(0, this.py(box.hi / 1000)));
      const y0 = M.top + Math.min(ph, this.py(box.lo / 1000));
      if (x1 > x0) {
        c.fillStyle = this.cSel.css; c.fillRect(x0, y1, x1 - x0, y0 - y1);
        c.strokeStyle = this.cOk.css; c.strokeRect(x0 + .5, y1 + .5, x1 - x0 - 1, y0 - y1 - 1);
      }
    }
  }

  /** The data box of a pixel rectangle (plot coordinates), rounded like the API rounds. */
  boxOf(ax, ay, bx, by) {
    const l = Math.max(0, Math.min(ax, bx)), r = Math.min(this.pw, Math.max(ax, bx));
    const t = Math.max(0, Math.min(ay, by)), b = Math.min(this.ph - 1, Math.max(ay, by));
    return {
      from: Math.floor(this.dx(l)), to: Math.ceil(this.dx(r)),
      lo: Math.max(0, Math.floor(this.dy(b) * 1000)),
      // touching the top edge includes the points clamped there (above the scale)
      hi: t <= 1 ? null : Math.ceil(this.dy(t) * 1000),
    };
  }

  bind() {
    const pos = e => { const r = this.over.getBoundingClientRect(); return [e.clientX - r.left - M.left, e.clientY - r.top - M.top]; };
    this.over.addEventListener('mousedown', e => {
      if (e.button !== 0) return;
      const [x, y] = pos(e);
      this.drag = { mode: e.shiftKey ? 'pan' : 'select', x, y, x0: this.x0, x1: this.x1 };
      e.preventDefault();
    });
    addEventListener('mousemove', e => {
      if (!this.drag) return;
      const [x, y] = pos(e);
      if (this.drag.mode === 'pan') {
        const shift = (x - this.drag.x) * (this.drag.x1 - this.drag.x0) / this.pw;
        this.setView(this.drag.x0 - shift, this.drag.x1 - shift);
        this.hooks.onView?.(this.x0, this.x1, false);
      } else {
        this.drag.box = this.boxOf(this.drag.x, this.drag.y, x, y);
        this.dirty = true;
      }
    });
    addEventListener('mouseup', e => {
      const d = this.drag; this.drag = null;
      if (!d) return;
      const [x, y] = pos(e);
      if (d.mode === 'pan') { this.hooks.onView?.(this.x0, this.x1, true); return; }
      if (Math.abs(x - d.x) < 3 && Math.abs(y - d.y) < 3) { this.dirty = true; return; }
      this.box = this.boxOf(d.x, d.y, x, y);
      this.dirty = true;
      this.hooks.onSelect?.(this.box);
    });
    this.over.addEventListener('wheel', e => {
      e.preventDefault();
      const [x] = pos(e);
      const at = this.dx(Math.max(0, Math.min(this.pw, x)));
      const f = Math.exp(Math.sign(e.deltaY) * 0.15);
      this.setView(at - (at - this.x0) * f, at + (this.x1 - at) * f);
      this.hooks.onView?.(this.x0, this.x1, true);
    }, { passive: false });
  }
}

/**
 * The hot loop: every point in view as a 2×2 dot, errors drawn last so they stay on
 * top; points above `ymax` sit on the top edge. Exported for the benchmark.
 */
export function drawPoints(store, buf, w, h, x0, x1, ymax, okColor, errColor) {
  buf.fill(0);
  const { x, y, err, n } = store;
  const sx = w / (x1 - x0), sy = (h - 1) / ymax, w1 = w - 1, h1 = h - 1;
  let drawn = 0;
  for (let pass = 0; pass < 2; pass++) {
    const color = pass ? errColor : okColor;
    for (let i = 0; i < n; i++) {
      if (err[i] !== pass) continue;
      const px = ((x[i] - x0) * sx) | 0;
      if (px < 0 || px >= w1) continue;
      let py = (h1 - y[i] * sy) | 0;
      if (py < 0) py = 0;
      const o = py * w + px;
      buf[o] = color; buf[o + 1] = color;
      if (py < h1) { buf[o + w] = color; buf[o + w + 1] = color; }
      drawn++;
    }
  }
  return drawn;
}
