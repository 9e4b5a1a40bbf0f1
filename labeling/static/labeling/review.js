// The review page: the labels over the image (read-only, same viewer as the annotation page), the
// revision history with a visual diff of two chosen revisions (A dashed cyan, B orange, plus a list of
// what changed and the rasterized IoU), model pre-labels when there are any, accept / reject.

import { AnnotationClient } from "./api.js";
import { describeDiff, diffGeometry } from "./diff.js";
import { fingerCode } from "./fingers.js";
import { validate } from "./geometry.js";
import { OVERLAY_NAMES, RasterOverlay } from "./overlay.js";
import { NailList, classifyIssues, el, issuesByShape } from "./panels.js";
import { Stage, drawIgnore, drawLabels, drawNail } from "./render.js";
import { Scene, normalizeIn } from "./scene.js";
import { Editor } from "./tools.js";
import { View } from "./view.js";

const $ = (id) => document.getElementById(id);
const config = JSON.parse($("review-config").textContent);
const W = config.width, H = config.height;
const COLOR_A = "#00e5ff", COLOR_B = "#ff9100";

const client = new AnnotationClient(config.apiBase);
const view = new View(W, H);
const stage = new Stage($("stage"), view);
const scene = new Scene({ nails: [], ignore: [] });
const editor = new Editor({ stage, view, scene, width: W, height: H, onMessage: (t) => { $("message").textContent = t || ""; } });
editor.readOnly = true;
const state = { annotation: null, revisions: [], a: null, b: null, diffOn: false };
stage.onViewChange = () => { $("zoom").textContent = `${Math.round(view.scale * 100)}%`; };

const overlay = new RasterOverlay({
  client, stage, getGeometry: () => scene.geometry,
  onInfo: (info) => {
    $("overlay").value = overlay.kind || "";
    if (info.state === "error") $("message").textContent = `No overlay: ${info.detail}`;
    else if (info.state === "ready") $("message").textContent = `${OVERLAY_NAMES[info.kind]} as the rasterizer makes it (${info.info.width}×${info.info.height}).`;
  },
});

const nailList = new NailList($("nails"), {
  onSelect: (target) => { scene.select(target); editor.zoomToSelection(); },
  onZoom: (target) => { scene.select(target); editor.zoomToSelection(); },
});

function revision(version) {
  if (version === 0) return { version: 0, geometry: { nails: [], ignore: [] }, status: "unlabeled", author: null };
  return state.revisions.find((r) => r.version === version) || null;
}

// --- drawing: the labels, or the two compared revisions ---------------------------------------------------

function paintScene(ctx) {
  if (!state.diffOn || state.a === null || state.b === null) return editor.paintScene(ctx);
  const a = normalizeIn(revision(state.a).geometry), b = normalizeIn(revision(state.b).geometry);
  const diff = diffGeometry(a, b);
  const changedA = new Set([...diff.changed.map((c) => c.a), ...diff.removed.map((r) => r.a)]);
  const changedB = new Set([...diff.changed.map((c) => c.b), ...diff.added.map((r) => r.b)]);
  a.ignore.forEach((ring, i) => drawIgnore(ctx, view, ring, { color: COLOR_A, label: `A ignore ${i + 1}` }));
  b.ignore.forEach((ring, i) => drawIgnore(ctx, view, ring, { color: COLOR_B, label: `B ignore ${i + 1}` }));
  a.nails.forEach((nail, i) => drawNail(ctx, view, nail, {
    color: COLOR_A, fill: changedA.has(i) ? "rgba(0,229,255,0.18)" : "rgba(0,0,0,0)", dashed: true, vertices: "none",
    label: `A${i + 1} ${fingerCode(nail.finger)}`,
  }));
  b.nails.forEach((nail, i) => drawNail(ctx, view, nail, {
    color: COLOR_B, fill: changedB.has(i) ? "rgba(255,145,0,0.22)" : "rgba(0,0,0,0)", vertices: "none",
    label: `B${i + 1} ${fingerCode(nail.finger)}`,
  }));
}
stage.painters.scene = paintScene;

