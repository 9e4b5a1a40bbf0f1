// The TF.js check page of an artifact: runs the graph model in this browser (cpu and webgl backends) on the
// stored parity inputs with the parity harness (nailset-export/tfjs_parity.js, after tfjs/tf.min.js: both
// classic scripts that define the globals `tf` and `nailsetTfjsParity`), shows every output's max abs diff
// against PyTorch and records the result in the artifact's parity report. The page's {{ config|json_script }}
// ("tfjs-check-config") says which model, reference and goal.
import { csrfToken } from "../labeling/api.js";

const config = JSON.parse(document.getElementById("tfjs-check-config").textContent);
const status = document.getElementById("status");
const table = document.getElementById("results");
const runButton = document.getElementById("run");
document.getElementById("tfjs-version").textContent = "TF.js " + (window.tf ? window.tf.version.tfjs : "missing");
const fmt = (v) => (v === null || v === undefined) ? "—" : Number(v).toExponential(2);

function setStatus(text, state) {
  status.textContent = text;
  if (state) status.dataset.state = state;
}

async function run() {
  runButton.disabled = true;
  for (const row of table.querySelectorAll("tr.result")) row.remove();
  setStatus("loading the model…", "running");
  try {
    if (!window.tf || !window.nailsetTfjsParity) throw new Error("TF.js is not served (run `make tfjs`)");
    const result = await window.nailsetTfjsParity({ ...config, backends: ["cpu", "webgl"], repeats: 3, runPrefix: "browser-",
                                                    onStatus: (s) => setStatus(s, "running") });
    for (const [key, r] of Object.entries(result.runs)) {
      const tr = document.createElement("tr");
      tr.className = "result"; tr.dataset.run = key;
      const ok = r.max_abs_diff !== null && r.max_abs_diff < config.goal;
      const latency = Object.entries(r.latency_ms || {}).map(([s, ms]) => `${s}: ${ms.toFixed(1)} ms`).join(", ");
      const cells = r.error ? [key, r.runtime, r.error, "", "", "", "failed"] :
        [key, r.runtime, fmt(r.outputs.fg_prob), fmt(r.outputs.class_prob), fmt(r.outputs.field), latency, ok ? "under the goal" : "over the goal"];
      cells.forEach((c, i) => {
        const td = document.createElement("td");
        td.textContent = c;
        if (i >= 2 && i <= 4) td.className = "num";
        if (i === 6) td.className = ok ? "pass" : "fail";
        tr.appendChild(td);
      });
      tr.dataset.maxAbsDiff = r.max_abs_diff === null ? "" : String(r.max_abs_diff);
      table.appendChild(tr);
      r.user_agent = result.user_agent; r.tfjs_version = result.tfjs_version;
    }
    window.nailsetTfjsResult = result;
    const response = await fetch(config.recordUrl, { method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() }, body: JSON.stringify({ runs: result.runs }) });
    const saved = response.ok ? "saved in the artifact's parity report" : `not saved (HTTP ${response.status})`;
    setStatus(`done; ${saved}`, "done");
  } catch (err) {
    setStatus("failed: " + ((err && err.message) || err), "failed");
  } finally {
    runButton.disabled = false;
  }
}

runButton.addEventListener("click", run);
run();
