// The models page (admins): "Promote to active" starts a promote_model job through the promotion API
// (POST /api/prelabel/promotions/), follows it at /api/jobs/{id}/ and says what the gate decided.
import { request } from "../labeling/api.js";

const POLL_MS = 1500;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function follow(job, say) {
  for (;;) {
    if (job.status === "succeeded") {
      const result = job.result || {};
      say(`${result.promoted ? "Promoted" : "Refused"}: ${result.reason || job.message}`);
      return result.promoted;
    }
    if (job.status === "failed" || job.status === "cancelled") {
      say(`Promotion job ${job.id} ${job.status}: ${job.error || job.message || "no reason given"}`);
      return false;
    }
    say(`Promotion job ${job.id} ${job.status}${job.message ? `: ${job.message}` : " (both models are measured on the newest snapshot)"}`);
    await sleep(POLL_MS);
    const { ok, data } = await request("GET", `/api/jobs/${job.id}/`);
    if (ok) job = data;
  }
}

for (const form of document.querySelectorAll("form.promote")) {
  const status = form.querySelector(".promote-status");
  const say = (text) => { status.textContent = text; };
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = form.querySelector("button");
    button.disabled = true;
    const body = { model: form.dataset.model };
    const reason = new FormData(form).get("override_reason").trim();
    if (reason) body.override_reason = reason;
    const { status: code, data } = await request("POST", "/api/prelabel/promotions/", body);
    let promoted = false;
    if (code === 202) promoted = await follow(data, say);
    else if (code === 409 && data && data.job) promoted = await follow(data.job, say);
    else say(`Not started (${code}): ${(data && (data.detail || JSON.stringify(data))) || "no answer"}`);
    button.disabled = false;
    if (promoted) setTimeout(() => location.reload(), 1500);
  });
}
