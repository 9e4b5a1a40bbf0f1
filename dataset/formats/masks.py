"""The "masks" export: what training reads (rasters of dataset.raster at each image's own size).

Layout (``<stem>`` = the image's file name without its extension)::

    manifest.json                       written last; per image entries with "field_vectors"
    <split>/images/<file_name>          the stored image, byte for byte
    <split>/classes/<stem>.png          8-bit grey: 0 background, 1..10 finger, 255 nail with unknown finger
    <split>/foreground/<stem>.png       8-bit grey: 0 background, 255 nail
    <split>/ignore/<stem>.png           8-bit grey: 0, 255 inside an ignore region
    <split>/instances/<stem>.png        8-bit grey (16-bit when the image has over 255 nails):
                                        0 background, k = the k-th nail of the image's geometry

The direction field is constant inside each nail (the unit vector from its base to
its tip), so it is stored exactly and compactly as the instance mask plus the
entry's ``field_vectors``: one float32 ``[x, y]`` per nail (``[0, 0]`` without
landmarks), ``field = field_vectors[instances - 1]`` inside nails, (0, 0) outside.
A dense float32 H x W x 2 array would be 2.4 MB per 640x480 image and 97 MB per
12-megapixel photo, nearly all zeros. ``load_masks_sample`` rebuilds the field and
the field mask (a pixel carries a field exactly when its vector is non-zero) and
returns foreground / ignore as 0/1: arrays equal to
``dataset.raster.rasterize(geometry, width, height)``.
"""
from __future__ import annotations

import io
import json
import os
import zipfile

import numpy as np

from dataset.geometry import confirmed_labels
from dataset.raster import BACKGROUND_CLASS, UNKNOWN_CLASS, rasterize

from .errors import FormatError
from .files import ImageFinder
from .labels import FINGER_LABELS
from .records import SPLITS, ImportCollector, ImportedImage, check_meta, check_unique_stem, positive_size, read_identity
from .registry import exporter, importer
from .repair import finish_geometry, finite_point, finite_points, make_nail
from .targets import JsonArraySpool

FORMAT = "nailset-masks"
FORMAT_VERSION = 1
PNG_COMPRESSION = 6  # zlib level of the mask PNGs (Pillow): ~3 ms per 640x480 mask, ~1 KB


def label_map() -> dict[str, str]:
    table = {str(BACKGROUND_CLASS): "background"}
    table.update({str(k): v for k, v in FINGER_LABELS.items()})
    table[str(UNKNOWN_CLASS)] = "unknown"
    return table


def _png(array: np.ndarray) -> bytes:
    """A grey PNG of a uint8 or uint16 array."""
    from PIL import Image
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buffer, "PNG", compress_level=PNG_COMPRESSION)
    return buffer.getvalue()


def field_vectors(rasters, nails: int) -> list[list[float]]:
    """The field vector of each nail (float32 values as floats; [0, 0] where it has no landmarks or no pixels)."""
    flat = rasters.instance.reshape(-1)
    inside = np.flatnonzero(flat)
    table = np.zeros((nails + 1, 2), np.float32)
    table[flat[inside]] = rasters.field.reshape(-1, 2)[inside]  # constant per nail: any pixel will do
    return table[1:].tolist()


def fields_from_instances(instances: np.ndarray, vectors) -> tuple[np.ndarray, np.ndarray]:
    """Dense float32 H x W x 2 field and uint8 field mask from an instance mask and per nail vectors."""
    table = np.zeros((len(vectors) + 1, 2), np.float32)
    if len(vectors):
        table[1:] = np.asarray(vectors, dtype=np.float32).reshape(-1, 2)
    if instances.size and int(instances.max()) >= len(table):
        raise FormatError(f"instance mask names nail {int(instances.max())}, the entry has {len(vectors)} field vectors")
    field = table[instances]
    return field, np.any(field != 0, axis=2).astype(np.uint8)


