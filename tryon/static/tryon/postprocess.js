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
// server: GET /api/tryon/config -> postprocess). This module holds the pipeline (blobs, class split, merge,
// instances); its steps live in modules of their own, each saying where it differs from Python:
// components.js (connected components, chamfer distance), outline.js (polygon, landmarks) and
// orientation.js (orientation from the photo). Orientation from the photo is used as Python uses it: no
// field, `image` given, every blob's mask left out of the skin samples, kept when its confidence > 0, source
// "image", `orientationConfidence` rounded to 4 places; without `image` the axis points up, "shape".

import { chamferDistance, connectedComponents } from "./components.js";
import { landmarks, polygonOf } from "./outline.js";
import { orientFromImage } from "./orientation.js";

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
