// The labels being edited: geometry + selection over an undo/redo history, and the pure edit operations.
// No DOM: tested with Node (tests/js/scene.test.mjs).
//
// Geometry is the API's form: {nails: [{id, polygon: [[x, y]...], finger, base, tip, suggested?}], ignore: [[[x, y]...]]}
// (`suggested`: the fields that are unconfirmed suggestions, dataset/geometry.py; a human edit of a field confirms it)
// in image pixels rounded to 2 decimals. Nails carry a client id (kept by the server) so that revisions can
// be compared nail by nail. States are immutable: an edit builds new arrays/objects along the changed path.

import { History } from "./history.js";
import { axisEnds, centroid, confirmField, roundPoint, suggestedMarks } from "./geometry.js";

export function newId() {
  const bytes = new Uint8Array(6);
  globalThis.crypto.getRandomValues(bytes);
  return "n" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function point(p) {
  return p === null || p === undefined ? null : roundPoint(p);
}

/** The API form of geometry with every nail carrying an id (fields in a fixed order). */
export function normalizeIn(geometry) {
  const nails = ((geometry && geometry.nails) || []).map((nail) => ({
    id: typeof nail.id === "string" && nail.id ? nail.id : newId(),
    polygon: (nail.polygon || []).map(roundPoint),
    finger: Number.isInteger(nail.finger) ? nail.finger : null,
    base: point(nail.base),
    tip: point(nail.tip),
    ...(Object.keys(suggestedMarks(nail)).length ? { suggested: { ...suggestedMarks(nail) } } : {}),
  }));
  const ignore = ((geometry && geometry.ignore) || []).map((ring) => ring.map(roundPoint));
  return { nails, ignore };
}

/**
 * What the annotator drew, from a saved draft: the valid geometry with the draft's invalid shapes
 * (`invalid_shapes` of the API: [{kind: "nail" | "ignore", index, shape, errors}]) put back where they were
 * drawn, so that nail numbers match the server's messages. The page flags them again with its own rules.
 */
export function withInvalidShapes(geometry, invalidShapes) {
  const nails = [...((geometry && geometry.nails) || [])];
  const ignore = [...((geometry && geometry.ignore) || [])];
  const sorted = [...(invalidShapes || [])].sort((a, b) => a.index - b.index);
  for (const { kind, index, shape } of sorted) {
    const list = kind === "ignore" ? ignore : nails;
    list.splice(Math.min(Math.max(0, index), list.length), 0, shape);
  }
  return { nails, ignore };
}

/** Stable JSON of geometry: what is compared to know whether something changed since the last save. */
export function geometryKey(geometry) {
  return JSON.stringify(geometry);
}

export function shapeOf(geometry, kind, index) {
  if (kind === "nail") return geometry.nails[index] ? geometry.nails[index].polygon : null;
  return geometry.ignore[index] || null;
}

function replaceNail(geometry, index, changes, confirms = null) {
  const nails = geometry.nails.slice();
  const nail = { ...nails[index], ...changes };
  nails[index] = confirms ? confirmField(nail, confirms) : nail;  // a human edit of a field confirms it
  return { ...geometry, nails };
}

/** Base and tip within this share of their distance (at least FOLLOW_PX) of the outline's axis ends sit on them. */
const FOLLOW_SHARE = 0.03;
const FOLLOW_PX = 1.5;

/**
 * The nail's base and tip for a new outline: where they sat on the old one's axis ends (the line through its
 * area centroid along base -> tip, as the suggestions and click proposals place them), they move to the new
 * outline's, same direction; placed anywhere else, they stay. {} when nothing moves.
 */
export function landmarksFollowing(nail, points) {
  if (!nail.base || !nail.tip || nail.polygon.length < 3 || points.length < 3) return {};
  const length = Math.hypot(nail.tip[0] - nail.base[0], nail.tip[1] - nail.base[1]);
  if (length === 0) return {};
  const u = [(nail.tip[0] - nail.base[0]) / length, (nail.tip[1] - nail.base[1]) / length];
  const old = axisEnds(nail.polygon, centroid(nail.polygon), u);
  const tol = Math.max(FOLLOW_PX, FOLLOW_SHARE * length);
  const near = (p, q) => Math.hypot(p[0] - q[0], p[1] - q[1]) <= tol;
  if (!old || !near(nail.base, old[0]) || !near(nail.tip, old[1])) return {};
  const ends = axisEnds(points, centroid(points), u);
  return ends ? { base: roundPoint(ends[0]), tip: roundPoint(ends[1]) } : {};
}

/** A copy of geometry with the points of one shape replaced (a nail's base and tip follow: landmarksFollowing). */
export function setShape(geometry, kind, index, points) {
  if (kind === "nail") return replaceNail(geometry, index, { polygon: points, ...landmarksFollowing(geometry.nails[index], points) });
  const ignore = geometry.ignore.slice();
  ignore[index] = points;
  return { ...geometry, ignore };
}

export function addNail(geometry, polygon, fields = {}) {
  const nail = { id: newId(), polygon: polygon.map(roundPoint), finger: null, base: null, tip: null, ...fields };
  return { geometry: { ...geometry, nails: [...geometry.nails, nail] }, index: geometry.nails.length };
}

export function addIgnore(geometry, ring) {
  return { geometry: { ...geometry, ignore: [...geometry.ignore, ring.map(roundPoint)] }, index: geometry.ignore.length };
}

export function removeShape(geometry, kind, index) {
  if (kind === "nail") return { ...geometry, nails: geometry.nails.filter((_, i) => i !== index) };
  return { ...geometry, ignore: geometry.ignore.filter((_, i) => i !== index) };
}

export function moveVertex(geometry, kind, index, vertex, p) {
  const points = shapeOf(geometry, kind, index).slice();
  points[vertex] = roundPoint(p);
  return setShape(geometry, kind, index, points);
}

/** Insert a vertex on edge `edge` (between vertices edge and edge + 1); it becomes vertex edge + 1. */
export function insertVertex(geometry, kind, index, edge, p) {
  const points = shapeOf(geometry, kind, index).slice();
  points.splice(edge + 1, 0, roundPoint(p));
  return setShape(geometry, kind, index, points);
}

/** Remove a vertex; null when the shape would keep fewer than 3. */
export function removeVertex(geometry, kind, index, vertex) {
  const points = shapeOf(geometry, kind, index);
  if (points.length <= 3) return null;
  return setShape(geometry, kind, index, points.filter((_, i) => i !== vertex));
}

/** Move a whole shape (a nail with its landmarks). */
export function translateShape(geometry, kind, index, dx, dy) {
  const move = (p) => (p ? roundPoint([p[0] + dx, p[1] + dy]) : p);
  const points = shapeOf(geometry, kind, index).map(move);
  if (kind !== "nail") return setShape(geometry, kind, index, points);
  const nail = geometry.nails[index];
  return replaceNail(geometry, index, { polygon: points, base: move(nail.base), tip: move(nail.tip) });
}

export function setFinger(geometry, index, finger) {
  return replaceNail(geometry, index, { finger }, "finger");
}

export function setLandmark(geometry, index, key, p) {
  return replaceNail(geometry, index, { [key]: point(p) }, "landmarks");
}

/**
 * Aim a nail's arrow at image point p: the tip where the line from the outline's area centroid towards p leaves
 * the outline, the base where it leaves it on the other side (the axis ends suggestions and click proposals
 * use, ml.postprocess.axis_ends), confirmed. Null when p is the centroid or the line misses the outline.
 */
export function aimLandmarks(geometry, index, p) {
  const nail = geometry.nails[index];
  if (!nail || nail.polygon.length < 3) return null;
  const c = centroid(nail.polygon);
  const length = Math.hypot(p[0] - c[0], p[1] - c[1]);
  if (length === 0) return null;
  const ends = axisEnds(nail.polygon, c, [(p[0] - c[0]) / length, (p[1] - c[1]) / length]);
  if (!ends) return null;
  return replaceNail(geometry, index, { base: roundPoint(ends[0]), tip: roundPoint(ends[1]) }, "landmarks");
}

export function swapLandmarks(geometry, index) {
  const nail = geometry.nails[index];
  return replaceNail(geometry, index, { base: nail.tip, tip: nail.base }, "landmarks");
}

export function clearLandmarks(geometry, index) {
  return replaceNail(geometry, index, { base: null, tip: null }, "landmarks");
}

/**
 * What is suggested for one nail, field by field (the one rule of the ghosts and of accepting them): a missing
 * field, or one marked suggested, offers `suggestion`'s ({finger, confidence, base, tip, direction_confidence}
 * from /label-suggestions/: read from the nail's outline and the other nails as they are now, so it supersedes
 * an older suggestion, e.g. a draft's made before its outline was corrected); a field marked suggested without
 * one offers the nail's own value and the mark's confidence. Returns {finger, fingerConfidence} and {base, tip,
 * directionConfidence} for what is offered ({} when nothing is).
 */
export function suggestedFields(nail, suggestion) {
  const marks = suggestedMarks(nail);
  const out = {};
  const fingerOpen = marks.finger !== undefined || nail.finger === null;
  if (fingerOpen && suggestion && Number.isInteger(suggestion.finger)) {
    Object.assign(out, { finger: suggestion.finger, fingerConfidence: suggestion.confidence });
  } else if (marks.finger !== undefined) Object.assign(out, { finger: nail.finger, fingerConfidence: marks.finger });
  const landmarksOpen = marks.landmarks !== undefined || (nail.base === null && nail.tip === null);
  if (landmarksOpen && suggestion && suggestion.base && suggestion.tip) {
    Object.assign(out, { base: suggestion.base, tip: suggestion.tip, directionConfidence: suggestion.direction_confidence });
  } else if (marks.landmarks !== undefined) {
    Object.assign(out, { base: nail.base, tip: nail.tip, directionConfidence: marks.landmarks });
  }
  return out;
}

/**
 * Accept the suggestions of one nail (`suggestedFields`): a field marked suggested keeps its value and loses the
 * mark; a missing field takes the value of `suggestion`. Null when nothing changes.
 */
export function acceptSuggestion(geometry, index, suggestion) {
  const nail = geometry.nails[index];
  const offered = suggestedFields(nail, suggestion);
  const changes = {};
  if ("finger" in offered) changes.finger = offered.finger;
  if ("base" in offered) Object.assign(changes, { base: point(offered.base), tip: point(offered.tip) });
  if (!Object.keys(changes).length) return null;
  const { suggested, ...rest } = nail;
  const nails = geometry.nails.slice();
  nails[index] = { ...rest, ...changes };
  return { ...geometry, nails };
}

function validSelection(geometry, selection) {
  if (!selection) return null;
  const shape = shapeOf(geometry, selection.kind, selection.index);
  if (!shape) return null;
  const vertex = Number.isInteger(selection.vertex) && selection.vertex < shape.length ? selection.vertex : null;
  return { kind: selection.kind, index: selection.index, vertex };
}

/**
 * Geometry + selection with undo/redo. Listeners: on("change", fn({source, label})) after every edit, undo,
 * redo, reset; on("select", fn(selection)) when only the selection changed.
 */
export class Scene {
  constructor(geometry) {
    this.listeners = { change: [], select: [] };
    this.history = new History({ geometry: normalizeIn(geometry), selection: null });
  }

  get geometry() {
    return this.history.present.geometry;
  }

  get selection() {
    return this.history.present.selection;
  }

  get selectedNail() {
    const s = this.selection;
    return s && s.kind === "nail" ? this.geometry.nails[s.index] : null;
  }

  on(type, fn) {
    this.listeners[type].push(fn);
  }

  emit(type, detail) {
    for (const fn of this.listeners[type]) fn(detail);
  }

  /** One undoable edit. */
  commit(geometry, label, selection = this.selection) {
    if (geometry === this.geometry) return;
    this.history.push({ geometry, selection: validSelection(geometry, selection) }, label);
    this.emit("change", { source: "edit", label });
  }

  select(selection) {
    const next = validSelection(this.geometry, selection);
    const now = this.selection;
    if (JSON.stringify(next) === JSON.stringify(now)) return;
    this.history.replacePresent({ geometry: this.geometry, selection: next });
    this.emit("select", next);
  }

  undo() {
    const step = this.history.undo();
    if (step) this.emit("change", { source: "undo", label: step.label });
    return step;
  }

  redo() {
    const step = this.history.redo();
    if (step) this.emit("change", { source: "redo", label: step.label });
    return step;
  }

  /** Replace everything and forget the history (a fresh load from the server). */
  reset(geometry) {
    this.history.reset({ geometry: normalizeIn(geometry), selection: null });
    this.emit("change", { source: "reset", label: "load" });
  }

  /** Replace everything as one undoable step (e.g. "reload theirs": Ctrl-Z brings yours back). */
  replaceAll(geometry, label) {
    this.commit(normalizeIn(geometry), label, null);
  }
}
