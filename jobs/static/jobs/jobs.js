// The jobs page (admins): polls /api/jobs/ with the page's filters and redraws the table; Cancel asks
// POST /api/jobs/{id}/cancel/. Open log panels stay open across refreshes.
import { request } from "../labeling/api.js";

const POLL_MS = 2000;
const table = document.getElementById("jobs-table");
const body = table.querySelector("tbody");
const problem = document.getElementById("jobs-problem");
const count = document.getElementById("jobs-count");
const refreshed = document.getElementById("jobs-refreshed");
const pageSize = Number(table.dataset.pageSize) || 100;

function element(tag, { className, text, attrs } = {}, children = []) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = text;
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
  for (const child of children) if (child) node.append(child);
  return node;
}

const pad = (n) => String(n).padStart(2, "0");
function stamp(iso, withDate) {
  const d = new Date(iso);
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  return withDate ? `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${time}` : time;
}

function row(job, openLogs) {
  const active = job.status === "queued" || job.status === "running";
  const status = element("td", {}, [element("span", { className: `job-status ${job.status}`, text: job.status })]);
  if (job.cancel_requested_at && job.status === "running") {
    status.append(element("br"), element("span", { className: "muted small", text: "cancel asked" }));
  }
  const message = element("td", { className: "message", text: job.message });
  if (job.error) message.append(element("div", { className: "error small", text: job.error.slice(0, 300) }));
  const when = element("td", { className: "when small" }, [
    element("time", { attrs: { datetime: job.created_at }, text: stamp(job.created_at, true) })]);
  if (job.finished_at) when.append(element("br"), element("span", { className: "muted", text: `ended ${stamp(job.finished_at)}` }));
  let log;
  if (job.log) {
    const details = element("details", { attrs: { "data-log": job.id } },
      [element("summary", { text: "log" }), element("pre", { text: job.log })]);
    details.open = openLogs.has(String(job.id));
    log = element("td", {}, [details]);
  } else {
    log = element("td", {}, [element("span", { className: "muted", text: "—" })]);
  }
  const actions = element("td");
  if (active) actions.append(element("button", { className: "cancel", text: "Cancel", attrs: { type: "button", "data-cancel": job.id } }));
  const progress = element("progress", { attrs: { max: "1", value: String(job.progress) } });
  return element("tr", { attrs: { "data-job": job.id, "data-status": job.status } }, [
    element("td", { className: "num" }, [element("a", { attrs: { href: `/api/jobs/${job.id}/` }, text: `#${job.id}` })]),
    element("td", {}, [document.createTextNode(job.kind), element("br"),
      element("span", { className: "muted small", text: `${job.queue} queue` })]),
    status,
    element("td", { className: "num" }, [progress, document.createTextNode(` ${Math.round(job.progress * 100)}\u00a0%`)]),
    message,
    element("td", { className: "who", text: job.created_by || "command" }),
    when, log, actions,
  ]);
}

function listUrl() {
  const query = new URLSearchParams({ page_size: String(pageSize) });
  if (table.dataset.kind) query.set("kind", table.dataset.kind);
  if (table.dataset.status) query.set("status", table.dataset.status);
  return `${table.dataset.api}?${query}`;
}

let timer = null;
async function refresh() {
  clearTimeout(timer);
  const { ok, status, data } = await request("GET", listUrl());
  if (ok) {
    const openLogs = new Set([...body.querySelectorAll("details[open]")].map((d) => d.dataset.log));
    const rows = data.results.map((job) => row(job, openLogs));
    if (!rows.length) {
      const filtered = table.dataset.kind || table.dataset.status;
      rows.push(element("tr", { className: "empty" }, [
        element("td", { className: "muted", attrs: { colspan: "9" }, text: `No job${filtered ? " matches these filters" : ""}.` })]));
    }
    body.replaceChildren(...rows);
    const more = data.count > data.results.length ? `, the newest ${data.results.length} shown` : "";
    count.textContent = `${data.count} job${data.count === 1 ? "" : "s"}${more}`;
    refreshed.textContent = `updated ${stamp(new Date().toISOString())}`;
    table.dataset.refreshed = String(Date.now());
  } else if (status !== 0) {
    problem.textContent = `The job list could not be refreshed (${status}): ${(data && data.detail) || "unknown error"}`;
  }
  if (!document.hidden) timer = setTimeout(refresh, POLL_MS);
}

table.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-cancel]");
  if (!button) return;
  button.disabled = true;
  const id = button.dataset.cancel;
  const { status, data } = await request("POST", `/api/jobs/${id}/cancel/`);
  problem.textContent = status === 202 ? "" : `Job ${id} was not cancelled (${status}): ${(data && data.detail) || "unknown error"}`;
  await refresh();
});

document.addEventListener("visibilitychange", () => { if (!document.hidden) refresh(); });
timer = setTimeout(refresh, POLL_MS);
table.dataset.ready = "1";
