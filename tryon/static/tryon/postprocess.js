// Model predictions -> one instance per nail: the JavaScript port of ml/postprocess.py (the try-on page's
// in-browser path; docs/rendering.md). Pure functions on typed arrays, no DOM: tested against the Python
// module in Node (tests/test_tryon_postprocess_js.py) and timed in Chromium (bench/tryon_browser.py).
//
//   import { postprocess } from "./postprocess.js";
//   const nails = postprocess({ width, height, fgProb, classProb, field, image }, config);
//
// Inputs, all at the frame's own resolution, row-major, channels last (TF.js NHWC without the batch):
//   fgProb     Float32Array H*W      nail probability
//   classProb  Float32Array H*W*10   finger-class probabilities (channel k-1 = class k), or
//   classMap   Uint8Array H*W        finger class map (0 background, 1..10), or neither (binary-only model)
//   field      Float32Array H*W*2    direction field (x right, y down), or null (field head not trained)
//   image      {data, width, height} the photo at the same W x H (ImageData: RGBA bytes, or RGB bytes), or
//              null: without a field, nails are oriented from it (Python's `image=`, orient_from_image)
//
// The steps and every parameter are Python's (`PostprocessConfig`, whose values the page gets from the
// server: GET /api/tryon/config -> postprocess). Where the port differs:
// * Connected components: Python calls OpenCV's block-based decision-tree labeling (Grana et al., CCL_GRANA
//   / CCL_BBDT); this is a two-pass union-find labeling with the same connectivity. Connected components
//   are unique, so the pixel sets are identical; only the numbering of the components may differ (Grana
//   numbers them in 2x2-block scan order, this in pixel scan order), which changes nothing but the order of
//   exact ties.
// * The nearest part (class split) and the gap between blobs (merge) use the same 5x5 chamfer distance
//   transform as OpenCV's (cv2.distanceTransform, DIST_L2, mask 5: 1, 1.4, 2.1969 in 16.16 fixed point).
// * Polygon: Python traces the contour through the boundary pixel centres (cv2.findContours) and grows it
//   by half a pixel (shapely mitre buffer); this traces the pixel outline itself (crack following, with
//   8-connected diagonal joints opened to the same half-pixel neck). Both outline the blob's pixels; they
//   differ only where Python's buffer cuts a diagonal staircase (< 0.36 px, below the 1 px tolerance).
//   Then Douglas-Peucker at `polygon_tolerance`, raised x1.5 until at most `max_vertices` vertices remain
//   and the ring is simple, as in Python (shapely's topology-preserving simplify is Douglas-Peucker plus a
//   check that no segment crosses another; the check here is the simplicity test that follows).
// * Orientation from the photo (`orient_from_image` -> orientFromImage, used as Python uses it: no field,
//   `image` given, every blob's mask left out of the skin samples, kept when its confidence > 0, source
//   "image", `orientationConfidence` rounded to 4 places; without `image` the axis points up, "shape").
//   Lab: the exact sRGB gamma and OpenCV's D65 / Lab constants (OpenCV's float path interpolates the gamma
//   from a table: L, a, b up to ~0.3 apart); the Gaussian kernel, its size rule for float images
//   (round(8 sigma + 1) | 1) and Sobel 3x3, both with BORDER_REFLECT_101, as OpenCV's; cv2.remap's
//   bilinear sampling at the exact position (OpenCV 5 interpolates float32 sources exactly, float64 ones,
//   the edge profile's, at 1/32 px: < 1 % apart). Confidences within ~0.01 of Python's. One difference:
//   for nails of >= 40 px the profile step is length / 40, so the 2nd sample sits exactly on the outline
//   window's 0.05-length bound (the 10th and 32nd on the others); Python's float test takes or drops it by
//   the last bit of the rounding, this takes it (exact arithmetic). Where Python drops it the confidence
//   can differ by ~0.1 (the tip end stayed the same in the tests).

export const NUM_FINGERS = 10;

/** ml.postprocess.PostprocessConfig's defaults (same names; the page passes the server's own values). */
export const DEFAULTS = Object.freeze({
  threshold: 0.5,
  min_area: 40,
  min_area_fraction: 2e-5,
  split_fraction: 0.2,
  merge: true,
  merge_angle: 25.0,
  merge_axis_angle: 40.0,
  merge_gap: 0.3,
  merge_gap_min_px: 3.0,
  polygon_tolerance: 1.0,
  max_vertices: 64,
  connectivity: 8,
  algorithm: "grana",
});