// --- revisions and the diff -------------------------------------------------------------------------------

function renderRevisions() {
  const body = $("revisions").tBodies[0];
  const rows = [...state.revisions, revision(0)].map((r) => {
    const radio = (name) => el("input", {
      type: "radio", name, value: String(r.version), checked: (name === "a" ? state.a : state.b) === r.version,
      "aria-label": `revision ${r.version} as ${name.toUpperCase()}`,
      onchange: () => { state[name] = r.version; state.diffOn = true; $("show-diff").checked = true; updateDiff(); },
    });
    const when = r.created_at ? new Date(r.created_at).toLocaleString() : "";
    return el("tr", { dataset: { version: String(r.version) }, class: r.source === "model" ? "model" : "" },
      el("td", {}, radio("a")), el("td", {}, radio("b")), el("td", {}, String(r.version)),
      el("td", {}, el("span", { class: "status-chip", dataset: { status: r.status } }, r.status)),
      el("td", {}, r.source === "model" ? `model ${r.model_version}` : r.source === "suggestion" ? "suggestions" : r.author || "—"),
      el("td", { title: r.note || "" }, when), el("td", {}, String(r.geometry.nails.length)));
  });
  body.replaceChildren(...rows);
}

async function updateDiff() {
  const ra = revision(state.a), rb = revision(state.b);
  stage.request("scene");
  if (!ra || !rb) return;
  const a = normalizeIn(ra.geometry), b = normalizeIn(rb.geometry);
  const lines = describeDiff(diffGeometry(a, b), a, b);
  $("diff").replaceChildren(...lines.map((l) => el("li", { class: l.kind }, l.text)));
  $("diff-summary").textContent = `A = version ${ra.version}, B = version ${rb.version}: ${lines.filter((l) => l.kind !== "same").length} difference(s).`;
  const result = await client.compare(ra.version, rb.version);
  if (result.ok && state.a === ra.version && state.b === rb.version) {
    const d = result.data;
    $("diff-summary").textContent += ` Rasterized nail-mask IoU ${d.foreground_iou.toFixed(3)}` +
      (d.class_agreement === null ? "" : `, finger classes agree on ${(d.class_agreement * 100).toFixed(1)} % of shared nail pixels`) + ".";
  }
}

async function showPrediction() {
  const model = state.revisions.find((r) => r.source === "model");
  if (!model) return;
  $("prediction").hidden = false;
  const result = await client.compare(model.version, state.annotation.version);
  const iou = result.ok ? result.data.foreground_iou.toFixed(3) : "?";
  $("prediction-info").replaceChildren(
    el("p", {}, `Model ${model.model_version} pre-labelled version ${model.version} (${model.geometry.nails.length} nails). `,
      `IoU of its nail mask with the current labels: `, el("strong", { id: "prediction-iou" }, iou), "."),
    el("button", { type: "button", class: "secondary small", onclick: () => {
      state.a = model.version;
      state.b = state.annotation.version;
      state.diffOn = true;
      $("show-diff").checked = true;
      renderRevisions();
      updateDiff();
    } }, "Compare with the current labels"));
}

// --- decision ---------------------------------------------------------------------------------------------

function decisionButtons() {
  return ["accept", "reject"].map($).filter(Boolean);
}

function renderSummary() {
  const a = state.annotation;
  $("status-chip").textContent = a.status;
  $("status-chip").dataset.status = a.status;
  const report = validate(a.geometry, W, H, { requireComplete: true });
  const issues = classifyIssues(report);
  editor.issues = issuesByShape(issues);
  const problems = issues.filter((i) => i.level !== "warning").length;
  $("review-summary").textContent = `${a.geometry.nails.length} nail(s) by ${a.assignee || a.updated_by || "—"}, version ${a.version}, ${a.status}. ` +
    (!a.geometry.nails.length ? "No nail is drawn." : problems ? `${problems} problem(s): see the red and amber tags.` : "Every nail has its finger, base and tip.");
  const open = a.status === "submitted";
  for (const button of decisionButtons()) button.disabled = !open;
  if (!open) $("decision-message").textContent = a.status === "rejected" ? `Rejected: “${a.review_comment}”` :
    a.status === "accepted" ? (a.reviewed_at ? `Accepted by ${a.reviewer || "a reviewer"}.` : "Imported as accepted (no reviewer decided on it).") : `Only submitted labels can be reviewed; this is ${a.status}.`;
  nailList.update(scene.geometry, scene.selection, editor.issues);
  stage.request("scene");
}

