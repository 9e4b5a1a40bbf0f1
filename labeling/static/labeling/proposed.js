// Proposed nails (issue #18): nails another part of the platform is unsure of (pre-labeling hands over a model
// draft's low-confidence nails, prelabel/static/prelabel/opened.js) are not labels to fix but proposals to
// decide on with one key. They are taken out of the labels and shown ghosted (dotted outline, "?" and the
// confidence); a click inside one selects it, and so do P / Shift+P, the next / previous one (the first one is
// selected at the start). Enter accepts the selected one: it becomes a normal nail (one undoable edit, keeping
// its id, finger and base/tip and their `suggested` marks), selected. Delete rejects it: it is gone (the next save drops it), and the next proposal is
// selected. An undecided proposal stays in the saved labels, as the draft had it (annotate.js savedGeometry), so
// no edit drops it unseen; submitting waits until each one is decided (annotate.js).

import { pointInPolygon } from "./geometry.js";
import { drawProposedShape, drawShapeTag } from "./render.js";
import { addNail } from "./scene.js";

const percent = (c) => (c === null || c === undefined ? "?" : `${Math.round(c * 100)}%`);

export class ProposedNails {
  constructor({ onChange = () => {} } = {}) {
    this.onChange = onChange;
    this.nails = [];            // [{nail, confidence, source}]
    this.current = null;        // index in `nails` of the selected one
    this.accepted = [];         // entries accepted into the labels (undo hands them back: sync)
  }

  get selected() {
    return this.current === null ? null : this.nails[this.current] || null;
  }

  /**
   * Take the nails at `indices` out of `geometry` as proposals ({confidence, source} each from `info`); returns the
   * geometry without them. The first proposal is selected.
   */
  take(geometry, indices, info = []) {
    const wanted = new Set(indices);
    const ids = new Set(geometry.nails.map((nail) => nail.id).filter(Boolean));
    const kept = [];
    geometry.nails.forEach((nail, index) => {
      if (!wanted.has(index)) return kept.push(nail);
      const { confidence = null, source = "" } = info[indices.indexOf(index)] || {};
      let id = nail.id;  // an id to find it again after an undo (sync)
      for (let k = index; !id || (id !== nail.id && ids.has(id)); k += 1) id = `proposed-${k}`;
      ids.add(id);
      return this.nails.push({ nail: { ...nail, id }, confidence, source });
    });
    if (this.nails.length && this.current === null) this.current = 0;
    this.onChange();
    return { ...geometry, nails: kept };
  }

  /** Select the proposal under image point p (the first found); true when there is one. */
  pick(p) {
    const index = this.nails.findIndex((entry) => pointInPolygon(p, entry.nail.polygon));
    if (index < 0) return false;
    this.select(index);
    return true;
  }

  /**
   * P / Shift+P: select the next (`step` 1) or previous (-1) undecided proposal, round the list; from none selected,
   * the first (last). Returns the selected entry, or null when there is none.
   */
  selectNext(step) {
    const n = this.nails.length;
    if (!n) return null;
    const from = this.current === null ? (step > 0 ? -1 : n) : this.current;
    this.select((((from + step) % n) + n) % n);
    return this.selected;
  }

  select(index) {
    const next = index === null || !this.nails[index] ? null : index;
    if (next === this.current) return;
    this.current = next;
    this.onChange();
  }

  /** Drop the selected proposal from the list and select the next one (`next`) or none; returns it. */
  remove(next) {
    const entry = this.selected;
    if (!entry) return null;
    this.nails.splice(this.current, 1);
    this.current = next && this.nails.length ? Math.min(this.current, this.nails.length - 1) : null;
    this.onChange();
    return entry;
  }

  /**
   * Enter: `{geometry, index}` with the selected proposal added as a normal nail (which the page then selects: no
   * proposal stays selected), or null when none is selected.
   */
  accept(geometry) {
    const entry = this.remove(false);
    if (!entry) return null;
    this.accepted.push(entry);
    const { id, polygon, ...fields } = entry.nail;
    return addNail(geometry, polygon, { ...fields, ...(id ? { id } : {}) });
  }

  /**
   * After an undo or redo of the labels: an accepted nail no longer in them is proposed again, a proposed one
   * that is back in them (redo) is accepted again. True when something moved.
   */
  sync(geometry) {
    const ids = new Set(geometry.nails.map((nail) => nail.id));
    const back = this.accepted.filter((entry) => !ids.has(entry.nail.id));
    const again = this.nails.filter((entry) => ids.has(entry.nail.id));
    if (!back.length && !again.length) return false;
    this.accepted = this.accepted.filter((entry) => ids.has(entry.nail.id)).concat(again);
    this.nails = this.nails.filter((entry) => !ids.has(entry.nail.id)).concat(back);
    this.current = this.nails.length ? 0 : null;
    this.onChange();
    return true;
  }

  /** Delete: the selected proposal is gone and the next one is selected; returns it, or null when none is selected. */
  reject() {
    return this.remove(true);
  }

  /** A few words on the selected proposal, for the message line. */
  describe() {
    const entry = this.selected;
    if (!entry) return "";
    return `Proposed nail ${this.current + 1} of ${this.nails.length}${entry.source ? ` (${entry.source}` : " ("}` +
      `confidence ${percent(entry.confidence)}): Enter accepts it as a nail, Delete rejects it` +
      (this.nails.length > 1 ? ", P selects the next." : ".");
  }

  paint(ctx, view) {
    this.nails.forEach((entry, index) => {
      const selected = index === this.current;
      drawProposedShape(ctx, view, entry.nail.polygon, selected
        ? { fill: "rgba(120, 200, 255, 0.22)", color: "#78c8ff", dash: [2, 4], width: 2 }
        : { fill: "rgba(255, 255, 255, 0.08)", color: "rgba(255,255,255,0.75)", dash: [2, 4], width: 1.2 });
      drawShapeTag(ctx, view, entry.nail.polygon, `? ${percent(entry.confidence)}`, { dy: -8, color: selected ? "#bfe6ff" : "#ffffff" });
    });
  }
}
