"""The one way a JSON request body is read: bounded in size and depth, and every malformation a clear 400.

DRF's own JSONParser lets a deeply nested body escape as a RecursionError (500) and reads a body of any size.
``JSONParser`` here is the API's default parser (settings.REST_FRAMEWORK); ``parse_json`` is the plain
function behind it, for any view that reads JSON itself.
"""
from __future__ import annotations

import json

from django.conf import settings
from rest_framework import parsers, renderers
from rest_framework.exceptions import APIException, ParseError
from rest_framework.settings import api_settings


class MalformedJSON(ValueError):
    """A body that is not JSON we accept; the message says why."""


class RequestBodyTooLarge(APIException):
    status_code = 413
    default_detail = "request body too large"
    default_code = "request_too_large"


def _reject_constant(name):
    raise ValueError(f"{name} is not valid JSON")


def json_depth_exceeds(data, limit: int) -> bool:
    """Whether lists and objects nest deeper than ``limit`` levels (iterative: no recursion to exhaust)."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, (dict, list)):
            if depth > limit:
                return True
            children = value.values() if isinstance(value, dict) else value
            stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def parse_json(text: str | bytes, *, max_depth: int | None = None, strict: bool = True):
    """The value of a JSON document; MalformedJSON when it is not valid JSON, nests deeper than ``max_depth``
    (default NAILSET_JSON_MAX_DEPTH) or, with ``strict``, uses NaN or Infinity."""
    limit = settings.NAILSET_JSON_MAX_DEPTH if max_depth is None else max_depth
    try:
        data = json.loads(text, parse_constant=_reject_constant if strict else None)
    except RecursionError:
        raise MalformedJSON(f"JSON nested deeper than {limit} levels") from None
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError included
        raise MalformedJSON(f"JSON parse error - {exc}") from None
    if json_depth_exceeds(data, limit):
        raise MalformedJSON(f"JSON nested deeper than {limit} levels")
    return data


class JSONParser(parsers.BaseParser):
    """DRF parser: reads at most DATA_UPLOAD_MAX_MEMORY_SIZE bytes (413 beyond), then ``parse_json`` (400)."""

    media_type = "application/json"
    renderer_class = renderers.JSONRenderer

    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        encoding = parsers.get_encoding(parser_context)
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        too_large = RequestBodyTooLarge(f"request body larger than {limit} bytes")
        request = parser_context.get("request")
        if limit is not None and request is not None:
            try:
                declared = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                declared = 0
            if declared > limit:
                raise too_large  # refused before reading any of it
        raw = stream.read() if limit is None else stream.read(limit + 1)
        if limit is not None and len(raw) > limit:
            raise too_large
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError as exc:
            raise ParseError(f"JSON parse error - the body is not {encoding}: {exc}") from None
        try:
            return parse_json(text, strict=api_settings.STRICT_JSON)
        except MalformedJSON as exc:
            raise ParseError(str(exc)) from None
