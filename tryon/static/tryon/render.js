// Nail polish rendering on a 2D canvas's pixels: the JavaScript port of ml/render.py (the try-on page's
// in-browser path; docs/rendering.md). Pure functions on RGBA byte arrays (ImageData.data), no DOM:
// tested in Node (tests/test_tryon_render_js.py) and timed in Chromium (bench/tryon_browser.py).
//
//   import { render } from "./render.js";
//   const out = render(imageData, nails, "#C8102E", "glossy");   // {data, alpha, nails}
//   ctx.putImageData(new ImageData(out.data, width, height), 0, 0);
//
// Per nail, as in Python: axis base -> tip; the outline resampled every 0.5 px and smoothed (~1.5 px
// circular Gaussian); stretched toward the tip (8 % of the length, smoothstep from the middle); rasterized
// with the training rasters' pixel-centre rule at 4x in the nail's box; alpha = smoothstep of the exact
// Euclidean distance to the outline over the feather width, inside the outline, averaged back to pixels;
// the polish colour in CIE Lab keeping the photo's shading (exposure, low-frequency lightness raised to
// the finish's gamma, cylinder term, base -> tip gradient, fine detail); a specular streak along the axis
// and a glint near the base (glossy); composite where alpha > 0, every other byte untouched.
//
// Differences from Python (the look is the same; the bytes are not bit-identical):
// * Colour conversion uses the exact sRGB / CIE Lab (D65) formulas; OpenCV's float path interpolates the
//   sRGB gamma from a table (differences ~1e-4 in L).
// * Metallic flakes use a small seeded generator (mulberry32 + Box-Muller) instead of NumPy's PCG64:
//   the same per-nail seed and strength, a different grain.
// * Nails are oriented as postprocess.js hands them over (from the field, or from the photo as Python's
//   orient_from_image); nails whose orientation could not be decided are painted symmetrically (no
//   stretch, no glint), as in Python.
// * Rounding of the composite is JavaScript's double arithmetic (NumPy's float32): at most 1 level apart.

import { gaussianKernel } from "./orientation.js";

export const FINISHES = Object.freeze({
  glossy: { shading_gamma: 0.55, detail: 0.30, curvature: 0.22, gradient: 0.06, highlight: 0.62, highlight_width: 0.22,
    highlight_offset: 0.28, highlight_tint: 0.1, glint: 0.5, chroma: 1.0, lightness: 0.0, sparkle: 0.0 },
  matte: { shading_gamma: 0.40, detail: 0.06, curvature: 0.12, gradient: 0.03, highlight: 0.10, highlight_width: 0.9,
    highlight_offset: 0.15, highlight_tint: 0.3, glint: 0.0, chroma: 0.9, lightness: 3.0, sparkle: 0.0 },
  metallic: { shading_gamma: 0.85, detail: 0.12, curvature: 0.45, gradient: 0.12, highlight: 0.6, highlight_width: 0.5,
    highlight_offset: 0.2, highlight_tint: 0.6, glint: 0.2, chroma: 1.1, lightness: 0.0, sparkle: 1.6 },
});

/** ml.render.RenderOptions' defaults. */
export const RENDER_DEFAULTS = Object.freeze({
  stretch: 0.08, smooth: true, min_orientation_confidence: 0.1, feather: null, supersample: 4, light: [-1.0, -1.0],
  opacity: 1.0,
});

/** "#C8102E", "c8102e" or "#c12" -> [r, g, b]. */
export function parseColor(value) {
  const match = /^#?([0-9a-fA-F]{6}|[0-9a-fA-F]{3})$/.exec(String(value).trim());
  if (!match) throw new Error(`colour must be #RRGGBB (hex), got ${value}`);
  let digits = match[1];
  if (digits.length === 3) digits = digits.split("").map((c) => c + c).join("");
  return [0, 2, 4].map((i) => parseInt(digits.slice(i, i + 2), 16));
}

// ------------------------------------------------------------------------------------------------
// Colour: sRGB <-> CIE Lab (D65), OpenCV's constants
// ------------------------------------------------------------------------------------------------