/** Python's round(): halves to even. */
export function roundHalfEven(v) {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

// ------------------------------------------------------------------------------------------------
// Connected components
// ------------------------------------------------------------------------------------------------

/**
 * Connected components of a binary image (non-zero = object), 4- or 8-connectivity, two-pass union-find.
 * Returns {count, labels: Int32Array (0 background, 1..count in scan order of each component's first
 * pixel), x0, y0, x1, y1 (exclusive), area: Int32Array indexed by label}.
 */
export function connectedComponents(binary, width, height, connectivity = 8) {
  const labels = new Int32Array(width * height);
  const parent = new Int32Array(height * Math.ceil(width / 2) + 2);
  let next = 1;
  const find = (a) => {
    let root = a;
    while (parent[root] !== root) root = parent[root];
    while (parent[a] !== root) { const up = parent[a]; parent[a] = root; a = up; }
    return root;
  };
  const union = (a, b) => {
    const ra = find(a), rb = find(b);
    if (ra < rb) parent[rb] = ra; else if (rb < ra) parent[ra] = rb;
    return ra < rb ? ra : rb;
  };
  const eight = connectivity === 8;
  for (let y = 0; y < height; y++) {
    const row = y * width;
    for (let x = 0; x < width; x++) {
      const i = row + x;
      if (!binary[i]) continue;
      // Decision tree over the scanned neighbours: pixels adjacent to each other are already one component.
      const w = x > 0 ? labels[i - 1] : 0;
      let l = 0;
      if (y > 0) {
        const up = i - width;
        const n = labels[up];
        const nw = eight && x > 0 ? labels[up - 1] : 0, ne = eight && x + 1 < width ? labels[up + 1] : 0;
        if (n) l = w && !eight ? union(w, n) : n;               // 8: W touches N diagonally, already joined
        else if (w) l = ne ? union(w, ne) : w;                   // W and NW are one; NE is not adjacent to W
        else if (nw) l = ne ? union(nw, ne) : nw;
        else l = ne;
      } else {
        l = w;
      }
      if (!l) { l = next++; parent[l] = l; }
      labels[i] = l;
    }
  }
  const final = new Int32Array(next);
  let count = 0;
  for (let k = 1; k < next; k++) final[k] = parent[k] === k ? ++count : final[find(k)];
  const x0 = new Int32Array(count + 1).fill(width), y0 = new Int32Array(count + 1).fill(height);
  const x1 = new Int32Array(count + 1), y1 = new Int32Array(count + 1), area = new Int32Array(count + 1);
  for (let y = 0; y < height; y++) {
    for (let x = 0, i = y * width; x < width; x++, i++) {
      if (!labels[i]) continue;
      const l = (labels[i] = final[labels[i]]);
      if (x < x0[l]) x0[l] = x;
      if (x >= x1[l]) x1[l] = x + 1;
      if (y < y0[l]) y0[l] = y;
      y1[l] = y + 1;
      area[l]++;
    }
  }
  return { count, labels, x0, y0, x1, y1, area };
}

// ------------------------------------------------------------------------------------------------
// OpenCV's 5x5 chamfer distance transform (DIST_L2, mask 5), with or without nearest labels
// ------------------------------------------------------------------------------------------------

const HV_DIST = Math.round(1.0 * 65536);
const DIAG_DIST = Math.round(Math.fround(1.4) * 65536);
const LONG_DIST = Math.round(Math.fround(2.1969) * 65536);
const DIST_MAX = 4294967295 - LONG_DIST;
const SCALE = 1 / 65536;
// forward neighbours (dy, dx, cost) in OpenCV's order, then the backward ones
const FORWARD = [[-2, -1, LONG_DIST], [-2, 1, LONG_DIST], [-1, -2, LONG_DIST], [-1, -1, DIAG_DIST], [-1, 0, HV_DIST],
  [-1, 1, DIAG_DIST], [-1, 2, LONG_DIST], [0, -1, HV_DIST]];
const BACKWARD = [[2, 1, LONG_DIST], [2, -1, LONG_DIST], [1, 2, LONG_DIST], [1, 1, DIAG_DIST], [1, 0, HV_DIST],
  [1, -1, DIAG_DIST], [1, -2, LONG_DIST], [0, 1, HV_DIST]];

/**
 * Distance of every pixel to the nearest zero pixel of `src` (cv2.distanceTransform(src, DIST_L2, 5)),
 * Float32Array. With `labels` (Int32Array: the label of each zero pixel, 0 elsewhere) also propagates the
 * nearest zero pixel's label into every other pixel, in place (cv2.distanceTransformWithLabels).
 */
export function chamferDistance(src, width, height, labels = null) {
  const tmp = new Float64Array(width * height);
  const at = (y, x) => (y < 0 || y >= height || x < 0 || x >= width ? DIST_MAX : tmp[y * width + x]);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = y * width + x;
      if (!src[i]) { tmp[i] = 0; continue; }
      let t0 = labels ? DIST_MAX : Infinity, l0 = 0;
      for (const [dy, dx, cost] of FORWARD) {
        const t = at(y + dy, x + dx) + cost;
        if (t0 > t) { t0 = t; if (labels) l0 = labels[(y + dy) * width + x + dx]; }
      }
      tmp[i] = labels ? t0 : Math.min(t0, DIST_MAX);
      if (labels) labels[i] = l0;
    }
  }
  const dist = new Float32Array(width * height);
  for (let y = height - 1; y >= 0; y--) {
    for (let x = width - 1; x >= 0; x--) {
      const i = y * width + x;
      let t0 = tmp[i], l0 = labels ? labels[i] : 0;
      if (t0 > HV_DIST) {
        for (const [dy, dx, cost] of BACKWARD) {
          const t = at(y + dy, x + dx) + cost;
          if (t0 > t) { t0 = t; if (labels) l0 = labels[(y + dy) * width + x + dx]; }
        }
        tmp[i] = t0;
        if (labels) labels[i] = l0;
      }
      dist[i] = t0 * SCALE;
    }
  }
  return dist;
}

// ------------------------------------------------------------------------------------------------
// Blobs
// ------------------------------------------------------------------------------------------------

function makeBlob(x, y, w, h, mask) {
  let area = 0;
  for (let i = 0; i < mask.length; i++) area += mask[i];
  return { x, y, w, h, mask, area, finger: null, votes: null, u: null, source: "shape", centre: null, mergedFrom: 1 };
}

/** The blob of the pixels of `mask` (w x h at (x, y)) cropped to their bounding box; null when empty. */
function tightBlob(x, y, w, h, mask) {
  let bx0 = w, by0 = h, bx1 = -1, by1 = -1;
  for (let j = 0; j < h; j++) {
    for (let i = 0; i < w; i++) {
      if (!mask[j * w + i]) continue;
      if (i < bx0) bx0 = i;
      if (i > bx1) bx1 = i;
      if (j < by0) by0 = j;
      by1 = j;
    }
  }
  if (bx1 < 0) return null;
  const bw = bx1 - bx0 + 1, bh = by1 - by0 + 1;
  const crop = new Uint8Array(bw * bh);
  for (let j = 0; j < bh; j++) for (let i = 0; i < bw; i++) crop[j * bw + i] = mask[(j + by0) * w + i + bx0];
  return makeBlob(x + bx0, y + by0, bw, bh, crop);
}

/** Split one fg component into the components of its major classes; other pixels -> nearest part. */
function splitByClass(comp, w, h, x, y, frame, votes, cfg, minPart) {
  let total = 0;
  for (let k = 1; k <= NUM_FINGERS; k++) total += votes[k];
  const major = [];
  for (let k = 1; k <= NUM_FINGERS; k++) if (total > 0 && votes[k] / total >= cfg.split_fraction) major.push(k);
  if (major.length < 2) return [comp];
  const seeds = new Int32Array(w * h);
  const binary = new Uint8Array(w * h);
  let parts = 0;
  for (const k of major) {
    for (let j = 0; j < h; j++) {
      for (let i = 0; i < w; i++) binary[j * w + i] = comp[j * w + i] && frame.cls[(y + j) * frame.width + x + i] === k ? 1 : 0;
    }
    const cc = connectedComponents(binary, w, h, cfg.connectivity);
    const ids = new Int32Array(cc.count + 1);
    for (let l = 1; l <= cc.count; l++) if (cc.area[l] >= minPart) ids[l] = ++parts;
    for (let i = 0; i < w * h; i++) if (cc.labels[i] && ids[cc.labels[i]]) seeds[i] = ids[cc.labels[i]];
  }
  if (parts < 2) return [comp];
  const notSeed = new Uint8Array(w * h);
  for (let i = 0; i < w * h; i++) notSeed[i] = seeds[i] ? 0 : 1;
  const owner = Int32Array.from(seeds);
  chamferDistance(notSeed, w, h, owner);  // nearest seed's part for every other pixel
  const out = [];
  for (let p = 1; p <= parts; p++) {
    const part = new Uint8Array(w * h);
    for (let i = 0; i < w * h; i++) part[i] = comp[i] && owner[i] === p ? 1 : 0;
    out.push(part);
  }
  return out;
}

