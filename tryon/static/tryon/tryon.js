// Try-on page: pick a colour and a finish, upload a photo or use the webcam.
// When the active model has a TensorFlow.js export, everything runs in this browser (frame_pipeline.js:
// the model in inbrowser.js, postprocess.js, render.js): a photo is painted here, the webcam is painted
// live (requestAnimationFrame loop), and the page shows the time of each stage and the frame rate.
// Otherwise (or when TF.js fails) the server paints the photo (POST /api/tryon/render).
// The page loads this module only with an active model (without one it says how to get one). The "After"
// figure and the download link appear only once a photo is painted.
import { analyseFrame, fpsMeter, grabFrame, paintFrame } from "./frame_pipeline.js";
import { inBrowserEngine } from "./inbrowser.js";

const config = JSON.parse(document.getElementById("tryon-config").textContent);
const csrf = document.querySelector("input[name=csrfmiddlewaretoken]").value;
const $ = (id) => document.getElementById(id);
const state = {
  photo: null, color: "#C8102E", finish: "glossy", controller: null, stream: null,
  frame: null,      // in-browser: {pixels, nails, timings} of the last photo or webcam frame
  live: false,      // the webcam loop is running
};
const LIVE_MAX_SIDE = 640;  // webcam frames are analysed at most this large (the paper: 640x480)

let engine = inBrowserEngine(config);  // {available: false, reason} unless the model has a TF.js export
$("engine-note").textContent = engine.reason;
const frameCanvas = document.createElement("canvas");
const meter = fpsMeter();

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
let repaintQueued = false;
function scheduleRender() {
  if (engine.available) {  // in the browser: repaint the last frame's nails, no model run
    // a run in progress and the live loop paint with the newest colour anyway
    if (!state.frame || state.live || repaintQueued) return;
    repaintQueued = true;
    requestAnimationFrame(() => { repaintQueued = false; repaint(); });
    return;
  }
  if (!state.photo) return;
  clearTimeout(timer);
  timer = setTimeout(renderNow, 250);
}

function showBefore(blob) {
  $("before").src = URL.createObjectURL(blob);
  $("before-figure").hidden = false;
  $("result").hidden = false;
}

function offerDownload(href) {
  $("download").href = href;
  $("download-line").hidden = false;
}

function withdrawDownload() {
  $("download").removeAttribute("href");
  $("download-line").hidden = true;
}

function setNailCount(n) {
  $("nail-count").textContent = `${n} nail${n === 1 ? "" : "s"} found`;
  $("nail-count").dataset.count = String(n);
}

// ------------------------------------------------------------------------------------------------
// In the browser
// ------------------------------------------------------------------------------------------------

function showInBrowser(outputs, timings, fps, live) {
  const t = timings;
  $("inbrowser").hidden = false;
  $("inbrowser-note").textContent = `${outputs.backend} backend, ${Math.round(t.model)} ms at ${outputs.netWidth}x`
    + `${outputs.netHeight} px (model input), frame ${outputs.width}x${outputs.height} px`;
  $("stage-times").textContent = `Model ${t.model.toFixed(1)} ms · post-processing ${t.postprocess.toFixed(1)} ms · `
    + `rendering ${t.render.toFixed(1)} ms`;
  for (const [key, value] of Object.entries(t)) $("stage-times").dataset[key] = value.toFixed(2);
  if (fps) {
    const cold = outputs.warm ? "" : "; the first run at this size includes compiling the model, \"Paint my nails\" runs it again";
    $("fps").textContent = live ? `${fps.toFixed(1)} FPS (webcam, live)`
      : `${fps.toFixed(1)} FPS (model + post-processing + rendering of this photo${cold})`;
    $("fps").dataset.fps = fps.toFixed(2);
  }
  // for tests and the curious: the model's outputs at the frame's size, the nails, the frame's own pixels
  window.nailsetTryon = { outputs, nails: state.frame.nails, pixels: state.frame.pixels, timings: t, fps };
}

function showCanvas() {
  $("after").hidden = true;
  $("after-canvas").hidden = false;
  $("after-figure").hidden = false;
  $("result").hidden = false;
}

async function paintInBrowser(blob) {
  const inbrowser = $("inbrowser");
  inbrowser.hidden = false;
  inbrowser.dataset.state = "running";
  $("inbrowser-note").textContent = "running the model…";
  setError("");
  setStatus("Painting in this browser…");
  try {
    const bitmap = await createImageBitmap(blob);
    const scale = Math.min(1, config.max_side / Math.max(bitmap.width, bitmap.height));
    const width = Math.max(1, Math.round(bitmap.width * scale)), height = Math.max(1, Math.round(bitmap.height * scale));
    const pixels = grabFrame(bitmap, width, height, frameCanvas);
    bitmap.close();
    const { outputs, nails, timings } = await analyseFrame(engine, frameCanvas, config.postprocess, pixels);
    if (state.photo !== blob) return;  // another photo came meanwhile
    state.frame = { pixels, nails, timings, outputs };
    timings.render = paintFrame($("after-canvas"), pixels, nails, state.color, state.finish);
    showCanvas();
    offerDownload($("after-canvas").toDataURL("image/jpeg", 0.92));
    setNailCount(nails.length);
    showInBrowser(outputs, timings, 1000 / (timings.model + timings.postprocess + timings.render), false);
    $("timing").textContent = "";
    setStatus(`Painted ${state.color} ${state.finish} in this browser.`);
    inbrowser.dataset.state = "done";
    inbrowser.dataset.ms = String(outputs.ms);
    $("result").dataset.state = "done";
  } catch (err) {
    fallBackToServer(err);
  }
}

