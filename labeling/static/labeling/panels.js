// Side panels of the annotation page: the two-hands finger picker, the list of nails, the list of
// problems. Each is rebuilt from the scene after an edit (a few dozen elements), never on mouse moves.

import { FINGER_SHORT, fingerCode, fingerColor, fingerName, fingerRGB } from "./fingers.js";
import { COMPLETENESS_RULES } from "./geometry.js";

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value !== null && value !== undefined && value !== false) node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) if (child !== null && child !== undefined) node.append(child);
  return node;
}

export { el };

/**
 * Two hands seen from the back (as in the photos): left hand little..thumb from left to right, right hand
 * thumb..little. A click sets the finger of the selected nail; keyboard: L or R, then 1-5.
 */
export class HandsPanel {
  constructor(container, { onPick }) {
    this.buttons = new Map();
    const hand = (side, fingers) => el("div", { class: `hand hand-${side}`, role: "group", "aria-label": `${side} hand` },
      el("div", { class: "palm" }, el("span", {}, side === "left" ? "L" : "R")),
      fingers.map((finger) => {
        const digit = ((finger - 1) % 5) + 1;
        const [r, g, b] = fingerRGB(finger);
        const button = el("button", {
          type: "button", class: `finger finger-${digit}`, dataset: { finger: String(finger) },
          title: `${fingerName(finger)} (${side === "left" ? "L" : "R"} then ${digit})`, style: `--finger: rgb(${r},${g},${b})`,
          onclick: () => onPick(finger),
        }, el("b", {}, fingerCode(finger)), el("small", {}, FINGER_SHORT[digit - 1]));
        this.buttons.set(finger, button);
        return button;
      }));
    this.hands = { L: hand("left", [5, 4, 3, 2, 1]), R: hand("right", [6, 7, 8, 9, 10]) };
    this.hint = el("p", { class: "hands-hint" });
    container.replaceChildren(el("div", { class: "hands" }, this.hands.L, this.hands.R), this.hint);
  }

  update({ finger = null, used = new Map(), hand = null, enabled = true, ghost = null }) {
    // ghost: {finger, text} of the selected nail's suggestion (suggestions.js), drawn dashed until accepted (G)
    for (const [f, button] of this.buttons) {
      button.classList.toggle("current", f === finger && !(ghost && ghost.finger === f));
      button.classList.toggle("ghost", Boolean(ghost) && ghost.finger === f);
      button.classList.toggle("used", (used.get(f) || 0) > 0);
      button.classList.toggle("twice", (used.get(f) || 0) > 1);
      button.disabled = !enabled;
    }
    this.hands.L.classList.toggle("armed", hand === "L");
    this.hands.R.classList.toggle("armed", hand === "R");
    this.hint.textContent = !enabled ? "Select a nail to set its finger." :
      hand ? `${hand === "L" ? "Left" : "Right"} hand chosen: press 1-5.` : "Keyboard: L or R, then 1-5.";
    if (enabled && ghost) this.hint.textContent += ` ${ghost.text}: G accepts.`;
  }
}

export class NailList {
  constructor(container, { onSelect, onZoom }) {
    this.container = container;
    this.onSelect = onSelect;
    this.onZoom = onZoom;
  }

  update(geometry, selection, issues) {
    const rows = geometry.nails.map((nail, index) => {
      const list = issues.get(`nail:${index}`) || [];
      const errors = list.filter((i) => i.level === "error");
      const missing = list.filter((i) => i.level === "incomplete");
      const selected = selection && selection.kind === "nail" && selection.index === index;
      return el("li", {
        class: ["nail-row", selected ? "selected" : "", errors.length ? "invalid" : "", missing.length ? "incomplete" : ""].join(" "),
        dataset: { index: String(index), kind: "nail" }, tabindex: "-1",
        onclick: () => this.onSelect({ kind: "nail", index }), ondblclick: () => this.onZoom({ kind: "nail", index }),
      },
      el("span", { class: "swatch", style: `background:${fingerColor(nail.finger)}` }),
      el("b", {}, String(index + 1)),
      el("span", { class: "code" }, fingerCode(nail.finger)),
      el("span", { class: "name" }, nail.finger ? fingerName(nail.finger) : "no finger"),
      el("span", { class: nail.base && nail.tip ? "lm ok" : "lm" }, nail.base && nail.tip ? "↗ base/tip" : "no base/tip"),
      errors.length ? el("span", { class: "badge error", title: errors.map((e) => e.message).join("\n") }, "!") : null);
    });
    const ignore = geometry.ignore.map((_, index) => {
      const selected = selection && selection.kind === "ignore" && selection.index === index;
      const errors = (issues.get(`ignore:${index}`) || []).filter((i) => i.level === "error");
      return el("li", {
        class: ["nail-row", "ignore-row", selected ? "selected" : "", errors.length ? "invalid" : ""].join(" "),
        dataset: { index: String(index), kind: "ignore" },
        onclick: () => this.onSelect({ kind: "ignore", index }), ondblclick: () => this.onZoom({ kind: "ignore", index }),
      }, el("span", { class: "swatch hatched" }), el("b", {}, `I${index + 1}`), el("span", { class: "name" }, "ignore region"),
      errors.length ? el("span", { class: "badge error", title: errors.map((e) => e.message).join("\n") }, "!") : null);
    });
    const empty = !rows.length && !ignore.length ? [el("li", { class: "empty" }, "No nails yet: press N and click around a nail.")] : [];
    this.container.replaceChildren(...rows, ...ignore, ...empty);
  }
}

/** Errors (red: saved as drawn, flagged; submitting refused), missing finger/landmarks (amber: submitting
 * refused), warnings (grey). */
export class IssueList {
  constructor(container, { onSelect }) {
    this.container = container;
    this.onSelect = onSelect;
  }

  update(issueList) {
    const order = { error: 0, incomplete: 1, warning: 2 };
    const sorted = [...issueList].sort((a, b) => order[a.level] - order[b.level]);
    const items = sorted.map((issue) => {
      const target = issue.nail !== null && issue.nail !== undefined ? { kind: "nail", index: issue.nail }
        : issue.ignore !== null && issue.ignore !== undefined ? { kind: "ignore", index: issue.ignore } : null;
      return el("li", {
        class: `issue ${issue.level}`, dataset: { rule: issue.rule },
        onclick: target ? () => this.onSelect(target) : null,
      }, (issue.source === "server" ? "server: " : "") + issue.message);
    });
    if (!items.length) items.push(el("li", { class: "issue ok" }, "No problems: ready to submit."));
    this.container.replaceChildren(...items);
  }
}

/** Split validation results into the page's three levels (an issue per nail and rule). */
export function classifyIssues(report) {
  const issues = [];
  for (const e of report.errors) issues.push({ ...e, level: COMPLETENESS_RULES.has(e.rule) ? "incomplete" : "error" });
  for (const w of report.warnings) issues.push({ ...w, level: "warning" });
  return issues;
}

export function issuesByShape(issues) {
  const map = new Map();
  for (const issue of issues) {
    const key = issue.nail !== null && issue.nail !== undefined ? `nail:${issue.nail}`
      : issue.ignore !== null && issue.ignore !== undefined ? `ignore:${issue.ignore}` : null;
    if (!key) continue;
    if (!map.has(key)) map.set(key, []);
    map.get(key).push(issue);
  }
  return map;
}