/** Finger vote of a blob: the class argmax weighted by the fg probability. */
function vote(blob, frame) {
  if (!frame.cls) { blob.finger = null; blob.votes = null; return; }
  const votes = new Float64Array(NUM_FINGERS + 1);
  for (let j = 0; j < blob.h; j++) {
    for (let i = 0; i < blob.w; i++) {
      if (!blob.mask[j * blob.w + i]) continue;
      const g = (blob.y + j) * frame.width + blob.x + i;
      votes[frame.cls[g]] += frame.prob[g];
    }
  }
  votes[0] = 0;
  let best = 0, sum = 0;
  for (let k = 0; k <= NUM_FINGERS; k++) { sum += votes[k]; if (votes[k] > votes[best]) best = k; }
  blob.votes = votes;
  blob.finger = sum > 0 ? best : null;
}

/** Weighted centroid and direction: the fg-weighted mean of the field, or the principal axis pointing up. */
function direction(blob, frame) {
  const { w, h, mask } = blob;
  let sw = 0, sx = 0, sy = 0;
  for (let j = 0; j < h; j++) {
    for (let i = 0; i < w; i++) {
      if (!mask[j * w + i]) continue;
      const wt = frame.prob[(blob.y + j) * frame.width + blob.x + i] + 1e-6;
      sw += wt; sx += wt * i; sy += wt * j;
    }
  }
  const cx = sx / sw + 0.5, cy = sy / sw + 0.5;
  let cxx = 0, cxy = 0, cyy = 0;
  for (let j = 0; j < h; j++) {
    for (let i = 0; i < w; i++) {
      if (!mask[j * w + i]) continue;
      const wt = frame.prob[(blob.y + j) * frame.width + blob.x + i] + 1e-6;
      const dx = i + 0.5 - cx, dy = j + 0.5 - cy;
      cxx += wt * dx * dx; cxy += wt * dx * dy; cyy += wt * dy * dy;
    }
  }
  cxx /= sw; cxy /= sw; cyy /= sw;
  blob.centre = [cx + blob.x, cy + blob.y];
  blob.u = principalAxis(cxx, cxy, cyy);
  blob.source = "shape";
  if (frame.field) {
    let vx = 0, vy = 0, wsum = 0;
    for (let j = 0; j < h; j++) {
      for (let i = 0; i < w; i++) {
        if (!mask[j * w + i]) continue;
        const g = (blob.y + j) * frame.width + blob.x + i;
        const p = frame.prob[g];
        vx += frame.field[2 * g] * p; vy += frame.field[2 * g + 1] * p; wsum += p;
      }
    }
    const norm = Math.hypot(vx, vy);
    if (norm > 1e-6 * Math.max(1.0, wsum)) { blob.u = [vx / norm, vy / norm]; blob.source = "field"; }
  }
}

/** Unit eigenvector of the larger eigenvalue of [[a, b], [b, c]], pointing up in the image. */
function principalAxis(a, b, c) {
  let v;
  if (b === 0) v = a >= c ? [1, 0] : [0, 1];
  else {
    const lambda = (a + c) / 2 + Math.sqrt(((a - c) / 2) ** 2 + b * b);
    v = a >= c ? [lambda - c, b] : [b, lambda - a];
  }
  const n = Math.hypot(v[0], v[1]);
  v = [v[0] / n, v[1] / n];
  if (v[1] > 0 || (v[1] === 0 && v[0] < 0)) v = [-v[0], -v[1]];
  return v;
}

function measure(blob, frame) {
  vote(blob, frame);
  direction(blob, frame);
}

function union(a, b) {
  const x0 = Math.min(a.x, b.x), y0 = Math.min(a.y, b.y);
  const x1 = Math.max(a.x + a.w, b.x + b.w), y1 = Math.max(a.y + a.h, b.y + b.h);
  const w = x1 - x0, h = y1 - y0, mask = new Uint8Array(w * h);
  for (const blob of [a, b]) {
    for (let j = 0; j < blob.h; j++) {
      for (let i = 0; i < blob.w; i++) if (blob.mask[j * blob.w + i]) mask[(blob.y - y0 + j) * w + blob.x - x0 + i] = 1;
    }
  }
  const joint = makeBlob(x0, y0, w, h, mask);
  joint.mergedFrom = a.mergedFrom + b.mergedFrom;
  return joint;
}

/** Smallest distance between the pixels of two blobs (Infinity beyond `limit`), as Python's _gap. */
function gap(a, b, limit) {
  const dx = Math.max(0, b.x - (a.x + a.w), a.x - (b.x + b.w));
  const dy = Math.max(0, b.y - (a.y + a.h), a.y - (b.y + b.h));
  if (Math.hypot(dx, dy) > limit + 1) return Infinity;
  const x0 = Math.min(a.x, b.x), y0 = Math.min(a.y, b.y);
  const w = Math.max(a.x + a.w, b.x + b.w) - x0, h = Math.max(a.y + a.h, b.y + b.h) - y0;
  const notA = new Uint8Array(w * h).fill(1);
  for (let j = 0; j < a.h; j++) {
    for (let i = 0; i < a.w; i++) if (a.mask[j * a.w + i]) notA[(a.y - y0 + j) * w + a.x - x0 + i] = 0;
  }
  const dist = chamferDistance(notA, w, h);
  let best = Infinity;
  for (let j = 0; j < b.h; j++) {
    for (let i = 0; i < b.w; i++) {
      if (b.mask[j * b.w + i]) best = Math.min(best, dist[(b.y - y0 + j) * w + b.x - x0 + i]);
    }
  }
  return best === Infinity ? Infinity : best - 1.0;
}

function angleBetween(u, v, axial) {
  let c = Math.min(1, Math.max(-1, u[0] * v[0] + u[1] * v[1]));
  if (axial) c = Math.abs(c);
  return (Math.acos(c) * 180) / Math.PI;
}

