// Unit tests of scene.withInvalidShapes: a saved draft's flagged shapes go back where they were drawn.
import assert from "node:assert/strict";
import { test } from "node:test";

import { normalizeIn, withInvalidShapes } from "../../labeling/static/labeling/scene.js";

const nail = (id) => ({ id, polygon: [[0, 0], [10, 0], [5, 8]], finger: null, base: null, tip: null });
const ring = (x) => [[x, 0], [x + 5, 0], [x, 5]];

test("flagged nails and ignore regions are put back at their drawn positions", () => {
  const saved = { nails: [nail("a"), nail("c"), nail("e")], ignore: [ring(1)] };
  const invalid = [
    { kind: "nail", index: 3, shape: nail("d"), errors: [] },
    { kind: "ignore", index: 0, shape: ring(9), errors: [] },
    { kind: "nail", index: 1, shape: nail("b"), errors: [] },
  ];
  const merged = withInvalidShapes(saved, invalid);
  assert.deepEqual(merged.nails.map((n) => n.id), ["a", "b", "c", "d", "e"]);
  assert.deepEqual(merged.ignore, [ring(9), ring(1)]);
  assert.deepEqual(saved.nails.map((n) => n.id), ["a", "c", "e"]);  // the input is not changed
});

test("no flagged shapes, or an index past the end: nothing is lost", () => {
  assert.deepEqual(withInvalidShapes({ nails: [nail("a")], ignore: [] }, undefined), { nails: [nail("a")], ignore: [] });
  const merged = withInvalidShapes({ nails: [], ignore: [] }, [{ kind: "nail", index: 7, shape: nail("z"), errors: [] }]);
  assert.deepEqual(normalizeIn(merged).nails.map((n) => n.id), ["z"]);
  assert.deepEqual(withInvalidShapes(null, []), { nails: [], ignore: [] });
});
