// Line charts of a training run (loss and mIoU per epoch) as SVG, and the axis arithmetic behind them.
// The axis functions are pure (tests/js/training_charts.test.mjs); lineChart draws into an <svg>.
//
// Axes: epochs run from 1 to the planned number while the run goes (the curve grows across a fixed axis),
// to the last finished epoch afterwards; one epoch is one tick in the middle. mIoU is a fraction, so its
// axis is always 0..1; a loss axis goes from 0 to a rounded value above the largest loss.

/** The nice step (1, 2, 2.5 or 5 times a power of ten) nearest above ``raw`` (> 0). */
export function niceStep(raw) {
  if (!(raw > 0) || !Number.isFinite(raw)) return 1;
  const power = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 2.5, 5, 10]) {
    if (raw <= m * power * (1 + 1e-9)) return m * power;
  }
  return 10 * power;
}

const tidy = (v) => Number(v.toFixed(10));

/** The epoch axis: ``{min, max, ticks}`` with whole-epoch ticks (at most ~8). ``planned``: the run's
 * epochs (null when unknown); ``done``: epochs finished; ``active``: the run still goes. */
export function epochAxis(done, planned, active) {
  const last = Math.max(1, active && planned ? Math.max(planned, done) : done);
  if (last === 1) return { min: 1, max: 1, ticks: [1] };
  const step = Math.max(1, Math.ceil(niceStep((last - 1) / 7)));
  const ticks = [1];
  for (let t = step; t <= last; t += step) if (t > 1) ticks.push(t);
  return { min: 1, max: last, ticks };
}

/** A value axis ``{min, max, ticks}``. ``kind`` "fraction" (mIoU, IoU): always 0..1 in quarters;
 * "loss": 0 up to the largest finite value rounded up to a nice step (0..1 when there is none). */
export function valueAxis(values, kind) {
  if (kind === "fraction") return { min: 0, max: 1, ticks: [0, 0.25, 0.5, 0.75, 1] };
  const finite = values.filter((v) => Number.isFinite(v));
  const top = finite.length ? Math.max(...finite) : 0;
  if (!(top > 0)) return { min: 0, max: 1, ticks: [0, 0.25, 0.5, 0.75, 1] };
  const step = niceStep(top / 4);
  const max = tidy(Math.ceil(tidy(top / step)) * step);
  const ticks = [];
  for (let i = 0; tidy(i * step) <= max; i++) ticks.push(tidy(i * step));
  return { min: 0, max, ticks };
}

/** Tick label: no trailing zeros ("0.25", "1.5", "10"). */
export function tickLabel(value) {
  return String(Number(value.toFixed(4)));
}

/** Where a value lands between ``from`` and ``to`` pixels (the middle when the axis has one value). */
export function scale(axis, from, to) {
  const span = axis.max - axis.min;
  return (v) => (span === 0 ? (from + to) / 2 : from + ((v - axis.min) / span) * (to - from));
}

/** The points of a series: ``[epoch, value]`` for each history entry with a finite value. */
export function seriesPoints(history, pick) {
  return history.map((entry, i) => [entry.epoch ?? i + 1, pick(entry)]).filter(([, v]) => Number.isFinite(v));
}

const SIZE = { width: 600, height: 220, left: 46, right: 14, top: 14, bottom: 36 };

/** Draw ``series`` (``[{name, color, dashed, points: [[epoch, value]]}]``) into ``svg`` on ``xAxis`` and
 * ``yAxis``; ``yTitle`` names the values; ``empty`` is shown while there is no point. */
export function lineChart(svg, { series, xAxis, yAxis, yTitle, empty }) {
  const ns = "http://www.w3.org/2000/svg";
  const doc = svg.ownerDocument;
  const el = (name, attrs, text) => {
    const node = doc.createElementNS(ns, name);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = text;
    return node;
  };
  const { width, height, left, right, top, bottom } = SIZE;
  const sx = scale(xAxis, left, width - right), sy = scale(yAxis, height - bottom, top);
  const parts = [];
  for (const t of yAxis.ticks) {
    parts.push(el("line", { x1: left, x2: width - right, y1: sy(t), y2: sy(t), stroke: t === yAxis.min ? "#888" : "#e4e4e4" }));
    parts.push(el("text", { x: left - 6, y: sy(t) + 4, "text-anchor": "end", "font-size": 11, fill: "#555" }, tickLabel(t)));
  }
  parts.push(el("line", { x1: left, x2: left, y1: top, y2: height - bottom, stroke: "#888" }));
  for (const t of xAxis.ticks) {
    parts.push(el("line", { x1: sx(t), x2: sx(t), y1: height - bottom, y2: height - bottom + 4, stroke: "#888" }));
    parts.push(el("text", { x: sx(t), y: height - bottom + 16, "text-anchor": "middle", "font-size": 11, fill: "#555",
      class: "x-tick" }, String(t)));
  }
  parts.push(el("text", { x: (left + width - right) / 2, y: height - 4, "text-anchor": "middle", "font-size": 11, fill: "#555" }, "epoch"));
  parts.push(el("text", { x: 12, y: (top + height - bottom) / 2, "text-anchor": "middle", "font-size": 11, fill: "#555",
    transform: `rotate(-90 12 ${(top + height - bottom) / 2})` }, yTitle));
  let count = 0;
  series.forEach((s, k) => {
    if (!s.points.length) return;
    const group = el("g", { "data-series": s.name });
    group.appendChild(el("path", {
      d: s.points.map(([x, y], i) => `${i ? "L" : "M"}${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(" "),
      stroke: s.color, fill: "none", "stroke-width": 2, ...(s.dashed ? { "stroke-dasharray": "5 4" } : {}),
    }));
    for (const [x, y] of s.points) {
      const dot = el("circle", { cx: sx(x).toFixed(1), cy: sy(y).toFixed(1), r: 3.5, fill: s.color });
      dot.appendChild(el("title", {}, `${s.name}, epoch ${x}: ${y.toFixed(4)}`));
      group.appendChild(dot);
      count += 1;
    }
    parts.push(group);
    if (series.length > 1) {  // legend, top right
      const y = top + 4 + 15 * k;
      parts.push(el("line", { x1: width - right - 120, x2: width - right - 100, y1: y, y2: y, stroke: s.color,
        "stroke-width": 2, ...(s.dashed ? { "stroke-dasharray": "5 4" } : {}) }));
      parts.push(el("text", { x: width - right - 94, y: y + 4, "font-size": 11, fill: "#333" }, s.name));
    }
  });
  if (!count) {
    parts.push(el("text", { x: (left + width - right) / 2, y: (top + height - bottom) / 2, "text-anchor": "middle",
      "font-size": 13, fill: "#777" }, empty));
  }
  svg.replaceChildren(...parts);
  svg.dataset.points = String(count);
}
