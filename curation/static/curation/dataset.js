// The dataset page (admins): build a snapshot, export one (buttons with data-export and data-format), and follow
// the job until it is done, then reload the page.
import { request } from "../labeling/api.js";

const statusLine = document.getElementById("job-status");

async function poll(id) {
  const { data: job } = await request("GET", `/api/jobs/${id}/`);
  statusLine.textContent = `job ${id} ${job.kind}: ${job.status} ${Math.round(job.progress * 100)}% ${job.message} ${job.error}`;
  if (job.status === "queued" || job.status === "running") setTimeout(() => poll(id), 1000);
  else if (job.status === "succeeded") setTimeout(() => location.reload(), 800);
}

async function start(url, body) {
  const { status, data } = await request("POST", url, body);
  if (status !== 202) { statusLine.textContent = (data && data.detail) || JSON.stringify(data); return; }
  poll(data.id);
}

document.getElementById("new-snapshot").addEventListener("submit", (event) => {
  event.preventDefault();
  const fields = new FormData(event.target);
  start("/api/snapshots/", { name: fields.get("name"), include_submitted: fields.get("include_submitted") === "on" });
});
document.querySelectorAll("button[data-export]").forEach((button) =>
  button.addEventListener("click", () => start(`/api/snapshots/${button.dataset.export}/export/`, { format: button.dataset.format })));