const XN = 0.950456, ZN = 1.088754;
const linear = (c) => (c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4);
const gamma = (c) => (c <= 0.0031308 ? 12.92 * c : 1.055 * c ** (1 / 2.4) - 0.055);
const labF = (t) => (t > 0.008856 ? Math.cbrt(t) : 7.787 * t + 16 / 116);

/** CIE L (0..100) of an sRGB colour in 0..1 (only L of the photo is used). */
export function lightness(r, g, b) {
  const y = 0.212671 * linear(r) + 0.715160 * linear(g) + 0.072169 * linear(b);
  return y > 0.008856 ? 116 * Math.cbrt(y) - 16 : 903.3 * y;
}

// The Y contribution of each byte value of each channel (the same arithmetic as lightness(), tabulated).
const Y_OF_BYTE = [0.212671, 0.715160, 0.072169].map((k) => Float64Array.from({ length: 256 }, (_, v) => k * linear(v / 255)));

function lightnessOfBytes(r, g, b) {
  const y = Y_OF_BYTE[0][r] + Y_OF_BYTE[1][g] + Y_OF_BYTE[2][b];
  return y > 0.008856 ? 116 * Math.cbrt(y) - 16 : 903.3 * y;
}

export function rgbToLab(r, g, b) {
  const R = linear(r), G = linear(g), B = linear(b);
  const x = (0.412453 * R + 0.357580 * G + 0.180423 * B) / XN;
  const y = 0.212671 * R + 0.715160 * G + 0.072169 * B;
  const z = (0.019334 * R + 0.119193 * G + 0.950227 * B) / ZN;
  const fx = labF(x), fy = labF(y), fz = labF(z);
  return [y > 0.008856 ? 116 * fy - 16 : 903.3 * y, 500 * (fx - fy), 200 * (fy - fz)];
}

/** Lab -> sRGB in 0..1 (clipped like OpenCV's float conversion). */
export function labToRgb(L, a, b) {
  let y, fy;
  if (L <= 7.9996248) { y = L / 903.3; fy = 7.787 * y + 16 / 116; } else { fy = (L + 16) / 116; y = fy * fy * fy; }
  const fx = a / 500 + fy, fz = fy - b / 200;
  const inv = (f) => (f <= 0.206893 ? (f - 16 / 116) / 7.787 : f * f * f);
  const x = inv(fx) * XN, z = inv(fz) * ZN;
  const clip = (v) => Math.min(1, Math.max(0, v));
  return [
    gamma(clip(3.240479 * x - 1.53715 * y - 0.498535 * z)),
    gamma(clip(-0.969256 * x + 1.875991 * y + 0.041556 * z)),
    gamma(clip(0.055648 * x - 0.204043 * y + 1.057311 * z)),
  ];
}

// ------------------------------------------------------------------------------------------------
// Rasters: pixel-centre polygon fill, exact distance transform, Gaussian blur
// ------------------------------------------------------------------------------------------------

/**
 * Pixels whose centre is inside the polygon (dataset/raster.py's rule: an exact scanline at pixel centres,
 * top-left rule on edges), the polygon's coordinates multiplied by `scale`. Uint8Array width*height.
 */
export function fillPolygon(points, scale, width, height) {
  const mask = new Uint8Array(width * height);
  const rows = Array.from({ length: height }, () => []);
  const n = points.length;
  for (let k = 0; k < n; k++) {
    const x0 = points[k][0] * scale, y0 = points[k][1] * scale;
    const x1 = points[(k + 1) % n][0] * scale, y1 = points[(k + 1) % n][1] * scale;
    const first = Math.min(height, Math.max(0, Math.ceil(Math.min(y0, y1) - 0.5)));
    const last = Math.min(height, Math.max(0, Math.ceil(Math.max(y0, y1) - 0.5)));
    for (let r = first; r < last; r++) {
      const x = x0 + (r + 0.5 - y0) * ((x1 - x0) / (y1 - y0));
      rows[r].push(Math.min(width, Math.max(0, Math.ceil(x - 0.5))));
    }
  }
  for (let r = 0; r < height; r++) {
    const cols = rows[r].sort((p, q) => p - q);
    for (let k = 0; k + 1 < cols.length; k += 2) mask.fill(1, r * width + cols[k], r * width + cols[k + 1]);
  }
  return mask;
}

