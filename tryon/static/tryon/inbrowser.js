// In-browser inference: the one, isolated place where TensorFlow.js runs the model on the try-on page.
//
// The paper runs the model in mobile browsers with TensorFlow.js. When the active model has a TF.js export
// whose parity passed (GET /api/tryon/config -> active_model.tfjs, from tryon/rendering.py::tfjs_export;
// the export: ml/export/, docs/export.md), this module loads TF.js (served by this site, never a CDN) and
// the graph model, and runs it on a frame (a photo or a webcam frame drawn on a canvas):
// `run(frameCanvas)` -> {width, height, fgProb, classMap, field, netWidth, netHeight, ms, warm, backend}
// (warm: not the first run at these sizes, which includes compiling the WebGL shaders).
// As the server's ml.predict.Predictor: the frame is resized to the network's input size (longer side
// `long_side`, both sides multiples of 32) and the outputs are upsampled bilinearly (half-pixel centres,
// PyTorch's align_corners=False) back to the frame's size, on the GPU; the finger class is the argmax of
// the upsampled probabilities (classMap, 1..10), and a head the training never supervised is null
// (post-processing then works in binary mode). postprocess.js and render.js take it from there.

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
  const heads = tfjs.heads || { classes: true, field: true };
  let ready = null;
  async function load() {
    if (!ready) {
      ready = (async () => {
        if (!window.tf) {
          await loadScript(new URL("../training/tfjs_globals.js", import.meta.url).href);  // TF.js under the CSP: see there
          await loadScript(tfjs.tfjs_url);
        }
        if (!(await window.tf.setBackend("webgl"))) await window.tf.setBackend("cpu");
        await window.tf.ready();
        return window.tf.loadGraphModel(tfjs.model_url);
      })();
      ready.catch(() => { ready = null; });
    }
    return ready;
  }
  const sizes = new Set();  // input sizes run before: the first run at a size compiles the WebGL shaders
  const input = document.createElement("canvas");
  const inputCtx = input.getContext("2d", { willReadFrequently: true });
  inputCtx.imageSmoothingQuality = "high";

  // `frame`: a canvas (or anything drawImage takes) of `width` x `height` px.
  async function run(frame, width = frame.width, height = frame.height) {
    const model = await load();
    const tf = window.tf;
    const [h, w] = evalSizeFor(height, width, tfjs.long_side, tfjs.size_multiple || 32);
    if (input.width !== w || input.height !== h) { input.width = w; input.height = h; }
    inputCtx.drawImage(frame, 0, 0, w, h);
    const started = performance.now();
    const names = ["fg_prob", "class_prob", "field"];
    const outs = tf.tidy(() => {
      const x = tf.browser.fromPixels(input).toFloat().div(255).expandDims(0);
      const [fg, cls, field] = model.execute({ [tfjs.input_node]: x }, names.map((n) => tfjs.output_nodes[n]));
      const up = (t) => tf.image.resizeBilinear(t, [height, width], false, true);
      const classes = heads.classes ? up(cls).argMax(-1).add(tf.scalar(1, "int32")) : null;  // int32, 1..10
      return [up(fg), classes, heads.field ? up(field) : null];
    });
    const [fgProb, classes, field] = await Promise.all(outs.map((t) => (t ? t.data() : null)));
    outs.forEach((t) => t && t.dispose());
    const ms = performance.now() - started;
    const warm = sizes.has(`${w}x${h}>${width}x${height}`);
    sizes.add(`${w}x${h}>${width}x${height}`);
    return {
      width, height, fgProb, classMap: classes, field, netWidth: w, netHeight: h, ms, warm, backend: tf.getBackend(),
    };
  }
  return { available: true, reason: info.reason, heads, load, run };
}
