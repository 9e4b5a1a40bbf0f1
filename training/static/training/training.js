// The training page: the runs table, kept fresh from the API every 2 s while a run is queued or running
// (a run started here is listed at once), and (admins) the form that starts a run.
import { request } from "../labeling/api.js";
import { ACTIVE, describeLive, poller } from "./live.js";

const $ = (id) => document.getElementById(id);

/** The val mIoU of the weights a run keeps (its config's keep: the last epoch's, or the best val epoch's):
 * its result's once it ended, else the epoch it would keep so far. */
function keptMiou(run) {
  const final = run.result?.kept_metrics?.miou ?? run.result?.best_metrics?.miou;
  if (Number.isFinite(final)) return final;
  const values = (run.history || []).map((e) => e.val?.miou).filter(Number.isFinite);
  if (!values.length) return null;
  return run.config?.keep === "last" ? values[values.length - 1] : Math.max(...values);
}

function cell(row, content) {
  const td = document.createElement("td");
  if (content instanceof Node) td.appendChild(content); else td.textContent = content ?? "";
  row.appendChild(td);
  return td;
}

function link(href, text) {
  const a = document.createElement("a");
  a.href = href;
  a.textContent = text;
  return a;
}

function runRow(run) {
  const row = document.createElement("tr");
  row.dataset.run = String(run.id);
  row.dataset.status = run.status;
  cell(row, link(`/training/runs/${run.id}/`, String(run.id)));
  cell(row, run.snapshot);
  cell(row, run.preset);
  const chip = document.createElement("span");
  chip.className = "status-chip";
  chip.dataset.status = run.status;
  chip.textContent = run.status;
  cell(row, chip);
  const progress = cell(row, "");
  progress.className = "run-progress";
  if (ACTIVE.has(run.status)) {
    const bar = document.createElement("progress");
    bar.max = 1;
    bar.value = run.live?.fraction ?? 0;
    progress.appendChild(bar);
  }
  const words = document.createElement("span");
  words.className = "small";
  words.textContent = run.status === "failed" && run.job?.error ? run.job.error : describeLive(run);
  progress.appendChild(words);
  const kept = keptMiou(run);
  cell(row, kept === null ? "" : kept.toFixed(4));
  cell(row, run.model_version ? link(`/models/#model-${encodeURIComponent(run.model_version)}`, run.model_version) : "");
  return row;
}

function showRuns(runs) {
  const body = $("runs");
  if (!runs.length) {
    const row = document.createElement("tr");
    cell(row, "No training run yet.").colSpan = 7;
    body.replaceChildren(row);
    return;
  }
  body.replaceChildren(...runs.map(runRow));
}

const anyActive = (runs) => runs.some((run) => ACTIVE.has(run.status));
const initial = JSON.parse($("runs-data").textContent);
showRuns(initial);
let poll = null;
const startPolling = () => {
  if (poll) { poll.again(); return; }
  poll = poller(async () => {
    const { ok, data } = await request("GET", "/api/training-runs/");
    return ok ? data.results : null;
  }, showRuns, (runs) => { const going = anyActive(runs); if (!going) poll = null; return going; });
};
if (anyActive(initial)) startPolling();

const form = $("start-training");
// The selected preset's device, budget and measured figure (one <dl> per preset, from ml.train_presets).
const presetSelect = $("preset");
const showPresetNote = () => {
  for (const note of document.querySelectorAll(".preset-note")) note.hidden = note.dataset.preset !== presetSelect.value;
};
presetSelect?.addEventListener("change", showPresetNote);
if (presetSelect) showPresetNote();
form?.addEventListener("submit", async (event) => {
  event.preventDefault();
  const fields = new FormData(form);
  const body = { snapshot: fields.get("snapshot"), preset: fields.get("preset") };
  if (fields.get("epochs")) body.epochs = Number(fields.get("epochs"));
  const button = form.querySelector("button");
  button.disabled = true;
  $("start-status").className = "";
  $("start-status").textContent = "Starting…";
  const { status, data } = await request("POST", "/api/training-runs/", body);
  button.disabled = false;
  const said = $("start-status");
  said.className = status === 202 ? "" : "errors";
  if (status === 202) said.textContent = `job ${data.id} queued on the ${data.queue} queue: run ${data.training_run}, listed below.`;
  else if (status === 409) said.textContent = `The same run is already ${data.job?.status} (run ${data.training_run}).`;
  else said.textContent = (data && data.detail) || Object.values(data || {}).flat().join(" ") || `HTTP ${status}`;
  if (status === 202 || status === 409) startPolling();
});
