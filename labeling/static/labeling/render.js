// Layered canvases over the image, redrawn only when their content changes:
//   image   the photo (drawn from a resolution pyramid, only when the view changes; brightness and
//           contrast are a CSS filter on this canvas: no redraw at all);
//   raster  the rasterizer's overlay PNG (view change or a new overlay);
//   scene   every label except the one being dragged (edit, selection, view change: never per mouse move);
//   ui      the interaction layer: dragged shape, polygon being drawn, hover, cursor (per animation frame).
// Requests are coalesced: `request("ui")` any number of times per frame costs one redraw.

import { fingerCode, fingerColor } from "./fingers.js";
import { bbox, shortReason } from "./geometry.js";

export const LAYERS = ["image", "raster", "scene", "ui"];
export const HANDLE_RADIUS = 4.5;

export class Stage {
  constructor(container, view) {
    this.container = container;
    this.view = view;
    this.canvases = {};
    this.contexts = {};
    for (const name of LAYERS) {
      const canvas = document.createElement("canvas");
      canvas.className = `layer layer-${name}`;
      canvas.dataset.layer = name;
      if (name === "ui") canvas.tabIndex = -1;  // focusable: a click on the image takes the focus from inputs
      container.appendChild(canvas);
      this.canvases[name] = canvas;
      this.contexts[name] = canvas.getContext("2d", name === "image" ? { alpha: false } : undefined);
    }
    this.painters = { image: () => this.paintImage(), raster: () => this.paintRaster(), scene: () => {}, ui: () => {} };
    this.levels = [];       // image pyramid: [{source, factor}] from full resolution down
    this.raster = null;     // ImageBitmap of the rasterizer overlay, covering the whole image
    this.pending = new Set();
    this.frame = 0;
    this.stats = { image: 0, raster: 0, scene: 0, ui: 0, frames: 0 };
    this.dpr = 1;
    this.onViewChange = null;
    new ResizeObserver(() => this.resize()).observe(container);
    this.resize();
  }

  get top() {
    return this.canvases.ui;
  }

  resize() {
    const width = this.container.clientWidth, height = this.container.clientHeight;
    this.dpr = window.devicePixelRatio || 1;
    for (const canvas of Object.values(this.canvases)) {
      const w = Math.max(1, Math.round(width * this.dpr)), h = Math.max(1, Math.round(height * this.dpr));
      if (canvas.width !== w || canvas.height !== h) {
        canvas.width = w;
        canvas.height = h;
      }
    }
    this.view.setViewport(width, height);
    this.viewChanged();
  }

  /** Something moved the view: every layer follows. */
  viewChanged() {
    this.request(...LAYERS);
    if (this.onViewChange) this.onViewChange();
  }

  request(...layers) {
    for (const layer of layers) this.pending.add(layer);
    if (!this.frame) this.frame = requestAnimationFrame(() => this.flush());
  }

  flush() {
    this.frame = 0;
    const todo = this.pending;
    this.pending = new Set();
    this.stats.frames++;
    for (const name of LAYERS) {
      if (!todo.has(name)) continue;
      this.stats[name]++;
      const ctx = this.contexts[name];
      ctx.setTransform(1, 0, 0, 1, 0, 0);
      if (name !== "image") ctx.clearRect(0, 0, ctx.canvas.width, ctx.canvas.height);
      ctx.setTransform(this.dpr, 0, 0, this.dpr, 0, 0);  // painters draw in CSS pixels
      this.painters[name](ctx);
    }
  }

  /** Load the photo; first paint from the full-resolution image, then a pyramid for zoomed-out views. */
  async loadImage(url) {
    const img = new Image();
    img.decoding = "async";
    img.src = url;
    await img.decode();
    this.levels = [{ source: img, factor: 1 }];
    this.request("image");
    this.buildPyramid(img).catch(() => {});
    return img;
  }

  async buildPyramid(img) {
    if (typeof createImageBitmap !== "function") return;
    let factor = 1;
    const levels = [{ source: img, factor: 1 }];
    while (Math.max(img.naturalWidth, img.naturalHeight) * factor > 1024) {
      factor /= 2;
      const bitmap = await createImageBitmap(img, {
        resizeWidth: Math.max(1, Math.round(img.naturalWidth * factor)),
        resizeHeight: Math.max(1, Math.round(img.naturalHeight * factor)), resizeQuality: "high",
      });
      levels.push({ source: bitmap, factor });
    }
    this.levels = levels;
    this.request("image");
  }

