"""Upload size limits applied while a request body streams in, before it reaches the disk.

Django reads a multipart body through the upload handlers of ``settings.FILE_UPLOAD_HANDLERS``; this one
comes first and refuses a body:

* before reading any of it, when its Content-Length is over the largest accepted upload:
  ``NAILSET_MAX_VIDEO_BYTES`` plus ``MULTIPART_SLACK`` for the form's boundaries and fields (Django's WSGI
  request never reads past the Content-Length, so the body cannot be longer than it says);
* while it streams, as soon as one file is over the limit of its type, sniffed from its first bytes as
  intake does (``NAILSET_MAX_PHOTO_BYTES`` for photos, ``NAILSET_MAX_VIDEO_BYTES`` for videos and for
  anything else).

So a hostile body costs at most the limit plus a chunk (64 KiB), never its full size; what the handlers
after this one spooled (memory, or a temporary file) is closed, which deletes it. API views answer 413
with the reason (``UploadTooLarge`` is a DRF ``APIException``); Django's own views (admin forms) answer
400 (it is a ``RequestDataTooBig`` too).
"""
from __future__ import annotations

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.files.uploadhandler import FileUploadHandler
from rest_framework import status
from rest_framework.exceptions import APIException

from .intake import PHOTO_TYPES, RejectedFile, VIDEO_TYPES, human_size, size_limit, sniff_content_type, too_large_message

MULTIPART_SLACK = 1024 * 1024  # boundaries, part headers and the small form fields beside the file
SNIFF_BYTES = 64


class UploadTooLarge(RequestDataTooBig, APIException):
    """A request body over the upload limits: 413 from the API, 400 from Django's own views."""

    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "upload_too_large"


def largest_request_bytes() -> int:
    return settings.NAILSET_MAX_VIDEO_BYTES + MULTIPART_SLACK


class UploadLimitHandler(FileUploadHandler):
    """Counts the bytes of each file as they arrive and stops the body at the limit (see the module)."""

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        if content_length > largest_request_bytes():
            self._refuse(f"the upload is {human_size(content_length)}; the largest accepted is "
                         f"{human_size(settings.NAILSET_MAX_VIDEO_BYTES)} for a video and "
                         f"{human_size(settings.NAILSET_MAX_PHOTO_BYTES)} for a photo")
        return None  # the parsing itself is left to Django

    def new_file(self, *args, **kwargs):
        super().new_file(*args, **kwargs)
        self.head, self.limit, self.file_type = b"", None, None

    def receive_data_chunk(self, raw_data, start):
        if self.limit is None:
            self.head += raw_data[:SNIFF_BYTES - len(self.head)]
            if len(self.head) >= SNIFF_BYTES:
                try:
                    self.file_type = sniff_content_type(self.head)
                except RejectedFile:
                    self.file_type = None  # refused later with its reason; only the size matters here
                known = self.file_type in PHOTO_TYPES or self.file_type in VIDEO_TYPES
                self.limit = size_limit(self.file_type) if known else settings.NAILSET_MAX_VIDEO_BYTES
        limit = self.limit if self.limit is not None else settings.NAILSET_MAX_VIDEO_BYTES
        if start + len(raw_data) > limit:
            known = self.file_type in PHOTO_TYPES or self.file_type in VIDEO_TYPES
            self._refuse(too_large_message(self.file_type) if known else f"the file is larger than the {human_size(limit)} limit")
        return raw_data

    def file_complete(self, file_size):
        return None  # the next handler builds the file

    def _refuse(self, message: str):
        for handler in getattr(self.request, "upload_handlers", ()):  # what the others spooled goes now
            if handler is not self and getattr(handler, "file", None) is not None:
                handler.file.close()
        raise UploadTooLarge(message)
