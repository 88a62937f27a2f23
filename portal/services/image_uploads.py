"""Checking uploaded images before anything is stored: raster images are decoded and re-encoded with
Pillow (which also drops metadata such as GPS positions), SVG is rebuilt from a strict allow-list, so a
stored file can carry no script, no external reference and no decompression bomb.

Nothing here trusts the file name or the browser's content type: the bytes decide."""

from __future__ import annotations

import io
import os
import re
import secrets
import warnings
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree as ET  # noqa: S405 - only to build and serialise; parsing is defused  # nosec B405

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as parse_xml_safely
from PIL import Image, ImageOps, UnidentifiedImageError

MEGABYTE = 1024 * 1024
MAX_PIXELS = 25_000_000  # a 5000 x 5000 plan; also stops decompression bombs before decoding
MAX_SVG_ELEMENTS = 50_000
MAX_SVG_DEPTH = 60  # serialising is recursive; deep nesting is never a real drawing


class ImageRejected(ValueError):
    """The upload is not an image we accept; the message says why, for the person who sent it."""


@dataclass(frozen=True)
class CheckedImage:
    data: bytes  # what to store: re-encoded or rebuilt, never the uploaded bytes
    content_type: str
    extension: str
    width: int
    height: int


# ---------------------------------------------------------------------------------------------
# Raster images