/** 1-D squared distance transform (Felzenszwalb & Huttenlocher) of f (n values) into d. */
function edt1d(f, n, d, v, z) {
  let k = 0;
  v[0] = 0; z[0] = -Infinity; z[1] = Infinity;
  for (let q = 1; q < n; q++) {
    let s = ((f[q] + q * q) - (f[v[k]] + v[k] * v[k])) / (2 * q - 2 * v[k]);
    while (s <= z[k]) { k--; s = ((f[q] + q * q) - (f[v[k]] + v[k] * v[k])) / (2 * q - 2 * v[k]); }
    k++; v[k] = q; z[k] = s; z[k + 1] = Infinity;
  }
  k = 0;
  for (let q = 0; q < n; q++) { while (z[k + 1] < q) k++; d[q] = (q - v[k]) ** 2 + f[v[k]]; }
}

/**
 * Exact Euclidean distance of every pixel of `mask` to the nearest pixel outside it, the area beyond the
 * image counting as outside (cv2.distanceTransform(DIST_MASK_PRECISE) of the mask padded by one 0 pixel).
 */
export function distanceInside(mask, width, height) {
  const pw = width + 2, ph = height + 2;
  // Columns: squared distance to the nearest outside pixel of the column (two sweeps; the padding is outside).
  const grid = new Float64Array(pw * ph);
  const run = new Float64Array(ph);
  for (let x = 1; x <= width; x++) {
    let d = 0;
    for (let y = 1; y <= height; y++) {
      d = mask[(y - 1) * width + x - 1] ? d + 1 : 0;
      run[y] = d;
    }
    d = 0;
    for (let y = height; y >= 1; y--) {
      d = mask[(y - 1) * width + x - 1] ? d + 1 : 0;
      const m = Math.min(run[y], d);
      grid[y * pw + x] = m * m;
    }
  }
  // Rows: the lower envelope of parabolas (Felzenszwalb & Huttenlocher).
  const f = new Float64Array(pw), d = new Float64Array(pw), v = new Int32Array(pw), z = new Float64Array(pw + 1);
  const out = new Float32Array(width * height);
  for (let y = 1; y <= height; y++) {
    let any = false;
    for (let x = 0; x < pw; x++) { f[x] = grid[y * pw + x]; any ||= f[x] > 0; }
    if (!any) continue;
    edt1d(f, pw, d, v, z);
    for (let x = 1; x <= width; x++) out[(y - 1) * width + x - 1] = Math.sqrt(d[x]);
  }
  return out;
}

/** cv2.GaussianBlur(src, (0, 0), sigma, borderType=BORDER_REPLICATE) of a width*height Float32Array. */
export function gaussianBlur(src, width, height, sigma) {
  const k = gaussianKernel(sigma), r = (k.length - 1) / 2, taps = k.length;
  const tmp = new Float64Array(width * height), out = new Float32Array(width * height);
  const line = new Float64Array(Math.max(width, height) + 2 * r);  // one row or column, replicated at both ends
  for (let y = 0; y < height; y++) {
    const row = y * width;
    for (let i = 0; i < width + 2 * r; i++) line[i] = src[row + Math.min(width - 1, Math.max(0, i - r))];
    for (let x = 0; x < width; x++) {
      let acc = 0;
      for (let i = 0; i < taps; i++) acc += k[i] * line[x + i];
      tmp[row + x] = acc;
    }
  }
  for (let x = 0; x < width; x++) {
    for (let i = 0; i < height + 2 * r; i++) line[i] = tmp[Math.min(height - 1, Math.max(0, i - r)) * width + x];
    for (let y = 0; y < height; y++) {
      let acc = 0;
      for (let i = 0; i < taps; i++) acc += k[i] * line[y + i];
      out[y * width + x] = acc;
    }
  }
  return out;
}

