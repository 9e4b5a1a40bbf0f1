// A blob's polygon and landmarks: the outline steps of the try-on page's post-processing (postprocess.js, the
// JavaScript port of ml/postprocess.py's _polygon_of and _landmarks; docs/rendering.md). Pure functions on
// typed arrays and point lists, no DOM; tested against Python in Node (tests/test_tryon_postprocess_js.py).
//
// Where the port differs from Python: Python traces the contour through the boundary pixel centres
// (cv2.findContours) and grows it by half a pixel (shapely mitre buffer); this traces the pixel outline itself
// (crack following, with 8-connected diagonal joints opened to the same half-pixel neck). Both outline the
// blob's pixels; they differ only where Python's buffer cuts a diagonal staircase (< 0.36 px, below the 1 px
// tolerance). Then Douglas-Peucker at `polygon_tolerance`, raised x1.5 until at most `max_vertices` vertices
// remain and the ring is simple, as in Python (shapely's topology-preserving simplify is Douglas-Peucker plus
// a check that no segment crosses another; the check here is the simplicity test that follows).

import { connectedComponents } from "./components.js";

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
