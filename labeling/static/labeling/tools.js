// Mouse interaction with the labels: the select/edit tool (drag vertices, landmarks and whole shapes,
// insert a vertex by clicking an edge, delete one with Alt-click or right-click), the polygon tools
// (nail, ignore region), the base/tip tool, and pan / zoom. Edits become one undo step each (a drag is
// one step, committed on release); while dragging, the scene layer is drawn once without the dragged
// shape and only the interaction layer follows the mouse. The click tool (and Ctrl/Cmd+click in any tool) hands
// its clicks to the ClickNail of click.js (`editor.clicker`), which proposes the nail under the click.
// Why this file is a little over 600 lines: it is one Editor whose tools share one selection, drag and undo state.

import { fingerCode, fingerOf, fingerName } from "./fingers.js";
import {
  LANDMARK_TOLERANCE, area, bbox, checkPolygon, clampToImage, nearestEdge, pointInPolygon, polygonDistance,
  roundPoint, samePoint, shortReason, suggestedMarks, validate,
} from "./geometry.js";
import { drawArrow, drawHandle, drawIgnore, drawLabels, drawNail, tracePolygon } from "./render.js";
import * as ops from "./scene.js";

const VERTEX_HIT = 8;     // screen px
const EDGE_HIT = 6;
const CLOSE_HIT = 9;
const NEAR_NAIL = 14;
const DRAG_THRESHOLD = 3;

export const TOOL_NAMES = { select: "Select / edit", nail: "Draw nail", ignore: "Draw ignore region", landmarks: "Base & tip",
  click: "Click a nail" };

function dist(a, b) {
  return Math.hypot(a[0] - b[0], a[1] - b[1]);
}

export class Editor {
  constructor({ stage, view, scene, width, height, onMessage = () => {}, onPointer = () => {}, onTool = () => {} }) {
    Object.assign(this, { stage, view, scene, width, height, onMessage, onPointer, onTool });
    this.tool = "select";
    this.drawing = [];          // vertices of the polygon being drawn (image px)
    this.drag = null;
    this.pointer = null;        // last mouse position on the stage (CSS px)
    this.hand = null;           // "L" | "R": the hand that digit keys 1-5 refer to
    this.pendingTip = null;     // nail index whose base was just placed with the base & tip tool
    this.landmarksReturn = null; // the tool to go back to once the base & tip tool has done one nail
    this.readOnly = false;
    this.spaceDown = false;
    this.issues = new Map();    // "nail:3" -> [{rule, message, level}]
    this.hidden = false;
    this.cursor = "";
    this.clicker = null;        // a ClickNail (click.js), set by the page
    this.proposed = null;       // the ProposedNails (proposed.js), set by the page
    stage.painters.scene = (ctx) => this.paintScene(ctx);
    stage.painters.ui = (ctx) => this.paintUI(ctx);
    const el = stage.top;
    el.addEventListener("pointerdown", (e) => this.onPointerDown(e));
    el.addEventListener("pointermove", (e) => this.onPointerMove(e));
    el.addEventListener("pointerup", (e) => this.onPointerUp(e));
    el.addEventListener("pointercancel", (e) => this.onPointerUp(e, true));
    el.addEventListener("lostpointercapture", (e) => this.onPointerUp(e));
    el.addEventListener("pointerleave", () => { if (!this.drag) { this.pointer = null; this.stage.request("ui"); } });
    el.addEventListener("wheel", (e) => this.onWheel(e), { passive: false });
    el.addEventListener("dblclick", (e) => this.onDoubleClick(e));
    el.addEventListener("contextmenu", (e) => e.preventDefault());
    el.addEventListener("mousedown", (e) => { if (e.button === 1) e.preventDefault(); });  // no autoscroll on middle-drag
    el.addEventListener("auxclick", (e) => e.preventDefault());
  }

  get geometry() {
    return this.scene.geometry;
  }

  imagePoint(s) {
    return this.view.toImage(s[0], s[1]);
  }

  screenPoint(p) {
    return this.view.toScreen(p[0], p[1]);
  }

