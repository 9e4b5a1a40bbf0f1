"""Security headers on every response: a Content-Security-Policy and a Permissions-Policy.

Referrer-Policy and Cross-Origin-Opener-Policy come from Django's SecurityMiddleware (settings
SECURE_REFERRER_POLICY and SECURE_CROSS_ORIGIN_OPENER_POLICY); this middleware adds what Django 5.2 lacks.

The policy allows scripts from this site only: no inline ``<script>``, no ``onclick=`` attributes, no
``eval``. Pages put their code in ``<app>/static/<app>/*.js`` and the data it needs in ``data-*`` attributes
or ``{{ value|json_script:"id" }}`` (a ``type="application/json"`` block is data, never executed).
TensorFlow.js (try-on, the TF.js check page) needs no exception, checked in Chromium by
tests/test_security_headers.py (it listens for ``securitypolicyviolation`` events on every page): its cpu and
webgl backends run without eval; its bundled regenerator-runtime would fall back to ``Function()`` unless the
page loads training/static/training/tfjs_globals.js first; and its bundled Long.js only probes for WebAssembly in a
try/catch (that refused probe is the one report such a page makes) and works without it, so 'wasm-unsafe-eval'
stays out.

``NAILSET_CSP_EXTRA`` (environment) adds sources to directives, e.g. ``"img-src https://cdn.example;
connect-src https://sentry.example"``; ``'unsafe-inline'`` and ``'unsafe-eval'`` are refused for
script-src (so are ``*``, ``data:`` and ``blob:``), and an unknown directive stops the site at start-up with an
error naming it.
"""
from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

# The policy, one directive a line. style-src allows 'unsafe-inline': templates carry style="..." attributes
# and <style> blocks (Swagger UI and the Django admin too); styles cannot run code.
CONTENT_SECURITY_POLICY: dict[str, list[str]] = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'", "'unsafe-inline'"],
    "img-src": ["'self'", "data:", "blob:"],  # painted photos and masks are data: and blob: URLs
    "connect-src": ["'self'"],
    "worker-src": ["'self'", "blob:"],
    "object-src": ["'none'"],
    "base-uri": ["'self'"],
    "frame-ancestors": ["'none'"],
    "form-action": ["'self'"],
}
KNOWN_DIRECTIVES = set(CONTENT_SECURITY_POLICY) | {"font-src", "media-src", "frame-src", "manifest-src", "child-src",
                                                   "report-uri", "report-to"}
REFUSED_SCRIPT_SOURCES = {"'unsafe-inline'", "'unsafe-eval'", "*", "data:", "blob:"}

# Powerful browser features nobody here needs are denied everywhere; the camera is allowed, for this site
# only, on the pages that take photos: the participant's upload page (its picker opens the camera) and the
# try-on page (live webcam).
DENIED_FEATURES = ["accelerometer", "display-capture", "geolocation", "gyroscope", "hid",
                   "magnetometer", "microphone", "midi", "payment", "publickey-credentials-get", "serial", "usb",
                   "xr-spatial-tracking"]
CAMERA_PATH_PREFIXES = ("/u/", "/tryon/")


def parse_extra_sources(text: str) -> dict[str, list[str]]:
    """``"img-src https://a; connect-src https://b wss://c"`` -> ``{"img-src": [...], ...}``; raises
    ImproperlyConfigured naming the directive or source that is not allowed."""
    extra: dict[str, list[str]] = {}
    for part in text.split(";"):
        words = part.split()
        if not words:
            continue
        directive, sources = words[0].lower(), words[1:]
        if directive not in KNOWN_DIRECTIVES:
            raise ImproperlyConfigured(f"NAILSET_CSP_EXTRA: unknown directive {directive!r} "
                                       f"(known: {', '.join(sorted(KNOWN_DIRECTIVES))})")
        if not sources:
            raise ImproperlyConfigured(f"NAILSET_CSP_EXTRA: directive {directive!r} has no source")
        if directive == "script-src":
            refused = sorted({s.lower() for s in sources} & REFUSED_SCRIPT_SOURCES)
            if refused:
                raise ImproperlyConfigured(f"NAILSET_CSP_EXTRA: {directive} may not allow {', '.join(refused)}")
        extra.setdefault(directive, []).extend(sources)
    return extra


def build_policy(extra: dict[str, list[str]]) -> str:
    policy = {directive: list(sources) for directive, sources in CONTENT_SECURITY_POLICY.items()}
    for directive, sources in extra.items():
        current = policy.setdefault(directive, [])
        if current == ["'none'"]:
            current.clear()
        current.extend(s for s in sources if s not in current)
    return "; ".join(f"{directive} {' '.join(sources)}" for directive, sources in policy.items())


def permissions_policy(path: str) -> str:
    camera = "camera=(self)" if path.startswith(CAMERA_PATH_PREFIXES) else "camera=()"
    return ", ".join([camera] + [f"{feature}=()" for feature in DENIED_FEATURES])


class SecurityHeadersMiddleware:
    """Sets Content-Security-Policy and Permissions-Policy on every response that has none yet."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.content_security_policy = build_policy(parse_extra_sources(getattr(settings, "NAILSET_CSP_EXTRA", "")))

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", self.content_security_policy)
        response.headers.setdefault("Permissions-Policy", permissions_policy(request.path))
        return response
