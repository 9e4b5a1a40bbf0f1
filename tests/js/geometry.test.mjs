// Unit tests of labeling/static/labeling/geometry.js (run: node --test tests/js/).
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  centroid, convexHullArea, dedupe, nearestEdge, pointInPolygon, polygonDistance, ringCrossing, round2, segmentsIntersect,
  validate,
} from "../../labeling/static/labeling/geometry.js";

const SQUARE = [[10, 10], [30, 10], [30, 30], [10, 30]];
const nail = (polygon = SQUARE, extra = {}) => ({ polygon, finger: null, base: null, tip: null, ...extra });
const rules = (report) => report.errors.map((e) => e.rule);

test("round2 rounds to 2 decimals like the server and has no negative zero", () => {
  assert.equal(round2(1.23456), 1.23);
  assert.equal(round2(2.345), 2.35);
  assert.ok(Object.is(round2(-0.001), 0));
  assert.equal(round2(100), 100);
});

test("dedupe drops consecutive duplicates and the closing vertex", () => {
  assert.deepEqual(dedupe([[0, 0], [0, 0], [1, 0], [1, 1], [0, 0]]), [[0, 0], [1, 0], [1, 1]]);
});

test("point in polygon, distance to a polygon, nearest edge", () => {
  assert.ok(pointInPolygon([20, 20], SQUARE));
  assert.ok(!pointInPolygon([40, 20], SQUARE));
  assert.equal(polygonDistance([20, 20], SQUARE), 0);
  assert.equal(polygonDistance([33, 20], SQUARE), 3);
  const edge = nearestEdge([20, 8], SQUARE);
  assert.equal(edge.edge, 0);
  assert.deepEqual(edge.point, [20, 10]);
  assert.deepEqual(centroid(SQUARE), [20, 20]);
});

test("segments and ring simplicity", () => {
  assert.ok(segmentsIntersect([0, 0], [10, 10], [0, 10], [10, 0]));
  assert.ok(!segmentsIntersect([0, 0], [1, 1], [2, 2], [3, 5]));
  assert.ok(segmentsIntersect([0, 0], [2, 0], [1, 0], [3, 0]));  // collinear overlap
  assert.equal(ringCrossing(SQUARE), null);
  assert.notEqual(ringCrossing([[0, 0], [10, 10], [10, 0], [0, 10]]), null);  // bow tie
  assert.notEqual(ringCrossing([[0, 0], [10, 0], [5, 0], [5, 5]]), null);      // folds back on an edge
  assert.notEqual(ringCrossing([[0, 0], [4, 0], [4, 4], [2, 0], [0, 4]]), null);  // touches itself at a vertex
  assert.equal(convexHullArea([[0, 0], [1, 1], [2, 2]]), 0);
  assert.equal(convexHullArea(SQUARE), 400);
});

test("a valid nail passes; complete needs finger and landmarks", () => {
  assert.deepEqual(validate({ nails: [nail()], ignore: [] }, 64, 48).errors, []);
  const report = validate({ nails: [nail()] }, 64, 48, { requireComplete: true });
  assert.deepEqual(rules(report), ["finger_missing", "landmarks_missing"]);
  const complete = nail(SQUARE, { finger: 2, base: [20, 28], tip: [20, 12] });
  assert.deepEqual(validate({ nails: [complete] }, 64, 48, { requireComplete: true }).errors, []);
});

// The same cases as tests/test_annotation_api.py::BAD_GEOMETRIES (the server's rules).
const BAD = {
  too_few_vertices: nail([[1, 1], [5, 5]]),
  self_intersecting: nail([[0, 0], [10, 10], [10, 0], [0, 10]]),
  zero_area: nail([[1, 1], [5, 5], [9, 9]]),
  outside_image: nail([[10, 10], [90, 10], [30, 30]]),
  not_finite: nail([[10, 10], [Infinity, 10], [30, 30]]),
  bad_finger: nail(SQUARE, { finger: 11 }),
  landmarks_incomplete: nail(SQUARE, { base: [20, 20] }),
  landmark_outside_nail: nail(SQUARE, { base: [20, 20], tip: [60, 45] }),
  landmarks_equal: nail(SQUARE, { base: [20, 20], tip: [20, 20] }),
  unknown_field: nail(SQUARE, { colour: "red" }),
  bad_point: nail([[10, 10], ["a", 10], [30, 30]]),
};

for (const [rule, bad] of Object.entries(BAD)) {
  test(`rule ${rule} names the second nail`, () => {
    const good = nail(SQUARE, { finger: 7, base: [20, 28], tip: [20, 12] });
    const report = validate({ nails: [good, bad] }, 64, 48);
    const error = report.errors.find((e) => e.rule === rule);
    assert.ok(error, `${rule} not in ${JSON.stringify(rules(report))}`);
    assert.equal(error.nail, 1);
    assert.match(error.message, /^nail 2: /);
  });
}

test("structure errors and the tolerances", () => {
  assert.deepEqual(rules(validate({ nails: "many" }, 64, 48)), ["nails_not_a_list"]);
  assert.deepEqual(rules(validate(null, 64, 48)), ["not_an_object"]);
  assert.deepEqual(rules(validate({}, 64, 48)), ["missing_field"]);
  // vertices up to 1 px outside the image are fine, further out are not
  assert.deepEqual(rules(validate({ nails: [nail([[-1, -1], [65, 0], [65, 49]])] }, 64, 48)), []);
  assert.deepEqual(rules(validate({ nails: [nail([[-1.5, 0], [10, 0], [10, 10]])] }, 64, 48)), ["outside_image"]);
  // landmarks up to 4 px outside their polygon are fine
  assert.deepEqual(rules(validate({ nails: [nail(SQUARE, { base: [20, 34], tip: [20, 12] })] }, 64, 48)), []);
  assert.deepEqual(rules(validate({ nails: [nail(SQUARE, { base: [20, 34.5], tip: [20, 12] })] }, 64, 48)), ["landmark_outside_nail"]);
});

test("duplicate fingers are a warning; ignore regions are checked as polygons", () => {
  const other = [[35, 10], [50, 10], [50, 30], [35, 30]];
  const report = validate({ nails: [nail(SQUARE, { finger: 4 }), nail(other, { finger: 4 })], ignore: [[[0, 0], [5, 5], [10, 10]]] }, 64, 48);
  assert.deepEqual(report.warnings.map((w) => w.rule), ["duplicate_finger"]);
  assert.equal(report.warnings[0].nail, 1);
  assert.deepEqual(rules(report), ["zero_area"]);
  assert.equal(report.errors[0].ignore, 0);
  assert.match(report.errors[0].message, /^ignore region 1: /);
});

test("coordinates are rounded before checking, as on the server", () => {
  // 10.004 rounds to 10.0: the ring then has a duplicate vertex and only 2 distinct ones
  const report = validate({ nails: [nail([[10, 10], [10.004, 10], [20, 20]])] }, 64, 48);
  assert.deepEqual(rules(report), ["too_few_vertices"]);
});
