""""CVAT for images 1.1" XML import (annotations.xml).

* ``<image name width height>`` -> one ImportedImage.
* ``<polygon label points="x1,y1;x2,y2;...">``: label -> nail with that finger class
  through the label map; an ignore label ("ignore", "crowd", ...) -> ignore region;
  other labels are reported as unknown. A polygon labelled with the unknown-finger
  label ("nail") takes its finger from an ``<attribute name="finger">`` child when
  that value is in the label map.
* ``<box label xtl ytl xbr ybr>``: a 4-vertex polygon (warning), same label rules.
* ``<points label="base"|"tip" points="x,y">`` (or ``<label>_base`` / ``<label>_tip``):
  landmarks, given to the nail polygon containing them (smallest if several; else the
  nearest within 4 px), preferring shapes of the same ``group_id``.
* ``<tag label="nailset">`` (NailSet's own export; CVAT keeps image tags and their attributes through a
  task): its ``participant``, ``original_name`` and ``frame_index`` attributes say whose image it is, as the
  ``nailset`` key of a LabelMe JSON does, so a round trip through CVAT needs no ``--participant``.
* polylines, masks, ellipses, cuboids, skeletons and video ``<track>`` elements are
  skipped; other image ``<tag>`` elements (no geometry) too, with a warning.

What is left out (a malformed or unsupported shape, an unknown label, a landmark that belongs to no
nail, an image without a name) is a problem (``ImportedDataset.problems``); a box taken as a polygon
is only a warning.

The XML is parsed as a stream with expat; DTDs and entity declarations are refused
(no entity expansion attacks, no external entities).
"""
from __future__ import annotations

import os
from xml.parsers import expat

from dataset.geometry import confirmed_geometry

from .errors import FormatError, NotThisFormat
from .files import ImageFinder, walk_files
from .labels import IGNORE, NAIL, landmark_of, resolve_label
from .records import ImportCollector, ImportedImage, read_identity
from .registry import importer
from .repair import PendingNail, assign_landmarks, finish_geometry, finite_point, nails_to_dicts

SHAPES = {"polygon", "points", "box", "polyline", "mask", "ellipse", "cuboid", "skeleton", "tag"}
IDENTITY_TAG = "nailset"   # the image tag whose attributes name the participant (see the module docstring)
IDENTITY_ATTRIBUTES = ("participant", "original_name", "frame_index")


class _Refused(Exception):
    pass


def parse_points(text) -> list[list[float]] | None:
    """CVAT "x1,y1;x2,y2;..." -> [[x, y], ...] (None if malformed)."""
    if not isinstance(text, str) or not text.strip():
        return None
    out = []
    for pair in text.strip().split(";"):
        point = finite_point(pair.split(",")) if pair.count(",") == 1 else None
        if point is None:
            return None
        out.append(point)
    return out


def _int(value) -> int | None:
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