function shouldMerge(a, b, cfg) {
  if (a.finger !== b.finger) return false;
  const axial = a.source !== "field" || b.source !== "field";  // a shape axis has no sign
  if (angleBetween(a.u, b.u, axial) > cfg.merge_angle) return false;
  const sign = a.u[0] * b.u[0] + a.u[1] * b.u[1] >= 0 ? 1 : -1;
  let mean = [a.u[0] + sign * b.u[0], a.u[1] + sign * b.u[1]];
  const mn = Math.hypot(mean[0], mean[1]);
  mean = [mean[0] / mn, mean[1] / mn];
  const off = [b.centre[0] - a.centre[0], b.centre[1] - a.centre[1]];
  const dist = Math.hypot(off[0], off[1]);
  if (dist > 0 && angleBetween([off[0] / dist, off[1] / dist], mean, true) > cfg.merge_axis_angle) return false;
  const limit = Math.max(cfg.merge_gap_min_px, cfg.merge_gap * Math.sqrt(Math.min(a.area, b.area)));
  return gap(a, b, limit) <= limit;
}

/** cv2.getStructuringElement(MORPH_ELLIPSE, (2r+1, 2r+1)) as [j1, j2) column runs per row. */
function ellipseRuns(r) {
  const runs = [];
  for (let i = 0; i <= 2 * r; i++) {
    const dy = i - r;
    const dx = roundHalfEven(r * Math.sqrt((r * r - dy * dy) * (1 / (r * r))));
    runs.push([Math.max(r - dx, 0), Math.min(r + dx + 1, 2 * r + 1)]);
  }
  return runs;
}

/** Morphological closing with an ellipse of radius r (the mask padded by r zeros, as Python does). */
function closeMask(mask, w, h, r) {
  const runs = ellipseRuns(r);
  const pw = w + 2 * r, ph = h + 2 * r;
  const dilated = new Uint8Array(pw * ph);
  for (let j = 0; j < h; j++) {
    for (let i = 0; i < w; i++) {
      if (!mask[j * w + i]) continue;
      const cy = j + r, cx = i + r;  // centre in the padded image; stamp the (symmetric) kernel
      for (let k = 0; k <= 2 * r; k++) {
        const yy = cy + k - r;
        if (yy < 0 || yy >= ph) continue;
        for (let c = runs[k][0]; c < runs[k][1]; c++) {
          const xx = cx + c - r;
          if (xx >= 0 && xx < pw) dilated[yy * pw + xx] = 1;
        }
      }
    }
  }
  const out = new Uint8Array(w * h);
  for (let j = 0; j < h; j++) {
    for (let i = 0; i < w; i++) {
      const cy = j + r, cx = i + r;
      let keep = 1;
      for (let k = 0; k <= 2 * r && keep; k++) {
        const yy = cy + k - r;
        if (yy < 0 || yy >= ph) continue;  // outside the padded image counts as set (OpenCV's erode border)
        for (let c = runs[k][0]; c < runs[k][1]; c++) {
          const xx = cx + c - r;
          if (xx >= 0 && xx < pw && !dilated[yy * pw + xx]) { keep = 0; break; }
        }
      }
      out[j * w + i] = keep | mask[j * w + i];
    }
  }
  return out;
}

// ------------------------------------------------------------------------------------------------
// Polygon and landmarks
// ------------------------------------------------------------------------------------------------

const PINCH = 0.5 / Math.SQRT2;
const HEADINGS = [[1, 0], [0, 1], [-1, 0], [0, -1]];  // east, south, west, north (y down); right turn = +1

/**
 * Outer outline of the largest 8-connected component of `mask` (w x h), along the pixel edges, in crop
 * coordinates; corners only. Diagonal joints are opened by half a pixel like Python's buffered contour.
 */
export function pixelOutline(mask, w, h) {
  const cc = connectedComponents(mask, w, h, 8);
  if (!cc.count) return [];
  let best = 1;
  for (let l = 2; l <= cc.count; l++) if (cc.area[l] > cc.area[best]) best = l;
  const inside = (px, py) => px >= 0 && py >= 0 && px < w && py < h && cc.labels[py * w + px] === best;
  let start = -1;
  for (let i = 0; i < w * h && start < 0; i++) if (cc.labels[i] === best) start = i;
  const sx = start % w, sy = (start - sx) / w;
  const ring = [[sx, sy]];
  let vx = sx, vy = sy, d = 0;
  for (let guard = 0; guard < 4 * (w + 1) * (h + 1) + 8; guard++) {
    const [hx, hy] = HEADINGS[d];
    vx += hx; vy += hy;
    const rx = -hy, ry = hx;  // right of the heading
    const al = inside(Math.floor(vx + 0.5 * hx - 0.5 * rx), Math.floor(vy + 0.5 * hy - 0.5 * ry));
    const ar = inside(Math.floor(vx + 0.5 * hx + 0.5 * rx), Math.floor(vy + 0.5 * hy + 0.5 * ry));
    const nd = al ? (d + 3) % 4 : ar ? d : (d + 1) % 4;
    if (vx === sx && vy === sy && nd === 0) break;
    if (nd !== d) ring.push(al && !ar ? [vx - (hx + rx) * PINCH, vy - (hy + ry) * PINCH] : [vx, vy]);
    d = nd;
  }
  return ring;
}

