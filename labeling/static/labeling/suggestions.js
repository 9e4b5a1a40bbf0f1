// Label suggestions in the annotation tool (issue #16): nails whose finger or base/tip is missing, or only
// suggested (the nail's `suggested` marks, dataset/geometry.py), show the suggestion ghosted: the finger in
// the two-hands panel (dashed), base -> tip as a dashed arrow, with its confidence. G accepts the selected
// nail's suggestions, Shift+G every nail's (scene.js acceptSuggestion: one undoable edit each time).
// The suggestions come from POST /api/images/<id>/label-suggestions/ with the page's nails (labeling/suggestions.py):
// asked at start, after each save and a moment after each edit (autosave waits for a pause, the ghost of a nail
// just drawn does not), and matched to nails by id (by index for nails without one). An answer to an older
// question than the last one answered is dropped.

import { request } from "./api.js";
import { fingerCode } from "./fingers.js";
import { drawArrow, drawShapeTag } from "./render.js";
import { acceptSuggestion, suggestedFields } from "./scene.js";

export class Suggestions {
  constructor(apiBase) {
    this.url = `${apiBase}label-suggestions/`;
    this.byId = new Map();
    this.byIndex = new Map();
    this.asked = 0;        // questions asked, numbered
    this.answered = 0;     // the number of the newest question answered
    this.inFlight = 0;     // questions waiting for their answer
    this.lastNails = null; // the nails of the newest question (JSON), null after a failure
  }

  /**
   * Ask again, for `nails` (the page's) or, without them, the saved labels; false when nothing new came. The
   * same nails as the newest question are not asked again (after an edit the page asks at once; the save that
   * follows changes nothing the suggestions read).
   */
  async refresh(nails = null) {
    const key = nails ? JSON.stringify(nails) : null;
    if (key !== null && key === this.lastNails) return false;
    this.lastNails = key;
    const asked = ++this.asked;
    this.inFlight += 1;
    let answer;
    try {
      answer = await (nails ? request("POST", this.url, { nails }) : request("GET", this.url));
    } finally {
      this.inFlight -= 1;
    }
    if (!answer.ok || !answer.data) {
      if (asked === this.asked) this.lastNails = null;  // asked in vain: the same nails may be asked again
      return false;
    }
    if (asked < this.answered) return false;
    this.answered = asked;
    this.byId = new Map(answer.data.nails.filter((n) => n.id).map((n) => [n.id, n.suggestion]));
    this.byIndex = new Map(answer.data.nails.filter((n) => !n.id).map((n) => [n.index, n.suggestion]));
    return true;
  }

  /** The suggestion for the nail at `index` of `geometry`, or null. */
  forNail(geometry, index) {
    const nail = geometry.nails[index];
    if (!nail) return null;
    return this.byId.get(nail.id) || this.byIndex.get(index) || null;
  }

  /**
   * What to show ghosted for one nail: {finger, fingerConfidence, base, tip, directionConfidence}, each field
   * only when the nail's own value is missing (from the server's suggestion) or marked suggested (its own value
   * and mark); null when the nail is complete and confirmed.
   */
  ghost(geometry, index) {
    const nail = geometry.nails[index];
    if (!nail) return null;
    const out = suggestedFields(nail, this.forNail(geometry, index));
    return Object.keys(out).length ? out : null;
  }

  /** Geometry with the suggestions of the nails at `indices` accepted, or null when nothing changes. */
  accept(geometry, indices) {
    let out = geometry;
    for (const index of indices) out = acceptSuggestion(out, index, this.forNail(out, index)) || out;
    return out === geometry ? null : out;
  }
}

const percent = (c) => `${Math.round(c * 100)}%`;

/** A few words on one nail's ghost, for the panel and the tags: "suggested R2 (84%), base→tip (97%)". */
export function describeGhost(ghost) {
  const parts = [];
  if (ghost.finger !== undefined) parts.push(`${fingerCode(ghost.finger)} (${percent(ghost.fingerConfidence)})`);
  if (ghost.base) parts.push(`base→tip (${percent(ghost.directionConfidence)})`);
  return `suggested ${parts.join(", ")}`;
}

/** Paint every nail's ghost: a dashed arrow for base -> tip and a tag with the suggested finger and confidence. */
export function paintGhosts(ctx, view, geometry, suggestions) {
  geometry.nails.forEach((nail, index) => {
    const ghost = suggestions.ghost(geometry, index);
    if (!ghost) return;
    if (ghost.base && ghost.tip) drawArrow(ctx, view, ghost.base, ghost.tip, { color: "rgba(255,255,255,0.8)", dashed: true });
    drawShapeTag(ctx, view, nail.polygon, describeGhost(ghost).replace("suggested ", "? "));
  });
}
