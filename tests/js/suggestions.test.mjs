// The "suggested" marks in the tool (issue #16): edits confirm the field they touch, accepting a suggestion
// fills missing fields and drops the marks, and the page's keys reach the accept actions.
import assert from "node:assert/strict";
import { test } from "node:test";

import { actionFor } from "../../labeling/static/labeling/keyboard.js";
import { acceptSuggestion, clearLandmarks, normalizeIn, setFinger, setLandmark, suggestedFields, swapLandmarks, translateShape }
  from "../../labeling/static/labeling/scene.js";

const SQUARE = [[10, 10], [30, 10], [30, 30], [10, 30]];
const marked = () => normalizeIn({ nails: [{ id: "a", polygon: SQUARE, finger: 7, base: [20, 29], tip: [20, 11],
  suggested: { finger: 0.8, landmarks: 0.6 } }], ignore: [] });

test("loading keeps the marks; an edit confirms only the field it touches", () => {
  const g = marked();
  assert.deepEqual(g.nails[0].suggested, { finger: 0.8, landmarks: 0.6 });
  assert.deepEqual(setFinger(g, 0, 8).nails[0].suggested, { landmarks: 0.6 });
  assert.deepEqual(setLandmark(g, 0, "base", [21, 29]).nails[0].suggested, { finger: 0.8 });
  assert.deepEqual(swapLandmarks(g, 0).nails[0].suggested, { finger: 0.8 });
  assert.deepEqual(clearLandmarks(g, 0).nails[0].suggested, { finger: 0.8 });
  assert.deepEqual(translateShape(g, "nail", 0, 1, 1).nails[0].suggested, { finger: 0.8, landmarks: 0.6 });
  assert.equal("suggested" in setFinger(setLandmark(g, 0, "tip", [20, 12]), 0, null).nails[0], false);
});

test("accepting fills missing and marked fields from the suggestion, and confirms marked ones without one", () => {
  const outline = normalizeIn({ nails: [{ id: "b", polygon: SQUARE }], ignore: [] });
  const suggestion = { finger: 6, base: [20, 29.004], tip: [20, 11] };
  const filled = acceptSuggestion(outline, 0, suggestion).nails[0];
  assert.deepEqual([filled.finger, filled.base, filled.tip, "suggested" in filled], [6, [20, 29], [20, 11], false]);
  // A marked field takes the suggestion of the nail as it is now (e.g. a draft's, made before its outline was fixed).
  const fresh = acceptSuggestion(marked(), 0, suggestion).nails[0];
  assert.deepEqual([fresh.finger, fresh.base, fresh.tip, "suggested" in fresh], [6, [20, 29], [20, 11], false]);
  const confirmed = acceptSuggestion(marked(), 0, null).nails[0];             // none (yet): its own values, confirmed
  assert.deepEqual([confirmed.finger, confirmed.base, "suggested" in confirmed], [7, [20, 29], false]);
  assert.equal(acceptSuggestion(normalizeIn({ nails: [{ polygon: SQUARE, finger: 2, base: [20, 29], tip: [20, 11] }] }), 0,
    suggestion), null);   // complete and confirmed: nothing to accept
  assert.equal(acceptSuggestion(outline, 0, null), null);
  const noFinger = acceptSuggestion(marked(), 0, { base: [20, 11], tip: [20, 29] }).nails[0];  // a suggestion without a finger
  assert.deepEqual([noFinger.finger, noFinger.base], [7, [20, 11]]);
});

test("G accepts the selected nail's suggestion, Shift+G every nail's", () => {
  assert.deepEqual(actionFor({ key: "g", shiftKey: false }), { action: "accept-suggestion" });
  assert.deepEqual(actionFor({ key: "G", shiftKey: true }), { action: "accept-all-suggestions" });
  assert.deepEqual(actionFor({ key: "a", shiftKey: false }), { action: "tool-landmarks" });   // A keeps its tool
});

test("what is shown ghosted is what accepting sets (one field rule)", () => {
  const suggestion = { finger: 6, confidence: 0.7, base: [20, 29], tip: [20, 11], direction_confidence: 0.9 };
  const nails = [
    { id: "a", polygon: SQUARE },                                                      // nothing: the suggestion's
    { id: "b", polygon: SQUARE, finger: 3 },                                           // confirmed finger: landmarks only
    { id: "c", polygon: SQUARE, finger: 7, base: [21, 28], tip: [21, 12], suggested: { finger: 0.8, landmarks: 0.6 } },
    { id: "d", polygon: SQUARE, finger: 2, base: [20, 28], tip: [20, 12] },             // complete, confirmed: nothing
  ];
  for (const raw of nails) {
    const g = normalizeIn({ nails: [raw], ignore: [] });
    const offered = suggestedFields(g.nails[0], suggestion);
    const accepted = acceptSuggestion(g, 0, suggestion);
    if (!Object.keys(offered).length) {
      assert.equal(accepted, null);
      continue;
    }
    const nail = accepted.nails[0];
    if ("finger" in offered) assert.equal(nail.finger, offered.finger);
    if ("base" in offered) assert.deepEqual([nail.base, nail.tip], [offered.base, offered.tip]);
    assert.equal("suggested" in nail, false);
  }
  const marks = normalizeIn({ nails: [nails[2]], ignore: [] }).nails[0];
  assert.deepEqual(suggestedFields(marks, suggestion),          // marked: the suggestion of the nail as it is now
    { finger: 6, fingerConfidence: 0.7, base: [20, 29], tip: [20, 11], directionConfidence: 0.9 });
  assert.deepEqual(suggestedFields(marks, null),                // no suggestion (yet): its own values and marks
    { finger: 7, fingerConfidence: 0.8, base: [21, 28], tip: [21, 12], directionConfidence: 0.6 });
});

test("the page's nails are posted, and an answer older than the last one answered is dropped", async () => {
  const { Suggestions } = await import("../../labeling/static/labeling/suggestions.js");
  const sent = [];
  const answers = [];
  globalThis.document = { querySelector: () => ({ content: "token" }), cookie: "" };
  globalThis.fetch = (url, options) => new Promise((resolve) => {
    sent.push({ url, method: options.method, body: options.body && JSON.parse(options.body) });
    answers.push((nails) => resolve({ ok: true, status: 200, json: async () => ({ nails }) }));
  });
  const suggestions = new Suggestions("/api/images/1/");
  const older = suggestions.refresh([{ id: "a", polygon: SQUARE }]);
  const newer = suggestions.refresh([{ id: "a", polygon: SQUARE }, { id: "b", polygon: SQUARE }]);
  assert.deepEqual(sent.map((s) => [s.url, s.method, s.body.nails.length]),
    [["/api/images/1/label-suggestions/", "POST", 1], ["/api/images/1/label-suggestions/", "POST", 2]]);
  answers[1]([{ id: "a", suggestion: { finger: 7 } }, { id: "b", suggestion: { finger: 8 } }]);
  assert.equal(await newer, true);
  answers[0]([{ id: "a", suggestion: { finger: 1 } }]);              // late: the nails have changed since
  assert.equal(await older, false);
  assert.deepEqual([suggestions.byId.get("a").finger, suggestions.byId.get("b").finger], [7, 8]);
  // The same nails again (the save after an edit): nothing is asked.
  assert.equal(await suggestions.refresh([{ id: "a", polygon: SQUARE }, { id: "b", polygon: SQUARE }]), false);
  assert.equal(sent.length, 2);
  const saved = suggestions.refresh();                                // no nails: the saved labels (GET)
  assert.equal(sent[2].method, "GET");
  answers[2]([]);
  assert.equal(await saved, true);
});
