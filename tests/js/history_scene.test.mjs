// Unit tests of history.js and scene.js: undo/redo of every edit, immutability, selection.
import assert from "node:assert/strict";
import { test } from "node:test";

import { History } from "../../labeling/static/labeling/history.js";
import * as ops from "../../labeling/static/labeling/scene.js";

const TRI = [[0, 0], [10, 0], [5, 8]];

test("history: push, undo, redo, the redo branch is dropped by a new edit, labels", () => {
  const h = new History(0);
  h.push(1, "one");
  h.push(2, "two");
  assert.equal(h.undoLabel, "two");
  assert.deepEqual(h.undo(), { state: 1, label: "two" });
  assert.equal(h.present, 1);
  assert.equal(h.redoLabel, "two");
  assert.deepEqual(h.redo(), { state: 2, label: "two" });
  h.undo();
  h.push(3, "three");
  assert.equal(h.canRedo, false);
  h.undo();
  h.undo();
  assert.equal(h.present, 0);
  assert.equal(h.undo(), null);
});

test("history keeps at most `limit` steps", () => {
  const h = new History(0, { limit: 3 });
  for (let i = 1; i <= 5; i++) h.push(i, String(i));
  let steps = 0;
  while (h.undo()) steps++;
  assert.equal(steps, 3);
  assert.equal(h.present, 2);
});

test("normalizeIn gives ids, rounds, keeps ids that exist", () => {
  const g = ops.normalizeIn({ nails: [{ polygon: [[0.123, 1], [5, 5], [1, 9]], finger: 3 }, { id: "keep", polygon: TRI }] });
  assert.match(g.nails[0].id, /^n[0-9a-f]{12}$/);
  assert.equal(g.nails[1].id, "keep");
  assert.deepEqual(g.nails[0].polygon[0], [0.12, 1]);
  assert.equal(g.nails[0].base, null);
  assert.deepEqual(g.ignore, []);
  assert.deepEqual(ops.normalizeIn(g), g);  // idempotent
});

test("edit operations never mutate their input", () => {
  const start = ops.normalizeIn({ nails: [{ polygon: TRI, base: [5, 1], tip: [5, 6] }], ignore: [TRI] });
  const frozen = JSON.stringify(start);
  const moved = ops.moveVertex(start, "nail", 0, 1, [11.111, 0]);
  assert.deepEqual(moved.nails[0].polygon[1], [11.11, 0]);
  const inserted = ops.insertVertex(start, "nail", 0, 0, [5, -1]);
  assert.deepEqual(inserted.nails[0].polygon, [[0, 0], [5, -1], [10, 0], [5, 8]]);
  assert.equal(ops.removeVertex(start, "nail", 0, 0), null);  // keeps at least 3
  assert.equal(ops.removeVertex(inserted, "nail", 0, 1).nails[0].polygon.length, 3);
  const shifted = ops.translateShape(start, "nail", 0, 2, 3);
  assert.deepEqual(shifted.nails[0].polygon[0], [2, 3]);
  assert.deepEqual(shifted.nails[0].base, [7, 4]);
  assert.deepEqual(ops.translateShape(start, "ignore", 0, 1, 1).ignore[0][0], [1, 1]);
  assert.deepEqual(ops.swapLandmarks(start, 0).nails[0].base, [5, 6]);
  assert.equal(ops.setFinger(start, 0, 7).nails[0].finger, 7);
  assert.equal(ops.removeShape(start, "ignore", 0).ignore.length, 0);
  assert.equal(JSON.stringify(start), frozen);
  assert.equal(moved.ignore, start.ignore);  // unchanged parts are shared
});

test("scene: every edit is one undo step, selection follows", () => {
  const scene = new ops.Scene({ nails: [], ignore: [] });
  const events = [];
  scene.on("change", (e) => events.push(e.source));
  let { geometry, index } = ops.addNail(scene.geometry, TRI);
  scene.commit(geometry, "Draw nail", { kind: "nail", index });
  scene.commit(ops.setFinger(scene.geometry, 0, 2), "Set finger");
  scene.commit(ops.setLandmark(scene.geometry, 0, "base", [5, 1]), "Place base");
  scene.commit(ops.setLandmark(scene.geometry, 0, "tip", [5, 6]), "Place tip");
  scene.commit(ops.moveVertex(scene.geometry, "nail", 0, 2, [5, 9]), "Move vertex", { kind: "nail", index: 0, vertex: 2 });
  assert.deepEqual(scene.selection, { kind: "nail", index: 0, vertex: 2 });
  const final = JSON.stringify(scene.geometry);
  assert.equal(scene.undo().label, "Move vertex");
  assert.deepEqual(scene.geometry.nails[0].polygon[2], [5, 8]);
  scene.undo();
  scene.undo();
  scene.undo();
  assert.equal(scene.geometry.nails[0].finger, null);
  scene.undo();
  assert.equal(scene.geometry.nails.length, 0);
  assert.equal(scene.selection, null);
  while (scene.redo());
  assert.equal(JSON.stringify(scene.geometry), final);
  assert.deepEqual(events, ["edit", "edit", "edit", "edit", "edit", "undo", "undo", "undo", "undo", "undo", "redo", "redo", "redo", "redo", "redo"]);
});

test("scene: selection changes are not undo steps; invalid selections are dropped", () => {
  const scene = new ops.Scene({ nails: [{ polygon: TRI }], ignore: [] });
  let selected = 0;
  scene.on("select", () => selected++);
  scene.select({ kind: "nail", index: 0 });
  scene.select({ kind: "nail", index: 0 });
  assert.equal(selected, 1);
  assert.equal(scene.history.canUndo, false);
  scene.select({ kind: "nail", index: 5 });
  assert.equal(scene.selection, null);
  scene.replaceAll({ nails: [] }, "Reload");
  assert.equal(scene.geometry.nails.length, 0);
  scene.undo();
  assert.equal(scene.geometry.nails.length, 1);
});
