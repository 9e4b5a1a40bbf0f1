// In-browser inference: the one, isolated place where a TensorFlow.js runner will plug in.
//
// The paper runs the model in mobile browsers with TensorFlow.js. NailSet has no TF.js export of its
// models yet (a later issue), so this module does not run anything: it only says whether in-browser
// inference is possible, and why not. The server's answer (GET /api/tryon/config -> in_browser,
// active_model.tfjs) decides; today it is always unavailable and the page renders through
// POST /api/tryon/render.
//
// When the export exists, replace `inBrowserEngine` with one that loads `config.active_model.tfjs`
// and returns {available: true, run(imageBitmap) -> {fg, cls, field}} plus JS post-processing and
// rendering that agree with ml/postprocess.py and ml/render.py (the test: same nails, angles
// within 2 degrees). Until then nothing here pretends to work.

export function inBrowserEngine(config) {
  const info = (config && config.in_browser) || {};
  return { available: false, reason: info.reason || "In-browser inference is not available." };
}