  paintImage() {
    const ctx = this.contexts.image;
    const { view } = this;
    ctx.fillStyle = "#2b2b2e";
    ctx.fillRect(0, 0, view.width, view.height);
    if (!this.levels.length) return;
    // The smallest level that still has at least one source pixel per device pixel.
    const need = view.scale * this.dpr;
    let level = this.levels[0];
    for (const candidate of this.levels) if (candidate.factor >= need) level = candidate;
    const W = view.imageWidth, H = view.imageHeight;
    const [ix0, iy0] = view.toImage(0, 0), [ix1, iy1] = view.toImage(view.width, view.height);
    const x0 = Math.max(0, Math.floor(ix0)), y0 = Math.max(0, Math.floor(iy0));
    const x1 = Math.min(W, Math.ceil(ix1)), y1 = Math.min(H, Math.ceil(iy1));
    if (x1 <= x0 || y1 <= y0) return;
    ctx.imageSmoothingEnabled = need < 3;
    ctx.imageSmoothingQuality = "high";
    const f = level.factor;
    const [sx, sy] = view.toScreen(x0, y0);
    ctx.drawImage(level.source, x0 * f, y0 * f, (x1 - x0) * f, (y1 - y0) * f, sx, sy, (x1 - x0) * view.scale, (y1 - y0) * view.scale);
    if (!this.firstImagePaint) {  // for the benchmarks: page open -> first paint of the photo
      this.firstImagePaint = performance.now();
      performance.mark("nailset:first-image-paint");
    }
  }

  setRaster(bitmap) {
    if (this.raster && this.raster.close && this.raster !== bitmap) this.raster.close();
    this.raster = bitmap;
    this.request("raster");
  }

  paintRaster() {
    if (!this.raster) return;
    const ctx = this.contexts.raster;
    const { view } = this;
    ctx.imageSmoothingEnabled = false;  // show the raster's pixels as they are
    const [sx, sy] = view.toScreen(0, 0);
    ctx.drawImage(this.raster, sx, sy, view.imageWidth * view.scale, view.imageHeight * view.scale);
  }

  setFilter(brightness, contrast) {
    this.canvases.image.style.filter = `brightness(${brightness}) contrast(${contrast})`;
  }

  setVisible(layer, visible) {
    this.canvases[layer].style.visibility = visible ? "visible" : "hidden";
  }
}

// --- drawing labels (shared by the annotation and review pages) -------------------------------------------

export function tracePolygon(ctx, view, points, close = true) {
  ctx.beginPath();
  points.forEach((p, i) => {
    const [x, y] = view.toScreen(p[0], p[1]);
    if (i === 0) ctx.moveTo(x, y);
    else ctx.lineTo(x, y);
  });
  if (close) ctx.closePath();
}

/** A shape that is only proposed (a click proposal, a proposed nail): filled, outlined dashed over a dark halo. */
export function drawProposedShape(ctx, view, points, { fill, color, dash = [6, 4], width = 1.5 }) {
  tracePolygon(ctx, view, points);
  ctx.save();
  ctx.fillStyle = fill;
  ctx.fill();
  ctx.setLineDash(dash);
  ctx.strokeStyle = "rgba(0,0,0,0.7)";
  ctx.lineWidth = width + 2;
  ctx.stroke();
  ctx.strokeStyle = color;
  ctx.lineWidth = width;
  ctx.stroke();
  ctx.restore();
}

/** A small italic tag centred under the middle of a shape (its top `dy` screen px below it), e.g. "? R2 (84%)". */
export function drawShapeTag(ctx, view, points, text, { dy = 10, color = "#ffe9a8" } = {}) {
  const n = points.length;
  const [x, y] = view.toScreen(...points.reduce((a, p) => [a[0] + p[0] / n, a[1] + p[1] / n], [0, 0]));
  const font = "italic 600 11px system-ui, sans-serif";
  ctx.save();
  ctx.font = font;
  const width = ctx.measureText(text).width + 8;
  drawTag(ctx, x - width / 2, y + dy + 15, text, { background: "rgba(30,30,60,0.65)", color, font });
  ctx.restore();
}

export function drawHandle(ctx, x, y, { radius = HANDLE_RADIUS, fill = "#fff", stroke = "#000", width = 1.5, square = false } = {}) {
  ctx.beginPath();
  if (square) ctx.rect(x - radius, y - radius, radius * 2, radius * 2);
  else ctx.arc(x, y, radius, 0, Math.PI * 2);
  ctx.fillStyle = fill;
  ctx.fill();
  ctx.lineWidth = width;
  ctx.strokeStyle = stroke;
  ctx.stroke();
}

