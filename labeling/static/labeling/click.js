// Click a nail, get the nail (issue #18): in the click tool (C), or with Ctrl+click (Cmd+click) in any tool, a
// click inside a nail asks POST /api/images/<id>/click-nail/ (labeling/click_nail.py) for its polygon, finger
// and base/tip, shown as a dashed proposal with its finger named in the message. The request carries the page's
// nails (saved or not: autosave waits for a pause), so the finger and base/tip are read against every nail drawn
// (and, with an active model, against the nails the model sees that are not drawn yet).
// Enter accepts it as shown: the outline, the finger and base/tip, confirmed (one undoable edit; a wrong finger
// or arrow is then fixed as on any nail); Esc drops it.
// While a proposal is shown (in any tool), a click inside it adds a positive point; Alt+click (Option+click) adds
// a positive point anywhere, also outside it (a part of the nail it missed); Shift+click or right-click adds a
// negative one (outside the nail): the proposal is asked again with every point. In the click tool a plain click
// outside the proposal starts a new one there.

import { request } from "./api.js";
import { fingerCode } from "./fingers.js";
import { pointInPolygon, roundPoint } from "./geometry.js";
import { drawArrow, drawProposedShape } from "./render.js";
import { addNail } from "./scene.js";

const percent = (c) => `${Math.round(c * 100)}%`;

export class ClickNail {
  constructor({ apiBase, getNails = () => null, onChange = () => {}, onMessage = () => {} }) {
    this.url = `${apiBase}click-nail/`;
    this.getNails = getNails;   // the page's nails, saved or not: the context of the proposal's finger and base/tip
    this.onChange = onChange;
    this.onMessage = onMessage;
    this.points = [];           // [[x, y, 1 | 0], ...] image px
    this.proposal = null;       // the server's answer with a nail
    this.pending = null;        // the request in flight (a newer click supersedes it)
  }

  get active() {
    return this.points.length > 0;
  }

  contains(p) {
    return Boolean(this.proposal && pointInPolygon(p, this.proposal.nail.polygon));
  }

  /** A click at image point p: positive (label 1) or negative (0); see the header for which. With `extend`, a
   * positive point outside the proposal adds to it instead of starting a new nail. */
  async click(p, { negative = false, extend = false } = {}) {
    const point = [...roundPoint(p), negative ? 0 : 1];
    if (negative && !this.active) return this.onMessage("Click inside a nail first; Shift+click then marks what is not nail.");
    if (!negative && !extend && this.proposal && !this.contains(p)) this.points = [];  // a new nail
    this.points = [...this.points, point];
    this.onChange();
    return this.ask();
  }

  async ask() {
    const points = this.points;
    this.onMessage("Finding the nail…");
    const nails = this.getNails();
    const pending = request("POST", this.url, nails ? { points, nails } : { points });
    this.pending = pending;
    const answer = await pending;
    if (this.pending !== pending || this.points !== points) return null;  // superseded by a newer click or dropped
    this.pending = null;
    if (!answer.ok) {
      const detail = (answer.data && ((answer.data.points && answer.data.points[0]) || answer.data.detail)) || `error ${answer.status}`;
      this.points = points.slice(0, -1);
      if (!this.points.length) this.proposal = null;
      this.onChange();
      this.onMessage(`No proposal: ${detail}`);
      return null;
    }
    const data = answer.data;
    if (!data.nail) {
      this.onMessage(data.detail || "No nail found there.");
      this.points = points.slice(0, -1);
      if (!this.points.length) this.proposal = null;
      this.onChange();
      return null;
    }
    this.proposal = data;
    this.onChange();
    const nail = data.nail;
    const finger = nail.finger ? `${fingerCode(nail.finger)} (${percent(nail.suggested.finger || 0)})` : "no finger";
    this.onMessage(`Proposed nail (${data.source === "model" ? `model ${data.model}` : "from the photo"}, ` +
      `confidence ${percent(data.confidence)}, ${finger}): Enter accepts it with its finger and arrow, Esc drops, click inside or Alt+click anywhere for more nail, Shift+click for less.`);
    return data;
  }

  /** The geometry with the proposal added as a nail, as it was shown (outline, finger, base/tip: the annotator
   * saw them and pressed Enter, so nothing stays marked suggested), or null; the proposal is then done. */
  accept(geometry) {
    if (!this.proposal) return null;
    const nail = this.proposal.nail;
    const fields = { finger: nail.finger ?? null, base: nail.base || null, tip: nail.tip || null };
    const added = addNail(geometry, nail.polygon, fields);
    this.drop();
    return added;
  }

  drop() {
    const had = this.active;
    this.points = [];
    this.proposal = null;
    this.pending = null;
    if (had) this.onChange();
    return had;
  }

  paint(ctx, view) {
    if (this.proposal) {
      const nail = this.proposal.nail;
      drawProposedShape(ctx, view, nail.polygon, { fill: "rgba(255, 214, 0, 0.18)", color: "#ffd600" });
      if (nail.base && nail.tip) drawArrow(ctx, view, nail.base, nail.tip, { color: "#ffd600", dashed: true });
    }
    for (const [x, y, label] of this.points) {
      const [sx, sy] = view.toScreen(x, y);
      ctx.beginPath();
      ctx.arc(sx, sy, 5, 0, Math.PI * 2);
      ctx.fillStyle = label ? "#00c853" : "#ff1744";
      ctx.fill();
      ctx.strokeStyle = "#fff";
      ctx.lineWidth = 1.5;
      ctx.stroke();
    }
  }
}
