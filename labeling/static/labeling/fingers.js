// Finger classes (docs: 1-5 = left thumb..little, 6-10 = right thumb..little) and their colours.
// The palette is dataset/raster.py's PALETTE, so drawn labels and the rasterizer's class overlay match.

export const FINGER_NAMES = Object.freeze({
  1: "left thumb", 2: "left index", 3: "left middle", 4: "left ring", 5: "left little",
  6: "right thumb", 7: "right index", 8: "right middle", 9: "right ring", 10: "right little",
});

export const FINGER_SHORT = ["thumb", "index", "middle", "ring", "little"];

const PALETTE = {
  1: [230, 25, 75], 2: [245, 130, 48], 3: [255, 225, 25], 4: [240, 50, 230], 5: [170, 110, 40],
  6: [0, 130, 200], 7: [70, 240, 240], 8: [60, 180, 75], 9: [145, 30, 180], 10: [0, 0, 128],
};
const UNKNOWN = [200, 200, 200];

/** "L2" for 2 (left index), "R1" for 6, "?" for null. */
export function fingerCode(finger) {
  if (!isFinger(finger)) return "?";
  return (finger <= 5 ? "L" : "R") + (((finger - 1) % 5) + 1);
}

export function fingerName(finger) {
  return isFinger(finger) ? FINGER_NAMES[finger] : "no finger class";
}

export function isFinger(finger) {
  return Number.isInteger(finger) && finger >= 1 && finger <= 10;
}

/** The class of hand ("L" | "R") and finger number 1..5. */
export function fingerOf(hand, digit) {
  if (!(digit >= 1 && digit <= 5)) return null;
  return hand === "R" ? 5 + digit : hand === "L" ? digit : null;
}

export function fingerRGB(finger) {
  return isFinger(finger) ? PALETTE[finger] : UNKNOWN;
}

export function fingerColor(finger, alpha = 1) {
  const [r, g, b] = fingerRGB(finger);
  return alpha >= 1 ? `rgb(${r},${g},${b})` : `rgba(${r},${g},${b},${alpha})`;
}