function fallBackToServer(err) {
  $("inbrowser").dataset.state = "error";
  $("inbrowser-note").textContent = `TF.js could not run the model: ${err.message}; the server paints instead.`;
  engine = { available: false, reason: `In-browser inference failed (${err.message}): photos are rendered on the server.` };
  $("engine-note").textContent = engine.reason;
  stopLive();
  state.frame = null;
  $("after").hidden = false;
  $("after-canvas").hidden = true;
  renderNow();
}

function repaint() {
  if (!state.frame) return;
  const { pixels, nails, timings, outputs } = state.frame;
  timings.render = paintFrame($("after-canvas"), pixels, nails, state.color, state.finish);
  if (!state.live) offerDownload($("after-canvas").toDataURL("image/jpeg", 0.92));
  showInBrowser(outputs, timings, null, false);
  setStatus(`Painted ${state.color} ${state.finish} in this browser.`);
}

// Webcam, live: each animation frame takes the newest video frame through the whole pipeline.
async function liveStep() {
  if (!state.live) return;
  const video = $("webcam");
  try {
    if (video.videoWidth && video.readyState >= 2) {
      const scale = Math.min(1, LIVE_MAX_SIDE / Math.max(video.videoWidth, video.videoHeight));
      const width = Math.round(video.videoWidth * scale), height = Math.round(video.videoHeight * scale);
      const pixels = grabFrame(video, width, height, frameCanvas);
      const { outputs, nails, timings } = await analyseFrame(engine, frameCanvas, config.postprocess, pixels);
      if (!state.live) return;
      state.frame = { pixels, nails, timings, outputs };
      timings.render = paintFrame($("after-canvas"), pixels, nails, state.color, state.finish);
      showCanvas();
      setNailCount(nails.length);
      showInBrowser(outputs, timings, meter.tick(), true);
      $("inbrowser").dataset.state = "live";
    }
  } catch (err) {
    fallBackToServer(err);
    return;
  }
  requestAnimationFrame(liveStep);
}

function startLive() {
  state.live = true;
  state.photo = null;
  meter.reset();
  withdrawDownload();  // a live frame is not a photo: "Take the picture" makes one
  $("before-figure").hidden = true;
  $("result").hidden = false;
  $("inbrowser").hidden = false;
  $("inbrowser-note").textContent = "running the model…";
  setStatus("Painting the webcam in this browser…");
  requestAnimationFrame(liveStep);
}

function stopLive() {
  state.live = false;
}

// ------------------------------------------------------------------------------------------------
// On the server
// ------------------------------------------------------------------------------------------------

async function renderNow() {
  if (!state.photo) return;
  if (engine.available) { paintInBrowser(state.photo); return; }
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
    $("after-figure").hidden = false;
    offerDownload(data.image);
    setNailCount(data.nails.length);
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
      $("render").disabled = false;
    }
  }
}

function usePhoto(blob) {
  stopLive();
  state.photo = blob;
  state.frame = null;
  showBefore(blob);
  $("after").removeAttribute("src");
  $("after-figure").hidden = true;
  withdrawDownload();
  $("render").disabled = false;
  renderNow();
}

// ------------------------------------------------------------------------------------------------
// Controls
// ------------------------------------------------------------------------------------------------

for (const b of document.querySelectorAll(".swatch")) {
  b.addEventListener("click", () => setColor(b.dataset.color));
}
$("color").addEventListener("input", (e) => setColor(e.target.value));
for (const r of document.querySelectorAll("input[name=finish]")) {
  r.addEventListener("change", (e) => { state.finish = e.target.value; scheduleRender(); });
}
$("photo").addEventListener("change", (e) => { if (e.target.files[0]) usePhoto(e.target.files[0]); });
$("render").addEventListener("click", renderNow);
$("download").addEventListener("click", () => {
  if (engine.available && state.frame) $("download").href = $("after-canvas").toDataURL("image/jpeg", 0.92);
});

function stopWebcam() {
  stopLive();
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
  if (engine.available) startLive();  // painted live in this browser
});
// A still from the camera becomes the photo (the only webcam mode when the server paints).
$("webcam-capture").addEventListener("click", () => {
  const video = $("webcam");
  if (!video.videoWidth) return;
  const canvas = document.createElement("canvas");
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  canvas.getContext("2d").drawImage(video, 0, 0);
  stopLive();
  canvas.toBlob((blob) => { if (blob) usePhoto(new File([blob], "webcam.jpg", { type: "image/jpeg" })); }, "image/jpeg", 0.92);
});
$("webcam-stop").addEventListener("click", stopWebcam);

setColor(state.color);
