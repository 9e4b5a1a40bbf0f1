// Keyboard shortcuts: one table drives both the key handling and the "?" help overlay, so the help is
// never out of date. `Mod` is Ctrl (Cmd on a Mac).

export const SHORTCUTS = [
  { group: "Tools", keys: ["N"], action: "tool-nail", help: "Draw a nail: click its outline; click the first point or press Enter to close" },
  { group: "Tools", keys: ["A"], action: "tool-landmarks", help: "Base & tip tool: click a nail's base (cuticle), then its tip (free edge); with a nail selected, for one nail, then back to the tool before" },
  { group: "Tools", keys: ["C"], action: "tool-click", help: "Click a nail: a click inside a nail proposes its outline, finger and base/tip (Enter accepts all three, Esc drops)" },
  { group: "Tools", keys: ["Mod+click"], action: null, help: "Click a nail in any tool; then click inside the proposal (more nail) or Shift+click / right-click outside it (not nail) to correct" },
  { group: "Tools", keys: ["Alt+click"], action: null, help: "While a nail is proposed: more nail anywhere, also outside the proposal (a part it missed); Option+click on a Mac" },
  { group: "Tools", keys: ["I"], action: "tool-ignore", help: "Draw an ignore region (hidden or unclear nails: no loss there)" },
  { group: "Tools", keys: ["V", "Esc"], action: "tool-select", help: "Select / edit tool (Esc also cancels drawing and deselects)" },
  { group: "Tools", keys: ["Enter"], action: "close", help: "Close the polygon being drawn; accept the proposed nail (a click proposal, else the selected proposed nail)" },
  { group: "Tools", keys: ["Backspace"], action: "drop-point", help: "While drawing: remove the last point (also right-click)", whileDrawing: true },

  { group: "Proposed nails", keys: ["click"], action: null, help: "Select a proposed nail: dotted, with ? and its confidence (a model draft's nail the model is unsure of)" },
  { group: "Proposed nails", keys: ["P", "Shift+P"], action: "next-proposed", help: "Select the next / previous proposed nail (the view follows it)" },
  { group: "Proposed nails", keys: ["Enter"], action: null, help: "Accept the selected proposed nail: it becomes a normal nail (Ctrl+Z takes it back out)" },
  { group: "Proposed nails", keys: ["Delete"], action: null, help: "Reject the selected proposed nail: it is gone from the next save, and the next one is selected" },

  { group: "Finger & landmarks", keys: ["L", "R"], action: "hand", help: "Choose the hand (it stays chosen), then…" },
  { group: "Finger & landmarks", keys: ["1", "2", "3", "4", "5"], action: "digit", help: "…set the finger of the selected nail: thumb, index, middle, ring, little" },
  { group: "Finger & landmarks", keys: ["0"], action: "clear-finger", help: "Clear the selected nail's finger" },
  { group: "Finger & landmarks", keys: ["B", "T"], action: "landmark", help: "Put the base / tip of the pointed (or selected) nail at the mouse" },
  { group: "Finger & landmarks", keys: ["Shift+T"], action: "aim", help: "Aim the pointed (or selected) nail's arrow at the mouse: the tip where the nail's axis through its middle towards the mouse leaves it, the base at the other end (both in one key)" },
  { group: "Finger & landmarks", keys: ["Shift+drag"], action: null, help: "Drag from a nail's base to its tip: its arrow, both ends in one stroke (on the outline; any tool, while not drawing an outline)" },
  { group: "Finger & landmarks", keys: ["X"], action: "swap", help: "Swap base and tip (arrow pointing the wrong way)" },
  { group: "Finger & landmarks", keys: ["G"], action: "accept-suggestion", help: "Accept the selected nail's suggested finger and base/tip (shown dashed)" },
  { group: "Finger & landmarks", keys: ["Shift+G"], action: "accept-all-suggestions", help: "Accept the suggestions of every nail of the image" },

  { group: "Edit", keys: ["Mod+Z"], action: "undo", help: "Undo (every edit, including drags)" },
  { group: "Edit", keys: ["Mod+Shift+Z", "Mod+Y"], action: "redo", help: "Redo" },
  { group: "Edit", keys: ["Delete", "Backspace"], action: "delete", help: "Delete the selected vertex, else the selected nail or region" },
  { group: "Edit", keys: ["Alt+click", "right-click"], action: null, help: "Delete a vertex (while no nail is proposed); click an edge of the selected nail to add one" },
  { group: "Edit", keys: ["Tab", "Shift+Tab"], action: "next", help: "Select the next / previous nail" },
  { group: "Edit", keys: ["←↑→↓"], action: "nudge", help: "Move the selected vertex or nail by 1 px (Shift: 10 px)" },

  { group: "View", keys: ["wheel"], action: null, help: "Zoom at the mouse" },
  { group: "View", keys: ["Space+drag", "middle-drag"], action: null, help: "Pan (or drag on empty image)" },
  { group: "View", keys: ["F"], action: "fit", help: "Fit the image to the screen" },
  { group: "View", keys: ["Z"], action: "zoom-selection", help: "Zoom to the selected nail" },
  { group: "View", keys: ["+", "-"], action: "zoom", help: "Zoom in / out" },
  { group: "View", keys: ["[", "]"], action: "brightness", help: "Darker / brighter (Shift: less / more contrast)" },
  { group: "View", keys: ["\\"], action: "reset-adjust", help: "Reset brightness and contrast" },
  { group: "View", keys: ["O"], action: "overlay", help: "Overlay of what the model learns: none, mask, classes, direction field" },
  { group: "View", keys: ["H"], action: "hide", help: "Hide / show the labels" },

  { group: "Save", keys: ["Mod+S"], action: "save", help: "Save a draft now (autosave runs a few seconds after each edit)" },
  { group: "Save", keys: ["Mod+Enter"], action: "submit", help: "Submit for review (needs a finger, base and tip on every nail)" },
  { group: "Save", keys: ["?"], action: "help", help: "Show / hide this help" },
];