/**
 * Normalised convolution: Gaussian average of `values` over `weights` (both blurred as cv2.GaussianBlur
 * with BORDER_REPLICATE, in one pass), computed where `need` is set (everywhere without it).
 */
function blurMasked(values, weights, width, height, sigma, need = null) {
  const k = gaussianKernel(sigma), r = (k.length - 1) / 2, taps = k.length, n = width * height;
  const num = new Float64Array(n), den = new Float64Array(n), out = new Float32Array(n);
  const size = Math.max(width, height) + 2 * r;
  const lineV = new Float64Array(size), lineW = new Float64Array(size);
  for (let y = 0; y < height; y++) {
    const row = y * width;
    for (let i = 0; i < width + 2 * r; i++) {
      const j = row + Math.min(width - 1, Math.max(0, i - r));
      lineW[i] = weights[j];
      lineV[i] = Math.fround(values[j] * weights[j]);  // float32 product, as NumPy's
    }
    for (let x = 0; x < width; x++) {
      let a = 0, b = 0;
      for (let i = 0; i < taps; i++) { a += k[i] * lineV[x + i]; b += k[i] * lineW[x + i]; }
      num[row + x] = a;
      den[row + x] = b;
    }
  }
  for (let x = 0; x < width; x++) {
    for (let i = 0; i < height + 2 * r; i++) {
      const j = Math.min(height - 1, Math.max(0, i - r)) * width + x;
      lineV[i] = num[j];
      lineW[i] = den[j];
    }
    for (let y = 0; y < height; y++) {
      if (need && !need[y * width + x]) continue;
      let a = 0, b = 0;
      for (let i = 0; i < taps; i++) { a += k[i] * lineV[y + i]; b += k[i] * lineW[y + i]; }
      out[y * width + x] = Math.fround(a) / Math.max(Math.fround(b), 1e-4);
    }
  }
  return out;
}

// ------------------------------------------------------------------------------------------------
// Geometry of one nail
// ------------------------------------------------------------------------------------------------

const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));
const smoothstep = (x) => { const c = clamp(x, 0, 1); return c * c * (3 - 2 * c); };

/** np.interp(x, xp, fp) for increasing xp. */
function interp(x, xp, fp) {
  if (x <= xp[0]) return fp[0];
  const last = xp.length - 1;
  if (x >= xp[last]) return fp[last];
  let lo = 0, hi = last;
  while (hi - lo > 1) { const mid = (lo + hi) >> 1; if (xp[mid] <= x) lo = mid; else hi = mid; }
  return xp[hi] === xp[lo] ? fp[hi] : fp[lo] + ((x - xp[lo]) / (xp[hi] - xp[lo])) * (fp[hi] - fp[lo]);
}

/** The ring resampled every ~0.5 px and smoothed by a circular Gaussian of ~1.5 px (Python's _smooth_polygon). */
export function smoothPolygon(pts) {
  const n0 = pts.length, cum = [0];
  for (let k = 0; k < n0; k++) {
    const p = pts[k], q = pts[(k + 1) % n0];
    cum.push(cum[k] + Math.hypot(q[0] - p[0], q[1] - p[1]));
  }
  const perimeter = cum[n0];
  if (perimeter < 8) return pts.map((p) => p.slice());
  const n = Math.trunc(Math.min(4000, Math.max(32, perimeter / 0.5)));
  const xs = pts.map((p) => p[0]).concat([pts[0][0]]), ys = pts.map((p) => p[1]).concat([pts[0][1]]);
  const ring = [];
  for (let k = 0; k < n; k++) { const at = (k * perimeter) / n; ring.push([interp(at, cum, xs), interp(at, cum, ys)]); }
  const sigma = (clamp(0.012 * perimeter, 0.6, 2.0) * n) / perimeter;
  const radius = Math.ceil(3 * sigma);
  const kernel = [];
  let sum = 0;
  for (let i = -radius; i <= radius; i++) { const v = Math.exp(-0.5 * (i / sigma) ** 2); kernel.push(v); sum += v; }
  const out = [];
  for (let k = 0; k < n; k++) {
    let x = 0, y = 0;
    for (let i = -radius; i <= radius; i++) {
      const p = ring[(((k + i) % n) + n) % n], w = kernel[i + radius] / sum;
      x += p[0] * w; y += p[1] * w;
    }
    out.push([x, y]);
  }
  return out;
}

