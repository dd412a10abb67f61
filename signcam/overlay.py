"""Draw what was recognised on a frame: coloured boxes, labels, pictograms and a speed-limit HUD.

Everything scales with the frame (640x480 up to 1920x1080) and costs about a millisecond, so
it runs on every displayed or recorded frame.

Example:
    >>> frame = np.zeros((480, 640, 3), np.uint8)
    >>> shown = draw_overlay(frame, [Detection((300, 200, 340, 240), 1, 0.93, track_id=4)], speed_limit=30)
    >>> shown.shape, bool(frame.any())
    ((480, 640, 3), False)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from signcam.detection import Detection
from signcam.pictograms import sign_layers, speed_limit_sign

__all__ = ["CATEGORY_COLORS", "REJECTED_COLOR", "draw_overlay", "blend"]

#: BGR box colour per sign category, bright enough to read on asphalt, foliage and sky.
CATEGORY_COLORS: dict[str, tuple[int, int, int]] = {
    "prohibitory": (48, 48, 240),
    "danger": (0, 150, 255),
    "mandatory": (255, 140, 20),
    "other": (60, 205, 60),
}
REJECTED_COLOR = (160, 160, 160)
_FONT = cv2.FONT_HERSHEY_SIMPLEX


@dataclass(frozen=True)
class _Style:
    """Line widths, text and icon sizes for one frame size."""

    line: int
    font_scale: float
    text_thickness: int
    pad: int
    icon: int
    hud: int
    margin: int


@lru_cache(maxsize=16)
def _style(height: int, width: int) -> _Style:
    s = min(height, width) / 720.0
    return _Style(line=max(1, round(2 * s)), font_scale=0.55 * s, text_thickness=max(1, round(1.3 * s)),
                  pad=max(2, round(4 * s)), icon=max(16, round(34 * s)), hud=max(48, round(120 * s)),
                  margin=max(4, round(14 * s)))


@lru_cache(maxsize=256)
def _sprite(class_id: int | None, limit: int | None, size: int) -> tuple[np.ndarray, np.ndarray]:
    """A sign premultiplied by its alpha, and one minus alpha: blending is then one multiply-add."""
    bgr, alpha = sign_layers(class_id, size) if class_id is not None else speed_limit_sign(limit, size)
    a = alpha[..., None]
    return bgr * a, 1.0 - a


def blend(image: np.ndarray, sprite: tuple[np.ndarray, np.ndarray], x: int, y: int) -> None:
    """Blend a square sprite into ``image`` in place, its top-left corner at (x, y), clipped to the frame.

    Args:
        image: A BGR uint8 frame.
        sprite: ``(colour premultiplied by alpha, 1 - alpha)``, float, S x S x 3 and S x S x 1.
        x: Left edge in the frame (may be off it).
        y: Top edge in the frame (may be off it).
    """
    premultiplied, inverse = sprite
    size = premultiplied.shape[0]
    x1, y1 = max(x, 0), max(y, 0)
    x2, y2 = min(x + size, image.shape[1]), min(y + size, image.shape[0])
    if x1 >= x2 or y1 >= y2:
        return
    sy, sx = slice(y1 - y, y2 - y), slice(x1 - x, x2 - x)
    region = image[y1:y2, x1:x2]
    region[:] = np.clip(region * inverse[sy, sx] + premultiplied[sy, sx], 0, 255).astype(np.uint8)


def _text_color(background: tuple[int, int, int]) -> tuple[int, int, int]:
    b, g, r = background
    return (20, 20, 20) if 0.114 * b + 0.587 * g + 0.299 * r > 140 else (255, 255, 255)


def _label(image: np.ndarray, d: Detection, color: tuple[int, int, int], style: _Style) -> None:
    """The sign's pictogram left of its box and a filled tag with the label right of it.

    Beside rather than above the box: signs are often stacked on one pole, and a tag above one
    would hide the sign over it. Near the right edge the tag goes left, beyond the pictogram.
    """
    text = f"{d.label} {d.score:.0%}" if d.track_id is None else f"#{d.track_id} {d.label} {d.score:.0%}"
    (tw, th), base = cv2.getTextSize(text, _FONT, style.font_scale, style.text_thickness)
    height, width = image.shape[:2]
    x1, y1, x2, _ = (int(v) for v in d.box)
    gap = style.pad
    icon_x = x1 - gap - style.icon if x1 - gap - style.icon >= 0 else x2 + gap
    blend(image, _sprite(d.class_id, None, style.icon), icon_x, max(y1, 0))
    tag_w, tag_h = tw + 2 * style.pad, th + base + 2 * style.pad
    left = x2 + gap if x2 + gap + tag_w <= width else min(icon_x, x1) - gap - tag_w
    left = min(max(left, 0), max(width - tag_w, 0))
    top = min(max(y1, 0), max(height - tag_h, 0))
    cv2.rectangle(image, (left, top), (left + tag_w, top + tag_h), color, -1)
    cv2.putText(image, text, (left + style.pad, top + style.pad + th), _FONT, style.font_scale,
                _text_color(color), style.text_thickness, cv2.LINE_AA)


def _hud(image: np.ndarray, speed_limit: int, style: _Style) -> None:
    """The current limit as a big sign in the top-left corner, like a car's sign assistant.

    Left, because with traffic on the right the signs themselves appear on the right.
    """
    x = style.margin
    centre = (x + style.hud // 2, style.margin + style.hud // 2)
    # A dark halo keeps the sign's white edge visible against a bright sky.
    cv2.circle(image, centre, style.hud // 2 + 2 * style.line, (35, 35, 35), -1, cv2.LINE_AA)
    blend(image, _sprite(None, speed_limit, style.hud), x, style.margin)


def draw_overlay(image: np.ndarray, detections: Sequence[Detection], speed_limit: int | None = None, *,
                 show_boxes: bool = True, show_labels: bool = True, show_rejected: bool = False) -> np.ndarray:
    """A copy of ``image`` with the detections and the speed limit drawn on it.

    Args:
        image: H x W x 3 uint8 BGR frame (left untouched).
        detections: Accepted detections, and possibly rejected ones (``accepted=False``).
        speed_limit: Limit in force (km/h) to show as a HUD sign; ``None`` shows none.
        show_boxes: Draw boxes coloured by category (prohibitory red, danger orange, mandatory blue,
            other green).
        show_labels: Draw a tag with label, confidence and track id, and the sign's pictogram.
        show_rejected: Also draw rejected candidates, as thin grey boxes.

    Returns:
        The annotated copy.

    Example:
        >>> out = draw_overlay(np.zeros((720, 1280, 3), np.uint8), [], speed_limit=80)
        >>> bool(out[:200, :200].any())
        True
    """
    out = image.copy()
    style = _style(*out.shape[:2])
    if show_rejected and show_boxes:
        for d in detections:
            if not d.accepted:
                cv2.rectangle(out, d.box[:2], d.box[2:], REJECTED_COLOR, 1)
    for d in detections:
        if not d.accepted:
            continue
        color = CATEGORY_COLORS[d.category]
        if show_boxes:
            cv2.rectangle(out, d.box[:2], d.box[2:], color, style.line)
        if show_labels:
            _label(out, d, color, style)
    if speed_limit is not None:
        _hud(out, speed_limit, style)
    return out
