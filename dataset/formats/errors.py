"""The errors of format conversion: FormatError and its kinds (another format's file, an unsafe archive).

Plain Python; this package must never import Django.
"""


class FormatError(ValueError):
    """A conversion that cannot go ahead (unknown format, bad input file, bad record); the message says why."""


class NotThisFormat(FormatError):
    """A readable file of another kind (a JSON that is not COCO, an XML that is not CVAT): a folder import
    passes over it with a warning; named on its own, it is refused."""


class UnsafeArchiveError(FormatError):
    """A zip archive that would write outside its folder, holds links, or unpacks too big."""
