"""Security headers (annotation_site/security_headers.py, issue #13 row 12): a Content-Security-Policy that runs
scripts from this site only, Referrer-Policy, Permissions-Policy (the camera only where photos are taken) and
Cross-Origin-Opener-Policy on every response; and, in Chromium, every main page working under that policy:
no ``securitypolicyviolation`` event, no CSP error in the console, and the page's own script ran."""
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpResponse
from django.test import RequestFactory, override_settings
from playwright.sync_api import expect

from annotation_site.security_headers import SecurityHeadersMiddleware, parse_extra_sources
from ml.train_presets import DEFAULT_TRAIN_PRESET
from tests.browser import login, watched_page
from tests.conftest import jpeg_bytes, make_user
from tests.site_support import populate_site
from tests.test_tryon_browser import tfjs_model  # noqa: F401  (fixture: a real TF.js export, made active)

ROOT = Path(settings.BASE_DIR)


def policy(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    return {part.split()[0]: part.split()[1:] for part in header.split(";") if part.strip()}


def assert_security_headers(response, camera: str = "()"):
    csp = policy(response)
    assert csp["default-src"] == ["'self'"]
    assert csp["script-src"] == ["'self'"]  # no 'unsafe-inline', no 'unsafe-eval'
    assert csp["object-src"] == ["'none'"] and csp["frame-ancestors"] == ["'none'"]
    assert csp["base-uri"] == ["'self'"] and csp["form-action"] == ["'self'"] and csp["connect-src"] == ["'self'"]
    assert csp["img-src"] == ["'self'", "data:", "blob:"] and csp["worker-src"] == ["'self'", "blob:"]
    assert "'unsafe-eval'" not in response["Content-Security-Policy"]
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    features = dict(item.strip().split("=", 1) for item in response["Permissions-Policy"].split(","))
    assert features["camera"] == camera
    for feature in ("microphone", "geolocation", "payment", "usb", "serial", "hid", "display-capture"):
        assert features[feature] == "()", feature


# ---------------------------------------------------------------------------------------------------
# The headers
# ---------------------------------------------------------------------------------------------------


def test_pages_carry_the_security_headers(client, users, participant):
    login_page = client.get("/accounts/login/")
    assert login_page.status_code == 200
    assert_security_headers(login_page)
    client.force_login(users["admin"])
    home = client.get("/")
    assert home.status_code == 200
    assert_security_headers(home)
    assert_security_headers(client.get("/healthz"))  # 200 or 503: every response


def test_the_camera_is_allowed_only_where_photos_are_taken(client, users, participant):
    page = client.get(participant.upload_path)
    assert page.status_code == 200
    assert_security_headers(page, camera="(self)")
    assert_security_headers(client.get("/u/not-a-token/"), camera="(self)")  # the problem page of a bad link too
    client.force_login(users["annotator"])
    assert_security_headers(client.get("/tryon/"), camera="(self)")  # the webcam
    assert_security_headers(client.get("/annotate/"), camera="()")


def test_api_responses_carry_the_security_headers(client_for):
    answered = client_for("annotator").get("/api/images/")
    assert answered.status_code == 200 and answered["Content-Type"] == "application/json"
    assert_security_headers(answered)
    refused = client_for(None).get("/api/images/")
    assert refused.status_code == 401
    assert_security_headers(refused)


def test_api_docs_have_no_inline_script_and_the_headers(client):
    page = client.get("/api/docs/")
    assert page.status_code == 200
    assert_security_headers(page)
    html = page.content.decode()
    inline = [tag for tag in re.findall(r"<script\b[^>]*>", html) if "src=" not in tag]
    assert inline == [], inline
    script_url = re.search(r'<script src="([^"]*\?[^"]*script=[^"]*)"', html).group(1).replace("&amp;", "&")
    script = client.get(script_url)
    assert script.status_code == 200 and script["Content-Type"].startswith("application/javascript")
    assert b"SwaggerUIBundle" in script.content


INLINE_SCRIPT = re.compile(r"<script\b(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.I)
INLINE_HANDLER = re.compile(r"<[a-z][^>]*\son[a-z]+\s*=|javascript:", re.I)


def project_templates() -> list[Path]:
    skip = {".venv", ".venv-export", "node_modules", ".git", "var"}
    return [p for p in ROOT.rglob("*.html") if not skip & set(p.relative_to(ROOT).parts)]


def test_no_template_holds_inline_script_or_event_handlers():
    """The CSP blocks them: code goes in <app>/static/<app>/*.js, data in data-* or json_script."""
    templates = project_templates()
    assert len(templates) > 20
    offending = [f"{path.relative_to(ROOT)}: {match.group(0)[:80]}" for path in templates
                 for pattern in (INLINE_SCRIPT, INLINE_HANDLER) for match in pattern.finditer(path.read_text())]
    assert offending == [], offending
    # the patterns do catch what they must
    assert INLINE_SCRIPT.search('<script>\nrun()</script>') and INLINE_HANDLER.search('<input onchange="x()">')
    assert not INLINE_SCRIPT.search('<script type="module" src="/static/a.js">')


def header_for(extra: str) -> str:
    with override_settings(NAILSET_CSP_EXTRA=extra):
        middleware = SecurityHeadersMiddleware(lambda request: HttpResponse("ok"))
    return middleware(RequestFactory().get("/"))["Content-Security-Policy"]


def test_extra_sources_from_the_environment_extend_the_policy():
    header = header_for("img-src https://cdn.example; connect-src https://errors.example wss://live.example")
    csp = {part.split()[0]: part.split()[1:] for part in header.split("; ")}
    assert csp["img-src"] == ["'self'", "data:", "blob:", "https://cdn.example"]
    assert csp["connect-src"] == ["'self'", "https://errors.example", "wss://live.example"]
    assert csp["script-src"] == ["'self'"]
    assert "example" not in header_for("")


@pytest.mark.parametrize("extra, problem", [
    ("script-src 'unsafe-inline'", "script-src may not allow 'unsafe-inline'"),
    ("script-src https://cdn.example 'unsafe-eval'", "script-src may not allow 'unsafe-eval'"),
    ("img-scr https://cdn.example", "unknown directive 'img-scr'"),
    ("img-src", "directive 'img-src' has no source"),
])
def test_extra_sources_that_would_weaken_or_break_the_policy_are_refused(extra, problem):
    with pytest.raises(ImproperlyConfigured, match=re.escape(problem)):
        parse_extra_sources(extra)


# ---------------------------------------------------------------------------------------------------
# In Chromium: every main page under the policy
# ---------------------------------------------------------------------------------------------------

LISTEN = """() => {
  document.addEventListener("securitypolicyviolation", (e) => window.__nailsetCspViolation(
    `${e.effectiveDirective} blocked ${e.blockedURI || "inline"} on ${e.documentURI} (${e.sourceFile}:${e.lineNumber})`));
}"""


# The one report a page may cause: TF.js bundles Long.js, which probes for WebAssembly by compiling a tiny module
# inside try/catch and falls back to plain JavaScript when that is refused. Nothing needs WebAssembly, so the
# policy keeps 'wasm-unsafe-eval' out; the refused probe is reported, and TF.js works (see the TF.js test).
LONG_JS_WASM_PROBE = re.compile(r"^script-src blocked wasm-eval on \S+ \(\S+/static/tfjs/tf\.min\.js:\d+\)$")


class PolicyWatch:
    """A page whose CSP violations (the DOM event) and CSP / Permissions-Policy console errors are recorded."""

    def __init__(self, browser, base_url: str, username: str | None = None):
        self.page, self.errors, _ = watched_page(browser, viewport={"width": 1200, "height": 900})
        self.violations: list[str] = []
        self.wasm_probes: list[str] = []
        self.console: list[str] = []
        self.page.expose_function("__nailsetCspViolation", self._violation)
        self.page.add_init_script(f"({LISTEN})()")
        self.page.on("console", self._console)
        self.base_url = base_url
        if username:
            login(self.page, base_url, username, f"{username}-password-123")

    def _violation(self, report: str):
        (self.wasm_probes if LONG_JS_WASM_PROBE.match(report) else self.violations).append(report)

    def _console(self, message):
        text = message.text
        if re.search(r"Content.Security.Policy|Permissions.Policy|Refused to", text, re.I):
            self.console.append(f"{message.type}: {text}")

    def open(self, path: str):
        response = self.page.goto(f"{self.base_url}{path}")
        assert response.status == 200, (path, response.status)
        assert "script-src 'self'" in response.headers["content-security-policy"]
        return self.page

    def assert_clean(self):
        self.page.wait_for_timeout(300)  # late reports of the last page
        assert self.violations == [], self.violations
        assert self.console == [], self.console
        assert self.errors == [], self.errors


@pytest.fixture
def site(db, participant, make_image):
    """Every page has something to show (tests/site_support.py); the model has a TF.js artifact (without files)."""
    from training.models import ModelArtifact

    site = populate_site("csp", make_image)
    site["artifact"] = ModelArtifact.objects.create(model_version=site["version"], format="tfjs", parity={"goal": 1e-3}, metadata={})
    return {**site, "participant": participant}


@pytest.mark.django_db(transaction=True)
def test_every_main_page_runs_under_the_policy_in_chromium(browser, live_server, site):
    url = live_server.url

    # Anonymous: the login page, the API docs (Swagger UI draws the schema), the participant's page.
    anonymous = PolicyWatch(browser, url)
    anonymous.open("/accounts/login/")
    anonymous.open("/api/docs/")
    expect(anonymous.page.locator(".swagger-ui .info .title")).to_contain_text("NailSet API", timeout=30_000)
    anonymous.open(site["participant"].upload_path)
    expect(anonymous.page.locator("#uploader")).to_have_attribute("data-ready", "1")
    anonymous.assert_clean()

    # The watch does see a blocked script (this test can fail): code added to a page is refused and reported.
    probe = PolicyWatch(browser, url)
    probe.open("/accounts/login/")
    probe.page.evaluate("""() => { const s = document.createElement("script"); s.textContent = "window.__ran = 1";
                                   document.body.append(s); }""")
    probe.page.wait_for_timeout(300)
    assert probe.page.evaluate("() => window.__ran") is None
    assert any(v.startswith("script-src") for v in probe.violations), probe.violations
    probe.page.context.close()

    # Annotator: queue, annotation tool, try-on.
    annotator = PolicyWatch(browser, url, "ann")
    annotator.open("/annotate/")
    annotator.open(f"/annotate/{site['to_annotate'].pk}/")
    expect(annotator.page.locator("#app")).to_have_attribute("data-ready", "1", timeout=15_000)
    annotator.open("/tryon/")
    annotator.page.click(".swatch[aria-label='Navy']")
    expect(annotator.page.locator("#color-value")).to_have_text("#1F2A44")
    annotator.assert_clean()

    # Reviewer: review list and page, pre-label pages.
    reviewer = PolicyWatch(browser, url, "rev")
    reviewer.open("/review/")
    reviewer.open(f"/review/{site['labelled'].pk}/")
    expect(reviewer.page.locator("#app")).to_have_attribute("data-ready", "1", timeout=15_000)
    reviewer.open("/prelabel/?state=all")
    reviewer.open("/prelabel/metrics/")
    page = reviewer.open(f"/prelabel/predictions/{site['prediction'].pk}/")
    expect(page.locator("#stack")).not_to_have_class(re.compile("pl-toggle"))
    page.uncheck("#toggle-overlay")
    expect(page.locator("#stack")).to_have_class(re.compile("pl-toggle"))  # prelabel/prediction.js, was onchange=
    reviewer.assert_clean()

    # Admin: home, dataset, training, model exports, the TF.js check page, the admin, the browsable API.
    admin = PolicyWatch(browser, url, "root")
    admin.open("/")
    page = admin.open("/dataset/")
    page.fill("#new-snapshot input[name=name]", "csp-second")
    page.click("#new-snapshot button")
    expect(page.locator("#job-status")).to_contain_text(re.compile(r"job \d+ \w+: (queued|running|succeeded)"))
    page = admin.open("/training/")
    expect(page.locator(f'.preset-note[data-preset="{DEFAULT_TRAIN_PRESET}"]')).to_be_visible()  # the default
    page.select_option("#preset", "tiny")  # training/training.js shows the selected preset's note only
    expect(page.locator('.preset-note[data-preset="tiny"]')).to_be_visible()
    expect(page.locator(f'.preset-note[data-preset="{DEFAULT_TRAIN_PRESET}"]')).to_be_hidden()
    page.click("#start-training button")
    expect(page.locator("#start-status")).to_contain_text(re.compile(r"job \d+ queued on the training queue"))
    page.wait_for_timeout(1800)  # the page reloads itself after a start
    page = admin.open(f"/models/{site['version'].name}/exports/")
    page.select_option("#start-export select[name=format]", "onnx")
    page.click("#start-export button")
    expect(page.locator("#export-status")).to_have_text(re.compile(r"\S"))
    assert "403" not in page.locator("#export-status").inner_text()  # the CSRF token went with the request
    page = admin.open(f"/models/{site['version'].name}/exports/{site['artifact'].pk}/tfjs/")
    expect(page.locator("#tfjs-version")).to_have_text(re.compile(r"^TF\.js "))
    # the artifact has no files: the check runs and fails on them, and says so
    expect(page.locator("#status")).to_have_attribute("data-state", re.compile("failed|done"), timeout=30_000)
    admin.open("/admin/")
    page = admin.open("/admin/labeling/participant/")
    page.check("#action-toggle")  # Django's admin actions.js
    expect(page.locator("input.action-select").first).to_be_checked()
    admin.open(f"/admin/labeling/participant/{site['participant'].pk}/change/")
    admin.open("/admin/labeling/image/")
    admin.open("/api/")
    admin.open("/api/docs/")
    expect(admin.page.locator(".swagger-ui .info .title")).to_contain_text("NailSet API", timeout=30_000)
    # the errors of the TF.js check page are its missing files (404), not the policy
    admin.errors.clear()
    admin.assert_clean()
    for watch in (anonymous, annotator, reviewer, admin):
        watch.page.context.close()


@pytest.mark.django_db(transaction=True)
def test_tfjs_runs_in_the_browser_under_the_policy(browser, live_server, tmp_path, tfjs_model):
    """TF.js (cpu and webgl backends) needs no 'unsafe-eval' nor 'wasm-unsafe-eval': the TF.js check page and the
    try-on page run a real export to the end with no violation."""
    make_user("root", "admin", is_staff=True, is_superuser=True)
    make_user("painter", "annotator")
    artifact = tfjs_model.artifacts.get(format="tfjs")
    admin = PolicyWatch(browser, live_server.url, "root")
    page = admin.open(f"/models/{tfjs_model.name}/exports/{artifact.pk}/tfjs/")
    expect(page.locator("#status")).to_have_attribute("data-state", "done", timeout=180_000)
    expect(page.locator("tr[data-run='browser-cpu'] td.pass")).to_have_text("under the goal")
    admin.assert_clean()

    from tests.test_tryon import hand_picture

    photo = tmp_path / "hand.jpg"
    photo.write_bytes(jpeg_bytes(hand_picture(480, 360)))
    painter = PolicyWatch(browser, live_server.url, "painter")
    page = painter.open("/tryon/")
    expect(page.locator("#engine-note")).to_contain_text("runs in this browser")
    page.set_input_files("#photo", str(photo))
    expect(page.locator("#inbrowser")).to_have_attribute("data-state", "done", timeout=120_000)
    painter.assert_clean()
    for watch in (admin, painter):
        watch.page.context.close()