  setTool(tool) {
    if (this.readOnly && tool !== "select") return;
    if (this.drawing.length && tool !== this.tool) this.drawing = [];
    if (this.clicker && tool !== "click") this.clicker.drop();
    this.pendingTip = null;
    // Base & tip with a nail selected is for that nail: once its tip is placed, the tool before comes back
    // (as CVAT's draw tools do); with none selected it stays on, nail after nail.
    const selected = this.scene.selection && this.scene.selection.kind === "nail";
    this.landmarksReturn = tool === "landmarks" && selected && this.tool !== "landmarks" ? this.tool : null;
    this.tool = tool;
    this.onTool(tool);
    this.stage.request("ui");
    const hints = {
      nail: "Draw a nail: click its outline point by point; click the first point or press Enter to close.",
      ignore: "Draw an ignore region (e.g. a painted or hidden nail): click its outline, Enter to close.",
      landmarks: this.landmarksReturn
        ? "Base & tip: click the nail where it starts (cuticle), then where it ends (free edge); then back to " +
          `${TOOL_NAMES[this.landmarksReturn]}.`
        : "Base & tip: click a nail where it starts (cuticle), then where it ends (free edge); nail after nail.",
      select: "Select: drag vertices, landmarks or whole nails; click an edge of the selected nail to add a vertex.",
      click: "Click a nail: click inside a nail to get its outline, finger and base/tip; Enter accepts, Esc drops; " +
        "click inside it or Alt+click anywhere (more nail) / Shift+click outside it (not nail) to correct.",
    };
    this.onMessage(hints[tool]);
  }

  setSpace(down) {
    this.spaceDown = down;
    this.stage.request("ui");
  }

  // --- hit testing (screen distances) ---------------------------------------------------------------

  /** Shapes in hit order: the selected one first, then the topmost (last drawn) first. */
  shapeOrder() {
    const g = this.geometry, sel = this.scene.selection;
    const list = [];
    if (sel) list.push([sel.kind, sel.index]);
    for (let i = g.nails.length - 1; i >= 0; i--) if (!(sel && sel.kind === "nail" && sel.index === i)) list.push(["nail", i]);
    for (let i = g.ignore.length - 1; i >= 0; i--) if (!(sel && sel.kind === "ignore" && sel.index === i)) list.push(["ignore", i]);
    return list;
  }

  hitTest(s) {
    const g = this.geometry, sel = this.scene.selection;
    let best = null;
    const consider = (hit, d, radius, bonus) => {
      if (d <= radius && (!best || d - bonus < best.score)) best = { ...hit, score: d - bonus };
    };
    for (const [kind, index] of this.shapeOrder()) {
      const selected = sel && sel.kind === kind && sel.index === index;
      const bonus = selected ? 2 : 0;
      const points = ops.shapeOf(g, kind, index);
      points.forEach((p, vertex) => consider({ type: "vertex", kind, index, vertex }, dist(this.screenPoint(p), s), VERTEX_HIT, bonus));
      if (kind === "nail") {
        for (const key of ["base", "tip"]) {
          const p = g.nails[index][key];
          if (p) consider({ type: "landmark", kind, index, key }, dist(this.screenPoint(p), s), VERTEX_HIT, bonus + 0.5);
        }
      }
    }
    if (best) return best;
    const p = this.imagePoint(s);
    if (sel) {
      const points = ops.shapeOf(g, sel.kind, sel.index);
      const edge = nearestEdge(p, points);
      if (edge && edge.d * this.view.scale <= EDGE_HIT) {
        return { type: "edge", kind: sel.kind, index: sel.index, edge: edge.edge, point: roundPoint(edge.point) };
      }
    }
    return this.shapeAt(p);
  }

  /** The smallest shape containing image point p (nails before ignore regions). */
  shapeAt(p, kinds = ["nail", "ignore"]) {
    const g = this.geometry;
    for (const kind of kinds) {
      let found = null;
      const list = kind === "nail" ? g.nails.map((n) => n.polygon) : g.ignore;
      list.forEach((points, index) => {
        if (points.length >= 3 && pointInPolygon(p, points)) {
          const a = area(points);
          if (!found || a < found.area) found = { type: "shape", kind, index, area: a };
        }
      });
      if (found) return found;
    }
    return null;
  }

