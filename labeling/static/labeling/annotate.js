// The annotation page: wires the scene (labels + undo history), the layered stage, the mouse tools, the
// keyboard, the side panels, autosave with conflict handling, and the rasterizer overlay.
// `window.annotator` exposes the parts (for the browser tests and for curious annotators).

import { AnnotationClient, Autosaver, LocalBackup, request } from "./api.js";
import { ClickNail } from "./click.js";
import { describeDiff, diffGeometry } from "./diff.js";
import { fingerCode } from "./fingers.js";
import { bbox, validate } from "./geometry.js";
import { SHORTCUTS, actionFor, renderHelp } from "./keyboard.js";
import { OVERLAY_NAMES, RasterOverlay } from "./overlay.js";
import { HandsPanel, IssueList, NailList, classifyIssues, el, issuesByShape } from "./panels.js";
import { ProposedNails } from "./proposed.js";
import { Stage } from "./render.js";
import { Scene, geometryKey, normalizeIn, shapeOf, withInvalidShapes } from "./scene.js";
import { Suggestions, describeGhost, paintGhosts } from "./suggestions.js";
import { Editor, TOOL_NAMES } from "./tools.js";
import { View } from "./view.js";

const $ = (id) => document.getElementById(id);
const config = JSON.parse($("annotate-config").textContent);
const W = config.width, H = config.height;

const client = new AnnotationClient(config.apiBase);
const view = new View(W, H);
const stage = new Stage($("stage"), view);
const scene = new Scene({ nails: [], ignore: [] });
const backup = new LocalBackup(config.imageId, config.username);
const state = {
  annotation: null,       // the last annotation the server sent
  issues: [],             // client validation + the server's last 400
  serverIssues: [],
  readOnly: false,
  helpOpen: false,
  conflictOpen: false,
  adjust: { brightness: 1, contrast: 1 },
};

function message(text) {
  $("message").textContent = text || "";
}

const editor = new Editor({
  stage, view, scene, width: W, height: H, onMessage: message,
  onPointer: (p) => {
    const text = p && p[0] >= 0 && p[1] >= 0 && p[0] <= W && p[1] <= H ? `x ${p[0].toFixed(1)}  y ${p[1].toFixed(1)}` : "";
    if ($("coords").textContent !== text) $("coords").textContent = text;
  },
  onTool: (tool) => {
    for (const button of document.querySelectorAll("button[data-tool]")) button.classList.toggle("active", button.dataset.tool === tool);
    $("stage").dataset.tool = tool;
    $("tool-name").textContent = TOOL_NAMES[tool];
  },
});
stage.onViewChange = () => {
  const text = `${Math.round(view.scale * 100)}%`;
  if ($("zoom").textContent !== text) $("zoom").textContent = text;
};

// Drafts are saved as drawn: the server keeps a shape that breaks a rule apart, flagged (invalid_shapes);
// only submitting needs every shape valid.
const autosaver = new Autosaver({
  client, backup, key: geometryKey, getGeometry: () => savedGeometry(),
  onState: ({ state: s, detail }) => showSaveState(s, detail),
  onSaved: (annotation) => {
    state.annotation = { ...state.annotation, ...annotation };
    showStatus();
    refreshSuggestions();
  },
  onConflict: (current) => showConflict(current),
  onInvalid: (data) => {
    state.serverIssues = (data.errors || []).map((e) => ({ ...e, level: "error", source: "server" }));
    revalidate();
    refreshPanels();
    stage.request("scene");
  },
  onForbidden: (data) => setReadOnly(true, `${(data && data.detail) || "You may not change these labels"}: read-only. ` +
    "Your last changes were not saved; this browser keeps a copy."),
});

// The page's nails in the API's form (saved or not): the context of click-a-nail and of the label suggestions.
const pageNails = () => savedGeometry().nails.map(({ id, polygon, finger, base, tip, suggested }) =>
  ({ id, polygon, finger, base, tip, ...(suggested ? { suggested } : {}) }));
const clicker = new ClickNail({
  apiBase: config.apiBase, onMessage: message, onChange: () => stage.request("ui"), getNails: pageNails,
});
editor.clicker = clicker;