function stretchPolygon(pts, u, amount) {
  const t = pts.map((p) => p[0] * u[0] + p[1] * u[1]);
  const t0 = Math.min(...t), t1 = Math.max(...t), length = Math.max(t1 - t0, 1e-6);
  return pts.map((p, k) => {
    const w = smoothstep(((t[k] - t0) / length) * 2 - 1) * amount * length;  // 0 on the base half, 1 at the tip
    return [p[0] + w * u[0], p[1] + w * u[1]];
  });
}

/** (area centroid, unit principal axis pointing up) of a polygon (Python's nail_axis). */
export function polygonAxis(pts) {
  let a = 0, cx = 0, cy = 0;
  const n = pts.length;
  for (let k = 0; k < n; k++) {
    const [x0, y0] = pts[k], [x1, y1] = pts[(k + 1) % n], c = x0 * y1 - x1 * y0;
    a += c; cx += (x0 + x1) * c; cy += (y0 + y1) * c;
  }
  if (Math.abs(a) < 1e-12) return [[pts[0][0], pts[0][1]], [0, -1]];
  cx /= 3 * a; cy /= 3 * a;
  let m20 = 0, m02 = 0, m11 = 0;  // second moments about the centroid (Green's theorem), sign of the area
  for (let k = 0; k < n; k++) {
    const x0 = pts[k][0] - cx, y0 = pts[k][1] - cy, x1 = pts[(k + 1) % n][0] - cx, y1 = pts[(k + 1) % n][1] - cy;
    const c = x0 * y1 - x1 * y0;
    m20 += c * (x0 * x0 + x0 * x1 + x1 * x1);
    m02 += c * (y0 * y0 + y0 * y1 + y1 * y1);
    m11 += c * (x0 * y1 + 2 * x0 * y0 + 2 * x1 * y1 + x1 * y0);
  }
  const sign = a > 0 ? 1 : -1;  // OpenCV's moments are those of the positively oriented ring
  const theta = 0.5 * Math.atan2(2 * sign * (m11 / 24), sign * (m20 / 12 - m02 / 12));
  let axis = [Math.cos(theta), Math.sin(theta)];
  if (axis[1] > 0 || (axis[1] === 0 && axis[0] < 0)) axis = [-axis[0], -axis[1]];
  return [[cx, cy], axis];
}

/** Per pixel of a crop: t (0 base .. 1 tip) and s (-1..1 across, relative to the local width): Python's _nail_coordinates. */
function nailCoordinates(mask, origin, u, t0, length, cw, ch) {
  const perp = [-u[1], u[0]], n = cw * ch, bins = 24;
  const t = new Float32Array(n), ss = new Float64Array(n), s = new Float32Array(n);
  const lo = new Float64Array(bins).fill(Infinity), hi = new Float64Array(bins).fill(-Infinity);
  let any = false;
  for (let y = 0; y < ch; y++) {
    for (let x = 0; x < cw; x++) {
      const i = y * cw + x, px = x + 0.5 + origin[0], py = y + 0.5 + origin[1];
      t[i] = (px * u[0] + py * u[1] - t0) / Math.max(length, 1e-6);
      ss[i] = px * perp[0] + py * perp[1];
      if (!mask[i]) continue;
      any = true;
      const b = clamp(Math.trunc(t[i] * bins), 0, bins - 1);
      lo[b] = Math.min(lo[b], ss[i]);
      hi[b] = Math.max(hi[b], ss[i]);
    }
  }
  if (!any) return { t, s };
  const okIdx = [], okLo = [], okHi = [];
  for (let b = 0; b < bins; b++) if (Number.isFinite(lo[b])) { okIdx.push(b); okLo.push(lo[b]); okHi.push(hi[b]); }
  const kernel = [1, 2, 3, 2, 1].map((v) => v / 9);
  const smooth = (values) => {
    const filled = Array.from({ length: bins }, (_, b) => interp(b, okIdx, values));
    return filled.map((_, b) => kernel.reduce((acc, w, j) => acc + w * filled[clamp(b + j - 2, 0, bins - 1)], 0));
  };
  const l = smooth(okLo), h = smooth(okHi);
  const idx = Array.from({ length: bins }, (_, b) => b);
  const centre = l.map((v, b) => (v + h[b]) / 2), half = l.map((v, b) => Math.max((h[b] - v) / 2, 0.5));
  for (let i = 0; i < n; i++) {
    const pos = clamp(t[i] * bins - 0.5, 0, bins - 1);
    s[i] = (ss[i] - interp(pos, idx, centre)) / interp(pos, idx, half);
  }
  return { t, s };
}