def check_raster(
    data: bytes,
    *,
    formats: dict[str, str],
    max_pixels: int = MAX_PIXELS,
    fit_within: tuple[int, int] | None = None,
    output: str | None = None,
    reject_blank: bool = False,
    fast: bool = False,
) -> CheckedImage:
    """Decode fully, refuse anything but `formats` (Pillow format -> content type), and re-encode.

    `output` forces one format (e.g. JPEG for photos); by default the input format is kept.
    `reject_blank` refuses an image whose pixels are all the same (an empty signature pad);
    `fast` trades a few kB for much less CPU (e.g. on every kiosk check-in)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                kind = probe.format or ""
                width, height = probe.size
                if kind not in formats:
                    raise ImageRejected(_kinds_message(formats))
                if width * height > max_pixels:
                    raise ImageRejected(
                        f"The image is {width} × {height} pixels; the most we accept is "
                        f"{max_pixels // 1_000_000} megapixels."
                    )
                probe.verify()  # checksums and structure, without decoding pixels
            # verify() leaves the image unusable: open again to decode.
            with Image.open(io.BytesIO(data)) as image:
                image.load()
                picture = ImageOps.exif_transpose(image)
    except ImageRejected:
        raise
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise ImageRejected("The image is too large to open safely.") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        # Pillow reports broken or unknown files with any of these.
        raise ImageRejected(_kinds_message(formats)) from exc

    if reject_blank and _uniform(picture):
        raise ImageRejected("The image is empty.")
    if fit_within is not None:
        picture.thumbnail(fit_within)
    target = output or kind
    picture = _mode_for(picture, target)
    buffer = io.BytesIO()
    if target == "JPEG":
        picture.save(buffer, "JPEG", quality=85, optimize=not fast)
    elif fast and target == "PNG":
        picture.save(buffer, "PNG", compress_level=1)  # no exif/info passed on: metadata dropped
    else:
        picture.save(buffer, target, optimize=True)  # no exif/info passed on: metadata is dropped
    extension = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp"}[target]
    content_type = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}[target]
    return CheckedImage(buffer.getvalue(), content_type, extension, *picture.size)


def _uniform(picture: Image.Image) -> bool:
    extrema = picture.convert("LA").getextrema()
    return all(low == high for low, high in extrema)  # type: ignore[union-attr]


def _mode_for(picture: Image.Image, target: str) -> Image.Image:
    if target == "JPEG":
        if picture.mode in ("RGBA", "LA", "P"):
            background = Image.new("RGB", picture.size, (255, 255, 255))
            rgba = picture.convert("RGBA")
            background.paste(rgba, mask=rgba.getchannel("A"))
            return background
        return picture.convert("RGB") if picture.mode != "RGB" else picture
    if picture.mode not in ("1", "L", "LA", "P", "RGB", "RGBA"):
        return picture.convert("RGBA")
    return picture


def _kinds_message(formats: dict[str, str]) -> str:
    names = [{"JPEG": "JPEG", "PNG": "PNG", "WEBP": "WebP"}.get(f, f) for f in formats]
    listed = ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else names[0]
    return f"This file is not a {listed} image."


# ---------------------------------------------------------------------------------------------
# SVG: rebuilt from an allow-list, because an SVG is a document that can run script.

SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"
XML_NS = "http://www.w3.org/XML/1998/namespace"
ET.register_namespace("", SVG_NS)
ET.register_namespace("xlink", XLINK_NS)

# Drawing elements only: no script, foreignObject, animation (which can rewrite links), iframes,
# external images or fonts. `a` is kept as a plain group without its link.
SVG_ELEMENTS = {
    "svg", "g", "defs", "title", "desc", "symbol", "use", "path", "rect", "circle", "ellipse",
    "line", "polyline", "polygon", "text", "tspan", "textPath", "linearGradient", "radialGradient",
    "stop", "pattern", "clipPath", "mask", "marker", "style", "image", "a",
}  # fmt: skip
SVG_ATTRIBUTES = {
    "id", "class", "style", "x", "y", "x1", "y1", "x2", "y2", "cx", "cy", "r", "rx", "ry", "fx",
    "fy", "d", "points", "width", "height", "viewBox", "preserveAspectRatio", "transform",
    "fill", "fill-opacity", "fill-rule", "stroke", "stroke-width", "stroke-opacity",
    "stroke-linecap", "stroke-linejoin", "stroke-miterlimit", "stroke-dasharray",
    "stroke-dashoffset", "opacity", "color", "display", "visibility", "clip-path", "clip-rule",
    "mask", "font-family", "font-size", "font-weight", "font-style", "font-variant",
    "text-anchor", "dominant-baseline", "alignment-baseline", "baseline-shift", "letter-spacing",
    "word-spacing", "text-decoration", "dx", "dy", "rotate", "textLength", "lengthAdjust",
    "offset", "stop-color", "stop-opacity", "gradientUnits", "gradientTransform",
    "spreadMethod", "patternUnits", "patternContentUnits", "patternTransform",
    "clipPathUnits", "maskUnits", "maskContentUnits", "markerWidth", "markerHeight",
    "markerUnits", "refX", "refY", "orient", "marker-start", "marker-mid", "marker-end",
    "vector-effect", "shape-rendering", "text-rendering", "image-rendering", "paint-order",
    "version", "startOffset", "href", "type", "media",
}  # fmt: skip
SAFE_IMAGE_DATA = re.compile(r"^data:image/(png|jpeg|gif|webp);base64,[A-Za-z0-9+/=\s]+$")
# In CSS (style attributes and <style>): no imports, no external url(), no legacy script hooks.
UNSAFE_CSS = re.compile(
    r"@import|url\s*\(\s*['\"]?\s*(?!#)|expression\s*\(|javascript:|behavior\s*:|-moz-binding|<",
    re.IGNORECASE,
)
UNSAFE_VALUE = re.compile(r"javascript:|vbscript:|data:|url\s*\(\s*['\"]?\s*(?!#)", re.IGNORECASE)
LENGTH = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(px|pt|pc|mm|cm|in)?\s*$")
UNIT_PX = {
    None: 1.0,
    "px": 1.0,
    "pt": 4 / 3,
    "pc": 16.0,
    "mm": 96 / 25.4,
    "cm": 96 / 2.54,
    "in": 96.0,
}


def looks_like_svg(data: bytes) -> bool:
    head = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    # Exported drawings may put a long comment or DOCTYPE before the <svg> element.
    return head.startswith((b"<?xml", b"<svg", b"<!--", b"<!doctype")) and b"<svg" in data[:65536]


def sanitise_svg(data: bytes) -> CheckedImage:
    """Parse without DTDs or entities, keep only allow-listed elements and attributes, and
    serialise afresh. Returns the rebuilt document and its intrinsic size (for the aspect ratio)."""
    try:
        # A DOCTYPE line is common in exported drawings and harmless; entities are not accepted.
        root = parse_xml_safely(data, forbid_dtd=False, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise ImageRejected(
            "This SVG uses XML entities or external references, which are not accepted."
        ) from exc
    except (ET.ParseError, ValueError) as exc:
        raise ImageRejected("This SVG file could not be read (it is not well-formed XML).") from exc
    if root.tag != f"{{{SVG_NS}}}svg":
        raise ImageRejected("This file is not an SVG drawing.")
    counter = [0]
    _clean_element(root, depth=0, counter=counter)
    width, height = _svg_size(root)
    if not root.get("viewBox"):
        root.set("viewBox", f"0 0 {_num(width)} {_num(height)}")
    # Scale tiny drawings up so whole-number sizes keep their aspect ratio.
    scale = 1000 / max(width, height) if max(width, height) < 1000 else 1.0
    # Registered again each time: other libraries (WeasyPrint's SVG support) change
    # ElementTree's process-wide prefix map, which would turn <svg> into <ns0:svg>.
    ET.register_namespace("", SVG_NS)
    ET.register_namespace("xlink", XLINK_NS)
    body = ET.tostring(root, encoding="unicode", short_empty_elements=True)
    rebuilt = ('<?xml version="1.0" encoding="UTF-8"?>\n' + body).encode()
    return CheckedImage(
        rebuilt,
        "image/svg+xml",
        ".svg",
        max(1, round(width * scale)),
        max(1, round(height * scale)),
    )


def _local(tag: str) -> tuple[str, str]:
    if tag.startswith("{"):
        namespace, _, name = tag[1:].partition("}")
        return namespace, name
    return "", tag


def _clean_element(element: ET.Element, depth: int, counter: list[int]) -> None:
    if depth > MAX_SVG_DEPTH:
        raise ImageRejected("This SVG is nested too deeply to be a floor plan.")
    counter[0] += 1
    if counter[0] > MAX_SVG_ELEMENTS:
        raise ImageRejected("This SVG has too many elements to be a floor plan.")
    _clean_attributes(element)
    if _local(element.tag)[1] == "style":
        if UNSAFE_CSS.search(element.text or ""):
            element.text = ""
        for child in list(element):
            element.remove(child)
        return
    for child in list(element):
        if not isinstance(child.tag, str):  # comments and processing instructions
            element.remove(child)
            continue
        namespace, name = _local(child.tag)
        if namespace != SVG_NS or name not in SVG_ELEMENTS:
            element.remove(child)  # with everything inside it (script, foreignObject, metadata)
            continue
        if name == "a":
            child.tag = f"{{{SVG_NS}}}g"
        if name == "image" and not SAFE_IMAGE_DATA.match(_href(child) or ""):
            element.remove(child)  # only embedded raster images: no external fetches
            continue
        _clean_element(child, depth + 1, counter)


def _href(element: ET.Element) -> str | None:
    return element.get("href") or element.get(f"{{{XLINK_NS}}}href")


def _clean_attributes(element: ET.Element) -> None:
    is_image = _local(element.tag)[1] == "image"
    for key in list(element.attrib):
        value = element.attrib[key]
        namespace, name = _local(key)
        keep = False
        if name == "href" and namespace in ("", XLINK_NS):
            stripped = value.strip()
            keep = stripped.startswith("#") or (is_image and bool(SAFE_IMAGE_DATA.match(stripped)))
        elif namespace == XML_NS and name == "space":
            keep = True
        elif namespace == "" and name in SVG_ATTRIBUTES:
            if name == "style":
                keep = not UNSAFE_CSS.search(value)
            elif name == "type":
                keep = value.strip().lower() == "text/css"
            else:
                keep = not UNSAFE_VALUE.search(value)
        if not keep:
            del element.attrib[key]  # event handlers (onload=...), foreign namespaces, links


def _svg_size(root: ET.Element) -> tuple[float, float]:
    view_box = (root.get("viewBox") or "").replace(",", " ").split()
    if len(view_box) == 4:
        try:
            width, height = float(view_box[2]), float(view_box[3])
        except ValueError:
            width = height = 0.0
        if width > 0 and height > 0:
            return width, height
    width_px, height_px = _length(root.get("width")), _length(root.get("height"))
    if width_px and height_px:
        return width_px, height_px
    raise ImageRejected(
        "This SVG has no size: give its root element a viewBox (or width and height)."
    )


def _length(value: str | None) -> float | None:
    match = LENGTH.match(value or "")
    if not match:
        return None
    number = float(match.group(1)) * UNIT_PX[match.group(2)]
    return number if number > 0 else None


def _num(value: float) -> str:
    return f"{value:g}"


# ---------------------------------------------------------------------------------------------
# Storage


def store(directory: Path, image: CheckedImage) -> str:
    """Write under a fresh random name (never the uploaded one) and return that name."""
    directory.mkdir(parents=True, exist_ok=True)
    name = secrets.token_urlsafe(18) + image.extension
    temporary = directory / f".{name}.part"
    temporary.write_bytes(image.data)
    os.replace(temporary, directory / name)
    return name


STORED_NAME = re.compile(r"^[A-Za-z0-9_-]{24}\.(png|jpg|webp|svg)$")


def stored_path(directory: Path, name: str | None) -> Path | None:
    """The path of a stored file, only for names `store` could have produced."""
    if not name or not STORED_NAME.match(name):
        return None
    path = directory / name
    return path if path.is_file() else None


def remove(directory: Path, name: str | None) -> None:
    path = stored_path(directory, name)
    if path is not None:
        path.unlink(missing_ok=True)