@exporter("masks", "zip", title="Masks")
def export_masks(records, target, meta) -> dict:
    """What training reads: class, foreground, ignore and instance PNGs per image; direction vectors and geometry in manifest.json."""
    check_meta(meta)
    entries = JsonArraySpool()
    seen: set[str] = set()
    stems: set[str] = set()
    summary = {"images": 0, "splits": dict.fromkeys(SPLITS, 0), "overlapping_pairs": 0}
    try:
        for record in records:
            stem, split = check_unique_stem(record, seen, stems), record.split
            rasters = rasterize(record.geometry, record.width, record.height)
            nails = record.geometry.get("nails") or []
            paths = {"image": f"{split}/images/{record.file_name}", "classes": f"{split}/classes/{stem}.png",
                     "foreground": f"{split}/foreground/{stem}.png", "ignore": f"{split}/ignore/{stem}.png",
                     "instances": f"{split}/instances/{stem}.png"}
            target.copy_file(paths["image"], record.source_path)
            target.write_bytes(paths["classes"], _png(rasters.classes))
            target.write_bytes(paths["foreground"], _png(rasters.foreground * np.uint8(255)))
            target.write_bytes(paths["ignore"], _png(rasters.ignore * np.uint8(255)))
            target.write_bytes(paths["instances"], _png(rasters.instance.astype(np.uint8 if len(nails) < 256 else np.uint16)))
            confirmed = [confirmed_labels(n) for n in nails]  # suggested fields are not training labels
            with_class = sum(1 for n in confirmed if n["finger"] is not None)
            with_landmarks = sum(1 for n in confirmed if n["base"] is not None and n["tip"] is not None)
            entries.append({"image_id": record.image_id, "split": split, **record.identity(),
                            "file_name": record.file_name, "sha256": record.sha256, **paths,
                            "width": record.width, "height": record.height,
                            "nails": len(nails), "nails_with_class": with_class, "nails_with_landmarks": with_landmarks,
                            "has_classes": with_class > 0, "has_landmarks": with_landmarks > 0,
                            "ignore_regions": len(record.geometry.get("ignore") or []),
                            "field_vectors": field_vectors(rasters, len(nails)),
                            "overlaps": [list(o) for o in rasters.overlaps],
                            "geometry": record.geometry})
            summary["overlapping_pairs"] += len(rasters.overlaps)
            del rasters
            summary["images"] += 1
            summary["splits"][split] += 1
        head = {
            "format": FORMAT, "format_version": FORMAT_VERSION, "snapshot": meta["snapshot"],
            "content_hash": meta["content_hash"], "created_at": meta["created_at"],
            "label_map": label_map(), "unknown_class": UNKNOWN_CLASS, "background_class": BACKGROUND_CLASS,
            "rasters": {
                "classes": "PNG uint8: 0 background, 1..10 finger class (1-5 left thumb..little, 6-10 right), "
                           f"{UNKNOWN_CLASS} nail with unknown finger (class losses ignore it)",
                "foreground": "PNG uint8: 0 background, 255 nail",
                "ignore": "PNG uint8: 255 inside an ignore region (losses skip these pixels), else 0",
                "instances": "PNG uint8 (uint16 over 255 nails): 0 background, k = the image's k-th nail "
                             "(after the overlap rule)",
                "field": "not stored densely: field = field_vectors[instances - 1] inside nails, (0, 0) outside; "
                         "field_vectors[k - 1] = float32 (x, y) unit vector from nail k's base to its tip in image "
                         "pixels (x right, y down), (0, 0) for a nail without landmarks",
                "field_mask": "not stored: a pixel carries a field exactly when its field vector is non-zero",
                "pixel_rule": "a pixel belongs to a polygon when its centre (col + 0.5, row + 0.5) is inside "
                              "(dataset.raster); overlapping nails: the smaller nail wins",
            },
            "splits": summary["splits"],
        }
        text = json.dumps(head, indent=1, ensure_ascii=False)
        with target.open("manifest.json", len(text) + entries.size()) as out:
            out.write(text[:-2].encode("utf-8") + b',\n "images": ')
            entries.write_to(out)
            out.write(b"\n}\n")
    finally:
        entries.close()
    return summary


# --------------------------------------------------------------------------- reading