/** Seeded standard normals (mulberry32 + Box-Muller): the metallic flakes, deterministic per nail. */
function normals(count, seed) {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let r = Math.imul(state ^ (state >>> 15), 1 | state);
    r = (r + Math.imul(r ^ (r >>> 7), 61 | r)) ^ r;
    return ((r ^ (r >>> 14)) >>> 0) / 4294967296;
  };
  const out = new Float32Array(count);
  for (let i = 0; i < count; i += 2) {
    const r = Math.sqrt(-2 * Math.log(1 - next())), a = 2 * Math.PI * next();
    out[i] = r * Math.cos(a);
    if (i + 1 < count) out[i + 1] = r * Math.sin(a);
  }
  return out;
}

// ------------------------------------------------------------------------------------------------
// Nails in, whatever they come from
// ------------------------------------------------------------------------------------------------

/** {polygon, u, source, confidence} of a postprocess.js nail or a label ({polygon, base, tip}). */
function shapeOf(nail) {
  const pts = (nail.polygon || []).map((p) => [Number(p[0]), Number(p[1])]);
  if (pts.length < 3 || !pts.every((p) => Number.isFinite(p[0]) && Number.isFinite(p[1]))) return null;
  if (nail.direction && (nail.directionSource || nail.direction_source)) {
    const [ux, uy] = nail.direction, norm = Math.hypot(ux, uy);
    const source = nail.directionSource || nail.direction_source;
    return { pts, u: [ux / norm, uy / norm], source, confidence: nail.orientationConfidence ?? 1.0 };
  }
  const { base, tip } = nail;
  if (base && tip && Math.hypot(tip[0] - base[0], tip[1] - base[1]) > 1e-6) {
    const dx = tip[0] - base[0], dy = tip[1] - base[1], norm = Math.hypot(dx, dy);
    return { pts, u: [dx / norm, dy / norm], source: "landmarks", confidence: 1.0 };
  }
  return { pts, u: polygonAxis(pts)[1], source: "shape", confidence: 0.0 };
}

