// Loaded by the annotation page (/annotate/<id>/): tells the server that this image was opened (the start of
// "time to submit" in the correction metrics, see prelabel/metrics.py) and, when the labels on screen are a
// model's draft, says so with the model's per-nail confidence. A draft nail the model is unsure of (the server
// marks it `proposed`: outline confidence under prelabel/proposals.py's PROPOSE_BELOW) becomes a proposed nail
// of the tool (labeling/static/labeling/proposed.js): Enter accepts it, Delete rejects it, P / Shift+P select the
// next / previous one; until then it stays in the saved labels as the draft had it. The other draft nails are
// ordinary nails. `window.prelabelOpen` resolves when this is done.

const configNode = document.getElementById("annotate-config");
const csrf = document.querySelector("meta[name=csrf-token]");

function percent(value) {
  return value === null || value === undefined ? "?" : `${Math.round(value * 100)} %`;
}

function showDraft(draft) {
  const banners = document.getElementById("banners");
  if (!banners || !draft) return;
  const node = document.createElement("div");
  node.id = "prelabel-banner";
  node.className = "banner info";
  node.setAttribute("role", "status");
  const nails = draft.nails.map((n, i) => `nail ${i + 1}: ${percent(n.confidence)}`).join(", ");
  const unsure = draft.nails.filter((n) => n.proposed).length;
  node.textContent = `Pre-labelled by model ${draft.model_version} (version ${draft.version}): ${draft.nails.length} nail(s)` +
    (nails ? `, confidence ${nails}` : "") + "." + (unsure ? ` ${unsure} with a confidence under ${percent(draft.propose_below)} ` +
    "are proposed (dotted, ?): Enter accepts the selected one, Delete rejects it, P selects the next." : "") +
    " Correct what is wrong and submit; every nail is editable.";
  banners.appendChild(node);
}

/** The draft's unsure nails as the tool's proposed nails, once the page has loaded these labels. */
async function proposeUnsure(draft) {
  const annotator = window.annotator;
  const unsure = draft ? draft.nails.filter((n) => n.proposed) : [];
  if (!annotator || !unsure.length) return 0;
  await annotator.ready;
  // Only on this draft as the server has it (an edit made meanwhile, or a conflict, keeps every nail a nail).
  if (annotator.autosaver.version !== draft.version || annotator.autosaver.dirty || annotator.autosaver.paused) return 0;
  return annotator.proposeNails(unsure.map((n) => n.nail),
    unsure.map((n) => ({ confidence: n.confidence, source: `model ${draft.model_version}` })));
}

export async function recordOpen() {
  if (!configNode) return null;
  const config = JSON.parse(configNode.textContent);
  try {
    const response = await fetch("/api/prelabel/open/", {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf ? csrf.content : "" },
      body: JSON.stringify({ image: config.imageId }),
    });
    if (!response.ok) return null;
    const data = await response.json();
    showDraft(data.draft);
    data.proposed = await proposeUnsure(data.draft);
    return data;
  } catch (error) {
    return null;  // the metrics lose one open event; the annotation page must not care
  }
}

window.prelabelOpen = recordOpen();
