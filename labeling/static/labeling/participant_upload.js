// The participant's uploader: one XHR per file (for real progress), two at a time, with retry.
// A retried file that did arrive before is recognised by the server (same sha256) and not stored twice.
const uploader = document.getElementById("uploader");
const token = uploader.dataset.token;
const queue = document.getElementById("queue");
const sent = document.getElementById("sent");
const PARALLEL = 2;
const waiting = [];
let active = 0;

function row(file) {
  const li = document.createElement("li");
  li.innerHTML = '<span class="name"></span><span class="state">waiting</span><progress max="100" value="0"></progress>';
  li.querySelector(".name").textContent = file.name;
  queue.prepend(li);
  return li;
}

function setState(li, text, kind) {
  const state = li.querySelector(".state");
  state.textContent = text;
  state.className = "state" + (kind ? " " + kind : "");
}

function send(item) {
  active += 1;
  const { file, li } = item;
  const bar = li.querySelector("progress");
  li.querySelector("button.retry")?.remove();
  setState(li, "sending 0%");
  const xhr = new XMLHttpRequest();
  xhr.open("POST", "/api/uploads/");
  xhr.setRequestHeader("X-Upload-Token", token);
  xhr.upload.onprogress = (event) => {
    if (event.lengthComputable) {
      const percent = Math.round((100 * event.loaded) / event.total);
      bar.value = percent;
      setState(li, `sending ${percent}%`);
    }
  };
  xhr.onload = () => {
    let body = {};
    try { body = JSON.parse(xhr.responseText); } catch (error) { /* not JSON */ }
    if (xhr.status === 201 || xhr.status === 200) {
      bar.value = 100;
      setState(li, body.duplicate ? "already received" : "received", "ok");
      li.dataset.done = "1";
      refreshSent();
    } else {
      const reason = (body.file && body.file[0]) || body.detail || `error ${xhr.status}`;
      setState(li, reason, "bad");
      if (xhr.status >= 500 || xhr.status === 0) addRetry(item);
    }
    finished();
  };
  xhr.onerror = () => { setState(li, "connection lost", "bad"); addRetry(item); finished(); };
  const form = new FormData();
  form.append("file", file, file.name);
  xhr.send(form);
}

function addRetry(item) {
  const button = document.createElement("button");
  button.className = "retry";
  button.type = "button";
  button.textContent = "Try again";
  button.onclick = () => { waiting.push(item); pump(); };
  item.li.appendChild(button);
}

function finished() { active -= 1; pump(); }

function pump() {
  while (active < PARALLEL && waiting.length) send(waiting.shift());
}

document.getElementById("files").addEventListener("change", (event) => {
  for (const file of event.target.files) waiting.push({ file, li: row(file) });
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
