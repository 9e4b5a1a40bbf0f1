// Undo / redo as a stack of immutable snapshots. Every edit replaces the present snapshot with a new one
// (states are never mutated, so unchanged nails are shared between snapshots and a step costs little).
// Pure, no DOM: tested with Node (tests/js/history.test.mjs).

export class History {
  constructor(initial, { limit = 1000 } = {}) {
    this.limit = limit;
    this.reset(initial);
  }

  /** Forget every step: `state` becomes the only one (after loading from the server). */
  reset(state) {
    this.past = [];    // [{state, label}]: label = the edit that led from `state` to the next one
    this.future = [];  // [{state, label}]: label = the edit that leads to `state`
    this.present = state;
  }

  /** A new step; the redo branch is dropped. */
  push(state, label = "edit") {
    this.past.push({ state: this.present, label });
    if (this.past.length > this.limit) this.past.splice(0, this.past.length - this.limit);
    this.present = state;
    this.future = [];
  }

  /** Change the present state without a step (e.g. which nail is selected). */
  replacePresent(state) {
    this.present = state;
  }

  get canUndo() {
    return this.past.length > 0;
  }

  get canRedo() {
    return this.future.length > 0;
  }

  get undoLabel() {
    return this.canUndo ? this.past[this.past.length - 1].label : null;
  }

  get redoLabel() {
    return this.canRedo ? this.future[this.future.length - 1].label : null;
  }

  /** Step back; returns {state, label} or null when there is nothing to undo. */
  undo() {
    if (!this.canUndo) return null;
    const { state, label } = this.past.pop();
    this.future.push({ state: this.present, label });
    this.present = state;
    return { state, label };
  }

  redo() {
    if (!this.canRedo) return null;
    const { state, label } = this.future.pop();
    this.past.push({ state: this.present, label });
    this.present = state;
    return { state, label };
  }
}
