// The training page (admins): the form starts a training run (a job on the training queue).
import { request } from "../labeling/api.js";

const form = document.getElementById("start-training");

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const fields = new FormData(form);
  const body = { snapshot: fields.get("snapshot"), preset: fields.get("preset") };
  if (fields.get("epochs")) body.epochs = Number(fields.get("epochs"));
  const { status, data } = await request("POST", "/api/training-runs/", body);
  document.getElementById("start-status").textContent = status === 202
    ? `job ${data.id} queued on the ${data.queue} queue` : ((data && data.detail) || JSON.stringify(data));
  if (status === 202) setTimeout(() => location.reload(), 1500);
});