/** The base -> tip arrow of a nail (base: ring, tip: arrowhead). */
export function drawArrow(ctx, view, base, tip, { color = "#fff", dashed = false } = {}) {
  const [bx, by] = view.toScreen(base[0], base[1]);
  const [tx, ty] = view.toScreen(tip[0], tip[1]);
  const angle = Math.atan2(ty - by, tx - bx);
  const head = 9;
  ctx.save();
  ctx.lineCap = "round";
  for (const [stroke, width] of [["rgba(0,0,0,0.75)", 4], [color, 2]]) {
    ctx.setLineDash(dashed ? [5, 4] : []);
    ctx.beginPath();
    ctx.moveTo(bx, by);
    ctx.lineTo(tx, ty);
    ctx.strokeStyle = stroke;
    ctx.lineWidth = width;
    ctx.stroke();
    ctx.setLineDash([]);
    ctx.beginPath();
    ctx.moveTo(tx - head * Math.cos(angle - 0.45), ty - head * Math.sin(angle - 0.45));
    ctx.lineTo(tx, ty);
    ctx.lineTo(tx - head * Math.cos(angle + 0.45), ty - head * Math.sin(angle + 0.45));
    ctx.stroke();
  }
  ctx.restore();
  drawHandle(ctx, bx, by, { radius: 4, fill: color, stroke: "#000" });
}

function drawTag(ctx, x, y, text, { background = "rgba(0,0,0,0.7)", color = "#fff", font = "600 12px system-ui, sans-serif" } = {}) {
  ctx.font = font;
  const w = ctx.measureText(text).width + 8;
  ctx.fillStyle = background;
  ctx.fillRect(x, y - 15, w, 16);
  ctx.fillStyle = color;
  ctx.fillText(text, x + 4, y - 3);
  return w;
}

let hatchPattern = null;
function hatch(ctx) {
  if (!hatchPattern) {
    const tile = document.createElement("canvas");
    tile.width = tile.height = 10;
    const t = tile.getContext("2d");
    t.strokeStyle = "rgba(255,255,255,0.55)";
    t.lineWidth = 2;
    t.beginPath();
    t.moveTo(0, 10);
    t.lineTo(10, 0);
    t.stroke();
    hatchPattern = ctx.createPattern(tile, "repeat");
  }
  return hatchPattern;
}

/**
 * One nail. style: {selected, hovered, invalid, incomplete, color, fillAlpha, vertices ("all"|"none"),
 * selectedVertex, label, dashed, reasons: [text]}.
 */
export function drawNail(ctx, view, nail, style = {}) {
  const points = nail.polygon;
  if (!points || !points.length) return;
  const color = style.color || fingerColor(nail.finger);
  tracePolygon(ctx, view, points);
  ctx.fillStyle = style.fill || fingerColor(nail.finger, style.fillAlpha ?? (style.selected ? 0.32 : 0.2));
  ctx.fill();
  ctx.lineJoin = "round";
  ctx.setLineDash([]);
  ctx.lineWidth = style.selected ? 4 : 3;
  ctx.strokeStyle = "rgba(0,0,0,0.55)";
  ctx.stroke();
  ctx.setLineDash(style.dashed ? [6, 4] : []);
  ctx.lineWidth = style.selected ? 2.5 : 1.5;
  ctx.strokeStyle = color;
  ctx.stroke();
  if (style.invalid) {
    ctx.setLineDash([4, 3]);
    ctx.lineWidth = 2.5;
    ctx.strokeStyle = "#ff1744";
    ctx.stroke();
  }
  ctx.setLineDash([]);
  if (style.vertices !== "none") {
    points.forEach((p, i) => {
      const [x, y] = view.toScreen(p[0], p[1]);
      if (style.selected) {
        const chosen = style.selectedVertex === i;
        drawHandle(ctx, x, y, { radius: chosen ? 5.5 : HANDLE_RADIUS, fill: chosen ? color : "#fff", stroke: "#000", square: i === 0 });
      } else drawHandle(ctx, x, y, { radius: 2.5, fill: color, stroke: "rgba(0,0,0,0.6)", width: 1 });
    });
  }
  // landmarks that are only a suggestion (dataset/geometry.py "suggested") are drawn dashed, like a ghost
  const suggested = nail.suggested && typeof nail.suggested === "object" ? nail.suggested : {};
  if (nail.base && nail.tip) drawArrow(ctx, view, nail.base, nail.tip, { color: "#fff", dashed: style.dashed || "landmarks" in suggested });
  else for (const key of ["base", "tip"]) {
    if (nail[key]) {
      const [x, y] = view.toScreen(nail[key][0], nail[key][1]);
      drawHandle(ctx, x, y, { radius: 4, fill: key === "base" ? "#fff" : "#ffd600", stroke: "#000" });
    }
  }
  if (style.label !== null) {
    const box = bbox(points);
    const [x, y] = view.toScreen(box.x0, box.y0);
    const text = style.label ?? fingerCode(nail.finger);
    let offset = drawTag(ctx, x, y - 2, text, { background: style.selected ? "#111" : "rgba(0,0,0,0.65)" });
    for (const reason of style.reasons || []) {
      offset += drawTag(ctx, x + offset + 2, y - 2, reason.text,
        { background: reason.level === "error" ? "#d50000" : "#b26a00", font: "600 11px system-ui, sans-serif" }) + 2;
    }
  }
}

