// What the training pages say about a run while it goes (its API record's "status" and "live" fields:
// training/runs.py live_stats), and the polling that keeps them fresh. Pure functions are tested in
// tests/js/training_charts.test.mjs.

export const ACTIVE = new Set(["queued", "running"]);
export const POLL_MS = 2000;

/** "45 s", "3 min 05 s", "2 h 07 min"; "" for a missing value. */
export function formatDuration(seconds) {
  if (!Number.isFinite(seconds) || seconds < 0) return "";
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")} min`;
}

/** The run's progress in words: epochs, per cent, ETA (while running), images/s, time taken (when done). */
export function describeLive(run) {
  const live = run.live || {};
  const parts = [];
  if (live.epochs) parts.push(`epoch ${live.epochs_done} of ${live.epochs} done`);
  if (run.status === "running" && Number.isFinite(live.fraction)) parts.push(`${Math.floor(live.fraction * 100)} %`);
  if (run.status === "running" && Number.isFinite(live.eta_seconds)) parts.push(`about ${formatDuration(live.eta_seconds)} left`);
  if (Number.isFinite(live.images_per_second)) parts.push(`${live.images_per_second.toFixed(1)} images/s`);
  if (!ACTIVE.has(run.status) && Number.isFinite(live.elapsed_seconds)) parts.push(`took ${formatDuration(live.elapsed_seconds)}`);
  if (run.status === "queued") parts.push("waiting for a training worker");
  return parts.join(" · ");
}

/** Call ``load()`` now and every POLL_MS while ``keepGoing(data)`` is true; ``show(data)`` each answer.
 * Returns ``{again()}`` to poll at once (and keep polling), e.g. after starting a run. A failed request
 * (null data) is retried. One request at a time. */
export function poller(load, show, keepGoing) {
  let timer = null, running = false, wanted = false;
  async function tick() {
    clearTimeout(timer);
    timer = null;
    running = true;
    wanted = false;
    let data = null;
    try {
      data = await load();
    } catch {
      data = null;
    }
    running = false;
    if (data !== null) show(data);
    if (wanted) tick();
    else if (data === null || keepGoing(data)) timer = setTimeout(tick, POLL_MS);
  }
  tick();
  return { again: () => { if (running) wanted = true; else tick(); } };
}
