import io
import threading
import time

import pytest
from django.contrib.auth.models import Group, User
from PIL import Image as PILImage
from rest_framework.test import APIClient

import tests.job_kinds_for_tests  # noqa: F401  (registers the test job kinds in this process too)
from labeling.intake import create_image
from labeling.models import Participant


@pytest.fixture(scope="session", autouse=True)
def test_media_root():
    """Tests (and their worker processes, see tests/worker.py) write media into a folder of their own,
    emptied at the start of each session, so nothing left by an earlier run can blur a test."""
    import shutil
    from pathlib import Path

    from django.conf import settings

    root = Path(settings.VAR_DIR) / "test-media"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    settings.MEDIA_ROOT = root
    yield root


def make_user(username: str, group: str | None = None, **extra) -> User:
    user = User.objects.create_user(username=username, password=f"{username}-password-123", **extra)
    if group:
        user.groups.add(Group.objects.get_or_create(name=group)[0])  # transactional tests flush migration rows
    return user


@pytest.fixture
def users(db):
    return {
        "admin": make_user("boss", "admin"),
        "annotator": make_user("ann", "annotator"),
        "annotator2": make_user("ann2", "annotator"),
        "reviewer": make_user("rev", "reviewer"),
        "nobody": make_user("nobody"),
    }


@pytest.fixture
def client_for(users):
    """``client_for("annotator")`` -> an APIClient authenticated as that role (token auth)."""
    from accounts.models import ApiToken

    def build(role: str | None) -> APIClient:
        client = APIClient()
        if role == "participant":
            raise ValueError("use participant_client")
        if role is not None:
            _, key = ApiToken.issue(users[role])
            client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        return client

    return build


@pytest.fixture
def participant(db):
    """A participant who has given consent (uploads need it)."""
    from django.conf import settings
    from django.utils import timezone

    return Participant.objects.create(code="P001", consent_at=timezone.now(), consent_version=settings.NAILSET_CONSENT_VERSION)


def synthetic_picture(width: int = 64, height: int = 48, color=(200, 120, 130)) -> PILImage.Image:
    picture = PILImage.new("RGB", (width, height), color)
    for x in range(0, width, 8):  # some structure so that pictures of the same size differ
        picture.putpixel((x, (x * 7) % height), (x % 256, 10, 200))
    return picture


def jpeg_bytes(picture: PILImage.Image, **save_args) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", **save_args)
    return buffer.getvalue()


@pytest.fixture
def token_client(participant):
    """An API client that authenticates as ``participant`` with their upload token."""
    client = APIClient()
    client.credentials(HTTP_X_UPLOAD_TOKEN=participant.upload_token)
    return client


def send_upload(client, data: bytes, name="hand.jpg"):
    """POST one file to /api/uploads/ as a participant's browser does."""
    upload = io.BytesIO(data)
    upload.name = name
    return client.post("/api/uploads/", {"file": upload}, format="multipart")


@pytest.fixture
def make_image(participant):
    counter = iter(range(1, 10_000))

    def build(width: int = 64, height: int = 48, owner: Participant | None = None):
        n = next(counter)
        image, _ = create_image(owner or participant, synthetic_picture(width, height, (n % 256, 100, 150)), "PNG")
        return image

    return build


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.1, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {message}")


@pytest.fixture(scope="session")
def browser():
    """Headless Chromium through Playwright, for the whole session (see tests/browser.py)."""
    import os
    from pathlib import Path

    from playwright.sync_api import sync_playwright

    from tests.browser import CHROMIUM, CHROMIUM_ARGS

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium package")
    # Playwright's sync API keeps an asyncio loop in this thread; the tests' own ORM calls are plain
    # synchronous code that Django would otherwise refuse to run beside it.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield instance
        instance.close()


class RequestsInFlight:
    """The live server's application, wrapped to count the requests it is handling."""

    def __init__(self, app):
        self.app = app
        self.count = 0
        self.last_finished = time.monotonic()
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        with self.lock:
            self.count += 1
        try:
            return self.app(environ, start_response)
        finally:
            with self.lock:
                self.count -= 1
                self.last_finished = time.monotonic()

    def quiet_for(self, seconds: float) -> bool:
        with self.lock:
            return self.count == 0 and time.monotonic() - self.last_finished >= seconds


@pytest.fixture(autouse=True)
def live_server_quiet_before_flush(request):
    """A live-server test ends with its pages closed and the server idle, before its database is flushed.

    A page left open can still save its labels (the autosave a few seconds after an edit, or the save sent as
    it closes) while the test database is flushed: on PostgreSQL the flush and that request's writes
    deadlock, the flush fails and the next test finds the rows left behind. Requesting the database and the
    server here makes this teardown run before theirs."""
    if "live_server" not in request.fixturenames:
        yield
        return
    request.getfixturevalue("transactional_db")
    httpd = request.getfixturevalue("live_server").thread.httpd
    if not isinstance(httpd.get_app(), RequestsInFlight):
        httpd.set_app(RequestsInFlight(httpd.get_app()))
    in_flight = httpd.get_app()
    yield
    if "browser" in request.fixturenames:
        for context in list(request.getfixturevalue("browser").contexts):
            context.close()
    wait_for(lambda: in_flight.quiet_for(0.5), timeout=30, message="the live server's requests to finish")


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """PBKDF2 costs ~0.3 s a user; tests create many users and check no password strength."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
