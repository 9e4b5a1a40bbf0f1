// Connected components and OpenCV's chamfer distance transform on typed arrays: the pixel-set steps of the
// try-on page's post-processing (postprocess.js, the JavaScript port of ml/postprocess.py; docs/rendering.md).
// Pure functions, no DOM; tested against OpenCV in Node (tests/test_tryon_postprocess_js.py).
//
// Where the port differs from Python:
// * Connected components: Python calls OpenCV's block-based decision-tree labeling (Grana et al., CCL_GRANA
//   / CCL_BBDT); this is a two-pass union-find labeling with the same connectivity. Connected components
//   are unique, so the pixel sets are identical; only the numbering of the components may differ (Grana
//   numbers them in 2x2-block scan order, this in pixel scan order), which changes nothing but the order of
//   exact ties.
// * The nearest part (class split) and the gap between blobs (merge) use the same 5x5 chamfer distance
//   transform as OpenCV's (cv2.distanceTransform, DIST_L2, mask 5: 1, 1.4, 2.1969 in 16.16 fixed point).

// ------------------------------------------------------------------------------------------------
// Connected components
// ------------------------------------------------------------------------------------------------

/**
 * Connected components of a binary image (non-zero = object), 4- or 8-connectivity, two-pass union-find.
 * Returns {count, labels: Int32Array (0 background, 1..count in scan order of each component's first
 * pixel), x0, y0, x1, y1 (exclusive), area: Int32Array indexed by label}.
 */
export function connectedComponents(binary, width, height, connectivity = 8) {
  const labels = new Int32Array(width * height);
  const parent = new Int32Array(height * Math.ceil(width / 2) + 2);
  let next = 1;
  const find = (a) => {
    let root = a;
    while (parent[root] !== root) root = parent[root];
    while (parent[a] !== root) { const up = parent[a]; parent[a] = root; a = up; }
    return root;
  };
  const union = (a, b) => {
    const ra = find(a), rb = find(b);
    if (ra < rb) parent[rb] = ra; else if (rb < ra) parent[ra] = rb;
    return ra < rb ? ra : rb;
  };
  const eight = connectivity === 8;
  for (let y = 0; y < height; y++) {
    const row = y * width;
    for (let x = 0; x < width; x++) {
      const i = row + x;
      if (!binary[i]) continue;
      // Decision tree over the scanned neighbours: pixels adjacent to each other are already one component.
      const w = x > 0 ? labels[i - 1] : 0;
      let l = 0;
      if (y > 0) {
        const up = i - width;
        const n = labels[up];
        const nw = eight && x > 0 ? labels[up - 1] : 0, ne = eight && x + 1 < width ? labels[up + 1] : 0;
        if (n) l = w && !eight ? union(w, n) : n;               // 8: W touches N diagonally, already joined
        else if (w) l = ne ? union(w, ne) : w;                   // W and NW are one; NE is not adjacent to W
        else if (nw) l = ne ? union(nw, ne) : nw;
        else l = ne;
      } else {
        l = w;
      }
      if (!l) { l = next++; parent[l] = l; }
      labels[i] = l;
    }
  }
  const final = new Int32Array(next);
  let count = 0;
  for (let k = 1; k < next; k++) final[k] = parent[k] === k ? ++count : final[find(k)];
  const x0 = new Int32Array(count + 1).fill(width), y0 = new Int32Array(count + 1).fill(height);
  const x1 = new Int32Array(count + 1), y1 = new Int32Array(count + 1), area = new Int32Array(count + 1);
  for (let y = 0; y < height; y++) {
    for (let x = 0, i = y * width; x < width; x++, i++) {
      if (!labels[i]) continue;
      const l = (labels[i] = final[labels[i]]);
      if (x < x0[l]) x0[l] = x;
      if (x >= x1[l]) x1[l] = x + 1;
      if (y < y0[l]) y0[l] = y;
      y1[l] = y + 1;
      area[l]++;
    }
  }
  return { count, labels, x0, y0, x1, y1, area };
}

// ------------------------------------------------------------------------------------------------
// OpenCV's 5x5 chamfer distance transform (DIST_L2, mask 5), with or without nearest labels
// ------------------------------------------------------------------------------------------------

const HV_DIST = Math.round(1.0 * 65536);
const DIAG_DIST = Math.round(Math.fround(1.4) * 65536);
const LONG_DIST = Math.round(Math.fround(2.1969) * 65536);
const DIST_MAX = 4294967295 - LONG_DIST;
const SCALE = 1 / 65536;
// forward neighbours (dy, dx, cost) in OpenCV's order, then the backward ones
const FORWARD = [[-2, -1, LONG_DIST], [-2, 1, LONG_DIST], [-1, -2, LONG_DIST], [-1, -1, DIAG_DIST], [-1, 0, HV_DIST],
  [-1, 1, DIAG_DIST], [-1, 2, LONG_DIST], [0, -1, HV_DIST]];
const BACKWARD = [[2, 1, LONG_DIST], [2, -1, LONG_DIST], [1, 2, LONG_DIST], [1, 1, DIAG_DIST], [1, 0, HV_DIST],
  [1, -1, DIAG_DIST], [1, -2, LONG_DIST], [0, 1, HV_DIST]];

/**
 * Distance of every pixel to the nearest zero pixel of `src` (cv2.distanceTransform(src, DIST_L2, 5)),
 * Float32Array. With `labels` (Int32Array: the label of each zero pixel, 0 elsewhere) also propagates the
 * nearest zero pixel's label into every other pixel, in place (cv2.distanceTransformWithLabels).
 */
export function chamferDistance(src, width, height, labels = null) {
  const tmp = new Float64Array(width * height);
  const at = (y, x) => (y < 0 || y >= height || x < 0 || x >= width ? DIST_MAX : tmp[y * width + x]);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = y * width + x;
      if (!src[i]) { tmp[i] = 0; continue; }
      let t0 = labels ? DIST_MAX : Infinity, l0 = 0;
      for (const [dy, dx, cost] of FORWARD) {
        const t = at(y + dy, x + dx) + cost;
        if (t0 > t) { t0 = t; if (labels) l0 = labels[(y + dy) * width + x + dx]; }
      }
      tmp[i] = labels ? t0 : Math.min(t0, DIST_MAX);
      if (labels) labels[i] = l0;
    }
  }
  const dist = new Float32Array(width * height);
  for (let y = height - 1; y >= 0; y--) {
    for (let x = width - 1; x >= 0; x--) {
      const i = y * width + x;
      let t0 = tmp[i], l0 = labels ? labels[i] : 0;
      if (t0 > HV_DIST) {
        for (const [dy, dx, cost] of BACKWARD) {
          const t = at(y + dy, x + dx) + cost;
          if (t0 > t) { t0 = t; if (labels) l0 = labels[(y + dy) * width + x + dx]; }
        }
        tmp[i] = t0;
        if (labels) labels[i] = l0;
      }
      dist[i] = t0 * SCALE;
    }
  }
  return dist;
}
