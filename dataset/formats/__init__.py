"""Format conversion core: exporters and importers (coco, cvat, labelme, masks, yolo), registered by name.

Plain Python (+ NumPy / OpenCV / Shapely); this package must never import Django.
The shared pieces live by concern: errors, registry (EXPORTERS / IMPORTERS), records, naming (names of pictures
inside an export), targets (folder / zip), labels (label map), repair (polygon repair, landmarks), files
(reading an import's folder), archives (safe unzip); each format is its own module.
See docs/formats.md for every format's layout and conventions.

    exporter = get_exporter("coco")               # .name, .ext, .export(records, target, meta) -> summary dict
    with ZipTarget("out.zip") as target:
        exporter.export(records, target, meta)    # records: any iterable of ExportRecord, consumed once

    dataset = get_importer("labelme").parse("labels.zip", label_map=None)   # ImportedDataset
"""
from .archives import safe_extract
from .errors import FormatError, NotThisFormat, UnsafeArchiveError
from .labels import (
    DEFAULT_LABEL_MAP, FINGER_LABELS, IGNORE_LABELS, UNKNOWN_LABEL, normalize_label, prepare_label_map, resolve_label,
)
from .naming import NAME_CHOICES, ExportNames
from .records import SPLITS, ExportRecord, ImportedDataset, ImportedImage
from .registry import EXPORTERS, IMPORTERS, Exporter, Importer, exporter, get_exporter, get_importer, importer
from .targets import ExportTarget, FolderTarget, ZipTarget, open_target
from . import coco, masks, yolo, labelme, cvat  # noqa: E402,F401  (register the formats; pages list them in this order)
from .masks import MasksReader, load_masks_sample, read_masks_manifest  # noqa: E402

__all__ = [
    "DEFAULT_LABEL_MAP", "EXPORTERS", "FINGER_LABELS", "IGNORE_LABELS", "IMPORTERS", "NAME_CHOICES", "SPLITS",
    "UNKNOWN_LABEL", "ExportNames", "ExportRecord", "ExportTarget", "Exporter", "FolderTarget", "FormatError", "ImportedDataset", "ImportedImage",
    "Importer", "MasksReader", "NotThisFormat", "UnsafeArchiveError", "ZipTarget", "exporter", "get_exporter", "get_importer",
    "importer", "load_masks_sample", "normalize_label", "open_target", "prepare_label_map", "read_masks_manifest",
    "resolve_label", "safe_extract",
]
