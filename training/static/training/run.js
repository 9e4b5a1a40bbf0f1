// The run page: shows the run's state (status, progress, ETA, images/s, error, model) and its loss and mIoU
// curves (charts.js), polling the API every 2 s while the run is queued or running; Cancel (admins) only
// while it can still be cancelled.
import { request } from "../labeling/api.js";
import { epochAxis, lineChart, seriesPoints, valueAxis } from "./charts.js";
import { ACTIVE, describeLive, poller } from "./live.js";

const $ = (id) => document.getElementById(id);
const root = $("run");
const cancel = $("cancel");

function drawCharts(run) {
  const active = ACTIVE.has(run.status);
  const history = run.history || [];
  const xAxis = epochAxis(history.length, run.live?.epochs ?? run.config?.epochs, active);
  const empty = active ? "The first point appears when epoch 1 ends…" : "No epoch finished.";
  const loss = seriesPoints(history, (e) => e.train_loss);
  lineChart($("loss-chart"), {
    series: [{ name: "train loss", color: "#3a1c32", points: loss }],
    xAxis, yAxis: valueAxis(loss.map(([, v]) => v), "loss"), yTitle: "loss", empty,
  });
  lineChart($("miou-chart"), {
    series: [
      { name: "val mIoU", color: "#1b7f3b", points: seriesPoints(history, (e) => e.val?.miou) },
      { name: "train mIoU", color: "#7a8a99", dashed: true, points: seriesPoints(history, (e) => e.train_miou) },
    ],
    xAxis, yAxis: valueAxis([], "fraction"), yTitle: "mIoU", empty,
  });
}

function show(run) {
  root.dataset.status = run.status;
  $("status").textContent = run.status;
  $("status").dataset.status = run.status;
  $("progress").value = run.live?.fraction ?? 0;
  $("live").textContent = describeLive(run);
  $("message").textContent = run.job?.message || "";
  const error = run.status === "failed" ? (run.job?.error || "the run failed") : "";
  $("error").textContent = error;
  $("error").hidden = !error;
  if (run.model_version) {
    $("model-link").textContent = run.model_version;
    $("model-link").href = `/models/#model-${encodeURIComponent(run.model_version)}`;
    $("model").hidden = false;
  }
  if (cancel) {
    cancel.hidden = !ACTIVE.has(run.status);
    if (cancel.hidden) cancel.disabled = false;
  }
  drawCharts(run);
}

const initial = JSON.parse($("run-data").textContent);
show(initial);
const poll = ACTIVE.has(initial.status) ? poller(
  async () => {
    const { ok, data } = await request("GET", `/api/training-runs/${root.dataset.run}/`);
    return ok ? data : null;
  },
  show,
  (run) => ACTIVE.has(run.status),
) : null;

cancel?.addEventListener("click", async () => {
  cancel.disabled = true;
  const { ok, status, data } = await request("POST", `/api/jobs/${root.dataset.job}/cancel/`);
  if (!ok && status !== 409) {  // 409: it ended meanwhile; the next poll shows how
    cancel.disabled = false;
    $("error").textContent = `Could not cancel: ${(data && data.detail) || `HTTP ${status}`}`;
    $("error").hidden = false;
  }
  $("message").textContent = ok ? "cancelling: the run stops at its next step" : $("message").textContent;
  poll?.again();
});