function paintNail(out, alphaTotal, image, width, height, shape, colourLab, finish, opt) {
  const { pts, u } = shape;
  const perp = [-u[1], u[0]];
  const tAll = pts.map((p) => p[0] * u[0] + p[1] * u[1]), sAll = pts.map((p) => p[0] * perp[0] + p[1] * perp[1]);
  const tMin = Math.min(...tAll), length = Math.max(...tAll) - tMin;
  const nailWidth = Math.max(...sAll) - Math.min(...sAll);
  if (length < 1 || nailWidth < 1) return null;
  const sure = shape.source !== "shape" && shape.confidence >= opt.min_orientation_confidence;
  const smooth = opt.smooth ? smoothPolygon(pts) : pts;
  const stretched = opt.stretch > 0 && sure ? stretchPolygon(smooth, u, opt.stretch) : smooth;
  const feather = opt.feather ?? clamp(0.04 * nailWidth, 0.75, 3.0);

  const xsS = stretched.map((p) => p[0]), ysS = stretched.map((p) => p[1]);
  const x0 = Math.max(0, Math.floor(Math.min(...xsS)) - 1), y0 = Math.max(0, Math.floor(Math.min(...ysS)) - 1);
  const x1 = Math.min(width, Math.ceil(Math.max(...xsS)) + 1), y1 = Math.min(height, Math.ceil(Math.max(...ysS)) + 1);
  if (x1 <= x0 || y1 <= y0) return null;
  const cw = x1 - x0, ch = y1 - y0, n = cw * ch;
  const S = Math.max(1, Math.trunc(opt.supersample));

  // Alpha: the stretched polygon at S x, feathered inside its outline, averaged to image pixels.
  const local = stretched.map((p) => [p[0] - x0, p[1] - y0]);
  const big = fillPolygon(local, S, S * cw, S * ch);
  const dist = distanceInside(big, S * cw, S * ch);
  const alpha = new Float32Array(n);
  const scale = S * Math.max(feather, 1e-3);
  let painted = false;
  for (let y = 0; y < ch; y++) {
    for (let x = 0; x < cw; x++) {
      let sum = 0, hit = 0;
      for (let j = 0; j < S; j++) {
        for (let i = 0; i < S; i++) {
          const k = (y * S + j) * S * cw + x * S + i;
          sum += smoothstep(dist[k] / scale);
          hit |= big[k];
        }
      }
      const a = hit ? (sum / (S * S)) * opt.opacity : 0;
      alpha[y * cw + x] = a;
      if (a > 0) painted = true;
    }
  }
  if (!painted) return null;

  // The photo's lightness inside the original (unstretched) nail.
  let orig = fillPolygon(pts.map((p) => [p[0] - x0, p[1] - y0]), 1, cw, ch);
  const weights = new Float32Array(n);
  let origCount = 0;
  for (let i = 0; i < n; i++) origCount += orig[i];
  if (origCount < 1) { orig = alpha.map((a) => (a > 0.5 ? 1 : 0)); origCount = orig.reduce((s, v) => s + v, 0); }
  for (let i = 0; i < n; i++) weights[i] = orig[i];
  const L = new Float32Array(n);
  for (let y = 0; y < ch; y++) {
    for (let x = 0; x < cw; x++) {
      const g = 4 * ((y + y0) * width + x + x0);
      L[y * cw + x] = lightnessOfBytes(image[g], image[g + 1], image[g + 2]);
    }
  }
  let medianL;
  if (origCount > 0) {
    const values = Float32Array.from(L.filter((_, i) => orig[i])).sort();
    const m = values.length >> 1;
    medianL = values.length % 2 ? values[m] : (values[m - 1] + values[m]) / 2;
  } else {
    medianL = L.reduce((s, v) => s + v, 0) / n;
  }
  medianL = Math.max(medianL, 5.0);
  const low = blurMasked(L, weights, cw, ch, Math.max(1.5, 0.18 * nailWidth), alpha.map((a) => (a > 0 ? 1 : 0)));
  const fineBase = blurMasked(L, weights, cw, ch, 1.0, orig);
  const rawDetail = new Float32Array(n);
  for (let i = 0; i < n; i++) rawDetail[i] = orig[i] ? L[i] - fineBase[i] : 0;
  const detail = gaussianBlur(rawDetail, cw, ch, 0.5);

  // Nail coordinates and the synthetic shading.
  const mask = alpha.map((a) => (a > 0 ? 1 : 0));
  const { t, s } = nailCoordinates(mask, [x0, y0], u, tMin, length * (1 + opt.stretch), cw, ch);
  const toward = perp[0] * opt.light[0] + perp[1] * opt.light[1] >= 0 ? 1 : -1;
  const [lc, ac, bc] = colourLab;
  const exposure = clamp((medianL / 72.0) ** 0.5, 0.55, 1.1);
  const targetL = 100 * (1 - finish.highlight_tint) + Math.min(100, lc + 45) * finish.highlight_tint;
  let flakes = null;
  if (finish.sparkle) {
    const seed = Number((BigInt(x0) * 73856093n ^ BigInt(y0) * 19349663n) % 4294967296n);
    const noise = gaussianBlur(normals(n, seed), cw, ch, 0.5);
    flakes = noise.map((v) => v * 1.4);
  }
  for (let i = 0; i < n; i++) {
    const a = alpha[i];
    if (!(a > 0)) continue;
    const relative = clamp(low[i] / medianL, 0.55, 1.5) ** finish.shading_gamma;
    const sc = clamp(s[i], -1.2, 1.2);
    const cylinder = 1 - finish.curvature * sc * sc;
    const gradient = 1 + finish.gradient * (0.5 - clamp(t[i], 0, 1)) * 2;
    const shade = relative * cylinder * gradient * exposure;
    let Lout = (lc + finish.lightness) * shade + finish.detail * detail[i];
    if (flakes) Lout += finish.sparkle * flakes[i];
    const along = smoothstep((t[i] - 0.10) / 0.25) * (1 - smoothstep((t[i] - 0.62) / 0.28));
    const across = Math.exp(-(((s[i] - toward * finish.highlight_offset) / Math.max(finish.highlight_width, 1e-3)) ** 2));
    let streak = finish.highlight * along * across;
    if (finish.glint && sure) {
      const gt = Math.exp(-(((t[i] - 0.2) / 0.07) ** 2) - ((s[i] - toward * 0.45) / 0.16) ** 2);
      streak = Math.max(streak, finish.glint * gt);
    }
    streak = clamp(streak, 0, 1);
    Lout += streak * (targetL - Lout);
    const chroma = finish.chroma * (1 - streak * (1 - finish.highlight_tint)) * clamp(shade, 0.75, 1.15);
    const rgb = labToRgb(clamp(Lout, 0, 100), ac * chroma, bc * chroma);
    const g = 4 * ((Math.trunc(i / cw) + y0) * width + (i % cw) + x0);
    for (let c = 0; c < 3; c++) out[g + c] = Math.min(255, Math.max(0, Math.round(out[g + c] * (1 - a) + rgb[c] * 255 * a)));
    const ga = (Math.trunc(i / cw) + y0) * width + (i % cw) + x0;
    if (a > alphaTotal[ga]) alphaTotal[ga] = a;
  }
  let iMin = 0, iMax = 0;
  tAll.forEach((v, k) => { if (v < tAll[iMin]) iMin = k; if (v > tAll[iMax]) iMax = k; });
  return { polygon: stretched, direction: u, axisSource: shape.source, bbox: [x0, y0, cw, ch], base: pts[iMin], tip: pts[iMax] };
}