class MasksReader:
    """Read a masks export from a folder, a zip path or an open ``zipfile.ZipFile``.

    With a zip, open one reader per worker process (a ZipFile is not shared safely).
    """

    def __init__(self, source):
        self._zip = None
        self._own_zip = False
        if isinstance(source, zipfile.ZipFile):
            self._zip = source
        else:
            path = os.fspath(source)
            if os.path.isdir(path):
                self.root = path
            elif os.path.isfile(path) and zipfile.is_zipfile(path):
                self._zip, self._own_zip = zipfile.ZipFile(path), True
            else:
                raise FormatError(f"{path} is neither a masks export folder nor a zip")
        self._manifest_data = None

    @property
    def manifest(self) -> dict:
        if self._manifest_data is None:
            self._manifest_data = self._manifest()
        return self._manifest_data

    @property
    def entries(self) -> list[dict]:
        return self.manifest["images"]

    def _read(self, name: str) -> bytes:
        parts = name.split("/")
        if not name or name.startswith("/") or "\\" in name or any(p in ("", ".", "..") for p in parts):
            raise FormatError(f"bad path in the manifest: {name!r}")
        try:
            if self._zip is not None:
                return self._zip.read(name)
            with open(os.path.join(self.root, *parts), "rb") as fh:
                return fh.read()
        except (KeyError, OSError) as exc:
            raise FormatError(f"{name} is missing from the masks export: {exc}") from None

    def _manifest(self) -> dict:
        try:
            manifest = json.loads(self._read("manifest.json"))
        except ValueError as exc:
            raise FormatError(f"manifest.json is not valid JSON: {exc}") from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise FormatError("manifest.json is not a NailSet masks manifest")
        if manifest.get("format_version") != FORMAT_VERSION:
            raise FormatError(f"masks format version {manifest.get('format_version')!r} is not supported "
                              f"(this reader knows {FORMAT_VERSION})")
        if not isinstance(manifest.get("images"), list):
            raise FormatError("manifest.json has no images list")
        return manifest

    def _png(self, name: str, shape, dtypes=(np.uint8,)) -> np.ndarray:
        import cv2
        array = cv2.imdecode(np.frombuffer(self._read(name), np.uint8), cv2.IMREAD_UNCHANGED)
        if array is None or array.shape != shape or array.dtype not in dtypes:
            raise FormatError(f"{name} is not a {shape[1]}x{shape[0]} grey PNG of {'/'.join(map(str, dtypes))}")
        return array

    def load(self, entry: dict, *, image: bool = True) -> dict:
        """{"image" (H x W x 3 uint8 RGB, unless image=False), "classes" (uint8), "foreground" (0/1),
        "field" (float32 H x W x 2), "field_mask" (0/1), "ignore" (0/1), "instances" (int32, 0 = background)}."""
        shape = (int(entry["height"]), int(entry["width"]))
        out = {"classes": self._png(entry["classes"], shape),
               "foreground": (self._png(entry["foreground"], shape) > 0).astype(np.uint8),
               "ignore": (self._png(entry["ignore"], shape) > 0).astype(np.uint8),
               "instances": self._png(entry["instances"], shape, (np.uint8, np.uint16)).astype(np.int32)}
        out["field"], out["field_mask"] = fields_from_instances(out["instances"], entry.get("field_vectors") or [])
        if image:
            out["image"] = self._image(entry["image"], shape)
        return out

    def _image(self, name: str, shape) -> np.ndarray:
        from PIL import Image, ImageOps
        with Image.open(io.BytesIO(self._read(name))) as img:
            if img.size != (shape[1], shape[0]):
                img = ImageOps.exif_transpose(img)
            if img.size != (shape[1], shape[0]):
                raise FormatError(f"{name} is {img.size[0]}x{img.size[1]}, the labels are for {shape[1]}x{shape[0]}")
            return np.asarray(img.convert("RGB"))

    def close(self) -> None:
        if self._own_zip and self._zip is not None:
            self._zip.close()
            self._zip = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def read_masks_manifest(source) -> dict:
    """The manifest of a masks export (folder, zip path or ZipFile); its ``"images"`` are the per image entries."""
    reader = MasksReader(source)
    try:
        return reader.manifest
    finally:
        reader.close()


def load_masks_sample(source, entry: dict, *, image: bool = True) -> dict:
    """The arrays of one manifest entry (see ``MasksReader.load``); for many samples from a zip, keep a MasksReader."""
    reader = MasksReader(source)
    try:
        return reader.load(entry, image=image)
    finally:
        reader.close()


# --------------------------------------------------------------------------- importing a masks export

