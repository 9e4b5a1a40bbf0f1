// Loaded by the annotation page (/annotate/<id>/): tells the server that this image was opened (the start of
// "time to submit" in the correction metrics, see prelabel/metrics.py) and, when the labels on screen are a
// model's draft, says so with the model's per-nail confidence. Every drafted nail is an ordinary nail.

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
  node.textContent = `Pre-labelled by model ${draft.model_version} (version ${draft.version}): ${draft.nails.length} nail(s)` +
    (nails ? `, confidence ${nails}` : "") + ". Correct what is wrong and submit; every nail is editable.";
  banners.appendChild(node);
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
    return data;
  } catch (error) {
    return null;  // the metrics lose one open event; the annotation page must not care
  }
}

window.prelabelOpen = recordOpen();