  /** The nail under or next to the screen point (for landmarks and finger keys). */
  nailNear(s) {
    const p = this.imagePoint(s);
    const inside = this.shapeAt(p, ["nail"]);
    if (inside) return inside.index;
    let best = null;
    this.geometry.nails.forEach((nail, index) => {
      const d = polygonDistance(p, nail.polygon) * this.view.scale;
      if (d <= NEAR_NAIL && (!best || d < best.d)) best = { index, d };
    });
    return best ? best.index : null;
  }

  // --- pointer events ---------------------------------------------------------------------------------

  onPointerDown(e) {
    const s = [e.offsetX, e.offsetY];
    this.pointer = s;
    this.stage.top.focus({ preventScroll: true });
    if (e.button === 1 || (e.button === 0 && this.spaceDown)) {
      e.preventDefault();
      return this.startDrag(e, { type: "pan", last: s });
    }
    if (e.button === 2) return this.onRightClick(s);
    if (e.button !== 0) return;
    if (this.readOnly) {
      const hit = this.shapeAt(this.imagePoint(s));
      this.scene.select(hit ? { kind: hit.kind, index: hit.index } : null);
      return this.startDrag(e, { type: "pan", last: s });
    }
    if (this.clicker && (this.tool === "click" || (!this.drawing.length && (e.ctrlKey || e.metaKey ||
        (this.clicker.active && (e.shiftKey || e.altKey || this.clicker.contains(this.imagePoint(s)))))))) {
      // while a proposal is shown, clicks in, Alt+clicks anywhere (more nail) and Shift+clicks (less) correct it
      return this.clickNail(s, { negative: e.shiftKey, extend: e.altKey });
    }
    if (e.shiftKey && !this.drawing.length) {
      // Shift+drag from a nail's base to its tip draws its arrow, in any tool while no outline is being drawn:
      // both ends in one stroke (a Shift+click selects the nail)
      const index = this.nailNear(s);
      if (index !== null) {
        this.pendingTip = null;
        this.scene.select({ kind: "nail", index });
        const g = this.geometry;
        return this.startDrag(e, { type: "arrow", index, start: g, preview: g, origin: this.imagePoint(s) });
      }
    }
    if (this.tool === "nail" || this.tool === "ignore") return this.addDrawPoint(s);
    if (this.tool === "landmarks") return this.landmarkClick(s);
    const hit = this.hitTest(s);
    if (!hit) {
      this.scene.select(null);
      if (this.proposed && this.proposed.pick(this.imagePoint(s))) return null;  // a proposed nail (proposed.js)
      return this.startDrag(e, { type: "pan", last: s });
    }
    const g = this.geometry;
    if (hit.type === "vertex") {
      if (e.altKey) return this.deleteVertex(hit.kind, hit.index, hit.vertex);
      this.scene.select({ kind: hit.kind, index: hit.index, vertex: hit.vertex });
      return this.startDrag(e, { type: "vertex", kind: hit.kind, index: hit.index, vertex: hit.vertex, start: g, preview: g });
    }
    if (hit.type === "landmark") {
      this.scene.select({ kind: "nail", index: hit.index });
      return this.startDrag(e, { type: "landmark", index: hit.index, key: hit.key, start: g, preview: g });
    }
    if (hit.type === "edge") {
      const preview = ops.insertVertex(g, hit.kind, hit.index, hit.edge, hit.point);
      this.scene.select({ kind: hit.kind, index: hit.index, vertex: hit.edge + 1 });
      return this.startDrag(e, { type: "vertex", kind: hit.kind, index: hit.index, vertex: hit.edge + 1, start: preview,
        preview, inserted: true, excluding: true });
    }
    this.scene.select({ kind: hit.kind, index: hit.index });
    return this.startDrag(e, { type: "move", kind: hit.kind, index: hit.index, start: g, preview: g, origin: this.imagePoint(s) });
  }

