// Proposed nails (labeling/static/labeling/proposed.js): P / Shift+P select the next / previous undecided one.
import { test } from "node:test";
import assert from "node:assert/strict";

import { actionFor } from "../../labeling/static/labeling/keyboard.js";
import { ProposedNails } from "../../labeling/static/labeling/proposed.js";

const square = (x) => [[x, 0], [x + 10, 0], [x + 10, 10], [x, 10]];

function three() {
  const proposed = new ProposedNails();
  const geometry = { nails: [0, 20, 40, 60].map((x) => ({ polygon: square(x), finger: null, base: null, tip: null })), ignore: [] };
  const rest = proposed.take(geometry, [1, 2, 3], [{ confidence: 0.5 }, { confidence: 0.4 }, { confidence: 0.3 }]);
  return { proposed, rest };
}

test("P selects the next proposed nail round the list, Shift+P the previous one", () => {
  const { proposed, rest } = three();
  assert.equal(rest.nails.length, 1);
  assert.equal(proposed.current, 0);                      // the first is selected at the start
  assert.deepEqual([1, 1, 1].map((step) => (proposed.selectNext(step), proposed.current)), [1, 2, 0]);
  assert.deepEqual([-1, -1].map((step) => (proposed.selectNext(step), proposed.current)), [2, 1]);
  assert.equal(proposed.selectNext(1).nail.polygon[0][0], 60);   // answers the selected entry
  proposed.select(null);                                  // a nail was selected instead: from none, the first / last
  assert.equal((proposed.selectNext(1), proposed.current), 0);
  proposed.select(null);
  assert.equal((proposed.selectNext(-1), proposed.current), 2);
  proposed.reject();                                      // only undecided ones: the rejected third is not visited again
  assert.equal(proposed.current, 1);
  assert.deepEqual([1, 1, 1].map((step) => (proposed.selectNext(step), proposed.current)), [0, 1, 0]);
  assert.equal(proposed.describe().endsWith("P selects the next."), true);
});

test("with no proposed nail P selects nothing", () => {
  const proposed = new ProposedNails();
  assert.equal(proposed.selectNext(1), null);
  assert.equal(proposed.current, null);
});

test("P and Shift+P are the proposed-nail keys; Tab stays the nails' key", () => {
  assert.deepEqual(actionFor({ key: "p", shiftKey: false }), { action: "next-proposed", arg: 1 });
  assert.deepEqual(actionFor({ key: "P", shiftKey: true }), { action: "next-proposed", arg: -1 });
  assert.deepEqual(actionFor({ key: "Tab", shiftKey: false }), { action: "next", arg: 1 });
  assert.equal(actionFor({ key: "p", ctrlKey: true }), null);   // Ctrl+P is the browser's
});