const ARROWS = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };

function isTyping(target) {
  if (!target) return false;
  const tag = target.tagName;
  return target.isContentEditable || tag === "TEXTAREA" || tag === "SELECT" ||
    (tag === "INPUT" && !["checkbox", "radio", "range", "button", "submit"].includes(target.type));
}

/**
 * The action of a keydown event: {action, arg} or null. Pure apart from reading the event, so the key
 * handling is the same for every page that uses it.
 */
export function actionFor(event, { drawing = false } = {}) {
  if (isTyping(event.target) && event.key !== "Escape") return null;
  const mod = event.ctrlKey || event.metaKey;
  const key = event.key;
  const lower = key.length === 1 ? key.toLowerCase() : key;
  if (mod) {
    if (lower === "z") return { action: event.shiftKey ? "redo" : "undo" };
    if (lower === "y") return { action: "redo" };
    if (lower === "s") return { action: "save" };
    if (key === "Enter") return { action: "submit" };
    return null;
  }
  if (event.altKey) return null;
  if (ARROWS[key]) {
    const [dx, dy] = ARROWS[key];
    const step = event.shiftKey ? 10 : 1;
    return { action: "nudge", arg: [dx * step, dy * step] };
  }
  switch (key) {
    case "Escape": return { action: "cancel" };
    case "Enter": return { action: "close" };
    case "Backspace": return { action: drawing ? "drop-point" : "delete" };
    case "Delete": return { action: "delete" };
    case "Tab": return { action: "next", arg: event.shiftKey ? -1 : 1 };
    case "?": return { action: "help" };
    case "+": case "=": return { action: "zoom", arg: 1.25 };
    case "-": case "_": return { action: "zoom", arg: 0.8 };
    case "[": return { action: "brightness", arg: -1 };
    case "]": return { action: "brightness", arg: 1 };
    case "{": return { action: "contrast", arg: -1 };
    case "}": return { action: "contrast", arg: 1 };
    case "\\": return { action: "reset-adjust" };
    case " ": return { action: "space" };
    default: break;
  }
  if (/^[0-5]$/.test(key)) return key === "0" ? { action: "clear-finger" } : { action: "digit", arg: Number(key) };
  const letters = {
    n: { action: "tool-nail" }, c: { action: "tool-click" }, a: { action: "tool-landmarks" }, i: { action: "tool-ignore" }, v: { action: "tool-select" },
    l: { action: "hand", arg: "L" }, r: { action: "hand", arg: "R" }, b: { action: "landmark", arg: "base" },
    t: { action: "landmark", arg: "tip" }, x: { action: "swap" }, f: { action: "fit" }, z: { action: "zoom-selection" },
    o: { action: "overlay" }, h: { action: "hide" },
  };
  if (lower === "g") return { action: event.shiftKey ? "accept-all-suggestions" : "accept-suggestion" };
  if (lower === "p") return { action: "next-proposed", arg: event.shiftKey ? -1 : 1 };
  if (lower === "t" && event.shiftKey) return { action: "aim" };
  if (event.shiftKey) return null;
  return letters[lower] || null;
}

/** The help overlay's content, built from SHORTCUTS. */
export function renderHelp(container, extra = "") {
  const groups = new Map();
  for (const s of SHORTCUTS) {
    if (!groups.has(s.group)) groups.set(s.group, []);
    groups.get(s.group).push(s);
  }
  container.replaceChildren();
  const grid = document.createElement("div");
  grid.className = "help-grid";
  for (const [group, list] of groups) {
    const section = document.createElement("section");
    const h = document.createElement("h3");
    h.textContent = group;
    section.appendChild(h);
    const table = document.createElement("table");
    for (const s of list) {
      const row = table.insertRow();
      const keys = row.insertCell();
      for (const k of s.keys) {
        const kbd = document.createElement("kbd");
        kbd.textContent = k.replace("Mod", navigator.platform.startsWith("Mac") ? "⌘" : "Ctrl");
        keys.appendChild(kbd);
      }
      row.insertCell().textContent = s.help;
    }
    section.appendChild(table);
    grid.appendChild(section);
  }
  container.appendChild(grid);
  if (extra) {
    const p = document.createElement("p");
    p.className = "help-extra";
    p.textContent = extra;
    container.appendChild(p);
  }
}
