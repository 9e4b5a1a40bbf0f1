// Unit tests of the try-on page's in-browser pipeline (tryon/static/tryon/): post-processing, rendering and
// the FPS meter (run: node --test tests/js/). Their parity with ml/ is tested from Python
// (tests/test_tryon_postprocess_js.py, tests/test_tryon_render_js.py).
import assert from "node:assert/strict";
import { test } from "node:test";

import { fpsMeter } from "../../tryon/static/tryon/frame_pipeline.js";
import { connectedComponents } from "../../tryon/static/tryon/components.js";
import { isSimpleRing, pixelOutline, polygonOf, simplifyRing } from "../../tryon/static/tryon/outline.js";
import { postprocess, roundHalfEven } from "../../tryon/static/tryon/postprocess.js";
import { fillPolygon, labToRgb, parseColor, render, rgbToLab } from "../../tryon/static/tryon/render.js";

function grid(rows) {
  const h = rows.length, w = rows[0].length, mask = new Uint8Array(w * h);
  rows.forEach((row, y) => [...row].forEach((c, x) => { mask[y * w + x] = c === "#" ? 1 : 0; }));
  return { mask, w, h };
}

test("connected components: diagonal neighbours join with 8-connectivity only", () => {
  const { mask, w, h } = grid(["#..", ".#.", "..#", "#.."]);
  assert.equal(connectedComponents(mask, w, h, 8).count, 2);
  const four = connectedComponents(mask, w, h, 4);
  assert.equal(four.count, 4);
  assert.deepEqual([...four.area].slice(1), [1, 1, 1, 1]);
  assert.equal(four.labels[0], 1);  // numbered in scan order
});

test("the pixel outline of a rectangle is its four corners; a diagonal joint is opened by half a pixel", () => {
  const { mask, w, h } = grid(["....", ".##.", ".##.", "...."]);
  assert.deepEqual(pixelOutline(mask, w, h), [[1, 1], [3, 1], [3, 3], [1, 3]]);
  const diagonal = grid(["##..", "##..", "..##", "..##"]);
  const ring = pixelOutline(diagonal.mask, diagonal.w, diagonal.h);
  assert.equal(ring.length, 8);  // each visit of the joint moves half a pixel toward its background pixel
  assert.ok(ring.some(([x, y]) => Math.abs(x - 2.3536) < 1e-3 && Math.abs(y - 1.6464) < 1e-3));
  assert.ok(ring.some(([x, y]) => Math.abs(x - 1.6464) < 1e-3 && Math.abs(y - 2.3536) < 1e-3));
  assert.ok(isSimpleRing(ring));
});

test("Douglas-Peucker keeps the corners and respects the vertex bound", () => {
  const ring = [[0, 0], [5, 0.2], [10, 0], [10, 10], [5, 10.3], [0, 10]];
  assert.deepEqual(simplifyRing(ring, 1), [[0, 0], [10, 0], [10, 10], [0, 10]]);
  assert.deepEqual(simplifyRing([[5, 0.2], [10, 0], [10, 10], [0, 10], [0, 0]], 1), [[10, 0], [10, 10], [0, 10], [0, 0]]);
  const { mask, w, h } = grid(["..####..", ".######.", "########", "########", ".######.", "..####.."]);
  const polygon = polygonOf(mask, w, h, 10, 20, 1.0, 4);
  assert.ok(polygon.length <= 4 && isSimpleRing(polygon));
  assert.ok(polygon.every(([x, y]) => x >= 10 && x <= 18 && y >= 20 && y <= 26));
});

test("isSimpleRing refuses crossings, touching edges and repeated vertices", () => {
  assert.ok(isSimpleRing([[0, 0], [4, 0], [4, 4], [0, 4]]));
  assert.ok(!isSimpleRing([[0, 0], [4, 4], [4, 0], [0, 4]]));            // a bow tie
  assert.ok(!isSimpleRing([[0, 0], [4, 0], [2, 0], [2, 3]]));            // folds back on itself
  assert.ok(!isSimpleRing([[0, 0], [4, 0], [4, 4], [0, 0], [-4, 4]]));   // a vertex twice
});

test("Python's rounding: halves to even", () => {
  assert.deepEqual([0.5, 1.5, 2.5, -0.5, 6.144, 2.4999].map(roundHalfEven), [0, 2, 2, -0, 6, 2]);
});

