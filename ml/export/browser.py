"""TF.js artifacts in headless Chromium (Playwright, Debian's /usr/bin/chromium): the parity harness
``static/nailset-export/tfjs_parity.js`` run against a TF.js artifact folder served from 127.0.0.1.

The platform's own page (``/models/<version>/exports/<id>/tfjs/``) runs the same harness through Django;
this module is the stand-alone path for export jobs and benchmarks: a throw-away static server on a free
loopback port serves ``tf.min.js`` (the pinned npm build that ``make tfjs`` puts in ``.tfjs/static/tfjs``,
never a CDN), the harness, the artifact and its ``parity-reference`` folder. Playwright runs in a thread
of its own, so callers that already hold a Playwright instance (tests) or an event loop are not disturbed.
"""
from __future__ import annotations

import functools
import importlib.util
import http.server
import os
import shutil
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .spec import PROJECT_ROOT, ExportError

CHROMIUM = os.environ.get("NAILSET_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]  # WebGL still runs (ANGLE on SwiftShader)
HARNESS_JS = Path(__file__).resolve().parent / "static" / "nailset-export" / "tfjs_parity.js"
TFJS_JS = PROJECT_ROOT / ".tfjs" / "static" / "tfjs" / "tf.min.js"
INDEX_HTML = """<!doctype html><html><head><meta charset="utf-8"><title>NailSet TF.js parity</title>
<script src="/tf.min.js"></script><script src="/tfjs_parity.js"></script></head><body>TF.js parity</body></html>"""


def chromium_unavailable() -> str | None:
    """Why the browser check cannot run here, or None when it can."""
    if importlib.util.find_spec("playwright") is None:
        return "Playwright is not installed"
    if not Path(CHROMIUM).exists():
        return f"no Chromium at {CHROMIUM}"
    if not TFJS_JS.exists():
        return f"no TF.js build at {TFJS_JS} (run `make tfjs`)"
    return None


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # quiet
        pass

    def end_headers(self):
        self.send_header("Cache-Control", "no-store")
        super().end_headers()


def _serve(root: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = functools.partial(_Handler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True, name="tfjs-parity-server").start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def _in_thread(func, *args, **kwargs):
    box: dict[str, Any] = {}

    def target():
        try:
            box["value"] = func(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target, name="tfjs-parity-browser")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


def run_in_page(page, base_url: str, model_url: str, reference_url: str, input_node: str,
                output_nodes: Mapping[str, str], backends: Sequence[str], repeats: int = 3,
                timeout_ms: int = 600_000) -> dict[str, Any]:
    """Run the harness in an open Playwright page that has loaded tf.min.js and the harness."""
    page.set_default_timeout(timeout_ms)
    return page.evaluate(
        "opts => window.nailsetTfjsParity(opts)",
        {"modelUrl": model_url, "referenceUrl": reference_url, "inputNode": input_node,
         "outputNodes": dict(output_nodes), "backends": list(backends), "repeats": repeats},
    )


def _run(artifact: Path, input_node: str, output_nodes: Mapping[str, str], backends: Sequence[str],
         repeats: int, browser=None) -> dict[str, Any]:
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="nailset-tfjs-serve-"))
    try:
        (root / "index.html").write_text(INDEX_HTML)
        shutil.copy(TFJS_JS, root / "tf.min.js")
        shutil.copy(HARNESS_JS, root / "tfjs_parity.js")
        os.symlink(artifact.resolve(), root / "model")
        server, base = _serve(root)
        try:
            if browser is not None:
                return _evaluate(browser, base, input_node, output_nodes, backends, repeats)
            from playwright.sync_api import sync_playwright

            with sync_playwright() as playwright:
                instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
                try:
                    return _evaluate(instance, base, input_node, output_nodes, backends, repeats)
                finally:
                    instance.close()
        finally:
            server.shutdown()
            server.server_close()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _evaluate(browser, base, input_node, output_nodes, backends, repeats):
    page = browser.new_page()
    try:
        page.goto(f"{base}/index.html")
        return run_in_page(page, base, f"{base}/model/model.json", f"{base}/model/parity-reference/", input_node,
                           output_nodes, backends, repeats)
    finally:
        page.close()


def run_tfjs_parity(artifact: str | Path, input_node: str, output_nodes: Mapping[str, str],
                    backends: Sequence[str] = ("cpu", "webgl"), photos=None, repeats: int = 3,
                    browser=None) -> dict[str, dict[str, Any]]:
    """The harness's runs ({"chromium-cpu": {...}, "chromium-webgl": {...}}) for a TF.js artifact folder
    (model.json + shards + parity-reference/). ``browser``: an open Playwright browser to use (else one is
    launched in a thread of its own)."""
    reason = chromium_unavailable()
    if reason:
        raise ExportError(f"cannot run TF.js in Chromium: {reason}")
    artifact = Path(artifact)
    if browser is not None:
        result = _run(artifact, input_node, output_nodes, backends, repeats, browser=browser)
    else:
        result = _in_thread(_run, artifact, input_node, output_nodes, backends, repeats)
    runs = result["runs"]
    for run in runs.values():
        run.setdefault("tfjs_version", result.get("tfjs_version"))
    return runs
