// Base and tip follow the nail's outline (labeling/static/labeling/scene.js landmarksFollowing): where they sit on
// the outline's axis ends (as suggestions and click proposals place them), an outline edit moves them to the new
// ends along the same direction; placed anywhere else, they stay.
import assert from "node:assert/strict";
import { test } from "node:test";

import { axisEnds } from "../../labeling/static/labeling/geometry.js";
import { actionFor } from "../../labeling/static/labeling/keyboard.js";
import { aimLandmarks, insertVertex, moveVertex, normalizeIn, removeVertex, translateShape } from "../../labeling/static/labeling/scene.js";

// A 20 x 40 nail, base at the bottom (y = 50), tip at the top (y = 10): both on the vertical axis's ends.
const NAIL = [[10, 10], [30, 10], [30, 50], [10, 50]];
const onEnds = () => normalizeIn({ nails: [{ id: "a", polygon: NAIL, finger: 2, base: [20, 50], tip: [20, 10] }], ignore: [] });

test("axisEnds: where the line through a point along a direction leaves the polygon", () => {
  assert.deepEqual(axisEnds(NAIL, [20, 30], [0, -1]), [[20, 50], [20, 10]]);
  assert.deepEqual(axisEnds(NAIL, [20, 30], [1, 0]), [[10, 30], [30, 30]]);
  assert.equal(axisEnds(NAIL, [100, 30], [0, 1]), null);   // the line misses it
});

test("an outline edit moves base and tip that sat on its axis ends, same direction", () => {
  // The tip end pulled up 10 px (both top corners): the new outline's ends, through its new centroid.
  const once = moveVertex(onEnds(), "nail", 0, 0, [10, 0]);
  const stretched = moveVertex(once, "nail", 0, 1, [30, 0]);
  const nail = stretched.nails[0];
  assert.deepEqual([nail.base, nail.tip], [[20, 50], [20, 0]]);
  assert.equal(nail.finger, 2);
  assert.equal("suggested" in nail, false);                   // confirmed stays confirmed
  // A vertex inserted on the left edge and dragged out: the axis ends stay where the line meets the outline.
  const widened = insertVertex(onEnds(), "nail", 0, 3, [4, 30]).nails[0];
  assert.equal(widened.polygon.length, 5);
  assert.equal(widened.tip[1], 10);
  assert.equal(widened.base[1], 50);
  assert.ok(removeVertex(stretched, "nail", 0, 0).nails[0].tip);
});

test("base and tip placed elsewhere stay where the annotator put them", () => {
  const inside = normalizeIn({ nails: [{ id: "a", polygon: NAIL, finger: 2, base: [20, 45], tip: [20, 15] }], ignore: [] });
  const nail = moveVertex(inside, "nail", 0, 0, [10, 0]).nails[0];
  assert.deepEqual([nail.base, nail.tip], [[20, 45], [20, 15]]);
  const none = normalizeIn({ nails: [{ id: "b", polygon: NAIL }], ignore: [] });
  const bare = moveVertex(none, "nail", 0, 0, [10, 0]).nails[0];
  assert.deepEqual([bare.base, bare.tip], [null, null]);
  // Moving the whole nail moves them with it, as before.
  assert.deepEqual(translateShape(inside, "nail", 0, 5, 0).nails[0].base, [25, 45]);
});

test("Shift+T aims the arrow at the mouse: tip and base on the axis through the centroid, confirmed", () => {
  const suggested = normalizeIn({ nails: [{ id: "a", polygon: NAIL, finger: 2, base: [10, 40], tip: [30, 20],
    suggested: { landmarks: 0.6 } }], ignore: [] });
  const up = aimLandmarks(suggested, 0, [20, 12]).nails[0];        // the mouse near the top edge's middle
  assert.deepEqual([up.base, up.tip], [[20, 50], [20, 10]]);
  assert.equal("suggested" in up, false);                          // an edit of the landmarks confirms them
  assert.equal(up.finger, 2);
  const right = aimLandmarks(suggested, 0, [60, 30]).nails[0];     // outside the nail: only the direction counts
  assert.deepEqual([right.base, right.tip], [[10, 30], [30, 30]]);
  const slanted = aimLandmarks(suggested, 0, [30, 10]).nails[0];   // towards a corner: through it, and opposite
  assert.deepEqual([slanted.base, slanted.tip], [[10, 50], [30, 10]]);
  assert.equal(aimLandmarks(suggested, 0, [20, 30]), null);       // at the centroid: no direction
  assert.deepEqual(actionFor({ key: "T", shiftKey: true }), { action: "aim" });
  assert.deepEqual(actionFor({ key: "t", shiftKey: false }), { action: "landmark", arg: "tip" });
});
