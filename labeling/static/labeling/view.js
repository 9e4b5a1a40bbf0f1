// The view transform: image pixels -> stage (CSS) pixels, screen = image * scale + (tx, ty).
// Pure, no DOM: tested with Node (tests/js/view.test.mjs).

export const MAX_SCALE = 40;  // 40 screen px per image px

export class View {
  constructor(imageWidth, imageHeight) {
    this.imageWidth = imageWidth;
    this.imageHeight = imageHeight;
    this.width = 1;   // viewport, CSS px
    this.height = 1;
    this.scale = 1;
    this.tx = 0;
    this.ty = 0;
    this.fitted = true;  // follow the viewport size until the user zooms or pans
  }

  setViewport(width, height) {
    const changed = width !== this.width || height !== this.height;
    this.width = Math.max(1, width);
    this.height = Math.max(1, height);
    if (changed && this.fitted) this.fit();
    return changed;
  }

  get fitScale() {
    const pad = 16;
    return Math.max(1e-4, Math.min((this.width - 2 * pad) / this.imageWidth, (this.height - 2 * pad) / this.imageHeight));
  }

  get minScale() {
    return Math.min(this.fitScale / 4, 1);
  }

  /** The whole image centred in the viewport. */
  fit() {
    this.scale = this.fitScale;
    this.tx = (this.width - this.imageWidth * this.scale) / 2;
    this.ty = (this.height - this.imageHeight * this.scale) / 2;
    this.fitted = true;
  }

  toImage(sx, sy) {
    return [(sx - this.tx) / this.scale, (sy - this.ty) / this.scale];
  }

  toScreen(x, y) {
    return [x * this.scale + this.tx, y * this.scale + this.ty];
  }

  /** Zoom by `factor` keeping the image point under (sx, sy) where it is. */
  zoomAt(sx, sy, factor) {
    const scale = Math.min(MAX_SCALE, Math.max(this.minScale, this.scale * factor));
    const [x, y] = this.toImage(sx, sy);
    this.scale = scale;
    this.tx = sx - x * scale;
    this.ty = sy - y * scale;
    this.fitted = false;
  }

  panBy(dx, dy) {
    this.tx += dx;
    this.ty += dy;
    this.fitted = false;
  }

  /** Show the image rectangle (x0, y0)-(x1, y1) with a margin, not zooming in further than maxScale. */
  showRect(x0, y0, x1, y1, { margin = 0.25, maxScale = 8 } = {}) {
    const w = Math.max(1, x1 - x0), h = Math.max(1, y1 - y0);
    const scale = Math.min(maxScale, this.width / (w * (1 + 2 * margin)), this.height / (h * (1 + 2 * margin)));
    this.scale = Math.min(MAX_SCALE, Math.max(this.minScale, scale));
    this.tx = this.width / 2 - ((x0 + x1) / 2) * this.scale;
    this.ty = this.height / 2 - ((y0 + y1) / 2) * this.scale;
    this.fitted = false;
  }

  /** Keep the image point (x, y) on screen (pan just enough). */
  ensureVisible(x, y, margin = 40) {
    const [sx, sy] = this.toScreen(x, y);
    let dx = 0, dy = 0;
    if (sx < margin) dx = margin - sx;
    else if (sx > this.width - margin) dx = this.width - margin - sx;
    if (sy < margin) dy = margin - sy;
    else if (sy > this.height - margin) dy = this.height - margin - sy;
    if (dx || dy) this.panBy(dx, dy);
    return Boolean(dx || dy);
  }

  snapshot() {
    return { scale: this.scale, tx: this.tx, ty: this.ty, width: this.width, height: this.height };
  }
}
