// What changed between two revisions of an image's labels. Pure, no DOM: tested with Node
// (tests/js/diff.test.mjs). Nails are matched by their id when both sides carry the same one, then by
// overlap of their bounding boxes (labels saved by scripts may have no ids).

import { bbox, dedupe } from "./geometry.js";
import { fingerCode } from "./fingers.js";

function boxIou(a, b) {
  const ix = Math.max(0, Math.min(a.x1, b.x1) - Math.max(a.x0, b.x0));
  const iy = Math.max(0, Math.min(a.y1, b.y1) - Math.max(a.y0, b.y0));
  const inter = ix * iy;
  const union = (a.x1 - a.x0) * (a.y1 - a.y0) + (b.x1 - b.x0) * (b.y1 - b.y0) - inter;
  return union > 0 ? inter / union : 0;
}

function samePoints(a, b) {
  return JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
}

function maxShift(a, b) {
  if (!a || !b || a.length !== b.length) return null;
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.hypot(a[i][0] - b[i][0], a[i][1] - b[i][1]));
  return m;
}

function landmarkText(nail) {
  return nail.base && nail.tip ? "set" : "none";
}

/** The differences of one matched nail pair, as short sentences (empty when identical). */
export function nailChanges(a, b) {
  const changes = [];
  const pa = dedupe(a.polygon || []), pb = dedupe(b.polygon || []);
  if (!samePoints(pa, pb)) {
    const shift = maxShift(pa, pb);
    changes.push(shift === null ? `outline ${pa.length} -> ${pb.length} vertices`
      : `outline moved (up to ${shift.toFixed(1)} px)`);
  }
  if ((a.finger ?? null) !== (b.finger ?? null)) changes.push(`finger ${fingerCode(a.finger)} -> ${fingerCode(b.finger)}`);
  if (!samePoints(a.base, b.base) || !samePoints(a.tip, b.tip)) {
    const was = landmarkText(a), now = landmarkText(b);
    if (was !== now) changes.push(`base/tip ${was} -> ${now}`);
    else {
      const shift = Math.max(maxShift([a.base], [b.base]) ?? 0, maxShift([a.tip], [b.tip]) ?? 0);
      changes.push(`base/tip moved (up to ${shift.toFixed(1)} px)`);
    }
  }
  return changes;
}

/**
 * {added: [{b}], removed: [{a}], changed: [{a, b, changes}], unchanged: [{a, b}], ignoreAdded, ignoreRemoved}
 * with nail indices into each side's list.
 */
export function diffGeometry(geometryA, geometryB) {
  const nailsA = (geometryA && geometryA.nails) || [], nailsB = (geometryB && geometryB.nails) || [];
  const pairs = [];
  const freeA = new Set(nailsA.keys()), freeB = new Set(nailsB.keys());
  const byId = new Map();
  nailsB.forEach((n, j) => { if (n.id) byId.set(n.id, j); });
  for (const i of [...freeA]) {
    const j = nailsA[i].id ? byId.get(nailsA[i].id) : undefined;
    if (j !== undefined && freeB.has(j)) {
      pairs.push([i, j]);
      freeA.delete(i);
      freeB.delete(j);
    }
  }
  const candidates = [];
  for (const i of freeA) {
    for (const j of freeB) {
      const iou = boxIou(bbox(nailsA[i].polygon || []), bbox(nailsB[j].polygon || []));
      if (iou > 0.2) candidates.push([iou, i, j]);
    }
  }
  candidates.sort((x, y) => y[0] - x[0]);
  for (const [, i, j] of candidates) {
    if (freeA.has(i) && freeB.has(j)) {
      pairs.push([i, j]);
      freeA.delete(i);
      freeB.delete(j);
    }
  }
  const result = { added: [], removed: [], changed: [], unchanged: [], ignoreAdded: 0, ignoreRemoved: 0 };
  pairs.sort((x, y) => x[0] - y[0]);
  for (const [i, j] of pairs) {
    const changes = nailChanges(nailsA[i], nailsB[j]);
    (changes.length ? result.changed : result.unchanged).push({ a: i, b: j, changes });
  }
  result.removed = [...freeA].sort((x, y) => x - y).map((a) => ({ a }));
  result.added = [...freeB].sort((x, y) => x - y).map((b) => ({ b }));
  const keys = (g) => ((g && g.ignore) || []).map((r) => JSON.stringify(dedupe(r)));
  const ia = keys(geometryA), ib = keys(geometryB);
  result.ignoreAdded = ib.filter((k) => !ia.includes(k)).length;
  result.ignoreRemoved = ia.filter((k) => !ib.includes(k)).length;
  return result;
}

/** Human-readable lines: "nail 3 (L2) added", "nail 1 (R3): finger R2 -> R3", ... */
export function describeDiff(diff, geometryA, geometryB) {
  const na = (geometryA && geometryA.nails) || [], nb = (geometryB && geometryB.nails) || [];
  const lines = [];
  for (const { b } of diff.added) lines.push({ kind: "added", b, text: `nail ${b + 1} (${fingerCode(nb[b].finger)}) added` });
  for (const { a } of diff.removed) lines.push({ kind: "removed", a, text: `nail ${a + 1} (${fingerCode(na[a].finger)}) removed` });
  for (const { a, b, changes } of diff.changed) {
    lines.push({ kind: "changed", a, b, text: `nail ${b + 1} (${fingerCode(nb[b].finger)}): ${changes.join("; ")}` });
  }
  if (diff.ignoreAdded) lines.push({ kind: "added", text: `${diff.ignoreAdded} ignore region(s) added or changed` });
  if (diff.ignoreRemoved) lines.push({ kind: "removed", text: `${diff.ignoreRemoved} ignore region(s) removed or changed` });
  if (!lines.length) lines.push({ kind: "same", text: "no difference in the labels" });
  return lines;
}
