// A model version's exports page (admins): the form starts an export job, then polls it and reloads the page
// when the artifact is there. The model version's name is the form's data-model-version.
import { request } from "../labeling/api.js";

const form = document.getElementById("start-export");
const status = document.getElementById("export-status");

async function poll(id) {
  const { data: job } = await request("GET", `/api/jobs/${id}/`);
  status.textContent = `job ${job.id}: ${job.status} ${Math.round(100 * (job.progress || 0))}% ${job.message || ""}`;
  if (job.status === "succeeded") location.reload();
  else if (["queued", "running"].includes(job.status)) setTimeout(() => poll(id), 2000);
  else status.textContent += ` ${job.error || ""}`;
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const fields = new FormData(form);
  const format = fields.get("format");
  const body = { model_version: form.dataset.modelVersion, format };
  if (format === "coreml" && fields.get("precision")) body.precision = fields.get("precision");
  if (format === "coreml" && fields.get("size")) body.size = fields.get("size");
  if (format === "tfjs" && fields.get("quantize")) body.quantize = fields.get("quantize");
  const { status: code, data } = await request("POST", "/api/model-artifacts/", body);
  if (code !== 202) { status.textContent = (data && data.detail) || JSON.stringify(data); return; }
  status.textContent = `job ${data.id} queued on the ${data.queue} queue…`;
  setTimeout(() => poll(data.id), 1000);
});
