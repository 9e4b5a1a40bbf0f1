// One frame through the in-browser try-on: the TF.js model (inbrowser.js) -> post-processing
// (postprocess.js) -> polish (render.js) on a canvas, with the time of each stage, and an FPS meter.
// The page (tryon.js) runs it once per photo, and per webcam frame in a requestAnimationFrame loop;
// a colour or finish change repaints the last frame's nails without running the model again.
import { postprocess } from "./postprocess.js";
import { render } from "./render.js";

/** Draw `source` (image, bitmap, video) scaled to `width` x `height` on `canvas`; its pixels (ImageData). */
export function grabFrame(source, width, height, canvas) {
  if (canvas.width !== width || canvas.height !== height) { canvas.width = width; canvas.height = height; }
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.drawImage(source, 0, 0, width, height);
  return ctx.getImageData(0, 0, width, height);
}

/** Model and post-processing of a frame: {outputs, nails, timings: {model, postprocess}} (ms). `pixels`:
 *  the frame's ImageData (grabFrame), at the outputs' size: nails without a predicted direction are
 *  oriented from it, as ml/postprocess.py does with the photo. */
export async function analyseFrame(engine, frameCanvas, postprocessConfig, pixels) {
  const outputs = await engine.run(frameCanvas);
  const started = performance.now();
  const nails = postprocess({ ...outputs, image: pixels }, postprocessConfig || {});
  return { outputs, nails, timings: { model: outputs.ms, postprocess: performance.now() - started } };
}

/** Paint `nails` on the frame's pixels into `canvas`; returns the time taken (ms, render.js + putImageData). */
export function paintFrame(canvas, pixels, nails, color, finish) {
  const started = performance.now();
  const painted = render(pixels, nails, color, finish);
  if (canvas.width !== pixels.width || canvas.height !== pixels.height) {
    canvas.width = pixels.width;
    canvas.height = pixels.height;
  }
  canvas.getContext("2d").putImageData(new ImageData(painted.data, pixels.width, pixels.height), 0, 0);
  return performance.now() - started;
}

/** Frames per second over the last `window` frames. */
export function fpsMeter(window = 20) {
  const stamps = [];
  return {
    tick(now = performance.now()) {
      stamps.push(now);
      if (stamps.length > window) stamps.shift();
      return this.fps();
    },
    fps() {
      return stamps.length < 2 ? null : (1000 * (stamps.length - 1)) / (stamps[stamps.length - 1] - stamps[0]);
    },
    reset() { stamps.length = 0; },
  };
}
