// In-browser inference: the one, isolated place where TensorFlow.js runs the model on the try-on page.
//
// The paper runs the model in mobile browsers with TensorFlow.js. When the active model has a TF.js export
// whose parity passed (GET /api/tryon/config -> active_model.tfjs, from tryon/rendering.py::tfjs_export;
// the export: ml/export/, docs/export.md), this module loads TF.js (served by this site, never a CDN) and
// the graph model, and runs it on the photo: `run(blob)` -> {height, width, fgProb, classProb, field, ms,
// backend}, NHWC Float32Arrays at the network's input size (longer side `long_side`, both sides multiples
// of 32, as the server's preprocessing). The page shows the nail probability it computes; the painting
// itself still comes from the server (POST /api/tryon/render) until JS post-processing and rendering that
// agree with ml/postprocess.py and ml/render.py exist.

function loadScript(src) {
  return new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = src;
    script.onload = resolve;
    script.onerror = () => reject(new Error(`could not load ${src}`));
    document.head.appendChild(script);
  });
}

// (h, w) with the longer side `size` rounded to a multiple of 32 and the other scaled with it (ml.data.eval_size_for).
export function evalSizeFor(height, width, size, multiple = 32) {
  const longSide = Math.max(multiple, Math.round(size / multiple) * multiple);
  const other = (a, b) => Math.max(multiple, Math.round(a * longSide / b / multiple) * multiple);
  return width >= height ? [other(height, width), longSide] : [longSide, other(width, height)];
}

export function inBrowserEngine(config) {
  const info = (config && config.in_browser) || {};
  const tfjs = config && config.active_model && config.active_model.tfjs;
  if (!info.available || !tfjs) {
    return { available: false, reason: info.reason || "In-browser inference is not available." };
  }
  let ready = null;
  async function load() {
    if (!ready) {
      ready = (async () => {
        if (!window.tf) await loadScript(tfjs.tfjs_url);
        if (!(await window.tf.setBackend("webgl"))) await window.tf.setBackend("cpu");
        await window.tf.ready();
        return window.tf.loadGraphModel(tfjs.model_url);
      })();
      ready.catch(() => { ready = null; });
    }
    return ready;
  }
  async function run(blob) {
    const model = await load();
    const tf = window.tf;
    const bitmap = await createImageBitmap(blob);
    const [h, w] = evalSizeFor(bitmap.height, bitmap.width, tfjs.long_side, tfjs.size_multiple || 32);
    const canvas = document.createElement("canvas");
    canvas.width = w;
    canvas.height = h;
    const ctx = canvas.getContext("2d");
    ctx.imageSmoothingQuality = "high";
    ctx.drawImage(bitmap, 0, 0, w, h);
    const started = performance.now();
    const x = tf.tidy(() => tf.browser.fromPixels(canvas).toFloat().div(255).expandDims(0));
    const names = ["fg_prob", "class_prob", "field"];
    const outs = model.execute({ [tfjs.input_node]: x }, names.map((n) => tfjs.output_nodes[n]));
    const [fgProb, classProb, field] = await Promise.all(outs.map((t) => t.data()));
    const ms = performance.now() - started;
    x.dispose();
    outs.forEach((t) => t.dispose());
    return { height: h, width: w, fgProb, classProb, field, ms, backend: tf.getBackend(), image: canvas };
  }
  return { available: true, reason: info.reason, load, run };
}