export function drawIgnore(ctx, view, ring, style = {}) {
  if (!ring || !ring.length) return;
  tracePolygon(ctx, view, ring);
  ctx.fillStyle = "rgba(20,20,20,0.35)";
  ctx.fill();
  ctx.fillStyle = hatch(ctx);
  ctx.fill();
  ctx.setLineDash([6, 4]);
  ctx.lineWidth = style.selected ? 2.5 : 1.5;
  ctx.strokeStyle = style.invalid ? "#ff1744" : style.color || "#e0e0e0";
  tracePolygon(ctx, view, ring);
  ctx.stroke();
  ctx.setLineDash([]);
  if (style.selected) {
    ring.forEach((p, i) => {
      const [x, y] = view.toScreen(p[0], p[1]);
      drawHandle(ctx, x, y, { radius: style.selectedVertex === i ? 5.5 : HANDLE_RADIUS, fill: "#eee", stroke: "#000" });
    });
  }
  const box = bbox(ring);
  const [x, y] = view.toScreen(box.x0, box.y0);
  let offset = drawTag(ctx, x, y - 2, style.label || "ignore", { background: "rgba(60,60,60,0.85)" });
  for (const reason of style.reasons || []) {
    offset += drawTag(ctx, x + offset + 2, y - 2, reason.text, { background: "#d50000", font: "600 11px system-ui, sans-serif" }) + 2;
  }
}

/** Issues of each shape: Map "nail:3" -> [{rule, message, level}] -> drawn reasons. */
export function reasonsFor(issues, key) {
  const list = (issues && issues.get(key)) || [];
  const seen = new Set();
  return list.filter((i) => !seen.has(i.rule) && seen.add(i.rule)).map((i) => ({ text: shortReason(i.rule), level: i.level }));
}

/**
 * Every label of a geometry. options: {selection, exclude: {kind, index}, issues: Map, vertices, labels}.
 */
export function drawLabels(ctx, view, geometry, options = {}) {
  const { selection, exclude, issues } = options;
  const isExcluded = (kind, index) => exclude && exclude.kind === kind && exclude.index === index;
  const isSelected = (kind, index) => selection && selection.kind === kind && selection.index === index;
  geometry.ignore.forEach((ring, index) => {
    if (isExcluded("ignore", index)) return;
    const key = `ignore:${index}`;
    const reasons = reasonsFor(issues, key);
    drawIgnore(ctx, view, ring, {
      selected: isSelected("ignore", index), selectedVertex: isSelected("ignore", index) ? selection.vertex : null,
      invalid: reasons.some((r) => r.level === "error"), reasons, label: `ignore ${index + 1}`,
    });
  });
  const order = geometry.nails.map((_, i) => i);
  if (selection && selection.kind === "nail") {  // the selected nail on top
    order.splice(order.indexOf(selection.index), 1);
    order.push(selection.index);
  }
  for (const index of order) {
    if (isExcluded("nail", index)) continue;
    const nail = geometry.nails[index];
    const reasons = reasonsFor(issues, `nail:${index}`);
    const selected = isSelected("nail", index);
    drawNail(ctx, view, nail, {
      selected, selectedVertex: selected ? selection.vertex : null, reasons,
      invalid: reasons.some((r) => r.level === "error"), vertices: options.vertices || "all",
      label: options.labels === false ? null : `${index + 1} ${fingerCode(nail.finger)}${nail.suggested ? " (suggested)" : ""}`,
    });
  }
}