test("postprocess: one nail per blob, its direction from the field, tiny blobs dropped", () => {
  const width = 40, height = 30, n = width * height;
  const fgProb = new Float32Array(n), field = new Float32Array(2 * n);
  for (let y = 5; y < 25; y++) for (let x = 8; x < 16; x++) { fgProb[y * width + x] = 0.9; field[2 * (y * width + x) + 1] = -1; }
  fgProb[2 * width + 30] = 0.9;  // a one-pixel speck
  const nails = postprocess({ width, height, fgProb, field }, { min_area: 20 });
  assert.equal(nails.length, 1);
  const [nail] = nails;
  assert.deepEqual(nail.bbox, [8, 5, 8, 20]);
  assert.equal(nail.area, 160);
  assert.equal(nail.directionSource, "field");
  assert.ok(Math.abs(nail.angle + 90) < 1e-9);
  assert.deepEqual(nail.polygon, [[8, 5], [16, 5], [16, 25], [8, 25]]);
  assert.deepEqual(nail.base.map(Math.round), [12, 25]);
  assert.deepEqual(nail.tip.map(Math.round), [12, 5]);
  assert.equal(nail.finger, null);
  assert.ok(Math.abs(nail.confidence - 0.9) < 1e-6);
  const binary = postprocess({ width, height, fgProb }, { min_area: 20 });
  assert.equal(binary[0].directionSource, "shape");
  assert.deepEqual(binary[0].direction.map((v) => Math.round(v * 1e6) / 1e6 + 0), [0, -1]);  // the principal axis, pointing up
});

test("fillPolygon: a rectangle with integer corners covers exactly its pixels", () => {
  const mask = fillPolygon([[1, 1], [4, 1], [4, 3], [1, 3]], 1, 6, 5);
  const inside = [];
  mask.forEach((v, i) => { if (v) inside.push([i % 6, Math.floor(i / 6)]); });
  assert.deepEqual(inside, [[1, 1], [2, 1], [3, 1], [1, 2], [2, 2], [3, 2]]);
  assert.equal(fillPolygon([[1, 1], [4, 1], [4, 3], [1, 3]], 2, 12, 10).reduce((s, v) => s + v, 0), 24);
});

test("colours: #RRGGBB and Lab round trips", () => {
  assert.deepEqual(parseColor("#C8102E"), [200, 16, 46]);
  assert.deepEqual(parseColor("c12"), [204, 17, 34]);
  assert.throws(() => parseColor("red"), /RRGGBB/);
  const lab = rgbToLab(200 / 255, 16 / 255, 46 / 255);
  [42.47, 65.83, 35.72].forEach((v, k) => assert.ok(Math.abs(lab[k] - v) < 0.1));  // OpenCV: 42.474, 65.828, 35.719
  labToRgb(...lab).forEach((v, k) => assert.ok(Math.abs(v * 255 - [200, 16, 46][k]) < 0.05));
});

test("render paints inside the stretched nail only and leaves every other byte alone", () => {
  const width = 60, height = 50, data = new Uint8ClampedArray(4 * width * height);
  for (let i = 0; i < data.length; i++) data[i] = i % 4 === 3 ? 255 : (i * 37) % 200;
  const nail = { polygon: [[20, 10], [34, 10], [36, 30], [30, 38], [22, 36], [18, 30]], base: [27, 37], tip: [27, 10] };
  for (const finish of ["glossy", "matte", "metallic"]) {
    const out = render({ data, width, height }, [nail], "#1F2A44", finish);
    let changed = 0;
    for (let p = 0; p < width * height; p++) {
      const same = [0, 1, 2, 3].every((c) => out.data[4 * p + c] === data[4 * p + c]);
      if (out.alpha[p] === 0) assert.ok(same, `pixel ${p} changed outside the nail (${finish})`);
      else if (!same) changed++;
    }
    assert.ok(changed > 300, `${finish}: ${changed}`);
    assert.equal(out.nails[0].axisSource, "landmarks");
    assert.ok(Math.min(...out.nails[0].polygon.map((p) => p[1])) < 10);  // stretched toward the tip (up)
  }
  assert.throws(() => render({ data, width, height }, [nail], "#000000", "sparkly"), /finish/);
});

test("the FPS meter averages over its window", () => {
  const meter = fpsMeter(5);
  assert.equal(meter.tick(0), null);
  [100, 200, 300, 400, 500].forEach((t) => meter.tick(t));
  assert.equal(meter.fps(), 10);
  meter.reset();
  assert.equal(meter.fps(), null);
});
