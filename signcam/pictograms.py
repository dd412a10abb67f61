"""Drawings of the 43 German signs, made with OpenCV primitives (no image data from any dataset).

Each sign is drawn at 4x in unit coordinates (centre ``(0, 0)``, square edges at +-1, y down)
and shrunk with ``INTER_AREA``, which anti-aliases every edge. Colours are those of road-sign
paint as a camera sees it, so that a classifier trained on photos recognises the drawings
(the demo clip depends on that). Results are cached and read-only.

Example:
    >>> img = pictogram(14, size=48)          # the stop sign, BGR on white
    >>> img.shape, img.dtype
    ((48, 48, 3), dtype('uint8'))
    >>> bgr, alpha = sign_layers(14, 48)       # the same with its shape as alpha (0..1)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import lru_cache

import cv2
import numpy as np

from signcam.classes import CLASSES, NUM_SIGN_CLASSES

__all__ = ["pictogram", "sign_layers", "speed_limit_sign"]

Color = tuple[int, int, int]
Points = Sequence[tuple[float, float]]

# BGR paint colours as photographed (RAL 3020 red, 5017 blue, 1023 yellow), not pure primaries.
RED: Color = (40, 30, 200)
BLUE: Color = (160, 85, 15)
YELLOW: Color = (20, 185, 245)
WHITE: Color = (242, 242, 240)
BLACK: Color = (28, 28, 28)
GREY: Color = (120, 120, 120)
AMBER: Color = (20, 170, 250)
GREEN: Color = (80, 170, 30)

_SUPERSAMPLE = 4
#: Height of an equilateral triangle whose side is 2 (the unit square's width).
_TRI_H = math.sqrt(3.0)


class _Painter:
    """A supersampled canvas drawn on in unit coordinates, with the sign's shape kept as alpha."""

    def __init__(self, size: int) -> None:
        self.n = size * _SUPERSAMPLE
        self.image = np.zeros((self.n, self.n, 3), np.uint8)
        self.alpha = np.zeros((self.n, self.n), np.uint8)
        #: Symbols are drawn magnified by ``zoom`` around ``pivot`` (see :func:`_zoomed`).
        self.zoom = 1.0
        self.pivot = np.zeros(2)

    def px(self, points: Points) -> np.ndarray:
        unit = self.pivot + (np.asarray(points, np.float64) - self.pivot) * self.zoom
        return np.round((unit + 1.0) * 0.5 * self.n).astype(np.int32)

    def length(self, value: float) -> int:
        return max(1, int(round(value * self.zoom * 0.5 * self.n)))

    def polygon(self, points: Points, color: Color) -> None:
        pts = [self.px(points)]
        cv2.fillPoly(self.image, pts, color, cv2.LINE_AA)
        cv2.fillPoly(self.alpha, pts, 255, cv2.LINE_AA)

    def circle(self, center: tuple[float, float], radius: float, color: Color) -> None:
        c = tuple(int(v) for v in self.px([center])[0])
        cv2.circle(self.image, c, self.length(radius), color, -1, cv2.LINE_AA)
        cv2.circle(self.alpha, c, self.length(radius), 255, -1, cv2.LINE_AA)

    def ellipse(self, center: tuple[float, float], axes: tuple[float, float], angle: float, color: Color) -> None:
        c = tuple(int(v) for v in self.px([center])[0])
        cv2.ellipse(self.image, c, (self.length(axes[0]), self.length(axes[1])), angle, 0, 360, color, -1,
                    cv2.LINE_AA)

    def line(self, points: Points, width: float, color: Color, closed: bool = False) -> None:
        """A thick polyline; OpenCV's round caps give the rounded joins road-sign symbols have."""
        pts = [self.px(points)]
        cv2.polylines(self.image, pts, closed, color, self.length(width), cv2.LINE_AA)
        cv2.polylines(self.alpha, pts, closed, 255, self.length(width), cv2.LINE_AA)

    def ring(self, center: tuple[float, float], radius: float, width: float, color: Color) -> None:
        c = tuple(int(v) for v in self.px([center])[0])
        cv2.circle(self.image, c, self.length(radius), color, self.length(width), cv2.LINE_AA)

    def text(self, text: str, box: tuple[float, float, float, float], color: Color, weight: float = 0.16) -> None:
        """Text stretched to fill ``box`` (x1, y1, x2, y2), like the narrow DIN lettering on signs.

        Args:
            weight: Stroke width as a fraction of the text height.
        """
        scale = 6.0
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        thickness = max(1, int(round(weight * th)))
        pad = thickness
        mask = np.zeros((th + base + 2 * pad, tw + 2 * pad), np.uint8)
        cv2.putText(mask, text, (pad, th + pad), cv2.FONT_HERSHEY_SIMPLEX, scale, 255, thickness, cv2.LINE_AA)
        ys, xs = np.nonzero(mask)
        mask = mask[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
        (x1, y1), (x2, y2) = self.px([box[:2], box[2:]])
        glyph = cv2.resize(mask, (x2 - x1, y2 - y1), interpolation=cv2.INTER_AREA)[..., None] / 255.0
        region = self.image[y1:y2, x1:x2]
        region[:] = np.round(region * (1.0 - glyph) + np.asarray(color) * glyph).astype(np.uint8)

    def arrow(self, path: Points, width: float, color: Color, head: float = 2.6) -> None:
        """A polyline ending in a filled triangular head, ``head`` times the shaft width wide and long."""
        p = np.asarray(path, np.float64)
        direction = p[-1] - p[-2]
        direction /= np.linalg.norm(direction)
        normal = np.array([-direction[1], direction[0]])
        length = head * width * 0.95
        base = p[-1] - direction * length
        self.line(np.vstack([p[:-1], base]), width, color)
        half = head * width / 2
        self.polygon([p[-1], base + normal * half, base - normal * half], color)

    def result(self, size: int) -> tuple[np.ndarray, np.ndarray]:
        image = cv2.resize(self.image, (size, size), interpolation=cv2.INTER_AREA)
        alpha = cv2.resize(self.alpha, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
        return image, alpha


def _bezier(p0: Sequence[float], p1: Sequence[float], p2: Sequence[float], steps: int = 16) -> np.ndarray:
    """Points on a quadratic Bezier curve, for the bent arrows."""
    t = np.linspace(0.0, 1.0, steps)[:, None]
    p0, p1, p2 = (np.asarray(p, np.float64) for p in (p0, p1, p2))
    return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2


def _regular(vertices: Points, inset: float, corner: float, p: _Painter, color: Color) -> None:
    """A regular polygon shrunk by ``inset`` (measured along the inradius), corners rounded by ``corner``."""
    v = np.asarray(vertices, np.float64)
    centre = v.mean(axis=0)
    mid = (v[0] + v[1]) / 2
    inradius = float(np.linalg.norm(mid - centre))
    core = centre + (v - centre) * (inradius - inset - corner) / inradius
    p.polygon(core, color)
    p.line(core, 2 * corner, color, closed=True)


# --- Shapes ----------------------------------------------------------------------------------------------------------

_TRIANGLE_UP = [(-1.0, _TRI_H / 2), (1.0, _TRI_H / 2), (0.0, -_TRI_H / 2)]
_TRIANGLE_DOWN = [(-1.0, -_TRI_H / 2), (0.0, _TRI_H / 2), (1.0, -_TRI_H / 2)]
_OCTAGON = [(math.cos(a), math.sin(a)) for a in np.radians(22.5 + 45.0 * np.arange(8))]
_DIAMOND = [(0.0, -1.0), (1.0, 0.0), (0.0, 1.0), (-1.0, 0.0)]


def _prohibitory(p: _Painter) -> None:
    p.circle((0, 0), 1.0, WHITE)
    p.circle((0, 0), 0.955, RED)
    p.circle((0, 0), 0.76, WHITE)


def _danger(p: _Painter) -> None:
    _regular(_TRIANGLE_UP, 0.0, 0.09, p, WHITE)
    _regular(_TRIANGLE_UP, 0.035, 0.08, p, RED)
    _regular(_TRIANGLE_UP, 0.23, 0.03, p, WHITE)


def _mandatory(p: _Painter) -> None:
    p.circle((0, 0), 1.0, WHITE)
    p.circle((0, 0), 0.95, BLUE)


def _derestriction(p: _Painter) -> None:
    p.circle((0, 0), 1.0, (205, 205, 205))
    p.circle((0, 0), 0.975, WHITE)


def _stripes(p: _Painter, count: int = 5, spacing: float = 0.09, width: float = 0.05) -> None:
    """The black diagonal band (lower left to upper right) of the end-of-restriction signs."""
    normal = np.array([1.0, 1.0]) / math.sqrt(2)
    along = np.array([1.0, -1.0]) / math.sqrt(2)
    radius = 0.93
    for k in range(count):
        d = (k - (count - 1) / 2) * spacing
        half = math.sqrt(radius**2 - d**2)
        p.line([normal * d - along * half, normal * d + along * half], width, BLACK)


# --- Symbols ---------------------------------------------------------------------------------------------------------

def _car_rear(p: _Painter, x: float, y: float, color: Color) -> None:
    """A car seen from behind, centred at (x, y), about 0.48 wide."""
    p.polygon([(x - 0.16, y - 0.18), (x + 0.16, y - 0.18), (x + 0.24, y - 0.03), (x - 0.24, y - 0.03)], color)
    p.line([(x - 0.2, y + 0.04), (x + 0.2, y + 0.04)], 0.15, color)
    for side in (-1, 1):
        p.line([(x + side * 0.18, y + 0.12), (x + side * 0.18, y + 0.18)], 0.09, color)


def _truck_rear(p: _Painter, x: float, y: float, color: Color) -> None:
    """A lorry seen from behind: a tall box on wheels, about 0.4 wide."""
    p.polygon([(x - 0.2, y - 0.26), (x + 0.2, y - 0.26), (x + 0.2, y + 0.14), (x - 0.2, y + 0.14)], color)
    for side in (-1, 1):
        p.line([(x + side * 0.14, y + 0.16), (x + side * 0.14, y + 0.23)], 0.08, color)


def _pair(left: Callable[[_Painter, float, float, Color], None], left_color: Color,
          right_color: Color) -> Callable[[_Painter], None]:
    """The overtaking symbol: a vehicle on the left (car or lorry) beside a car on the right."""
    def draw(p: _Painter) -> None:
        left(p, -0.32, 0.04, left_color)
        _car_rear(p, 0.32, 0.04, right_color)
    return draw


def _truck_side(p: _Painter, color: Color) -> None:
    """A lorry driving left: the cab, its load box and the wheels."""
    p.polygon([(-0.18, -0.28), (0.55, -0.28), (0.55, 0.12), (-0.18, 0.12)], color)
    p.polygon([(-0.55, -0.08), (-0.42, -0.2), (-0.22, -0.2), (-0.22, 0.12), (-0.55, 0.12)], color)
    p.polygon([(-0.47, -0.08), (-0.41, -0.15), (-0.3, -0.15), (-0.3, -0.08)], WHITE)
    for wx in (-0.38, 0.2, 0.4):
        p.circle((wx, 0.17), 0.09, color)


def _arc(cx: float, cy: float, rx: float, ry: float, start: float, end: float, steps: int = 24) -> list:
    """Points on an elliptic arc, angles in degrees counter-clockwise from the right (y down)."""
    angles = np.radians(np.linspace(start, end, steps))
    return list(zip(cx + rx * np.cos(angles), cy - ry * np.sin(angles), strict=True))


#: Centre lines of the DIN 1451 digits speed limits use, in a unit cell (x right, y down),
#: stroked with round ends: the narrow, even lettering of German signs, which Hershey fonts are not.
#: The 3 is round on top, as on every sharp "30" of GTSRB: a flat top with a stroke down from it
#: is the 5's, and networks that fit GTSRB closely read a flat-topped 30 as 50.
_DIGIT_STROKES: dict[str, list[list]] = {
    "0": [_arc(0.5, 0.27, 0.5, 0.27, 0, 180) + _arc(0.5, 0.73, 0.5, 0.27, 180, 360) + [(1.0, 0.27)]],
    "1": [[(0.15, 0.24), (0.72, 0.0), (0.72, 1.0)]],
    "2": [_arc(0.5, 0.26, 0.5, 0.26, 165, -35) + [(0.0, 1.0), (1.0, 1.0)]],
    "3": [_arc(0.5, 0.25, 0.45, 0.25, 160, -90), [(0.3, 0.5), (0.5, 0.5)], _arc(0.5, 0.75, 0.5, 0.25, 90, -160)],
    "5": [[(0.92, 0.0), (0.1, 0.0), (0.06, 0.47)] + _arc(0.48, 0.69, 0.52, 0.31, 135, -150)],
    "6": [[(0.8, 0.0), (0.06, 0.6)], _arc(0.5, 0.69, 0.5, 0.31, 0, 360)],
    "7": [[(0.0, 0.0), (1.0, 0.0), (0.32, 1.0)]],
    "8": [_arc(0.5, 0.23, 0.42, 0.23, 0, 360), _arc(0.5, 0.7, 0.5, 0.3, 0, 360)],
    "9": [[(0.2, 1.0), (0.94, 0.4)], _arc(0.5, 0.31, 0.5, 0.31, 0, 360)],
    "4": [[(0.75, 1.0), (0.75, 0.0), (0.0, 0.7), (1.0, 0.7)]],
}


def _speed_digits(p: _Painter, limit: int, color: Color) -> None:
    """The number of a speed-limit sign; three digits are narrower, as on the real ones."""
    text = str(limit)
    height = 0.9 if len(text) < 3 else 0.84
    width = height * (0.56 if len(text) < 3 else 0.42)
    gap, stroke = 0.12 * height, 0.135 * height
    left = -(len(text) * width + (len(text) - 1) * gap) / 2
    for k, digit in enumerate(text):
        x0 = left + k * (width + gap) + stroke / 2
        scale = np.array([width - stroke, height - stroke])
        origin = np.array([x0, -height / 2 + stroke / 2])
        for line in _DIGIT_STROKES[digit]:
            p.line(origin + np.asarray(line) * scale, stroke, color)


def _exclamation(p: _Painter) -> None:
    p.polygon([(-0.075, -0.3), (0.075, -0.3), (0.035, 0.3), (-0.035, 0.3)], BLACK)
    p.circle((0, 0.45), 0.075, BLACK)


def _priority_next(p: _Painter) -> None:
    p.polygon([(0.0, -0.42), (0.09, -0.3), (0.15, 0.56), (-0.15, 0.56), (-0.09, -0.3)], BLACK)
    p.polygon([(-0.3, 0.13), (-0.22, 0.03), (0.22, 0.03), (0.3, 0.13), (0.22, 0.23), (-0.22, 0.23)], BLACK)


def _bend(sign: int) -> Callable[[_Painter], None]:
    def draw(p: _Painter) -> None:
        curve = _bezier((0.12 * sign, 0.1), (0.12 * sign, -0.13), (-0.1 * sign, -0.13))
        p.arrow([(0.12 * sign, 0.52), *curve, (-0.36 * sign, -0.13)], 0.12, BLACK, head=2.2)
    return draw


def _double_bend(p: _Painter) -> None:
    lower = _bezier((0.12, 0.4), (0.12, 0.26), (-0.04, 0.2))
    upper = _bezier((-0.04, 0.2), (-0.18, 0.12), (-0.12, -0.02))
    top = _bezier((-0.12, -0.02), (-0.06, -0.12), (0.08, -0.16))
    p.arrow([(0.12, 0.56), *lower, *upper[1:], *top[1:], (0.16, -0.32)], 0.11, BLACK, head=2.2)


def _uneven(p: _Painter) -> None:
    p.polygon([(-0.44, 0.42), (0.44, 0.42), (0.44, 0.56), (-0.44, 0.56)], BLACK)
    for cx in (-0.2, 0.2):
        p.ellipse((cx, 0.43), (0.14, 0.12), 0, BLACK)


def _slippery(p: _Painter) -> None:
    """A skidding car, tilted, above its two wavy tracks."""
    p.polygon([(-0.3, 0.12), (-0.26, -0.02), (-0.14, -0.12), (0.12, -0.16), (0.26, -0.06), (0.32, 0.06)], BLACK)
    for wx, wy in ((-0.2, 0.13), (0.22, 0.06)):
        p.circle((wx, wy), 0.075, BLACK)
    for dx in (-0.16, 0.14):
        wave = [(dx + 0.09 * math.sin(t * 2.4), 0.24 + 0.1 * t) for t in np.linspace(0, 3.1, 14)]
        p.line(wave, 0.065, BLACK)


def _narrows_right(p: _Painter) -> None:
    p.line([(-0.22, 0.56), (-0.22, -0.2)], 0.12, BLACK)
    p.line([(0.22, 0.56), (0.22, 0.26), (0.05, 0.06), (0.05, -0.2)], 0.12, BLACK)


def _road_works(p: _Painter) -> None:
    p.circle((-0.06, -0.12), 0.075, BLACK)
    p.line([(-0.1, 0.0), (-0.2, 0.3)], 0.12, BLACK)                    # body, bent forward
    p.line([(-0.2, 0.3), (-0.3, 0.55)], 0.08, BLACK)                   # back leg
    p.line([(-0.2, 0.3), (-0.05, 0.42), (-0.06, 0.56)], 0.08, BLACK)   # front leg
    p.line([(-0.12, 0.06), (0.06, 0.2)], 0.07, BLACK)                  # arms
    p.line([(-0.06, 0.08), (0.14, 0.42)], 0.045, BLACK)                # shovel handle
    p.polygon([(0.1, 0.4), (0.2, 0.38), (0.2, 0.48), (0.12, 0.5)], BLACK)
    p.polygon([(0.12, 0.58), (0.3, 0.36), (0.46, 0.58)], BLACK)         # the heap


def _signals(p: _Painter) -> None:
    for y, color in ((-0.1, RED), (0.17, AMBER), (0.44, GREEN)):
        p.circle((0.0, y), 0.11, color)


def _walker(p: _Painter, x: float, y: float, s: float, width: float) -> None:
    """A walking person, feet at (x, y), ``s`` tall."""
    p.circle((x + 0.02 * s, y - 0.9 * s), 0.11 * s, BLACK)
    hip = (x, y - 0.42 * s)
    p.line([(x + 0.02 * s, y - 0.75 * s), hip], width * 1.3, BLACK)
    p.line([(x - 0.2 * s, y), hip, (x + 0.18 * s, y)], width, BLACK)
    p.line([(x - 0.18 * s, y - 0.45 * s), (x + 0.01 * s, y - 0.72 * s), (x + 0.2 * s, y - 0.5 * s)],
           width * 0.8, BLACK)


def _pedestrian(p: _Painter) -> None:
    _walker(p, 0.0, 0.56, 0.8, 0.12)


def _children(p: _Painter) -> None:
    """A bigger and a smaller child, hand in hand."""
    _walker(p, -0.16, 0.56, 0.74, 0.11)
    _walker(p, 0.2, 0.56, 0.56, 0.1)
    p.line([(-0.02, 0.12), (0.1, 0.22)], 0.07, BLACK)


def _bicycle(p: _Painter) -> None:
    for cx in (-0.23, 0.23):
        p.ring((cx, 0.38), 0.14, 0.07, BLACK)
    p.line([(-0.23, 0.38), (-0.05, 0.12), (0.17, 0.12), (0.23, 0.38)], 0.07, BLACK)
    p.line([(-0.05, 0.12), (0.02, 0.38), (0.17, 0.12)], 0.07, BLACK)
    p.line([(0.17, 0.12), (0.14, 0.02), (0.22, 0.0)], 0.06, BLACK)
    p.circle((-0.07, 0.04), 0.06, BLACK)


def _snowflake(p: _Painter) -> None:
    centre = np.array([0.0, 0.22])
    for k in range(6):
        angle = math.radians(90 + 60 * k)
        d = np.array([math.cos(angle), -math.sin(angle)])
        n = np.array([-d[1], d[0]])
        p.line([centre, centre + 0.3 * d], 0.055, BLACK)
        branch = centre + 0.18 * d
        p.line([branch + 0.09 * (n + d), branch, branch + 0.09 * (d - n)], 0.045, BLACK)


def _deer(p: _Painter) -> None:
    p.ellipse((0.0, 0.2), (0.26, 0.11), -28, BLACK)                   # body, leaping up to the right
    p.line([(0.16, 0.1), (0.26, -0.06)], 0.11, BLACK)                 # neck
    p.ellipse((0.3, -0.08), (0.1, 0.055), -15, BLACK)                 # head
    p.line([(0.24, -0.1), (0.2, -0.24), (0.13, -0.3)], 0.05, BLACK)
    p.line([(0.2, -0.21), (0.28, -0.29)], 0.05, BLACK)                # antlers
    p.line([(0.12, 0.2), (0.22, 0.36), (0.34, 0.34)], 0.07, BLACK)    # fore legs
    p.line([(-0.18, 0.3), (-0.32, 0.46), (-0.44, 0.5)], 0.075, BLACK)  # hind legs
    p.line([(-0.14, 0.3), (-0.22, 0.52)], 0.07, BLACK)


def _ahead(p: _Painter) -> None:
    p.arrow([(0.0, 0.64), (0.0, -0.64)], 0.26, WHITE, head=2.6)


def _turn(sign: int) -> Callable[[_Painter], None]:
    def draw(p: _Painter) -> None:
        curve = _bezier((-0.2 * sign, 0.05), (-0.2 * sign, -0.22), (0.06 * sign, -0.22))
        p.arrow([(-0.2 * sign, 0.64), *curve, (0.64 * sign, -0.22)], 0.24, WHITE, head=2.4)
    return draw


def _straight_or(sign: int) -> Callable[[_Painter], None]:
    def draw(p: _Painter) -> None:
        x = -0.12 * sign
        p.arrow([(x, 0.66), (x, -0.66)], 0.2, WHITE, head=2.5)
        branch = _bezier((x, 0.34), (x, 0.02), (x + 0.3 * sign, 0.02))
        p.arrow([*branch, (0.68 * sign, 0.02)], 0.19, WHITE, head=2.5)
    return draw


def _keep(sign: int) -> Callable[[_Painter], None]:
    def draw(p: _Painter) -> None:
        p.arrow([(-0.44 * sign, -0.44), (0.5 * sign, 0.5)], 0.26, WHITE, head=2.4)
    return draw


def _roundabout(p: _Painter) -> None:
    radius = 0.5
    for k in range(3):
        start = 110 + 120 * k
        angles = np.radians(np.linspace(start, start + 84, 16))
        arc = np.stack([radius * np.cos(angles), -radius * np.sin(angles)], axis=1)
        p.arrow(arc, 0.15, WHITE, head=2.5)


def _priority_road(p: _Painter) -> None:
    _regular(_DIAMOND, 0.0, 0.04, p, (70, 70, 70))
    _regular(_DIAMOND, 0.03, 0.03, p, WHITE)
    _regular(_DIAMOND, 0.26, 0.02, p, YELLOW)


def _give_way(p: _Painter) -> None:
    _regular(_TRIANGLE_DOWN, 0.0, 0.09, p, WHITE)
    _regular(_TRIANGLE_DOWN, 0.035, 0.08, p, RED)
    _regular(_TRIANGLE_DOWN, 0.26, 0.03, p, WHITE)


def _stop(p: _Painter) -> None:
    _regular(_OCTAGON, 0.0, 0.03, p, WHITE)
    _regular(_OCTAGON, 0.04, 0.03, p, RED)
    # Letters as large as GTSRB's stop signs show them: four fifths of the width, a third of the
    # height. Drawn smaller, the word shrinks to a white bar at 16 px, which is "no entry".
    p.text("STOP", (-0.8, -0.33, 0.8, 0.33), WHITE, weight=0.19)


def _no_entry(p: _Painter) -> None:
    p.circle((0, 0), 1.0, WHITE)
    p.circle((0, 0), 0.96, RED)
    p.polygon([(-0.64, -0.15), (0.64, -0.15), (0.64, 0.15), (-0.64, 0.15)], WHITE)


def _with(*layers: Callable[[_Painter], None]) -> Callable[[_Painter], None]:
    """A sign drawn as layers, each on top of the one before: its shape first, then its symbols."""
    def draw(p: _Painter) -> None:
        for layer in layers:
            layer(p)
    return draw


def _zoomed(symbol: Callable[[_Painter], None], zoom: float, pivot: tuple[float, float]
            ) -> Callable[[_Painter], None]:
    """``symbol`` drawn ``zoom`` times larger around ``pivot``, line widths included."""
    def draw(p: _Painter) -> None:
        p.zoom, p.pivot = zoom, np.asarray(pivot, np.float64)
        symbol(p)
        p.zoom, p.pivot = 1.0, np.zeros(2)
    return draw


def _warning(symbol: Callable[[_Painter], None]) -> Callable[[_Painter], None]:
    """A danger sign; its symbol is shrunk towards the base, where the real ones sit (measured on GTSRB)."""
    return _with(_danger, _zoomed(symbol, 0.8, (0.0, 0.65)))


def _speed(limit: int) -> Callable[[_Painter], None]:
    return _with(_prohibitory, lambda p: _speed_digits(p, limit, BLACK))


_DRAW: dict[int, Callable[[_Painter], None]] = {
    **{c.id: _speed(c.speed_limit) for c in CLASSES if c.speed_limit is not None},
    6: _with(_derestriction, lambda p: _speed_digits(p, 80, GREY), _stripes),
    9: _with(_prohibitory, _pair(_car_rear, RED, BLACK)),
    10: _with(_prohibitory, _pair(_truck_rear, RED, BLACK)),
    11: _warning(_priority_next),
    12: _priority_road,
    13: _give_way,
    14: _stop,
    15: _prohibitory,
    16: _with(_prohibitory, lambda p: _truck_side(p, BLACK)),
    17: _no_entry,
    18: _warning(_exclamation),
    19: _warning(_bend(1)),
    20: _warning(_bend(-1)),
    21: _warning(_double_bend),
    22: _warning(_uneven),
    23: _warning(_slippery),
    24: _warning(_narrows_right),
    25: _warning(_road_works),
    26: _warning(_signals),
    27: _warning(_pedestrian),
    28: _warning(_children),
    29: _warning(_bicycle),
    30: _warning(_snowflake),
    31: _warning(_deer),
    32: _with(_derestriction, _stripes),
    33: _with(_mandatory, _turn(1)),
    34: _with(_mandatory, _turn(-1)),
    35: _with(_mandatory, _ahead),
    36: _with(_mandatory, _straight_or(1)),
    37: _with(_mandatory, _straight_or(-1)),
    38: _with(_mandatory, _keep(1)),
    39: _with(_mandatory, _keep(-1)),
    40: _with(_mandatory, _roundabout),
    41: _with(_derestriction, _pair(_car_rear, GREY, GREY), _stripes),
    42: _with(_derestriction, _pair(_truck_rear, GREY, GREY), _stripes),
}


def _frozen(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    for a in arrays:
        a.setflags(write=False)
    return arrays


def _check_size(size: int) -> None:
    if size < 4:
        raise ValueError(f"pictogram size must be at least 4 pixels, got {size}")


@lru_cache(maxsize=1024)
def sign_layers(class_id: int, size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """The sign drawn in a ``size`` x ``size`` square, with its shape as alpha.

    Args:
        class_id: GTSRB class, 0..42.
        size: Side of the square in pixels; the sign touches its edges (triangles its width).

    Returns:
        ``(bgr, alpha)``: size x size x 3 uint8 colours (black outside the sign) and size x size
        float32 coverage in 0..1. Both read-only (they are cached).

    Example:
        >>> bgr, alpha = sign_layers(17, 32)
        >>> bool(alpha[16, 16] == 1.0), bool(alpha[0, 0] == 0.0)
        (True, True)
    """
    if not 0 <= class_id < NUM_SIGN_CLASSES:
        raise ValueError(f"class id must be 0..{NUM_SIGN_CLASSES - 1}, got {class_id}")
    _check_size(size)
    painter = _Painter(size)
    _DRAW[class_id](painter)
    return _frozen(*painter.result(size))


@lru_cache(maxsize=64)
def speed_limit_sign(limit: int, size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """A speed-limit sign for any number (the HUD shows limits GTSRB has no class for), as :func:`sign_layers`.

    Example:
        >>> bgr, alpha = speed_limit_sign(40, 96)
        >>> bgr.shape
        (96, 96, 3)
    """
    _check_size(size)
    painter = _Painter(size)
    _speed(limit)(painter)
    return _frozen(*painter.result(size))


@lru_cache(maxsize=256)
def pictogram(class_id: int, size: int = 64, background: Color = (255, 255, 255)) -> np.ndarray:
    """The sign of ``class_id`` on a plain ``background``, as a read-only BGR image.

    Example:
        >>> pictogram(2, 32).shape
        (32, 32, 3)
    """
    bgr, alpha = sign_layers(class_id, size)
    a = alpha[..., None]
    out = np.round(bgr * a + np.asarray(background, np.float32) * (1.0 - a)).astype(np.uint8)
    return _frozen(out)[0]