function segmentDistance(p, a, b) {
  const dx = b[0] - a[0], dy = b[1] - a[1];
  const len2 = dx * dx + dy * dy;
  if (len2 === 0) return Math.hypot(p[0] - a[0], p[1] - a[1]);
  const t = Math.max(0, Math.min(1, ((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / len2));
  return Math.hypot(p[0] - a[0] - t * dx, p[1] - a[1] - t * dy);
}

/** Douglas-Peucker on a closed ring as GEOS (shapely's simplify) does it: from its first point, distances to
 * segments, then the first point itself removed when it is within the tolerance. */
export function simplifyRing(ring, tolerance) {
  const n = ring.length;
  if (n < 4) return ring.slice();
  const at = (k) => ring[k % n];
  const keep = new Uint8Array(n + 1);
  keep[0] = keep[n] = 1;
  const stack = [[0, n]];
  while (stack.length) {
    const [i, j] = stack.pop();
    if (j - i < 2) continue;
    let far = -1, worst = -1;
    for (let k = i + 1; k < j; k++) {
      const dd = segmentDistance(at(k), at(i), at(j));
      if (dd > worst) { worst = dd; far = k; }
    }
    if (worst > tolerance) { keep[far] = 1; stack.push([i, far], [far, j]); }
  }
  const out = [];
  for (let k = 0; k < n; k++) if (keep[k]) out.push(ring[k]);
  // GEOS >= 3.12 then drops the ring's start point too when it lies within the tolerance of its neighbours' chord
  if (out.length > 3 && segmentDistance(out[0], out[out.length - 1], out[1]) <= tolerance) out.shift();
  return out;
}

function ringArea(ring) {
  let s = 0;
  for (let k = 0; k < ring.length; k++) {
    const [x0, y0] = ring[k], [x1, y1] = ring[(k + 1) % ring.length];
    s += x0 * y1 - x1 * y0;
  }
  return s / 2;
}

function orient(a, b, c) {
  const v = (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0]);
  return v > 0 ? 1 : v < 0 ? -1 : 0;
}

function onSegment(a, b, p) {
  return Math.min(a[0], b[0]) <= p[0] && p[0] <= Math.max(a[0], b[0]) && Math.min(a[1], b[1]) <= p[1] && p[1] <= Math.max(a[1], b[1]);
}

function segmentsTouch(a, b, c, d) {
  const o1 = orient(a, b, c), o2 = orient(a, b, d), o3 = orient(c, d, a), o4 = orient(c, d, b);
  if (o1 !== o2 && o3 !== o4) return true;
  return (o1 === 0 && onSegment(a, b, c)) || (o2 === 0 && onSegment(a, b, d))
    || (o3 === 0 && onSegment(c, d, a)) || (o4 === 0 && onSegment(c, d, b));
}

/** A closed ring is simple: distinct vertices, no two non-adjacent edges touching, adjacent ones not folding back. */
export function isSimpleRing(ring) {
  const n = ring.length;
  if (n < 3) return false;
  const seen = new Set(ring.map((p) => `${p[0]},${p[1]}`));
  if (seen.size !== n) return false;
  for (let i = 0; i < n; i++) {
    const a = ring[i], b = ring[(i + 1) % n];
    for (let j = i + 1; j < n; j++) {
      const c = ring[j], d = ring[(j + 1) % n];
      if (j === i + 1 || (i === 0 && j === n - 1)) {  // adjacent edges share a vertex: they must not fold back
        const [p, shared, q] = j === i + 1 ? [a, b, d] : [b, a, c];
        const dot = (p[0] - shared[0]) * (q[0] - shared[0]) + (p[1] - shared[1]) * (q[1] - shared[1]);
        if (orient(p, shared, q) === 0 && dot > 0) return false;
        continue;
      }
      if (segmentsTouch(a, b, c, d)) return false;
    }
  }
  return true;
}

function convexHull(points) {
  const pts = points.slice().sort((p, q) => p[0] - q[0] || p[1] - q[1]);
  const cross = (o, a, b) => (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]);
  const lower = [], upper = [];
  for (const p of pts) {
    while (lower.length >= 2 && cross(lower[lower.length - 2], lower[lower.length - 1], p) <= 0) lower.pop();
    lower.push(p);
  }
  for (let k = pts.length - 1; k >= 0; k--) {
    const p = pts[k];
    while (upper.length >= 2 && cross(upper[upper.length - 2], upper[upper.length - 1], p) <= 0) upper.pop();
    upper.push(p);
  }
  return lower.slice(0, -1).concat(upper.slice(0, -1));
}

const round2 = (v) => Math.round(v * 100) / 100;

/**
 * The nail's polygon in image px: the pixel outline of the blob's largest component, simplified by
 * Douglas-Peucker to `tolerance`, raised x1.5 until at most `maxVertices` vertices remain and the ring is
 * simple (Python's _polygon_of). Null for an empty mask.
 */
export function polygonOf(mask, w, h, offsetX, offsetY, tolerance, maxVertices) {
  const outline = pixelOutline(mask, w, h).map(([x, y]) => [x + offsetX, y + offsetY]);
  if (outline.length < 3) return null;
  let tol = tolerance;
  for (let attempt = 0; attempt < 40; attempt++) {
    const simple = simplifyRing(outline, tol).map(([x, y]) => [round2(x), round2(y)]);
    if (simple.length >= 3 && simple.length <= maxVertices && Math.abs(ringArea(simple)) > 0 && isSimpleRing(simple)) {
      return simple;
    }
    tol *= 1.5;
  }
  const hull = convexHull(outline);
  const simple = simplifyRing(hull, tol);
  return (simple.length >= 3 ? simple : hull.slice(0, 3)).map(([x, y]) => [round2(x), round2(y)]);
}

/** Where the axis through `centre` along `u` leaves the polygon: [base, tip] (Python's _landmarks). */
export function landmarks(polygon, centre, u) {
  const ts = [];
  const n = polygon.length;
  const side = (p) => u[0] * (p[1] - centre[1]) - u[1] * (p[0] - centre[0]);
  const along = (p) => (p[0] - centre[0]) * u[0] + (p[1] - centre[1]) * u[1];
  for (let k = 0; k < n; k++) {
    const p = polygon[k], q = polygon[(k + 1) % n];
    const sp = side(p), sq = side(q);
    if (sp === 0 && sq === 0) { ts.push(along(p), along(q)); continue; }
    if (sp === 0) { ts.push(along(p)); continue; }
    if ((sp < 0 && sq > 0) || (sp > 0 && sq < 0)) ts.push(along(p) + (along(q) - along(p)) * (sp / (sp - sq)));
  }
  let values = ts;
  if (new Set(ts.map((t) => t.toFixed(9))).size < 2) values = polygon.map(along);  // the axis misses: the extreme vertices
  const tMin = Math.min(...values), tMax = Math.max(...values);
  return [[centre[0] + u[0] * tMin, centre[1] + u[1] * tMin], [centre[0] + u[0] * tMax, centre[1] + u[1] * tMax]];
}

// ------------------------------------------------------------------------------------------------
// Orientation from the photo (no direction field): Python's orient_from_image
// ------------------------------------------------------------------------------------------------

const XN = 0.950456, ZN = 1.088754;  // D65 white, OpenCV's constants
const srgbLinear = (c) => (c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4);
const labF = (t) => (t > 0.008856 ? Math.cbrt(t) : 7.787 * t + 16 / 116);
const LINEAR_OF_BYTE = Float64Array.from({ length: 256 }, (_, v) => srgbLinear(v / 255));

/** OpenCV's borderInterpolate for BORDER_REFLECT_101 (gfedcb|abcdefgh|gfedcba). */
function reflect101(i, n) {
  if (n === 1) return 0;
  while (i < 0 || i >= n) i = i < 0 ? -i : 2 * n - 2 - i;
  return i;
}