class _CvatParser:
    def __init__(self, path: str, label_map: dict, collect: ImportCollector, finder: ImageFinder, repair: bool = True):
        self.path, self.label_map, self.collect, self.finder, self.repair = path, label_map, collect, finder, repair
        self.stack: list[str] = []
        self.image = None
        self.shape = None
        self.attribute = None
        self.warned_tracks = False
        self.seen_root = False

    # image state: nails, ignore, landmarks
    def start(self, tag: str, attrs: dict) -> None:
        parent = self.stack[-1] if self.stack else None
        self.stack.append(tag)
        if len(self.stack) == 1:
            if tag != "annotations":
                raise NotThisFormat(f"{os.path.basename(self.path)} is not a CVAT annotations file (root <{tag}>)")
            self.seen_root = True
        elif tag == "image" and parent == "annotations":
            name = attrs.get("name") or ""
            image = ImportedImage(file_name=name.replace("\\", "/").split("/")[-1] or name, named_path=name or None,
                                  width=_int(attrs.get("width")), height=_int(attrs.get("height")),
                                  geometry={"nails": [], "ignore": []})
            image.image_path = self.finder.find(name, os.path.dirname(self.path)) if name else None
            if not name:
                self.collect.problem(f"an <image> without a name (id {attrs.get('id')!r}) was skipped")
            self.image = (image, [], [], [], bool(name))
        elif tag == "track" and parent == "annotations":
            if not self.warned_tracks:
                self.collect.problem("video <track> elements are not supported (export as 'CVAT for images'); skipped")
                self.warned_tracks = True
        elif tag in SHAPES and parent == "image" and self.image is not None:
            self.shape = (tag, dict(attrs), {})
        elif tag == "attribute" and self.shape is not None and parent in SHAPES:
            self.attribute = [attrs.get("name", ""), ""]

    def text(self, data: str) -> None:
        if self.attribute is not None:
            self.attribute[1] += data

    def end(self, tag: str) -> None:
        self.stack.pop()
        if tag == "attribute" and self.attribute is not None:
            if self.shape is not None:
                self.shape[2][self.attribute[0]] = self.attribute[1].strip()
            self.attribute = None
        elif tag in SHAPES and self.shape is not None and self.stack and self.stack[-1] == "image":
            self._shape(*self.shape)
            self.shape = None
        elif tag == "image" and self.image is not None and (not self.stack or self.stack[-1] == "annotations"):
            image, nails, ignore, landmarks, ok = self.image
            if ok:
                warn = lambda m: self.collect.warn(m, image)  # noqa: E731
                assign_landmarks(nails, landmarks, lambda m: self.collect.problem(m, image))
                image.geometry = finish_geometry(nails_to_dicts(nails), ignore, warn, self.repair)
                self.collect.add(image)
            self.image = None

    def _shape(self, tag: str, attrs: dict, attributes: dict) -> None:
        image, nails, ignore, landmarks, _ = self.image
        label = attrs.get("label", "")
        ref = f"<{tag} label={label!r}>"
        warn = lambda m: self.collect.warn(m, image)  # noqa: E731
        problem = lambda m: self.collect.problem(m, image)  # noqa: E731
        group = attrs.get("group_id") or None
        if tag == "points":
            landmark = landmark_of(label, self.label_map)
            if landmark is None:
                if resolve_label(label, self.label_map)[0] == NAIL:
                    problem(f"{ref}: points cannot be a nail; skipped")
                else:
                    self.collect.unknown(label, image)
                return
            points = parse_points(attrs.get("points"))
            if points is None:
                problem(f"{ref}: malformed points {attrs.get('points')!r}; skipped")
                return
            landmarks.extend((landmark[0], landmark[1], p, group) for p in points)
            return
        if tag == "box":
            try:
                x0, y0, x1, y1 = (float(attrs[k]) for k in ("xtl", "ytl", "xbr", "ybr"))
            except (KeyError, ValueError):
                problem(f"{ref}: malformed box; skipped")
                return
            points = [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]
            if any(finite_point(p) is None for p in points):
                problem(f"{ref}: malformed box; skipped")
                return
            warn(f"{ref}: box taken as a 4-vertex polygon")
        elif tag == "polygon":
            points = parse_points(attrs.get("points"))
            if points is None:
                problem(f"{ref}: malformed points; skipped")
                return
        elif tag == "tag":
            if label == IDENTITY_TAG:
                frame = attributes.get("frame_index", "")
                read_identity(image, {**attributes, "frame_index": int(frame) if frame.isascii() and frame.isdecimal() else None}, warn)
            else:
                warn(f"{ref}: image tags are not labels of nails; skipped")
            return
        else:
            problem(f"{ref}: <{tag}> shapes are not supported; skipped")
            return
        role, finger = resolve_label(label, self.label_map)
        if role == NAIL and finger is None:
            for key, value in attributes.items():
                if key.strip().lower() in ("finger", "class", "finger_class") and value:
                    sub_role, sub_finger = resolve_label(value, self.label_map)
                    if sub_role == NAIL:
                        finger = sub_finger
                    else:
                        problem(f"{ref}: finger attribute {value!r} is not in the label map; finger left unknown")
        if role == IGNORE:
            ignore.append(points)
        elif role == NAIL:
            nails.append(PendingNail(points, finger, label, group, attributes.get("nail_id")))  # NailSet's export
        else:
            self.collect.unknown(label, image)


def _refuse(*_args):
    raise _Refused("DTDs and entity declarations are not accepted in CVAT XML")