  startDrag(e, drag) {
    this.drag = { ...drag, down: [e.offsetX, e.offsetY], moved: false };
    this.stage.top.setPointerCapture(e.pointerId);
    if (drag.excluding) this.stage.request("scene", "ui");
  }

  onPointerMove(e) {
    const s = [e.offsetX, e.offsetY];
    this.pointer = s;
    const drag = this.drag;
    if (!drag) return this.stage.request("ui");
    if (!drag.moved && dist(s, drag.down) < DRAG_THRESHOLD) return;
    drag.moved = true;
    if (drag.type === "pan") {
      this.view.panBy(s[0] - drag.last[0], s[1] - drag.last[1]);
      drag.last = s;
      return this.stage.viewChanged();
    }
    if (!drag.excluding) {  // first real move: the scene layer is redrawn once, without the dragged shape
      drag.excluding = true;
      this.stage.request("scene");
    }
    const p = this.imagePoint(s);
    if (drag.type === "vertex") {
      drag.preview = ops.moveVertex(drag.start, drag.kind, drag.index, drag.vertex, clampToImage(p, this.width, this.height));
    } else if (drag.type === "landmark") {
      drag.preview = ops.setLandmark(drag.start, drag.index, drag.key, this.snapLandmark(p, drag.start.nails[drag.index].polygon));
    } else if (drag.type === "arrow") {
      const polygon = drag.start.nails[drag.index].polygon;
      const based = ops.setLandmark(drag.start, drag.index, "base", this.snapLandmark(drag.origin, polygon));
      drag.preview = ops.setLandmark(based, drag.index, "tip", this.snapLandmark(clampToImage(p, this.width, this.height), polygon));
    } else if (drag.type === "move") {
      const points = ops.shapeOf(drag.start, drag.kind, drag.index);
      const box = bbox(points);
      const clamp = (v, lo, hi) => Math.min(Math.max(0, hi), Math.max(Math.min(0, lo), v));  // stay in the image
      const dx = clamp(p[0] - drag.origin[0], -box.x0, this.width - box.x1);
      const dy = clamp(p[1] - drag.origin[1], -box.y0, this.height - box.y1);
      drag.preview = ops.translateShape(drag.start, drag.kind, drag.index, dx, dy);
    }
    this.stage.request("ui");
  }

  onPointerUp(e, cancelled = false) {
    const drag = this.drag;
    if (!drag) return;
    this.drag = null;
    if (this.stage.top.hasPointerCapture(e.pointerId)) this.stage.top.releasePointerCapture(e.pointerId);
    if (!cancelled && (drag.moved || drag.inserted) && drag.type !== "pan") {
      const what = drag.kind === "ignore" ? "ignore region" : "nail";
      const labels = { vertex: drag.inserted ? "Insert vertex" : "Move vertex", landmark: `Move ${drag.key}`, move: `Move ${what}`,
        arrow: "Draw base → tip" };
      const selection = drag.type === "vertex" ? { kind: drag.kind, index: drag.index, vertex: drag.vertex }
        : { kind: drag.kind || "nail", index: drag.index };
      this.scene.commit(drag.preview, labels[drag.type], selection);
    }
    if (drag.excluding) this.stage.request("scene");
    this.stage.request("ui");
  }

  onRightClick(s) {
    if (this.readOnly) return;
    if (this.drawing.length) return this.undoDrawPoint();
    if (this.clicker && this.clicker.active) return this.clickNail(s, { negative: true });
    const hit = this.hitTest(s);
    if (hit && hit.type === "vertex") this.deleteVertex(hit.kind, hit.index, hit.vertex);
  }

  onDoubleClick(e) {
    if ((this.tool === "nail" || this.tool === "ignore") && this.drawing.length >= 3) this.closeDrawing();
  }

  onWheel(e) {
    e.preventDefault();
    let dy = e.deltaY;
    if (e.deltaMode === 1) dy *= 16;
    else if (e.deltaMode === 2) dy *= 400;
    this.view.zoomAt(e.offsetX, e.offsetY, Math.exp(-Math.max(-300, Math.min(300, dy)) * 0.002));
    this.pointer = [e.offsetX, e.offsetY];
    this.stage.viewChanged();
  }

