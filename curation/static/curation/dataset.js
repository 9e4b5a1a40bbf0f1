// The dataset page (admins): build a snapshot, and one control per export format of each snapshot
// (td.export[data-state]: none / exporting / ready / withdrawn / failed, see curation/export_status.py).
// Starting an export turns its cell into a progress bar that follows the job; when the job ends the page
// reloads to show the download (or the failure). Cells already exporting when the page opens are followed too.
import { request } from "../labeling/api.js";

const statusLine = document.getElementById("job-status");

function describe(job) {
  return `${Math.round(job.progress * 100)} %${job.message ? ` · ${job.message}` : ""}`;
}

async function poll(id, onUpdate) {
  const { status, data: job } = await request("GET", `/api/jobs/${id}/`);
  if (status !== 200) return onUpdate(null, (job && job.detail) || `job ${id}: HTTP ${status}`);
  onUpdate(job);
  if (job.status === "queued" || job.status === "running") setTimeout(() => poll(id, onUpdate), 1000);
  else setTimeout(() => location.reload(), 800);
}

function showExporting(cell, job) {
  cell.dataset.state = "exporting";
  cell.dataset.job = String(job.id);
  const bar = Object.assign(document.createElement("progress"), { max: 100, value: Math.round(job.progress * 100) });
  const line = Object.assign(document.createElement("span"), { className: "export-meta", textContent: describe(job) });
  line.dataset.role = "message";
  const title = Object.assign(document.createElement("span"), { className: "export-title", textContent: `Exporting ${cell.dataset.label}…` });
  cell.replaceChildren(title, bar, line);
}

function follow(cell, id) {
  poll(id, (job, problem) => {
    const line = cell.querySelector("[data-role=message]");
    if (!job) { if (line) line.textContent = problem; return; }
    const bar = cell.querySelector("progress");
    if (bar) bar.value = Math.round(job.progress * 100);
    if (line) line.textContent = job.status === "failed" ? `failed: ${job.error}` : `${describe(job)}${job.status === "succeeded" ? " · done" : ""}`;
  });
}

async function startExport(button) {
  const cell = button.closest("td.export");
  button.disabled = true;
  const { status, data } = await request("POST", `/api/snapshots/${button.dataset.export}/export/`, { format: button.dataset.format });
  const job = status === 202 ? data : status === 409 && data && data.job ? data.job : null;  // 409: already running: follow it
  if (!job) {
    button.disabled = false;
    const line = Object.assign(document.createElement("span"), { className: "export-meta failed" });
    line.textContent = (data && (data.detail || JSON.stringify(data))) || `HTTP ${status}`;
    cell.append(line);
    return;
  }
  showExporting(cell, job);
  follow(cell, job.id);
}

document.getElementById("new-snapshot").addEventListener("submit", async (event) => {
  event.preventDefault();
  const fields = new FormData(event.target);
  const { status, data } = await request("POST", "/api/snapshots/", { name: fields.get("name"), include_submitted: fields.get("include_submitted") === "on" });
  if (status !== 202) { statusLine.textContent = (data && data.detail) || JSON.stringify(data); return; }
  poll(data.id, (job, problem) => {
    statusLine.textContent = job ? `job ${job.id} ${job.kind}: ${job.status} ${describe(job)} ${job.error}` : problem;
  });
});
document.querySelectorAll("button[data-export]").forEach((button) => button.addEventListener("click", () => startExport(button)));
document.querySelectorAll("td.export[data-state=exporting][data-job]").forEach((cell) => follow(cell, cell.dataset.job));