def _manifest_geometry(raw, warn) -> tuple[list, list] | None:
    """Nails and ignore regions of a manifest entry's ``geometry`` (None: unusable)."""
    if not isinstance(raw, dict) or not isinstance(raw.get("nails", []), list) or not isinstance(raw.get("ignore", []), list):
        return None
    nails, ignore = [], []
    for number, nail in enumerate(raw.get("nails") or [], start=1):
        polygon = finite_points(nail.get("polygon")) if isinstance(nail, dict) else None
        if polygon is None:
            warn(f"nail {number}: the polygon is not a list of [x, y] numbers; skipped")
            continue
        finger = nail.get("finger")
        if finger is not None and (type(finger) is not int or finger not in FINGER_LABELS):
            warn(f"nail {number}: finger {finger!r} is not 1..10; finger left unknown")
            finger = None
        base, tip = (finite_point(nail.get(k)) if nail.get(k) is not None else None for k in ("base", "tip"))
        if (base is None) != (tip is None):
            warn(f"nail {number}: only one of base / tip is usable; both dropped")
            base = tip = None
        nails.append(make_nail(polygon, finger, base, tip, nail.get("id")))
    for number, region in enumerate(raw.get("ignore") or [], start=1):
        points = finite_points(region)
        if points is None:
            warn(f"ignore region {number} is not a list of [x, y] numbers; skipped")
            continue
        ignore.append(points)
    return nails, ignore


def _traced_geometry(reader: MasksReader, entry: dict, warn) -> tuple[list, list]:
    """Nails traced from the instance and class PNGs (exports made before the manifest held the geometry):
    outlines through boundary pixel centres, the finger each nail's pixels show, no landmarks."""
    from .coco import mask_to_polygons

    arrays = reader.load(entry, image=False)
    nails = []
    for k in range(1, int(arrays["instances"].max(initial=0)) + 1):
        inside = arrays["instances"] == k
        polygons = mask_to_polygons(inside.astype(np.uint8))
        if not polygons:
            continue
        values, counts = np.unique(arrays["classes"][inside], return_counts=True)
        finger = int(values[np.argmax(counts)])
        nails.append(make_nail(polygons[0], finger if 1 <= finger <= 10 else None))
    ignore = mask_to_polygons(arrays["ignore"])
    warn("the manifest holds no geometry: nails traced from the instance masks (outlines through pixel "
         "centres; landmarks are not recoverable)")
    return nails, ignore


@importer("masks", "json", patterns=("manifest.json",))
def import_masks(path: str, label_map: dict, *, repair: bool = True):
    """A NailSet masks export (its folder or manifest.json): geometry, participants and original names from the manifest."""
    root = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
    if not os.path.isfile(os.path.join(root, "manifest.json")):
        raise FormatError(f"no manifest.json in {os.path.basename(root) or root}: not a NailSet masks export")
    collect = ImportCollector()
    finder = ImageFinder(root)
    with MasksReader(root) as reader:
        for number, entry in enumerate(reader.entries, start=1):
            if not isinstance(entry, dict) or not isinstance(entry.get("file_name"), str) or not isinstance(entry.get("image"), str):
                collect.problem(f"manifest entry {number} has no file_name or image; skipped")
                continue
            image = ImportedImage(file_name=entry["file_name"], named_path=entry["image"], width=positive_size(entry.get("width")),
                                  height=positive_size(entry.get("height")), geometry={"nails": [], "ignore": []})
            warn = lambda message, image=image: collect.warn(message, image)  # noqa: E731
            problem = lambda message, image=image: collect.problem(message, image)  # noqa: E731
            image.image_path = finder.find(entry["image"], root)
            read_identity(image, entry, warn)
            if "geometry" in entry:
                parts = _manifest_geometry(entry["geometry"], problem)
                if parts is None:
                    problem("the entry's geometry is not a {nails, ignore} object; skipped")
                    continue
            else:
                try:
                    parts = _traced_geometry(reader, entry, warn)
                except (FormatError, KeyError, TypeError, ValueError) as exc:
                    problem(f"its masks cannot be read ({exc}); skipped")
                    continue
            image.geometry = finish_geometry(*parts, warn, repair)
            collect.add(image)
    return collect.finish()