def _parse_file(path: str, label_map: dict, collect: ImportCollector, finder: ImageFinder, repair: bool = True) -> None:
    handler = _CvatParser(path, label_map, collect, finder, repair)
    parser = expat.ParserCreate()
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = _refuse
    parser.EntityDeclHandler = _refuse
    parser.ExternalEntityRefHandler = _refuse
    parser.StartElementHandler = handler.start
    parser.EndElementHandler = handler.end
    parser.CharacterDataHandler = handler.text
    parser.buffer_text = True
    try:
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                parser.Parse(chunk, False)
            parser.Parse(b"", True)
    except _Refused as exc:
        raise FormatError(f"{os.path.basename(path)}: {exc}") from None
    except expat.ExpatError as exc:
        raise FormatError(f"{os.path.basename(path)} is not well-formed XML: {exc}") from None
    except OSError as exc:
        raise FormatError(f"cannot read {os.path.basename(path)}: {exc}") from None
    if not handler.seen_root:
        raise NotThisFormat(f"{os.path.basename(path)} is not a CVAT annotations file")


@importer("cvat", "xml")
def import_cvat(path: str, label_map: dict, *, repair: bool = True):
    """"CVAT for images 1.1" XML: an annotations.xml, or every CVAT XML in a folder."""
    collect = ImportCollector()
    if os.path.isdir(path):
        files = walk_files(path, (".xml",))
        preferred = [f for f in files if os.path.basename(f).lower() == "annotations.xml"]
        files = preferred or files
        if not files:
            raise FormatError(f"no CVAT annotations.xml found in {os.path.basename(path) or path}")
        finder = ImageFinder(path)
        for file_path in files:
            _parse_file(file_path, label_map, collect, finder, repair)
    else:
        _parse_file(path, label_map, collect, ImageFinder(os.path.dirname(os.path.abspath(path))), repair)
    return collect.finish()


# --------------------------------------------------------------------------- export

import shutil  # noqa: E402
import tempfile  # noqa: E402
from xml.sax.saxutils import escape, quoteattr  # noqa: E402

from .labels import FINGER_LABELS, UNKNOWN_LABEL  # noqa: E402  (the exporter's own names, apart from the importer's above)
from .records import SPLITS, check_meta, check_record  # noqa: E402
from .registry import exporter  # noqa: E402
from .targets import CHUNK  # noqa: E402

LANDMARK_NAMES = ("base", "tip")
IGNORE_LABEL = "ignore"


def _number(value) -> str:
    return repr(float(value))  # the shortest text that reads back as the same float


def _points(points) -> str:
    return ";".join(f"{_number(x)},{_number(y)}" for x, y in points)


def cvat_labels() -> list[tuple[str, str, str]]:
    """(name, type, colour) of every label the export uses: the fingers, "nail" (finger unknown), "ignore", base, tip
    and the image tag "nailset" (whose image it is)."""
    from dataset.raster import PALETTE, UNKNOWN_CLASS

    def colour(rgb) -> str:
        return "#%02x%02x%02x" % tuple(int(c) for c in rgb)
    labels = [(FINGER_LABELS[k], "polygon", colour(PALETTE[k])) for k in sorted(FINGER_LABELS)]
    labels += [(UNKNOWN_LABEL, "polygon", colour(PALETTE[UNKNOWN_CLASS])), (IGNORE_LABEL, "polygon", "#808080"),
               ("base", "points", "#ffffff"), ("tip", "points", "#000000"), (IDENTITY_TAG, "tag", "#33ddff")]
    return labels


def _text_attributes(names) -> str:
    return "<attributes>" + "".join(
        f"<attribute><name>{name}</name><mutable>False</mutable><input_type>text</input_type>"
        "<default_value></default_value><values></values></attribute>" for name in names) + "</attributes>"