/** Separable convolution of a w*h image with row kernel `kx` and column kernel `ky`, BORDER_REFLECT_101. */
function sepFilter(src, w, h, kx, ky) {
  const rx = (kx.length - 1) / 2, ry = (ky.length - 1) / 2;
  const tmp = new Float64Array(w * h), out = new Float64Array(w * h);
  const ix = new Int32Array(w + 2 * rx), iy = new Int32Array(h + 2 * ry);
  for (let i = 0; i < ix.length; i++) ix[i] = reflect101(i - rx, w);
  for (let i = 0; i < iy.length; i++) iy[i] = reflect101(i - ry, h);
  for (let y = 0; y < h; y++) {
    const row = y * w;
    for (let x = 0; x < w; x++) {
      let acc = 0;
      for (let k = 0; k < kx.length; k++) acc += kx[k] * src[row + ix[x + k]];
      tmp[row + x] = acc;
    }
  }
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let acc = 0;
      for (let k = 0; k < ky.length; k++) acc += ky[k] * tmp[iy[y + k] * w + x];
      out[y * w + x] = acc;
    }
  }
  return out;
}

/** cv2.getGaussianKernel(ksize, sigma) with cv2.GaussianBlur's size for float images (ksize (0, 0)). */
function gaussianKernel(sigma) {
  const size = Math.round(sigma * 4 * 2 + 1) | 1, c = (size - 1) / 2, k = new Float64Array(size);
  let sum = 0;
  for (let i = 0; i < size; i++) { k[i] = Math.exp(-((i - c) ** 2) / (2 * sigma * sigma)); sum += k[i]; }
  for (let i = 0; i < size; i++) k[i] /= sum;
  return k;
}

/** cv2.remap(src, [mx], [my], INTER_LINEAR, BORDER_REPLICATE) at one point of a w*h*ch image (OpenCV 5's
 * float maps interpolate at the exact position, no 1/32 px table). */
function bilinear(src, w, h, ch, mx, my, out) {
  const x = Math.floor(mx), y = Math.floor(my), fx = mx - x, fy = my - y;
  const xa = Math.min(w - 1, Math.max(0, x)), xb = Math.min(w - 1, Math.max(0, x + 1));
  const ya = Math.min(h - 1, Math.max(0, y)), yb = Math.min(h - 1, Math.max(0, y + 1));
  for (let c = 0; c < ch; c++) {
    out[c] = (1 - fy) * ((1 - fx) * src[(ya * w + xa) * ch + c] + fx * src[(ya * w + xb) * ch + c])
      + fy * ((1 - fx) * src[(yb * w + xa) * ch + c] + fx * src[(yb * w + xb) * ch + c]);
  }
  return out;
}