async function decide(decision) {
  const comment = $("comment").value.trim();
  if (decision === "reject" && !comment) {
    $("decision-message").textContent = "Write what to fix: the annotator sees this comment.";
    $("comment").focus();
    return;
  }
  for (const button of decisionButtons()) button.disabled = true;
  const result = await client.review(decision, comment, state.annotation.version);
  if (result.ok) {
    state.annotation = result.data;
    $("decision-message").textContent = decision === "accept" ? "Accepted." : "Rejected: the image went back to its annotator with your comment.";
    await loadRevisions();
    renderSummary();
    $("next").focus();
  } else {
    $("decision-message").textContent = (result.data && result.data.detail) || `Failed (HTTP ${result.status}).`;
    if (result.status === 409) await load();
    else renderSummary();
  }
}

// --- loading ----------------------------------------------------------------------------------------------

async function loadRevisions() {
  const result = await client.revisions();
  state.revisions = result.ok ? result.data : [];
  const versions = state.revisions.map((r) => r.version);
  state.b = versions[0] ?? 0;
  state.a = versions[1] ?? 0;
  renderRevisions();
  updateDiff();
}

async function load() {
  const loaded = await client.load();
  if (!loaded.ok) {
    $("banners").replaceChildren(el("div", { class: "banner error", role: "alert" }, `Could not load the labels: ${loaded.status}`));
    return;
  }
  state.annotation = loaded.data;
  scene.reset(loaded.data.geometry);
  await loadRevisions();
  renderSummary();
  showPrediction();
}

scene.on("select", () => { stage.request("scene", "ui"); nailList.update(scene.geometry, scene.selection, editor.issues); });
scene.on("change", () => { stage.request("scene", "ui"); overlay.changed(); });
// The page has an Accept button only for submitted labels with at least one nail, Reject only for submitted
// ones (review.html says why when one is missing).
for (const button of decisionButtons()) button.addEventListener("click", () => decide(button.id));
$("fit").addEventListener("click", () => { view.fit(); stage.viewChanged(); });
$("overlay").addEventListener("change", (e) => overlay.setKind(e.target.value || null));
$("show-labels").addEventListener("change", (e) => stage.setVisible("scene", e.target.checked));
$("show-diff").addEventListener("change", (e) => { state.diffOn = e.target.checked; stage.request("scene"); });
const adjust = () => stage.setFilter($("brightness").value, $("contrast").value);
$("brightness").addEventListener("input", adjust);
$("contrast").addEventListener("input", adjust);
window.addEventListener("keydown", (e) => {
  if (e.target && ["TEXTAREA", "INPUT", "SELECT"].includes(e.target.tagName)) return;
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  const keys = {
    f: () => { view.fit(); stage.viewChanged(); }, o: () => overlay.cycle(),
    h: () => { $("show-labels").click(); }, d: () => { $("show-diff").click(); },
    Tab: () => editor.selectNext(e.shiftKey ? -1 : 1), " ": () => editor.setSpace(true),
  };
  const action = keys[e.key.length === 1 ? e.key.toLowerCase() : e.key];
  if (action) {
    e.preventDefault();
    action();
  }
});
window.addEventListener("keyup", (e) => { if (e.key === " ") editor.setSpace(false); });

async function start() {
  const image = stage.loadImage(config.fileUrl).catch((error) => {
    $("banners").replaceChildren(el("div", { class: "banner error", role: "alert" }, `The image could not be loaded: ${error.message}`));
  });
  await load();
  await image;
  $("app").dataset.ready = "1";
}

window.reviewer = { config, view, stage, scene, state, overlay };
window.reviewer.ready = start();
