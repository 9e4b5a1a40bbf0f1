// "What the model will learn": the server's rasterizer (dataset/raster.py) turns the current labels,
// saved or not, into the training rasters; the page shows them as a transparent layer over the photo.
// Requests are debounced after edits and the one in flight is aborted when a newer one starts.

export const OVERLAY_KINDS = [null, "foreground", "classes", "field"];
export const OVERLAY_NAMES = { foreground: "nail mask", classes: "finger classes", field: "direction field" };

export class RasterOverlay {
  constructor({ client, stage, getGeometry, onInfo = () => {}, delay = 350 }) {
    Object.assign(this, { client, stage, getGeometry, onInfo, delay });
    this.kind = null;
    this.timer = 0;
    this.controller = null;
    this.requests = 0;
  }

  setKind(kind) {
    this.kind = kind || null;
    if (!this.kind) {
      clearTimeout(this.timer);
      if (this.controller) this.controller.abort();
      this.stage.setRaster(null);
      this.onInfo({ state: "off" });
      return;
    }
    this.refresh();
  }

  cycle() {
    const i = OVERLAY_KINDS.indexOf(this.kind);
    this.setKind(OVERLAY_KINDS[(i + 1) % OVERLAY_KINDS.length]);
    return this.kind;
  }

  /** The labels changed: refresh a little later (only while an overlay is shown). */
  changed() {
    if (!this.kind) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.refresh(), this.delay);
  }

  async refresh() {
    clearTimeout(this.timer);
    if (!this.kind) return;
    if (this.controller) this.controller.abort();
    const controller = new AbortController();
    this.controller = controller;
    const kind = this.kind;
    this.onInfo({ state: "loading", kind });
    let result;
    try {
      result = await this.client.rasters(this.getGeometry(), kind, { signal: controller.signal });
    } catch (error) {
      if (error.name === "AbortError") return;
      this.onInfo({ state: "error", kind, detail: error.message });
      return;
    }
    if (controller !== this.controller || kind !== this.kind) return;
    this.requests++;
    if (!result.ok) {
      this.stage.setRaster(null);
      this.onInfo({ state: "error", kind, detail: result.data && result.data.detail, errors: (result.data && result.data.errors) || [] });
      return;
    }
    const bitmap = await createImageBitmap(result.blob);
    if (controller !== this.controller || kind !== this.kind) {
      bitmap.close();
      return;
    }
    this.stage.setRaster(bitmap);
    this.onInfo({ state: "ready", kind, info: result.info });
  }
}
