// X-View points in typed arrays: x = end time (Unix ms, Float64), y = elapsed (ms,
// Float64: exact, so a box here and the API agree), error flag (Uint8), and the transaction id (plain array, only read for a
// selection). Appends are amortized O(1); when `max` is reached the oldest half goes.

export class PointStore {
  constructor(capacity = 1 << 16, max = 2_000_000) {
    this.max = max;
    this.n = 0;
    this.version = 0;
    this.alloc(capacity);
  }

  alloc(cap) {
    const old = this;
    const x = new Float64Array(cap), y = new Float64Array(cap), err = new Uint8Array(cap);
    if (old.x) { x.set(old.x.subarray(0, old.n)); y.set(old.y.subarray(0, old.n)); err.set(old.err.subarray(0, old.n)); }
    this.x = x; this.y = y; this.err = err;
    this.ids = this.ids || [];
  }

  clear() { this.n = 0; this.ids = []; this.version++; }

  /** Appends columnar points ({end_ms[], elapsed_ms[], error[], id[]}), or those passing `keep(i)`. */
  append(p, keep) {
    const m = p.end_ms.length;
    if (this.n + m > this.max) this.dropOldest(Math.max(this.n + m - this.max, this.n >> 1));
    if (this.n + m > this.x.length) this.alloc(Math.min(this.max, Math.max(this.x.length * 2, this.n + m)));
    let n = this.n;
    for (let i = 0; i < m; i++) {
      if (keep && !keep(i)) continue;
      this.x[n] = p.end_ms[i]; this.y[n] = p.elapsed_ms[i]; this.err[n] = p.error[i] ? 1 : 0;
      this.ids[n] = p.id ? p.id[i] : '';
      n++;
    }
    this.n = n;
    this.version++;
  }

  dropOldest(k) {
    k = Math.min(k, this.n);
    this.x.copyWithin(0, k, this.n); this.y.copyWithin(0, k, this.n); this.err.copyWithin(0, k, this.n);
    this.ids.splice(0, k);
    this.n -= k;
  }

  /** Indices inside the box: fromMs <= x < toMs and loUs <= round(y·1000) <= hiUs (the API's rules). */
  select(fromMs, toMs, loUs, hiUs) {
    const x = this.x, y = this.y, n = this.n;
    const lo = (loUs - 0.5) / 1000, hi = (hiUs + 0.5) / 1000;
    if (!this.scratch || this.scratch.length < n) this.scratch = new Int32Array(this.x.length);
    const out = this.scratch;
    let k = 0;
    for (let i = 0; i < n; i++) {
      const xi = x[i];
      if (xi >= fromMs && xi < toMs) {
        const yi = y[i];
        if (yi >= lo && yi < hi) out[k++] = i;
      }
    }
    return out.slice(0, k);
  }

  /** A high quantile of y over a sample (for the automatic y scale). */
  quantileY(q, x0, x1) {
    const { x, y, n } = this;
    const step = Math.max(1, Math.floor(n / 20000));
    const s = [];
    for (let i = 0; i < n; i += step) if (x[i] >= x0 && x[i] < x1) s.push(y[i]);
    if (!s.length) return 0;
    s.sort((a, b) => a - b);
    return s[Math.min(s.length - 1, Math.floor(q * s.length))];
  }
}
