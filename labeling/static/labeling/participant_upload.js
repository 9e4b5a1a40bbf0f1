// The participant's uploader: one XHR per file (for real progress), two at a time, with retry.
// A retried file that did arrive before is recognised by the server (same sha256) and not stored twice.
//
// One row per file: picking the same file again (or another copy of the same bytes) updates its row
// ("already sent") instead of adding one. A row's look says how it went: a tick when received; a cross,
// red, and the server's reason on its own lines below the name when the file was refused; a retry button
// when the connection failed. The file name always stays on its line (cut with an ellipsis, full in its title).
const uploader = document.getElementById("uploader");
const token = uploader.dataset.token;
const queue = document.getElementById("queue");
const sent = document.getElementById("sent");
const PARALLEL = 2;
const waiting = [];
const rows = new Map();  // file key -> item {file, li, busy}
let active = 0;

const ICONS = { waiting: "…", sending: "↑", ok: "✓", refused: "✕", failed: "!" };

function fileKey(file) {
  return `${file.name}\u0000${file.size}\u0000${file.lastModified}`;
}

function part(tag, className, text = "") {
  const node = document.createElement(tag);
  node.className = className;
  node.textContent = text;
  return node;
}

function row(file) {
  const li = document.createElement("li");
  const name = part("span", "name", file.name);
  name.title = file.name;
  const bar = document.createElement("progress");
  bar.max = 100;
  bar.value = 0;
  li.append(part("span", "icon"), name, part("span", "state"), bar, part("p", "reason"));
  queue.prepend(li);
  return li;
}

/** kind: waiting | sending | ok | refused | failed; reason: shown below the name (refused, failed). */
function setState(li, kind, text, reason = "") {
  li.dataset.state = kind;
  li.className = `upload ${kind}`;
  li.querySelector(".icon").textContent = ICONS[kind];
  li.querySelector(".icon").setAttribute("aria-hidden", "true");
  li.querySelector(".state").textContent = text;
  const why = li.querySelector(".reason");
  why.textContent = reason;
  why.hidden = !reason;
  // A refusal or a failure is not progress: no bar at all, rather than a full one that looks like success.
  li.querySelector("progress").hidden = kind === "refused" || kind === "failed";
}

function send(item) {
  active += 1;
  const { file, li } = item;
  item.busy = true;
  const bar = li.querySelector("progress");
  bar.value = 0;
  li.querySelector("button.retry")?.remove();
  setState(li, "sending", "sending 0%");
  const xhr = new XMLHttpRequest();
  xhr.open("POST", "/api/uploads/");
  xhr.setRequestHeader("X-Upload-Token", token);
  xhr.upload.addEventListener("progress", (event) => {
    if (event.lengthComputable) {
      const percent = Math.round((100 * event.loaded) / event.total);
      bar.value = percent;
      setState(li, "sending", `sending ${percent}%`);
    }
  });
  xhr.addEventListener("load", () => {
    let body = {};
    try { body = JSON.parse(xhr.responseText); } catch (error) { /* not JSON */ }
    if (xhr.status === 201 || xhr.status === 200) {
      received(item, body);
      refreshSent();
    } else {
      const reason = (body.file && body.file[0]) || body.detail || `error ${xhr.status}`;
      if (xhr.status >= 500) {
        setState(li, "failed", "not sent", reason);
        addRetry(item);
      } else setState(li, "refused", "refused", reason);
    }
    finished(item);
  });
  xhr.addEventListener("error", () => {
    setState(li, "failed", "not sent", "The connection was lost.");
    addRetry(item);
    finished(item);
  });
  const form = new FormData();
  form.append("file", file, file.name);
  xhr.send(form);
}

/** The server has the file. A copy of a file already shown in another row updates that row instead. */
function received(item, body) {
  const { li } = item;
  const uploadId = body.id === undefined ? "" : String(body.id);
  const earlier = uploadId ? queue.querySelector(`li[data-upload-id="${CSS.escape(uploadId)}"]`) : null;
  if (earlier && earlier !== li) {
    li.remove();
    item.li = earlier;
    setState(earlier, "ok", "already sent");
    queue.prepend(earlier);
    return;
  }
  if (uploadId) li.dataset.uploadId = uploadId;
  li.querySelector("progress").value = 100;
  setState(li, "ok", body.duplicate ? "already sent" : "received");
}

function addRetry(item) {
  const button = document.createElement("button");
  button.className = "retry";
  button.type = "button";
  button.textContent = "Try again";
  button.addEventListener("click", () => { waiting.push(item); pump(); });
  item.li.appendChild(button);
}

function finished(item) {
  item.busy = false;
  active -= 1;
  pump();
}

function pump() {
  while (active < PARALLEL && waiting.length) send(waiting.shift());
}

function pick(file) {
  const key = fileKey(file);
  const item = rows.get(key);
  if (!item) {
    const fresh = { file, li: row(file), busy: false };
    rows.set(key, fresh);
    setState(fresh.li, "waiting", "waiting");
    waiting.push(fresh);
    return;
  }
  queue.prepend(item.li);  // the same file again: its row comes back to the top, no new row
  if (item.busy || waiting.includes(item)) return;
  if (item.li.dataset.state === "ok") return setState(item.li, "ok", "already sent");
  item.file = file;  // refused or failed before: try once more, in the same row
  waiting.push(item);
}

document.getElementById("files").addEventListener("change", (event) => {
  for (const file of event.target.files) pick(file);
  event.target.value = "";
  pump();
});

let pollTimer = null;
async function refreshSent() {
  const response = await fetch("/api/uploads/?page_size=200", { headers: { "X-Upload-Token": token } });
  if (!response.ok) return;
  const { results } = await response.json();
  document.getElementById("sent-empty").hidden = results.length > 0;
  sent.replaceChildren(...results.map((upload) => {
    const li = document.createElement("li");
    li.dataset.status = upload.status;
    if (upload.image_ids.length) {
      const img = document.createElement("img");
      img.src = `/u/${token}/thumbnails/${upload.image_ids[0]}.jpg`;
      img.alt = upload.original_name;
      li.appendChild(img);
    }
    const caption = document.createElement("div");
    const frames = upload.kind === "video" && upload.status === "ready" ? ` · ${upload.image_ids.length} frames` : "";
    caption.textContent = `${upload.original_name} · ${upload.status === "failed" ? upload.failure_reason : upload.status}${frames}`;
    li.appendChild(caption);
    return li;
  }));
  const busy = results.some((upload) => upload.status === "received" || upload.status === "processing");
  clearTimeout(pollTimer);
  if (busy) pollTimer = setTimeout(refreshSent, 1500);
}

refreshSent();
uploader.dataset.ready = "1";  // the picker is wired up (tests and assistive tools can rely on it)