  // --- polygon drawing --------------------------------------------------------------------------------

  addDrawPoint(s) {
    const p = roundPoint(clampToImage(this.imagePoint(s), this.width, this.height));
    if (this.drawing.length >= 3 && dist(this.screenPoint(this.drawing[0]), s) <= CLOSE_HIT) return this.closeDrawing();
    if (this.drawing.length && samePoint(this.drawing[this.drawing.length - 1], p)) return;
    this.drawing.push(p);
    if (this.drawing.length === 1) this.onMessage("Keep clicking the outline; Enter or a click on the first point closes it, Backspace removes the last point, Esc cancels.");
    this.stage.request("ui");
  }

  undoDrawPoint() {
    this.drawing.pop();
    this.stage.request("ui");
  }

  closeDrawing() {
    if (this.drawing.length < 3) {
      this.onMessage("A polygon needs at least 3 points.");
      return false;
    }
    const points = this.drawing;
    this.drawing = [];
    if (this.tool === "ignore") {
      const { geometry, index } = ops.addIgnore(this.geometry, points);
      this.scene.commit(geometry, "Draw ignore region", { kind: "ignore", index });
      this.onMessage(`Ignore region ${index + 1} added.`);
    } else {
      const { geometry, index } = ops.addNail(this.geometry, points);
      this.scene.commit(geometry, "Draw nail", { kind: "nail", index });
      this.onMessage(`Nail ${index + 1} added. Its finger: L or R, then 1-5. Base & tip: A (or B / T at the cursor).`);
    }
    this.stage.request("ui");
    return true;
  }

  // --- click a nail ---------------------------------------------------------------------------------------

  /** A click for the nail proposal (click.js): positive, or negative with Shift / right-click; `extend` (Alt) adds a
   * positive point to the proposal even outside it. */
  clickNail(s, { negative = false, extend = false } = {}) {
    const p = clampToImage(this.imagePoint(s), this.width, this.height);
    return this.clicker.click(p, { negative, extend });
  }

  /** Enter with a proposal: add it as a nail (one undoable edit) and select it. */
  acceptProposal() {
    const added = this.clicker && this.clicker.accept(this.geometry);
    if (!added) return false;
    this.scene.commit(added.geometry, "Click a nail", { kind: "nail", index: added.index });
    this.onMessage(`Nail ${added.index + 1} added with the finger and base/tip shown; fix either as on any nail (Shift+drag base → tip redraws the arrow).`);
    this.stage.request("ui");
    return true;
  }

  // --- landmarks ----------------------------------------------------------------------------------------

  /** Landmarks must lie on their nail: a point further out than the tolerance goes to the nearest edge. */
  snapLandmark(p, polygon) {
    if (polygon.length < 3 || polygonDistance(p, polygon) <= LANDMARK_TOLERANCE - 0.05) return roundPoint(p);
    return roundPoint(nearestEdge(p, polygon).point);
  }

  placeLandmark(index, key, p) {
    const nail = this.geometry.nails[index];
    const q = this.snapLandmark(p, nail.polygon);
    this.scene.commit(ops.setLandmark(this.geometry, index, key, q), `Place ${key}`, { kind: "nail", index });
  }

  landmarkClick(s) {
    const p = this.imagePoint(s);
    if (this.pendingTip !== null && this.geometry.nails[this.pendingTip]) {
      const index = this.pendingTip;
      this.pendingTip = null;
      this.placeLandmark(index, "tip", p);
      const back = this.landmarksReturn;
      if (back) this.setTool(back);
      this.onMessage(back ? `Nail ${index + 1}: base and tip set.` : `Nail ${index + 1}: base and tip set. Click the next nail's base.`);
      return;
    }
    const index = this.nailNear(s);
    if (index === null) {
      this.onMessage("Click on a nail: first its base (cuticle), then its tip.");
      return;
    }
    this.placeLandmark(index, "base", p);
    this.pendingTip = index;
    this.onMessage(`Nail ${index + 1}: now click its tip.`);
    this.stage.request("ui");
  }

