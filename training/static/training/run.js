// The run page: polls the run and redraws its loss and mIoU curves as small SVG line charts.
const root = document.getElementById("run");
const runId = root.dataset.run;
const csrf = document.cookie.split("; ").find((c) => c.startsWith("csrftoken="))?.split("=")[1];

function chart(svg, series) {
  const width = 600, height = 220, pad = 34;
  const points = series.flatMap((s) => s.values.map((v, i) => [i + 1, v])).filter(([, v]) => Number.isFinite(v));
  svg.replaceChildren();
  if (!points.length) return;
  const maxX = Math.max(2, ...points.map(([x]) => x));
  const ys = points.map(([, y]) => y);
  const minY = Math.min(...ys), maxY = Math.max(...ys) === minY ? minY + 1 : Math.max(...ys);
  const sx = (x) => pad + ((x - 1) / (maxX - 1)) * (width - 2 * pad);
  const sy = (y) => height - pad - ((y - minY) / (maxY - minY)) * (height - 2 * pad);
  const ns = "http://www.w3.org/2000/svg";
  const axis = document.createElementNS(ns, "path");
  axis.setAttribute("d", `M${pad},${pad} V${height - pad} H${width - pad}`);
  axis.setAttribute("stroke", "#999"); axis.setAttribute("fill", "none");
  svg.appendChild(axis);
  for (const [text, x, y] of [[maxY.toFixed(3), 2, pad + 4], [minY.toFixed(3), 2, height - pad], [`epoch ${maxX}`, width - pad - 40, height - 8]]) {
    const label = document.createElementNS(ns, "text");
    label.setAttribute("x", x); label.setAttribute("y", y); label.setAttribute("font-size", "11"); label.textContent = text;
    svg.appendChild(label);
  }
  series.forEach((s) => {
    const line = document.createElementNS(ns, "polyline");
    line.setAttribute("points", s.values.map((v, i) => `${sx(i + 1)},${sy(v)}`).join(" "));
    line.setAttribute("stroke", s.color); line.setAttribute("fill", "none"); line.setAttribute("stroke-width", "2");
    line.dataset.series = s.name;
    svg.appendChild(line);
  });
}

async function refresh() {
  const response = await fetch(`/api/training-runs/${runId}/`);
  if (!response.ok) return;
  const run = await response.json();
  document.getElementById("status").textContent = run.job.status;
  document.getElementById("progress").value = run.job.progress;
  document.getElementById("message").textContent = run.job.message;
  chart(document.getElementById("loss-chart"), [{ name: "train loss", color: "#3a1c32", values: run.history.map((e) => e.train_loss) }]);
  chart(document.getElementById("miou-chart"), [{ name: "val mIoU", color: "#1b7f3b", values: run.history.map((e) => (e.val || {}).miou) }]);
  if (run.job.status === "queued" || run.job.status === "running") setTimeout(refresh, 2000);
}

document.getElementById("cancel")?.addEventListener("click", async () => {
  const run = await (await fetch(`/api/training-runs/${runId}/`)).json();
  await fetch(`/api/jobs/${run.job.id}/cancel/`, { method: "POST", headers: { "X-CSRFToken": csrf } });
  refresh();
});
refresh();
