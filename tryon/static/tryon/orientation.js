// Which end of a nail's axis is the tip, from the photo: the JavaScript port of ml/postprocess.py's
// orient_from_image, used by the try-on page's post-processing (postprocess.js) for nails without a direction
// field (docs/rendering.md). Pure functions on typed arrays, no DOM; tested against Python in Node
// (tests/test_tryon_postprocess_js.py).
//
// Same steps and constants as Python's. Lab: the exact sRGB gamma and OpenCV's D65 / Lab constants (OpenCV's
// float path interpolates the gamma from a table: L, a, b up to ~0.3 apart); the Gaussian kernel, its size
// rule for float images (round(8 sigma + 1) | 1) and Sobel 3x3, both with BORDER_REFLECT_101, as OpenCV's;
// cv2.remap's bilinear sampling at the exact position (OpenCV 5 interpolates float32 sources exactly, float64
// ones, the edge profile's, at 1/32 px: < 1 % apart). Confidences within ~0.01 of Python's. One difference:
// for nails of >= 40 px the profile step is length / 40, so the 2nd sample sits exactly on the outline
// window's 0.05-length bound (the 10th and 32nd on the others); Python's float test takes or drops it by the
// last bit of the rounding, this takes it (exact arithmetic). Where Python drops it the confidence can differ
// by ~0.1 (the tip end stayed the same in the tests).

// ------------------------------------------------------------------------------------------------
// Orientation from the photo (no direction field): Python's orient_from_image
// ------------------------------------------------------------------------------------------------

const XN = 0.950456, ZN = 1.088754;  // D65 white, OpenCV's constants
const srgbLinear = (c) => (c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4);
const labF = (t) => (t > 0.008856 ? Math.cbrt(t) : 7.787 * t + 16 / 116);
const LINEAR_OF_BYTE = Float64Array.from({ length: 256 }, (_, v) => srgbLinear(v / 255));

/** OpenCV's borderInterpolate for BORDER_REFLECT_101 (gfedcb|abcdefgh|gfedcba). */
function reflect101(i, n) {
  if (n === 1) return 0;
  while (i < 0 || i >= n) i = i < 0 ? -i : 2 * n - 2 - i;
  return i;
}

/** Separable convolution of a w*h image with row kernel `kx` and column kernel `ky`, BORDER_REFLECT_101. */
function sepFilter(src, w, h, kx, ky) {
  const rx = (kx.length - 1) / 2, ry = (ky.length - 1) / 2;
  const tmp = new Float64Array(w * h), out = new Float64Array(w * h);
  const ix = new Int32Array(w + 2 * rx), iy = new Int32Array(h + 2 * ry);
  for (let i = 0; i < ix.length; i++) ix[i] = reflect101(i - rx, w);
  for (let i = 0; i < iy.length; i++) iy[i] = reflect101(i - ry, h);
  for (let y = 0; y < h; y++) {
    const row = y * w;
    for (let x = 0; x < w; x++) {
      let acc = 0;
      for (let k = 0; k < kx.length; k++) acc += kx[k] * src[row + ix[x + k]];
      tmp[row + x] = acc;
    }
  }
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let acc = 0;
      for (let k = 0; k < ky.length; k++) acc += ky[k] * tmp[iy[y + k] * w + x];
      out[y * w + x] = acc;
    }
  }
  return out;
}

/** cv2.getGaussianKernel(ksize, sigma) with cv2.GaussianBlur's size for float images (ksize (0, 0)). */
export function gaussianKernel(sigma) {
  const size = Math.round(sigma * 4 * 2 + 1) | 1, c = (size - 1) / 2, k = new Float64Array(size);
  let sum = 0;
  for (let i = 0; i < size; i++) { k[i] = Math.exp(-((i - c) ** 2) / (2 * sigma * sigma)); sum += k[i]; }
  for (let i = 0; i < size; i++) k[i] /= sum;
  return k;
}

/** cv2.remap(src, [mx], [my], INTER_LINEAR, BORDER_REPLICATE) at one point of a w*h*ch image (OpenCV 5's
 * float maps interpolate at the exact position, no 1/32 px table). */
