// Talking to the REST API (session + CSRF), the autosave loop and the local safety copy.
//
// Autosave: a few seconds after the last edit the labels are PUT with the version they started from.
// One save at a time; edits made during a save are saved right after it. A stale version (409) stops the
// loop and asks the page what to do (reload theirs / keep mine as a new revision). Labels are sent as
// drawn: the server keeps a draft's shapes that break a rule apart, flagged (`invalid_shapes`), so no work
// waits on a fix; only a submission must be valid. A failed request is retried with backoff. Until the server has the
// labels, a copy lives in localStorage, offered back when the page is opened again: nothing is lost.

export function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  if (meta && meta.content) return meta.content;
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

/** fetch + JSON: {ok, status, data}; network failures give status 0. */
export async function request(method, url, body, { signal, keepalive = false } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET") headers["X-CSRFToken"] = csrfToken();
  let response;
  try {
    response = await fetch(url, {
      method, headers, credentials: "same-origin", signal, keepalive,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    return { ok: false, status: 0, data: { detail: `network error: ${error.message}` } };
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  return { ok: response.ok, status: response.status, data, response };
}

export class AnnotationClient {
  constructor(apiBase) {
    this.base = apiBase;  // "/api/images/<id>/"
  }

  load() {
    return request("GET", `${this.base}annotation/`);
  }

  save({ geometry, version, status = "draft", note = "" }, options) {
    return request("PUT", `${this.base}annotation/`, { geometry, version, status, note }, options);
  }

  async revisions() {
    const all = [];
    let url = `${this.base}revisions/?page_size=500`;
    while (url) {
      const r = await request("GET", url);
      if (!r.ok) return r;
      all.push(...r.data.results);
      url = r.data.next;
    }
    return { ok: true, status: 200, data: all };
  }

  review(decision, comment, version) {
    return request("POST", `${this.base}review/`, { decision, comment, version });
  }

  compare(a, b) {
    return request("GET", `${this.base}compare/?a=${a}${b === undefined ? "" : `&b=${b}`}`);
  }

  /** The rasterizer's overlay of some geometry: {ok, status, blob, info, data (errors on 400)}. */
  async rasters(geometry, kind, { maxSize = 1024, signal } = {}) {
    const response = await fetch(`${this.base}rasters/`, {
      method: "POST", credentials: "same-origin", signal,
      headers: { "Content-Type": "application/json", Accept: "image/png, application/json", "X-CSRFToken": csrfToken() },
      body: JSON.stringify({ geometry, kind, max_size: maxSize }),
    });
    if (!response.ok) {
      let data = null;
      try {
        data = await response.json();
      } catch {
        data = { detail: response.statusText };
      }
      return { ok: false, status: response.status, data };
    }
    let info = null;
    try {
      info = JSON.parse(response.headers.get("X-Raster-Info") || "null");
    } catch {
      info = null;
    }
    return { ok: true, status: 200, blob: await response.blob(), info };
  }
}

/** A copy of unsaved labels in this browser, per image. */
export class LocalBackup {
  constructor(imageId, username = "", storage = globalThis.localStorage) {
    this.key = `nailset:unsaved:${username}:${imageId}`;
    this.storage = storage;
  }

  read() {
    try {
      return JSON.parse(this.storage.getItem(this.key) || "null");
    } catch {
      return null;
    }
  }

  write(geometry, baseVersion) {
    try {
      this.storage.setItem(this.key, JSON.stringify({ geometry, baseVersion, savedAt: new Date().toISOString() }));
    } catch {
      /* storage full or disabled: the autosave still runs */
    }
  }

  clear() {
    try {
      this.storage.removeItem(this.key);
    } catch {
      /* ignore */
    }
  }
}

/**
 * States reported through onState({state, detail}): "saved", "dirty", "saving", "invalid" (refused with a
 * 400, or held back by `canSave`), "error" (will retry), "conflict" (waiting for the annotator), "forbidden"
 * (read-only).
 */
export class Autosaver {
  constructor({ client, getGeometry, key, canSave = () => true, delay = 2500, backup = null,
    onState = () => {}, onSaved = () => {}, onConflict = () => {}, onInvalid = () => {}, onForbidden = () => {} }) {
    Object.assign(this, { client, getGeometry, key, canSave, delay, backup, onState, onSaved, onConflict, onInvalid, onForbidden });
    this.version = 0;
    this.status = "unlabeled";
    this.savedKey = null;   // key of the geometry the server has
    this.timer = 0;
    this.running = null;    // the save in flight (a promise)
    this.again = false;
    this.retries = 0;
    this.paused = false;    // conflict or forbidden: nothing is sent until resolved
    this.state = "saved";
  }

  setState(state, detail = "") {
    this.state = state;
    this.onState({ state, detail });
  }

  /** The server's state (after loading, or after the annotator resolved a conflict by reloading). */
  setBase({ version, geometry, status }) {
    this.version = version;
    this.status = status;
    this.savedKey = this.key(geometry);
    this.paused = false;
    this.changed();
  }

  get dirty() {
    return this.key(this.getGeometry()) !== this.savedKey;
  }

  /** Call after every edit: schedules a save a few seconds later. */
  changed() {
    clearTimeout(this.timer);
    if (this.paused) return;
    if (!this.dirty) {
      if (this.backup) this.backup.clear();
      if (!this.running) this.setState("saved");
      return;
    }
    if (this.backup) this.backup.write(this.getGeometry(), this.version);
    if (!this.running) this.setState("dirty");
    this.timer = setTimeout(() => this.flush(), this.delay);
  }

  /** Save now if there is anything to save (waits for a save in flight first). */
  async flush() {
    clearTimeout(this.timer);
    if (this.running) {
      this.again = true;
      return this.running;
    }
    if (this.paused || !this.dirty) return null;
    const problem = this.canSave();
    if (problem !== true) {
      this.setState("invalid", problem);
      return null;
    }
    return this.run({ status: "draft" });
  }

  /** Save with an explicit status ("submitted") or note, even when nothing changed. */
  async save({ status = "draft", note = "" } = {}) {
    clearTimeout(this.timer);
    while (this.running) await this.running;
    return this.run({ status, note });
  }

  run(options) {
    this.running = this.send(options).finally(() => {
      this.running = null;
      if (this.again) {
        this.again = false;
        this.flush();
      }
    });
    return this.running;
  }

  async send({ status, note = "" }) {
    const geometry = this.getGeometry();
    const key = this.key(geometry);
    this.setState("saving");
    const result = await this.client.save({ geometry, version: this.version, status, note });
    if (result.ok) {
      this.retries = 0;
      this.version = result.data.version;
      this.status = result.data.status;
      this.savedKey = key;
      this.onSaved(result.data);
      if (this.dirty) this.changed();
      else {
        if (this.backup) this.backup.clear();
        this.setState("saved");
      }
      return result;
    }
    if (result.status === 409) {
      this.paused = true;
      this.setState("conflict", result.data.detail);
      this.onConflict(result.data.current, result.data);
    } else if (result.status === 400) {
      this.setState("invalid", result.data.detail || "the server refused the labels");
      this.onInvalid(result.data);
    } else if (result.status === 403) {
      this.paused = true;
      this.setState("forbidden", result.data && result.data.detail);
      this.onForbidden(result.data);
    } else {
      this.retries++;
      const wait = Math.min(30000, 2000 * 2 ** Math.min(this.retries - 1, 4));
      this.setState("error", `${(result.data && result.data.detail) || `HTTP ${result.status}`}; retrying in ${Math.round(wait / 1000)} s`);
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.flush(), wait);
    }
    return result;
  }

  /** After a conflict: keep these labels, saved over the current server version as a new revision. */
  async keepMine(currentVersion, note) {
    this.version = currentVersion;
    this.paused = false;
    return this.save({ status: "draft", note });
  }

  /** Best effort on page unload: send what is unsaved with keepalive. */
  saveOnUnload() {
    if (this.paused || !this.dirty || this.canSave() !== true) return false;
    this.client.save({ geometry: this.getGeometry(), version: this.version, status: "draft" }, { keepalive: true });
    return true;
  }
}