function median(values) {
  const v = Float64Array.from(values).sort(), n = v.length, m = n >> 1;
  return n % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

/**
 * Which way along `axis` the tip lies, from the photo: {u, confidence} (Python's orient_from_image, the
 * same steps and constants). `image`: {data, width, height} of RGBA (ImageData) or RGB bytes; `mask`:
 * the nail's w*h crop at `offset` = [x, y]; `others`: optional Uint8Array (image size) of every nail,
 * excluded from the samples. confidence 0: no idea, `axis` returned unchanged.
 */
export function orientFromImage(image, mask, w, h, offset, centre, axis, others = null) {
  const { width, height, data } = image;
  const channels = data.length === 3 * width * height ? 3 : 4;
  const norm = Math.hypot(axis[0], axis[1]);
  axis = [axis[0] / norm, axis[1] / norm];
  const perp = [-axis[1], axis[0]];
  const none = { u: axis, confidence: 0 };
  let count = 0, tLo = Infinity, tHi = -Infinity, sLo = Infinity, sHi = -Infinity;
  for (let j = 0; j < h; j++) {
    for (let i = 0; i < w; i++) {
      if (!mask[j * w + i]) continue;
      const px = i + 0.5 + offset[0] - centre[0], py = j + 0.5 + offset[1] - centre[1];
      const t = px * axis[0] + py * axis[1], s = px * perp[0] + py * perp[1];
      count++;
      if (t < tLo) tLo = t;
      if (t > tHi) tHi = t;
      if (s < sLo) sLo = s;
      if (s > sHi) sHi = s;
    }
  }
  if (count < 6) return none;
  const length = Math.max(tHi - tLo, 2.0);
  const halfWidth = Math.max((sHi - sLo) / 2, 1.0), sMid = (sLo + sHi) / 2;

  const reach = 2.0 * length + 2 * halfWidth + 4;
  const x0 = Math.trunc(Math.max(0, centre[0] - reach)), x1 = Math.trunc(Math.min(width, centre[0] + reach + 1));
  const y0 = Math.trunc(Math.max(0, centre[1] - reach)), y1 = Math.trunc(Math.min(height, centre[1] + reach + 1));
  if (x1 - x0 < 3 || y1 - y0 < 3) return none;
  const pw = x1 - x0, ph = y1 - y0, pn = pw * ph;
  // CIE Lab of the patch as cv2.cvtColor(float32 RGB / 255, COLOR_RGB2Lab) (sRGB gamma, D65), L at half weight
  const lab = new Float64Array(3 * pn), light = new Float64Array(pn);
  for (let y = 0; y < ph; y++) {
    for (let x = 0; x < pw; x++) {
      const g = ((y0 + y) * width + x0 + x) * channels, p = y * pw + x;
      const R = LINEAR_OF_BYTE[data[g]], G = LINEAR_OF_BYTE[data[g + 1]], B = LINEAR_OF_BYTE[data[g + 2]];
      const X = (0.412453 * R + 0.357580 * G + 0.180423 * B) / XN;
      const Y = 0.212671 * R + 0.715160 * G + 0.072169 * B;
      const Z = (0.019334 * R + 0.119193 * G + 0.950227 * B) / ZN;
      const fx = labF(X), fy = labF(Y), fz = labF(Z);
      const L = 0.5 * (Y > 0.008856 ? 116 * fy - 16 : 903.3 * Y);
      lab[3 * p] = L; lab[3 * p + 1] = 500 * (fx - fy); lab[3 * p + 2] = 200 * (fy - fz);
      light[p] = L;
    }
  }
  // the finger's skin: beside the middle of the nail (the nail folds), other nails left out
  const mid = (tLo + tHi) / 2;
  const sideL = [], sideA = [], sideB = [];
  for (let y = 0; y < ph; y++) {
    for (let x = 0; x < pw; x++) {
      if (others && others[(y0 + y) * width + x0 + x]) continue;
      const qx = x0 + x + 0.5 - centre[0], qy = y0 + y + 0.5 - centre[1];
      const qt = qx * axis[0] + qy * axis[1], qs = Math.abs(qx * perp[0] + qy * perp[1] - sMid);
      if (Math.abs(qt - mid) <= 0.3 * length && qs >= 1.15 * halfWidth + 1 && qs <= 1.7 * halfWidth + 2) {
        const p = 3 * (y * pw + x);
        sideL.push(lab[p]); sideA.push(lab[p + 1]); sideB.push(lab[p + 2]);
      }
    }
  }
  if (sideL.length < 6) return none;
  const skin = [median(sideL), median(sideA), median(sideB)];
  // the lightness edge across the axis: Gaussian blur, Sobel 3x3 (BORDER_REFLECT_101), along the axis
  const blurred = (() => { const k = gaussianKernel(Math.max(0.8, halfWidth * 0.08)); return sepFilter(light, pw, ph, k, k); })();
  const sx = sepFilter(blurred, pw, ph, [-1, 0, 1], [1, 2, 1]), sy = sepFilter(blurred, pw, ph, [1, 2, 1], [-1, 0, 1]);
  const grad = new Float64Array(pn);
  for (let p = 0; p < pn; p++) grad[p] = (Math.abs(sx[p] * axis[0] + sy[p] * axis[1]) / 8.0) * 2.0;

  // profiles beyond each end along the axis, medians over a band of 5 lines around the centre line
  const step = Math.max(1.0, length / 40);
  const steps = Math.ceil((1.3 * length + step) / step);
  const offsets = [-0.5, -0.25, 0, 0.25, 0.5].map((f) => f * halfWidth);
  const scores = [], inside = [];
  const col = new Float64Array(3), edgeAt = new Float64Array(1);
  for (const [sign, end] of [[1, tHi], [-1, tLo]]) {
    const dist = new Float64Array(steps), edge = new Float64Array(steps), keep = new Uint8Array(steps);
    let kept = 0;
    const ds = new Float64Array(5), es = new Float64Array(5);
    for (let k = 0; k < steps; k++) {
      const d = k * step, t = end + sign * d;
      let valid = true;
      for (let j = 0; j < 5; j++) {
        const px = centre[0] + t * axis[0] + perp[0] * sMid + offsets[j] * perp[0];
        const py = centre[1] + t * axis[1] + perp[1] * sMid + offsets[j] * perp[1];
        const mx = Math.fround(px - x0 - 0.5), my = Math.fround(py - y0 - 0.5);
        if (!(mx >= 0 && mx <= pw - 1 && my >= 0 && my <= ph - 1)) valid = false;
        bilinear(lab, pw, ph, 3, mx, my, col);
        ds[j] = Math.hypot(col[0] - skin[0], col[1] - skin[1], col[2] - skin[2]);
        es[j] = bilinear(grad, pw, ph, 1, mx, my, edgeAt)[0];
      }
      keep[k] = valid ? 1 : 0;
      kept += keep[k];
      dist[k] = median(ds); edge[k] = median(es);
    }
    inside.push(kept / steps);
    if (kept < 4) { scores.push(null); continue; }
    // d = k * length / 40 (length >= 40 px) meets the bounds 0.05, 0.25 and 0.8 lengths exactly (k = 2, 10,
    // 32): taken as in exact arithmetic (inside), not by the last bit of the rounding (Python's float test).
    const eps = 1e-9 * length;
    let farSum = 0, farN = 0, keepSum = 0, outline = 0, anyNear = false;
    for (let k = 0; k < steps; k++) {
      if (!keep[k]) continue;
      const d = k * step;
      keepSum += dist[k];
      if (d >= 0.25 * length - eps) { farSum += dist[k]; farN++; }
      if (d >= 0.05 * length - eps && d <= 0.8 * length + eps) { outline = anyNear ? Math.max(outline, edge[k]) : edge[k]; anyNear = true; }
    }
    const colour = farN ? farSum / farN : keepSum / kept;
    scores.push(colour + 1.5 * outline);  // high: the finger stops here (tip)
  }
  const [sAhead, sBehind] = scores, [inAhead, inBehind] = inside;
  if (sAhead !== null && sBehind !== null && Math.min(inAhead, inBehind) > 0.5) {
    return { u: sAhead > sBehind ? axis : [-axis[0], -axis[1]], confidence: Math.abs(sAhead - sBehind) / (sAhead + sBehind + 4.0) };
  }
  if (Math.abs(inAhead - inBehind) >= 0.4) return { u: inAhead > inBehind ? axis : [-axis[0], -axis[1]], confidence: 0.2 };  // the base runs off the photo
  return none;
}

// ------------------------------------------------------------------------------------------------
// The pipeline
// ------------------------------------------------------------------------------------------------

function classMapOf(input, fg, n) {
  if (input.classProb) {
    const cls = new Uint8Array(n), p = input.classProb;
    for (let i = 0; i < n; i++) {
      if (!fg[i]) continue;
      let best = 0, value = p[i * NUM_FINGERS];
      for (let k = 1; k < NUM_FINGERS; k++) if (p[i * NUM_FINGERS + k] > value) { value = p[i * NUM_FINGERS + k]; best = k; }
      cls[i] = best + 1;
    }
    return cls;
  }
  if (input.classMap) {
    const cls = new Uint8Array(n);
    for (let i = 0; i < n; i++) if (fg[i]) cls[i] = input.classMap[i];
    return cls;
  }
  return null;
}

/**
 * One instance per nail of a frame's predictions (see the header). `config`: PostprocessConfig fields
 * (snake_case, as the server sends them). Returns nails sorted by (bbox x, bbox y):
 * {finger, bbox: [x, y, w, h], mask (Uint8Array w*h), area, direction: [ux, uy], angle (degrees),
 *  directionSource ("field" | "image" | "shape"), base, tip, polygon: [[x, y], ...], confidence,
 *  classConfidence, mergedFrom, orientationConfidence (nails oriented from `input.image`, else null)}.
 */
export function postprocess(input, config = {}) {
  const cfg = { ...DEFAULTS, ...config };
  const { width, height } = input;
  const n = width * height;
  const prob = input.fgProb;
  if (!prob || prob.length !== n) throw new Error(`fgProb must hold ${width}x${height} values`);
  if (input.field && input.field.length !== 2 * n) throw new Error("field must hold H x W x 2 values");
  if (input.classProb && input.classProb.length !== NUM_FINGERS * n) throw new Error("classProb must hold H x W x 10 values");
  const image = input.image || null;
  if (image) {
    const channels = image.data && image.width === width && image.height === height ? image.data.length / n : 0;
    if (channels !== 3 && channels !== 4) throw new Error(`image must be ${width}x${height} RGBA or RGB pixels (the predictions' size)`);
  }
  const minArea = Math.max(Math.trunc(cfg.min_area), Math.trunc(roundHalfEven(cfg.min_area_fraction * height * width)));
  const minPart = Math.max(1, Math.floor(minArea / 4));
  const fg = new Uint8Array(n);
  const threshold = cfg.threshold;
  for (let i = 0; i < n; i++) fg[i] = prob[i] > threshold ? 1 : 0;
  const cls = classMapOf(input, fg, n);
  if (cls) for (let i = 0; i < n; i++) if (!cls[i]) fg[i] = 0;  // an integer class map may mark background with 0
  const frame = { width, height, prob, cls, field: input.field || null };

  // 1-2. Connected components, split by class.
  const cc = connectedComponents(fg, width, height, cfg.connectivity);
  let blobs = [];
  for (let l = 1; l <= cc.count; l++) {
    if (cc.area[l] < minPart) continue;
    const x = cc.x0[l], y = cc.y0[l], w = cc.x1[l] - x, h = cc.y1[l] - y;
    const comp = new Uint8Array(w * h);
    for (let j = 0; j < h; j++) for (let i = 0; i < w; i++) comp[j * w + i] = cc.labels[(y + j) * width + x + i] === l ? 1 : 0;
    let parts = [comp];
    if (cls) {
      const votes = new Float64Array(NUM_FINGERS + 1);
      for (let j = 0; j < h; j++) {
        for (let i = 0; i < w; i++) {
          if (comp[j * w + i]) { const g = (y + j) * width + x + i; votes[cls[g]] += prob[g]; }
        }
      }
      parts = splitByClass(comp, w, h, x, y, frame, votes, cfg, minPart);
    }
    for (const part of parts) {
      const blob = tightBlob(x, y, w, h, part);
      if (blob) blobs.push(blob);
    }
  }
  for (const blob of blobs) measure(blob, frame);

  // 4. Merge split nails (greedy, closest pairs first, re-measured after each merge).
  if (cfg.merge) {
    let merged = true;
    while (merged && blobs.length > 1) {
      merged = false;
      const pairs = [];
      for (let i = 0; i < blobs.length; i++) {
        for (let j = i + 1; j < blobs.length; j++) {
          pairs.push([Math.hypot(blobs[i].centre[0] - blobs[j].centre[0], blobs[i].centre[1] - blobs[j].centre[1]), i, j]);
        }
      }
      pairs.sort((p, q) => p[0] - q[0] || p[1] - q[1] || p[2] - q[2]);
      for (const [, i, j] of pairs) {
        if (!shouldMerge(blobs[i], blobs[j], cfg)) continue;
        const a = blobs[i], b = blobs[j];
        const g = gap(a, b, Infinity);
        const joint = union(a, b);
        const r = Math.max(1, Math.ceil(g / 2 + 1));
        joint.mask = closeMask(joint.mask, joint.w, joint.h, r);
        joint.area = joint.mask.reduce((s, v) => s + v, 0);
        measure(joint, frame);
        blobs = blobs.filter((_, k) => k !== i && k !== j).concat([joint]);
        merged = true;
        break;
      }
    }
  }

  // 5. Instances.
  let everything = null;  // every blob (before the min_area cut), left out of the photo's skin samples
  if (image) {
    everything = new Uint8Array(n);
    for (const blob of blobs) {
      for (let j = 0; j < blob.h; j++) {
        for (let i = 0; i < blob.w; i++) if (blob.mask[j * blob.w + i]) everything[(blob.y + j) * width + blob.x + i] = 1;
      }
    }
  }
  const nails = [];
  for (const blob of blobs) {
    if (blob.area < minArea) continue;
    let u = blob.u, source = blob.source, orientationConfidence = null;
    if (source === "shape" && image) {
      const oriented = orientFromImage(image, blob.mask, blob.w, blob.h, [blob.x, blob.y], blob.centre, u, everything);
      if (oriented.confidence > 0) {
        u = oriented.u; source = "image";
        orientationConfidence = Math.round(oriented.confidence * 1e4) / 1e4;
      }
    }
    const polygon = polygonOf(blob.mask, blob.w, blob.h, blob.x, blob.y, cfg.polygon_tolerance, cfg.max_vertices);
    if (!polygon) continue;
    const [base, tip] = landmarks(polygon, blob.centre, u);
    let sum = 0, classSum = 0;
    for (let j = 0; j < blob.h; j++) {
      for (let i = 0; i < blob.w; i++) {
        if (!blob.mask[j * blob.w + i]) continue;
        const g = (blob.y + j) * width + blob.x + i;
        sum += prob[g];
        if (blob.finger !== null && input.classProb) classSum += input.classProb[g * NUM_FINGERS + blob.finger - 1];
      }
    }
    nails.push({
      finger: blob.finger, bbox: [blob.x, blob.y, blob.w, blob.h], mask: blob.mask, area: blob.area,
      direction: [u[0], u[1]], angle: (Math.atan2(u[1], u[0]) * 180) / Math.PI, directionSource: source,
      base, tip, polygon, confidence: sum / blob.area,
      classConfidence: blob.finger !== null && input.classProb ? classSum / blob.area : null,
      mergedFrom: blob.mergedFrom, orientationConfidence,
    });
  }
  nails.sort((p, q) => p.bbox[0] - q.bbox[0] || p.bbox[1] - q.bbox[1]);
  return nails;
}

/** JSON-ready nails in the server's format (ml.postprocess.to_dicts; `mask` left out). */
export function toDicts(nails) {
  const r = (v, d) => Math.round(v * 10 ** d) / 10 ** d;
  return nails.map((nail) => ({
    polygon: nail.polygon, finger: nail.finger, base: nail.base.map((v) => r(v, 2)), tip: nail.tip.map((v) => r(v, 2)),
    confidence: r(nail.confidence, 4), class_confidence: nail.classConfidence === null ? null : r(nail.classConfidence, 4),
    angle: r(nail.angle, 2), direction: nail.direction.map((v) => r(v, 5)), direction_source: nail.directionSource,
    area: nail.area, bbox: nail.bbox, merged_from: nail.mergedFrom,
  }));
}