  /** B / T keys: put the selected nail's (or the pointed nail's) base or tip at the mouse position. */
  /** The nail a key acts on at the mouse (B, T, Shift+T): the pointed one, else the selected one; null (and
   * a message naming `keyName`) when there is no mouse on the image or no such nail. */
  nailAtCursor(keyName) {
    if (!this.pointer) {
      this.onMessage(`Point at the nail with the mouse, then press ${keyName}.`);
      return null;
    }
    const sel = this.scene.selection;
    const index = this.nailNear(this.pointer) ?? (sel && sel.kind === "nail" ? sel.index : null);
    if (index === null) this.onMessage(`Point at a nail (or select one) and press ${keyName}.`);
    return index;
  }

  landmarkAtCursor(key) {
    if (this.readOnly) return;
    const index = this.nailAtCursor(key === "base" ? "B" : "T");
    if (index !== null) this.placeLandmark(index, key, this.imagePoint(this.pointer));
  }

  /** Shift+T: aim the pointed (or selected) nail's arrow at the mouse (scene.js aimLandmarks): base and tip in one key. */
  aimAtCursor() {
    if (this.readOnly) return;
    const index = this.nailAtCursor("Shift+T");
    if (index === null) return;
    const aimed = ops.aimLandmarks(this.geometry, index, this.imagePoint(this.pointer));
    if (!aimed) return this.onMessage("Point away from the nail's middle, towards its tip, and press Shift+T.");
    this.scene.commit(aimed, "Aim base → tip", { kind: "nail", index });
  }

  swapLandmarks() {
    const index = this.targetNail();
    if (index === null) return;
    const nail = this.geometry.nails[index];
    if (!nail.base && !nail.tip) return this.onMessage("This nail has no base or tip yet.");
    this.scene.commit(ops.swapLandmarks(this.geometry, index), "Swap base and tip", { kind: "nail", index });
  }

  clearLandmarks() {
    const index = this.targetNail();
    if (index === null) return;
    this.scene.commit(ops.clearLandmarks(this.geometry, index), "Clear base and tip", { kind: "nail", index });
  }

  // --- finger classes -----------------------------------------------------------------------------------

  /** The selected nail, else the nail under the mouse. */
  targetNail() {
    const sel = this.scene.selection;
    if (sel && sel.kind === "nail") return sel.index;
    const index = this.pointer ? this.nailNear(this.pointer) : null;
    if (index === null) this.onMessage("Select a nail first (click it, or Tab).");
    return index;
  }

  setHand(hand) {
    this.hand = hand;
    this.onMessage(`${hand === "L" ? "Left" : "Right"} hand: now 1-5 = thumb, index, middle, ring, little.`);
  }

  setFinger(finger) {
    if (this.readOnly) return;
    const index = this.targetNail();
    if (index === null) return;
    const nail = this.geometry.nails[index];
    if (nail.finger === finger && suggestedMarks(nail).finger === undefined) return;  // picking a suggested finger confirms it
    this.scene.commit(ops.setFinger(this.geometry, index, finger), finger ? `Set finger ${fingerCode(finger)}` : "Clear finger",
      { kind: "nail", index });
    this.onMessage(finger ? `Nail ${index + 1}: ${fingerName(finger)}.` : `Nail ${index + 1}: finger cleared.`);
  }

  setFingerDigit(digit) {
    if (!this.hand) return this.onMessage("Press L (left hand) or R (right hand) first, then 1-5.");
    this.setFinger(fingerOf(this.hand, digit));
  }

  // --- other edits ----------------------------------------------------------------------------------------

  deleteVertex(kind, index, vertex) {
    const next = ops.removeVertex(this.geometry, kind, index, vertex);
    if (!next) return this.onMessage("A polygon keeps at least 3 vertices: delete the whole shape instead (select it, Delete).");
    this.scene.commit(next, "Delete vertex", { kind, index, vertex: null });
  }