const suggestions = new Suggestions(config.apiBase);
// Nails proposed by another app (pre-labeling: a draft's low-confidence nails, prelabel/static/prelabel/opened.js):
// one key accepts (Enter) or rejects (Delete) the selected one; undecided ones stay in the saved labels (proposed.js).
const proposed = new ProposedNails({
  onChange: () => {
    if (proposed.selected) {
      scene.select(null);
      message(proposed.describe());
    }
    stage.request("scene");
  },
});
editor.proposed = proposed;
stage.painters.scene = (ctx) => {
  editor.paintScene(ctx);
  paintGhosts(ctx, view, scene.geometry, suggestions);
  proposed.paint(ctx, view);
};

/**
 * What is saved: the scene's labels and, after them, the proposed nails still undecided (they stay in the saved
 * labels, as the draft had them, until rejected; so an edit never drops one unseen, and a reload keeps them).
 */
function savedGeometry() {
  return proposed.nails.length ? { ...scene.geometry, nails: [...scene.geometry.nails, ...proposed.nails.map((e) => e.nail)] }
    : scene.geometry;
}

/**
 * Show the nails at `indices` of the labels as proposed nails (`info[k]`: {confidence, source} of indices[k]):
 * they leave the scene without an edit (nothing to undo; what is saved still holds them, see savedGeometry).
 * Only on labels as the server has them: not while an edit waits to be saved or a conflict is open.
 * Returns how many were taken.
 */
function proposeNails(indices, info = []) {
  if (state.readOnly || !indices.length || autosaver.dirty || autosaver.paused) return 0;
  const before = scene.geometry.nails.length;
  scene.reset(proposed.take(scene.geometry, indices, info));
  // The same nails as the server's, the proposed ones last: nothing to save until an edit.
  autosaver.setBase({ version: autosaver.version, geometry: savedGeometry(), status: autosaver.status });
  refreshSuggestions();
  if (proposed.selected) message(proposed.describe());
  return before - scene.geometry.nails.length;
}

function acceptProposed() {
  const added = proposed.accept(scene.geometry);
  if (!added) return false;
  scene.commit(added.geometry, "Accept proposed nail", { kind: "nail", index: added.index });
  message(`Nail ${added.index + 1} accepted (Ctrl-Z takes it back out); its finger and base/tip are suggestions (dashed): G accepts them.` +
    (proposed.nails.length ? ` ${proposed.nails.length} proposed nail(s) left: P selects the next (or click one).` : ""));
  return true;
}

function rejectProposed() {
  if (!proposed.reject()) return false;
  autosaver.changed();  // saved without it from now on
  stage.request("scene");
  if (!proposed.selected) message(proposed.nails.length ? "Proposed nail rejected." : "Proposed nail rejected; none left.");
  return true;
}