def _meta_xml(meta: dict, size: int) -> str:
    labels = []
    for name, kind, colour in cvat_labels():
        attributes = _text_attributes(("nail_id",) if kind == "polygon" and name != IGNORE_LABEL else
                                      IDENTITY_ATTRIBUTES if kind == "tag" else ())
        labels.append(f"        <label><name>{escape(name)}</name><color>{colour}</color><type>{kind}</type>"
                      f"{attributes}</label>")
    created = escape(str(meta["created_at"]))
    return (f'<?xml version="1.0" encoding="utf-8"?>\n<annotations>\n  <version>1.1</version>\n  <meta>\n    <task>\n'
            f"      <name>{escape('NailSet snapshot ' + str(meta['snapshot']))}</name>\n      <size>{size}</size>\n"
            f"      <mode>annotation</mode>\n      <overlap>0</overlap>\n      <created>{created}</created>\n"
            f"      <updated>{created}</updated>\n      <start_frame>0</start_frame>\n"
            f"      <stop_frame>{max(size - 1, 0)}</stop_frame>\n      <labels>\n" + "\n".join(labels) +
            f"\n      </labels>\n    </task>\n    <dumped>{escape(str(meta.get('exported_at', meta['created_at'])))}</dumped>\n"
            f"  </meta>\n")


def image_xml(record, frame: int) -> str:
    """One ``<image>``: per nail a polygon labelled with its finger and, with landmarks, base / tip points, all in
    the nail's group; ignore regions as "ignore" polygons; a "nailset" tag saying whose image it is."""
    # No ``subset`` attribute: CVAT writes it only in project exports, and readers of task files (Datumaro's) skip
    # every <image> whose subset differs from the file's own, so a split-tagged task file reads as empty there.
    lines = [f"  <image id=\"{frame}\" name={quoteattr(record.file_name)} "
             f"width=\"{record.width}\" height=\"{record.height}\">"]
    shape = '    <{tag} label={label} source="manual" occluded="0" points="{points}" z_order="0"{group}>{body}</{tag}>'
    for number, nail in enumerate(confirmed_geometry(record.geometry)["nails"], start=1):
        label = quoteattr(FINGER_LABELS.get(nail.get("finger"), UNKNOWN_LABEL))
        group = f' group_id="{number}"'
        body = (f"\n      <attribute name=\"nail_id\">{escape(nail['id'])}</attribute>\n    "
                if isinstance(nail.get("id"), str) else "")
        lines.append(shape.format(tag="polygon", label=label, points=_points(nail["polygon"]), group=group, body=body))
        if nail.get("base") is not None and nail.get("tip") is not None:
            for kind in LANDMARK_NAMES:
                lines.append(shape.format(tag="points", label=quoteattr(kind), points=_points([nail[kind]]),
                                          group=group, body=""))
    for region in record.geometry.get("ignore") or []:
        lines.append(shape.format(tag="polygon", label=quoteattr(IGNORE_LABEL), points=_points(region), group="", body=""))
    identity = record.identity()
    values = [("" if identity.get(name) is None else str(identity[name])) for name in IDENTITY_ATTRIBUTES]
    lines.append(f'    <tag label="{IDENTITY_TAG}" source="manual">' + "".join(
        f'\n      <attribute name="{name}">{escape(value)}</attribute>' for name, value in zip(IDENTITY_ATTRIBUTES, values))
        + "\n    </tag>")
    lines.append("  </image>\n")
    return "\n".join(lines)


@exporter("cvat", "zip", title="CVAT")
def export_cvat(records, target, meta) -> dict:
    """CVAT for images 1.1: annotations.xml (polygons by finger, base/tip points in the nail's group) and images/."""
    check_meta(meta)
    seen: set[str] = set()
    summary = {"images": 0, "nails": 0, "ignore_regions": 0, "splits": dict.fromkeys(SPLITS, 0)}
    with tempfile.TemporaryFile() as body:  # the <image> elements; <meta> before them needs the count
        for record in records:
            check_record(record, seen)
            target.copy_file(f"images/{record.file_name}", record.source_path)
            body.write(image_xml(record, summary["images"]).encode("utf-8"))
            summary["images"] += 1
            summary["splits"][record.split] += 1
            summary["nails"] += len(record.geometry.get("nails") or [])
            summary["ignore_regions"] += len(record.geometry.get("ignore") or [])
        head = _meta_xml(meta, summary["images"]).encode("utf-8")
        tail = b"</annotations>\n"
        with target.open("annotations.xml", len(head) + body.tell() + len(tail)) as out:
            out.write(head)
            body.seek(0)
            shutil.copyfileobj(body, out, CHUNK)
            out.write(tail)
    return summary
