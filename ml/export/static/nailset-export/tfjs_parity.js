// TF.js parity harness: loads a NailSet graph model, runs it on the stored parity inputs with each
// backend, and compares every output with PyTorch's (reference.json + reference.bin, NHWC float32).
// Used by the model's TF.js page (training/templates/training/tfjs_check.html) and by ml/export/browser.py
// (headless Chromium through Playwright). Needs the global `tf` (tf.min.js, served locally, never a CDN).
//
//   const result = await nailsetTfjsParity({modelUrl, referenceUrl, inputNode, outputNodes,
//                                           backends: ["cpu", "webgl"], repeats: 3, onStatus, runPrefix});
//   // -> {tfjs_version, user_agent, runs: {"chromium-cpu": {runtime, max_abs_diff, outputs, per_image,
//   //     latency_ms, backend}, ...}}
(function () {
  "use strict";
  const OUTPUT_NAMES = ["fg_prob", "class_prob", "field"];

  async function fetchReference(referenceUrl) {
    const base = referenceUrl.endsWith("/") ? referenceUrl : referenceUrl + "/";
    const [index, bin] = await Promise.all([
      fetch(base + "reference.json", { credentials: "same-origin" }).then((r) => {
        if (!r.ok) throw new Error("reference.json: HTTP " + r.status);
        return r.json();
      }),
      fetch(base + "reference.bin", { credentials: "same-origin" }).then((r) => {
        if (!r.ok) throw new Error("reference.bin: HTTP " + r.status);
        return r.arrayBuffer();
      }),
    ]);
    const data = new Float32Array(bin);
    const slice = (e) => ({ shape: e.shape, values: data.subarray(e.offset, e.offset + e.length) });
    return index.items.map((item) => ({
      image: item.image,
      input: slice(item.input),
      outputs: Object.fromEntries(OUTPUT_NAMES.map((k) => [k, slice(item.outputs[k])])),
    }));
  }

  function maxAbsDiff(a, b) {
    if (a.length !== b.length) return Infinity;
    let m = 0;
    for (let i = 0; i < a.length; i++) {
      const d = Math.abs(a[i] - b[i]);
      if (!(d <= m)) m = Number.isFinite(d) ? d : Infinity;  // NaN and larger
      if (m === Infinity) break;
    }
    return m;
  }

  function median(values) {
    const s = [...values].sort((x, y) => x - y);
    return s.length ? s[Math.floor((s.length - 1) / 2)] : null;
  }

  async function runBackend(backend, opts, items) {
    const ok = await tf.setBackend(backend);
    if (!ok) throw new Error("backend " + backend + " is not available in this browser");
    await tf.ready();
    const model = await tf.loadGraphModel(opts.modelUrl);
    const nodes = OUTPUT_NAMES.map((k) => opts.outputNodes[k]);
    const worst = Object.fromEntries(OUTPUT_NAMES.map((k) => [k, 0]));
    const perImage = [];
    const latency = {};
    try {
      for (const item of items) {
        const x = tf.tensor(item.input.values, item.input.shape, "float32");
        const run = () => {
          const outs = model.execute({ [opts.inputNode]: x }, nodes);
          const arrays = outs.map((t) => t.dataSync());
          const shapes = outs.map((t) => t.shape);
          outs.forEach((t) => t.dispose());
          return { arrays, shapes };
        };
        const first = run();  // also compiles the webgl shaders for this size
        const diffs = {};
        OUTPUT_NAMES.forEach((k, i) => {
          const ref = item.outputs[k];
          const shapeOk = JSON.stringify(first.shapes[i]) === JSON.stringify(ref.shape);
          diffs[k] = shapeOk ? maxAbsDiff(first.arrays[i], ref.values) : Infinity;
          worst[k] = Math.max(worst[k], diffs[k]);
        });
        const key = item.input.shape[1] + "x" + item.input.shape[2];
        if (!(key in latency)) {
          const times = [];
          for (let r = 0; r < (opts.repeats || 3); r++) {
            const t0 = performance.now();
            run();
            times.push(performance.now() - t0);
          }
          latency[key] = Math.round(median(times) * 100) / 100;
        }
        perImage.push({ image: item.image, size: [item.input.shape[1], item.input.shape[2]], max_abs_diff: diffs });
        x.dispose();
        if (opts.onStatus) opts.onStatus(backend + ": " + item.image + " done");
      }
    } finally {
      model.dispose();
    }
    let renderer = null;
    if (backend === "webgl") {
      try {
        const gl = tf.backend().gpgpu.gl;
        const info = gl.getExtension("WEBGL_debug_renderer_info");
        renderer = info ? gl.getParameter(info.UNMASKED_RENDERER_WEBGL) : gl.getParameter(gl.RENDERER);
      } catch (e) { renderer = null; }
    }
    const maxDiff = Math.max(...OUTPUT_NAMES.map((k) => worst[k]));
    return {
      runtime: "TensorFlow.js " + tf.version.tfjs + " " + backend + " backend in " + navigator.userAgent.replace(/^.*(HeadlessChrome|Chrome)\//, "$1/").split(" ")[0] +
        (renderer ? " (" + renderer + ")" : ""),
      backend, max_abs_diff: maxDiff, outputs: worst, per_image: perImage, latency_ms: latency,
      latency_note: "median of " + (opts.repeats || 3) + " runs after a warm-up, outputs read back (dataSync)",
    };
  }

  async function nailsetTfjsParity(opts) {
    const items = await fetchReference(opts.referenceUrl);
    const runs = {};
    const prefix = opts.runPrefix || "chromium-";
    for (const backend of opts.backends || ["cpu", "webgl"]) {
      if (opts.onStatus) opts.onStatus("running on " + backend + "…");
      try {
        runs[prefix + backend] = await runBackend(backend, opts, items);
      } catch (err) {
        runs[prefix + backend] = { runtime: "TensorFlow.js " + backend, backend, max_abs_diff: null,
                                        error: String(err && err.message || err) };
      }
    }
    return { tfjs_version: tf.version.tfjs, user_agent: navigator.userAgent, runs };
  }

  window.nailsetTfjsParity = nailsetTfjsParity;
})();