/** P / Shift+P: the next / previous proposed nail, selected and brought into view when it is off screen. */
function selectNextProposed(step) {
  const entry = proposed.selectNext(step);
  if (!entry) return message("No proposed nail to select.");
  const box = bbox(entry.nail.polygon);
  if (view.ensureVisible((box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2)) stage.viewChanged();
  return message(proposed.describe());
}

const SUGGEST_AFTER_EDIT_MS = 300;  // the ghosts follow an edit this soon (autosave waits 2.5 s)
let suggestTimer = 0;
function suggestSoon() {
  clearTimeout(suggestTimer);
  suggestTimer = setTimeout(refreshSuggestions, SUGGEST_AFTER_EDIT_MS);
}

async function refreshSuggestions() {
  clearTimeout(suggestTimer);
  suggestTimer = 0;
  if (await suggestions.refresh(pageNails())) {
    stage.request("scene");
    refreshPanels();
  }
}

function acceptSuggestions(all) {
  const g = scene.geometry;
  const selected = scene.selection && scene.selection.kind === "nail" ? scene.selection.index : null;
  if (!all && selected === null) return message("Select a nail first (Tab), or Shift+G for every nail.");
  const accepted = suggestions.accept(g, all ? g.nails.map((_, i) => i) : [selected]);
  if (!accepted) return message("Nothing suggested to accept here.");
  scene.commit(accepted, all ? "Accept every suggestion" : "Accept suggestion");
  return message(all ? "Accepted the suggestions of every nail." : "Accepted the suggestion.");
}

const overlay = new RasterOverlay({
  client, stage, getGeometry: () => scene.geometry,
  onInfo: (info) => showOverlayInfo(info),
});

const hands = new HandsPanel($("hands"), { onPick: (finger) => editor.setFinger(finger) });
const nailList = new NailList($("nails"), {
  onSelect: (target) => { scene.select(target); editor.zoomToSelection(); },
  onZoom: (target) => { scene.select(target); editor.zoomToSelection(); },
});
const issueList = new IssueList($("issues"), {
  onSelect: (target) => { scene.select(target); editor.zoomToSelection(); },
});

// --- validation and panels -------------------------------------------------------------------------------

function revalidate() {
  const report = validate(scene.geometry, W, H, { requireComplete: true });
  state.issues = classifyIssues(report).concat(state.serverIssues);
  editor.issues = issuesByShape(state.issues);
}

function refreshPanels() {
  const g = scene.geometry;
  const nail = scene.selectedNail;
  const used = new Map();
  for (const n of g.nails) if (n.finger) used.set(n.finger, (used.get(n.finger) || 0) + 1);
  const ghost = nail ? suggestions.ghost(g, scene.selection.index) : null;
  hands.update({ finger: nail ? nail.finger : null, used, hand: editor.hand, enabled: Boolean(nail) && !state.readOnly,
    ghost: ghost ? { finger: ghost.finger, text: describeGhost(ghost) } : null });
  nailList.update(g, scene.selection, editor.issues);
  issueList.update(state.issues);
  $("nail-count").textContent = `${g.nails.length}${g.ignore.length ? ` + ${g.ignore.length} ignore` : ""}`;
  const blocking = state.issues.filter((i) => i.level !== "warning");
  const submit = $("submit");
  submit.disabled = state.readOnly;
  submit.classList.toggle("blocked", blocking.length > 0 || g.nails.length === 0);
  submit.title = blocking.length ? `Cannot submit yet:\n${blocking.slice(0, 8).map((i) => i.message).join("\n")}`
    : g.nails.length ? "Submit for review (Ctrl+Enter)" : "Draw the nails first";
  $("undo").disabled = !scene.history.canUndo || state.readOnly;
  $("redo").disabled = !scene.history.canRedo || state.readOnly;
  $("undo").title = scene.history.canUndo ? `Undo ${scene.history.undoLabel} (Ctrl+Z)` : "Nothing to undo";
  $("redo").title = scene.history.canRedo ? `Redo ${scene.history.redoLabel} (Ctrl+Shift+Z)` : "Nothing to redo";
  for (const id of ["swap", "clear-lm", "delete-shape"]) $(id).disabled = !scene.selection || state.readOnly;
}

scene.on("change", ({ source, label }) => {
  if (source === "undo" || source === "redo") proposed.sync(scene.geometry);  // an accepted proposal undone: proposed again
  if (source !== "reset") state.serverIssues = [];
  revalidate();
  stage.request("scene", "ui");
  refreshPanels();
  if (source === "undo") message(`Undone: ${label}.`);
  else if (source === "redo") message(`Redone: ${label}.`);
  if (source !== "reset") {
    autosaver.changed();
    overlay.changed();
    suggestSoon();
  }
});
scene.on("select", (selection) => {
  if (selection) proposed.select(null);
  stage.request("scene", "ui");
  refreshPanels();
});

// --- status, save state, banners ---------------------------------------------------------------------

const SAVE_TEXT = {
  saved: "All changes saved", dirty: "Unsaved changes…", saving: "Saving…", invalid: "Not saved",
  error: "Save failed", conflict: "Conflict: someone else saved", forbidden: "Read-only",
};

function showSaveState(s, detail) {
  const node = $("save-state");
  node.dataset.state = s;
  node.textContent = SAVE_TEXT[s] || s;
  node.title = detail || "";
  if (s === "invalid" || s === "error") message(detail);
}

function showStatus() {
  const a = state.annotation;
  if (!a) return;
  const chip = $("status-chip");
  chip.textContent = a.status;
  chip.dataset.status = a.status;
  $("version").textContent = `version ${a.version}`;
  showReviewBanner();
  showFlagged();
}

/** The saved draft's shapes that break a rule: kept as drawn, to be fixed before submitting. */
function showFlagged() {
  const flagged = (state.annotation && state.annotation.invalid_shapes) || [];
  if (!flagged.length) return removeBanner("flagged-banner");
  const problems = flagged.flatMap((shape) => shape.errors.map((e) => e.message));
  const more = problems.length > 3 ? `; and ${problems.length - 3} more` : "";
  banner("flagged-banner", "warning", `Saved as drawn, with ${flagged.length} flagged shape(s) to fix before you submit: ` +
    `${problems.slice(0, 3).join("; ")}${more}.`);
}

function banner(id, kind, ...children) {
  let node = $(id);
  if (!node) {
    node = el("div", { id, class: `banner ${kind}`, role: kind === "error" ? "alert" : "status" });
    $("banners").appendChild(node);
  }
  node.className = `banner ${kind}`;
  node.replaceChildren(...children);
  return node;
}

function removeBanner(id) {
  const node = $(id);
  if (node) node.remove();
}

function showReviewBanner() {
  const a = state.annotation;
  if (a && a.review_comment && a.status !== "accepted") {
    const when = a.reviewed_at ? new Date(a.reviewed_at).toLocaleString() : "";
    banner("review-banner", "warning", el("strong", {}, `Rejected by ${a.reviewer || "a reviewer"}`), when ? ` (${when})` : "", ": ",
      el("span", { class: "review-comment" }, a.review_comment),
      a.status === "rejected" ? " — fix it and submit again." : "");
  } else if (a && a.status === "accepted") {
    banner("review-banner", "ok", a.reviewed_at ? `Accepted by ${a.reviewer || "a reviewer"}.` : "Imported as accepted (no reviewer has seen it).");
  } else removeBanner("review-banner");
}

function setReadOnly(readOnly, why) {
  state.readOnly = readOnly;
  editor.readOnly = readOnly;
  if (readOnly) {
    editor.setTool("select");
    banner("readonly-banner", "info", why);
  } else removeBanner("readonly-banner");
  for (const node of document.querySelectorAll("button[data-tool], #save, #submit")) node.disabled = readOnly;
  refreshPanels();
}

function showOverlayInfo(info) {
  const box = $("overlay-info");
  $("overlay").value = overlay.kind || "";
  if (info.state === "off") return box.replaceChildren("Off. Press O to see what the model will learn from these labels.");
  if (info.state === "loading") return box.setAttribute("data-state", "loading");
  box.setAttribute("data-state", info.state);
  if (info.state === "error") {
    return box.replaceChildren(el("p", { class: "error" }, `No overlay: ${info.detail || "the rasterizer failed"}`),
      ...(info.errors || []).slice(0, 5).map((e) => el("p", { class: "error small" }, e.message)));
  }
  const r = info.info || {};
  const lines = [el("p", {}, `${OVERLAY_NAMES[info.kind]} as the rasterizer makes it (${r.width}×${r.height} px): ${r.foreground_pixels} nail px.`)];
  if (info.kind === "classes") lines.push(el("p", { class: "small" }, "Left hand warm colours, right hand cool; hatched grey = no finger class (ignored by the class loss)."));
  if (info.kind === "field") lines.push(el("p", { class: "small" }, "Colour = direction base → tip; grey = nail without base/tip (no field loss there)."));
  for (const [i, j, px] of r.overlaps || []) {
    lines.push(el("p", { class: "warning" }, `Nails ${i + 1} and ${j + 1} overlap (${px} px): the smaller nail gets those pixels.`));
  }
  box.replaceChildren(...lines);
}

// --- save, submit, conflicts ----------------------------------------------------------------------------

async function saveDraft() {
  if (state.readOnly) return;
  if (!autosaver.dirty) return message("Nothing to save: every change is saved.");
  const result = await autosaver.flush();
  if (result && result.ok) message(`Saved as version ${result.data.version}.`);
}

async function submit() {
  if (state.readOnly) return;
  if (autosaver.paused) return message("Resolve the conflict first.");
  if (editor.drawing.length) editor.closeDrawing();
  const blocking = state.issues.filter((i) => i.level === "error" || i.level === "incomplete");
  if (proposed.nails.length) {  // never dropped unseen: each proposed nail is accepted or rejected first
    proposed.select(proposed.current === null ? 0 : proposed.current);
    return message(`${proposed.nails.length} proposed nail(s) to decide on first: Enter accepts the selected one, Delete rejects it.`);
  }
  if (!scene.geometry.nails.length) return message("Nothing to submit: draw the nails first (N).");
  if (blocking.length) {
    const first = blocking[0];
    if (first.nail !== null && first.nail !== undefined) {
      scene.select({ kind: "nail", index: first.nail });
      editor.zoomToSelection();
    }
    $("issues").classList.add("flash");
    setTimeout(() => $("issues").classList.remove("flash"), 900);
    return message(`Cannot submit: ${blocking.length} problem(s). ${first.message}`);
  }
  if (state.annotation.status === "submitted" && !autosaver.dirty) return message("Already submitted: it waits for a reviewer.");
  const result = await autosaver.save({ status: "submitted" });
  if (result && result.ok) {
    ACTIONS.fit();  // the whole image again, whatever zoom the last fix needed
    const counts = await request("GET", "/api/queue/");
    const left = counts.ok ? ` ${counts.data.remaining} image(s) left in the queue.` : "";
    message(`Submitted for review (version ${result.data.version}).${left} Next image: the button at the top right.`);
    $("next").focus();
  }
}

function showConflict(current) {
  state.conflictOpen = true;
  const mine = scene.geometry;
  const theirs = normalizeIn(withInvalidShapes(current.geometry, current.invalid_shapes));
  const lines = describeDiff(diffGeometry(theirs, mine), theirs, mine);
  const when = current.updated_at ? new Date(current.updated_at).toLocaleString() : "just now";
  $("conflict-text").textContent = `${current.updated_by || "Someone"} saved version ${current.version} (${when}) while you were ` +
    `editing version ${autosaver.version}. Your changes are not lost: choose what to keep.`;
  $("conflict-diff").replaceChildren(...lines.map((l) => el("li", { class: l.kind }, l.text)));
  $("conflict").hidden = false;
  $("conflict-keep").focus();
  $("conflict-keep").onclick = async () => {
    closeConflict();
    const result = await autosaver.keepMine(current.version,
      `kept over version ${current.version} by ${current.updated_by || "someone"} after an edit conflict`);
    if (result && result.ok) message(`Your labels were saved as version ${result.data.version}; version ${current.version} stays in the history.`);
  };
  $("conflict-reload").onclick = () => {
    closeConflict();
    const myVersion = autosaver.version;
    state.annotation = { ...state.annotation, ...current };
    autosaver.setBase({ version: current.version, geometry: theirs, status: current.status });
    scene.replaceAll(theirs, "Reload the other version");
    backup.write(mine, myVersion);  // besides the undo history, a copy offered back on the next visit (until the next edit)
    showStatus();
    message(`Loaded version ${current.version}. Your labels are one undo away (Ctrl+Z), and saved again if you undo.`);
  };
}

function closeConflict() {
  state.conflictOpen = false;
  $("conflict").hidden = true;
}

// --- local copy of unsaved labels ------------------------------------------------------------------------

function offerBackup(saved) {
  const theirs = state.annotation;
  const when = new Date(saved.savedAt).toLocaleString();
  banner("backup-banner", "warning",
    `This browser kept labels that were not saved (${when}, ${saved.geometry.nails.length} nail(s), made on version ${saved.baseVersion}; ` +
    `the server has version ${theirs.version}). `,
    el("button", { type: "button", id: "backup-restore", onclick: () => {
      removeBanner("backup-banner");
      scene.replaceAll(saved.geometry, "Restore unsaved labels");
      if (saved.baseVersion !== theirs.version) message("Restored. The server has a newer version: saving will ask you which to keep.");
      autosaver.version = saved.baseVersion;
      autosaver.changed();
    } }, "Restore them"),
    " ",
    el("button", { type: "button", class: "secondary", onclick: () => { backup.clear(); removeBanner("backup-banner"); } }, "Discard"));
}

// --- keyboard --------------------------------------------------------------------------------------------

function toggleHelp(open = !state.helpOpen) {
  state.helpOpen = open;
  $("help").hidden = !open;
  if (open) $("help-close").focus();
}

function setAdjust(kind, delta) {
  const a = state.adjust;
  if (kind === "reset") a.brightness = a.contrast = 1;
  else a[kind] = Math.min(3, Math.max(0.3, Math.round((a[kind] + delta * 0.1) * 100) / 100));
  $("brightness").value = a.brightness;
  $("contrast").value = a.contrast;
  stage.setFilter(a.brightness, a.contrast);
}

function zoomBy(factor) {
  view.zoomAt(view.width / 2, view.height / 2, factor);
  stage.viewChanged();
}

const ACTIONS = {
  "tool-nail": () => editor.setTool("nail"),
  "tool-ignore": () => editor.setTool("ignore"),
  "tool-landmarks": () => editor.setTool("landmarks"),
  "tool-select": () => editor.setTool("select"),
  "tool-click": () => editor.setTool("click"),
  close: () => (editor.drawing.length ? editor.closeDrawing() : editor.acceptProposal() || acceptProposed()),
  "drop-point": () => editor.undoDrawPoint(),
  cancel: () => editor.cancel(),
  hand: (hand) => { editor.setHand(hand); refreshPanels(); },
  digit: (digit) => editor.setFingerDigit(digit),
  "clear-finger": () => editor.setFinger(null),
  landmark: (key) => editor.landmarkAtCursor(key),
  aim: () => editor.aimAtCursor(),
  swap: () => editor.swapLandmarks(),
  "accept-suggestion": () => acceptSuggestions(false),
  "accept-all-suggestions": () => acceptSuggestions(true),
  undo: () => (editor.drawing.length ? editor.undoDrawPoint() : scene.undo() || message("Nothing to undo.")),
  redo: () => scene.redo() || message("Nothing to redo."),
  delete: () => (scene.selection || !proposed.selected ? editor.deleteSelection() : rejectProposed()),
  next: (step) => editor.selectNext(step),
  "next-proposed": (step) => selectNextProposed(step),
  nudge: ([dx, dy]) => {
    if (!editor.nudge(dx, dy)) {
      view.panBy(-dx * 30, -dy * 30);
      stage.viewChanged();
    }
  },
  fit: () => { view.fit(); stage.viewChanged(); },
  "zoom-selection": () => editor.zoomToSelection() || message("Select a nail first."),
  zoom: (factor) => zoomBy(factor),
  brightness: (d) => setAdjust("brightness", d),
  contrast: (d) => setAdjust("contrast", d),
  "reset-adjust": () => setAdjust("reset"),
  overlay: () => overlay.cycle(),
  hide: () => {
    editor.hidden = !editor.hidden;
    stage.setVisible("scene", !editor.hidden);
    message(editor.hidden ? "Labels hidden (H shows them)." : "");
  },
  save: () => saveDraft(),
  submit: () => submit(),
  help: () => toggleHelp(),
  space: () => editor.setSpace(true),
};
const EDITING = new Set(["tool-nail", "tool-click", "tool-ignore", "tool-landmarks", "close", "drop-point", "digit", "clear-finger", "landmark", "aim",
  "swap", "undo", "redo", "delete", "save", "submit", "hand", "accept-suggestion", "accept-all-suggestions"]);

window.addEventListener("keydown", (e) => {
  if (state.helpOpen && (e.key === "Escape" || e.key === "?")) {
    e.preventDefault();
    return toggleHelp(false);
  }
  if (state.conflictOpen) return;
  const onControl = e.target && e.target.closest && e.target.closest("button, a");
  if (onControl && (e.key === "Enter" || e.key === " ")) return;  // a focused button or link keeps Enter and Space
  const hit = actionFor(e, { drawing: editor.drawing.length > 0 });
  if (!hit) return;
  e.preventDefault();
  if (state.readOnly && EDITING.has(hit.action)) return message("These labels are read-only.");
  if (editor.drag && EDITING.has(hit.action)) return;  // finish the drag first
  ACTIONS[hit.action](hit.arg, e);
});
window.addEventListener("keyup", (e) => {
  if (e.key === " ") editor.setSpace(false);
});
window.addEventListener("blur", () => editor.setSpace(false));

// --- toolbar -------------------------------------------------------------------------------------------

for (const button of document.querySelectorAll("button[data-tool]")) button.addEventListener("click", () => editor.setTool(button.dataset.tool));
$("undo").addEventListener("click", () => ACTIONS.undo());
$("redo").addEventListener("click", () => ACTIONS.redo());
$("fit").addEventListener("click", () => ACTIONS.fit());
$("save").addEventListener("click", () => saveDraft());
$("submit").addEventListener("click", () => submit());
$("swap").addEventListener("click", () => editor.swapLandmarks());
$("clear-lm").addEventListener("click", () => editor.clearLandmarks());
$("delete-shape").addEventListener("click", () => editor.deleteSelection());
$("help-button").addEventListener("click", () => toggleHelp());
$("help-close").addEventListener("click", () => toggleHelp(false));
$("brightness").addEventListener("input", (e) => { state.adjust.brightness = Number(e.target.value); setAdjust("brightness", 0); });
$("contrast").addEventListener("input", (e) => { state.adjust.contrast = Number(e.target.value); setAdjust("contrast", 0); });
$("overlay").addEventListener("change", (e) => { overlay.setKind(e.target.value || null); e.target.blur(); });
for (const id of ["brightness", "contrast"]) $(id).addEventListener("change", (e) => e.target.blur());
$("next-form").addEventListener("submit", async (e) => {
  if (!autosaver.dirty || state.readOnly) return ACTIONS.fit();  // leaving: the view is fitted again (back/forward cache)
  e.preventDefault();
  const result = await autosaver.flush();
  if (!autosaver.dirty) {
    ACTIONS.fit();
    e.target.submit();
  } else if (!result || !result.ok) message("Not saved yet: the server did not take the labels (see the problems). Leave anyway? This browser keeps a copy.");
});
// Keep the keyboard for the shortcuts: a clicked button must not keep the focus (Space or Enter would press it again).
$("app").addEventListener("mouseup", (e) => {
  const button = e.target.closest && e.target.closest("button");
  if (button && !button.closest(".modal")) button.blur();
});
window.addEventListener("beforeunload", (e) => {
  if (!state.readOnly && (autosaver.dirty || autosaver.running)) {
    e.preventDefault();
    e.returnValue = "";
  }
});
window.addEventListener("pagehide", () => { if (!state.readOnly) autosaver.saveOnUnload(); });
renderHelp($("help-body"), "Labels save themselves a few seconds after each edit, as drawn: a shape with a problem is saved " +
  "flagged (red) and must be fixed before you submit. A nail is complete with its outline, " +
  "its finger (L/R + 1-5) and its base → tip arrow; submitting needs every nail complete.");

// --- start -----------------------------------------------------------------------------------------------

async function start() {
  message("Loading the image…");
  const imageLoad = stage.loadImage(config.fileUrl).catch((error) => {
    banner("image-banner", "error", `The image could not be loaded: ${error.message}`);
  });
  const loaded = await client.load();
  if (!loaded.ok) {
    banner("load-banner", "error", `The labels could not be loaded: ${(loaded.data && loaded.data.detail) || loaded.status}`);
    return;
  }
  const annotation = loaded.data;
  state.annotation = annotation;
  const saved = backup.read();
  scene.reset(withInvalidShapes(annotation.geometry, annotation.invalid_shapes));
  autosaver.setBase({ version: annotation.version, geometry: scene.geometry, status: annotation.status });
  if (saved && saved.geometry && geometryKey(normalizeIn(saved.geometry)) !== geometryKey(scene.geometry)) {
    backup.write(saved.geometry, saved.baseVersion);
    offerBackup(saved);
  }
  showStatus();
  const role = config.role;
  // Finished labels with a nail lacking its finger or base/tip (config.incompleteLabels, labeling/queue.py
  // is_incomplete: imported outlines, mostly) stay editable, accepted or not; submitting sends them to review.
  if (role !== "admin" && annotation.status === "accepted" && !config.incompleteLabels) setReadOnly(true, "These labels were accepted by a reviewer: read-only (an admin can still change them).");
  else if (role !== "admin" && annotation.assignee && annotation.assignee !== config.username) {
    setReadOnly(true, `This image is assigned to ${annotation.assignee}: read-only.`);
  } else if (config.incompleteLabels) {
    banner("incomplete-banner", "info", "Some nails have no finger or no base/tip, or only suggested ones (dashed): give each one its finger and landmarks " +
      "(G accepts the selected nail's suggestion, Shift+G all of them), then submit. " +
      "The labels then go back to review.");
  }
  refreshPanels();
  showOverlayInfo({ state: "off" });
  editor.setTool("select");
  await imageLoad;
  stage.request("image");
  message(scene.geometry.nails.length ? "Tab selects the nails one by one; ? lists every shortcut."
    : "Press N and click around a nail to draw it (? lists every shortcut).");
  await refreshSuggestions();
  $("app").dataset.ready = "1";
}

window.annotator = { config, view, stage, scene, editor, autosaver, overlay, suggestions, clicker, proposed, proposeNails,
  shortcuts: SHORTCUTS, shapeOf, bbox, fingerCode,
  // the ghosts are those of the nails as they are now: no question waiting to be asked or answered
  suggestionsSettled: () => suggestTimer === 0 && !suggestions.inFlight };
window.annotator.ready = start();
