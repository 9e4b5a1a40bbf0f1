// Runs the try-on page's JavaScript (tryon/static/tryon/) on cases written by the Python tests
// (tests/test_tryon_postprocess_js.py, tests/test_tryon_render_js.py), which compare it with ml/.
// Usage: node tests/js/tryon_cli.mjs COMMAND CASES.json > OUT.json
// Arrays travel as base64 of little-endian bytes: float32 (fgProb, classProb, field, alpha), uint8 (classMap,
// binary images, RGB and RGBA pixels), int32 (labels).
//   postprocess  [{width, height, fgProb, classProb?, classMap?, field?, rgb? | rgba?, config?}] -> per case the
//                nails in the server's dict format (toDicts) plus `mask` (uint8, bbox-sized) and
//                `orientation_confidence` (nails oriented from the photo, else null)
//   render       [{width, height, rgb, nails, color, finish, options?}] -> per case {rgb, alpha, nails}
//   components   [{width, height, binary, connectivity}] -> per case {count, labels}
//   chamfer      [{width, height, binary, seeds?}] -> per case {dist, labels?} (seeds: int32 labels of the zero pixels)
//   defaults     -> {postprocess: DEFAULTS, finishes: FINISHES, render: RENDER_DEFAULTS}
import { readFileSync } from "node:fs";

import { chamferDistance, connectedComponents } from "../../tryon/static/tryon/components.js";
import { DEFAULTS, postprocess, toDicts } from "../../tryon/static/tryon/postprocess.js";
import { FINISHES, render, RENDER_DEFAULTS } from "../../tryon/static/tryon/render.js";

function decode(text, Type) {
  if (!text) return null;
  const bytes = Buffer.from(text, "base64");
  const copy = new Uint8Array(bytes.length);
  copy.set(bytes);
  return new Type(copy.buffer);
}
const encode = (typed) => Buffer.from(typed.buffer, typed.byteOffset, typed.byteLength).toString("base64");

const commands = {
  postprocess: (c) => {
    const nails = postprocess({
      width: c.width, height: c.height, fgProb: decode(c.fgProb, Float32Array), classProb: decode(c.classProb, Float32Array),
      classMap: decode(c.classMap, Uint8Array), field: decode(c.field, Float32Array),
      image: c.rgb || c.rgba ? {
        data: c.rgb ? decode(c.rgb, Uint8Array) : decode(c.rgba, Uint8ClampedArray), width: c.width, height: c.height,
      } : null,
    }, c.config || {});
    return toDicts(nails).map((d, k) => ({
      ...d, mask: encode(nails[k].mask), orientation_confidence: nails[k].orientationConfidence,
    }));
  },
  render: (c) => {
    const rgb = decode(c.rgb, Uint8Array), n = c.width * c.height, data = new Uint8ClampedArray(4 * n);
    for (let i = 0; i < n; i++) {
      data[4 * i] = rgb[3 * i]; data[4 * i + 1] = rgb[3 * i + 1]; data[4 * i + 2] = rgb[3 * i + 2]; data[4 * i + 3] = 255;
    }
    const result = render({ data, width: c.width, height: c.height }, c.nails, c.color, c.finish, c.options || {});
    const painted = new Uint8Array(3 * n);
    let opaque = true;
    for (let i = 0; i < n; i++) {
      for (let k = 0; k < 3; k++) painted[3 * i + k] = result.data[4 * i + k];
      opaque &&= result.data[4 * i + 3] === 255;
    }
    return { rgb: encode(painted), alpha: encode(result.alpha), nails: result.nails, opaque };
  },
  components: (c) => {
    const cc = connectedComponents(decode(c.binary, Uint8Array), c.width, c.height, c.connectivity);
    return { count: cc.count, labels: encode(cc.labels) };
  },
  chamfer: (c) => {
    const labels = decode(c.seeds, Int32Array);
    const dist = chamferDistance(decode(c.binary, Uint8Array), c.width, c.height, labels);
    return { dist: encode(dist), labels: labels ? encode(labels) : null };
  },
};

const [command, path] = process.argv.slice(2);
if (command === "defaults") {
  process.stdout.write(JSON.stringify({ postprocess: DEFAULTS, finishes: FINISHES, render: RENDER_DEFAULTS }));
} else {
  const cases = JSON.parse(readFileSync(path, "utf8"));
  process.stdout.write(JSON.stringify(cases.map(commands[command])));
}
