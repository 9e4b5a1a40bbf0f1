// Geometry of one image's labels, in image pixels (x right, y down). Pure functions, no DOM:
// tested with Node (tests/js/geometry.test.mjs).
//
// `validate` mirrors dataset/geometry.py rule by rule (same rule names, same order, same tolerances), so
// the page flags exactly what the server would refuse before it is sent. The server stays the judge:
// its 400 errors are shown the same way.

import { FINGER_NAMES } from "./fingers.js";

export const DECIMALS = 2;
export const TOLERANCE = 1.0;           // vertices may lie this far outside the image
export const LANDMARK_TOLERANCE = 4.0;  // base and tip may lie this far outside their polygon
export const MAX_VERTICES = 10000;
export const MAX_NAILS = 500;
export const MAX_IGNORE = 500;
export const COMPLETENESS_RULES = new Set(["finger_missing", "landmarks_missing", "finger_unconfirmed",
  "landmarks_unconfirmed"]);
export const SUGGESTED_FIELDS = ["finger", "landmarks"];  // the keys of a nail's "suggested" marks

/** Round like the server (2 decimals) and turn -0 into 0. */
export function round2(v) {
  const r = Math.round(v * 100) / 100;
  return r === 0 ? 0 : r;
}

export function roundPoint(p) {
  return [round2(p[0]), round2(p[1])];
}

export function samePoint(a, b) {
  return a[0] === b[0] && a[1] === b[1];
}

/** Drop consecutive duplicate vertices and a closing vertex equal to the first (as the server does). */
export function dedupe(points) {
  const out = points.filter((p, i) => i === 0 || !samePoint(p, points[i - 1]));
  while (out.length > 1 && samePoint(out[out.length - 1], out[0])) out.pop();
  return out;
}

export function signedArea(poly) {
  let s = 0;
  for (let i = 0, n = poly.length; i < n; i++) {
    const [x0, y0] = poly[i], [x1, y1] = poly[(i + 1) % n];
    s += x0 * y1 - x1 * y0;
  }
  return s / 2;
}

export function area(poly) {
  return Math.abs(signedArea(poly));
}

export function bbox(points) {
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  for (const [x, y] of points) {
    if (x < x0) x0 = x;
    if (y < y0) y0 = y;
    if (x > x1) x1 = x;
    if (y > y1) y1 = y;
  }
  return { x0, y0, x1, y1 };
}

/**
 * [first, last]: where the line through `c` along the unit vector `u` crosses the polygon's outline, the least
 * and the greatest along `u` (dataset-side twin: ml.postprocess.axis_ends), or null when it misses it.
 */
export function axisEnds(poly, c, u) {
  let tMin = Infinity, tMax = -Infinity;
  for (let i = 0, n = poly.length; i < n; i++) {
    const a = poly[i], b = poly[(i + 1) % n];
    const ex = b[0] - a[0], ey = b[1] - a[1];
    const den = u[0] * ey - u[1] * ex;
    if (Math.abs(den) < 1e-12) continue;
    const wx = a[0] - c[0], wy = a[1] - c[1];
    const s = (wx * u[1] - wy * u[0]) / den;
    if (s < -1e-9 || s > 1 + 1e-9) continue;
    const t = (wx * ey - wy * ex) / den;
    tMin = Math.min(tMin, t);
    tMax = Math.max(tMax, t);
  }
  if (!Number.isFinite(tMin)) return null;
  return [[c[0] + tMin * u[0], c[1] + tMin * u[1]], [c[0] + tMax * u[0], c[1] + tMax * u[1]]];
}

/** Area centroid (vertex mean for degenerate polygons). */
export function centroid(poly) {
  const a = signedArea(poly);
  if (Math.abs(a) < 1e-9) {
    const n = poly.length || 1;
    return [poly.reduce((s, p) => s + p[0], 0) / n, poly.reduce((s, p) => s + p[1], 0) / n];
  }
  let cx = 0, cy = 0;
  for (let i = 0, n = poly.length; i < n; i++) {
    const [x0, y0] = poly[i], [x1, y1] = poly[(i + 1) % n];
    const f = x0 * y1 - x1 * y0;
    cx += (x0 + x1) * f;
    cy += (y0 + y1) * f;
  }
  return [cx / (6 * a), cy / (6 * a)];
}