function bilinear(src, w, h, ch, mx, my, out) {
  const x = Math.floor(mx), y = Math.floor(my), fx = mx - x, fy = my - y;
  const xa = Math.min(w - 1, Math.max(0, x)), xb = Math.min(w - 1, Math.max(0, x + 1));
  const ya = Math.min(h - 1, Math.max(0, y)), yb = Math.min(h - 1, Math.max(0, y + 1));
  for (let c = 0; c < ch; c++) {
    out[c] = (1 - fy) * ((1 - fx) * src[(ya * w + xa) * ch + c] + fx * src[(ya * w + xb) * ch + c])
      + fy * ((1 - fx) * src[(yb * w + xa) * ch + c] + fx * src[(yb * w + xb) * ch + c]);
  }
  return out;
}

function median(values) {
  const v = Float64Array.from(values).sort(), n = v.length, m = n >> 1;
  return n % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

/**
 * Which way along `axis` the tip lies, from the photo: {u, confidence} (Python's orient_from_image, the
 * same steps and constants). `image`: {data, width, height} of RGBA (ImageData) or RGB bytes; `mask`:
 * the nail's w*h crop at `offset` = [x, y]; `others`: optional Uint8Array (image size) of every nail,
 * excluded from the samples. confidence 0: no idea, `axis` returned unchanged.
 */
export function orientFromImage(image, mask, w, h, offset, centre, axis, others = null) {
  const { width, height, data } = image;
  const channels = data.length === 3 * width * height ? 3 : 4;
  const norm = Math.hypot(axis[0], axis[1]);
  axis = [axis[0] / norm, axis[1] / norm];
  const perp = [-axis[1], axis[0]];
  const none = { u: axis, confidence: 0 };
  let count = 0, tLo = Infinity, tHi = -Infinity, sLo = Infinity, sHi = -Infinity;
  for (let j = 0; j < h; j++) {
    for (let i = 0; i < w; i++) {
      if (!mask[j * w + i]) continue;
      const px = i + 0.5 + offset[0] - centre[0], py = j + 0.5 + offset[1] - centre[1];
      const t = px * axis[0] + py * axis[1], s = px * perp[0] + py * perp[1];
      count++;
      if (t < tLo) tLo = t;
      if (t > tHi) tHi = t;
      if (s < sLo) sLo = s;
      if (s > sHi) sHi = s;
    }
  }
  if (count < 6) return none;
  const length = Math.max(tHi - tLo, 2.0);
  const halfWidth = Math.max((sHi - sLo) / 2, 1.0), sMid = (sLo + sHi) / 2;

  const reach = 2.0 * length + 2 * halfWidth + 4;
  const x0 = Math.trunc(Math.max(0, centre[0] - reach)), x1 = Math.trunc(Math.min(width, centre[0] + reach + 1));
  const y0 = Math.trunc(Math.max(0, centre[1] - reach)), y1 = Math.trunc(Math.min(height, centre[1] + reach + 1));
  if (x1 - x0 < 3 || y1 - y0 < 3) return none;
  const pw = x1 - x0, ph = y1 - y0, pn = pw * ph;
  // CIE Lab of the patch as cv2.cvtColor(float32 RGB / 255, COLOR_RGB2Lab) (sRGB gamma, D65), L at half weight
  const lab = new Float64Array(3 * pn), light = new Float64Array(pn);
  for (let y = 0; y < ph; y++) {
    for (let x = 0; x < pw; x++) {
      const g = ((y0 + y) * width + x0 + x) * channels, p = y * pw + x;
      const R = LINEAR_OF_BYTE[data[g]], G = LINEAR_OF_BYTE[data[g + 1]], B = LINEAR_OF_BYTE[data[g + 2]];
      const X = (0.412453 * R + 0.357580 * G + 0.180423 * B) / XN;
      const Y = 0.212671 * R + 0.715160 * G + 0.072169 * B;
      const Z = (0.019334 * R + 0.119193 * G + 0.950227 * B) / ZN;
      const fx = labF(X), fy = labF(Y), fz = labF(Z);
      const L = 0.5 * (Y > 0.008856 ? 116 * fy - 16 : 903.3 * Y);
      lab[3 * p] = L; lab[3 * p + 1] = 500 * (fx - fy); lab[3 * p + 2] = 200 * (fy - fz);
      light[p] = L;
    }
  }
  // the finger's skin: beside the middle of the nail (the nail folds), other nails left out
  const mid = (tLo + tHi) / 2;
  const sideL = [], sideA = [], sideB = [];
  for (let y = 0; y < ph; y++) {
    for (let x = 0; x < pw; x++) {
      if (others && others[(y0 + y) * width + x0 + x]) continue;
      const qx = x0 + x + 0.5 - centre[0], qy = y0 + y + 0.5 - centre[1];
      const qt = qx * axis[0] + qy * axis[1], qs = Math.abs(qx * perp[0] + qy * perp[1] - sMid);
      if (Math.abs(qt - mid) <= 0.3 * length && qs >= 1.15 * halfWidth + 1 && qs <= 1.7 * halfWidth + 2) {
        const p = 3 * (y * pw + x);
        sideL.push(lab[p]); sideA.push(lab[p + 1]); sideB.push(lab[p + 2]);
      }
    }
  }
  if (sideL.length < 6) return none;
  const skin = [median(sideL), median(sideA), median(sideB)];
  // the lightness edge across the axis: Gaussian blur, Sobel 3x3 (BORDER_REFLECT_101), along the axis
  const blurred = (() => { const k = gaussianKernel(Math.max(0.8, halfWidth * 0.08)); return sepFilter(light, pw, ph, k, k); })();
  const sx = sepFilter(blurred, pw, ph, [-1, 0, 1], [1, 2, 1]), sy = sepFilter(blurred, pw, ph, [1, 2, 1], [-1, 0, 1]);
  const grad = new Float64Array(pn);
  for (let p = 0; p < pn; p++) grad[p] = (Math.abs(sx[p] * axis[0] + sy[p] * axis[1]) / 8.0) * 2.0;

  // profiles beyond each end along the axis, medians over a band of 5 lines around the centre line
  const step = Math.max(1.0, length / 40);
  const steps = Math.ceil((1.3 * length + step) / step);
  const offsets = [-0.5, -0.25, 0, 0.25, 0.5].map((f) => f * halfWidth);
  const scores = [], inside = [];
  const col = new Float64Array(3), edgeAt = new Float64Array(1);
  for (const [sign, end] of [[1, tHi], [-1, tLo]]) {
    const dist = new Float64Array(steps), edge = new Float64Array(steps), keep = new Uint8Array(steps);
    let kept = 0;
    const ds = new Float64Array(5), es = new Float64Array(5);
    for (let k = 0; k < steps; k++) {
      const d = k * step, t = end + sign * d;
      let valid = true;
      for (let j = 0; j < 5; j++) {
        const px = centre[0] + t * axis[0] + perp[0] * sMid + offsets[j] * perp[0];
        const py = centre[1] + t * axis[1] + perp[1] * sMid + offsets[j] * perp[1];
        const mx = Math.fround(px - x0 - 0.5), my = Math.fround(py - y0 - 0.5);
        if (!(mx >= 0 && mx <= pw - 1 && my >= 0 && my <= ph - 1)) valid = false;
        bilinear(lab, pw, ph, 3, mx, my, col);
        ds[j] = Math.hypot(col[0] - skin[0], col[1] - skin[1], col[2] - skin[2]);
        es[j] = bilinear(grad, pw, ph, 1, mx, my, edgeAt)[0];
      }
      keep[k] = valid ? 1 : 0;
      kept += keep[k];
      dist[k] = median(ds); edge[k] = median(es);
    }
    inside.push(kept / steps);
    if (kept < 4) { scores.push(null); continue; }
    // d = k * length / 40 (length >= 40 px) meets the bounds 0.05, 0.25 and 0.8 lengths exactly (k = 2, 10,
    // 32): taken as in exact arithmetic (inside), not by the last bit of the rounding (Python's float test).
    const eps = 1e-9 * length;
    let farSum = 0, farN = 0, keepSum = 0, outline = 0, anyNear = false;
    for (let k = 0; k < steps; k++) {
      if (!keep[k]) continue;
      const d = k * step;
      keepSum += dist[k];
      if (d >= 0.25 * length - eps) { farSum += dist[k]; farN++; }
      if (d >= 0.05 * length - eps && d <= 0.8 * length + eps) { outline = anyNear ? Math.max(outline, edge[k]) : edge[k]; anyNear = true; }
    }
    const colour = farN ? farSum / farN : keepSum / kept;
    scores.push(colour + 1.5 * outline);  // high: the finger stops here (tip)
  }
  const [sAhead, sBehind] = scores, [inAhead, inBehind] = inside;
  if (sAhead !== null && sBehind !== null && Math.min(inAhead, inBehind) > 0.5) {
    return { u: sAhead > sBehind ? axis : [-axis[0], -axis[1]], confidence: Math.abs(sAhead - sBehind) / (sAhead + sBehind + 4.0) };
  }
  if (Math.abs(inAhead - inBehind) >= 0.4) return { u: inAhead > inBehind ? axis : [-axis[0], -axis[1]], confidence: 0.2 };  // the base runs off the photo
  return none;
}
