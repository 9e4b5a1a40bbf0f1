// Unit tests of view.js (screen <-> image transform, zoom to the cursor) and diff.js.
import assert from "node:assert/strict";
import { test } from "node:test";

import { describeDiff, diffGeometry } from "../../labeling/static/labeling/diff.js";
import { View } from "../../labeling/static/labeling/view.js";

const close = (a, b, eps = 1e-9) => assert.ok(Math.abs(a - b) < eps, `${a} != ${b}`);

test("fit centres the whole image with a margin", () => {
  const v = new View(4032, 3024);
  v.setViewport(1000, 800);
  const [x0, y0] = v.toScreen(0, 0), [x1, y1] = v.toScreen(4032, 3024);
  close((x0 + x1) / 2, 500);
  close((y0 + y1) / 2, 400);
  assert.ok(x0 >= 16 - 1e-9 && y0 >= 16 - 1e-9 && x1 <= 984 + 1e-9 && y1 <= 784 + 1e-9);
});

test("toImage inverts toScreen; zoomAt keeps the point under the cursor", () => {
  const v = new View(640, 480);
  v.setViewport(900, 700);
  const before = v.toImage(123, 456);
  v.zoomAt(123, 456, 3.7);
  const after = v.toImage(123, 456);
  close(before[0], after[0], 1e-9);
  close(before[1], after[1], 1e-9);
  const [sx, sy] = v.toScreen(10.25, 20.5);
  const [x, y] = v.toImage(sx, sy);
  close(x, 10.25);
  close(y, 20.5);
  assert.equal(v.fitted, false);
});

test("zoom is clamped; pan moves; the viewport follows resizes until the user zooms", () => {
  const v = new View(100, 100);
  v.setViewport(500, 500);
  v.zoomAt(0, 0, 1e9);
  assert.equal(v.scale, 40);
  v.zoomAt(0, 0, 1e-9);
  assert.ok(v.scale > 0 && v.scale <= v.fitScale);
  v.fit();
  v.setViewport(300, 300);
  close(v.scale, (300 - 32) / 100);
  v.panBy(5, 0);
  const s = v.scale;
  v.setViewport(600, 600);
  assert.equal(v.scale, s);
});

const nail = (id, polygon, finger = null, base = null, tip = null) => ({ id, polygon, finger, base, tip });
const A = [[0, 0], [10, 0], [10, 10], [0, 10]];
const B = [[20, 0], [30, 0], [30, 10], [20, 10]];

test("diff by id: added, removed, changed, unchanged", () => {
  const a = { nails: [nail("x", A, 2), nail("y", B, 3)], ignore: [] };
  const b = { nails: [nail("x", A, 7), nail("z", [[40, 0], [50, 0], [50, 10]])], ignore: [[[0, 0], [1, 0], [1, 1]]] };
  const d = diffGeometry(a, b);
  assert.deepEqual(d.changed.map((c) => [c.a, c.b, c.changes]), [[0, 0, ["finger L2 -> R2"]]]);
  assert.deepEqual(d.removed, [{ a: 1 }]);
  assert.deepEqual(d.added, [{ b: 1 }]);
  assert.equal(d.ignoreAdded, 1);
  const text = describeDiff(d, a, b).map((l) => l.text);
  assert.ok(text.includes("nail 2 (?) added"));
  assert.ok(text.includes("nail 2 (L3) removed"));
});

test("diff without ids matches by overlap and reports moved outlines and landmarks", () => {
  const moved = A.map(([x, y]) => [x + 1, y]);
  const a = { nails: [{ polygon: A, finger: 1, base: [5, 9], tip: [5, 1] }] };
  const b = { nails: [{ polygon: moved, finger: 1, base: [6, 9], tip: [6, 1] }] };
  const d = diffGeometry(a, b);
  assert.equal(d.changed.length, 1);
  assert.deepEqual(d.changed[0].changes, ["outline moved (up to 1.0 px)", "base/tip moved (up to 1.0 px)"]);
  assert.deepEqual(describeDiff(diffGeometry(a, a), a, a).map((l) => l.kind), ["same"]);
});
