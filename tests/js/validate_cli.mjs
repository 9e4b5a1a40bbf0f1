// Reads [{geometry, width, height, requireComplete}] as JSON on stdin and prints the JS validation report
// of each (tests/test_annotation_js.py compares it with dataset/geometry.py).
import { validate } from "../../labeling/static/labeling/geometry.js";

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => { input += chunk; });
process.stdin.on("end", () => {
  const cases = JSON.parse(input, (key, value) => (value === "__INF__" ? Infinity : value));
  const out = cases.map((c) => validate(c.geometry, c.width, c.height, { requireComplete: c.requireComplete }));
  process.stdout.write(JSON.stringify(out));
});
