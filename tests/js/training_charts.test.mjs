// Unit tests of the training pages' chart axes (training/static/training/charts.js) and progress words (live.js).
import assert from "node:assert/strict";
import { test } from "node:test";

import { epochAxis, niceStep, scale, seriesPoints, tickLabel, valueAxis } from "../../training/static/training/charts.js";
import { describeLive, formatDuration } from "../../training/static/training/live.js";

test("a one-epoch run has one epoch tick, in the middle, and no 'epoch 2'", () => {
  for (const [done, planned, active] of [[1, 1, false], [0, 1, true], [1, 1, true], [1, null, false]]) {
    const axis = epochAxis(done, planned, active);
    assert.deepEqual(axis, { min: 1, max: 1, ticks: [1] });
    assert.equal(scale(axis, 46, 586)(1), 316);
  }
});

test("while a run goes the epoch axis spans the planned epochs; afterwards the finished ones", () => {
  assert.deepEqual(epochAxis(1, 3, true), { min: 1, max: 3, ticks: [1, 2, 3] });
  assert.deepEqual(epochAxis(4, 60, false).ticks, [1, 2, 3, 4]);  // early stop / cancel: what was done
  assert.deepEqual(epochAxis(0, 200, false).ticks, [1]);  // cancelled in its first epoch
  const long = epochAxis(10, 60, true);
  assert.equal(long.max, 60);
  assert.deepEqual(long.ticks, [1, 10, 20, 30, 40, 50, 60]);
  for (let n = 2; n < 400; n++) {
    const axis = epochAxis(n, n, false);
    assert.ok(axis.ticks.length <= 9 && axis.ticks.every((t) => Number.isInteger(t) && t >= 1 && t <= n), `${n}: ${axis.ticks}`);
  }
});

test("the mIoU axis is 0..1 whatever the values, a single value included", () => {
  for (const values of [[0.478], [], [0.01, 0.02], [0.99]]) {
    const axis = valueAxis(values, "fraction");
    assert.equal(axis.min, 0);
    assert.equal(axis.max, 1);
    assert.deepEqual(axis.ticks, [0, 0.25, 0.5, 0.75, 1]);
  }
});

test("the loss axis goes from 0 to a rounded value above the largest loss", () => {
  assert.deepEqual(valueAxis([1.37], "loss"), { min: 0, max: 1.5, ticks: [0, 0.5, 1, 1.5] });
  assert.deepEqual(valueAxis([2.1, 0.4, NaN], "loss"), { min: 0, max: 3, ticks: [0, 1, 2, 3] });
  assert.equal(valueAxis([0.0123], "loss").max, 0.015);
  assert.deepEqual(valueAxis([], "loss"), { min: 0, max: 1, ticks: [0, 0.25, 0.5, 0.75, 1] });
  for (let k = 0; k < 500; k++) {
    const top = Math.exp((k / 500) * 12 - 6);
    const axis = valueAxis([top / 2, top], "loss");
    assert.ok(axis.max >= top && axis.max <= top * 2.5 + 1e-12, `${top} -> ${axis.max}`);
    assert.ok(axis.ticks.length >= 2 && axis.ticks.length <= 6 && axis.ticks.at(-1) === axis.max);
  }
  assert.deepEqual([0.3, 1.2, 7, 30].map(niceStep), [0.5, 2, 10, 50]);
  assert.deepEqual([0.25, 1.5, 10, 0.0125].map(tickLabel), ["0.25", "1.5", "10", "0.0125"]);
});

test("series points skip epochs without a value (no val split)", () => {
  const history = [{ epoch: 1, train_loss: 0.9, val: null }, { epoch: 2, train_loss: 0.5, val: { miou: 0.4 } }];
  assert.deepEqual(seriesPoints(history, (e) => e.train_loss), [[1, 0.9], [2, 0.5]]);
  assert.deepEqual(seriesPoints(history, (e) => e.val?.miou), [[2, 0.4]]);
});

test("progress words: epochs, per cent, ETA and images/s while running; time taken when done", () => {
  assert.deepEqual([5, 65, 3725, null].map(formatDuration), ["5 s", "1 min 05 s", "1 h 02 min", ""]);
  const running = { status: "running", live: { epochs_done: 1, epochs: 3, fraction: 0.41, eta_seconds: 80, images_per_second: 12.345, elapsed_seconds: 55 } };
  assert.equal(describeLive(running), "epoch 1 of 3 done · 41 % · about 1 min 20 s left · 12.3 images/s");
  const done = { status: "succeeded", live: { epochs_done: 3, epochs: 3, fraction: 1, eta_seconds: null, images_per_second: 20, elapsed_seconds: 90 } };
  assert.equal(describeLive(done), "epoch 3 of 3 done · 20.0 images/s · took 1 min 30 s");
  assert.match(describeLive({ status: "queued", live: { epochs_done: 0, epochs: 2 } }), /waiting for a training worker/);
});