// ------------------------------------------------------------------------------------------------
// Public API
// ------------------------------------------------------------------------------------------------

/**
 * Paint the nails of `image` ({data: RGBA bytes, width, height}, e.g. an ImageData) with `color` in
 * `finish`. `nails`: postprocess.js nails, or label dicts ({polygon, base, tip}) / {nails: [...]}.
 * `options`: RENDER_DEFAULTS fields. `into`: optional RGBA array to write (default: a copy of the image).
 * Returns {data (RGBA, Uint8ClampedArray), alpha (Float32Array, 0 where untouched), nails}.
 * Bytes outside the stretched nails are the image's own, untouched.
 */
export function render(image, nails, color = "#C8102E", finish = "glossy", options = {}, into = null) {
  const { width, height } = image;
  const opt = { ...RENDER_DEFAULTS, ...options };
  const look = typeof finish === "string" ? FINISHES[finish] : finish;
  if (!look) throw new Error(`finish must be one of ${Object.keys(FINISHES).join(", ")}, got ${finish}`);
  const [r, g, b] = parseColor(color);
  const colourLab = rgbToLab(r / 255, g / 255, b / 255);
  const list = Array.isArray(nails) ? nails : (nails && nails.nails) || [];
  const out = into || new Uint8ClampedArray(image.data);
  if (into) out.set(image.data);
  const alpha = new Float32Array(width * height);
  const info = [];
  for (const nail of list) {
    const shape = shapeOf(nail);
    if (!shape) continue;
    const painted = paintNail(out, alpha, image.data, width, height, shape, colourLab, look, opt);
    if (painted) info.push(painted);
  }
  return { data: out, alpha, nails: info };
}