  deleteSelection() {
    const sel = this.scene.selection;
    if (!sel || this.readOnly) return;
    if (sel.vertex !== null && sel.vertex !== undefined) return this.deleteVertex(sel.kind, sel.index, sel.vertex);
    this.scene.commit(ops.removeShape(this.geometry, sel.kind, sel.index), sel.kind === "nail" ? "Delete nail" : "Delete ignore region", null);
    this.onMessage(`${sel.kind === "nail" ? "Nail" : "Ignore region"} ${sel.index + 1} deleted (Ctrl-Z brings it back).`);
  }

  nudge(dx, dy) {
    const sel = this.scene.selection;
    if (!sel || this.readOnly) return false;
    const g = this.geometry;
    if (sel.vertex !== null && sel.vertex !== undefined) {
      const p = ops.shapeOf(g, sel.kind, sel.index)[sel.vertex];
      this.scene.commit(ops.moveVertex(g, sel.kind, sel.index, sel.vertex, clampToImage([p[0] + dx, p[1] + dy], this.width, this.height)),
        "Nudge vertex", sel);
    } else {
      this.scene.commit(ops.translateShape(g, sel.kind, sel.index, dx, dy), "Nudge", sel);
    }
    return true;
  }

  selectNext(step) {
    const n = this.geometry.nails.length;
    if (!n) return;
    const sel = this.scene.selection;
    const current = sel && sel.kind === "nail" ? sel.index : step > 0 ? -1 : n;
    const index = (((current + step) % n) + n) % n;
    this.scene.select({ kind: "nail", index });
    const box = bbox(this.geometry.nails[index].polygon);
    if (this.view.ensureVisible((box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2)) this.stage.viewChanged();
  }

  zoomToSelection() {
    const sel = this.scene.selection;
    if (!sel) return false;
    const box = bbox(ops.shapeOf(this.geometry, sel.kind, sel.index));
    this.view.showRect(box.x0, box.y0, box.x1, box.y1, { margin: 0.6 });
    this.stage.viewChanged();
    return true;
  }

  /** Esc: stop drawing, then drop the pending tip, then the selected vertex, then the selection. */
  cancel() {
    if (this.clicker && this.clicker.drop()) this.onMessage("Proposal dropped.");
    else if (this.drawing.length) {
      this.drawing = [];
      this.onMessage("Drawing cancelled.");
    } else if (this.pendingTip !== null) this.pendingTip = null;
    else if (this.tool !== "select") this.setTool("select");
    else {
      const sel = this.scene.selection;
      if (sel && sel.vertex !== null && sel.vertex !== undefined) this.scene.select({ kind: sel.kind, index: sel.index });
      else this.scene.select(null);
    }
    this.stage.request("ui");
  }

  // --- painting -----------------------------------------------------------------------------------------

  excluded() {
    const d = this.drag;
    return d && d.excluding && d.type !== "pan" ? { kind: d.kind || "nail", index: d.index } : null;
  }

  paintScene(ctx) {
    drawLabels(ctx, this.view, this.geometry, { selection: this.scene.selection, exclude: this.excluded(), issues: this.issues });
  }

  setCursor(cursor) {
    if (cursor !== this.cursor) {
      this.cursor = cursor;
      this.stage.top.style.cursor = cursor;
    }
  }

  paintUI(ctx) {
    const { view } = this;
    const s = this.pointer;
    this.onPointer(s ? this.imagePoint(s) : null);
    const excluded = this.excluded();
    if (excluded) this.paintDragged(ctx, excluded);
    let cursor = this.tool === "select" ? "default" : "crosshair";
    if (this.spaceDown || (this.drag && this.drag.type === "pan")) cursor = this.drag ? "grabbing" : "grab";
    else if (this.drag) cursor = { move: "move", arrow: "crosshair" }[this.drag.type] || "grabbing";
    else if (s && this.tool === "select" && !this.readOnly) {
      const hit = this.hitTest(s);
      if (hit) cursor = this.paintHover(ctx, hit);
    }
    if (this.drawing.length) this.paintDrawing(ctx, s);
    if (this.clicker) this.clicker.paint(ctx, view);
    if (this.pendingTip !== null && s && this.geometry.nails[this.pendingTip]) {
      const base = this.geometry.nails[this.pendingTip].base;
      if (base) drawArrow(ctx, view, base, this.imagePoint(s), { color: "#ffd600", dashed: true });
    }
    if (s && this.tool !== "select" && !this.spaceDown) {
      ctx.strokeStyle = "rgba(255,255,255,0.35)";
      ctx.lineWidth = 1;
      ctx.beginPath();
      ctx.moveTo(s[0] + 0.5, 0);
      ctx.lineTo(s[0] + 0.5, view.height);
      ctx.moveTo(0, s[1] + 0.5);
      ctx.lineTo(view.width, s[1] + 0.5);
      ctx.stroke();
    }
    this.setCursor(cursor);
  }

  paintDragged(ctx, { kind, index }) {
    const g = this.drag.preview;
    const sel = this.scene.selection;
    if (kind === "nail") {
      const nail = g.nails[index];
      const report = validate({ nails: [nail] }, this.width, this.height);
      const reasons = report.errors.map((e) => ({ text: shortReason(e.rule), level: "error" }));
      drawNail(ctx, this.view, nail, { selected: true, selectedVertex: sel ? sel.vertex : null, invalid: reasons.length > 0,
        reasons, label: `${index + 1} ${fingerCode(nail.finger)}` });
    } else {
      const errors = [];
      checkPolygon(g.ignore[index], this.width, this.height, 1, (rule) => errors.push({ text: shortReason(rule), level: "error" }));
      drawIgnore(ctx, this.view, g.ignore[index], { selected: true, invalid: errors.length > 0, reasons: errors, label: `ignore ${index + 1}` });
    }
  }

  paintHover(ctx, hit) {
    const { view } = this;
    if (hit.type === "vertex" || hit.type === "landmark") {
      const p = hit.type === "vertex" ? ops.shapeOf(this.geometry, hit.kind, hit.index)[hit.vertex] : this.geometry.nails[hit.index][hit.key];
      const [x, y] = this.screenPoint(p);
      ctx.beginPath();
      ctx.arc(x, y, 8, 0, Math.PI * 2);
      ctx.strokeStyle = "#fff";
      ctx.lineWidth = 2;
      ctx.stroke();
      return "pointer";
    }
    if (hit.type === "edge") {
      const [x, y] = this.screenPoint(hit.point);
      drawHandle(ctx, x, y, { radius: 4, fill: "rgba(255,255,255,0.8)", stroke: "#000" });
      ctx.fillStyle = "#000";
      ctx.font = "bold 11px system-ui";
      ctx.fillText("+", x - 3, y + 4);
      return "copy";
    }
    const sel = this.scene.selection;
    if (!(sel && sel.kind === hit.kind && sel.index === hit.index)) {
      tracePolygon(ctx, view, ops.shapeOf(this.geometry, hit.kind, hit.index));
      ctx.strokeStyle = "rgba(255,255,255,0.9)";
      ctx.lineWidth = 2;
      ctx.stroke();
    }
    return "move";
  }

  paintDrawing(ctx, s) {
    const { view } = this;
    const pts = this.drawing;
    const color = this.tool === "ignore" ? "#e0e0e0" : "#00e5ff";
    tracePolygon(ctx, view, pts, false);
    if (s) ctx.lineTo(s[0], s[1]);
    ctx.strokeStyle = "rgba(0,0,0,0.6)";
    ctx.lineWidth = 3.5;
    ctx.stroke();
    ctx.strokeStyle = color;
    ctx.lineWidth = 1.5;
    ctx.stroke();
    const closable = pts.length >= 3 && s && dist(this.screenPoint(pts[0]), s) <= CLOSE_HIT;
    pts.forEach((p, i) => {
      const [x, y] = this.screenPoint(p);
      drawHandle(ctx, x, y, { radius: i === 0 && closable ? 7 : 4, fill: i === 0 ? color : "#fff", stroke: "#000", square: i === 0 });
    });
  }
}