/** Even-odd test, points exactly on an edge may go either way. */
export function pointInPolygon(p, poly) {
  const [x, y] = p;
  let inside = false;
  for (let i = 0, j = poly.length - 1; i < poly.length; j = i++) {
    const [xi, yi] = poly[i], [xj, yj] = poly[j];
    if ((yi > y) !== (yj > y) && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

/** Closest point of segment ab to p: {d, t, point}. */
export function closestOnSegment(p, a, b) {
  const dx = b[0] - a[0], dy = b[1] - a[1];
  const len2 = dx * dx + dy * dy;
  let t = len2 === 0 ? 0 : ((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / len2;
  t = Math.max(0, Math.min(1, t));
  const point = [a[0] + t * dx, a[1] + t * dy];
  return { d: Math.hypot(p[0] - point[0], p[1] - point[1]), t, point };
}

/** The closest edge of a closed polygon to p: {edge (from vertex edge to edge+1), d, t, point}. */
export function nearestEdge(p, poly) {
  let best = null;
  for (let i = 0, n = poly.length; i < n; i++) {
    const c = closestOnSegment(p, poly[i], poly[(i + 1) % n]);
    if (!best || c.d < best.d) best = { edge: i, ...c };
  }
  return best;
}

/** Distance from p to a polygon as an area (0 inside), like Shapely's polygon.distance(point). */
export function polygonDistance(p, poly) {
  if (poly.length < 3) return poly.length ? Math.min(...poly.map((q) => Math.hypot(p[0] - q[0], p[1] - q[1]))) : Infinity;
  return pointInPolygon(p, poly) ? 0 : nearestEdge(p, poly).d;
}

function cross(o, a, b) {
  return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]);
}

/** Area of the convex hull (Andrew's monotone chain). */
export function convexHullArea(points) {
  const pts = [...points].sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  if (pts.length < 3) return 0;
  const half = (list) => {
    const hull = [];
    for (const p of list) {
      while (hull.length >= 2 && cross(hull[hull.length - 2], hull[hull.length - 1], p) <= 0) hull.pop();
      hull.push(p);
    }
    hull.pop();
    return hull;
  };
  const hull = half(pts).concat(half([...pts].reverse()));
  return hull.length < 3 ? 0 : area(hull);
}

function onSegment(p, a, b) {
  return Math.min(a[0], b[0]) <= p[0] && p[0] <= Math.max(a[0], b[0]) &&
    Math.min(a[1], b[1]) <= p[1] && p[1] <= Math.max(a[1], b[1]);
}

/** Do closed segments ab and cd share a point? */
export function segmentsIntersect(a, b, c, d) {
  const d1 = cross(c, d, a), d2 = cross(c, d, b), d3 = cross(a, b, c), d4 = cross(a, b, d);
  if (((d1 > 0 && d2 < 0) || (d1 < 0 && d2 > 0)) && ((d3 > 0 && d4 < 0) || (d3 < 0 && d4 > 0))) return true;
  return (d1 === 0 && onSegment(a, c, d)) || (d2 === 0 && onSegment(b, c, d)) ||
    (d3 === 0 && onSegment(c, a, b)) || (d4 === 0 && onSegment(d, a, b));
}

/**
 * Where a closed ring (deduplicated, >= 3 vertices) is not simple: null when it is simple, else the pair
 * of crossing edges {i, j, near}. Adjacent edges may only share their common vertex (folding back along
 * the previous edge is a crossing too), other edges nothing: Shapely's LinearRing.is_simple.
 */
export function ringCrossing(ring) {
  const n = ring.length;
  const boxes = [];
  for (let i = 0; i < n; i++) {
    const a = ring[i], b = ring[(i + 1) % n];
    boxes.push([Math.min(a[0], b[0]), Math.min(a[1], b[1]), Math.max(a[0], b[0]), Math.max(a[1], b[1])]);
  }
  for (let i = 0; i < n; i++) {
    const a = ring[i], b = ring[(i + 1) % n];
    for (let j = i + 1; j < n; j++) {
      const bi = boxes[i], bj = boxes[j];
      if (bi[0] > bj[2] || bj[0] > bi[2] || bi[1] > bj[3] || bj[1] > bi[3]) continue;
      const c = ring[j], d = ring[(j + 1) % n];
      const nextTo = j === i + 1, prevTo = i === 0 && j === n - 1;
      if (nextTo || prevTo) {
        // Shared vertex v, the far ends u (of one edge) and w (of the other): a fold if collinear and same direction.
        const [u, v, w] = nextTo ? [a, b, d] : [b, a, c];
        const ux = u[0] - v[0], uy = u[1] - v[1], wx = w[0] - v[0], wy = w[1] - v[1];
        if (ux * wy - uy * wx === 0 && ux * wx + uy * wy > 0) return { i, j, near: v };
        continue;
      }
      if (segmentsIntersect(a, b, c, d)) return { i, j, near: intersectionPoint(a, b, c, d) };
    }
  }
  return null;
}

function intersectionPoint(a, b, c, d) {
  const den = (a[0] - b[0]) * (c[1] - d[1]) - (a[1] - b[1]) * (c[0] - d[0]);
  if (den === 0) {
    for (const p of [c, d, a, b]) if (onSegment(p, a, b) && onSegment(p, c, d)) return p;
    return a;
  }
  const t = ((a[0] - c[0]) * (c[1] - d[1]) - (a[1] - c[1]) * (c[0] - d[0])) / den;
  return [round2(a[0] + t * (b[0] - a[0])), round2(a[1] + t * (b[1] - a[1]))];
}

function isNumber(v) {
  return typeof v === "number";
}

function fmt(p) {
  return `(${p[0]}, ${p[1]})`;
}

function short(value, limit = 40) {
  let text;
  try {
    text = JSON.stringify(value);
  } catch {
    text = String(value);
  }
  if (text === undefined) text = String(value);
  return text.length <= limit ? text : text.slice(0, limit - 3) + "...";
}

class Bad extends Error {
  constructor(rule, message) {
    super(message);
    this.rule = rule;
  }
}

function parsePoint(value) {
  if (!Array.isArray(value) || value.length !== 2 || !value.every(isNumber)) {
    throw new Bad("bad_point", `expected [x, y] with two numbers, got ${short(value)}`);
  }
  if (!value.every(Number.isFinite)) throw new Bad("not_finite", `coordinates must be finite numbers, got ${short(value)}`);
  return roundPoint(value);
}

function inside(p, width, height, margin) {
  return -margin <= p[0] && p[0] <= width + margin && -margin <= p[1] && p[1] <= height + margin;
}

function reporter(sink, label, where) {
  return (rule, message, field = null) =>
    sink.push({ rule, message: `${label}: ${message}`, nail: null, ignore: null, field, ...where });
}

/** Validate one polygon; returns the deduplicated points when usable, else null (after reporting). */
export function checkPolygon(raw, width, height, tolerance, add) {
  if (!Array.isArray(raw)) {
    add("polygon_not_a_list", `polygon must be a list of [x, y] points, got ${short(raw)}`, "polygon");
    return null;
  }
  if (raw.length > MAX_VERTICES) {
    add("too_many_vertices", `polygon has ${raw.length} vertices (max ${MAX_VERTICES})`, "polygon");
    return null;
  }
  let points = [];
  for (let i = 0; i < raw.length; i++) {
    try {
      points.push(parsePoint(raw[i]));
    } catch (bad) {
      add(bad.rule, `vertex ${i + 1}: ${bad.message}`, "polygon");
      return null;
    }
  }
  const outside = points.filter((p) => !inside(p, width, height, tolerance));
  if (outside.length) {
    add("outside_image", `${outside.length} vertex(es) outside the ${width}x${height} image, e.g. ${fmt(outside[0])}`, "polygon");
    return null;
  }
  points = dedupe(points);
  if (points.length < 3) {
    add("too_few_vertices", `polygon needs at least 3 distinct vertices, has ${points.length}`, "polygon");
    return null;
  }
  if (convexHullArea(points) < 1e-6) {
    add("zero_area", "polygon has zero area (all vertices are collinear)", "polygon");
    return null;
  }
  const crossing = ringCrossing(points);
  if (crossing) {
    add("self_intersecting", `polygon crosses itself (self-intersection near ${fmt(crossing.near)})`, "polygon");
    return null;
  }
  return points;
}

const NAIL_KEYS = new Set(["id", "polygon", "finger", "base", "tip", "suggested"]);

function isConfidence(v) {
  return typeof v === "number" && Number.isFinite(v) && v >= 0 && v <= 1;
}

/** The "suggested" marks of one nail (dataset/geometry.py's _check_suggested, same rules). */
function checkSuggested(nail, opts, add) {
  const marks = nail.suggested;
  if (marks === undefined || marks === null) return;
  if (typeof marks !== "object" || Array.isArray(marks)) {
    add("suggested_not_an_object", `suggested must be an object like {"finger": 0.8}, got ${short(marks)}`, "suggested");
    return;
  }
  for (const [key, confidence] of Object.entries(marks)) {
    if (!SUGGESTED_FIELDS.includes(key)) {
      add("suggested_unknown_field", `suggested: unknown field '${key}' (only finger, landmarks)`, "suggested");
      continue;
    }
    if (!isConfidence(confidence)) {
      add("bad_confidence", `suggested ${key}: confidence must be a number in [0, 1], got ${short(confidence)}`, "suggested");
    }
    const set = key === "finger" ? (nail.finger ?? null) !== null
      : (nail.base ?? null) !== null && (nail.tip ?? null) !== null;
    if (!set) add("suggested_unset", `${key} is marked suggested but not set`, "suggested");
    else if (opts.requireComplete) {
      add(`${key}_unconfirmed`, `${key} is only a suggestion: accept or edit it`, key === "finger" ? "finger" : null);
    }
  }
}

/** The nail's suggested marks, {} when none. */
export function suggestedMarks(nail) {
  const marks = nail && nail.suggested;
  return marks && typeof marks === "object" && !Array.isArray(marks) ? marks : {};
}

/** A copy of `nail` without the suggested mark of `field` ("finger" | "landmarks"); no "suggested" key when none is left. */
export function confirmField(nail, field) {
  const { suggested, ...rest } = nail;
  const marks = { ...suggestedMarks(nail) };
  delete marks[field];
  return Object.keys(marks).length ? { ...rest, suggested: marks } : rest;
}

function checkNail(nail, index, width, height, opts, report) {
  const add = reporter(report.errors, `nail ${index + 1}`, { nail: index });
  if (nail === null || typeof nail !== "object" || Array.isArray(nail)) {
    add("nail_not_an_object", `expected an object, got ${short(nail)}`);
    return;
  }
  for (const key of Object.keys(nail)) if (!NAIL_KEYS.has(key)) add("unknown_field", `unknown field '${key}'`, key);
  const id = nail.id;
  if (id !== undefined && id !== null && !(typeof id === "string" && id.length <= 100)) {
    add("bad_id", "id must be a string of at most 100 characters", "id");
  }
  let polygon = null;
  if (!("polygon" in nail)) add("missing_field", "missing field 'polygon'", "polygon");
  else polygon = checkPolygon(nail.polygon, width, height, opts.tolerance, add);

  const finger = nail.finger ?? null;
  if (finger === null) {
    if (opts.requireComplete) add("finger_missing", "finger class is missing", "finger");
  } else if (!(Number.isInteger(finger) && FINGER_NAMES[finger])) {
    add("bad_finger", `finger must be an integer 1-10 or null, got ${short(finger)}`, "finger");
  }

  const given = ["base", "tip"].filter((k) => nail[k] !== undefined && nail[k] !== null);
  if (given.length === 1) {
    const missing = given[0] === "base" ? "tip" : "base";
    add("landmarks_incomplete", `${given[0]} is set but ${missing} is not`, missing);
  } else if (!given.length && opts.requireComplete) {
    add("landmarks_missing", "base and tip landmarks are missing");
  }
  const points = {};
  for (const key of given) {
    try {
      points[key] = parsePoint(nail[key]);
    } catch (bad) {
      add(bad.rule, `${key}: ${bad.message}`, key);
    }
  }
  if (polygon) {
    const reach = opts.landmarkTolerance;
    for (const [key, p] of Object.entries(points)) {
      if (!inside(p, width, height, opts.tolerance + reach) || polygonDistance(p, polygon) > reach) {
        add("landmark_outside_nail", `${key} ${fmt(p)} is outside the nail polygon`, key);
      }
    }
  }
  if (points.base && points.tip && Math.hypot(points.base[0] - points.tip[0], points.base[1] - points.tip[1]) < 1e-6) {
    add("landmarks_equal", `base and tip are the same point ${fmt(points.base)}`, "tip");
  }
  checkSuggested(nail, opts, add);
}

/**
 * Check one image's geometry like dataset.geometry.validate_geometry: {errors, warnings}, each issue
 * {rule, message, nail, ignore, field}. Never throws.
 */
export function validate(geometry, width, height, { requireComplete = false, tolerance = TOLERANCE,
  landmarkTolerance = LANDMARK_TOLERANCE } = {}) {
  const report = { errors: [], warnings: [] };
  const add = reporter(report.errors, "geometry", {});
  if (geometry === null || typeof geometry !== "object" || Array.isArray(geometry)) {
    add("not_an_object", `expected an object with 'nails', got ${short(geometry)}`);
    return report;
  }
  for (const key of Object.keys(geometry)) {
    if (key !== "nails" && key !== "ignore") add("unknown_field", `unknown top-level field '${key}'`, key);
  }
  const { nails, ignore } = geometry;
  if (!("nails" in geometry)) add("missing_field", "missing field 'nails'", "nails");
  else if (!Array.isArray(nails)) add("nails_not_a_list", `'nails' must be a list, got ${short(nails)}`, "nails");
  else if (nails.length > MAX_NAILS) add("too_many_nails", `${nails.length} nails (max ${MAX_NAILS})`, "nails");
  else {
    const opts = { requireComplete, tolerance, landmarkTolerance };
    const seen = new Map();
    nails.forEach((nail, index) => {
      checkNail(nail, index, width, height, opts, report);
      const finger = nail && typeof nail === "object" ? nail.finger : null;
      if (Number.isInteger(finger) && FINGER_NAMES[finger]) {
        if (seen.has(finger)) {
          reporter(report.warnings, `nail ${index + 1}`, { nail: index })("duplicate_finger",
            `same finger as nail ${seen.get(finger) + 1} (${FINGER_NAMES[finger]}, finger ${finger})`, "finger");
        } else seen.set(finger, index);
      }
    });
  }
  if (ignore !== undefined && ignore !== null && !Array.isArray(ignore)) {
    add("ignore_not_a_list", `'ignore' must be a list of polygons, got ${short(ignore)}`, "ignore");
  } else if (ignore && ignore.length > MAX_IGNORE) {
    add("too_many_ignore", `${ignore.length} ignore regions (max ${MAX_IGNORE})`, "ignore");
  } else {
    (ignore || []).forEach((region, index) => {
      checkPolygon(region, width, height, tolerance, reporter(report.errors, `ignore region ${index + 1}`, { ignore: index }));
    });
  }
  return report;
}

/** A few words for a rule, for badges drawn next to a nail. */
export const RULE_SHORT = {
  self_intersecting: "crosses itself", too_few_vertices: "fewer than 3 vertices", zero_area: "zero area",
  outside_image: "outside the image", landmark_outside_nail: "landmark outside the nail",
  landmarks_equal: "base = tip", landmarks_incomplete: "base or tip missing", finger_missing: "no finger class",
  landmarks_missing: "no base/tip", finger_unconfirmed: "finger only suggested",
  landmarks_unconfirmed: "base/tip only suggested", suggested_unset: "suggestion of nothing", duplicate_finger: "finger used twice", bad_finger: "bad finger class",
  not_finite: "bad coordinates", bad_point: "bad coordinates", too_many_vertices: "too many vertices",
};

export function shortReason(rule) {
  return RULE_SHORT[rule] || rule.replace(/_/g, " ");
}

/** Clamp a point into the image rectangle [0, w] x [0, h]. */
export function clampToImage(p, width, height) {
  return [Math.min(width, Math.max(0, p[0])), Math.min(height, Math.max(0, p[1]))];
}
