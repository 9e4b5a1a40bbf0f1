// Try-on page: pick a colour and a finish, upload a photo or take one with the webcam; the server paints
// the nails (POST /api/tryon/render). When the model has a TF.js export, inbrowser.js also runs it here.
import { inBrowserEngine } from "./inbrowser.js";

const config = JSON.parse(document.getElementById("tryon-config").textContent);
const csrf = document.querySelector("input[name=csrfmiddlewaretoken]").value;
const $ = (id) => document.getElementById(id);
const state = { photo: null, color: "#C8102E", finish: "glossy", controller: null, stream: null, resultUrl: null };

const engine = inBrowserEngine(config);  // {available: false, reason} unless the model has a TF.js export
$("engine-note").textContent = engine.reason;

function setStatus(text) { $("status").textContent = text; }
function setError(text) { $("error").textContent = text || ""; }

function markSwatch() {
  for (const b of document.querySelectorAll(".swatch")) {
    b.setAttribute("aria-pressed", b.dataset.color.toUpperCase() === state.color ? "true" : "false");
  }
}

function setColor(value) {
  state.color = value.toUpperCase();
  $("color").value = value.toLowerCase();
  $("color-value").textContent = state.color;
  markSwatch();
  scheduleRender();
}

let timer = null;
function scheduleRender() {
  if (!state.photo || !config.active_model) return;
  clearTimeout(timer);
  timer = setTimeout(renderNow, 250);
}

function showBefore(blob) {
  const url = URL.createObjectURL(blob);
  $("before").src = url;
  $("result").hidden = false;
}

// The TF.js export, when the model has one: the nail probability computed in this browser, over the photo.
async function runInBrowser(blob) {
  if (!engine.available) return;
  const note = $("inbrowser-note");
  $("inbrowser").hidden = false;
  $("inbrowser").dataset.state = "running";
  note.textContent = "running the model…";
  try {
    const r = await engine.run(blob);
    const canvas = $("inbrowser-mask");
    canvas.width = r.width;
    canvas.height = r.height;
    const ctx = canvas.getContext("2d");
    ctx.drawImage(r.image, 0, 0);
    const pixels = ctx.getImageData(0, 0, r.width, r.height);
    let nail = 0;
    for (let i = 0; i < r.fgProb.length; i++) {
      const p = r.fgProb[i];
      if (p > 0.5) nail++;
      const a = Math.min(1, p) * 0.7;  // tint the nail probability magenta
      pixels.data[4 * i] = Math.round(pixels.data[4 * i] * (1 - a) + 255 * a);
      pixels.data[4 * i + 1] = Math.round(pixels.data[4 * i + 1] * (1 - a));
      pixels.data[4 * i + 2] = Math.round(pixels.data[4 * i + 2] * (1 - a) + 200 * a);
    }
    ctx.putImageData(pixels, 0, 0);
    const share = (100 * nail / r.fgProb.length).toFixed(1);
    note.textContent = `${r.backend} backend, ${Math.round(r.ms)} ms at ${r.width}x${r.height} px; nail pixels ${share}%`;
    $("inbrowser").dataset.state = "done";
    $("inbrowser").dataset.ms = String(r.ms);
  } catch (err) {
    note.textContent = `TF.js could not run the model: ${err.message}`;
    $("inbrowser").dataset.state = "error";
  }
}

function usePhoto(blob) {
  state.photo = blob;
  showBefore(blob);
  runInBrowser(blob);
  $("after").removeAttribute("src");
  $("render").disabled = !config.active_model;
  renderNow();
}

async function renderNow() {
  if (!state.photo) return;
  if (!config.active_model) {
    setError("No active model: the photo cannot be painted.");
    return;
  }
  if (state.controller) state.controller.abort();
  const controller = new AbortController();
  state.controller = controller;
  const body = new FormData();
  body.append("image", state.photo, state.photo.name || "webcam.jpg");
  body.append("color", state.color);
  body.append("finish", state.finish);
  setError("");
  setStatus("Painting…");
  $("render").disabled = true;
  const started = performance.now();
  try {
    const response = await fetch("/api/tryon/render", {
      method: "POST", body, credentials: "same-origin", signal: controller.signal,
      headers: { "X-CSRFToken": csrf, "Accept": "application/json" },
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      const detail = data.detail || Object.values(data).flat().join(" ") || response.statusText;
      throw new Error(detail);
    }
    $("after").src = data.image;
    $("download").href = data.image;
    const n = data.nails.length;
    $("nail-count").textContent = `${n} nail${n === 1 ? "" : "s"} found`;
    $("nail-count").dataset.count = String(n);
    const t = data.timings_ms || {};
    const total = Math.round(performance.now() - started);
    $("timing").textContent = `Server: inference ${t.inference ?? "?"} ms, post-processing ${t.postprocess ?? "?"} ms, `
      + `rendering ${t.render ?? "?"} ms; round trip ${total} ms (model ${data.model}, ${data.finish}, ${data.color}).`;
    setStatus(`Painted ${data.color} ${data.finish}.`);
    $("result").dataset.state = "done";
  } catch (err) {
    if (err.name === "AbortError") return;
    setStatus("");
    setError(`Could not paint the photo: ${err.message}`);
    $("result").dataset.state = "error";
  } finally {
    if (state.controller === controller) {
      state.controller = null;
      $("render").disabled = !config.active_model;
    }
  }
}

for (const b of document.querySelectorAll(".swatch")) {
  b.addEventListener("click", () => setColor(b.dataset.color));
}
$("color").addEventListener("input", (e) => setColor(e.target.value));
for (const r of document.querySelectorAll("input[name=finish]")) {
  r.addEventListener("change", (e) => { state.finish = e.target.value; scheduleRender(); });
}
$("photo").addEventListener("change", (e) => { if (e.target.files[0]) usePhoto(e.target.files[0]); });
$("render").addEventListener("click", renderNow);

// Webcam: a still from the camera becomes the photo.
function stopWebcam() {
  if (state.stream) for (const track of state.stream.getTracks()) track.stop();
  state.stream = null;
  $("webcam").hidden = true;
  document.querySelector(".webcam-controls").hidden = true;
  $("webcam-start").hidden = false;
}
$("webcam-start").addEventListener("click", async () => {
  setError("");
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    setError("This browser gives no camera access here (the page must be served over HTTPS or from localhost).");
    return;
  }
  try {
    state.stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false });
  } catch (err) {
    setError(`The camera could not be opened: ${err.message}`);
    return;
  }
  const video = $("webcam");
  video.srcObject = state.stream;
  video.hidden = false;
  await video.play();
  document.querySelector(".webcam-controls").hidden = false;
  $("webcam-start").hidden = true;
});
$("webcam-capture").addEventListener("click", () => {
  const video = $("webcam");
  if (!video.videoWidth) return;
  const canvas = document.createElement("canvas");
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  canvas.getContext("2d").drawImage(video, 0, 0);
  canvas.toBlob((blob) => { if (blob) usePhoto(new File([blob], "webcam.jpg", { type: "image/jpeg" })); }, "image/jpeg", 0.92);
});
$("webcam-stop").addEventListener("click", stopWebcam);

setColor(state.color);
if (!config.active_model) $("render").disabled = true;
